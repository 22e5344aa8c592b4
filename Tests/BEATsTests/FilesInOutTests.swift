import BEATs
import BEATsCheckpoint
import BEATsFormat
import BEATsTestSupport
import Foundation
import Testing

private func fileBytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

@Suite("export: safetensors")
struct ExportTests {
    @Test("an export of a checkpoint holds its tensors bit for bit and runs to the same output", arguments: ["tiny", "tiny_ft", "tiny_tok"])
    func checkpoint(name: String) throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = try Fixtures.path("models/\(name).pt")
        let summary = try ModelExport.safetensors(from: input, toDirectory: directory.path)
        #expect(summary.dequantized.isEmpty && !summary.foldedWeightNorm)
        let exported = try SafetensorsFile.open(path: summary.modelPath)
        let checkpoint = try PyTorchCheckpoint.open(path: input)
        #expect(exported.tensorNames == checkpoint.tensorNames)
        #expect(summary.tensorCount == checkpoint.tensorNames.count)
        for tensor in checkpoint.tensorNames {
            let ours = try #require(try exported.tensor(named: tensor))
            let theirs = try #require(try checkpoint.tensor(named: tensor))
            #expect(ours.dtype == theirs.dtype && ours.shape == theirs.shape && ours.packedLittleEndianBytes() == theirs.packedLittleEndianBytes())
        }
        #expect(exported.kind == checkpoint.kind && exported.config == checkpoint.config && exported.labels == checkpoint.labels)
        #expect(try fileBytes(summary.modelPath).count == summary.bytes)
        // The header's data starts on a multiple of 8.
        let length = try fileBytes(summary.modelPath).prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect((8 + length) % 8 == 0)

