import BEATsCore
import BEATsKernels
@testable import BEATsRuntime
import BEATsTestSupport
import CBEATsKernels
import Testing

/// float16 / bfloat16 Linear weights used in place (`HalfWeight`), against sgemm on the same weights
/// converted to float32 — what the runtime computes today after converting the file at load.
@Suite("Half-precision Linear")
struct HalfLinearTests {
    /// x [m, k] (stride k + 1) and 16-bit weights [n, k] of `format` with their exact float32 values.
    struct Problem {
        let m: Int, n: Int, k: Int
        let format: HalfFormat
        let x: [Float]
        let bits: [UInt16]
        let weights: [Float]

        init(m: Int, n: Int, k: Int, format: HalfFormat, seed: UInt64) {
            var random = SplitMix64(seed: seed)
            self.m = m
            self.n = n
            self.k = k
            self.format = format
            x = (0..<(m * (k + 1))).map { $0 % (k + 1) == k ? .nan : Float.random(in: -3...3, using: &random) }
            // Weights as a Linear has them (|w| ≲ 0.1), rounded to the format, a few subnormal.
            bits = (0..<(n * k)).map { index in
                let value = Float.random(in: -0.1...0.1, using: &random) * (index % 97 == 0 ? 1e-4 : 1)
                return format == .float16 ? FloatBits.floatToHalf(value) : FloatBits.floatToBFloat16(value)
            }
            weights = bits.map { format == .float16 ? FloatBits.halfToFloat($0) : FloatBits.bfloat16ToFloat($0) }
        }

        /// Linear's float32 path on the converted weights: `Matrix.multiply` split across `loop`.
        func sgemm(loop: ParallelLoop) -> [Float] {
            var c = [Float](repeating: .nan, count: m * n)
            x.withUnsafeBufferPointer { x in
                weights.withUnsafeBufferPointer { w in
                    c.withUnsafeMutableBufferPointer { c in
                        Matrix.multiply(rows: m, columns: n, depth: k, x.baseAddress!, leading: k + 1, w.baseAddress!, leading: k,
                                        transposeB: true, into: c.baseAddress!, leading: n, splitting: loop)
                    }
                }
            }
            return c
        }

        /// `HalfWeight.multiply` with `kernel` on `loop` (output stride n + 3, padding kept).
        func half(_ kernel: HalfKernelVariant, loop: ParallelLoop, scratch: HalfScratch) -> [Float] {
            var c = [Float](repeating: -5, count: m * (n + 3))
            bits.withUnsafeBufferPointer { w in
                let weight = HalfWeight(name: "test.weight", values: w.baseAddress!, rows: n, columns: k, format: format,
                                        owner: scratch, kernel: kernel)
                x.withUnsafeBufferPointer { x in
                    c.withUnsafeMutableBufferPointer { c in
                        weight.multiply(x.baseAddress!, leading: k + 1, rows: m, into: c.baseAddress!, leading: n + 3,
                                        loop: loop, scratch: scratch)
                    }
                }
            }
            for row in 0..<m { #expect(c[(row * (n + 3) + n)..<(row * (n + 3) + n + 3)].allSatisfy { $0 == -5 }) }
            return (0..<m).flatMap { c[($0 * (n + 3))..<($0 * (n + 3) + n)] }
        }

        /// Σ_k |x·w| for one output: the scale of float32 rounding in it.
        func magnitude(row: Int, column: Int) -> Double {
            (0..<k).reduce(0.0) { $0 + abs(Double(x[row * (k + 1) + $1]) * Double(weights[column * k + $1])) }
        }
    }

    static let shapes: [(m: Int, k: Int, n: Int)] = [
        (1, 1, 1), (7, 33, 17), (37, 320, 100), (70, 321, 130), (9, 700, 819), (64, 768, 96), (496, 768, 40), (20, 3072, 50),
    ]

