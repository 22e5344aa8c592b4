import BEATsCore

/// What is wrong with a PyTorch checkpoint above the container level, and where.
///
/// Container and pickle problems keep their own types (``ZipError``, ``PickleError``,
/// `TensorError`, `FileAccessError`), which already name entries and offsets; this enum covers
/// the checkpoint's structure: which records exist, how the legacy stream is framed, and what
/// the BEATs view expects of `cfg`, `model` and `label_dict`.
public enum CheckpointError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The first bytes are neither a zip archive nor a pickle.
    case notACheckpoint(path: String, firstBytes: [UInt8])
    /// The zip archive has no `<prefix>/data.pkl`.
    case missingDataPickle(entryCount: Int)
    /// `data.pkl` declares more bytes than ``PyTorchCheckpoint/Limits/maximumPickleBytes``.
    case pickleTooLarge(entry: String, declared: Int, limit: Int)
    /// More than one `<prefix>/data.pkl`: which one torch would read is ambiguous.
    case ambiguousDataPickle([String])
    /// `byteorder` holds something other than `little` or `big`.
    case invalidByteOrder(entry: String, value: String)
    /// A tensor names a storage record that the archive (or legacy stream) does not have.
    case missingRecord(tensor: String, record: String)
    /// A record holds fewer bytes than its storage's `numel × element size`.
    case recordTooShort(tensor: String, record: String, neededBytes: Int, recordBytes: Int)
    /// A tensor with more elements than its storage holds (a broadcast view: stride 0 along an
    /// axis). Reading its values would allocate what the file only claims.
    case viewLargerThanStorage(tensor: String, elementCount: Int, storageElements: Int)
    /// One storage key used with two element types.
    case conflictingStorageTypes(record: String, first: DType, second: DType)
    /// The pickle's top level is not a dict (or `model` is not a dict).
    case notAStateDict(found: String, offset: Int)
    /// A known `cfg` key whose value is not a scalar.
    case configValue(key: String, found: String, offset: Int)
    /// A `label_dict` index appears with two MIDs, or is negative.
    case invalidLabel(index: Int, offset: Int)
    /// Legacy stream: the first pickle is not torch's magic number.
    case legacyMagic(offset: Int, found: String)
    /// Legacy stream: the second pickle is not protocol version 1001.
    case legacyProtocol(offset: Int, found: String)
    /// Legacy stream: the storage key list is not a list of str, or repeats a key.
    case legacyKeyList(offset: Int, reason: String)
    /// Legacy stream: a storage's element count does not fit in what remains of the file.
    case legacyStorageBeyondFile(key: String, offset: Int, elementCount: Int64, elementBytes: Int, remaining: Int)
    /// Legacy stream: a listed storage is never used by a tensor, so its element size is unknown.
    case legacyStorageUntyped(key: String, offset: Int)

    public var description: String {
        switch self {
        case .notACheckpoint(let path, let bytes):
            let hex = bytes.prefix(8).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: " ")
            return "\(path): not a PyTorch checkpoint (first bytes: \(hex.isEmpty ? "none, the file is empty" : hex))"
        case .missingDataPickle(let count):
            return "checkpoint: no '<prefix>/data.pkl' among the archive's \(count) entries"
        case .pickleTooLarge(let entry, let declared, let limit):
            return "checkpoint: '\(entry)' declares \(declared) bytes, more than the \(limit) a pickle may have (official checkpoints' are tens of KB)"
        case .ambiguousDataPickle(let names):
            return "checkpoint: several data pickles (\(names.prefix(4).joined(separator: ", ")))"
        case .invalidByteOrder(let entry, let value):
            return "checkpoint: '\(entry)' says '\(value)', expected 'little' or 'big'"
        case .missingRecord(let tensor, let record):
            return "checkpoint: tensor '\(tensor)' needs record '\(record)', which is missing"
        case .recordTooShort(let tensor, let record, let needed, let have):
            return "checkpoint: tensor '\(tensor)': record '\(record)' holds \(have) bytes, its storage needs \(needed)"
        case .viewLargerThanStorage(let tensor, let count, let storageElements):
            return "checkpoint: tensor '\(tensor)' has \(count) elements but its storage holds \(storageElements) (a broadcast view; views may not be larger than their storage)"
        case .conflictingStorageTypes(let record, let first, let second):
            return "checkpoint: record '\(record)' is used as both \(first.rawValue) and \(second.rawValue)"
        case .notAStateDict(let found, let offset):
            return "checkpoint: expected a dict of tensors, found \(found) (made at offset \(offset))"
        case .configValue(let key, let found, let offset):
            return "checkpoint: cfg '\(key)' is a \(found), not a number, bool or str (offset \(offset))"
        case .invalidLabel(let index, let offset):
            return "checkpoint: label_dict index \(index) is negative or repeated (offset \(offset))"
        case .legacyMagic(let offset, let found):
            return "legacy checkpoint: expected magic number 0x1950a86a20f9469cfc6c at offset \(offset), found \(found)"
        case .legacyProtocol(let offset, let found):
            return "legacy checkpoint: expected protocol version 1001 at offset \(offset), found \(found)"
        case .legacyKeyList(let offset, let reason):
            return "legacy checkpoint: storage key list at offset \(offset): \(reason)"
        case .legacyStorageBeyondFile(let key, let offset, let count, let width, let remaining):
            return "legacy checkpoint: storage '\(key)' at offset \(offset) claims \(count) elements of \(width) bytes, but only \(remaining) bytes remain"
        case .legacyStorageUntyped(let key, let offset):
            return "legacy checkpoint: storage '\(key)' at offset \(offset) is listed but no tensor uses it"
        }
    }
}
