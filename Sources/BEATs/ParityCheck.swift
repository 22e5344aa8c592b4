import BEATsCheckpoint
import BEATsCore
import BEATsFormat
import Dispatch
import Foundation

/// Where a model's weights came from, checked against a reference set before any number:
/// the checkpoint's SHA-256 (a native file records its source's; any other file is hashed),
/// the kind and the config. A wrong file fails here with what differs, never as "numbers
/// slightly off".
public struct ProvenanceCheck: Sendable, Codable, Equatable {
    /// One config key that differs.
    public struct ConfigDifference: Sendable, Codable, Equatable {
        /// The config key, as the checkpoint spells it.
        public var key: String
        /// Its value in the references' checkpoint.
        public var reference: String
        /// Its value in the model.
        public var model: String
    }

    /// SHA-256 the references were made from (hex).
    public var referenceSHA256: String
    /// The model's source SHA-256 (hex; nil when a native file records none).
    public var modelSHA256: String?
    /// How the model's SHA-256 was found: "recorded in the native header" or "hashed".
    public var modelSHA256Source: String
    /// Kind of the references' checkpoint.
    public var referenceKind: ModelKind
    /// Kind of the model.
    public var modelKind: ModelKind
    /// Config keys whose values differ.
    public var configDifferences: [ConfigDifference]
    /// One sentence per mismatch (empty when the model is the set's checkpoint).
    public var failures: [String]

    /// Whether the model is the set's checkpoint.
    public var passed: Bool { failures.isEmpty }

    /// Compares `model` (opened from `model.source`) with the checkpoint `manifest` names.
    public init(model: BEATsModel, manifest: ReferenceManifest) throws {
        let expected = manifest.checkpoint
        referenceSHA256 = SHA256Digest.hex(expected.sha256)
        referenceKind = expected.kind
        modelKind = model.kind
        failures = []
        // Where the model says it came from: the digest, how it was found, what a mismatch is
        // called, and what to say when there is none.
        let modelDigest: [UInt8]?
        let mismatch: String
        let absent: String
        if let native = model.weights as? NativeModelFile {
            let recorded = native.header.sourceSHA256
            modelDigest = recorded.contains { $0 != 0 } ? recorded : nil
            modelSHA256Source = "recorded in the native header"
            mismatch = "converted from \(native.header.sourceName.isEmpty ? "an unnamed source" : native.header.sourceName)"
            absent = "records no source SHA-256, so it cannot be vouched for (convert it again from the checkpoint)"
        } else if model.fileFormat == "safetensors" {
            // `beats export` records the source checkpoint in config.json beside the file.
            let config = ((model.source as NSString).deletingLastPathComponent as NSString).appendingPathComponent("config.json")
            modelDigest = Self.exportedSourceSHA256(configPath: config)
            modelSHA256Source = "recorded in config.json beside the safetensors file"
            mismatch = "exported from another checkpoint"
            absent = "records no source SHA-256 (no \"source\": {\"sha256\"} in \(config))"
        } else {
            modelDigest = try SHA256Digest.ofFile(path: model.source)
            modelSHA256Source = "hashed"
            mismatch = "is another file"
            absent = ""
        }
        let references = "checkpoint: references made from \(expected.file) (sha256 \(SHA256Digest.hex(expected.sha256))), model \(model.source) "
        if let modelDigest, modelDigest != expected.sha256 {
            failures.append(references + "\(mismatch) (sha256 \(SHA256Digest.hex(modelDigest)))")
        } else if modelDigest == nil {
            failures.append(references + absent)
        }
        modelSHA256 = modelDigest.map(SHA256Digest.hex)
        if expected.kind != model.kind {
            failures.append("kind: references are \(expected.kind.rawValue) outputs, model \(model.source) is \(model.kind.rawValue)")
        }
        let modelValues = Dictionary(model.config.values.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first })
        configDifferences = expected.config.values.compactMap { key, value in
            guard let other = modelValues[key], other != value else { return nil }
            return ConfigDifference(key: key, reference: Self.text(value), model: Self.text(other))
        }
        if !configDifferences.isEmpty {
            let list = configDifferences.map { "\($0.key) \($0.reference) in the references' checkpoint, \($0.model) in the model" }
            failures.append("config: " + list.joined(separator: "; "))
        }
    }

    /// `source.sha256` of the `config.json` `beats export` writes, nil when absent or unreadable.
    static func exportedSourceSHA256(configPath: String) -> [UInt8]? {
        guard let file = try? MappedFile(path: configPath), file.count <= 16 << 20,
              let json = try? JSONReader.parse(Array(file.bytes)), case .string(let hex)? = json["source"]?["sha256"] else { return nil }
        return SHA256Digest.bytes(hex: hex)
    }

    static func text(_ value: ConfigScalar) -> String {
        switch value {
        case .int(let number): return String(number)
        case .double(let number): return String(number)
        case .bool(let flag): return flag ? "true" : "false"
        case .string(let text): return "'\(text)'"
        }
    }
}

