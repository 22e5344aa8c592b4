import ArgumentParser
import BEATsCore
import Foundation

struct TensorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tensor",
        abstract: "Write one tensor as a NumPy .npy file (int8-quantized and bfloat16 tensors as float32).")

    @Argument(help: "Native file or checkpoint.")
    var file: String

    @Argument(help: "Tensor name, e.g. encoder.layers.0.fc1.weight.")
    var name: String

    @Option(name: .shortAndLong, help: "Output .npy path.")
    var output: String

    func run() throws {
        let store = try ModelFile.open(path: file)
        // For a quantized tensor the store hands back the dequantized float32 values.
        guard let tensor = try store.tensor(named: name) else {
            let names = store.tensorNames
            let similar = names.filter { $0.contains(name) || name.contains($0) }.prefix(3)
            let hint = similar.isEmpty ? "" : "; did you mean " + similar.map { "'\($0)'" }.joined(separator: ", ") + "?"
            throw CommandError("\(file) has no tensor '\(name)' (\(names.count) tensors\(hint))")
        }
        let bytes: [UInt8]
        if let descriptor = tensor.dtype.numpyDescriptor {
            bytes = tensor.packedLittleEndianBytes().withUnsafeBytes {
                NumpyFile.encode(descriptor: descriptor, shape: tensor.shape, data: $0)
            }
        } else {
            bytes = NumpyFile.encode(try tensor.floats(), shape: tensor.shape)
        }
        try Data(bytes).write(to: URL(fileURLWithPath: output), options: .atomic)
    }
}
