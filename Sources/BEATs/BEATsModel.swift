import BEATsCore
import BEATsRuntime
import Dispatch
import Foundation

/// A BEATs model opened from any supported file, ready to tag, embed or tokenize audio.
///
/// ```swift
/// let model = try BEATsModel(contentsOf: URL(fileURLWithPath: "model.beatsw"))
/// for label in try await model.classify(contentsOf: URL(fileURLWithPath: "clip.wav"), top: 5) {
///     print(label.probability, label.name)
/// }
/// ```
///
/// The file is recognised by its content: an official PyTorch checkpoint (`.pt`, zip or legacy)
/// or a native file written by `beats convert` (float32, float16 or int8). Weights are memory
/// mapped and used in place where they can be.
///
/// A model is `Sendable` and serves many tasks at once: weights are shared read-only, and each
/// call takes its own working memory, so concurrent calls on one model give exactly what serial
/// calls give. The `async` methods run the work off the cooperative thread pool.
public final class BEATsModel: Sendable {
    /// How a model runs.
    public struct Configuration: Sendable, Equatable {
        /// Threads one call splits its work across (attention heads, GEMM bands, rows). Calls
        /// running concurrently each use this many.
        public var threads: Int
        /// Longest clip or window a call accepts, in fbank frames of 10 ms (65 536 ≈ 11 minutes).
        /// Working memory grows linearly with length, attention time quadratically; use
        /// ``Windowing`` for long recordings.
        public var maximumFrames: Int
        /// Verify every checksum the file carries before the model is used (native: XXH64 of
        /// every region; PyTorch zip: CRC-32 of every record; safetensors and legacy streams
        /// carry none). Off by default: it reads the whole file once (≈ 0.2 s per 363 MB model
        /// from the page cache, more from disk), where opening otherwise touches only the header.
        public var verifyChecksums: Bool

        /// `threads` defaults to the machine's active processor count.
        public init(threads: Int = ProcessInfo.processInfo.activeProcessorCount, maximumFrames: Int = BEATsAudio.maximumFrames,
                    verifyChecksums: Bool = false) {
            self.threads = max(1, threads)
            self.maximumFrames = maximumFrames
            self.verifyChecksums = verifyChecksums
        }
    }

    /// The weight file as read (lower-level access: tensors, format name, config).
    public let weights: any WeightStore
    /// The network computing from fbank features (lower-level access: stage timings).
    public let network: BEATsNetwork
    /// What the model outputs: features, AudioSet probabilities or tokens.
    public let kind: ModelKind
    /// The official `cfg` of the checkpoint the model came from.
    public let config: BEATsConfig
    /// The classifier's classes (index, MID, display name); empty unless ``kind`` is `.finetuned`.
    public let classLabels: [AudioSetLabel]
    /// Where the model was read from (path as given), for messages.
    public let source: String

    /// Opens the model file at `url` (by content) and prepares it to run.
    public convenience init(contentsOf url: URL, configuration: Configuration = Configuration()) throws {
        try self.init(path: url.path, configuration: configuration)
    }

    /// Opens the model file at `path` (by content) and prepares it to run.
    public convenience init(path: String, configuration: Configuration = Configuration()) throws {
        try self.init(weights: try ModelFile.open(path: path), source: path, configuration: configuration)
    }

    /// A model over weights already opened (a checkpoint or native file from the lower modules).
    public init(weights: any WeightStore, source: String = "model", configuration: Configuration = Configuration()) throws {
        self.weights = weights
        self.source = source
        if configuration.verifyChecksums { try weights.verifyChecksums() }
        network = try BEATsNetwork(weights: weights, threads: configuration.threads, capacityFrames: 1024,
                                   maximumFrames: configuration.maximumFrames)
        kind = weights.kind
        config = weights.config
        classLabels = weights.labels
    }

    /// Name of the file format the model came from: "pytorch-zip", "pytorch-legacy" or "beatsw".
    public var fileFormat: String { weights.formatName }

    /// Fewest 16 kHz samples a clip needs: one patch of fbank frames.
    public var minimumSamples: Int {
        BEATsAudio.minimumSamples(framesPerPatch: network.patchFrames)
    }

    // MARK: - One clip

