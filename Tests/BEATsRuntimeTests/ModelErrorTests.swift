import BEATsCheckpoint
import BEATsCore
@testable import BEATsRuntime
import BEATsTestSupport
import Testing

/// What the model refuses, and how it says so.
@Suite("Model errors")
struct ModelErrorTests {
    static func tinyCopy(_ name: String = "tiny") throws -> InMemoryWeightStore {
        try InMemoryWeightStore.copy(of: PyTorchCheckpoint.open(path: Fixtures.path("models/\(name).pt")))
    }

    @Test("OpenBLAS that cannot be loaded is a typed error naming every file tried")
    func missingOpenBLAS() throws {
        let result = OpenBLAS.load(candidates: ["/nonexistent/libopenblas.so.0", "libno-such-blas.so"])
        guard case .failure(let error) = result else {
            Issue.record("loaded a library that does not exist")
            return
        }
        #expect(error.description.hasPrefix("model: cannot load OpenBLAS (install libopenblas0, or set BEATS_OPENBLAS to its path): "))
        #expect(error.description.contains("/nonexistent/libopenblas.so.0"))
        #expect(error.description.contains("libno-such-blas.so"))
        // A library without cblas_sgemm (libz, always there for the checkpoint reader) is refused too.
        guard case .failure(let noBLAS) = OpenBLAS.load(candidates: ["libz.so.1"]) else {
            Issue.record("took libz for OpenBLAS")
            return
        }
        #expect(noBLAS == .blasUnavailable("libz.so.1: no cblas_sgemm"))
        // The real one loads, and answers.
        let library = try OpenBLAS.load().get()
        #expect(library.configuration != nil && library.coreName != nil)
    }

