import ArgumentParser
import BEATs

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a model file's format, kind, config, labels and tensors (reads no tensor data).")

    @Argument(help: "A PyTorch checkpoint (zip or legacy), a safetensors file or a converted model file.")
    var file: String

    @Flag(help: "Print JSON: {\"format\", \"kind\", \"config\", \"labels\", \"tensors\": [{\"name\", \"dtype\", \"shape\"}]}.")
    var json = false

    @OptionGroup var checksums: ChecksumOption

    func run() throws {
        let summary = try ModelSummary(try ModelFile.open(path: file, verifyChecksums: checksums.verifyChecksums))
        try printRaw(json ? summary.json() : summary.table(path: file))
    }
}