    /// The variants this CPU runs, each with the bound its outputs keep from sgemm's.
    static var variants: [HalfKernelVariant] { HalfKernelVariant.allCases.filter(\.isAvailable) }

    @Test("multiply equals sgemm on the float32-converted weights: bitwise where it is one sgemm call, else within the rounding bound",
          arguments: [HalfFormat.float16, .bfloat16])
    func matchesSGEMM(_ format: HalfFormat) throws {
        try OpenBLAS.ensureLoaded()
        let scratch = HalfScratch(lanes: 2)
        var seed: UInt64 = format == .float16 ? 10 : 20
        for (m, k, n) in Self.shapes {
            seed += 1
            let problem = Problem(m: m, n: n, k: k, format: format, seed: seed)
            for threads in [1, 2] {
                let loop = ParallelLoop(threads: threads)
                let expected = problem.sgemm(loop: loop)
                for kernel in Self.variants where kernel.variant(for: format) == kernel {
                    let got = problem.half(kernel, loop: loop, scratch: scratch)
                    let label = "\(kernel) \(format) M=\(m) K=\(k) N=\(n) threads \(threads)"
                    // One sgemm call on the same converted weights, same shapes: same bits. That is the
                    // portable product with K within one 320 slab and the band within one chunk, when
                    // neither side splits the columns (below 2 MFLOP, or one thread).
                    let oneCall = kernel == .portable && k <= 320 && n <= 816 && (threads == 1 || m * n * k < 1 << 21)
                    if oneCall {
                        #expect(got.map(\.bitPattern) == expected.map(\.bitPattern), "\(label): not bitwise equal")
                        continue
                    }
                    // Otherwise both are float32 sums of the same exact products (the conversion is
                    // exact) in different orders — OpenBLAS's K blocks and micro-kernel against our
                    // slabs and FMA chains, or sgemm calls on other slabs — each within (K + 8)·2⁻²⁴·Σ|x·w|
                    // of the exact sum, so they differ by at most twice that. The BF16 kernel also rounds
                    // x to bfloat16: 2⁻⁸ relative per product, bounded by 2⁻⁸·Σ|x·w| more.
                    let factor = Double(2 * k + 16) * 0x1p-24 + (kernel == .avx512bf16 ? 0x1p-8 : 0)
                    var worst = 0.0, failures = 0
                    for row in 0..<m {
                        for column in 0..<n {
                            let magnitude = problem.magnitude(row: row, column: column)
                            let difference = abs(Double(got[row * n + column]) - Double(expected[row * n + column]))
                            if magnitude > 0 { worst = max(worst, difference / magnitude) }
                            if !(difference <= factor * magnitude) { failures += 1 }
                        }
                    }
                    #expect(failures == 0, "\(label): \(failures) outputs beyond the bound")
                    // The bound is a worst case; the typical gap is far smaller (≈ √K rounding steps).
                    #expect(worst <= factor, "\(label): worst |Δ|/Σ|x·w| = \(worst)")
                }
            }
        }
    }

    @Test("our own kernels give the same bits on 1 and 2 threads; the portable product on 1 thread is one sgemm per slab")
    func threadInvariance() throws {
        try OpenBLAS.ensureLoaded()
        let scratch = HalfScratch(lanes: 2)
        for format in HalfFormat.allCases {
            let problem = Problem(m: 64, n: 200, k: 768, format: format, seed: 77)
            for kernel in Self.variants where kernel.isSplitInvariant && kernel.variant(for: format) == kernel {
                let one = problem.half(kernel, loop: ParallelLoop(threads: 1), scratch: scratch)
                let two = problem.half(kernel, loop: ParallelLoop(threads: 2), scratch: scratch)
                #expect(one.map(\.bitPattern) == two.map(\.bitPattern), "\(kernel) \(format)")
            }
        }
    }

