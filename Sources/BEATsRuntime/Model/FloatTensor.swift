import BEATsCore

/// A float32 weight the forward pass reads through a raw pointer.
///
/// When the file already holds the tensor as contiguous little-endian float32 at a 4-byte aligned
/// address (PyTorch zip records and native files do), the pointer points into the file's memory
/// map and nothing is copied. Anything else (float16, bfloat16, float64, strided views,
/// big-endian storages, dequantized int8) is converted once, at load, into a 64-byte aligned
/// buffer this object owns.
final class FloatTensor: @unchecked Sendable {
    let name: String
    let shape: [Int]
    let pointer: UnsafePointer<Float>
    let count: Int
    /// True when `pointer` points into the weight file itself.
    let isInPlace: Bool
    /// Keeps the bytes behind `pointer` alive: the file's storage owner or our own buffer.
    private let owner: AnyObject

    /// Wraps `view` in place when possible, else converts it into an owned buffer.
    init(_ view: TensorView) throws {
        guard view.dtype.isFloatingPoint || view.dtype == .qint8 else {
            throw ModelError.unsupportedDType(tensor: view.name, dtype: view.dtype)
        }
        name = view.name
        shape = view.shape
        count = view.elementCount
        if view.dtype == .float32, let bytes = view.contiguousBytes, let base = bytes.baseAddress,
           Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 {
            pointer = base.assumingMemoryBound(to: Float.self)
            owner = view.storage.owner
            isInPlace = true
        } else {
            let values = try view.floats()
            let buffer = OwnedBytes(count: values.count * MemoryLayout<Float>.stride)
            values.withUnsafeBytes { buffer.buffer.copyMemory(from: $0) }
            pointer = UnsafePointer(buffer.buffer.baseAddress!.assumingMemoryBound(to: Float.self))
            owner = buffer
            isInPlace = false
        }
    }

    /// An owned tensor whose values `fill` writes (weights derived at load, such as a folded
    /// weight norm).
    init(name: String, shape: [Int], fill: (UnsafeMutableBufferPointer<Float>) -> Void) {
        self.name = name
        self.shape = shape
        count = shape.reduce(1, *)
        let buffer = OwnedBytes(count: count * MemoryLayout<Float>.stride)
        let values = buffer.buffer.bindMemory(to: Float.self)
        fill(values)
        pointer = UnsafePointer(values.baseAddress!)
        owner = buffer
        isInPlace = false
    }

    /// An owned tensor holding `values`.
    convenience init(name: String, shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not match \(values.count) values")
        self.init(name: name, shape: shape) { target in
            _ = values.withUnsafeBufferPointer { target.initialize(from: $0) }
        }
    }

    var buffer: UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: pointer, count: count) }

    var values: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

    subscript(index: Int) -> Float { pointer[index] }
}

/// Reads weights from a store by name, checking each against the shape the config implies.
struct WeightLoader {
    let store: any WeightStore

    func contains(_ name: String) -> Bool {
        store.tensorNames.contains(name)
    }

    /// The tensor `name`, which must exist and have exactly `shape`.
    func load(_ name: String, shape: [Int]) throws -> FloatTensor {
        guard let tensor = try loadIfPresent(name, shape: shape) else { throw ModelError.missingTensor(name: name) }
        return tensor
    }

    /// The tensor `name` with exactly `shape`, or nil when the file does not have it.
    func loadIfPresent(_ name: String, shape: [Int]) throws -> FloatTensor? {
        guard let view = try store.tensor(named: name) else { return nil }
        guard view.shape == shape else { throw ModelError.shapeMismatch(tensor: name, expected: shape, actual: view.shape) }
        return try FloatTensor(view)
    }

    /// The raw view of `name` (for tensors whose layout is checked by the caller), nil when absent.
    func view(_ name: String) throws -> TensorView? {
        try store.tensor(named: name)
    }
}
