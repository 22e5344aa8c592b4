#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// BEATs' front end: `torchaudio.compliance.kaldi.fbank` with the arguments BEATs' `preprocess`
/// passes, then BEATs' normalisation.
///
/// Per 16 kHz clip (samples in [-1, 1]):
/// 1. scale by 32768 (BEATs' `waveform * 2 ** 15`);
/// 2. frames of 400 samples every 160 (snip_edges: only whole frames), no dither;
/// 3. per frame: subtract the frame's mean; pre-emphasis y[i] = x[i] − 0.97·x[i−1] with
///    x[−1] = x[0] (Kaldi's edge rule); multiply by the Povey window (symmetric Hann^0.85);
///    zero-pad to 512;
/// 4. power spectrum |FFT|² of bins 0…255 (the mel bank's column for bin 256 is zero);
/// 5. 128 triangular mel filters from 20 Hz to 8 kHz, triangles in mel space
///    (mel = 1127·ln(1 + f/700)), weights max(0, min(up, down));
/// 6. ln(max(energy, 1.1920929e-07));
/// 7. (x − 15.41663) / (2 × 6.55582).
///
/// Precision: torchaudio works in float32. The per-sample steps before the FFT (scaling, frame
/// mean, pre-emphasis, Povey window and the window product) are done here with the same float32
/// operations in the same order, because the log-mel of quiet bands is sensitive to their
/// rounding; the FFT, power and mel sums are done in double (torchaudio's float32 FFT is MKL's,
/// whose rounding depends on the CPU and cannot be reproduced), rounded to float for the log, as
/// torchaudio takes it. Mel weights are built with torchaudio's float32 arithmetic. Bands 70 dB
/// or more below their frame's strongest band (between the harmonics of a pure tone, say)
/// therefore differ from torchaudio by that FFT's rounding noise, which exceeds 1e-4 there;
/// everywhere else the two agree to ~2e-5.
public enum KaldiFbank {
    /// BEATs' fbank normalisation constants (`fbank_mean`, `fbank_std` in BEATs.py).
    public static let beatsMean: Float = 15.41663
    public static let beatsStandardDeviation: Float = 6.55582

    /// Normalised log-mel features of a 16 kHz mono clip, frames × 128, row-major, exactly what
    /// BEATs' `preprocess` returns (without the batch axis). Throws when not even one 25 ms frame
    /// (400 samples) fits. Does not require a whole BEATs patch: see
    /// ``BEATsAudio/checkPatchLength(sampleCount:framesPerPatch:path:)``.
    public static func beatsFeatures(_ samples: [Float]) throws(AudioError) -> (frames: Int, values: [Float]) {
        let frames = BEATsAudio.frameCount(sampleCount: samples.count)
        guard frames > 0 else {
            throw .tooShort(path: nil, samples: samples.count, minimum: BEATsAudio.frameLength, purpose: "one 25 ms fbank frame")
        }
        let values = [Float](unsafeUninitializedCapacity: frames * BEATsAudio.melBins) { output, initialized in
            samples.withUnsafeBufferPointer { input in
                FbankPlan.shared.compute(input, into: output, frames: frames)
            }
            initialized = frames * BEATsAudio.melBins
        }
        return (frames, values)
    }

    /// ``beatsFeatures(_:)`` into caller-owned memory: `output` must hold at least
    /// `BEATsAudio.frameCount(sampleCount: samples.count) × 128` floats. Returns the frame count.
    public static func beatsFeatures(_ samples: UnsafeBufferPointer<Float>,
                                     into output: UnsafeMutableBufferPointer<Float>) throws(AudioError) -> Int {
        let frames = BEATsAudio.frameCount(sampleCount: samples.count)
        guard frames > 0 else {
            throw .tooShort(path: nil, samples: samples.count, minimum: BEATsAudio.frameLength, purpose: "one 25 ms fbank frame")
        }
        precondition(output.count >= frames * BEATsAudio.melBins, "fbank output buffer too small")
        FbankPlan.shared.compute(samples, into: output, frames: frames)
        return frames
    }

    /// The mel filter bank as torchaudio's `get_mel_banks(128, 512, 16000, 20, 0, …)` builds it
    /// (float32), 128 rows × 256 columns row-major. For tests and tooling.
    public static func melBank() -> [Float] {
        var dense = [Float](repeating: 0, count: BEATsAudio.melBins * FbankPlan.fftBins)
        let plan = FbankPlan.shared
        for bin in 0..<BEATsAudio.melBins {
            for index in plan.melOffsets[bin]..<plan.melOffsets[bin + 1] {
                dense[bin * FbankPlan.fftBins + plan.melFirstColumn[bin] + index - plan.melOffsets[bin]] = Float(plan.melWeights[index])
            }
        }
        return dense
    }
}

