import ArgumentParser
import BEATs
import Foundation

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

    func run() throws {
        let clip = try audio.map { try AudioClip(contentsOf: URL(fileURLWithPath: $0)) } ?? BenchmarkReport.testSignal(seconds: 10)
        let report = try BenchmarkReport.measure(modelPath: model, clip: clip, runs: runs, threads: inference.threadsPerClip(),
                                                   verifyChecksums: inference.checksums.verifyChecksums)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            printTable(report)
        }
    }

    private func printTable(_ report: BenchmarkReport) {
        func ms(_ value: Double) -> String { String(format: "%9.2f ms", value * 1000) }
        print("model      \(report.model) (\(report.format), \(report.kind), \(report.int8Weights ? "int8" : "float") weights)")
        print("clip       \(String(format: "%.2f", report.clipSeconds)) s, \(report.threads) threads, \(report.runs) runs after 1 warm-up")
        print("openblas   \(report.openBLASConfiguration) — core \(report.openBLASCore), \(report.openBLASThreads) threads (\(report.openBLASLibrary))")
        print("int8       \(report.int8Kernel) kernels; cpu: \(report.cpuFeatures.joined(separator: " "))")
        print("open       \(ms(report.openSeconds))")
        print("load       \(ms(report.loadSeconds))")
        for stage in report.stages {
            print("  \(stage.name.padding(toLength: 17, withPad: " ", startingAt: 0))\(ms(stage.medianSeconds))")
        }
        print("per clip   \(ms(report.medianSeconds)) median (min \(ms(report.minSeconds).trimmingCharacters(in: .whitespaces)), max \(ms(report.maxSeconds).trimmingCharacters(in: .whitespaces)))")
        print("real time  \(String(format: "%.4f", report.realTimeFactor))× (\(String(format: "%.0f", 1 / report.realTimeFactor))× faster than real time)")
        print("peak RSS   \(String(format: "%.1f", Double(report.peakRSSBytes) / 1_048_576)) MB")
    }
}
