import ArgumentParser
import BEATs
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

    func run() throws {
        let labels = try inference.openModel(model, command: "classify").classify(contentsOf: URL(fileURLWithPath: audio), top: top)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            struct Output: Encodable { let labels: [LabelScore] }
            try printRaw(String(decoding: try encoder.encode(Output(labels: labels)), as: UTF8.self) + "\n")
            return
        }
        for label in labels {
            let probability = String(format: "%.4f", Double(label.probability))
            let mid = label.mid.padding(toLength: max(12, label.mid.count), withPad: " ", startingAt: 0)
            print("\(probability)  \(mid)  \(label.name)")
        }
    }
}
