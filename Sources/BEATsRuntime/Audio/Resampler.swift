#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Band-limited resampling that reproduces `torchaudio.functional.resample(waveform, from, to)`
/// with its defaults (`sinc_interp_hann`, `lowpass_filter_width` 6, `rolloff` 0.99) on a float32
/// waveform.
///
/// How torchaudio does it, and so how this does it:
/// - both rates are divided by their gcd (`orig`, `new`); the output is `new` interleaved phases,
///   phase `j` being a windowed-sinc FIR applied to the input every `orig` samples;
/// - the cutoff is `base = min(orig, new) × rolloff`, the half-width in input samples is
///   `width = ceil(lowpass_filter_width × orig / base)`, the input is zero-padded by `width` on
///   the left and `width + orig` on the right;
/// - tap `k` of phase `j` is evaluated at `t = ((k − width) / orig − j / new) × base`, clamped to
///   ±lowpass_filter_width, Hann window `cos(t·π / lpw / 2)²`, sinc `sin(tπ) / (tπ)` (1 at 0),
///   times `base / orig`. torchaudio builds this kernel in the waveform's dtype, float32, so the
///   taps here are computed with the same float32 operations in the same order;
/// - the output keeps `ceil(new × length / orig)` samples.
///
/// Taps outside the window (|t| clamped to lowpass_filter_width) are left out: torchaudio's are
/// cos(π/2)² · sin(6π)/(6π) in float32, below 1e-20, so skipping them changes no output at
/// float32 precision while the kernel stays ~12·orig taps instead of new × (2·width + orig).
/// Sums are accumulated in double.
public struct Resampler: Sendable {
    public let inputRate: Int
    public let outputRate: Int
    /// `inputRate / gcd` and `outputRate / gcd`.
    public let reducedInputRate: Int
    public let reducedOutputRate: Int
    /// torchaudio's `width`: zero padding on the left, in input samples.
    public let width: Int
    /// For phase j, its taps are `taps[tapOffsets[j] ..< tapOffsets[j + 1]]` and the first one is
    /// kernel index `firstTap[j]` (0-based in torchaudio's row of 2·width + orig taps).
    let firstTap: [Int]
    let tapOffsets: [Int]
    let taps: [Float]

    /// Largest kernel built (taps over all phases, ~12 × the reduced input rate): 16 M taps,
    /// 64 MB. Every rate up to 1.3 MHz fits whatever its gcd with the output rate.
    public static let maximumTaps = 1 << 24
    /// Largest output produced: 2^28 samples (1 GiB of float, 4.7 hours at 16 kHz). Upsampling
    /// a WAV that claims a tiny rate would otherwise allocate without bound.
    public static let maximumOutputSamples = 1 << 28

