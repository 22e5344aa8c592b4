import BEATs
import BEATsTestSupport
import Foundation
import Testing

@Suite("Parity over reference sets (library)")
struct ParityTests {
    @Test("the committed tiny_ft set reads back: checkpoint, clips, options, files inside the set")
    func readsManifest() throws {
        let path = try Fixtures.path("refsets/tiny_ft/manifest.json")
        let manifest = try ReferenceManifest.read(path: path)
        #expect(manifest.checkpoint.file == "tiny_ft.pt")
        #expect(SHA256Digest.hex(manifest.checkpoint.sha256) == "40c77babc4570aaa05b2e51faa7e65da93bbb2806a073c84f516a6bb9ef5a414")
        #expect(manifest.checkpoint.kind == .finetuned)
        #expect(manifest.checkpoint.config.deepNorm)
        #expect(manifest.checkpoint.config.encoderLayers == 2)
        #expect(manifest.clips.map(\.name) == ["speech", "chirp10s", "noise"])
        let directory = (path as NSString).deletingLastPathComponent
        #expect(manifest.clips[0].outputPath == directory + "/speech.npy")
        #expect(manifest.clips[0].truthPath == directory + "/speech.f64.npy")
        #expect(manifest.clips[0].audioPath == directory + "/../../audio/speech.wav")
        #expect(manifest.clips[0].shape == [1, 527])
        #expect(manifest.clips[0].request == .official)
        #expect(manifest.clips[0].windowing == nil)
        #expect(try SHA256Digest.ofFile(path: manifest.clips[0].audioPath) == manifest.clips[0].audioSHA256)
    }

