@testable import BEATsCheckpoint
import BEATsCore
import Testing

/// Every PickleLimits bound, just under and just over, and the structures they exist for.
@Suite("Pickle limits")
struct PickleLimitTests {
    private func load(_ bytes: [UInt8], _ limits: PickleLimits = PickleLimits()) throws -> PickleObject {
        try PickleMachine.load(bytes, limits: limits)
    }

    private func error(_ bytes: [UInt8], _ limits: PickleLimits = PickleLimits()) -> PickleError? {
        pickleError { _ = try load(bytes, limits) }
    }

    /// `count` EMPTY_LISTs, each appended into the one below: nested lists built on the stack.
    private func stackedLists(_ count: Int) -> [UInt8] {
        var builder = PickleBuilder()
        for _ in 0..<count { builder.op(.emptyList) }
        for _ in 0..<(count - 1) { builder.op(.append) }
        return builder.finished()
    }

    /// `count` MARKs around one None, closed by TUPLEs.
    private func nestedMarks(_ count: Int) -> [UInt8] {
        var builder = PickleBuilder()
        for _ in 0..<count { builder.op(.mark) }
        builder.op(.none)
        for _ in 0..<count { builder.op(.tuple) }
        return builder.finished()
    }

    @Test("stack depth counts values and marks: at the limit loads, one more fails")
    func stackDepth() throws {
        let limits = PickleLimits(maxStackDepth: 8)
        let lists = try load(stackedLists(8), limits)
        #expect(lists.reachableNodeCount(from: lists.root) == 8)
        #expect(error(stackedLists(9), limits) == .limitExceeded(limit: "stack depth", value: 8, at: PickleLocation(offset: 10)))
        _ = try load(nestedMarks(7), limits)
        #expect(error(nestedMarks(8), limits) == .limitExceeded(limit: "stack depth", value: 8, at: PickleLocation(offset: 10)))
        // At the default limit.
        _ = try load(stackedLists(100_000))
        #expect(error(stackedLists(100_001)) == .limitExceeded(limit: "stack depth", value: 100_000, at: PickleLocation(offset: 100_002)))
    }

    @Test("200 000 nested lists on the stack stop at the depth limit")
    func deepNestingOnStack() {
        let refused = error(stackedLists(200_000))
        #expect(refused == .limitExceeded(limit: "stack depth", value: 100_000, at: PickleLocation(offset: 100_002)))
        #expect(refused?.description == "pickle: stack depth limit (100000) exceeded at offset 100002")
        #expect(error(nestedMarks(200_000)) == .limitExceeded(limit: "stack depth", value: 100_000, at: PickleLocation(offset: 100_002)))
    }

    @Test("200 000 nested lists built through the memo load, walk and free without recursion")
    func deepNestingThroughMemo() throws {
        // The stack never holds more than two values: each new list is memoized, appended to the
        // current one, and fetched back as the next current one.
        var builder = PickleBuilder()
        builder.op(.emptyList); builder.put(0)
        for _ in 0..<200_000 {
            builder.op(.emptyList); builder.put(1); builder.op(.append); builder.op(.pop); builder.get(1)
        }
        builder.op(.pop); builder.get(0)
        let object = try load(builder.finished())
        #expect(object.nodeCount == 200_001)
        #expect(object.reachableNodeCount(from: object.root) == 200_001)
        #expect(object.summary(of: object.root, maxLength: 8) == "[[[[[[[[…")
    }

    @Test("200 000 nested dicts: loading is fine, the tensor walk stops at the nesting limit")
    func deepDicts() throws {
        func nestedDicts(_ depth: Int) -> [UInt8] {
            var builder = PickleBuilder()
            builder.string("a"); builder.put(2); builder.op(.pop)
            builder.op(.emptyDict); builder.put(0)
            for _ in 1..<depth {
                builder.get(2); builder.op(.emptyDict); builder.put(1); builder.op(.setItem); builder.op(.pop); builder.get(1)
            }
            builder.string("t"); builder.tensor(key: "0", count: 1, shape: [1], stride: [1]); builder.op(.setItem)
            builder.op(.pop); builder.get(0)
            return builder.finished()
        }
        // Where EMPTY_DICT of the dict at `depth` (the root is 1) is: 14 bytes of preamble, 9 per level.
        func dictOffset(depth: Int) -> Int { 14 + 9 * (depth - 2) + 2 }
        let deep = try load(nestedDicts(200_000))
        #expect(pickleError { _ = try deep.tensorEntries(in: deep.root) } ==
                .limitExceeded(limit: "dict nesting depth", value: 256, at: PickleLocation(offset: dictOffset(depth: 257))))

