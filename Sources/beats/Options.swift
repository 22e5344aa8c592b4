import ArgumentParser
import BEATs
import Foundation

/// Options every command that runs the model shares.
struct InferenceOptions: ParsableArguments {
    @Option(help: "Worker threads for one clip (default: every core for one clip, one per clip for many).")
    var threads: Int?

    @OptionGroup var checksums: ChecksumOption

    func validate() throws {
        if let threads, !(1...256).contains(threads) { throw ValidationError("--threads must be between 1 and 256") }
    }

    /// Threads per clip: as given, else one when batches of clips run side by side (one per
    /// core), every core otherwise.
    func threadsPerClip(corpus: Bool = false) -> Int {
        threads ?? (corpus ? 1 : max(1, ProcessInfo.processInfo.activeProcessorCount))
    }

    /// Opens `path` as a model, saying which argument is which when audio was given instead.
    func openModel(_ path: String, command: String, corpus: Bool = false) throws -> BEATsModel {
        do {
            return try BEATsModel(path: path, configuration: BEATsModel.Configuration(threads: threadsPerClip(corpus: corpus),
                                                                        verifyChecksums: checksums.verifyChecksums))
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

/// `value` as one line of JSON on standard output; with `file`, as a JSON Lines record
/// `{"file", …}` (many inputs).
func printJSON(_ value: some Encodable, file: String?) throws {
    let data: Data
    if let file {
        data = try JSONLinesLog.line(file: file, value)
    } else {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        data = try encoder.encode(value)
    }
    try printRaw(String(decoding: data, as: UTF8.self) + "\n")
}
