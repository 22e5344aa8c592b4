import BEATsTestSupport
import CBEATsKernels
import Testing

/// The converter's int4 quantizer (`beats_q4_quantize_weights`) against the formula of
/// beats_q4_kernels.h, recomputed here step by step.
@Suite("Int4 weight quantization")
struct Int4QuantizeTests {
    struct Quantized {
        var status: Int32
        var values: [UInt8]
        var scales: [UInt16]
        var minimums: [UInt16]
        var stats: [beats_weight_row_stats]
    }

    func quantize(_ w: [Float], rows: Int, columns: Int, group: Int, stride: Int? = nil) -> Quantized {
        let stride = stride ?? columns
        let groups = group > 0 ? max(columns / group, 1) : 1
        var result = Quantized(status: 0, values: [UInt8](repeating: 0xEE, count: rows * columns),
                               scales: [UInt16](repeating: 0xEEEE, count: rows * groups),
                               minimums: [UInt16](repeating: 0xEEEE, count: rows * groups),
                               stats: [beats_weight_row_stats](repeating: beats_weight_row_stats(), count: rows))
        result.status = beats_q4_quantize_weights(w, stride, rows, columns, group, &result.values, columns, &result.scales,
                                                  &result.minimums, &result.stats)
        return result
    }

    /// The formula, in the same float64/float32 steps, for one row: values, f16 bits, statistics.
    func expected(_ row: ArraySlice<Float>, group: Int) -> (values: [UInt8], scales: [UInt16], minimums: [UInt16],
                                                            squaredError: Double, squaredNorm: Double, maxError: Double) {
        var values: [UInt8] = [], scales: [UInt16] = [], minimums: [UInt16] = []
        var squaredError = 0.0, squaredNorm = 0.0, maxError = 0.0
        let weights = Array(row)
        for start in stride(from: 0, to: weights.count, by: group) {
            let chunk = weights[start..<(start + group)]
            var lo = chunk.first!, hi = chunk.first!
            for w in chunk {
                if w < lo { lo = w }
                if w > hi { hi = w }
            }
            let minimumBits = ReferenceHalf.bits(Double(lo))
            let scaleBits = ReferenceHalf.bits((Double(hi) - Double(lo)) / 15)
            let minimum = beats_q4_half_to_float(minimumBits), scale = beats_q4_half_to_float(scaleBits)
            minimums.append(minimumBits)
            scales.append(scaleBits)
            for w in chunk {
                var level = 0.0
                if scale != 0 {
                    level = ((Double(w) - Double(minimum)) / Double(scale)).rounded(.toNearestOrEven)
                    level = min(max(level, 0), 15)
                }
                values.append(UInt8(level))
                let product = scale * Float(level)
                let dequantized = product + minimum
                let error = Double(w) - Double(dequantized)
                squaredError += error * error
                squaredNorm += Double(w) * Double(w)
                maxError = max(maxError, abs(error))
            }
        }
        return (values, scales, minimums, squaredError, squaredNorm, maxError)
    }

    /// Rows of assorted scales and offsets, some groups constant, some with one outlier.
    func randomMatrix(rows: Int, columns: Int, group: Int, seed: UInt64) -> [Float] {
        var random = SplitMix64(seed: seed)
        var w = [Float](repeating: 0, count: rows * columns)
        for row in 0..<rows {
            let magnitude = Float.random(in: 1e-4...50, using: &random)
            let offset = row % 3 == 0 ? Float.random(in: -magnitude...magnitude, using: &random) : 0
            for column in 0..<columns { w[row * columns + column] = offset + Float.random(in: -magnitude...magnitude, using: &random) }
            switch row % 5 {
            case 1: for column in 0..<group { w[row * columns + column] = offset } // a constant group
            case 2: w[row * columns + columns / 2] = offset + 40 * magnitude      // an outlier
            default: break
            }
        }
        return w
    }

