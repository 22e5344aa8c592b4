import BEATsCore
import BEATsTestSupport
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

/// `beats verify MODEL --manifest M.json [--json] [--junit F]` over the committed reference sets
/// (`Fixtures/refsets/`, made by tools/reference/make_reference_sets.sh).
@Suite("beats verify --manifest (command line)")
struct VerifyManifestCLITests {
    static func manifest(_ name: String) throws -> String { try Fixtures.path("refsets/\(name)/manifest.json") }

    @Test("each checkpoint against its own set: provenance ok, every clip PASS, exit 0", arguments: ModelFixture.all)
    func checkpointPasses(model: ModelFixture) throws {
        let run = try CLI.beats(["verify", try CLI.model(model.name), "--manifest", try Self.manifest(model.name)])
        #expect(run.status == 0, "\(run.standardOutput)\(run.standardError)")
        #expect(run.outputLines.last == "PASS")
        #expect(run.outputLines.contains { $0.hasPrefix("provenance  ok: checkpoint sha256") && $0.contains("(hashed)") })
        #expect(run.outputLines.contains { $0.hasPrefix("summary     3 passed, 0 failed") })
        for clip in ["speech", "chirp10s", "noise"] {
            #expect(run.outputLines.contains { $0.hasPrefix(clip + " ") && $0.hasSuffix("PASS") }, "\(clip): \(run.standardOutput)")
        }
    }

    @Test("sets made with options run with them: encoder layer 1; probabilities of 2 s windows every 1.5 s [3, 527]",
          arguments: [("tiny_layer1", "tiny"), ("tiny_ft_windows", "tiny_ft")])
    func options(set: String, model: String) throws {
        let run = try CLI.beats(["verify", try CLI.model(model), "--manifest", try Self.manifest(set), "--json"])
        #expect(run.status == 0, "\(run.standardOutput)\(run.standardError)")
        let clips = try #require(try jsonObject(run)["clips"] as? [[String: Any]])
        #expect(clips.first?["shape"] as? [Int] == (set == "tiny_layer1" ? [1, 176, 64] : [3, 527]))
    }

    @Test("the layer set run as layer 2: the clip FAILs on its numbers")
    func otherLayer() throws {
        try withScratchDirectory { directory in
            let manifest = try ReferenceSetCopy.make("tiny_layer1", in: directory) { json in
                var clips = json["clips"] as! [[String: Any]]
                clips[0]["options"] = ["decode": "wav", "layer": 2]
                json["clips"] = clips
            }
            let run = try CLI.beats(["verify", try CLI.model("tiny"), "--manifest", manifest])
            #expect(run.status == 1)
            #expect(run.outputLines.contains { $0.hasPrefix("speech ") && $0.hasSuffix("FAIL") })
            #expect(run.outputLines.contains { $0.hasPrefix("  max abs error ") && $0.contains("beyond 2× PyTorch float32's") })
        }
    }

    @Test("float32, float16 and int8 conversions pass their own printed defaults", arguments: [
        ([String](), "float32 probabilities: max abs ≤ 1e-05 or, from the float64 truth, max and mean abs ≤ 2× PyTorch float32's"),
        (["--dtype", "f16"], "float16 probabilities: cosine ≥ 0.9999; same top-5 classes"),
        (["--quantize", "int8"], "int8 probabilities: cosine ≥ 0.999; same top-5 classes"),
    ])
    func conversionsPass(options: [String], criteria: String) throws {
        try withScratchDirectory { directory in
            let file = try CLI.convert("tiny_ft", in: directory, options: options + ["--no-fsync"])
            let run = try CLI.beats(["verify", file, "--manifest", try Self.manifest("tiny_ft")])
            #expect(run.status == 0, "\(run.standardOutput)\(run.standardError)")
            #expect(run.outputLines.contains("criteria    " + criteria), "\(run.standardOutput)")
            #expect(run.outputLines.contains { $0.contains("(recorded in the native header)") })
            #expect(run.outputLines.last == "PASS")
        }
    }

