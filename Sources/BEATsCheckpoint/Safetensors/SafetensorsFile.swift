import BEATsCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The safetensors format's fixed facts, shared by the reader and the writer (`beats export`).
///
/// A file is: a little-endian `u64` N, N bytes of UTF-8 JSON (the header, padded with spaces),
/// then the data buffer. The header maps each tensor name to `{"dtype", "shape", "data_offsets":
/// [begin, end]}` (offsets relative to the data buffer) plus an optional `"__metadata__"` of
/// string → string. Tensors are row-major, little-endian, and tile the buffer with no holes.
public enum SafetensorsFormat {
    public static let formatName = "safetensors"
    /// The metadata key `beats export` stores its config.json under, so that the one file
    /// carries its config when nothing else is beside it.
    public static let configMetadataKey = "beats_config"
    /// Writers pad the header so the data buffer starts on a multiple of 8 (the spec's advice,
    /// what the reference implementation does).
    public static let headerAlignment = 8

    /// The header's dtype name for each dtype BEATs tensors use; torch's names on the right.
    public static let dtypeNames: [(name: String, dtype: DType)] = [
        ("F64", .float64), ("F32", .float32), ("F16", .float16), ("BF16", .bfloat16),
        ("I64", .int64), ("I32", .int32), ("I16", .int16), ("I8", .int8), ("U8", .uint8), ("BOOL", .bool),
    ]
    /// Dtypes the format defines that BEATs weights never use: named as such when refused.
    public static let otherKnownDTypes: Set<String> = ["U16", "U32", "U64", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64"]

    public static func dtype(named name: String) -> DType? { dtypeNames.first { $0.name == name }?.dtype }
    public static func name(of dtype: DType) -> String? { dtypeNames.first { $0.dtype == dtype }?.name }
}

/// A safetensors file as BEATs weights: tensors used in place from the map (no copy; a tensor
/// whose offset is not aligned for its type is copied by the runtime when it loads it), the
/// config from `config.json` beside the file or, failing that, from the header's
/// `__metadata__["beats_config"]` (what `beats export` writes in both places).
///
/// Opening reads the 8-byte length, the header and the config, and checks every entry against
/// the format before any tensor is handed out: dtype known, shape non-negative without overflow,
/// `data_offsets` of exactly elements × width bytes, regions tiling the data buffer with no
/// overlap, hole or byte past its end. No tensor byte is read.
public final class SafetensorsFile: WeightStore {
    public struct Limits: Sendable, Equatable {
        /// Header bytes (16 MiB, as the native format's header; a full BEATs header is ~30 KB).
        public var maximumHeaderBytes = 16 << 20
        /// Tensors in the header (the native format's limit).
        public var maximumTensors = 65_536
        /// Rank of one tensor (as the pickle machine's).
        public var maximumRank = 64
        /// Bytes of a `config.json` beside the file.
        public var maximumConfigBytes = 16 << 20
        public var json = JSONReader.Limits()
        public init() {}
    }

    public let path: String
    public var formatName: String { SafetensorsFormat.formatName }
    public let kind: ModelKind
    public let config: BEATsConfig
    public let hasBEATsConfig: Bool
    public let labels: [AudioSetLabel]
    /// Tensor names in data-buffer order.
    public let tensorNames: [String]
    /// The header's `__metadata__` (string → string), in file order.
    public let metadata: [(key: String, value: String)]
    /// Where the config came from: the `config.json` path, `__metadata__`, or nil without one.
    public let configSource: String?

    private struct Entry {
        let dtype: DType
        let shape: [Int]
        let range: Range<Int>
    }
    private let entries: [String: Entry]
    private let file: MappedFile

    /// True when `prefix` (the file's first 9 bytes or more) looks like safetensors: a header
    /// length whose top three bytes are zero (no header reaches 2^40 bytes) and `{` at offset 8.
    /// The other formats' magics cannot match: a zip starts `PK`, a pickle `\x80`, a native file
    /// `\x89BEATSW`, none with `{` at offset 8 and zeros at 5–7.
    public static func recognizes(_ prefix: UnsafeRawBufferPointer) -> Bool {
        prefix.count >= 9 && prefix[5] == 0 && prefix[6] == 0 && prefix[7] == 0 && prefix[8] == UInt8(ascii: "{")
    }

    public static func open(path: String, limits: Limits = Limits()) throws -> SafetensorsFile {
        try open(file: MappedFile(path: path), limits: limits)
    }

