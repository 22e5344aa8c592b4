/// Errors of the library's own checks (the stages underneath have their own typed errors:
/// `CheckpointError`, `NativeFormatError`, `AudioError`, `ModelError`).
public enum BEATsError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The operation needs another kind of model: `classify` a fine-tuned one, `tokens` a tokenizer.
    case wrongKind(operation: String, needs: ModelKind, model: String, kind: ModelKind)
    /// An audio file was given where a model file was expected (arguments swapped, usually).
    case audioInsteadOfModel(path: String, format: String)
    /// A model file was given where audio was expected.
    case modelInsteadOfAudio(path: String, format: String)
    /// An audio file that cannot be decoded (the decoder's reason, the file named).
    case unreadableAudio(path: String, reason: String)
    /// A `--list` file that cannot be read.
    case unreadableList(path: String, reason: String)
    /// Window length or hop that is not a positive number of seconds.
    case invalidWindowing(String)
    /// `beats tensor` asked for a name the file does not have.
    case noSuchTensor(file: String, name: String, detail: String)
    /// A file that contradicts itself (lists a tensor it cannot return, say).
    case inconsistentFile(String)
    /// An output path that cannot be written: a directory, a missing directory, no permission.
    case cannotWrite(path: String, reason: String)

    /// The one-line message the command line prints after `error:`.
    public var description: String {
        switch self {
        case .wrongKind(let operation, let needs, let model, let kind):
            return "\(model) is a \(kind.displayName) model; \(operation) needs a \(needs.displayName) model"
        case .audioInsteadOfModel(let path, let format):
            return "\(path) is audio (\(format)), not a model: expected a PyTorch checkpoint or a native .beatsw file"
        case .modelInsteadOfAudio(let path, let format):
            return "\(path) is a model (\(format)), not audio: give the model first, then the audio"
        case .unreadableAudio(let path, let reason):
            return "\(path): \(reason)"
        case .unreadableList(let path, let reason):
            return "cannot read the list \(path): \(reason)"
        case .invalidWindowing(let reason):
            return "windows: \(reason)"
        case .noSuchTensor(let file, let name, let detail):
            return "\(file) has no tensor '\(name)' (\(detail))"
        case .inconsistentFile(let reason):
            return reason
        case .cannotWrite(let path, let reason):
            return "cannot write \(path): \(reason)"
        }
    }
}

extension ModelKind {
    /// How people write the kind: "pre-trained", "fine-tuned (AudioSet)", "tokenizer".
    public var displayName: String {
        switch self {
        case .pretrained: return "pre-trained"
        case .finetuned: return "fine-tuned (AudioSet)"
        case .tokenizer: return "tokenizer"
        }
    }
}
