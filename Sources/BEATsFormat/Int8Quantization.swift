import CBEATsKernels

/// How far a quantized weight is from the float one it replaces.
public struct QuantizationError: Sendable, Equatable {
    /// Largest |w − value·scale| over all elements.
    public var maxAbsolute: Double
    /// Largest |w − value·scale| / scale of its row: at most 0.5 (half a step) by construction.
    public var maxInSteps: Double
    /// ‖W − W̃‖ / ‖W‖ (Frobenius norms), 0 for an all-zero weight.
    public var relativeRMS: Double

    public init(maxAbsolute: Double = 0, maxInSteps: Double = 0, relativeRMS: Double = 0) {
        self.maxAbsolute = maxAbsolute
        self.maxInSteps = maxInSteps
        self.relativeRMS = relativeRMS
    }
}

/// Symmetric int8 quantization with one float32 scale per row (§5 of the spec):
/// `scale = float32(max|w| / 127)`, `value = clamp(round_half_even(w / scale), −127, 127)`,
/// the division in float64.
public struct Int8RowQuantizer {
    public enum Failure: Error, Equatable, Sendable {
        case nonFinite(row: Int, column: Int)
    }

    private var squaredError = 0.0
    private var squaredNorm = 0.0
    private var maxAbsolute = 0.0
    private var maxInSteps = 0.0

    /// Which kernel runs; tests pin each to check they agree.
    let variant: beats_float_variant

    public init() { variant = beats_float_best_variant() }

    init(variant: beats_float_variant) { self.variant = variant }

    /// Quantizes one row; returns its scale. `row` is the row's index, for the error message.
    /// The work is done in C (CBEATsKernels), where it runs four float64 divisions at a time.
    public mutating func quantize(_ weights: UnsafeBufferPointer<Float>, into values: UnsafeMutableBufferPointer<Int8>,
                                  row: Int) throws(Failure) -> Float {
        precondition(values.count >= weights.count, "one int8 value per weight")
        guard let weightBase = weights.baseAddress, let valueBase = values.baseAddress, !weights.isEmpty else { return 0 }
        var scale: Float = 0
        var stats = beats_weight_row_stats()
        let badColumn = beats_quantize_weight_row(variant, weightBase, weights.count, valueBase, &scale, &stats)
        if badColumn >= 0 { throw .nonFinite(row: row, column: badColumn) }
        squaredError += stats.squared_error
        squaredNorm += stats.squared_norm
        maxAbsolute = max(maxAbsolute, stats.max_error)
        if scale > 0 { maxInSteps = max(maxInSteps, stats.max_error / Double(scale)) }
        return scale
    }

    /// The error over every row quantized so far.
    public var error: QuantizationError {
        QuantizationError(maxAbsolute: maxAbsolute, maxInSteps: maxInSteps,
                          relativeRMS: squaredNorm > 0 ? (squaredError / squaredNorm).squareRoot() : 0)
    }
}
