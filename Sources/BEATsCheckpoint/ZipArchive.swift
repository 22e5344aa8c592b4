import BEATsCore

/// What is wrong with a zip container, and where (file offsets, entry names).
public enum ZipError: Error, CustomStringConvertible, Equatable, Sendable {
    case tooShort(fileSize: Int)
    case endRecordNotFound(fileSize: Int)
    case zip64LocatorInvalid(offset: Int)
    case zip64EndRecordInvalid(offset: Int, found: UInt32)
    case multiDisk(offset: Int)
    case centralDirectoryOutOfFile(offset: Int, size: Int, fileSize: Int)
    case tooManyEntries(count: Int, centralDirectorySize: Int)
    case entryLimitExceeded(count: Int, limit: Int)
    case centralEntryInvalid(index: Int, offset: Int, found: UInt32)
    case centralEntryTruncated(index: Int, offset: Int)
    case zip64ExtraMissing(entry: String, field: String, offset: Int)
    case badEntryName(name: String, offset: Int)
    case duplicateEntry(name: String, offset: Int)
    case encrypted(entry: String)
    case unsupportedMethod(entry: String, method: UInt16)
    case localHeaderInvalid(entry: String, offset: Int, found: UInt32)
    case localHeaderMismatch(entry: String, offset: Int, what: String)
    case dataOutOfFile(entry: String, offset: Int, size: Int, fileSize: Int)
    case declaredSizeTooLarge(entry: String, declared: Int, limit: Int)
    case storedSizeMismatch(entry: String, compressed: Int, uncompressed: Int)
    case inflate(entry: String, offset: Int, InflateError)
    case checksumMismatch(entry: String, expected: UInt32, actual: UInt32)

    public var description: String {
        func hex(_ value: UInt32) -> String { "0x" + String(value, radix: 16) }
        switch self {
        case .tooShort(let size):
            return "zip: file of \(size) bytes is too short to hold an end-of-central-directory record (22 bytes)"
        case .endRecordNotFound(let size):
            return "zip: no end-of-central-directory record in the last 65,557 bytes of the \(size)-byte file"
        case .zip64LocatorInvalid(let offset):
            return "zip: ZIP64 end-of-central-directory locator at offset \(offset) points outside the file"
        case .zip64EndRecordInvalid(let offset, let found):
            return "zip: expected a ZIP64 end-of-central-directory record at offset \(offset), found signature \(hex(found))"
        case .multiDisk(let offset):
            return "zip: multi-disk archives are not supported (end record at offset \(offset))"
        case .centralDirectoryOutOfFile(let offset, let size, let fileSize):
            return "zip: central directory at offset \(offset) of \(size) bytes lies outside the \(fileSize)-byte file"
        case .tooManyEntries(let count, let size):
            return "zip: \(count) entries cannot fit in a central directory of \(size) bytes"
        case .entryLimitExceeded(let count, let limit):
            return "zip: the archive declares \(count) entries, more than the limit of \(limit)"
        case .centralEntryInvalid(let index, let offset, let found):
            return "zip: central directory entry \(index) at offset \(offset): bad signature \(hex(found))"
        case .centralEntryTruncated(let index, let offset):
            return "zip: central directory entry \(index) at offset \(offset) runs past the central directory"
        case .zip64ExtraMissing(let entry, let field, let offset):
            return "zip: entry '\(entry)' (central record at offset \(offset)): \(field) is 0xFFFFFFFF but no ZIP64 extra field gives it"
        case .badEntryName(let name, let offset):
            return "zip: entry name '\(name)' (central record at offset \(offset)) is absolute, has a '..' component or is not UTF-8"
        case .duplicateEntry(let name, let offset):
            return "zip: entry '\(name)' appears twice (second at central offset \(offset))"
        case .encrypted(let entry):
            return "zip: entry '\(entry)' is encrypted"
        case .unsupportedMethod(let entry, let method):
            return "zip: entry '\(entry)' uses compression method \(method) (only stored and deflated are supported)"
        case .localHeaderInvalid(let entry, let offset, let found):
            return "zip: entry '\(entry)': expected a local header at offset \(offset), found signature \(hex(found))"
        case .localHeaderMismatch(let entry, let offset, let what):
            return "zip: entry '\(entry)': local header at offset \(offset) disagrees with the central directory (\(what))"
        case .dataOutOfFile(let entry, let offset, let size, let fileSize):
            return "zip: entry '\(entry)': \(size) bytes of data at offset \(offset) run past the end of the \(fileSize)-byte file"
        case .declaredSizeTooLarge(let entry, let declared, let limit):
            return "zip: entry '\(entry)' declares \(declared) uncompressed bytes, more than its compressed size allows (limit \(limit))"
        case .storedSizeMismatch(let entry, let compressed, let uncompressed):
            return "zip: stored entry '\(entry)' has compressed size \(compressed) but uncompressed size \(uncompressed)"
        case .inflate(let entry, let offset, let error):
            switch error {
            case .initialisationFailed(let code):
                return "zip: entry '\(entry)': zlib could not start inflating (code \(code))"
            case .corrupt(let message, let inputOffset):
                return "zip: entry '\(entry)': corrupt deflate data at offset \(offset + inputOffset): \(message)"
            case .outputBeyondCapacity(let capacity):
                return "zip: entry '\(entry)' at offset \(offset) inflates beyond its declared size of \(capacity) bytes"
            case .truncatedInput(let produced):
                return "zip: entry '\(entry)' at offset \(offset): deflate data ends early (after \(produced) bytes of output)"
            case .outputShort(let produced, let expected):
                return "zip: entry '\(entry)' at offset \(offset) inflates to \(produced) bytes, not its declared \(expected)"
            }
        case .checksumMismatch(let entry, let expected, let actual):
            return "zip: entry '\(entry)': CRC-32 is \(hex(actual)), the archive says \(hex(expected))"
        }
    }
}