    @Test("--json: provenance, criteria and every clip's numbers")
    func json() throws {
        let run = try CLI.beats(["verify", try CLI.model("tiny"), "--manifest", try Self.manifest("tiny"), "--json"])
        #expect(run.status == 0)
        let object = try jsonObject(run)
        #expect(object["passed"] as? Bool == true)
        #expect(object["exit_status"] as? Int == 0)
        #expect(object["precision"] as? String == "float32")
        let criteria = try #require(object["criteria"] as? [String: Any])
        #expect(criteria["atol"] as? Double == 1e-4)
        #expect(criteria["truth_multiple"] as? Double == 2)
        let provenance = try #require(object["provenance"] as? [String: Any])
        #expect(provenance["model_sha256"] as? String == provenance["reference_sha256"] as? String)
        let clips = try #require(object["clips"] as? [[String: Any]])
        #expect(clips.map { $0["name"] as? String } == ["speech", "chirp10s", "noise"])
        // chirp10s is a pure tone: its reference has float32 rounding-noise cells 7e-3 away from
        // ours, and the clip passes on the truth rule (SPEC "Parity"), not on atol.
        let chirp = try #require(clips[1]["measurement"] as? [String: Any])
        let maxAbs = try #require(chirp["max_abs_error"] as? Double)
        let ours = try #require(chirp["truth_max_abs_error"] as? Double)
        let torch = try #require(chirp["reference_truth_max_abs_error"] as? Double)
        #expect(maxAbs > 1e-4)
        #expect(ours <= 2 * torch)
    }

    @Test("--junit: valid JUnit XML, a provenance testcase and one per clip with its numbers")
    func junitPass() throws {
        try withScratchDirectory { directory in
            let junit = directory.appendingPathComponent("parity.xml").path
            let run = try CLI.beats(["verify", try CLI.model("tiny_tok"), "--manifest", try Self.manifest("tiny_tok"), "--junit", junit])
            #expect(run.status == 0)
            let report = try JUnitDocument(path: junit)
            #expect(report.root == "testsuites")
            #expect(report.suites.count == 1)
            #expect(report.suites.first?["tests"] == "4")
            #expect(report.suites.first?["failures"] == "0")
            #expect(report.cases.map { $0.name } == ["provenance", "speech", "chirp10s", "noise"])
            #expect(report.cases.allSatisfy { $0.failure == nil && $0.error == nil && !$0.skipped })
            #expect(report.cases[1].output.contains("token_agreement=1.000000"))
            #expect(report.properties["criteria"] == "float32 tokens: ≥ 99 % identical tokens")
        }
    }

    @Test("another checkpoint's set: provenance FAIL naming both files, no clip run, exit 1")
    func wrongCheckpoint() throws {
        try withScratchDirectory { directory in
            let junit = directory.appendingPathComponent("parity.xml").path
            let model = try CLI.model("tiny")
            let run = try CLI.beats(["verify", model, "--manifest", try Self.manifest("tiny_ft"), "--junit", junit])
            #expect(run.status == 1)
            #expect(run.outputLines.last == "FAIL")
            let checkpointLine = run.outputLines.first { $0.hasPrefix("provenance  FAIL checkpoint:") } ?? ""
            #expect(checkpointLine.contains("references made from tiny_ft.pt (sha256 40c77babc4570aaa05b2e51faa7e65da93bbb2806a073c84f516a6bb9ef5a414)"))
            #expect(checkpointLine.contains("model \(model) is another file"))
            #expect(run.outputLines.contains("provenance  FAIL kind: references are finetuned outputs, model \(model) is pretrained"))
            #expect(run.outputLines.contains { $0.hasPrefix("summary     0 passed, 0 failed, 3 not run (provenance failed)") })
            let report = try JUnitDocument(path: junit)
            #expect(report.cases.first?.failure?.contains("references made from tiny_ft.pt") == true)
            #expect(report.cases.dropFirst().allSatisfy { $0.skipped })
            #expect(report.suites.first?["failures"] == "1")
            #expect(report.suites.first?["skipped"] == "3")
        }
    }

    @Test("a native file converted from another checkpoint: its recorded source named")
    func wrongSourceOfNativeFile() throws {
        try withScratchDirectory { directory in
            let file = try CLI.convert("tiny", in: directory, options: ["--no-fsync"])
            let run = try CLI.beats(["verify", file, "--manifest", try Self.manifest("tiny_ft")])
            #expect(run.status == 1)
            let line = run.outputLines.first { $0.hasPrefix("provenance  FAIL checkpoint:") } ?? ""
            #expect(line.contains("model \(file) converted from tiny.pt (sha256 "), "\(run.standardOutput)")
        }
    }

