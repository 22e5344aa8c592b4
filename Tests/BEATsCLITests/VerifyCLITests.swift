import BEATsTestSupport
import Foundation
import Testing

/// Only the verdict lines and the exit status are asserted: the report's other lines may change.
@Suite("beats verify (command line)")
struct VerifyCLITests {
    static func verify(_ model: String, _ clip: String, reference: String) throws -> CLIRun {
        try CLI.beats(["verify", try CLI.model(model), try CLI.audio(clip), "--reference", try Fixtures.path("ref/\(reference).npy")])
    }

    @Test("each model on speech.wav against its own reference: PASS, exit 0", arguments: ModelFixture.all)
    func pass(model: ModelFixture) throws {
        let run = try Self.verify(model.name, "speech", reference: "\(model.name)/speech")
        #expect(run.status == 0, "\(run.standardOutput)\(run.standardError)")
        #expect(run.outputLines.contains("PASS"))
        #expect(!run.outputLines.contains("FAIL"))
    }

    @Test("tiny_ft.pt on speech.wav against noise.wav's reference (same shape): FAIL, exit 1")
    func fail() throws {
        let run = try Self.verify("tiny_ft", "speech", reference: "tiny_ft/noise")
        #expect(run.status == 1)
        #expect(run.outputLines.contains("FAIL"))
        #expect(!run.outputLines.contains("PASS"))
    }

    @Test("a reference of another shape: one error line naming it, exit 1")
    func shapeMismatch() throws {
        let reference = try Fixtures.path("ref/tiny/noise.npy")
        let run = try Self.verify("tiny", "speech", reference: "tiny/noise")
        expectOneErrorLine(run, mentioning: [reference])
    }
}
