import BEATsCore
import BEATsKernels

/// The sizes the forward pass works with, derived from the config and checked once.
struct ModelDimensions: Sendable, Equatable {
    let patchSize: Int
    let frequencyPatches: Int
    let embedDim: Int
    let modelDim: Int
    let feedForwardDim: Int
    let heads: Int
    let headDim: Int
    let layers: Int
    let convKernel: Int
    let convGroups: Int
    let layerNormFirst: Bool
    let deepNorm: Bool

    var patchArea: Int { patchSize * patchSize }
    var groupChannels: Int { modelDim / convGroups }
    var convPadding: Int { convKernel / 2 }
    /// Residual scale of deep-norm layers, (2 · layers)^¼; 1 otherwise.
    var residualScale: Float {
        deepNorm ? Float(Double(2 * layers).squareRoot().squareRoot()) : 1
    }

    /// Tokens the encoder sees for `frames` fbank frames: the patch grid, trailing frames that
    /// do not fill a patch dropped (as the strided Conv2d does).
    func tokens(frames: Int) -> Int { (frames / patchSize) * frequencyPatches }

    init(config: BEATsConfig) throws {
        func invalid(_ key: String, _ value: Any, _ reason: String) -> ModelError {
            .invalidConfig(key: key, value: "\(value)", reason: reason)
        }
        guard config.inputPatchSize > 0, config.inputPatchSize <= BEATsAudio.melBins else {
            throw invalid("input_patch_size", config.inputPatchSize, "must be between 1 and \(BEATsAudio.melBins)")
        }
        for (key, value) in [("embed_dim", config.embedDim), ("encoder_embed_dim", config.encoderEmbedDim),
                             ("encoder_ffn_embed_dim", config.encoderFFNEmbedDim),
                             ("encoder_attention_heads", config.encoderAttentionHeads),
                             ("conv_pos", config.convPos), ("conv_pos_groups", config.convPosGroups)] where value <= 0 {
            throw invalid(key, value, "must be positive")
        }
        guard config.encoderLayers >= 0 else { throw invalid("encoder_layers", config.encoderLayers, "must not be negative") }
        guard config.encoderEmbedDim % config.encoderAttentionHeads == 0 else {
            throw invalid("encoder_attention_heads", config.encoderAttentionHeads,
                          "must divide encoder_embed_dim \(config.encoderEmbedDim)")
        }
        guard config.encoderEmbedDim % config.convPosGroups == 0 else {
            throw invalid("conv_pos_groups", config.convPosGroups, "must divide encoder_embed_dim \(config.encoderEmbedDim)")
        }
        guard !(config.deepNorm && config.layerNormFirst) else {
            throw invalid("deep_norm", true, "cannot be combined with layer_norm_first (the official code asserts this)")
        }
        patchSize = config.inputPatchSize
        frequencyPatches = BEATsAudio.melBins / config.inputPatchSize
        embedDim = config.embedDim
        modelDim = config.encoderEmbedDim
        feedForwardDim = config.encoderFFNEmbedDim
        heads = config.encoderAttentionHeads
        headDim = config.encoderEmbedDim / config.encoderAttentionHeads
        layers = config.encoderLayers
        convKernel = config.convPos
        convGroups = config.convPosGroups
        layerNormFirst = config.layerNormFirst
        deepNorm = config.deepNorm
    }
}

/// The feed-forward activation (`activation_fn`), as fairseq's `get_activation_fn` maps it.
enum Activation: Sendable, Equatable {
    case kernel(RowActivation)
    /// `glu`: fc1 is a GLU_Linear (`fc1.linear`, twice as wide) gated by swish.
    case gluSwish

    init(name: String) throws {
        switch name {
        case "gelu": self = .kernel(.gelu)
        case "gelu_fast", "gelu_accurate": self = .kernel(.geluTanh)
        case "relu": self = .kernel(.relu)
        case "tanh": self = .kernel(.tanh)
        case "linear": self = .kernel(.linear)
        case "glu": self = .gluSwish
        default:
            throw ModelError.invalidConfig(key: "activation_fn", value: name,
                                           reason: "expected gelu, gelu_fast, gelu_accurate, relu, tanh, linear or glu")
        }
    }
}

