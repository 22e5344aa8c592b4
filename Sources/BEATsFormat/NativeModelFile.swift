import BEATsCore

/// A native weight file, memory-mapped. Opening validates the header and the tensor layout
/// (bounds, overlaps, alignment) and reads nothing else; tensors are views into the map, so the
/// kernel reads a tensor's pages only when its values are used.
public final class NativeModelFile: WeightStore {
    public let path: String
    public let header: NativeHeader
    private let file: MappedFile
    private let index: [String: Int]

    private init(path: String, file: MappedFile, header: NativeHeader) {
        self.path = path
        self.file = file
        self.header = header
        var index: [String: Int] = [:]
        index.reserveCapacity(header.tensors.count)
        for (position, entry) in header.tensors.enumerated() { index[entry.name] = position }
        self.index = index
    }

    /// Maps `path` and validates it (§7 of the spec). Touches only the preamble and header pages.
    public static func open(path: String) throws -> NativeModelFile {
        try open(file: MappedFile(path: path))
    }

    /// Validates an already mapped file (the CLI maps once to read the magic, then picks a reader).
    public static func open(file: MappedFile) throws -> NativeModelFile {
        let header = try NativeHeader.decode(file: file.bytes)
        return NativeModelFile(path: file.path, file: file, header: header)
    }

    /// Whether `prefix` (the first bytes of a file, at least 8 of them) starts with the magic.
    public static func recognizes(_ prefix: UnsafeRawBufferPointer) -> Bool {
        prefix.count >= NativeFormat.magic.count && zip(prefix, NativeFormat.magic).allSatisfy { $0 == $1 }
    }

    // MARK: WeightStore

    public var formatName: String { NativeFormat.name }
    public var kind: ModelKind { header.kind }
    public var config: BEATsConfig { header.config }
    public var labels: [AudioSetLabel] { header.labels }
    public var tensorNames: [String] { header.tensors.map(\.name) }
    /// File size in bytes.
    public var byteCount: Int { file.count }

    public func entry(named name: String) -> NativeTensorEntry? {
        index[name].map { header.tensors[$0] }
    }

    /// The tensor as stored, in place; a `qint8` tensor comes back dequantized to float32 (a new
    /// buffer, computed now) so that any consumer of float weights works unchanged. Callers that
    /// can use int8 ask ``quantizedMatrix(named:)`` first.
    public func tensor(named name: String) throws -> TensorView? {
        guard let entry = entry(named: name) else { return nil }
        if entry.dtype == .qint8, let matrix = try quantizedMatrix(named: name) {
            return try Self.dequantize(matrix)
        }
        return try TensorView(name: entry.name, dtype: entry.dtype, shape: entry.shape,
                              storage: file.storage(entry.data.offset..<entry.data.end))
    }

    public func quantizedMatrix(named name: String) throws -> QuantizedMatrix? {
        guard let entry = entry(named: name), entry.dtype == .qint8, let scales = entry.scales else { return nil }
        // Offsets were validated at open: in bounds, 64-byte aligned in a page-aligned map.
        let values = UnsafeRawBufferPointer(rebasing: file.bytes[entry.data.offset..<entry.data.end])
        let scaleBytes = UnsafeRawBufferPointer(rebasing: file.bytes[scales.offset..<scales.end])
        return QuantizedMatrix(
            name: name, rows: entry.shape[0], columns: entry.shape[1],
            values: values.bindMemory(to: Int8.self), scales: scaleBytes.bindMemory(to: Float.self), owner: file)
    }

    /// `value × scale[row]` in float32, as §5 of the spec defines it.
    public static func dequantize(_ matrix: QuantizedMatrix) throws -> TensorView {
        let buffer = OwnedBytes(count: matrix.rows * matrix.columns * 4)
        let output = buffer.buffer.bindMemory(to: Float.self)
        for row in 0..<matrix.rows {
            let scale = matrix.scales[row]
            let start = row * matrix.columns
            for column in 0..<matrix.columns {
                output[start + column] = Float(matrix.values[start + column]) * scale
            }
        }
        return try TensorView(name: matrix.name, dtype: .float32, shape: [matrix.rows, matrix.columns], storage: buffer.storage)
    }

    // MARK: Checksums

    /// Reads every region and compares its XXH64 with the table; the failures, in file order.
    /// `progress` gets (bytes checked, bytes in all regions) after each region.
    public func checksumFailures(progress: ((Int, Int) -> Void)? = nil) -> [NativeFormatError] {
        let total = header.tensors.reduce(0) { $0 + $1.storedBytes }
        var done = 0
        var failures: [NativeFormatError] = []
        for entry in header.tensors {
            for (kind, region) in [(TensorRegionKind.data, entry.data), (.scales, entry.scales)] {
                guard let region else { continue }
                let computed = XXHash64.hash(UnsafeRawBufferPointer(rebasing: file.bytes[region.offset..<region.end]))
                if computed != region.checksum {
                    failures.append(.checksumMismatch(tensor: entry.name, region: kind, offset: region.offset,
                                                      stored: region.checksum, computed: computed))
                }
                done += region.length
                progress?(done, total)
            }
        }
        return failures
    }

    /// ``WeightStore/verifyChecksums()`` for a native file: every region's XXH64 against the
    /// table, throwing the first failure in file order (``checksumFailures(progress:)`` lists
    /// them all, for a report that names every damaged tensor).
    public func verifyChecksums() throws {
        if let failure = checksumFailures().first { throw failure }
    }
}
