import BEATsCore
import BEATsKernels
import Dispatch
import Foundation

/// Wall-clock time of one stage of a forward pass (for `beats bench`).
public struct StageTime: Sendable, Equatable {
    public let name: String
    public var seconds: Double
}

/// What the official code returns for one clip, by model kind.
public enum NetworkOutput: Sendable, Equatable {
    /// Pre-trained: `extract_features(...)[0]` without the batch axis, [tokens, dim] row-major.
    case features(tokens: Int, dim: Int, values: [Float])
    /// Fine-tuned: AudioSet probabilities [classes].
    case probabilities([Float])
    /// Tokenizer: codebook indices [tokens].
    case tokens([Int64])
    /// Fine-tuned, per token: sigmoid(predictor(x)) [tokens, classes] row-major, before the
    /// official mean over time.
    case frameProbabilities(tokens: Int, classes: Int, values: [Float])
}

/// What a forward pass computes after the encoder.
public enum NetworkHead: Sendable, Equatable {
    /// The official output of the network's kind (features, probabilities or tokens).
    case official
    /// The encoder's output, whatever the kind (the classifier's and tokenizer's input).
    case encoder
    /// Fine-tuned models: per-token probabilities, before the mean over time.
    case frameProbabilities
}

/// One forward pass's output and how long each stage took.
public struct ForwardResult: Sendable {
    init(output: NetworkOutput, stageTimes: [StageTime]) {
        self.output = output
        self.stageTimes = stageTimes
    }

    public let output: NetworkOutput
    /// "patch embedding", "positional conv", "layer 1" … "layer N", "head" (the head includes the
    /// final encoder LayerNorm of pre-LN models).
    public let stageTimes: [StageTime]
}

/// The BEATs network (pre-trained encoder, AudioSet classifier or acoustic tokenizer) on the CPU,
/// computing from a normalised fbank what the official PyTorch code computes.
///
/// Weights are used in place from the store (a memory-mapped checkpoint or native file) whenever
/// they are aligned float32; every Linear and the patch embedding is an sgemm split into bands
/// of output columns across the network's threads, the grouped positional convolution one GEMM
/// per group, attention two GEMMs per head around a fused softmax, groups and heads spread across
/// threads. Int8 files run their Linears on the int8 kernels.
///
/// A network is immutable once built and may run many passes at once: each pass takes its own
/// working memory (an arena sized for its clip) from a pool, so one model serves many tasks with
/// the weights shared read-only, and a model used one call at a time allocates nothing but its
/// results.
public final class BEATsNetwork: Sendable {
    public let config: BEATsConfig
    public let kind: ModelKind
    /// Classifier labels from the weight file (empty for models without a classifier).
    public let labels: [AudioSetLabel]
    /// Threads one forward pass splits its work across.
    public let threads: Int
    /// Longest input accepted, in fbank frames (10 ms each).
    public let maximumFrames: Int
    /// The float32 row kernels this network runs (the best this CPU has unless a test pins one).
    public let rowKernels: FloatKernelVariant
    /// The int8 GEMM variant the network's int8 Linears run on.
    public let int8Kernel: Int8KernelVariant
    /// True when the encoder's Linears run on the int8 kernels (a file converted with
    /// `--quantize int8`).
    public let usesInt8Weights: Bool
    /// True when every weight is read in place from the store (no converted copies).
    public let usesWeightsInPlace: Bool

    /// Feature width of `features(fbank:frames:)`.
    public var featureDimension: Int { weights.dimensions.modelDim }
    /// Frames one patch spans; clips need at least this many.
    public var patchFrames: Int { weights.dimensions.patchSize }

    let weights: ModelWeights
    let loop: ParallelLoop
    /// Attention query block / conv tile length (tests shrink it to exercise the tiling).
    let blockRows: Int
    let arenas: ArenaPool
    /// Tokens the first arena is sized for (`capacityFrames`), so clips up to that length share it.
    let minimumArenaTokens: Int

    /// Loads and checks every weight the config needs. `capacityFrames` sizes the first arena
    /// (1024 frames ≈ 10 s); a longer clip gets a larger one, up to `maximumFrames` (65 536 frames
    /// ≈ 11 minutes; working memory grows linearly with length).
    public convenience init(weights store: any WeightStore, threads: Int = 1, capacityFrames: Int = 1024,
                            maximumFrames: Int = 65_536) throws {
        try self.init(weights: store, threads: threads, capacityFrames: capacityFrames, maximumFrames: maximumFrames,
                      blockRows: ForwardArena.defaultBlockRows)
    }

