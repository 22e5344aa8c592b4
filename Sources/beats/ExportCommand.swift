import ArgumentParser
import BEATs

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a model as model.safetensors + config.json that the official code loads.",
        discussion: """
            Tensors keep their official state-dict names, dtypes and bytes: an export of an official \
            checkpoint loads into the official BEATs module with load_state_dict(strict=True) and gives \
            its outputs bit for bit. config.json holds the BEATs cfg, kind, label_dict/id2label/label2id \
            and the source checkpoint's SHA-256 (also in the header's __metadata__). From an int8 native \
            file, quantized weights are written as their dequantized float32 (said in the summary and in \
            config.json); an f16 file's tensors stay float16. Native files store the positional convolution folded, so they need \
            --fold-weight-norm. DIR is created if missing; files in it are replaced atomically (Ctrl-C \
            removes the temporary file).
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case safetensors }

    @Argument(help: "Model file: PyTorch checkpoint, safetensors or native file.")
    var model: String

    @Option(name: .shortAndLong, help: "Output directory (model.safetensors and config.json).")
    var output: String

    @Option(help: "Output format: safetensors.")
    var format: Format = .safetensors

    @Flag(help: "Write the positional convolution as one folded weight (encoder.pos_conv.0.weight) instead of weight_g/weight_v.")
    var foldWeightNorm = false

    @OptionGroup var checksums: ChecksumOption

    func run() throws {
        let summary = try ModelExport.safetensors(from: model, toDirectory: output, foldWeightNorm: foldWeightNorm,
                                                  verifyChecksums: checksums.verifyChecksums, removeOnInterrupt: true)
        var lines = ["exported \(model) -> \(summary.modelPath) + \(summary.configPath)",
                     "tensors: \(summary.tensorCount), size: \(sizeText(summary.bytes))"]
        if summary.foldedWeightNorm { lines.append("positional convolution: folded weight (encoder.pos_conv.0.weight), not weight_g/weight_v") }
        if !summary.dequantized.isEmpty {
            lines.append("note: \(summary.dequantized.count) int8 weights written as dequantized float32 (value x scale), not the original float weights")
        }
        print(lines.joined(separator: "\n"))
    }
}
