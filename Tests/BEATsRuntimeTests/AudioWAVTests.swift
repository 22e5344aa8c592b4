import BEATsCore
import BEATsRuntime
import BEATsTestSupport
import Foundation
import Testing

/// Builds WAV bytes chunk by chunk, so each test states exactly what is in its file.
struct WAVBuilder {
    static func chunk(_ id: String, _ body: [UInt8], declaredSize: UInt32? = nil, pad: Bool = true) -> [UInt8] {
        var bytes = Array(id.utf8)
        bytes += littleEndian(declaredSize ?? UInt32(body.count))
        bytes += body
        if pad, body.count % 2 == 1 { bytes.append(0) }
        return bytes
    }

    static func format(tag: UInt16 = 1, channels: UInt16 = 1, sampleRate: UInt32 = 16000, bits: UInt16 = 16,
                       blockAlign: UInt16? = nil) -> [UInt8] {
        let align = blockAlign ?? channels * bits / 8
        return littleEndian(tag) + littleEndian(channels) + littleEndian(sampleRate)
            + littleEndian(sampleRate * UInt32(align)) + littleEndian(align) + littleEndian(bits)
    }

    /// WAVE_FORMAT_EXTENSIBLE body: the 16-byte head, cbSize 22, valid bits, mask, GUID.
    static func extensible(subFormatTag: UInt32, channels: UInt16 = 1, bits: UInt16 = 16,
                           guidTail: [UInt8] = [0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71]) -> [UInt8] {
        format(tag: 0xFFFE, channels: channels, bits: bits) + littleEndian(UInt16(22)) + littleEndian(bits)
            + littleEndian(UInt32(1)) + littleEndian(subFormatTag) + guidTail
    }

    static func riff(_ chunks: [UInt8]..., form: String = "WAVE") -> [UInt8] {
        let body = Array(form.utf8) + chunks.flatMap { $0 }
        return Array("RIFF".utf8) + littleEndian(UInt32(body.count)) + body
    }

    static func littleEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }

    static func int16Samples(_ values: [Int16]) -> [UInt8] { values.flatMap { littleEndian($0) } }
}

@Suite("Audio: WAV reader")
struct AudioWAVTests {
    static let formatFiles = [
        "pcm_u8", "pcm_s16", "pcm_s24", "pcm_s32", "float32", "float64", "stereo_s16", "six_channel_s16",
        "extensible_pcm24_stereo", "extensible_float32_stereo", "list_before_fmt_odd", "data_before_fmt",
        "streamed_size_ffffffff", "streamed_size_zero", "data_size_past_end", "stereo_44100",
    ]

    @Test("every encoding and layout reads as torchaudio.load(...).mean(0)", arguments: formatFiles)
    func matchesTorchaudio(name: String) throws {
        let clip = try WAVReader.read(path: try Fixtures.path("audio-formats/\(name).wav"))
        let expected = try NumpyFile.read(path: try Fixtures.path("audio-formats/\(name).npy")).floats()
        let manifest = try Self.formatManifest()[name]
        #expect(clip.sampleRate == manifest?["sample_rate"])
        #expect(clip.samples.count == manifest?["frames"])
        #expect(clip.samples.count == expected.count)
        if name == "extensible_float32_stereo" {
            // Float channels: torch sums in float32, this reader in double; one rounding apart.
            let worst = zip(clip.samples, expected).map { abs($0 - $1) }.max() ?? .infinity
            #expect(worst <= 6e-8)
        } else {
            // Integer and single-channel files decode bit-exactly.
            #expect(clip.samples == expected)
        }
    }

