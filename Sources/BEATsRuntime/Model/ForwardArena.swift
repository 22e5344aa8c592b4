import Foundation

/// Every buffer one forward pass needs, carved out of a single 64-byte aligned allocation sized
/// for a maximum number of tokens. A pass owns its arena for its whole duration (see
/// ``ArenaPool``), so concurrent passes on one model never share working memory.
final class ForwardArena: @unchecked Sendable {
    let capacityTokens: Int

    /// [T, P²] fbank patches, one row per token.
    let patches: UnsafeMutablePointer<Float>
    /// [T, E] patch embeddings.
    let embedded: UnsafeMutablePointer<Float>
    /// [T, D] the hidden state between stages.
    let hidden: UnsafeMutablePointer<Float>
    /// [T, D] attention projections and the per-head context.
    let query: UnsafeMutablePointer<Float>
    let key: UnsafeMutablePointer<Float>
    let value: UnsafeMutablePointer<Float>
    let context: UnsafeMutablePointer<Float>
    /// [T, D] output of a projection before it joins the residual (also the positional conv output,
    /// and pre-LN layers' normalised input).
    let projected: UnsafeMutablePointer<Float>
    /// [T, ffn] (or [T, 2·ffn] for GLU) the feed-forward's hidden activations.
    let feedForward: UnsafeMutablePointer<Float>
    /// [T, ffn] GLU output (only for `glu`).
    let gluOutput: UnsafeMutablePointer<Float>
    /// Per lane (``scores(lane:)``), [block, T] attention scores of one head for a block of
    /// queries: lanes run heads in parallel when the model, not OpenBLAS, does the threading.
    private let scores: UnsafeMutablePointer<Float>
    /// Per lane (``inverseSums(lane:)``), [block] 1 / softmax sum per query of the current block.
    private let inverseSums: UnsafeMutablePointer<Float>
    /// [T · H, 8] gate projections and [H, T] per-query gates.
    let gateProjections: UnsafeMutablePointer<Float>
    let gates: UnsafeMutablePointer<Float>
    /// [H, 2T − 1] relative position bias per head and relative offset.
    let biasByOffset: UnsafeMutablePointer<Float>
    /// The grouped positional convolution's [c, T + 2·pad] padded channel-major group input, the
    /// [c·K, tile] im2col matrix of a time tile and the group's [c, tile] output, one set per lane
    /// (``convChannels(lane:)`` …).
    private let convChannels: UnsafeMutablePointer<Float>
    private let convColumns: UnsafeMutablePointer<Float>
    private let convGroupOutput: UnsafeMutablePointer<Float>
    /// Head scratch: [T, D] hidden; [T, classes] or [T, quant_dim] + [T, codes] outputs.
    let headHidden: UnsafeMutablePointer<Float>
    let headOutput: UnsafeMutablePointer<Float>
    /// Quantized activations of the int8 Linears (empty for float models).
    let int8Scratch: Int8Scratch

    /// Queries per attention block and time steps per positional-conv tile: a 10 s clip (496
    /// tokens) fits in one of the default 512; longer clips are processed in pieces, so memory
    /// stays linear in T.
    let blockRows: Int
    static let defaultBlockRows = 512
    /// Sets of the per-lane buffers above.
    let lanes: Int
    private let convChannelsCount: Int, convColumnsCount: Int, convGroupOutputCount: Int

    private let allocation: UnsafeMutableRawPointer
    let byteCount: Int

