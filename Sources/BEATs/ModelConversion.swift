import BEATsCore
import BEATsFormat

@_exported import struct BEATsFormat.ConversionOptions
@_exported import struct BEATsFormat.ConversionSummary
@_exported import struct BEATsFormat.ConversionProgress
@_exported import struct BEATsFormat.ConvertedTensor
@_exported import struct BEATsFormat.QuantizationError
@_exported import struct BEATsFormat.NativeMetadataItem
@_exported import enum BEATsFormat.NativeFormat

/// Converts any model file into the native memory-mappable format (`Formats/NATIVE-FORMAT.md`).
public enum ModelConversion {
    /// Converts the model at `inputPath` into a native file at `outputPath`, written through a
    /// temporary file that replaces the output only when complete. The file records where it
    /// came from: a checkpoint's name and SHA-256, or, when re-converting a native file, the
    /// original checkpoint's. `progress` is called after each tensor.
    ///
    /// With `removeOnInterrupt`, SIGINT/SIGTERM/SIGHUP remove the temporary file before the
    /// process dies (for command-line tools; an app keeps its own signal handling).
    public static func convert(_ inputPath: String, to outputPath: String, options: ConversionOptions,
                               removeOnInterrupt: Bool = false,
                               verifyChecksums: Bool = false,
                               progress: ((ConversionProgress) -> Void)? = nil) throws -> ConversionSummary {
        // A symbolic link's target is replaced (the link stays); standard output, a FIFO or a
        // device is refused: the file is written with seeks and renamed into place.
        let target = try OutputFile.regularFileTarget(outputPath, writing: "a native model file")
        let source = try ModelFile.open(path: inputPath, verifyChecksums: verifyChecksums)
        // The converter itself takes any store (tests convert bare state dicts); a model file
        // without a BEATs config would convert into a file that cannot run.
        try source.requireBEATsConfig()
        var options = options
        if let native = source as? NativeModelFile {
            options.sourceName = native.header.sourceName
            options.sourceSHA256 = native.header.sourceSHA256
        } else {
            options.sourceName = String(inputPath.split(separator: "/").last ?? Substring(inputPath))
            options.sourcePathToHash = inputPath
        }
        if removeOnInterrupt { InterruptCleanup.installHandlers() }
        return try NativeConverter.convert(source, to: target, options: options, progress: progress)
    }
}

/// One tensor of a model file as a NumPy `.npy` file (what `beats tensor` writes).
public enum TensorExport {
    /// The bytes of `name` from the file at `path` as `.npy`: its own dtype where NumPy has one,
    /// float32 for int8-quantized (dequantized) and bfloat16 tensors.
    public static func npyBytes(ofTensor name: String, inFileAt path: String, verifyChecksums: Bool = false) throws -> [UInt8] {
        let store = try ModelFile.open(path: path, verifyChecksums: verifyChecksums)
        guard let tensor = try store.tensor(named: name) else {
            let names = store.tensorNames
            let similar = names.filter { $0.contains(name) || name.contains($0) }.prefix(3)
            let hint = similar.isEmpty ? "" : "; did you mean " + similar.map { "'\($0)'" }.joined(separator: ", ") + "?"
            throw BEATsError.noSuchTensor(file: path, name: name, detail: "\(names.count) tensors\(hint)")
        }
        if let descriptor = tensor.dtype.numpyDescriptor {
            return tensor.packedLittleEndianBytes().withUnsafeBytes {
                NumpyFile.encode(descriptor: descriptor, shape: tensor.shape, data: $0)
            }
        }
        return NumpyFile.encode(try tensor.floats(), shape: tensor.shape)
    }
}

/// End-to-end verification of a model file (what `beats check` runs).
public enum ModelFileCheck {
    /// What a successful check found.
    public struct Result: Sendable {
        /// Tensors in the file.
        public var tensorCount: Int
        /// Bytes of tensor data whose checksums were verified.
        public var checkedBytes: Int
        /// The file's format: "pytorch-zip", "pytorch-legacy", "safetensors" or "beatsw".
        public var format: String
    }

    /// Opens `path` (header, table, bounds, alignment) and, unless `headerOnly`, verifies every
    /// checksum the file carries (native: XXH64 per region; PyTorch zip: CRC-32 per record;
    /// safetensors and legacy streams carry none: every tensor's bounds are checked).
    public static func run(path: String, headerOnly: Bool = false) throws -> Result {
        let store = try ModelFile.open(path: path)
        if !headerOnly {
            if let native = store as? NativeModelFile {
                // Every damaged region named, not only the first.
                let failures = native.checksumFailures()
                if let first = failures.first {
                    var names: [String] = []
                    for failure in failures {
                        if case .checksumMismatch(let tensor, let region, _, _, _) = failure { names.append("'\(tensor)' (\(region.rawValue))") }
                    }
                    let others = failures.count > 1 ? "; \(failures.count) regions fail in all: " + names.joined(separator: ", ") : ""
                    throw BEATsError.inconsistentFile("\(path): \(first)\(others)")
                }
            } else {
                try store.verifyChecksums()
            }
        }
        let bytes = (store as? NativeModelFile)?.header.tensors.reduce(0) { $0 + $1.storedBytes } ?? 0
        return Result(tensorCount: store.tensorNames.count, checkedBytes: headerOnly ? 0 : bytes, format: store.formatName)
    }
}