    @Test("torchaudio's integer scaling: u8 (x−128)/128, s16 /2^15, s24 /2^23, s32 rounded to float then /2^31")
    func scalingFacts() throws {
        let u8 = try WAVReader.read(path: try Fixtures.path("audio-formats/pcm_u8.wav")).samples
        let u8Expected: [Float] = [-1, 127.0 / 128, 0, -1.0 / 128]
        #expect(Array(u8.prefix(4)) == u8Expected)
        let s16 = try WAVReader.read(path: try Fixtures.path("audio-formats/pcm_s16.wav")).samples
        let s16Expected: [Float] = [-1, 32767.0 / 32768, 0, -1.0 / 32768]
        #expect(Array(s16.prefix(4)) == s16Expected)
        let s24 = try WAVReader.read(path: try Fixtures.path("audio-formats/pcm_s24.wav")).samples
        let s24Expected: [Float] = [-1, 8_388_607.0 / 8_388_608, 0, -1.0 / 8_388_608]
        #expect(Array(s24.prefix(4)) == s24Expected)
        let s32 = try WAVReader.read(path: try Fixtures.path("audio-formats/pcm_s32.wav")).samples
        // 2^31 − 1 and 2^31 − 64 round up to 2^31 (1.0); 2^31 − 65 rounds down to 2^31 − 128.
        let s32Expected: [Float] = [-1, 1, 0, -1.0 / 2_147_483_648, 1, 2_147_483_520.0 / 2_147_483_648]
        #expect(Array(s32.prefix(6)) == s32Expected)
        let f64 = try WAVReader.read(path: try Fixtures.path("audio-formats/float64.wav")).samples
        let f64Expected: [Float] = [1.5, -2, 0.1, 0]
        #expect(Array(f64.prefix(4)) == f64Expected)
    }

    @Test("stereo and six channels average to mono")
    func channelAverage() throws {
        let left: [Int16] = [100, -32768, 7, 0]
        let right: [Int16] = [300, -32768, -8, 1]
        let interleaved = zip(left, right).flatMap { [$0, $1] }
        let bytes = WAVBuilder.riff(WAVBuilder.chunk("fmt ", WAVBuilder.format(channels: 2)),
                                    WAVBuilder.chunk("data", WAVBuilder.int16Samples(interleaved)))
        let clip = try WAVReader.read(bytes)
        let expected: [Float] = [200.0 / 32768, -1, -0.5 / 32768, 0.5 / 32768]
        #expect(clip.samples == expected)
        let info = try bytes.withUnsafeBytes { try WAVReader.parse($0) }
        #expect(info.channels == 2 && info.frameCount == 4 && info.encoding == .signedInteger(bits: 16))
    }

    @Test("reads the reference clips: 16 kHz, sample counts from manifest.json")
    func referenceClips() throws {
        let manifest = try JSONSerialization.jsonObject(with: Data(try Fixtures.bytes("manifest.json"))) as? [String: Any]
        let audio = manifest?["audio"] as? [String: [String: Any]]
        for clip in Fixtures.clips {
            let entry = try #require(audio?[clip])
            let file = try #require(entry["file"] as? String)
            let read = try WAVReader.read(path: try Fixtures.path(file))
            #expect(read.sampleRate == 16000)
            #expect(read.samples.count == entry["samples"] as? Int, "\(clip)")
            #expect(read.samples.allSatisfy { $0 >= -1 && $0 < 1 })
        }
    }

    @Test("odd-sized chunks are skipped with their pad byte, in any order")
    func oddChunks() throws {
        let samples = WAVBuilder.int16Samples([1, 2, 3])
        let bytes = WAVBuilder.riff(WAVBuilder.chunk("LIST", Array("INFOx".utf8)),
                                    WAVBuilder.chunk("data", samples),
                                    WAVBuilder.chunk("junk", [9]),
                                    WAVBuilder.chunk("fmt ", WAVBuilder.format()))
        let expected: [Float] = [1.0 / 32768, 2.0 / 32768, 3.0 / 32768]
        #expect(try WAVReader.read(bytes).samples == expected)
        // The pad byte may be missing at the very end of the file.
        let unpadded = WAVBuilder.riff(WAVBuilder.chunk("fmt ", WAVBuilder.format()),
                                       WAVBuilder.chunk("data", samples),
                                       WAVBuilder.chunk("note", [1, 2, 3], pad: false))
        #expect(try WAVReader.read(unpadded).samples.count == 3)
    }

