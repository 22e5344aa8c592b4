import ArgumentParser
import BEATs
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The audio side of `run`, `classify` and `tokenize`: one clip or a whole corpus, whole clips
/// or windows.
struct InputOptions: ParsableArguments {
    @Argument(help: "Audio files or directories (their audio files, sorted).")
    var audio: [String] = []

    @Option(help: "A file listing audio paths, one per line.")
    var list: String?

    @Option(help: ArgumentHelp("Take the inputs at positions ≡ i (mod n) of the sorted list: i/n.",
                               discussion: "n processes with i = 0 … n-1 split a corpus with no coordination.", valueName: "i/n"))
    var shard: String?

    @Option(help: "Write one JSON object per input and line: \"file\" and the result, or \"file\" and \"error\".")
    var jsonl: String?

    @Flag(help: "With --jsonl: skip inputs already in the file and append to it.")
    var resume = false

    @Option(help: "Cut the audio into windows of this many seconds (long recordings).")
    var window: Double?

    @Option(help: "Seconds between window starts (default: the window length).")
    var hop: Double?

    @Option(help: "Clips processed at once when there are many (default: one per core, each single-threaded).")
    var concurrency: Int?

    func validate() throws {
        guard !audio.isEmpty || list != nil else { throw ValidationError("give at least one AUDIO file, a directory or --list FILE") }
        if resume && jsonl == nil { throw ValidationError("--resume needs --jsonl FILE") }
        if hop != nil && window == nil { throw ValidationError("--hop needs --window") }
        if let window, !(window > 0) { throw ValidationError("--window must be a positive number of seconds") }
        if let hop, !(hop > 0) { throw ValidationError("--hop must be a positive number of seconds") }
        if let concurrency, !(1...256).contains(concurrency) { throw ValidationError("--concurrency must be between 1 and 256") }
        _ = try shardSpec()
    }

    /// `--shard i/n` as (i, n).
    func shardSpec() throws -> (index: Int, count: Int)? {
        guard let shard else { return nil }
        let parts = shard.split(separator: "/")
        guard parts.count == 2, let index = Int(parts[0]), let count = Int(parts[1]), count >= 1, (0..<count).contains(index) else {
            throw ValidationError("--shard expects i/n with 0 <= i < n, got '\(shard)'")
        }
        return (index, count)
    }

    var windowing: Windowing? { window.map { Windowing(length: $0, hop: hop) } }

    /// Whether batches run side by side, one single-threaded batch per core (more than one batch
    /// of inputs: measured fastest for 1 s clips), rather than one batch at a time on every core
    /// (a few long clips: one single-threaded worker left the other core idle).
    var runsSideBySide: Bool {
        (concurrency ?? 2) > 1 && ((try? resolvedInputs(recorded: []).count) ?? 0) > corpusBatchSize
    }

    /// The inputs this process handles, in order: collected, sharded, less those already recorded.
    func resolvedInputs(recorded: Set<String>) throws -> [String] {
        var inputs = try Corpus.inputs(audio, listFile: list)
        if let (index, count) = try shardSpec() { inputs = Corpus.shard(inputs, index: index, count: count) }
        return inputs.filter { !recorded.contains($0) }
    }

    /// Whether the run is a corpus (more than one input, a list, a directory or JSON Lines) rather
    /// than one clip.
    var isCorpus: Bool {
        var isDirectory: ObjCBool = false
        return audio.count != 1 || list != nil || jsonl != nil || shard != nil
            || (FileManager.default.fileExists(atPath: audio[0], isDirectory: &isDirectory) && isDirectory.boolValue)
    }
}

/// Runs `work` over the inputs of `options` with one model: records each result (or error) in
/// the JSON Lines file, prints it with `show`, shows progress on a terminal, and fails with exit
/// status 1 after all inputs were tried when any failed.
func runCorpus<Value: Sendable & Encodable>(
    _ options: InputOptions, threadsPerClip: Int,
    work: @escaping @Sendable (String) throws -> Value,
    show: (_ input: String, _ value: Value) throws -> Void
) throws {
    try runCorpus(options, threadsPerClip: threadsPerClip, batchSize: 1,
                  batchWork: { paths in paths.map { path in Result { try work(path) } } }, show: show)
}

