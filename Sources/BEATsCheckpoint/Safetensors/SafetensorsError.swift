import BEATsCore

/// What is wrong with a safetensors file (or the config beside it), and where.
public enum SafetensorsError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Fewer than the 8 bytes of the header length.
    case tooShort(path: String, fileSize: Int)
    /// The header length is 0, above ``SafetensorsFile/Limits/maximumHeaderBytes``, or runs past the end of the file.
    case headerLength(path: String, declared: UInt64, fileSize: Int, limit: Int)
    /// The header is not JSON, or breaks one of ``JSONReader``'s rules (offset in the file).
    case invalidHeader(path: String, JSONError)
    /// The header's JSON is valid but not what safetensors describes (`where` names the entry).
    case schema(path: String, entry: String, reason: String)
    /// More tensors than ``SafetensorsFile/Limits/maximumTensors``.
    case tooManyTensors(path: String, count: Int, limit: Int)
    /// A dtype safetensors defines but BEATs weights never use (`U16`, `F8_E4M3`, …), or one it does not define.
    case unsupportedDType(path: String, tensor: String, dtype: String, known: Bool)
    /// `data_offsets` whose end is before their start, or whose length is not elements × width.
    case badOffsets(path: String, tensor: String, begin: Int, end: Int, expectedLength: Int?)
    /// Two tensors whose byte ranges overlap.
    case overlap(path: String, tensor: String, other: String)
    /// Bytes of the data buffer no tensor covers (the format has no holes), at data offset `from`.
    case gap(path: String, from: Int, to: Int)
    /// A tensor ending past the data buffer's end (data offsets relative to the buffer).
    case beyondData(path: String, tensor: String, end: Int, dataLength: Int)
    /// The config (`config.json` beside the file, or the header's `__metadata__`) is unreadable or malformed.
    case config(source: String, reason: String)

    public var description: String {
        switch self {
        case .tooShort(let path, let size):
            return "\(path): safetensors file of \(size) bytes is shorter than its 8-byte header length"
        case .headerLength(let path, let declared, let size, let limit):
            return "\(path): safetensors header length \(declared) is out of range (1 to \(limit) bytes, within the file's \(size) bytes after offset 8)"
        case .invalidHeader(let path, let error):
            return "\(path): safetensors header: \(error)"
        case .schema(let path, let entry, let reason):
            return "\(path): safetensors header entry '\(entry)': \(reason)"
        case .tooManyTensors(let path, let count, let limit):
            return "\(path): safetensors header lists \(count) tensors, more than the limit of \(limit)"
        case .unsupportedDType(let path, let tensor, let dtype, let known):
            return "\(path): tensor '\(tensor)' has dtype '\(dtype)'" + (known ? ", which BEATs weights never use" : ", not a safetensors dtype")
        case .badOffsets(let path, let tensor, let begin, let end, let expected):
            let need = expected.map { ", its dtype and shape need \($0) bytes" } ?? ""
            return "\(path): tensor '\(tensor)' has data_offsets [\(begin), \(end)]\(need)"
        case .overlap(let path, let tensor, let other):
            return "\(path): tensors '\(other)' and '\(tensor)' overlap in the data buffer"
        case .gap(let path, let from, let to):
            return "\(path): data bytes \(from)..<\(to) belong to no tensor (safetensors data has no holes)"
        case .beyondData(let path, let tensor, let end, let length):
            return "\(path): tensor '\(tensor)' ends at data offset \(end), past the data's \(length) bytes"
        case .config(let source, let reason):
            return "\(source): \(reason)"
        }
    }
}