/// Caps on what a zip archive may make the reader allocate.
public struct ZipLimits: Sendable, Equatable {
    /// Largest uncompressed size accepted for one deflated entry (the whole inflated buffer is allocated).
    public var maximumInflatedBytes: Int
    /// Largest number of central directory entries.
    public var maximumEntries: Int

    public init(maximumInflatedBytes: Int = 8 << 30, maximumEntries: Int = 1 << 20) {
        self.maximumInflatedBytes = maximumInflatedBytes
        self.maximumEntries = maximumEntries
    }

    /// DEFLATE cannot do better than 1032:1 (a 258-byte match in about two bits), so a declared
    /// size above this bound is a lie, whatever the stream turns out to hold.
    public static let deflateMaximumRatio = 1032
}

/// One file in a zip archive, as the central directory describes it (ZIP64 fields resolved).
public struct ZipEntry: Sendable, Equatable {
    public enum Method: Sendable, Equatable {
        case stored, deflated
        case other(UInt16)
    }

    public let name: String
    public let method: Method
    public let flags: UInt16
    /// CRC-32 of the uncompressed bytes; torch can write 0 when it skipped computing it.
    public let crc32: UInt32
    public let compressedSize: Int
    public let uncompressedSize: Int
    public let localHeaderOffset: Int
    /// Where this entry's central directory record starts (for error messages).
    public let centralRecordOffset: Int

    public var isEncrypted: Bool { flags & 0x0001 != 0 }
    /// General purpose flag bit 3: sizes and CRC follow the data in a data descriptor.
    public var hasDataDescriptor: Bool { flags & 0x0008 != 0 }
}

/// A read-only zip archive over a memory-mapped file.
///
/// Opening reads only the end records and the central directory. Stored entries are returned as
/// views into the map (no copy, no read); deflated entries are inflated into a buffer of exactly
/// their declared size.
///
/// CRC-32 policy: a CRC is checked whenever the reader reads the whole entry anyway — every
/// deflated entry, and stored entries read through ``contents(of:)`` with `verify: true` (the
/// checkpoint's `data.pkl` and `byteorder`). Stored tensor records are not checked when they are
/// handed out as views, because that would read every tensor byte when a file is opened or
/// inspected; ``verifyChecksum(of:)`` checks one explicitly (`PyTorchCheckpoint.verifyChecksums()`
/// checks them all). A CRC of 0 means "not written" (torch does that) and is accepted.
public final class ZipArchive: Sendable {
    public let file: MappedFile
    public let entries: [ZipEntry]
    public let limits: ZipLimits
    private let indexByName: [String: Int]

