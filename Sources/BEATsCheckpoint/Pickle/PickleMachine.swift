import BEATsCore

/// A data-only unpickler for protocols 0 to 5: the subset of Python's `pickle` that loads what
/// `torch.save` writes, and nothing that runs code.
///
/// - It is a loop over opcodes with an explicit stack, so no input can make it recurse.
/// - Values live in an arena (``PickleObject``); containers and the memo hold node ids, so memo
///   references cost nothing, cycles are harmless and nothing is freed recursively.
/// - GLOBAL/STACK_GLOBAL resolve against ``PickleGlobal``'s allowlist as they are read; REDUCE,
///   NEWOBJ and BUILD on allowed globals build data (dicts, tensor records), never call anything.
/// - Persistent ids (torch's storages) go to a caller-supplied loader.
/// - Every size in the input is checked against the bytes that remain before anything is
///   allocated, and ``PickleLimits`` bounds the stack, memo and arena.
public struct PickleMachine {
    /// Turns a persistent id (the node BINPERSID popped; `object.root` is set to it too) into
    /// the storage it names. Errors thrown here propagate from ``load(_:fileOffset:context:limits:persistentLoad:)`` unchanged.
    /// Read what you need from `object` and let it go: keeping a copy would make the machine's
    /// next write copy the whole arena.
    public typealias PersistentLoader = (_ object: PickleObject, _ persistentID: PickleNodeID) throws -> TorchStorageReference

    /// Loads one pickle from `bytes`, stopping at its STOP opcode (bytes after it are not read;
    /// ``PickleObject/endOffset`` says where it ended, for the legacy stream's consecutive pickles).
    ///
    /// - Parameters:
    ///   - bytes: the pickle, e.g. the `data.pkl` record of a zip checkpoint.
    ///   - fileOffset: position of `bytes[0]` in the file, so errors name file offsets.
    ///   - context: what is being read (`archive/data.pkl`), repeated in error messages.
    ///   - limits: resource bounds; the defaults fit any real checkpoint.
    ///   - persistentLoad: resolves torch's storage ids; the default decodes the tuple with
    ///     ``TorchStorageReference/init(persistentID:in:)`` and checks nothing else.
    /// - Throws: ``PickleError`` for malformed or forbidden input, or whatever `persistentLoad` throws.
    public static func load(
        _ bytes: UnsafeRawBufferPointer, fileOffset: Int = 0, context: String = "",
        limits: PickleLimits = PickleLimits(),
        persistentLoad: PersistentLoader = { object, id in try TorchStorageReference(persistentID: id, in: object) }
    ) throws -> PickleObject {
        var machine = PickleMachine(bytes: bytes, fileOffset: fileOffset, context: context, limits: limits)
        return try machine.run(persistentLoad: persistentLoad)
    }

    /// ``load(_:fileOffset:context:limits:persistentLoad:)`` over an array (tests, small pickles).
    public static func load(
        _ bytes: [UInt8], fileOffset: Int = 0, context: String = "", limits: PickleLimits = PickleLimits(),
        persistentLoad: PersistentLoader = { object, id in try TorchStorageReference(persistentID: id, in: object) }
    ) throws -> PickleObject {
        try bytes.withUnsafeBytes { buffer in
            try load(buffer, fileOffset: fileOffset, context: context, limits: limits, persistentLoad: persistentLoad)
        }
    }

    private typealias Node = PickleObject.Node

    private var reader: ByteReader
    private var object: PickleObject
    private let limits: PickleLimits
    private let context: String
    private var stack: [PickleNodeID] = []
    /// Stack heights at each MARK. Values below the last mark are out of reach, as in Python,
    /// whose unpickler starts a fresh stack at every MARK.
    private var marks: [Int] = []
    private var memo: [Int: PickleNodeID] = [:]
    private var opcode: PickleOpcode = .stop
    private var opcodeOffset: Int
    /// Elements still allowed to be copied out of existing values (``PickleLimits/maxCopiesPerInputByte``).
    private var copyBudget: Int

    private init(bytes: UnsafeRawBufferPointer, fileOffset: Int, context: String, limits: PickleLimits) {
        reader = ByteReader(bytes, base: fileOffset)
        object = PickleObject(startOffset: fileOffset, limits: limits, context: context)
        // torch's data.pkl makes about one value per 8 bytes; reserving that avoids regrowing the
        // arena, and stays bounded by the input and the node limit.
        let expectedNodes = min(bytes.count / 8, limits.maxNodes, 1 << 20)
        object.nodes.reserveCapacity(expectedNodes)
        object.nodeOffsets.reserveCapacity(expectedNodes)
        self.limits = limits
        self.context = context
        opcodeOffset = fileOffset
        copyBudget = limits.copyBudget(forInputBytes: bytes.count)
    }

