import BEATsCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A PyTorch checkpoint read without Python: a zip archive (`torch.save`, torch ≥ 1.6) or the
/// legacy stream, seen as BEATs weights.
///
/// Opening maps the file and reads the zip central directory and `data.pkl` (or the legacy
/// stream's pickles and storage headers) — never tensor bytes. ``tensor(named:)`` returns a view
/// whose storage is the record in the map (stored entries) or an inflated copy (deflated
/// entries); its bytes are read only when its values are.
///
/// Checks made at open, from metadata only: every tensor's record exists and holds at least its
/// storage's `numel × element size` bytes (declared sizes for zip entries). Each tensor's view
/// (offset, shape, stride) is checked against its storage when ``tensor(named:)`` builds it.
/// CRC-32s of stored records are checked only by ``verifyChecksums()`` (see ``ZipArchive``).
public final class PyTorchCheckpoint: WeightStore {
    /// Caps on what the file may make the reader allocate.
    public struct Limits: Sendable, Equatable {
        public var zip = ZipLimits()
        public var pickle = PickleLimits()
        /// Largest `data.pkl` read, stored or deflated, checked against its declared size before
        /// a byte is inflated. The pickle is read whole, so without a cap of its own a 2 MB file
        /// whose `data.pkl` honestly inflates to 2 GiB (within the zip's 1032:1 and 8 GiB
        /// limits) made `inspect` allocate 2 GiB before the first opcode. An official full-size
        /// checkpoint's `data.pkl` is about 30 KB; 32 MiB holds a state dict of ~200 000 tensors.
        public var maximumPickleBytes = 32 << 20
        public init(zip: ZipLimits = ZipLimits(), pickle: PickleLimits = PickleLimits(), maximumPickleBytes: Int = 32 << 20) {
            self.zip = zip
            self.pickle = pickle
            self.maximumPickleBytes = maximumPickleBytes
        }
    }

    public static let zipFormatName = "pytorch-zip"
    public static let legacyFormatName = "pytorch-legacy"

    public let path: String
    /// ``zipFormatName`` or ``legacyFormatName``.
    public let formatName: String
    public let kind: ModelKind
    public let config: BEATsConfig
    /// True when the checkpoint has a `cfg` dict (official BEATs checkpoints do); `cfg: None` is none.
    public let hasBEATsConfig: Bool
    public let labels: [AudioSetLabel]
    public let tensorNames: [String]
    /// Byte order of the tensor records: a zip's `byteorder` entry (little when absent); always
    /// little for legacy files.
    public let byteOrder: ByteOrder
    /// The archive prefix (`tiny/`, `archive/`) of a zip checkpoint; empty for legacy files.
    public let archivePrefix: String

    private let records: [String: TorchTensorRecord]
    private let source: RecordSource
    /// Deflated records already inflated, shared by every view of them (see ``InflatedRecords``).
    private let inflated = InflatedRecords()

    private enum RecordSource: Sendable {
        /// Record `key` is the entry `<prefix>data/<key>`.
        case zip(ZipArchive, prefix: String)
        /// Record `key` is a range of the mapped file.
        case legacy(MappedFile, [String: Range<Int>])
    }

    // MARK: Opening

    /// True when `prefix` (the file's first bytes; 4 are enough) starts a zip archive (a local
    /// header `PK\x03\x04`, or `PK\x05\x06` for an empty archive) or a pickle (`\x80` and a protocol
    /// from 2 to 5), which is how legacy checkpoints start.
    public static func recognizes(_ prefix: UnsafeRawBufferPointer) -> Bool {
        guard prefix.count >= 2 else { return false }
        if prefix.count >= 4, prefix[0] == 0x50, prefix[1] == 0x4B,
           (prefix[2] == 0x03 && prefix[3] == 0x04) || (prefix[2] == 0x05 && prefix[3] == 0x06) {
            return true
        }
        return prefix[0] == 0x80 && (2...5).contains(prefix[1])
    }

    public static func open(path: String, limits: Limits = Limits()) throws -> PyTorchCheckpoint {
        try open(file: MappedFile(path: path), limits: limits)
    }

