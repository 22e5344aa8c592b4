import BEATsCore

/// A byte range of the file with its XXH64 checksum.
public struct NativeRegion: Sendable, Equatable {
    public var offset: Int
    public var length: Int
    public var checksum: UInt64

    public init(offset: Int, length: Int, checksum: UInt64) {
        self.offset = offset
        self.length = length
        self.checksum = checksum
    }

    public var end: Int { offset + length }
}

/// One row of the tensor table (§3.5).
public struct NativeTensorEntry: Sendable, Equatable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    public var data: NativeRegion
    /// The float32 per-row scales of a `qint8` tensor; nil for every other dtype.
    public var scales: NativeRegion?

    public init(name: String, dtype: DType, shape: [Int], data: NativeRegion, scales: NativeRegion? = nil) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.data = data
        self.scales = scales
    }

    public var elementCount: Int { shape.reduce(1, *) }
    /// Bytes in the file: data plus scales.
    public var storedBytes: Int { data.length + (scales?.length ?? 0) }
}

/// A free-form metadata entry (§3.4).
public struct NativeMetadataItem: Sendable, Equatable {
    public var key: String
    public var value: String

    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}

/// The preamble and header block of a native file: what the model is and where its tensors are.
public struct NativeHeader: Sendable, Equatable {
    public var majorVersion: UInt16 = NativeFormat.majorVersion
    public var minorVersion: UInt16 = NativeFormat.minorVersion
    public var kind: ModelKind
    public var converter: String
    public var sourceName: String
    /// 32 bytes; all zero when unknown.
    public var sourceSHA256: [UInt8]
    public var config: BEATsConfig
    public var labels: [AudioSetLabel]
    public var metadata: [NativeMetadataItem]
    public var tensors: [NativeTensorEntry]

    public init(kind: ModelKind, converter: String = NativeFormat.converterName, sourceName: String = "",
                sourceSHA256: [UInt8] = [UInt8](repeating: 0, count: 32), config: BEATsConfig,
                labels: [AudioSetLabel] = [], metadata: [NativeMetadataItem] = [], tensors: [NativeTensorEntry] = []) {
        self.kind = kind
        self.converter = converter
        self.sourceName = sourceName
        self.sourceSHA256 = sourceSHA256
        self.config = config
        self.labels = labels
        self.metadata = metadata
        self.tensors = tensors
    }

    /// Where the data region starts for a header block of `length` bytes.
    public static func dataStart(headerLength: Int) -> Int {
        NativeFormat.alignUp(NativeFormat.preambleSize + headerLength, to: NativeFormat.dataAlignment) ?? Int.max
    }

    // MARK: Encoding

