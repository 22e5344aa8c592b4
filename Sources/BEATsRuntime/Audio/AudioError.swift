import BEATsCore

/// Why audio could not be read, resampled or turned into features. Each description is one line
/// that says what is wrong and where (byte offset in the file, chunk, count), so the CLI can print
/// it as `error: …`.
public enum AudioError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file could not be opened or mapped.
    case cannotOpen(path: String, reason: String)
    /// The first four bytes are not `RIFF` (nor a RIFF variant we can name).
    case notWAV(found: String)
    /// A RIFF variant this reader does not decode (`RIFX` big-endian, `RF64`).
    case unsupportedContainer(String)
    /// A RIFF file whose form type (offset 8) is not `WAVE`.
    case notWAVE(found: String)
    /// A header field or chunk header that runs past the end of the file.
    case truncated(what: String, offset: Int, fileSize: Int)
    /// A required chunk (`fmt ` or `data`) is absent.
    case missingChunk(String)
    /// The `fmt ` chunk is smaller than its format requires.
    case formatChunkTooShort(size: Int, minimum: Int, offset: Int)
    /// A codec other than integer PCM or IEEE float (A-law, µ-law, ADPCM, MP3, …).
    case unsupportedEncoding(formatTag: UInt16, name: String, offset: Int)
    /// WAVE_FORMAT_EXTENSIBLE with a sub-format GUID that is not PCM or IEEE float.
    case unsupportedSubFormat(guid: String, offset: Int)
    /// A bit depth the encoding does not have (PCM: 8/16/24/32, float: 32/64).
    case unsupportedBitDepth(encoding: String, bits: Int, offset: Int)
    /// Inconsistent or impossible `fmt ` fields (zero channels, zero sample rate, block align).
    case invalidFormat(String, offset: Int)
    /// The `data` chunk holds no complete sample frame.
    case emptyData(offset: Int)
    /// Too few 16 kHz samples for what was asked (one fbank frame, or one BEATs patch), said in
    /// seconds as well as samples so a user can compare it with the clip they know; `path` names
    /// the file when the caller knows it (nil for samples that came from elsewhere).
    case tooShort(path: String?, samples: Int, minimum: Int, purpose: String)
    /// More samples (after resampling to `sampleRate`) than the runtime takes: refused before
    /// resampling, so a small file claiming a tiny sample rate cannot make the loader produce
    /// gigabytes of audio.
    case tooLong(samples: Int, maximum: Int, sampleRate: Int)
    /// A sample rate the resampler refuses (zero, or a ratio needing an unreasonably large kernel).
    case unsupportedSampleRate(from: Int, to: Int, reason: String)
    /// A file that needs libsndfile (anything but integer/float PCM WAV) when libsndfile cannot be
    /// loaded; `format` is what the first bytes look like ("FLAC", "MP3", …), `reason` the loader's.
    case decoderUnavailable(path: String, format: String, reason: String)
    /// A file libsndfile cannot open (AAC/M4A, WMA, garbage, …); `format` is what the first bytes
    /// look like, `reason` libsndfile's own message.
    case undecodable(path: String, format: String, reason: String)
    /// libsndfile opened the file but stopped with an error after `frame` frames (a damaged stream).
    case decodingFailed(path: String, format: String, frame: Int, reason: String)
    /// A file whose header is not what decoding it gives: `format` promised `declared` frames but
    /// the stream ended after `decoded` (a truncated or damaged file).
    case truncatedStream(path: String, format: String, declared: Int, decoded: Int)
    /// One of the path-less errors above (a WAV header's, a sample rate's) for the file at `path`.
    indirect case inFile(path: String, AudioError)

    /// This error as one that names the file at `path`: itself when it already does, else
    /// ``inFile(path:_:)`` around it.
    public func naming(_ path: String) -> AudioError {
        switch self {
        case .cannotOpen, .decoderUnavailable, .undecodable, .decodingFailed, .truncatedStream, .inFile: return self
        case .tooShort(nil, let samples, let minimum, let purpose): return .tooShort(path: path, samples: samples, minimum: minimum, purpose: purpose)
        case .tooShort: return self
        default: return .inFile(path: path, self)
        }
    }

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason):
            return "cannot read audio \(path): \(reason)"
        case .notWAV(let found):
            return "not a WAV file: expected 'RIFF' at offset 0, found \(found)"
        case .unsupportedContainer(let name):
            return "\(name) audio files are not supported (only little-endian RIFF/WAVE)"
        case .notWAVE(let found):
            return "RIFF file is not WAVE: form type at offset 8 is \(found)"
        case .truncated(let what, let offset, let size):
            return "truncated WAV: \(what) at offset \(offset) runs past the end of the file (\(size) bytes)"
        case .missingChunk(let name):
            return "WAV file has no '\(name)' chunk"
        case .formatChunkTooShort(let size, let minimum, let offset):
            return "WAV 'fmt ' chunk at offset \(offset) is \(size) bytes, needs at least \(minimum)"
        case .unsupportedEncoding(let tag, let name, let offset):
            return "unsupported WAV encoding \(name) (format tag 0x\(hex(tag))) at offset \(offset); "
                + "only integer PCM and IEEE float are read"
        case .unsupportedSubFormat(let guid, let offset):
            return "unsupported WAVE_FORMAT_EXTENSIBLE sub-format \(guid) at offset \(offset); "
                + "only PCM and IEEE float are read"
        case .unsupportedBitDepth(let encoding, let bits, let offset):
            return "unsupported WAV bit depth: \(bits)-bit \(encoding) at offset \(offset)"
        case .invalidFormat(let what, let offset):
            return "invalid WAV 'fmt ' chunk at offset \(offset): \(what)"
        case .emptyData(let offset):
            return "WAV 'data' chunk at offset \(offset) holds no complete sample frame"
        case .tooShort(let path, let samples, let minimum, let purpose):
            let rate = BEATsAudio.sampleRate
            return (path.map { "\($0): " } ?? "")
                + "audio is \(seconds(samples, rate: rate, roundingUp: false)) s (\(samples) samples at \(rate / 1000) kHz); "
                + "\(purpose) needs at least \(seconds(minimum, rate: rate, roundingUp: true)) s (\(minimum) samples)"
        case .tooLong(let samples, let maximum, let rate):
            let seconds = { (count: Int) in String(Int((Double(count) / Double(max(rate, 1))).rounded())) }
            return "audio too long: \(samples) samples at \(rate) Hz (\(seconds(samples)) s), at most \(maximum) "
                + "(\(seconds(maximum)) s) are accepted"
        case .unsupportedSampleRate(let from, let to, let reason):
            return "cannot resample \(from) Hz to \(to) Hz: \(reason)"
        case .decoderUnavailable(let path, let format, let reason):
            return "\(path): \(format) audio is decoded by libsndfile, which could not be loaded (\(reason)); "
                + "install Debian's libsndfile1 (apt-get install libsndfile1) or set BEATS_SNDFILE to the library's path"
        case .undecodable(let path, let format, let reason):
            return "\(path): cannot decode \(format) (libsndfile: \(oneLine(reason))); "
                + "convert it to FLAC or WAV first, e.g. ffmpeg -i \(shellQuoted(path)) \(shellQuoted(flacName(path)))"
        case .decodingFailed(let path, let format, let frame, let reason):
            return "\(path): \(format) stream is damaged: decoding stopped after \(frame) frames (libsndfile: \(oneLine(reason)))"
        case .truncatedStream(let path, let format, let declared, let decoded):
            return "\(path): truncated \(format) stream: the header promises \(declared) frames, decoding ended after \(decoded)"
        case .inFile(let path, let error):
            return "\(path): \(error.description)"
        }
    }
}

