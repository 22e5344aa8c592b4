import ArgumentParser
import BEATs
import Foundation

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Write the official output for one clip as .npy.",
        discussion: """
            Pre-trained models give features float32 [1, T, D], fine-tuned ones class probabilities \
            float32 [1, C], tokenizers discrete tokens int64 [T] — what the official code returns for wav[None]. \
            -o - writes the .npy to standard output.
            """
    )

    @Argument(help: "Model: a PyTorch checkpoint (zip or legacy) or a converted file.") var model: String
    @Argument(help: "Audio: a WAV file (any PCM/float encoding, channel count and sample rate).") var audio: String
    @Option(name: .shortAndLong, help: "Output .npy file ('-' for standard output).") var output: String
    @OptionGroup var inference: InferenceOptions

    func run() throws {
        try OutputFile.checkWritable(output)
        let network = try inference.openModel(model, command: "run")
        let result = try network.output(contentsOf: URL(fileURLWithPath: audio))
        try OutputFile.write(result.npyBytes(), to: output)
        if output != "-" {
            print("\(output): \(network.kind.rawValue) output \(result.shape)")
        }
    }
}
