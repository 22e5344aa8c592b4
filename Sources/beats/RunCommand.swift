import ArgumentParser
import BEATsCore

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Write the official output for one clip as .npy.",
        discussion: """
            Pre-trained models give features float32 [1, T, D], fine-tuned ones class probabilities \
            float32 [1, C], tokenizers discrete tokens int64 [T] — what the official code returns for wav[None].
            """
    )

    @Argument(help: "Model: a PyTorch checkpoint (zip or legacy) or a converted file.") var model: String
    @Argument(help: "Audio: a WAV file (any PCM/float encoding, channel count and sample rate).") var audio: String
    @Option(name: .shortAndLong, help: "Output .npy file.") var output: String
    @OptionGroup var inference: InferenceOptions

    func run() throws {
        let session = try InferenceSession(modelPath: model, threads: inference.threads)
        let result = try session.run(audioPath: audio)
        try OutputFile.write(result.npyBytes, to: output)
        print("\(output): \(session.kind.rawValue) output \(result.shape)")
    }
}
