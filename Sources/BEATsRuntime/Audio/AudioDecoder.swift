import BEATsCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Decodes any supported audio file block by block to mono 16 kHz float samples.
///
/// The format is recognised by content. Integer PCM and IEEE float WAV (plain or
/// WAVE_FORMAT_EXTENSIBLE) are read by ``WAVReader``'s rules (torchaudio's scaling, bit for bit);
/// everything else — FLAC, Ogg Vorbis, Opus, MP3, AIFF, W64, RF64, µ-law and A-law WAV, … — goes
/// through libsndfile, loaded the first time such a file is opened, as libsndfile decodes it to
/// float. Channels are averaged (summed in double, one division) and the result is resampled to
/// 16 kHz by a ``StreamingResampler``, whose output is exactly ``Resampler/resample(_:)``'s on the
/// whole signal: what ``read(maximumCount:)`` returns, concatenated, is what ``AudioLoader`` gives
/// for the whole clip. Memory does not depend on the file's length: one block of frames (at most
/// 65 536 samples over all channels), the resampler's kernel span and one block's output.
///
/// Every error is an ``AudioError`` naming the file. A decoder is used from one thread at a time.
public final class AudioDecoder {
    /// The file, as given.
    public let path: String
    /// The file's own sample rate.
    public let sourceSampleRate: Int
    public let channelCount: Int
    /// Frames in the file at its own rate when the header says (nil when unknown).
    public let sourceFrameCount: Int?
    /// What the file is, for messages: "WAV", "FLAC", "Ogg Vorbis", "MP3", …
    public let formatName: String

    private let source: AudioSource
    private var resampler: StreamingResampler
    /// Resampled samples not yet returned: `pending[pendingHead...]`.
    private var pending: [Float] = []
    private var pendingHead = 0
    private var sourceFinished = false
    private var failure: AudioError?

    /// Samples (over all channels) read from the file per block.
    static let blockSamples = 1 << 16

    /// Opens `path`, recognising the format by its content. Refuses files below
    /// ``BEATsAudio/minimumFileSampleRate`` (a few bytes claiming 1 Hz would become minutes of audio).
    public convenience init(path: String) throws(AudioError) {
        try self.init(path: path, targetSampleRate: BEATsAudio.sampleRate, minimumSourceRate: BEATsAudio.minimumFileSampleRate)
    }

    /// Opens `path` for decoding to `targetSampleRate`; files below `minimumSourceRate` are refused
    /// (``AudioLoader`` checks the length before the rate, so it passes 1 and checks itself).
    init(path: String, targetSampleRate: Int, minimumSourceRate: Int) throws(AudioError) {
        self.path = path
        let file: MappedFile
        do {
            file = try MappedFile(path: path)
        } catch {
            throw .cannotOpen(path: path, reason: openFailureReason(error))
        }
        let content = AudioContent(file.bytes)
        let source: AudioSource
        switch content {
        case .wav(let wavResult):
            switch wavResult {
            case .success(let info):
                source = WAVSource(file: file, info: info)
            case .failure(let error):
                switch error {
                case .unsupportedEncoding, .unsupportedSubFormat:
                    // A WAV codec we do not decode ourselves (µ-law, A-law, ADPCM, GSM, …): libsndfile.
                    source = try SndFileSource(path: path, content: content)
                default:
                    throw .inFile(path: path, error)
                }
            }
        case .other:
            source = try SndFileSource(path: path, content: content)
        }
        guard source.sampleRate > 0, source.channels > 0 else {
            throw .inFile(path: path, .invalidFormat("\(source.channels) channels at \(source.sampleRate) Hz", offset: 0))
        }
        guard source.sampleRate >= minimumSourceRate else {
            throw .inFile(path: path, .unsupportedSampleRate(
                from: source.sampleRate, to: targetSampleRate,
                reason: "files below \(minimumSourceRate) Hz are refused (upsampling would make minutes of audio out of a few bytes)"))
        }
        do {
            resampler = try StreamingResampler(from: source.sampleRate, to: targetSampleRate)
        } catch {
            throw .inFile(path: path, error)
        }
        self.source = source
        self.sourceSampleRate = source.sampleRate
        self.channelCount = source.channels
        self.sourceFrameCount = source.frameCount
        self.formatName = source.formatName
    }

    /// The next up to `maximumCount` 16 kHz mono samples; empty at the end of the file. A damaged
    /// stream throws once the samples before the damage have been returned.
    public func read(maximumCount: Int) throws(AudioError) -> [Float] {
        if let failure { throw failure }
        guard maximumCount > 0 else { return [] }
        var result: [Float] = []
        result.reserveCapacity(min(maximumCount, AudioDecoder.blockSamples))
        while result.count < maximumCount {
            if pendingHead < pending.count {
                let take = min(maximumCount - result.count, pending.count - pendingHead)
                result += pending[pendingHead..<pendingHead + take]
                pendingHead += take
                continue
            }
            if sourceFinished { break }
            pending.removeAll(keepingCapacity: true)
            pendingHead = 0
            let block: [Float]
            do {
                block = try source.readMono(maximumSamples: AudioDecoder.blockSamples)
            } catch {
                // The samples decoded before the damage are returned first; the error comes with
                // the next call (and every one after).
                failure = error
                if result.isEmpty { throw error }
                return result
            }
            if block.isEmpty {
                sourceFinished = true
                resampler.finish(into: &pending)
            } else {
                resampler.push(block, into: &pending)
            }
        }
        return result
    }
}