    /// Opens an already mapped file; `configPath` overrides where the config is looked for
    /// (default: `config.json` in the file's directory, as given, so a Hugging Face cache's
    /// symlinked snapshot finds the config beside the link).
    public static func open(file: MappedFile, configPath: String? = nil, limits: Limits = Limits()) throws -> SafetensorsFile {
        let path = file.path
        let bytes = file.bytes
        guard let declared = bytes.loadInteger(UInt64.self, at: 0) else { throw SafetensorsError.tooShort(path: path, fileSize: bytes.count) }
        guard declared > 0, declared <= UInt64(limits.maximumHeaderBytes), declared <= UInt64(bytes.count - 8) else {
            throw SafetensorsError.headerLength(path: path, declared: declared, fileSize: bytes.count, limit: limits.maximumHeaderBytes)
        }
        let headerLength = Int(declared)
        let header: JSONValue
        do {
            header = try JSONReader.parse(UnsafeRawBufferPointer(rebasing: bytes[8..<8 + headerLength]), base: 8, limits: limits.json)
        } catch {
            throw SafetensorsError.invalidHeader(path: path, error)
        }
        guard case .object(let members) = header else {
            throw SafetensorsError.schema(path: path, entry: "(top level)", reason: "expected an object, found \(header.typeName)")
        }
        let dataStart = 8 + headerLength
        let dataLength = bytes.count - dataStart

        var metadata: [(key: String, value: String)] = []
        var parsed: [(name: String, entry: Entry)] = []
        for member in members {
            if member.key == "__metadata__" {
                metadata = try metadataPairs(member.value, path: path)
                continue
            }
            guard parsed.count < limits.maximumTensors else {
                throw SafetensorsError.tooManyTensors(path: path, count: members.count, limit: limits.maximumTensors)
            }
            parsed.append((member.key, try tensorEntry(member.key, member.value, path: path, dataStart: dataStart,
                                                       dataLength: dataLength, limits: limits)))
        }
        // The regions must tile the buffer: sorted by start, each begins where the one before ends.
        let ordered = parsed.sorted { ($0.entry.range.lowerBound, $0.entry.range.upperBound) < ($1.entry.range.lowerBound, $1.entry.range.upperBound) }
        var cursor = dataStart
        var previous: String?
        for (name, entry) in ordered {
            let begin = entry.range.lowerBound
            if begin < cursor, let previous { throw SafetensorsError.overlap(path: path, tensor: name, other: previous) }
            if begin > cursor { throw SafetensorsError.gap(path: path, from: cursor - dataStart, to: begin - dataStart) }
            guard entry.range.upperBound <= bytes.count else {
                throw SafetensorsError.beyondData(path: path, tensor: name, end: entry.range.upperBound - dataStart, dataLength: dataLength)
            }
            cursor = entry.range.upperBound
            previous = name
        }
        if cursor < bytes.count { throw SafetensorsError.gap(path: path, from: cursor - dataStart, to: dataLength) }

        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let config = try SafetensorsConfig.find(beside: configPath ?? (directory.isEmpty ? "" : directory) + "/config.json",
                                                metadata: metadata, limits: limits)
        return SafetensorsFile(path: path, file: file, ordered: ordered, metadata: metadata, config: config)
    }

    private init(path: String, file: MappedFile, ordered: [(name: String, entry: Entry)],
                 metadata: [(key: String, value: String)], config: SafetensorsConfig?) {
        self.path = path
        self.file = file
        self.metadata = metadata
        tensorNames = ordered.map(\.name)
        entries = Dictionary(ordered.map { ($0.name, $0.entry) }, uniquingKeysWith: { first, _ in first })
        hasBEATsConfig = config != nil
        configSource = config?.source
        let beatsConfig = config?.config ?? BEATsConfig()
        self.config = beatsConfig
        kind = config?.kind ?? ModelKind.infer(configKeys: config?.keys ?? [], tensorNames: tensorNames, config: beatsConfig)
        if kind == .finetuned {
            labels = config?.labels ?? AudioSetOntology.defaultLabels(for: beatsConfig)
        } else {
            labels = []
        }
    }

    private static func metadataPairs(_ value: JSONValue, path: String) throws(SafetensorsError) -> [(key: String, value: String)] {
        guard case .object(let members) = value else {
            throw .schema(path: path, entry: "__metadata__", reason: "expected an object of strings, found \(value.typeName)")
        }
        var pairs: [(key: String, value: String)] = []
        for member in members {
            guard case .string(let text) = member.value else {
                throw .schema(path: path, entry: "__metadata__", reason: "'\(member.key)' is \(member.value.typeName), not a string")
            }
            pairs.append((member.key, text))
        }
        return pairs
    }