    @Test("options map to the output request and windows; an unknown option names its key")
    func options() throws {
        func manifest(options: String) throws -> ReferenceManifest {
            let digest = String(repeating: "ab", count: 32)
            let text = """
                {"format": "beats-reference-set", "version": 1,
                 "checkpoint": {"file": "m.pt", "sha256": "\(digest)", "kind": "finetuned", "config": {"deep_norm": true}},
                 "clips": [{"name": "a", "audio": "a.wav", "audio_sha256": "\(digest)", "output": "a.npy",
                            "output_sha256": "\(digest)", "shape": [1, 3, 527], "dtype": "float32", "options": \(options)}]}
                """
            return try ReferenceManifest.parse(Array(text.utf8), path: "/sets/x/manifest.json")
        }
        let framed = try manifest(options: #"{"frames": true, "window": 2, "hop": 1.5}"#)
        #expect(framed.clips[0].request == .frameProbabilities)
        #expect(framed.clips[0].windowing == Windowing(length: 2, hop: 1.5))
        #expect(framed.clips[0].audioPath == "/sets/x/a.wav")
        #expect(try manifest(options: #"{"layer": 3}"#).clips[0].request == .layer(3))
        #expect(throws: ReferenceManifestError.invalidValue(file: "/sets/x/manifest.json", key: "clips[0].options.layer",
                                                           reason: "must be a layer number from 1")) {
            try manifest(options: #"{"layer": 0}"#)
        }
        #expect(throws: ReferenceManifestError.invalidValue(file: "/sets/x/manifest.json", key: "clips[0].options.hop", reason: "needs 'window'")) {
            try manifest(options: #"{"hop": 1}"#)
        }
        #expect(throws: ReferenceManifestError.wrongType(file: "/sets/x/manifest.json", key: "clips[0].options.frames",
                                                        expected: "a bool", found: "a string")) {
            try manifest(options: #"{"frames": "yes"}"#)
        }
    }

    @Test("hostile manifests: duplicate keys, deep nesting, too large, wrong config types; each a typed error")
    func hostile() throws {
        let file = "/x/manifest.json"
        func parse(_ text: String) throws { _ = try ReferenceManifest.parse(Array(text.utf8), path: file) }
        #expect(throws: ReferenceManifestError.self) { try parse(#"{"format": "beats-reference-set", "format": "x"}"#) }
        #expect(throws: ReferenceManifestError.self) { try parse(String(repeating: "[", count: 100) + String(repeating: "]", count: 100)) }
        #expect(throws: ReferenceManifestError.wrongType(file: file, key: "(top level)", expected: "an object", found: "an array")) {
            try parse("[]")
        }
        #expect(throws: ReferenceManifestError.invalidValue(file: file, key: "version", reason: "is 2; this beats reads version 1")) {
            try parse(#"{"format": "beats-reference-set", "version": 2}"#)
        }
        let digest = String(repeating: "0", count: 64)
        #expect(throws: ReferenceManifestError.invalidValue(file: file, key: "checkpoint.config", reason: "config 'deep_norm': expected a bool")) {
            try parse(#"{"format": "beats-reference-set", "version": 1, "checkpoint": {"file": "m", "sha256": "\#(digest)", "kind": "pretrained", "config": {"deep_norm": "yes"}}}"#)
        }
        try withTemporaryFile(bytes: [UInt8](repeating: 0x20, count: ReferenceManifest.maximumBytes + 1)) { path in
            #expect(throws: ReferenceManifestError.tooLarge(file: path, bytes: ReferenceManifest.maximumBytes + 1, limit: ReferenceManifest.maximumBytes)) {
                try ReferenceManifest.read(path: path)
            }
        }
    }

    @Test("float32 rule: atol, or within 2x PyTorch float32's distance from the float64 truth")
    func truthRule() {
        let criteria = ParityCriteria.defaults(for: .float32, output: .features)
        let truth = [1.0, 2.0, 3.0, 4.0]
        let reference = [1.001, 2.0, 3.0, 4.0]            // torch float32: 1e-3 from the truth at one cell
        let close = [0.9985, 2.0, 3.0, 4.0]               // ours: 1.5e-3 from the truth, 2.5e-3 from the reference
        let measured = ParityMeasurement(floats: close, reference: reference, truth: truth, output: .features, criteria: criteria)
        #expect(measured.passed)
        #expect(abs(measured.maxAbsError! - 2.5e-3) < 1e-12)
        #expect(abs(measured.truthMaxAbsError! - 1.5e-3) < 1e-12)
        #expect(abs(measured.referenceTruthMaxAbsError! - 1e-3) < 1e-12)
        let far = ParityMeasurement(floats: [0.997, 2.0, 3.0, 4.0], reference: reference, truth: truth, output: .features, criteria: criteria)
        #expect(!far.passed)                                // 3e-3 from the truth: 3x
        #expect(far.failures.first?.hasPrefix("max abs error 4.000e-03 > atol 1e-04; from the float64 truth max 3.000e-03") == true)
        let noTruth = ParityMeasurement(floats: close, reference: reference, truth: nil, output: .features, criteria: criteria)
        #expect(!noTruth.passed)
    }

    @Test("lower precisions: cosine and the same top-5 classes")
    func lowerPrecision() {
        let criteria = ParityCriteria.defaults(for: .int8, output: .probabilities)
        #expect(criteria == ParityCriteria(minimumCosine: 0.999, sameTop: 5))
        #expect(criteria.summary == "cosine ≥ 0.999; same top-5 classes")
        let reference = (0..<20).map { Double($0) / 20 }
        var swapped = reference
        swapped.swapAt(14, 19)                              // class 19 leaves the top 5
        let measured = ParityMeasurement(floats: swapped, reference: reference, truth: nil, output: .probabilities, criteria: criteria)
        #expect(measured.topOverlap == 4)
        #expect(measured.failures.contains("top-5 classes: 4 of 5 in common"))
        let tokens = ParityMeasurement(tokens: [1, 2, 3, 4], reference: [1, 2, 3, 5], criteria: ParityCriteria.defaults(for: .int8, output: .tokens))
        #expect(tokens.tokenAgreement == 0.75)
        #expect(tokens.failures == ["75.00 % identical tokens < 90 %"])
    }

    @Test("precision of the fixture checkpoints and their conversions")
    func precision() throws {
        let model = try BEATsModel(path: try Fixtures.path("models/tiny_ft.pt"), configuration: .init(threads: 1))
        #expect(ModelPrecision(weights: model.weights) == .float32)
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        for (options, expected) in [(ConversionOptions(quantizeInt8: true), ModelPrecision.int8),
                                    (ConversionOptions(floatType: .float16), .float16)] {
            var options = options
            options.durable = false
            let output = directory.appendingPathComponent("\(expected).beatsw").path
            _ = try ModelConversion.convert(try Fixtures.path("models/tiny_ft.pt"), to: output, options: options)
            #expect(ModelPrecision(weights: try ModelFile.open(path: output)) == expected)
        }
    }

    @Test("mean Bernoulli KL divergence: by hand, clamped at 0 and 1")
    func bernoulliKL() {
        let value = ClipComparison.meanBernoulliKL([0.5, 0.9], [0.25, 0.9])
        let expected = (0.5 * log(0.5 / 0.25) + 0.5 * log(0.5 / 0.75)) / 2
        #expect(abs(value - expected) < 1e-15)
        let saturated = ClipComparison.meanBernoulliKL([1], [0])
        #expect(saturated.isFinite)
        #expect(abs(saturated - (1 - 1e-7) * log((1 - 1e-7) / 1e-7) - 1e-7 * log(1e-7 / (1 - 1e-7))) < 1e-9)
    }
}

/// Runs `body` with a temporary file holding `bytes`, removed afterwards.
private func withTemporaryFile(bytes: [UInt8], _ body: (String) throws -> Void) throws {
    let directory = try Fixtures.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let path = directory.appendingPathComponent("manifest.json").path
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    try body(path)
}