    init(weights store: any WeightStore, threads: Int, capacityFrames: Int, maximumFrames: Int, blockRows: Int,
         rowKernels: FloatKernelVariant = .best, int8Kernel: Int8KernelVariant = .preferred) throws {
        try store.requireBEATsConfig()
        config = store.config
        labels = store.labels
        kind = store.kind
        self.threads = max(1, threads)
        self.maximumFrames = maximumFrames
        self.blockRows = blockRows
        self.rowKernels = rowKernels
        self.int8Kernel = int8Kernel
        try OpenBLAS.ensureLoaded()
        let weights = try ModelWeights(store: store)
        self.weights = weights
        loop = ParallelLoop(threads: self.threads)
        usesInt8Weights = weights.hasInt8Weights
        usesWeightsInPlace = weights.allTensors.allSatisfy(\.isInPlace)
        let dims = weights.dimensions
        let (lanes, blocks) = (self.threads, blockRows)
        let int8Columns = usesInt8Weights ? max(dims.embedDim, dims.modelDim, weights.feedForwardWidth) : 0
        arenas = ArenaPool { tokens in
            ForwardArena(dimensions: dims, head: weights.head, feedForwardWidth: weights.feedForwardWidth, tokens: tokens,
                         blockRows: blocks, lanes: lanes, int8Columns: int8Columns)
        }
        // The first call makes the first arena (a model that never runs holds none, and opening
        // stays cheap); a model used one call at a time then reuses it and allocates nothing.
        minimumArenaTokens = dims.tokens(frames: min(max(capacityFrames, dims.patchSize), max(maximumFrames, dims.patchSize)))
    }

    /// Tokens (time × frequency patches) the encoder produces for `frames` fbank frames.
    public func tokenCount(frames: Int) -> Int { weights.dimensions.tokens(frames: frames) }

    /// The official output of this network's kind for a normalised fbank of `frames` × 128 values
    /// (row major), with per-stage times.
    /// `head` picks what follows the encoder; `layers` (1 … encoder layers) stops after that many
    /// layers and returns their output as the official `encoder(x, layer: layers - 1)` does
    /// (no final LayerNorm of pre-LN models), with `head` `.encoder`.
    public func forward(fbank: [Float], frames: Int, head: NetworkHead = .official, layers: Int? = nil) throws -> ForwardResult {
        let (outputs, stageTimes) = try forward(fbanks: [fbank], frames: frames, head: head, layers: layers)
        return ForwardResult(output: outputs[0], stageTimes: stageTimes)
    }

    /// The outputs of several clips of the same length in one pass: their tokens are stacked
    /// into one matrix, so every Linear is one GEMM over all clips (short clips fill the GEMMs
    /// that one clip leaves nearly empty), while attention and the positional convolution stay
    /// within each clip. Each clip's output equals what it gives alone, up to float32 rounding.
    public func forward(fbanks: [[Float]], frames: Int, head: NetworkHead = .official, layers: Int? = nil) throws
        -> (outputs: [NetworkOutput], stageTimes: [StageTime]) {
        let dims = weights.dimensions
        if let layers, !(1...max(dims.layers, 1)).contains(layers) || dims.layers == 0 {
            throw ModelError.invalidLayer(layers, available: dims.layers)
        }
        if head == .frameProbabilities, kind != .finetuned {
            throw ModelError.wrongKind(operation: "per-frame probabilities", kind: kind)
        }
        guard !fbanks.isEmpty else { return ([], []) }
        guard frames >= dims.patchSize else { throw ModelError.tooFewFrames(frames: frames, minimum: dims.patchSize) }
        guard frames <= maximumFrames else { throw ModelError.tooManyFrames(frames: frames, maximum: maximumFrames) }
        let (expected, overflow) = frames.multipliedReportingOverflow(by: BEATsAudio.melBins)
        for fbank in fbanks {
            guard !overflow, fbank.count == expected else {
                throw ModelError.fbankSizeMismatch(frames: frames, expectedValues: overflow ? Int.max : expected, actualValues: fbank.count)
            }
        }
        let tokens = dims.tokens(frames: frames)
        let (rows, rowsOverflow) = tokens.multipliedReportingOverflow(by: fbanks.count)
        guard !rowsOverflow, rows <= dims.tokens(frames: maximumFrames) else {
            throw ModelError.tooManyFrames(frames: frames * fbanks.count, maximum: maximumFrames)
        }
        let stacked = fbanks.count == 1 ? fbanks[0] : Array(fbanks.joined())
        return arenas.withArena(tokens: max(rows, minimumArenaTokens)) { arena in
            let pass = ForwardPass(network: self, arena: arena, clips: fbanks.count, clipFrames: frames)
            stacked.withUnsafeBufferPointer { pass.encode($0.baseAddress!, tokens: rows, layers: layers ?? dims.layers) }
            let outputs = pass.runHead(tokens: rows, head: layers == nil ? head : .encoder)
            return (outputs, pass.stageTimes)
        }
    }

