import ArgumentParser
import BEATsCore
import BEATsRuntime
import Foundation

/// Options every command that runs the model shares.
struct InferenceOptions: ParsableArguments {
    @Option(help: "Worker threads for the encoder (BLAS and attention).")
    var threads: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)

    func validate() throws {
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be between 1 and 256") }
    }
}

/// What `beats run` writes: exactly what the official code returns for `wav[None]`.
enum ModelOutput {
    /// Pre-trained: `extract_features(...)[0]`, float32 [1, T, D].
    case features(tokens: Int, dim: Int, values: [Float])
    /// Fine-tuned: class probabilities, float32 [1, C].
    case probabilities([Float])
    /// Tokenizer: `extract_labels(...)`, int64 [T].
    case tokens([Int64])

    var shape: [Int] {
        switch self {
        case .features(let tokens, let dim, _): return [1, tokens, dim]
        case .probabilities(let values): return [1, values.count]
        case .tokens(let values): return [values.count]
        }
    }

    var npyBytes: [UInt8] {
        switch self {
        case .features(_, _, let values), .probabilities(let values): return NumpyFile.encode(values, shape: shape)
        case .tokens(let values): return NumpyFile.encode(values, shape: shape)
        }
    }
}

/// A model opened from any supported file, ready to run clips.
struct InferenceSession {
    let weights: any WeightStore
    let model: BEATsModel

    init(modelPath: String, threads: Int) throws {
        weights = try ModelFile.open(path: modelPath)
        model = try BEATsModel(weights: weights, threads: threads)
    }

    var kind: ModelKind { weights.kind }

    func run(audioPath: String) throws -> ModelOutput {
        try run(samples: try AudioLoader.load(path: audioPath).samples)
    }

    func run(samples: [Float]) throws -> ModelOutput {
        try BEATsAudio.checkPatchLength(sampleCount: samples.count)
        let fbank = try KaldiFbank.beatsFeatures(samples)
        switch weights.kind {
        case .pretrained:
            let result = try model.features(fbank: fbank.values, frames: fbank.frames)
            return .features(tokens: result.tokens, dim: result.dim, values: result.values)
        case .finetuned:
            return .probabilities(try model.probabilities(fbank: fbank.values, frames: fbank.frames))
        case .tokenizer:
            return .tokens(try model.tokens(fbank: fbank.values, frames: fbank.frames))
        }
    }
}

/// Writes a whole file or nothing: bytes go to a temporary file in the same directory, which is
/// renamed over `path` only once complete, so a failure never leaves a partial output behind.
enum OutputFile {
    static func write(_ bytes: [UInt8], to path: String) throws {
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw CommandError("cannot write \(path): \((error as NSError).localizedDescription)")
        }
    }
}