/// `samples` at `rate` Hz in seconds to the millisecond, at least two decimals ("0.10",
/// "0.175"). A length is rounded down and a minimum up, so a clip one sample short never
/// reads as long enough.
private func seconds(_ samples: Int, rate: Int, roundingUp: Bool) -> String {
    let perMillisecond = max(rate / 1000, 1)
    let count = max(samples, 0)
    let milliseconds = roundingUp ? count / perMillisecond + (count % perMillisecond == 0 ? 0 : 1) : count / perMillisecond
    let fraction = String(milliseconds % 1000)
    var decimals = String(repeating: "0", count: 3 - fraction.count) + fraction
    if decimals.hasSuffix("0") { decimals.removeLast() }
    return "\(milliseconds / 1000).\(decimals)"
}

/// libsndfile's messages end with a period or a newline; one line, no trailing punctuation.
private func oneLine(_ text: String) -> String {
    var line = text.split(whereSeparator: \.isNewline).joined(separator: " ")
    while line.hasSuffix(".") || line.hasSuffix(" ") { line.removeLast() }
    return line
}

/// `path` as a shell word: as is when it holds only safe characters, else in single quotes.
private func shellQuoted(_ path: String) -> String {
    let safe = path.unicodeScalars.allSatisfy { scalar in
        scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || "/._-+,:@%".unicodeScalars.contains(scalar))
    }
    if safe && !path.isEmpty { return path }
    return "'" + path.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
}

/// The file name a converted copy would take: the last path component's extension replaced by
/// `.flac` (`-converted.flac` when it already was), in the current directory.
private func flacName(_ path: String) -> String {
    let name = path.split(separator: "/").last.map(String.init) ?? path
    var stem = name.lastIndex(of: ".").map { name[..<$0] }.map(String.init) ?? name
    if stem.isEmpty { stem = "audio" }
    return stem + (name == stem + ".flac" ? "-converted.flac" : ".flac")
}

private func hex(_ value: UInt16) -> String {
    let digits = String(value, radix: 16, uppercase: true)
    return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
}

/// Renders up to four header bytes for an error message: printable ASCII in quotes, otherwise hex.
func describeTag(_ bytes: UnsafeRawBufferPointer) -> String {
    if bytes.isEmpty { return "end of file" }
    if bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) {
        return "'" + String(decoding: bytes, as: UTF8.self) + "'"
    }
    return "0x" + bytes.map { byte in
        let digits = String(byte, radix: 16, uppercase: true)
        return digits.count == 1 ? "0" + digits : digits
    }.joined()
}
