import BEATsTestSupport
import CBEATsKernels

/// `beats_*` status codes as Swift values (the C functions return them as Int32).
enum KernelStatus {
    static let ok = BEATS_OK.rawValue
    static let invalidArgument = BEATS_ERROR_INVALID_ARGUMENT.rawValue
    static let badPackedWeights = BEATS_ERROR_BAD_PACKED_WEIGHTS.rawValue
    static let weightOutOfRange = BEATS_ERROR_WEIGHT_OUT_OF_RANGE.rawValue
    static let misaligned = BEATS_ERROR_MISALIGNED.rawValue
    static let unavailable = BEATS_ERROR_UNAVAILABLE.rawValue
    static let tooLarge = BEATS_ERROR_TOO_LARGE.rawValue
}

/// One kernel variant, called through its own entry points (`beats_gemm_s8_avx2`, …).
enum KernelVariant: String, CaseIterable, CustomStringConvertible, Sendable {
    case scalar, avx2, avx512vnni

    var description: String { rawValue }

    var cValue: beats_kernel_variant {
        switch self {
        case .scalar: BEATS_KERNEL_SCALAR
        case .avx2: BEATS_KERNEL_AVX2
        case .avx512vnni: BEATS_KERNEL_AVX512VNNI
        }
    }

    var isAvailable: Bool { beats_kernel_available(cValue) != 0 }

    /// The CPU feature flags this variant needs, as `beats_cpu_features()` reports them.
    var requiredFeatures: UInt32 {
        switch self {
        case .scalar: 0
        case .avx2: UInt32(BEATS_CPU_AVX2)
        case .avx512vnni: UInt32(BEATS_CPU_AVX512F) | UInt32(BEATS_CPU_AVX512BW) | UInt32(BEATS_CPU_AVX512VNNI)
        }
    }

    /// This variant's `beats_quantize_rows_*`.
    var quantizeFunction: @convention(c) (UnsafePointer<Float>?, Int, Int, Int, Int32, UnsafeMutablePointer<Int8>?, Int,
                                          UnsafeMutablePointer<Float>?) -> Int32 {
        switch self {
        case .scalar: beats_quantize_rows_scalar
        case .avx2: beats_quantize_rows_avx2
        case .avx512vnni: beats_quantize_rows_avx512
        }
    }

    /// This variant's `beats_gemm_s8_*`.
    var gemmFunction: @convention(c) (UnsafePointer<Int8>?, Int, UnsafePointer<Float>?, UnsafeRawPointer?,
                                      UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int,
                                      Int, Int, Int, Int) -> Int32 {
        switch self {
        case .scalar: beats_gemm_s8_scalar
        case .avx2: beats_gemm_s8_avx2
        case .avx512vnni: beats_gemm_s8_avx512vnni
        }
    }

    func quantize(_ x: [Float], rows: Int, columns: Int, stride: Int, maxLevel: Int32 = BEATS_ACTIVATION_LEVELS_INT8)
        -> (status: Int32, q: [Int8], scales: [Float]) {
        var q = [Int8](repeating: 0x55, count: rows * stride)
        var scales = [Float](repeating: -1, count: rows)
        let status = x.withUnsafeBufferPointer { xp in
            q.withUnsafeMutableBufferPointer { qp in
                scales.withUnsafeMutableBufferPointer { sp in
                    quantizeFunction(xp.baseAddress, stride, rows, columns, maxLevel, qp.baseAddress, stride, sp.baseAddress)
                }
            }
        }
        return (status, q, scales)
    }

    func gemm(_ problem: GemmProblem, packed: PackedWeights, into c: inout [Float], rows: Range<Int>, columns: Range<Int>) -> Int32 {
        problem.activations.withUnsafeBufferPointer { a in
            problem.activationScales.withUnsafeBufferPointer { aScales in
                problem.weightScales.withUnsafeBufferPointer { wScales in
                    withOptionalPointer(problem.bias) { bias in
                        c.withUnsafeMutableBufferPointer { cp in
                            gemmFunction(a.baseAddress, problem.activationStride, aScales.baseAddress, packed.pointer,
                                         wScales.baseAddress, bias, cp.baseAddress, problem.outputStride,
                                         rows.lowerBound, rows.upperBound, columns.lowerBound, columns.upperBound)
                        }
                    }
                }
            }
        }
    }
}

private func withOptionalPointer<R>(_ values: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let values else { return body(nil) }
    return values.withUnsafeBufferPointer { body($0.baseAddress) }
}

