import ArgumentParser
import BEATs
import Foundation

struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "How far two models' outputs are apart over clips (e.g. float32 against int8).",
        discussion: """
            Each clip is decoded once and run through both models (same kind). Per clip and summarised \
            (mean, worst): cosine and max/mean |B - A| for float outputs; for classifiers also the mean per-class \
            Bernoulli KL divergence KL(A || B) in nats (probabilities clamped to [1e-7, 1 - 1e-7]), top-1 \
            agreement and top-5 overlap; for tokenizers the fraction of identical tokens. A is the reference.
            """
    )

    @Argument(help: "Model A (the reference): a PyTorch checkpoint or a converted file.") var modelA: String
    @Argument(help: "Model B (the candidate).") var modelB: String
    @Argument(help: "Audio files or directories (their audio files, sorted).") var audio: [String] = []
    @Option(help: "A file listing audio paths, one per line.") var list: String?
    @Flag(help: "Print one JSON object instead of the table.") var json = false
    @OptionGroup var inference: InferenceOptions

    func validate() throws {
        guard !audio.isEmpty || list != nil else { throw ValidationError("give at least one AUDIO file, a directory or --list FILE") }
    }

    func run() throws {
        let files = try Corpus.inputs(audio, listFile: list)
        let a = try inference.openModel(modelA, command: "compare")
        let b = try inference.openModel(modelB, command: "compare")
        let report = try ComparisonReport.run(a, b, files: files)
        try printRaw(json ? try report.json() + "\n" : report.table())
    }
}