    private static func tensorEntry(_ name: String, _ value: JSONValue, path: String, dataStart: Int, dataLength: Int,
                                    limits: Limits) throws(SafetensorsError) -> Entry {
        guard !name.isEmpty else { throw .schema(path: path, entry: name, reason: "empty tensor name") }
        guard case .object(let members) = value else {
            throw .schema(path: path, entry: name, reason: "expected an object {dtype, shape, data_offsets}, found \(value.typeName)")
        }
        for member in members where !["dtype", "shape", "data_offsets"].contains(member.key) {
            throw .schema(path: path, entry: name, reason: "unknown field '\(member.key)'")
        }
        guard case .string(let dtypeName)? = value["dtype"] else { throw .schema(path: path, entry: name, reason: "'dtype' must be a string") }
        guard let dtype = SafetensorsFormat.dtype(named: dtypeName) else {
            throw .unsupportedDType(path: path, tensor: name, dtype: dtypeName, known: SafetensorsFormat.otherKnownDTypes.contains(dtypeName))
        }
        guard case .array(let dimensions)? = value["shape"] else { throw .schema(path: path, entry: name, reason: "'shape' must be an array") }
        guard dimensions.count <= limits.maximumRank else {
            throw .schema(path: path, entry: name, reason: "rank \(dimensions.count) exceeds \(limits.maximumRank)")
        }
        var shape: [Int] = []
        for dimension in dimensions {
            guard case .integer(let size) = dimension, size >= 0 else {
                throw .schema(path: path, entry: name, reason: "'shape' must hold non-negative integers")
            }
            shape.append(size)
        }
        guard case .array(let offsets)? = value["data_offsets"], offsets.count == 2,
              case .integer(let begin) = offsets[0], case .integer(let end) = offsets[1], begin >= 0, end >= 0 else {
            throw .schema(path: path, entry: name, reason: "'data_offsets' must be two non-negative integers")
        }
        let expected = checkedProduct(shape + [dtype.byteWidth])
        guard end >= begin, let expected, end - begin == expected else {
            throw .badOffsets(path: path, tensor: name, begin: begin, end: end, expectedLength: expected)
        }
        let (absoluteBegin, overflowBegin) = dataStart.addingReportingOverflow(begin)
        let (absoluteEnd, overflowEnd) = dataStart.addingReportingOverflow(end)
        guard !overflowBegin, !overflowEnd else { throw .beyondData(path: path, tensor: name, end: end, dataLength: dataLength) }
        return Entry(dtype: dtype, shape: shape, range: absoluteBegin..<absoluteEnd)
    }

    // MARK: WeightStore

    public func tensor(named name: String) throws -> TensorView? {
        guard let entry = entries[name] else { return nil }
        return try TensorView(name: name, dtype: entry.dtype, shape: entry.shape, storage: file.storage(entry.range))
    }

    /// safetensors carries no checksums: every region was checked against the data buffer at
    /// open, so this builds every tensor's view (which checks it again) and reads no byte.
    public func verifyChecksums() throws {
        for name in tensorNames { _ = try tensor(named: name) }
    }
}

/// The BEATs config of a safetensors file, as `beats export` writes it into `config.json` (and
/// into `__metadata__["beats_config"]`): `{"cfg": {…official keys…}, "label_dict": {"0":
/// "/m/09x0r", …}, …}`. A flat `config.json` whose top level holds the official keys is read too.
struct SafetensorsConfig {
    var config: BEATsConfig
    var keys: Set<String>
    var labels: [AudioSetLabel]?
    var source: String
    /// `"kind"` when the config names it (`beats export` does: its cfg lists every key, the
    /// tokenizer's too, so the kind cannot be inferred from the keys).
    var kind: ModelKind?

