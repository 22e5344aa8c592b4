import BEATsTestSupport
import BEATsCore
@testable import BEATsRuntime
import CBEATsKernels
import Foundation
import Testing

/// The pieces of the model with their own maths, against values computed independently.
@Suite("Model maths: relative positions, row kernels")
struct ModelMathTests {
    // MARK: Relative position buckets

    /// Buckets for relative positions −70…70 with the tiny fixtures' settings (32 buckets,
    /// max_distance 64), computed with the official `_relative_positions_bucket` in torch.
    static let tinyBuckets: [Int] = [
        15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 14, 14, 14, 14, 14, 14, 14,
        14, 14, 14, 14, 13, 13, 13, 13, 13, 13, 13, 13, 13, 12, 12, 12, 12, 12, 12, 12, 11, 11, 11, 11, 11, 10, 10, 10,
        10, 9, 9, 9, 8, 8, 8, 7, 6, 5, 4, 3, 2, 1, 0, 17, 18, 19, 20, 21, 22, 23, 24, 24, 24, 25, 25, 25, 26, 26, 26, 26,
        27, 27, 27, 27, 27, 28, 28, 28, 28, 28, 28, 28, 29, 29, 29, 29, 29, 29, 29, 29, 29, 30, 30, 30, 30, 30, 30, 30,
        30, 30, 30, 30, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31,
    ]

    @Test("buckets match the official formula for the tiny config")
    func tinyBucketTable() throws {
        let buckets = try RelativePositionBuckets(buckets: 32, maxDistance: 64)
        #expect((-70...70).map { buckets.bucket(relativePosition: $0) } == Self.tinyBuckets)
    }

    @Test("buckets match the official formula for the full-size config (320 buckets, max_distance 800)")
    func fullSizeBuckets() throws {
        let buckets = try RelativePositionBuckets(buckets: 320, maxDistance: 800)
        let positions = [-1000, -801, -800, -799, -500, -200, -100, -81, -80, -79, -40, -1, 0, 1, 2, 79, 80, 81, 100, 200,
                         500, 799, 800, 801, 1000]
        let expected = [159, 159, 159, 159, 143, 111, 87, 80, 80, 79, 40, 1, 0, 161, 162, 239, 240, 240, 247, 271, 303,
                        319, 319, 319, 319]
        #expect(positions.map { buckets.bucket(relativePosition: $0) } == expected)
    }

    @Test("buckets by hand: exact below max_exact, keys after the query in the upper half")
    func bucketsByHand() throws {
        let buckets = try RelativePositionBuckets(buckets: 32, maxDistance: 64)
        // half = 16 buckets per direction, max_exact = 8.
        #expect(buckets.bucket(relativePosition: 0) == 0)
        #expect(buckets.bucket(relativePosition: -7) == 7)
        #expect(buckets.bucket(relativePosition: 7) == 16 + 7)
        // 8 + trunc(log(9 / 8) / log(64 / 8) · 8) = 8 + trunc(0.453) = 8.
        #expect(buckets.bucket(relativePosition: -9) == 8)
        // 8 + trunc(log(40 / 8) / log(8) · 8) = 8 + trunc(6.19) = 14.
        #expect(buckets.bucket(relativePosition: -40) == 14)
        #expect(buckets.bucket(relativePosition: 40) == 16 + 14)
        // Far away: clamped to the last bucket of each half.
        #expect(buckets.bucket(relativePosition: -10_000) == 15)
        #expect(buckets.bucket(relativePosition: 10_000) == 31)
    }

