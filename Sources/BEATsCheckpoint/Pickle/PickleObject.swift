import BEATsCore

/// A value in a ``PickleObject``'s arena. Containers hold these ids, and so does the memo, so a
/// value stored once and fetched a thousand times is one node referenced a thousand times.
public struct PickleNodeID: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Position in the arena (creation order).
    public let index: Int

    init(_ index: Int) { self.index = index }

    public static func < (lhs: PickleNodeID, rhs: PickleNodeID) -> Bool { lhs.index < rhs.index }
    public var description: String { "#\(index)" }
}

/// What kind of Python value a node is.
public enum PickleNodeKind: String, Sendable {
    case none, bool, int, float, string, bytes, tuple, list, dict, set, frozenSet, global, tensor, storage
}

/// A Python int that does not fit in `Int` (LONG1/LONG4), e.g. the legacy format's magic number.
public struct PickleBigInt: Hashable, Sendable, CustomStringConvertible {
    /// Little-endian two's complement, without redundant sign bytes (0 is `[]`).
    public let littleEndianBytes: [UInt8]

    /// Normalises `bytes` (little-endian two's complement, as LONG1/LONG4 store it).
    public init(littleEndianTwosComplement bytes: some Collection<UInt8>) {
        var normalized = Array(bytes)
        while let last = normalized.last {
            let fill: UInt8 = normalized.count >= 2 && normalized[normalized.count - 2] & 0x80 != 0 ? 0xFF : 0x00
            if normalized.count >= 2 ? last == fill : last == 0 { normalized.removeLast() } else { break }
        }
        littleEndianBytes = normalized
    }

    public init(_ value: Int) {
        self.init(littleEndianTwosComplement: withUnsafeBytes(of: value.littleEndian) { Array($0) })
    }

    /// Parses optional sign and decimal digits (protocol 0's INT/LONG text); nil for anything else.
    public init?(decimal text: some StringProtocol) {
        var digits = Substring(text)
        let negative = digits.first == "-"
        if digits.first == "-" || digits.first == "+" { digits = digits.dropFirst() }
        guard !digits.isEmpty else { return nil }
        var magnitude: [UInt8] = []  // little-endian
        for character in digits.utf8 {
            guard character >= 0x30, character <= 0x39 else { return nil }
            var carry = Int(character - 0x30)
            for index in magnitude.indices {
                let product = Int(magnitude[index]) * 10 + carry
                magnitude[index] = UInt8(truncatingIfNeeded: product)
                carry = product >> 8
            }
            while carry > 0 {
                magnitude.append(UInt8(truncatingIfNeeded: carry))
                carry >>= 8
            }
        }
        magnitude.append(0)  // room for the sign bit
        if negative {
            var carry = 1
            for index in magnitude.indices {
                let sum = Int(~magnitude[index]) + carry
                magnitude[index] = UInt8(truncatingIfNeeded: sum)
                carry = sum >> 8
            }
        }
        self.init(littleEndianTwosComplement: magnitude)
    }

    public var isNegative: Bool { (littleEndianBytes.last ?? 0) & 0x80 != 0 }

    /// The value as an `Int`, or nil when it does not fit.
    public var intValue: Int? {
        guard littleEndianBytes.count <= MemoryLayout<Int>.size else { return nil }
        var value: UInt64 = isNegative ? ~0 : 0
        for (position, byte) in littleEndianBytes.enumerated() {
            value &= ~(UInt64(0xFF) << (8 * position))
            value |= UInt64(byte) << (8 * position)
        }
        return Int(truncatingIfNeeded: value)
    }