    public convenience init(path: String, limits: ZipLimits = ZipLimits()) throws {
        try self.init(file: MappedFile(path: path), limits: limits)
    }

    public init(file: MappedFile, limits: ZipLimits = ZipLimits()) throws(ZipError) {
        self.file = file
        self.limits = limits
        let directory = try ZipArchive.locateCentralDirectory(file.bytes)
        let entries = try ZipArchive.readCentralDirectory(file.bytes, directory, limits: limits)
        var indexByName = [String: Int](minimumCapacity: entries.count)
        for (index, entry) in entries.enumerated() {
            guard indexByName.updateValue(index, forKey: entry.name) == nil else {
                throw .duplicateEntry(name: entry.name, offset: entry.centralRecordOffset)
            }
        }
        self.entries = entries
        self.indexByName = indexByName
    }

    public func entry(named name: String) -> ZipEntry? {
        indexByName[name].map { entries[$0] }
    }

    /// The byte range of an entry's (possibly compressed) data in the file, found through its
    /// local header, whose extra field may differ in length from the central one (torch pads it
    /// so that data starts on a 64-byte boundary).
    public func dataRange(of entry: ZipEntry) throws(ZipError) -> Range<Int> {
        let bytes = file.bytes
        let offset = entry.localHeaderOffset
        guard offset <= bytes.count - 30, offset >= 0 else {
            throw .dataOutOfFile(entry: entry.name, offset: offset, size: 30, fileSize: bytes.count)
        }
        var reader = ByteReader(bytes)
        _ = reader.seek(to: offset)
        guard let signature = reader.readInteger(UInt32.self), signature == 0x0403_4b50 else {
            throw .localHeaderInvalid(entry: entry.name, offset: offset, found: bytes.loadInteger(UInt32.self, at: offset) ?? 0)
        }
        guard reader.skip(2),  // version needed
              let flags = reader.readInteger(UInt16.self),
              let method = reader.readInteger(UInt16.self),
              reader.skip(4 + 4 + 4 + 4),  // time, date, crc, sizes (the central directory's are used)
              let nameLength = reader.readInteger(UInt16.self),
              let extraLength = reader.readInteger(UInt16.self),
              let localName = reader.readBytes(Int(nameLength))
        else { throw .dataOutOfFile(entry: entry.name, offset: offset, size: 30, fileSize: bytes.count) }
        guard method == entry.methodCode else {
            throw .localHeaderMismatch(entry: entry.name, offset: offset, what: "method \(method) vs \(entry.methodCode)")
        }
        guard flags & 0x0001 == 0 else { throw .encrypted(entry: entry.name) }
        guard localName.elementsEqual(entry.name.utf8) else {
            throw .localHeaderMismatch(entry: entry.name, offset: offset, what: "name '\(String(decoding: localName, as: UTF8.self))'")
        }
        let dataStart = reader.position + Int(extraLength)
        guard dataStart <= bytes.count, entry.compressedSize <= bytes.count - dataStart else {
            throw .dataOutOfFile(entry: entry.name, offset: dataStart, size: entry.compressedSize, fileSize: bytes.count)
        }
        return dataStart..<dataStart + entry.compressedSize
    }

    /// The uncompressed bytes of an entry. Stored entries are views into the map (nothing is read
    /// unless `verify` asks for the CRC); deflated entries are inflated (and always CRC-checked).
    public func contents(of entry: ZipEntry, verify: Bool = false) throws(ZipError) -> ByteStorage {
        try checkDeclaredSize(of: entry)
        let range = try dataRange(of: entry)
        switch entry.method {
        case .stored:
            let storage = file.storage(range)
            if verify { try ZipArchive.check(storage.bytes, entry) }
            return storage
        case .deflated:
            let output = OwnedBytes(count: entry.uncompressedSize)
            do {
                try Inflater.inflateRaw(UnsafeRawBufferPointer(rebasing: file.bytes[range]), into: output.buffer)
            } catch {
                throw .inflate(entry: entry.name, offset: range.lowerBound, error)
            }
            try ZipArchive.check(UnsafeRawBufferPointer(output.buffer), entry)
            return output.storage
        case .other(let code):
            throw .unsupportedMethod(entry: entry.name, method: code)
        }
    }

