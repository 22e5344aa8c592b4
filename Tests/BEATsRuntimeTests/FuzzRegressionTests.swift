import BEATsCheckpoint
import BEATsCore
import BEATsRuntime
import BEATsTestSupport
import Testing

/// Audio inputs that once broke the CLI's promise (an answer or one `error:` line within a second,
/// in memory proportional to the file), kept in `Fixtures/fuzz-regressions/` (see its README), and
/// the loader's length limit just under and just over.
@Suite("Fuzz regressions: audio loader")
struct AudioFuzzRegressionTests {
    @Test("a 1.4 KB WAV claiming 1 Hz is refused before it is resampled to 11.2 M samples")
    func oneHertz() throws {
        // 700 samples at 1 Hz: `beats run` used to resample them to 16 kHz (a 32 KB clip
        // of this kind took 18 s and 1.8 GB) before the model refused the length.
        let path = try Fixtures.path("fuzz-regressions/wav-1hz.wav")
        let clip = try WAVReader.read(path: path)
        #expect(clip.sampleRate == 1 && clip.samples.count == 700)
        #expect(throws: AudioError.inFile(path: path, .tooLong(samples: 11_200_000, maximum: BEATsAudio.maximumSamples, sampleRate: 16_000))) {
            try AudioLoader.load(path: path)
        }
    }

    @Test("a 2 KB WAV claiming 1 Hz, short enough to pass the length limit, is refused by the minimum rate")
    func oneHertzUnderTheLengthLimit() throws {
        // 489 samples at 1 Hz (the data chunk declares 500; the file ends early) make a 489 s clip
        // at 16 kHz: within the length limit, and `beats run` on tiny.pt spent 22 s on its 24 448 tokens.
        let path = try Fixtures.path("fuzz-regressions/wav-1hz-489s.wav")
        let clip = try WAVReader.read(path: path)
        #expect(clip.sampleRate == 1 && clip.samples.count == 489)
        #expect(throws: AudioError.inFile(path: path, .unsupportedSampleRate(
            from: 1, to: 16_000, reason: "files below 1000 Hz are refused (upsampling would make minutes of audio out of a few bytes)"))) {
            try AudioLoader.load(path: path)
        }
    }

    @Test("minimum file rate: 1000 Hz is read, 999 Hz is refused; the length check comes first")
    func minimumRate() throws {
        #expect(BEATsAudio.minimumFileSampleRate == 1_000)
        let samples = [Float](repeating: 0.25, count: 100)
        let atLimit = AudioClip(sampleRate: 1_000, samples: samples)
        #expect(try AudioLoader.resampled(atLimit, to: 16_000, minimumSourceRate: 1_000).samples.count == 1_600)
        let under = AudioClip(sampleRate: 999, samples: samples)
        #expect(throws: AudioError.unsupportedSampleRate(
            from: 999, to: 16_000, reason: "files below 1000 Hz are refused (upsampling would make minutes of audio out of a few bytes)")) {
            try AudioLoader.resampled(under, to: 16_000, minimumSourceRate: 1_000)
        }
        // Too long and too slow: the length is reported (wav-1hz.wav keeps its error).
        #expect(throws: AudioError.tooLong(samples: 1_602, maximum: 1_000, sampleRate: 16_000)) {
            try AudioLoader.resampled(under, to: 16_000, maximumSamples: 1_000, minimumSourceRate: 1_000)
        }
    }

    @Test("the loader's length limit is the model's: 65 536 frames, 10 486 159 samples at 16 kHz")
    func documentedLimit() {
        #expect(BEATsAudio.maximumFrames == 65_536)
        #expect(BEATsAudio.maximumSamples == 10_486_159)
        #expect(BEATsAudio.frameCount(sampleCount: BEATsAudio.maximumSamples) == BEATsAudio.maximumFrames)
        #expect(BEATsAudio.frameCount(sampleCount: BEATsAudio.maximumSamples + 1) == BEATsAudio.maximumFrames + 1)
    }

    @Test("length limit: a clip at the limit passes, one sample more is refused (with and without resampling)")
    func lengthLimit() throws {
        let limit = BEATsAudio.maximumSamples
        let atLimit = AudioClip(sampleRate: 16_000, samples: [Float](repeating: 0.25, count: limit))
        #expect(try AudioLoader.resampled(atLimit, to: 16_000, maximumSamples: limit).samples.count == limit)
        let over = AudioClip(sampleRate: 16_000, samples: [Float](repeating: 0.25, count: limit + 1))
        #expect(throws: AudioError.tooLong(samples: limit + 1, maximum: limit, sampleRate: 16_000)) {
            try AudioLoader.resampled(over, to: 16_000, maximumSamples: limit)
        }

        // 8 kHz doubles: 500 samples make exactly 1000, 501 make 1002.
        let short = AudioClip(sampleRate: 8_000, samples: [Float](repeating: 0.25, count: 500))
        #expect(try AudioLoader.resampled(short, to: 16_000, maximumSamples: 1000).samples.count == 1000)
        let long = AudioClip(sampleRate: 8_000, samples: [Float](repeating: 0.25, count: 501))
        #expect(throws: AudioError.tooLong(samples: 1002, maximum: 1000, sampleRate: 16_000)) {
            try AudioLoader.resampled(long, to: 16_000, maximumSamples: 1000)
        }
    }

    @Test("the length is checked with the resampler's own output count", arguments: [1, 3, 7_999, 8_000, 11_025, 22_050, 44_100, 48_000, 96_000])
    func countsAgree(rate: Int) throws {
        let resampler = try Resampler(from: rate, to: 16_000)
        for count in [0, 1, 2, 399, 400, 1_234, 44_101] {
            let clip = AudioClip(sampleRate: rate, samples: [Float](repeating: 0, count: count))
            let expected = resampler.outputCount(forInputCount: count)
            // At exactly the expected count the clip passes (resampled only when that is cheap);
            // one sample tighter it is refused before any work.
            if expected <= 50_000 {
                #expect(try AudioLoader.resampled(clip, to: 16_000, maximumSamples: expected).samples.count == expected)
            }
            if expected > 0 {
                #expect(throws: AudioError.tooLong(samples: expected, maximum: expected - 1, sampleRate: 16_000)) {
                    try AudioLoader.resampled(clip, to: 16_000, maximumSamples: expected - 1)
                }
            }
        }
    }
}

/// Model files whose config once crashed the runtime while building the model.
@Suite("Fuzz regressions: model config")
struct ModelConfigFuzzRegressionTests {
    @Test("encoder_layers = 2^31 ends at the first missing layer tensor, not in a 687 GB reservation")
    func hugeLayerCount() throws {
        // tiny.pt's weights in float16 without its layers, cfg['encoder_layers'] = 2**31.
        let checkpoint = try PyTorchCheckpoint.open(path: try Fixtures.path("fuzz-regressions/config-encoder-layers-2e31.pt"))
        #expect(checkpoint.config.encoderLayers == 1 << 31)
        #expect(throws: ModelError.missingTensor(name: "encoder.layers.0.self_attn.q_proj.weight")) {
            try BEATsNetwork(weights: checkpoint)
        }
    }
}
