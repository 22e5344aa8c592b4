import BEATsCore
@testable import BEATsRuntime
import BEATsTestSupport
import Foundation
import Testing

/// Damaged and lying encoded files: each ends in samples or in one ``AudioError`` that names the
/// file, quickly, in memory bounded by the file rather than by what its header claims. The files
/// are made here from the fixtures in `Fixtures/audio-encoded/`, so each test says what it broke.
@Suite("Audio: hostile encoded files")
struct AudioHostileTests {
    static func fixture(_ name: String) throws -> [UInt8] { try Fixtures.bytes("audio-encoded/\(name)") }

    /// Offset of the first `tag` in `bytes`.
    static func offset(of tag: String, in bytes: [UInt8]) -> Int? {
        let pattern = Array(tag.utf8)
        guard bytes.count >= pattern.count else { return nil }
        return (0...(bytes.count - pattern.count)).first { Array(bytes[$0..<$0 + pattern.count]) == pattern }
    }

    /// Deterministic bytes that are not audio.
    static func garbage(_ count: Int, seed: UInt64) -> [UInt8] {
        var random = SplitMix64(seed: seed)
        return (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) }
    }

    /// Writes `bytes` as `name` in a fresh directory and runs `body` on its path.
    static func withFile<T>(_ name: String, _ bytes: [UInt8], _ body: (String) throws -> T) throws -> T {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return try body(url.path)
    }

    /// Decodes `path` to the end through ``AudioDecoder``, then whole through ``AudioLoader``;
    /// returns the samples or the error, and checks that every error names the file and that
    /// both paths agree.
    static func outcome(_ path: String) -> Result<[Float], AudioError> {
        let started = Date()
        defer { #expect(Date().timeIntervalSince(started) < 2, "\(path) took \(Date().timeIntervalSince(started)) s") }
        let streamed: Result<[Float], AudioError>
        do throws(AudioError) {
            let decoder = try AudioDecoder(path: path)
            var samples: [Float] = []
            while true {
                let block = try decoder.read(maximumCount: 4096)
                if block.isEmpty { break }
                samples += block
            }
            streamed = .success(samples)
        } catch {
            #expect(error.description.hasPrefix(path), "\(error.description)")
            streamed = .failure(error)
        }
        do throws(AudioError) {
            let whole = try AudioLoader.loadTyped(path: path).samples
            if case .success(let samples) = streamed { #expect(samples == whole) } else { Issue.record("only the loader decoded \(path)") }
        } catch {
            #expect(error.description.hasPrefix(path), "\(error.description)")
            if case .success = streamed { Issue.record("only the decoder decoded \(path): \(error)") }
        }
        return streamed
    }

    @Test("a FLAC file cut in half: a damaged-stream error naming the file")
    func truncatedFLAC() throws {
        let flac = try Self.fixture("short.flac")
        try Self.withFile("cut.flac", Array(flac.prefix(flac.count / 2))) { path in
            #expect(Self.outcome(path) == .failure(.decodingFailed(path: path, format: "FLAC", frame: 0,
                                                                    reason: "Error : flac decoder lost sync.")))
            #expect(AudioError.decodingFailed(path: path, format: "FLAC", frame: 0, reason: "Error : flac decoder lost sync.").description
                == "\(path): FLAC stream is damaged: decoding stopped after 0 frames (libsndfile: Error : flac decoder lost sync)")
        }
    }

    @Test("garbage after a valid FLAC header (fLaC + STREAMINFO)")
    func flacGarbage() throws {
        let bytes = Array(try Self.fixture("short.flac").prefix(42)) + Self.garbage(4000, seed: 1)
        try Self.withFile("garbage.flac", bytes) { path in
            guard case .failure(.undecodable(path, "FLAC", _)) = Self.outcome(path) else {
                Issue.record("expected undecodable FLAC"); return
            }
        }
    }

    @Test("a FLAC header claiming 2^36 − 1 frames (STREAMINFO's largest): the loader refuses the length, the decoder the truncation")
    func flacClaimingHugeLength() throws {
        var bytes = try Self.fixture("short.flac")
        // STREAMINFO starts at 8: min/max block (4), min/max frame (6), then 20 bits rate,
        // 3 channels−1, 5 bits−1, 36 bits total samples.
        bytes[21] |= 0x0F
        for index in 22..<26 { bytes[index] = 0xFF }
        try Self.withFile("huge.flac", bytes) { path in
            let decoder = try AudioDecoder(path: path)
            #expect(decoder.sourceFrameCount == (1 << 36) - 1)
            var count = 0
            #expect(throws: AudioError.truncatedStream(path: path, format: "FLAC", declared: (1 << 36) - 1, decoded: 6400)) {
                while true {
                    let block = try decoder.read(maximumCount: 100_000)
                    if block.isEmpty { break }
                    count += block.count
                }
            }
            #expect(count == 6400)
            #expect(throws: AudioError.inFile(path: path, .tooLong(samples: (1 << 36) - 1, maximum: BEATsAudio.maximumSamples, sampleRate: 16_000))) {
                try AudioLoader.load(path: path)
            }
        }
    }

    @Test("a W64 data chunk claiming 2^40 frames and an AIFF COMM claiming 2^32 − 1: libsndfile takes the file's real length")
    func lyingPCMContainers() throws {
        var w64 = try Self.fixture("short_head.w64")
        // The data chunk: 16-byte GUID starting "data", then its 64-bit size (header included).
        let data = try #require(Self.offset(of: "data", in: w64))
        withUnsafeBytes(of: (UInt64(1) << 41 + 24).littleEndian) { w64.replaceSubrange(data + 16..<data + 24, with: $0) }
        let original = Array(try WAVReader.read(path: try Fixtures.path("audio/short.wav")).samples.prefix(3200))
        try Self.withFile("huge.w64", w64) { path in
            let frames = try AudioDecoder(path: path).sourceFrameCount
            #expect(frames == 3200)
            #expect(Self.outcome(path) == .success(original))
        }
        var aiff = try Self.fixture("short.aiff")
        let comm = try #require(Self.offset(of: "COMM", in: aiff))
        for index in comm + 10..<comm + 14 { aiff[index] = 0xFF }
        let short = try AudioLoader.load(path: try Fixtures.path("audio/short.wav")).samples
        try Self.withFile("huge.aiff", aiff) { path in
            let frames = try AudioDecoder(path: path).sourceFrameCount
            #expect(frames == 6400)
            #expect(Self.outcome(path) == .success(short))
        }
    }

    @Test("Ogg Vorbis, Opus and MP3 cut in half or with garbage after the first 200 bytes", arguments: [
        ("speech.ogg", "Ogg"), ("speech.opus", "Ogg"), ("speech.mp3", "MPEG audio"),
    ])
    func damagedLossy(file: String, sniffed: String) throws {
        let bytes = try Self.fixture(file)
        try Self.withFile("garbage-" + file, Array(bytes.prefix(200)) + Self.garbage(3000, seed: 2)) { path in
            switch Self.outcome(path) {
            case .success(let samples):
                // mpg123 resyncs on whatever looks like a frame header in the garbage.
                #expect(file == "speech.mp3" && samples.count < 48_000, "\(file) with garbage: \(samples.count) samples")
            case .failure(let error):
                guard case .undecodable(path, sniffed, let reason) = error else { Issue.record("\(file) with garbage: \(error)"); return }
                #expect(!reason.contains("does not exist"), "\(reason)")
            }
        }
        try Self.withFile("cut-" + file, Array(bytes.prefix(bytes.count / 2))) { path in
            switch Self.outcome(path) {
            case .success(let samples):
                // mpg123 decodes the frames that are there (as FFmpeg and soundfile do).
                #expect(file == "speech.mp3" && samples.count > 0 && samples.count < 4800, "\(file): \(samples.count) samples")
            case .failure(let error):
                guard case .undecodable(path, sniffed, _) = error else { Issue.record("\(file) cut: \(error)"); return }
            }
        }
    }

    @Test("formats libsndfile cannot read: an error naming the file and suggesting an ffmpeg conversion")
    func unsupportedFormats() throws {
        let m4a = [0, 0, 0, 0x20] + Array("ftypM4A ".utf8) + [0, 0, 2, 0] + Array("M4A isommp42".utf8) + [UInt8](repeating: 0, count: 200)
        try Self.withFile("voice memo.m4a", m4a) { path in
            let error = AudioError.undecodable(path: path, format: "MP4/M4A (AAC, ALAC)", reason: "Format not recognised.")
            #expect(Self.outcome(path) == .failure(error))
            #expect(error.description == "\(path): cannot decode MP4/M4A (AAC, ALAC) (libsndfile: Format not recognised); "
                + "convert it to FLAC or WAV first, e.g. ffmpeg -i '\(path)' 'voice memo.flac'")
        }
        try Self.withFile("noise.bin", Self.garbage(5000, seed: 3)) { path in
            guard case .failure(.undecodable(path, let format, _)) = Self.outcome(path) else { Issue.record("noise.bin"); return }
            #expect(format.hasPrefix("unrecognised content (first bytes 0x"))
        }
        try Self.withFile("empty.flac", []) { path in
            #expect(Self.outcome(path) == .failure(.undecodable(path: path, format: "an empty file", reason: "Format not recognised.")))
        }
        try Self.withFile("tiny.aac", [0xFF, 0xF1, 0x50, 0x80] + Self.garbage(300, seed: 4)) { path in
            guard case .failure(.undecodable(path, "AAC (ADTS)", _)) = Self.outcome(path) else { Issue.record("tiny.aac"); return }
        }
    }

    @Test("a WAV whose header is broken names the file; codecs we do not decode go to libsndfile")
    func wavRouting() throws {
        let broken = WAVBuilder.riff(WAVBuilder.chunk("fmt ", WAVBuilder.format(channels: 0, blockAlign: 2)),
                                     WAVBuilder.chunk("data", [0, 0, 0, 0]))
        try Self.withFile("broken.wav", broken) { path in
            #expect(Self.outcome(path) == .failure(.inFile(path: path, .invalidFormat("0 channels", offset: 12))))
        }
        // µ-law (format tag 7) with a block align of 1: decoded by libsndfile (G.711: byte 0xFF is 0).
        let ulaw = WAVBuilder.riff(WAVBuilder.chunk("fmt ", WAVBuilder.format(tag: 7, bits: 8)),
                                   WAVBuilder.chunk("data", [UInt8](repeating: 0xFF, count: 3200)))
        try Self.withFile("silence.wav", ulaw) { path in
            let format = try AudioDecoder(path: path).formatName
            #expect(format == "WAV µ-law")
            #expect(Self.outcome(path) == .success([Float](repeating: 0, count: 3200)))
        }
        // A codec libsndfile does not have either: its error, naming the file and the codec.
        let aac = WAVBuilder.riff(WAVBuilder.chunk("fmt ", WAVBuilder.format(tag: 0xFF, bits: 16)), WAVBuilder.chunk("data", [0, 0, 0, 0]))
        try Self.withFile("aac.wav", aac) { path in
            guard case .failure(.undecodable(path, "WAV (AAC)", _)) = Self.outcome(path) else { Issue.record("aac.wav"); return }
        }
    }

    @Test("a missing libsndfile is reported with the Debian package to install")
    func missingLibrary() throws {
        guard case .failure(let failure) = SndFileLibrary.load(candidates: ["/nonexistent/libsndfile.so.1"]) else {
            Issue.record("a missing path loaded"); return
        }
        #expect(failure.reason.contains("/nonexistent/libsndfile.so.1"))
        let error = AudioError.decoderUnavailable(path: "a.flac", format: "FLAC", reason: failure.reason)
        #expect(error.description.hasPrefix("a.flac: FLAC audio is decoded by libsndfile, which could not be loaded ("))
        #expect(error.description.hasSuffix("install Debian's libsndfile1 (apt-get install libsndfile1) or set BEATS_SNDFILE to the library's path"))
        // A library without libsndfile's calls is refused by name.
        guard case .failure(let wrong) = SndFileLibrary.load(candidates: ["libc.so.6"]) else { Issue.record("libc loaded as libsndfile"); return }
        #expect(wrong.reason == "libc.so.6: not libsndfile (sf_open, sf_readf_float, sf_close, sf_error or sf_strerror missing)")
    }
}
