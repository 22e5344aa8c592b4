import ArgumentParser
import BEATs
import Foundation

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Write the official output per clip as .npy.",
        discussion: """
            Pre-trained models give features float32 [1, T, D], fine-tuned ones class probabilities \
            float32 [1, C], tokenizers discrete tokens int64 [T] — what the official code returns for wav[None]. \
            --layer N: encoder layer N's output [1, T, D]; --frames (fine-tuned): per-token probabilities \
            [1, T, C]; --pool mean (pre-trained): the features' mean over tokens [1, D]. With --window/--hop, \
            windows are concatenated along the token axis (features, tokens) or stacked ([W, C], [W, D]). \
            One input writes -o OUT ('-' for standard output); many write DIR/NAME.npy with --output-dir.
            """
    )

    enum Pool: String, ExpressibleByArgument, CaseIterable { case mean }

    @Argument(help: "Model: a PyTorch checkpoint (zip or legacy) or a converted file.") var model: String
    @OptionGroup var inputs: InputOptions
    @Option(name: .shortAndLong, help: "Output .npy file for one input ('-' for standard output).") var output: String?
    @Option(help: "Directory for one NAME.npy per input (NAME: the audio file's name without extension).") var outputDir: String?
    @Option(help: "Output of encoder layer N (1 … layers) instead of the model's output.") var layer: Int?
    @Flag(help: "Fine-tuned models: per-token probabilities [1, T, C], before the mean over time.") var frames = false
    @Option(help: "Pre-trained models: pool the features over tokens (mean).") var pool: Pool?
    @OptionGroup var inference: InferenceOptions

    func validate() throws {
        guard (output == nil) != (outputDir == nil) else { throw ValidationError("give either -o OUT (one input) or --output-dir DIR") }
        guard [layer != nil, frames, pool != nil].filter({ $0 }).count <= 1 else {
            throw ValidationError("--layer, --frames and --pool exclude each other")
        }
        if let layer, layer < 1 { throw ValidationError("--layer counts from 1") }
    }

    var request: OutputRequest {
        if let layer { return .layer(layer) }
        if frames { return .frameProbabilities }
        if pool != nil { return .meanPooled }
        return .official
    }

    /// What `--jsonl` records per input.
    struct Written: Encodable, Sendable {
        let output: String
        let shape: [Int]
    }

    func run() throws {
        let corpus = inputs.isCorpus
        if let output {
            guard !corpus else { throw CommandError("-o takes one input; for many use --output-dir DIR") }
            try OutputFile.checkWritable(output)
        }
        if let outputDir { try OutputFile.checkDirectory(outputDir) }
        // Names are checked before any work: two inputs must not write the same file.
        let destinations = try outputDir.map { directory in
            try Dictionary(outputNames(for: try inputs.resolvedInputs(recorded: []), in: directory), uniquingKeysWith: { first, _ in first })
        }
        let network = try inference.openModel(model, command: "run", corpus: inputs.runsSideBySide)
        let (request, windowing, single) = (self.request, inputs.windowing, output)
        let write = { @Sendable (path: String, bytes: [UInt8], shape: [Int]) throws -> Written in
            let target = single ?? destinations?[path] ?? path + ".npy"
            try OutputFile.write(bytes, to: target)
            return Written(output: target, shape: shape)
        }
        try runCorpus(inputs, threadsPerClip: network.network.threads, batchSize: corpusBatchSize, batchWork: { paths in
            results(for: paths, windowing: windowing, network: network, request: request, windowed: { path, windows in
                let outputs = try network.outputs(contentsOf: URL(fileURLWithPath: path), windows: windows, request: request).map(\.value)
                return try write(path, ModelOutput.npyBytes(joining: outputs), ModelOutput.shape(joining: outputs))
            }, whole: { path, output in
                try write(path, output.npyBytes(), output.shape)
            })
        }, show: { _, written in
            if written.output != "-" && inputs.jsonl == nil {
                print("\(written.output): \(network.kind.rawValue) output \(written.shape)")
            }
        })
    }

    /// DIR/NAME.npy per input; two inputs with one name are an error naming both.
    func outputNames(for paths: [String], in directory: String) throws -> [(String, String)] {
        var owners: [String: String] = [:]
        return try paths.map { path in
            let name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension + ".npy"
            if let other = owners[name] {
                throw CommandError("\(other) and \(path) would both write \(directory)/\(name); rename one or run them separately")
            }
            owners[name] = path
            return (path, directory + "/" + name)
        }
    }
}
