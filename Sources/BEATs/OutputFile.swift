import BEATsFormat
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a command's output file so that it never destroys what the path names, and never
/// leaves half a file behind. The one home of these rules for every output the toolkit writes
/// (`.npy`, JSON, token lists):
///
/// - `-` is standard output;
/// - a FIFO, character device or terminal (`/dev/stdout` among them) is opened and written
///   through, never replaced;
/// - a symbolic link to a regular file: its target is replaced, the link stays (as `cp` and
///   editors do);
/// - a regular file or a new name: the bytes go to a temporary file in the same directory,
///   which is renamed over the path only once complete (atomic for other processes);
/// - a directory, or a path whose directory does not exist: ``BEATsError/cannotWrite(path:reason:)``,
///   which ``checkWritable(_:)`` raises before any work starts.
public enum OutputFile {
    /// Where the bytes for `path` will go.
    enum Destination: Equatable {
        case standardOutput
        /// Opened and written through (FIFO, character device).
        case stream(String)
        /// Replaced atomically through a temporary file beside it.
        case file(String)
    }

    /// Throws unless `path` can take an output: call it before expensive work so a typo in `-o`
    /// fails at once.
    public static func checkWritable(_ path: String) throws(BEATsError) {
        _ = try destination(for: path)
    }

    /// Throws unless `path` is an existing directory (where outputs named by input go).
    public static func checkDirectory(_ path: String) throws(BEATsError) {
        var status = stat()
        guard stat(path, &status) == 0 else { throw .cannotWrite(path: path, reason: "directory does not exist") }
        guard status.st_mode & S_IFMT == S_IFDIR else { throw .cannotWrite(path: path, reason: "not a directory") }
    }

    /// Writes `bytes` to `path` by the rules above.
    public static func write(_ bytes: [UInt8], to path: String) throws(BEATsError) {
        let output = try OutputFileWriter(path: path)
        try output.write(bytes)
        try output.commit()
    }

    /// The regular file a writer that needs one (seeks, then a rename into place: the native
    /// converter) should replace for `path`: `path` itself, or a symbolic link's target (the link
    /// stays). Standard output, a FIFO or a device is refused with the reason, before any work:
    /// such a writer cannot stream.
    public static func regularFileTarget(_ path: String, writing what: String) throws(BEATsError) -> String {
        switch try destination(for: path) {
        case .standardOutput, .stream:
            throw .cannotWrite(path: path, reason: "\(what) is written with seeks and renamed into place, so it needs a regular file, not standard output, a FIFO or a device; write it to a file and copy that")
        case .file(let target):
            return target
        }
    }

    static func destination(for path: String) throws(BEATsError) -> Destination {
        if path == "-" { return .standardOutput }
        guard !path.isEmpty else { throw .cannotWrite(path: "''", reason: "empty path") }
        var status = stat()
        if stat(path, &status) == 0 {
            switch status.st_mode & S_IFMT {
            case S_IFDIR: throw .cannotWrite(path: path, reason: "it is a directory")
            case S_IFIFO, S_IFCHR, S_IFSOCK: return .stream(path)
            case S_IFREG: return .file(try resolvedLink(path))
            default: throw .cannotWrite(path: path, reason: "not a regular file, FIFO or device")
            }
        }
        let error = errno
        guard error == ENOENT else { throw failure(path, error) }
        // A dangling symbolic link would be replaced by a file; refuse instead of guessing.
        var linkStatus = stat()
        if lstat(path, &linkStatus) == 0 { throw .cannotWrite(path: path, reason: "it is a symbolic link to a missing file") }
        let directory = directoryName(path)
        var directoryStatus = stat()
        guard stat(directory, &directoryStatus) == 0 else {
            throw .cannotWrite(path: path, reason: "directory \(directory) does not exist")
        }
        guard directoryStatus.st_mode & S_IFMT == S_IFDIR else {
            throw .cannotWrite(path: path, reason: "\(directory) is not a directory")
        }
        return .file(path)
    }

