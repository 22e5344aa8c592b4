import ArgumentParser
import BEATs
import Foundation

/// Options every command that runs the model shares.
struct InferenceOptions: ParsableArguments {
    @Option(help: "Worker threads for one clip (attention heads, GEMM bands, rows).")
    var threads: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)

    @OptionGroup var checksums: ChecksumOption

    func validate() throws {
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be between 1 and 256") }
    }

    var configuration: BEATsModel.Configuration { BEATsModel.Configuration(threads: threads, verifyChecksums: checksums.verifyChecksums) }

    /// Opens `path` as a model, saying which argument is which when audio was given instead.
    func openModel(_ path: String, command: String) throws -> BEATsModel {
        do {
            return try BEATsModel(path: path, configuration: configuration)
        } catch BEATsError.audioInsteadOfModel(let path, let format) {
            throw CommandError("\(path) is audio (\(format)), not a model: the model comes first (beats \(command) MODEL AUDIO)")
        }
    }
}

/// Errors the commands raise themselves (not from the library).
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Writes `text` to standard output as it is (no newline added), all of it.
func printRaw(_ text: String) throws {
    try OutputFile.write(Array(text.utf8), to: "-")
}
