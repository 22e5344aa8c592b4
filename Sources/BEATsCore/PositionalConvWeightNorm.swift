/// The weight normalisation of BEATs' positional convolution, in one place for the converter
/// (which stores the folded weight) and the runtime (which folds when it reads a checkpoint), so
/// both produce the same bits from the same tensors.
///
/// The official code wraps `encoder.pos_conv.0` in `torch.nn.utils.weight_norm(dim=2)`, so a
/// checkpoint holds a gain `g` [1, 1, K] and a direction `v` [O, I, K] instead of the weight:
/// w[o, i, k] = g[k] · v[o, i, k] / ‖v[:, :, k]‖. Older torch names them `weight_g`/`weight_v`;
/// torch ≥ 2.1 (`torch.nn.utils.parametrizations.weight_norm`) `parametrizations.weight.original0`
/// and `original1`. Converted files hold the folded `weight`.
///
/// Precision: the squared norms are accumulated in float64 per kernel tap, the factor
/// g[k] / ‖v[:, :, k]‖ is a float64, and each weight is the float64 product v · factor rounded
/// once to the stored type.
public enum PositionalConvWeightNorm {
    /// The two stored parts of the weight under one spelling of their names.
    public struct Parts: Sendable, Equatable {
        /// The gain `g`, shape [1, 1, K].
        public let gain: String
        /// The direction `v`, shape [O, I, K] (the weight's shape).
        public let direction: String
    }

    /// The folded weight's name: what converted files store and the model reads.
    public static let weightName = "encoder.pos_conv.0.weight"

    /// Every spelling of the two parts a checkpoint may use, the official one first.
    public static let spellings: [Parts] = [
        Parts(gain: "encoder.pos_conv.0.weight_g", direction: "encoder.pos_conv.0.weight_v"),
        Parts(gain: "encoder.pos_conv.0.parametrizations.weight.original0",
              direction: "encoder.pos_conv.0.parametrizations.weight.original1"),
    ]

    /// The spelling a file uses: the first whose gain or direction `contains` says is present
    /// (one part alone still picks its spelling, so the caller can name the missing one). Nil
    /// when the file holds neither part under any spelling.
    public static func parts(in contains: (String) -> Bool) -> Parts? {
        spellings.first { contains($0.gain) || contains($0.direction) }
    }

    /// The float64 factor g[k] / ‖v[:, :, k]‖ of each kernel tap, the norms accumulated in
    /// float64 over every row of `direction` ([O, I, K] row-major, K = `gains.count`).
    public static func tapFactors(gains: [Double], direction: UnsafeBufferPointer<Float>) -> [Double] {
        let kernel = gains.count
        precondition(kernel > 0 ? direction.count % kernel == 0 : direction.isEmpty, "direction is not whole kernel rows")
        var squares = [Double](repeating: 0, count: kernel)
        squares.withUnsafeMutableBufferPointer { squares in
            for base in stride(from: 0, to: direction.count, by: max(kernel, 1)) {
                for tap in 0..<kernel { squares[tap] += Double(direction[base + tap]) * Double(direction[base + tap]) }
            }
        }
        return (0..<kernel).map { gains[$0] / squares[$0].squareRoot() }
    }

    /// Folded weights of whole kernel rows of the direction (`rows.count` a multiple of K =
    /// `factors.count`), unrounded: float64 products for writers that round once to another
    /// type (float16).
    public static func fold(rows: UnsafeBufferPointer<Float>, factors: [Double], into output: UnsafeMutableBufferPointer<Double>) {
        precondition(output.count >= rows.count)
        forEachProduct(rows: rows, factors: factors) { output[$0] = $1 }
    }

    /// Folded weights of whole kernel rows of the direction, each rounded once to float32.
    public static func fold(rows: UnsafeBufferPointer<Float>, factors: [Double], into output: UnsafeMutableBufferPointer<Float>) {
        precondition(output.count >= rows.count)
        forEachProduct(rows: rows, factors: factors) { output[$0] = Float($1) }
    }

    /// The whole fold in float32: `weight` (same count as `direction`) from `gains` (K values)
    /// and `direction` ([O, I, K] row-major).
    public static func fold(gains: [Double], direction: UnsafeBufferPointer<Float>, into weight: UnsafeMutableBufferPointer<Float>) {
        precondition(weight.count == direction.count)
        fold(rows: direction, factors: tapFactors(gains: gains, direction: direction), into: weight)
    }

    /// ``fold(gains:direction:into:)`` on arrays, for tests and small tensors; `shape` is the
    /// direction's [O, I, K].
    public static func fold(gains: [Double], direction: [Float], shape: [Int]) -> [Float] {
        precondition(shape.count == 3 && gains.count == shape[2] && direction.count == shape[0] * shape[1] * shape[2])
        var weight = [Float](repeating: 0, count: direction.count)
        direction.withUnsafeBufferPointer { direction in
            weight.withUnsafeMutableBufferPointer { fold(gains: gains, direction: direction, into: $0) }
        }
        return weight
    }

    /// The one formula: calls `body(index, v · factor)` with the float64 product for every
    /// element of `rows`, the factor being its kernel tap's.
    @inline(__always)
    private static func forEachProduct(rows: UnsafeBufferPointer<Float>, factors: [Double], _ body: (Int, Double) -> Void) {
        let kernel = factors.count
        precondition(kernel > 0 ? rows.count % kernel == 0 : rows.isEmpty, "rows are not whole kernel rows")
        factors.withUnsafeBufferPointer { factors in
            for base in stride(from: 0, to: rows.count, by: max(kernel, 1)) {
                for tap in 0..<kernel { body(base + tap, Double(rows[base + tap]) * factors[tap]) }
            }
        }
    }
}