    @Test("bucket settings the formula cannot use are refused")
    func invalidBucketSettings() {
        #expect(throws: ModelError.invalidConfig(key: "num_buckets", value: "2", reason: "needs at least 4 buckets")) {
            try RelativePositionBuckets(buckets: 2, maxDistance: 64)
        }
        #expect(throws: ModelError.invalidConfig(key: "max_distance", value: "8", reason: "must exceed num_buckets / 4 = 8")) {
            try RelativePositionBuckets(buckets: 32, maxDistance: 8)
        }
    }

    @Test("bias by offset: row i of the [T, T] bias is the slice at T − 1 − i")
    func biasByOffsetTable() throws {
        let buckets = try RelativePositionBuckets(buckets: 32, maxDistance: 64)
        let heads = 3, tokens = 40
        let embedding = FloatTensor(name: "bias", shape: [32, heads], values: (0..<(32 * heads)).map { Float($0) * 0.5 })
        var table = [Float](repeating: .nan, count: heads * (2 * tokens - 1))
        table.withUnsafeMutableBufferPointer {
            buckets.fillBiasByOffset(embedding: embedding, heads: heads, tokens: tokens, into: $0.baseAddress!)
        }
        for head in 0..<heads {
            for query in [0, 17, tokens - 1] {
                for key in 0..<tokens {
                    let fromTable = table[head * (2 * tokens - 1) + (tokens - 1 - query) + key]
                    let bucket = buckets.bucket(relativePosition: key - query)
                    #expect(fromTable == embedding[bucket * heads + head])
                }
            }
        }
    }

    // MARK: Row kernels (each variant)

    static let variants = [BEATS_FLOAT_PORTABLE, BEATS_FLOAT_AVX2]

    @Test("exp within 3 ulp of libm on [-87, 88], 0 below the normal range", arguments: variants)
    func exponential(variant: beats_float_variant) {
        let inputs = stride(from: Float(-87.3), through: 88, by: 0.0137).map { $0 } + [-100, -87.4, 0, -0.0]
        var outputs = [Float](repeating: .nan, count: inputs.count)
        beats_exp(variant, &outputs, inputs, inputs.count)
        for (x, y) in zip(inputs, outputs) {
            if x < -87.33654 {
                #expect(y == 0, "exp(\(x))")
            } else {
                let reference = Foundation.exp(Double(x))
                #expect(abs(Double(y) - reference) <= 3 * Double(Float(reference).ulp), "exp(\(x)) = \(y), expected \(reference)")
            }
        }
    }

    /// Above 0.75: Abramowitz & Stegun 7.1.26 (the formula PyTorch's vectorised erf uses), within
    /// 1.5e-7 in exact arithmetic plus float32 rounding of values near 1 (ulp 6e-8). Below: the
    /// Maclaurin series, within 2 ulp relative (no cancellation near 0).
    @Test("erf: within 3e-7 of libm on [-7, 7], 2 ulp relative below 0.75", arguments: variants)
    func errorFunction(variant: beats_float_variant) {
        let inputs = stride(from: Float(-7), through: 7, by: 0.00113).map { $0 } + [0, 1e-8, -1e-8, 0.7499, 0.75, -0.75]
        var outputs = [Float](repeating: .nan, count: inputs.count)
        beats_erf(variant, &outputs, inputs, inputs.count)
        for (x, y) in zip(inputs, outputs) {
            let reference = Foundation.erf(Double(x))
            #expect(abs(Double(y) - reference) <= 3e-7, "erf(\(x)) = \(y)")
            if abs(x) < 0.75 {
                #expect(abs(Double(y) - reference) <= 2.4e-7 * abs(reference), "erf(\(x)) = \(y)")
            }
        }
    }

    @Test("activations with bias match float64 (ragged width)", arguments: variants)
    func activations(variant: beats_float_variant) {
        var generator = SplitMix64(seed: 11)
        let rows = 3, cols = 29, ld = 31
        let input = (0..<(rows * ld)).map { _ in generator.nextFloat() * 12 - 6 }
        let bias = (0..<cols).map { _ in generator.nextFloat() - 0.5 }
        let references: [(beats_activation, (Double) -> Double)] = [
            (BEATS_ACTIVATION_GELU, { 0.5 * $0 * (1 + Foundation.erf($0 / 2.0.squareRoot())) }),
            (BEATS_ACTIVATION_GELU_TANH, { 0.5 * $0 * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * ($0 + 0.044715 * $0 * $0 * $0))) }),
            (BEATS_ACTIVATION_RELU, { max($0, 0) }),
            (BEATS_ACTIVATION_TANH, { Foundation.tanh($0) }),
            (BEATS_ACTIVATION_LINEAR, { $0 }),
        ]
        for (activation, reference) in references {
            var values = input
            beats_bias_activation(variant, &values, ld, rows, cols, bias, activation)
            for row in 0..<rows {
                for col in 0..<ld {
                    let index = row * ld + col
                    if col >= cols {
                        #expect(values[index] == input[index], "padding column touched")
                        continue
                    }
                    let expected = reference(Double(input[index]) + Double(bias[col]))
                    #expect(abs(Double(values[index]) - expected) <= 2e-6 * max(1, abs(expected)), "\(activation) at \(row),\(col)")
                }
            }
        }
    }

    @Test("GLU with swish gate matches float64", arguments: variants)
    func gluSwish(variant: beats_float_variant) {
        var generator = SplitMix64(seed: 12)
        let rows = 2, cols = 13
        let input = (0..<(rows * 2 * cols)).map { _ in generator.nextFloat() * 8 - 4 }
        let bias = (0..<(2 * cols)).map { _ in generator.nextFloat() - 0.5 }
        var output = [Float](repeating: .nan, count: rows * cols)
        beats_bias_glu_swish(variant, &output, cols, input, 2 * cols, rows, cols, bias)
        for row in 0..<rows {
            for col in 0..<cols {
                let value = Double(input[row * 2 * cols + col]) + Double(bias[col])
                let gate = Double(input[row * 2 * cols + cols + col]) + Double(bias[cols + col])
                let expected = value * gate / (1 + Foundation.exp(-gate))
                #expect(abs(Double(output[row * cols + col]) - expected) <= 1e-6 * max(1, abs(expected)))
            }
        }
    }

    @Test("bias + scaled residual + LayerNorm matches float64", arguments: variants)
    func residualLayerNorm(variant: beats_float_variant) {
        var generator = SplitMix64(seed: 13)
        let rows = 4, cols = 37
        let y = (0..<(rows * cols)).map { _ in generator.nextFloat() * 4 - 2 }
        let residual = (0..<(rows * cols)).map { _ in generator.nextFloat() * 4 - 2 }
        let bias = (0..<cols).map { _ in generator.nextFloat() - 0.5 }
        let gamma = (0..<cols).map { _ in 1 + generator.nextFloat() * 0.2 }
        let beta = (0..<cols).map { _ in generator.nextFloat() * 0.1 }
        let scale = Float(2).squareRoot()
        var output = [Float](repeating: .nan, count: rows * cols)
        beats_bias_residual_layer_norm(variant, &output, cols, y, cols, bias, residual, cols, scale, gamma, beta, 1e-5, rows, cols)
        for row in 0..<rows {
            let v = (0..<cols).map { Double(y[row * cols + $0]) + Double(bias[$0]) + Double(residual[row * cols + $0]) * Double(scale) }
            let mean = v.reduce(0, +) / Double(cols)
            let variance = v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(cols)
            for col in 0..<cols {
                let expected = (v[col] - mean) / (variance + 1e-5).squareRoot() * Double(gamma[col]) + Double(beta[col])
                #expect(abs(Double(output[row * cols + col]) - expected) <= 2e-6)
            }
        }
        // Without gamma: only the residual sum, in place over the residual.
        var inPlace = residual
        beats_bias_residual_layer_norm(variant, &inPlace, cols, y, cols, nil, inPlace, cols, 1, nil, nil, 1e-5, rows, cols)
        #expect(inPlace == zip(residual, y).map { $0 + $1 })
    }

    @Test("attention softmax: max-subtracted, scaled, gated relative bias, normalised", arguments: variants)
    func attentionSoftmax(variant: beats_float_variant) {
        var generator = SplitMix64(seed: 14)
        let keys = 19, firstRow = 5, rows = 6, ld = 21
        let scores = (0..<(rows * ld)).map { _ in generator.nextFloat() * 0.4 - 0.2 }
        let biasByOffset = (0..<(2 * keys - 1)).map { _ in generator.nextFloat() * 6 - 3 }
        let gates = (0..<keys).map { _ in 1 + generator.nextFloat() }
        for (bias, gate) in [(biasByOffset, gates), (biasByOffset, nil), (nil, nil)] as [([Float]?, [Float]?)] {
            var normalised = scores
            beats_attention_softmax(variant, &normalised, ld, rows, keys, firstRow, 32, bias, gate, nil)
            // Unnormalised form: exp(s − max) per row and 1 / sum on the side.
            var exponentials = scores
            var inverseSums = [Float](repeating: .nan, count: rows)
            beats_attention_softmax(variant, &exponentials, ld, rows, keys, firstRow, 32, bias, gate, &inverseSums)
            for row in 0..<rows {
                let query = firstRow + row
                let raw = (0..<keys).map { Double(scores[row * ld + $0]) }
                let rowMax = raw.max()!
                let logits = (0..<keys).map { key -> Double in
                    let relative = bias.map { Double($0[key - query + keys - 1]) } ?? 0
                    return (raw[key] - rowMax) * 32 + Double(gate?[query] ?? 1) * relative
                }
                let top = logits.max()!
                let sum = logits.map { Foundation.exp($0 - top) }.reduce(0, +)
                #expect(abs(Double(inverseSums[row]) - 1 / sum) <= 1e-6 / sum)
                for key in 0..<keys {
                    let expected = Foundation.exp(logits[key] - top) / sum
                    #expect(abs(Double(normalised[row * ld + key]) - expected) <= 1e-6)
                    #expect(abs(Double(exponentials[row * ld + key]) - expected * sum) <= 1e-6 * max(1, expected * sum))
                }
                #expect(normalised[row * ld + keys] == scores[row * ld + keys], "padding column touched")
                #expect(exponentials[row * ld + keys] == scores[row * ld + keys], "padding column touched")
            }
        }
    }
}