    private var here: PickleLocation { PickleLocation(offset: opcodeOffset, context: context) }

    // MARK: The loop

    private mutating func run(persistentLoad: PersistentLoader) throws -> PickleObject {
        while true {
            opcodeOffset = reader.fileOffset
            guard let byte = reader.readUInt8() else {
                if reader.position == 0 { throw PickleError.truncated(opcode: nil, at: here) }
                throw PickleError.missingStop(at: here)
            }
            guard let opcode = PickleOpcode(rawValue: byte) else { throw PickleError.unknownOpcode(byte, at: here) }
            self.opcode = opcode
            switch opcode {
            // Framing and control.
            case .proto:
                let version = try readInteger(UInt8.self)
                guard version <= 5 else { throw PickleError.unsupportedProtocol(Int(version), at: here) }
            case .frame:
                // Frames only group opcodes for buffered reading; all that matters here is that
                // the announced frame exists.
                let length = try readInteger(UInt64.self)
                guard length <= UInt64(reader.remaining) else { throw PickleError.truncated(opcode: opcode.name, at: here) }
            case .stop:
                let root = try pop()
                object.root = root
                object.endOffset = reader.fileOffset
                return object
            case .mark:
                try checkDepth()
                marks.append(stack.count)
            case .pop:
                if stack.count > floor {
                    stack.removeLast()
                } else if !marks.isEmpty {
                    marks.removeLast()  // Python's POP on an empty frame discards the mark.
                } else {
                    throw PickleError.stackUnderflow(opcode: opcode.name, at: here)
                }
            case .popMark:
                _ = try popMark()
            case .dup:
                try push(try top())

            // Constants and numbers.
            case .none: try pushNew(.none)
            case .newTrue: try pushNew(.bool(true))
            case .newFalse: try pushNew(.bool(false))
            case .binInt: try pushNew(.int(Int(try readInteger(Int32.self))))
            case .binInt1: try pushNew(.int(Int(try readInteger(UInt8.self))))
            case .binInt2: try pushNew(.int(Int(try readInteger(UInt16.self))))
            case .long1:
                let count = Int(try readInteger(UInt8.self))
                try pushNew(try integerNode(littleEndian: try readCheckedIntegerBytes(count)))
            case .long4:
                let count = Int(try readInteger(Int32.self))
                guard count >= 0 else { throw PickleError.invalidArgument(opcode: opcode.name, reason: "negative byte count \(count)", at: here) }
                try pushNew(try integerNode(littleEndian: try readCheckedIntegerBytes(count)))
            case .int:
                let line = try readLine()
                if line.elementsEqual("00".utf8) {
                    try pushNew(.bool(false))
                } else if line.elementsEqual("01".utf8) {
                    try pushNew(.bool(true))
                } else {
                    try pushNew(try decimalInteger(line))
                }
            case .long:
                var line = try readLine()
                if line.last == UInt8(ascii: "L") { line = UnsafeRawBufferPointer(rebasing: line.dropLast()) }
                try pushNew(try decimalInteger(line))
            case .binFloat:
                try pushNew(.float(Double(bitPattern: try readInteger(UInt64.self, .big))))
            case .float:
                let text = String(decoding: try readLine(), as: UTF8.self)
                guard let value = Double(text.trimmingSpaces) else {
                    throw PickleError.invalidArgument(opcode: opcode.name, reason: "'\(displayable(text))' is not a float", at: here)
                }
                try pushNew(.float(value))

            // Text and bytes.
            case .shortBinUnicode: try pushNew(.string(try utf8(try readBytes(Int(try readInteger(UInt8.self))))))
            case .binUnicode: try pushNew(.string(try utf8(try readBytes(try readLength(UInt32.self)))))
            case .binUnicode8: try pushNew(.string(try utf8(try readBytes(try readLength(UInt64.self)))))
            case .shortBinString: try pushNew(.string(try utf8(try readBytes(Int(try readInteger(UInt8.self))))))
            case .binString:
                let count = Int(try readInteger(Int32.self))
                guard count >= 0 else { throw PickleError.invalidArgument(opcode: opcode.name, reason: "negative length \(count)", at: here) }
                try pushNew(.string(try utf8(try readBytes(count))))
            case .unicode:
                try pushNew(.string(PickleMachine.decodeRawUnicodeEscape(try readLine())))
            case .string:
                let line = try readLine()
                guard line.count >= 2, let quote = line.first, quote == line.last,
                      quote == UInt8(ascii: "'") || quote == UInt8(ascii: "\"")
                else { throw PickleError.invalidArgument(opcode: opcode.name, reason: "argument is not quoted", at: here) }
                guard let raw = PickleMachine.decodeEscapes(UnsafeRawBufferPointer(rebasing: line.dropFirst().dropLast())) else {
                    throw PickleError.invalidArgument(opcode: opcode.name, reason: "invalid \\x escape", at: here)
                }
                try pushNew(.string(try raw.withUnsafeBytes { try utf8($0) }))
            case .shortBinBytes: try pushNew(.bytes(Array(try readBytes(Int(try readInteger(UInt8.self))))))
            case .binBytes: try pushNew(.bytes(Array(try readBytes(try readLength(UInt32.self)))))
            case .binBytes8, .byteArray8: try pushNew(.bytes(Array(try readBytes(try readLength(UInt64.self)))))
            case .readonlyBuffer:
                let target = try top()
                guard case .bytes = object.node(target) else { throw wrongType(expected: "a bytes-like value", found: target) }

            // Containers.
            case .emptyList: try pushNew(newList([]))
            case .emptyDict: try pushNew(newDict(ordered: false))
            case .emptySet: try pushNew(newSet([]))
            case .emptyTuple: try pushNew(.tuple([]))
            case .tuple: try pushNew(.tuple(try popMark()))
            case .tuple1, .tuple2, .tuple3:
                let count = opcode == .tuple1 ? 1 : opcode == .tuple2 ? 2 : 3
                guard stack.count - floor >= count else { throw PickleError.stackUnderflow(opcode: opcode.name, at: here) }
                let items = Array(stack.suffix(count))
                stack.removeLast(count)
                try pushNew(.tuple(items))
            case .list: try pushNew(newList(try popMark()))
            case .frozenSet: try pushNew(.frozenSet(try popMark()))
            case .dict:
                let items = try popMark()
                let dict = newDict(ordered: false)
                guard case .dict(let index) = dict else { preconditionFailure("newDict makes a dict") }
                try appendPairs(items, toDict: index)
                try pushNew(dict)
            case .append:
                let value = try pop()
                let target = try top()
                guard case .list(let index) = object.node(target) else { throw wrongType(expected: "a list", found: target) }
                object.lists[index].append(value)
            case .appends:
                let items = try popMark()
                let target = try top()
                guard case .list(let index) = object.node(target) else { throw wrongType(expected: "a list", found: target) }
                object.lists[index].append(contentsOf: items)
            case .setItem:
                let value = try pop()
                let key = try pop()
                let target = try top()
                guard case .dict(let index) = object.node(target) else { throw wrongType(expected: "a dict", found: target) }
                object.dicts[index].entries.append(PickleDictEntry(key: key, value: value))
            case .setItems:
                let items = try popMark()
                let target = try top()
                guard case .dict(let index) = object.node(target) else { throw wrongType(expected: "a dict", found: target) }
                try appendPairs(items, toDict: index)
            case .addItems:
                let items = try popMark()
                let target = try top()
                guard case .set(let index) = object.node(target) else { throw wrongType(expected: "a set", found: target) }
                object.sets[index].append(contentsOf: items)

            // Memo.
            case .put: try store(memoKey: try decimal(try readLine()))
            case .binPut: try store(memoKey: Int(try readInteger(UInt8.self)))
            case .longBinPut: try store(memoKey: Int(try readInteger(UInt32.self)))
            case .memoize: try store(memoKey: memo.count)
            case .get: try fetch(memoKey: try decimal(try readLine()))
            case .binGet: try fetch(memoKey: Int(try readInteger(UInt8.self)))
            case .longBinGet: try fetch(memoKey: Int(try readInteger(UInt32.self)))

            // Globals and the calls they allow.
            case .global:
                let module = try utf8(try readLine())
                let name = try utf8(try readLine())
                try pushNew(.global(try resolve(module: module, name: name)))
            case .stackGlobal:
                let nameID = try pop()
                let moduleID = try pop()
                guard let module = object.string(of: moduleID) else { throw wrongType(expected: "a str module name", found: moduleID) }
                guard let name = object.string(of: nameID) else { throw wrongType(expected: "a str global name", found: nameID) }
                try pushNew(.global(try resolve(module: module, name: name)))
            case .reduce:
                let arguments = try pop()
                let callable = try pop()
                try push(try call(callable, arguments))
            case .newObj:
                let arguments = try pop()
                let type = try pop()
                try push(try construct(type, arguments))
            case .newObjEx:
                let keywords = try pop()
                let arguments = try pop()
                let type = try pop()
                guard let entries = object.dictEntries(of: keywords) else { throw wrongType(expected: "a keyword dict", found: keywords) }
                guard entries.isEmpty else {
                    throw PickleError.forbiddenCall(typeName(type), reason: "keyword arguments are not data", at: here)
                }
                try push(try construct(type, arguments))
            case .build:
                let state = try pop()
                let target = try top()
                try build(target, state: state)
            case .binPersID:
                try push(try loadPersistent(try pop(), persistentLoad))
            case .persID:
                let text = try utf8(try readLine())
                try push(try loadPersistent(try make(.string(text)), persistentLoad))

            case .inst, .obj, .ext1, .ext2, .ext4, .nextBuffer:
                throw PickleError.unsupportedOpcode(opcode.name, at: here)
            }
        }
    }