    /// Opens an already mapped file (`ModelFile` maps once to look at the magic bytes).
    public static func open(file: MappedFile, limits: Limits = Limits()) throws -> PyTorchCheckpoint {
        // Opening touches a few scattered pages (end records, central directory, data.pkl, the
        // legacy storage headers). With the kernel's default read-around each cold fault would
        // pull in megabytes of tensor data; random-access advice keeps a cold `inspect` to the
        // pages it needs. Normal read-ahead is restored for the tensor reads that follow.
        file.advise(.random)
        defer { file.advise(.normal) }
        let head = UnsafeRawBufferPointer(rebasing: file.bytes.prefix(4))
        guard recognizes(head) else { throw CheckpointError.notACheckpoint(path: file.path, firstBytes: Array(head)) }
        if head[0] == 0x80 {
            let stream = try LegacyStream(file.bytes, limits: limits.pickle)
            return try PyTorchCheckpoint(path: file.path, formatName: legacyFormatName, object: stream.main,
                                         byteOrder: .little, archivePrefix: "",
                                         source: .legacy(file, stream.records))
        }
        let archive = try ZipArchive(file: file, limits: limits.zip)
        let pickleEntry = try dataPickle(in: archive)
        let prefix = String(pickleEntry.name.dropLast("data.pkl".count))
        var byteOrder = ByteOrder.little
        if let orderEntry = archive.entry(named: prefix + "byteorder") {
            // An inflated entry lives only as long as its storage: keep it alive while decoding.
            let order = try archive.contents(of: orderEntry, verify: true)
            let text = withExtendedLifetime(order) { String(decoding: order.bytes, as: UTF8.self) }
            switch text {
            case "little": byteOrder = .little
            case "big": byteOrder = .big
            default: throw CheckpointError.invalidByteOrder(entry: orderEntry.name, value: String(text.prefix(40)))
            }
        }
        guard pickleEntry.uncompressedSize <= limits.maximumPickleBytes else {
            throw CheckpointError.pickleTooLarge(entry: pickleEntry.name, declared: pickleEntry.uncompressedSize, limit: limits.maximumPickleBytes)
        }
        let pickleBytes = try archive.contents(of: pickleEntry, verify: true)
        // Stored: the pickle's file offset makes error offsets point into the file. Deflated: offsets are within the entry.
        let pickleOffset = pickleEntry.method == .stored ? try archive.dataRange(of: pickleEntry).lowerBound : 0
        let object = try withExtendedLifetime(pickleBytes) {
            try PickleMachine.load(pickleBytes.bytes, fileOffset: pickleOffset, context: pickleEntry.name, limits: limits.pickle)
        }
        return try PyTorchCheckpoint(path: file.path, formatName: zipFormatName, object: object, byteOrder: byteOrder,
                                     archivePrefix: prefix, source: .zip(archive, prefix: prefix))
    }

    /// The one `data.pkl` at the top level or under a single folder (`<prefix>/data.pkl`).
    private static func dataPickle(in archive: ZipArchive) throws -> ZipEntry {
        let candidates = archive.entries.filter { entry in
            guard entry.name.hasSuffix("data.pkl") else { return false }
            let folder = entry.name.dropLast("data.pkl".count)
            return folder.isEmpty || (folder.hasSuffix("/") && folder.dropLast().allSatisfy { $0 != "/" })
        }
        guard let first = candidates.first else { throw CheckpointError.missingDataPickle(entryCount: archive.entries.count) }
        guard candidates.count == 1 else { throw CheckpointError.ambiguousDataPickle(candidates.map(\.name)) }
        return first
    }

    private init(path: String, formatName: String, object: PickleObject, byteOrder: ByteOrder,
                 archivePrefix: String, source: RecordSource) throws {
        self.path = path
        self.formatName = formatName
        self.byteOrder = byteOrder
        self.archivePrefix = archivePrefix
        self.source = source

        // {'cfg': dict, 'model': state_dict, 'label_dict': {int: MID}} or a bare state dict.
        let root = object.root
        guard object.kind(of: root) == .dict else {
            throw CheckpointError.notAStateDict(found: object.typeName(of: root), offset: object.offset(of: root))
        }
        var stateDict = root
        if let model = object.value(forKey: "model", in: root) {
            guard object.kind(of: model) == .dict else {
                throw CheckpointError.notAStateDict(found: "'model' of type \(object.typeName(of: model))", offset: object.offset(of: model))
            }
            stateDict = model
        }
        let entries = try object.tensorEntries(in: stateDict)
        tensorNames = entries.map(\.name)
        var records: [String: TorchTensorRecord] = [:]
        records.reserveCapacity(entries.count)
        for entry in entries { records[entry.name] = entry.tensor }
        self.records = records

        hasBEATsConfig = object.value(forKey: "cfg", in: root).map { object.kind(of: $0) == .dict } ?? false
        let cfg = try PyTorchCheckpoint.configValues(object, root: root)
        config = try BEATsConfig(values: cfg)

        kind = ModelKind.infer(configKeys: Set(cfg.keys), tensorNames: tensorNames, config: config)

        if kind == .finetuned {
            if let labelDict = object.value(forKey: "label_dict", in: root) {
                labels = try PyTorchCheckpoint.labels(object, labelDict)
            } else {
                labels = AudioSetOntology.defaultLabels(for: config)
            }
        } else {
            labels = []
        }

        try validateRecords(entries)
    }

