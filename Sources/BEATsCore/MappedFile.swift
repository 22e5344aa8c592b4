#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Errors from the operating system while opening or mapping a file.
public enum FileAccessError: Error, CustomStringConvertible, Equatable, Sendable {
    case open(path: String, errno: Int32)
    case stat(path: String, errno: Int32)
    case notARegularFile(path: String)
    case map(path: String, errno: Int32)

    public var description: String {
        switch self {
        case .open(let path, let code): return "cannot open \(path): \(String(cString: strerror(code)))"
        case .stat(let path, let code): return "cannot stat \(path): \(String(cString: strerror(code)))"
        case .notARegularFile(let path): return "\(path) is not a regular file"
        case .map(let path, let code): return "cannot map \(path): \(String(cString: strerror(code)))"
        }
    }
}

/// A read-only, private memory map of a whole file (`open` + `fstat` + `mmap`, `munmap` on deinit).
///
/// Nothing is read from disk until a page is touched, so views into the map cost nothing until
/// their bytes are used. The map lives as long as this object; views keep it alive through
/// ``ByteStorage/owner``.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    /// The whole file. Empty (and with a nil base) for a zero-length file.
    public let bytes: UnsafeRawBufferPointer
    private let mappedBase: UnsafeMutableRawPointer?
    /// The heap buffer of an in-memory file (``init(path:copying:)``); nil for a real map.
    private let heapCopy: UnsafeMutableRawBufferPointer?
    /// The mapped file, kept open (read-only) for as long as the map, so that bytes of the map
    /// can be copied file to file inside the kernel (`copy_file_range`) from the very inode that
    /// is mapped, whatever has happened to the path since. -1 for an in-memory file.
    public let descriptor: Int32

    public init(path: String) throws(FileAccessError) {
        self.path = path
        heapCopy = nil
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .open(path: path, errno: errno) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            let code = errno
            close(descriptor)
            throw .stat(path: path, errno: code)
        }
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            close(descriptor)
            throw .notARegularFile(path: path)
        }
        let length = Int(status.st_size)
        if length == 0 {
            mappedBase = nil
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            self.descriptor = descriptor
            return
        }
        let base = mmap(nil, length, PROT_READ, MAP_PRIVATE, descriptor, 0)
        guard let base, base != MAP_FAILED else {
            let code = errno
            close(descriptor)
            throw .map(path: path, errno: code)
        }
        mappedBase = base
        bytes = UnsafeRawBufferPointer(start: base, count: length)
        self.descriptor = descriptor
    }

    /// An in-memory file holding a copy of `data`, for readers that take a `MappedFile` but get
    /// their bytes from elsewhere (fuzzers, tests). The copy sits in a heap buffer of exactly
    /// `data.count` bytes, 64-byte aligned like a map's tensors, so an address sanitizer sees any
    /// read past its end (in a real map such a read would land in the last page's padding).
    public init(path: String, copying data: some Collection<UInt8>) {
        self.path = path
        mappedBase = nil
        descriptor = -1
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(data.count, 1), alignment: 64)
        copy.copyBytes(from: data)
        heapCopy = copy
        bytes = UnsafeRawBufferPointer(rebasing: copy[0..<data.count])
    }

    public var count: Int { bytes.count }

    /// A storage view of `range` that keeps this map alive.
    public func storage(_ range: Range<Int>) -> ByteStorage {
        ByteStorage(bytes: UnsafeRawBufferPointer(rebasing: bytes[range]), owner: self)
    }

    /// Where `region` (a piece of ``bytes``) starts in the file, when this is a real map of an
    /// open file; nil for an in-memory file or bytes outside the map.
    public func fileOffset(of region: UnsafeRawBufferPointer) -> Int? {
        guard descriptor >= 0, let base = bytes.baseAddress, let start = region.baseAddress else { return nil }
        let offset = start - UnsafeRawPointer(base)
        guard offset >= 0, offset <= bytes.count, region.count <= bytes.count - offset else { return nil }
        return offset
    }

    /// How a reader is about to use the map, so that the kernel reads ahead as much as helps and
    /// no more: a cold fault under the default read-around pulls in megabytes around the page.
    public enum AccessPattern: Sendable {
        /// The kernel's default read-around (`MADV_NORMAL`), for tensor reads after scattered ones.
        case normal
        /// One pass front to back (`MADV_SEQUENTIAL`): aggressive read-ahead, pages dropped early.
        case sequential
        /// Scattered reads of metadata (`MADV_RANDOM`): only the page touched is read.
        case random
    }

    /// Gives the kernel `pattern` for the whole map (`madvise`). Advice only: a no-op for an
    /// in-memory file, and a failure changes nothing a reader sees.
    public func advise(_ pattern: AccessPattern) {
        guard let mappedBase else { return }
        let advice: Int32
        switch pattern {
        case .normal: advice = MADV_NORMAL
        case .sequential: advice = MADV_SEQUENTIAL
        case .random: advice = MADV_RANDOM
        }
        _ = madvise(mappedBase, bytes.count, advice)
    }

    /// Hands the whole pages inside `region` back to the kernel (`madvise(MADV_DONTNEED)`) once
    /// their bytes are no longer needed in memory — a converted or packed tensor — so resident
    /// memory stays small however large the file. Safe because the map is read-only and private:
    /// a page touched again is read back from the file (usually from the page cache). The
    /// partial pages at either end of `region` are kept, since neighbours may still be in use.
    /// A no-op for an in-memory file (there `MADV_DONTNEED` would zero the bytes) and for a
    /// region that is not inside this map.
    public func releasePages(in region: UnsafeRawBufferPointer) {
        guard mappedBase != nil, let start = region.baseAddress, fileOffset(of: region) != nil else { return }
        let page = MappedFile.pageSize
        let first = (Int(bitPattern: start) + page - 1) / page * page
        let end = (Int(bitPattern: start) + region.count) / page * page
        guard end > first, let pointer = UnsafeMutableRawPointer(bitPattern: first) else { return }
        _ = madvise(pointer, end - first, MADV_DONTNEED)
    }

    /// ``releasePages(in:)`` for bytes known only with their keeper (a ``ByteStorage/owner`` or a
    /// ``QuantizedMatrix/owner``), so callers need not know where the bytes live: a no-op unless
    /// `owner` is a ``MappedFile`` that holds `region`.
    public static func releasePages(in region: UnsafeRawBufferPointer, ownedBy owner: AnyObject) {
        (owner as? MappedFile)?.releasePages(in: region)
    }

    /// The system's page size, the unit `madvise` works in.
    public static let pageSize = Int(getpagesize())

    deinit {
        if let mappedBase { munmap(mappedBase, bytes.count) }
        if descriptor >= 0 { close(descriptor) }
        heapCopy?.deallocate()
    }
}

