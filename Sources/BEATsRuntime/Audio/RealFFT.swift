#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Two signals side by side: lane 0 and lane 1 are independent transforms that share every
/// instruction (SSE2 processes both at once).
typealias FFTLanes = SIMD2<Double>

/// Power spectra of real signals whose length is a power of two, in double precision, two
/// signals at a time (one per SIMD lane).
///
/// The real input of length N is packed as N/2 complex values (even samples real, odd samples
/// imaginary), transformed by an iterative radix-2 FFT (the first two stages fused as one
/// radix-4 pass), and the two interleaved half-spectra are separated with one twiddle per bin.
/// Twiddles and the bit-reversal permutation are computed once; a transform allocates nothing
/// (the caller passes the work buffers).
struct RealFFT: Sendable {
    /// Real input length N.
    let length: Int
    /// N / 2: the complex transform size.
    let half: Int
    /// Position of complex input n after bit reversal.
    let bitReversed: [Int]
    /// Butterfly twiddles for the stages of size 8, 16, …, N/2, each stage's e^{-2πik/size}
    /// (k < size/2) stored contiguously: cosines in `stageCos`, sines in `stageSin`, stage of
    /// size s starting at s/2 − 4 (sizes 2 and 4 need no multiplications and are done together).
    /// (Every twiddle is stored in both lanes, so the butterflies need no broadcasts.)
    private let stageCos: [FFTLanes]
    private let stageSin: [FFTLanes]
    /// e^{-2πik/N} for k < N/2 (the split step's twiddles).
    private let splitCos: [FFTLanes]
    private let splitSin: [FFTLanes]

    init(length: Int) {
        precondition(length >= 8 && length & (length - 1) == 0, "RealFFT length must be a power of two ≥ 8")
        self.length = length
        half = length / 2
        var bits = 0
        while (1 << bits) < half { bits += 1 }
        bitReversed = (0..<half).map { index in
            var reversed = 0
            for bit in 0..<bits where index & (1 << bit) != 0 { reversed |= 1 << (bits - 1 - bit) }
            return reversed
        }
        var stageCos: [FFTLanes] = []
        var stageSin: [FFTLanes] = []
        var size = 8
        while size <= half {
            for k in 0..<(size / 2) {
                let angle = -2 * Double.pi * Double(k) / Double(size)
                stageCos.append(FFTLanes(repeating: cos(angle)))
                stageSin.append(FFTLanes(repeating: sin(angle)))
            }
            size *= 2
        }
        self.stageCos = stageCos
        self.stageSin = stageSin
        splitCos = (0..<half).map { FFTLanes(repeating: cos(-2 * Double.pi * Double($0) / Double(length))) }
        splitSin = (0..<half).map { FFTLanes(repeating: sin(-2 * Double.pi * Double($0) / Double(length))) }
    }

    /// |X[k]|² for k in 0 ..< N/2 of the real signals already packed into `real`/`imaginary`
    /// (complex input n = signal[2n] + i·signal[2n+1], stored at `bitReversed[n]`), one signal
    /// per lane. The Nyquist bin is not produced. `real` and `imaginary` (N/2 each) are
    /// overwritten.
    func powerSpectrum(real: UnsafeMutablePointer<FFTLanes>, imaginary: UnsafeMutablePointer<FFTLanes>,
                       into power: UnsafeMutablePointer<FFTLanes>) {
        let n = half
        // Stages of size 2 and 4 at once (twiddles 1 and −i): a radix-4 butterfly on
        // bit-reversed input.
        var start = 0
        while start < n {
            let r0 = real[start], i0 = imaginary[start]
            let r1 = real[start + 1], i1 = imaginary[start + 1]
            let r2 = real[start + 2], i2 = imaginary[start + 2]
            let r3 = real[start + 3], i3 = imaginary[start + 3]
            let sr01 = r0 + r1, si01 = i0 + i1, dr01 = r0 - r1, di01 = i0 - i1
            let sr23 = r2 + r3, si23 = i2 + i3, dr23 = r2 - r3, di23 = i2 - i3
            real[start] = sr01 + sr23; imaginary[start] = si01 + si23
            real[start + 2] = sr01 - sr23; imaginary[start + 2] = si01 - si23
            // (dr23 + i·di23)·(−i) = di23 − i·dr23
            real[start + 1] = dr01 + di23; imaginary[start + 1] = di01 - dr23
            real[start + 3] = dr01 - di23; imaginary[start + 3] = di01 + dr23
            start += 4
        }
        stageCos.withUnsafeBufferPointer { stageCos in
            stageSin.withUnsafeBufferPointer { stageSin in
                guard let cosBase = stageCos.baseAddress, let sinBase = stageSin.baseAddress else { return }
                var size = 8
                while size <= n {
                    let halfSize = size / 2
                    let twiddleCos = cosBase + (halfSize - 4)
                    let twiddleSin = sinBase + (halfSize - 4)
                    var group = 0
                    while group < n {
                        let realA = real + group, imaginaryA = imaginary + group
                        let realB = realA + halfSize, imaginaryB = imaginaryA + halfSize
                        for k in 0..<halfSize {
                            let wr = twiddleCos[k], wi = twiddleSin[k]
                            let br = realB[k], bi = imaginaryB[k]
                            let tr = wr * br - wi * bi
                            let ti = wr * bi + wi * br
                            let ar = realA[k], ai = imaginaryA[k]
                            realB[k] = ar - tr; imaginaryB[k] = ai - ti
                            realA[k] = ar + tr; imaginaryA[k] = ai + ti
                        }
                        group += size
                    }
                    size *= 2
                }
            }
        }
        // Separate the even- and odd-sample spectra: E = (Z[k] + conj Z[n−k]) / 2,
        // O = (Z[k] − conj Z[n−k]) / 2i, X[k] = E + e^{−2πik/N}·O. Computed as 2E, 2O and 2X
        // (halving is exact, so |X|² = |2X|² / 4 is the same number).
        let dc = real[0] + imaginary[0]
        power[0] = dc * dc
        splitCos.withUnsafeBufferPointer { splitCos in
            splitSin.withUnsafeBufferPointer { splitSin in
                for k in 1..<n {
                    let zr = real[k], zi = imaginary[k]
                    let cr = real[n - k], ci = imaginary[n - k]
                    let er = zr + cr, ei = zi - ci
                    let or = zi + ci, oi = cr - zr
                    let wr = splitCos[k], wi = splitSin[k]
                    let xr = er + wr * or - wi * oi
                    let xi = ei + wr * oi + wi * or
                    power[k] = 0.25 * (xr * xr + xi * xi)
                }
            }
        }
    }
}