    @Test("a safetensors export: the source SHA-256 from its config.json; passes its set, fails another")
    func safetensors() throws {
        try withScratchDirectory { directory in
            let export = directory.appendingPathComponent("export").path
            let exported = try CLI.beats(["export", try CLI.model("tiny_ft"), "-o", export, "--format", "safetensors"])
            try #require(exported.status == 0, "\(exported.standardError)")
            let model = export + "/model.safetensors"
            let run = try CLI.beats(["verify", model, "--manifest", try Self.manifest("tiny_ft")])
            #expect(run.status == 0, "\(run.standardOutput)")
            #expect(run.outputLines.contains { $0.contains("(recorded in config.json beside the safetensors file)") })
            let other = try CLI.beats(["verify", model, "--manifest", try Self.manifest("tiny")])
            #expect(other.status == 1)
            #expect(other.outputLines.contains { $0.contains("model \(model) exported from another checkpoint (sha256 40c77babc4570aaa") })
        }
    }

    @Test("a wrong config (deep_norm flipped in the set): provenance FAIL naming the key and both values")
    func wrongConfig() throws {
        try withScratchDirectory { directory in
            let manifest = try ReferenceSetCopy.make("tiny_ft", in: directory) { json in
                var checkpoint = json["checkpoint"] as! [String: Any]
                var config = checkpoint["config"] as! [String: Any]
                config["deep_norm"] = false
                checkpoint["config"] = config
                json["checkpoint"] = checkpoint
            }
            let run = try CLI.beats(["verify", try CLI.model("tiny_ft"), "--manifest", manifest])
            #expect(run.status == 1)
            #expect(run.outputLines.contains("provenance  FAIL config: deep_norm false in the references' checkpoint, true in the model"),
                    "\(run.standardOutput)")
            #expect(!run.outputLines.contains { $0.contains("FAIL checkpoint") })
            #expect(run.outputLines.last == "FAIL")
        }
    }

    @Test("a tampered reference: that clip FAILs naming the file and both SHA-256s, the others pass, exit 1")
    func tamperedReference() throws {
        try withScratchDirectory { directory in
            let manifest = try ReferenceSetCopy.make("tiny_ft", in: directory)
            let output = directory.appendingPathComponent("tiny_ft/noise.npy")
            var bytes = Array(try Data(contentsOf: output))
            bytes[bytes.count - 3] ^= 0x40   // one probability changed
            try Data(bytes).write(to: output)
            let run = try CLI.beats(["verify", try CLI.model("tiny_ft"), "--manifest", manifest])
            #expect(run.status == 1)
            #expect(run.outputLines.contains { $0.hasPrefix("noise ") && $0.hasSuffix("FAIL") })
            #expect(run.outputLines.contains { $0.contains("reference output \(output.path) changed since the set was made (sha256 ") })
            #expect(run.outputLines.contains { $0.hasPrefix("summary     2 passed, 1 failed") })
        }
    }

    @Test("a failing clip: exit 1, its numbers and the criteria in the JUnit failure")
    func failingClip() throws {
        try withScratchDirectory { directory in
            // The set claims noise's official outputs for speech (hashes updated: a consistent but wrong set).
            let manifest = try ReferenceSetCopy.make("tiny_ft", in: directory) { json in
                var clips = json["clips"] as! [[String: Any]]
                let noise = clips[2]
                for key in ["output", "output_sha256", "truth", "truth_sha256"] { clips[0][key] = noise[key] }
                json["clips"] = clips
            }
            let junit = directory.appendingPathComponent("parity.xml").path
            let run = try CLI.beats(["verify", try CLI.model("tiny_ft"), "--manifest", manifest, "--junit", junit])
            #expect(run.status == 1)
            #expect(run.outputLines.contains { $0.hasPrefix("speech ") && $0.hasSuffix("FAIL") })
            let report = try JUnitDocument(path: junit)
            #expect(report.suites.first?["failures"] == "1")
            let speech = try #require(report.cases.first { $0.name == "speech" })
            let failure = try #require(speech.failure)
            #expect(speech.failureMessage?.contains("max abs error") == true)
            #expect(failure.contains("max_abs_error="))
            #expect(failure.contains("truth_max_abs_error="))
            #expect(failure.contains("criteria: max abs ≤ 1e-05"))
            // The numbers are the ones the JSON report gives.
            let json = try jsonObject(try CLI.beats(["verify", try CLI.model("tiny_ft"), "--manifest", manifest, "--json"]))
            let clips = try #require(json["clips"] as? [[String: Any]])
            let measurement = try #require(clips[0]["measurement"] as? [String: Any])
            let maxAbs = try #require(measurement["max_abs_error"] as? Double)
            #expect(maxAbs > 1e-3)
            #expect(failure.contains(String(format: "max_abs_error=%.6e", maxAbs)))
            #expect(json["exit_status"] as? Int == 1)
        }
    }

    @Test("a missing file: one error line naming it, exit 2, a JUnit error")
    func missingFile() throws {
        try withScratchDirectory { directory in
            let manifest = try ReferenceSetCopy.make("tiny_ft", in: directory)
            let missing = directory.appendingPathComponent("tiny_ft/chirp10s.f64.npy")
            try FileManager.default.removeItem(at: missing)
            let junit = directory.appendingPathComponent("parity.xml").path
            let run = try CLI.beats(["verify", try CLI.model("tiny_ft"), "--manifest", manifest, "--junit", junit])
            #expect(run.status == 2)
            #expect(run.standardOutput.isEmpty)
            #expect(run.errorLines == ["error: \(manifest): clip 'chirp10s': float64 truth \(missing.path) does not exist"])
            let report = try JUnitDocument(path: junit)
            #expect(report.suites.first?["errors"] == "1")
            #expect(report.cases.first?.error?.contains("does not exist") == true)
        }
    }

    @Test("a clip that cannot be run (audio not decodable, its SHA-256 updated): ERROR row, exit 2, a JUnit error, the others run")
    func clipError() throws {
        try withScratchDirectory { directory in
            let garbage = directory.appendingPathComponent("garbage.wav")
            try Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 37) }).write(to: garbage)
            let digest = try #require(try SHA256Hex.ofFile(garbage.path))
            let manifest = try ReferenceSetCopy.make("tiny_ft", in: directory) { json in
                var clips = json["clips"] as! [[String: Any]]
                clips[1]["audio"] = garbage.path
                clips[1]["audio_sha256"] = digest
                json["clips"] = clips
            }
            let junit = directory.appendingPathComponent("parity.xml").path
            let run = try CLI.beats(["verify", try CLI.model("tiny_ft"), "--manifest", manifest, "--junit", junit])
            #expect(run.status == 2)
            #expect(run.outputLines.contains { $0.hasPrefix("chirp10s ") && $0.hasSuffix("ERROR") })
            #expect(run.outputLines.contains { $0.hasPrefix("  error: ") && $0.contains(garbage.path) })
            #expect(run.outputLines.contains { $0.hasPrefix("summary     2 passed, 0 failed, 1 could not run") })
            let report = try JUnitDocument(path: junit)
            #expect(report.suites.first?["errors"] == "1")
            #expect(report.cases.first { $0.name == "chirp10s" }?.error?.contains(garbage.path) == true)
        }
    }

    @Test("a missing manifest or model: exit 2 naming it")
    func missingManifestOrModel() throws {
        let run = try CLI.beats(["verify", try CLI.model("tiny"), "--manifest", "/nonexistent/manifest.json"])
        #expect(run.status == 2)
        #expect(run.errorLines.count == 1)
        #expect(run.errorLines.first?.contains("/nonexistent/manifest.json") == true)
        let model = try CLI.beats(["verify", "/nonexistent/model.pt", "--manifest", try Self.manifest("tiny")])
        #expect(model.status == 2)
        #expect(model.errorLines.first?.contains("/nonexistent/model.pt") == true)
    }

    @Test("a bad manifest: exit 2, one error line naming the file and the key", arguments: BadManifest.allCases)
    func badManifest(bad: BadManifest) throws {
        try withScratchDirectory { directory in
            let manifest = try ReferenceSetCopy.make("tiny", in: directory, edit: bad.edit)
            if let text = bad.replacementText { try text.write(toFile: manifest, atomically: true, encoding: .utf8) }
            let run = try CLI.beats(["verify", try CLI.model("tiny"), "--manifest", manifest])
            #expect(run.status == 2, "\(run.standardOutput)")
            #expect(run.standardOutput.isEmpty)
            #expect(run.errorLines.count == 1)
            let line = run.errorLines.first ?? ""
            #expect(line.hasPrefix("error: reference manifest \(manifest): "), "\(line)")
            #expect(line.contains(bad.fragment), "'\(bad.fragment)' missing from: \(line)")
        }
    }

    @Test("verify refuses to mix --manifest with AUDIO or --reference, and --junit without --manifest")
    func usage() throws {
        let mixed = try CLI.beats(["verify", try CLI.model("tiny"), try CLI.audio("speech"), "--manifest", try Self.manifest("tiny")])
        #expect(mixed.status != 0)
        #expect(mixed.standardError.contains("--manifest takes the clips from the set"))
        let junit = try CLI.beats(["verify", try CLI.model("tiny"), try CLI.audio("speech"), "--reference",
                                   try Fixtures.path("ref/tiny/speech.npy"), "--junit", "/tmp/x.xml"])
        #expect(junit.status != 0)
        #expect(junit.standardError.contains("--junit needs --manifest"))
    }

    @Test("one clip with --json: the same defaults and numbers, PASS as a field")
    func singleClipJSON() throws {
        let run = try CLI.beats(["verify", try CLI.model("tiny_ft"), try CLI.audio("noise"), "--reference",
                                 try Fixtures.path("ref/tiny_ft/noise.npy"), "--json"])
        #expect(run.status == 0)
        let object = try jsonObject(run)
        #expect(object["passed"] as? Bool == true)
        #expect(object["shape"] as? [Int] == [1, 527])
        #expect(object["criteria_summary"] as? String == "max abs ≤ 1e-05 or, from the float64 truth, max and mean abs ≤ 2× PyTorch float32's")
        let measurement = try #require(object["measurement"] as? [String: Any])
        #expect(try #require(measurement["max_abs_error"] as? Double) <= 1e-5)
        let failing = try CLI.beats(["verify", try CLI.model("tiny_ft"), try CLI.audio("speech"), "--reference",
                                     try Fixtures.path("ref/tiny_ft/noise.npy"), "--json"])
        #expect(failing.status == 1)
        #expect(try jsonObject(failing)["passed"] as? Bool == false)
    }

    @Test("one clip with --truth: the float32 rule against the float64 truth")
    func singleClipTruth() throws {
        let run = try CLI.beats(["verify", try CLI.model("tiny"), try CLI.audio("chirp10s"), "--reference",
                                 try Fixtures.path("refsets/tiny/chirp10s.npy"), "--truth", try Fixtures.path("refsets/tiny/chirp10s.f64.npy")])
        #expect(run.status == 0, "\(run.standardOutput)")
        #expect(run.outputLines.contains { $0.hasPrefix("from the float64 truth: ours max ") })
        #expect(run.outputLines.last == "PASS")
        let without = try CLI.beats(["verify", try CLI.model("tiny"), try CLI.audio("chirp10s"), "--reference",
                                     try Fixtures.path("refsets/tiny/chirp10s.npy")])
        #expect(without.status == 1)
        #expect(without.outputLines.contains { $0.hasPrefix("  max abs error ") && $0.contains("> atol 1e-04") })
    }
}

