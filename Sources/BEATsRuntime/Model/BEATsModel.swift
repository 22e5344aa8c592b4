import BEATsCore
import CBEATsKernels
import Dispatch
import Foundation

/// Wall-clock time of one stage of the last forward pass (for `beats bench`).
public struct StageTime: Sendable, Equatable {
    public let name: String
    public var seconds: Double
}

/// BEATs (pre-trained encoder, AudioSet classifier or acoustic tokenizer) on the CPU in float32,
/// computing what the official PyTorch code computes from the same normalised fbank.
///
/// Weights are used in place from the store (a memory-mapped checkpoint or native file) whenever
/// they are aligned float32; every Linear and the patch embedding is one `cblas_sgemm`, the
/// grouped positional convolution one GEMM per group, attention two GEMMs per head around a
/// fused softmax. All intermediate buffers live in one arena sized at load, so a forward pass
/// allocates nothing but its result.
///
/// Not thread-safe: one forward pass at a time per instance (it owns the arena).
public final class BEATsModel {
    public let config: BEATsConfig
    /// Classifier labels from the weight file (empty for models without a classifier).
    public let labels: [AudioSetLabel]
    /// Threads used by OpenBLAS and by the runtime's own parallel loops.
    public let threads: Int
    /// Per-stage wall-clock times of the last forward pass: "patch embedding", "positional conv",
    /// "layer 1" … "layer N", "head" (the head includes the final encoder LayerNorm of pre-LN models).
    public private(set) var stageTimes: [StageTime]

    public var kind: ModelKind { kindStorage }
    /// Feature width of `features(fbank:frames:)`.
    public var featureDimension: Int { weights.dimensions.modelDim }
    /// Frames one patch spans; clips need at least this many.
    public var patchFrames: Int { weights.dimensions.patchSize }
    /// True when the element-wise kernels use their AVX2+FMA variant.
    public var usesAVX2Kernels: Bool { variant == BEATS_FLOAT_AVX2 }
    /// True when every weight is read in place from the store (no converted copies).
    public var usesWeightsInPlace: Bool { inPlaceWeights }

    private let kindStorage: ModelKind
    private let weights: ModelWeights
    private let loop: ParallelLoop
    /// True when the encoder's Linears run on the int8 kernels (a file converted with
    /// `--quantize int8`).
    public let usesInt8Weights: Bool
    /// OpenBLAS's thread count for this model: `threads` for float32 models, 1 when the Linears
    /// are int8. The int8 GEMMs run on our threads, and OpenBLAS's workers spin on `sched_yield`
    /// for about 0.1 s after every multi-threaded call, so with both pools on two cores the int8
    /// GEMMs ran beside spinning workers. In int8 models our loop runs the float GEMMs instead
    /// (attention heads and positional-conv groups in parallel lanes, one OpenBLAS call each).
    private var blasThreads: Int { usesInt8Weights ? 1 : threads }
    /// Parallel lanes of attention heads and conv groups (1: OpenBLAS threads each GEMM instead).
    private var lanes: Int { usesInt8Weights ? threads : 1 }
    private var arena: ForwardArena
    /// Attention query block / conv tile length (tests shrink it to exercise the tiling).
    private let blockRows: Int
    private let inPlaceWeights: Bool
    /// Time of the encoder's final LayerNorm (pre-LN models), reported as part of "head".
    private var finalNormSeconds = 0.0
    /// Which row-kernel variant runs (the best this CPU has; tests switch it to check both).
    var variant: beats_float_variant = beats_float_best_variant()

    /// Longest input accepted, in fbank frames (10 ms each).
    public let maximumFrames: Int

    /// Loads and checks every weight the config needs. `capacityFrames` sizes the working memory
    /// (1024 frames ≈ 10 s); longer clips grow it once, before their forward pass, up to
    /// `maximumFrames` (65 536 frames ≈ 11 minutes; working memory grows linearly with length).
    public convenience init(weights store: any WeightStore, threads: Int = 1, capacityFrames: Int = 1024,
                            maximumFrames: Int = 65_536) throws {
        try self.init(weights: store, threads: threads, capacityFrames: capacityFrames, maximumFrames: maximumFrames,
                      blockRows: ForwardArena.defaultBlockRows)
    }

