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

    public init() {}

    /// Quantizes one row; returns its scale. `row` is the row's index, for the error message.
    public mutating func quantize(_ weights: UnsafeBufferPointer<Float>, into values: UnsafeMutableBufferPointer<Int8>,
                                  row: Int) throws(Failure) -> Float {
        var largest: Float = 0
        for (column, weight) in weights.enumerated() {
            guard weight.isFinite else { throw .nonFinite(row: row, column: column) }
            largest = max(largest, abs(weight))
        }
        let scale = Float(Double(largest) / 127)
        guard scale > 0 else {
            // All zeros, or so small that the scale underflows: every value 0.
            for column in 0..<weights.count {
                values[column] = 0
                let error = Double(weights[column])
                squaredError += error * error
                squaredNorm += error * error
                maxAbsolute = max(maxAbsolute, abs(error))
            }
            return 0
        }
        let step = Double(scale)
        var rowSquaredError = 0.0, rowSquaredNorm = 0.0, rowMaxError = 0.0
        for column in 0..<weights.count {
            let weight = Double(weights[column])
            let value = min(max((weight / step).rounded(.toNearestOrEven), -127), 127)
            values[column] = Int8(value)
            let error = abs(weight - value * step)
            rowSquaredError += error * error
            rowSquaredNorm += weight * weight
            rowMaxError = max(rowMaxError, error)
        }
        squaredError += rowSquaredError
        squaredNorm += rowSquaredNorm
        maxAbsolute = max(maxAbsolute, rowMaxError)
        maxInSteps = max(maxInSteps, rowMaxError / step)
        return scale
    }

    /// The error over every row quantized so far.
    public var error: QuantizationError {
        QuantizationError(maxAbsolute: maxAbsolute, maxInSteps: maxInSteps,
                          relativeRMS: squaredNorm > 0 ? (squaredError / squaredNorm).squareRoot() : 0)
    }
}
