import BEATsCheckpoint
import BEATsCore
@testable import BEATsRuntime
import BEATsTestSupport
import Testing

/// A weight store held in memory, with the official key names, for configs no fixture has.
final class InMemoryWeightStore: WeightStore, @unchecked Sendable {
    struct Entry {
        var shape: [Int]
        var values: [Float]
        var dtype: DType = .float32
    }

    let formatName = "memory"
    let kind: ModelKind
    let config: BEATsConfig
    let labels: [AudioSetLabel] = []
    private(set) var tensorNames: [String] = []
    private var entries: [String: Entry] = [:]

    init(kind: ModelKind, config: BEATsConfig) {
        self.kind = kind
        self.config = config
    }

    func set(_ name: String, _ entry: Entry) {
        if entries[name] == nil { tensorNames.append(name) }
        entries[name] = entry
    }

    func remove(_ name: String) {
        entries[name] = nil
        tensorNames.removeAll { $0 == name }
    }

    func entry(_ name: String) -> Entry? { entries[name] }

    /// Tensors built in memory carry no checksums.
    func verifyChecksums() throws {}

    func tensor(named name: String) throws -> TensorView? {
        guard let entry = entries[name] else { return nil }
        var bytes: [UInt8] = []
        switch entry.dtype {
        case .float32: bytes = entry.values.withUnsafeBytes { Array($0) }
        case .float16: bytes = entry.values.flatMap { value -> [UInt8] in
            let bits = FloatBits.floatToHalf(value)
            return [UInt8(bits & 0xFF), UInt8(bits >> 8)]
        }
        case .bfloat16: bytes = entry.values.flatMap { value -> [UInt8] in
            let bits = FloatBits.floatToBFloat16(value)
            return [UInt8(bits & 0xFF), UInt8(bits >> 8)]
        }
        case .int64: bytes = entry.values.flatMap { value -> [UInt8] in
            withUnsafeBytes(of: Int64(value).littleEndian) { Array($0) }
        }
        default: fatalError("test store: dtype \(entry.dtype) not supported")
        }
        return try TensorView(name: name, dtype: entry.dtype, shape: entry.shape, storage: ByteStorage(copying: bytes))
    }

    /// Copies every tensor of `store` (float tensors as float32 values).
    static func copy(of store: any WeightStore) throws -> InMemoryWeightStore {
        let copy = InMemoryWeightStore(kind: store.kind, config: store.config)
        for name in store.tensorNames {
            guard let view = try store.tensor(named: name), view.dtype.isFloatingPoint else { continue }
            copy.set(name, Entry(shape: view.shape, values: try view.floats()))
        }
        return copy
    }

    /// Random weights with the official names and shapes for `config`.
    static func random(kind: ModelKind, config: BEATsConfig, seed: UInt64, foldedPositionalConv: Bool = false) -> InMemoryWeightStore {
        var generator = SplitMix64(seed: seed)
        let store = InMemoryWeightStore(kind: kind, config: config)
        func uniform(_ count: Int, _ scale: Float, offset: Float = 0) -> [Float] {
            (0..<count).map { _ in offset + (generator.nextFloat() * 2 - 1) * scale }
        }
        func add(_ name: String, _ shape: [Int], scale: Float, offset: Float = 0) {
            store.set(name, Entry(shape: shape, values: uniform(shape.reduce(1, *), scale, offset: offset)))
        }
        func linear(_ prefix: String, inputs: Int, outputs: Int) {
            add("\(prefix).weight", [outputs, inputs], scale: (3 / Float(inputs)).squareRoot())
            add("\(prefix).bias", [outputs], scale: 0.05)
        }
        func layerNorm(_ prefix: String, _ width: Int) {
            add("\(prefix).weight", [width], scale: 0.1, offset: 1)
            add("\(prefix).bias", [width], scale: 0.05)
        }
        let (P, E, D, H, F) = (config.inputPatchSize, config.embedDim, config.encoderEmbedDim,
                               config.encoderAttentionHeads, config.encoderFFNEmbedDim)
        let (K, c) = (config.convPos, config.encoderEmbedDim / config.convPosGroups)
        add("patch_embedding.weight", [E, 1, P, P], scale: (3 / Float(P * P)).squareRoot())
        if config.convBias { add("patch_embedding.bias", [E], scale: 0.05) }
        layerNorm("layer_norm", E)
        if E != D { linear("post_extract_proj", inputs: E, outputs: D) }
        add("encoder.pos_conv.0.bias", [D], scale: 0.05)
        let g = uniform(K, 0.3, offset: 1), v = uniform(D * c * K, 1)
        if foldedPositionalConv {
            store.set("encoder.pos_conv.0.weight", Entry(shape: [D, c, K], values: PositionalConvWeightNorm.fold(gains: g.map(Double.init), direction: v, shape: [D, c, K])))
        } else {
            store.set("encoder.pos_conv.0.weight_g", Entry(shape: [1, 1, K], values: g))
            store.set("encoder.pos_conv.0.weight_v", Entry(shape: [D, c, K], values: v))
        }
        layerNorm("encoder.layer_norm", D)
        for layer in 0..<config.encoderLayers {
            let prefix = "encoder.layers.\(layer)"
            for projection in ["q_proj", "k_proj", "v_proj", "out_proj"] {
                linear("\(prefix).self_attn.\(projection)", inputs: D, outputs: D)
            }
            if config.gruRelPos {
                linear("\(prefix).self_attn.grep_linear", inputs: D / H, outputs: 8)
                add("\(prefix).self_attn.grep_a", [1, H, 1, 1], scale: 0.2, offset: 1)
            }
            if config.relativePositionEmbedding {
                add("\(prefix).self_attn.relative_attention_bias.weight", [config.numBuckets, H], scale: 1)
            }
            layerNorm("\(prefix).self_attn_layer_norm", D)
            if config.activationFn == "glu" {
                linear("\(prefix).fc1.linear", inputs: D, outputs: 2 * F)
            } else {
                linear("\(prefix).fc1", inputs: D, outputs: F)
            }
            linear("\(prefix).fc2", inputs: F, outputs: D)
            layerNorm("\(prefix).final_layer_norm", D)
        }
        switch kind {
        case .pretrained: break
        case .finetuned: linear("predictor", inputs: D, outputs: config.predictorClass)
        case .tokenizer:
            linear("quantize_layer.0", inputs: D, outputs: D)
            linear("quantize_layer.2", inputs: D, outputs: config.quantDim)
            add("quantize.embedding.weight", [config.quantN, config.quantDim], scale: 1)
        }
        return store
    }
}

