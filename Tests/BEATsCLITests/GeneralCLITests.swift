import BEATsTestSupport
import Foundation
import Testing

@Suite("beats (command line): global options and errors every command shares")
struct GeneralCLITests {
    static let commands = ["inspect", "convert", "check", "tensor", "run", "classify", "tokenize", "verify", "bench"]

    @Test("--version: one version line, exit 0")
    func version() throws {
        let run = try CLI.beats(["--version"])
        #expect(run.status == 0, "\(run.standardError)")
        #expect(run.standardError.isEmpty)
        #expect(run.outputLines.count == 1)
        #expect(run.outputLines.first?.contains(/[0-9]+\.[0-9]+/) == true, "\(run.standardOutput)")
    }

    @Test("--help: exit 0, every command listed")
    func help() throws {
        let run = try CLI.beats(["--help"])
        #expect(run.status == 0)
        let firstWords = Set(run.outputLines.compactMap { $0.split(separator: " ").first.map(String.init) })
        for command in Self.commands {
            #expect(firstWords.contains(command), "\(command) missing from: \(run.standardOutput)")
        }
    }

    /// A command line reading one input file; `output` is a path in the scratch directory that
    /// must not exist afterwards.
    struct Invocation: Sendable, CustomTestStringConvertible {
        let testDescription: String
        let arguments: @Sendable (_ input: String, _ output: String) throws -> [String]
    }

    static let modelInvocations = [
        Invocation(testDescription: "inspect") { model, _ in ["inspect", model] },
        Invocation(testDescription: "check") { model, _ in ["check", model] },
        Invocation(testDescription: "convert") { model, output in ["convert", model, "-o", output] },
        Invocation(testDescription: "tensor") { model, output in ["tensor", model, "layer_norm.bias", "-o", output] },
        Invocation(testDescription: "run") { model, output in ["run", model, try CLI.audio("speech"), "-o", output] },
        Invocation(testDescription: "classify") { model, _ in ["classify", model, try CLI.audio("speech")] },
        Invocation(testDescription: "tokenize") { model, output in ["tokenize", model, try CLI.audio("speech"), "-o", output] },
        Invocation(testDescription: "bench") { model, _ in ["bench", model, try CLI.audio("speech"), "--runs", "1"] },
    ]

    /// `invocation` on a file `name` that does not exist: one error line naming it, no output.
    static func expectMissingInputRefused(_ invocation: Invocation, name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        try withScratchDirectory { directory in
            let missing = directory.appendingPathComponent(name).path
            let run = try CLI.beats(try invocation.arguments(missing, directory.appendingPathComponent("out").path))
            expectOneErrorLine(run, mentioning: [missing], sourceLocation: sourceLocation)
            expectEntries(of: directory, [], sourceLocation: sourceLocation)
        }
    }

    @Test("a model file that does not exist: one error line naming it", arguments: modelInvocations)
    func missingModel(invocation: Invocation) throws {
        try Self.expectMissingInputRefused(invocation, name: "no-such-model.pt")
    }

    static let audioInvocations = [
        Invocation(testDescription: "run") { audio, output in ["run", try CLI.model("tiny"), audio, "-o", output] },
        Invocation(testDescription: "classify") { audio, _ in ["classify", try CLI.model("tiny_ft"), audio] },
        Invocation(testDescription: "tokenize") { audio, output in ["tokenize", try CLI.model("tiny_tok"), audio, "-o", output] },
        Invocation(testDescription: "verify") { audio, _ in
            ["verify", try CLI.model("tiny_ft"), audio, "--reference", try Fixtures.path("ref/tiny_ft/short.npy")]
        },
    ]

    @Test("an audio file that does not exist: one error line naming it", arguments: audioInvocations)
    func missingAudio(invocation: Invocation) throws {
        try Self.expectMissingInputRefused(invocation, name: "no-such-clip.wav")
    }

    /// A 16 kHz mono PCM16 WAV of `samples` samples (a quiet square wave).
    static func pcm16WAV(samples: Int) -> Data {
        var data = Data()
        func append<Integer: FixedWidthInteger>(_ value: Integer) { withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) } }
        let dataBytes = UInt32(samples * 2)
        data.append(contentsOf: Array("RIFF".utf8)); append(36 + dataBytes); data.append(contentsOf: Array("WAVE".utf8))
        data.append(contentsOf: Array("fmt ".utf8)); append(UInt32(16))
        append(UInt16(1)); append(UInt16(1)); append(UInt32(16_000)); append(UInt32(32_000)); append(UInt16(2)); append(UInt16(16))
        data.append(contentsOf: Array("data".utf8)); append(dataBytes)
        for index in 0..<samples { append(Int16(index / 40 % 2 == 0 ? 1000 : -1000)) }
        return data
    }

    @Test("0.1 s of audio (less than one patch): one error line naming the file and its length in seconds",
          arguments: audioInvocations)
    func tooShortAudio(invocation: Invocation) throws {
        try withScratchDirectory { directory in
            let clip = directory.appendingPathComponent("tenth.wav")
            try Self.pcm16WAV(samples: 1_600).write(to: clip)
            let run = try CLI.beats(try invocation.arguments(clip.path, directory.appendingPathComponent("out").path))
            expectOneErrorLine(run, mentioning: [clip.path])
            // A duration such as "0.1 s" or "0.10 seconds" in the message itself (not in the path).
            let message = (run.errorLines.first ?? "").replacingOccurrences(of: clip.path, with: "FILE")
            #expect(message.contains(/[0-9] ?(s|seconds)([^A-Za-z]|$)/), "\(message)")
            expectEntries(of: directory, ["tenth.wav"])
        }
    }
}