    /// The official output of this model's kind for `clip` (what `beats run` writes): features
    /// of a pre-trained model, probabilities of a fine-tuned one, tokens of a tokenizer.
    /// A clip at another rate than 16 kHz is resampled first, as torchaudio does.
    public func output(for clip: AudioClip) throws -> ModelOutput {
        try run(clip).output
    }

    /// The output `request` asks for: the official one, an encoder layer's, per-frame
    /// probabilities (fine-tuned) or the mean-pooled embedding (pre-trained).
    public func output(for clip: AudioClip, request: OutputRequest) throws -> ModelOutput {
        try run(clip, request: request).output
    }

    /// The `top` most probable AudioSet classes for `clip` (fine-tuned models).
    public func classify(_ clip: AudioClip, top: Int = 5) throws -> [LabelScore] {
        LabelScore.ranked(try probabilities(for: clip), labels: classLabels, top: top)
    }

    /// Every class's probability for `clip`, in classifier order (fine-tuned models).
    public func probabilities(for clip: AudioClip) throws -> [Float] {
        try probabilities(in: try output(for: clip, requiring: .finetuned, for: "classify"))
    }

    /// The encoder's features [tokens, dimension] for `clip` (pre-trained models).
    public func features(of clip: AudioClip) throws -> Features {
        try features(in: try output(for: clip, requiring: .pretrained, for: "features"))
    }

    /// The discrete acoustic tokens of `clip` (tokenizer models): codebook indices, one per patch.
    public func tokens(of clip: AudioClip) throws -> [Int] {
        try tokens(in: try output(for: clip, requiring: .tokenizer, for: "tokenize"))
    }

    /// The official output for `clip` and how long each stage of the forward pass took.
    public func run(_ clip: AudioClip, source: String? = nil, request: OutputRequest = .official) throws
        -> (output: ModelOutput, stageTimes: [StageTime]) {
        try check(request)
        let samples = try samples16k(clip)
        try BEATsAudio.checkPatchLength(sampleCount: samples.count, framesPerPatch: network.patchFrames, path: source)
        let fbank = try KaldiFbank.beatsFeatures(samples)
        let (head, layers) = networkRequest(request)
        let result = try network.forward(fbank: fbank.values, frames: fbank.frames, head: head, layers: layers)
        return (finish(result.output, request), result.stageTimes)
    }

    /// Throws unless this model's kind can give `request`.
    private func check(_ request: OutputRequest) throws {
        switch request {
        case .official, .layer: break
        case .frameProbabilities: try require(.finetuned, for: "per-frame probabilities")
        case .meanPooled: try require(.pretrained, for: "mean pooling")
        }
    }

    /// What the network computes for `request`: its head and how many layers.
    private func networkRequest(_ request: OutputRequest) -> (head: NetworkHead, layers: Int?) {
        switch request {
        case .official, .meanPooled: return (.official, nil)
        case .layer(let layer): return (.official, layer)
        case .frameProbabilities: return (.frameProbabilities, nil)
        }
    }

    /// The network's output as `request` asks for it (mean pooling happens here).
    private func finish(_ output: NetworkOutput, _ request: OutputRequest) -> ModelOutput {
        let output = ModelOutput(output)
        if request == .meanPooled, case .features(let features) = output { return .embedding(features.meanPooled()) }
        return output
    }

