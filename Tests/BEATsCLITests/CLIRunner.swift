import BEATsCore
import BEATsTestSupport
import Foundation
import Testing

/// One finished run of the `beats` executable.
struct CLIRun {
    var status: Int32
    var standardOutput: String
    var standardError: String

    /// stdout's lines (a final newline ends the last line, it does not start an empty one).
    var outputLines: [String] { Self.lines(standardOutput) }
    /// stderr's lines, empty ones included, so "one line" means exactly one.
    var errorLines: [String] { Self.lines(standardError) }

    private static func lines(_ text: String) -> [String] {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        return lines
    }
}

/// Finds the built `beats` binary and runs it.
enum CLI {
    /// The `beats` binary built with these tests: next to the test bundle in the products
    /// directory (whatever the scratch path), else the newest `.build*/{debug,release}/beats`
    /// under the package root.
    static func beatsBinary() throws -> URL {
        let manager = FileManager.default
        var candidates: [URL] = []
        if let executable = Bundle.main.executableURL {
            candidates.append(executable.deletingLastPathComponent().appendingPathComponent("beats"))
        }
        candidates.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("beats"))
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("beats"))
        for candidate in candidates where manager.isExecutableFile(atPath: candidate.path) {
            return candidate
        }
        let root = Fixtures.root.deletingLastPathComponent()
        let scratch = (try? manager.contentsOfDirectory(atPath: root.path))?.filter { $0.hasPrefix(".build") } ?? []
        let built = scratch.flatMap { folder in
            ["debug", "release"].map { root.appendingPathComponent(folder).appendingPathComponent($0).appendingPathComponent("beats") }
        }.filter { manager.isExecutableFile(atPath: $0.path) }
        func modified(_ url: URL) -> Date {
            (try? manager.attributesOfItem(atPath: url.path)[.modificationDate] as? Date) ?? .distantPast
        }
        guard let newest = built.max(by: { modified($0) < modified($1) }) else {
            throw BinaryMissing(lookedIn: candidates.map(\.path) + [root.path + "/.build*/{debug,release}"])
        }
        return newest
    }

    struct BinaryMissing: Error, CustomStringConvertible {
        let lookedIn: [String]
        var description: String { "the beats executable is not built (looked in \(lookedIn.joined(separator: ", ")))" }
    }

    /// Runs `beats arguments…` to completion (stdin is /dev/null, so never a terminal).
    static func beats(_ arguments: [String]) throws -> CLIRun {
        let process = Process()
        process.executableURL = try beatsBinary()
        process.arguments = arguments
        let output = Pipe()
        let error = Pipe()
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = error
        try process.run()
        // Drain stderr on another thread while reading stdout, so neither full pipe blocks the child.
        let errorData = ErrorDrain(error.fileHandleForReading)
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return CLIRun(status: process.terminationStatus,
                      standardOutput: String(decoding: outputData, as: UTF8.self),
                      standardError: String(decoding: errorData.wait(), as: UTF8.self))
    }

    /// Reads a pipe to its end on a thread of its own.
    private final class ErrorDrain: @unchecked Sendable {
        private var data = Data()
        private let done = DispatchSemaphore(value: 0)

        init(_ handle: FileHandle) {
            Thread.detachNewThread { [self] in
                data = handle.readDataToEndOfFile()
                done.signal()
            }
        }

        func wait() -> Data {
            done.wait()
            return data
        }
    }

    /// `Fixtures/models/NAME.pt`: tiny (pre-trained), tiny_ft (fine-tuned), tiny_tok (tokenizer).
    static func model(_ name: String) throws -> String { try Fixtures.path("models/\(name).pt") }

    /// `Fixtures/audio/NAME.wav`.
    static func audio(_ name: String) throws -> String { try Fixtures.path("audio/\(name).wav") }

    /// Converts `model` to `directory/name` with `options`; the conversion must succeed.
    static func convert(_ model: String, in directory: URL, name: String = "model.beatsw", options: [String] = []) throws -> String {
        let output = directory.appendingPathComponent(name).path
        let run = try beats(["convert", try self.model(model), "-o", output] + options)
        try #require(run.status == 0, "convert failed: \(run.standardError)")
        return output
    }
}

/// Runs `body` with a fresh temporary directory for its outputs, removed afterwards.
func withScratchDirectory<Result>(_ body: (URL) throws -> Result) throws -> Result {
    let directory = try Fixtures.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    return try body(directory)
}