    init(weights store: any WeightStore, threads: Int, capacityFrames: Int, maximumFrames: Int, blockRows: Int) throws {
        config = store.config
        labels = store.labels
        kindStorage = store.kind
        self.threads = max(1, threads)
        self.maximumFrames = maximumFrames
        self.blockRows = blockRows
        try OpenBLAS.ensureLoaded()
        weights = try ModelWeights(store: store)
        loop = ParallelLoop(threads: self.threads)
        usesInt8Weights = weights.hasInt8Weights
        weights.int8Workspace.threads = self.threads
        BLASBackend.setThreadCount(usesInt8Weights ? 1 : self.threads)
        let dims = weights.dimensions
        arena = ForwardArena(dimensions: dims, head: weights.head, feedForwardWidth: weights.feedForwardWidth,
                             tokens: dims.tokens(frames: min(max(capacityFrames, dims.patchSize), max(maximumFrames, dims.patchSize))),
                             blockRows: blockRows, lanes: usesInt8Weights ? self.threads : 1)
        stageTimes = [StageTime(name: "patch embedding", seconds: 0), StageTime(name: "positional conv", seconds: 0)]
            + (0..<dims.layers).map { StageTime(name: "layer \($0 + 1)", seconds: 0) }
            + [StageTime(name: "head", seconds: 0)]
        inPlaceWeights = weights.allTensors.allSatisfy(\.isInPlace)
    }

    /// Tokens (time × frequency patches) the encoder produces for `frames` fbank frames.
    public func tokenCount(frames: Int) -> Int { weights.dimensions.tokens(frames: frames) }

    /// The encoder's output [tokens, dim] for a normalised fbank of `frames` × 128 values (row
    /// major), as the official `extract_features` returns it for a pre-trained model.
    public func features(fbank: [Float], frames: Int) throws -> (tokens: Int, dim: Int, values: [Float]) {
        let tokens = try run(fbank: fbank, frames: frames)
        let D = weights.dimensions.modelDim
        let start = now()
        let values = Array(UnsafeBufferPointer(start: arena.hidden, count: tokens * D))
        stageTimes[stageTimes.count - 1].seconds = finalNormSeconds + elapsed(since: start)
        return (tokens, D, values)
    }

    /// AudioSet probabilities [classes] of a fine-tuned model.
    public func probabilities(fbank: [Float], frames: Int) throws -> [Float] {
        guard case .classifier(let predictor) = weights.head else {
            throw ModelError.wrongKind(operation: "probabilities", kind: kind)
        }
        let tokens = try run(fbank: fbank, frames: frames)
        let start = now()
        let result = classify(predictor, tokens: tokens)
        stageTimes[stageTimes.count - 1].seconds = finalNormSeconds + elapsed(since: start)
        return result
    }

    /// Discrete acoustic tokens [tokens] of a tokenizer model (codebook indices).
    public func tokens(fbank: [Float], frames: Int) throws -> [Int64] {
        guard case .tokenizer(let hidden, let projection, let codebook, let norms) = weights.head else {
            throw ModelError.wrongKind(operation: "tokens", kind: kind)
        }
        let tokens = try run(fbank: fbank, frames: frames)
        let start = now()
        let result = quantize(hidden: hidden, projection: projection, codebook: codebook, codebookSquaredNorms: norms, tokens: tokens)
        stageTimes[stageTimes.count - 1].seconds = finalNormSeconds + elapsed(since: start)
        return result
    }

    /// One group of the positional convolution into its columns of `arena.projected`, with lane
    /// `lane`'s buffers; `innerLoop` splits the copies across threads, nil runs them inline.
    private func convolveGroup(_ group: Int, tokens T: Int, lane: Int, innerLoop: ParallelLoop?) {
        let dims = weights.dimensions
        let (D, c, K, pad) = (dims.modelDim, dims.groupChannels, dims.convKernel, dims.convPadding)
        let paddedLength = T + 2 * pad
        let columnCount = c * K
        let hidden = UncheckedSendable(arena.hidden)
        let channels = UncheckedSendable(arena.convChannels(lane: lane))
        let columns = UncheckedSendable(arena.convColumns(lane: lane))
        let groupOutput = UncheckedSendable(arena.convGroupOutput(lane: lane))
        let projected = UncheckedSendable(arena.projected)
        func split(_ count: Int, minimumChunk: Int, _ body: (Range<Int>) -> Void) {
            if let innerLoop { innerLoop.forEachChunk(count, minimumChunk: minimumChunk, body) } else { body(0..<count) }
        }
        split(c, minimumChunk: 1) { range in
            for channel in range {
                let row = channels.value + channel * paddedLength
                row.update(repeating: 0, count: pad)
                (row + pad + T).update(repeating: 0, count: paddedLength - pad - T)
                let source = hidden.value + group * c + channel
                for t in 0..<T { row[pad + t] = source[t * D] }
            }
        }
        for tileStart in stride(from: 0, to: T, by: arena.blockRows) {
            let tile = min(arena.blockRows, T - tileStart)
            split(columnCount, minimumChunk: 64) { range in
                for row in range {
                    let (channel, tap) = row.quotientAndRemainder(dividingBy: K)
                    (columns.value + row * tile).update(from: channels.value + channel * paddedLength + tileStart + tap, count: tile)
                }
            }
            Matrix.multiply(rows: c, columns: tile, depth: columnCount,
                            weights.positionalConv.pointer + group * c * columnCount, leading: columnCount,
                            columns.value, leading: tile, transposeB: false, into: groupOutput.value, leading: tile)
            split(tile, minimumChunk: 32) { range in
                for t in range {
                    let target = projected.value + (tileStart + t) * D + group * c
                    for channel in 0..<c { target[channel] = groupOutput.value[channel * tile + t] }
                }
            }
        }
    }

