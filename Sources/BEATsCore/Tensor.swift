/// Why a tensor's description does not fit its bytes.
public enum TensorError: Error, CustomStringConvertible, Equatable, Sendable {
    case negativeDimension(tensor: String, shape: [Int])
    case negativeStride(tensor: String, stride: [Int])
    case rankMismatch(tensor: String, shape: [Int], stride: [Int])
    case elementCountOverflow(tensor: String, shape: [Int])
    case outOfStorage(tensor: String, neededBytes: Int, storageBytes: Int)
    case conversion(tensor: String, from: DType, to: String)

    public var description: String {
        switch self {
        case .negativeDimension(let name, let shape): return "tensor '\(name)': negative dimension in shape \(shape)"
        case .negativeStride(let name, let stride): return "tensor '\(name)': negative stride \(stride)"
        case .rankMismatch(let name, let shape, let stride): return "tensor '\(name)': shape \(shape) and stride \(stride) differ in rank"
        case .elementCountOverflow(let name, let shape): return "tensor '\(name)': element count of shape \(shape) overflows"
        case .outOfStorage(let name, let needed, let have):
            return "tensor '\(name)': needs \(needed) bytes but its storage holds \(have)"
        case .conversion(let name, let from, let to): return "tensor '\(name)': cannot convert \(from.rawValue) to \(to)"
        }
    }
}