    public init(from inputRate: Int, to outputRate: Int, lowpassFilterWidth: Int = 6, rolloff: Double = 0.99) throws(AudioError) {
        guard inputRate > 0, outputRate > 0 else {
            throw .unsupportedSampleRate(from: inputRate, to: outputRate, reason: "rates must be positive")
        }
        guard lowpassFilterWidth > 0, rolloff > 0, rolloff.isFinite else {
            throw .unsupportedSampleRate(from: inputRate, to: outputRate, reason: "lowpass filter width and rolloff must be positive")
        }
        let divisor = greatestCommonDivisor(inputRate, outputRate)
        let orig = inputRate / divisor
        let new = outputRate / divisor
        let baseFrequency = Double(min(orig, new)) * rolloff
        let halfSpan = Double(lowpassFilterWidth) * Double(orig) / baseFrequency
        // Taps per phase ≈ 2·halfSpan + 3; refuse ratios whose kernel would not fit the budget.
        let estimatedTaps = Double(new) * (2 * halfSpan + 4)
        guard estimatedTaps <= Double(Resampler.maximumTaps) else {
            throw .unsupportedSampleRate(from: inputRate, to: outputRate,
                                         reason: "the reduced ratio \(orig):\(new) needs a kernel of ~\(Int(estimatedTaps)) taps "
                                             + "(limit \(Resampler.maximumTaps))")
        }
        let width = Int(halfSpan.rounded(.up))
        let rowLength = 2 * width + orig

        // The float32 constants torchaudio's kernel arithmetic uses (Python scalars are cast to
        // the tensor's dtype before each operation).
        let pi32 = Float(Double.pi)
        let base32 = Float(baseFrequency)
        let lpw32 = Float(lowpassFilterWidth)
        let scale32 = Float(baseFrequency / Double(orig))
        let orig32 = Float(orig)
        let new32 = Float(new)

        var firstTap = [Int](repeating: 0, count: new)
        var tapOffsets = [Int](repeating: 0, count: new + 1)
        var taps: [Float] = []
        taps.reserveCapacity(Int(estimatedTaps))
        for phase in 0..<new {
            // Kernel indices whose t lies inside the window, plus one on each side for rounding.
            let center = Double(width) + Double(phase) * Double(orig) / Double(new)
            let low = max(0, Int((center - halfSpan).rounded(.down)) - 1)
            let high = min(rowLength - 1, Int((center + halfSpan).rounded(.up)) + 1)
            firstTap[phase] = low
            let phaseTime = Float(-phase) / new32
            for index in low...high {
                var t = (phaseTime + Float(index - width) / orig32) * base32
                t = min(max(t, -lpw32), lpw32)
                let cosine = cosf(t * pi32 / lpw32 / 2)
                let window = cosine * cosine
                let x = t * pi32
                let sinc: Float = x == 0 ? 1 : sinf(x) / x
                taps.append(sinc * (window * scale32))
            }
            tapOffsets[phase + 1] = taps.count
        }
        self.inputRate = inputRate
        self.outputRate = outputRate
        self.reducedInputRate = orig
        self.reducedOutputRate = new
        self.width = width
        self.firstTap = firstTap
        self.tapOffsets = tapOffsets
        self.taps = taps
    }

    /// Number of output samples for `inputCount` input samples: ceil(new × count / orig).
    public func outputCount(forInputCount inputCount: Int) -> Int {
        let (product, overflow) = reducedOutputRate.multipliedReportingOverflow(by: inputCount)
        if overflow { return Int((Double(reducedOutputRate) * Double(inputCount) / Double(reducedInputRate)).rounded(.up)) }
        return (product + reducedInputRate - 1) / reducedInputRate
    }

    /// `samples` resampled from `inputRate` to `outputRate`. Throws when the output would exceed
    /// ``maximumOutputSamples``.
    public func resample(_ samples: [Float]) throws(AudioError) -> [Float] {
        if inputRate == outputRate { return samples }
        let count = outputCount(forInputCount: samples.count)
        guard count <= Resampler.maximumOutputSamples else {
            throw .unsupportedSampleRate(from: inputRate, to: outputRate,
                                         reason: "\(samples.count) samples would become \(count) (limit \(Resampler.maximumOutputSamples))")
        }
        let orig = reducedInputRate
        let new = reducedOutputRate
        return [Float](unsafeUninitializedCapacity: count) { output, initialized in
            samples.withUnsafeBufferPointer { input in
                taps.withUnsafeBufferPointer { taps in
                    for outputIndex in 0..<count {
                        let frame = outputIndex / new
                        let phase = outputIndex - frame * new
                        let tapBase = tapOffsets[phase]
                        let tapCount = tapOffsets[phase + 1] - tapBase
                        // Input index of this phase's first tap (the padded input starts `width` early).
                        let start = frame * orig + firstTap[phase] - width
                        let first = max(0, -start)
                        let last = min(tapCount, input.count - start)
                        var sum = 0.0
                        if first < last {
                            for tap in first..<last {
                                sum += Double(taps[tapBase + tap]) * Double(input[start + tap])
                            }
                        }
                        output[outputIndex] = Float(sum)
                    }
                }
            }
            initialized = count
        }
    }

    /// Resamples `samples` from `inputRate` to `outputRate` (a one-off `Resampler`).
    public static func resample(_ samples: [Float], from inputRate: Int, to outputRate: Int) throws(AudioError) -> [Float] {
        if inputRate == outputRate { return samples }
        return try Resampler(from: inputRate, to: outputRate).resample(samples)
    }
}