    /// Decimal, as Python prints it.
    public var description: String {
        // Magnitude as 32-bit limbs, least significant first.
        var bytes = littleEndianBytes
        if isNegative {  // two's complement negate
            var carry = 1
            for index in bytes.indices {
                let sum = Int(~bytes[index]) + carry
                bytes[index] = UInt8(truncatingIfNeeded: sum)
                carry = sum >> 8
            }
        }
        var limbs = stride(from: 0, to: bytes.count, by: 4).map { start -> UInt32 in
            var limb: UInt32 = 0
            for offset in 0..<4 where start + offset < bytes.count {
                limb |= UInt32(bytes[start + offset]) << (8 * offset)
            }
            return limb
        }
        var groups: [UInt32] = []  // base 10^9, least significant first
        while limbs.contains(where: { $0 != 0 }) {
            var remainder: UInt64 = 0
            for index in limbs.indices.reversed() {
                let current = (remainder << 32) | UInt64(limbs[index])
                limbs[index] = UInt32(current / 1_000_000_000)
                remainder = current % 1_000_000_000
            }
            groups.append(UInt32(remainder))
        }
        guard let top = groups.last else { return "0" }
        var text = isNegative ? "-" : ""
        text += String(top)
        for group in groups.dropLast().reversed() {
            let digits = String(group)
            text += String(repeating: "0", count: 9 - digits.count) + digits
        }
        return text
    }
}

/// One key/value pair of a dict, in insertion order.
public struct PickleDictEntry: Sendable, Hashable {
    public let key: PickleNodeID
    public let value: PickleNodeID
}

/// The result of loading a pickle: an arena of values and the root value STOP returned.
///
/// Nodes are immutable once loading ends. Accessors return nil when a node is not of the asked
/// kind. Walks over the graph (``tensorEntries(in:)``, ``reachableNodeCount(from:)``,
/// ``summary(of:maxLength:)``) are iterative and visit shared nodes once, so a memo bomb or a
/// cycle costs time linear in the pickle's size.
///
/// Dicts keep every SETITEM in file order, repeated keys included (a real pickle never repeats
/// one); lookups by key return the last, as Python would.
public struct PickleObject: Sendable {
    enum Node: Sendable {
        case none
        case bool(Bool)
        case int(Int)
        case bigInt(PickleBigInt)
        case float(Double)
        case string(String)
        case bytes([UInt8])
        case tuple([PickleNodeID])
        case list(Int)        // index in `lists`
        case dict(Int)        // index in `dicts`
        case set(Int)         // index in `sets`
        case frozenSet([PickleNodeID])
        case global(PickleGlobal)
        case tensor(Int)      // index in `tensors`
        case storage(Int)     // index in `storages`
    }

    struct DictStorage: Sendable {
        var entries: [PickleDictEntry] = []
        var isOrdered: Bool
    }

    var nodes: [Node] = []
    var nodeOffsets: [Int] = []
    var lists: [[PickleNodeID]] = []
    var dicts: [DictStorage] = []
    var sets: [[PickleNodeID]] = []
    var tensors: [TorchTensorRecord] = []
    var storages: [TorchStorageReference] = []

    /// The value STOP returned (while a persistent loader runs: the persistent id).
    public internal(set) var root = PickleNodeID(0)
    /// File offset of the pickle's first byte.
    public let startOffset: Int
    /// File offset just past STOP: where the next pickle of a legacy stream starts.
    public internal(set) var endOffset: Int
    /// The limits it was loaded with; walks use the nesting and name limits.
    public let limits: PickleLimits
    /// The context given at load, repeated in error locations.
    public let context: String

    init(startOffset: Int, limits: PickleLimits, context: String) {
        self.startOffset = startOffset
        self.endOffset = startOffset
        self.limits = limits
        self.context = context
    }

    /// Number of values in the arena.
    public var nodeCount: Int { nodes.count }
    /// Every node id, in creation order.
    public var nodeIDs: [PickleNodeID] { nodes.indices.map(PickleNodeID.init) }
    /// Bytes from the first opcode through STOP.
    public var byteCount: Int { endOffset - startOffset }

    func node(_ id: PickleNodeID) -> Node { nodes[id.index] }

    // MARK: Typed accessors

    public func kind(of id: PickleNodeID) -> PickleNodeKind {
        switch node(id) {
        case .none: .none
        case .bool: .bool
        case .int, .bigInt: .int
        case .float: .float
        case .string: .string
        case .bytes: .bytes
        case .tuple: .tuple
        case .list: .list
        case .dict: .dict
        case .set: .set
        case .frozenSet: .frozenSet
        case .global: .global
        case .tensor: .tensor
        case .storage: .storage
        }
    }

