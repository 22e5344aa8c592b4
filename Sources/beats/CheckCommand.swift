import ArgumentParser
import BEATs
import Dispatch
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
        let result = try ModelFileCheck.run(path: file, headerOnly: headerOnly)
        let milliseconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6
        if headerOnly {
            print("ok: \(file): \(result.tensorCount) tensors, header and layout valid (open \(String(format: "%.3f", milliseconds)) ms)")
        } else if result.format == NativeFormat.name {
            print("ok: \(file): \(result.tensorCount) tensors, \(megabytes(result.checkedBytes)) MB of tensor data, header and every checksum match (\(String(format: "%.2f", milliseconds / 1000)) s)")
        } else {
            print("ok: \(file): \(result.tensorCount) tensors, every stored CRC-32 matches (\(result.format)) (\(String(format: "%.2f", milliseconds / 1000)) s)")
        }
    }
}