    /// The checks ``contents(of:verify:)`` makes before reading anything, from the central
    /// directory alone: the entry is not encrypted, uses stored or deflate, and declares an
    /// uncompressed size the archive can deliver (a stored entry's equals its compressed size,
    /// which lies in the file; a deflated entry's is within ``inflationLimit(for:)``). After it
    /// passes, `uncompressedSize` is a size that can be trusted for allocation and arithmetic.
    public func checkDeclaredSize(of entry: ZipEntry) throws(ZipError) {
        guard !entry.isEncrypted else { throw .encrypted(entry: entry.name) }
        switch entry.method {
        case .stored:
            guard entry.compressedSize == entry.uncompressedSize else {
                throw .storedSizeMismatch(entry: entry.name, compressed: entry.compressedSize, uncompressed: entry.uncompressedSize)
            }
        case .deflated:
            let limit = inflationLimit(for: entry)
            guard entry.uncompressedSize <= limit else {
                throw .declaredSizeTooLarge(entry: entry.name, declared: entry.uncompressedSize, limit: limit)
            }
        case .other(let code):
            throw .unsupportedMethod(entry: entry.name, method: code)
        }
    }

    /// Reads a stored entry's bytes and compares their CRC-32 with the archive's (a zero CRC passes).
    public func verifyChecksum(of entry: ZipEntry) throws(ZipError) {
        _ = try contents(of: entry, verify: true)
    }

    /// The largest uncompressed size a deflated entry may declare: what DEFLATE can reach from its
    /// compressed size (itself bounded by the file size), capped by ``ZipLimits/maximumInflatedBytes``.
    func inflationLimit(for entry: ZipEntry) -> Int {
        let ratioBound = checkedProduct([entry.compressedSize, ZipLimits.deflateMaximumRatio]).map { $0 + 64 } ?? Int.max
        return min(ratioBound, limits.maximumInflatedBytes)
    }

    private static func check(_ bytes: UnsafeRawBufferPointer, _ entry: ZipEntry) throws(ZipError) {
        guard entry.crc32 != 0 else { return }
        let actual = Inflater.crc32(bytes)
        guard actual == entry.crc32 else { throw .checksumMismatch(entry: entry.name, expected: entry.crc32, actual: actual) }
    }

    // MARK: - End records and central directory

    struct CentralDirectory {
        var offset: Int
        var size: Int
        var entryCount: Int
    }

