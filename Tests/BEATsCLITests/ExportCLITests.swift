import BEATsCore
import BEATsTestSupport
import Foundation
import Testing

@Suite("CLI: export, safetensors input, refusals of issue 14")
struct ExportCLITests {
    @Test("export writes model.safetensors + config.json; every model command then takes the safetensors file")
    func export() throws {
        try withScratchDirectory { directory in
            let out = directory.appendingPathComponent("hub").path
            let run = try CLI.beats(["export", try CLI.model("tiny_ft"), "-o", out, "--format", "safetensors"])
            #expect(run.status == 0, "\(run.standardError)")
            #expect(run.outputLines.first == "exported \(try CLI.model("tiny_ft")) -> \(out)/model.safetensors + \(out)/config.json")
            #expect(run.outputLines.contains("tensors: 52, size: 579.3 KB"))
            expectEntries(of: URL(fileURLWithPath: out), ["model.safetensors", "config.json"])
            let model = out + "/model.safetensors"
            let inspect = try jsonObject(try CLI.beats(["inspect", "--json", model]))
            #expect(inspect["format"] as? String == "safetensors" && inspect["kind"] as? String == "finetuned")
            #expect(inspect["labels"] as? Int == 527)
            let classify = try CLI.beats(["classify", model, try CLI.audio("speech"), "--top", "1", "--verify-checksums"])
            let reference = try CLI.beats(["classify", try CLI.model("tiny_ft"), try CLI.audio("speech"), "--top", "1"])
            #expect(classify.status == 0 && classify.standardOutput == reference.standardOutput)
            let check = try CLI.beats(["check", model])
            #expect(check.status == 0, "\(check.standardError)")
        }
    }

    @Test("a native file needs --fold-weight-norm; an int8 one says its weights are dequantized")
    func native() throws {
        try withScratchDirectory { directory in
            let native = try CLI.convert("tiny_ft", in: directory, options: ["--quantize", "int8"])
            let out = directory.appendingPathComponent("e").path
            expectOneErrorLine(try CLI.beats(["export", native, "-o", out]), mentioning: ["--fold-weight-norm"])
            let run = try CLI.beats(["export", native, "-o", out, "--fold-weight-norm"])
            #expect(run.status == 0, "\(run.standardError)")
            #expect(run.outputLines.contains("note: 14 int8 weights written as dequantized float32 (value x scale), not the original float weights"))
        }
    }

    @Test("convert to standard output or a FIFO is refused before any work; the FIFO stays")
    func convertStreams() throws {
        try withScratchDirectory { directory in
            let fifo = directory.appendingPathComponent("pipe").path
            #expect(mkfifo(fifo, 0o600) == 0)
            for output in ["-", fifo, "/dev/stdout"] {
                expectOneErrorLine(try CLI.beats(["convert", try CLI.model("tiny"), "-o", output]),
                                   mentioning: [output, "needs a regular file"])
            }
            expectEntries(of: directory, ["pipe"])
        }
    }

    @Test("a state dict without cfg: inspect says what it is, convert and run refuse it with the reason")
    func noConfig() throws {
        let path = try Fixtures.path("generated/plain_state_dict.pt")
        let inspect = try CLI.beats(["inspect", path])
        #expect(inspect.status == 0)
        #expect(inspect.outputLines.contains("config:  none: a state dict with 3 tensors, no BEATs config (convert and run refuse it)"))
        try withScratchDirectory { directory in
            let reason = "not a BEATs model: the pytorch-zip file is a state dict with 3 tensors, no BEATs config"
            expectOneErrorLine(try CLI.beats(["convert", path, "-o", directory.appendingPathComponent("x.beatsw").path]), mentioning: [reason])
            expectOneErrorLine(try CLI.beats(["run", path, try CLI.audio("speech"), "-o", directory.appendingPathComponent("x.npy").path]),
                               mentioning: [reason])
            expectEntries(of: directory, [])
        }
    }

    @Test("--verify-checksums: a flipped tensor byte is found by every command that takes a model")
    func verifyChecksums() throws {
        try withScratchDirectory { directory in
            let model = try CLI.convert("tiny_ft", in: directory)
            var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: model)))
            bytes[bytes.count - 3] ^= 0x01
            try Data(bytes).write(to: URL(fileURLWithPath: model))
            let audio = try CLI.audio("speech")
            #expect(try CLI.beats(["classify", model, audio]).status == 0)
            for arguments in [["inspect", model], ["classify", model, audio], ["run", model, audio, "-o", "-"],
                              ["tensor", model, "predictor.bias", "-o", "-"], ["convert", model, "-o", directory.path + "/y.beatsw"],
                              ["export", model, "-o", directory.path + "/e", "--fold-weight-norm"]] {
                expectOneErrorLine(try CLI.beats(arguments + ["--verify-checksums"]), mentioning: ["checksum"])
            }
        }
    }

    @Test("hostile safetensors headers: one error line each from every reader of models")
    func hostileSafetensors() throws {
        func file(_ header: String, declared: UInt64? = nil, data: [UInt8] = []) -> [UInt8] {
            let text = Array(header.utf8)
            let length = declared ?? UInt64(text.count)
            return (0..<8).map { UInt8(truncatingIfNeeded: length >> (8 * $0)) } + text + data
        }
        let cases: [(bytes: [UInt8], fragment: String)] = [
            (file("{}", declared: 1 << 30), "header length 1073741824 is out of range"),
            (file("{\"a\":" + String(repeating: "[", count: 5000) + "}"), "JSON nested deeper than 64 levels"),
            (file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), "data_offsets [0, 4], its dtype and shape need 8 bytes"),
            (file(#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#, data: [1, 2]),
             "JSON key 'a' appears twice"),
        ]
        try withScratchDirectory { directory in
            for (index, hostile) in cases.enumerated() {
                let path = directory.appendingPathComponent("hostile\(index).safetensors").path
                try Data(hostile.bytes).write(to: URL(fileURLWithPath: path))
                for arguments in [["inspect", path], ["convert", path, "-o", directory.path + "/x.beatsw"],
                                  ["run", path, try CLI.audio("speech"), "-o", directory.path + "/x.npy"]] {
                    expectOneErrorLine(try CLI.beats(arguments), mentioning: [hostile.fragment])
                }
            }
        }
    }
}
