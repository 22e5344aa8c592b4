import BEATsCore
import BEATsTestSupport
import Foundation
import Testing

/// `beats compare A B AUDIO… --json` against the same measures computed here from `beats run`'s
/// outputs of each model.
@Suite("beats compare (command line)")
struct CompareCLITests {
    static let clips = ["speech", "noise"]

    /// `beats run MODEL CLIP -o …` as doubles (floats) or integers (tokens).
    static func run(_ model: String, _ clip: String, in directory: URL) throws -> TensorView {
        let output = directory.appendingPathComponent("\(UUID().uuidString).npy").path
        let run = try CLI.beats(["run", model, try CLI.audio(clip), "-o", output])
        try #require(run.status == 0, "\(run.standardError)")
        return try NumpyFile.read(path: output)
    }

    static func compare(_ a: String, _ b: String) throws -> (clips: [[String: Any]], summary: [String: [String: Double]]) {
        let run = try CLI.beats(["compare", a, b] + (try clips.map { try CLI.audio($0) }) + ["--json"])
        try #require(run.status == 0, "\(run.standardError)")
        let object = try jsonObject(run)
        let clips = try #require(object["clips"] as? [[String: Any]])
        let summary = try #require(object["summary"] as? [String: [String: Double]])
        return (clips, summary)
    }

    static func expectClose(_ actual: Any?, _ expected: Double, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let actual = actual as? Double else {
            Issue.record("\(what): missing", sourceLocation: sourceLocation)
            return
        }
        #expect(abs(actual - expected) <= 1e-12 * max(1, abs(expected)), "\(what): \(actual) vs \(expected)", sourceLocation: sourceLocation)
    }

    static func top(_ values: [Double], _ count: Int) -> [Int] {
        Array(values.indices.sorted { values[$0] != values[$1] ? values[$0] > values[$1] : $0 < $1 }.prefix(count))
    }

    @Test("classifier float32 against int8: cosine, max/mean abs, Bernoulli KL, top-1, top-5 as computed from beats run")
    func classifier() throws {
        try withScratchDirectory { directory in
            let a = try CLI.model("tiny_ft")
            let b = try CLI.convert("tiny_ft", in: directory, options: ["--quantize", "int8", "--no-fsync"])
            let result = try Self.compare(a, b)
            #expect(result.clips.count == 2)
            var cosines: [Double] = []
            var divergences: [Double] = []
            for clip in Self.clips {
                let p = try Self.run(a, clip, in: directory).doubles()
                let q = try Self.run(b, clip, in: directory).doubles()
                let path = try CLI.audio(clip)
                let row = try #require(result.clips.first { $0["file"] as? String == path })
                #expect(row["shape"] as? [Int] == [1, 527])
                let dot = zip(p, q).map { $0 * $1 }.reduce(0, +)
                let cosine = dot / (p.map { $0 * $0 }.reduce(0, +).squareRoot() * q.map { $0 * $0 }.reduce(0, +).squareRoot())
                let errors = zip(p, q).map { abs($0 - $1) }
                let divergence = zip(p, q).map { pa, qb -> Double in
                    let x = min(max(pa, 1e-7), 1 - 1e-7), y = min(max(qb, 1e-7), 1 - 1e-7)
                    return x * log(x / y) + (1 - x) * log((1 - x) / (1 - y))
                }.reduce(0, +) / Double(p.count)
                Self.expectClose(row["cosine"], cosine, "\(clip) cosine")
                Self.expectClose(row["max_abs_error"], errors.max()!, "\(clip) max abs")
                Self.expectClose(row["mean_abs_error"], errors.reduce(0, +) / Double(errors.count), "\(clip) mean abs")
                Self.expectClose(row["mean_bernoulli_kl"], divergence, "\(clip) KL")
                #expect(divergence > 0)
                Self.expectClose(row["top1_agreement"], Self.top(p, 1) == Self.top(q, 1) ? 1 : 0, "\(clip) top-1")
                Self.expectClose(row["top5_overlap"], Double(Set(Self.top(p, 5)).intersection(Self.top(q, 5)).count) / 5, "\(clip) top-5")
                cosines.append(cosine)
                divergences.append(divergence)
            }
            let table = try CLI.beats(["compare", a, b, try CLI.audio("speech")])
            #expect(table.outputLines.contains { $0.contains(" cosine ") && $0.contains(" mean_bernoulli_kl  top1_agreement ") },
                    "\(table.standardOutput)")
            Self.expectClose(result.summary["cosine"]?["mean"], cosines.reduce(0, +) / 2, "mean cosine")
            Self.expectClose(result.summary["cosine"]?["worst"], cosines.min()!, "worst cosine")
            Self.expectClose(result.summary["mean_bernoulli_kl"]?["worst"], divergences.max()!, "worst KL")
            #expect(result.summary["token_agreement"] == nil)
        }
    }

    @Test("tokenizer float32 against int8: token agreement as computed from beats run")
    func tokenizer() throws {
        try withScratchDirectory { directory in
            let a = try CLI.model("tiny_tok")
            let b = try CLI.convert("tiny_tok", in: directory, options: ["--quantize", "int8", "--no-fsync"])
            let result = try Self.compare(a, b)
            var agreements: [Double] = []
            for clip in Self.clips {
                let path = try CLI.audio(clip)
                let row = try #require(result.clips.first { $0["file"] as? String == path })
                let tokensA = try Self.run(a, clip, in: directory).integers()
                let tokensB = try Self.run(b, clip, in: directory).integers()
                let agreement = Double(zip(tokensA, tokensB).filter { $0 == $1 }.count) / Double(tokensA.count)
                Self.expectClose(row["token_agreement"], agreement, "\(clip) tokens")
                #expect(row["cosine"] == nil)
                agreements.append(agreement)
            }
            Self.expectClose(result.summary["token_agreement"]?["worst"], agreements.min()!, "worst agreement")
        }
    }

    @Test("pre-trained checkpoint against its float32 conversion: table, and max abs as computed from beats run")
    func identical() throws {
        try withScratchDirectory { directory in
            let a = try CLI.model("tiny")
            let b = try CLI.convert("tiny", in: directory, options: ["--no-fsync"])
            let run = try CLI.beats(["compare", a, b, try CLI.audio("speech")])
            #expect(run.status == 0)
            #expect(run.outputLines.first == "A  \(a) (float32)")
            #expect(run.outputLines.contains { $0.hasPrefix("worst ") })
            let result = try Self.compare(a, b)
            let features = try Self.run(a, "speech", in: directory).doubles()
            let converted = try Self.run(b, "speech", in: directory).doubles()
            Self.expectClose(result.clips[0]["max_abs_error"], zip(features, converted).map { abs($0 - $1) }.max()!, "max abs")
            #expect(result.clips[0]["mean_bernoulli_kl"] == nil)
        }
    }

    @Test("models of two kinds: one error line naming both, exit 1")
    func kinds() throws {
        let a = try CLI.model("tiny"), b = try CLI.model("tiny_ft")
        let run = try CLI.beats(["compare", a, b, try CLI.audio("speech")])
        expectOneErrorLine(run, mentioning: ["\(a) is pretrained and \(b) is finetuned"])
    }
}
