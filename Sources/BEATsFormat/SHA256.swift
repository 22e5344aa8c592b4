import CSHA256
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// SHA-256 (FIPS 180-4), streaming. A native file records the SHA-256 of the checkpoint it was
/// converted from, so a user can tell which official file a converted model came from. Written
/// here rather than pulled from swift-crypto to keep the package free of a large dependency; the
/// block function is C (`CSHA256`) so it can use the x86 SHA instructions, and the converter
/// runs the digest on a second thread, next to the conversion.
public struct SHA256: Sendable {
    private var state: [UInt32] = [
        0x6A09_E667, 0xBB67_AE85, 0x3C6E_F372, 0xA54F_F53A, 0x510E_527F, 0x9B05_688C, 0x1F83_D9AB, 0x5BE0_CD19,
    ]
    /// Bytes of an unfinished block (fewer than 64).
    private var pending: [UInt8] = []
    private var totalBytes: UInt64 = 0

    public init() {}

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        totalBytes &+= UInt64(bytes.count)
        var position = 0
        if !pending.isEmpty {
            let take = min(64 - pending.count, bytes.count)
            pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[0..<take]))
            position = take
            if pending.count == 64 {
                let block = pending
                block.withUnsafeBytes { compress($0, blocks: 1) }
                pending.removeAll(keepingCapacity: true)
            }
        }
        let wholeBlocks = (bytes.count - position) / 64
        if wholeBlocks > 0 {
            compress(UnsafeRawBufferPointer(start: base + position, count: wholeBlocks * 64), blocks: wholeBlocks)
            position += wholeBlocks * 64
        }
        if position < bytes.count {
            pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[position...]))
        }
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// The 32-byte digest. The hasher is spent afterwards.
    public mutating func finalize() -> [UInt8] {
        let bitLength = totalBytes &* 8
        var tail = pending
        tail.append(0x80)
        while tail.count % 64 != 56 { tail.append(0) }
        for shift in stride(from: 56, through: 0, by: -8) { tail.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift))) }
        tail.withUnsafeBytes { compress($0, blocks: tail.count / 64) }
        pending.removeAll()
        return state.flatMap { word in (0..<4).map { UInt8(truncatingIfNeeded: word >> UInt32(24 - 8 * $0)) } }
    }

    public static func digest(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(bytes)
        return hasher.finalize()
    }

    /// The digest of a file, read in 4 MiB chunks with `read(2)` (not mapped, so the hashed pages
    /// do not count toward the process's resident memory).
    public static func digest(ofFileAt path: String) throws(FileHashError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .open(path: path, errno: errno) }
        defer { close(descriptor) }
        // 256 KB: the chunk `read` copies into is still in L2 when the compression reads it.
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 << 10, alignment: 64)
        defer { chunk.deallocate() }
        var hasher = SHA256()
        while true {
            let got = read(descriptor, chunk.baseAddress, chunk.count)
            if got < 0 {
                if errno == EINTR { continue }
                throw .read(path: path, errno: errno)
            }
            if got == 0 { break }
            hasher.update(UnsafeRawBufferPointer(rebasing: chunk[0..<got]))
        }
        return hasher.finalize()
    }

    /// Whether the block function runs on the CPU's SHA instructions (reported by benchmarks).
    public static var usesHardwareInstructions: Bool { beats_sha256_uses_sha_extensions() != 0 }

    /// Runs the compression function over the first `blocks` 64-byte blocks of `bytes`.
    private mutating func compress(_ bytes: UnsafeRawBufferPointer, blocks: Int) {
        guard let base = bytes.baseAddress, blocks > 0, blocks * 64 <= bytes.count else { return }
        state.withUnsafeMutableBufferPointer { words in
            beats_sha256_blocks(words.baseAddress, base.assumingMemoryBound(to: UInt8.self), blocks)
        }
    }
}

/// Errors reading a file to hash it.
public enum FileHashError: Error, CustomStringConvertible, Equatable, Sendable {
    case open(path: String, errno: Int32)
    case read(path: String, errno: Int32)

    public var description: String {
        switch self {
        case .open(let path, let code): return "cannot open \(path): \(String(cString: strerror(code)))"
        case .read(let path, let code): return "cannot read \(path): \(String(cString: strerror(code)))"
        }
    }
}