    /// The outputs of many clips, in their order: clips of equal length run together in one pass
    /// (their tokens stacked, so each Linear is one GEMM over several clips — what makes short
    /// clips fast), at most as many tokens at once as one 10 s clip. Each result equals what the
    /// clip gives alone, up to float32 rounding; a clip that fails (too short, say) fails alone.
    public func outputs(for clips: [AudioClip], sources: [String?]? = nil, request: OutputRequest = .official)
        -> [Result<ModelOutput, any Error>] {
        var results = [Result<ModelOutput, any Error>?](repeating: nil, count: clips.count)
        var groups: [Int: [(index: Int, fbank: [Float])]] = [:]
        do { try check(request) } catch { return clips.map { _ in .failure(error) } }
        for (index, clip) in clips.enumerated() {
            do {
                let samples = try samples16k(clip)
                try BEATsAudio.checkPatchLength(sampleCount: samples.count, framesPerPatch: network.patchFrames,
                                                path: sources?[index] ?? nil)
                let fbank = try KaldiFbank.beatsFeatures(samples)
                groups[fbank.frames, default: []].append((index, fbank.values))
            } catch {
                results[index] = .failure(error)
            }
        }
        let (head, layers) = networkRequest(request)
        let rowBudget = network.tokenCount(frames: 1024)
        for (frames, members) in groups.sorted(by: { $0.key < $1.key }) {
            let perBatch = max(1, rowBudget / max(1, network.tokenCount(frames: frames)))
            for start in stride(from: 0, to: members.count, by: perBatch) {
                let batch = members[start..<min(start + perBatch, members.count)]
                do {
                    let outputs = try network.forward(fbanks: batch.map(\.fbank), frames: frames, head: head, layers: layers).outputs
                    for (member, output) in zip(batch, outputs) { results[member.index] = .success(finish(output, request)) }
                } catch {
                    for member in batch { results[member.index] = .failure(error) }
                }
            }
        }
        return results.map { $0 ?? .failure(ModelError.wrongKind(operation: "this output", kind: kind)) }
    }

    // MARK: - Files

    /// Decodes the audio file at `url` and returns the official output of this model's kind.
    public func output(contentsOf url: URL, request: OutputRequest = .official) throws -> ModelOutput {
        try run(try AudioClip(contentsOf: url), source: url.path, request: request).output
    }

    /// Decodes the audio file at `url` and returns its `top` most probable AudioSet classes.
    public func classify(contentsOf url: URL, top: Int = 5) throws -> [LabelScore] {
        let output = try self.output(for: try AudioClip(contentsOf: url), source: url.path, requiring: .finetuned, for: "classify")
        return LabelScore.ranked(try probabilities(in: output), labels: classLabels, top: top)
    }

    /// Decodes the audio file at `url` and returns its features (pre-trained models).
    public func features(contentsOf url: URL) throws -> Features {
        try features(in: try output(for: try AudioClip(contentsOf: url), source: url.path, requiring: .pretrained, for: "features"))
    }

    /// Decodes the audio file at `url` and returns its acoustic tokens (tokenizer models).
    public func tokens(contentsOf url: URL) throws -> [Int] {
        try tokens(in: try output(for: try AudioClip(contentsOf: url), source: url.path, requiring: .tokenizer, for: "tokenize"))
    }

    // MARK: - Long audio

    /// The official output for each window of `clip` (see ``Windowing``).
    public func outputs(for clip: AudioClip, windows windowing: Windowing, source: String? = nil,
                        request: OutputRequest = .official) throws -> [WindowResult<ModelOutput>] {
        let samples = try samples16k(clip)
        let rate = Double(BEATsAudio.sampleRate)
        return try windowing.ranges(sampleCount: samples.count, sampleRate: BEATsAudio.sampleRate, minimumSamples: minimumSamples)
            .map { range in
                let window = AudioClip(sampleRate: BEATsAudio.sampleRate, samples: Array(samples[range]))
                let label = "\(source ?? "audio") window at \(String(format: "%.3f", Double(range.lowerBound) / rate)) s"
                return WindowResult(start: Double(range.lowerBound) / rate, end: Double(range.upperBound) / rate,
                                    value: try run(window, source: label, request: request).output)
            }
    }

