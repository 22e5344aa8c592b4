import BEATsTestSupport
import CBEATsKernels
import Testing

@Suite("Activation quantization")
struct QuantizeTests {
    private static let columnCounts = [1, 7, 8, 31, 32, 33, 65, 768, 3072]

    /// Rows of assorted magnitudes, including exact ties and values far below the row's maximum.
    private func randomRows(rows: Int, columns: Int, stride: Int, seed: UInt64) -> [Float] {
        var random = SplitMix64(seed: seed)
        var x = [Float](repeating: .nan, count: rows * stride) // padding must never be read
        for row in 0..<rows {
            let magnitude = Float.random(in: 1e-3...1e3, using: &random)
            for column in 0..<columns {
                x[row * stride + column] = Float.random(in: -magnitude...magnitude, using: &random)
            }
        }
        return x
    }

    @Test("scale is max|x|/L and q·scale is within half a step of x", arguments: columnCounts, [Int32(127), 63, 1])
    func roundTrip(columns: Int, level: Int32) {
        let rows = 9, stride = columns + 3
        let x = randomRows(rows: rows, columns: columns, stride: stride, seed: UInt64(columns))
        let result = KernelVariant.scalar.quantize(x, rows: rows, columns: columns, stride: stride, maxLevel: level)
        #expect(result.status == KernelStatus.ok)
        for row in 0..<rows {
            let values = x[(row * stride)..<(row * stride + columns)]
            let maxAbs = values.map { abs($0) }.max()!
            let scale = result.scales[row]
            #expect(scale == maxAbs / Float(level))
            var sawExtreme = false
            for column in 0..<columns {
                let q = result.q[row * stride + column]
                #expect(abs(Int32(q)) <= level)
                // x/scale is rounded to float before rint: at most half an ulp of L ≤ 127 (2^-18) beyond 0.5.
                let error = abs(Double(x[row * stride + column]) - Double(q) * Double(scale))
                #expect(error <= Double(scale) * (0.5 + 0x1p-18), "row \(row) column \(column)")
                if Int32(abs(q)) == level { sawExtreme = true }
            }
            #expect(sawExtreme, "the largest |x| maps to ±L")
            // Bytes between rows are left alone.
            #expect(result.q[(row * stride + columns)..<(row * stride + stride)].allSatisfy { $0 == 0x55 })
        }
    }

    @Test("rounds halves to even and clamps to ±127")
    func roundsHalfToEven() {
        // max|x| = 127 makes the scale exactly 1, so x/scale is x.
        let x: [Float] = [127, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5, -127, 3.49999976, -0.49999997]
        for variant in KernelVariant.allCases where variant.isAvailable {
            let result = variant.quantize(x, rows: 1, columns: x.count, stride: x.count)
            #expect(result.scales == [1])
            #expect(result.q == [127, 0, 2, 2, 0, -2, -2, 126, -127, 3, 0], "\(variant)")
        }
    }

    @Test("zero, underflowing, NaN and infinite rows")
    func specialRows() {
        let columns = 40
        var x = [Float](repeating: 0, count: 4 * columns)
        x[columns + 3] = Float.leastNonzeroMagnitude * 63 // max/127 underflows to 0 → treated as a zero row
        x[2 * columns + 5] = .nan
        x[2 * columns + 6] = 2
        x[3 * columns + 7] = -.infinity
        x[3 * columns + 8] = 5
        for variant in KernelVariant.allCases where variant.isAvailable {
            let result = variant.quantize(x, rows: 4, columns: columns, stride: columns)
            #expect(result.status == KernelStatus.ok)
            #expect(result.scales[0] == 0 && result.scales[1] == 0, "\(variant)")
            #expect(result.q[0..<(2 * columns)].allSatisfy { $0 == 0 }, "\(variant)")
            #expect(result.scales[2].isNaN, "a NaN makes the row's scale NaN, so the GEMM output is NaN (\(variant))")
            #expect(result.q[(2 * columns)..<(3 * columns)].allSatisfy { $0 == 0 }, "\(variant)")
            #expect(result.scales[3] == .infinity, "\(variant)")
            #expect(result.q[(3 * columns)..<(4 * columns)].allSatisfy { $0 == 0 }, "x/Inf = 0 and Inf/Inf = NaN → 0 (\(variant))")
        }
        // Tiny but representable: scale = 2^-149 (the smallest subnormal) still quantizes exactly.
        let tiny: [Float] = [127 * Float.leastNonzeroMagnitude, -Float.leastNonzeroMagnitude]
        let result = KernelVariant.scalar.quantize(tiny, rows: 1, columns: 2, stride: 2)
        #expect(result.scales == [Float.leastNonzeroMagnitude])
        #expect(result.q == [127, -1])
    }

    @Test("variant equals scalar bitwise (L = 127 and 63)", arguments: [KernelVariant.avx2, .avx512vnni], columnCounts)
    func variantMatchesScalar(variant: KernelVariant, columns: Int) {
        let rows = 6, stride = columns + 1
        var x = randomRows(rows: rows, columns: columns, stride: stride, seed: 1000 &+ UInt64(columns))
        for column in 0..<columns { x[stride + column] = 0 } // a zero row
        guard variant.isAvailable else {
            let refused = variant.quantize(x, rows: rows, columns: columns, stride: stride)
            #expect(refused.status == KernelStatus.unavailable)
            print("NOTE: \(variant) quantizer NOT RUN — this CPU lacks it; only its refusal was checked")
            return
        }
        for level in [BEATS_ACTIVATION_LEVELS_INT8, BEATS_ACTIVATION_LEVELS_7BIT] {
            let expected = KernelVariant.scalar.quantize(x, rows: rows, columns: columns, stride: stride, maxLevel: level)
            let actual = variant.quantize(x, rows: rows, columns: columns, stride: stride, maxLevel: level)
            #expect(actual.status == KernelStatus.ok)
            #expect(actual.q == expected.q, "L = \(level)")
            #expect(sameBits(actual.scales, expected.scales), "L = \(level)")
        }
    }

    @Test("refuses strides shorter than a row and missing buffers", arguments: KernelVariant.allCases)
    func badArguments(variant: KernelVariant) {
        guard variant.isAvailable else { return }
        let quantize = variant.quantizeFunction
        var q = [Int8](repeating: 0, count: 16)
        var scales = [Float](repeating: 0, count: 2)
        let x = [Float](repeating: 1, count: 16)
        #expect(quantize(x, 7, 2, 8, 127, &q, 8, &scales) == KernelStatus.invalidArgument)
        #expect(quantize(x, 8, 2, 8, 127, &q, 7, &scales) == KernelStatus.invalidArgument)
        #expect(quantize(nil, 8, 2, 8, 127, &q, 8, &scales) == KernelStatus.invalidArgument)
        #expect(quantize(x, 8, 2, 8, 0, &q, 8, &scales) == KernelStatus.invalidArgument)
        #expect(quantize(x, 8, 2, 8, 128, &q, 8, &scales) == KernelStatus.invalidArgument)
        #expect(quantize(x, 8, 0, 8, 127, nil, 8, nil) == KernelStatus.ok) // nothing to do
        #expect(quantize(x, 8, 2, 8, 127, &q, 8, &scales) == KernelStatus.ok)
        #expect(scales == [1.0 / 127, 1.0 / 127])
        #expect(q.allSatisfy { $0 == 127 })
    }
}
