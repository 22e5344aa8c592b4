import BEATsTestSupport
import CBEATsKernels
import Testing

/// Ragged sizes around the tiles (4 and 8 rows, 16-row panels).
private let int4RaggedSizes = [1, 3, 5, 9, 17, 33, 70]

@Suite("Int4 GEMM")
struct Int4GemmTests {
    /// Runs `variant` and the scalar kernel on the same problem and ranges; both outputs start from the
    /// same random contents (cells outside the range must keep them).
    private func compare(_ variant: KernelVariant, _ problem: Int4Problem, packed: PackedInt4, rows: Range<Int>,
                         columns: Range<Int>, seed: UInt64) {
        var random = SplitMix64(seed: seed)
        let initial = (0..<(problem.m * problem.outputStride)).map { _ in Float.random(in: -2...2, using: &random) }
        var expected = initial, actual = initial
        #expect(KernelVariant.scalar.int4Gemm(problem, packed: packed, into: &expected, rows: rows, columns: columns) == KernelStatus.ok)
        #expect(variant.int4Gemm(problem, packed: packed, into: &actual, rows: rows, columns: columns) == KernelStatus.ok)
        #expect(sameBits(expected, actual),
                "\(variant) M=\(problem.m) N=\(problem.n) K=\(problem.k) G=\(problem.group) rows \(rows) columns \(columns): \(firstDifference(expected, actual))")
    }

    /// Compares `variant` with scalar on every shape (whole and a random sub-block), or — where this CPU
    /// cannot run it — checks that it refuses with BEATS_ERROR_UNAVAILABLE and says so in the log.
    private func compareOrConfirmUnavailable(_ variant: KernelVariant, _ shapes: [(m: Int, n: Int, k: Int, group: Int)],
                                             seed: UInt64) throws {
        guard variant.int4Available else {
            let problem = Int4Problem.random(m: 2, n: 3, k: 32, group: 32, seed: seed)
            var c = [Float](repeating: 7, count: 6)
            #expect(variant.int4Gemm(problem, packed: try problem.packed(), into: &c, rows: 0..<2, columns: 0..<3) == KernelStatus.unavailable)
            #expect(c == [Float](repeating: 7, count: 6))
            print("NOTE: \(variant) int4 GEMM NOT RUN — this CPU lacks it (features 0x\(String(beats_cpu_features(), radix: 16))); only its refusal was checked")
            return
        }
        var random = SplitMix64(seed: seed)
        for (index, shape) in shapes.enumerated() {
            let problem = Int4Problem.random(m: shape.m, n: shape.n, k: shape.k, group: shape.group, seed: seed &+ UInt64(index),
                                             withBias: index % 4 != 3, padding: index % 3)
            let packed = try problem.packed()
            compare(variant, problem, packed: packed, rows: 0..<shape.m, columns: 0..<shape.n, seed: seed ^ 0xA5)
            let rowStart = Int.random(in: 0..<shape.m, using: &random), columnStart = Int.random(in: 0..<shape.n, using: &random)
            let rows = rowStart..<Int.random(in: (rowStart + 1)...shape.m, using: &random)
            let columns = columnStart..<Int.random(in: (columnStart + 1)...shape.n, using: &random)
            compare(variant, problem, packed: packed, rows: rows, columns: columns, seed: seed ^ 0x5A)
        }
    }

    @Test("variant equals scalar bitwise on ragged shapes", arguments: [KernelVariant.avx2, .avx512vnni], [32, 64, 128])
    func raggedShapesMatchScalar(variant: KernelVariant, group: Int) throws {
        var shapes: [(m: Int, n: Int, k: Int, group: Int)] = []
        for m in int4RaggedSizes {
            for n in int4RaggedSizes { shapes.append((m, n, group * (1 + (m + n) % 3), group)) }
        }
        try compareOrConfirmUnavailable(variant, shapes, seed: UInt64(group) &* 7919)
    }

    @Test("variant equals scalar bitwise on model-sized shapes", arguments: [KernelVariant.avx2, .avx512vnni])
    func largeShapesMatchScalar(variant: KernelVariant) throws {
        let shapes: [(m: Int, n: Int, k: Int, group: Int)] = [
            (496, 48, 768, 32), (33, 768, 3072, 128), (70, 200, 768, 64), (9, 65, 3072, 32), (5, 3072, 768, 32), (3, 40, 16384, 128),
        ]
        try compareOrConfirmUnavailable(variant, shapes, seed: 424_243)
    }

    @Test("equals the float64 product of the dequantized operands up to float rounding", arguments: KernelVariant.allCases)
    func matchesFloat64Reference(variant: KernelVariant) throws {
        guard variant.int4Available else { return try compareOrConfirmUnavailable(variant, [], seed: 3) }
        let unitRoundoff = 0x1p-24
        for (index, shape) in [(17, 33, 96, 32), (4, 40, 768, 64), (6, 31, 3072, 128), (9, 18, 768, 32)].enumerated() {
            let problem = Int4Problem.random(m: shape.0, n: shape.1, k: shape.2, group: shape.3, seed: 77 &+ UInt64(index))
            var c = [Float](repeating: .nan, count: shape.0 * shape.1)
            #expect(variant.int4Gemm(problem, packed: try problem.packed(), into: &c, rows: 0..<shape.0, columns: 0..<shape.1) == KernelStatus.ok)
            for row in 0..<shape.0 {
                for column in 0..<shape.1 {
                    let (expected, magnitude) = problem.reference(row: row, column: column)
                    let got = Double(c[row * shape.1 + column])
                    // float32 rounds each group's two products and its sum, the running sum (at most
                    // groups + 2 roundings of partial sums no larger than `magnitude`), the a_scale product
                    // and the bias sum.
                    let bound = Double(problem.groups + 4) * unitRoundoff * magnitude + 2 * unitRoundoff * abs(got) + 1e-30
                    #expect(abs(got - expected) <= bound, "\(variant) G=\(shape.3) [\(row), \(column)]: \(got) vs \(expected)")
                }
            }
        }
    }

    @Test("int16 worst cases stay exact: every q = 15 against −128 or alternating ±", arguments: KernelVariant.allCases)
    func extremesAreExact(variant: KernelVariant) throws {
        guard variant.int4Available else { return try compareOrConfirmUnavailable(variant, [], seed: 4) }
        for group in [32, 64, 128] {
            let k = 8192, m = 3, n = 17 // |Σ| ≤ 128·15·8192 < 2^24: the float sum of exact group dots stays exact
            var problem = Int4Problem.random(m: m, n: n, k: k, group: group, seed: UInt64(group), withBias: false)
            for column in 0..<k {
                problem.activations[column] = -128                                 // every pair −3840
                problem.activations[k + column] = column % 2 == 0 ? 127 : -128     // mixed signs
                problem.activations[2 * k + column] = 127
            }
            problem.recomputeSums()
            problem.values = [UInt8](repeating: 15, count: n * k)
            problem.scales = [UInt16](repeating: 0x3c00, count: n * problem.groups)   // 1.0
            problem.minimums = [UInt16](repeating: 0, count: n * problem.groups)
            problem.activationScales = [1, 1, 1]
            var c = [Float](repeating: .nan, count: m * n)
            #expect(variant.int4Gemm(problem, packed: try problem.packed(), into: &c, rows: 0..<m, columns: 0..<n) == KernelStatus.ok)
            #expect(c[0] == Float(-128 * 15 * k), "\(variant) G=\(group)")
            #expect(c[n] == Float(15 * (127 - 128) * k / 2), "\(variant) G=\(group)")
            #expect(c[2 * n + 16] == Float(127 * 15 * k), "\(variant) G=\(group)")
        }
    }

    @Test("the minimum term alone: q = 0 gives a_scale · Σ_g minimum · asum exactly", arguments: KernelVariant.allCases)
    func minimumTerm(variant: KernelVariant) throws {
        guard variant.int4Available else { return try compareOrConfirmUnavailable(variant, [], seed: 5) }
        var problem = Int4Problem.random(m: 5, n: 20, k: 256, group: 64, seed: 6, withBias: false)
        problem.values = [UInt8](repeating: 0, count: problem.n * problem.k)
        problem.minimums = (0..<(problem.n * problem.groups)).map { UInt16(0x3c00 + $0 % 7) | ($0 % 2 == 0 ? 0x8000 : 0) }
        problem.activationScales = [Float](repeating: 1, count: 5)
        var c = [Float](repeating: .nan, count: 5 * 20)
        #expect(variant.int4Gemm(problem, packed: try problem.packed(), into: &c, rows: 0..<5, columns: 0..<20) == KernelStatus.ok)
        for row in 0..<5 {
            for column in 0..<20 {
                // The same float32 steps: 0·scale + minimum·asum per group, summed from 0 in group order.
                var acc: Float = 0
                for g in 0..<problem.groups {
                    let scaled = beats_q4_half_to_float(problem.scales[column * problem.groups + g]) * 0
                    let shifted = beats_q4_half_to_float(problem.minimums[column * problem.groups + g]) * Float(problem.sums[row * problem.sumsStride + g])
                    acc = acc + (scaled + shifted)
                }
                #expect(c[row * 20 + column].bitPattern == acc.bitPattern, "\(variant) [\(row), \(column)]")
            }
        }
    }

    @Test("row and column ranges split the work exactly and write nothing outside", arguments: KernelVariant.allCases)
    func rangesSplitWork(variant: KernelVariant) throws {
        guard variant.int4Available else { return try compareOrConfirmUnavailable(variant, [], seed: 10) }
        let (m, n, k) = (37, 100, 192)
        let problem = Int4Problem.random(m: m, n: n, k: k, group: 64, seed: 11, padding: 2)
        let packed = try problem.packed()
        let stride = problem.outputStride
        var whole = [Float](repeating: -99, count: m * stride)
        #expect(variant.int4Gemm(problem, packed: packed, into: &whole, rows: 0..<m, columns: 0..<n) == KernelStatus.ok)
        var pieces = [Float](repeating: -99, count: m * stride)
        for rows in [0..<13, 13..<14, 14..<m] {
            for columns in [0..<7, 7..<40, 40..<41, 41..<n] {
                #expect(variant.int4Gemm(problem, packed: packed, into: &pieces, rows: rows, columns: columns) == KernelStatus.ok)
            }
        }
        #expect(sameBits(whole, pieces))
        for row in 0..<m { #expect(whole[(row * stride + n)..<(row * stride + stride)].allSatisfy { $0 == -99 }) }
        var block = [Float](repeating: -99, count: m * stride)
        #expect(variant.int4Gemm(problem, packed: packed, into: &block, rows: 5..<9, columns: 20..<23) == KernelStatus.ok)
        for row in 0..<m {
            for column in 0..<stride {
                let inside = (5..<9).contains(row) && (20..<23).contains(column)
                let value = block[row * stride + column]
                #expect(inside ? value.bitPattern == whole[row * stride + column].bitPattern : value == -99)
            }
        }
        var untouched = [Float](repeating: -99, count: m * stride)
        #expect(variant.int4Gemm(problem, packed: packed, into: &untouched, rows: 3..<3, columns: 0..<n) == KernelStatus.ok)
        #expect(variant.int4Gemm(problem, packed: packed, into: &untouched, rows: 0..<m, columns: 50..<50) == KernelStatus.ok)
        #expect(untouched.allSatisfy { $0 == -99 })
    }

    @Test("bad arguments are refused with the right status", arguments: KernelVariant.allCases)
    func badArguments(variant: KernelVariant) throws {
        guard variant.int4Available else { return try compareOrConfirmUnavailable(variant, [], seed: 12) }
        let problem = Int4Problem.random(m: 4, n: 20, k: 64, group: 32, seed: 13)
        let packed = try problem.packed()
        let gemm = variant.int4GemmFunction
        var c = [Float](repeating: 0, count: 4 * 20)
        let a = problem.activations, scales = problem.activationScales, sums = problem.sums
        #expect(gemm(a, 64, scales, sums, 2, packed.pointer, nil, &c, 20, 0, 4, 0, 20) == KernelStatus.ok)
        #expect(gemm(a, 64, scales, sums, 2, packed.pointer, nil, &c, 20, 0, 4, 0, 21) == KernelStatus.invalidArgument)
        #expect(gemm(a, 64, scales, sums, 2, packed.pointer, nil, &c, 20, 3, 2, 0, 20) == KernelStatus.invalidArgument)
        #expect(gemm(a, 63, scales, sums, 2, packed.pointer, nil, &c, 20, 0, 4, 0, 20) == KernelStatus.invalidArgument)
        #expect(gemm(a, 64, scales, sums, 1, packed.pointer, nil, &c, 20, 0, 4, 0, 20) == KernelStatus.invalidArgument)
        #expect(gemm(a, 64, scales, sums, 2, packed.pointer, nil, &c, 19, 0, 4, 0, 20) == KernelStatus.invalidArgument)
        #expect(gemm(nil, 64, scales, sums, 2, packed.pointer, nil, &c, 20, 0, 4, 0, 20) == KernelStatus.invalidArgument)
        #expect(gemm(a, 64, nil, sums, 2, packed.pointer, nil, &c, 20, 0, 4, 0, 20) == KernelStatus.invalidArgument)
        #expect(gemm(a, 64, scales, nil, 2, packed.pointer, nil, &c, 20, 0, 4, 0, 20) == KernelStatus.invalidArgument)
        #expect(gemm(a, 64, scales, sums, 2, packed.pointer, nil, nil, 20, 0, 4, 0, 20) == KernelStatus.invalidArgument)
        #expect(gemm(a, 64, scales, sums, 2, nil, nil, &c, 20, 0, 4, 0, 20) == Int4Status.badPackedInt4)
        let garbage = UnsafeMutableRawPointer.allocate(byteCount: packed.byteCount + 64, alignment: 64)
        defer { garbage.deallocate() }
        garbage.initializeMemory(as: UInt8.self, repeating: 0, count: packed.byteCount + 64)
        #expect(gemm(a, 64, scales, sums, 2, garbage, nil, &c, 20, 0, 4, 0, 20) == Int4Status.badPackedInt4)
        (garbage + 32).copyMemory(from: packed.pointer, byteCount: packed.byteCount)
        #expect(gemm(a, 64, scales, sums, 2, garbage + 32, nil, &c, 20, 0, 4, 0, 20) == KernelStatus.misaligned)
        // An int8 packed buffer is not an int4 one.
        let int8 = try PackedWeights(values: [Int8](repeating: 1, count: 20 * 64), rows: 20, columns: 64)
        #expect(gemm(a, 64, scales, sums, 2, int8.pointer, nil, &c, 20, 0, 4, 0, 20) == Int4Status.badPackedInt4)
    }

    /// The activation-sum entry points: the dispatcher and each form.
    typealias SumsFunction = @convention(c) (UnsafePointer<Int8>?, Int, Int, Int, Int, UnsafeMutablePointer<Int32>?, Int) -> Int32
    static var sumsFunctions: [(name: String, function: SumsFunction, available: Bool)] {
        [("dispatch", beats_q4_activation_sums, true), ("scalar", beats_q4_activation_sums_scalar, true),
         ("avx2", beats_q4_activation_sums_avx2, KernelVariant.avx2.isAvailable)]
    }

    @Test("activation group sums: exact in every form, with strides, and the group size checked")
    func activationSums() {
        var random = SplitMix64(seed: 30)
        for (name, sumsFunction, available) in Self.sumsFunctions {
            guard available else {
                var sums = [Int32](repeating: 0, count: 1)
                #expect(sumsFunction([Int8](repeating: 0, count: 32), 32, 1, 32, 32, &sums, 1) == KernelStatus.unavailable)
                print("NOTE: \(name) activation sums NOT RUN — this CPU lacks it; only its refusal was checked")
                continue
            }
            for group in [32, 64, 128] {
                let rows = 5, columns = group * 3, aStride = columns + 5, sumsStride = 4
                let a = (0..<(rows * aStride)).map { _ in Int8(truncatingIfNeeded: random.next()) }
                var sums = [Int32](repeating: 0x5555, count: rows * sumsStride)
                #expect(sumsFunction(a, aStride, rows, columns, group, &sums, sumsStride) == KernelStatus.ok)
                for row in 0..<rows {
                    for g in 0..<3 {
                        let want = a[(row * aStride + g * group)..<(row * aStride + (g + 1) * group)].reduce(Int32(0)) { $0 + Int32($1) }
                        #expect(sums[row * sumsStride + g] == want, "\(name)")
                    }
                    #expect(sums[row * sumsStride + 3] == 0x5555, "stride padding untouched")
                }
            }
            for extreme: Int8 in [-128, 127] {
                var one: [Int32] = [0]
                #expect(sumsFunction([Int8](repeating: extreme, count: 128), 128, 1, 128, 128, &one, 1) == KernelStatus.ok)
                #expect(one == [Int32(extreme) * 128], "\(name)")
            }
            let a = [Int8](repeating: 1, count: 256)
            var sums = [Int32](repeating: 0, count: 8)
            #expect(sumsFunction(a, 96, 1, 96, 64, &sums, 8) == Int4Status.groupSize)
            #expect(sumsFunction(a, 64, 1, 64, 16, &sums, 8) == Int4Status.groupSize)
            #expect(sumsFunction(a, 64, 1, 0, 32, &sums, 8) == Int4Status.groupSize)
            #expect(sumsFunction(a, 63, 1, 64, 32, &sums, 8) == KernelStatus.invalidArgument)
            #expect(sumsFunction(a, 64, 1, 64, 32, &sums, 1) == KernelStatus.invalidArgument)
            #expect(sumsFunction(nil, 64, 1, 64, 32, &sums, 8) == KernelStatus.invalidArgument)
            #expect(sumsFunction(nil, 64, 0, 64, 32, nil, 8) == KernelStatus.ok)
        }
    }

    @Test("quantize → pack → GEMM on float inputs tracks the float product within int4 precision")
    func endToEnd() throws {
        var random = SplitMix64(seed: 40)
        let (m, n, k, group) = (8, 48, 768, 32)
        let w = (0..<(n * k)).map { _ in Float.random(in: -0.1...0.1, using: &random) }
        let x = (0..<(m * k)).map { _ in Float.random(in: -2...2, using: &random) }
        var values = [UInt8](repeating: 0, count: n * k)
        var scales = [UInt16](repeating: 0, count: n * k / group), minimums = scales
        var stats = [beats_weight_row_stats](repeating: beats_weight_row_stats(), count: n)
        #expect(beats_q4_quantize_weights(w, k, n, k, group, &values, k, &scales, &minimums, &stats) == KernelStatus.ok)
        let packed = try PackedInt4(values: values, scales: scales, minimums: minimums, rows: n, columns: k, group: group)
        var a = [Int8](repeating: 0, count: m * k)
        var aScales = [Float](repeating: 0, count: m)
        #expect(beats_quantize_rows_scalar(x, k, m, k, BEATS_ACTIVATION_LEVELS_INT8, &a, k, &aScales) == KernelStatus.ok)
        var sums = [Int32](repeating: 0, count: m * k / group)
        #expect(beats_q4_activation_sums(a, k, m, k, group, &sums, k / group) == KernelStatus.ok)
        var c = [Float](repeating: .nan, count: m * n)
        #expect(beats_gemm_q4_scalar(a, k, aScales, sums, k / group, packed.pointer, nil, &c, n, 0, m, 0, n) == KernelStatus.ok)
        var errorSquared = 0.0, normSquared = 0.0
        for row in 0..<m {
            for column in 0..<n {
                var exact = 0.0
                for index in 0..<k { exact += Double(x[row * k + index]) * Double(w[column * k + index]) }
                errorSquared += (Double(c[row * n + column]) - exact) * (Double(c[row * n + column]) - exact)
                normSquared += exact * exact
            }
        }
        // Uniform weights in a group of 32: 15 steps over the group's range, relative RMS weight error
        // about 1/(15·√3)·(range/RMS) ≈ 7 %; the output error is of that order, not larger.
        let relative = (errorSquared / normSquared).squareRoot()
        let weightError = (stats.reduce(0) { $0 + $1.squared_error } / stats.reduce(0) { $0 + $1.squared_norm }).squareRoot()
        #expect(weightError > 0.03 && weightError < 0.12, "weight relative RMS error \(weightError)")
        #expect(relative < 1.5 * weightError, "output relative RMS error \(relative) vs weights' \(weightError)")
    }

    @Test("int4 availability follows the CPU features (AVX2 also needs F16C); statuses have descriptions")
    func availabilityAndStatuses() {
        let features = beats_cpu_features()
        #expect(KernelVariant.scalar.int4Available)
        #if arch(x86_64)
        for variant in KernelVariant.allCases {
            #expect(variant.int4Available == (features & variant.int4RequiredFeatures == variant.int4RequiredFeatures), "\(variant)")
            #expect(!variant.int4Available || variant.isAvailable)
        }
        #else
        #expect(!KernelVariant.avx2.int4Available && !KernelVariant.avx512vnni.int4Available)
        #endif
        #expect(beats_q4_kernel_available(beats_kernel_variant(rawValue: 0)) == 0)
        let descriptions = [Int4Status.groupSize, Int4Status.int4OutOfRange, Int4Status.notFloat16, Int4Status.badPackedInt4]
            .map { String(cString: beats_status_description($0)) }
        #expect(Set(descriptions).count == 4 && !descriptions.contains("unknown status"))
        #expect(descriptions[0].contains("32, 64 or 128"))
        print("int4 kernels: " + KernelVariant.allCases.map { "\($0): \($0.int4Available ? "runs here" : "NOT available on this CPU")" }.joined(separator: "; "))
    }
}
