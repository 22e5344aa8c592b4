import ArgumentParser
import BEATs
import Foundation

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
        if let output { try OutputFile.checkWritable(output) }
        let network = try inference.openModel(model, command: "tokenize")
        let tokens = try network.tokens(contentsOf: URL(fileURLWithPath: audio))
        if let output {
            try OutputFile.write(ModelOutput.tokens(tokens).npyBytes(), to: output)
            if output != "-" { print("\(output): \(tokens.count) tokens") }
        } else {
            print(tokens.map(String.init).joined(separator: " "))
        }
    }
}
