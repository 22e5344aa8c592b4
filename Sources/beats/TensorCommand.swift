import ArgumentParser
import BEATs

struct TensorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tensor",
        abstract: "Write one tensor as a NumPy .npy file (int8-quantized and bfloat16 tensors as float32).")

    @Argument(help: "Native file or checkpoint.")
    var file: String

    @Argument(help: "Tensor name, e.g. encoder.layers.0.fc1.weight.")
    var name: String

    @Option(name: .shortAndLong, help: "Output .npy path ('-' for standard output).")
    var output: String

    @OptionGroup var checksums: ChecksumOption

    func run() throws {
        try OutputFile.checkWritable(output)
        try OutputFile.write(try TensorExport.npyBytes(ofTensor: name, inFileAt: file, verifyChecksums: checksums.verifyChecksums), to: output)
    }
}
