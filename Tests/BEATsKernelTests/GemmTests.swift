import BEATsTestSupport
import CBEATsKernels
import Testing

/// A GEMM shape; `padding` adds unused elements at the end of every activation and output row.
struct GemmShape: Sendable, CustomStringConvertible {
    let m: Int, n: Int, k: Int
    var padding = 0
    var description: String { "M=\(m) N=\(n) K=\(k)" + (padding > 0 ? " (+\(padding) stride)" : "") }
}

/// Ragged sizes around the tile sizes (4 and 8 rows, 16 and 32 columns, 4-byte k-quads).
private let raggedSizes = [1, 3, 17, 31, 33, 65]

/// Larger shapes, including the full model's K and N; M kept small enough for the scalar reference.
private let largeShapes: [GemmShape] = [
    GemmShape(m: 5, n: 768, k: 3072), GemmShape(m: 33, n: 3072, k: 768), GemmShape(m: 70, n: 768, k: 768, padding: 3),
    GemmShape(m: 9, n: 65, k: 3072, padding: 1), GemmShape(m: 496, n: 48, k: 768),
]

@Suite("int8 GEMM")
struct GemmTests {
    /// Runs `variant` and the scalar kernel on the same problem and ranges; both outputs start from
    /// the same random contents (cells outside the range must keep them).
    private func compare(_ variant: KernelVariant, _ problem: GemmProblem, rows: Range<Int>, columns: Range<Int>,
                         seed: UInt64) throws {
        let packed = try problem.packed()
        var random = SplitMix64(seed: seed)
        let initial = (0..<(problem.m * problem.outputStride)).map { _ in Float.random(in: -2...2, using: &random) }
        var expected = initial, actual = initial
        let scalarStatus = KernelVariant.scalar.gemm(problem, packed: packed, into: &expected, rows: rows, columns: columns)
        let status = variant.gemm(problem, packed: packed, into: &actual, rows: rows, columns: columns)
        #expect(scalarStatus == KernelStatus.ok)
        #expect(status == KernelStatus.ok)
        #expect(sameBits(expected, actual),
                "\(variant) M=\(problem.m) N=\(problem.n) K=\(problem.k) rows \(rows) columns \(columns): first difference \(firstDifference(expected, actual))")
    }

    /// Either compares `variant` with scalar, or — where this CPU cannot run it — checks that it refuses
    /// (BEATS_ERROR_UNAVAILABLE) and says so in the test log: the variant is then NOT tested here.
    private func compareOrConfirmUnavailable(_ variant: KernelVariant, _ shapes: [GemmShape], seed: UInt64,
                                             level: Int8 = 127) throws {
        guard variant.isAvailable else {
            let problem = GemmProblem.random(m: 2, n: 3, k: 5, seed: seed)
            var c = [Float](repeating: 7, count: 6)
            let status = variant.gemm(problem, packed: try problem.packed(), into: &c, rows: 0..<2, columns: 0..<3)
            #expect(status == KernelStatus.unavailable)
            #expect(c == [Float](repeating: 7, count: 6))
            print("NOTE: \(variant) GEMM NOT RUN — this CPU lacks it (features 0x\(String(beats_cpu_features(), radix: 16))); only its refusal was checked")
            return
        }
        var random = SplitMix64(seed: seed)
        for (index, shape) in shapes.enumerated() {
            let problem = GemmProblem.random(m: shape.m, n: shape.n, k: shape.k, seed: seed &+ UInt64(index),
                                             withBias: index % 5 != 4, padding: shape.padding, level: level)
            try compare(variant, problem, rows: 0..<shape.m, columns: 0..<shape.n, seed: seed ^ 0xA5)
            // A random sub-block, as a thread's share of the work would be.
            let rowStart = Int.random(in: 0..<shape.m, using: &random), columnStart = Int.random(in: 0..<shape.n, using: &random)
            let rows = rowStart..<Int.random(in: (rowStart + 1)...shape.m, using: &random)
            let columns = columnStart..<Int.random(in: (columnStart + 1)...shape.n, using: &random)
            try compare(variant, problem, rows: rows, columns: columns, seed: seed ^ 0x5A)
        }
    }

    @Test("variant equals scalar bitwise on ragged shapes", arguments: [KernelVariant.avx2, .avx512vnni], raggedSizes)
    func raggedShapesMatchScalar(variant: KernelVariant, k: Int) throws {
        var shapes: [GemmShape] = []
        for m in raggedSizes {
            for n in raggedSizes { shapes.append(GemmShape(m: m, n: n, k: k, padding: (m + n) % 3)) }
        }
        try compareOrConfirmUnavailable(variant, shapes, seed: UInt64(k) &* 7919)
    }

    @Test("variant equals scalar bitwise on model-sized shapes", arguments: [KernelVariant.avx2, .avx512vnni])
    func largeShapesMatchScalar(variant: KernelVariant) throws {
        try compareOrConfirmUnavailable(variant, largeShapes, seed: 424_242)
    }

    @Test("7-bit activations (the AVX2 offset path) equal scalar bitwise", arguments: [KernelVariant.avx2, .avx512vnni],
          [3, 33, 768])
    func sevenBitActivationsMatchScalar(variant: KernelVariant, k: Int) throws {
        var shapes: [GemmShape] = []
        for m in [1, 4, 17, 200] {
            for n in [1, 16, 33] { shapes.append(GemmShape(m: m, n: n, k: k, padding: m % 2)) }
        }
        try compareOrConfirmUnavailable(variant, shapes, seed: 0x7B17 &+ UInt64(k), level: 63)
    }

    @Test("blocks of 7-bit and full int8 rows in one product equal scalar bitwise", arguments: [KernelVariant.avx2, .avx512vnni])
    func mixedBlocksMatchScalar(variant: KernelVariant) throws {
        guard variant.isAvailable else { return try compareOrConfirmUnavailable(variant, [], seed: 14) }
        // 7-bit everywhere except one row far down, so some row blocks take the offset path and others not.
        var problem = GemmProblem.random(m: 300, n: 40, k: 768, seed: 15, level: 63)
        for column in 0..<768 where column % 5 == 0 { problem.activations[250 * 768 + column] = column % 2 == 0 ? 127 : -127 }
        try compare(variant, problem, rows: 0..<300, columns: 0..<40, seed: 16)
        try compare(variant, problem, rows: 100..<290, columns: 3..<37, seed: 17)
    }

    @Test("K beyond the scratch block (unpacked path) equals scalar bitwise", arguments: [KernelVariant.avx2, .avx512vnni])
    func largeKMatchesScalar(variant: KernelVariant) throws {
        let shapes = [GemmShape(m: 6, n: 20, k: 16_385), GemmShape(m: 9, n: 33, k: 20_003, padding: 1)]
        try compareOrConfirmUnavailable(variant, shapes, seed: 18)
        try compareOrConfirmUnavailable(variant, shapes, seed: 19, level: 63)
    }

    @Test("K = 1 and single rows and columns", arguments: KernelVariant.allCases)
    func degenerateShapes(variant: KernelVariant) throws {
        try compareOrConfirmUnavailable(variant, [
            GemmShape(m: 1, n: 1, k: 1), GemmShape(m: 7, n: 40, k: 1), GemmShape(m: 1, n: 1, k: 3072),
            GemmShape(m: 1, n: 3072, k: 2), GemmShape(m: 12, n: 1, k: 4),
        ], seed: 99)
    }

    @Test("int32 accumulation is exact: unit scales give Float(Σ a·w) exactly", arguments: KernelVariant.allCases)
    func accumulationIsExact(variant: KernelVariant) throws {
        guard variant.isAvailable else { return try compareOrConfirmUnavailable(variant, [], seed: 1) }
        for (m, n, k) in [(3, 17, 33), (9, 40, 768), (4, 16, 3072)] {
            var problem = GemmProblem.random(m: m, n: n, k: k, seed: UInt64(m * n * k), withBias: false)
            problem.activationScales = [Float](repeating: 1, count: m)
            problem.weightScales = [Float](repeating: 1, count: n)
            var c = [Float](repeating: .nan, count: m * n)
            #expect(variant.gemm(problem, packed: try problem.packed(), into: &c, rows: 0..<m, columns: 0..<n) == KernelStatus.ok)
            for row in 0..<m {
                for column in 0..<n {
                    let exact = problem.exactAccumulator(row: row, column: column)
                    #expect(c[row * n + column] == Float(exact), "\(variant) [\(row), \(column)] K=\(k)")
                }
            }
        }
    }

    @Test("±127 extremes at the largest K stay exact (no int16 saturation, no int32 overflow)", arguments: KernelVariant.allCases)
    func extremesAtLargestK(variant: KernelVariant) throws {
        guard variant.isAvailable else { return try compareOrConfirmUnavailable(variant, [], seed: 2) }
        let k = Int(BEATS_MAX_COLUMNS)
        // Row 0: all +127 · +127 (the largest sum); row 1: all -127 against +127 (the most negative);
        // row 2: signs alternating in step with the weights' so every vpmaddubsw pair is 2·127·127.
        let n = 3
        var activations = [Int8](repeating: 0, count: 3 * k)
        var weights = [Int8](repeating: 0, count: n * k)
        for index in 0..<k {
            activations[index] = 127
            activations[k + index] = -127
            activations[2 * k + index] = index % 4 < 2 ? 127 : -127
            weights[index] = 127
            weights[k + index] = index % 4 < 2 ? 127 : -127
            weights[2 * k + index] = -127
        }
        let problem = GemmProblem(m: 3, n: n, k: k, activationStride: k, outputStride: n, activations: activations,
                                  activationScales: [1, 1, 1], weights: weights, weightScales: [1, 1, 1], bias: nil)
        var c = [Float](repeating: .nan, count: 3 * n)
        #expect(variant.gemm(problem, packed: try problem.packed(), into: &c, rows: 0..<3, columns: 0..<n) == KernelStatus.ok)
        for row in 0..<3 {
            for column in 0..<n {
                let exact = problem.exactAccumulator(row: row, column: column)
                #expect(abs(exact) <= Int64(127 * 127 * k))
                #expect(c[row * n + column] == Float(exact), "\(variant) [\(row), \(column)]")
            }
        }
        #expect(c[0] == Float(127 * 127 * k))
        #expect(c[2 * n + 1] == Float(127 * 127 * k))
    }

    @Test("activations of -128 (not produced by the quantizer, but valid int8) are exact", arguments: KernelVariant.allCases)
    func minimumActivationIsExact(variant: KernelVariant) throws {
        guard variant.isAvailable else { return try compareOrConfirmUnavailable(variant, [], seed: 20) }
        for k in [5, 768, 20_000] {
            var problem = GemmProblem.random(m: 5, n: 18, k: k, seed: UInt64(k), withBias: false)
            problem.activationScales = [Float](repeating: 1, count: 5)
            problem.weightScales = [Float](repeating: 1, count: 18)
            for column in 0..<k {
                problem.activations[column] = -128                                 // all -128
                problem.activations[k + column] = column % 2 == 0 ? -128 : 127     // pairs at the int16 limit
            }
            for column in 0..<k { problem.weights[column] = 127; problem.weights[k + column] = -127 }
            var c = [Float](repeating: .nan, count: 5 * 18)
            #expect(variant.gemm(problem, packed: try problem.packed(), into: &c, rows: 0..<5, columns: 0..<18) == KernelStatus.ok)
            for row in 0..<5 {
                for column in 0..<18 {
                    #expect(c[row * 18 + column] == Float(problem.exactAccumulator(row: row, column: column)), "\(variant) K=\(k) [\(row), \(column)]")
                }
            }
        }
    }

    @Test("equals the float64 product of the dequantized operands up to float rounding", arguments: KernelVariant.allCases)
    func matchesFloat64Reference(variant: KernelVariant) throws {
        guard variant.isAvailable else { return try compareOrConfirmUnavailable(variant, [], seed: 3) }
        let unitRoundoff = 0x1p-24
        for (index, shape) in [GemmShape(m: 17, n: 33, k: 65), GemmShape(m: 4, n: 768, k: 768), GemmShape(m: 6, n: 31, k: 3072)].enumerated() {
            let problem = GemmProblem.random(m: shape.m, n: shape.n, k: shape.k, seed: 77 &+ UInt64(index))
            var c = [Float](repeating: .nan, count: shape.m * shape.n)
            #expect(variant.gemm(problem, packed: try problem.packed(), into: &c, rows: 0..<shape.m, columns: 0..<shape.n) == KernelStatus.ok)
            var worst = 0.0
            for row in 0..<shape.m {
                for column in 0..<shape.n {
                    // Σ_k (a·s_a)(w·s_w) + b in float64 (exact but for the final rounding of each term).
                    var product = 0.0
                    for kk in 0..<shape.k {
                        let a = Double(problem.activations[row * problem.activationStride + kk]) * Double(problem.activationScales[row])
                        let w = Double(problem.weights[column * shape.k + kk]) * Double(problem.weightScales[column])
                        product += a * w
                    }
                    let expected = product + Double(problem.bias![column])
                    let got = Double(c[row * shape.n + column])
                    // float32 rounds s_a·s_w, Float(acc), their product and the bias sum: ≤ 3u|P| + u|y|.
                    let bound = 3.0001 * unitRoundoff * abs(product) + unitRoundoff * abs(got) + 1e-12
                    #expect(abs(got - expected) <= bound, "\(variant) \(shape) [\(row), \(column)]: \(got) vs \(expected)")
                    worst = max(worst, abs(got - expected) / (abs(product) + abs(Double(problem.bias![column]))))
                }
            }
            #expect(worst < 4 * unitRoundoff, "worst error relative to |Σ| + |b|: \(worst)")
        }
    }

    @Test("zero activation rows give the bias", arguments: KernelVariant.allCases)
    func zeroRowsGiveBias(variant: KernelVariant) throws {
        guard variant.isAvailable else { return try compareOrConfirmUnavailable(variant, [], seed: 4) }
        let (m, n, k) = (5, 37, 70)
        var problem = GemmProblem.random(m: m, n: n, k: k, seed: 5)
        let x = [Float](repeating: 0, count: m * k)
        let quantized = variant.quantize(x, rows: m, columns: k, stride: k, maxLevel: BEATS_ACTIVATION_LEVELS_INT8)
        #expect(quantized.scales == [Float](repeating: 0, count: m))
        problem.activations = quantized.q
        problem.activationScales = quantized.scales
        var plain = [Float](repeating: .nan, count: m * n)
        let packed = try problem.packed()
        #expect(variant.gemm(problem, packed: packed, into: &plain, rows: 0..<m, columns: 0..<n) == KernelStatus.ok)
        let bias = problem.bias!
        for row in 0..<m {
            #expect(Array(plain[(row * n)..<(row * n + n)]) == bias)
        }
    }

    @Test("row and column ranges split the work exactly and write nothing outside", arguments: KernelVariant.allCases)
    func rangesSplitWork(variant: KernelVariant) throws {
        guard variant.isAvailable else { return try compareOrConfirmUnavailable(variant, [], seed: 10) }
        let (m, n, k) = (37, 100, 129)
        let problem = GemmProblem.random(m: m, n: n, k: k, seed: 11, padding: 2)
        let packed = try problem.packed()
        let stride = problem.outputStride
        var whole = [Float](repeating: -99, count: m * stride)
        #expect(variant.gemm(problem, packed: packed, into: &whole, rows: 0..<m, columns: 0..<n) == KernelStatus.ok)
        // Column splits off the 16-column panel boundaries, row splits off the tile boundaries.
        var pieces = [Float](repeating: -99, count: m * stride)
        for rows in [0..<13, 13..<14, 14..<m] {
            for columns in [0..<7, 7..<40, 40..<41, 41..<n] {
                #expect(variant.gemm(problem, packed: packed, into: &pieces, rows: rows, columns: columns) == KernelStatus.ok)
            }
        }
        #expect(sameBits(whole, pieces))
        // Padding columns of every output row are never written.
        for row in 0..<m { #expect(whole[(row * stride + n)..<(row * stride + stride)].allSatisfy { $0 == -99 }) }
        // A single interior block leaves everything else untouched.
        var block = [Float](repeating: -99, count: m * stride)
        #expect(variant.gemm(problem, packed: packed, into: &block, rows: 5..<9, columns: 20..<23) == KernelStatus.ok)
        for row in 0..<m {
            for column in 0..<stride {
                let inside = (5..<9).contains(row) && (20..<23).contains(column)
                let value = block[row * stride + column]
                #expect(inside ? value.bitPattern == whole[row * stride + column].bitPattern : value == -99)
            }
        }
        // Empty ranges do nothing and succeed.
        var untouched = [Float](repeating: -99, count: m * stride)
        #expect(variant.gemm(problem, packed: packed, into: &untouched, rows: 3..<3, columns: 0..<n) == KernelStatus.ok)
        #expect(variant.gemm(problem, packed: packed, into: &untouched, rows: 0..<m, columns: 50..<50) == KernelStatus.ok)
        #expect(untouched.allSatisfy { $0 == -99 })
    }

    @Test("bad arguments are refused with the right status", arguments: KernelVariant.allCases)
    func badArguments(variant: KernelVariant) throws {
        guard variant.isAvailable else { return try compareOrConfirmUnavailable(variant, [], seed: 12) }
        let problem = GemmProblem.random(m: 4, n: 20, k: 8, seed: 13)
        let packed = try problem.packed()
        var c = [Float](repeating: 0, count: 4 * 20)
        #expect(variant.gemm(problem, packed: packed, into: &c, rows: 0..<4, columns: 0..<21) == KernelStatus.invalidArgument)
        let narrow = GemmProblem(m: 4, n: 20, k: 8, activationStride: 7, outputStride: 20, activations: problem.activations,
                             activationScales: problem.activationScales, weights: problem.weights,
                             weightScales: problem.weightScales, bias: problem.bias)
        #expect(variant.gemm(narrow, packed: packed, into: &c, rows: 0..<4, columns: 0..<20) == KernelStatus.invalidArgument)
        let shortOutput = GemmProblem(m: 4, n: 20, k: 8, activationStride: 8, outputStride: 19, activations: problem.activations,
                                      activationScales: problem.activationScales, weights: problem.weights,
                                      weightScales: problem.weightScales, bias: problem.bias)
        #expect(variant.gemm(shortOutput, packed: packed, into: &c, rows: 0..<4, columns: 0..<20) == KernelStatus.invalidArgument)

        // A buffer that was never packed, and a packed buffer at an unaligned address.
        let garbage = UnsafeMutableRawPointer.allocate(byteCount: packed.byteCount + 64, alignment: 64)
        defer { garbage.deallocate() }
        garbage.initializeMemory(as: UInt8.self, repeating: 0, count: packed.byteCount + 64)
        let status = problem.activations.withUnsafeBufferPointer { a in
            variant.gemmFunction(a.baseAddress, 8, problem.activationScales, garbage, problem.weightScales, nil, &c, 20, 0, 4, 0, 20)
        }
        #expect(status == KernelStatus.badPackedWeights)
        (garbage + 8).copyMemory(from: packed.pointer, byteCount: packed.byteCount)
        let misaligned = problem.activations.withUnsafeBufferPointer { a in
            variant.gemmFunction(a.baseAddress, 8, problem.activationScales, garbage + 8, problem.weightScales, nil, &c, 20, 0, 4, 0, 20)
        }
        #expect(misaligned == KernelStatus.misaligned)
        let nullActivations = variant.gemmFunction(nil, 8, problem.activationScales, packed.pointer, problem.weightScales, nil, &c, 20, 0, 4, 0, 20)
        #expect(nullActivations == KernelStatus.invalidArgument)
    }
}