    // MARK: - Encoder

    /// Checks the input, grows the arena if needed, runs patch embedding and the encoder; the
    /// result is in `arena.hidden`. Returns the token count.
    private func run(fbank: [Float], frames: Int) throws -> Int {
        let dims = weights.dimensions
        guard frames >= dims.patchSize else { throw ModelError.tooFewFrames(frames: frames, minimum: dims.patchSize) }
        guard frames <= maximumFrames else { throw ModelError.tooManyFrames(frames: frames, maximum: maximumFrames) }
        let (expected, overflow) = frames.multipliedReportingOverflow(by: ModelDimensions.melBins)
        guard !overflow, fbank.count == expected else {
            throw ModelError.fbankSizeMismatch(frames: frames, expectedValues: overflow ? Int.max : expected, actualValues: fbank.count)
        }
        let tokens = dims.tokens(frames: frames)
        if tokens > arena.capacityTokens {
            arena = ForwardArena(dimensions: dims, head: weights.head, feedForwardWidth: weights.feedForwardWidth,
                                 tokens: tokens, blockRows: blockRows, lanes: lanes)
        }
        // OpenBLAS's thread count is process-wide; set ours for every pass so models opened with
        // different counts each run with their own.
        BLASBackend.setThreadCount(blasThreads)
        fbank.withUnsafeBufferPointer { encode($0.baseAddress!, frames: frames, tokens: tokens) }
        return tokens
    }

