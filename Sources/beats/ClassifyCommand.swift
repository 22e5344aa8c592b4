import ArgumentParser
import BEATs
import Foundation

struct ClassifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "AudioSet labels of clips (fine-tuned models): MID, display name, probability.",
        discussion: """
            With --window/--hop each window is classified and the labels of the recording are each \
            class's maximum over windows. Many inputs (paths, directories, --list) share one model load; \
            --jsonl writes one line per input, --shard i/n takes this process's share.
            """
    )

    @Argument(help: "A fine-tuned model: PyTorch checkpoint or converted file.") var model: String
    @OptionGroup var inputs: InputOptions
    @Option(help: "How many labels to print, most probable first.") var top: Int = 5
    @Flag(help: "Print JSON per input: {\"labels\": [{\"index\", \"mid\", \"name\", \"probability\"}]} (with windows: {\"windows\": [{\"start\", \"end\", \"labels\"}], \"labels\"}).") var json = false
    @OptionGroup var inference: InferenceOptions

    func validate() throws {
        guard top >= 1 else { throw ValidationError("--top must be at least 1") }
    }

    /// One input's result, as `--json` prints it and `--jsonl` records it.
    struct Classification: Encodable, Sendable {
        struct Window: Encodable, Sendable {
            let start: Double
            let end: Double
            let labels: [LabelScore]
        }
        let windows: [Window]?
        let labels: [LabelScore]
    }

    func run() throws {
        let corpus = inputs.isCorpus
        let network = try inference.openModel(model, command: "classify", corpus: inputs.runsSideBySide)
        guard network.kind == .finetuned else {
            throw BEATsError.wrongKind(operation: "classify", needs: .finetuned, model: model, kind: network.kind)
        }
        let (top, windowing) = (top, inputs.windowing)
        let many = corpus && inputs.jsonl == nil
        try runCorpus(inputs, threadsPerClip: network.network.threads, batchSize: corpusBatchSize, batchWork: { paths in
            results(for: paths, windowing: windowing, network: network, windowed: { path, windows in
                let result = try network.classify(contentsOf: URL(fileURLWithPath: path), windows: windows, top: top)
                return Classification(windows: result.windows.map { Classification.Window(start: $0.start, end: $0.end, labels: $0.value) },
                                      labels: result.labels)
            }, whole: { _, output in
                guard case .probabilities(let values) = output else { throw ModelError.wrongKind(operation: "classify", kind: network.kind) }
                return Classification(windows: nil, labels: LabelScore.ranked(values, labels: network.classLabels, top: top))
            })
        }, show: { path, result in
            if inputs.jsonl != nil && corpus { return }
            if json {
                try printJSON(result, file: many ? path : nil)
                return
            }
            if many { print(path) }
            let indent = many ? "  " : ""
            for window in result.windows ?? [] {
                let names = window.labels.prefix(3).map { "\($0.name) \(String(format: "%.2f", Double($0.probability)))" }
                print(indent + String(format: "%8.2f–%-8.2f ", window.start, window.end) + names.joined(separator: ", "))
            }
            if result.windows != nil { print(indent + "over all windows (each class's maximum):") }
            for label in result.labels {
                let probability = String(format: "%.4f", Double(label.probability))
                let mid = label.mid.padding(toLength: max(12, label.mid.count), withPad: " ", startingAt: 0)
                print("\(indent)\(probability)  \(mid)  \(label.name)")
            }
        })
    }
}
