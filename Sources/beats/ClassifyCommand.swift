import ArgumentParser
import BEATsCore
import Foundation

struct ClassifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "AudioSet labels of a clip (fine-tuned models): MID, display name, probability."
    )

    @Argument(help: "A fine-tuned model: PyTorch checkpoint or converted file.") var model: String
    @Argument(help: "Audio: a WAV file.") var audio: String
    @Option(help: "How many labels to print, most probable first.") var top: Int = 5
    @Flag(help: "Print JSON: {\"labels\": [{\"index\", \"mid\", \"name\", \"probability\"}]}.") var json = false
    @OptionGroup var inference: InferenceOptions

    func validate() throws {
        guard top >= 1 else { throw ValidationError("--top must be at least 1") }
    }

    struct RankedLabel: Encodable {
        let index: Int
        let mid: String
        let name: String
        let probability: Float
    }

    func run() throws {
        let session = try InferenceSession(modelPath: model, threads: inference.threads)
        guard session.kind == .finetuned else {
            throw CommandError("\(model) is a \(session.kind.rawValue) model; classify needs a fine-tuned (AudioSet) model")
        }
        guard case .probabilities(let probabilities) = try session.run(audioPath: audio) else {
            throw CommandError("\(model): the model gave no probabilities")
        }
        let labels = session.weights.labels
        let ranked = probabilities.indices
            .sorted { probabilities[$0] != probabilities[$1] ? probabilities[$0] > probabilities[$1] : $0 < $1 }
            .prefix(top)
            .map { index in
                let label = index < labels.count ? labels[index] : nil
                return RankedLabel(index: index, mid: label?.mid ?? "", name: label?.name ?? "class \(index)", probability: probabilities[index])
            }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            struct Output: Encodable { let labels: [RankedLabel] }
            print(String(decoding: try encoder.encode(Output(labels: ranked)), as: UTF8.self))
            return
        }
        for label in ranked {
            let probability = String(format: "%.4f", Double(label.probability))
            let mid = label.mid.padding(toLength: max(12, label.mid.count), withPad: " ", startingAt: 0)
            print("\(probability)  \(mid)  \(label.name)")
        }
    }
}
