import BEATsKernels
import BEATsRuntime
import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Times a model on one clip: what `beats bench` reports.
public struct BenchmarkReport: Sendable, Encodable {
    /// One stage of the pipeline and its median time over the runs.
    public struct Stage: Sendable, Encodable {
        /// The stage's name: "fbank", then the forward pass's stages in order.
        public var name: String
        /// Median seconds of the stage over the timed runs.
        public var medianSeconds: Double

        enum CodingKeys: String, CodingKey {
            case name
            case medianSeconds = "median_seconds"
        }
    }

    /// The model file's path, as given.
    public var model: String
    /// The model file's format: "pytorch-zip", "pytorch-legacy" or "beatsw".
    public var format: String
    /// The model's kind: "pretrained", "finetuned" or "tokenizer".
    public var kind: String
    /// Length of the timed clip in seconds, at 16 kHz.
    public var clipSeconds: Double
    /// Threads each pass used.
    public var threads: Int
    /// Timed passes (after one untimed warm-up).
    public var runs: Int
    /// Opening the file (header, tensor table).
    public var openSeconds: Double
    /// Preparing the weights to run (checks, int8 packing, first arena).
    public var loadSeconds: Double
    /// Median seconds of one whole pass (fbank, encoder, head) over the timed runs.
    public var medianSeconds: Double
    /// Fastest timed pass, in seconds.
    public var minSeconds: Double
    /// Slowest timed pass, in seconds.
    public var maxSeconds: Double
    /// Median seconds per second of audio (below 1: faster than real time).
    public var realTimeFactor: Double
    /// "fbank", then the forward pass's stages, medians over the runs.
    public var stages: [Stage]
    /// Peak resident memory of the process, in bytes.
    public var peakRSSBytes: Int
    /// OpenBLAS's build description (`openblas_get_config`): version, build options, target core.
    public var openBLASConfiguration: String
    /// Where OpenBLAS was loaded from, or why it was not.
    public var openBLASLibrary: String
    /// The kernel set OpenBLAS picked for this CPU (`openblas_get_corename`).
    public var openBLASCore: String
    /// OpenBLAS's worker count: 1 once loaded, since the runtime splits the work itself.
    public var openBLASThreads: Int
    /// The int8 GEMM variant the model uses: "avx512vnni", "avx2" or "scalar".
    public var int8Kernel: String
    /// Whether the model runs int8-quantized weights.
    public var int8Weights: Bool
    /// CPU features the kernels test for, by name.
    public var cpuFeatures: [String]

    /// The JSON keys `beats bench --json` prints (snake_case, as the earlier reports).
    enum CodingKeys: String, CodingKey {
        case medianSeconds = "median_seconds"
        case model
        case format
        case kind
        case clipSeconds = "clip_seconds"
        case threads
        case runs
        case openSeconds = "open_seconds"
        case loadSeconds = "load_seconds"
        case minSeconds = "min_seconds"
        case maxSeconds = "max_seconds"
        case realTimeFactor = "real_time_factor"
        case stages
        case peakRSSBytes = "peak_rss_bytes"
        case openBLASConfiguration = "openblas"
        case openBLASLibrary = "openblas_library"
        case openBLASCore = "openblas_core"
        case openBLASThreads = "openblas_threads"
        case int8Kernel = "int8_kernel"
        case int8Weights = "int8_weights"
        case cpuFeatures = "cpu_features"
    }

    /// Opens `modelPath`, runs one warm-up and `runs` timed passes over `clip` (fbank, encoder,
    /// head) with `threads` threads, and reports medians.
    /// With `verifyChecksums` the open time includes hashing the whole file.
    public static func measure(modelPath: String, clip: AudioClip, runs: Int, threads: Int,
                               verifyChecksums: Bool = false) throws -> BenchmarkReport {
        let openStart = DispatchTime.now()
        let weights = try ModelFile.open(path: modelPath, verifyChecksums: verifyChecksums)
        let openSeconds = seconds(since: openStart)
        let loadStart = DispatchTime.now()
        let model = try BEATsModel(weights: weights, source: modelPath, configuration: .init(threads: threads))
        let loadSeconds = seconds(since: loadStart)
        let samples = try AudioLoader.resampled(clip, to: BEATsAudio.sampleRate).samples

        var totals: [Double] = []
        var stageSamples: [String: [Double]] = [:]
        var stageOrder: [String] = []
        for iteration in 0...runs {
            let start = DispatchTime.now()
            let fbank = try KaldiFbank.beatsFeatures(samples)
            let fbankSeconds = seconds(since: start)
            let result = try model.network.forward(fbank: fbank.values, frames: fbank.frames)
            let total = seconds(since: start)
            guard iteration > 0 else { continue }  // warm-up
            totals.append(total)
            for (name, stageSeconds) in [("fbank", fbankSeconds)] + result.stageTimes.map({ ($0.name, $0.seconds) }) {
                if stageSamples[name] == nil { stageOrder.append(name) }
                stageSamples[name, default: []].append(stageSeconds)
            }
        }
        let clipSeconds = Double(samples.count) / Double(BEATsAudio.sampleRate)
        let median = Self.median(totals)
        return BenchmarkReport(
            model: modelPath, format: weights.formatName, kind: weights.kind.rawValue, clipSeconds: clipSeconds,
            threads: model.network.threads, runs: runs, openSeconds: openSeconds, loadSeconds: loadSeconds,
            medianSeconds: median, minSeconds: totals.min() ?? 0, maxSeconds: totals.max() ?? 0,
            realTimeFactor: median / clipSeconds,
            stages: stageOrder.map { Stage(name: $0, medianSeconds: Self.median(stageSamples[$0] ?? [])) },
            peakRSSBytes: peakResidentBytes(), openBLASConfiguration: BLASBackend.configuration,
            openBLASLibrary: BLASBackend.library, openBLASCore: BLASBackend.coreName, openBLASThreads: BLASBackend.threadCount,
            int8Kernel: model.network.int8Kernel.description, int8Weights: model.network.usesInt8Weights,
            cpuFeatures: CPUFeatures.names)
    }

    static func seconds(since start: DispatchTime) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    }

    static func median(_ values: [Double]) -> Double {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    /// Peak resident set size of this process (`getrusage`, kilobytes on Linux).
    public static func peakResidentBytes() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Int(usage.ru_maxrss) * 1024
    }

    /// A deterministic clip with speech-like spectral movement: a swept tone plus noise, 16 kHz.
    public static func testSignal(seconds: Double) -> AudioClip {
        let count = Int(seconds * Double(BEATsAudio.sampleRate))
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let samples = (0..<count).map { index -> Float in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let noise = Float(Int64(bitPattern: state) >> 40) / Float(1 << 23)
            let time = Double(index) / Double(BEATsAudio.sampleRate)
            let tone = sin(2 * Double.pi * (200 * time + 150 * time * time))
            return Float(0.3 * tone) + 0.05 * noise
        }
        return AudioClip(sampleRate: BEATsAudio.sampleRate, samples: samples)
    }
}