    /// The encoder's output [tokens, dim] for a normalised fbank of `frames` × 128 values (row
    /// major), as the official `extract_features` returns it for a pre-trained model (for the
    /// other kinds: their encoder's output, before the head).
    public func features(fbank: [Float], frames: Int) throws -> (tokens: Int, dim: Int, values: [Float]) {
        guard case .features(let tokens, let dim, let values) = try forward(fbank: fbank, frames: frames, head: .encoder).output else {
            throw ModelError.wrongKind(operation: "features", kind: kind)
        }
        return (tokens, dim, values)
    }

    /// AudioSet probabilities [classes] of a fine-tuned model.
    public func probabilities(fbank: [Float], frames: Int) throws -> [Float] {
        guard kind == .finetuned else { throw ModelError.wrongKind(operation: "probabilities", kind: kind) }
        guard case .probabilities(let values) = try forward(fbank: fbank, frames: frames).output else {
            throw ModelError.wrongKind(operation: "probabilities", kind: kind)
        }
        return values
    }

    /// Discrete acoustic tokens [tokens] of a tokenizer model (codebook indices).
    public func tokens(fbank: [Float], frames: Int) throws -> [Int64] {
        guard kind == .tokenizer else { throw ModelError.wrongKind(operation: "tokens", kind: kind) }
        guard case .tokens(let values) = try forward(fbank: fbank, frames: frames).output else {
            throw ModelError.wrongKind(operation: "tokens", kind: kind)
        }
        return values
    }
}

/// One forward pass: the network's weights and threads with an arena of its own. Everything the
/// pass writes lives in its arena, so passes on one network run side by side.
final class ForwardPass {
    let weights: ModelWeights
    let loop: ParallelLoop
    let arena: ForwardArena
    let variant: FloatKernelVariant
    let int8Kernel: Int8KernelVariant
    /// Clips stacked in this pass (their tokens are rows clip·T … clip·T + T − 1) and the fbank
    /// frames of each.
    let clips: Int
    let clipFrames: Int
    /// Per-stage wall-clock times, filled as the pass runs.
    private(set) var stageTimes: [StageTime]
    /// Time of the encoder's final LayerNorm (pre-LN models), reported as part of "head".
    private var finalNormSeconds = 0.0

    init(network: BEATsNetwork, arena: ForwardArena, clips: Int = 1, clipFrames: Int) {
        self.clips = clips
        self.clipFrames = clipFrames
        weights = network.weights
        loop = network.loop
        self.arena = arena
        variant = network.rowKernels
        int8Kernel = network.int8Kernel
        stageTimes = [StageTime(name: "patch embedding", seconds: 0), StageTime(name: "positional conv", seconds: 0)]
            + (0..<network.weights.dimensions.layers).map { StageTime(name: "layer \($0 + 1)", seconds: 0) }
            + [StageTime(name: "head", seconds: 0)]
    }

    /// The head of the network's kind on the encoder output in `arena.hidden`, one output per clip.
    func runHead(tokens: Int, head: NetworkHead) -> [NetworkOutput] {
        let start = now()
        let T = tokens / clips
        let outputs: [NetworkOutput]
        switch head == .encoder ? .features : weights.head {
        case .classifier(let predictor) where head == .frameProbabilities:
            let C = predictor.outputs
            let values = classifyFrames(predictor, tokens: tokens)
            outputs = (0..<clips).map { .frameProbabilities(tokens: T, classes: C, values: Array(values[($0 * T * C)..<(($0 + 1) * T * C)])) }
        case .features:
            let D = weights.dimensions.modelDim
            outputs = (0..<clips).map {
                .features(tokens: T, dim: D, values: Array(UnsafeBufferPointer(start: arena.hidden + $0 * T * D, count: T * D)))
            }
        case .classifier(let predictor):
            outputs = classify(predictor, tokens: tokens).map { .probabilities($0) }
        case .tokenizer(let hidden, let projection, let codebook, let norms):
            let codes = quantize(hidden: hidden, projection: projection, codebook: codebook, codebookSquaredNorms: norms, tokens: tokens)
            outputs = (0..<clips).map { .tokens(Array(codes[($0 * T)..<(($0 + 1) * T)])) }
        }
        stageTimes[stageTimes.count - 1].seconds = finalNormSeconds + elapsed(since: start)
        return outputs
    }