/// Everything about the fbank that does not depend on the audio, computed once.
struct FbankPlan: Sendable {
    static let shared = FbankPlan()

    static let paddedLength = 512
    /// Spectrum bins the mel bank covers (torchaudio pads a zero column for bin 256).
    static let fftBins = paddedLength / 2

    let fft = RealFFT(length: paddedLength)
    /// Povey window, 400 taps, as torchaudio's float32 tensor holds it.
    let window: [Float]
    /// Sparse mel bank: bin b has weights `melWeights[melOffsets[b] ..< melOffsets[b+1]]` for
    /// spectrum columns starting at `melFirstColumn[b]`.
    let melFirstColumn: [Int]
    let melOffsets: [Int]
    let melWeights: [Double]
    /// The same weights in both lanes, for the two-frames-at-a-time loop.
    let melLaneWeights: [FFTLanes]

    /// torchaudio's float32 constants (the pre-processing runs in float32), and the widened ones.
    let preemphasis = Float(0.97)
    let floor = Float.ulpOfOne
    let normalisationMean = Double(KaldiFbank.beatsMean)
    let normalisationScale = Double(Float(2 * 6.55582))

    init() {
        let length = BEATsAudio.frameLength
        window = FbankPlan.poveyWindow(length: length)
        let (first, offsets, weights) = FbankPlan.melBank(bins: BEATsAudio.melBins, sampleRate: Float(BEATsAudio.sampleRate),
                                                          lowFrequency: 20)
        melFirstColumn = first
        melOffsets = offsets
        melWeights = weights
        melLaneWeights = weights.map { FFTLanes(repeating: $0) }
    }

    /// `torch.hann_window(length, periodic=False).pow(0.85)` in float32, as ATen computes it:
    /// arange × (2π / (length − 1)) (the factor rounded to float), cos, × −0.5, + 0.5, then pow.
    static func poveyWindow(length: Int) -> [Float] {
        let step = Float(2 * Double.pi / Double(length - 1))
        return (0..<length).map { index in
            let hann = cosf(Float(index) * step) * Float(-0.5) + Float(0.5)
            return powf(hann, Float(0.85))
        }
    }

    /// torchaudio's `get_mel_banks` without VTLN, evaluated with its float32 tensor arithmetic:
    /// the band edges in mel (Python doubles) are cast to float32, `bin * delta` and the slopes
    /// are float32 operations, as the tensors there are float32.
    static func melBank(bins: Int, sampleRate: Float, lowFrequency: Double) -> (first: [Int], offsets: [Int], weights: [Double]) {
        let nyquist = 0.5 * Double(sampleRate)
        let highFrequency = nyquist  // high_freq 0 means Nyquist
        func melScale(_ frequency: Double) -> Double { 1127.0 * log(1.0 + frequency / 700.0) }
        let melLow = melScale(lowFrequency)
        let melHigh = melScale(highFrequency)
        let delta = (melHigh - melLow) / Double(bins + 1)
        let melLow32 = Float(melLow)
        let delta32 = Float(delta)
        let binWidth32 = Float(Double(sampleRate) / Double(paddedLength))
        let columnMel: [Float] = (0..<fftBins).map { column in
            let frequency = binWidth32 * Float(column)
            return Float(1127.0) * logf(Float(1.0) + frequency / Float(700.0))
        }
        var first: [Int] = []
        var offsets: [Int] = [0]
        var weights: [Double] = []
        for bin in 0..<bins {
            let binValue = Float(bin)
            let left = melLow32 + binValue * delta32
            let center = melLow32 + (binValue + 1) * delta32
            let right = melLow32 + (binValue + 2) * delta32
            var row: [(Int, Float)] = []
            for column in 0..<fftBins {
                let mel = columnMel[column]
                let up = (mel - left) / (center - left)
                let down = (right - mel) / (right - center)
                let weight = max(Float(0), min(up, down))
                if weight > 0 { row.append((column, weight)) }
            }
            // Keep the row contiguous from its first to its last non-zero column.
            let start = row.first?.0 ?? 0
            let end = (row.last?.0 ?? -1) + 1
            first.append(start)
            var dense = [Double](repeating: 0, count: max(0, end - start))
            for (column, weight) in row { dense[column - start] = Double(weight) }
            weights += dense
            offsets.append(weights.count)
        }
        return (first, offsets, weights)
    }