    /// The regular file a path names, following symbolic links (so the link survives).
    private static func resolvedLink(_ path: String) throws(BEATsError) -> String {
        var linkStatus = stat()
        guard lstat(path, &linkStatus) == 0, linkStatus.st_mode & S_IFMT == S_IFLNK else { return path }
        guard let resolved = realpath(path, nil) else { throw failure(path, errno) }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static func failure(_ path: String, _ code: Int32) -> BEATsError {
        .cannotWrite(path: path, reason: String(cString: strerror(code)))
    }

    static func directoryName(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let directory = String(path[..<slash])
        return directory.isEmpty ? "/" : directory
    }

    static func baseName(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }
}

/// One output being written by ``OutputFile``'s rules, piece by piece (a large file need not sit
/// in memory): standard output and streams are written through as pieces arrive; a regular file
/// goes to a temporary file beside it that ``commit()`` renames over it. A writer dropped without
/// `commit()` — an error anywhere in between — removes its temporary file, so the destination
/// is either what it was or complete.
public final class OutputFileWriter {
    /// The path as the caller gave it, for messages.
    public let path: String
    private var descriptor: Int32
    private let ownsDescriptor: Bool
    /// Set while a temporary file stands in for the destination: (temporary, target).
    private var replacement: (temporary: String, target: String)?
    /// The temporary file's slot in `InterruptCleanup`, so that Ctrl-C removes it too (where
    /// the command installed the handlers: `convert`, `export`).
    private var interruptSlot: Int?

    /// Opens the destination `path` names (after the same checks as ``OutputFile/checkWritable(_:)``).
    public init(path: String) throws(BEATsError) {
        self.path = path
        switch try OutputFile.destination(for: path) {
        case .standardOutput:
            descriptor = STDOUT_FILENO
            ownsDescriptor = false
        case .stream(let target):
            descriptor = open(target, O_WRONLY | O_CLOEXEC)
            guard descriptor >= 0 else { throw OutputFile.failure(path, errno) }
            ownsDescriptor = true
        case .file(let target):
            let temporary = OutputFile.directoryName(target) + "/." + OutputFile.baseName(target) + ".\(getpid()).partial"
            descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else { throw OutputFile.failure(path, errno) }
            ownsDescriptor = true
            replacement = (temporary, target)
            interruptSlot = InterruptCleanup.register(temporary)
        }
    }

    deinit {
        if ownsDescriptor, descriptor >= 0 { close(descriptor) }
        if let replacement { unlink(replacement.temporary) }
        if let interruptSlot { InterruptCleanup.release(interruptSlot) }
    }

    /// Appends `bytes` (all of them; interrupted writes are resumed).
    public func write(_ bytes: UnsafeRawBufferPointer) throws(BEATsError) {
        guard descriptor >= 0, let base = bytes.baseAddress else { return }
        var offset = 0
        while offset < bytes.count {
            let written = systemWrite(descriptor, base + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw OutputFile.failure(path, errno)
            }
            offset += written
        }
    }

    public func write(_ bytes: [UInt8]) throws(BEATsError) {
        let result = bytes.withUnsafeBytes { buffer in Result { () throws(BEATsError) in try write(buffer) } }
        try result.get()
    }

    /// Finishes the output: closes a stream, or renames the temporary file over its target.
    public func commit() throws(BEATsError) {
        guard ownsDescriptor, descriptor >= 0 else { return }
        let result = close(descriptor)
        descriptor = -1
        guard result == 0 else { throw OutputFile.failure(path, errno) }
        if let replacement {
            guard rename(replacement.temporary, replacement.target) == 0 else { throw OutputFile.failure(path, errno) }
            self.replacement = nil
            if let interruptSlot { InterruptCleanup.release(interruptSlot) }
            interruptSlot = nil
        }
    }
}

/// `write(2)`, named apart from ``OutputFile/write(_:to:)`` so the call inside it is not taken for
/// a recursive one.
private func systemWrite(_ descriptor: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    write(descriptor, bytes, count)
}
