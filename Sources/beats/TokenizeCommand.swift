import ArgumentParser
import BEATsCore

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Discrete acoustic tokens of a clip (tokenizer models)."
    )

    @Argument(help: "A tokenizer model: PyTorch checkpoint or converted file.") var model: String
    @Argument(help: "Audio: a WAV file.") var audio: String
    @Option(name: .shortAndLong, help: "Write the tokens as int64 [T] .npy instead of printing them.") var output: String?
    @OptionGroup var inference: InferenceOptions

    func run() throws {
        let session = try InferenceSession(modelPath: model, threads: inference.threads)
        guard session.kind == .tokenizer else {
            throw CommandError("\(model) is a \(session.kind.rawValue) model; tokenize needs a tokenizer model")
        }
        let result = try session.run(audioPath: audio)
        guard case .tokens(let tokens) = result else { throw CommandError("\(model): the model gave no tokens") }
        if let output {
            try OutputFile.write(result.npyBytes, to: output)
            print("\(output): \(tokens.count) tokens")
        } else {
            print(tokens.map(String.init).joined(separator: " "))
        }
    }
}