    // MARK: Stack, memo and arena

    private var floor: Int { marks.last ?? 0 }

    private mutating func checkDepth() throws {
        guard stack.count + marks.count < limits.maxStackDepth else {
            throw PickleError.limitExceeded(limit: "stack depth", value: limits.maxStackDepth, at: here)
        }
    }

    private mutating func push(_ id: PickleNodeID) throws {
        try checkDepth()
        stack.append(id)
    }

    private mutating func pop() throws -> PickleNodeID {
        guard stack.count > floor else { throw PickleError.stackUnderflow(opcode: opcode.name, at: here) }
        return stack.removeLast()
    }

    private func top() throws -> PickleNodeID {
        guard stack.count > floor, let last = stack.last else { throw PickleError.stackUnderflow(opcode: opcode.name, at: here) }
        return last
    }

    /// The values pushed since the last MARK, which is removed.
    private mutating func popMark() throws -> [PickleNodeID] {
        guard let mark = marks.popLast() else { throw PickleError.missingMark(opcode: opcode.name, at: here) }
        let items = Array(stack[mark...])
        stack.removeSubrange(mark...)
        return items
    }

    private mutating func make(_ node: Node) throws -> PickleNodeID {
        guard object.nodes.count < limits.maxNodes else {
            throw PickleError.limitExceeded(limit: "value count", value: limits.maxNodes, at: here)
        }
        object.nodes.append(node)
        object.nodeOffsets.append(opcodeOffset)
        return PickleNodeID(object.nodes.count - 1)
    }

