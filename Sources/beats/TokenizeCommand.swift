import ArgumentParser
import BEATs
import Foundation

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Discrete acoustic tokens of clips (tokenizer models).",
        discussion: "With --window/--hop the windows' tokens are concatenated. Many inputs print one line per file (or --jsonl)."
    )

    @Argument(help: "A tokenizer model: PyTorch checkpoint or converted file.") var model: String
    @OptionGroup var inputs: InputOptions
    @Option(name: .shortAndLong, help: "One input: write the tokens as int64 [T] .npy instead of printing them.") var output: String?
    @Flag(help: "Print JSON per input: {\"tokens\": [...]}.") var json = false
    @OptionGroup var inference: InferenceOptions

    struct Tokens: Encodable, Sendable {
        let tokens: [Int]
    }

    func run() throws {
        let corpus = inputs.isCorpus
        if let output {
            guard !corpus else { throw CommandError("-o takes one input; for many use --jsonl FILE") }
            try OutputFile.checkWritable(output)
        }
        let network = try inference.openModel(model, command: "tokenize", corpus: inputs.runsSideBySide)
        guard network.kind == .tokenizer else {
            throw BEATsError.wrongKind(operation: "tokenize", needs: .tokenizer, model: model, kind: network.kind)
        }
        let windowing = inputs.windowing
        try runCorpus(inputs, threadsPerClip: network.network.threads, batchSize: corpusBatchSize, batchWork: { paths in
            results(for: paths, windowing: windowing, network: network, windowed: { path, windows in
                Tokens(tokens: try network.outputs(contentsOf: URL(fileURLWithPath: path), windows: windows).flatMap { window -> [Int] in
                    if case .tokens(let tokens) = window.value { return tokens } else { return [] }
                })
            }, whole: { _, output in
                guard case .tokens(let tokens) = output else { throw ModelError.wrongKind(operation: "tokenize", kind: network.kind) }
                return Tokens(tokens: tokens)
            })
        }, show: { path, result in
            if let output {
                try OutputFile.write(ModelOutput.tokens(result.tokens).npyBytes(), to: output)
                if output != "-" { print("\(output): \(result.tokens.count) tokens") }
            } else if json {
                try printJSON(result, file: corpus ? path : nil)
            } else if inputs.jsonl == nil {
                print((corpus ? path + ": " : "") + result.tokens.map(String.init).joined(separator: " "))
            }
        })
    }
}
