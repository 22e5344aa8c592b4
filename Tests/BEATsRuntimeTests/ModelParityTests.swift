import BEATsCheckpoint
import BEATsCore
@testable import BEATsRuntime
import BEATsTestSupport
import Testing

/// The float32 runtime against the official code's outputs (Fixtures/ref), fed the official fbank.
@Suite("Model parity with the official BEATs")
struct ModelParityTests {
    static func fbank(_ clip: String) throws -> (values: [Float], frames: Int) {
        let view = try Fixtures.reference("fbank/\(clip)")
        #expect(view.shape.count == 3 && view.shape[0] == 1 && view.shape[2] == 128)
        return (try view.floats(), view.shape[1])
    }

    static func model(_ name: String, threads: Int = 1) throws -> BEATsNetwork {
        try BEATsNetwork(weights: PyTorchCheckpoint.open(path: Fixtures.path("models/\(name).pt")), threads: threads)
    }

    @Test("tiny: features within 1e-4 of extract_features", arguments: Fixtures.clips)
    func features(clip: String) throws {
        let model = try Self.model("tiny")
        let (fbank, frames) = try Self.fbank(clip)
        let output = try model.features(fbank: fbank, frames: frames)
        let reference = try Fixtures.reference("tiny/\(clip)")
        #expect(output.tokens == (frames / 16) * 8)
        #expect(reference.shape == [1, output.tokens, output.dim])
        let expected = try reference.floats()
        #expect(expected.count == output.values.count)
        let worst = zip(output.values, expected).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst <= 1e-4, "max abs error \(worst)")
    }

    @Test("tiny_ft: probabilities within 1e-5", arguments: Fixtures.clips)
    func probabilities(clip: String) throws {
        let model = try Self.model("tiny_ft")
        let (fbank, frames) = try Self.fbank(clip)
        let output = try model.probabilities(fbank: fbank, frames: frames)
        let reference = try Fixtures.reference("tiny_ft/\(clip)")
        #expect(reference.shape == [1, 527])
        let expected = try reference.floats()
        #expect(output.count == expected.count)
        let worst = zip(output, expected).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst <= 1e-5, "max abs error \(worst)")
    }

    @Test("tiny_tok: at least 99 % of tokens identical", arguments: Fixtures.clips)
    func tokens(clip: String) throws {
        let model = try Self.model("tiny_tok")
        let (fbank, frames) = try Self.fbank(clip)
        let output = try model.tokens(fbank: fbank, frames: frames)
        let expected = try Fixtures.reference("tiny_tok/\(clip)").integers()
        #expect(output.count == (frames / 16) * 8)
        #expect(output.count == expected.count)
        let same = zip(output, expected).filter { $0 == $1 }.count
        #expect(Double(same) >= 0.99 * Double(expected.count), "\(same) of \(expected.count) identical")
    }
}