    init(dimensions dims: ModelDimensions, head: ModelHead, feedForwardWidth: Int, tokens: Int,
         blockRows: Int = ForwardArena.defaultBlockRows, lanes: Int = 1, int8Columns: Int = 0) {
        let T = max(tokens, 1)
        capacityTokens = T
        let D = dims.modelDim
        var headWidth = 1
        switch head {
        case .features: break
        case .classifier(let predictor): headWidth = predictor.outputs
        case .tokenizer(_, let projection, let codebook, _): headWidth = projection.outputs + codebook.shape[0]
        }
        let block = min(T, max(1, blockRows))
        self.blockRows = block
        let lanes = max(1, lanes)
        self.lanes = lanes
        convChannelsCount = dims.groupChannels * (T + 2 * dims.convPadding)
        convColumnsCount = block * dims.groupChannels * dims.convKernel
        convGroupOutputCount = dims.groupChannels * block

        // Offsets in floats, each region rounded up to 16 floats (64 bytes).
        var total = 0
        func region(_ count: Int) -> Int {
            let start = total
            total += (count + 15) / 16 * 16
            return start
        }
        let patchesAt = region(T * dims.patchArea), embeddedAt = region(T * dims.embedDim)
        let hiddenAt = region(T * D), queryAt = region(T * D), keyAt = region(T * D), valueAt = region(T * D)
        let contextAt = region(T * D), projectedAt = region(T * D)
        let feedForwardAt = region(T * feedForwardWidth)
        // Only GLU feed-forwards (fc1 twice as wide as ffn) need a separate output.
        let gluOutputAt = region(feedForwardWidth > dims.feedForwardDim ? T * dims.feedForwardDim : 0)
        let scoresAt = region(lanes * block * T), inverseSumsAt = region(lanes * block)
        let gateProjectionsAt = region(T * dims.heads * 8), gatesAt = region(dims.heads * T)
        let biasByOffsetAt = region(dims.heads * (2 * T - 1))
        let convChannelsAt = region(lanes * convChannelsCount)
        let convColumnsAt = region(lanes * convColumnsCount)
        let convGroupOutputAt = region(lanes * convGroupOutputCount)
        let headHiddenAt = region(T * D), headOutputAt = region(T * headWidth)
        // int8 activations take a quarter of a float each; their row scales one float per token.
        let int8ValuesAt = region(int8Columns > 0 ? (T * int8Columns + 3) / 4 : 0)
        let int8ScalesAt = region(int8Columns > 0 ? T : 0)

        byteCount = total * MemoryLayout<Float>.stride
        allocation = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 64), alignment: 64)
        allocation.initializeMemory(as: Float.self, repeating: 0, count: total)
        let base = allocation.assumingMemoryBound(to: Float.self)
        patches = base + patchesAt
        embedded = base + embeddedAt
        hidden = base + hiddenAt
        query = base + queryAt
        key = base + keyAt
        value = base + valueAt
        context = base + contextAt
        projected = base + projectedAt
        feedForward = base + feedForwardAt
        gluOutput = base + gluOutputAt
        scores = base + scoresAt
        inverseSums = base + inverseSumsAt
        gateProjections = base + gateProjectionsAt
        gates = base + gatesAt
        biasByOffset = base + biasByOffsetAt
        convChannels = base + convChannelsAt
        convColumns = base + convColumnsAt
        convGroupOutput = base + convGroupOutputAt
        headHidden = base + headHiddenAt
        headOutput = base + headOutputAt
        int8Scratch = Int8Scratch(values: UnsafeMutableRawPointer(base + int8ValuesAt).bindMemory(to: Int8.self, capacity: T * int8Columns),
                                  scales: base + int8ScalesAt, rows: int8Columns > 0 ? T : 0, columns: int8Columns)
    }

    deinit { allocation.deallocate() }

    func scores(lane: Int) -> UnsafeMutablePointer<Float> { scores + lane * blockRows * capacityTokens }
    func inverseSums(lane: Int) -> UnsafeMutablePointer<Float> { inverseSums + lane * blockRows }
    func convChannels(lane: Int) -> UnsafeMutablePointer<Float> { convChannels + lane * convChannelsCount }
    func convColumns(lane: Int) -> UnsafeMutablePointer<Float> { convColumns + lane * convColumnsCount }
    func convGroupOutput(lane: Int) -> UnsafeMutablePointer<Float> { convGroupOutput + lane * convGroupOutputCount }
}

/// Arenas waiting for the next forward pass of one model. A pass takes one (or makes one when
/// none is free or the free ones are too small for its clip) and gives it back when done, so a
/// model serving N calls at once holds at most N arenas, and a model used one call at a time
/// reuses one arena and allocates nothing per call.
final class ArenaPool: @unchecked Sendable {
    private let lock = NSLock()
    private var free: [ForwardArena] = []
    private let make: @Sendable (_ tokens: Int) -> ForwardArena

    /// `make(tokens)` builds an arena for at least `tokens` tokens.
    init(make: @escaping @Sendable (_ tokens: Int) -> ForwardArena) {
        self.make = make
    }

    /// Runs `body` with an arena of at least `tokens` tokens that no other pass uses meanwhile.
    func withArena<Result>(tokens: Int, _ body: (ForwardArena) throws -> Result) rethrows -> Result {
        let arena = take(tokens: tokens)
        defer { giveBack(arena) }
        return try body(arena)
    }

    /// Arenas currently idle (for tests).
    var idleCount: Int { lock.withLock { free.count } }

    private func take(tokens: Int) -> ForwardArena {
        let reused: ForwardArena? = lock.withLock {
            guard let index = free.lastIndex(where: { $0.capacityTokens >= tokens }) else {
                // None fits: drop one too small (it would only be replaced later) and make one.
                if !free.isEmpty { free.removeLast() }
                return nil
            }
            return free.remove(at: index)
        }
        return reused ?? make(tokens)
    }

    private func giveBack(_ arena: ForwardArena) {
        lock.withLock { free.append(arena) }
    }
}
