import BEATsCore

/// Mono audio: samples in [-1, 1] (float files may exceed it, as torchaudio keeps them) at
/// `sampleRate` Hz.
public struct AudioClip: Equatable, Sendable {
    public let sampleRate: Int
    public let samples: [Float]

    public init(sampleRate: Int, samples: [Float]) {
        self.sampleRate = sampleRate
        self.samples = samples
    }

    /// Length in seconds.
    public var duration: Double { sampleRate > 0 ? Double(samples.count) / Double(sampleRate) : 0 }
}

/// The fixed facts of BEATs' audio front end.
public enum BEATsAudio {
    /// BEATs is trained on 16 kHz audio; every clip is resampled to this rate.
    public static let sampleRate = 16_000
    /// One fbank frame: 25 ms at 16 kHz.
    public static let frameLength = 400
    /// Hop between fbank frames: 10 ms at 16 kHz.
    public static let frameShift = 160
    /// Mel bins of the fbank (and the patch grid's frequency axis).
    public static let melBins = 128
    /// Fbank frames in one patch along time (the 16 × 16 patch embedding).
    public static let framesPerPatch = 16
    /// Fewest samples that give one full patch: 16 frames, 400 + 15 · 160 = 2800 (0.175 s).
    public static let minimumSamples = frameLength + (framesPerPatch - 1) * frameShift

    /// Fbank frames for `sampleCount` samples at 16 kHz (snip_edges: only whole frames), 0 when
    /// not even one frame fits.
    public static func frameCount(sampleCount: Int) -> Int {
        sampleCount < frameLength ? 0 : 1 + (sampleCount - frameLength) / frameShift
    }

    /// Throws unless `sampleCount` 16 kHz samples make at least one BEATs patch (16 frames).
    public static func checkPatchLength(sampleCount: Int) throws(AudioError) {
        guard sampleCount >= minimumSamples else {
            throw .tooShort(samples: sampleCount, minimum: minimumSamples, purpose: "one BEATs patch (16 fbank frames)")
        }
    }
}

/// Reads audio files for the runtime: WAV in, mono float at the target rate out.
public enum AudioLoader {
    /// Reads `path` (WAV), averages its channels to mono and resamples it to `targetSampleRate`
    /// the way `torchaudio.functional.resample` does by default. Does not check the length:
    /// callers that need a BEATs patch call ``BEATsAudio/checkPatchLength(sampleCount:)``.
    public static func load(path: String, targetSampleRate: Int = BEATsAudio.sampleRate) throws -> AudioClip {
        try loadTyped(path: path, targetSampleRate: targetSampleRate)
    }

    /// ``load(path:targetSampleRate:)`` with its error type spelled out.
    public static func loadTyped(path: String, targetSampleRate: Int = BEATsAudio.sampleRate) throws(AudioError) -> AudioClip {
        let clip = try WAVReader.read(path: path)
        return try resampled(clip, to: targetSampleRate)
    }

    /// `clip` at `targetSampleRate` (returned as is when the rates already agree).
    public static func resampled(_ clip: AudioClip, to targetSampleRate: Int) throws(AudioError) -> AudioClip {
        if clip.sampleRate == targetSampleRate { return clip }
        let resampler = try Resampler(from: clip.sampleRate, to: targetSampleRate)
        return AudioClip(sampleRate: targetSampleRate, samples: try resampler.resample(clip.samples))
    }
}