/// Every config branch of the official code, runtime (float32) against the float64 reference
/// transcription, which is itself checked against the official outputs.
@Suite("Model config branches against a float64 transcription of the official code")
struct ModelBranchTests {
    static func speechFbank(frames: Int? = nil) throws -> (values: [Float], frames: Int) {
        let view = try Fixtures.reference("fbank/speech")
        let all = try view.floats()
        let count = min(frames ?? view.shape[1], view.shape[1])
        return (Array(all[0..<(count * 128)]), count)
    }

    static func tinyConfig() -> BEATsConfig {
        var config = BEATsConfig()
        config.inputPatchSize = 16
        config.embedDim = 48
        config.encoderLayers = 2
        config.encoderEmbedDim = 64
        config.encoderFFNEmbedDim = 128
        config.encoderAttentionHeads = 4
        config.deepNorm = true
        config.convPos = 16
        config.convPosGroups = 4
        config.relativePositionEmbedding = true
        config.numBuckets = 32
        config.maxDistance = 64
        config.gruRelPos = true
        return config
    }

    static func maxError(_ a: [Float], _ b: [[Double]]) -> Double {
        zip(a, b.flatMap { $0 }).map { abs(Double($0) - $1) }.max() ?? .infinity
    }

    /// Two runtime outputs that must agree up to float32 rounding: OpenBLAS's summation order
    /// depends on the GEMM's shape and its thread count (process-wide, and other tests running
    /// at the same time change it), so runs of the same maths differ by a few ulp, not more.
    static func sameUpToRounding(_ a: [Float], _ b: [Float]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= 1e-5 }
    }

    @Test("the float64 transcription reproduces the official tiny outputs")
    func referenceMatchesOfficial() throws {
        let (fbank, frames) = try Self.speechFbank()
        let store = try PyTorchCheckpoint.open(path: Fixtures.path("models/tiny.pt"))
        let features = try ReferenceImplementation(store: store).encode(fbank: fbank, frames: frames)
        let official = try Fixtures.reference("tiny/speech").floats()
        #expect(Self.maxError(official, features) <= 1e-4)

        let classifier = try ReferenceImplementation(store: PyTorchCheckpoint.open(path: Fixtures.path("models/tiny_ft.pt")))
        let probabilities = classifier.probabilities(fbank: fbank, frames: frames)
        let officialProbabilities = try Fixtures.reference("tiny_ft/speech").floats()
        #expect(Self.maxError(officialProbabilities, [probabilities]) <= 1e-5)

        let tokenizer = try ReferenceImplementation(store: PyTorchCheckpoint.open(path: Fixtures.path("models/tiny_tok.pt")))
        let tokens = tokenizer.tokens(fbank: fbank, frames: frames)
        let officialTokens = try Fixtures.reference("tiny_tok/speech").integers()
        #expect(Double(zip(tokens, officialTokens).filter { $0 == $1 }.count) >= 0.99 * Double(officialTokens.count))
    }

    struct Variant: Sendable, CustomTestStringConvertible {
        let name: String
        let kind: ModelKind
        let change: @Sendable (inout BEATsConfig) -> Void
        var testDescription: String { name }
    }

    static let variants: [Variant] = [
        Variant(name: "pre-LN, relu, odd conv kernel, conv bias, no projection, no relative positions", kind: .pretrained) {
            $0.layerNormFirst = true
            $0.deepNorm = false
            $0.activationFn = "relu"
            $0.convPos = 15
            $0.convPosGroups = 8
            $0.convBias = true
            $0.embedDim = 64
            $0.relativePositionEmbedding = false
            $0.gruRelPos = false
        },
        Variant(name: "post-LN without deep norm, ungated relative positions, patch 8, gelu_accurate", kind: .pretrained) {
            $0.deepNorm = false
            $0.gruRelPos = false
            $0.inputPatchSize = 8
            $0.encoderAttentionHeads = 8
            $0.activationFn = "gelu_accurate"
            $0.convPosGroups = 2
            $0.encoderLayers = 3
        },
        Variant(name: "deep norm, gated relative positions (the official layout)", kind: .pretrained) { _ in },
        Variant(name: "gru_rel_pos without relative positions (gate unused)", kind: .pretrained) {
            $0.relativePositionEmbedding = false
        },
        Variant(name: "tanh activation, patch 32, 2 heads, 10 buckets", kind: .pretrained) {
            $0.activationFn = "tanh"
            $0.inputPatchSize = 32
            $0.encoderAttentionHeads = 2
            $0.numBuckets = 10
            $0.maxDistance = 20
        },
        Variant(name: "linear activation, one layer, conv kernel 1", kind: .pretrained) {
            $0.activationFn = "linear"
            $0.encoderLayers = 1
            $0.convPos = 1
            $0.convPosGroups = 1
        },
        Variant(name: "GLU feed-forward, fine-tuned head", kind: .finetuned) {
            $0.activationFn = "glu"
            $0.deepNorm = false
            $0.predictorClass = 10
        },
        Variant(name: "tokenizer, pre-LN", kind: .tokenizer) {
            $0.layerNormFirst = true
            $0.deepNorm = false
            $0.quantN = 32
            $0.quantDim = 8
        },
    ]

    @Test("runtime equals the float64 transcription", arguments: variants)
    func variant(_ variant: Variant) throws {
        var config = Self.tinyConfig()
        variant.change(&config)
        let store = InMemoryWeightStore.random(kind: variant.kind, config: config, seed: 42)
        let reference = try ReferenceImplementation(store: store)
        let (fbank, frames) = try Self.speechFbank(frames: 128)
        // One thread, two threads, and attention/conv processed in blocks of 37 rows.
        for (threads, blockRows) in [(1, 512), (2, 512), (2, 37)] {
            let model = try BEATsNetwork(weights: store, threads: threads, capacityFrames: 1024, maximumFrames: 65_536,
                                       blockRows: blockRows)
            switch variant.kind {
            case .pretrained:
                let output = try model.features(fbank: fbank, frames: frames)
                let expected = reference.encode(fbank: fbank, frames: frames)
                #expect(output.tokens == (frames / config.inputPatchSize) * (128 / config.inputPatchSize))
                #expect(output.tokens == expected.count && output.dim == config.encoderEmbedDim)
                #expect(Self.maxError(output.values, expected) <= 1e-4, "threads \(threads), blocks of \(blockRows)")
            case .finetuned:
                let output = try model.probabilities(fbank: fbank, frames: frames)
                let expected = reference.probabilities(fbank: fbank, frames: frames)
                #expect(output.count == config.predictorClass)
                #expect(Self.maxError(output, [expected]) <= 1e-5, "threads \(threads), blocks of \(blockRows)")
            case .tokenizer:
                let output = try model.tokens(fbank: fbank, frames: frames)
                let expected = reference.tokens(fbank: fbank, frames: frames)
                #expect(output.count == expected.count)
                #expect(Double(zip(output, expected).filter { $0 == $1 }.count) >= 0.99 * Double(expected.count))
            }
        }
    }

    @Test("attention in query blocks and the positional conv in time tiles match the official output")
    func blockedAttention() throws {
        let (fbank, frames) = try Self.speechFbank()
        let store = try PyTorchCheckpoint.open(path: Fixtures.path("models/tiny.pt"))
        let whole = try BEATsNetwork(weights: store).features(fbank: fbank, frames: frames).values
        let blocked = try BEATsNetwork(weights: store, threads: 2, capacityFrames: 64, maximumFrames: 65_536, blockRows: 50)
            .features(fbank: fbank, frames: frames).values
        let official = try Fixtures.reference("tiny/speech").floats()
        #expect(Self.sameUpToRounding(whole, blocked))
        #expect(zip(official, blocked).map { abs($0 - $1) }.max()! <= 1e-4)
    }

    @Test("a folded pos_conv weight (converted files) gives what weight_g/weight_v give")
    func foldedPositionalConv() throws {
        let config = Self.tinyConfig()
        let unfolded = InMemoryWeightStore.random(kind: .pretrained, config: config, seed: 5)
        let folded = InMemoryWeightStore.random(kind: .pretrained, config: config, seed: 5, foldedPositionalConv: true)
        #expect(folded.entry("encoder.pos_conv.0.weight_g") == nil && folded.entry("encoder.pos_conv.0.weight") != nil)
        let (fbank, frames) = try Self.speechFbank(frames: 160)
        let a = try BEATsNetwork(weights: unfolded).features(fbank: fbank, frames: frames).values
        let b = try BEATsNetwork(weights: folded).features(fbank: fbank, frames: frames).values
        #expect(Self.sameUpToRounding(a, b))
        // When a file has both, the folded weight wins.
        folded.set("encoder.pos_conv.0.weight_g", InMemoryWeightStore.Entry(shape: [1, 1, 16], values: [Float](repeating: 9, count: 16)))
        folded.set("encoder.pos_conv.0.weight_v", unfolded.entry("encoder.pos_conv.0.weight_v")!)
        #expect(Self.sameUpToRounding(try BEATsNetwork(weights: folded).features(fbank: fbank, frames: frames).values, b))
    }

    @Test("float16 and bfloat16 weights run as their float32 values", arguments: [DType.float16, .bfloat16])
    func halfPrecisionWeights(dtype: DType) throws {
        let tiny = try InMemoryWeightStore.copy(of: PyTorchCheckpoint.open(path: Fixtures.path("models/tiny.pt")))
        let half = InMemoryWeightStore(kind: tiny.kind, config: tiny.config)
        let rounded = InMemoryWeightStore(kind: tiny.kind, config: tiny.config)
        for name in tiny.tensorNames {
            var entry = tiny.entry(name)!
            entry.values = entry.values.map {
                dtype == .float16 ? FloatBits.halfToFloat(FloatBits.floatToHalf($0))
                    : FloatBits.bfloat16ToFloat(FloatBits.floatToBFloat16($0))
            }
            rounded.set(name, entry)
            entry.dtype = dtype
            half.set(name, entry)
        }
        let (fbank, frames) = try Self.speechFbank()
        let halfModel = try BEATsNetwork(weights: half)
        #expect(!halfModel.usesWeightsInPlace)
        #expect(Self.sameUpToRounding(try halfModel.features(fbank: fbank, frames: frames).values,
                                      try BEATsNetwork(weights: rounded).features(fbank: fbank, frames: frames).values))
    }

    @Test("aligned float32 checkpoint weights are used in place")
    func weightsInPlace() throws {
        var config = Self.tinyConfig()
        config.relativePositionEmbedding = true
        let store = InMemoryWeightStore.random(kind: .pretrained, config: config, seed: 3, foldedPositionalConv: true)
        #expect(try BEATsNetwork(weights: store).usesWeightsInPlace)
        // An official checkpoint keeps weight norm unfolded, so that one weight is computed at load.
        #expect(try !BEATsNetwork(weights: PyTorchCheckpoint.open(path: Fixtures.path("models/tiny.pt"))).usesWeightsInPlace)
    }

    @Test("a clip longer than the arena grows it, and results do not depend on earlier clips")
    func arenaGrowth() throws {
        let store = try PyTorchCheckpoint.open(path: Fixtures.path("models/tiny.pt"))
        let model = try BEATsNetwork(weights: store, threads: 2, capacityFrames: 16)
        let (fbank, frames) = try Self.speechFbank()
        let long = try model.features(fbank: fbank, frames: frames)
        let short = try model.features(fbank: Array(fbank[0..<(32 * 128)]), frames: 32)
        let again = try model.features(fbank: fbank, frames: frames)
        #expect(Self.sameUpToRounding(long.values, again.values))
        #expect(short.tokens == 16)
        let fresh = try BEATsNetwork(weights: store, threads: 2).features(fbank: Array(fbank[0..<(32 * 128)]), frames: 32)
        #expect(Self.sameUpToRounding(short.values, fresh.values))
        let pass = try model.forward(fbank: fbank, frames: frames)
        #expect(pass.output == .features(tokens: long.tokens, dim: long.dim, values: long.values))
        #expect(pass.stageTimes.map(\.name) == ["patch embedding", "positional conv", "layer 1", "layer 2", "head"])
        #expect(pass.stageTimes.allSatisfy { $0.seconds >= 0 })
        // Each pass gave its arena back: one call at a time keeps one arena (the grown one).
        #expect(model.arenas.idleCount == 1)
    }
}
