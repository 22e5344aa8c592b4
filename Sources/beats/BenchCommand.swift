import ArgumentParser
import BEATsCore
import BEATsRuntime
import Foundation
#if canImport(Glibc)
import Glibc
#endif

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time the model on one clip: per-stage times, median per clip, real-time factor, peak memory.",
        discussion: """
            Without AUDIO a deterministic 10 s test signal is used. One warm-up run, then --runs timed runs \
            of the whole path (fbank + encoder + head). Reports the OpenBLAS core and the int8 kernel in use.
            """
    )

    @Argument(help: "Model: a PyTorch checkpoint or a converted file.") var model: String
    @Argument(help: "Audio: a WAV file (default: 10 s synthetic clip).") var audio: String?
    @Option(help: "Timed runs after the warm-up.") var runs: Int = 10
    @OptionGroup var inference: InferenceOptions
    @Flag(help: "Print one JSON object instead of the table.") var json = false

    func validate() throws {
        guard (1...10_000).contains(runs) else { throw ValidationError("--runs must be between 1 and 10000") }
    }

    struct Report: Encodable {
        var model: String
        var format: String
        var kind: String
        var clip_seconds: Double
        var threads: Int
        var runs: Int
        var open_seconds: Double
        var load_seconds: Double
        var median_seconds: Double
        var min_seconds: Double
        var max_seconds: Double
        var real_time_factor: Double
        var stages: [Stage]
        var peak_rss_bytes: Int
        var openblas: String
        var openblas_library: String
        var openblas_core: String
        var openblas_threads: Int
        var int8_kernel: String
        var int8_weights: Bool
        var cpu_features: [String]

        struct Stage: Encodable {
            var name: String
            var median_seconds: Double
        }
    }

    func run() throws {
        let openStart = DispatchTime.now()
        let weights = try ModelFile.open(path: model)
        let openSeconds = seconds(since: openStart)
        let loadStart = DispatchTime.now()
        let network = try BEATsModel(weights: weights, threads: inference.threads)
        let loadSeconds = seconds(since: loadStart)
        let samples = try audio.map { try AudioLoader.load(path: $0).samples } ?? Self.testSignal(seconds: 10)

        var totals: [Double] = []
        var stageSamples: [String: [Double]] = [:]
        var stageOrder: [String] = []
        for iteration in 0...runs {
            let start = DispatchTime.now()
            let fbankStart = DispatchTime.now()
            let fbank = try KaldiFbank.beatsFeatures(samples)
            let fbankSeconds = seconds(since: fbankStart)
            switch weights.kind {
            case .pretrained: _ = try network.features(fbank: fbank.values, frames: fbank.frames)
            case .finetuned: _ = try network.probabilities(fbank: fbank.values, frames: fbank.frames)
            case .tokenizer: _ = try network.tokens(fbank: fbank.values, frames: fbank.frames)
            }
            let total = seconds(since: start)
            guard iteration > 0 else { continue }  // warm-up
            totals.append(total)
            for (name, stageSeconds) in [("fbank", fbankSeconds)] + network.stageTimes.map({ ($0.name, $0.seconds) }) {
                if stageSamples[name] == nil { stageOrder.append(name) }
                stageSamples[name, default: []].append(stageSeconds)
            }
        }

        let clipSeconds = Double(samples.count) / Double(BEATsAudio.sampleRate)
        let median = Self.median(totals)
        let report = Report(
            model: model, format: weights.formatName, kind: weights.kind.rawValue, clip_seconds: clipSeconds,
            threads: inference.threads, runs: runs, open_seconds: openSeconds, load_seconds: loadSeconds,
            median_seconds: median, min_seconds: totals.min() ?? 0, max_seconds: totals.max() ?? 0,
            real_time_factor: median / clipSeconds,
            stages: stageOrder.map { Report.Stage(name: $0, median_seconds: Self.median(stageSamples[$0] ?? [])) },
            peak_rss_bytes: Self.peakResidentBytes(), openblas: RuntimeEnvironment.openBLASConfig,
            openblas_library: RuntimeEnvironment.openBLASLibrary, openblas_core: RuntimeEnvironment.openBLASCore, openblas_threads: RuntimeEnvironment.openBLASThreads,
            int8_kernel: RuntimeEnvironment.int8KernelName, int8_weights: network.usesInt8Weights,
            cpu_features: RuntimeEnvironment.cpuFeatures
        )
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            printTable(report)
        }
    }

    private func printTable(_ report: Report) {
        func ms(_ value: Double) -> String { String(format: "%9.2f ms", value * 1000) }
        print("model      \(report.model) (\(report.format), \(report.kind), \(report.int8_weights ? "int8" : "float") weights)")
        print("clip       \(String(format: "%.2f", report.clip_seconds)) s, \(report.threads) threads, \(report.runs) runs after 1 warm-up")
        print("openblas   \(report.openblas) — core \(report.openblas_core), \(report.openblas_threads) threads (\(report.openblas_library))")
        print("int8       \(report.int8_kernel) kernels; cpu: \(report.cpu_features.joined(separator: " "))")
        print("open       \(ms(report.open_seconds))")
        print("load       \(ms(report.load_seconds))")
        for stage in report.stages {
            print("  \(stage.name.padding(toLength: 17, withPad: " ", startingAt: 0))\(ms(stage.median_seconds))")
        }
        print("per clip   \(ms(report.median_seconds)) median (min \(ms(report.min_seconds).trimmingCharacters(in: .whitespaces)), max \(ms(report.max_seconds).trimmingCharacters(in: .whitespaces)))")
        print("real time  \(String(format: "%.4f", report.real_time_factor))× (\(String(format: "%.0f", 1 / report.real_time_factor))× faster than real time)")
        print("peak RSS   \(String(format: "%.1f", Double(report.peak_rss_bytes) / 1_048_576)) MB")
    }

    private func seconds(since start: DispatchTime) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    }

    static func median(_ values: [Double]) -> Double {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    /// Peak resident set size of this process (`getrusage`, kilobytes on Linux).
    static func peakResidentBytes() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Int(usage.ru_maxrss) * 1024
    }

    /// A deterministic 10 s signal with speech-like spectral movement: a swept tone plus noise.
    static func testSignal(seconds: Double) -> [Float] {
        let count = Int(seconds * Double(BEATsAudio.sampleRate))
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        return (0..<count).map { index in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let noise = Float(Int64(bitPattern: state) >> 40) / Float(1 << 23)
            let time = Double(index) / Double(BEATsAudio.sampleRate)
            let tone = sin(2 * Double.pi * (200 * time + 150 * time * time))
            return Float(0.3 * tone) + 0.05 * noise
        }
    }
}
