import CBEATsKernels

/// One float32 weight row quantized to symmetric int8 (`beats_quantize_weight_row`): its scale and
/// what the rounding lost, for the converter's report.
public struct WeightRowQuantization: Sendable, Equatable {
    /// `Float(max|w| / 127)` with the division in float64; 0 for a row of zeros (or one whose scale underflows).
    public let scale: Float
    /// Σ (w − value · scale)² over the row.
    public let squaredError: Double
    /// Σ w² over the row.
    public let squaredNorm: Double
    /// The largest |w − value · scale| in the row.
    public let maxError: Double
}

/// A weight row that cannot be quantized: the weight at `column` is NaN or infinite.
public struct NonFiniteWeight: Error, Equatable, Sendable {
    /// Index in the row of the first NaN or infinite weight.
    public let column: Int
}

extension FloatKernelVariant {
    /// Quantizes one weight row as the native format specifies, `value = clamp(round_half_even(w / scale), −127, 127)`
    /// (`beats_quantize_weight_row`); both variants give the same bits. Writes nothing when it throws.
    public func quantizeWeightRow(_ weights: UnsafeBufferPointer<Float>,
                                  into values: UnsafeMutableBufferPointer<Int8>) throws(NonFiniteWeight) -> WeightRowQuantization {
        precondition(values.count >= weights.count, "one int8 value per weight")
        guard let weightBase = weights.baseAddress, let valueBase = values.baseAddress, !weights.isEmpty else {
            return WeightRowQuantization(scale: 0, squaredError: 0, squaredNorm: 0, maxError: 0)
        }
        var scale: Float = 0
        var stats = beats_weight_row_stats()
        let badColumn = beats_quantize_weight_row(cValue, weightBase, weights.count, valueBase, &scale, &stats)
        if badColumn >= 0 { throw NonFiniteWeight(column: badColumn) }
        return WeightRowQuantization(scale: scale, squaredError: stats.squared_error, squaredNorm: stats.squared_norm,
                                     maxError: stats.max_error)
    }
}