/// What a file's first bytes say it is.
enum AudioContent {
    /// RIFF/WAVE: the header parsed by ``WAVReader``, or why not.
    case wav(Result<WAVInfo, AudioError>)
    /// Anything else, named from its magic bytes for messages ("FLAC", "MP4/M4A (AAC, ALAC)", …).
    case other(name: String)

    init(_ bytes: UnsafeRawBufferPointer) {
        func starts(_ text: String, at offset: Int = 0) -> Bool {
            let tag = Array(text.utf8)
            return bytes.count >= offset + tag.count && zip(bytes[offset...], tag).allSatisfy { $0 == $1 }
        }
        if starts("RIFF") && starts("WAVE", at: 8) {
            do throws(AudioError) {
                self = .wav(.success(try WAVReader.parse(bytes)))
            } catch {
                self = .wav(.failure(error))
            }
            return
        }
        let name: String
        if starts("fLaC") { name = "FLAC" }
        else if starts("OggS") { name = "Ogg" }
        else if starts("FORM") && (starts("AIFF", at: 8) || starts("AIFC", at: 8)) { name = "AIFF" }
        else if starts("riff") { name = "W64" }
        else if starts("RF64") || starts("BW64") { name = "RF64" }
        else if starts("RIFX") { name = "RIFX" }
        else if starts("RIFF") { name = "RIFF (not WAVE)" }
        else if starts("caff") { name = "CAF" }
        else if starts(".snd") { name = "AU" }
        else if starts("ID3") { name = "MP3" }
        else if starts("ftyp", at: 4) { name = "MP4/M4A (AAC, ALAC)" }
        else if starts("#!AMR") { name = "AMR" }
        else if starts("MAC ") { name = "Monkey's Audio" }
        else if starts("wvpk") { name = "WavPack" }
        else if bytes.count >= 4, bytes[0] == 0x30, bytes[1] == 0x26, bytes[2] == 0xB2, bytes[3] == 0x75 { name = "ASF/WMA" }
        else if bytes.count >= 2, bytes[0] == 0xFF, bytes[1] & 0xE0 == 0xE0 {
            // MPEG audio frame sync; layer bits 00 are ADTS (AAC), not MPEG-1/2 audio.
            name = bytes[1] & 0x06 == 0 ? "AAC (ADTS)" : "MPEG audio"
        } else if bytes.isEmpty { name = "an empty file" }
        else { name = "unrecognised content (first bytes \(describeTag(UnsafeRawBufferPointer(rebasing: bytes.prefix(4)))))" }
        self = .other(name: name)
    }

    /// For messages: the format the bytes look like.
    var name: String {
        switch self {
        case .wav(.success): return "WAV"
        case .wav(.failure(let error)):
            switch error {
            case .unsupportedEncoding(_, let codec, _): return "WAV (\(codec))"
            case .unsupportedSubFormat(let guid, _): return "WAV (sub-format \(guid))"
            default: return "WAV"
            }
        case .other(let name): return name
        }
    }
}

/// A file's samples, block by block, channels averaged to mono, at the file's own rate.
protocol AudioSource: AnyObject {
    var sampleRate: Int { get }
    var channels: Int { get }
    var frameCount: Int? { get }
    var formatName: String { get }
    /// The next frames (at most `maximumSamples` samples over all channels, at least one frame),
    /// averaged to mono; empty at the end.
    func readMono(maximumSamples: Int) throws(AudioError) -> [Float]
}

/// Integer PCM / float WAV from the mapped file, by ``WAVReader``'s rules. Pages already decoded
/// are handed back to the kernel, so resident memory stays one block however long the file.
final class WAVSource: AudioSource {
    let file: MappedFile
    let info: WAVInfo
    private var nextFrame = 0
    /// File offset up to which decoded pages were handed back (a page boundary).
    private var releasedUpTo: Int


    init(file: MappedFile, info: WAVInfo) {
        self.file = file
        self.info = info
        releasedUpTo = info.dataOffset / MappedFile.pageSize * MappedFile.pageSize
        file.advise(.sequential)
    }

    var sampleRate: Int { info.sampleRate }
    var channels: Int { info.channels }
    var frameCount: Int? { info.frameCount }
    var formatName: String { "WAV" }

