import BEATsCore
import Dispatch

/// What `beats convert` writes.
public struct ConversionOptions: Sendable {
    /// How floating-point tensors that are not quantized are stored.
    public enum FloatType: String, Sendable, CaseIterable {
        case float32 = "f32", float16 = "f16"
        var dtype: DType { self == .float32 ? .float32 : .float16 }
    }

    public var floatType: FloatType = .float32
    /// Quantize the weights the spec lists (§5) to `qint8`.
    public var quantizeInt8 = false
    /// Recorded in the header: the checkpoint's file name (no directory).
    public var sourceName = ""
    /// When set, the SHA-256 of this file is computed on a second thread while converting and
    /// recorded in the header.
    public var sourcePathToHash: String?
    /// A SHA-256 already known (re-quantizing a native file keeps its checkpoint's digest); used
    /// when `sourcePathToHash` is nil.
    public var sourceSHA256: [UInt8]?
    /// Extra `key=value` metadata, after the converter's own.
    public var metadata: [NativeMetadataItem] = []
    /// Flush the file to disk (`fsync`) before renaming it onto the destination. Without it the
    /// replacement is still atomic for other processes, but a power loss soon after may leave
    /// an empty or partial file under the destination's name.
    public var durable = true

    public init(floatType: FloatType = .float32, quantizeInt8: Bool = false) {
        self.floatType = floatType
        self.quantizeInt8 = quantizeInt8
    }
}

/// One tensor of a conversion, for the per-tensor lines and the summary.
public struct ConvertedTensor: Sendable {
    public var name: String
    public var sourceDType: DType
    public var storedDType: DType
    public var shape: [Int]
    public var bytesIn: Int
    public var bytesOut: Int
    /// Set for tensors quantized in this conversion.
    public var quantizationError: QuantizationError?
}

public struct ConversionSummary: Sendable {
    public var tensors: [ConvertedTensor]
    public var bytesIn: Int
    /// Size of the written file.
    public var bytesOut: Int
    public var sourceSHA256: [UInt8]?
    public var seconds: Double

    public var quantizedCount: Int { tensors.filter { $0.storedDType == .qint8 }.count }
    /// The quantized tensor with the largest relative RMS error.
    public var worstQuantized: ConvertedTensor? {
        tensors.filter { $0.quantizationError != nil }
            .max { ($0.quantizationError?.relativeRMS ?? 0) < ($1.quantizationError?.relativeRMS ?? 0) }
    }
}

/// Progress after each tensor: its report, how many are done of how many, bytes read so far.
public struct ConversionProgress: Sendable {
    public var tensor: ConvertedTensor
    public var index: Int
    public var count: Int
    public var bytesRead: Int
    public var bytesTotal: Int
}

public enum ConversionError: Error, CustomStringConvertible, Equatable, Sendable {
    case refusesDequantization(tensor: String)
    case missingWeightNormPart(present: String, missing: String)
    case weightNormShapes(parts: PositionalConvWeightNorm.Parts, g: [Int], v: [Int])
    case nonFinite(tensor: String, row: Int, column: Int)
    case notFloatingPoint(tensor: String, dtype: DType)
    case tensorVanished(String)
    case sourceHash(String)

    public var description: String {
        switch self {
        case .refusesDequantization(let tensor):
            return "the input is int8-quantized ('\(tensor)' is qint8); converting it back to float would not restore the original weights: convert the original checkpoint instead, or add --quantize int8"
        case .missingWeightNormPart(let present, let missing):
            return "tensor '\(present)' is present but '\(missing)' is missing: cannot fold the positional convolution's weight norm"
        case .weightNormShapes(let parts, let g, let v):
            return "tensor '\(parts.gain)' has shape \(g), which does not fit '\(parts.direction)' of shape \(v) (expected [1, 1, \(v.last ?? 0)])"
        case .nonFinite(let tensor, let row, let column):
            return "tensor '\(tensor)' has a non-finite value at row \(row), column \(column): cannot quantize it"
        case .notFloatingPoint(let tensor, let dtype):
            return "tensor '\(tensor)' is \(dtype.rawValue), expected a floating-point tensor"
        case .tensorVanished(let name):
            return "tensor '\(name)' is listed by the input but cannot be read"
        case .sourceHash(let message):
            return "cannot hash the source: \(message)"
        }
    }
}