    /// One group of the positional convolution of clip `clip` (its `T` tokens) into its columns
    /// of `arena.projected`, with lane `lane`'s buffers, on the calling thread.
    private func convolveGroup(_ group: Int, clip: Int, tokens T: Int, lane: Int) {
        let dims = weights.dimensions
        let (D, c, K, pad) = (dims.modelDim, dims.groupChannels, dims.convKernel, dims.convPadding)
        let paddedLength = T + 2 * pad
        let columnCount = c * K
        let (hidden, projected) = (arena.hidden + clip * T * D, arena.projected + clip * T * D)
        let channels = arena.convChannels(lane: lane)
        let columns = arena.convColumns(lane: lane)
        let groupOutput = arena.convGroupOutput(lane: lane)
        for channel in 0..<c {
            let row = channels + channel * paddedLength
            row.update(repeating: 0, count: pad)
            (row + pad + T).update(repeating: 0, count: paddedLength - pad - T)
            let source = hidden + group * c + channel
            for t in 0..<T { row[pad + t] = source[t * D] }
        }
        for tileStart in stride(from: 0, to: T, by: arena.blockRows) {
            let tile = min(arena.blockRows, T - tileStart)
            for row in 0..<columnCount {
                let (channel, tap) = row.quotientAndRemainder(dividingBy: K)
                (columns + row * tile).update(from: channels + channel * paddedLength + tileStart + tap, count: tile)
            }
            Matrix.multiply(rows: c, columns: tile, depth: columnCount,
                            weights.positionalConv.pointer + group * c * columnCount, leading: columnCount,
                            columns, leading: tile, transposeB: false, into: groupOutput, leading: tile)
            for t in 0..<tile {
                let target = projected + (tileStart + t) * D + group * c
                for channel in 0..<c { target[channel] = groupOutput[channel * tile + t] }
            }
        }
    }

    // MARK: - Encoder

    /// Patch embedding, positional convolution and the first `layers` encoder layers; the final
    /// LayerNorm of pre-LN models only after the last layer (as the official encoder skips it
    /// when a layer is asked for).
    func encode(_ fbank: UnsafePointer<Float>, tokens T: Int, layers: Int) {
        let dims = weights.dimensions
        var start = now()
        embedPatches(fbank, tokens: T)
        stageTimes[0].seconds = elapsed(since: start)

        start = now()
        addPositionalConvolution(tokens: T)
        stageTimes[1].seconds = elapsed(since: start)

        for (index, layer) in weights.layers.prefix(layers).enumerated() {
            start = now()
            if index == 0 { fillRelativePositionBias(tokens: T / clips) }
            if dims.layerNormFirst {
                runPreNormLayer(layer, tokens: T)
            } else {
                runPostNormLayer(layer, tokens: T)
            }
            stageTimes[2 + index].seconds = elapsed(since: start)
        }
        start = now()
        if dims.layerNormFirst && layers == dims.layers {
            layerNorm(into: arena.hidden, arena.hidden, bias: nil, residual: nil, norm: weights.encoderNorm,
                      rows: T, width: dims.modelDim)
        }
        finalNormSeconds = elapsed(since: start)
    }

    /// Conv2d(1, E, P, stride P) over the [frames, 128] fbank as one GEMM over the patch matrix,
    /// then LayerNorm(E) and, when E ≠ D, post_extract_proj.
    private func embedPatches(_ fbank: UnsafePointer<Float>, tokens T: Int) {
        let dims = weights.dimensions
        let (P, E, D) = (dims.patchSize, dims.embedDim, dims.modelDim)
        let frequencyPatches = dims.frequencyPatches
        let patches = arena.patches
        // Token t = timePatch · frequencyPatches + frequencyPatch (the Conv2d output flattened);
        // its row holds the P × P pixels row by row, as the weight [E, 1, P, P] is laid out.
        let clipTokens = T / clips
        for token in 0..<T {
            let (clip, clipToken) = token.quotientAndRemainder(dividingBy: clipTokens)
            let timePatch = clipToken / frequencyPatches, frequencyPatch = clipToken % frequencyPatches
            let clipFbank = fbank + clip * clipFrames * BEATsAudio.melBins
            for row in 0..<P {
                let source = clipFbank + (timePatch * P + row) * BEATsAudio.melBins + frequencyPatch * P
                (patches + token * P * P + row * P).update(from: source, count: P)
            }
        }
        Matrix.multiply(rows: T, columns: E, depth: P * P, patches, leading: P * P,
                        weights.patchEmbedding.pointer, leading: P * P, transposeB: true,
                        into: arena.embedded, leading: E, splitting: loop)
        if let projection = weights.postExtractProjection {
            layerNorm(into: arena.embedded, arena.embedded, bias: weights.patchEmbeddingBias?.pointer, residual: nil,
                      norm: weights.patchNorm, rows: T, width: E)
            projection.multiply(arena.embedded, leading: E, rows: T, into: arena.hidden, leading: D, in: self)
            addBias(arena.hidden, projection.bias, rows: T, width: D)
        } else {
            layerNorm(into: arena.hidden, arena.embedded, bias: weights.patchEmbeddingBias?.pointer, residual: nil,
                      norm: weights.patchNorm, rows: T, width: E)
        }
    }

