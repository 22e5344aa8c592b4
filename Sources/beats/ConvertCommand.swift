import ArgumentParser
import BEATs
import Foundation
#if canImport(Glibc)
import Glibc
#endif

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a checkpoint (or a native file) into a native memory-mappable file.",
        discussion: """
            Folds the positional convolution's weight norm, keeps state-dict names, and writes to a \
            temporary file that replaces OUT only when complete and flushed to disk. --quantize int8 \
            stores the encoder's Linear weights, post_extract_proj and the predictor as int8 with one \
            scale per row. Progress goes to stderr on a terminal; the summary to stdout. Ctrl-C removes \
            the temporary file and leaves OUT as it was.
            """)

    enum Quantization: String, ExpressibleByArgument, CaseIterable { case none, int8 }
    enum FloatDType: String, ExpressibleByArgument, CaseIterable { case f32, f16 }

    @Argument(help: "PyTorch checkpoint or native file to convert.")
    var input: String

    @Option(name: .shortAndLong, help: "Output path of the native file.")
    var output: String

    @Option(help: "Quantize weights: none or int8.")
    var quantize: Quantization = .none

    @Option(help: "Storage of float tensors that are not quantized: f32 or f16.")
    var dtype: FloatDType = .f32

    @Option(name: .customLong("meta"), help: "Extra metadata KEY=VALUE for the header (repeatable).")
    var metadata: [String] = []

    @Flag(help: ArgumentHelp("Do not flush OUT to disk before renaming it into place.",
                             discussion: """
                                 Faster (no wait for the disk) and still atomic for other processes, but a power loss \
                                 soon after may leave an empty or partial file under OUT. For scratch and CI conversions.
                                 """))
    var noFsync = false

    @OptionGroup var checksums: ChecksumOption

    func run() throws {
        var options = ConversionOptions(floatType: dtype == .f16 ? .float16 : .float32, quantizeInt8: quantize == .int8)
        options.durable = !noFsync
        for item in metadata {
            guard let equals = item.firstIndex(of: "="), equals != item.startIndex else {
                throw CommandError("--meta expects KEY=VALUE, got '\(item)'")
            }
            options.metadata.append(NativeMetadataItem(key: String(item[..<equals]), value: String(item[item.index(after: equals)...])))
        }
        let showProgress = isatty(STDERR_FILENO) == 1
        let summary = try ModelConversion.convert(input, to: output, options: options, removeOnInterrupt: true,
                                                        verifyChecksums: checksums.verifyChecksums) { progress in
            guard showProgress else { return }
            let tensor = progress.tensor
            let width = String(progress.count).count
            var line = "[\(pad(String(progress.index), width))/\(progress.count)] \(pad(tensor.name, -44)) "
            line += pad("\(tensor.sourceDType.rawValue) \(shapeText(tensor.shape))", -22)
            line += " -> \(pad(tensor.storedDType.rawValue, -7)) size = \(sizeText(tensor.bytesIn)) -> \(sizeText(tensor.bytesOut))"
            if let error = tensor.quantizationError { line += String(format: "  err %.3f %%", error.relativeRMS * 100) }
            line += String(format: "  (%.1f/%.1f MB)", Double(progress.bytesRead) / 1e6, Double(progress.bytesTotal) / 1e6)
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
        print(Self.summaryText(summary, input: input, output: output))
    }

    static func summaryText(_ summary: ConversionSummary, input: String, output: String) -> String {
        var lines = ["converted \(input) -> \(output) (\(NativeFormat.name) \(NativeFormat.majorVersion).\(NativeFormat.minorVersion))"]
        let ratio = summary.bytesIn > 0 ? Double(summary.bytesOut) / Double(summary.bytesIn) : 0
        lines.append("tensors: \(summary.tensors.count), quantized: \(summary.quantizedCount)")
        lines.append("size: \(megabytes(summary.bytesIn)) MB of tensors in -> \(megabytes(summary.bytesOut)) MB file out (\(String(format: "%.3f", ratio))x)")
        if let worst = summary.worstQuantized, let error = worst.quantizationError {
            lines.append(String(format: "worst quantization error: %@ (relative RMS %.3f %%, max %.3g = %.2f step)",
                                worst.name, error.relativeRMS * 100, error.maxAbsolute, error.maxInSteps))
        }
        if let digest = summary.sourceSHA256, digest.contains(where: { $0 != 0 }) {
            lines.append("source sha256: " + digest.map { String(format: "%02x", $0) }.joined())
        }
        lines.append(String(format: "time: %.2f s", summary.seconds))
        return lines.joined(separator: "\n")
    }
}

func megabytes(_ bytes: Int) -> String { String(format: "%.2f", Double(bytes) / 1e6) }

/// "9.44 MB" or, below a megabyte, "3.1 KB".
func sizeText(_ bytes: Int) -> String {
    bytes >= 1_000_000 ? String(format: "%.2f MB", Double(bytes) / 1e6) : String(format: "%.1f KB", Double(bytes) / 1e3)
}

func shapeText(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }

/// Pads to `width` characters: right-aligned for a positive width, left-aligned for a negative one.
func pad(_ text: String, _ width: Int) -> String {
    let missing = abs(width) - text.count
    guard missing > 0 else { return text }
    let spaces = String(repeating: " ", count: missing)
    return width > 0 ? spaces + text : text + spaces
}
