import BEATsCore
import BEATsFormat
import BEATsTestSupport
import Foundation
import Testing

/// `Formats/beatsw_reader.py` (Python + numpy, written from the spec alone) reads converted
/// fixtures; every tensor it dumps must equal what the Swift reader gives.
@Suite("Native format: independent Python reader")
struct IndependentReaderTests {
    static let reader = Fixtures.root.deletingLastPathComponent().appendingPathComponent("Formats/beatsw_reader.py").path

    /// Runs the reader; returns its exit status, stdout and stderr.
    static func runReader(_ arguments: [String]) throws -> (Int32, String, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", reader] + arguments
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let stdout = output.fileHandleForReading.readDataToEndOfFile()
        let stderr = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }

    @Test("every tensor equals the Swift reader's values",
          arguments: [("models/tiny_ft.pt", "f32"), ("models/tiny_tok.pt", "int8"), ("models/tiny.pt", "f16"), ("parser/views.pt", "f32")])
    func compareEveryTensor(fixture: String, mode: String) throws {
        var options = ConversionOptions()
        if mode == "int8" { options.quantizeInt8 = true }
        if mode == "f16" { options.floatType = .float16 }
        let converted = try ConvertedFixture.make(fixture, options: options, hashSource: true)
        defer { converted.remove() }
        let dump = converted.directory.appendingPathComponent("dump").path
        let (status, stdout, stderr) = try Self.runReader([converted.outputPath, "--dump", dump])
        #expect(status == 0, "\(stderr)")

        let native = try NativeModelFile.open(path: converted.outputPath)
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any])
        #expect(summary["kind"] as? String == native.kind.rawValue)
        #expect(summary["labels"] as? Int == native.labels.count)
        #expect(summary["source_sha256"] as? String == native.header.sourceSHA256.map { String(format: "%02x", $0) }.joined())
        let config = try #require(summary["config"] as? [String: Any])
        #expect(config["encoder_layers"] as? Int == native.config.encoderLayers)
        #expect(config.count == native.config.values.count)

        for name in native.tensorNames {
            let swift = try #require(try native.tensor(named: name))
            let python = try NumpyFile.read(path: dump + "/" + name + ".npy")
            #expect(python.shape == swift.shape, "\(name)")
            if swift.dtype == .bool || !swift.dtype.isFloatingPoint {
                #expect(python.packedLittleEndianBytes() == swift.packedLittleEndianBytes(), "\(name)")
            } else if swift.dtype == .float16 {
                #expect(python.dtype == .float16 && python.packedLittleEndianBytes() == swift.packedLittleEndianBytes(), "\(name)")
            } else {
                // float32, and qint8 dequantized by both readers in float32: bitwise equal.
                #expect(bitPatterns(try python.floats()) == bitPatterns(try swift.floats()), "\(name)")
            }
        }
    }

    @Test("the Python reader rejects a corrupted tensor too")
    func pythonDetectsCorruption() throws {
        let converted = try ConvertedFixture.make("models/tiny.pt")
        defer { converted.remove() }
        let native = try NativeModelFile.open(path: converted.outputPath)
        let entry = try #require(native.entry(named: "encoder.layers.0.fc1.weight"))
        var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: converted.outputPath)))
        bytes[entry.data.offset + 5] ^= 0x40
        try Data(bytes).write(to: URL(fileURLWithPath: converted.outputPath))
        let (status, _, stderr) = try Self.runReader([converted.outputPath])
        #expect(status == 1)
        #expect(stderr.contains("encoder.layers.0.fc1.weight") && stderr.contains("checksum"))
    }
}