/// Manifests broken one way each; the message must name the key.
enum BadManifest: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case notJSON, wrongFormat, missingSHA, shortSHA, shapeNotArray, outputOutsideSet, unknownOption, emptyClips, duplicateName, wrongKind

    var testDescription: String { rawValue }

    var replacementText: String? { self == .notJSON ? "{\"format\": \"beats-reference-set\", " : nil }

    var fragment: String {
        switch self {
        case .notJSON: return "invalid JSON at offset"
        case .wrongFormat: return "'format' is 'something-else', expected 'beats-reference-set'"
        case .missingSHA: return "'checkpoint.sha256' is missing"
        case .shortSHA: return "'clips[1].audio_sha256' must be a SHA-256 in 64 hex digits"
        case .shapeNotArray: return "'clips[0].shape' must be an array of 1 to 4 sizes, found a string"
        case .outputOutsideSet: return "'clips[2].output' must be a file name inside the set's folder, got '../tiny_ft/noise.npy'"
        case .unknownOption: return "'clips[0].options.speed' is an option this beats does not know"
        case .emptyClips: return "'clips' is empty"
        case .duplicateName: return "'clips[1].name' 'speech' appears twice"
        case .wrongKind: return "'checkpoint.kind' is 'classifier', expected pretrained, finetuned or tokenizer"
        }
    }

    func edit(_ json: inout [String: Any]) {
        var clips = json["clips"] as! [[String: Any]]
        var checkpoint = json["checkpoint"] as! [String: Any]
        switch self {
        case .notJSON: break
        case .wrongFormat: json["format"] = "something-else"
        case .missingSHA: checkpoint.removeValue(forKey: "sha256")
        case .shortSHA: clips[1]["audio_sha256"] = "abc123"
        case .shapeNotArray: clips[0]["shape"] = "[1, 176, 64]"
        case .outputOutsideSet: clips[2]["output"] = "../tiny_ft/noise.npy"
        case .unknownOption: clips[0]["options"] = ["decode": "wav", "speed": 2]
        case .emptyClips: clips = []
        case .duplicateName: clips[1]["name"] = "speech"
        case .wrongKind: checkpoint["kind"] = "classifier"
        }
        json["clips"] = clips
        json["checkpoint"] = checkpoint
    }
}