/// Converts any ``WeightStore`` (a PyTorch checkpoint, or a native file to re-quantize) into a
/// native file, one tensor at a time, so memory stays small whatever the model's size.
public enum NativeConverter {
    /// Elements converted per chunk: bounds the scratch memory (4 MiB of float32).
    static let chunkElements = 1 << 20

    /// Whether `--quantize int8` stores `name` as qint8 (spec §5): the encoder's Linear weights,
    /// `post_extract_proj` and the classifier `predictor`.
    public static func quantizes(_ name: String) -> Bool {
        if name == "post_extract_proj.weight" || name == "predictor.weight" { return true }
        guard name.hasPrefix("encoder.layers.") else { return false }
        for suffix in [".self_attn.q_proj.weight", ".self_attn.k_proj.weight", ".self_attn.v_proj.weight",
                       ".self_attn.out_proj.weight", ".fc1.weight", ".fc2.weight"] where name.hasSuffix(suffix) {
            return true
        }
        return false
    }

    private enum Operation {
        case copy(TensorView)                          // stored as is (dtype unchanged)
        case convertFloat(TensorView)                  // float → the float type of the options
        case quantize(TensorView)                      // float → qint8
        case copyQuantized(QuantizedMatrix)            // qint8 input kept as qint8
        case foldWeightNorm(g: TensorView, v: TensorView)
    }

    private struct Step {
        let entry: NativeTensorEntry
        let sourceDType: DType
        let bytesIn: Int
        let operation: Operation
    }

    public static func convert(_ source: any WeightStore, to destination: String, options: ConversionOptions,
                               progress: ((ConversionProgress) -> Void)? = nil) throws -> ConversionSummary {
        let started = DispatchTime.now().uptimeNanoseconds
        let digest = options.sourcePathToHash.map { BackgroundDigest(path: $0) }

        let steps = try plan(source, options: options)
        var metadata = [
            NativeMetadataItem(key: "source_format", value: source.formatName),
            NativeMetadataItem(key: "float_dtype", value: options.floatType.dtype.rawValue),
            NativeMetadataItem(key: "quantization", value: steps.contains { $0.entry.dtype == .qint8 } ? "int8-per-row" : "none"),
        ]
        metadata += options.metadata
        let header = NativeHeader(kind: source.kind, sourceName: options.sourceName, config: source.config,
                                  labels: source.labels, metadata: metadata, tensors: steps.map(\.entry))
        let writer = try NativeModelWriter(destination: destination, header: header, durable: options.durable)
        defer { writer.abandon() }

        let bytesTotal = steps.reduce(0) { $0 + $1.bytesIn }
        var bytesRead = 0
        var reports: [ConvertedTensor] = []
        for (position, step) in steps.enumerated() {
            var quantizationError: QuantizationError?
            switch step.operation {
            case .copy(let view):
                try copy(view, to: writer)
            case .convertFloat(let view):
                try convertFloats(view, to: options.floatType, writer: writer)
            case .quantize(let view):
                quantizationError = try quantize(view, writer: writer)
            case .copyQuantized(let matrix):
                try writer.append(UnsafeRawBufferPointer(matrix.values))
                try writer.finishRegion()
                try writer.append(UnsafeRawBufferPointer(matrix.scales))
                try writer.finishRegion()
                MappedFile.releasePages(in: UnsafeRawBufferPointer(matrix.values), ownedBy: matrix.owner)
            case .foldWeightNorm(let g, let v):
                try foldWeightNorm(g: g, v: v, to: options.floatType, writer: writer)
            }
            bytesRead += step.bytesIn
            let report = ConvertedTensor(name: step.entry.name, sourceDType: step.sourceDType, storedDType: step.entry.dtype,
                                         shape: step.entry.shape, bytesIn: step.bytesIn,
                                         bytesOut: writer.header.tensors[position].storedBytes, quantizationError: quantizationError)
            reports.append(report)
            progress?(ConversionProgress(tensor: report, index: position + 1, count: steps.count, bytesRead: bytesRead, bytesTotal: bytesTotal))
        }

        var sourceSHA256 = options.sourceSHA256
        if let digest {
            switch digest.wait() {
            case .success(let value): sourceSHA256 = value
            case .failure(let error): throw ConversionError.sourceHash(error.description)
            }
        }
        try writer.commit { header in
            if let sourceSHA256 { header.sourceSHA256 = sourceSHA256 }
        }
        let bytesOut = writer.fileSize
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        return ConversionSummary(tensors: reports, bytesIn: bytesTotal, bytesOut: bytesOut, sourceSHA256: sourceSHA256, seconds: seconds)
    }