    /// x ← x + GELU(grouped Conv1d(x) + b), then the encoder LayerNorm for post-LN models.
    ///
    /// Per group: the group's channels are copied into a zero-padded channel-major buffer; im2col
    /// expands it to [c·K, T], row ci·K + k holding the channel shifted by k − pad (so every row is
    /// one contiguous copy, and the rows match the weight's [out, in/groups, K] layout); one GEMM
    /// with the group's weight rows gives the group's output [c, T], which is transposed into its
    /// columns of [T, D]. This orientation (weights as the GEMM's left operand) runs about 25 %
    /// faster in OpenBLAS than [T, c·K] · W_gᵀ, whose output has only c = 48 columns. An even
    /// kernel gives T + 1 outputs; the last is dropped (SamePad).
    private func addPositionalConvolution(tokens T: Int) {
        let dims = weights.dimensions
        let groups = dims.convGroups
        forEachInLanes(clips * groups) { item, lane in
            convolveGroup(item % groups, clip: item / groups, tokens: T / clips, lane: lane)
        }
        let D = dims.modelDim
        let projected = UncheckedSendable(arena.projected)
        let bias = UncheckedSendable(weights.positionalConvBias.pointer)
        let variant = self.variant
        let encoderNorm = dims.layerNormFirst ? nil : weights.encoderNorm
        loop.forEachChunk(T, minimumChunk: 8) { range in
            let offset = range.lowerBound * D
            variant.biasActivation(projected.value + offset, leading: D, rows: range.count, columns: D, bias: bias.value, .gelu)
        }
        layerNorm(into: arena.hidden, arena.projected, bias: nil, residual: arena.hidden, residualScale: 1,
                  norm: encoderNorm, rows: T, width: D)
    }

    /// The relative position bias per head and offset for this length (layer 0 computes it; every
    /// layer uses it).
    private func fillRelativePositionBias(tokens T: Int) {
        guard let buckets = weights.relativePosition, let table = weights.relativeAttentionBias else { return }
        buckets.fillBiasByOffset(embedding: table, heads: weights.dimensions.heads, tokens: T, into: arena.biasByOffset)
    }

    /// Post-LN layer (the official default and deep norm):
    /// x = LN(α·x + Attn(x)); x = LN(α·x + FFN(x)).
    private func runPostNormLayer(_ layer: EncoderLayerWeights, tokens T: Int) {
        let D = weights.dimensions.modelDim
        let alpha = weights.dimensions.residualScale
        selfAttention(layer.attention, input: arena.hidden, tokens: T)
        layerNorm(into: arena.hidden, arena.projected, bias: layer.attention.output.bias?.pointer,
                  residual: arena.hidden, residualScale: alpha, norm: layer.attentionNorm, rows: T, width: D)
        feedForward(layer, input: arena.hidden, tokens: T)
        layerNorm(into: arena.hidden, arena.projected, bias: layer.feedForwardOut.bias?.pointer,
                  residual: arena.hidden, residualScale: alpha, norm: layer.finalNorm, rows: T, width: D)
    }

    /// Pre-LN layer (`layer_norm_first`): x = x + Attn(LN(x)); x = x + FFN(LN(x)).
    private func runPreNormLayer(_ layer: EncoderLayerWeights, tokens T: Int) {
        let D = weights.dimensions.modelDim
        layerNorm(into: arena.projected, arena.hidden, bias: nil, residual: nil, norm: layer.attentionNorm, rows: T, width: D)
        selfAttention(layer.attention, input: arena.projected, tokens: T)
        layerNorm(into: arena.hidden, arena.projected, bias: layer.attention.output.bias?.pointer,
                  residual: arena.hidden, residualScale: 1, norm: nil, rows: T, width: D)
        layerNorm(into: arena.projected, arena.hidden, bias: nil, residual: nil, norm: layer.finalNorm, rows: T, width: D)
        feedForward(layer, input: arena.projected, tokens: T)
        layerNorm(into: arena.hidden, arena.projected, bias: layer.feedForwardOut.bias?.pointer,
                  residual: arena.hidden, residualScale: 1, norm: nil, rows: T, width: D)
    }

