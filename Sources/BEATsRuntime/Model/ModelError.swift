import BEATsCore

/// Why a model cannot be built from a weight store, or cannot run on an input.
public enum ModelError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A tensor the config requires is not in the file.
    case missingTensor(name: String)
    /// A tensor's shape differs from the one the config implies.
    case shapeMismatch(tensor: String, expected: [Int], actual: [Int])
    /// A tensor holds values the runtime cannot use as weights (integers, booleans).
    case unsupportedDType(tensor: String, dtype: DType)
    /// A config value the architecture cannot be built with.
    case invalidConfig(key: String, value: String, reason: String)
    /// The operation needs a model of another kind (probabilities from a tokenizer, …).
    case wrongKind(operation: String, kind: ModelKind)
    /// The fbank buffer does not hold `frames` rows of 128 mel bins.
    case fbankSizeMismatch(frames: Int, expectedValues: Int, actualValues: Int)
    /// Fewer frames than one patch: the patch embedding would give no tokens.
    case tooFewFrames(frames: Int, minimum: Int)
    /// More frames than the model was opened for (working memory grows linearly with length,
    /// attention time quadratically).
    case tooManyFrames(frames: Int, maximum: Int)
    /// An int8 weight the kernels cannot use (values outside [-127, 127], inconsistent sizes).
    case invalidInt8Weight(tensor: String, reason: String)
    /// An encoder layer outside 1 … layers was asked for.
    case invalidLayer(Int, available: Int)
    /// OpenBLAS could not be loaded (what each name tried said).
    case blasUnavailable(String)

    public var description: String {
        switch self {
        case .missingTensor(let name):
            return "model: tensor '\(name)' is missing"
        case .shapeMismatch(let name, let expected, let actual):
            return "model: tensor '\(name)' has shape \(actual), expected \(expected)"
        case .unsupportedDType(let name, let dtype):
            return "model: tensor '\(name)' has dtype \(dtype.rawValue), expected a floating-point type"
        case .invalidConfig(let key, let value, let reason):
            return "model: config '\(key)' = \(value): \(reason)"
        case .wrongKind(let operation, let kind):
            return "model: \(operation) needs a different model kind; this one is \(kind.rawValue)"
        case .fbankSizeMismatch(let frames, let expected, let actual):
            return "model: fbank of \(frames) frames needs \(expected) values, got \(actual)"
        case .tooFewFrames(let frames, let minimum):
            return "model: \(frames) fbank frames are fewer than one patch (\(minimum) frames)"
        case .tooManyFrames(let frames, let maximum):
            return "model: \(frames) fbank frames are more than the \(maximum) this model was opened for"
        case .invalidInt8Weight(let name, let reason):
            return "model: int8 tensor '\(name)': \(reason)"
        case .invalidLayer(let layer, let available):
            return "model: layer \(layer) does not exist; this encoder has layers 1 to \(available)"
        case .blasUnavailable(let reasons):
            return "model: cannot load OpenBLAS (install libopenblas0, or set BEATS_OPENBLAS to its path): \(reasons)"
        }
    }
}