    // MARK: Planning

    private static func plan(_ source: any WeightStore, options: ConversionOptions) throws -> [Step] {
        let names = source.tensorNames
        let present = Set(names)
        // The positional convolution's weight norm (either spelling) is folded into one tensor,
        // stored where its gain stood.
        let weightNorm = PositionalConvWeightNorm.parts(in: present.contains)
        if let parts = weightNorm {
            for (have, need) in [(parts.gain, parts.direction), (parts.direction, parts.gain)]
            where present.contains(have) && !present.contains(need) {
                throw ConversionError.missingWeightNormPart(present: have, missing: need)
            }
        }
        var steps: [Step] = []
        for name in names where name != weightNorm?.direction {
            if let parts = weightNorm, name == parts.gain {
                guard let g = try source.tensor(named: parts.gain) else { throw ConversionError.tensorVanished(parts.gain) }
                guard let v = try source.tensor(named: parts.direction) else { throw ConversionError.tensorVanished(parts.direction) }
                guard v.shape.count == 3, g.shape == [1, 1, v.shape[2]] else {
                    throw ConversionError.weightNormShapes(parts: parts, g: g.shape, v: v.shape)
                }
                for tensor in [g, v] where !tensor.dtype.isFloatingPoint {
                    throw ConversionError.notFloatingPoint(tensor: tensor.name, dtype: tensor.dtype)
                }
                steps.append(Step(entry: plannedEntry(PositionalConvWeightNorm.weightName, options.floatType.dtype, v.shape), sourceDType: v.dtype,
                                  bytesIn: g.byteCount + v.byteCount, operation: .foldWeightNorm(g: g, v: v)))
                continue
            }
            if let matrix = try source.quantizedMatrix(named: name) {
                guard options.quantizeInt8 else { throw ConversionError.refusesDequantization(tensor: name) }
                let bytes = matrix.values.count + matrix.scales.count * 4
                steps.append(Step(entry: plannedEntry(name, .qint8, [matrix.rows, matrix.columns]), sourceDType: .qint8,
                                  bytesIn: bytes, operation: .copyQuantized(matrix)))
                continue
            }
            guard let view = try source.tensor(named: name) else { throw ConversionError.tensorVanished(name) }
            let step: Step
            if view.dtype.isFloatingPoint && options.quantizeInt8 && quantizes(name) && view.shape.count == 2 {
                step = Step(entry: plannedEntry(name, .qint8, view.shape), sourceDType: view.dtype, bytesIn: view.byteCount,
                            operation: .quantize(view))
            } else if view.dtype.isFloatingPoint && view.dtype != options.floatType.dtype {
                step = Step(entry: plannedEntry(name, options.floatType.dtype, view.shape), sourceDType: view.dtype,
                            bytesIn: view.byteCount, operation: .convertFloat(view))
            } else {
                step = Step(entry: plannedEntry(name, view.dtype, view.shape), sourceDType: view.dtype, bytesIn: view.byteCount,
                            operation: .copy(view))
            }
            steps.append(step)
        }
        return steps
    }

    private static func plannedEntry(_ name: String, _ dtype: DType, _ shape: [Int]) -> NativeTensorEntry {
        NativeTensorEntry(name: name, dtype: dtype, shape: shape, data: NativeRegion(offset: 0, length: 0, checksum: 0))
    }

    // MARK: Writing tensors

    /// Same dtype: the source bytes go straight to the file (packed first if the view is strided),
    /// copied file to file when they are a piece of a mapped file, without touching the map.
    private static func copy(_ view: TensorView, to writer: NativeModelWriter) throws {
        if let bytes = view.contiguousBytes {
            if let mapped = view.storage.owner as? MappedFile, let fileOffset = mapped.fileOffset(of: bytes) {
                try writer.append(copyingFrom: mapped.descriptor, sourcePath: mapped.path, at: fileOffset, count: bytes.count)
            } else {
                try writer.append(bytes)
            }
        } else {
            let packed = view.packedLittleEndianBytes()
            try packed.withUnsafeBytes { try writer.append($0) }
        }
        try writer.finishRegion()
    }

