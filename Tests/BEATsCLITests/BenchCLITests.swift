import BEATsTestSupport
import Foundation
import Testing

/// Timings are only checked for being measured (positive, ordered), never against thresholds.
@Suite("beats bench (command line)")
struct BenchCLITests {
    @Test("--runs 1 --json on short.wav: one JSON object with kind, timings and peak memory", arguments: ModelFixture.all)
    func json(model: ModelFixture) throws {
        let path = try CLI.model(model.name)
        let run = try CLI.beats(["bench", path, try CLI.audio("short"), "--runs", "1", "--json"])
        #expect(run.status == 0, "\(run.standardError)")
        #expect(run.outputLines.count == 1)
        let report = try jsonObject(run)
        #expect(report["kind"] as? String == model.kind)
        #expect(report["model"] as? String == path)
        #expect(report["runs"] as? Int == 1)
        // short.wav holds 6,400 samples at 16 kHz.
        #expect(report["clip_seconds"] as? Double == 0.4)
        let median = try #require(report["median_seconds"] as? Double)
        #expect(median > 0)
        #expect((report["min_seconds"] as? Double ?? .nan) <= median)
        #expect((report["max_seconds"] as? Double ?? .nan) >= median)
        #expect((report["peak_rss_bytes"] as? Int ?? 0) > 1_000_000)
    }
}
