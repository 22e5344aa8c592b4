import BEATsTestSupport
import CBEATsKernels

/// `beats_status` codes of the int4 kernels as Swift values.
enum Int4Status {
    static let groupSize = BEATS_ERROR_GROUP_SIZE.rawValue
    static let int4OutOfRange = BEATS_ERROR_INT4_OUT_OF_RANGE.rawValue
    static let notFloat16 = BEATS_ERROR_NOT_FLOAT16.rawValue
    static let badPackedInt4 = BEATS_ERROR_BAD_PACKED_INT4.rawValue
}

/// The signature of every `beats_gemm_q4_*`.
typealias Int4GemmFunction = @convention(c) (UnsafePointer<Int8>?, Int, UnsafePointer<Float>?, UnsafePointer<Int32>?, Int,
                                             UnsafeRawPointer?, UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int,
                                             Int, Int, Int, Int) -> Int32

extension KernelVariant {
    /// Whether this CPU runs the variant's int4 kernels (`beats_q4_kernel_available`).
    var int4Available: Bool { beats_q4_kernel_available(cValue) != 0 }

    /// The CPU features the variant's int4 kernels need.
    var int4RequiredFeatures: UInt32 {
        self == .avx2 ? requiredFeatures | UInt32(BEATS_CPU_F16C) : requiredFeatures
    }

    /// This variant's `beats_gemm_q4_*`.
    var int4GemmFunction: Int4GemmFunction {
        switch self {
        case .scalar: beats_gemm_q4_scalar
        case .avx2: beats_gemm_q4_avx2
        case .avx512vnni: beats_gemm_q4_avx512vnni
        }
    }

    func int4Gemm(_ problem: Int4Problem, packed: PackedInt4, into c: inout [Float], rows: Range<Int>,
                  columns: Range<Int>) -> Int32 {
        problem.activations.withUnsafeBufferPointer { a in
            problem.activationScales.withUnsafeBufferPointer { scales in
                problem.sums.withUnsafeBufferPointer { sums in
                    int4WithOptionalPointer(problem.bias) { bias in
                        c.withUnsafeMutableBufferPointer { out in
                            int4GemmFunction(a.baseAddress, problem.activationStride, scales.baseAddress, sums.baseAddress,
                                             problem.sumsStride, packed.pointer, bias, out.baseAddress, problem.outputStride,
                                             rows.lowerBound, rows.upperBound, columns.lowerBound, columns.upperBound)
                        }
                    }
                }
            }
        }
    }
}

func int4WithOptionalPointer<R>(_ values: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let values else { return body(nil) }
    return values.withUnsafeBufferPointer { body($0.baseAddress) }
}

struct Int4PackError: Error, Equatable {
    let status: Int32
}

/// A packed int4 matrix (`beats_q4_pack`) in a 64-byte aligned buffer of exactly its size.
final class PackedInt4 {
    let pointer: UnsafeMutableRawPointer
    let byteCount: Int

    init(values: [UInt8], scales: [UInt16], minimums: [UInt16], rows: Int, columns: Int, group: Int) throws {
        let size = beats_q4_packed_size(rows, columns, group)
        guard size > 0 else { throw Int4PackError(status: Int4Status.groupSize) }
        byteCount = size
        pointer = .allocate(byteCount: size, alignment: 64)
        let status = beats_q4_pack(values, columns, scales, minimums, rows, columns, group, pointer, size)
        // Every stored property is set: a throw still runs deinit, which frees the buffer.
        guard status == KernelStatus.ok else { throw Int4PackError(status: status) }
    }

    deinit { pointer.deallocate() }

    var bytes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: pointer, count: byteCount) }

    func load<T>(_ type: T.Type, at offset: Int) -> T { pointer.loadUnaligned(fromByteOffset: offset, as: T.self) }
}

/// Operands of one int4 GEMM: int8 activations with scales and group sums, int4 weights with f16
/// scales and minimums, an optional bias.
struct Int4Problem {
    let m: Int, n: Int, k: Int, group: Int
    let activationStride: Int, sumsStride: Int, outputStride: Int
    var activations: [Int8]          // [m, activationStride]
    var activationScales: [Float]
    var sums: [Int32]                // [m, sumsStride]
    var values: [UInt8]              // [n, k], 0…15
    var scales: [UInt16]             // [n, k / group], f16 bits
    var minimums: [UInt16]           // [n, k / group], f16 bits
    var bias: [Float]?

    var groups: Int { k / group }

