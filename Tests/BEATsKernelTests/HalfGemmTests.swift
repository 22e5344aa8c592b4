import BEATsTestSupport
import CBEATsKernels
import Testing

/// A plain sgemm with cblas_sgemm's signature for the convert-then-sgemm product: row-major
/// C = alpha·A·Bᵀ + beta·C, each output a sequential float32 sum (no FMA) from zero. With it the
/// product's slab bookkeeping has an exact model; OpenBLAS runs it in the runtime's tests.
private let plainSGEMM: beats_sgemm_function = { order, transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc in
    precondition(order == 101 && transposeA == 111 && transposeB == 112, "row-major A·Bᵀ only")
    guard let a, let b, let c else { return }
    for row in 0..<Int(m) {
        for column in 0..<Int(n) {
            var sum: Float = 0
            for index in 0..<Int(k) { sum = sum + a[row * Int(lda) + index] * b[column * Int(ldb) + index] }
            let target = c + row * Int(ldc) + column
            target.pointee = beta == 0 ? alpha * sum : alpha * sum + beta * target.pointee
        }
    }
}

/// The products of `beats_half_kernels.h` on this CPU: the AVX2 GEMM against an exact model of its
/// arithmetic, the convert-then-sgemm product, the AVX512-BF16 GEMM (or its refusal), argument errors.
@Suite("Half-precision GEMM")
struct HalfGemmTests {
    private static let formats = [BEATS_HALF_F16, BEATS_HALF_BF16]

    /// Runs `product` on the problem for `columns`, the output pre-filled with a sentinel.
    private func run(_ problem: HalfProblem, columns: Range<Int>, scratch: HalfTestScratch,
                     _ product: (UnsafePointer<Float>, UnsafePointer<UInt16>, UnsafeMutablePointer<Float>, Int) -> Int32)
        -> (status: Int32, c: [Float], cStride: Int) {
        let cStride = problem.n + 2
        var c = [Float](repeating: -777.25, count: problem.m * cStride)
        let status = problem.x.withUnsafeBufferPointer { x in
            problem.w.withUnsafeBufferPointer { w in
                c.withUnsafeMutableBufferPointer { c in product(x.baseAddress!, w.baseAddress!, c.baseAddress!, cStride) }
            }
        }
        return (status, c, cStride)
    }

    private func avx2(_ problem: HalfProblem, columns: Range<Int>, scratch: HalfTestScratch)
        -> (status: Int32, c: [Float], cStride: Int) {
        run(problem, columns: columns, scratch: scratch) { x, w, c, cStride in
            beats_half_gemm_avx2(problem.format, x, problem.xStride, problem.m, w, problem.wStride, problem.k, c, cStride,
                                 columns.lowerBound, columns.upperBound, scratch.pointer, HalfTestScratch.size)
        }
    }

    /// Checks the outputs in `columns` (bitwise against `model` when given, else within the float64
    /// bound) and the sentinel everywhere else.
    private func check(_ problem: HalfProblem, _ result: (status: Int32, c: [Float], cStride: Int), columns: Range<Int>,
                       label: String, model: ((Int, Int) -> Float)?) {
        #expect(result.status == BEATS_OK.rawValue, "\(label)")
        var wrong = 0
        for row in 0..<problem.m {
            for column in 0..<result.cStride {
                let got = result.c[row * result.cStride + column]
                guard columns.contains(column) else {
                    if got != -777.25 { wrong += 1 }
                    continue
                }
                let (exact, magnitude) = problem.exact(row: row, column: column)
                // A-priori bound of a float32 sum of K products in any order (plus the slab additions).
                let bound = Double(problem.k + 8) * 0x1p-24 * magnitude
                var ok = abs(Double(got) - exact) <= bound
                if let model { ok = ok && got.bitPattern == model(row, column).bitPattern }
                if !ok {
                    wrong += 1
                    if wrong <= 3 {
                        Issue.record("\(label) [\(row)][\(column)]: \(got), exact \(exact), model \(model?(row, column) ?? .nan)")
                    }
                }
            }
        }
        #expect(wrong == 0, "\(label): \(wrong) outputs wrong")
    }

