import ArgumentParser
import BEATs
#if canImport(Glibc)
import Glibc
#endif

/// The `beats` command: BEATs checkpoints, native files and inference.
struct Beats: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "beats",
        abstract: "Read, convert and run Microsoft BEATs audio models.",
        version: "beats \(BEATsVersion.current)",
        subcommands: [
            InspectCommand.self, ConvertCommand.self, ExportCommand.self, CheckCommand.self, TensorCommand.self,
            RunCommand.self, ClassifyCommand.self, TokenizeCommand.self, VerifyCommand.self, CompareCommand.self, BenchCommand.self,
        ]
    )
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
    let line = "error: " + oneLine(message) + "\n"
    var bytes = Array(line.utf8)
    _ = write(STDERR_FILENO, &bytes, bytes.count)
    exit(1)
}

/// `message` as one printable line. Error messages quote names and bytes from the input file
/// (zip entry names, tensor names, header strings), so a hostile file could otherwise end the line
/// early or send escape sequences to the terminal: newlines become spaces, every other control
/// character (C0, DEL, C1, U+2028/2029) is shown as `\xNN` / `\u{NNNN}`, and the line is cut at
/// 4096 characters.
func oneLine(_ message: String, maxLength: Int = 4096) -> String {
    var output = ""
    var length = 0
    for scalar in message.unicodeScalars {
        if length >= maxLength {
            output += "…"
            break
        }
        switch scalar.value {
        case 0x0A:
            output += " "
        case 0x00..<0x20, 0x7F:
            output += "\\x" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
        case 0x80..<0xA0, 0x2028, 0x2029:
            output += "\\u{" + String(scalar.value, radix: 16) + "}"
        default:
            output.unicodeScalars.append(scalar)
        }
        length += 1
    }
    return output
}