    /// Multi-head self-attention of `input` [T, D]; leaves out_proj's output, without its bias,
    /// in `arena.projected` (the caller fuses the bias into the residual).
    ///
    /// As the official code: q scaled by head_dim^-½ and 1/32, scores minus their row max, times
    /// 32, plus the relative position bias (gated per query), softmax, times v.
    private func selfAttention(_ attention: AttentionWeights, input: UnsafeMutablePointer<Float>, tokens T: Int) {
        let dims = weights.dimensions
        let (D, H) = (dims.modelDim, dims.heads)
        attention.query.multiply(input, leading: D, rows: T, into: arena.query, leading: D, in: self)
        attention.key.multiply(input, leading: D, rows: T, into: arena.key, leading: D, in: self)
        attention.value.multiply(input, leading: D, rows: T, into: arena.value, leading: D, in: self)
        let q = UncheckedSendable(arena.query), k = UncheckedSendable(arena.key), v = UncheckedSendable(arena.value)
        let biases = UncheckedSendable((attention.query.bias?.pointer, attention.key.bias?.pointer, attention.value.bias?.pointer))
        loop.forEachChunk(T, minimumChunk: 8) { range in
            let offset = range.lowerBound * D
            variant.biasActivation(q.value + offset, leading: D, rows: range.count, columns: D, bias: biases.value.0, .linear)
            variant.biasActivation(k.value + offset, leading: D, rows: range.count, columns: D, bias: biases.value.1, .linear)
            variant.biasActivation(v.value + offset, leading: D, rows: range.count, columns: D, bias: biases.value.2, .linear)
        }
        let gated = attention.gateLinear != nil
        if let gateLinear = attention.gateLinear, let gateScale = attention.gateScale {
            computeGates(gateLinear, gateScale: gateScale, tokens: T)
        }

        forEachInLanes(clips * H) { item, lane in
            attendHead(item % H, clip: item / H, tokens: T / clips, rows: T, gated: gated, lane: lane)
        }
        attention.output.multiply(arena.context, leading: D, rows: T, into: arena.projected, leading: D, in: self)
    }

    /// Runs `body(item, lane)` for every item in `0..<count` (attention heads, conv groups),
    /// the items split across the pass's threads, each item on one thread with lane `lane`'s
    /// scratch (its GEMMs single-threaded: OpenBLAS never threads).
    private func forEachInLanes(_ count: Int, _ body: (_ item: Int, _ lane: Int) -> Void) {
        loop.forEachLane(count, lanes: loop.threads) { lane, items in
            for item in items { body(item, lane) }
        }
    }

    /// One head's attention into its columns of `arena.context`, query block by query block:
    /// scores = q·kᵀ (scaled), softmax with the relative position bias, context = scores·v, the
    /// softmax normalisation applied to the narrow product, with lane `lane`'s scores and sums,
    /// on the calling thread.
    /// `T` is the clip's token count, `rows` all clips' (the gates are [heads, rows]).
    private func attendHead(_ head: Int, clip: Int, tokens T: Int, rows allRows: Int, gated: Bool, lane: Int) {
        let scores = arena.scores(lane: lane), inverseSums = arena.inverseSums(lane: lane)
        let dims = weights.dimensions
        let (D, headDim) = (dims.modelDim, dims.headDim)
        let hasBias = weights.relativePosition != nil
        let scaling = Float(1 / Double(headDim).squareRoot())
        let offsets = 2 * T - 1
        let headBias = hasBias ? UnsafePointer(arena.biasByOffset + head * offsets) : nil
        let headGates = gated ? UnsafePointer(arena.gates + head * allRows + clip * T) : nil
        let (query, key, value, context) = (arena.query + clip * T * D, arena.key + clip * T * D,
                                            arena.value + clip * T * D, arena.context + clip * T * D)
        for blockStart in stride(from: 0, to: T, by: arena.blockRows) {
            let rows = min(arena.blockRows, T - blockStart)
            Matrix.multiply(rows: rows, columns: T, depth: headDim, query + blockStart * D + head * headDim, leading: D,
                            key + head * headDim, leading: D, transposeB: true, into: scores, leading: T,
                            alpha: scaling / 32)
            variant.attentionSoftmax(scores, leading: T, rows: rows, columns: T, firstRow: blockStart, postScale: 32,
                                     biasByOffset: headBias, gates: headGates, inverseSums: inverseSums)
            let headContext = context + blockStart * D + head * headDim
            Matrix.multiply(rows: rows, columns: headDim, depth: T, scores, leading: T,
                            value + head * headDim, leading: D, transposeB: false,
                            into: headContext, leading: D)
            // Softmax normalisation applied to the [rows, head_dim] product instead of the
            // [rows, T] probabilities: the same maths on 1/8 of the elements (T = 496).
            for row in 0..<rows {
                let scale = inverseSums[row]
                let target = headContext + row * D
                for index in 0..<headDim { target[index] *= scale }
            }
        }
    }

    /// Per head and query, the gate of the relative position bias (gru_rel_pos):
    /// (a, b) = sigmoid(sums of the two halves of grep_linear(q_head)), gate = a·(b·grep_a − 1) + 2.
    private func computeGates(_ gateLinear: Linear, gateScale: FloatTensor, tokens T: Int) {
        let dims = weights.dimensions
        let (H, headDim) = (dims.heads, dims.headDim)
        // The unscaled q [T, D] is [T·H, head_dim] row-major: one GEMM for all heads.
        gateLinear.multiply(arena.query, leading: headDim, rows: T * H, into: arena.gateProjections, leading: 8, in: self)
        let projections = arena.gateProjections
        let bias = gateLinear.bias?.pointer
        for t in 0..<T {
            for head in 0..<H {
                let row = projections + (t * H + head) * 8
                var first: Float = 0, second: Float = 0
                for index in 0..<4 { first += row[index] + (bias?[index] ?? 0) }
                for index in 4..<8 { second += row[index] + (bias?[index] ?? 0) }
                let gateA = 1 / (1 + Foundation.exp(-first))
                let gateB = 1 / (1 + Foundation.exp(-second))
                arena.gates[head * T + t] = gateA * (gateB * gateScale[head] - 1) + 2
            }
        }
    }

