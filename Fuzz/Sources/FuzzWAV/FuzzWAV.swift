import BEATsCore
import BEATsRuntime
#if canImport(Glibc)
import Glibc
#endif

/// Audio files of every format and what the runtime does with them. Each input goes through:
/// - the WAV reader on the bytes (`WAVReader.parse` + `read`), resampling to 16 kHz and BEATs'
///   fbank, as before;
/// - `AudioDecoder` on the same bytes written to a file on tmpfs: format recognition, the WAV
///   source or libsndfile (FLAC, Ogg Vorbis/Opus, MP3, AIFF, W64, µ-law/A-law WAV, …), channel
///   averaging and the streaming resampler, read to the end in uneven blocks. Every error must
///   name the file (a message without it is a finding).
/// Output is capped at 10 s so a run stays well under the fuzzer's timeout; the readers
/// themselves see the whole input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWAV(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    let maximumSeconds = 10
    if let info = try? WAVReader.parse(bytes), let clip = try? WAVReader.read(bytes) {
        guard clip.samples.count == info.frameCount, info.frameCount >= 0 else {
            fatalError("read() gave \(clip.samples.count) samples for \(info.frameCount) frames")
        }
        let capped = AudioClip(sampleRate: clip.sampleRate,
                               samples: Array(clip.samples.prefix(max(clip.sampleRate, 1) * maximumSeconds)))
        if let resampled = try? AudioLoader.resampled(capped, to: BEATsAudio.sampleRate) {
            _ = try? KaldiFbank.beatsFeatures(Array(resampled.samples.prefix(BEATsAudio.sampleRate * maximumSeconds)))
        }
    }
    decodeAsFile(bytes, maximumSamples: BEATsAudio.sampleRate * maximumSeconds)
    return 0
}

/// This process's scratch file for the decoder (libsndfile opens files by path).
private let scratchPath = "/dev/shm/beats-fuzz-audio-\(getpid())"

private func decodeAsFile(_ bytes: UnsafeRawBufferPointer, maximumSamples: Int) {
    let descriptor = open(scratchPath, O_CREAT | O_TRUNC | O_WRONLY, 0o600)
    guard descriptor >= 0 else { fatalError("cannot write \(scratchPath): \(String(cString: strerror(errno)))") }
    var written = 0
    while written < bytes.count {
        let result = write(descriptor, bytes.baseAddress! + written, bytes.count - written)
        guard result > 0 else { fatalError("cannot write \(scratchPath)") }
        written += result
    }
    close(descriptor)
    // The decoder keeps its own descriptors; the name goes when this input is done.
    defer { unlink(scratchPath) }
    do throws(AudioError) {
        let decoder = try AudioDecoder(path: scratchPath)
        var total = 0
        var samples: [Float] = []
        var request = 1
        while total < maximumSamples {
            let block = try decoder.read(maximumCount: request)
            guard block.count <= request else { fatalError("read(maximumCount: \(request)) gave \(block.count)") }
            if block.isEmpty { break }
            total += block.count
            samples += block
            request = request * 7 % 10_007 + 1  // uneven block sizes
        }
        _ = try? KaldiFbank.beatsFeatures(Array(samples.prefix(maximumSamples)))
    } catch {
        guard error.description.contains(scratchPath) else { fatalError("an audio error without the file's name: \(error)") }
    }
}