    @Test("AVX2 GEMM: bitwise equal to the model of its arithmetic, within the float64 bound, ranges respected")
    func avx2Ragged() {
        let scratch = HalfTestScratch()
        guard HalfConversionVariant.avx2.isAvailable else {
            let problem = HalfProblem.random(m: 2, n: 3, k: 4, format: BEATS_HALF_F16, seed: 1)
            #expect(avx2(problem, columns: 0..<3, scratch: scratch).status == BEATS_ERROR_UNAVAILABLE.rawValue)
            print("half GEMM avx2: NOT available on this CPU (compiled, not executed)")
            return
        }
        var seed: UInt64 = 100
        for format in Self.formats {
            // Rows around the 6-row tile, K around the 8-wide packing and the 320 slab, N around the
            // 16-column panel.
            for (m, k, n) in [(1, 1, 1), (5, 9, 15), (6, 8, 16), (7, 319, 17), (13, 320, 33), (2, 321, 40), (3, 700, 16),
                              (12, 641, 20), (511, 24, 18)] {
                for padding in [0, 3] {
                    seed += 1
                    let problem = HalfProblem.random(m: m, n: n, k: k, format: format, seed: seed, padding: padding)
                    let columns = padding == 0 ? 0..<n : (n / 3)..<(n - n / 4)
                    check(problem, avx2(problem, columns: columns, scratch: scratch), columns: columns,
                          label: "avx2 format \(format.rawValue) M=\(m) K=\(k) N=\(n) columns \(columns)",
                          model: { problem.avx2Model(row: $0, column: $1) })
                }
            }
        }
    }

    @Test("AVX2 GEMM: full-size K with a few columns; results do not depend on how the columns are split")
    func avx2SplitInvariance() {
        guard HalfConversionVariant.avx2.isAvailable else {
            print("half GEMM avx2: NOT available on this CPU (compiled, not executed)")
            return
        }
        let scratch = HalfTestScratch()
        for (m, k, n, format) in [(70, 768, 48, BEATS_HALF_F16), (9, 3072, 40, BEATS_HALF_BF16), (496, 768, 24, BEATS_HALF_F16)] {
            let problem = HalfProblem.random(m: m, n: n, k: k, format: format, seed: UInt64(k + n), padding: 1)
            let whole = avx2(problem, columns: 0..<n, scratch: scratch)
            let model: ((Int, Int) -> Float)? = m > 100 ? nil : { problem.avx2Model(row: $0, column: $1) }
            check(problem, whole, columns: 0..<n, label: "avx2 M=\(m) K=\(k) N=\(n)", model: model)
            // The same product in three pieces whose edges cut panels.
            var pieces = [Float](repeating: -777.25, count: whole.c.count)
            for range in [0..<5, 5..<(n - 7), (n - 7)..<n] {
                let part = avx2(problem, columns: range, scratch: scratch)
                for row in 0..<m {
                    for column in range { pieces[row * whole.cStride + column] = part.c[row * whole.cStride + column] }
                }
            }
            #expect(sameBits(pieces, whole.c), "M=\(m) K=\(k) N=\(n): \(firstDifference(pieces, whole.c))")
        }
    }