    /// Floating-point values re-encoded as float32 or float16 (correctly rounded), chunk by chunk.
    private static func convertFloats(_ view: TensorView, to floatType: ConversionOptions.FloatType, writer: NativeModelWriter) throws {
        try forEachChunk(of: view) { (chunk: UnsafeBufferPointer<Double>) throws in
            try appendEncoded(chunk, as: floatType, to: writer)
        }
        try writer.finishRegion()
    }

    /// Calls `body` with the tensor's values in row-major order, `chunkElements` at a time, as
    /// Double (exact for every float dtype, so a single rounding happens when re-encoding).
    private static func forEachChunk(of view: TensorView, _ body: (UnsafeBufferPointer<Double>) throws -> Void) throws {
        let count = view.elementCount
        guard count > 0 else { return }
        if let bytes = view.contiguousBytes {
            var chunk = [Double](repeating: 0, count: min(chunkElements, count))
            var start = 0
            while start < count {
                let length = min(chunkElements, count - start)
                chunk.withUnsafeMutableBufferPointer { output in
                    decode(bytes, dtype: view.dtype, from: start, count: length, into: output)
                }
                try chunk.withUnsafeBufferPointer { try body(UnsafeBufferPointer(rebasing: $0[0..<length])) }
                MappedFile.releasePages(in: UnsafeRawBufferPointer(rebasing: bytes[(start * view.dtype.byteWidth)..<((start + length) * view.dtype.byteWidth)]),
                                        ownedBy: view.storage.owner)
                start += length
            }
        } else {
            // Strided views only come from hand-made checkpoints; official weights are contiguous.
            let values = try view.doubles()
            try values.withUnsafeBufferPointer { try body($0) }
        }
    }