/// ``runCorpus(_:threadsPerClip:work:show:)`` with `batchWork` given up to `batchSize`
/// consecutive inputs at once (clips of equal length then share GEMMs).
func runCorpus<Value: Sendable & Encodable>(
    _ options: InputOptions, threadsPerClip: Int, batchSize: Int,
    batchWork: @escaping @Sendable ([String]) -> [Result<Value, any Error>],
    show: (_ input: String, _ value: Value) throws -> Void
) throws {
    let log = try options.jsonl.map { try JSONLinesLog(path: $0, resume: options.resume) }
    let inputs = try options.resolvedInputs(recorded: log?.recordedFiles ?? [])
    let batches = stride(from: 0, to: inputs.count, by: max(1, batchSize)).map { Array(inputs[$0..<min($0 + max(1, batchSize), inputs.count)]) }
    let concurrency = options.concurrency
        ?? (batches.count > 1 ? max(1, ProcessInfo.processInfo.activeProcessorCount / threadsPerClip) : 1)
    let progress = Progress(total: inputs.count, enabled: isatty(STDERR_FILENO) == 1 && inputs.count > 1)
    var failures = 0
    try withoutActuallyEscaping(show) { show in
        var thrown: (any Error)?
        Corpus.run(batches, concurrency: concurrency, work: batchWork) { _, batch, batchResult in
            let results: [Result<Value, any Error>]
            switch batchResult {
            case .success(let values): results = values
            case .failure(let error): results = batch.map { _ in .failure(error) }
            }
            for (input, result) in zip(batch, results) {
                guard thrown == nil else { return }
                do {
                    switch result {
                    case .success(let value):
                        try log?.append(file: input, value)
                        try show(input, value)
                    case .failure(let error):
                        failures += 1
                        let message = oneLine(String(describing: error))
                        try log?.append(file: input, error: message)
                        if log == nil || inputs.count == 1 {
                            FileHandle.standardError.write(Data("error: \(message)\n".utf8))
                        }
                    }
                } catch {
                    thrown = error
                }
                progress.advance()
            }
        }
        if let thrown { throw thrown }
    }
    progress.finish()
    if failures > 0 {
        if inputs.count > 1 {
            FileHandle.standardError.write(Data("error: \(failures) of \(inputs.count) inputs failed\(log == nil ? "" : " (see \(options.jsonl!))")\n".utf8))
        }
        throw ExitCode(1)
    }
}

/// Each input's result: windowed (as asked, or by default for a file too long to run at once)
/// through `windowed`, the others decoded and run as one batch and finished by `whole`.
func results<Value>(for paths: [String], windowing: Windowing?, network: BEATsModel, request: OutputRequest = .official,
                    windowed: (String, Windowing) throws -> Value,
                    whole: (String, ModelOutput) throws -> Value) -> [Result<Value, any Error>] {
    var results = [Result<Value, any Error>?](repeating: nil, count: paths.count)
    var batch: [Int] = []
    for (index, path) in paths.enumerated() {
        do {
            if let windows = try windowing ?? defaultWindowing(for: path, network: network) {
                results[index] = Result { try windowed(path, windows) }
            } else {
                batch.append(index)
            }
        } catch {
            results[index] = .failure(error)
        }
    }
    let outputs = batchOutputs(batch.map { paths[$0] }, network: network, request: request)
    for (index, output) in zip(batch, outputs) {
        results[index] = Result { try whole(paths[index], try output.get()) }
    }
    return results.map { $0! }
}

/// Decodes `paths` and runs them as one batch: each input's output or its own error.
func batchOutputs(_ paths: [String], network: BEATsModel, request: OutputRequest = .official) -> [Result<ModelOutput, any Error>] {
    var clips: [AudioClip] = []
    var positions: [Int] = []
    var results = [Result<ModelOutput, any Error>?](repeating: nil, count: paths.count)
    for (index, path) in paths.enumerated() {
        do {
            clips.append(try AudioClip(contentsOf: URL(fileURLWithPath: path)))
            positions.append(index)
        } catch {
            results[index] = .failure(error)
        }
    }
    let outputs = network.outputs(for: clips, sources: positions.map { paths[$0] }, request: request)
    for (position, output) in zip(positions, outputs) { results[position] = output }
    return results.map { $0! }
}

/// Inputs per batch: enough 1 s clips to fill the GEMMs a 10 s clip fills.
let corpusBatchSize = 8

/// "[done/total] rate, ETA" on standard error, rewritten in place (terminals only).
final class Progress {
    private let total: Int
    private let enabled: Bool
    private var done = 0
    private let started = Date()

    init(total: Int, enabled: Bool) {
        self.total = total
        self.enabled = enabled
    }

    func advance() {
        done += 1
        guard enabled else { return }
        let elapsed = Date().timeIntervalSince(started)
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let line = String(format: "\r[%d/%d] %.1f files/s, ETA %.0f s ", done, total, rate, eta)
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish() {
        if enabled && done > 0 { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

/// Windows for a file too long to run at once when none were asked for: 10 s windows, with a
/// note on standard error saying so (never a silent refusal); nil for a file that fits.
func defaultWindowing(for path: String, network: BEATsModel) throws -> Windowing? {
    let decoder = try AudioDecoder(path: path)
    guard let frames = decoder.sourceFrameCount, decoder.sourceSampleRate > 0 else { return nil }
    let seconds = Double(frames) / Double(decoder.sourceSampleRate)
    let limit = Double(BEATsAudio.maximumSamples) / Double(BEATsAudio.sampleRate)
    guard seconds > limit else { return nil }
    FileHandle.standardError.write(Data(String(
        format: "note: %@ is %.0f s, longer than the model takes at once (%.0f s): using 10 s windows (choose with --window/--hop)\n",
        path, seconds, limit).utf8))
    return Windowing(length: 10)
}
