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