        let clip = try AudioClip(contentsOf: URL(fileURLWithPath: try Fixtures.path("audio/speech.wav")))
        let fromExport = try BEATsModel(path: summary.modelPath, configuration: .init(threads: 1)).output(for: clip)
        let fromCheckpoint = try BEATsModel(path: input, configuration: .init(threads: 1)).output(for: clip)
        #expect(fromExport.npyBytes() == fromCheckpoint.npyBytes())
    }

    @Test("config.json: kind, cfg, labels both ways, source SHA-256; the header's metadata carries the same text")
    func config() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = try Fixtures.path("models/tiny_ft.pt")
        let summary = try ModelExport.safetensors(from: input, toDirectory: directory.path)
        let json = try JSONReader.parse(try fileBytes(summary.configPath))
        #expect(json["kind"] == .string("finetuned"))
        #expect(json["cfg"]?["encoder_layers"] == .integer(2))
        #expect(json["label_dict"]?["0"] == .string("/m/09x0r"))
        #expect(json["id2label"]?["0"] == .string("Speech"))
        #expect(json["label2id"]?["Speech"] == .integer(0))
        let inputBytes = try fileBytes(input)
        let digest = inputBytes.withUnsafeBytes { SHA256.digest($0) }.map { String(format: "%02x", $0) }.joined()
        #expect(json["source"]?["sha256"] == .string(digest))
        #expect(json["pos_conv_weight_norm"] == .string("weight_g/weight_v"))
        let metadata = try SafetensorsFile.open(path: summary.modelPath).metadata
        #expect(metadata.first { $0.key == "beats_config" }?.value == String(decoding: try fileBytes(summary.configPath).dropLast(), as: UTF8.self))
        #expect(metadata.first { $0.key == "format" }?.value == "pt")
    }

    @Test("an export of the torch-written fixture gives the same tensors (ours -> torch -> ours)")
    func roundTrip() throws {
        let first = try Fixtures.temporaryDirectory(), second = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: first); try? FileManager.default.removeItem(at: second) }
        let ours = try SafetensorsFile.open(path: try ModelExport.safetensors(from: try Fixtures.path("models/tiny_ft.pt"), toDirectory: first.path).modelPath)
        let again = try SafetensorsFile.open(path: try ModelExport.safetensors(
            from: try Fixtures.path("safetensors/tiny_ft/model.safetensors"), toDirectory: second.path).modelPath)
        #expect(Set(ours.tensorNames) == Set(again.tensorNames))
        for name in ours.tensorNames {
            #expect(try ours.tensor(named: name)?.packedLittleEndianBytes() == again.tensor(named: name)?.packedLittleEndianBytes(), "\(name)")
        }
    }

    @Test("native files: refused without --fold-weight-norm; int8 exported as dequantized float32, folded weight as converted")
    func native() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let native = directory.appendingPathComponent("int8.beatsw").path
        _ = try ModelConversion.convert(try Fixtures.path("models/tiny_ft.pt"), to: native,
                                        options: ConversionOptions(quantizeInt8: true))
        let out = directory.appendingPathComponent("export").path
        #expect(throws: ExportError.foldedWeightNorm(path: native)) { try ModelExport.safetensors(from: native, toDirectory: out) }
        let summary = try ModelExport.safetensors(from: native, toDirectory: out, foldWeightNorm: true)
        #expect(summary.foldedWeightNorm)
        #expect(summary.dequantized.contains("encoder.layers.0.fc1.weight") && summary.dequantized.contains("predictor.weight"))
        let exported = try SafetensorsFile.open(path: summary.modelPath)
        let source = try NativeModelFile.open(path: native)
        let weight = try #require(try exported.tensor(named: "encoder.layers.0.fc1.weight"))
        #expect(weight.dtype == .float32)
        #expect(try weight.floats() == source.tensor(named: "encoder.layers.0.fc1.weight")?.floats())
        #expect(try exported.tensor(named: PositionalConvWeightNorm.weightName)?.floats() == source.tensor(named: PositionalConvWeightNorm.weightName)?.floats())
        #expect(try JSONReader.parse(try fileBytes(summary.configPath))["dequantized_from"] == .string("int8-per-row"))
    }

    @Test("an f16 native file exports its float16 tensors unchanged")
    func float16() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let native = directory.appendingPathComponent("f16.beatsw").path
        _ = try ModelConversion.convert(try Fixtures.path("models/tiny.pt"), to: native, options: ConversionOptions(floatType: .float16))
        let summary = try ModelExport.safetensors(from: native, toDirectory: directory.appendingPathComponent("e").path, foldWeightNorm: true)
        #expect(summary.dequantized.isEmpty)
        let exported = try SafetensorsFile.open(path: summary.modelPath)
        let source = try NativeModelFile.open(path: native)
        #expect(exported.tensorNames == source.tensorNames)
        for name in source.tensorNames {
            let ours = try #require(try exported.tensor(named: name))
            let theirs = try #require(try source.tensor(named: name))
            #expect(ours.dtype == theirs.dtype && ours.packedLittleEndianBytes() == theirs.packedLittleEndianBytes(), "\(name)")
        }
        #expect(try exported.tensor(named: "encoder.layers.0.fc1.weight")?.dtype == .float16)
    }

    @Test("--fold-weight-norm from a checkpoint stores the same folded bits as the converter")
    func foldFromCheckpoint() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = try Fixtures.path("models/tiny.pt")
        let native = directory.appendingPathComponent("f32.beatsw").path
        _ = try ModelConversion.convert(input, to: native, options: ConversionOptions())
        let summary = try ModelExport.safetensors(from: input, toDirectory: directory.appendingPathComponent("e").path, foldWeightNorm: true)
        let exported = try SafetensorsFile.open(path: summary.modelPath)
        #expect(!exported.tensorNames.contains("encoder.pos_conv.0.weight_g"))
        #expect(try exported.tensor(named: PositionalConvWeightNorm.weightName)?.packedLittleEndianBytes()
                == NativeModelFile.open(path: native).tensor(named: PositionalConvWeightNorm.weightName)?.packedLittleEndianBytes())
    }

    @Test("the output directory: created when missing, refused when a file or its parent is missing")
    func directory() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("plain").path
        try Data([1]).write(to: URL(fileURLWithPath: file))
        #expect(throws: BEATsError.cannotWrite(path: file, reason: "not a directory")) {
            try ModelExport.safetensors(from: try Fixtures.path("models/tiny.pt"), toDirectory: file)
        }
        #expect(throws: BEATsError.cannotWrite(path: "-", reason: "export writes two files into a directory, not to standard output")) {
            try ModelExport.safetensors(from: try Fixtures.path("models/tiny.pt"), toDirectory: "-")
        }
        let orphan = directory.appendingPathComponent("missing/child").path
        #expect(throws: BEATsError.cannotWrite(path: orphan, reason: "directory \(directory.path)/missing does not exist")) {
            try ModelExport.safetensors(from: try Fixtures.path("models/tiny.pt"), toDirectory: orphan)
        }
    }
}

