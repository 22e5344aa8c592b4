/// Which BEATs model a checkpoint holds.
public enum ModelKind: String, Sendable, Codable, CaseIterable {
    /// Pre-trained encoder: `extract_features` gives features [1, T, D].
    case pretrained
    /// AudioSet fine-tuned classifier: probabilities [1, C].
    case finetuned
    /// Acoustic tokenizer: discrete codebook indices [T].
    case tokenizer
}