    /// Σ samples[start ..< start + count] × 32768 in double, four partial sums (`count` is a
    /// multiple of 4). For int16-valued audio every partial sum is an exact integer, so the
    /// order cannot matter; for other input it changes the double sum by ~1e-16 relative.
    @inline(__always)
    static func scaledSum(_ samples: UnsafeBufferPointer<Float>, from start: Int, count: Int) -> Double {
        var partial = SIMD4<Double>.zero
        var index = start
        while index < start + count {
            let four = SIMD4<Float>(samples[index], samples[index + 1], samples[index + 2], samples[index + 3]) * 32768
            partial += SIMD4<Double>(four)
            index += 4
        }
        return (partial[0] + partial[1]) + (partial[2] + partial[3])
    }

    /// Fills `frames × 128` normalised log-mel values from `samples` (needs
    /// 400 + (frames − 1) × 160 samples). Frames are processed two at a time, one per SIMD lane
    /// (an odd last frame is paired with itself); lane arithmetic is the same IEEE arithmetic as
    /// scalar code, so pairing changes no result.
    func compute(_ samples: UnsafeBufferPointer<Float>, into output: UnsafeMutableBufferPointer<Float>, frames: Int) {
        let frameLength = BEATsAudio.frameLength
        let shift = BEATsAudio.frameShift
        let melBins = BEATsAudio.melBins
        let half = fft.half
        withUnsafeTemporaryAllocation(of: FFTLanes.self, capacity: 2 * half + FbankPlan.fftBins) { scratch in
            guard let real = scratch.baseAddress else { return }
            let imaginary = real + half
            let power = imaginary + half
            window.withUnsafeBufferPointer { window in
            melLaneWeights.withUnsafeBufferPointer { melWeights in
            melOffsets.withUnsafeBufferPointer { melOffsets in
            melFirstColumn.withUnsafeBufferPointer { melFirstColumn in
            fft.bitReversed.withUnsafeBufferPointer { bitReversed in
                var first = 0
                while first < frames {
                    let second = Swift.min(first + 1, frames - 1)
                    let startA = first * shift, startB = second * shift
                    // float32 throughout, in torchaudio's order: ×32768 (exact), frame mean
                    // (sum, then ÷ 400 in float; the sum of int16-valued samples is exact in
                    // float, for other input the double sum rounded once is the closest),
                    // subtract, pre-emphasis product then difference, window product.
                    let sumA = FbankPlan.scaledSum(samples, from: startA, count: frameLength)
                    let sumB = FbankPlan.scaledSum(samples, from: startB, count: frameLength)
                    let frameMean = SIMD2<Float>(Float(sumA), Float(sumB)) / Float(frameLength)
                    @inline(__always) func centred(_ index: Int) -> SIMD2<Float> {
                        SIMD2<Float>(samples[startA + index], samples[startB + index]) * 32768 - frameMean
                    }
                    // Pre-emphasis y[i] = t[i] − 0.97·t[i−1] on the mean-removed t, with
                    // t[−1] = t[0]; then the window. Pairs go (even → real, odd → imaginary) to
                    // their bit-reversed slots; samples 400…511 are the zero padding.
                    var previous = centred(0)
                    for pair in 0..<(frameLength / 2) {
                        let even = 2 * pair
                        let evenValue = centred(even)
                        let oddValue = centred(even + 1)
                        let evenEmphasised = evenValue - preemphasis * previous
                        let oddEmphasised = oddValue - preemphasis * evenValue
                        previous = oddValue
                        let target = bitReversed[pair]
                        real[target] = FFTLanes(evenEmphasised * window[even])
                        imaginary[target] = FFTLanes(oddEmphasised * window[even + 1])
                    }
                    for pair in (frameLength / 2)..<half {
                        let target = bitReversed[pair]
                        real[target] = .zero
                        imaginary[target] = .zero
                    }
                    fft.powerSpectrum(real: real, imaginary: imaginary, into: power)
                    let rowA = first * melBins, rowB = second * melBins
                    for bin in 0..<melBins {
                        let column = melFirstColumn[bin] - melOffsets[bin]
                        var energy = FFTLanes.zero
                        for weightIndex in melOffsets[bin]..<melOffsets[bin + 1] {
                            energy += melWeights[weightIndex] * power[column + weightIndex]
                        }
                        // ln in float, as torchaudio takes it (float32 energies); the floor is
                        // float epsilon.
                        let logA = logf(Swift.max(Float(energy[0]), floor))
                        let logB = logf(Swift.max(Float(energy[1]), floor))
                        output[rowA + bin] = Float((Double(logA) - normalisationMean) / normalisationScale)
                        output[rowB + bin] = Float((Double(logB) - normalisationMean) / normalisationScale)
                    }
                    first += 2
                }
            }
            }
            }
            }
            }
        }
    }
}