    private mutating func pushNew(_ node: Node) throws {
        try checkDepth()
        stack.append(try make(node))
    }

    private mutating func newList(_ items: [PickleNodeID]) -> Node {
        object.lists.append(items)
        return .list(object.lists.count - 1)
    }

    private mutating func newDict(ordered: Bool) -> Node {
        object.dicts.append(PickleObject.DictStorage(isOrdered: ordered))
        return .dict(object.dicts.count - 1)
    }

    private mutating func newSet(_ items: [PickleNodeID]) -> Node {
        object.sets.append(items)
        return .set(object.sets.count - 1)
    }

    /// Charges `count` copied elements against the budget.
    private mutating func charge(_ count: Int) throws {
        guard count <= copyBudget else {
            throw PickleError.limitExceeded(limit: "copy budget", value: limits.maxCopiesPerInputByte, at: here)
        }
        copyBudget -= count
    }

    /// A fresh buffer holding `items`: nodes never share an element buffer, so appending to one
    /// can never silently copy another's (Array is copy-on-write).
    private mutating func copied(_ items: [PickleNodeID]) throws -> [PickleNodeID] {
        try charge(items.count)
        return items.withUnsafeBufferPointer { Array($0) }
    }

    private mutating func appendPairs(_ items: [PickleNodeID], toDict index: Int) throws {
        guard items.count % 2 == 0 else {
            throw PickleError.invalidArgument(opcode: opcode.name, reason: "odd number of items (\(items.count)) for key/value pairs", at: here)
        }
        object.dicts[index].entries.reserveCapacity(object.dicts[index].entries.count + items.count / 2)
        for start in stride(from: 0, to: items.count, by: 2) {
            object.dicts[index].entries.append(PickleDictEntry(key: items[start], value: items[start + 1]))
        }
    }

    private mutating func store(memoKey key: Int) throws {
        guard key >= 0 else { throw PickleError.invalidArgument(opcode: opcode.name, reason: "negative memo key \(key)", at: here) }
        let value = try top()
        if memo[key] == nil, memo.count >= limits.maxMemoEntries {
            throw PickleError.limitExceeded(limit: "memo size", value: limits.maxMemoEntries, at: here)
        }
        memo[key] = value
    }

    private mutating func fetch(memoKey key: Int) throws {
        guard let value = memo[key] else { throw PickleError.unknownMemoKey(key, opcode: opcode.name, at: here) }
        try push(value)
    }

