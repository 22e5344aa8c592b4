/// Which BEATs model a checkpoint holds.
public enum ModelKind: String, Sendable, Codable, CaseIterable {
    /// Pre-trained encoder: `extract_features` gives features [1, T, D].
    case pretrained
    /// AudioSet fine-tuned classifier: probabilities [1, C].
    case finetuned
    /// Acoustic tokenizer: discrete codebook indices [T].
    case tokenizer
}

extension ModelKind {
    /// The kind a checkpoint holds, from its config keys and tensor names (a checkpoint does not
    /// say it outright): a tokenizer has a quantizer (`quant_n`/`quant_dim` in its config, or
    /// `quantize.*` tensors), a fine-tuned model a `predictor`, anything else is pre-trained.
    /// The one rule for every reader of foreign files (PyTorch, safetensors).
    public static func infer(configKeys: Set<String>, tensorNames: some Sequence<String>, config: BEATsConfig) -> ModelKind {
        var hasPredictor = false
        for name in tensorNames {
            if name.hasPrefix("quantize.") || name.hasPrefix("quantize_layer.") { return .tokenizer }
            if name == "predictor.weight" { hasPredictor = true }
        }
        if configKeys.contains("quant_n") || configKeys.contains("quant_dim") { return .tokenizer }
        return hasPredictor || config.finetunedModel ? .finetuned : .pretrained
    }
}