/// ``Resampler`` over a signal that arrives in blocks: the same output samples, bit for bit, as
/// ``Resampler/resample(_:)`` gives on the whole signal, with memory bounded by one block plus
/// the kernel's span instead of the signal's length.
///
/// Output sample `i` needs the input samples its phase's taps cover; it is computed as soon as
/// they have all arrived (or at ``finish(into:)``, where the missing ones are the whole-signal
/// version's zero padding), with the same taps in the same order and the same double sum. Input
/// that no later output can reach is dropped after every block.
public struct StreamingResampler: Sendable {
    public let resampler: Resampler
    /// Input samples from absolute index `bufferStart` on that later outputs may still need.
    private var buffer: [Float] = []
    private var bufferStart = 0
    /// Input samples received so far.
    public private(set) var inputCount = 0
    /// Output samples produced so far.
    public private(set) var outputCount = 0
    public private(set) var isFinished = false
    /// Input samples held for outputs still to come (a block plus the kernel's span at most).
    public var bufferedInputCount: Int { buffer.count }
    /// Smallest `firstTap[phase] − width` over the phases: how far before its frame's first input
    /// sample an output can reach.
    private let earliestTap: Int

    public init(from inputRate: Int, to outputRate: Int) throws(AudioError) {
        self.resampler = try Resampler(from: inputRate, to: outputRate)
        earliestTap = (resampler.firstTap.min() ?? 0) - resampler.width
    }

    /// Feeds the next `input` samples and appends every output sample they complete to `output`.
    public mutating func push(_ input: [Float], into output: inout [Float]) {
        precondition(!isFinished, "StreamingResampler.push after finish")
        inputCount += input.count
        if resampler.inputRate == resampler.outputRate {
            output += input
            outputCount += input.count
            return
        }
        buffer += input
        emit(upTo: Int.max, available: inputCount, into: &output)
        // Drop what no later output reaches: outputs from `outputCount` on start at or after
        // frame × orig + earliestTap.
        let frame = outputCount / resampler.reducedOutputRate
        let keepFrom = max(bufferStart, min(frame * resampler.reducedInputRate + earliestTap, inputCount))
        let drop = keepFrom - bufferStart
        if drop > 0 {
            buffer.removeFirst(drop)
            bufferStart = keepFrom
        }
    }

    /// Ends the signal: appends the remaining output samples (ceil(new × length / orig) in all).
    public mutating func finish(into output: inout [Float]) {
        guard !isFinished else { return }
        isFinished = true
        if resampler.inputRate == resampler.outputRate { return }
        emit(upTo: resampler.outputCount(forInputCount: inputCount), available: inputCount, into: &output, final: true)
    }

    /// Computes outputs from `outputCount` while they are below `limit` and (unless `final`)
    /// their taps end within the `available` input samples.
    private mutating func emit(upTo limit: Int, available: Int, into output: inout [Float], final: Bool = false) {
        let orig = resampler.reducedInputRate
        let new = resampler.reducedOutputRate
        let width = resampler.width
        let firstTap = resampler.firstTap
        let tapOffsets = resampler.tapOffsets
        let base = bufferStart
        var next = outputCount
        buffer.withUnsafeBufferPointer { input in
            resampler.taps.withUnsafeBufferPointer { taps in
                while next < limit {
                    let frame = next / new
                    let phase = next - frame * new
                    let tapBase = tapOffsets[phase]
                    let tapCount = tapOffsets[phase + 1] - tapBase
                    // Absolute input index of this phase's first tap, as in Resampler.resample.
                    let start = frame * orig + firstTap[phase] - width
                    if !final && start + tapCount > available { break }
                    let first = max(0, -start)
                    let last = min(tapCount, available - start)
                    var sum = 0.0
                    if first < last {
                        for tap in first..<last {
                            sum += Double(taps[tapBase + tap]) * Double(input[start + tap - base])
                        }
                    }
                    output.append(Float(sum))
                    next += 1
                }
            }
        }
        outputCount = next
    }
}

private func greatestCommonDivisor(_ a: Int, _ b: Int) -> Int {
    var (x, y) = (a, b)
    while y != 0 { (x, y) = (y, x % y) }
    return x
}
