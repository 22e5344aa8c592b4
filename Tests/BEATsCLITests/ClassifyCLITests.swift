import BEATsCore
import BEATsTestSupport
import Foundation
import Testing

@Suite("beats classify (command line)")
struct ClassifyCLITests {
    struct Label: Equatable {
        let mid: String
        let name: String
    }

    /// `Fixtures/class_labels_indices.csv` (`index,mid,display_name`, names with commas quoted).
    static func audioSetLabels() throws -> [Label] {
        let text = String(decoding: try Fixtures.bytes("class_labels_indices.csv"), as: UTF8.self)
        return text.split(separator: "\n").dropFirst().map { row in
            let fields = row.split(separator: ",", maxSplits: 2, omittingEmptySubsequences: false)
            var name = String(fields[2])
            if name.hasPrefix("\"") && name.hasSuffix("\"") { name = String(name.dropFirst().dropLast()) }
            return Label(mid: String(fields[1]), name: name)
        }
    }

    /// The official probabilities of tiny_ft.pt for speech.wav, and its indices most probable first.
    static func reference() throws -> (probabilities: [Float], ranked: [Int]) {
        let probabilities = try Fixtures.reference("tiny_ft/speech").floats()
        return (probabilities, probabilities.indices.sorted { probabilities[$0] > probabilities[$1] })
    }

    static func classify(_ options: [String] = []) throws -> CLIRun {
        try CLI.beats(["classify", try CLI.model("tiny_ft"), try CLI.audio("speech")] + options)
    }

    /// Text output: one line per label, `probability  MID  name`, the reference's top `count`.
    static func expectTopLines(_ run: CLIRun, count: Int, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(run.status == 0, "\(run.standardError)", sourceLocation: sourceLocation)
        #expect(run.standardError.isEmpty, sourceLocation: sourceLocation)
        #expect(run.outputLines.count == count, "\(run.standardOutput)", sourceLocation: sourceLocation)
        let labels = try audioSetLabels()
        let (probabilities, ranked) = try reference()
        for (line, index) in zip(run.outputLines, ranked) {
            let fields = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
            try #require(fields.count == 3, "\(line)", sourceLocation: sourceLocation)
            let printed = try #require(Float(fields[0]), "\(line)", sourceLocation: sourceLocation)
            #expect(abs(printed - probabilities[index]) <= 0.5e-4 + 1e-5, "\(line)", sourceLocation: sourceLocation)
            #expect(String(fields[1]) == labels[index].mid, "\(line)", sourceLocation: sourceLocation)
            #expect(fields[2].trimmingCharacters(in: .whitespaces) == labels[index].name, "\(line)", sourceLocation: sourceLocation)
        }
    }

    @Test("tiny_ft.pt + speech.wav: the reference's 5 most probable labels, one line each")
    func defaultTop() throws {
        try Self.expectTopLines(try Self.classify(), count: 5)
    }

    @Test("--top 3: the reference's 3 most probable labels")
    func top3() throws {
        try Self.expectTopLines(try Self.classify(["--top", "3"]), count: 3)
    }

    @Test("--json: {labels: [{index, mid, name, probability}]}, most probable first, equal to the reference")
    func json() throws {
        let run = try Self.classify(["--json"])
        #expect(run.status == 0)
        #expect(run.standardError.isEmpty)
        let object = try jsonObject(run)
        #expect(Set(object.keys) == ["labels"])
        let entries = try #require(object["labels"] as? [[String: Any]])
        #expect(entries.count == 5)
        let labels = try Self.audioSetLabels()
        let (probabilities, ranked) = try Self.reference()
        #expect(entries.compactMap { $0["index"] as? Int } == Array(ranked.prefix(5)))
        var previous = Double.infinity
        for entry in entries {
            #expect(Set(entry.keys) == ["index", "mid", "name", "probability"])
            let index = try #require(entry["index"] as? Int)
            let probability = try #require(entry["probability"] as? Double)
            #expect(abs(probability - Double(probabilities[index])) <= 1e-5)
            #expect(probability <= previous)
            previous = probability
            #expect(entry["mid"] as? String == labels[index].mid)
            #expect(entry["name"] as? String == labels[index].name)
        }
    }

    @Test("a pre-trained model: one error line saying classify needs a fine-tuned model")
    func pretrainedModel() throws {
        let model = try CLI.model("tiny")
        let run = try CLI.beats(["classify", model, try CLI.audio("speech")])
        expectOneErrorLine(run, mentioning: [model, "fine-tuned"])
    }

    @Test("swapped arguments: one error line saying the first argument is audio, not a model")
    func swappedArguments() throws {
        let audio = try CLI.audio("speech")
        let run = try CLI.beats(["classify", audio, try CLI.model("tiny_ft")])
        expectOneErrorLine(run, mentioning: [audio])
        // The words must be the message's own, not part of the path (Fixtures/audio/…, Fixtures/models/…).
        let message = (run.errorLines.first ?? "").replacingOccurrences(of: audio, with: "FILE").lowercased()
        #expect(message.contains("audio") && message.contains("model"), "\(message)")
    }
}
