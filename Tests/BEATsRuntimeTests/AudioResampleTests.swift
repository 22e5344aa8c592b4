import BEATsCore
import BEATsRuntime
import BEATsTestSupport
import Testing

@Suite("Audio: resampling")
struct AudioResampleTests {
    /// Input rates with a torchaudio reference in Fixtures/resample (made by
    /// tools/fixtures/make_audio_fixtures.py): down- and up-sampling, small and large reduced ratios.
    static let rates = [44100, 48000, 22050, 11025, 8000, 32000, 12345]

    @Test("matches torchaudio.functional.resample(x, rate, 16000) to 1e-5", arguments: rates)
    func matchesTorchaudio(rate: Int) throws {
        let input = try NumpyFile.read(path: try Fixtures.path("resample/\(rate).in.npy")).floats()
        let expected = try NumpyFile.read(path: try Fixtures.path("resample/\(rate).out.npy")).floats()
        let output = try Resampler(from: rate, to: 16000).resample(input)
        #expect(output.count == expected.count)
        let worst = zip(output, expected).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst <= 1e-5, "max abs error \(worst)")
    }

    @Test("a 44.1 kHz stereo WAV loads like torchaudio.load + mean + resample")
    func loaderEndToEnd() throws {
        let clip = try AudioLoader.load(path: try Fixtures.path("audio-formats/stereo_44100.wav"))
        let expected = try NumpyFile.read(path: try Fixtures.path("audio-formats/stereo_44100.16k.npy")).floats()
        #expect(clip.sampleRate == 16000)
        #expect(clip.samples.count == expected.count)
        let worst = zip(clip.samples, expected).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst <= 1e-5, "max abs error \(worst)")
    }

    @Test("kernel geometry follows torchaudio: gcd-reduced rates, width, output length")
    func geometry() throws {
        let down = try Resampler(from: 44100, to: 16000)
        #expect(down.reducedInputRate == 441 && down.reducedOutputRate == 160)
        #expect(down.width == 17)  // ceil(6 · 441 / (160 · 0.99))
        #expect(down.outputCount(forInputCount: 4410) == 1600)
        #expect(down.outputCount(forInputCount: 4411) == 1601)
        let up = try Resampler(from: 8000, to: 16000)
        #expect(up.reducedInputRate == 1 && up.reducedOutputRate == 2 && up.width == 7)
        #expect(try up.resample([0.5]).count == 2)
        #expect(try Resampler.resample([1, 2, 3], from: 16000, to: 16000) == [1, 2, 3])
    }

    @Test("impossible rates are refused")
    func badRates() {
        #expect(throws: AudioError.unsupportedSampleRate(from: 0, to: 16000, reason: "rates must be positive")) {
            try Resampler(from: 0, to: 16000)
        }
        // A prime rate near 2^32 would need a kernel of ~5·10^10 taps.
        #expect(throws: AudioError.self) { try Resampler(from: 4_294_967_291, to: 16000) }
        // A WAV claiming 1 Hz would turn each sample into 16000.
        let tiny = WAVBuilder.riff(WAVBuilder.chunk("fmt ", WAVBuilder.format(sampleRate: 1)),
                                   WAVBuilder.chunk("data", [UInt8](repeating: 0, count: 40_000)))
        #expect(throws: AudioError.unsupportedSampleRate(from: 1, to: 16000, reason: "20000 samples would become 320000000 (limit 268435456)")) {
            let clip = try WAVReader.read(tiny)
            return try AudioLoader.resampled(clip, to: 16000)
        }
    }
}