    @Test("data sizes from streaming writers: 0, 0xFFFFFFFF and oversized run to the end; partial frames drop")
    func streamedSizes() throws {
        let samples = WAVBuilder.int16Samples([5, 6, 7, 8])
        for declared: UInt32 in [0, 0xFFFF_FFFF, 1000] {
            let bytes = WAVBuilder.riff(WAVBuilder.chunk("fmt ", WAVBuilder.format()),
                                        WAVBuilder.chunk("data", samples, declaredSize: declared))
            #expect(try WAVReader.read(bytes).samples.count == 4, "declared \(declared)")
        }
        let partial = WAVBuilder.riff(WAVBuilder.chunk("fmt ", WAVBuilder.format(channels: 2)),
                                      WAVBuilder.chunk("data", samples + [1, 2, 3]))
        #expect(try WAVReader.read(partial).samples.count == 2)
    }

    // MARK: - Errors

    static func expectError(_ expected: AudioError, _ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(throws: expected, sourceLocation: sourceLocation) { try WAVReader.read(bytes) }
    }

    @Test("not a WAV: empty file, random bytes, other RIFF forms, RIFX/RF64")
    func notWAV() {
        Self.expectError(.notWAV(found: "an empty file"), [])
        Self.expectError(.notWAV(found: "0x13379BE1"), [0x13, 0x37, 0x9B, 0xE1, 0x00, 0x42, 0x99, 0x10, 0xFF])
        Self.expectError(.notWAV(found: "'fLaC'"), Array("fLaC".utf8) + [0, 0, 0, 34])
        Self.expectError(.notWAVE(found: "'AVI '"), WAVBuilder.riff(form: "AVI "))
        Self.expectError(.unsupportedContainer("RIFX (big-endian RIFF)"), Array("RIFX".utf8) + [0, 0, 0, 4] + Array("WAVE".utf8))
        Self.expectError(.unsupportedContainer("RF64"), Array("RF64".utf8) + [0xFF, 0xFF, 0xFF, 0xFF] + Array("WAVE".utf8))
        #expect(AudioError.notWAV(found: "'fLaC'").description == "not a WAV file: expected 'RIFF' at offset 0, found 'fLaC'")
    }