    @Test("equals the formula bit for bit (values, f16 scale and minimum, statistics)", arguments: [32, 64, 128])
    func matchesFormula(group: Int) {
        let rows = 11, columns = group * 5
        let w = randomMatrix(rows: rows, columns: columns, group: group, seed: UInt64(group))
        let result = quantize(w, rows: rows, columns: columns, group: group)
        #expect(result.status == KernelStatus.ok)
        let groups = columns / group
        for row in 0..<rows {
            let want = expected(w[(row * columns)..<((row + 1) * columns)], group: group)
            #expect(Array(result.values[(row * columns)..<((row + 1) * columns)]) == want.values, "row \(row)")
            #expect(Array(result.scales[(row * groups)..<((row + 1) * groups)]) == want.scales, "row \(row)")
            #expect(Array(result.minimums[(row * groups)..<((row + 1) * groups)]) == want.minimums, "row \(row)")
            #expect(result.stats[row].squared_error == want.squaredError, "row \(row)")
            #expect(result.stats[row].squared_norm == want.squaredNorm, "row \(row)")
            #expect(result.stats[row].max_error == want.maxError, "row \(row)")
            #expect(result.values[(row * columns)..<((row + 1) * columns)].allSatisfy { $0 <= 15 })
        }
    }

    @Test("each weight is within scale/2 plus the minimum's rounding of its dequantized value")
    func errorBound() {
        let group = 32, rows = 40, columns = 256
        let w = randomMatrix(rows: rows, columns: columns, group: group, seed: 99)
        let result = quantize(w, rows: rows, columns: columns, group: group)
        #expect(result.status == KernelStatus.ok)
        let groups = columns / group
        var sawClampBelow = false
        for row in 0..<rows {
            for g in 0..<groups {
                let chunk = w[(row * columns + g * group)..<(row * columns + (g + 1) * group)]
                let lo = Double(chunk.min()!), hi = Double(chunk.max()!)
                let scale = Double(beats_q4_half_to_float(result.scales[row * groups + g]))
                let minimum = Double(beats_q4_half_to_float(result.minimums[row * groups + g]))
                let step = (hi - lo) / 15
                if minimum > lo { sawClampBelow = true }
                for column in (g * group)..<((g + 1) * group) {
                    let q = result.values[row * columns + column]
                    let dequantized = Float(Float(scale) * Float(q)) + Float(minimum)
                    let error = abs(Double(w[row * columns + column]) - Double(dequantized))
                    // Exact bound: half a step (the float64 quotient may sit 2^-40 off a tie), the stored
                    // minimum's rounding, the rounded scale's shortfall over 15 steps (only when the clamp
                    // at 15 is reached), and the float32 rounding of the dequantized value.
                    let shortfall = max(0, 15 * (step - scale))
                    let bound = scale / 2 * (1 + 0x1p-40) + abs(lo - minimum) + shortfall + Double(dequantized.ulp) / 2
                    #expect(error <= bound, "row \(row) column \(column): \(error) > \(bound)")
                    // With float16's 11-bit precision the shortfall never exceeds half a step here.
                    #expect(shortfall <= scale / 2)
                }
            }
        }
        #expect(sawClampBelow, "some stored minimum rounds above its group's lowest weight (the clamp at 0 is exercised)")
    }

    @Test("constant groups, zeros, ±0, tiny and float16-limit weights")
    func edgeRows() {
        let group = 32
        // Group 0: all 0.3 (scale 0: q = 0, w' = f16(0.3)); group 1: zeros; group 2: −0 and +0;
        // group 3: subnormal-range values; group 4: exactly ±65504.
        var w = [Float](repeating: 0.3, count: group)
        w += [Float](repeating: 0, count: group)
        w += (0..<group).map { $0 % 2 == 0 ? -0.0 : 0.0 }
        w += (0..<group).map { Float($0) * 1e-7 }
        w += (0..<group).map { $0 == 0 ? -65504 : ($0 == 1 ? 65504 : Float($0)) }
        let result = quantize(w, rows: 1, columns: w.count, group: group)
        #expect(result.status == KernelStatus.ok)
        let want = expected(w[...], group: group)
        #expect(result.values == want.values)
        #expect(result.scales == want.scales && result.minimums == want.minimums)
        #expect(result.scales[0] == 0 && result.minimums[0] == ReferenceHalf.bits(Double(Float(0.3))))
        #expect(result.values[0..<(2 * group)].allSatisfy { $0 == 0 })
        #expect(result.scales[1] == 0 && result.minimums[1] == 0)
        #expect(result.scales[4] == ReferenceHalf.bits(131008.0 / 15) && result.minimums[4] == 0xFBFF) // −65504
        #expect(result.values[4 * group] == 0 && result.values[4 * group + 1] == 15)
        #expect(result.stats[0].squared_error == want.squaredError)
        // A constant group's only error is the minimum's float16 rounding.
        let minimum = Double(beats_q4_half_to_float(result.minimums[0]))
        #expect(result.stats[0].max_error >= abs(Double(Float(0.3)) - minimum))
    }