/// One clip of a reference set, run and judged.
public struct ClipParity: Sendable, Codable, Equatable {
    /// The clip's name in the set.
    public var name: String
    /// Its audio file as the manifest names it.
    public var audio: String
    /// The output's shape.
    public var shape: [Int]
    /// The numbers and the verdict.
    public var measurement: ParityMeasurement
    /// Seconds the model took on the clip (decoding included).
    public var seconds: Double
    /// Set when the clip could not be run at all (an error, not a failure).
    public var error: String?

    /// Whether the clip ran and met every criterion.
    public var passed: Bool { error == nil && measurement.passed }
}

/// The outcome of `beats verify MODEL --manifest M.json`: provenance, criteria, every clip.
public struct ParityReport: Sendable, Codable, Equatable {
    /// The model file, as given.
    public var model: String
    /// The model file's format name.
    public var modelFormat: String
    /// The model's kind.
    public var kind: ModelKind
    /// Precision of the model's weights.
    public var precision: ModelPrecision
    /// Path of the manifest.
    public var manifest: String
    /// File name of the references' checkpoint.
    public var referenceCheckpoint: String
    /// Versions of the tools that made the set.
    public var producer: [String: String]
    /// The provenance check.
    public var provenance: ProvenanceCheck?
    /// The criteria used, and which output they judge.
    public var output: ParityCriteria.Output
    /// The criteria used.
    public var criteria: ParityCriteria
    /// The criteria in one line.
    public var criteriaSummary: String
    /// Every clip in manifest order; empty when provenance failed (no number is meaningful then).
    public var clips: [ClipParity]
    /// Clips not run because provenance failed.
    public var skipped: [String]
    /// Wall time in seconds.
    public var seconds: Double

    /// Clips that passed.
    public var passedCount: Int { clips.filter(\.passed).count }
    /// Clips that ran and failed.
    public var failedCount: Int { clips.filter { $0.error == nil && !$0.passed }.count }
    /// Clips that could not be run.
    public var errorCount: Int { clips.filter { $0.error != nil }.count }
    /// True when provenance holds and every clip passed.
    public var passed: Bool { (provenance?.passed ?? true) && failedCount == 0 && errorCount == 0 && skipped.isEmpty }
    /// `beats verify`'s exit status: 0 all passed, 1 a failure, 2 a clip could not be run.
    public var exitStatus: Int32 { errorCount > 0 ? 2 : passed ? 0 : 1 }

    /// The output a model of `kind` gives for `request`, as the criteria see it (per-frame
    /// probabilities are judged as features: a top-5 over frames × classes means nothing).
    public static func output(kind: ModelKind, request: OutputRequest) -> ParityCriteria.Output {
        switch (kind, request) {
        case (.tokenizer, .official): return .tokens
        case (.finetuned, .official): return .probabilities
        default: return .features
        }
    }
}