@Suite("files in and out: converter outputs, configs, checksums")
struct FilesInOutTests {
    @Test("convert replaces a symbolic link's target and keeps the link")
    func convertThroughSymlink() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let target = directory.appendingPathComponent("target.beatsw").path
        let link = directory.appendingPathComponent("link.beatsw").path
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: target))
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        _ = try ModelConversion.convert(try Fixtures.path("models/tiny.pt"), to: link, options: ConversionOptions())
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == target)
        #expect(try NativeModelFile.open(path: target).tensorNames.count == 49)
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: directory.path)) == ["target.beatsw", "link.beatsw"])
    }

    @Test("convert refuses standard output and a FIFO before any work, and leaves the FIFO alone")
    func convertRefusesStreams() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let fifo = directory.appendingPathComponent("pipe").path
        #expect(mkfifo(fifo, 0o600) == 0)
        for path in ["-", fifo] {
            #expect(throws: BEATsError.self) {
                try ModelConversion.convert(try Fixtures.path("models/tiny.pt"), to: path, options: ConversionOptions())
            }
        }
        var status = stat()
        #expect(stat(fifo, &status) == 0 && status.st_mode & S_IFMT == S_IFIFO)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["pipe"])
    }

    @Test("a state dict without a BEATs config: convert and BEATsModel refuse it with the reason")
    func noConfig() throws {
        let path = try Fixtures.path("generated/plain_state_dict.pt")
        let absent = ConfigError.absent(format: "pytorch-zip", what: "a state dict with 3 tensors, no BEATs config")
        #expect(throws: absent) { try BEATsModel(path: path) }
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(throws: absent) {
            try ModelConversion.convert(path, to: directory.appendingPathComponent("x.beatsw").path, options: ConversionOptions())
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
        let summary = try ModelSummary(try ModelFile.open(path: path))
        #expect(summary.configAbsence == "a state dict with 3 tensors, no BEATs config")
        #expect(summary.json().hasPrefix(#"{"format": "pytorch-zip", "kind": null, "config": null, "note": "a state dict with 3 tensors, no BEATs config""#))
    }

    @Test("verifyChecksums: a flipped tensor byte opens silently by default and is refused with the option")
    func verifyChecksums() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("model.beatsw").path
        _ = try ModelConversion.convert(try Fixtures.path("models/tiny_ft.pt"), to: path, options: ConversionOptions())
        let entry = try #require(NativeModelFile.open(path: path).entry(named: "encoder.layers.1.fc2.weight"))
        var bytes = try fileBytes(path)
        bytes[entry.data.offset + 5] ^= 0x40
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        _ = try BEATsModel(path: path, configuration: .init(threads: 1))
        #expect(throws: NativeFormatError.self) { try BEATsModel(path: path, configuration: .init(threads: 1, verifyChecksums: true)) }
        #expect(throws: NativeFormatError.self) { try ModelFile.open(path: path, verifyChecksums: true) }
        #expect(throws: NativeFormatError.self) { try TensorExport.npyBytes(ofTensor: "predictor.bias", inFileAt: path, verifyChecksums: true) }
    }
}