    @Test("a missing tensor is named")
    func missingTensor() throws {
        let store = try Self.tinyCopy()
        store.remove("encoder.layers.1.fc2.bias")
        #expect(throws: ModelError.missingTensor(name: "encoder.layers.1.fc2.bias")) { try BEATsNetwork(weights: store) }
        #expect(ModelError.missingTensor(name: "encoder.layers.1.fc2.bias").description
            == "model: tensor 'encoder.layers.1.fc2.bias' is missing")
    }

    @Test("a missing positional conv weight names the folded weight")
    func missingPositionalConv() throws {
        let store = try Self.tinyCopy()
        store.remove("encoder.pos_conv.0.weight_g")
        store.remove("encoder.pos_conv.0.weight_v")
        #expect(throws: ModelError.missingTensor(name: "encoder.pos_conv.0.weight")) { try BEATsNetwork(weights: store) }
        let halfMissing = try Self.tinyCopy()
        halfMissing.remove("encoder.pos_conv.0.weight_g")
        #expect(throws: ModelError.missingTensor(name: "encoder.pos_conv.0.weight_g")) { try BEATsNetwork(weights: halfMissing) }
    }

    @Test("a wrong shape gives the tensor, the expected and the actual shape")
    func wrongShape() throws {
        let store = try Self.tinyCopy()
        store.set("encoder.layers.0.fc1.weight", .init(shape: [64, 128], values: [Float](repeating: 0, count: 64 * 128)))
        let error = ModelError.shapeMismatch(tensor: "encoder.layers.0.fc1.weight", expected: [128, 64], actual: [64, 128])
        #expect(throws: error) { try BEATsNetwork(weights: store) }
        #expect(error.description == "model: tensor 'encoder.layers.0.fc1.weight' has shape [64, 128], expected [128, 64]")

        let grep = try Self.tinyCopy()
        grep.set("encoder.layers.1.self_attn.grep_a", .init(shape: [4], values: [1, 1, 1, 1]))
        #expect(throws: ModelError.shapeMismatch(tensor: "encoder.layers.1.self_attn.grep_a", expected: [1, 4, 1, 1], actual: [4])) {
            try BEATsNetwork(weights: grep)
        }
    }

    @Test("integer weights are refused")
    func integerWeights() throws {
        let store = try Self.tinyCopy()
        store.set("layer_norm.weight", .init(shape: [48], values: [Float](repeating: 1, count: 48), dtype: .int64))
        #expect(throws: ModelError.unsupportedDType(tensor: "layer_norm.weight", dtype: .int64)) { try BEATsNetwork(weights: store) }
    }

    @Test("configs the architecture cannot be built with")
    func invalidConfigs() throws {
        func store(_ change: (inout BEATsConfig) -> Void) -> InMemoryWeightStore {
            var config = ModelBranchTests.tinyConfig()
            change(&config)
            return InMemoryWeightStore(kind: .pretrained, config: config)
        }
        #expect(throws: ModelError.invalidConfig(key: "encoder_attention_heads", value: "5", reason: "must divide encoder_embed_dim 64")) {
            try BEATsNetwork(weights: store { $0.encoderAttentionHeads = 5 })
        }
        #expect(throws: ModelError.invalidConfig(key: "input_patch_size", value: "-1", reason: "must be between 1 and 128")) {
            try BEATsNetwork(weights: store { $0.inputPatchSize = -1 })
        }
        #expect(throws: ModelError.invalidConfig(key: "activation_fn", value: "swish",
                                                 reason: "expected gelu, gelu_fast, gelu_accurate, relu, tanh, linear or glu")) {
            try BEATsNetwork(weights: store { $0.activationFn = "swish" })
        }
        #expect(throws: ModelError.invalidConfig(key: "deep_norm", value: "true",
                                                 reason: "cannot be combined with layer_norm_first (the official code asserts this)")) {
            try BEATsNetwork(weights: store { $0.layerNormFirst = true })
        }
        #expect(throws: ModelError.invalidConfig(key: "conv_pos_groups", value: "3", reason: "must divide encoder_embed_dim 64")) {
            try BEATsNetwork(weights: store { $0.convPosGroups = 3 })
        }
    }

    @Test("inputs: fbank size, clips shorter than a patch, the wrong head")
    func badInputs() throws {
        let model = try BEATsNetwork(weights: PyTorchCheckpoint.open(path: Fixtures.path("models/tiny.pt")))
        #expect(throws: ModelError.fbankSizeMismatch(frames: 20, expectedValues: 2560, actualValues: 2559)) {
            try model.features(fbank: [Float](repeating: 0, count: 2559), frames: 20)
        }
        #expect(throws: ModelError.tooFewFrames(frames: 15, minimum: 16)) {
            try model.features(fbank: [Float](repeating: 0, count: 15 * 128), frames: 15)
        }
        #expect(throws: ModelError.wrongKind(operation: "probabilities", kind: .pretrained)) {
            try model.probabilities(fbank: [Float](repeating: 0, count: 16 * 128), frames: 16)
        }
        #expect(throws: ModelError.wrongKind(operation: "tokens", kind: .pretrained)) {
            try model.tokens(fbank: [Float](repeating: 0, count: 16 * 128), frames: 16)
        }
        let bounded = try BEATsNetwork(weights: PyTorchCheckpoint.open(path: Fixtures.path("models/tiny.pt")), maximumFrames: 100)
        #expect(throws: ModelError.tooManyFrames(frames: 101, maximum: 100)) {
            try bounded.features(fbank: [Float](repeating: 0, count: 101 * 128), frames: 101)
        }
        #expect(try bounded.features(fbank: [Float](repeating: 0, count: 100 * 128), frames: 100).tokens == 48)
        // Exactly one patch works: 8 tokens.
        #expect(try model.features(fbank: [Float](repeating: 0, count: 16 * 128), frames: 16).tokens == 8)
        #expect(ModelError.tooFewFrames(frames: 15, minimum: 16).description
            == "model: 15 fbank frames are fewer than one patch (16 frames)")
    }
}