    private func encode(_ fbank: UnsafePointer<Float>, frames: Int, tokens T: Int) {
        let dims = weights.dimensions
        var start = now()
        embedPatches(fbank, tokens: T)
        stageTimes[0].seconds = elapsed(since: start)

        start = now()
        addPositionalConvolution(tokens: T)
        stageTimes[1].seconds = elapsed(since: start)

        for (index, layer) in weights.layers.enumerated() {
            start = now()
            if index == 0 { fillRelativePositionBias(tokens: T) }
            if dims.layerNormFirst {
                runPreNormLayer(layer, tokens: T)
            } else {
                runPostNormLayer(layer, tokens: T)
            }
            stageTimes[2 + index].seconds = elapsed(since: start)
        }
        start = now()
        if dims.layerNormFirst {
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
        for token in 0..<T {
            let timePatch = token / frequencyPatches, frequencyPatch = token % frequencyPatches
            for row in 0..<P {
                let source = fbank + (timePatch * P + row) * ModelDimensions.melBins + frequencyPatch * P
                (patches + token * P * P + row * P).update(from: source, count: P)
            }
        }
        Matrix.multiply(rows: T, columns: E, depth: P * P, patches, leading: P * P,
                        weights.patchEmbedding.pointer, leading: P * P, transposeB: true,
                        into: arena.embedded, leading: E)
        if let projection = weights.postExtractProjection {
            layerNorm(into: arena.embedded, arena.embedded, bias: weights.patchEmbeddingBias?.pointer, residual: nil,
                      norm: weights.patchNorm, rows: T, width: E)
            projection.multiply(arena.embedded, leading: E, rows: T, into: arena.hidden, leading: D)
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
        forEachInLanes(dims.convGroups) { group, lane, innerLoop in
            convolveGroup(group, tokens: T, lane: lane, innerLoop: innerLoop)
        }
        let D = dims.modelDim
        let projected = UncheckedSendable(arena.projected)
        let bias = UncheckedSendable(weights.positionalConvBias.pointer)
        let variant = self.variant
        let encoderNorm = dims.layerNormFirst ? nil : weights.encoderNorm
        loop.forEachChunk(T, minimumChunk: 8) { range in
            let offset = range.lowerBound * D
            beats_bias_activation(variant, projected.value + offset, D, range.count, D, bias.value, BEATS_ACTIVATION_GELU)
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
        attention.query.multiply(input, leading: D, rows: T, into: arena.query, leading: D)
        attention.key.multiply(input, leading: D, rows: T, into: arena.key, leading: D)
        attention.value.multiply(input, leading: D, rows: T, into: arena.value, leading: D)
        let q = UncheckedSendable(arena.query), k = UncheckedSendable(arena.key), v = UncheckedSendable(arena.value)
        let biases = UncheckedSendable((attention.query.bias?.pointer, attention.key.bias?.pointer, attention.value.bias?.pointer))
        loop.forEachChunk(T, minimumChunk: 8) { range in
            let offset = range.lowerBound * D
            beats_bias_activation(variant, q.value + offset, D, range.count, D, biases.value.0, BEATS_ACTIVATION_LINEAR)
            beats_bias_activation(variant, k.value + offset, D, range.count, D, biases.value.1, BEATS_ACTIVATION_LINEAR)
            beats_bias_activation(variant, v.value + offset, D, range.count, D, biases.value.2, BEATS_ACTIVATION_LINEAR)
        }
        let gated = attention.gateLinear != nil
        if let gateLinear = attention.gateLinear, let gateScale = attention.gateScale {
            computeGates(gateLinear, gateScale: gateScale, tokens: T)
        }

        forEachInLanes(H) { head, lane, innerLoop in
            attendHead(head, tokens: T, gated: gated, lane: lane, softmaxLoop: innerLoop)
        }
        attention.output.multiply(arena.context, leading: D, rows: T, into: arena.projected, leading: D)
    }

    /// Runs `body(item, lane, innerLoop)` for every item in `0..<count` (attention heads, conv
    /// groups). With lanes (see `blasThreads`) the items are split across our threads, each item
    /// on one thread with lane `lane`'s scratch and no inner loop; otherwise they run one after
    /// another on lane 0's scratch, and `innerLoop` parallelises each item's element-wise work
    /// while OpenBLAS threads its GEMMs.
    private func forEachInLanes(_ count: Int, _ body: (_ item: Int, _ lane: Int, _ innerLoop: ParallelLoop?) -> Void) {
        if lanes > 1 {
            loop.forEachLane(count, lanes: lanes) { lane, items in
                for item in items { body(item, lane, nil) }
            }
        } else {
            for item in 0..<count { body(item, 0, loop) }
        }
    }

    /// One head's attention into its columns of `arena.context`, query block by query block:
    /// scores = q·kᵀ (scaled), softmax with the relative position bias, context = scores·v, the
    /// softmax normalisation applied to the narrow product, with lane `lane`'s scores and sums.
    /// `softmaxLoop` splits the softmax rows across threads; nil runs it on the calling thread.
    private func attendHead(_ head: Int, tokens T: Int, gated: Bool, lane: Int, softmaxLoop: ParallelLoop?) {
        let scores = arena.scores(lane: lane), inverseSums = arena.inverseSums(lane: lane)
        let dims = weights.dimensions
        let (D, headDim) = (dims.modelDim, dims.headDim)
        let hasBias = weights.relativePosition != nil
        let scaling = Float(1 / Double(headDim).squareRoot())
        let offsets = 2 * T - 1
        let variant = self.variant
        let headBias = hasBias ? UncheckedSendable(Optional(UnsafePointer(arena.biasByOffset + head * offsets)))
                               : UncheckedSendable(Optional<UnsafePointer<Float>>.none)
        let headGates = gated ? UncheckedSendable(Optional(UnsafePointer(arena.gates + head * T)))
                              : UncheckedSendable(Optional<UnsafePointer<Float>>.none)
        let scoresBuffer = UncheckedSendable(scores), sums = UncheckedSendable(inverseSums)
        for blockStart in stride(from: 0, to: T, by: arena.blockRows) {
            let rows = min(arena.blockRows, T - blockStart)
            Matrix.multiply(rows: rows, columns: T, depth: headDim, arena.query + blockStart * D + head * headDim, leading: D,
                            arena.key + head * headDim, leading: D, transposeB: true, into: scores, leading: T,
                            alpha: scaling / 32)
            let softmax = { (range: Range<Int>) in
                beats_attention_softmax(variant, scoresBuffer.value + range.lowerBound * T, T, range.count, T,
                                        blockStart + range.lowerBound, 32, headBias.value, headGates.value,
                                        sums.value + range.lowerBound)
            }
            if let softmaxLoop {
                softmaxLoop.forEachChunk(rows, minimumChunk: 8, softmax)
            } else {
                softmax(0..<rows)
            }
            let headContext = arena.context + blockStart * D + head * headDim
            Matrix.multiply(rows: rows, columns: headDim, depth: T, scores, leading: T,
                            arena.value + head * headDim, leading: D, transposeB: false,
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
        gateLinear.multiply(arena.query, leading: headDim, rows: T * H, into: arena.gateProjections, leading: 8)
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
        layer.feedForwardIn.multiply(input, leading: D, rows: T, into: arena.feedForward, leading: width)
        let hidden = UncheckedSendable(arena.feedForward)
        let bias = UncheckedSendable(layer.feedForwardIn.bias?.pointer)
        let fc2Input: UnsafeMutablePointer<Float>
        switch weights.activation {
        case .kernel(let activation):
            loop.forEachChunk(T, minimumChunk: 4) { range in
                beats_bias_activation(variant, hidden.value + range.lowerBound * width, width, range.count, width, bias.value, activation)
            }
            fc2Input = arena.feedForward
        case .gluSwish:
            let output = UncheckedSendable(arena.gluOutput)
            loop.forEachChunk(T, minimumChunk: 4) { range in
                beats_bias_glu_swish(variant, output.value + range.lowerBound * F, F, hidden.value + range.lowerBound * width, width,
                                     range.count, F, bias.value)
            }
            fc2Input = arena.gluOutput
        }
        layer.feedForwardOut.multiply(fc2Input, leading: F, rows: T, into: arena.projected, leading: D)
    }

    // MARK: - Heads

    /// Mean over time, predictor, sigmoid. The official code applies the predictor per frame and
    /// then averages; a Linear commutes with the mean, so averaging first gives the same logits
    /// (to float rounding) for 1/T of the work.
    private func classify(_ predictor: Linear, tokens T: Int) -> [Float] {
        let D = weights.dimensions.modelDim
        let (hidden, meanRow) = (arena.hidden, arena.headHidden)
        for index in 0..<D {
            var sum = 0.0
            for t in 0..<T { sum += Double(hidden[t * D + index]) }
            meanRow[index] = Float(sum / Double(T))
        }
        predictor.multiply(meanRow, leading: D, rows: 1, into: arena.headOutput, leading: predictor.outputs)
        return (0..<predictor.outputs).map { index in
            let logit = arena.headOutput[index] + (predictor.bias?[index] ?? 0)
            return 1 / (1 + Foundation.exp(-logit))
        }
    }

    /// quantize_layer (Linear, tanh, Linear), L2-normalise, then the codebook row with the least
    /// ‖z‖² + ‖c‖² − 2 z·c (the official quantizer's distance; the codebook is used as stored).
    private func quantize(hidden: Linear, projection: Linear, codebook: FloatTensor, codebookSquaredNorms: [Float],
                          tokens T: Int) -> [Int64] {
        let D = weights.dimensions.modelDim
        let (codeDim, codes) = (projection.outputs, codebook.shape[0])
        hidden.multiply(arena.hidden, leading: D, rows: T, into: arena.headHidden, leading: D)
        beats_bias_activation(variant, arena.headHidden, D, T, D, hidden.bias?.pointer, BEATS_ACTIVATION_TANH)
        let z = arena.headOutput
        let dots = arena.headOutput + T * codeDim
        projection.multiply(arena.headHidden, leading: D, rows: T, into: z, leading: codeDim)
        beats_bias_activation(variant, z, codeDim, T, codeDim, projection.bias?.pointer, BEATS_ACTIVATION_LINEAR)
        for t in 0..<T {
            let row = z + t * codeDim
            var squares: Float = 0
            for index in 0..<codeDim { squares += row[index] * row[index] }
            let norm = max(squares.squareRoot(), 1e-12)
            for index in 0..<codeDim { row[index] /= norm }
        }
        Matrix.multiply(rows: T, columns: codes, depth: codeDim, z, leading: codeDim, codebook.pointer, leading: codeDim,
                        transposeB: true, into: dots, leading: codes)
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
            beats_bias_activation(variant, target.value + range.lowerBound * width, width, range.count, width, values.value,
                                  BEATS_ACTIVATION_LINEAR)
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
            beats_bias_residual_layer_norm(variant, output + offset, width, input + offset, width, bias,
                                           residual.map { $0 + offset }, width, residualScale,
                                           gamma, beta, LayerNormWeights.epsilon, range.count, width)
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