    /// Runs the model over the windows of the audio file at `url`, decoding it block by block:
    /// memory holds one window of samples whatever the recording's length, so hours of audio
    /// stream through. `body` gets each window's result in time order. The windows are exactly
    /// those ``outputs(for:windows:source:request:)`` cuts from the whole clip.
    public func forEachWindow(contentsOf url: URL, windows windowing: Windowing, request: OutputRequest = .official,
                              _ body: (WindowResult<ModelOutput>) throws -> Void) throws {
        try windowing.validate()
        let decoder = try AudioDecoder(path: url.path)
        let rate = BEATsAudio.sampleRate
        var buffer: [Float] = []
        var bufferStart = 0            // sample index of buffer[0]
        var finished = false
        var index = 0
        var emitted = 0
        while true {
            let nominal = windowing.bounds(ofWindow: index, sampleRate: rate)
            // Decode until the window is covered and one sample past it is known (or the file
            // ends): a window ending exactly at the end of the audio is the last one.
            while !finished && bufferStart + buffer.count <= nominal.upperBound {
                let block = try decoder.read(maximumCount: max(1 << 16, nominal.upperBound - bufferStart - buffer.count))
                if block.isEmpty { finished = true } else { buffer += block }
            }
            // Samples before the window are never needed again (windows only move forward).
            let drop = min(max(0, nominal.lowerBound - bufferStart), buffer.count)
            buffer.removeFirst(drop)
            bufferStart += drop
            let available = bufferStart + buffer.count
            guard nominal.lowerBound < available else { break }
            let window = nominal.lowerBound..<min(nominal.upperBound, available)
            if windowing.keeps(window, isFirst: emitted == 0, minimumSamples: minimumSamples) {
                let clip = AudioClip(sampleRate: rate, samples: Array(buffer[0..<window.count]))
                let label = "\(url.path) window at \(String(format: "%.3f", Double(window.lowerBound) / Double(rate))) s"
                try body(WindowResult(start: Double(window.lowerBound) / Double(rate), end: Double(window.upperBound) / Double(rate),
                                      value: try run(clip, source: label, request: request).output))
                emitted += 1
            }
            if finished && window.upperBound == available { break }
            index += 1
        }
    }

    /// ``forEachWindow(contentsOf:windows:request:_:)``'s results, in time order.
    public func outputs(contentsOf url: URL, windows windowing: Windowing, request: OutputRequest = .official) throws
        -> [WindowResult<ModelOutput>] {
        var results: [WindowResult<ModelOutput>] = []
        try forEachWindow(contentsOf: url, windows: windowing, request: request) { results.append($0) }
        return results
    }

    /// The windowed classification of the audio file at `url`, streamed (see
    /// ``forEachWindow(contentsOf:windows:request:_:)``): a timeline and each class's maximum.
    public func classify(contentsOf url: URL, windows windowing: Windowing, top: Int = 5) throws -> WindowedClassification {
        try require(.finetuned, for: "classify")
        var timeline = WindowedClassification.Builder(labels: classLabels, top: top)
        try forEachWindow(contentsOf: url, windows: windowing) { timeline.add($0, probabilities: try probabilities(in: $0.value)) }
        return timeline.result
    }

    /// Per-window labels of long audio and, per class, its maximum over windows (fine-tuned
    /// models): a timeline for sound-event detection and one label set for the recording.
    public func classify(_ clip: AudioClip, windows windowing: Windowing, top: Int = 5) throws -> WindowedClassification {
        try require(.finetuned, for: "classify")
        var timeline = WindowedClassification.Builder(labels: classLabels, top: top)
        for result in try outputs(for: clip, windows: windowing) {
            timeline.add(result, probabilities: try probabilities(in: result.value))
        }
        return timeline.result
    }

    // MARK: - Checks

    private func samples16k(_ clip: AudioClip) throws -> [Float] {
        try AudioLoader.resampled(clip, to: BEATsAudio.sampleRate).samples
    }

    private func require(_ needed: ModelKind, for operation: String) throws {
        guard kind == needed else { throw BEATsError.wrongKind(operation: operation, needs: needed, model: source, kind: kind) }
    }

    /// The output for `clip` once the model is checked to be of the kind `operation` needs
    /// (checked first, so a wrong model fails before any audio work).
    private func output(for clip: @autoclosure () throws -> AudioClip, source: String? = nil, requiring needed: ModelKind,
                        for operation: String) throws -> ModelOutput {
        try require(needed, for: operation)
        return try run(try clip(), source: source).output
    }

    // Each kind's output is the one case its network returns; the other cases cannot occur
    // once `require` passed, and would be a runtime defect.
    private func probabilities(in output: ModelOutput) throws -> [Float] {
        guard case .probabilities(let values) = output else { throw ModelError.wrongKind(operation: "probabilities", kind: kind) }
        return values
    }

    private func features(in output: ModelOutput) throws -> Features {
        guard case .features(let features) = output else { throw ModelError.wrongKind(operation: "features", kind: kind) }
        return features
    }

    private func tokens(in output: ModelOutput) throws -> [Int] {
        guard case .tokens(let tokens) = output else { throw ModelError.wrongKind(operation: "tokens", kind: kind) }
        return tokens
    }
}

// MARK: - async

