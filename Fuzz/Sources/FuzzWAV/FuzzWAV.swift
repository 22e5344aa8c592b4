import BEATsCore
import BEATsRuntime

/// The WAV reader and what the runtime does with its result: mono samples, resampling to
/// 16 kHz, BEATs' fbank. Clips are capped at 10 s of output so a run stays well under the
/// fuzzer's timeout; the reader itself sees the whole input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWAV(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    guard let info = try? WAVReader.parse(bytes), let clip = try? WAVReader.read(bytes) else { return 0 }
    guard clip.samples.count == info.frameCount, info.frameCount >= 0 else {
        fatalError("read() gave \(clip.samples.count) samples for \(info.frameCount) frames")
    }
    let maximumSeconds = 10
    let capped = AudioClip(sampleRate: clip.sampleRate,
                           samples: Array(clip.samples.prefix(max(clip.sampleRate, 1) * maximumSeconds)))
    guard let resampled = try? AudioLoader.resampled(capped, to: BEATsAudio.sampleRate) else { return 0 }
    _ = try? KaldiFbank.beatsFeatures(Array(resampled.samples.prefix(BEATsAudio.sampleRate * maximumSeconds)))
    return 0
}
