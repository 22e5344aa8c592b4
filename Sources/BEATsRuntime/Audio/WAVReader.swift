import BEATsCore

/// How one sample is stored in a WAV `data` chunk.
public enum WAVSampleEncoding: Equatable, Sendable {
    /// 8-bit PCM, unsigned with 128 as zero.
    case unsigned8
    /// Signed little-endian PCM of 16, 24 or 32 bits.
    case signedInteger(bits: Int)
    /// IEEE float of 32 or 64 bits.
    case float(bits: Int)

    public var bytesPerSample: Int {
        switch self {
        case .unsigned8: return 1
        case .signedInteger(let bits), .float(let bits): return bits / 8
        }
    }
}

/// What a WAV header says about its samples, and where they are.
public struct WAVInfo: Equatable, Sendable {
    public let encoding: WAVSampleEncoding
    public let channels: Int
    public let sampleRate: Int
    /// True when the `fmt ` chunk was WAVE_FORMAT_EXTENSIBLE (0xFFFE).
    public let isExtensible: Bool
    /// File offset of the first sample byte.
    public let dataOffset: Int
    /// Complete sample frames (one sample per channel) present in the file.
    public let frameCount: Int
    /// Bytes of one frame: channels × bytes per sample.
    public var frameSize: Int { channels * encoding.bytesPerSample }
}

/// A RIFF/WAVE parser for hostile input: every read is bounds-checked against the real file,
/// chunks may come in any order, odd-sized chunks are followed by their pad byte, and anything
/// other than integer PCM (8/16/24/32-bit) or IEEE float (32/64-bit), plain or
/// WAVE_FORMAT_EXTENSIBLE, is refused with an error naming the offset.
///
/// Samples are scaled to [-1, 1] exactly as `torchaudio.load` (FFmpeg through TorchCodec) gives
/// them, checked against torchaudio 2.11 on generated files: int16 / 2^15, int24 / 2^23,
/// int32 rounded to float then / 2^31, uint8 (x − 128) / 2^7, float32 as stored, float64 rounded
/// to float32 (float values outside [-1, 1] are kept, as torchaudio keeps them). Several
/// channels are averaged to mono.
///
/// Decisions where files disagree with their headers (FFmpeg's rules, which torchaudio follows):
/// a `data` size of 0 or 0xFFFFFFFF (left by streaming writers) or one larger than the rest of
/// the file means "samples run to the end of the file"; a trailing partial frame is dropped
/// (FFmpeg fails on it instead); the RIFF size field is not trusted.
public enum WAVReader {
    /// Reads a WAV file and averages its channels to mono, at the file's own sample rate.
    public static func read(path: String) throws(AudioError) -> AudioClip {
        let file: MappedFile
        do {
            file = try MappedFile(path: path)
        } catch {
            throw .cannotOpen(path: path, reason: openFailureReason(error))
        }
        return try read(file)
    }

    /// Reads a mapped WAV file (mono, native sample rate).
    public static func read(_ file: MappedFile) throws(AudioError) -> AudioClip {
        try read(file.bytes)
    }

    /// Reads WAV bytes (mono, native sample rate).
    public static func read(_ bytes: UnsafeRawBufferPointer) throws(AudioError) -> AudioClip {
        let info = try parse(bytes)
        return AudioClip(sampleRate: info.sampleRate, samples: decodeMono(bytes, info: info))
    }