/// Runs a model over a reference set: provenance first, then every clip with the manifest's
/// options, judged by the criteria for the model's precision (or the ones given).
public enum ParityCheck {
    /// Every file the set needs, checked before any work so that a missing one is an error
    /// naming it (`beats verify` exits 2), not a failed clip.
    public static func requireFiles(of manifest: ReferenceManifest) throws {
        for clip in manifest.clips {
            for (path, what) in [(clip.audioPath, "audio"), (clip.outputPath, "reference output")] + (clip.truthPath.map { [($0, "float64 truth")] } ?? []) {
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
                    throw ParityError.missingFile(manifest: manifest.path, clip: clip.name, what: what, path: path)
                }
            }
        }
    }

    /// Verifies `model` against the set: provenance (when `checkProvenance`), then each clip.
    /// `criteria` overrides the defaults for the model's precision.
    public static func run(model: BEATsModel, manifest: ReferenceManifest, criteria: ParityCriteria? = nil,
                           progress: ((ClipParity) -> Void)? = nil) throws -> ParityReport {
        let started = DispatchTime.now().uptimeNanoseconds
        try requireFiles(of: manifest)
        let precision = ModelPrecision(weights: model.weights)
        let output = ParityReport.output(kind: manifest.checkpoint.kind, request: manifest.clips[0].request)
        let used = criteria ?? ParityCriteria.defaults(for: precision, output: output)
        let provenance = try ProvenanceCheck(model: model, manifest: manifest)
        var report = ParityReport(model: model.source, modelFormat: model.fileFormat, kind: model.kind, precision: precision,
                                  manifest: manifest.path, referenceCheckpoint: manifest.checkpoint.file, producer: manifest.producer,
                                  provenance: provenance, output: output, criteria: used, criteriaSummary: used.summary,
                                  clips: [], skipped: [], seconds: 0)
        if provenance.passed {
            for clip in manifest.clips {
                let result = run(model: model, clip: clip, criteria: used)
                progress?(result)
                report.clips.append(result)
            }
        } else {
            report.skipped = manifest.clips.map(\.name)
        }
        report.seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        return report
    }

    /// One clip: the set's files checked against their SHA-256, the model run with the clip's
    /// options, the output judged. Errors running the model are recorded, not thrown.
    public static func run(model: BEATsModel, clip: ReferenceManifest.Clip, criteria: ParityCriteria) -> ClipParity {
        let started = DispatchTime.now().uptimeNanoseconds
        var result = ClipParity(name: clip.name, audio: clip.audio, shape: clip.shape, measurement: ParityMeasurement(),
                                seconds: 0, error: nil)
        defer { result.seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9 }
        do {
            var changed: [String] = []
            let checks = [(clip.audioPath, clip.audioSHA256, "audio"), (clip.outputPath, clip.outputSHA256, "reference output")]
                + (clip.truthPath.map { [($0, clip.truthSHA256 ?? [], "float64 truth")] } ?? [])
            for (path, expected, what) in checks {
                let digest = try SHA256Digest.ofFile(path: path)
                if digest != expected {
                    changed.append("\(what) \(path) changed since the set was made (sha256 \(SHA256Digest.hex(digest)), manifest \(SHA256Digest.hex(expected)))")
                }
            }
            if !changed.isEmpty {
                result.measurement = ParityMeasurement(failure: changed.joined(separator: "; "))
                return result
            }
            let reference = try NumpyFile.read(path: clip.outputPath)
            guard reference.shape == clip.shape, reference.dtype.rawValue == clip.dtype else {
                result.measurement = ParityMeasurement(failure: "reference output \(clip.outputPath) is \(reference.dtype.rawValue) \(reference.shape), manifest says \(clip.dtype) \(clip.shape)")
                return result
            }
            let outputs = try self.outputs(model: model, clip: clip)
            let shape = clip.windowing == nil ? outputs[0].shape : ModelOutput.shape(joining: outputs)
            result.shape = shape
            guard shape == clip.shape else {
                result.measurement = ParityMeasurement(failure: "the model gives \(shape), the reference is \(clip.shape)")
                return result
            }
            if case .tokens = outputs[0] {
                let tokens = outputs.flatMap { output -> [Int] in if case .tokens(let values) = output { return values } else { return [] } }
                result.measurement = ParityMeasurement(tokens: tokens, reference: try reference.integers().map { Int($0) }, criteria: criteria)
            } else {
                let values = outputs.flatMap { $0.floatValues ?? [] }.map(Double.init)
                let truth = try clip.truthPath.map { path -> [Double] in
                    let view = try NumpyFile.read(path: path)
                    guard view.shape == clip.shape else {
                        throw ParityError.truthShape(path: path, shape: view.shape, expected: clip.shape)
                    }
                    return try view.doubles()
                }
                let kind = ParityReport.output(kind: model.kind, request: clip.request)
                result.measurement = ParityMeasurement(floats: values, reference: try reference.doubles(), truth: truth,
                                                       output: kind, criteria: criteria)
            }
        } catch {
            result.error = String(describing: error)
        }
        return result
    }

    /// One clip against one reference `.npy` (and the float64 truth when given), judged by the
    /// defaults for the model's precision with `adjust` applied (`beats verify MODEL AUDIO
    /// --reference R.npy`). A reference of another shape is an error naming it.
    public static func run(model: BEATsModel, audio: String, reference referencePath: String, truth truthPath: String? = nil,
                           adjust: (inout ParityCriteria) -> Void = { _ in }) throws -> SingleClipParity {
        let output = try model.output(contentsOf: URL(fileURLWithPath: audio))
        let reference = try NumpyFile.read(path: referencePath)
        guard reference.shape == output.shape else {
            throw ParityError.referenceShape(path: referencePath, shape: reference.shape, expected: output.shape)
        }
        let precision = ModelPrecision(weights: model.weights)
        let kind = ParityReport.output(kind: model.kind, request: .official)
        var criteria = ParityCriteria.defaults(for: precision, output: kind)
        adjust(&criteria)
        let measurement: ParityMeasurement
        switch output {
        case .tokens(let tokens):
            measurement = ParityMeasurement(tokens: tokens, reference: try reference.integers().map { Int($0) }, criteria: criteria)
        default:
            let truth = try truthPath.map { path -> [Double] in
                let view = try NumpyFile.read(path: path)
                guard view.shape == output.shape else { throw ParityError.truthShape(path: path, shape: view.shape, expected: output.shape) }
                return try view.doubles()
            }
            measurement = ParityMeasurement(floats: (output.floatValues ?? []).map(Double.init), reference: try reference.doubles(),
                                            truth: truth, output: kind, criteria: criteria)
        }
        return SingleClipParity(model: model.source, audio: audio, reference: referencePath, shape: output.shape, precision: precision,
                                output: kind, criteria: criteria, criteriaSummary: criteria.summary, measurement: measurement)
    }

    /// The model's outputs for the clip: one, or one per window.
    static func outputs(model: BEATsModel, clip: ReferenceManifest.Clip) throws -> [ModelOutput] {
        let url = URL(fileURLWithPath: clip.audioPath)
        if let windowing = clip.windowing {
            return try model.outputs(contentsOf: url, windows: windowing, request: clip.request).map(\.value)
        }
        return [try model.output(contentsOf: url, request: clip.request)]
    }
}