    /// fc1, activation, fc2 (without fc2's bias, fused by the caller) into `arena.projected`.
    private func feedForward(_ layer: EncoderLayerWeights, input: UnsafeMutablePointer<Float>, tokens T: Int) {
        let dims = weights.dimensions
        let (D, F) = (dims.modelDim, dims.feedForwardDim)
        let width = layer.feedForwardIn.outputs
        layer.feedForwardIn.multiply(input, leading: D, rows: T, into: arena.feedForward, leading: width, in: self)
        let hidden = UncheckedSendable(arena.feedForward)
        let bias = UncheckedSendable(layer.feedForwardIn.bias?.pointer)
        let fc2Input: UnsafeMutablePointer<Float>
        switch weights.activation {
        case .kernel(let activation):
            loop.forEachChunk(T, minimumChunk: 4) { range in
                variant.biasActivation(hidden.value + range.lowerBound * width, leading: width, rows: range.count, columns: width, bias: bias.value, activation)
            }
            fc2Input = arena.feedForward
        case .gluSwish:
            let output = UncheckedSendable(arena.gluOutput)
            loop.forEachChunk(T, minimumChunk: 4) { range in
                variant.biasGLUSwish(into: output.value + range.lowerBound * F, leading: F,
                                     hidden.value + range.lowerBound * width, leading: width, rows: range.count, columns: F,
                                     bias: bias.value)
            }
            fc2Input = arena.gluOutput
        }
        layer.feedForwardOut.multiply(fc2Input, leading: F, rows: T, into: arena.projected, leading: D, in: self)
    }

    // MARK: - Heads

    /// Mean over time, predictor, sigmoid. The official code applies the predictor per frame and
    /// then averages; a Linear commutes with the mean, so averaging first gives the same logits
    /// (to float rounding) for 1/T of the work.
    private func classify(_ predictor: Linear, tokens rows: Int) -> [[Float]] {
        let (D, C) = (weights.dimensions.modelDim, predictor.outputs)
        let T = rows / clips
        let (hidden, meanRows) = (arena.hidden, arena.headHidden)
        for clip in 0..<clips {
            let clipHidden = hidden + clip * T * D
            for index in 0..<D {
                var sum = 0.0
                for t in 0..<T { sum += Double(clipHidden[t * D + index]) }
                meanRows[clip * D + index] = Float(sum / Double(T))
            }
        }
        predictor.multiply(meanRows, leading: D, rows: clips, into: arena.headOutput, leading: C, in: self)
        return (0..<clips).map { clip in
            (0..<C).map { index in
                let logit = arena.headOutput[clip * C + index] + (predictor.bias?[index] ?? 0)
                return 1 / (1 + Foundation.exp(-logit))
            }
        }
    }
    /// sigmoid(predictor(x)) for every token [T, classes]: what the official code averages.
    private func classifyFrames(_ predictor: Linear, tokens T: Int) -> [Float] {
        let (D, C) = (weights.dimensions.modelDim, predictor.outputs)
        predictor.multiply(arena.hidden, leading: D, rows: T, into: arena.headOutput, leading: C, in: self)
        return (0..<(T * C)).map { index in
            let logit = arena.headOutput[index] + (predictor.bias?[index % C] ?? 0)
            return 1 / (1 + Foundation.exp(-logit))
        }
    }

