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
    /// Fewest 16 kHz samples that give one full patch of `framesPerPatch` fbank frames (the
    /// model's `input_patch_size`, which the front end cannot know): 400 + (framesPerPatch − 1) ·
    /// 160, 2800 samples (0.175 s) for BEATs' 16-frame patches. `framesPerPatch` is clamped to
    /// 1...``maximumFrames`` so a bad config cannot overflow it.
    public static func minimumSamples(framesPerPatch: Int) -> Int {
        frameLength + (min(max(framesPerPatch, 1), maximumFrames) - 1) * frameShift
    }

    /// Fbank frames for `sampleCount` samples at 16 kHz (snip_edges: only whole frames), 0 when
    /// not even one frame fits.
    public static func frameCount(sampleCount: Int) -> Int {
        sampleCount < frameLength ? 0 : 1 + (sampleCount - frameLength) / frameShift
    }

    /// Longest input the runtime takes, in fbank frames (≈ 11 minutes): `BEATsModel`'s default
    /// `maximumFrames`.
    public static let maximumFrames = 65_536
    /// Most 16 kHz samples that make at most ``maximumFrames`` frames (10 486 159, ≈ 655 s). The
    /// loader refuses longer clips before resampling them.
    public static let maximumSamples = frameLength + maximumFrames * frameShift - 1
    /// Lowest sample rate the loader reads a file at. Below it, resampling to 16 kHz would turn a
    /// few bytes into minutes of audio (a 2 KB WAV claiming 1 Hz becomes a 500 s clip that the tiny
    /// model ran for 22 s); from 1 kHz up, a file holds at least 1/16 of the samples the model
    /// sees, so the work stays proportional to the file.
    public static let minimumFileSampleRate = 1_000

    /// Throws ``AudioError/tooShort(path:samples:minimum:purpose:)`` unless `sampleCount` 16 kHz
    /// samples make at least one patch of `framesPerPatch` fbank frames (the model's
    /// `input_patch_size`): a shorter clip gives the model no token at all. `path` names the file
    /// in the message.
    public static func checkPatchLength(sampleCount: Int, framesPerPatch: Int, path: String? = nil) throws(AudioError) {
        let minimum = minimumSamples(framesPerPatch: framesPerPatch)
        guard sampleCount >= minimum else {
            throw .tooShort(path: path, samples: sampleCount, minimum: minimum, purpose: "one BEATs patch")
        }
    }
}

/// Reads whole audio files for the runtime: any format ``AudioDecoder`` reads in, mono float at
/// the target rate out, through the decoder (one implementation for clips and streams).
public enum AudioLoader {
    /// Reads `path` (any format ``AudioDecoder`` recognises), averages its channels to mono and
    /// resamples it to `targetSampleRate` the way `torchaudio.functional.resample` does by
    /// default. Refuses a clip that would be longer than `maximumSamples` at the target rate
    /// (before decoding it when the header gives the length, else as soon as decoding passes the
    /// limit), then a file below ``BEATsAudio/minimumFileSampleRate``; does not check the minimum:
    /// callers that need a BEATs patch call
    /// ``BEATsAudio/checkPatchLength(sampleCount:framesPerPatch:path:)``.
    public static func load(path: String, targetSampleRate: Int = BEATsAudio.sampleRate,
                            maximumSamples: Int = BEATsAudio.maximumSamples) throws -> AudioClip {
        try loadTyped(path: path, targetSampleRate: targetSampleRate, maximumSamples: maximumSamples)
    }

    /// ``load(path:targetSampleRate:maximumSamples:)`` with its error type spelled out. Every
    /// error names the file (``AudioError/naming(_:)``).
    public static func loadTyped(path: String, targetSampleRate: Int = BEATsAudio.sampleRate,
                                 maximumSamples: Int = BEATsAudio.maximumSamples) throws(AudioError) -> AudioClip {
        do {
            return try loadWhole(path: path, targetSampleRate: targetSampleRate, maximumSamples: maximumSamples)
        } catch {
            throw error.naming(path)
        }
    }