struct AttentionWeights: Sendable {
    let query: Linear
    let key: Linear
    let value: Linear
    let output: Linear
    /// `grep_linear` [8, head_dim] and `grep_a` [1, heads, 1, 1] when relative positions are gated.
    let gateLinear: Linear?
    let gateScale: FloatTensor?
}

struct EncoderLayerWeights: Sendable {
    let attention: AttentionWeights
    let attentionNorm: LayerNormWeights
    /// fc1, or GLU_Linear's `fc1.linear` (2 × ffn outputs) for `glu`.
    let feedForwardIn: Linear
    let feedForwardOut: Linear
    let finalNorm: LayerNormWeights
}

/// What runs after the encoder.
enum ModelHead: Sendable {
    case features
    /// `predictor` [classes, D]: logits per frame, mean over time, sigmoid.
    case classifier(predictor: Linear)
    /// `quantize_layer` (Linear, tanh, Linear) then the nearest `quantize.embedding.weight` row.
    case tokenizer(hidden: Linear, projection: Linear, codebook: FloatTensor, codebookSquaredNorms: [Float])
}

/// Every weight of a BEATs model, checked against its config, ready for the forward pass.
struct ModelWeights: Sendable {
    let dimensions: ModelDimensions
    let activation: Activation
    /// patch_embedding.weight [E, 1, P, P] used as [E, P²].
    let patchEmbedding: FloatTensor
    let patchEmbeddingBias: FloatTensor?
    let patchNorm: LayerNormWeights
    let postExtractProjection: Linear?
    /// pos_conv weight [D, D / groups, K], weight norm already folded.
    let positionalConv: FloatTensor
    let positionalConvBias: FloatTensor
    let encoderNorm: LayerNormWeights
    let relativePosition: RelativePositionBuckets?
    /// relative_attention_bias.weight [buckets, heads], shared by every layer (see `init`).
    let relativeAttentionBias: FloatTensor?
    let layers: [EncoderLayerWeights]
    let head: ModelHead