/// SHA-256 in hex through `sha256sum` (coreutils), independent of the toolkit's own.
enum SHA256Hex {
    static func ofFile(_ path: String) throws -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["sha256sum", path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: " ").first.map(String.init)
    }
}

/// A copy of a committed reference set in a scratch directory, its audio paths made absolute,
/// its manifest optionally edited.
enum ReferenceSetCopy {
    static func make(_ name: String, in directory: URL, edit: (inout [String: Any]) -> Void = { _ in }) throws -> String {
        let source = URL(fileURLWithPath: try Fixtures.path("refsets/\(name)"))
        let target = directory.appendingPathComponent(name)
        try FileManager.default.copyItem(at: source, to: target)
        let manifest = target.appendingPathComponent("manifest.json")
        var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: manifest)) as? [String: Any])
        var clips = try #require(json["clips"] as? [[String: Any]])
        for index in clips.indices {
            let audio = try #require(clips[index]["audio"] as? String)
            clips[index]["audio"] = source.appendingPathComponent(audio).standardizedFileURL.path
        }
        json["clips"] = clips
        edit(&json)
        try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]).write(to: manifest)
        return manifest.path
    }
}

/// A JUnit XML file parsed with XMLParser: the document must be well-formed, its root
/// `testsuites` holding `testsuite` elements holding `properties` and `testcase` elements.
struct JUnitDocument {
    struct Case {
        var name: String
        var failure: String?
        var failureMessage: String?
        var error: String?
        var skipped = false
        var output = ""
    }