        let limits = PickleLimits(maxNestingDepth: 4)
        let atLimit = try load(nestedDicts(4), limits)
        #expect(try atLimit.tensorEntries(in: atLimit.root).map(\.name) == ["a.a.a.t"])
        let overLimit = try load(nestedDicts(5), limits)
        #expect(pickleError { _ = try overLimit.tensorEntries(in: overLimit.root) } ==
                .limitExceeded(limit: "dict nesting depth", value: 4, at: PickleLocation(offset: dictOffset(depth: 5))))
    }

    @Test("a memo bomb of 100 levels of [x, x] stays linear to load and to walk")
    func memoBomb() throws {
        var builder = PickleBuilder()
        builder.op(.emptyList); builder.put(0)
        for level in 1...100 {
            builder.op(.pop)
            builder.op(.mark); builder.get(UInt8(level - 1)); builder.get(UInt8(level - 1)); builder.op(.list); builder.put(UInt8(level))
        }
        let bytes = builder.finished()
        #expect(bytes.count == 2 + 3 + 100 * 9 + 1)
        let object = try load(bytes)
        // 2^100 lists if expanded; 101 nodes shared.
        #expect(object.nodeCount == 101)
        #expect(object.reachableNodeCount(from: object.root) == 101)
        let top = try #require(object.items(of: object.root))
        #expect(top.count == 2 && top[0] == top[1])
        #expect(object.summary(of: object.root, maxLength: 30).count == 31)
    }

    @Test("a memo bomb of dicts with a tensor at the bottom lists the tensor once")
    func dictBomb() throws {
        var builder = PickleBuilder()
        builder.op(.emptyDict); builder.string("t"); builder.tensor(key: "0", count: 1, shape: [], stride: []); builder.op(.setItem)
        builder.put(0)
        for level in 1...100 {
            builder.op(.pop)
            builder.op(.emptyDict); builder.op(.mark)
            builder.shortString("a"); builder.get(UInt8(level - 1)); builder.shortString("b"); builder.get(UInt8(level - 1))
            builder.op(.setItems); builder.put(UInt8(level))
        }
        let object = try load(builder.finished())
        let entries = try object.tensorEntries(in: object.root)
        #expect(entries.count == 1)
        #expect(entries.first?.name == Array(repeating: "a", count: 100).joined(separator: ".") + ".t")
    }

    @Test("memo entries: at the limit loads, a new key over it fails, overwriting is free")
    func memoEntries() throws {
        let limits = PickleLimits(maxMemoEntries: 4)
        func memoized(_ keys: [UInt8]) -> [UInt8] {
            var builder = PickleBuilder()
            builder.op(.none)
            keys.forEach { builder.put($0) }
            return builder.finished()
        }
        _ = try load(memoized([0, 1, 2, 3]), limits)
        _ = try load(memoized([0, 1, 2, 3, 3, 0]), limits)
        #expect(error(memoized([0, 1, 2, 3, 4]), limits) == .limitExceeded(limit: "memo size", value: 4, at: PickleLocation(offset: 11)))
    }

    @Test("value count: at the limit loads, one more fails")
    func nodeCount() throws {
        let limits = PickleLimits(maxNodes: 10)
        func list(_ items: Int) -> [UInt8] {
            var builder = PickleBuilder()
            builder.op(.emptyList)
            builder.op(.mark)
            for value in 0..<items { builder.int(value) }
            builder.op(.appends)
            return builder.finished()
        }
        let object = try load(list(9), limits)
        #expect(object.nodeCount == 10)
        #expect(error(list(10), limits) == .limitExceeded(limit: "value count", value: 10, at: PickleLocation(offset: 4 + 9 * 2)))
    }

    @Test("integer size: LONG1/LONG4 and text LONG at the limit load, one byte more fails")
    func integerBytes() throws {
        let limits = PickleLimits(maxIntegerBytes: 16)
        func long1(_ count: Int) -> [UInt8] {
            [0x80, 2, 0x8A, UInt8(count)] + [UInt8](repeating: 0x11, count: count) + [0x2E]
        }
        let object = try load(long1(16), limits)
        #expect(object.bigInteger(of: object.root)?.littleEndianBytes.count == 16)
        #expect(error(long1(17), limits) == .limitExceeded(limit: "integer size", value: 16, at: PickleLocation(offset: 2)))
        #expect(error([0x80, 2, 0x8B, 17, 0, 0, 0] + [UInt8](repeating: 0x11, count: 17) + [0x2E], limits) ==
                .limitExceeded(limit: "integer size", value: 16, at: PickleLocation(offset: 2)))
        // 2^127 - 1 takes 16 bytes; 2^127 takes 17 (sign byte).
        _ = try load([0x80, 2] + Array("L170141183460469231731687303715884105727L\n.".utf8), limits)
        #expect(error([0x80, 2] + Array("L170141183460469231731687303715884105728L\n.".utf8), limits) ==
                .limitExceeded(limit: "integer size", value: 16, at: PickleLocation(offset: 2)))
    }

    @Test("tensor name length and total name bytes: at the limit works, one more fails")
    func nameLimits() throws {
        var builder = PickleBuilder()
        builder.op(.emptyDict)
        builder.string("ab"); builder.op(.emptyDict)
        builder.string("cd"); builder.tensor(key: "0", count: 1, shape: [1], stride: [1]); builder.op(.setItem)
        builder.op(.setItem)
        let bytes = builder.finished()
        let names = try load(bytes, PickleLimits(maxNameLength: 5))
        #expect(try names.tensorEntries(in: names.root).map(\.name) == ["ab.cd"])
        let short = try load(bytes, PickleLimits(maxNameLength: 4))
        #expect(pickleError { _ = try short.tensorEntries(in: short.root) } ==
                .limitExceeded(limit: "tensor name length", value: 4, at: PickleLocation(offset: 11)))

        // Names counted: "ab" (the dict's path) and "ab.cd".
        let total = try load(bytes, PickleLimits(maxTotalNameBytes: 7))
        #expect(try total.tensorEntries(in: total.root).count == 1)
        let tooMany = try load(bytes, PickleLimits(maxTotalNameBytes: 6))
        #expect(pickleError { _ = try tooMany.tensorEntries(in: tooMany.root) } ==
                .limitExceeded(limit: "total tensor name bytes", value: 6, at: PickleLocation(offset: 11)))
    }

    @Test("a repeated tensor name and a non-str key on the way to a tensor are named")
    func tensorWalkErrors() throws {
        var repeated = PickleBuilder()
        repeated.op(.emptyDict); repeated.op(.mark)
        repeated.string("w"); repeated.tensor(key: "0", count: 1, shape: [], stride: [])
        repeated.string("w"); repeated.tensor(key: "1", count: 1, shape: [], stride: [])
        repeated.op(.setItems)
        let object = try load(repeated.finished())
        #expect(pickleError { _ = try object.tensorEntries(in: object.root) }?.description.hasPrefix(
            "pickle: tensor name 'w' appears twice at offset") == true)

        var tupleKey = PickleBuilder()
        tupleKey.op(.emptyDict); tupleKey.intTuple([1, 2]); tupleKey.tensor(key: "0", count: 1, shape: [], stride: []); tupleKey.op(.setItem)
        let keyed = try load(tupleKey.finished())
        #expect(pickleError { _ = try keyed.tensorEntries(in: keyed.root) } ==
                .unexpectedData("a key on the way to a tensor is a tuple, not a str", at: PickleLocation(offset: 7)))
        #expect(pickleError { _ = try keyed.tensorEntries(in: try #require(keyed.dictEntries(of: keyed.root)?.first?.value)) } ==
                .unexpectedData("expected a dict of tensors, found tensor", at: PickleLocation(offset: 126)))
    }

    /// A list of `items` ints (memo 1) and `torch.Size` (memo 0), then `copies` × torch.Size(list).
    private func sizeCopies(items: Int, copies: Int) -> [UInt8] {
        var builder = PickleBuilder()
        builder.global("torch", "Size"); builder.put(0); builder.op(.pop)
        builder.op(.emptyList); builder.put(1)
        for start in stride(from: 0, to: items, by: 1000) {
            builder.op(.mark)
            for _ in start..<min(start + 1000, items) { builder.op(.binInt1); builder.u8(1) }
            builder.op(.appends)
        }
        for _ in 0..<copies {
            builder.get(0); builder.get(1); builder.op(.tuple1); builder.op(.reduce); builder.op(.pop)
        }
        return builder.finished()
    }

    @Test("copy budget: a memoized container copied again and again stops at the budget")
    func copyBudget() throws {
        // With no per-byte allowance the budget is exactly 1 Mi elements: 1024 copies of 1024 items.
        let limits = PickleLimits(maxCopiesPerInputByte: 0)
        _ = try load(sizeCopies(items: 1024, copies: 1024), limits)
        let over = sizeCopies(items: 1024, copies: 1025)
        #expect(error(over, limits) == .limitExceeded(limit: "copy budget", value: 0, at: PickleLocation(offset: over.count - 3)))
        // With the defaults, 10 000 copies of a 100 000-item list (10^9 elements from 300 KB) stop early.
        let bomb = sizeCopies(items: 100_000, copies: 10_000)
        guard case .limitExceeded(let limit, let value, _)? = error(bomb) else {
            Issue.record("the copy bomb loaded")
            return
        }
        #expect(limit == "copy budget" && value == 16)
    }

    @Test("tensor rank: at the limit loads, one more fails")
    func tensorRank() throws {
        func tensor(rank: Int) -> [UInt8] {
            var builder = PickleBuilder()
            builder.tensor(key: "0", count: 1, shape: Array(repeating: 1, count: rank), stride: Array(repeating: 1, count: rank))
            return builder.finished()
        }
        let limits = PickleLimits(maxTensorRank: 4)
        let object = try load(tensor(rank: 4), limits)
        #expect(object.tensor(of: object.root)?.shape == [1, 1, 1, 1])
        let over = tensor(rank: 5)
        #expect(error(over, limits) == .limitExceeded(limit: "tensor rank", value: 4, at: PickleLocation(offset: over.count - 2)))
    }

    @Test("storage keys and locations: 256 bytes load, 257 are refused")
    func storageKeyLength() throws {
        func storage(key: String) -> [UInt8] {
            var builder = PickleBuilder()
            builder.storage(key: key, count: 1)
            return builder.finished()
        }
        let object = try load(storage(key: String(repeating: "7", count: 256)))
        #expect(object.storage(of: object.root)?.key.count == 256)
        #expect(error(storage(key: String(repeating: "7", count: 257))) ==
                .invalidPersistentID("storage key or location longer than 256 bytes", at: PickleLocation(offset: 307)))
    }

    @Test("config keys hashed in total: at the limit works, one byte more fails")
    func configKeyBytes() throws {
        func config(_ keys: [String]) throws -> PickleObject {
            var builder = PickleBuilder()
            builder.op(.emptyDict); builder.op(.mark)
            for key in keys { builder.string(key); builder.int(1) }
            builder.op(.setItems)
            return try load(builder.finished(), PickleLimits(maxTotalNameBytes: 6))
        }
        let fits = try config(["abc", "def"])
        #expect(try fits.configScalars(in: fits.root) == ["abc": .int(1), "def": .int(1)])
        let over = try config(["abc", "defg"])
        #expect(pickleError { _ = try over.configScalars(in: over.root) } ==
                .limitExceeded(limit: "total config key bytes", value: 6, at: PickleLocation(offset: 14)))
    }

    @Test("defaults are documented values")
    func defaults() {
        let limits = PickleLimits()
        #expect(limits.maxStackDepth == 100_000)
        #expect(limits.maxMemoEntries == 1_000_000)
        #expect(limits.maxNodes == 4_000_000)
        #expect(limits.maxIntegerBytes == 1024)
        #expect(limits.maxNestingDepth == 256)
        #expect(limits.maxNameLength == 4096)
        #expect(limits.maxTotalNameBytes == 64 << 20)
        #expect(limits.maxCopiesPerInputByte == 16)
        #expect(limits.maxTensorRank == 64)
    }
}
