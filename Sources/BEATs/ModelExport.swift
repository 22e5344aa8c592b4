import BEATsCheckpoint
import BEATsCore
import BEATsFormat
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@_exported import enum BEATsCheckpoint.SafetensorsFormat
@_exported import enum BEATsCheckpoint.SafetensorsError
@_exported import enum BEATsCheckpoint.JSONError
@_exported import enum BEATsFormat.ConversionError

/// Why an export was refused.
public enum ExportError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The input holds the positional convolution folded (`encoder.pos_conv.0.weight`: native
    /// files, folded exports), so the official module's `weight_g`/`weight_v` cannot be recovered.
    case foldedWeightNorm(path: String)

    public var description: String {
        switch self {
        case .foldedWeightNorm(let path):
            return "\(path) stores the positional convolution's weight norm folded ('\(PositionalConvWeightNorm.weightName)'), so the official module's weight_g/weight_v cannot be recovered exactly: export with --fold-weight-norm (for code that loads the folded weight, as the Hugging Face port does), or export the original checkpoint"
        }
    }
}

/// What an export wrote.
public struct ExportSummary: Sendable {
    /// `DIR/model.safetensors` and `DIR/config.json`.
    public var modelPath: String
    public var configPath: String
    public var tensorCount: Int
    /// Size of `model.safetensors`.
    public var bytes: Int
    /// Tensors stored int8 in the input and written as dequantized float32.
    public var dequantized: [String]
    /// Whether `encoder.pos_conv.0.weight` was written folded instead of `weight_g`/`weight_v`.
    public var foldedWeightNorm: Bool
}

/// Writes any model file as `model.safetensors` + `config.json` (what `beats export` does).
///
/// Tensors keep their official state-dict names, dtypes and values, so an export of an official
/// checkpoint loads into the official `BEATs` module with `load_state_dict(strict=True)` and
/// gives its outputs bit for bit (`tools/safetensors_parity.py` checks it). Two cases change
/// values, and the summary says so:
/// - an f16 native file: tensors keep their float16 values and dtype (`F16`); loading them into
///   the official float32 module widens them exactly, but they are the f16 file's weights, not
///   the original checkpoint's;
/// - an int8 native file: each quantized weight is written as its dequantized float32
///   (`value × scale`, exactly what the runtime computes with), not the original weight;
/// - `foldWeightNorm`: the positional convolution's `weight_g`/`weight_v` become the folded
///   float32 `encoder.pos_conv.0.weight` (the same bits `beats convert` stores), which the
///   official module does not load without removing its weight norm. A file that already holds
///   the folded weight (any native file) can only be exported this way.
///
/// Both files follow ``OutputFile``'s rules (a regular file is replaced atomically, a symbolic
/// link's target is replaced); `DIR` is created if missing (its parent must exist).
public enum ModelExport {
    ///
    /// With `removeOnInterrupt`, SIGINT/SIGTERM/SIGHUP remove the temporary files before the
    /// process dies (for command-line tools; an app keeps its own signal handling).
    public static func safetensors(from inputPath: String, toDirectory directory: String, foldWeightNorm: Bool = false,
                                   verifyChecksums: Bool = false, removeOnInterrupt: Bool = false) throws -> ExportSummary {
        try prepareDirectory(directory)
        if removeOnInterrupt { InterruptCleanup.installHandlers() }
        let modelPath = directory + "/model.safetensors"
        let configPath = directory + "/config.json"
        try OutputFile.checkWritable(modelPath)
        try OutputFile.checkWritable(configPath)

        let store = try ModelFile.open(path: inputPath, verifyChecksums: verifyChecksums)
        try store.requireBEATsConfig()
        let plan = try planTensors(store, path: inputPath, foldWeightNorm: foldWeightNorm)

        let source = try sourceDescription(store, path: inputPath)
        let configText = configJSON(store, source: source, foldedWeightNorm: plan.folded, dequantized: !plan.dequantized.isEmpty)
        let header = try headerBytes(plan.tensors, metadata: [("format", "pt"), (SafetensorsFormat.configMetadataKey, configText)])

        let output = try OutputFileWriter(path: modelPath)
        var length = UInt64(header.count).littleEndian
        try withUnsafeBytes(of: &length) { try output.write($0) }
        try output.write(header)
        var bytes = 8 + header.count
        for tensor in plan.tensors {
            try tensor.write(output)
            bytes += tensor.byteCount
        }
        try output.commit()
        try OutputFile.write(Array((configText + "\n").utf8), to: configPath)
        return ExportSummary(modelPath: modelPath, configPath: configPath, tensorCount: plan.tensors.count, bytes: bytes,
                             dequantized: plan.dequantized, foldedWeightNorm: plan.folded)
    }

