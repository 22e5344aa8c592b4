import BEATsCore
import BEATsRuntime
import BEATsTestSupport
import Foundation
import Testing

@Suite("Audio: Kaldi fbank")
struct FbankTests {
    /// Largest difference from the reference over the entries `include` selects.
    static func worstError(_ values: [Float], _ reference: [Float], where include: (Int) -> Bool = { _ in true }) -> Float {
        var worst: Float = 0
        for index in values.indices where include(index) {
            worst = max(worst, abs(values[index] - reference[index]))
        }
        return worst
    }

    /// Features and reference for a fixture clip, checked for shape.
    static func compute(_ clip: String) throws -> (frames: Int, values: [Float], reference: [Float]) {
        let audio = try WAVReader.read(path: try Fixtures.path("audio/\(clip).wav"))
        let reference = try Fixtures.reference("fbank/\(clip)")
        let features = try KaldiFbank.beatsFeatures(audio.samples)
        #expect(reference.shape == [1, features.frames, 128])
        #expect(features.frames == BEATsAudio.frameCount(sampleCount: audio.samples.count))
        let expected = try reference.floats()
        #expect(features.values.count == expected.count)
        return (features.frames, features.values, expected)
    }

    @Test("equals BEATs preprocess (torchaudio kaldi.fbank + normalisation) to 1e-4 everywhere",
          arguments: ["speech", "noise", "short"])
    func matchesReference(clip: String) throws {
        let (_, values, reference) = try Self.compute(clip)
        let worst = Self.worstError(values, reference)
        #expect(worst <= 1e-4, "\(clip): max abs error \(worst)")
    }

    /// chirp10s is one pure tone per frame: most of its bands hold only int16 quantisation noise,
    /// 70–110 dB below the frame's strongest band. There the reference carries the rounding noise
    /// of torchaudio's float32 FFT (MKL, CPU-dependent): torch 2.11 float32 on an AVX2 machine
    /// differs from the reference by up to 3e-3 and a float64 evaluation by 7.5e-2 in those
    /// bands, so no implementation can match them to 1e-4. Every band within 70 dB of its
    /// frame's strongest band (selected from the reference, not from our output) must match to
    /// 1e-4 — on the other clips that is every band; the deeper ones must at least be deep here
    /// too.
    @Test("chirp10s: every band within 70 dB of its frame's peak equals the reference to 1e-4")
    func chirpAboveFloat32Noise() throws {
        let (frames, values, reference) = try Self.compute("chirp10s")
        let bins = BEATsAudio.melBins
        // 70 dB in power is ln(10^7) = 16.1 in log energy, 16.1 / 13.11164 in normalised units.
        let depth = Float(log(1e7) / Double(Float(2 * 6.55582)))
        var inside = [Bool](repeating: false, count: values.count)
        var deepBandsStillDeep = true
        for frame in 0..<frames {
            let row = (frame * bins)..<((frame + 1) * bins)
            let referencePeak = reference[row].max() ?? 0
            let ourPeak = values[row].max() ?? 0
            for index in row {
                inside[index] = reference[index] >= referencePeak - depth
                if !inside[index], values[index] > ourPeak - depth * 5 / 7 { deepBandsStillDeep = false }
            }
        }
        let covered = inside.filter { $0 }.count
        let worst = Self.worstError(values, reference) { inside[$0] }
        #expect(worst <= 1e-4, "chirp10s: max abs error \(worst) over \(covered) of \(values.count) bands")
        #expect(covered >= values.count / 5, "only \(covered) bands within 70 dB")
        #expect(deepBandsStillDeep, "a band more than 70 dB down in the reference is within 50 dB of the peak here")
    }

    @Test("caller-owned output gives the same values")
    func intoBuffer() throws {
        let audio = try WAVReader.read(path: try Fixtures.path("audio/short.wav"))
        let expected = try KaldiFbank.beatsFeatures(audio.samples)
        var output = [Float](repeating: .nan, count: expected.values.count)
        let frames = try audio.samples.withUnsafeBufferPointer { input in
            try output.withUnsafeMutableBufferPointer { try KaldiFbank.beatsFeatures(input, into: $0) }
        }
        #expect(frames == expected.frames)
        #expect(output == expected.values)
    }

    @Test("silence sits on the log floor: (ln(2^-23) − 15.41663) / 13.11164")
    func silence() throws {
        let features = try KaldiFbank.beatsFeatures([Float](repeating: 0, count: 560))
        #expect(features.frames == 2)
        let floor = Float((log(Double(Float.ulpOfOne)) - Double(Float(15.41663))) / Double(Float(13.11164)))
        #expect(features.values.allSatisfy { $0 == floor })
    }

    @Test("mel bank has torchaudio's shape: 504 weights, band 3 empty, band 0 on bin 1, band 127 on bins 246…255")
    func melBank() {
        // Facts read off torchaudio.compliance.kaldi.get_mel_banks(128, 512, 16000, 20, 0, …).
        let bank = KaldiFbank.melBank()
        #expect(bank.count == 128 * 256)
        #expect(bank.filter { $0 > 0 }.count == 504)
        func columns(_ bin: Int) -> [Int] { (0..<256).filter { bank[bin * 256 + $0] > 0 } }
        #expect(columns(0) == [1])
        #expect(columns(3).isEmpty)
        #expect(columns(127) == Array(246...255))
        #expect(abs(bank[0 * 256 + 1] - 0.8026373) < 1e-5)
        #expect(abs(bank[127 * 256 + 250] - 0.8720856) < 1e-5)
        #expect(bank.allSatisfy { $0 >= 0 && $0 < 1 })
        // Bands rise through the spectrum: each non-empty band starts no lower than the last.
        let starts = (0..<128).compactMap { columns($0).first }
        #expect(starts == starts.sorted())
    }
}