    /// The header block's bytes (§3). Its length depends only on names, shapes, strings and
    /// counts, never on offsets or checksums, so a writer can size it before writing any data.
    public func encodedBlock() -> [UInt8] {
        var out: [UInt8] = []
        func u8(_ value: UInt8) { out.append(value) }
        func u32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) } }
        func u64(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) } }
        func string(_ value: String) {
            let bytes = Array(value.utf8)
            u32(UInt32(truncatingIfNeeded: bytes.count))
            out.append(contentsOf: bytes)
        }
        string(kind.rawValue)
        string(converter)
        string(sourceName)
        out.append(contentsOf: (sourceSHA256 + [UInt8](repeating: 0, count: 32)).prefix(32))
        let configValues = config.values
        u32(UInt32(configValues.count))
        for (key, value) in configValues {
            string(key)
            switch value {
            case .int(let number): u8(0); u64(UInt64(bitPattern: Int64(number)))
            case .double(let number): u8(1); u64(number.bitPattern)
            case .bool(let flag): u8(2); u8(flag ? 1 : 0)
            case .string(let text): u8(3); string(text)
            }
        }
        u32(UInt32(labels.count))
        for label in labels {
            u32(UInt32(truncatingIfNeeded: label.index))
            string(label.mid)
            string(label.name)
        }
        u32(UInt32(metadata.count))
        for item in metadata {
            string(item.key)
            string(item.value)
        }
        u32(UInt32(tensors.count))
        for tensor in tensors {
            string(tensor.name)
            u8(NativeFormat.code(of: tensor.dtype))
            u8(UInt8(truncatingIfNeeded: tensor.shape.count))
            for size in tensor.shape { u64(UInt64(size)) }
            u64(UInt64(tensor.data.offset))
            u64(UInt64(tensor.data.length))
            u64(tensor.data.checksum)
            if tensor.dtype == .qint8 {
                let scales = tensor.scales ?? NativeRegion(offset: 0, length: 0, checksum: 0)
                u64(UInt64(scales.offset))
                u64(UInt64(scales.length))
                u64(scales.checksum)
            }
        }
        return out
    }

    /// Preamble plus header block: the first `32 + H` bytes of the file.
    public func encodedPrefix() -> [UInt8] {
        let block = encodedBlock()
        var out = NativeFormat.magic
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) } }
        append(majorVersion)
        append(minorVersion)
        append(UInt32(0))
        append(UInt64(block.count))
        append(block.withUnsafeBytes { XXHash64.hash($0) })
        out.append(contentsOf: block)
        return out
    }

    // MARK: Decoding

    /// Parses and validates preamble, header block and tensor layout of a whole file (§7),
    /// reading only the first `32 + H` bytes.
    public static func decode(file bytes: UnsafeRawBufferPointer) throws(NativeFormatError) -> NativeHeader {
        let fileSize = bytes.count
        guard fileSize >= NativeFormat.preambleSize else { throw .fileTooSmall(size: fileSize) }
        guard Array(UnsafeRawBufferPointer(rebasing: bytes[0..<8])) == NativeFormat.magic else { throw .badMagic }
        let major = bytes.loadInteger(UInt16.self, at: 8) ?? 0
        let minor = bytes.loadInteger(UInt16.self, at: 10) ?? 0
        guard major <= NativeFormat.majorVersion else {
            throw .newerMajorVersion(found: major, supported: NativeFormat.majorVersion)
        }
        guard major == NativeFormat.majorVersion else { throw .unsupportedVersion(major: major) }
        let headerLength = bytes.loadInteger(UInt64.self, at: 16) ?? 0
        guard headerLength >= 1, headerLength <= UInt64(NativeFormat.maxHeaderLength) else {
            throw .headerLengthOutOfRange(length: headerLength, limit: NativeFormat.maxHeaderLength)
        }
        let headerEnd = NativeFormat.preambleSize + Int(headerLength)
        guard headerEnd <= fileSize else { throw .headerBeyondFile(headerEnd: UInt64(headerEnd), fileSize: fileSize) }
        let block = UnsafeRawBufferPointer(rebasing: bytes[NativeFormat.preambleSize..<headerEnd])
        let storedChecksum = bytes.loadInteger(UInt64.self, at: 24) ?? 0
        let computedChecksum = XXHash64.hash(block)
        guard storedChecksum == computedChecksum else {
            throw .headerChecksumMismatch(stored: storedChecksum, computed: computedChecksum)
        }

        var reader = HeaderFieldReader(ByteReader(block, base: NativeFormat.preambleSize))
        let kindName = try reader.string("model kind", limit: 64)
        guard let kind = ModelKind(rawValue: kindName) else { throw .unknownModelKind(kindName) }
        let converter = try reader.string("converter", limit: NativeFormat.maxConverterLength)
        let sourceName = try reader.string("source name", limit: NativeFormat.maxSourceNameLength)
        let digest = try reader.bytes("source SHA-256", count: 32)

        let configCount = try reader.count("config count", limit: NativeFormat.maxConfigEntries)
        var configValues: [String: ConfigScalar] = [:]
        for _ in 0..<configCount {
            let key = try reader.string("config key", limit: NativeFormat.maxConfigKeyLength)
            let typeOffset = reader.offset
            switch try reader.u8("config '\(key)' type") {
            case 0: configValues[key] = .int(Int(Int64(bitPattern: try reader.u64("config '\(key)'"))))
            case 1: configValues[key] = .double(Double(bitPattern: try reader.u64("config '\(key)'")))
            case 2: configValues[key] = .bool(try reader.bool("config '\(key)'"))
            case 3: configValues[key] = .string(try reader.string("config '\(key)'", limit: NativeFormat.maxConfigStringLength))
            case let type: throw .unknownConfigType(key: key, type: type, offset: typeOffset)
            }
        }
        let config: BEATsConfig
        do { config = try BEATsConfig(values: configValues) } catch { throw .invalidConfig(error.description) }

        let labelCount = try reader.count("label count", limit: NativeFormat.maxLabelCount)
        var labels: [AudioSetLabel] = []
        labels.reserveCapacity(labelCount)
        for _ in 0..<labelCount {
            let index = Int(try reader.u32("label index"))
            let mid = try reader.string("label MID", limit: NativeFormat.maxMIDLength)
            let name = try reader.string("label name", limit: NativeFormat.maxLabelNameLength)
            labels.append(AudioSetLabel(index: index, mid: mid, name: name))
        }

        let metadataCount = try reader.count("metadata count", limit: NativeFormat.maxMetadataEntries)
        var metadata: [NativeMetadataItem] = []
        for _ in 0..<metadataCount {
            let key = try reader.string("metadata key", limit: NativeFormat.maxMetadataKeyLength)
            let value = try reader.string("metadata '\(key)'", limit: NativeFormat.maxMetadataValueLength)
            metadata.append(NativeMetadataItem(key: key, value: value))
        }

        let dataStart = dataStart(headerLength: Int(headerLength))
        let tensorCount = try reader.count("tensor count", limit: NativeFormat.maxTensorCount)
        var tensors: [NativeTensorEntry] = []
        tensors.reserveCapacity(tensorCount)
        var seen = Set<String>()
        seen.reserveCapacity(tensorCount)
        var previousEnd = dataStart
        for _ in 0..<tensorCount {
            let nameOffset = reader.offset
            let name = try reader.string("tensor name", limit: NativeFormat.maxTensorNameLength)
            guard !name.isEmpty else { throw .emptyTensorName(offset: nameOffset) }
            guard seen.insert(name).inserted else { throw .duplicateTensorName(name) }
            let code = try reader.u8("dtype of '\(name)'")
            guard let dtype = NativeFormat.dtype(code: code) else { throw .unknownDType(tensor: name, code: code) }
            let rankOffset = reader.offset
            let rank = try reader.u8("rank of '\(name)'")
            guard Int(rank) <= NativeFormat.maxRank else {
                throw .limitExceeded(field: "rank of '\(name)'", value: UInt64(rank), limit: NativeFormat.maxRank, offset: rankOffset)
            }
            var rawShape: [UInt64] = []
            for _ in 0..<rank { rawShape.append(try reader.u64("shape of '\(name)'")) }
            guard rawShape.allSatisfy({ $0 < UInt64(NativeFormat.maxDimension) }),
                  let elementCount = checkedProduct(rawShape.map { Int($0) }),
                  let expectedLength = checkedProduct([elementCount, dtype.byteWidth])
            else { throw .dimensionTooLarge(tensor: name, shape: rawShape) }
            let shape = rawShape.map { Int($0) }
            let data = try reader.region(of: name, .data, expectedLength: expectedLength, fileSize: fileSize)
            try validate(data, of: name, .data, after: &previousEnd, fileSize: fileSize, dataStart: dataStart)
            var scales: NativeRegion?
            if dtype == .qint8 {
                guard shape.count == 2, let scalesLength = checkedProduct([shape[0], 4]) else {
                    throw .quantizedRank(tensor: name, shape: shape)
                }
                let region = try reader.region(of: name, .scales, expectedLength: scalesLength, fileSize: fileSize)
                try validate(region, of: name, .scales, after: &previousEnd, fileSize: fileSize, dataStart: dataStart)
                scales = region
            }
            tensors.append(NativeTensorEntry(name: name, dtype: dtype, shape: shape, data: data, scales: scales))
        }
        // Bytes after the tensor table belong to later minor versions (§3.6): skipped.
        guard fileSize == previousEnd else { throw .trailingBytes(expectedEnd: previousEnd, fileSize: fileSize) }

        var header = NativeHeader(kind: kind, converter: converter, sourceName: sourceName, sourceSHA256: Array(digest),
                                  config: config, labels: labels, metadata: metadata, tensors: tensors)
        header.majorVersion = major
        header.minorVersion = minor
        return header
    }

    private static func validate(_ region: NativeRegion, of name: String, _ kind: TensorRegionKind, after previousEnd: inout Int,
                                 fileSize: Int, dataStart: Int) throws(NativeFormatError) {
        let offset = UInt64(region.offset)
        guard region.offset % NativeFormat.tensorAlignment == 0 else { throw .misaligned(tensor: name, region: kind, offset: offset) }
        guard region.offset >= dataStart else {
            throw .beforeDataRegion(tensor: name, region: kind, offset: offset, dataStart: dataStart)
        }
        guard region.offset >= previousEnd else { throw .overlap(tensor: name, region: kind, offset: offset, previousEnd: previousEnd) }
        guard region.offset <= fileSize, region.length <= fileSize - region.offset else {
            throw .pastEndOfFile(tensor: name, region: kind, end: offset &+ UInt64(region.length), fileSize: fileSize)
        }
        previousEnd = region.end
    }
}