    @Test("convert-then-sgemm product: slabs and chunks add up exactly as the model says",
          arguments: HalfConversionVariant.allCases)
    func sgemmProduct(_ variant: HalfConversionVariant) {
        let scratch = HalfTestScratch()
        guard variant.isAvailable else {
            let problem = HalfProblem.random(m: 1, n: 1, k: 1, format: BEATS_HALF_F16, seed: 1)
            let result = run(problem, columns: 0..<1, scratch: scratch) { x, w, c, cStride in
                beats_half_gemm_sgemm(variant.cValue, problem.format, plainSGEMM, x, 1, 1, w, 1, 1, c, cStride, 0, 1,
                                      scratch.pointer, HalfTestScratch.size)
            }
            #expect(result.status == BEATS_ERROR_UNAVAILABLE.rawValue)
            return
        }
        var seed: UInt64 = 500
        // (1700, 321): two slabs of 168 and 153 with chunks of at most 1560 rows: two chunks per slab.
        for (m, k, n) in [(3, 7, 9), (4, 320, 20), (2, 321, 1700), (5, 700, 17)] {
            for format in Self.formats {
                seed += 1
                let problem = HalfProblem.random(m: m, n: n, k: k, format: format, seed: seed, padding: 2)
                let columns = 1..<(n - 1)
                let result = run(problem, columns: columns, scratch: scratch) { x, w, c, cStride in
                    beats_half_gemm_sgemm(variant.cValue, problem.format, plainSGEMM, x, problem.xStride, m, w,
                                          problem.wStride, k, c, cStride, columns.lowerBound, columns.upperBound,
                                          scratch.pointer, HalfTestScratch.size)
                }
                // The model: per slab (⌈K/320⌉ of a multiple of 8) a sequential sum, C = slab 0, then slab + C.
                let model = { (row: Int, column: Int) -> Float in
                    let pieces = (k + 319) / 320
                    let step = ((k + pieces - 1) / pieces + 7) / 8 * 8
                    var c: Float = 0
                    for start in stride(from: 0, to: k, by: step) {
                        var sum: Float = 0
                        for index in start..<min(k, start + step) {
                            sum = sum + problem.x[row * problem.xStride + index] * problem.weight(column, index)
                        }
                        c = start == 0 ? sum : sum + c
                    }
                    return c
                }
                check(problem, result, columns: columns, label: "sgemm \(variant) format \(format.rawValue) M=\(m) K=\(k) N=\(n)",
                      model: model)
            }
        }
    }

    @Test("AVX512-BF16 GEMM: refuses on CPUs without AVX512_BF16; elsewhere within the float64 bound of the rounded product")
    func bf16() {
        let scratch = HalfTestScratch()
        let needed = UInt32(BEATS_CPU_AVX512F) | UInt32(BEATS_CPU_AVX512BW) | UInt32(BEATS_CPU_AVX512BF16)
        let available = beats_cpu_features() & needed == needed
        #expect((beats_gemm_bf16_avx512_available() != 0) == available)
        var seed: UInt64 = 900
        for (m, k, n) in [(1, 1, 1), (9, 33, 17), (8, 256, 32), (3, 257, 70), (600, 40, 5)] {
            seed += 1
            let problem = HalfProblem.random(m: m, n: n, k: k, format: BEATS_HALF_BF16, seed: seed, padding: 1)
            let columns = 0..<n
            let result = run(problem, columns: columns, scratch: scratch) { x, w, c, cStride in
                beats_gemm_bf16_avx512(x, problem.xStride, w, problem.wStride, n, k, c, cStride, 0, m, 0, n,
                                       scratch.pointer, HalfTestScratch.size)
            }
            guard available else {
                #expect(result.status == BEATS_ERROR_UNAVAILABLE.rawValue)
                continue
            }
            #expect(result.status == BEATS_OK.rawValue)
            // Against the exact product of the bf16-rounded activations with the weights.
            var rounded = problem
            rounded.x = problem.x.map { $0.isNaN ? $0 : referenceBFloat16ToFloat(beats_float_to_bf16_activation($0)) }
            check(rounded, result, columns: columns, label: "bf16 M=\(m) K=\(k) N=\(n)", model: nil)
        }
        if !available { print("half GEMM avx512bf16: NOT available on this CPU (compiled; checked by bench/kernels/emulated_bf16_check.sh)") }
    }