    /// Creates `directory` when missing (one level: its parent must exist); refuses anything
    /// that is not a directory.
    static func prepareDirectory(_ directory: String) throws(BEATsError) {
        guard directory != "-", !directory.isEmpty else {
            throw .cannotWrite(path: directory.isEmpty ? "''" : directory, reason: "export writes two files into a directory, not to standard output")
        }
        var status = stat()
        if stat(directory, &status) == 0 {
            guard status.st_mode & S_IFMT == S_IFDIR else { throw .cannotWrite(path: directory, reason: "not a directory") }
            return
        }
        guard errno == ENOENT else { throw OutputFile.failure(directory, errno) }
        guard mkdir(directory, 0o755) == 0 || errno == EEXIST else {
            let parent = OutputFile.directoryName(directory)
            throw .cannotWrite(path: directory, reason: errno == ENOENT ? "directory \(parent) does not exist" : String(cString: strerror(errno)))
        }
    }

    // MARK: Tensors

    /// One tensor of the export: its name, dtype and shape in the header, and how its bytes are made.
    struct PlannedTensor {
        let name: String
        let dtype: DType
        let shape: [Int]
        let source: Source
        enum Source {
            case view(TensorView)
            case folded([Float])
        }
        var byteCount: Int { shape.reduce(1, *) * dtype.byteWidth }

        func write(_ output: OutputFileWriter) throws {
            switch source {
            case .view(let view):
                if let bytes = view.contiguousBytes {
                    try output.write(bytes)
                    MappedFile.releasePages(in: bytes, ownedBy: view.storage.owner)
                } else {
                    try output.write(view.packedLittleEndianBytes())
                }
            case .folded(let values):
                try values.withUnsafeBytes { try output.write($0) }
            }
        }
    }

    struct Plan {
        var tensors: [PlannedTensor] = []
        var dequantized: [String] = []
        var folded = false
    }

    static func planTensors(_ store: any WeightStore, path: String, foldWeightNorm: Bool) throws -> Plan {
        let present = Set(store.tensorNames)
        if present.contains(PositionalConvWeightNorm.weightName), !foldWeightNorm { throw ExportError.foldedWeightNorm(path: path) }
        let parts = PositionalConvWeightNorm.parts(in: present.contains)
        if let parts {
            for (have, need) in [(parts.gain, parts.direction), (parts.direction, parts.gain)]
            where present.contains(have) && !present.contains(need) {
                throw ConversionError.missingWeightNormPart(present: have, missing: need)
            }
        }
        var plan = Plan()
        for name in store.tensorNames {
            if foldWeightNorm, let parts, name == parts.direction { continue }
            if foldWeightNorm, let parts, name == parts.gain {
                guard let g = try store.tensor(named: parts.gain), let v = try store.tensor(named: parts.direction) else {
                    throw BEATsError.inconsistentFile("\(path) lists the positional convolution's weight norm but does not return it")
                }
                guard v.shape.count == 3, g.shape == [1, 1, v.shape[2]] else {
                    throw ConversionError.weightNormShapes(parts: parts, g: g.shape, v: v.shape)
                }
                let weight = PositionalConvWeightNorm.fold(gains: try g.floats().map(Double.init), direction: try v.floats(), shape: v.shape)
                plan.tensors.append(PlannedTensor(name: PositionalConvWeightNorm.weightName, dtype: .float32, shape: v.shape,
                                                  source: .folded(weight)))
                plan.folded = true
                continue
            }
            guard let view = try store.tensor(named: name) else {
                throw BEATsError.inconsistentFile("\(path) lists tensor '\(name)' but does not return it")
            }
            if try store.quantizedMatrix(named: name) != nil { plan.dequantized.append(name) }
            // qint8 comes back from the store as its dequantized float32 view.
            plan.tensors.append(PlannedTensor(name: name, dtype: view.dtype, shape: view.shape, source: .view(view)))
        }
        plan.folded = plan.folded || present.contains(PositionalConvWeightNorm.weightName)
        return plan
    }