    func readMono(maximumSamples: Int) throws(AudioError) -> [Float] {
        let frames = max(1, maximumSamples / max(info.channels, 1))
        let range = nextFrame..<min(info.frameCount, nextFrame + frames)
        guard !range.isEmpty else { return [] }
        let samples = WAVReader.decodeMono(file.bytes, info: info, frames: range)
        // Release from the last page boundary released to, so the page a block ends in goes back
        // with the next block instead of staying resident (one page per block adds up: 43 MB
        // over two hours of 48 kHz stereo).
        let end = WAVReader.byteRange(of: range, info: info).upperBound
        if end > releasedUpTo {
            file.releasePages(in: UnsafeRawBufferPointer(rebasing: file.bytes[releasedUpTo..<end]))
            releasedUpTo = max(releasedUpTo, end / MappedFile.pageSize * MappedFile.pageSize)
        }
        nextFrame = range.upperBound
        return samples
    }
}

/// Any format libsndfile reads, decoded with `sf_readf_float`.
final class SndFileSource: AudioSource {
    let path: String
    let library: SndFileLibrary
    private var handle: OpaquePointer?
    let sampleRate: Int
    let channels: Int
    let frameCount: Int?
    let formatName: String
    private var framesRead = 0
    private var buffer: [Float]

    /// Most channels taken (libsndfile's own limit, SF_MAX_CHANNELS, is 1024).
    static let maximumChannels = 1024

    init(path: String, content: AudioContent) throws(AudioError) {
        self.path = path
        switch SndFileLibrary.shared {
        case .success(let library): self.library = library
        case .failure(let failure): throw .decoderUnavailable(path: path, format: content.name, reason: failure.reason)
        }
        guard let (handle, info) = library.open(path: path) else {
            var reason = library.errorText(nil).map { String(cString: $0) } ?? "unknown error"
            // libsndfile's MPEG probe reports a file without a decodable frame this way; the file
            // is there (it was just mapped), so say what is meant.
            if reason.hasPrefix("File does not exist or is not a regular file") { reason = "no decodable MPEG audio frames" }
            throw .undecodable(path: path, format: content.name, reason: reason)
        }
        self.handle = handle
        let name = SndFileLibrary.formatName(info.format)
        formatName = name
        guard info.channels > 0, Int(info.channels) <= SndFileSource.maximumChannels else {
            _ = library.close(handle)
            self.handle = nil
            throw .inFile(path: path, .invalidFormat("\(name) with \(info.channels) channels (1 to \(SndFileSource.maximumChannels) are read)", offset: 0))
        }
        guard info.sampleRate > 0 else {
            _ = library.close(handle)
            self.handle = nil
            throw .inFile(path: path, .invalidFormat("\(name) at \(info.sampleRate) Hz", offset: 0))
        }
        sampleRate = Int(info.sampleRate)
        channels = Int(info.channels)
        // SF_COUNT_MAX means "unknown" (a pipe, a stream without a length), and so does a FLAC
        // STREAMINFO total of 0.
        let known = info.frames >= 0 && info.frames < Int64.max && !(name == "FLAC" && info.frames == 0)
        frameCount = known ? Int(info.frames) : nil
        let frames = max(1, AudioDecoder.blockSamples / channels)
        buffer = [Float](repeating: 0, count: frames * channels)
    }

    deinit {
        if let handle { _ = library.close(handle) }
    }

    func readMono(maximumSamples: Int) throws(AudioError) -> [Float] {
        guard let handle else { return [] }
        let channels = self.channels
        let frames = max(1, min(maximumSamples, buffer.count) / channels)
        let read = buffer.withUnsafeMutableBufferPointer { library.readFloatFrames(handle, $0.baseAddress, Int64(frames)) }
        guard read > 0, read <= Int64(frames) else {
            let status = library.errorNumber(handle)
            if read < 0 || read > Int64(frames) || status != 0 {
                let reason = library.errorText(handle).map { String(cString: $0) } ?? "error \(status)"
                throw .decodingFailed(path: path, format: formatName, frame: framesRead, reason: reason)
            }
            // The end. A FLAC STREAMINFO total is exact: a stream that ends before it is damaged.
            // (libsndfile clamps PCM containers' counts to the file; MP3 and Ogg counts can be
            // estimates, and FFmpeg and soundfile take what decodes.)
            if let declared = frameCount, framesRead < declared, formatName == "FLAC" {
                throw .truncatedStream(path: path, format: formatName, declared: declared, decoded: framesRead)
            }
            _ = library.close(handle)
            self.handle = nil
            return []
        }
        let count = Int(read)
        framesRead += count
        return buffer.withUnsafeBufferPointer { samples in
            [Float](unsafeUninitializedCapacity: count) { output, initialized in
                if channels == 1 {
                    for frame in 0..<count { output[frame] = samples[frame] }
                } else {
                    let divisor = Double(channels)
                    for frame in 0..<count {
                        var sum = 0.0
                        let start = frame * channels
                        for channel in 0..<channels { sum += Double(samples[start + channel]) }
                        output[frame] = Float(sum / divisor)
                    }
                }
                initialized = count
            }
        }
    }
}

/// `FileAccessError`'s reason without the path it repeats.
func openFailureReason(_ error: FileAccessError) -> String {
    switch error {
    case .open(_, let code), .stat(_, let code), .map(_, let code):
        return String(cString: strerror(code))
    case .notARegularFile: return "not a regular file"
    }
}
