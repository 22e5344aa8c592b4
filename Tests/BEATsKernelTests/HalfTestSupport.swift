import BEATsTestSupport
import CBEATsKernels

/// The conversion builds of `beats_half_kernels.h`, called through their own entry points.
enum HalfConversionVariant: String, CaseIterable, CustomStringConvertible, Sendable {
    case portable, avx2

    var description: String { rawValue }

    var cValue: beats_half_variant { self == .portable ? BEATS_HALF_PORTABLE : BEATS_HALF_AVX2 }

    var isAvailable: Bool { beats_half_variant_available(cValue) != 0 }

    /// The CPU feature flags the variant needs, as `beats_cpu_features()` reports them.
    var requiredFeatures: UInt32 {
        self == .portable ? 0 : UInt32(BEATS_CPU_AVX2) | UInt32(BEATS_CPU_FMA) | UInt32(BEATS_CPU_F16C)
    }

    /// `beats_half_to_float_rows_*` on `rows` rows of `columns` bit patterns (`stride` apart); the
    /// output has the same strides, cells past `columns` keep `filler`.
    func convert(_ format: beats_half_format, _ bits: [UInt16], rows: Int, columns: Int, stride: Int,
                 filler: Float = -3) -> (status: Int32, values: [Float]) {
        var out = [Float](repeating: filler, count: rows * stride)
        let status = bits.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBufferPointer { target in
                self == .portable
                    ? beats_half_to_float_rows_portable(format, source.baseAddress, stride, rows, columns, target.baseAddress, stride)
                    : beats_half_to_float_rows_avx2(format, source.baseAddress, stride, rows, columns, target.baseAddress, stride)
            }
        }
        return (status, out)
    }
}

/// The value of a binary16 bit pattern, computed independently of the kernels: from Swift's
/// Float16 where the platform has it, else by arithmetic on the fields (NaNs: sign, quiet bit,
/// payload shifted by 13).
func referenceHalfToFloat(_ bits: UInt16) -> Float {
    #if !((os(macOS) || targetEnvironment(macCatalyst)) && arch(x86_64))
    return Float(Float16(bitPattern: bits))
    #else
    let sign: Float = bits & 0x8000 != 0 ? -1 : 1
    let exponent = Int((bits >> 10) & 0x1F), mantissa = UInt32(bits & 0x3FF)
    if exponent == 0x1F {
        if mantissa == 0 { return sign * .infinity }
        return Float(bitPattern: UInt32(bits & 0x8000) << 16 | 0x7FC0_0000 | mantissa << 13)
    }
    if exponent == 0 { return sign * Float(mantissa) * 0x1p-24 }
    return sign * (1 + Float(mantissa) / 1024) * Float(sign: .plus, exponent: exponent - 15, significand: 1)
    #endif
}

/// The value of a bfloat16 bit pattern: its bits shifted into the top of a binary32.
func referenceBFloat16ToFloat(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

/// A 64-byte aligned block of `BEATS_HALF_SCRATCH_BYTES`, filled with NaN so that a product reading
/// scratch it has not written would show it.
final class HalfTestScratch: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    static let size = Int(BEATS_HALF_SCRATCH_BYTES)

    init() {
        pointer = .allocate(byteCount: Self.size, alignment: Int(BEATS_HALF_SCRATCH_ALIGNMENT))
        pointer.initializeMemory(as: Float.self, repeating: .nan, count: Self.size / 4)
    }

    deinit { pointer.deallocate() }
}

/// Operands of one half-precision product: x [m, xStride] float32, w [n, wStride] 16-bit of `format`.
/// Row padding holds NaN (x) and a NaN bit pattern (w), so reading it would show in the outputs.
struct HalfProblem {
    let m: Int, n: Int, k: Int
    let xStride: Int, wStride: Int
    let format: beats_half_format
    var x: [Float]
    var w: [UInt16]
    /// The weights converted by the reference functions, [n, k].
    let converted: [Float]

    static func random(m: Int, n: Int, k: Int, format: beats_half_format, seed: UInt64, padding: Int = 0) -> HalfProblem {
        var random = SplitMix64(seed: seed)
        let xStride = k + padding, wStride = k + padding
        var x = [Float](repeating: .nan, count: m * xStride)
        var w = [UInt16](repeating: format == BEATS_HALF_F16 ? 0x7E00 : 0x7FC0, count: n * wStride)
        for row in 0..<m {
            for column in 0..<k { x[row * xStride + column] = Float.random(in: -2...2, using: &random) }
        }
        for row in 0..<n {
            for column in 0..<k {
                // Finite patterns of the format, small weights as a Linear has (|w| < 0.5).
                let bits = UInt16(truncatingIfNeeded: random.next())
                w[row * wStride + column] = format == BEATS_HALF_F16 ? bits & 0xB7FF : (bits & 0xBEFF)
            }
        }
        var converted = [Float](repeating: 0, count: n * k)
        for row in 0..<n {
            for column in 0..<k {
                let bits = w[row * wStride + column]
                converted[row * k + column] = format == BEATS_HALF_F16 ? referenceHalfToFloat(bits) : referenceBFloat16ToFloat(bits)
            }
        }
        return HalfProblem(m: m, n: n, k: k, xStride: xStride, wStride: wStride, format: format, x: x, w: w,
                           converted: converted)
    }

    @inline(__always)
    func weight(_ row: Int, _ column: Int) -> Float { converted[row * k + column] }

    /// The exact product (float64) and Σ|x·w| for output [row][column].
    func exact(row: Int, column: Int) -> (value: Double, magnitude: Double) {
        var sum = 0.0, magnitude = 0.0
        for index in 0..<k {
            let term = Double(x[row * xStride + index]) * Double(weight(column, index))
            sum += term
            magnitude += abs(term)
        }
        return (sum, magnitude)
    }

    /// The model of `beats_half_gemm_avx2`'s arithmetic: K in ⌈K/320⌉ slabs of a multiple of 8 (the
    /// last shorter); per slab a fused multiply-add chain from zero in ascending k; C = slab 0, then
    /// C + slab.
    func avx2Model(row: Int, column: Int) -> Float {
        let pieces = (k + 319) / 320
        let step = ((k + pieces - 1) / pieces + 7) / 8 * 8
        var c: Float = 0
        var start = 0
        while start < k {
            var sum: Float = 0
            for index in start..<min(k, start + step) {
                sum = sum.addingProduct(x[row * xStride + index], weight(column, index))
            }
            c = start == 0 ? sum : c + sum
            start += step
        }
        return c
    }
}