/// `beats verify MODEL AUDIO --reference R.npy`'s result.
public struct SingleClipParity: Sendable, Codable, Equatable {
    /// The model file, as given.
    public var model: String
    /// The audio file.
    public var audio: String
    /// Its value in the references' checkpoint.
    public var reference: String
    /// The output's shape.
    public var shape: [Int]
    /// Precision of the model's weights.
    public var precision: ModelPrecision
    /// Which output the criteria judge.
    public var output: ParityCriteria.Output
    /// The criteria used.
    public var criteria: ParityCriteria
    /// The criteria in one line.
    public var criteriaSummary: String
    /// The numbers and the verdict.
    public var measurement: ParityMeasurement

    /// Whether every criterion held.
    public var passed: Bool { measurement.passed }

    /// As one JSON object (snake_case keys, sorted) with `passed`.
    public func json() throws -> String {
        try ParityJSON.encode(self, adding: [("passed", passed)])
    }
}

/// Why a reference set could not be run.
public enum ParityError: Error, CustomStringConvertible, Equatable, Sendable {
    case missingFile(manifest: String, clip: String, what: String, path: String)
    case truthShape(path: String, shape: [Int], expected: [Int])
    case referenceShape(path: String, shape: [Int], expected: [Int])

    /// The message, naming the file.
    public var description: String {
        switch self {
        case .missingFile(let manifest, let clip, let what, let path):
            return "\(manifest): clip '\(clip)': \(what) \(path) does not exist"
        case .truthShape(let path, let shape, let expected):
            return "float64 truth \(path) is \(shape), the reference is \(expected)"
        case .referenceShape(let path, let shape, let expected):
            return "\(path): shape \(shape) but the model gives \(expected)"
        }
    }
}