/// Reads header fields with a bounded cursor; every failure names the field and file offset.
private struct HeaderFieldReader {
    var reader: ByteReader

    init(_ reader: ByteReader) { self.reader = reader }

    var offset: Int { reader.fileOffset }

    mutating func u8(_ field: @autoclosure () -> String) throws(NativeFormatError) -> UInt8 {
        guard let value = reader.readUInt8() else { throw .headerTruncated(field: field(), offset: offset) }
        return value
    }

    mutating func u32(_ field: @autoclosure () -> String) throws(NativeFormatError) -> UInt32 {
        guard let value = reader.readInteger(UInt32.self) else { throw .headerTruncated(field: field(), offset: offset) }
        return value
    }

    mutating func u64(_ field: @autoclosure () -> String) throws(NativeFormatError) -> UInt64 {
        guard let value = reader.readInteger(UInt64.self) else { throw .headerTruncated(field: field(), offset: offset) }
        return value
    }

    mutating func bool(_ field: @autoclosure () -> String) throws(NativeFormatError) -> Bool {
        let at = offset
        let value = try u8(field())
        guard value <= 1 else { throw .invalidBool(field: field(), value: value, offset: at) }
        return value == 1
    }

    mutating func bytes(_ field: @autoclosure () -> String, count: Int) throws(NativeFormatError) -> UnsafeRawBufferPointer {
        guard let value = reader.readBytes(count) else { throw .headerTruncated(field: field(), offset: offset) }
        return value
    }

