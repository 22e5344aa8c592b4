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
        // Adding 1.5·2^52 rounds a double of magnitude < 2^51 to an integer, ties to even (the
        // FPU's default mode), and leaves that integer in the low bits of the pattern: a
        // branch-free round and int8 conversion.
        let roundingShift = 6_755_399_441_055_744.0
        @inline(__always)
        func quantizeElement(_ column: Int) -> (error: Double, weight: Double) {
            let weight = Double(weights[column])
            var value = (weight / step + roundingShift) - roundingShift
            value = value < -127 ? -127 : (value > 127 ? 127 : value)
            values[column] = Int8(truncatingIfNeeded: (value + roundingShift).bitPattern)
            return (abs(weight - value * step), weight)
        }
        // Two interleaved sets of accumulators, so the error statistics do not serialise the loop.
        var squaredErrors = (0.0, 0.0), squaredNorms = (0.0, 0.0), maxErrors = (0.0, 0.0)
        let count = weights.count
        var column = 0
        while column + 2 <= count {
            let first = quantizeElement(column), second = quantizeElement(column + 1)
            squaredErrors.0 += first.error * first.error
            squaredErrors.1 += second.error * second.error
            squaredNorms.0 += first.weight * first.weight
            squaredNorms.1 += second.weight * second.weight
            maxErrors.0 = max(maxErrors.0, first.error)
            maxErrors.1 = max(maxErrors.1, second.error)
            column += 2
        }
        if column < count {
            let last = quantizeElement(column)
            squaredErrors.0 += last.error * last.error
            squaredNorms.0 += last.weight * last.weight
            maxErrors.0 = max(maxErrors.0, last.error)
        }
        let rowSquaredError = squaredErrors.0 + squaredErrors.1
        let rowSquaredNorm = squaredNorms.0 + squaredNorms.1
        let rowMaxError = max(maxErrors.0, maxErrors.1)
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
