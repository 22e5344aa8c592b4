import BEATsCore
import BEATsTestSupport
import Foundation
import Testing

@Suite("beats run (command line)")
struct RunCLITests {
    /// `beats run MODEL AUDIO -o DIRECTORY/out.npy`: exit 0, the one summary line, the file alone.
    static func run(_ model: String, _ clip: String, kind: String, in directory: URL) throws -> TensorView {
        let output = directory.appendingPathComponent("out.npy").path
        let run = try CLI.beats(["run", model, try CLI.audio(clip), "-o", output])
        try #require(run.status == 0, "\(run.standardError)")
        #expect(run.standardError.isEmpty)
        let result = try NumpyFile.read(path: output)
        #expect(run.outputLines == ["\(output): \(kind) output \(result.shape)"])
        return result
    }

    @Test("speech.wav with each checkpoint: the official output", arguments: ModelFixture.all)
    func checkpoint(model: ModelFixture) throws {
        try withScratchDirectory { directory in
            let output = try Self.run(try CLI.model(model.name), "speech", kind: model.kind, in: directory)
            try model.expectMatchesReference(output, clip: "speech")
            expectEntries(of: directory, ["out.npy"])
        }
    }

    @Test("speech.wav with each model converted to beatsw: the official output", arguments: ModelFixture.all)
    func converted(model: ModelFixture) throws {
        try withScratchDirectory { directory in
            let file = try CLI.convert(model.name, in: directory, options: ["--no-fsync"])
            let output = try Self.run(file, "speech", kind: model.kind, in: directory)
            try model.expectMatchesReference(output, clip: "speech")
        }
    }

    @Test("short.wav (0.4 s, one patch): the official output")
    func shortClip() throws {
        try withScratchDirectory { directory in
            let model = ModelFixture.all[0]
            let output = try Self.run(try CLI.model(model.name), "short", kind: model.kind, in: directory)
            #expect(output.shape == [1, 16, 64])
            try model.expectMatchesReference(output, clip: "short")
        }
    }

    @Test("an output it cannot write: one error line naming it, nothing left behind", arguments: UnwritableOutput.allCases)
    func unwritableOutput(output: UnwritableOutput) throws {
        let model = try CLI.model("tiny"), audio = try CLI.audio("speech")
        try output.expectRefused { ["run", model, audio, "-o", $0] }
    }
}