    /// The `cfg` dict's scalars. A known key holding something else (a list, a dict) is an error
    /// rather than silently taking the default; None counts as absent.
    private static func configValues(_ object: PickleObject, root: PickleNodeID) throws -> [String: ConfigScalar] {
        guard let cfg = object.value(forKey: "cfg", in: root) else { return [:] }
        let known = Set(BEATsConfig().values.map(\.key))
        if let entries = object.dictEntries(of: cfg) {
            for entry in entries {
                guard let key = object.string(of: entry.key), known.contains(key) else { continue }
                if object.scalar(of: entry.value) == nil, !object.isNone(entry.value) {
                    throw CheckpointError.configValue(key: key, found: object.typeName(of: entry.value), offset: object.offset(of: entry.value))
                }
            }
        }
        return try object.configScalars(in: cfg)
    }

    /// `label_dict` (index → MID) as labels sorted by index, display names from the ontology.
    private static func labels(_ object: PickleObject, _ labelDict: PickleNodeID) throws -> [AudioSetLabel] {
        let mids = try object.integerKeyedStrings(in: labelDict)
        if let negative = mids.keys.first(where: { $0 < 0 }) {
            throw CheckpointError.invalidLabel(index: negative, offset: object.offset(of: labelDict))
        }
        return mids.sorted { $0.key < $1.key }.map { index, mid in
            AudioSetLabel(index: index, mid: mid, name: AudioSetOntology.name(forMID: mid) ?? mid)
        }
    }

    /// Every tensor's record exists and is at least as long as its storage says (sizes from
    /// metadata; no record is read), and one record has one element type.
    private func validateRecords(_ entries: [PickleTensorEntry]) throws {
        var dtypeByKey: [String: DType] = [:]
        for entry in entries {
            let storage = entry.tensor.storage
            if let known = dtypeByKey.updateValue(storage.dtype, forKey: storage.key), known != storage.dtype {
                throw CheckpointError.conflictingStorageTypes(record: recordName(storage.key), first: known, second: storage.dtype)
            }
            guard let available = try recordSize(storage.key) else {
                throw CheckpointError.missingRecord(tensor: entry.name, record: recordName(storage.key))
            }
            let needed = checkedProduct([storage.elementCount, storage.dtype.byteWidth]) ?? Int.max
            guard needed <= available else {
                throw CheckpointError.recordTooShort(tensor: entry.name, record: recordName(storage.key), neededBytes: needed, recordBytes: available)
            }
            var storageElements = storage.elementCount
            if let view = storage.legacyView {
                let end = view.elementOffset.addingReportingOverflow(view.elementCount)
                let viewBytes = end.overflow ? nil : checkedProduct([end.partialValue, storage.dtype.byteWidth])
                guard let viewBytes, viewBytes <= available else {
                    throw CheckpointError.recordTooShort(tensor: entry.name, record: recordName(storage.key),
                                                         neededBytes: viewBytes ?? Int.max, recordBytes: available)
                }
                storageElements = view.elementCount
            }
            try PyTorchCheckpoint.checkGeometry(entry.name, entry.tensor, storageElements: storageElements)
            // Values are materialised (floats(), conversion), so a view may not have more elements
            // than its storage: memory stays proportional to the file, never to what it claims.
            let elementCount = checkedProduct(entry.tensor.shape) ?? Int.max
            guard elementCount <= storageElements else {
                throw CheckpointError.viewLargerThanStorage(tensor: entry.name, elementCount: elementCount, storageElements: storageElements)
            }
        }
    }

    /// The checks `TensorView` makes when it is built, on metadata alone, so that opening (and
    /// `inspect`) reports a bad shape or stride without touching the record: dimensions and
    /// strides non-negative, ranks equal, and every reachable element inside the storage.
    static func checkGeometry(_ name: String, _ record: TorchTensorRecord, storageElements: Int) throws(TensorError) {
        let shape = record.shape
        let strides = record.stride
        guard shape.allSatisfy({ $0 >= 0 }) else { throw .negativeDimension(tensor: name, shape: shape) }
        guard strides.count == shape.count else { throw .rankMismatch(tensor: name, shape: shape, stride: strides) }
        guard strides.allSatisfy({ $0 >= 0 }), record.storageOffset >= 0 else { throw .negativeStride(tensor: name, stride: strides) }
        guard let count = checkedProduct(shape) else { throw .elementCountOverflow(tensor: name, shape: shape) }
        guard count > 0 else { return }
        var highest = record.storageOffset
        for (size, stride) in zip(shape, strides) {
            guard let step = checkedProduct([size - 1, stride]) else { throw .elementCountOverflow(tensor: name, shape: shape) }
            let (sum, overflow) = highest.addingReportingOverflow(step)
            guard !overflow else { throw .elementCountOverflow(tensor: name, shape: shape) }
            highest = sum
        }
        guard highest < storageElements else {
            let width = record.dtype.byteWidth
            throw .outOfStorage(tensor: name, neededBytes: (checkedProduct([highest, width]) ?? Int.max - width) + width,
                                storageBytes: storageElements * width)
        }
    }