    // MARK: Reading arguments

    /// A fixed-width argument. Reads through the non-generic `readBytes` so the load is
    /// specialized here (ByteReader's generic reader is not inlinable across modules, and this is
    /// the machine's hottest path).
    @inline(__always)
    private mutating func readInteger<T: FixedWidthInteger>(_: T.Type, _ order: ByteOrder = .little) throws -> T {
        guard let bytes = reader.readBytes(MemoryLayout<T>.size) else { throw PickleError.truncated(opcode: opcode.name, at: here) }
        let value = bytes.loadUnaligned(as: T.self)
        return order == .little ? T(littleEndian: value) : T(bigEndian: value)
    }

    /// An unsigned length field, which must fit in what is left of the input.
    private mutating func readLength<T: FixedWidthInteger & UnsignedInteger>(_: T.Type) throws -> Int {
        let length = try readInteger(T.self)
        guard UInt64(length) <= UInt64(reader.remaining) else { throw PickleError.truncated(opcode: opcode.name, at: here) }
        return Int(length)
    }

    private mutating func readBytes(_ count: Int) throws -> UnsafeRawBufferPointer {
        guard let bytes = reader.readBytes(count) else { throw PickleError.truncated(opcode: opcode.name, at: here) }
        return bytes
    }

    private mutating func readCheckedIntegerBytes(_ count: Int) throws -> UnsafeRawBufferPointer {
        guard count <= limits.maxIntegerBytes else {
            throw PickleError.limitExceeded(limit: "integer size", value: limits.maxIntegerBytes, at: here)
        }
        return try readBytes(count)
    }

    /// The bytes up to the next newline (which is consumed, not returned).
    private mutating func readLine() throws -> UnsafeRawBufferPointer {
        let start = reader.position
        let bytes = reader.bytes
        var end = start
        while end < bytes.count, bytes[end] != 0x0A { end += 1 }
        guard end < bytes.count, let line = reader.readBytes(end - start), reader.skip(1) else {
            throw PickleError.truncated(opcode: opcode.name, at: here)
        }
        return line
    }