    @Test("argument errors: scratch size and alignment, strides, ranges, format; K = 0 writes zeros")
    func arguments() {
        let scratch = HalfTestScratch()
        let size = HalfTestScratch.size
        let x = [Float](repeating: 1, count: 64), w = [UInt16](repeating: 0x3C00, count: 64)
        var c = [Float](repeating: 5, count: 64)
        typealias Product = (UnsafePointer<Float>, Int, UnsafePointer<UInt16>, Int, Int, UnsafeMutablePointer<Float>, Int,
                             Int, Int, UnsafeMutableRawPointer?, Int) -> Int32
        var products: [(String, Product)] = [
            ("sgemm", { x, xs, w, ws, k, c, cs, n0, n1, s, size in
                beats_half_gemm_sgemm(BEATS_HALF_PORTABLE, BEATS_HALF_F16, plainSGEMM, x, xs, 2, w, ws, k, c, cs, n0, n1, s, size)
            }),
        ]
        if HalfConversionVariant.avx2.isAvailable {
            products.append(("avx2", { x, xs, w, ws, k, c, cs, n0, n1, s, size in
                beats_half_gemm_avx2(BEATS_HALF_F16, x, xs, 2, w, ws, k, c, cs, n0, n1, s, size)
            }))
        }
        x.withUnsafeBufferPointer { xp in
            w.withUnsafeBufferPointer { wp in
                c.withUnsafeMutableBufferPointer { cp in
                    let (x, w, c) = (xp.baseAddress!, wp.baseAddress!, cp.baseAddress!)
                    for (name, product) in products {
                        #expect(product(x, 8, w, 8, 8, c, 8, 0, 8, scratch.pointer, size - 1) == BEATS_ERROR_INVALID_ARGUMENT.rawValue, "\(name)")
                        #expect(product(x, 8, w, 8, 8, c, 8, 0, 8, scratch.pointer + 16, size) == BEATS_ERROR_MISALIGNED.rawValue, "\(name)")
                        #expect(product(x, 8, w, 8, 8, c, 8, 0, 8, nil, size) == BEATS_ERROR_INVALID_ARGUMENT.rawValue, "\(name)")
                        #expect(product(x, 7, w, 8, 8, c, 8, 0, 8, scratch.pointer, size) == BEATS_ERROR_INVALID_ARGUMENT.rawValue, "\(name)")
                        #expect(product(x, 8, w, 7, 8, c, 8, 0, 8, scratch.pointer, size) == BEATS_ERROR_INVALID_ARGUMENT.rawValue, "\(name)")
                        #expect(product(x, 8, w, 8, 8, c, 7, 0, 8, scratch.pointer, size) == BEATS_ERROR_INVALID_ARGUMENT.rawValue, "\(name)")
                        #expect(product(x, 8, w, 8, 8, c, 8, 6, 5, scratch.pointer, size) == BEATS_ERROR_INVALID_ARGUMENT.rawValue, "\(name)")
                        #expect(product(x, 8, w, 8, 8, c, 8, 3, 3, nil, 0) == BEATS_OK.rawValue, "\(name): empty range")
                        // K = 0: an empty sum, zeros in the range only.
                        for index in 0..<16 { c[index] = 5 }
                        #expect(product(x, 8, w, 8, 0, c, 8, 1, 7, scratch.pointer, size) == BEATS_OK.rawValue, "\(name)")
                        #expect(Array(UnsafeBufferPointer(start: c, count: 16)) == [5, 0, 0, 0, 0, 0, 0, 5, 5, 0, 0, 0, 0, 0, 0, 5], "\(name)")
                    }
                    let badFormat = beats_half_gemm_sgemm(BEATS_HALF_PORTABLE, beats_half_format(rawValue: 5), plainSGEMM, x, 8, 2, w,
                                                          8, 8, c, 8, 0, 8, scratch.pointer, size)
                    #expect(badFormat == BEATS_ERROR_INVALID_ARGUMENT.rawValue)
                    let noSGEMM = beats_half_gemm_sgemm(BEATS_HALF_PORTABLE, BEATS_HALF_F16, nil, x, 8, 2, w, 8, 8, c, 8, 0, 8,
                                                        scratch.pointer, size)
                    #expect(noSGEMM == BEATS_ERROR_INVALID_ARGUMENT.rawValue)
                }
            }
        }
    }
}