/// Bytes that live somewhere else (a memory map, an inflated buffer) plus the object that keeps
/// them alive. Tensors hold one of these, so a tensor never outlives its bytes.
public struct ByteStorage: @unchecked Sendable {
    public let bytes: UnsafeRawBufferPointer
    public let owner: AnyObject

    public init(bytes: UnsafeRawBufferPointer, owner: AnyObject) {
        self.bytes = bytes
        self.owner = owner
    }

    /// Copies `data` into a new heap buffer owned by the returned storage.
    public init(copying data: some Collection<UInt8>) {
        let box = OwnedBytes(count: data.count)
        box.buffer.copyBytes(from: data)
        self.bytes = UnsafeRawBufferPointer(box.buffer)
        self.owner = box
    }

    public var count: Int { bytes.count }
}

/// A heap buffer with a stable, 64-byte aligned address (for inflated zip entries, legacy
/// storages and converted tensors). Zero-filled at creation.
public final class OwnedBytes: @unchecked Sendable {
    /// The usable bytes (`count` long; the allocation is at least one byte).
    public let buffer: UnsafeMutableRawBufferPointer
    private let allocation: UnsafeMutableRawBufferPointer

    public init(count: Int) {
        allocation = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 64)
        allocation.initializeMemory(as: UInt8.self, repeating: 0)
        buffer = UnsafeMutableRawBufferPointer(rebasing: allocation[0..<count])
    }

    /// A storage view of the whole buffer that keeps it alive.
    public var storage: ByteStorage { ByteStorage(bytes: UnsafeRawBufferPointer(buffer), owner: self) }

    deinit { allocation.deallocate() }
}