    @Test("truncated headers name what ran out and where")
    func truncated() {
        Self.expectError(.truncated(what: "RIFF header", offset: 0, fileSize: 2), Array("RI".utf8))
        Self.expectError(.truncated(what: "RIFF header", offset: 0, fileSize: 10), Array("RIFF".utf8) + [4, 0, 0, 0] + Array("WA".utf8))
        Self.expectError(.truncated(what: "chunk header", offset: 12, fileSize: 18), WAVBuilder.riff(Array("fmt ".utf8) + [16, 0]))
        let shortFormat = WAVBuilder.riff(Array("fmt ".utf8) + WAVBuilder.littleEndian(UInt32(16)) + [1, 0, 1, 0])
        Self.expectError(.truncated(what: "'fmt ' chunk of 16 bytes", offset: 12, fileSize: 24), shortFormat)
        #expect(AudioError.truncated(what: "chunk header", offset: 12, fileSize: 18).description
            == "truncated WAV: chunk header at offset 12 runs past the end of the file (18 bytes)")
    }

    @Test("missing chunks, empty data")
    func missingAndEmpty() {
        let format = WAVBuilder.chunk("fmt ", WAVBuilder.format())
        Self.expectError(.missingChunk("data"), WAVBuilder.riff(format, WAVBuilder.chunk("LIST", [1, 2, 3, 4])))
        Self.expectError(.missingChunk("fmt "), WAVBuilder.riff(WAVBuilder.chunk("data", WAVBuilder.int16Samples([1, 2]))))
        Self.expectError(.missingChunk("fmt "), WAVBuilder.riff())
        // A data chunk with nothing after it, and one holding half a sample.
        Self.expectError(.emptyData(offset: 36), WAVBuilder.riff(format, WAVBuilder.chunk("data", [])))
        Self.expectError(.emptyData(offset: 36), WAVBuilder.riff(format, WAVBuilder.chunk("data", [7], pad: false)))
        #expect(AudioError.emptyData(offset: 36).description == "WAV 'data' chunk at offset 36 holds no complete sample frame")
    }

    @Test("fmt chunk too short, unsupported codecs and bit depths, impossible fields")
    func formatErrors() {
        let data = WAVBuilder.chunk("data", WAVBuilder.int16Samples([1, 2]))
        Self.expectError(.formatChunkTooShort(size: 14, minimum: 16, offset: 12),
                         WAVBuilder.riff(WAVBuilder.chunk("fmt ", Array(WAVBuilder.format().prefix(14))), data))
        Self.expectError(.formatChunkTooShort(size: 16, minimum: 40, offset: 12),
                         WAVBuilder.riff(WAVBuilder.chunk("fmt ", WAVBuilder.format(tag: 0xFFFE)), data))
        Self.expectError(.unsupportedEncoding(formatTag: 6, name: "A-law", offset: 12),
                         WAVBuilder.riff(WAVBuilder.chunk("fmt ", WAVBuilder.format(tag: 6, bits: 8)), data))
        Self.expectError(.unsupportedEncoding(formatTag: 2, name: "Microsoft ADPCM", offset: 12),
                         WAVBuilder.riff(WAVBuilder.chunk("fmt ", WAVBuilder.format(tag: 2, bits: 4, blockAlign: 256)), data))
        Self.expectError(.unsupportedEncoding(formatTag: 0x55, name: "MP3", offset: 12),
                         WAVBuilder.riff(WAVBuilder.chunk("fmt ", WAVBuilder.format(tag: 0x55, bits: 0, blockAlign: 1)), data))
        Self.expectError(.unsupportedEncoding(formatTag: 7, name: "µ-law", offset: 12),
                         WAVBuilder.riff(WAVBuilder.chunk("fmt ", WAVBuilder.extensible(subFormatTag: 7, bits: 8)), data))
        Self.expectError(.unsupportedSubFormat(guid: "{00000001-0000-0010-8000-00AA00389B72}", offset: 12),
                         WAVBuilder.riff(WAVBuilder.chunk("fmt ", WAVBuilder.extensible(
                             subFormatTag: 1, guidTail: [0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x72])), data))
        Self.expectError(.unsupportedBitDepth(encoding: "integer PCM", bits: 12, offset: 12),
                         WAVBuilder.riff(WAVBuilder.chunk("fmt ", WAVBuilder.format(bits: 12, blockAlign: 2)), data))
        Self.expectError(.unsupportedBitDepth(encoding: "IEEE float", bits: 16, offset: 12),
                         WAVBuilder.riff(WAVBuilder.chunk("fmt ", WAVBuilder.format(tag: 3, bits: 16)), data))
        Self.expectError(.invalidFormat("0 channels", offset: 12),
                         WAVBuilder.riff(WAVBuilder.chunk("fmt ", WAVBuilder.format(channels: 0, blockAlign: 2)), data))
        Self.expectError(.invalidFormat("sample rate 0 Hz", offset: 12),
                         WAVBuilder.riff(WAVBuilder.chunk("fmt ", WAVBuilder.format(sampleRate: 0)), data))
        Self.expectError(.invalidFormat("block align 3, but 1 channels of 16-bit samples take 2 bytes", offset: 12),
                         WAVBuilder.riff(WAVBuilder.chunk("fmt ", WAVBuilder.format(blockAlign: 3)), data))
        #expect(AudioError.unsupportedEncoding(formatTag: 6, name: "A-law", offset: 12).description
            == "unsupported WAV encoding A-law (format tag 0x0006) at offset 12; only integer PCM and IEEE float are read")
    }

    @Test("a missing file is an error naming the path")
    func missingFile() {
        #expect(throws: AudioError.cannotOpen(path: "/nonexistent/clip.wav", reason: "No such file or directory")) {
            try AudioLoader.load(path: "/nonexistent/clip.wav")
        }
    }

    @Test("clips shorter than one patch or one frame are refused")
    func tooShort() throws {
        #expect(BEATsAudio.minimumSamples(framesPerPatch: 16) == 2800)
        #expect(throws: AudioError.tooShort(path: nil, samples: 2799, minimum: 2800, purpose: "one BEATs patch")) {
            try BEATsAudio.checkPatchLength(sampleCount: 2799, framesPerPatch: 16)
        }
        try BEATsAudio.checkPatchLength(sampleCount: 2800, framesPerPatch: 16)
        #expect(BEATsAudio.frameCount(sampleCount: 2800) == 16)
        #expect(throws: AudioError.tooShort(path: nil, samples: 399, minimum: 400, purpose: "one 25 ms fbank frame")) {
            try KaldiFbank.beatsFeatures([Float](repeating: 0.1, count: 399))
        }
        #expect(try KaldiFbank.beatsFeatures([Float](repeating: 0.1, count: 400)).frames == 1)
    }

    @Test("the patch length follows the model's input_patch_size, not a fixed 16 frames")
    func patchLengthFollowsPatchSize() throws {
        #expect(BEATsAudio.minimumSamples(framesPerPatch: 8) == 400 + 7 * 160)
        #expect(BEATsAudio.minimumSamples(framesPerPatch: 1) == 400)
        #expect(BEATsAudio.minimumSamples(framesPerPatch: 0) == 400)
        #expect(BEATsAudio.minimumSamples(framesPerPatch: .max) == BEATsAudio.frameLength + (BEATsAudio.maximumFrames - 1) * 160)
        try BEATsAudio.checkPatchLength(sampleCount: 1520, framesPerPatch: 8)
        #expect(throws: AudioError.tooShort(path: "a.wav", samples: 1519, minimum: 1520, purpose: "one BEATs patch")) {
            try BEATsAudio.checkPatchLength(sampleCount: 1519, framesPerPatch: 8, path: "a.wav")
        }
    }

    @Test("too-short messages name the file and give seconds as well as samples")
    func tooShortMessage() {
        #expect(AudioError.tooShort(path: "speech.wav", samples: 1600, minimum: 2800, purpose: "one BEATs patch").description
            == "speech.wav: audio is 0.10 s (1600 samples at 16 kHz); one BEATs patch needs at least 0.175 s (2800 samples)")
        // One sample short still reads as shorter than the minimum; no path, no prefix.
        #expect(AudioError.tooShort(path: nil, samples: 2799, minimum: 2800, purpose: "one BEATs patch").description
            == "audio is 0.174 s (2799 samples at 16 kHz); one BEATs patch needs at least 0.175 s (2800 samples)")
        #expect(AudioError.tooShort(path: nil, samples: 0, minimum: 400, purpose: "one 25 ms fbank frame").description
            == "audio is 0.00 s (0 samples at 16 kHz); one 25 ms fbank frame needs at least 0.025 s (400 samples)")
    }

    @Test("random bytes after a valid RIFF/WAVE head end in a clip or an AudioError, never a crash")
    func randomBodies() {
        var generator = SplitMix64(seed: 0xBEA75)
        for round in 0..<2000 {
            let length = Int(generator.next() % 96)
            var body = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            // Plant plausible chunk ids so the walk reaches the format and data paths.
            if length >= 8, round % 2 == 0 { body.replaceSubrange(0..<4, with: Array("fmt ".utf8)) }
            if length >= 40, round % 3 == 0 { body.replaceSubrange(32..<36, with: Array("data".utf8)) }
            let bytes = WAVBuilder.riff(body)
            do throws(AudioError) {
                let clip = try WAVReader.read(bytes)
                #expect(!clip.samples.isEmpty && clip.sampleRate > 0)
            } catch {
                #expect(!error.description.isEmpty)
            }
        }
    }

    static func formatManifest() throws -> [String: [String: Int]] {
        let data = Data(try Fixtures.bytes("audio-formats/manifest.json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: [String: Int]])
    }
}