    @Test("weights from a tensor view: in place when contiguous and aligned, an owned 16-bit copy otherwise; typed errors")
    func fromView() throws {
        let bits: [UInt16] = [0x3C00, 0x4000, 0xC200, 0x3800, 0x0001, 0x7BFF]  // 1, 2, -3, 0.5, 2⁻²⁴, 65504
        var bytes = [UInt8](repeating: 0, count: 1)
        for value in bits { bytes += [UInt8(value & 0xFF), UInt8(value >> 8)] }
        let storage = ByteStorage(copying: bytes)

        // Element offset 0 starts one byte into the storage: misaligned, so copied.
        let odd = ByteStorage(bytes: UnsafeRawBufferPointer(rebasing: storage.bytes[1...]), owner: storage.owner)
        let misaligned = try HalfWeight(TensorView(name: "w", dtype: .float16, shape: [2, 3], storage: odd), outputs: 2, inputs: 3,
                                        kernel: .portable)
        #expect(!misaligned.isInPlace)
        let even = ByteStorage(copying: Array(bytes[1...]))
        let inPlace = try HalfWeight(TensorView(name: "w", dtype: .float16, shape: [2, 3], storage: even), outputs: 2, inputs: 3,
                                     kernel: .portable)
        #expect(inPlace.isInPlace)
        #expect(inPlace.matrix.values == even.bytes.baseAddress!.assumingMemoryBound(to: UInt16.self))
        // A transposed view [3, 2] of the same six values: copied in row-major order.
        let transposed = try HalfWeight(TensorView(name: "t", dtype: .float16, shape: [3, 2], strides: [1, 3], storage: even),
                                        outputs: 3, inputs: 2, kernel: .portable)
        #expect(!transposed.isInPlace)
        for (weight, expected) in [(misaligned, bits), (inPlace, bits), (transposed, [bits[0], bits[3], bits[1], bits[4], bits[2], bits[5]])] {
            let values = (0..<6).map { weight.matrix.values[$0] }
            #expect(values == expected)
        }
        let bf16 = try HalfWeight(TensorView(name: "b", dtype: .bfloat16, shape: [2, 3], storage: even), outputs: 2, inputs: 3)
        #expect(bf16.format == .bfloat16 && bf16.rows == 2 && bf16.columns == 3)

        #expect(throws: ModelError.unsupportedDType(tensor: "f", dtype: .float32)) {
            _ = try HalfWeight(TensorView(name: "f", dtype: .float32, shape: [1, 3], storage: even), outputs: 1, inputs: 3)
        }
        #expect(throws: ModelError.shapeMismatch(tensor: "w", expected: [3, 2], actual: [2, 3])) {
            _ = try HalfWeight(TensorView(name: "w", dtype: .float16, shape: [2, 3], storage: even), outputs: 3, inputs: 2)
        }
    }

    @Test("variants: availability follows the CPU; AVX512-BF16 runs bfloat16 only and refuses where the CPU lacks it")
    func variants() throws {
        let features = beats_cpu_features()
        let bf16Features = UInt32(BEATS_CPU_AVX512F) | UInt32(BEATS_CPU_AVX512BW) | UInt32(BEATS_CPU_AVX512BF16)
        #expect(HalfKernelVariant.avx512bf16.isAvailable == (features & bf16Features == bf16Features))
        let avx2Features = UInt32(BEATS_CPU_AVX2) | UInt32(BEATS_CPU_FMA) | UInt32(BEATS_CPU_F16C)
        #expect(HalfKernelVariant.avx2.isAvailable == (features & avx2Features == avx2Features))
        #expect(HalfKernelVariant.portable.isAvailable)
        #expect(HalfKernelVariant.preferred.isAvailable)
        #expect(HalfKernelVariant.avx512bf16.variant(for: .bfloat16) == .avx512bf16)
        #expect(HalfKernelVariant.avx512bf16.variant(for: .float16) == (HalfKernelVariant.avx2.isAvailable ? .avx2 : .portable))
        #expect(HalfKernelVariant.avx2.variant(for: .float16) == .avx2)
        #expect(HalfKernelVariant.avx2.columnAlignment == 16 && HalfKernelVariant.avx512bf16.columnAlignment == 32)

        // The BF16 product: refused on float16 weights everywhere, and on bfloat16 weights where the
        // CPU has no AVX512_BF16.
        let scratch = HalfScratch(lanes: 1)
        let x = [Float](repeating: 1, count: 8), bits = [UInt16](repeating: 0x3F80, count: 8)
        var c = [Float](repeating: 0, count: 4)
        /// The status the product ends with (BEATS_OK, or the thrown KernelError's).
        func bf16Product(_ format: HalfFormat) -> Int32 {
            bits.withUnsafeBufferPointer { w in
                x.withUnsafeBufferPointer { x in
                    c.withUnsafeMutableBufferPointer { c in
                        let matrix = HalfMatrix(values: w.baseAddress!, rows: 2, columns: 4, format: format)
                        do {
                            try HalfKernelVariant.avx512bf16.multiply(x.baseAddress!, leading: 4, rows: 2, matrix, into: c.baseAddress!,
                                                                      leading: 2, columns: 0..<2, scratch: scratch.pointer(lane: 0),
                                                                      sgemm: nil)
                            return BEATS_OK.rawValue
                        } catch let error as KernelError {
                            return error.status
                        } catch {
                            return Int32.min
                        }
                    }
                }
            }
        }
        let unavailable = BEATS_ERROR_UNAVAILABLE.rawValue
        #expect(bf16Product(.float16) == unavailable)
        if HalfKernelVariant.avx512bf16.isAvailable {
            #expect(bf16Product(.bfloat16) == BEATS_OK.rawValue)
            #expect(c == [4, 4, 4, 4])
        } else {
            #expect(bf16Product(.bfloat16) == unavailable)
            print("half Linear avx512bf16: NOT available on this CPU (compiled; checked by bench/kernels/emulated_bf16_check.sh)")
        }
        // The portable product needs an sgemm.
        let noSGEMM: Int32 = bits.withUnsafeBufferPointer { w in
            x.withUnsafeBufferPointer { x in
                c.withUnsafeMutableBufferPointer { c in
                    let matrix = HalfMatrix(values: w.baseAddress!, rows: 2, columns: 4, format: .float16)
                    do {
                        try HalfKernelVariant.portable.multiply(x.baseAddress!, leading: 4, rows: 2, matrix, into: c.baseAddress!,
                                                                leading: 2, columns: 0..<2, scratch: scratch.pointer(lane: 0), sgemm: nil)
                        return BEATS_OK.rawValue
                    } catch let error as KernelError {
                        return error.status
                    } catch {
                        return Int32.min
                    }
                }
            }
        }
        #expect(noSGEMM == BEATS_ERROR_INVALID_ARGUMENT.rawValue)
    }

    @Test("row conversion through the typed layer is exact for every pattern")
    func convertRows() throws {
        let all = (0...UInt16.max).map { $0 }
        for kernel in Self.variants {
            for format in HalfFormat.allCases {
                var out = [Float](repeating: 0, count: all.count)
                try all.withUnsafeBufferPointer { source in
                    try out.withUnsafeMutableBufferPointer { target in
                        try kernel.convertRows(format, source.baseAddress!, leading: 256, rows: 256, columns: 256,
                                               into: target.baseAddress!, leading: 256)
                    }
                }
                let expected = all.map { format == .float16 ? FloatBits.halfToFloat($0) : FloatBits.bfloat16ToFloat($0) }
                #expect(out.map(\.bitPattern) == expected.map(\.bitPattern), "\(kernel) \(format)")
                #expect(all.allSatisfy { format.float(fromBits: $0).bitPattern == expected[Int($0)].bitPattern })
            }
        }
    }
}