    private func utf8(_ bytes: UnsafeRawBufferPointer) throws -> String {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw PickleError.invalidArgument(opcode: opcode.name, reason: "text is not valid UTF-8", at: here)
        }
        return text
    }

    /// A decimal memo key (PUT/GET); must fit in an Int.
    private func decimal(_ line: UnsafeRawBufferPointer) throws -> Int {
        let text = String(decoding: line, as: UTF8.self)
        guard let value = Int(text.trimmingSpaces) else {
            throw PickleError.invalidArgument(opcode: opcode.name, reason: "'\(displayable(text))' is not a decimal integer", at: here)
        }
        return value
    }

    /// A decimal INT/LONG argument of any size (within ``PickleLimits/maxIntegerBytes``).
    private func decimalInteger(_ line: UnsafeRawBufferPointer) throws -> Node {
        let text = String(decoding: line, as: UTF8.self)
        if let value = Int(text.trimmingSpaces) { return .int(value) }
        // About 2.4 digits per byte; refuse before the quadratic conversion, not after.
        guard line.count <= limits.maxIntegerBytes * 5 / 2 + 2 else {
            throw PickleError.limitExceeded(limit: "integer size", value: limits.maxIntegerBytes, at: here)
        }
        guard let big = PickleBigInt(decimal: text.trimmingSpaces) else {
            throw PickleError.invalidArgument(opcode: opcode.name, reason: "'\(displayable(text))' is not a decimal integer", at: here)
        }
        guard big.littleEndianBytes.count <= limits.maxIntegerBytes else {
            throw PickleError.limitExceeded(limit: "integer size", value: limits.maxIntegerBytes, at: here)
        }
        return big.intValue.map(Node.int) ?? .bigInt(big)
    }

    /// LONG1/LONG4 payload: little-endian two's complement, an `Int` whenever it fits.
    private func integerNode(littleEndian bytes: UnsafeRawBufferPointer) throws -> Node {
        let big = PickleBigInt(littleEndianTwosComplement: bytes)
        if let value = big.intValue { return .int(value) }
        return .bigInt(big)
    }

    // MARK: Globals, calls and state

    private func resolve(module: String, name: String) throws -> PickleGlobal {
        guard let global = PickleGlobal(module: module, name: name) else {
            throw PickleError.forbiddenGlobal(displayable("\(module).\(name)"), at: here)
        }
        return global
    }

    private func typeName(_ id: PickleNodeID) -> String {
        if let global = object.global(of: id) { return global.qualifiedName }
        return object.typeName(of: id)
    }

    private func wrongType(expected: String, found id: PickleNodeID) -> PickleError {
        .wrongType(opcode: opcode.name, expected: expected, found: object.typeName(of: id), at: here)
    }

    private func arguments(_ id: PickleNodeID) throws -> [PickleNodeID] {
        guard case .tuple(let items) = object.node(id) else { throw wrongType(expected: "an argument tuple", found: id) }
        return items
    }

    /// REDUCE: what calling an allowed global with these arguments would return, as data.
    private mutating func call(_ callable: PickleNodeID, _ argumentsID: PickleNodeID) throws -> PickleNodeID {
        guard let global = object.global(of: callable) else { throw wrongType(expected: "a callable global", found: callable) }
        let args = try arguments(argumentsID)
        func refuse(_ reason: String) -> PickleError { .forbiddenCall(global.qualifiedName, reason: reason, at: here) }
        func expectCount(_ allowed: ClosedRange<Int>) throws {
            guard allowed.contains(args.count) else {
                let expected = allowed.count == 1 ? "\(allowed.lowerBound)" : "\(allowed.lowerBound) to \(allowed.upperBound)"
                throw refuse("takes \(expected) arguments, got \(args.count)")
            }
        }
        switch global {
        case .orderedDict:
            try expectCount(0...1)
            let dict = newDict(ordered: true)
            if let source = args.first {
                guard let pairs = object.items(of: source) else { throw refuse("argument is a \(object.typeName(of: source)), not a list of pairs") }
                guard case .dict(let index) = dict else { preconditionFailure("newDict makes a dict") }
                try charge(pairs.count)
                for pair in pairs {
                    guard let parts = object.items(of: pair), parts.count == 2 else { throw refuse("an item is not a (key, value) pair") }
                    object.dicts[index].entries.append(PickleDictEntry(key: parts[0], value: parts[1]))
                }
            }
            return try make(dict)
        case .rebuildTensorV2:
            try expectCount(6...7)
            return try makeTensor(storage: args[0], offset: args[1], size: args[2], stride: args[3], requiresGrad: args[4])
        case .rebuildTensor:
            try expectCount(4...4)
            return try makeTensor(storage: args[0], offset: args[1], size: args[2], stride: args[3], requiresGrad: nil)
        case .rebuildParameter, .rebuildParameterWithState:
            try expectCount(global == .rebuildParameter ? 3...3 : 4...4)
            guard var record = object.tensor(of: args[0]) else {
                throw PickleError.invalidTensor("\(global.qualifiedName) data is a \(object.typeName(of: args[0])), not a tensor", at: here)
            }
            guard let requiresGrad = object.bool(of: args[1]) else {
                throw PickleError.invalidTensor("requires_grad is a \(object.typeName(of: args[1])), not a bool", at: here)
            }
            record.requiresGrad = requiresGrad
            record.isParameter = true
            object.tensors.append(record)
            return try make(.tensor(object.tensors.count - 1))
        case .torchSize:
            return try makeSize(args)
        case .codecsEncode:
            try expectCount(1...2)
            guard let text = object.string(of: args[0]) else { throw refuse("argument is a \(object.typeName(of: args[0])), not a str") }
            try charge(text.utf8.count)
            let encoding = args.count == 2 ? object.string(of: args[1]) : "utf-8"
            switch encoding?.lowercased().replacingUnderscores {
            case "latin1", "latin-1", "iso-8859-1", "iso8859-1", "l1":
                var bytes: [UInt8] = []
                bytes.reserveCapacity(text.unicodeScalars.count)
                for scalar in text.unicodeScalars {
                    guard scalar.value <= 0xFF else { throw refuse("character U+\(String(scalar.value, radix: 16)) is not latin-1") }
                    bytes.append(UInt8(scalar.value))
                }
                return try make(.bytes(bytes))
            case "utf-8", "utf8":
                return try make(.bytes(Array(text.utf8)))
            default:
                throw refuse("encoding \(encoding.map { "'\(displayable($0))'" } ?? "argument") is not latin-1 or utf-8")
            }
        case .set, .frozenSet:
            try expectCount(0...1)
            var items: [PickleNodeID] = []
            if let source = args.first {
                guard let sourceItems = object.items(of: source) else { throw refuse("argument is a \(object.typeName(of: source)), not iterable data") }
                items = try copied(sourceItems)
            }
            return try make(global == .set ? newSet(items) : .frozenSet(items))
        case .byteArray:
            try expectCount(0...1)
            guard let source = args.first else { return try make(.bytes([])) }
            guard let bytes = object.bytes(of: source) else { throw refuse("argument is a \(object.typeName(of: source)), not bytes") }
            return try make(.bytes(bytes))
        case .storageClass, .dtype:
            throw refuse("a data pickle never calls it")
        }
    }

    /// NEWOBJ/NEWOBJ_EX: `cls.__new__(cls, *args)` for the allowed classes.
    private mutating func construct(_ type: PickleNodeID, _ argumentsID: PickleNodeID) throws -> PickleNodeID {
        guard let global = object.global(of: type) else { throw wrongType(expected: "a class global", found: type) }
        _ = try arguments(argumentsID)
        func refuse(_ reason: String) -> PickleError { .forbiddenCall(global.qualifiedName, reason: reason, at: here) }
        switch global {
        // __new__ of these makes an empty object; the pickler fills it with SETITEMS/ADDITEMS/BUILD.
        case .orderedDict: return try make(newDict(ordered: true))
        case .set: return try make(newSet([]))
        case .byteArray: return try make(.bytes([]))
        case .frozenSet, .torchSize: return try call(type, argumentsID)
        default:
            throw refuse("NEWOBJ needs a class, and this is not one a data pickle constructs")
        }
    }

    private mutating func makeSize(_ args: [PickleNodeID]) throws -> PickleNodeID {
        func refuse(_ reason: String) -> PickleError { .forbiddenCall(PickleGlobal.torchSize.qualifiedName, reason: reason, at: here) }
        guard args.count <= 1 else { throw refuse("takes 0 to 1 arguments, got \(args.count)") }
        guard let source = args.first else { return try make(.tuple([])) }
        guard let items = object.items(of: source) else { throw refuse("argument is a \(object.typeName(of: source)), not a sequence") }
        let copy = try copied(items)
        guard copy.allSatisfy({ object.integer(of: $0) != nil }) else {
            throw refuse("argument is not a sequence of ints: \(object.summary(of: source, maxLength: 60))")
        }
        return try make(.tuple(copy))
    }

    private mutating func makeTensor(storage storageID: PickleNodeID, offset offsetID: PickleNodeID, size sizeID: PickleNodeID,
                                     stride strideID: PickleNodeID, requiresGrad requiresGradID: PickleNodeID?) throws -> PickleNodeID {
        func invalid(_ reason: String) -> PickleError { .invalidTensor(reason, at: here) }
        guard let storage = object.storage(of: storageID) else {
            throw invalid("the storage argument is a \(typeName(storageID)), not a persistent storage")
        }
        guard let offset = object.integer(of: offsetID) else {
            throw invalid("storage offset \(object.summary(of: offsetID, maxLength: 40)) is not an int")
        }
        guard offset >= 0 else { throw invalid("negative storage offset \(offset)") }
        // Charged before the copies below: a memoized tuple can be named by a few bytes.
        for dimensions in [sizeID, strideID] {
            let rank = object.items(of: dimensions)?.count ?? 0
            guard rank <= limits.maxTensorRank else {
                throw PickleError.limitExceeded(limit: "tensor rank", value: limits.maxTensorRank, at: here)
            }
            try charge(rank)
        }
        guard let shape = object.integers(of: sizeID) else {
            throw invalid("size \(object.summary(of: sizeID, maxLength: 60)) is not a tuple of ints")
        }
        guard let stride = object.integers(of: strideID) else {
            throw invalid("stride \(object.summary(of: strideID, maxLength: 60)) is not a tuple of ints")
        }
        guard shape.count == stride.count else { throw invalid("size \(shape) and stride \(stride) differ in rank") }
        guard shape.allSatisfy({ $0 >= 0 }) else { throw invalid("negative size \(shape)") }
        guard stride.allSatisfy({ $0 >= 0 }) else { throw invalid("negative stride \(stride)") }
        var requiresGrad = false
        if let requiresGradID {
            guard let value = object.bool(of: requiresGradID) else {
                throw invalid("requires_grad is a \(object.typeName(of: requiresGradID)), not a bool")
            }
            requiresGrad = value
        }
        object.tensors.append(TorchTensorRecord(storage: storage, storageOffset: offset, shape: shape, stride: stride,
                                                requiresGrad: requiresGrad))
        return try make(.tensor(object.tensors.count - 1))
    }

    /// BUILD sets instance state. Python ignores empty state on anything; non-empty state is
    /// accepted (and dropped) only where torch writes it: an OrderedDict's `_metadata`, a tensor.
    private func build(_ target: PickleNodeID, state: PickleNodeID) throws {
        if isEmptyState(state) { return }
        if let parts = object.items(of: state), object.kind(of: state) == .tuple, parts.count == 2,
           isEmptyState(parts[0]), isEmptyState(parts[1]) {
            return
        }
        switch object.node(target) {
        case .dict(let index) where object.dicts[index].isOrdered: return
        case .tensor: return
        default: throw wrongType(expected: "an OrderedDict or a tensor to set state on", found: target)
        }
    }

    /// Python's falsiness, for the values a state can be.
    private func isEmptyState(_ id: PickleNodeID) -> Bool {
        switch object.node(id) {
        case .none: return true
        case .bool(let value): return !value
        case .int(let value): return value == 0
        case .string(let value): return value.isEmpty
        case .bytes(let value): return value.isEmpty
        case .dict(let index): return object.dicts[index].entries.isEmpty
        case .tuple, .list, .set, .frozenSet: return object.items(of: id)?.isEmpty ?? false
        default: return false
        }
    }

    private mutating func loadPersistent(_ id: PickleNodeID, _ persistentLoad: PersistentLoader) throws -> PickleNodeID {
        object.root = id
        let reference = try persistentLoad(object, id)
        object.storages.append(reference)
        return try make(.storage(object.storages.count - 1))
    }

    // MARK: Text helpers

    /// `codecs.escape_decode` of a STRING argument (without its quotes); nil on a bad `\x`.
    static func decodeEscapes(_ bytes: UnsafeRawBufferPointer) -> [UInt8]? {
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var index = 0
        func hexValue(_ byte: UInt8) -> UInt8? {
            switch byte {
            case 0x30...0x39: byte - 0x30
            case 0x41...0x46: byte - 0x41 + 10
            case 0x61...0x66: byte - 0x61 + 10
            default: nil
            }
        }
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            guard byte == UInt8(ascii: "\\"), index < bytes.count else {
                output.append(byte)
                continue
            }
            let escape = bytes[index]
            index += 1
            switch escape {
            case UInt8(ascii: "\n"): break
            case UInt8(ascii: "\\"), UInt8(ascii: "'"), UInt8(ascii: "\""): output.append(escape)
            case UInt8(ascii: "a"): output.append(0x07)
            case UInt8(ascii: "b"): output.append(0x08)
            case UInt8(ascii: "f"): output.append(0x0C)
            case UInt8(ascii: "n"): output.append(0x0A)
            case UInt8(ascii: "r"): output.append(0x0D)
            case UInt8(ascii: "t"): output.append(0x09)
            case UInt8(ascii: "v"): output.append(0x0B)
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                var value = Int(escape - 0x30)
                var digits = 1
                while digits < 3, index < bytes.count, (0x30...0x37).contains(bytes[index]) {
                    value = value * 8 + Int(bytes[index] - 0x30)
                    index += 1
                    digits += 1
                }
                output.append(UInt8(truncatingIfNeeded: value))
            case UInt8(ascii: "x"):
                guard index + 1 < bytes.count, let high = hexValue(bytes[index]), let low = hexValue(bytes[index + 1]) else { return nil }
                output.append(high << 4 | low)
                index += 2
            default:
                output.append(byte)
                output.append(escape)
            }
        }
        return output
    }

    /// `raw-unicode-escape` decoding of a UNICODE argument: bytes are Latin-1 except `\uXXXX`
    /// and `\UXXXXXXXX` (which Python 3's pickler also uses for backslashes and newlines).
    static func decodeRawUnicodeEscape(_ bytes: UnsafeRawBufferPointer) -> String {
        var scalars = String.UnicodeScalarView()
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\\"), index + 1 < bytes.count,
               bytes[index + 1] == UInt8(ascii: "u") || bytes[index + 1] == UInt8(ascii: "U") {
                let digits = bytes[index + 1] == UInt8(ascii: "u") ? 4 : 8
                let start = index + 2
                if start + digits <= bytes.count,
                   let value = UInt32(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<start + digits]), as: UTF8.self), radix: 16),
                   let scalar = Unicode.Scalar(value) {
                    scalars.append(scalar)
                    index = start + digits
                    continue
                }
            }
            scalars.append(Unicode.Scalar(byte))
            index += 1
        }
        return String(scalars)
    }
}

/// Text from a hostile file made safe for a one-line message: control characters escaped, long
/// text cut.
func displayable(_ text: String, maxLength: Int = 120) -> String {
    var output = ""
    for (position, scalar) in text.unicodeScalars.enumerated() {
        if position >= maxLength {
            output += "…"
            break
        }
        if scalar.value < 0x20 || scalar.value == 0x7F {
            output += "\\x" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
        } else {
            output.unicodeScalars.append(scalar)
        }
    }
    return output
}

extension String {
    fileprivate var trimmingSpaces: Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return self[first...last]
    }

    fileprivate var replacingUnderscores: String {
        String(map { $0 == "_" ? "-" : $0 })
    }
}