    init(store: any WeightStore) throws {
        let config = store.config
        let dims = try ModelDimensions(config: config)
        let loader = WeightLoader(store: store)
        let (E, D, H, P) = (dims.embedDim, dims.modelDim, dims.heads, dims.patchSize)
        dimensions = dims
        let activation = try Activation(name: config.activationFn)
        self.activation = activation

        patchEmbedding = try loader.load("patch_embedding.weight", shape: [E, 1, P, P])
        patchEmbeddingBias = config.convBias ? try loader.load("patch_embedding.bias", shape: [E]) : nil
        patchNorm = try LayerNormWeights(loader, "layer_norm", width: E)
        postExtractProjection = E != D ? try Linear(loader, "post_extract_proj", inputs: E, outputs: D) : nil

        positionalConv = try ModelWeights.positionalConvWeight(loader, dims)
        positionalConvBias = try loader.load("encoder.pos_conv.0.bias", shape: [D])
        encoderNorm = try LayerNormWeights(loader, "encoder.layer_norm", width: D)

        if config.relativePositionEmbedding {
            relativePosition = try RelativePositionBuckets(buckets: config.numBuckets, maxDistance: config.maxDistance)
            // The official encoder shares layer 0's bias with every layer, and the state dict holds
            // it under every layer's name; load_state_dict assigns them in layer order, so the
            // copy that counts is the last layer's that the file has (all equal in official
            // checkpoints; a file whose copies differ runs as torch runs it).
            // Found among the file's names (bounded by the file), never by counting up to
            // `encoder_layers`, which comes from the file too.
            let prefix = "encoder.layers.", suffix = ".self_attn.relative_attention_bias.weight"
            let lastLayer = loader.store.tensorNames.compactMap { name -> Int? in
                guard name.hasPrefix(prefix), name.hasSuffix(suffix) else { return nil }
                return Int(name.dropFirst(prefix.count).dropLast(suffix.count)).flatMap { $0 < dims.layers ? $0 : nil }
            }.max() ?? 0
            relativeAttentionBias = try loader.load("\(prefix)\(lastLayer)\(suffix)", shape: [config.numBuckets, H])
        } else {
            relativePosition = nil
            relativeAttentionBias = nil
        }
        let gated = config.relativePositionEmbedding && config.gruRelPos
        let feedForwardWidth = activation == .gluSwish ? 2 * dims.feedForwardDim : dims.feedForwardDim
        // One layer at a time: `encoder_layers` comes from the file, and `map` would reserve room
        // for all of them (2^31 layers: 687 GB) before the first missing tensor ends the loop.
        var loadedLayers: [EncoderLayerWeights] = []
        for index in 0..<dims.layers {
            let prefix = "encoder.layers.\(index)"
            let attention = AttentionWeights(
                query: try Linear(loader, "\(prefix).self_attn.q_proj", inputs: D, outputs: D),
                key: try Linear(loader, "\(prefix).self_attn.k_proj", inputs: D, outputs: D),
                value: try Linear(loader, "\(prefix).self_attn.v_proj", inputs: D, outputs: D),
                output: try Linear(loader, "\(prefix).self_attn.out_proj", inputs: D, outputs: D),
                gateLinear: gated ? try Linear(loader, "\(prefix).self_attn.grep_linear", inputs: dims.headDim, outputs: 8) : nil,
                gateScale: gated ? try loader.load("\(prefix).self_attn.grep_a", shape: [1, H, 1, 1]) : nil)
            loadedLayers.append(EncoderLayerWeights(
                attention: attention,
                attentionNorm: try LayerNormWeights(loader, "\(prefix).self_attn_layer_norm", width: D),
                feedForwardIn: try Linear(loader, activation == .gluSwish ? "\(prefix).fc1.linear" : "\(prefix).fc1",
                                          inputs: D, outputs: feedForwardWidth),
                feedForwardOut: try Linear(loader, "\(prefix).fc2", inputs: dims.feedForwardDim, outputs: D),
                finalNorm: try LayerNormWeights(loader, "\(prefix).final_layer_norm", width: D)))
        }
        layers = loadedLayers

        switch store.kind {
        case .pretrained:
            head = .features
        case .finetuned:
            guard config.predictorClass > 0 else {
                throw ModelError.invalidConfig(key: "predictor_class", value: "\(config.predictorClass)", reason: "must be positive")
            }
            head = .classifier(predictor: try Linear(loader, "predictor", inputs: D, outputs: config.predictorClass))
        case .tokenizer:
            guard config.quantN > 0, config.quantDim > 0 else {
                throw ModelError.invalidConfig(key: "quant_n/quant_dim", value: "\(config.quantN)/\(config.quantDim)",
                                               reason: "must be positive")
            }
            let codebook = try loader.load("quantize.embedding.weight", shape: [config.quantN, config.quantDim])
            // ‖c‖² per code, summed in float32 as the official quantizer's `pow(2).sum(dim=1)`.
            let norms = (0..<config.quantN).map { code in
                (0..<config.quantDim).reduce(Float(0)) { sum, index in
                    let value = codebook[code * config.quantDim + index]
                    return sum + value * value
                }
            }
            head = .tokenizer(hidden: try Linear(loader, "quantize_layer.0", inputs: D, outputs: D),
                              projection: try Linear(loader, "quantize_layer.2", inputs: D, outputs: config.quantDim),
                              codebook: codebook, codebookSquaredNorms: norms)
        }
    }

    /// The positional convolution's weight: the folded `weight` when the file has one (converted
    /// files), else torch's weight-norm parts (official checkpoints, either spelling) folded here
    /// by ``PositionalConvWeightNorm``, as the converter folds them.
    private static func positionalConvWeight(_ loader: WeightLoader, _ dims: ModelDimensions) throws -> FloatTensor {
        let shape = [dims.modelDim, dims.groupChannels, dims.convKernel]
        let name = PositionalConvWeightNorm.weightName
        if let folded = try loader.loadIfPresent(name, shape: shape) { return folded }
        guard let parts = PositionalConvWeightNorm.parts(in: loader.contains) else { throw ModelError.missingTensor(name: name) }
        let g = try loader.load(parts.gain, shape: [1, 1, dims.convKernel])
        let v = try loader.load(parts.direction, shape: shape)
        return FloatTensor(name: name, shape: shape) { weight in
            PositionalConvWeightNorm.fold(gains: g.buffer.map(Double.init), direction: v.buffer, into: weight)
        }
    }
}