    static func locateCentralDirectory(_ bytes: UnsafeRawBufferPointer) throws(ZipError) -> CentralDirectory {
        let endRecordSize = 22
        guard bytes.count >= endRecordSize else { throw .tooShort(fileSize: bytes.count) }
        // The end record is the last thing in the file except a comment of at most 65,535 bytes.
        // Scan backwards; prefer a record whose comment reaches exactly the end of the file, so a
        // signature inside the comment cannot pose as the real record.
        let lowest = max(0, bytes.count - endRecordSize - 0xFFFF)
        var candidate = bytes.count - endRecordSize
        var fallback: Int?
        var found: Int?
        while candidate >= lowest {
            if bytes[candidate] == 0x50, bytes.loadInteger(UInt32.self, at: candidate) == 0x0605_4b50 {
                let commentLength = Int(bytes.loadInteger(UInt16.self, at: candidate + 20) ?? 0)
                if candidate + endRecordSize + commentLength == bytes.count {
                    found = candidate
                    break
                }
                if fallback == nil, candidate + endRecordSize + commentLength <= bytes.count { fallback = candidate }
            }
            candidate -= 1
        }
        guard let endOffset = found ?? fallback else { throw .endRecordNotFound(fileSize: bytes.count) }

        var reader = ByteReader(bytes)
        _ = reader.seek(to: endOffset + 4)
        guard let diskNumber = reader.readInteger(UInt16.self),
              let directoryDisk = reader.readInteger(UInt16.self),
              let entriesOnDisk = reader.readInteger(UInt16.self),
              let totalEntries = reader.readInteger(UInt16.self),
              let directorySize = reader.readInteger(UInt32.self),
              let directoryOffset = reader.readInteger(UInt32.self)
        else { throw .endRecordNotFound(fileSize: bytes.count) }
        var directory = CentralDirectory(offset: Int(directoryOffset), size: Int(directorySize), entryCount: Int(totalEntries))
        var multiDisk = diskNumber != 0 || directoryDisk != 0 || entriesOnDisk != totalEntries

        // A ZIP64 locator sits right before the end record when any field overflowed (torch
        // always writes one). Its record then has the real 64-bit values.
        let locatorOffset = endOffset - 20
        if locatorOffset >= 0, bytes.loadInteger(UInt32.self, at: locatorOffset) == 0x0706_4b50 {
            var locator = ByteReader(bytes)
            _ = locator.seek(to: locatorOffset + 4)
            guard let recordDisk = locator.readInteger(UInt32.self),
                  let recordOffset64 = locator.readInteger(UInt64.self),
                  let diskCount = locator.readInteger(UInt32.self)
            else { throw .zip64LocatorInvalid(offset: locatorOffset) }
            guard recordDisk == 0, diskCount <= 1 else { throw .multiDisk(offset: locatorOffset) }
            guard recordOffset64 <= UInt64(locatorOffset), Int(recordOffset64) + 56 <= locatorOffset else {
                throw .zip64LocatorInvalid(offset: locatorOffset)
            }
            let recordOffset = Int(recordOffset64)
            var record = ByteReader(bytes)
            _ = record.seek(to: recordOffset)
            let signature = record.readInteger(UInt32.self) ?? 0
            guard signature == 0x0606_4b50 else { throw .zip64EndRecordInvalid(offset: recordOffset, found: signature) }
            guard record.skip(8 + 2 + 2),  // record size, versions
                  let disk64 = record.readInteger(UInt32.self),
                  let directoryDisk64 = record.readInteger(UInt32.self),
                  let entriesOnDisk64 = record.readInteger(UInt64.self),
                  let totalEntries64 = record.readInteger(UInt64.self),
                  let directorySize64 = record.readInteger(UInt64.self),
                  let directoryOffset64 = record.readInteger(UInt64.self)
            else { throw .zip64EndRecordInvalid(offset: recordOffset, found: signature) }
            multiDisk = disk64 != 0 || directoryDisk64 != 0 || entriesOnDisk64 != totalEntries64
            // Values beyond the file size are caught just below; clamp so Int conversion cannot trap.
            let ceiling = UInt64(Int.max)
            directory = CentralDirectory(
                offset: Int(min(directoryOffset64, ceiling)),
                size: Int(min(directorySize64, ceiling)),
                entryCount: Int(min(totalEntries64, ceiling)))
        }
        guard !multiDisk else { throw .multiDisk(offset: endOffset) }
        guard directory.offset <= bytes.count, directory.size <= bytes.count - directory.offset else {
            throw .centralDirectoryOutOfFile(offset: directory.offset, size: directory.size, fileSize: bytes.count)
        }
        return directory
    }