    // MARK: Records

    /// The name errors use for record `key`: the zip entry, or the legacy storage key.
    private func recordName(_ key: String) -> String {
        switch source {
        case .zip(_, let prefix): return prefix + "data/" + key
        case .legacy: return key
        }
    }

    /// Bytes the record holds according to metadata (nil when it does not exist). A zip entry's
    /// declared size is checked against what the archive can deliver first: trusting a lying
    /// size would let tensors claim (and `inspect` add up) exabytes backed by a few bytes.
    private func recordSize(_ key: String) throws(ZipError) -> Int? {
        switch source {
        case .zip(let archive, let prefix):
            guard let entry = archive.entry(named: prefix + "data/" + key) else { return nil }
            try archive.checkDeclaredSize(of: entry)
            return entry.uncompressedSize
        case .legacy(_, let ranges): return ranges[key]?.count
        }
    }

    private func recordBytes(_ key: String, tensor: String) throws -> ByteStorage {
        switch source {
        case .zip(let archive, let prefix):
            guard let entry = archive.entry(named: prefix + "data/" + key) else {
                throw CheckpointError.missingRecord(tensor: tensor, record: prefix + "data/" + key)
            }
            guard entry.method == .deflated else { return try archive.contents(of: entry) }
            return try inflated.storage(for: key) { () throws(ZipError) in try archive.contents(of: entry) }
        case .legacy(let file, let ranges):
            guard let range = ranges[key] else { throw CheckpointError.missingRecord(tensor: tensor, record: key) }
            return file.storage(range)
        }
    }

    // MARK: WeightStore

    /// The tensor's description from the pickle (dtype, storage, offset, shape, stride) without
    /// building a view: touches nothing in the file.
    public func tensorRecord(named name: String) -> TorchTensorRecord? { records[name] }

    public func tensor(named name: String) throws -> TensorView? {
        guard let record = records[name] else { return nil }
        let storage = record.storage
        let recordStorage = try recordBytes(storage.key, tensor: name)
        let width = storage.dtype.byteWidth
        // Lengths were checked against the record's declared size at open; check the real one.
        var range = 0..<storage.elementCount * width
        if let view = storage.legacyView {
            range = view.elementOffset * width..<(view.elementOffset + view.elementCount) * width
        }
        guard range.upperBound <= recordStorage.count else {
            throw CheckpointError.recordTooShort(tensor: name, record: recordName(storage.key),
                                                 neededBytes: range.upperBound, recordBytes: recordStorage.count)
        }
        let bytes = ByteStorage(bytes: UnsafeRawBufferPointer(rebasing: recordStorage.bytes[range]), owner: recordStorage.owner)
        return try TensorView(name: name, dtype: storage.dtype, shape: record.shape, strides: record.stride,
                              storageOffset: record.storageOffset, storage: bytes, byteOrder: byteOrder)
    }

    /// Zip checkpoints: reads every record under the checkpoint's folder and checks its CRC-32
    /// against the central directory (stored tensor records are otherwise never checked, because
    /// handing them out as views must not read them). Legacy streams carry no checksum: every
    /// tensor's view is built, which checks its offset, shape and strides against its storage's
    /// bounds — all a legacy file lets one verify — and reads no tensor bytes.
    public func verifyChecksums() throws {
        switch source {
        case .zip(let archive, let prefix):
            for entry in archive.entries where entry.name.hasPrefix(prefix) {
                try archive.verifyChecksum(of: entry)
            }
        case .legacy:
            for name in tensorNames { _ = try tensor(named: name) }
        }
    }
}

/// Each deflated record inflated once per checkpoint and kept: many tensors can view one
/// storage, and inflating it again for each of them let a 115 KB file (200 one-element views of
/// a 100 MB record) make `beats convert` inflate 20 GB in 200 s and hold all of it. Memory is now
/// the records' total inflated size, which the zip limits bound. Stored records are views into
/// the map and never come here.
private final class InflatedRecords: @unchecked Sendable {
    private var storages: [String: ByteStorage] = [:]
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    init() { pthread_mutex_init(lock, nil) }

    deinit {
        pthread_mutex_destroy(lock)
        lock.deallocate()
    }

    /// The storage kept for `key`, made by `inflate` the first time (under the lock, so two
    /// threads never inflate the same record twice).
    func storage(for key: String, inflate: () throws(ZipError) -> ByteStorage) throws(ZipError) -> ByteStorage {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        if let storage = storages[key] { return storage }
        let storage = try inflate()
        storages[key] = storage
        return storage
    }
}