/// The failure contract of every command: exit status 1, nothing on stdout, and stderr exactly
/// one line starting `error: ` that contains each of `fragments`.
func expectOneErrorLine(_ run: CLIRun, mentioning fragments: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(run.status == 1, "exit status; stderr: \(run.standardError)", sourceLocation: sourceLocation)
    #expect(run.standardOutput.isEmpty, "stdout: \(run.standardOutput)", sourceLocation: sourceLocation)
    #expect(run.errorLines.count == 1, "stderr: \(run.standardError)", sourceLocation: sourceLocation)
    let line = run.errorLines.first ?? ""
    #expect(line.hasPrefix("error: "), "stderr: \(run.standardError)", sourceLocation: sourceLocation)
    for fragment in fragments {
        #expect(line.contains(fragment), "'\(fragment)' missing from: \(line)", sourceLocation: sourceLocation)
    }
}

/// `directory` holds exactly `names` (hidden files included): no partial or temporary file is left.
func expectEntries(of directory: URL, _ names: Set<String>, sourceLocation: SourceLocation = #_sourceLocation) {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
    #expect(Set(entries) == names, "entries of \(directory.path)", sourceLocation: sourceLocation)
}

/// An output path a command cannot write.
enum UnwritableOutput: String, CaseIterable, Sendable, CustomTestStringConvertible {
    /// A file in a directory that does not exist.
    case inMissingDirectory
    /// An existing directory.
    case existingDirectory

    var testDescription: String { rawValue }

    /// Prepares the path in `directory` and returns it.
    func path(in directory: URL) throws -> String {
        switch self {
        case .inMissingDirectory:
            return directory.appendingPathComponent("missing/dir/out.npy").path
        case .existingDirectory:
            let path = directory.appendingPathComponent("out")
            try FileManager.default.createDirectory(at: path, withIntermediateDirectories: false)
            return path.path
        }
    }

    /// `beats arguments(path)` refuses the output: one error line naming the path (and no
    /// Foundation error dump), nothing left in the scratch directory but what was there.
    func expectRefused(_ arguments: (String) throws -> [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
        try withScratchDirectory { directory in
            let output = try path(in: directory)
            let run = try CLI.beats(try arguments(output))
            expectOneErrorLine(run, mentioning: [output], sourceLocation: sourceLocation)
            #expect(!run.standardError.contains("NSCocoaErrorDomain"), "\(run.standardError)", sourceLocation: sourceLocation)
            switch self {
            case .inMissingDirectory:
                expectEntries(of: directory, [], sourceLocation: sourceLocation)
            case .existingDirectory:
                expectEntries(of: directory, ["out"], sourceLocation: sourceLocation)
                expectEntries(of: URL(fileURLWithPath: output), [], sourceLocation: sourceLocation)
            }
        }
    }
}

/// Largest |a - b| over two equally long arrays (infinity when the lengths differ).
func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
    guard a.count == b.count else { return .infinity }
    return zip(a, b).reduce(0) { Swift.max($0, abs($1.0 - $1.1)) }
}

/// Fraction of positions where two equally long token arrays agree (0 when the lengths differ).
func agreement(_ a: [Int64], _ b: [Int64]) -> Double {
    guard a.count == b.count, !a.isEmpty else { return 0 }
    return Double(zip(a, b).filter { $0 == $1 }.count) / Double(a.count)
}

/// Parses stdout as one JSON object.
func jsonObject(_ run: CLIRun) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(run.standardOutput.utf8)) as? [String: Any])
}

/// A fixture model, and how close `beats run`'s output must be to the official one (SPEC parity).
struct ModelFixture: Sendable, CustomTestStringConvertible {
    let name: String
    let kind: String

    var testDescription: String { name }

    static let all = [
        ModelFixture(name: "tiny", kind: "pretrained"),
        ModelFixture(name: "tiny_ft", kind: "finetuned"),
        ModelFixture(name: "tiny_tok", kind: "tokenizer"),
    ]

    /// `output` (read from a .npy) against `Fixtures/ref/NAME/CLIP.npy`: same dtype and shape;
    /// features within 1e-4, probabilities within 1e-5, tokens at least 99 % identical.
    func expectMatchesReference(_ output: TensorView, clip: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let reference = try Fixtures.reference("\(name)/\(clip)")
        #expect(output.dtype == reference.dtype, sourceLocation: sourceLocation)
        #expect(output.shape == reference.shape, sourceLocation: sourceLocation)
        switch kind {
        case "tokenizer":
            #expect(agreement(try output.integers(), try reference.integers()) >= 0.99, sourceLocation: sourceLocation)
        default:
            let tolerance: Float = kind == "finetuned" ? 1e-5 : 1e-4
            let error = maxAbsDifference(try output.floats(), try reference.floats())
            #expect(error <= tolerance, "max abs error \(error)", sourceLocation: sourceLocation)
        }
    }
}
