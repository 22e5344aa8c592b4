import BEATsKernels

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

    /// Which kernel runs (both give the same bytes); tests pin each to check they agree.
    public let variant: FloatKernelVariant

    /// A quantizer with no rows yet, running `variant`'s kernel.
    public init(variant: FloatKernelVariant = .best) { self.variant = variant }

    /// Quantizes one row; returns its scale. `row` is the row's index, for the error message.
    /// The work is done by the kernels (`FloatKernelVariant.quantizeWeightRow`), four float64
    /// divisions at a time.
    public mutating func quantize(_ weights: UnsafeBufferPointer<Float>, into values: UnsafeMutableBufferPointer<Int8>,
                                  row: Int) throws(Failure) -> Float {
        let result: WeightRowQuantization
        do throws(NonFiniteWeight) {
            result = try variant.quantizeWeightRow(weights, into: values)
        } catch {
            throw .nonFinite(row: row, column: error.column)
        }
        squaredError += result.squaredError
        squaredNorm += result.squaredNorm
        maxAbsolute = max(maxAbsolute, result.maxError)
        if result.scale > 0 { maxInSteps = max(maxInSteps, result.maxError / Double(result.scale)) }
        return result.scale
    }

    /// The error over every row quantized so far.
    public var error: QuantizationError {
        QuantizationError(maxAbsolute: maxAbsolute, maxInSteps: maxInSteps,
                          relativeRMS: squaredNorm > 0 ? (squaredError / squaredNorm).squareRoot() : 0)
    }
}