    /// The config from `configPath` if it holds one, else from the metadata; nil when neither does.
    static func find(beside configPath: String, metadata: [(key: String, value: String)],
                     limits: SafetensorsFile.Limits) throws -> SafetensorsConfig? {
        if let text = try readConfigFile(configPath, limit: limits.maximumConfigBytes) {
            let json: JSONValue
            do {
                json = try JSONReader.parse(text, limits: limits.json)
            } catch {
                throw SafetensorsError.config(source: configPath, reason: error.description)
            }
            if let found = try parse(json, source: configPath) { return found }
        }
        if let text = metadata.first(where: { $0.key == SafetensorsFormat.configMetadataKey })?.value {
            let source = "__metadata__[\(SafetensorsFormat.configMetadataKey)]"
            let json: JSONValue
            do {
                json = try JSONReader.parse(text, limits: limits.json)
            } catch {
                throw SafetensorsError.config(source: source, reason: error.description)
            }
            return try parse(json, source: source)
        }
        return nil
    }

    /// The file's bytes, nil when it does not exist; refused when larger than `limit`.
    private static func readConfigFile(_ path: String, limit: Int) throws -> [UInt8]? {
        var status = stat()
        guard stat(path, &status) == 0 else {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw SafetensorsError.config(source: path, reason: String(cString: strerror(errno)))
        }
        guard status.st_mode & S_IFMT == S_IFREG else { throw SafetensorsError.config(source: path, reason: "not a regular file") }
        guard Int(status.st_size) <= limit else {
            throw SafetensorsError.config(source: path, reason: "\(status.st_size) bytes, more than the limit of \(limit)")
        }
        let file = try MappedFile(path: path)
        guard file.count <= limit else { throw SafetensorsError.config(source: path, reason: "more than \(limit) bytes") }
        return Array(file.bytes)
    }

    /// The config in `json`; nil when it holds no official BEATs key (another model's config).
    static func parse(_ json: JSONValue, source: String) throws -> SafetensorsConfig? {
        guard case .object(let top) = json else { throw SafetensorsError.config(source: source, reason: "expected a JSON object, found \(json.typeName)") }
        let known = Set(BEATsConfig().values.map(\.key))
        let cfgMembers: [JSONMember]
        if let cfg = json["cfg"] {
            guard case .object(let members) = cfg else { throw SafetensorsError.config(source: source, reason: "'cfg' is \(cfg.typeName), not an object") }
            cfgMembers = members
        } else {
            cfgMembers = top.filter { known.contains($0.key) }
            guard !cfgMembers.isEmpty else { return nil }
        }
        var values: [String: ConfigScalar] = [:]
        for member in cfgMembers {
            switch member.value {
            case .integer(let number): values[member.key] = .int(number)
            case .number(let number): values[member.key] = .double(number)
            case .bool(let flag): values[member.key] = .bool(flag)
            case .string(let text): values[member.key] = .string(text)
            case .null: continue
            default:
                guard !known.contains(member.key) else {
                    throw SafetensorsError.config(source: source, reason: "cfg '\(member.key)' is \(member.value.typeName), not a number, bool or string")
                }
            }
        }
        let config: BEATsConfig
        do {
            config = try BEATsConfig(values: values)
        } catch {
            throw SafetensorsError.config(source: source, reason: error.description)
        }
        var kind: ModelKind?
        if let named = json["kind"] {
            guard case .string(let text) = named, let known = ModelKind(rawValue: text) else {
                throw SafetensorsError.config(source: source, reason: "'kind' must be one of \(ModelKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            kind = known
        }
        return SafetensorsConfig(config: config, keys: Set(values.keys), labels: try labels(json, source: source), source: source, kind: kind)
    }

    /// `label_dict` (index → MID, the official checkpoint's) or else `id2label` (index → display
    /// name); nil when neither is present.
    private static func labels(_ json: JSONValue, source: String) throws -> [AudioSetLabel]? {
        for (key, holdsMIDs) in [("label_dict", true), ("id2label", false)] {
            guard let table = json[key] else { continue }
            guard case .object(let members) = table else { throw SafetensorsError.config(source: source, reason: "'\(key)' is \(table.typeName), not an object") }
            var labels: [AudioSetLabel] = []
            var seen = Set<Int>()
            for member in members {
                guard let index = Int(member.key), index >= 0, seen.insert(index).inserted, case .string(let text) = member.value else {
                    throw SafetensorsError.config(source: source, reason: "'\(key)' entry '\(member.key)' is not a new non-negative index with a string")
                }
                if holdsMIDs {
                    labels.append(AudioSetLabel(index: index, mid: text, name: AudioSetOntology.name(forMID: text) ?? text))
                } else {
                    let mid = AudioSetOntology.labels.first { $0.name == text }?.mid ?? text
                    labels.append(AudioSetLabel(index: index, mid: mid, name: text))
                }
            }
            return labels.sorted { $0.index < $1.index }
        }
        return nil
    }
}
