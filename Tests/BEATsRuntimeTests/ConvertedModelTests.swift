import BEATsCheckpoint
import BEATsCore
import BEATsFormat
@testable import BEATsRuntime
import BEATsTestSupport
import Foundation
import Testing

/// The runtime on converted native files: float32 files keep parity with the official code, int8
/// files stay within the accuracy the product promises (cosine ≥ 0.999 against float32 features,
/// the same top-5 AudioSet classes) and really run on the int8 kernels.
@Suite("Runtime on converted files (float32 and int8)")
struct ConvertedModelTests {
    /// Converts a fixture checkpoint into a temporary native file and opens it.
    static func converted(_ name: String, int8: Bool) throws -> NativeModelFile {
        let folder = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("\(name)-\(int8 ? "int8" : "f32").beatsw").path
        let source = try PyTorchCheckpoint.open(path: Fixtures.path("models/\(name).pt"))
        _ = try NativeConverter.convert(source, to: path, options: ConversionOptions(quantizeInt8: int8))
        // The map stays valid after the directory entry is removed.
        return try NativeModelFile.open(path: path)
    }

    static func fbank(_ clip: String) throws -> (values: [Float], frames: Int) {
        let view = try Fixtures.reference("fbank/\(clip)")
        return (try view.floats(), view.shape[1])
    }

    static func cosine(_ a: [Float], _ b: [Float]) -> Double {
        var dot = 0.0, normA = 0.0, normB = 0.0
        for (x, y) in zip(a, b) {
            dot += Double(x) * Double(y)
            normA += Double(x) * Double(x)
            normB += Double(y) * Double(y)
        }
        return dot / (normA.squareRoot() * normB.squareRoot())
    }

    static func topClasses(_ probabilities: [Float], _ count: Int) -> [Int] {
        Array(probabilities.indices.sorted { probabilities[$0] > probabilities[$1] }.prefix(count))
    }

    @Test("float32 native file: features within 1e-4 of the official output", arguments: Fixtures.clips)
    func float32Features(clip: String) throws {
        let model = try BEATsNetwork(weights: Self.converted("tiny", int8: false))
        #expect(model.usesWeightsInPlace)
        let (fbank, frames) = try Self.fbank(clip)
        let output = try model.features(fbank: fbank, frames: frames)
        let expected = try Fixtures.reference("tiny/\(clip)").floats()
        #expect(output.values.count == expected.count)
        let worst = zip(output.values, expected).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst <= 1e-4, "max abs error \(worst)")
    }

    @Test("float32 native file: probabilities within 1e-5, tokens ≥ 99 % identical", arguments: Fixtures.clips)
    func float32Heads(clip: String) throws {
        let (fbank, frames) = try Self.fbank(clip)
        let probabilities = try BEATsNetwork(weights: Self.converted("tiny_ft", int8: false)).probabilities(fbank: fbank, frames: frames)
        let expectedProbabilities = try Fixtures.reference("tiny_ft/\(clip)").floats()
        let worst = zip(probabilities, expectedProbabilities).map { abs($0 - $1) }.max() ?? .infinity
        #expect(probabilities.count == 527 && worst <= 1e-5, "max abs error \(worst)")

        let tokens = try BEATsNetwork(weights: Self.converted("tiny_tok", int8: false)).tokens(fbank: fbank, frames: frames)
        let expectedTokens = try Fixtures.reference("tiny_tok/\(clip)").integers()
        let same = zip(tokens, expectedTokens).filter { $0 == $1 }.count
        #expect(tokens.count == expectedTokens.count && Double(same) >= 0.99 * Double(expectedTokens.count))
    }

    @Test("int8 native file: features cosine ≥ 0.999 against float32, on the int8 kernels", arguments: Fixtures.clips)
    func int8Features(clip: String) throws {
        let weights = try Self.converted("tiny", int8: true)
        #expect(try weights.quantizedMatrix(named: "encoder.layers.0.fc1.weight") != nil)
        let model = try BEATsNetwork(weights: weights)
        let (fbank, frames) = try Self.fbank(clip)
        let int8 = try model.features(fbank: fbank, frames: frames).values
        let float32 = try Fixtures.reference("tiny/\(clip)").floats()
        let similarity = Self.cosine(int8, float32)
        #expect(similarity >= 0.999, "cosine \(similarity)")
        // The int8 path really ran: its output differs from the float32 one.
        #expect(zip(int8, float32).contains { $0 != $1 })
    }

    @Test("int8 native file: 2 threads (attention heads and conv groups in parallel lanes) give the 1-thread output exactly")
    func int8LanesMatchOneThread() throws {
        let weights = try Self.converted("tiny_ft", int8: true)
        let (fbank, frames) = try Self.fbank("speech")
        // Blocks of 37 rows also split every head's queries and the conv's time into tiles (on
        // both sides: OpenBLAS may round differently for another tile width).
        for blockRows in [512, 37] {
            let single = try BEATsNetwork(weights: weights, threads: 1, capacityFrames: 1024, maximumFrames: 65_536, blockRows: blockRows)
                .features(fbank: fbank, frames: frames).values
            let model = try BEATsNetwork(weights: weights, threads: 2, capacityFrames: 1024, maximumFrames: 65_536, blockRows: blockRows)
            let lanes = try model.features(fbank: fbank, frames: frames).values
            let differing = zip(lanes, single).filter { $0.bitPattern != $1.bitPattern }.count
            let worst = zip(lanes, single).map { abs($0 - $1) }.max() ?? 0
            #expect(differing == 0, "blocks of \(blockRows): \(differing) of \(single.count) values differ, by up to \(worst)")
        }
    }

    @Test("int8 native file: same top-5 AudioSet classes as float32", arguments: Fixtures.clips)
    func int8TopClasses(clip: String) throws {
        let (fbank, frames) = try Self.fbank(clip)
        let int8 = try BEATsNetwork(weights: Self.converted("tiny_ft", int8: true)).probabilities(fbank: fbank, frames: frames)
        let float32 = try Fixtures.reference("tiny_ft/\(clip)").floats()
        #expect(Set(Self.topClasses(int8, 5)) == Set(Self.topClasses(float32, 5)))
    }
}