    /// quantize_layer (Linear, tanh, Linear), L2-normalise, then the codebook row with the least
    /// ‖z‖² + ‖c‖² − 2 z·c (the official quantizer's distance; the codebook is used as stored).
    private func quantize(hidden: Linear, projection: Linear, codebook: FloatTensor, codebookSquaredNorms: [Float],
                          tokens T: Int) -> [Int64] {
        let D = weights.dimensions.modelDim
        let (codeDim, codes) = (projection.outputs, codebook.shape[0])
        hidden.multiply(arena.hidden, leading: D, rows: T, into: arena.headHidden, leading: D, in: self)
        variant.biasActivation(arena.headHidden, leading: D, rows: T, columns: D, bias: hidden.bias?.pointer, .tanh)
        let z = arena.headOutput
        let dots = arena.headOutput + T * codeDim
        projection.multiply(arena.headHidden, leading: D, rows: T, into: z, leading: codeDim, in: self)
        variant.biasActivation(z, leading: codeDim, rows: T, columns: codeDim, bias: projection.bias?.pointer, .linear)
        for t in 0..<T {
            let row = z + t * codeDim
            var squares: Float = 0
            for index in 0..<codeDim { squares += row[index] * row[index] }
            let norm = max(squares.squareRoot(), 1e-12)
            for index in 0..<codeDim { row[index] /= norm }
        }
        Matrix.multiply(rows: T, columns: codes, depth: codeDim, z, leading: codeDim, codebook.pointer, leading: codeDim,
                        transposeB: true, into: dots, leading: codes, splitting: loop)
        return (0..<T).map { t in
            let row = z + t * codeDim
            var squares: Float = 0
            for index in 0..<codeDim { squares += row[index] * row[index] }
            var best = 0
            var bestDistance = Float.infinity
            for code in 0..<codes {
                let distance = (squares + codebookSquaredNorms[code]) - 2 * dots[t * codes + code]
                if distance < bestDistance {
                    bestDistance = distance
                    best = code
                }
            }
            return Int64(best)
        }
    }

    // MARK: - Row kernels across threads

    private func addBias(_ matrix: UnsafeMutablePointer<Float>, _ bias: FloatTensor?, rows: Int, width: Int) {
        guard let bias else { return }
        let target = UncheckedSendable(matrix), values = UncheckedSendable(bias.pointer)
        loop.forEachChunk(rows, minimumChunk: 8) { range in
            variant.biasActivation(target.value + range.lowerBound * width, leading: width, rows: range.count, columns: width, bias: values.value, .linear)
        }
    }

    /// out = LN((y + bias) + residual · residualScale) row by row (no LN when `norm` is nil).
    private func layerNorm(into output: UnsafeMutablePointer<Float>, _ input: UnsafeMutablePointer<Float>,
                           bias: UnsafePointer<Float>?, residual: UnsafeMutablePointer<Float>?, residualScale: Float = 0,
                           norm: LayerNormWeights?, rows: Int, width: Int) {
        let pointers = UncheckedSendable((output, input, bias, residual, norm?.gamma.pointer, norm?.beta.pointer))
        loop.forEachChunk(rows, minimumChunk: 8) { range in
            let (output, input, bias, residual, gamma, beta) = pointers.value
            let offset = range.lowerBound * width
            variant.biasResidualLayerNorm(into: output + offset, leading: width, input + offset, leading: width, bias: bias,
                                          residual: residual.map { UnsafePointer($0 + offset) }, leading: width,
                                          residualScale: residualScale, gamma: gamma, beta: beta,
                                          epsilon: LayerNormWeights.epsilon, rows: range.count, columns: width)
        }
    }

    private func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
    private func elapsed(since start: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
}

extension ModelWeights {
    /// Width of fc1's output: ffn, or 2·ffn for GLU.
    var feedForwardWidth: Int { activation == .gluSwish ? 2 * dimensions.feedForwardDim : dimensions.feedForwardDim }

    /// Every Linear of the model, in order (the head's included).
    var allLinears: [Linear] {
        var linears: [Linear] = postExtractProjection.map { [$0] } ?? []
        for layer in layers {
            linears += [layer.attention.query, layer.attention.key, layer.attention.value, layer.attention.output]
            if let gate = layer.attention.gateLinear { linears.append(gate) }
            linears += [layer.feedForwardIn, layer.feedForwardOut]
        }
        switch head {
        case .features: break
        case .classifier(let predictor): linears.append(predictor)
        case .tokenizer(let hidden, let projection, _, _): linears += [hidden, projection]
        }
        return linears
    }

    /// Whether any Linear runs on the int8 kernels.
    var hasInt8Weights: Bool { allLinears.contains { $0.quantizedWeight != nil } }

    /// Every float weight tensor (to report whether all are used in place).
    var allTensors: [FloatTensor] {
        var tensors: [FloatTensor] = [patchEmbedding, patchNorm.gamma, patchNorm.beta, positionalConv, positionalConvBias,
                                      encoderNorm.gamma, encoderNorm.beta]
        if let patchEmbeddingBias { tensors.append(patchEmbeddingBias) }
        if let relativeAttentionBias { tensors.append(relativeAttentionBias) }
        for layer in layers {
            if let scale = layer.attention.gateScale { tensors.append(scale) }
            tensors += [layer.attentionNorm.gamma, layer.attentionNorm.beta, layer.finalNorm.gamma, layer.finalNorm.beta]
        }
        if case .tokenizer(_, _, let codebook, _) = head { tensors.append(codebook) }
        for linear in allLinears {
            if let weight = linear.weight { tensors.append(weight) }
            if let bias = linear.bias { tensors.append(bias) }
        }
        return tensors
    }
}