    private static func decode(_ bytes: UnsafeRawBufferPointer, dtype: DType, from start: Int, count: Int,
                               into output: UnsafeMutableBufferPointer<Double>) {
        let width = dtype.byteWidth
        let base = start * width
        for index in 0..<count {
            let offset = base + index * width
            switch dtype {
            case .float32: output[index] = Double(Float(bitPattern: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self).littleEndian))
            case .float16: output[index] = Double(FloatBits.halfToFloat(bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self).littleEndian))
            case .bfloat16: output[index] = Double(FloatBits.bfloat16ToFloat(bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self).littleEndian))
            case .float64: output[index] = Double(bitPattern: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self).littleEndian)
            default: output[index] = 0  // planning only sends floating-point tensors here
            }
        }
    }

    private static func appendEncoded(_ values: UnsafeBufferPointer<Double>, as floatType: ConversionOptions.FloatType,
                                      to writer: NativeModelWriter) throws {
        switch floatType {
        case .float32:
            var encoded = [UInt32](repeating: 0, count: values.count)
            for index in values.indices { encoded[index] = Float(values[index]).bitPattern.littleEndian }
            try encoded.withUnsafeBytes { try writer.append($0) }
        case .float16:
            var encoded = [UInt16](repeating: 0, count: values.count)
            // Float16(Double) rounds once, to nearest even: correctly rounded from the source value.
            for index in values.indices { encoded[index] = Float16(values[index]).bitPattern.littleEndian }
            try encoded.withUnsafeBytes { try writer.append($0) }
        }
    }

    /// Per-row int8 (spec §5): values region, then scales region.
    private static func quantize(_ view: TensorView, writer: NativeModelWriter) throws -> QuantizationError {
        let rows = view.shape[0], columns = view.shape[1]
        var quantizer = Int8RowQuantizer()
        var scales = [Float](repeating: 0, count: rows)
        let rowsPerBatch = max(1, chunkElements / max(columns, 1))
        var rowValues = [Float](repeating: 0, count: columns)
        var batch = [Int8](repeating: 0, count: min(rowsPerBatch, max(rows, 1)) * columns)
        let direct = view.dtype == .float32 ? view.contiguousBytes : nil
        let strided = direct == nil ? try view.floats() : []
        var row = 0
        while row < rows {
            let batchRows = min(rowsPerBatch, rows - row)
            for offset in 0..<batchRows {
                let index = row + offset
                do {
                    try batch.withUnsafeMutableBufferPointer { output throws(Int8RowQuantizer.Failure) in
                        let target = UnsafeMutableBufferPointer(rebasing: output[(offset * columns)..<((offset + 1) * columns)])
                        if let direct {
                            let rowBytes = UnsafeRawBufferPointer(rebasing: direct[(index * columns * 4)..<((index + 1) * columns * 4)])
                            if let base = rowBytes.baseAddress, Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 {
                                scales[index] = try quantizer.quantize(rowBytes.assumingMemoryBound(to: Float.self), into: target, row: index)
                                return
                            }
                            for column in 0..<columns {
                                rowValues[column] = Float(bitPattern: rowBytes.loadUnaligned(fromByteOffset: column * 4, as: UInt32.self).littleEndian)
                            }
                        } else {
                            for column in 0..<columns { rowValues[column] = strided[index * columns + column] }
                        }
                        scales[index] = try rowValues.withUnsafeBufferPointer { values throws(Int8RowQuantizer.Failure) in
                            try quantizer.quantize(values, into: target, row: index)
                        }
                    }
                } catch {
                    switch error {
                    case .nonFinite(let badRow, let column): throw ConversionError.nonFinite(tensor: view.name, row: badRow, column: column)
                    }
                }
            }
            try batch.withUnsafeBytes { try writer.append(UnsafeRawBufferPointer(rebasing: $0[0..<(batchRows * columns)])) }
            if let direct {
                MappedFile.releasePages(in: UnsafeRawBufferPointer(rebasing: direct[(row * columns * 4)..<((row + batchRows) * columns * 4)]),
                                        ownedBy: view.storage.owner)
            }
            row += batchRows
        }
        try writer.finishRegion()
        try scales.withUnsafeBytes { try writer.append($0) }
        try writer.finishRegion()
        return quantizer.error
    }

    /// The folded weight (``PositionalConvWeightNorm``, the runtime's fold to the bit), written a
    /// chunk of whole kernel rows at a time. Holds v as float32 (19 MB for the full model); each
    /// float64 product is rounded once to the output type.
    private static func foldWeightNorm(g: TensorView, v: TensorView, to floatType: ConversionOptions.FloatType,
                                       writer: NativeModelWriter) throws {
        let kernel = v.shape[2]
        let gains = try g.doubles()
        let values = try v.floats()
        MappedFile.releasePages(in: v.contiguousBytes ?? UnsafeRawBufferPointer(start: nil, count: 0), ownedBy: v.storage.owner)
        let factors = values.withUnsafeBufferPointer { PositionalConvWeightNorm.tapFactors(gains: gains, direction: $0) }
        let rows = kernel == 0 ? 0 : values.count / kernel
        let rowsPerChunk = max(1, chunkElements / max(kernel, 1))
        var chunk = [Double](repeating: 0, count: min(rowsPerChunk, rows) * kernel)
        var row = 0
        while row < rows {
            let elements = min(rowsPerChunk, rows - row) * kernel
            values.withUnsafeBufferPointer { values in
                chunk.withUnsafeMutableBufferPointer { output in
                    PositionalConvWeightNorm.fold(rows: UnsafeBufferPointer(rebasing: values[(row * kernel)..<(row * kernel + elements)]),
                                                  factors: factors, into: output)
                }
            }
            try chunk.withUnsafeBufferPointer { try appendEncoded(UnsafeBufferPointer(rebasing: $0[0..<elements]), as: floatType, to: writer) }
            row += elements / kernel
        }
        try writer.finishRegion()
    }
}

/// Computes a file's SHA-256 on its own thread while the conversion runs on the caller's.
final class BackgroundDigest: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    // Written once by the worker before `done` is signalled, read only after `wait()`.
    private var result: Result<[UInt8], FileHashError> = .success([])

    init(path: String) {
        DispatchQueue.global(qos: .userInitiated).async { [self] in
            result = Result { () throws(FileHashError) in try SHA256.digest(ofFileAt: path) }
            done.signal()
        }
    }

    func wait() -> Result<[UInt8], FileHashError> {
        done.wait()
        return result
    }
}
