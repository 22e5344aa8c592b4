import BEATsCore

/// One storage a checkpoint's pickle refers to through a persistent id: which record holds its
/// bytes, their element type, and how many elements torch says it has.
public struct TorchStorageReference: Sendable, Hashable {
    /// The record's key: `data/<key>` in a zip checkpoint; the storage's id in the legacy
    /// stream's key list.
    public var key: String
    /// Element type, from the storage class (`torch.FloatStorage` → float32).
    public var dtype: DType
    /// Device it was saved from (`cpu`, `cuda:0`); the bytes are the same either way.
    public var location: String
    /// Elements torch recorded for the storage (the record must hold `elementCount × dtype.byteWidth` bytes).
    public var elementCount: Int
    /// Legacy stream only: the storage is a view into another storage (torch < 0.4).
    public var legacyView: LegacyStorageView?

    public init(key: String, dtype: DType, location: String, elementCount: Int, legacyView: LegacyStorageView? = nil) {
        self.key = key
        self.dtype = dtype
        self.location = location
        self.elementCount = elementCount
        self.legacyView = legacyView
    }

    /// The `view_metadata` of a legacy persistent id: this storage is elements
    /// `[elementOffset, elementOffset + elementCount)` of the root storage `key`, and later
    /// references name it `viewKey`.
    public struct LegacyStorageView: Sendable, Hashable {
        public var viewKey: String
        public var elementOffset: Int
        public var elementCount: Int

        public init(viewKey: String, elementOffset: Int, elementCount: Int) {
            self.viewKey = viewKey
            self.elementOffset = elementOffset
            self.elementCount = elementCount
        }
    }

    /// Decodes torch's persistent id for a storage, the tuple `persistent_id` writes:
    /// - zip checkpoints: `('storage', storage_class, key: str, location: str, numel: int)`;
    /// - the legacy stream: `('storage', storage_class, root_key, location, numel, view_metadata)`
    ///   where `view_metadata` is None or `(view_key, offset, view_size)`.
    ///
    /// Keys and locations longer than ``maxFieldLength`` bytes are refused.
    ///
    /// This is the default ``PickleMachine`` persistent loader; callers that need to check the
    /// key (that `data/<key>` exists) call it and then check.
    /// Longest key, location or view key accepted, in UTF-8 bytes.
    public static let maxFieldLength = 256

    public init(persistentID: PickleNodeID, in object: PickleObject) throws(PickleError) {
        let at = object.location(of: persistentID)
        guard let fields = object.items(of: persistentID), object.kind(of: persistentID) == .tuple else {
            throw .invalidPersistentID("expected a tuple, found \(object.typeName(of: persistentID))", at: at)
        }
        guard fields.count == 5 || fields.count == 6 else {
            throw .invalidPersistentID("expected 5 or 6 fields, found \(fields.count)", at: at)
        }
        guard object.string(of: fields[0]) == "storage" else {
            throw .invalidPersistentID("only 'storage' ids are data, found \(object.summary(of: fields[0], maxLength: 40))", at: at)
        }
        guard case .storageClass(let dtype)? = object.global(of: fields[1]) else {
            throw .invalidPersistentID("expected a storage class, found \(object.summary(of: fields[1], maxLength: 60))", at: at)
        }
        guard let key = object.string(of: fields[2]) else {
            throw .invalidPersistentID("storage key is a \(object.typeName(of: fields[2])), not a str", at: at)
        }
        guard let location = object.string(of: fields[3]) else {
            throw .invalidPersistentID("storage location is a \(object.typeName(of: fields[3])), not a str", at: at)
        }
        // torch's keys are decimal numbers and locations device names. Bounding them keeps the
        // callers' lookups by key cheap even when the memo repeats one string many times.
        guard key.utf8.count <= TorchStorageReference.maxFieldLength, location.utf8.count <= TorchStorageReference.maxFieldLength else {
            throw .invalidPersistentID("storage key or location longer than \(TorchStorageReference.maxFieldLength) bytes", at: at)
        }
        guard let count = object.integer(of: fields[4]), count >= 0 else {
            throw .invalidPersistentID("storage size \(object.summary(of: fields[4], maxLength: 40)) is not a non-negative int", at: at)
        }
        var view: LegacyStorageView?
        if fields.count == 6, object.kind(of: fields[5]) != .none {
            guard let parts = object.items(of: fields[5]), parts.count == 3,
                  let viewKey = object.string(of: parts[0]), viewKey.utf8.count <= TorchStorageReference.maxFieldLength,
                  let offset = object.integer(of: parts[1]), offset >= 0,
                  let size = object.integer(of: parts[2]), size >= 0
            else {
                throw .invalidPersistentID("view metadata is not (str, int, int): \(object.summary(of: fields[5], maxLength: 60))", at: at)
            }
            view = LegacyStorageView(viewKey: viewKey, elementOffset: offset, elementCount: size)
        }
        self.init(key: key, dtype: dtype, location: location, elementCount: count, legacyView: view)
    }
}

/// What `torch._utils._rebuild_tensor_v2` (or `_rebuild_parameter`) would have made, as data: a
/// strided view of a storage. Offsets, sizes and strides are in elements, all checked to be
/// non-negative ints; whether the view fits its storage is checked when the bytes are mapped.
public struct TorchTensorRecord: Sendable, Hashable {
    public var storage: TorchStorageReference
    public var storageOffset: Int
    public var shape: [Int]
    public var stride: [Int]
    public var requiresGrad: Bool
    /// Made by `_rebuild_parameter` (an `nn.Parameter`) rather than a plain tensor.
    public var isParameter: Bool

    public init(storage: TorchStorageReference, storageOffset: Int, shape: [Int], stride: [Int],
                requiresGrad: Bool = false, isParameter: Bool = false) {
        self.storage = storage
        self.storageOffset = storageOffset
        self.shape = shape
        self.stride = stride
        self.requiresGrad = requiresGrad
        self.isParameter = isParameter
    }

    public var dtype: DType { storage.dtype }
}
