import BEATsCore

/// Constants of the native weight file (`Formats/NATIVE-FORMAT.md`): magic, version, alignment
/// and the limits every reader enforces.
public enum NativeFormat {
    /// The name `WeightStore.formatName` reports and `inspect --json` prints.
    public static let name = "beatsw"
    /// `\x89BEATSW\n`: the high byte catches 7-bit transfers, the newline catches CRLF conversion.
    public static let magic: [UInt8] = [0x89, 0x42, 0x45, 0x41, 0x54, 0x53, 0x57, 0x0A]
    public static let majorVersion: UInt16 = 1
    public static let minorVersion: UInt16 = 0
    /// What the converter records as the writing program.
    public static let converterName = "beats-swift 0.1.0"

    public static let preambleSize = 32
    public static let dataAlignment = 4096
    public static let tensorAlignment = 64

    public static let maxHeaderLength = 16 << 20
    public static let maxTensorCount = 65_536
    public static let maxRank = 8
    public static let maxDimension = 1 << 62
    public static let maxTensorNameLength = 1024
    public static let maxConfigEntries = 256
    public static let maxConfigKeyLength = 256
    public static let maxConfigStringLength = 4096
    public static let maxLabelCount = 100_000
    public static let maxMIDLength = 256
    public static let maxLabelNameLength = 1024
    public static let maxMetadataEntries = 4096
    public static let maxMetadataKeyLength = 256
    public static let maxMetadataValueLength = 65_536
    public static let maxConverterLength = 256
    public static let maxSourceNameLength = 4096

    /// The dtype codes of §4.
    public static let dtypeCodes: [(code: UInt8, dtype: DType)] = [
        (0, .float32), (1, .float16), (2, .bfloat16), (3, .float64), (4, .int64),
        (5, .int32), (6, .int16), (7, .int8), (8, .uint8), (9, .bool), (10, .qint8),
    ]

    public static func dtype(code: UInt8) -> DType? {
        dtypeCodes.first(where: { $0.code == code })?.dtype
    }

    public static func code(of dtype: DType) -> UInt8 {
        // Every DType has a code (the table covers DType.allCases; a test checks it).
        dtypeCodes.first(where: { $0.dtype == dtype })?.code ?? 0
    }

    /// `value` rounded up to a multiple of `alignment` (a power of two), nil on overflow.
    static func alignUp(_ value: Int, to alignment: Int) -> Int? {
        let (sum, overflow) = value.addingReportingOverflow(alignment - 1)
        guard !overflow else { return nil }
        return sum & ~(alignment - 1)
    }
}

/// Which part of a tensor a region holds: its values, or the float32 scales of a `qint8` tensor.
public enum TensorRegionKind: String, Sendable, Equatable {
    case data, scales
}

/// Everything that can be wrong with a native file. Each message says what and where (file offset
/// or tensor name), so the CLI's one `error:` line is enough to find the problem.
public enum NativeFormatError: Error, CustomStringConvertible, Equatable, Sendable {
    case fileTooSmall(size: Int)
    case badMagic
    case newerMajorVersion(found: UInt16, supported: UInt16)
    case unsupportedVersion(major: UInt16)
    case headerLengthOutOfRange(length: UInt64, limit: Int)
    case headerBeyondFile(headerEnd: UInt64, fileSize: Int)
    case headerChecksumMismatch(stored: UInt64, computed: UInt64)
    case headerTruncated(field: String, offset: Int)
    case limitExceeded(field: String, value: UInt64, limit: Int, offset: Int)
    case invalidUTF8(field: String, offset: Int)
    case unknownModelKind(String)
    case unknownConfigType(key: String, type: UInt8, offset: Int)
    case invalidConfig(String)
    case invalidBool(field: String, value: UInt8, offset: Int)
    case emptyTensorName(offset: Int)
    case duplicateTensorName(String)
    case unknownDType(tensor: String, code: UInt8)
    case dimensionTooLarge(tensor: String, shape: [UInt64])
    case lengthMismatch(tensor: String, region: TensorRegionKind, stored: UInt64, expected: Int)
    case quantizedRank(tensor: String, shape: [Int])
    case misaligned(tensor: String, region: TensorRegionKind, offset: UInt64)
    case beforeDataRegion(tensor: String, region: TensorRegionKind, offset: UInt64, dataStart: Int)
    case overlap(tensor: String, region: TensorRegionKind, offset: UInt64, previousEnd: Int)
    case pastEndOfFile(tensor: String, region: TensorRegionKind, end: UInt64, fileSize: Int)
    case trailingBytes(expectedEnd: Int, fileSize: Int)
    case checksumMismatch(tensor: String, region: TensorRegionKind, offset: Int, stored: UInt64, computed: UInt64)
    case notQuantized(tensor: String)