/// An int8 weight matrix packed by `beats_pack_weights` into a 64-byte aligned buffer.
final class PackedWeights {
    let pointer: UnsafeMutableRawPointer
    let byteCount: Int
    let rows: Int
    let columns: Int

    /// `values` is [rows, columns] row-major (a torch Linear weight).
    init(values: [Int8], rows: Int, columns: Int) throws {
        let size = beats_packed_weights_size(rows, columns)
        guard size > 0 else { throw PackError(status: KernelStatus.tooLarge) }
        self.byteCount = size
        self.rows = rows
        self.columns = columns
        pointer = .allocate(byteCount: size, alignment: 64)
        let status = values.withUnsafeBufferPointer { w in
            beats_pack_weights(w.baseAddress, columns, rows, columns, pointer, size)
        }
        // Once every stored property is set, a throw still runs deinit, which frees the buffer.
        guard status == KernelStatus.ok else { throw PackError(status: status) }
    }

    deinit { pointer.deallocate() }
}

struct PackError: Error, Equatable {
    let status: Int32
}

/// Operands of one int8 GEMM with the float64 reference of the dequantized product.
struct GemmProblem {
    let m: Int, n: Int, k: Int
    let activationStride: Int
    let outputStride: Int
    var activations: [Int8]      // [m, activationStride]
    var activationScales: [Float]
    var weights: [Int8]          // [n, k]
    var weightScales: [Float]
    var bias: [Float]?

    /// Activations uniform in [-level, level] (63: the 7-bit form the AVX2 kernel runs faster),
    /// weights in [-127, 127].
    static func random(m: Int, n: Int, k: Int, seed: UInt64, withBias: Bool = true, padding: Int = 0,
                       level: Int8 = 127) -> GemmProblem {
        var random = SplitMix64(seed: seed)
        let activationStride = k + padding
        var activations = [Int8](repeating: 0, count: m * activationStride)
        let dense = randomInt8s(count: m * k, using: &random, level: level)
        for row in 0..<m {
            activations[(row * activationStride)..<(row * activationStride + k)] = dense[(row * k)..<(row * k + k)]
        }
        let weights = randomInt8s(count: n * k, using: &random)
        return GemmProblem(
            m: m, n: n, k: k, activationStride: activationStride, outputStride: n + padding,
            activations: activations,
            activationScales: (0..<m).map { _ in Float.random(in: 0.001...0.05, using: &random) },
            weights: weights,
            weightScales: (0..<n).map { _ in Float.random(in: 0.0005...0.02, using: &random) },
            bias: withBias ? (0..<n).map { _ in Float.random(in: -1...1, using: &random) } : nil)
    }

    /// Uniform values in [-level, level], eight per generator step (the large shapes need millions).
    static func randomInt8s(count: Int, using random: inout SplitMix64, level: Int8 = 127) -> [Int8] {
        let span = 2 * Int(level) + 1
        var values = [Int8](repeating: 0, count: count)
        values.withUnsafeMutableBufferPointer { buffer in
            var index = 0
            while index < count {
                var bits = random.next()
                for _ in 0..<8 where index < count {
                    buffer[index] = Int8(Int(bits & 0xFF) % span - Int(level))
                    bits >>= 8
                    index += 1
                }
            }
        }
        return values
    }

    func packed() throws -> PackedWeights { try PackedWeights(values: weights, rows: n, columns: k) }

    /// The exact integer dot product Σ_k A[row][k]·W[column][k].
    func exactAccumulator(row: Int, column: Int) -> Int64 {
        var sum: Int64 = 0
        for index in 0..<k {
            sum += Int64(activations[row * activationStride + index]) * Int64(weights[column * k + index])
        }
        return sum
    }
}

/// Bitwise equality, with every NaN equal to every NaN (payloads may differ).
func sameBits(_ x: [Float], _ y: [Float]) -> Bool {
    guard x.count == y.count else { return false }
    for index in x.indices where !(x[index].isNaN && y[index].isNaN) && x[index].bitPattern != y[index].bitPattern {
        return false
    }
    return true
}

/// Index of the first element whose bits differ, for failure messages.
func firstDifference(_ x: [Float], _ y: [Float]) -> String {
    for index in x.indices where !(x[index].isNaN && y[index].isNaN) && x[index].bitPattern != y[index].bitPattern {
        return "index \(index): \(x[index]) vs \(y[index])"
    }
    return "none"
}
