import BEATsCore

/// The framing of a checkpoint written by torch < 1.6 (or `_use_new_zipfile_serialization=False`):
/// five pickles back to back — the magic number 0x1950a86a20f9469cfc6c, protocol version 1001,
/// a `sys_info` dict, the main object (storages as persistent ids), the sorted list of storage
/// keys — then, for each key in that order, an 8-byte little-endian element count and the raw
/// elements, little-endian whatever machine wrote them (torch's `THPStorage_writeFileRaw` swaps on
/// big-endian hosts).
///
/// Reading it touches the five pickles and the eight count bytes in front of each storage; the
/// storages themselves stay in the map.
struct LegacyStream {
    static let magicNumber = PickleBigInt(littleEndianTwosComplement: [0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19])
    static let protocolVersion = 1001

    /// The main pickle (`{'cfg', 'model', …}` or a bare state dict).
    let main: PickleObject
    /// Each storage key's raw bytes in the file.
    let records: [String: Range<Int>]

    init(_ bytes: UnsafeRawBufferPointer, limits: PickleLimits) throws {
        // 1. Magic number. Anything unreadable here is reported as a wrong magic number, since
        //    that is what it is: not the start of a torch stream.
        let magic: PickleObject
        do {
            magic = try PickleMachine.load(bytes, fileOffset: 0, context: "legacy magic number", limits: limits)
        } catch {
            throw CheckpointError.legacyMagic(offset: 0, found: "no readable pickle (\(error))")
        }
        guard magic.bigInteger(of: magic.root) == LegacyStream.magicNumber else {
            throw CheckpointError.legacyMagic(offset: 0, found: LegacyStream.render(magic, hex: true))
        }

        // 2. Protocol version.
        let protocolStart = magic.endOffset
        let version = try PickleMachine.load(LegacyStream.tail(bytes, from: protocolStart), fileOffset: protocolStart,
                                             context: "legacy protocol version", limits: limits)
        guard version.integer(of: version.root) == LegacyStream.protocolVersion else {
            throw CheckpointError.legacyProtocol(offset: protocolStart, found: LegacyStream.render(version, hex: false))
        }

        // 3. sys_info describes the machine that saved the file; nothing in it changes how the
        //    file reads: torch wrote storages (and their counts) little-endian on every machine.
        let infoStart = version.endOffset
        let info = try PickleMachine.load(LegacyStream.tail(bytes, from: infoStart), fileOffset: infoStart,
                                          context: "legacy sys_info", limits: limits)

        // 4. Main object; remember each storage's element type for the framing below.
        let mainStart = info.endOffset
        var dtypeByKey: [String: DType] = [:]
        let main = try PickleMachine.load(LegacyStream.tail(bytes, from: mainStart), fileOffset: mainStart,
                                          context: "legacy main pickle", limits: limits) { object, id in
            let storage = try TorchStorageReference(persistentID: id, in: object)
            if let known = dtypeByKey.updateValue(storage.dtype, forKey: storage.key), known != storage.dtype {
                throw CheckpointError.conflictingStorageTypes(record: storage.key, first: known, second: storage.dtype)
            }
            return storage
        }

        // 5. Storage keys, then the storages in that order.
        let keysStart = main.endOffset
        let keyList = try PickleMachine.load(LegacyStream.tail(bytes, from: keysStart), fileOffset: keysStart,
                                             context: "legacy storage keys", limits: limits)
        guard keyList.kind(of: keyList.root) == .list, let keyNodes = keyList.items(of: keyList.root) else {
            throw CheckpointError.legacyKeyList(offset: keysStart, reason: "expected a list, found \(keyList.typeName(of: keyList.root))")
        }
        var records: [String: Range<Int>] = [:]
        var position = keyList.endOffset
        for node in keyNodes {
            guard let key = keyList.string(of: node) else {
                throw CheckpointError.legacyKeyList(offset: keysStart, reason: "a key is a \(keyList.typeName(of: node)), not a str")
            }
            guard let dtype = dtypeByKey[key] else { throw CheckpointError.legacyStorageUntyped(key: key, offset: position) }
            let remaining = bytes.count - position - 8
            guard let count = bytes.loadInteger(Int64.self, at: position), remaining >= 0 else {
                throw CheckpointError.legacyStorageBeyondFile(key: key, offset: position, elementCount: 0,
                                                              elementBytes: dtype.byteWidth, remaining: max(bytes.count - position, 0))
            }
            guard count >= 0, count <= Int64(remaining / dtype.byteWidth) else {
                throw CheckpointError.legacyStorageBeyondFile(key: key, offset: position, elementCount: count,
                                                              elementBytes: dtype.byteWidth, remaining: remaining)
            }
            let start = position + 8
            let end = start + Int(count) * dtype.byteWidth
            guard records.updateValue(start..<end, forKey: key) == nil else {
                throw CheckpointError.legacyKeyList(offset: keysStart, reason: "key '\(key)' is listed twice")
            }
            position = end
        }
        self.main = main
        self.records = records
    }

    /// The bytes from `offset` to the end (empty when `offset` is past the end, so the pickle
    /// machine reports a truncation at that offset).
    private static func tail(_ bytes: UnsafeRawBufferPointer, from offset: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[min(max(offset, 0), bytes.count)...])
    }

    /// A found value for a message: ints in hex or decimal, anything else summarised.
    private static func render(_ object: PickleObject, hex wantsHex: Bool) -> String {
        if let number = object.bigInteger(of: object.root) {
            if number.isNegative || !wantsHex { return number.description }
            let hex = number.littleEndianBytes.reversed().map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
            let trimmed = hex.drop { $0 == "0" }
            return "0x" + (trimmed.isEmpty ? "0" : trimmed)
        }
        return "\(object.typeName(of: object.root)) \(object.summary(of: object.root, maxLength: 60))"
    }
}