    /// The safetensors header: tensors in order with consecutive offsets, then `__metadata__`,
    /// padded with spaces so the data starts on a multiple of 8.
    static func headerBytes(_ tensors: [PlannedTensor], metadata: [(String, String)]) throws -> [UInt8] {
        var parts: [String] = []
        var offset = 0
        for tensor in tensors {
            guard let dtype = SafetensorsFormat.name(of: tensor.dtype) else {
                throw BEATsError.inconsistentFile("tensor '\(tensor.name)' has dtype \(tensor.dtype.rawValue), which safetensors cannot hold")
            }
            let end = offset + tensor.byteCount
            parts.append(JSONText.string(tensor.name) + ":{\"dtype\":\"\(dtype)\",\"shape\":["
                         + tensor.shape.map(String.init).joined(separator: ",") + "],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        let meta = metadata.map { JSONText.string($0.0) + ":" + JSONText.string($0.1) }.joined(separator: ",")
        parts.insert("\"__metadata__\":{" + meta + "}", at: 0)
        var header = Array(("{" + parts.joined(separator: ",") + "}").utf8)
        let alignment = SafetensorsFormat.headerAlignment
        header += [UInt8](repeating: 0x20, count: (alignment - header.count % alignment) % alignment)
        return header
    }

    // MARK: config.json

    struct SourceDescription {
        var name: String
        var format: String
        var sha256: [UInt8]?
    }

    /// The checkpoint the weights came from: this file (hashed now), or for a native file the
    /// checkpoint it recorded.
    static func sourceDescription(_ store: any WeightStore, path: String) throws -> SourceDescription {
        if let native = store as? NativeModelFile {
            let digest = native.header.sourceSHA256
            return SourceDescription(name: native.header.sourceName, format: native.formatName,
                                     sha256: digest.contains { $0 != 0 } ? digest : nil)
        }
        let name = String(path.split(separator: "/").last ?? Substring(path))
        return SourceDescription(name: name, format: store.formatName, sha256: try SHA256.digest(ofFileAt: path))
    }

    /// `{"model_type", "kind", "cfg", "label_dict", "id2label", "label2id", "source", …}` on one line.
    static func configJSON(_ store: any WeightStore, source: SourceDescription, foldedWeightNorm: Bool, dequantized: Bool) -> String {
        var fields: [String] = []
        func add(_ key: String, _ rendered: String) { fields.append(JSONText.string(key) + ": " + rendered) }
        add("model_type", JSONText.string("beats"))
        add("kind", JSONText.string(store.kind.rawValue))
        add("cfg", "{" + store.config.values.map { JSONText.string($0.key) + ": " + JSONText.scalar($0.value) }.joined(separator: ", ") + "}")
        if !store.labels.isEmpty {
            add("label_dict", "{" + store.labels.map { JSONText.string(String($0.index)) + ": " + JSONText.string($0.mid) }.joined(separator: ", ") + "}")
            add("id2label", "{" + store.labels.map { JSONText.string(String($0.index)) + ": " + JSONText.string($0.name) }.joined(separator: ", ") + "}")
            var seen = Set<String>()
            let unique = store.labels.filter { seen.insert($0.name).inserted }
            add("label2id", "{" + unique.map { JSONText.string($0.name) + ": " + String($0.index) }.joined(separator: ", ") + "}")
        }
        var sourceFields = ["\"file\": " + JSONText.string(source.name), "\"format\": " + JSONText.string(source.format)]
        if let digest = source.sha256 {
            sourceFields.append("\"sha256\": " + JSONText.string(digest.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()))
        }
        add("source", "{" + sourceFields.joined(separator: ", ") + "}")
        add("pos_conv_weight_norm", JSONText.string(foldedWeightNorm ? "folded" : "weight_g/weight_v"))
        if dequantized { add("dequantized_from", JSONText.string("int8-per-row")) }
        add("exported_by", JSONText.string("beats-swift \(BEATsVersion.current)"))
        return "{" + fields.joined(separator: ", ") + "}"
    }

}
