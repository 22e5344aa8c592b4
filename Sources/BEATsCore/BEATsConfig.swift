/// A scalar from a checkpoint's `cfg` dict.
public enum ConfigScalar: Sendable, Equatable, Codable {
    case int(Int)
    case double(Double)
    case bool(Bool)
    case string(String)

    var intValue: Int? {
        switch self {
        case .int(let value): return value
        case .bool(let value): return value ? 1 : 0
        case .double(let value) where value.rounded() == value && abs(value) < 1e15: return Int(value)
        default: return nil
        }
    }
    var doubleValue: Double? {
        switch self {
        case .int(let value): return Double(value)
        case .double(let value): return value
        default: return nil
        }
    }
    var boolValue: Bool? {
        switch self {
        case .bool(let value): return value
        case .int(let value): return value != 0
        default: return nil
        }
    }
}

/// Errors in a checkpoint's `cfg`.
public enum ConfigError: Error, CustomStringConvertible, Equatable, Sendable {
    case wrongType(key: String, expected: String)
    case outOfRange(key: String, value: String)
    /// The file holds tensors but no BEATs config (`what` says what it is instead).
    case absent(format: String, what: String)

    public var description: String {
        switch self {
        case .absent(let format, let what):
            return "not a BEATs model: the \(format) file is \(what) (no 'cfg' in a checkpoint, no config.json or __metadata__ config beside safetensors); refusing to guess its architecture"
        case .wrongType(let key, let expected): return "config '\(key)': expected \(expected)"
        case .outOfRange(let key, let value): return "config '\(key)': value \(value) is out of range"
        }
    }
}