    @Test("NaN, infinity and weights beyond ±65504 are refused")
    func unrepresentable() {
        let group = 32
        for bad: Float in [.nan, .infinity, -.infinity, 65505, -65505, 1e6, Float.greatestFiniteMagnitude] {
            var w = [Float](repeating: 0.5, count: 3 * 2 * group)
            w[2 * 2 * group + 37] = bad // row 2, column 37
            let result = quantize(w, rows: 3, columns: 2 * group, group: group)
            #expect(result.status == Int4Status.notFloat16, "\(bad)")
        }
        // 65504 itself, and a range of 2·65504, are fine.
        var w = [Float](repeating: 65504, count: group)
        w[3] = -65504
        #expect(quantize(w, rows: 1, columns: group, group: group).status == KernelStatus.ok)
    }

    @Test("group sizes other than 32, 64, 128, and columns not a multiple, are refused")
    func groupSizeErrors() {
        let w = [Float](repeating: 1, count: 256)
        for (columns, group) in [(48, 32), (96, 64), (64, 16), (256, 256), (0, 32), (100, 100), (96, 0)] {
            #expect(quantize(w, rows: 1, columns: columns, group: group).status == Int4Status.groupSize, "\(columns) / \(group)")
        }
        var q = [UInt8](repeating: 0, count: 64)
        var s = [UInt16](repeating: 0, count: 2), m = [UInt16](repeating: 0, count: 2)
        #expect(beats_q4_quantize_weights(nil, 64, 1, 64, 32, &q, 64, &s, &m, nil) == KernelStatus.invalidArgument)
        #expect(beats_q4_quantize_weights(w, 63, 1, 64, 32, &q, 64, &s, &m, nil) == KernelStatus.invalidArgument)
        #expect(beats_q4_quantize_weights(w, 64, 1, 64, 32, &q, 63, &s, &m, nil) == KernelStatus.invalidArgument)
        #expect(beats_q4_quantize_weights(w, 64, 0, 64, 32, nil, 64, nil, nil, nil) == KernelStatus.ok) // nothing to do
        // Stats are optional; a wider input stride skips the padding.
        var padded = [Float](repeating: .nan, count: 2 * 70)
        for row in 0..<2 { for column in 0..<64 { padded[row * 70 + column] = Float(column) } }
        var q2 = [UInt8](repeating: 0, count: 128)
        var s2 = [UInt16](repeating: 0, count: 4), m2 = [UInt16](repeating: 0, count: 4)
        #expect(beats_q4_quantize_weights(padded, 70, 2, 64, 32, &q2, 64, &s2, &m2, nil) == KernelStatus.ok)
        #expect(q2[0] == 0 && q2[31] == 15 && q2[32] == 0 && q2[63] == 15 && q2[64 + 31] == 15)
    }

    @Test("float16 rounding: beats_q4_half_from_double equals an independent nearest-even search")
    func halfRounding() {
        var random = SplitMix64(seed: 16)
        var inputs: [Double] = [0, -0.0, 1, 65504, 65519.99, 0x1p-24, 0x1p-25, 0x1.8p-25, 0x1p-14, 0x1.ffcp-15, 0.1, 1.0 / 3]
        // Exact midpoints between neighbours (ties), in the normal and subnormal ranges.
        for bits in [UInt16(0x0001), 0x0002, 0x03ff, 0x0400, 0x3c00, 0x3c01, 0x7bfe] {
            let low = Double(beats_q4_half_to_float(bits)), high = Double(beats_q4_half_to_float(bits + 1))
            inputs.append((low + high) / 2)
            inputs.append(-(low + high) / 2)
        }
        for _ in 0..<2000 {
            let exponent = Double(Int.random(in: -30...15, using: &random))
            inputs.append(Double.random(in: -1...1, using: &random) * pow2(exponent))
        }
        for x in inputs {
            #expect(beats_q4_half_from_double(x) == ReferenceHalf.bits(x), "\(x)")
        }
        #expect(beats_q4_half_from_double(65520) == 0x7c00)
        #expect(beats_q4_half_from_double(-.infinity) == 0xfc00)
        #expect(beats_q4_half_to_float(beats_q4_half_from_double(.nan)).isNaN)
    }

    private func pow2(_ exponent: Double) -> Double { Double(sign: .plus, exponent: Int(exponent), significand: 1) }
}