extension BEATsModel {
    /// The `async` form of `output(for:)`: the work runs off the cooperative thread pool.
    public func output(for clip: AudioClip) async throws -> ModelOutput {
        try await Self.detached { try self.output(for: clip) }
    }

    /// The `async` form of `classify(_:top:)`: the work runs off the cooperative thread pool.
    public func classify(_ clip: AudioClip, top: Int = 5) async throws -> [LabelScore] {
        try await Self.detached { try self.classify(clip, top: top) }
    }

    /// The `async` form of `classify(contentsOf:top:)`: decoding and inference run off the cooperative thread pool.
    public func classify(contentsOf url: URL, top: Int = 5) async throws -> [LabelScore] {
        try await Self.detached { try self.classify(contentsOf: url, top: top) }
    }

    /// The `async` form of `features(of:)`: the work runs off the cooperative thread pool.
    public func features(of clip: AudioClip) async throws -> Features {
        try await Self.detached { try self.features(of: clip) }
    }

    /// The `async` form of `tokens(of:)`: the work runs off the cooperative thread pool.
    public func tokens(of clip: AudioClip) async throws -> [Int] {
        try await Self.detached { try self.tokens(of: clip) }
    }

    /// The `async` form of `classify(_:windows:top:)`: the work runs off the cooperative thread pool.
    public func classify(_ clip: AudioClip, windows: Windowing, top: Int = 5) async throws -> WindowedClassification {
        try await Self.detached { try self.classify(clip, windows: windows, top: top) }
    }

    /// `output(contentsOf:)` off the cooperative thread pool: decoding and inference.
    public func output(contentsOf url: URL) async throws -> ModelOutput {
        try await Self.detached { try self.output(contentsOf: url) }
    }

    /// `features(contentsOf:)` off the cooperative thread pool.
    public func features(contentsOf url: URL) async throws -> Features {
        try await Self.detached { try self.features(contentsOf: url) }
    }

    /// `tokens(contentsOf:)` off the cooperative thread pool.
    public func tokens(contentsOf url: URL) async throws -> [Int] {
        try await Self.detached { try self.tokens(contentsOf: url) }
    }

    /// `probabilities(for:)` off the cooperative thread pool.
    public func probabilities(for clip: AudioClip) async throws -> [Float] {
        try await Self.detached { try self.probabilities(for: clip) }
    }

    /// `outputs(for:windows:source:)` off the cooperative thread pool.
    public func outputs(for clip: AudioClip, windows: Windowing) async throws -> [WindowResult<ModelOutput>] {
        try await Self.detached { try self.outputs(for: clip, windows: windows) }
    }

    /// Runs CPU-bound work on a Dispatch queue and resumes the caller when it is done, so a long
    /// forward pass never occupies one of Swift concurrency's few cooperative threads.
    static func detached<Value: Sendable>(_ work: @escaping @Sendable () throws -> Value) async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global(qos: .userInitiated).async {
                continuation.resume(with: Result { try work() })
            }
        }
    }
}

extension ModelOutput {
    init(_ output: NetworkOutput) {
        switch output {
        case .features(let tokens, let dim, let values): self = .features(Features(tokenCount: tokens, dimension: dim, values: values))
        case .probabilities(let values): self = .probabilities(values)
        case .tokens(let values): self = .tokens(values.map { Int($0) })
        case .frameProbabilities(let tokens, let classes, let values):
            self = .frameProbabilities(Features(tokenCount: tokens, dimension: classes, values: values))
        }
    }
}

extension AudioClip {
    /// Decodes the audio file at `url` to mono float samples at 16 kHz (resampled as torchaudio
    /// does), recognising the format by content. Refuses clips longer than the runtime takes
    /// (≈ 655 s). Errors name the file; a model file given as audio is named as a model.
    public init(contentsOf url: URL) throws {
        do {
            self = try AudioLoader.load(path: url.path)
        } catch let error as AudioError {
            if case .tooShort = error { throw error }
            if let model = try? ModelFile.open(path: url.path) {
                throw BEATsError.modelInsteadOfAudio(path: url.path, format: model.formatName)
            }
            let text = error.description
            throw text.hasPrefix(url.path) ? error : BEATsError.unreadableAudio(path: url.path, reason: text)
        }
    }
}