    /// Random operands: activations uniform int8 (−128 included), values uniform 0…15, scales in
    /// [0, 0.02], minimums in [−0.15, 0.05] (a zero scale and a −0 minimum among them).
    static func random(m: Int, n: Int, k: Int, group: Int, seed: UInt64, withBias: Bool = true, padding: Int = 0) -> Int4Problem {
        var random = SplitMix64(seed: seed)
        let groups = k / group
        let activationStride = k + padding, sumsStride = groups + padding % 2
        var activations = [Int8](repeating: 0, count: m * activationStride)
        for row in 0..<m {
            for column in 0..<k { activations[row * activationStride + column] = Int8(truncatingIfNeeded: random.next()) }
        }
        var scales = (0..<(n * groups)).map { _ in beats_q4_half_from_double(Double.random(in: 0...0.02, using: &random)) }
        var minimums = (0..<(n * groups)).map { _ in beats_q4_half_from_double(Double.random(in: -0.15...0.05, using: &random)) }
        if scales.count > 2 { scales[1] = 0; minimums[2] = 0x8000 }
        var problem = Int4Problem(
            m: m, n: n, k: k, group: group, activationStride: activationStride, sumsStride: sumsStride,
            outputStride: n + padding, activations: activations,
            activationScales: (0..<m).map { _ in Float.random(in: 0.001...0.05, using: &random) },
            sums: [], values: (0..<(n * k)).map { _ in UInt8(random.next() % 16) }, scales: scales, minimums: minimums,
            bias: withBias ? (0..<n).map { _ in Float.random(in: -1...1, using: &random) } : nil)
        problem.recomputeSums()
        return problem
    }

    /// Group sums of the activations, computed here (not by beats_q4_activation_sums).
    mutating func recomputeSums() {
        var sums = [Int32](repeating: 0, count: m * sumsStride)
        for row in 0..<m {
            for g in 0..<groups {
                var sum: Int32 = 0
                for column in (g * group)..<((g + 1) * group) { sum += Int32(activations[row * activationStride + column]) }
                sums[row * sumsStride + g] = sum
            }
        }
        self.sums = sums
    }

    func packed() throws -> PackedInt4 {
        try PackedInt4(values: values, scales: scales, minimums: minimums, rows: n, columns: k, group: group)
    }

    /// The exact integer Σ_{k in group g} a[row][k] · q[column][k].
    func exactDot(row: Int, column: Int, group g: Int) -> Int64 {
        var sum: Int64 = 0
        for index in (g * group)..<((g + 1) * group) {
            sum += Int64(activations[row * activationStride + index]) * Int64(values[column * k + index])
        }
        return sum
    }

    /// The output in float64 from the exact operands: Σ_g (scale·dot_g + minimum·asum_g)·a_scale + bias,
    /// i.e. Σ_k (a·a_scale)·(scale·q + minimum) + bias with every product exact; and the sum of the
    /// terms' magnitudes, for error bounds.
    func reference(row: Int, column: Int) -> (value: Double, magnitude: Double) {
        var sum = 0.0, magnitude = 0.0
        for g in 0..<groups {
            let scale = Double(beats_q4_half_to_float(scales[column * groups + g]))
            let minimum = Double(beats_q4_half_to_float(minimums[column * groups + g]))
            let scaled = scale * Double(exactDot(row: row, column: column, group: g))
            let shifted = minimum * Double(sums[row * sumsStride + g])
            sum += scaled + shifted
            magnitude += abs(scaled) + abs(shifted)
        }
        let aScale = Double(activationScales[row])
        return (sum * aScale + Double(bias?[column] ?? 0), magnitude * aScale)
    }
}

/// Float16 rounding written independently of beats_q4_half_from_double: the nearest of the 31744
/// finite non-negative halves (decoded by beats_q4_half_to_float, which the C check compares with
/// vcvtph2ps), ties to the even bit pattern; beyond the largest, the IEEE overflow rule.
enum ReferenceHalf {
    /// Every non-negative finite half's value, in bit-pattern order (which is value order).
    static let values: [Double] = (0..<UInt16(0x7c00)).map { Double(beats_q4_half_to_float($0)) }

    static func bits(_ x: Double) -> UInt16 {
        let sign: UInt16 = x.sign == .minus ? 0x8000 : 0
        let magnitude = abs(x)
        if magnitude >= 65520 { return sign | 0x7c00 }
        // Largest index whose value ≤ magnitude.
        var low = 0, high = values.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if values[middle] <= magnitude { low = middle } else { high = middle - 1 }
        }
        var chosen = low
        if low + 1 < values.count {
            let below = magnitude - values[low], above = values[low + 1] - magnitude
            if above < below || (above == below && low % 2 == 1) { chosen = low + 1 }
        } else if magnitude > values[low] {
            chosen = low // between 65504 and 65520: rounds down to 65504
        }
        return sign | UInt16(chosen)
    }
}