    /// Reads WAV bytes held in an array (mono, native sample rate).
    public static func read(_ bytes: [UInt8]) throws(AudioError) -> AudioClip {
        // withUnsafeBytes is rethrows-untyped; carry the typed error out by hand.
        let result: Result<AudioClip, AudioError> = bytes.withUnsafeBytes { raw in
            do throws(AudioError) { return .success(try read(raw)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    // MARK: - Header

    /// Walks the RIFF chunks and returns the format and the location of the samples.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(AudioError) -> WAVInfo {
        let fileSize = bytes.count
        var reader = ByteReader(bytes)
        guard fileSize > 0 else { throw .notWAV(found: "an empty file") }
        let magicLength = min(4, fileSize)
        let magic = UnsafeRawBufferPointer(rebasing: bytes[0..<magicLength])
        switch Array(magic) {
        case Array("RIFF".utf8): break
        case Array("RIFX".utf8): throw .unsupportedContainer("RIFX (big-endian RIFF)")
        case Array("RF64".utf8), Array("BW64".utf8): throw .unsupportedContainer(String(decoding: magic, as: UTF8.self))
        default:
            if magicLength < 4, Array("RIFF".utf8).starts(with: magic) {
                throw .truncated(what: "RIFF header", offset: 0, fileSize: fileSize)
            }
            throw .notWAV(found: describeTag(magic))
        }
        _ = reader.skip(4)
        // The RIFF size (offset 4) is not trusted: streaming writers leave 0 or 0xFFFFFFFF there.
        guard reader.readInteger(UInt32.self) != nil, let form = reader.readBytes(4) else {
            throw .truncated(what: "RIFF header", offset: 0, fileSize: fileSize)
        }
        guard Array(form) == Array("WAVE".utf8) else { throw .notWAVE(found: describeTag(form)) }

        var format: (format: ParsedFormat, offset: Int)?
        var data: (chunkOffset: Int, bodyOffset: Int, length: Int)?
        while format == nil || data == nil {
            let chunkOffset = reader.fileOffset
            if reader.isAtEnd { break }
            guard let id = reader.readBytes(4), let declared = reader.readInteger(UInt32.self) else {
                throw .truncated(what: "chunk header", offset: chunkOffset, fileSize: fileSize)
            }
            let name = describeTag(id)
            let bodyOffset = reader.fileOffset
            let size = Int(declared)
            if Array(id) == Array("data".utf8) {
                // 0 and 0xFFFFFFFF are "unknown length" markers; an oversized chunk was cut short.
                // In all three cases the samples run to the end of the file, as FFmpeg reads them.
                let runsToEnd = declared == 0 || declared == UInt32.max || size > reader.remaining
                let length = runsToEnd ? reader.remaining : size
                if data == nil { data = (chunkOffset, bodyOffset, length) }
                _ = reader.skip(length)
            } else {
                guard size <= reader.remaining else {
                    throw .truncated(what: "\(name) chunk of \(size) bytes", offset: chunkOffset, fileSize: fileSize)
                }
                if Array(id) == Array("fmt ".utf8), format == nil {
                    let body = UnsafeRawBufferPointer(rebasing: bytes[bodyOffset..<bodyOffset + size])
                    format = (try parseFormat(body, chunkOffset: chunkOffset), chunkOffset)
                }
                _ = reader.skip(size)
            }
            // RIFF chunks are word-aligned: an odd-sized chunk is followed by a pad byte (which a
            // file may lack at its very end).
            if size % 2 == 1 { _ = reader.skip(1) }
        }
        guard let format else { throw .missingChunk("fmt ") }
        guard let data else { throw .missingChunk("data") }
        let frameSize = format.format.channels * format.format.encoding.bytesPerSample
        let frames = data.length / frameSize
        guard frames > 0 else { throw .emptyData(offset: data.chunkOffset) }
        return WAVInfo(encoding: format.format.encoding, channels: format.format.channels,
                       sampleRate: format.format.sampleRate, isExtensible: format.format.isExtensible,
                       dataOffset: data.bodyOffset, frameCount: frames)
    }

    struct ParsedFormat {
        var encoding: WAVSampleEncoding
        var channels: Int
        var sampleRate: Int
        var isExtensible: Bool
    }

    private static let waveFormatPCM: UInt16 = 0x0001
    private static let waveFormatIEEEFloat: UInt16 = 0x0003
    private static let waveFormatExtensible: UInt16 = 0xFFFE
    /// Bytes 4–15 of every KSDATAFORMAT_SUBTYPE_* GUID built from a WAVE format tag
    /// ({0000xxxx-0000-0010-8000-00AA00389B71}); bytes 0–3 hold the tag.
    private static let subFormatGUIDTail: [UInt8] = [0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71]

    static func parseFormat(_ body: UnsafeRawBufferPointer, chunkOffset: Int) throws(AudioError) -> ParsedFormat {
        // Offsets in errors point at the chunk header, which is where a reader looks first.
        guard body.count >= 16 else { throw .formatChunkTooShort(size: body.count, minimum: 16, offset: chunkOffset) }
        var reader = ByteReader(body, base: chunkOffset + 8)
        guard let tag = reader.readInteger(UInt16.self),
              let channels = reader.readInteger(UInt16.self),
              let sampleRate = reader.readInteger(UInt32.self),
              reader.readInteger(UInt32.self) != nil,  // byte rate: derived, not needed
              let blockAlign = reader.readInteger(UInt16.self),
              let bits = reader.readInteger(UInt16.self)
        else { throw .formatChunkTooShort(size: body.count, minimum: 16, offset: chunkOffset) }

        var codec = tag
        let isExtensible = tag == waveFormatExtensible
        if isExtensible {
            // cbSize (2), valid bits (2), channel mask (4), sub-format GUID (16).
            guard body.count >= 40, reader.seek(to: 24), let guid = reader.readBytes(16) else {
                throw .formatChunkTooShort(size: body.count, minimum: 40, offset: chunkOffset)
            }
            let guidTag = guid.loadInteger(UInt32.self, at: 0) ?? 0
            guard Array(guid[4..<16]) == subFormatGUIDTail, guidTag <= UInt32(UInt16.max) else {
                throw .unsupportedSubFormat(guid: guidText(guid), offset: chunkOffset)
            }
            codec = UInt16(guidTag)
        }

        let encoding: WAVSampleEncoding
        switch codec {
        case waveFormatPCM:
            switch bits {
            case 8: encoding = .unsigned8
            case 16, 24, 32: encoding = .signedInteger(bits: Int(bits))
            default: throw .unsupportedBitDepth(encoding: "integer PCM", bits: Int(bits), offset: chunkOffset)
            }
        case waveFormatIEEEFloat:
            guard bits == 32 || bits == 64 else {
                throw .unsupportedBitDepth(encoding: "IEEE float", bits: Int(bits), offset: chunkOffset)
            }
            encoding = .float(bits: Int(bits))
        default:
            throw .unsupportedEncoding(formatTag: codec, name: encodingName(codec), offset: chunkOffset)
        }
        guard channels > 0 else { throw .invalidFormat("0 channels", offset: chunkOffset) }
        guard sampleRate > 0 else { throw .invalidFormat("sample rate 0 Hz", offset: chunkOffset) }
        let frameSize = Int(channels) * encoding.bytesPerSample
        guard Int(blockAlign) == frameSize else {
            throw .invalidFormat("block align \(blockAlign), but \(channels) channels of \(bits)-bit samples take \(frameSize) bytes",
                                 offset: chunkOffset)
        }
        return ParsedFormat(encoding: encoding, channels: Int(channels), sampleRate: Int(sampleRate), isExtensible: isExtensible)
    }

    /// Names of the WAVE format tags people meet in practice (mmreg.h), for error messages.
    static func encodingName(_ tag: UInt16) -> String {
        switch tag {
        case 0x0000: return "unknown (0)"
        case 0x0002: return "Microsoft ADPCM"
        case 0x0006: return "A-law"
        case 0x0007: return "µ-law"
        case 0x0011: return "IMA ADPCM"
        case 0x0031: return "GSM 6.10"
        case 0x0050: return "MPEG audio"
        case 0x0055: return "MP3"
        case 0x00FF: return "AAC"
        case 0x0092: return "Dolby AC-3 SPDIF"
        case 0x2000: return "AC-3"
        case 0xF1AC: return "FLAC"
        case 0xFFFE: return "WAVE_FORMAT_EXTENSIBLE"
        default: return "format 0x\(String(tag, radix: 16, uppercase: true))"
        }
    }

    private static func guidText(_ guid: UnsafeRawBufferPointer) -> String {
        func hex(_ range: Range<Int>, reversed: Bool) -> String {
            let part = Array(guid[range])
            return (reversed ? part.reversed() : part).map { byte in
                let digits = String(byte, radix: 16, uppercase: true)
                return digits.count == 1 ? "0" + digits : digits
            }.joined()
        }
        return "{\(hex(0..<4, reversed: true))-\(hex(4..<6, reversed: true))-\(hex(6..<8, reversed: true))-"
            + "\(hex(8..<10, reversed: false))-\(hex(10..<16, reversed: false))}"
    }

    // MARK: - Samples

    /// Decodes `info.frameCount` frames to float, scaled as torchaudio scales them, and averages
    /// the channels (sum in double, then one division), as `mean(dim=0)` over channels does.
    public static func decodeMono(_ bytes: UnsafeRawBufferPointer, info: WAVInfo) -> [Float] {
        decodeMono(bytes, info: info, frames: 0..<info.frameCount)
    }

    /// ``decodeMono(_:info:)`` for the frames in `frames` only (clamped to the file's frames), so
    /// a long file can be decoded block by block.
    public static func decodeMono(_ bytes: UnsafeRawBufferPointer, info: WAVInfo, frames: Range<Int>) -> [Float] {
        let channels = info.channels
        let lower = max(frames.lowerBound, 0)
        let upper = min(frames.upperBound, info.frameCount)
        guard lower < upper, channels > 0 else { return [] }
        // parse() guarantees frameCount × frameSize bytes from dataOffset; re-check rather than trust.
        guard let needed = checkedProduct([info.frameCount, info.frameSize]), info.dataOffset >= 0,
              needed <= bytes.count - info.dataOffset
        else { return [] }
        let start = info.dataOffset + lower * info.frameSize
        let data = UnsafeRawBufferPointer(rebasing: bytes[start..<start + (upper - lower) * info.frameSize])
        let count = upper - lower
        switch info.encoding {
        case .unsigned8: return mix(data, frames: count, channels: channels, UnsignedByteSample())
        case .signedInteger(bits: 16): return mix(data, frames: count, channels: channels, Int16Sample())
        case .signedInteger(bits: 24): return mix(data, frames: count, channels: channels, Int24Sample())
        case .signedInteger: return mix(data, frames: count, channels: channels, Int32Sample())
        case .float(bits: 32): return mix(data, frames: count, channels: channels, Float32Sample())
        case .float: return mix(data, frames: count, channels: channels, Float64Sample())
        }
    }

    /// Byte range of `frames` (clamped) in the file, for releasing decoded pages.
    static func byteRange(of frames: Range<Int>, info: WAVInfo) -> Range<Int> {
        let lower = max(frames.lowerBound, 0), upper = max(lower, min(frames.upperBound, info.frameCount))
        return info.dataOffset + lower * info.frameSize ..< info.dataOffset + upper * info.frameSize
    }

    /// One loop per encoding (generic, so each is specialised and the per-sample decode inlined).
    private static func mix<Decoder: SampleDecoder>(_ data: UnsafeRawBufferPointer, frames: Int, channels: Int,
                                                    _ decoder: Decoder) -> [Float] {
        let width = Decoder.width
        return [Float](unsafeUninitializedCapacity: frames) { output, initialized in
            if channels == 1 {
                for frame in 0..<frames { output[frame] = decoder.sample(data, at: frame * width) }
            } else {
                let frameSize = channels * width
                let count = Double(channels)
                for frame in 0..<frames {
                    var sum = 0.0
                    let start = frame * frameSize
                    for channel in 0..<channels { sum += Double(decoder.sample(data, at: start + channel * width)) }
                    output[frame] = Float(sum / count)
                }
            }
            initialized = frames
        }
    }
}

/// Decodes one stored sample to float, scaled as torchaudio (FFmpeg) scales it.
private protocol SampleDecoder {
    static var width: Int { get }
    func sample(_ data: UnsafeRawBufferPointer, at offset: Int) -> Float
}

private struct UnsignedByteSample: SampleDecoder {
    static var width: Int { 1 }
    @inline(__always) func sample(_ data: UnsafeRawBufferPointer, at offset: Int) -> Float {
        (Float(data[offset]) - 128) / 128
    }
}

private struct Int16Sample: SampleDecoder {
    static var width: Int { 2 }
    @inline(__always) func sample(_ data: UnsafeRawBufferPointer, at offset: Int) -> Float {
        Float(Int16(littleEndian: data.loadUnaligned(fromByteOffset: offset, as: Int16.self))) / 32768
    }
}

private struct Int24Sample: SampleDecoder {
    static var width: Int { 3 }
    @inline(__always) func sample(_ data: UnsafeRawBufferPointer, at offset: Int) -> Float {
        let value = Int32(data[offset]) | Int32(data[offset + 1]) << 8 | Int32(Int8(bitPattern: data[offset + 2])) << 16
        return Float(value) / 8_388_608
    }
}

private struct Int32Sample: SampleDecoder {
    static var width: Int { 4 }
    /// Int32 → Float rounds to nearest even (2^31 − 1 becomes 2^31, so 1.0), as FFmpeg does.
    @inline(__always) func sample(_ data: UnsafeRawBufferPointer, at offset: Int) -> Float {
        Float(Int32(littleEndian: data.loadUnaligned(fromByteOffset: offset, as: Int32.self))) / 2_147_483_648
    }
}

private struct Float32Sample: SampleDecoder {
    static var width: Int { 4 }
    @inline(__always) func sample(_ data: UnsafeRawBufferPointer, at offset: Int) -> Float {
        Float(bitPattern: UInt32(littleEndian: data.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
    }
}

private struct Float64Sample: SampleDecoder {
    static var width: Int { 8 }
    @inline(__always) func sample(_ data: UnsafeRawBufferPointer, at offset: Int) -> Float {
        Float(Double(bitPattern: UInt64(littleEndian: data.loadUnaligned(fromByteOffset: offset, as: UInt64.self))))
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
