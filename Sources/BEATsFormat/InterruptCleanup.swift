#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Removes the writers' temporary files when the process is interrupted (SIGINT, SIGTERM,
/// SIGHUP), so Ctrl-C during `beats convert` leaves the output directory as it was.
///
/// Writers register their temporary path while it exists. The handler may run on any thread at
/// any moment, so it touches only memory that is never freed: a fixed set of slots, each a path
/// buffer plus an "in use" flag. Registering copies the path and then raises the flag; releasing
/// lowers it. The handler unlinks every flagged path, restores the signal's default action and
/// raises the signal again, so the process still dies of it (exit status 130 for Ctrl-C).
/// A path released between the handler's check and its `unlink` was already renamed or removed,
/// and the `unlink` fails harmlessly.
public enum InterruptCleanup {
    /// Writers alive at once in one process; a writer beyond this is simply not covered.
    static let slotCount = 16
    /// PATH_MAX on Linux, including the terminating NUL.
    static let slotPathCapacity = 4096

    private struct Slot {
        var inUse: UnsafeMutablePointer<sig_atomic_t>
        var path: UnsafeMutablePointer<CChar>
    }

    // Allocated once and never freed, and a raw pointer rather than an Array so that the handler
    // neither allocates nor touches reference counts.
    nonisolated(unsafe) private static let slots: UnsafeMutablePointer<Slot> = {
        let table = UnsafeMutablePointer<Slot>.allocate(capacity: slotCount)
        for index in 0..<slotCount {
            let flag = UnsafeMutablePointer<sig_atomic_t>.allocate(capacity: 1)
            flag.initialize(to: 0)
            let path = UnsafeMutablePointer<CChar>.allocate(capacity: slotPathCapacity)
            path.initialize(repeating: 0, count: slotPathCapacity)
            (table + index).initialize(to: Slot(inUse: flag, path: path))
        }
        return table
    }()
    nonisolated(unsafe) private static var lock = pthread_mutex_t()
    nonisolated(unsafe) private static var lockReady: Bool = {
        pthread_mutex_init(&lock, nil)
        return true
    }()

    /// Installs the handler for SIGINT, SIGTERM and SIGHUP, leaving alone a signal the process
    /// was told to ignore (`nohup` ignores SIGHUP). For command-line tools; a library embedding
    /// the writer keeps its own signal policy and need not call this.
    public static func installHandlers() {
        _ = slots  // initialised here, never first inside the handler
        for signalNumber in [SIGINT, SIGTERM, SIGHUP] {
            let previous = signal(signalNumber, interruptHandler)
            if let previous, unsafeBitCast(previous, to: Int.self) == 1 {  // SIG_IGN
                signal(signalNumber, previous)
            }
        }
    }

    /// Records `path` for removal on interrupt; returns the slot to pass to ``release(_:)``, or
    /// nil when every slot is taken or the path is too long.
    public static func register(_ path: String) -> Int? {
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.count < slotPathCapacity, !bytes.contains(0) else { return nil }
        _ = lockReady
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        guard let index = (0..<slotCount).first(where: { slots[$0].inUse.pointee == 0 }) else { return nil }
        let slot = slots[index]
        for (offset, byte) in bytes.enumerated() { slot.path[offset] = CChar(bitPattern: byte) }
        slot.path[bytes.count] = 0
        slot.inUse.pointee = 1
        return index
    }

    /// Stops covering the path in `slot` (after it was renamed or removed).
    public static func release(_ slot: Int) {
        _ = lockReady
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        slots[slot].inUse.pointee = 0
    }

    /// What the signal handler does before re-raising: unlinks every registered path. Only
    /// async-signal-safe calls.
    static func removeRegisteredFiles() {
        for slot in 0..<slotCount { removeRegisteredFile(slot: slot) }
    }

    /// Unlinks the path in `slot` if it is registered. Tests call it for their own writer's slot
    /// (other suites' writers run in parallel and must keep their files).
    static func removeRegisteredFile(slot: Int) {
        if slots[slot].inUse.pointee != 0 { unlink(slots[slot].path) }
    }
}

/// A C function pointer that captures nothing, as `signal` requires.
private let interruptHandler: @convention(c) (Int32) -> Void = { signalNumber in
    InterruptCleanup.removeRegisteredFiles()
    signal(signalNumber, SIG_DFL)
    raise(signalNumber)
}