    public var description: String {
        func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16, uppercase: true) }
        switch self {
        case .fileTooSmall(let size):
            return "native file is \(size) bytes, shorter than its 32-byte preamble"
        case .badMagic:
            return "not a native BEATs file (magic \\x89BEATSW\\n missing at offset 0)"
        case .newerMajorVersion(let found, let supported):
            return "native file has major version \(found), newer than this reader's \(supported); update beats to read it"
        case .unsupportedVersion(let major):
            return "native file has unsupported major version \(major)"
        case .headerLengthOutOfRange(let length, let limit):
            return "header length \(length) at offset 16 is out of range (1...\(limit))"
        case .headerBeyondFile(let end, let size):
            return "header ends at offset \(end), beyond the end of the \(size)-byte file"
        case .headerChecksumMismatch(let stored, let computed):
            return "header checksum mismatch: stored \(hex(stored)) at offset 24, computed \(hex(computed)) (header corrupted)"
        case .headerTruncated(let field, let offset):
            return "header ends inside \(field) at offset \(offset)"
        case .limitExceeded(let field, let value, let limit, let offset):
            return "\(field) at offset \(offset) is \(value), over the limit of \(limit)"
        case .invalidUTF8(let field, let offset):
            return "\(field) at offset \(offset) is not valid UTF-8"
        case .unknownModelKind(let kind):
            return "unknown model kind '\(kind)' (expected pretrained, finetuned or tokenizer)"
        case .unknownConfigType(let key, let type, let offset):
            return "config '\(key)' at offset \(offset) has unknown value type \(type)"
        case .invalidConfig(let message):
            return "invalid config in header: \(message)"
        case .invalidBool(let field, let value, let offset):
            return "\(field) at offset \(offset) is \(value), not a bool (0 or 1)"
        case .emptyTensorName(let offset):
            return "tensor entry at offset \(offset) has an empty name"
        case .duplicateTensorName(let name):
            return "tensor '\(name)' appears twice in the tensor table"
        case .unknownDType(let tensor, let code):
            return "tensor '\(tensor)': unknown dtype code \(code)"
        case .dimensionTooLarge(let tensor, let shape):
            return "tensor '\(tensor)': shape \(shape) is too large"
        case .lengthMismatch(let tensor, let region, let stored, let expected):
            return "tensor '\(tensor)': \(region.rawValue) length \(stored) does not match its shape and dtype (\(expected) bytes)"
        case .quantizedRank(let tensor, let shape):
            return "tensor '\(tensor)': qint8 tensors must have rank 2, shape is \(shape)"
        case .misaligned(let tensor, let region, let offset):
            return "tensor '\(tensor)': \(region.rawValue) offset \(offset) is not a multiple of 64"
        case .beforeDataRegion(let tensor, let region, let offset, let start):
            return "tensor '\(tensor)': \(region.rawValue) offset \(offset) lies before the data region at \(start)"
        case .overlap(let tensor, let region, let offset, let previousEnd):
            return "tensor '\(tensor)': \(region.rawValue) at offset \(offset) overlaps the previous region, which ends at \(previousEnd)"
        case .pastEndOfFile(let tensor, let region, let end, let size):
            return "tensor '\(tensor)': \(region.rawValue) ends at offset \(end), past the end of the \(size)-byte file (truncated?)"
        case .trailingBytes(let end, let size):
            return "file is \(size) bytes but its last tensor ends at \(end)"
        case .checksumMismatch(let tensor, let region, let offset, let stored, let computed):
            return "tensor '\(tensor)': \(region.rawValue) checksum mismatch (stored \(hex(stored)), computed \(hex(computed))) in bytes from offset \(offset): the file is corrupted"
        case .notQuantized(let tensor):
            return "tensor '\(tensor)' is not quantized"
        }
    }
}