    /// A u32 count, checked against its limit before anything is allocated for it.
    mutating func count(_ field: @autoclosure () -> String, limit: Int) throws(NativeFormatError) -> Int {
        let at = offset
        let value = try u32(field())
        guard Int(value) <= limit else { throw .limitExceeded(field: field(), value: UInt64(value), limit: limit, offset: at) }
        return Int(value)
    }

    mutating func string(_ field: @autoclosure () -> String, limit: Int) throws(NativeFormatError) -> String {
        let length = try count("length of \(field())", limit: limit)
        let at = offset
        guard let raw = reader.readBytes(length) else { throw .headerTruncated(field: field(), offset: at) }
        guard let text = String(validating: raw, as: UTF8.self) else { throw .invalidUTF8(field: field(), offset: at) }
        return text
    }

    mutating func region(of name: String, _ kind: TensorRegionKind, expectedLength: Int, fileSize: Int) throws(NativeFormatError) -> NativeRegion {
        let offset = try u64("\(kind.rawValue) offset of '\(name)'")
        let length = try u64("\(kind.rawValue) length of '\(name)'")
        let checksum = try u64("\(kind.rawValue) checksum of '\(name)'")
        guard length == UInt64(expectedLength) else {
            throw .lengthMismatch(tensor: name, region: kind, stored: length, expected: expectedLength)
        }
        guard offset <= UInt64(Int.max) else {
            throw .pastEndOfFile(tensor: name, region: kind, end: offset, fileSize: fileSize)
        }
        return NativeRegion(offset: Int(offset), length: expectedLength, checksum: checksum)
    }
}
