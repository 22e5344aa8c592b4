import BEATs
import BEATsTestSupport
import Foundation
import Testing

@Suite("BEATsModel: files in, typed results out")
struct ModelTests {
    static func url(_ relative: String) throws -> URL { URL(fileURLWithPath: try Fixtures.path(relative)) }

    @Test("classify ranks the official probabilities and names them from the file's labels")
    func classify() throws {
        let model = try BEATsModel(contentsOf: Self.url("models/tiny_ft.pt"))
        #expect(model.kind == .finetuned)
        #expect(model.classLabels.count == 527)
        let labels = try model.classify(contentsOf: Self.url("audio/speech.wav"), top: 5)
        let official = try Fixtures.reference("tiny_ft/speech").floats()
        let expectedOrder = official.indices.sorted { official[$0] > official[$1] }.prefix(5)
        #expect(labels.map(\.index) == Array(expectedOrder))
        for label in labels {
            #expect(abs(label.probability - official[label.index]) <= 1e-5)
            #expect(label.mid == model.classLabels[label.index].mid)
            #expect(label.name == model.classLabels[label.index].name)
        }
        #expect(zip(labels, labels.dropFirst()).allSatisfy { $0.probability >= $1.probability })
    }

    @Test("features and tokens equal the official outputs", arguments: ["speech", "noise", "short"])
    func featuresAndTokens(clip: String) throws {
        let audio = try AudioClip(contentsOf: Self.url("audio/\(clip).wav"))
        let features = try BEATsModel(contentsOf: Self.url("models/tiny.pt")).features(of: audio)
        let official = try Fixtures.reference("tiny/\(clip)")
        #expect([1, features.tokenCount, features.dimension] == official.shape)
        #expect(zip(features.values, try official.floats()).map { abs($0 - $1) }.max() ?? 1 <= 1e-4)
        let tokens = try BEATsModel(contentsOf: Self.url("models/tiny_tok.pt")).tokens(of: audio)
        let officialTokens = try Fixtures.reference("tiny_tok/\(clip)").integers().map { Int($0) }
        #expect(OutputComparison.agreement(tokens, officialTokens) >= 0.99)
    }

    @Test("a converted native file gives what its checkpoint gives")
    func nativeFile() throws {
        let directory = try Fixtures.temporaryDirectory()
        let converted = directory.appendingPathComponent("tiny_ft.beatsw").path
        var options = ConversionOptions()
        options.durable = false
        _ = try ModelConversion.convert(try Fixtures.path("models/tiny_ft.pt"), to: converted, options: options)
        let clip = try AudioClip(contentsOf: Self.url("audio/speech.wav"))
        let fromCheckpoint = try BEATsModel(contentsOf: Self.url("models/tiny_ft.pt")).probabilities(for: clip)
        let native = try BEATsModel(path: converted)
        #expect(native.fileFormat == NativeFormat.name)
        #expect(try native.probabilities(for: clip) == fromCheckpoint)
    }

    @Test("asking a model for another kind's output says which kind it needs")
    func wrongKind() throws {
        let model = try BEATsModel(contentsOf: Self.url("models/tiny.pt"))
        let clip = try AudioClip(contentsOf: Self.url("audio/speech.wav"))
        #expect(throws: BEATsError.wrongKind(operation: "classify", needs: .finetuned, model: try Fixtures.path("models/tiny.pt"), kind: .pretrained)) {
            try model.classify(clip)
        }
    }

    @Test("audio given as a model is named as audio")
    func audioAsModel() throws {
        let path = try Fixtures.path("audio/speech.wav")
        #expect(throws: BEATsError.audioInsteadOfModel(path: path, format: "WAV")) { try BEATsModel(path: path) }
    }

    @Test("audio shorter than one patch is refused in seconds, naming the source")
    func tooShort() throws {
        let model = try BEATsModel(contentsOf: Self.url("models/tiny.pt"))
        let clip = AudioClip(sampleRate: 16_000, samples: [Float](repeating: 0.1, count: 1600))
        #expect(throws: AudioError.tooShort(path: nil, samples: 1600, minimum: 2800, purpose: "one BEATs patch")) { try model.output(for: clip) }
        let error = AudioError.tooShort(path: "a.wav", samples: 1600, minimum: 2800, purpose: "one BEATs patch")
        #expect(error.description == "a.wav: audio is 0.10 s (1600 samples at 16 kHz); one BEATs patch needs at least 0.175 s (2800 samples)")
    }

    @Test("a clip at another rate is resampled to 16 kHz first")
    func resampling() throws {
        let model = try BEATsModel(contentsOf: Self.url("models/tiny.pt"))
        let clip16k = try AudioClip(contentsOf: Self.url("audio/speech.wav"))
        // Keeping every sample and calling it 16 kHz is the identity; the output must match.
        let same = AudioClip(sampleRate: 16_000, samples: clip16k.samples)
        #expect(try model.output(for: same) == model.output(for: clip16k))
    }
}

@Suite("BEATsModel: clips of one length in one pass")
struct BatchTests {
    /// Six 1 s slices of speech and noise at different offsets: one length, different content.
    static func clips() throws -> [AudioClip] {
        let speech = try AudioClip(contentsOf: URL(fileURLWithPath: Fixtures.path("audio/speech.wav"))).samples
        let noise = try AudioClip(contentsOf: URL(fileURLWithPath: Fixtures.path("audio/noise.wav"))).samples
        return [0, 8000, 24_000].flatMap { offset in
            [speech, noise].map { AudioClip(sampleRate: 16_000, samples: Array($0[offset..<(offset + 16_000)])) }
        }
    }

    @Test("each clip's batched output equals its output alone",
          arguments: [("tiny", OutputRequest.official), ("tiny", .layer(1)), ("tiny", .meanPooled), ("tiny_ft", .official),
                      ("tiny_ft", .frameProbabilities), ("tiny_tok", .official)])
    func batchedEqualsAlone(model name: String, request: OutputRequest) throws {
        let model = try BEATsModel(path: Fixtures.path("models/\(name).pt"), configuration: .init(threads: 2))
        var clips = try Self.clips()
        clips.insert(AudioClip(sampleRate: 16_000, samples: [Float](repeating: 0.1, count: 1000)), at: 2)  // too short: fails alone
        let batched = model.outputs(for: clips, request: request)
        #expect(batched.count == clips.count)
        #expect(throws: AudioError.self) { try batched[2].get() }
        for index in clips.indices where index != 2 {
            let alone = try model.output(for: clips[index], request: request)
            let together = try batched[index].get()
            #expect(together.shape == alone.shape)
            if case .tokens(let tokens) = alone, case .tokens(let batchedTokens) = together {
                #expect(OutputComparison.agreement(batchedTokens, tokens) >= 0.99)
            } else {
                let difference = zip(together.floatValues ?? [], alone.floatValues ?? []).map { abs($0 - $1) }.max() ?? 1
                #expect(difference <= 2e-6, "clip \(index): \(difference)")
            }
        }
    }
}
