import BEATsTestSupport
import Foundation
import Testing

@Suite("beats convert (command line)")
struct ConvertCLITests {
    /// One way of converting tiny.pt and what the file must then hold.
    struct Variant: Sendable, CustomTestStringConvertible {
        let options: [String]
        /// How many tensors the summary says were quantized.
        let quantized: Int
        /// `inspect --json`'s dtype of `encoder.layers.0.fc1.weight` and of its bias.
        let weightDType: String
        let biasDType: String

        var testDescription: String { options.isEmpty ? "float32" : options.joined(separator: " ") }
    }

    static let variants = [
        Variant(options: [], quantized: 0, weightDType: "float32", biasDType: "float32"),
        Variant(options: ["--quantize", "int8"], quantized: 13, weightDType: "qint8", biasDType: "float32"),
        Variant(options: ["--dtype", "f16"], quantized: 0, weightDType: "float16", biasDType: "float16"),
        Variant(options: ["--no-fsync"], quantized: 0, weightDType: "float32", biasDType: "float32"),
    ]

    /// `sha256sum Fixtures/models/tiny.pt`.
    static let tinySHA256 = "aef3876e5d295d837911d8ff58e333bbfc96e4d932daaec6f8d086ca8725244e"

    @Test("tiny.pt: exit 0, summary on stdout, a beatsw 1.0 file that check and inspect accept", arguments: variants)
    func convert(variant: Variant) throws {
        try withScratchDirectory { directory in
            let input = try CLI.model("tiny")
            let output = directory.appendingPathComponent("tiny.beatsw").path
            let run = try CLI.beats(["convert", input, "-o", output] + variant.options)
            #expect(run.status == 0)
            #expect(run.standardError.isEmpty, "no progress when stderr is no terminal: \(run.standardError)")
            let lines = run.outputLines
            #expect(lines.first == "converted \(input) -> \(output) (beatsw 1.0)")
            #expect(lines.dropFirst().first == "tensors: 49, quantized: \(variant.quantized)")
            #expect(lines.contains { $0.hasPrefix("size: 0.40 MB of tensors in -> ") })
            #expect(lines.contains { $0.hasPrefix("worst quantization error: encoder.") } == (variant.quantized > 0))
            #expect(lines.contains("source sha256: \(Self.tinySHA256)"))
            #expect(lines.last?.hasPrefix("time: ") == true && lines.last?.hasSuffix(" s") == true)

            // The file, and only the file: no temporary file left beside it.
            expectEntries(of: directory, ["tiny.beatsw"])
            let head = Array(try Data(contentsOf: URL(fileURLWithPath: output)).prefix(12))
            #expect(head == [0x89, 0x42, 0x45, 0x41, 0x54, 0x53, 0x57, 0x0A, 1, 0, 0, 0], "magic and version 1.0")

            let check = try CLI.beats(["check", output])
            #expect(check.status == 0, "\(check.standardError)")
            #expect(check.outputLines.count == 1 && check.outputLines[0].hasPrefix("ok: \(output): 49 tensors"), "\(check.standardOutput)")

            let inspect = try jsonObject(try CLI.beats(["inspect", output, "--json"]))
            #expect(inspect["format"] as? String == "beatsw")
            #expect(inspect["kind"] as? String == "pretrained")
            let tensors = try #require(inspect["tensors"] as? [[String: Any]])
            #expect(tensors.count == 49)
            func dtype(_ name: String) -> String? { tensors.first { $0["name"] as? String == name }?["dtype"] as? String }
            #expect(dtype("encoder.layers.0.fc1.weight") == variant.weightDType)
            #expect(dtype("encoder.layers.0.fc1.bias") == variant.biasDType)
        }
    }

    @Test("--no-fsync writes the same bytes as a flushed conversion")
    func noFsyncSameBytes() throws {
        try withScratchDirectory { directory in
            let flushed = try CLI.convert("tiny_ft", in: directory, name: "flushed.beatsw")
            let scratch = try CLI.convert("tiny_ft", in: directory, name: "scratch.beatsw", options: ["--no-fsync"])
            let bytes = try Data(contentsOf: URL(fileURLWithPath: flushed))
            #expect(bytes.count > 500_000)
            #expect(bytes == (try Data(contentsOf: URL(fileURLWithPath: scratch))))
        }
    }

    @Test("an output it cannot write: one error line naming it, nothing left behind", arguments: UnwritableOutput.allCases)
    func unwritableOutput(output: UnwritableOutput) throws {
        let model = try CLI.model("tiny")
        try output.expectRefused { ["convert", model, "-o", $0] }
    }

    @Test("a failed conversion leaves an existing OUT as it was and no temporary file")
    func failureKeepsOutput() throws {
        try withScratchDirectory { directory in
            let output = directory.appendingPathComponent("out.beatsw")
            try Data("previous".utf8).write(to: output)
            let run = try CLI.beats(["convert", try Fixtures.path("parser/truncated.pt"), "-o", output.path])
            expectOneErrorLine(run, mentioning: ["end-of-central-directory"])
            expectEntries(of: directory, ["out.beatsw"])
            #expect(try Data(contentsOf: output) == Data("previous".utf8))
        }
    }
}
