import BEATsCore

/// The globals a data-only pickle may name: data constructors torch.save and Python's pickler
/// emit for checkpoints. Resolved when GLOBAL/STACK_GLOBAL is read; any other name is a
/// ``PickleError/forbiddenGlobal(_:at:)`` at that opcode, so nothing after it runs. None of them
/// is ever called: REDUCE on one of them builds a data value in the arena.
public enum PickleGlobal: Sendable, Hashable {
    /// `collections.OrderedDict` (the type of every `state_dict`).
    case orderedDict
    /// `torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])`.
    case rebuildTensorV2
    /// `torch._utils._rebuild_tensor(storage, storage_offset, size, stride)` (torch before 1.0).
    case rebuildTensor
    /// `torch._utils._rebuild_parameter(data, requires_grad, backward_hooks)`.
    case rebuildParameter
    /// `torch._utils._rebuild_parameter_with_state(data, requires_grad, backward_hooks, state)`.
    case rebuildParameterWithState
    /// `torch.FloatStorage` and its siblings: only a marker carrying the element type inside a
    /// persistent id.
    case storageClass(DType)
    /// `torch.float32` and the other dtypes torch pickles by name.
    case dtype(DType)
    /// `torch.Size` (a tuple of ints).
    case torchSize
    /// `_codecs.encode(text, "latin1")`: how protocol 2 pickles Python 3 `bytes`.
    case codecsEncode
    /// `builtins.set` / `__builtin__.set`: how protocols 2–3 pickle a set.
    case set
    /// `builtins.frozenset` / `__builtin__.frozenset`.
    case frozenSet
    /// `builtins.bytearray` / `__builtin__.bytearray`: how protocols 2–4 pickle a bytearray.
    case byteArray

    /// Resolves `module.name` against the allowlist; nil for everything else.
    public init?(module: String, name: String) {
        switch (module, name) {
        case ("collections", "OrderedDict"): self = .orderedDict
        case ("torch._utils", "_rebuild_tensor_v2"): self = .rebuildTensorV2
        case ("torch._utils", "_rebuild_tensor"): self = .rebuildTensor
        case ("torch._utils", "_rebuild_parameter"): self = .rebuildParameter
        case ("torch._utils", "_rebuild_parameter_with_state"): self = .rebuildParameterWithState
        case ("torch", "Size"): self = .torchSize
        case ("_codecs", "encode"): self = .codecsEncode
        case ("builtins", "set"), ("__builtin__", "set"): self = .set
        case ("builtins", "frozenset"), ("__builtin__", "frozenset"): self = .frozenSet
        case ("builtins", "bytearray"), ("__builtin__", "bytearray"): self = .byteArray
        // torch before 1.0 named CUDA storages `torch.cuda.FloatStorage`; the bytes on disk are
        // the same, and the class is only a marker here.
        case ("torch", _), ("torch.cuda", _):
            if let dtype = PickleGlobal.storageClassTypes[name] {
                self = .storageClass(dtype)
            } else if module == "torch", let dtype = DType(rawValue: name), dtype != .qint8 {
                self = .dtype(dtype)
            } else {
                return nil
            }
        default: return nil
        }
    }

    /// `module.name` as Python spells it (storage classes without the `cuda` variant).
    public var qualifiedName: String {
        switch self {
        case .orderedDict: "collections.OrderedDict"
        case .rebuildTensorV2: "torch._utils._rebuild_tensor_v2"
        case .rebuildTensor: "torch._utils._rebuild_tensor"
        case .rebuildParameter: "torch._utils._rebuild_parameter"
        case .rebuildParameterWithState: "torch._utils._rebuild_parameter_with_state"
        case .storageClass(let dtype): "torch.\(PickleGlobal.storageClassName(for: dtype))"
        case .dtype(let dtype): "torch.\(dtype.rawValue)"
        case .torchSize: "torch.Size"
        case .codecsEncode: "_codecs.encode"
        case .set: "builtins.set"
        case .frozenSet: "builtins.frozenset"
        case .byteArray: "builtins.bytearray"
        }
    }

    /// torch's legacy storage class names and the element type each one holds.
    static let storageClassTypes: [String: DType] = [
        "FloatStorage": .float32, "DoubleStorage": .float64, "HalfStorage": .float16,
        "BFloat16Storage": .bfloat16, "LongStorage": .int64, "IntStorage": .int32,
        "ShortStorage": .int16, "CharStorage": .int8, "ByteStorage": .uint8, "BoolStorage": .bool,
    ]

    static func storageClassName(for dtype: DType) -> String {
        storageClassTypes.first { $0.value == dtype }?.key ?? "\(dtype.rawValue)Storage"
    }
}