    static func readCentralDirectory(_ bytes: UnsafeRawBufferPointer, _ directory: CentralDirectory, limits: ZipLimits) throws(ZipError) -> [ZipEntry] {
        let recordSize = 46
        guard directory.entryCount <= directory.size / recordSize else {
            throw .tooManyEntries(count: directory.entryCount, centralDirectorySize: directory.size)
        }
        guard directory.entryCount <= limits.maximumEntries else {
            throw .entryLimitExceeded(count: directory.entryCount, limit: limits.maximumEntries)
        }
        let region = UnsafeRawBufferPointer(rebasing: bytes[directory.offset..<directory.offset + directory.size])
        var reader = ByteReader(region, base: directory.offset)
        var entries = [ZipEntry]()
        entries.reserveCapacity(directory.entryCount)
        for index in 0..<directory.entryCount {
            let recordOffset = reader.fileOffset
            let signature = reader.readInteger(UInt32.self) ?? 0
            guard signature == 0x0201_4b50 else { throw .centralEntryInvalid(index: index, offset: recordOffset, found: signature) }
            guard reader.skip(2 + 2),  // versions
                  let flags = reader.readInteger(UInt16.self),
                  let method = reader.readInteger(UInt16.self),
                  reader.skip(2 + 2),  // time, date
                  let crc = reader.readInteger(UInt32.self),
                  let compressed32 = reader.readInteger(UInt32.self),
                  let uncompressed32 = reader.readInteger(UInt32.self),
                  let nameLength = reader.readInteger(UInt16.self),
                  let extraLength = reader.readInteger(UInt16.self),
                  let commentLength = reader.readInteger(UInt16.self),
                  let diskStart16 = reader.readInteger(UInt16.self),
                  reader.skip(2 + 4),  // attributes
                  let localOffset32 = reader.readInteger(UInt32.self),
                  let nameBytes = reader.readBytes(Int(nameLength)),
                  let extra = reader.readBytes(Int(extraLength)),
                  reader.skip(Int(commentLength))
            else { throw .centralEntryTruncated(index: index, offset: recordOffset) }
            guard let name = String(validating: nameBytes, as: UTF8.self), isSafeEntryName(name) else {
                throw .badEntryName(name: String(decoding: nameBytes, as: UTF8.self), offset: recordOffset)
            }

            var uncompressed = UInt64(uncompressed32)
            var compressed = UInt64(compressed32)
            var localOffset = UInt64(localOffset32)
            var diskStart = UInt32(diskStart16)
            let needs = (uncompressed32 == 0xFFFF_FFFF, compressed32 == 0xFFFF_FFFF, localOffset32 == 0xFFFF_FFFF, diskStart16 == 0xFFFF)
            if needs.0 || needs.1 || needs.2 || needs.3 {
                // The ZIP64 extra field (id 1) holds, in this order, only the fields that overflowed.
                var values = zip64ExtraField(in: extra)
                func next(_ field: String) throws(ZipError) -> UInt64 {
                    guard var remaining = values, let value = remaining.readInteger(UInt64.self) else {
                        throw .zip64ExtraMissing(entry: name, field: field, offset: recordOffset)
                    }
                    values = remaining
                    return value
                }
                if needs.0 { uncompressed = try next("uncompressed size") }
                if needs.1 { compressed = try next("compressed size") }
                if needs.2 { localOffset = try next("local header offset") }
                if needs.3 {
                    guard var remaining = values, let value = remaining.readInteger(UInt32.self) else {
                        throw .zip64ExtraMissing(entry: name, field: "disk number", offset: recordOffset)
                    }
                    diskStart = value
                }
            }
            guard diskStart == 0 else { throw .multiDisk(offset: recordOffset) }
            let fileSize = UInt64(bytes.count)
            guard compressed <= fileSize, localOffset < fileSize else {
                throw .dataOutOfFile(entry: name, offset: Int(min(localOffset, UInt64(Int.max))),
                                     size: Int(min(compressed, UInt64(Int.max))), fileSize: bytes.count)
            }
            let methodKind: ZipEntry.Method = method == 0 ? .stored : method == 8 ? .deflated : .other(method)
            entries.append(ZipEntry(
                name: name, method: methodKind, flags: flags, crc32: crc,
                compressedSize: Int(compressed), uncompressedSize: Int(min(uncompressed, UInt64(Int.max))),
                localHeaderOffset: Int(localOffset), centralRecordOffset: recordOffset))
        }
        return entries
    }

    /// The payload of the ZIP64 extended information extra field (header id 0x0001), if present.
    static func zip64ExtraField(in extra: UnsafeRawBufferPointer) -> ByteReader? {
        var reader = ByteReader(extra)
        while let id = reader.readInteger(UInt16.self), let size = reader.readInteger(UInt16.self) {
            guard let payload = reader.readBytes(Int(size)) else { return nil }
            if id == 0x0001 { return ByteReader(payload) }
        }
        return nil
    }

    /// Refuses names that could escape a directory if someone extracted the archive: absolute
    /// paths, drive letters, and `..` components (with either slash).
    static func isSafeEntryName(_ name: String) -> Bool {
        guard !name.isEmpty, !name.hasPrefix("/"), !name.hasPrefix("\\"), !name.utf8.contains(0) else { return false }
        let scalars = Array(name.unicodeScalars.prefix(2))
        if scalars.count == 2, scalars[1] == ":", scalars[0].properties.isAlphabetic { return false }
        return !name.split(whereSeparator: { $0 == "/" || $0 == "\\" }).contains("..")
    }
}

extension ZipEntry {
    var methodCode: UInt16 {
        switch method {
        case .stored: return 0
        case .deflated: return 8
        case .other(let code): return code
        }
    }
}
