import BEATsCore
import BEATsTestSupport
import Testing

@Suite("Positional convolution weight norm")
struct PositionalConvWeightNormTests {
    @Test("fold by hand: each kernel tap's column rescaled to norm |g|")
    func byHand() {
        // v[0, :, 0] = (3, 4), norm 5; v[0, :, 1] = (1, 2), norm √5.
        let folded = PositionalConvWeightNorm.fold(gains: [2, 5], direction: [3, 1, 4, 2], shape: [1, 2, 2])
        let expected: [Double] = [1.2, 5.0.squareRoot(), 1.6, 2 * 5.0.squareRoot()]
        for (value, reference) in zip(folded, expected) {
            #expect(abs(Double(value) - reference) <= 1e-7 * max(1, abs(reference)))
        }
    }

    @Test("fold of random tensors equals g·v/‖v‖ in float64 to 1e-6")
    func random() {
        var generator = SplitMix64(seed: 7)
        let shape = [12, 5, 7]
        let v = (0..<(12 * 5 * 7)).map { _ in generator.nextFloat() * 2 - 1 }
        let g = (0..<7).map { _ in generator.nextFloat() * 3 - 1.5 }
        let folded = PositionalConvWeightNorm.fold(gains: g.map(Double.init), direction: v, shape: shape)
        for k in 0..<7 {
            var norm = 0.0
            for index in stride(from: k, to: v.count, by: 7) { norm += Double(v[index]) * Double(v[index]) }
            norm = norm.squareRoot()
            for index in stride(from: k, to: v.count, by: 7) {
                let reference = Double(g[k]) * Double(v[index]) / norm
                #expect(abs(Double(folded[index]) - reference) <= 1e-6 * max(1, abs(reference)))
            }
        }
    }

    @Test("row by row into float64 then rounded gives the float32 fold's bits (converter = runtime)")
    func chunkedEqualsWhole() {
        var generator = SplitMix64(seed: 12)
        let (rows, kernel) = (30, 5)
        let v = (0..<(rows * kernel)).map { _ in generator.nextFloat() * 2 - 1 }
        let g = (0..<kernel).map { _ in generator.nextDouble() * 2 }
        let whole = PositionalConvWeightNorm.fold(gains: g, direction: v, shape: [rows, 1, kernel])
        var pieces: [Float] = []
        v.withUnsafeBufferPointer { v in
            let factors = PositionalConvWeightNorm.tapFactors(gains: g, direction: v)
            for start in stride(from: 0, to: rows, by: 7) {
                let slice = UnsafeBufferPointer(rebasing: v[(start * kernel)..<(min(start + 7, rows) * kernel)])
                var wide = [Double](repeating: .nan, count: slice.count)
                wide.withUnsafeMutableBufferPointer { PositionalConvWeightNorm.fold(rows: slice, factors: factors, into: $0) }
                pieces += wide.map { Float($0) }
            }
        }
        #expect(pieces.map(\.bitPattern) == whole.map(\.bitPattern))
    }

    @Test("both spellings of the parts are recognised, one part alone picks its spelling")
    func spellings() {
        let official = Set(["encoder.pos_conv.0.weight_g", "encoder.pos_conv.0.weight_v", "encoder.pos_conv.0.bias"])
        #expect(PositionalConvWeightNorm.parts(in: official.contains)?.direction == "encoder.pos_conv.0.weight_v")
        let parametrized: Set = ["encoder.pos_conv.0.parametrizations.weight.original1"]
        let parts = PositionalConvWeightNorm.parts(in: parametrized.contains)
        #expect(parts?.gain == "encoder.pos_conv.0.parametrizations.weight.original0")
        #expect(parts?.direction == "encoder.pos_conv.0.parametrizations.weight.original1")
        let folded: Set = [PositionalConvWeightNorm.weightName]
        #expect(PositionalConvWeightNorm.parts(in: folded.contains) == nil)
    }
}