    /// The Python type name for messages: `int`, `str`, `OrderedDict`, `tensor`, …
    public func typeName(of id: PickleNodeID) -> String {
        switch node(id) {
        case .none: "None"
        case .bool: "bool"
        case .int, .bigInt: "int"
        case .float: "float"
        case .string: "str"
        case .bytes: "bytes"
        case .tuple: "tuple"
        case .list: "list"
        case .dict(let index): dicts[index].isOrdered ? "OrderedDict" : "dict"
        case .set: "set"
        case .frozenSet: "frozenset"
        case .global(let global): "global \(global.qualifiedName)"
        case .tensor: "tensor"
        case .storage: "storage"
        }
    }

    /// File offset of the opcode that made the node.
    public func offset(of id: PickleNodeID) -> Int { nodeOffsets[id.index] }

    /// ``offset(of:)`` with this pickle's context, for errors about the node.
    public func location(of id: PickleNodeID) -> PickleLocation {
        PickleLocation(offset: offset(of: id), context: context)
    }

    public func isNone(_ id: PickleNodeID) -> Bool {
        if case .none = node(id) { return true }
        return false
    }

    public func bool(of id: PickleNodeID) -> Bool? {
        if case .bool(let value) = node(id) { return value }
        return nil
    }

    /// An int that fits in `Int` (bools are not ints here).
    public func integer(of id: PickleNodeID) -> Int? {
        if case .int(let value) = node(id) { return value }
        return nil
    }

    /// Any int, however large.
    public func bigInteger(of id: PickleNodeID) -> PickleBigInt? {
        switch node(id) {
        case .int(let value): PickleBigInt(value)
        case .bigInt(let value): value
        default: nil
        }
    }

    public func double(of id: PickleNodeID) -> Double? {
        if case .float(let value) = node(id) { return value }
        return nil
    }

    public func string(of id: PickleNodeID) -> String? {
        if case .string(let value) = node(id) { return value }
        return nil
    }

    /// bytes or bytearray contents.
    public func bytes(of id: PickleNodeID) -> [UInt8]? {
        if case .bytes(let value) = node(id) { return value }
        return nil
    }

    /// Items of a tuple, list, set or frozenset, in order.
    public func items(of id: PickleNodeID) -> [PickleNodeID]? {
        switch node(id) {
        case .tuple(let items), .frozenSet(let items): items
        case .list(let index): lists[index]
        case .set(let index): sets[index]
        default: nil
        }
    }

    /// Entries of a dict or OrderedDict in insertion order.
    public func dictEntries(of id: PickleNodeID) -> [PickleDictEntry]? {
        if case .dict(let index) = node(id) { return dicts[index].entries }
        return nil
    }

    public func isOrderedDict(_ id: PickleNodeID) -> Bool {
        if case .dict(let index) = node(id) { return dicts[index].isOrdered }
        return false
    }

    /// The value stored under the string `key` in a dict (the last one if the key repeats).
    public func value(forKey key: String, in dict: PickleNodeID) -> PickleNodeID? {
        dictEntries(of: dict)?.last { string(of: $0.key) == key }?.value
    }

    public func global(of id: PickleNodeID) -> PickleGlobal? {
        if case .global(let global) = node(id) { return global }
        return nil
    }

    public func tensor(of id: PickleNodeID) -> TorchTensorRecord? {
        if case .tensor(let index) = node(id) { return tensors[index] }
        return nil
    }

    public func storage(of id: PickleNodeID) -> TorchStorageReference? {
        if case .storage(let index) = node(id) { return storages[index] }
        return nil
    }

    /// A config value: an int that fits, a float, a bool or a str; nil for anything else.
    public func scalar(of id: PickleNodeID) -> ConfigScalar? {
        switch node(id) {
        case .int(let value): .int(value)
        case .float(let value): .double(value)
        case .bool(let value): .bool(value)
        case .string(let value): .string(value)
        default: nil
        }
    }

    /// Ints of a tuple or list (a `torch.Size` is a tuple here); nil if any item is not an int.
    public func integers(of id: PickleNodeID) -> [Int]? {
        guard let items = items(of: id), kind(of: id) == .tuple || kind(of: id) == .list else { return nil }
        var values: [Int] = []
        values.reserveCapacity(items.count)
        for item in items {
            guard let value = integer(of: item) else { return nil }
            values.append(value)
        }
        return values
    }
}