/// A strided view of typed elements inside a storage, as a torch tensor is: dtype, shape,
/// stride and offset (both in elements), and the byte order of the storage.
///
/// Construction checks that every element the view can reach lies inside the storage, so the
/// accessors below never read out of bounds. No bytes are read until an accessor is called.
public struct TensorView: @unchecked Sendable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    public let strides: [Int]
    public let storageOffset: Int
    public let storage: ByteStorage
    public let byteOrder: ByteOrder

    public init(name: String, dtype: DType, shape: [Int], strides: [Int]? = nil, storageOffset: Int = 0,
                storage: ByteStorage, byteOrder: ByteOrder = .little) throws(TensorError) {
        guard shape.allSatisfy({ $0 >= 0 }) else { throw .negativeDimension(tensor: name, shape: shape) }
        let strides = strides ?? TensorView.contiguousStrides(for: shape)
        guard strides.count == shape.count else { throw .rankMismatch(tensor: name, shape: shape, stride: strides) }
        guard strides.allSatisfy({ $0 >= 0 }), storageOffset >= 0 else { throw .negativeStride(tensor: name, stride: strides) }
        guard let count = checkedProduct(shape) else { throw .elementCountOverflow(tensor: name, shape: shape) }
        if count > 0 {
            // Highest element index reachable: offset + Σ (size-1)·stride, computed without overflow.
            var highest = storageOffset
            for (size, stride) in zip(shape, strides) {
                guard let step = checkedProduct([size - 1, stride]) else { throw .elementCountOverflow(tensor: name, shape: shape) }
                let (sum, overflow) = highest.addingReportingOverflow(step)
                guard !overflow else { throw .elementCountOverflow(tensor: name, shape: shape) }
                highest = sum
            }
            guard let neededBytes = checkedProduct([highest + 1, dtype.byteWidth]) else {
                throw .elementCountOverflow(tensor: name, shape: shape)
            }
            guard neededBytes <= storage.count else {
                throw .outOfStorage(tensor: name, neededBytes: neededBytes, storageBytes: storage.count)
            }
        }
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.strides = strides
        self.storageOffset = storageOffset
        self.storage = storage
        self.byteOrder = byteOrder
    }

    public static func contiguousStrides(for shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var running = 1
        for axis in shape.indices.reversed() {
            strides[axis] = running
            running = running &* max(shape[axis], 1)
        }
        return strides
    }

    /// Number of elements (checked at construction, so it cannot overflow).
    public var elementCount: Int { shape.reduce(1, *) }
    public var byteCount: Int { elementCount * dtype.byteWidth }

    public var isContiguous: Bool {
        var expected = 1
        for axis in shape.indices.reversed() where shape[axis] != 1 {
            if strides[axis] != expected { return false }
            expected *= shape[axis]
        }
        return true
    }

    /// The elements' bytes in place when the view is contiguous and little-endian (no copy).
    public var contiguousBytes: UnsafeRawBufferPointer? {
        guard isContiguous, byteOrder == .little else { return nil }
        let start = storageOffset * dtype.byteWidth
        return UnsafeRawBufferPointer(rebasing: storage.bytes[start..<start + byteCount])
    }

    /// Calls `body` with the storage byte offset of every element in row-major order.
    @inline(__always)
    public func forEachElementOffset(_ body: (Int) -> Void) {
        let count = elementCount
        guard count > 0 else { return }
        let width = dtype.byteWidth
        if isContiguous {
            let start = storageOffset * width
            for index in 0..<count { body(start + index * width) }
            return
        }
        var index = [Int](repeating: 0, count: shape.count)
        var elementOffset = storageOffset
        for _ in 0..<count {
            body(elementOffset * width)
            var axis = shape.count - 1
            while axis >= 0 {
                index[axis] += 1
                elementOffset += strides[axis]
                if index[axis] < shape[axis] { break }
                elementOffset -= strides[axis] * shape[axis]
                index[axis] = 0
                axis -= 1
            }
        }
    }

    /// Packed little-endian bytes of the elements in row-major order.
    public func packedLittleEndianBytes() -> [UInt8] {
        if let bytes = contiguousBytes { return Array(bytes) }
        let width = dtype.byteWidth
        var result = [UInt8](repeating: 0, count: byteCount)
        let source = storage.bytes
        let swap = byteOrder == .big
        var cursor = 0
        result.withUnsafeMutableBytes { destination in
            forEachElementOffset { offset in
                for byte in 0..<width {
                    destination[cursor + byte] = source[offset + (swap ? width - 1 - byte : byte)]
                }
                cursor += width
            }
        }
        return result
    }

    /// The elements converted to Float (floats and integers; bool as 0/1).
    public func floats() throws(TensorError) -> [Float] {
        guard dtype != .qint8 else { throw .conversion(tensor: name, from: dtype, to: "float32") }
        if dtype == .float32, let bytes = contiguousBytes {
            // Fast path for the common case: one copy, no per-element decoding.
            return [Float](unsafeUninitializedCapacity: elementCount) { buffer, initialized in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: bytes)
                initialized = elementCount
            }
        }
        var result = [Float]()
        result.reserveCapacity(elementCount)
        let source = storage.bytes
        let order = byteOrder
        let dtype = self.dtype
        forEachElementOffset { offset in
            result.append(TensorView.loadFloat(source, offset, dtype, order))
        }
        return result
    }

    /// The elements converted to Double (for float64 references and exact checks).
    public func doubles() throws(TensorError) -> [Double] {
        guard dtype != .qint8 else { throw .conversion(tensor: name, from: dtype, to: "float64") }
        var result = [Double]()
        result.reserveCapacity(elementCount)
        let source = storage.bytes
        let order = byteOrder
        let dtype = self.dtype
        forEachElementOffset { offset in
            if dtype == .float64 {
                result.append(Double(bitPattern: source.loadInteger(UInt64.self, at: offset, order) ?? 0))
            } else if dtype == .int64 {
                result.append(Double(Int64(bitPattern: source.loadInteger(UInt64.self, at: offset, order) ?? 0)))
            } else {
                result.append(Double(TensorView.loadFloat(source, offset, dtype, order)))
            }
        }
        return result
    }

    /// The elements as Int64 (integer and bool dtypes only).
    public func integers() throws(TensorError) -> [Int64] {
        let source = storage.bytes
        let order = byteOrder
        var result = [Int64]()
        result.reserveCapacity(elementCount)
        switch dtype {
        case .int64: forEachElementOffset { result.append(Int64(bitPattern: source.loadInteger(UInt64.self, at: $0, order) ?? 0)) }
        case .int32: forEachElementOffset { result.append(Int64(Int32(bitPattern: source.loadInteger(UInt32.self, at: $0, order) ?? 0))) }
        case .int16: forEachElementOffset { result.append(Int64(Int16(bitPattern: source.loadInteger(UInt16.self, at: $0, order) ?? 0))) }
        case .int8: forEachElementOffset { result.append(Int64(Int8(bitPattern: source[$0]))) }
        case .uint8, .bool: forEachElementOffset { result.append(Int64(source[$0])) }
        default: throw .conversion(tensor: name, from: dtype, to: "int64")
        }
        return result
    }

    @inline(__always)
    static func loadFloat(_ source: UnsafeRawBufferPointer, _ offset: Int, _ dtype: DType, _ order: ByteOrder) -> Float {
        // Offsets were bounds-checked at construction; the optional fallbacks are never taken.
        switch dtype {
        case .float32: return Float(bitPattern: source.loadInteger(UInt32.self, at: offset, order) ?? 0)
        case .float64: return Float(Double(bitPattern: source.loadInteger(UInt64.self, at: offset, order) ?? 0))
        case .float16: return FloatBits.halfToFloat(source.loadInteger(UInt16.self, at: offset, order) ?? 0)
        case .bfloat16: return FloatBits.bfloat16ToFloat(source.loadInteger(UInt16.self, at: offset, order) ?? 0)
        case .int64: return Float(Int64(bitPattern: source.loadInteger(UInt64.self, at: offset, order) ?? 0))
        case .int32: return Float(Int32(bitPattern: source.loadInteger(UInt32.self, at: offset, order) ?? 0))
        case .int16: return Float(Int16(bitPattern: source.loadInteger(UInt16.self, at: offset, order) ?? 0))
        case .int8, .qint8: return Float(Int8(bitPattern: source[offset]))
        case .uint8, .bool: return Float(source[offset])
        }
    }
}