    private static func loadWhole(path: String, targetSampleRate: Int, maximumSamples: Int) throws(AudioError) -> AudioClip {
        let decoder = try AudioDecoder(path: path, targetSampleRate: targetSampleRate, minimumSourceRate: 1)
        let rate = decoder.sourceSampleRate
        if let frames = decoder.sourceFrameCount {
            let count = resampledCount(frames, from: rate, to: targetSampleRate)
            guard count <= maximumSamples else { throw .tooLong(samples: count, maximum: maximumSamples, sampleRate: targetSampleRate) }
        }
        guard rate >= BEATsAudio.minimumFileSampleRate else {
            throw .unsupportedSampleRate(from: rate, to: targetSampleRate,
                                         reason: "files below \(BEATsAudio.minimumFileSampleRate) Hz are refused (upsampling would make minutes of audio out of a few bytes)")
        }
        var samples: [Float] = []
        if let frames = decoder.sourceFrameCount {
            samples.reserveCapacity(min(resampledCount(frames, from: rate, to: targetSampleRate), maximumSamples) + 1)
        }
        while true {
            // One sample past the limit is enough to know the clip is too long.
            let block = try decoder.read(maximumCount: min(AudioDecoder.blockSamples, maximumSamples - samples.count + 1))
            if block.isEmpty { break }
            samples += block
            guard samples.count <= maximumSamples else {
                throw .tooLong(samples: samples.count, maximum: maximumSamples, sampleRate: targetSampleRate)
            }
        }
        return AudioClip(sampleRate: targetSampleRate, samples: samples)
    }

    /// `clip` at `targetSampleRate` (returned as is when the rates already agree). Throws
    /// ``AudioError/tooLong(samples:maximum:sampleRate:)`` before any work when the result would
    /// hold more than `maximumSamples` samples (by default only the resampler's own bound applies),
    /// then ``AudioError/unsupportedSampleRate(from:to:reason:)`` when the clip's rate is below
    /// `minimumSourceRate` (by default any positive rate is taken).
    public static func resampled(_ clip: AudioClip, to targetSampleRate: Int, maximumSamples: Int = Int.max,
                                 minimumSourceRate: Int = 1) throws(AudioError) -> AudioClip {
        let count = resampledCount(clip.samples.count, from: clip.sampleRate, to: targetSampleRate)
        guard count <= maximumSamples else { throw .tooLong(samples: count, maximum: maximumSamples, sampleRate: targetSampleRate) }
        guard clip.sampleRate <= 0 || clip.sampleRate >= minimumSourceRate else {
            throw .unsupportedSampleRate(from: clip.sampleRate, to: targetSampleRate,
                                         reason: "files below \(minimumSourceRate) Hz are refused (upsampling would make minutes of audio out of a few bytes)")
        }
        if clip.sampleRate == targetSampleRate { return clip }
        let resampler = try Resampler(from: clip.sampleRate, to: targetSampleRate)
        return AudioClip(sampleRate: targetSampleRate, samples: try resampler.resample(clip.samples))
    }

    /// Samples `count` samples become at `outputRate` (what ``Resampler/outputCount(forInputCount:)``
    /// gives, without building the kernel); `count` itself when a rate is not positive (the
    /// resampler then refuses the rates), `Int.max` when the product overflows.
    static func resampledCount(_ count: Int, from inputRate: Int, to outputRate: Int) -> Int {
        guard inputRate > 0, outputRate > 0, inputRate != outputRate else { return count }
        var (a, b) = (inputRate, outputRate)
        while b != 0 { (a, b) = (b, a % b) }
        let (product, overflow) = count.multipliedReportingOverflow(by: outputRate / a)
        guard !overflow else { return Int.max }
        let orig = inputRate / a
        return product / orig + (product % orig == 0 ? 0 : 1)
    }
}
