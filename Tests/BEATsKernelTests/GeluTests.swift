import BEATsTestSupport
import CBEATsKernels
import Foundation
import Testing

@Suite("GELU")
struct GeluTests {
    /// 0.5·x·(1 + erf(x/√2)) in float64.
    private func exactGelu(_ x: Float) -> Double {
        let value = Double(x)
        return 0.5 * value * (1 + erf(value / 2.0.squareRoot()))
    }

    @Test("within 2.5e-7·max(1, |x|) of the exact erf GELU on [-10, 10]")
    func accuracy() {
        let x = (0...200_000).map { Float(-10 + Double($0) * 1e-4) }
        let result = KernelVariant.scalar.gelu(x)
        var worst = 0.0
        for (input, output) in zip(x, result.values) {
            let error = abs(Double(output) - exactGelu(input))
            worst = max(worst, error / max(1, abs(Double(input))))
        }
        #expect(worst <= 2.5e-7, "worst scaled error \(worst)")
    }

    @Test("special values: 0, ±Inf, NaN, large magnitudes")
    func specialValues() {
        let result = KernelVariant.scalar.gelu([0, -0.0, .infinity, -.infinity, .nan, 1e30, -1e30, -30, 30])
        #expect(result.values[0] == 0)
        #expect(result.values[1] == 0)
        #expect(result.values[2] == .infinity)
        #expect(result.values[3].isNaN, "-Inf·0, as PyTorch's gelu gives")
        #expect(result.values[4].isNaN)
        #expect(result.values[5] == 1e30)
        #expect(result.values[6] == 0)
        #expect(result.values[7] == 0)
        #expect(result.values[8] == 30)
    }

    @Test("variant equals scalar bitwise", arguments: [KernelVariant.avx2, .avx512vnni])
    func variantMatchesScalar(variant: KernelVariant) {
        var random = SplitMix64(seed: 31)
        var x = (0..<1037).map { _ in Float.random(in: -12...12, using: &random) }
        x[3] = .nan
        x[4] = .infinity
        x[5] = -.infinity
        x[6] = -0.0
        x[7] = Float(3.925 * 2.0.squareRoot()) // where erf switches to ±1
        x[8] = -x[7]
        let result = variant.gelu(x)
        guard variant.isAvailable else {
            #expect(result.status == KernelStatus.unavailable)
            #expect(sameBits(result.values, x), "an unavailable variant leaves the input alone")
            print("NOTE: \(variant) GELU NOT RUN — this CPU lacks it; only its refusal was checked")
            return
        }
        #expect(result.status == KernelStatus.ok)
        let expected = KernelVariant.scalar.gelu(x).values
        #expect(sameBits(result.values, expected), "first difference \(firstDifference(result.values, expected))")
    }
}
