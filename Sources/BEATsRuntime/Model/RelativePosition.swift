import Foundation

/// The bucketed, bidirectional relative position bias of BEATs attention (T5-style buckets as
/// the official `MultiheadAttention._relative_positions_bucket` computes them).
///
/// Half the buckets are for keys after the query, half for keys at or before it. Within a half,
/// distances below `half / 2` get a bucket each; longer ones share logarithmically wider buckets
/// up to `maxDistance`, and everything beyond lands in the last bucket.
struct RelativePositionBuckets: Sendable, Equatable {
    let buckets: Int
    let maxDistance: Int

    init(buckets: Int, maxDistance: Int) throws {
        guard buckets >= 4 else {
            throw ModelError.invalidConfig(key: "num_buckets", value: "\(buckets)", reason: "needs at least 4 buckets")
        }
        guard maxDistance > buckets / 4 else {
            throw ModelError.invalidConfig(key: "max_distance", value: "\(maxDistance)",
                                           reason: "must exceed num_buckets / 4 = \(buckets / 4)")
        }
        self.buckets = buckets
        self.maxDistance = maxDistance
    }

    /// The bucket of `relativePosition` = key index − query index.
    ///
    /// The logarithmic part is evaluated in float32 in the order the official code uses
    /// (distance / max_exact, log, divided by log(max_distance / max_exact) rounded to float32,
    /// times the bucket span, truncated), so buckets agree even next to a bucket boundary.
    func bucket(relativePosition: Int) -> Int {
        let half = buckets / 2
        var bucket = relativePosition > 0 ? half : 0
        let distance = abs(relativePosition)
        let maxExact = half / 2
        if distance < maxExact {
            return bucket + distance
        }
        let logRatio = Foundation.log(Float(distance) / Float(maxExact))
        let logRange = Float(Foundation.log(Double(maxDistance) / Double(maxExact)))
        let scaled = logRatio / logRange * Float(half - maxExact)
        bucket += min(maxExact + Int(scaled), half - 1)
        return bucket
    }

    /// Fills `table[h * (2T − 1) + (r + T − 1)]` with head h's bias for relative position r, for
    /// every r a sequence of `tokens` can have. Row i of head h's [T, T] bias is then the
    /// contiguous slice starting at offset T − 1 − i, so the full matrix is never built.
    func fillBiasByOffset(embedding: FloatTensor, heads: Int, tokens: Int, into table: UnsafeMutablePointer<Float>) {
        let offsets = 2 * tokens - 1
        for offset in 0..<offsets {
            let bucket = self.bucket(relativePosition: offset - (tokens - 1))
            for head in 0..<heads {
                table[head * offsets + offset] = embedding[bucket * heads + head]
            }
        }
    }
}

/// Weight normalisation over every dimension but `dim` 2, as `torch.nn.utils.weight_norm(dim=2)`
/// leaves the positional convolution: w[o, i, k] = g[k] · v[o, i, k] / ‖v[:, :, k]‖.
enum WeightNorm {
    /// Folds `g` ([1, 1, K]) and `v` ([O, I, K], row-major) into `weight` (same shape as v),
    /// accumulating the norms in float64 and rounding each weight once.
    static func fold(g: UnsafeBufferPointer<Float>, v: UnsafeBufferPointer<Float>, kernel: Int,
                     into weight: UnsafeMutableBufferPointer<Float>) {
        precondition(g.count == kernel && v.count == weight.count && v.count % kernel == 0)
        let rows = v.count / kernel
        var squares = [Double](repeating: 0, count: kernel)
        for row in 0..<rows {
            let base = row * kernel
            for tap in 0..<kernel { squares[tap] += Double(v[base + tap]) * Double(v[base + tap]) }
        }
        let factors = (0..<kernel).map { Double(g[$0]) / squares[$0].squareRoot() }
        for row in 0..<rows {
            let base = row * kernel
            for tap in 0..<kernel { weight[base + tap] = Float(Double(v[base + tap]) * factors[tap]) }
        }
    }

    static func fold(g: [Float], v: [Float], shape: [Int]) -> [Float] {
        precondition(shape.count == 3 && g.count == shape[2] && v.count == shape[0] * shape[1] * shape[2])
        var weight = [Float](repeating: 0, count: v.count)
        g.withUnsafeBufferPointer { g in
            v.withUnsafeBufferPointer { v in
                weight.withUnsafeMutableBufferPointer { fold(g: g, v: v, kernel: shape[2], into: $0) }
            }
        }
        return weight
    }
}