/// The union of `BEATsConfig` and `TokenizersConfig` from the official code (microsoft/unilm
/// `beats/`), with the official defaults for keys a checkpoint leaves out. Keys are the
/// checkpoint's own snake_case names (also in JSON). Training-only keys (dropouts, layer drop,
/// gradient decay) are kept so a converted file can round-trip the config.
public struct BEATsConfig: Sendable, Equatable, Codable {
    public var inputPatchSize: Int = -1
    public var embedDim: Int = 512
    public var convBias: Bool = false
    public var encoderLayers: Int = 12
    public var encoderEmbedDim: Int = 768
    public var encoderFFNEmbedDim: Int = 3072
    public var encoderAttentionHeads: Int = 12
    public var activationFn: String = "gelu"
    public var layerWiseGradientDecayRatio: Double = 1.0
    public var layerNormFirst: Bool = false
    public var deepNorm: Bool = false
    public var dropout: Double = 0.1
    public var attentionDropout: Double = 0.1
    public var activationDropout: Double = 0.0
    public var encoderLayerdrop: Double = 0.0
    public var dropoutInput: Double = 0.0
    public var convPos: Int = 128
    public var convPosGroups: Int = 16
    public var relativePositionEmbedding: Bool = false
    public var numBuckets: Int = 320
    public var maxDistance: Int = 1280
    public var gruRelPos: Bool = false
    public var finetunedModel: Bool = false
    public var predictorDropout: Double = 0.1
    public var predictorClass: Int = 527
    /// Tokenizer codebook size and code dimension (`TokenizersConfig`).
    public var quantN: Int = 1024
    public var quantDim: Int = 256

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case inputPatchSize = "input_patch_size"
        case embedDim = "embed_dim"
        case convBias = "conv_bias"
        case encoderLayers = "encoder_layers"
        case encoderEmbedDim = "encoder_embed_dim"
        case encoderFFNEmbedDim = "encoder_ffn_embed_dim"
        case encoderAttentionHeads = "encoder_attention_heads"
        case activationFn = "activation_fn"
        case layerWiseGradientDecayRatio = "layer_wise_gradient_decay_ratio"
        case layerNormFirst = "layer_norm_first"
        case deepNorm = "deep_norm"
        case dropout
        case attentionDropout = "attention_dropout"
        case activationDropout = "activation_dropout"
        case encoderLayerdrop = "encoder_layerdrop"
        case dropoutInput = "dropout_input"
        case convPos = "conv_pos"
        case convPosGroups = "conv_pos_groups"
        case relativePositionEmbedding = "relative_position_embedding"
        case numBuckets = "num_buckets"
        case maxDistance = "max_distance"
        case gruRelPos = "gru_rel_pos"
        case finetunedModel = "finetuned_model"
        case predictorDropout = "predictor_dropout"
        case predictorClass = "predictor_class"
        case quantN = "quant_n"
        case quantDim = "quant_dim"
    }

    /// Builds a config from a checkpoint's `cfg` dict. Unknown keys are ignored (the official code
    /// ignores them too); known keys with the wrong type are an error.
    public init(values: [String: ConfigScalar]) throws(ConfigError) {
        func int(_ key: CodingKeys, _ target: inout Int) throws(ConfigError) {
            guard let raw = values[key.rawValue] else { return }
            guard let value = raw.intValue else { throw .wrongType(key: key.rawValue, expected: "an integer") }
            target = value
        }
        func double(_ key: CodingKeys, _ target: inout Double) throws(ConfigError) {
            guard let raw = values[key.rawValue] else { return }
            guard let value = raw.doubleValue else { throw .wrongType(key: key.rawValue, expected: "a number") }
            target = value
        }
        func bool(_ key: CodingKeys, _ target: inout Bool) throws(ConfigError) {
            guard let raw = values[key.rawValue] else { return }
            guard let value = raw.boolValue else { throw .wrongType(key: key.rawValue, expected: "a bool") }
            target = value
        }
        try int(.inputPatchSize, &inputPatchSize)
        try int(.embedDim, &embedDim)
        try bool(.convBias, &convBias)
        try int(.encoderLayers, &encoderLayers)
        try int(.encoderEmbedDim, &encoderEmbedDim)
        try int(.encoderFFNEmbedDim, &encoderFFNEmbedDim)
        try int(.encoderAttentionHeads, &encoderAttentionHeads)
        if let raw = values[CodingKeys.activationFn.rawValue] {
            guard case .string(let name) = raw else { throw .wrongType(key: "activation_fn", expected: "a string") }
            activationFn = name
        }
        try double(.layerWiseGradientDecayRatio, &layerWiseGradientDecayRatio)
        try bool(.layerNormFirst, &layerNormFirst)
        try bool(.deepNorm, &deepNorm)
        try double(.dropout, &dropout)
        try double(.attentionDropout, &attentionDropout)
        try double(.activationDropout, &activationDropout)
        try double(.encoderLayerdrop, &encoderLayerdrop)
        try double(.dropoutInput, &dropoutInput)
        try int(.convPos, &convPos)
        try int(.convPosGroups, &convPosGroups)
        try bool(.relativePositionEmbedding, &relativePositionEmbedding)
        try int(.numBuckets, &numBuckets)
        try int(.maxDistance, &maxDistance)
        try bool(.gruRelPos, &gruRelPos)
        try bool(.finetunedModel, &finetunedModel)
        try double(.predictorDropout, &predictorDropout)
        try int(.predictorClass, &predictorClass)
        try int(.quantN, &quantN)
        try int(.quantDim, &quantDim)
    }

    /// The config as key → scalar, every key present (for headers and `inspect`).
    public var values: [(key: String, value: ConfigScalar)] {
        [
            ("input_patch_size", .int(inputPatchSize)), ("embed_dim", .int(embedDim)), ("conv_bias", .bool(convBias)),
            ("encoder_layers", .int(encoderLayers)), ("encoder_embed_dim", .int(encoderEmbedDim)),
            ("encoder_ffn_embed_dim", .int(encoderFFNEmbedDim)), ("encoder_attention_heads", .int(encoderAttentionHeads)),
            ("activation_fn", .string(activationFn)), ("layer_wise_gradient_decay_ratio", .double(layerWiseGradientDecayRatio)),
            ("layer_norm_first", .bool(layerNormFirst)), ("deep_norm", .bool(deepNorm)), ("dropout", .double(dropout)),
            ("attention_dropout", .double(attentionDropout)), ("activation_dropout", .double(activationDropout)),
            ("encoder_layerdrop", .double(encoderLayerdrop)), ("dropout_input", .double(dropoutInput)),
            ("conv_pos", .int(convPos)), ("conv_pos_groups", .int(convPosGroups)),
            ("relative_position_embedding", .bool(relativePositionEmbedding)), ("num_buckets", .int(numBuckets)),
            ("max_distance", .int(maxDistance)), ("gru_rel_pos", .bool(gruRelPos)), ("finetuned_model", .bool(finetunedModel)),
            ("predictor_dropout", .double(predictorDropout)), ("predictor_class", .int(predictorClass)),
            ("quant_n", .int(quantN)), ("quant_dim", .int(quantDim)),
        ]
    }
}
