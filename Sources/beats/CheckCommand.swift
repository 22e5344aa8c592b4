import ArgumentParser
import BEATsCheckpoint
import BEATsCore
import BEATsFormat
import Foundation

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Verify a native file end to end: header, bounds, alignment and every tensor's checksum.",
        discussion: "A PyTorch checkpoint is checked too (its zip records' CRC-32). Exit status 1 on any failure.")

    @Argument(help: "Native file (or checkpoint) to verify.")
    var file: String

    @Flag(help: "Only open the file (header, table, bounds, alignment) and report how long that took; read no tensor data.")
    var headerOnly = false

    func run() throws {
        let started = DispatchTime.now().uptimeNanoseconds
        let store = try ModelFile.open(path: file)  // validates header, table and layout
        var summary: String
        if headerOnly {
            let milliseconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6
            print("ok: \(file): \(store.tensorNames.count) tensors, header and layout valid (open \(String(format: "%.3f", milliseconds)) ms)")
            return
        }
        if let native = store as? NativeModelFile {
            let failures = native.checksumFailures()
            if let first = failures.first {
                var names: [String] = []
                for failure in failures {
                    if case .checksumMismatch(let tensor, let region, _, _, _) = failure { names.append("'\(tensor)' (\(region.rawValue))") }
                }
                let others = failures.count > 1 ? "; \(failures.count) regions fail in all: " + names.joined(separator: ", ") : ""
                throw CommandError("\(file): \(first)\(others)")
            }
            let bytes = native.header.tensors.reduce(0) { $0 + $1.storedBytes }
            summary = "\(native.header.tensors.count) tensors, \(megabytes(bytes)) MB of tensor data, header and every checksum match"
        } else if let checkpoint = store as? PyTorchCheckpoint {
            try checkpoint.verifyChecksums()
            summary = "\(checkpoint.tensorNames.count) tensors, every stored CRC-32 matches (\(checkpoint.formatName))"
        } else {
            throw CommandError("\(file): cannot check a \(store.formatName) file")
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        print("ok: \(file): \(summary) (\(String(format: "%.2f", seconds)) s)")
    }
}
