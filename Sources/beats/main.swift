import ArgumentParser
import BEATsCore
#if canImport(Glibc)
import Glibc
#endif

/// The `beats` command: BEATs checkpoints, native files and inference.
struct Beats: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "beats",
        abstract: "Read, convert and run Microsoft BEATs audio models.",
        subcommands: [
            InspectCommand.self, ConvertCommand.self, CheckCommand.self, TensorCommand.self,
            RunCommand.self, ClassifyCommand.self, TokenizeCommand.self, VerifyCommand.self, BenchCommand.self,
        ]
    )
}

/// Errors the commands raise themselves (not from a reader).
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Command-line mistakes keep ArgumentParser's usage message and exit code. Every failure while
/// running ends the same way: one line `error: …` on stderr and exit status 1.
var command: ParsableCommand
do {
    command = try Beats.parseAsRoot()
} catch {
    Beats.exit(withError: error)
}
do {
    try command.run()
} catch let exitCode as ExitCode {
    exit(exitCode.rawValue)
} catch where String(reflecting: type(of: error)).hasPrefix("ArgumentParser.") {
    // Help, version and usage errors that ArgumentParser raises while running (e.g. `beats --help`).
    Beats.exit(withError: error)
} catch {
    reportAndExit(String(describing: error))
}

func reportAndExit(_ message: String) -> Never {
    let line = "error: " + message.split(separator: "\n").joined(separator: " ") + "\n"
    var bytes = Array(line.utf8)
    _ = write(STDERR_FILENO, &bytes, bytes.count)
    exit(1)
}