    var root = ""
    var suites: [[String: String]] = []
    var cases: [Case] = []
    var properties: [String: String] = [:]

    init(path: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let delegate = Collector()
        let parser = XMLParser(data: data)
        parser.delegate = delegate
        let parsed = parser.parse()
        try #require(parsed, "not well-formed XML: \(String(describing: parser.parserError)) in \(String(decoding: data, as: UTF8.self))")
        #expect(delegate.structureErrors.isEmpty, "\(delegate.structureErrors)")
        root = delegate.root
        suites = delegate.suites
        cases = delegate.cases
        properties = delegate.properties
    }

    /// Records elements and checks each one's parent as the JUnit schema has it.
    private final class Collector: NSObject, XMLParserDelegate {
        var root = ""
        var suites: [[String: String]] = []
        var cases: [Case] = []
        var properties: [String: String] = [:]
        var structureErrors: [String] = []
        private var stack: [String] = []
        private var text = ""

        static let parents: [String: String] = [
            "testsuite": "testsuites", "properties": "testsuite", "property": "properties", "testcase": "testsuite",
            "failure": "testcase", "error": "testcase", "skipped": "testcase", "system-out": "testcase",
        ]

        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                    attributes: [String: String] = [:]) {
            if stack.isEmpty {
                root = name
                if name != "testsuites" { structureErrors.append("root is \(name)") }
                for key in ["tests", "failures", "errors"] where attributes[key].flatMap(Int.init) == nil {
                    structureErrors.append("testsuites without a numeric \(key)")
                }
            } else if Self.parents[name] != stack.last {
                structureErrors.append("\(name) inside \(stack.last ?? "-")")
            }
            switch name {
            case "testsuite":
                suites.append(attributes)
                for key in ["name", "tests", "failures", "errors", "skipped", "time"] where attributes[key] == nil {
                    structureErrors.append("testsuite without \(key)")
                }
            case "testcase":
                if attributes["name"] == nil || attributes["classname"] == nil || attributes["time"].flatMap(Double.init) == nil {
                    structureErrors.append("testcase without name, classname or a numeric time")
                }
                cases.append(Case(name: attributes["name"] ?? ""))
            case "property": properties[attributes["name"] ?? ""] = attributes["value"]
            case "failure": cases[cases.count - 1].failureMessage = attributes["message"]
            case "skipped": cases[cases.count - 1].skipped = true
            default: break
            }
            stack.append(name)
            text = ""
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            switch name {
            case "failure": cases[cases.count - 1].failure = text
            case "error": cases[cases.count - 1].error = text
            case "system-out": cases[cases.count - 1].output = text
            default: break
            }
            stack.removeLast()
        }
    }
}
