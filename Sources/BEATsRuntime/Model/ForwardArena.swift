/// Every buffer one forward pass needs, carved out of a single 64-byte aligned allocation sized
/// for a maximum number of tokens. The forward pass allocates nothing; a longer clip replaces
/// the arena with a larger one before the pass starts.
final class ForwardArena {
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
    /// [block, T] attention scores of one head for a block of queries.
    let scores: UnsafeMutablePointer<Float>
    /// [T · H, 8] gate projections and [H, T] per-query gates.
    let gateProjections: UnsafeMutablePointer<Float>
    let gates: UnsafeMutablePointer<Float>
    /// [H, 2T − 1] relative position bias per head and relative offset.
    let biasByOffset: UnsafeMutablePointer<Float>
    /// The grouped positional convolution's [c, T + 2·pad] padded channel-major group input, the
    /// [c·K, tile] im2col matrix of a time tile and the group's [c, tile] output.
    let convChannels: UnsafeMutablePointer<Float>
    let convColumns: UnsafeMutablePointer<Float>
    let convGroupOutput: UnsafeMutablePointer<Float>
    /// Head scratch: [T, D] hidden; [T, classes] or [T, quant_dim] + [T, codes] outputs.
    let headHidden: UnsafeMutablePointer<Float>
    let headOutput: UnsafeMutablePointer<Float>

    /// Queries per attention block and time steps per positional-conv tile: a 10 s clip (496
    /// tokens) fits in one of the default 512; longer clips are processed in pieces, so memory
    /// stays linear in T.
    let blockRows: Int
    static let defaultBlockRows = 512

    private let allocation: UnsafeMutableRawPointer
    let byteCount: Int

    init(dimensions dims: ModelDimensions, head: ModelHead, feedForwardWidth: Int, tokens: Int, blockRows: Int = ForwardArena.defaultBlockRows) {
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

        // Offsets in floats, each region rounded up to 16 floats (64 bytes).
        var total = 0
        func region(_ count: Int) -> Int {
            let start = total
            total += (count + 15) / 16 * 16
            return start
        }
        let offsets = [
            region(T * dims.patchArea), region(T * dims.embedDim), region(T * D),
            region(T * D), region(T * D), region(T * D), region(T * D), region(T * D),
            region(T * feedForwardWidth), region(T * dims.feedForwardDim),
            region(block * T),
            region(T * dims.heads * 8), region(dims.heads * T), region(dims.heads * (2 * T - 1)),
            region(dims.groupChannels * (T + 2 * dims.convPadding)), region(block * dims.groupChannels * dims.convKernel),
            region(dims.groupChannels * block),
            region(T * D), region(T * headWidth),
        ]
        byteCount = total * MemoryLayout<Float>.stride
        allocation = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 64), alignment: 64)
        allocation.initializeMemory(as: Float.self, repeating: 0, count: total)
        let base = allocation.assumingMemoryBound(to: Float.self)
        patches = base + offsets[0]
        embedded = base + offsets[1]
        hidden = base + offsets[2]
        query = base + offsets[3]
        key = base + offsets[4]
        value = base + offsets[5]
        context = base + offsets[6]
        projected = base + offsets[7]
        feedForward = base + offsets[8]
        gluOutput = base + offsets[9]
        scores = base + offsets[10]
        gateProjections = base + offsets[11]
        gates = base + offsets[12]
        biasByOffset = base + offsets[13]
        convChannels = base + offsets[14]
        convColumns = base + offsets[15]
        convGroupOutput = base + offsets[16]
        headHidden = base + offsets[17]
        headOutput = base + offsets[18]
    }

    deinit { allocation.deallocate() }
}
