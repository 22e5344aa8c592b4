@testable import BEATsCheckpoint
import BEATsCore
import Testing

/// One hand-written pickle per opcode family, checked value by value.
@Suite("Pickle opcodes")
struct PickleOpcodeTests {
    private func load(_ build: (inout PickleBuilder) -> Void, protocol version: UInt8? = 2) throws -> PickleObject {
        var builder = PickleBuilder(protocol: version)
        build(&builder)
        return try PickleMachine.load(builder.finished())
    }

    private func items(_ object: PickleObject) -> [PickleNodeID] { object.items(of: object.root) ?? [] }

    @Test("binary ints: BININT1, BININT2, BININT (signed), Python's choices")
    func binaryIntegers() throws {
        let object = try load { p in
            p.op(.mark)
            p.op(.binInt1); p.u8(255)
            p.op(.binInt2); p.u16(65535)
            p.op(.binInt); p.i32(-1)
            p.op(.binInt); p.i32(Int32.min)
            p.op(.binInt); p.i32(Int32.max)
            p.op(.list)
        }
        #expect(items(object).map { object.integer(of: $0) } == [255, 65535, -1, Int(Int32.min), Int(Int32.max)])
    }

    @Test("LONG1 is little-endian two's complement, sign-extended")
    func long1() throws {
        let cases: [([UInt8], Int)] = [
            ([], 0), ([0xFF], -1), ([0x80], -128), ([0x7F], 127), ([0x00, 0x80], -32768), ([0x00, 0x80, 0x00], 32768), ([0xFF, 0x7F], 32767),
            ([0x00, 0x80, 0xFF], -32768),
            ([0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80], Int.min),
            ([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F], Int.max),
            // Redundant sign bytes beyond 8 still fit an Int.
            ([0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], -2),
            ([0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 5),
        ]
        for (payload, value) in cases {
            let object = try load { p in p.op(.long1); p.u8(UInt8(payload.count)); p.raw(payload) }
            #expect(object.integer(of: object.root) == value, "LONG1 \(payload)")
            #expect(object.bigInteger(of: object.root) == PickleBigInt(value))
        }
    }

    @Test("LONG1/LONG4 beyond 64 bits are kept exactly (the legacy magic number)")
    func bigIntegers() throws {
        // 2^63: needs a ninth byte for the sign.
        let twoTo63 = try load { p in p.op(.long1); p.u8(9); p.raw([0, 0, 0, 0, 0, 0, 0, 0x80, 0]) }
        #expect(twoTo63.integer(of: twoTo63.root) == nil)
        #expect(twoTo63.kind(of: twoTo63.root) == .int)
        #expect(twoTo63.bigInteger(of: twoTo63.root)?.description == "9223372036854775808")
        // -(2^70) as LONG4.
        let negative = try load { p in p.op(.long4); p.i32(9); p.raw([0, 0, 0, 0, 0, 0, 0, 0, 0xC0]) }
        #expect(negative.bigInteger(of: negative.root)?.description == "-1180591620717411303424")
        #expect(negative.bigInteger(of: negative.root)?.isNegative == true)
        // torch's legacy magic number 0x1950a86a20f9469cfc6c.
        let magicBytes: [UInt8] = [0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]
        let magic = try load { p in p.op(.long1); p.u8(10); p.raw(magicBytes) }
        #expect(magic.bigInteger(of: magic.root) == PickleBigInt(littleEndianTwosComplement: magicBytes))
        #expect(magic.bigInteger(of: magic.root)?.description == "119547037146038801333356")
    }

    @Test("text INT and LONG (protocol 0), including bools and big values")
    func textIntegers() throws {
        let object = try load({ p in
            p.op(.mark)
            p.raw("I42\n"); p.raw("I-7\n"); p.raw("I01\n"); p.raw("I00\n")
            p.raw("L123L\n"); p.raw("L-18446744073709551621L\n")
            p.op(.list)
        }, protocol: nil)
        let values = items(object)
        #expect(object.integer(of: values[0]) == 42)
        #expect(object.integer(of: values[1]) == -7)
        #expect(object.bool(of: values[2]) == true)
        #expect(object.bool(of: values[3]) == false)
        #expect(object.integer(of: values[4]) == 123)
        #expect(object.bigInteger(of: values[5])?.description == "-18446744073709551621")
        #expect(PickleBigInt(decimal: "12x") == nil)
    }

    @Test("BINFLOAT is a big-endian double; FLOAT is text")
    func floats() throws {
        let object = try load { p in
            p.op(.mark)
            p.op(.binFloat); p.raw([0x3F, 0xF8, 0, 0, 0, 0, 0, 0])  // 1.5
            p.op(.binFloat); p.raw([0xBF, 0xB9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9A])  // -0.1
            p.raw("F0.25\n")
            p.op(.tuple)
        }
        #expect(items(object).map { object.double(of: $0) } == [1.5, -0.1, 0.25])
    }

    @Test("None, NEWTRUE, NEWFALSE")
    func constants() throws {
        let object = try load { p in p.op(.none); p.op(.newTrue); p.op(.newFalse); p.op(.tuple3) }
        let values = items(object)
        #expect(object.isNone(values[0]))
        #expect(object.bool(of: values[1]) == true)
        #expect(object.bool(of: values[2]) == false)
        #expect(object.integer(of: values[1]) == nil)
    }

    @Test("str opcodes: SHORT_BINUNICODE, BINUNICODE, BINUNICODE8, UNICODE, STRING, BINSTRING, SHORT_BINSTRING")
    func strings() throws {
        let object = try load { p in
            p.op(.mark)
            p.shortString("h\u{e9}llo")
            p.string("\u{2713} ok")
            p.op(.binUnicode8); p.u64(3); p.raw("abc")
            p.op(.unicode); p.raw([0x63, 0x61, 0x66, 0xE9]); p.raw("\\u2713\\u005c\\u000a\n")  // raw-unicode-escape
            p.raw("S'a\\nb\\x41\\'\\101'\n")
            p.op(.binString); p.i32(2); p.raw("py")
            p.op(.shortBinString); p.u8(1); p.raw("2")
            p.op(.list)
        }
        #expect(items(object).map { object.string(of: $0) } == ["h\u{e9}llo", "\u{2713} ok", "abc", "caf\u{e9}\u{2713}\\\n", "a\nbA'A", "py", "2"])
    }

    @Test("bytes opcodes: SHORT_BINBYTES, BINBYTES, BINBYTES8, BYTEARRAY8, _codecs.encode, bytearray()")
    func bytes() throws {
        let object = try load { p in
            p.op(.mark)
            p.op(.shortBinBytes); p.u8(2); p.raw([0x00, 0xFF])
            p.op(.binBytes); p.u32(1); p.raw([0x41])
            p.op(.binBytes8); p.u64(0)
            p.op(.byteArray8); p.u64(2); p.raw("xy")
            p.global("_codecs", "encode"); p.string("a\u{FF}"); p.string("latin1"); p.op(.tuple2); p.op(.reduce)
            p.global("__builtin__", "bytearray")
            p.global("_codecs", "encode"); p.string("z"); p.string("latin-1"); p.op(.tuple2); p.op(.reduce)
            p.op(.tuple1); p.op(.reduce)
            p.op(.list)
        }
        #expect(items(object).map { object.bytes(of: $0) } == [[0, 255], [0x41], [], [0x78, 0x79], [0x61, 0xFF], [0x7A]])
    }

    @Test("lists, tuples, dicts, sets: every constructor and mutator")
    func containers() throws {
        let object = try load { p in
            p.op(.emptyDict)
            p.op(.mark)
            p.string("list"); p.op(.emptyList); p.int(1); p.op(.append); p.op(.mark); p.int(2); p.int(3); p.op(.appends)
            p.string("tuples"); p.op(.mark)
            p.op(.emptyTuple); p.intTuple([1]); p.intTuple([1, 2]); p.intTuple([1, 2, 3]); p.intTuple([1, 2, 3, 4])
            p.op(.tuple)
            p.string("set"); p.op(.emptySet); p.op(.mark); p.int(4); p.int(5); p.op(.addItems)
            p.string("frozen"); p.op(.mark); p.int(6); p.op(.frozenSet)
            p.string("text_dict"); p.op(.mark); p.string("k"); p.int(7); p.op(.dict)
            p.string("text_list"); p.op(.mark); p.int(8); p.op(.list)
            p.string("builtin_set"); p.global("builtins", "set"); p.op(.mark); p.int(9); p.op(.list); p.op(.tuple1); p.op(.reduce)
            p.op(.setItems)
            p.string("single"); p.int(10); p.op(.setItem)
        }
        let root = object.root
        #expect(object.kind(of: root) == .dict)
        #expect(object.isOrderedDict(root) == false)
        #expect(object.dictEntries(of: root)?.compactMap { object.string(of: $0.key) } ==
                ["list", "tuples", "set", "frozen", "text_dict", "text_list", "builtin_set", "single"])
        func value(_ key: String) throws -> PickleNodeID { try #require(object.value(forKey: key, in: root)) }
        #expect(object.integers(of: try value("list")) == [1, 2, 3])
        let tuples = try #require(object.items(of: try value("tuples")))
        #expect(tuples.map { object.integers(of: $0) } == [[], [1], [1, 2], [1, 2, 3], [1, 2, 3, 4]])
        #expect(object.kind(of: try value("set")) == .set)
        #expect(object.items(of: try value("set"))?.map { object.integer(of: $0) } == [4, 5])
        #expect(object.kind(of: try value("frozen")) == .frozenSet)
        #expect(object.items(of: try value("frozen"))?.map { object.integer(of: $0) } == [6])
        #expect(object.value(forKey: "k", in: try value("text_dict")).flatMap { object.integer(of: $0) } == 7)
        #expect(object.integers(of: try value("text_list")) == [8])
        #expect(object.kind(of: try value("builtin_set")) == .set)
        #expect(object.items(of: try value("builtin_set"))?.map { object.integer(of: $0) } == [9])
        #expect(object.integer(of: try value("single")) == 10)
    }

    @Test("memo: BINPUT/BINGET, LONG_BINPUT/LONG_BINGET, PUT/GET and MEMOIZE share one node")
    func memoSharing() throws {
        let object = try load { p in
            p.op(.mark)
            p.op(.emptyList); p.put(0)
            p.get(0)
            p.op(.emptyDict); p.op(.longBinPut); p.u32(70000)
            p.op(.longBinGet); p.u32(70000)
            p.op(.emptyTuple); p.raw("p5\n")
            p.raw("g5\n")
            p.op(.emptySet); p.op(.memoize)  // the memo holds keys 0, 70000 and 5, so MEMOIZE uses 3
            p.op(.binGet); p.u8(3)
            p.op(.list)
        }
        let values = items(object)
        #expect(values.count == 8)
        #expect(values[0] == values[1])
        #expect(values[2] == values[3])
        #expect(values[4] == values[5])
        #expect(values[6] == values[7])
        #expect(Set(values).count == 4)
        // Mutating the shared list after it was memoized is seen through every reference.
        let appended = try load { p in
            p.op(.emptyList); p.put(0)
            p.get(0); p.op(.append)  // the list contains itself
        }
        #expect(appended.items(of: appended.root) == [appended.root])
        #expect(appended.reachableNodeCount(from: appended.root) == 1)
        #expect(appended.summary(of: appended.root, maxLength: 12) == "[[[[[[[[[[[[…")
    }

    @Test("FRAME is accepted when the frame exists, and PROTO 4/5 opcodes load")
    func frames() throws {
        var inner = PickleBuilder(protocol: nil)
        inner.shortString("torch"); inner.op(.memoize)
        inner.shortString("Size"); inner.op(.memoize)
        inner.op(.stackGlobal); inner.op(.memoize)
        inner.intTuple([2, 3]); inner.op(.tuple1); inner.op(.reduce)
        inner.op(.stop)
        var outer = PickleBuilder(protocol: 4)
        outer.op(.frame); outer.u64(UInt64(inner.bytes.count))
        outer.raw(inner.bytes)
        let object = try PickleMachine.load(outer.bytes)
        #expect(object.kind(of: object.root) == .tuple)
        #expect(object.integers(of: object.root) == [2, 3])
        #expect(object.endOffset == outer.bytes.count)

        var tooLong = PickleBuilder(protocol: 4)
        tooLong.op(.frame); tooLong.u64(UInt64(inner.bytes.count + 1))
        tooLong.raw(inner.bytes)
        #expect(throws: PickleError.truncated(opcode: "FRAME", at: PickleLocation(offset: 2))) {
            try PickleMachine.load(tooLong.bytes)
        }
    }

    @Test("STACK_GLOBAL + REDUCE makes an OrderedDict; BUILD with _metadata is accepted")
    func orderedDictWithMetadata() throws {
        let object = try load({ p in
            p.shortString("collections"); p.shortString("OrderedDict"); p.op(.stackGlobal)
            p.op(.emptyTuple); p.op(.reduce)
            p.shortString("a"); p.int(1); p.op(.setItem)
            // state = {'_metadata': OrderedDict({'': {'version': 1}})}, as torch's state_dict has.
            p.op(.emptyDict); p.shortString("_metadata")
            p.global("collections", "OrderedDict"); p.op(.emptyTuple); p.op(.reduce)
            p.shortString(""); p.op(.emptyDict); p.shortString("version"); p.int(1); p.op(.setItem); p.op(.setItem)
            p.op(.setItem)
            p.op(.build)
        }, protocol: 4)
        #expect(object.isOrderedDict(object.root))
        #expect(object.typeName(of: object.root) == "OrderedDict")
        #expect(object.dictEntries(of: object.root)?.count == 1)
        #expect(object.value(forKey: "a", in: object.root).flatMap { object.integer(of: $0) } == 1)
    }

    @Test("OrderedDict from a list of pairs")
    func orderedDictFromPairs() throws {
        let object = try load { p in
            p.global("collections", "OrderedDict")
            p.op(.mark); p.op(.mark); p.string("x"); p.int(1); p.op(.list); p.op(.list); p.op(.tuple1); p.op(.reduce)
        }
        #expect(object.value(forKey: "x", in: object.root).flatMap { object.integer(of: $0) } == 1)
    }

    @Test("NEWOBJ and NEWOBJ_EX on allowed classes; empty BUILD state on anything")
    func newObj() throws {
        let object = try load({ p in
            p.op(.mark)
            p.global("collections", "OrderedDict"); p.op(.emptyTuple); p.op(.newObj)
            p.global("torch", "Size"); p.intTuple([4]); p.op(.tuple1); p.op(.emptyDict); p.op(.newObjEx)
            p.op(.emptyList); p.op(.none); p.op(.build)
            p.op(.emptyList); p.op(.emptyDict); p.op(.build)
            p.op(.list)
        }, protocol: 4)
        let values = items(object)
        #expect(object.isOrderedDict(values[0]))
        #expect(object.integers(of: values[1]) == [4])
        #expect(object.kind(of: values[2]) == .list)
        #expect(object.kind(of: values[3]) == .list)
    }

    @Test("POP, POP_MARK and DUP")
    func stackOpcodes() throws {
        let object = try load { p in
            p.op(.mark)
            p.int(1); p.int(2); p.op(.pop)
            p.op(.mark); p.int(3); p.int(4); p.op(.popMark)
            p.op(.dup)
            p.op(.mark); p.op(.pop)  // POP on an empty frame removes the MARK, as Python does
            p.op(.list)
        }
        #expect(items(object).map { object.integer(of: $0) } == [1, 1])
        #expect(items(object)[0] == items(object)[1])
    }

    @Test("dtype and torch.Size globals are data")
    func torchGlobals() throws {
        let object = try load { p in
            p.op(.mark)
            p.global("torch", "float16")
            p.global("torch", "bfloat16")
            p.global("torch", "Size"); p.op(.mark); p.int(2); p.int(3); p.op(.list); p.op(.tuple1); p.op(.reduce)
            p.op(.list)
        }
        let values = items(object)
        #expect(object.global(of: values[0]) == .dtype(.float16))
        #expect(object.global(of: values[1]) == .dtype(.bfloat16))
        #expect(object.kind(of: values[2]) == .tuple)
        #expect(object.integers(of: values[2]) == [2, 3])
    }

    @Test("BINPERSID + _rebuild_tensor_v2 make a tensor record; _rebuild_parameter marks it a parameter")
    func tensorRecords() throws {
        let object = try load { p in
            p.op(.emptyDict)
            p.op(.mark)
            p.string("w"); p.tensor(key: "7", storageClass: "HalfStorage", count: 20, offset: 2, shape: [3, 4], stride: [1, 5])
            p.string("p")
            p.global("torch._utils", "_rebuild_parameter")
            p.tensor(key: "8", count: 1, shape: [], stride: [])
            p.op(.newTrue); p.global("collections", "OrderedDict"); p.op(.emptyTuple); p.op(.reduce)
            p.op(.tuple3); p.op(.reduce)
            p.string("legacy")
            p.global("torch._utils", "_rebuild_tensor")
            p.op(.mark); p.storage(key: "9", storageClass: "LongStorage", location: "cuda:0", count: 0)
            p.int(0); p.intTuple([0, 3]); p.intTuple([3, 1]); p.op(.tuple); p.op(.reduce)
            p.op(.setItems)
        }
        let entries = try object.tensorEntries(in: object.root)
        #expect(entries.map(\.name) == ["w", "p", "legacy"])
        #expect(entries[0].tensor == TorchTensorRecord(
            storage: TorchStorageReference(key: "7", dtype: .float16, location: "cpu", elementCount: 20),
            storageOffset: 2, shape: [3, 4], stride: [1, 5]))
        #expect(entries[1].tensor.shape == [])
        #expect(entries[1].tensor.isParameter)
        #expect(entries[1].tensor.requiresGrad)
        #expect(entries[2].tensor.storage == TorchStorageReference(key: "9", dtype: .int64, location: "cuda:0", elementCount: 0))
        #expect(entries[2].tensor.shape == [0, 3])
    }

    @Test("the persistent loader sees the id tuple, and its errors propagate unchanged")
    func persistentLoader() throws {
        struct MissingRecord: Error, Equatable { let key: String }
        var builder = PickleBuilder()
        builder.storage(key: "42", count: 3)
        let bytes = builder.finished()
        var seen: [String] = []
        let object = try PickleMachine.load(bytes) { object, id in
            let reference = try TorchStorageReference(persistentID: id, in: object)
            seen.append(reference.key)
            return reference
        }
        #expect(seen == ["42"])
        #expect(object.storage(of: object.root) == TorchStorageReference(key: "42", dtype: .float32, location: "cpu", elementCount: 3))
        #expect(throws: MissingRecord(key: "42")) {
            try PickleMachine.load(bytes) { object, id in
                throw MissingRecord(key: try TorchStorageReference(persistentID: id, in: object).key)
            }
        }
    }

    @Test("legacy persistent ids carry view metadata; PERSID text ids reach the loader")
    func legacyPersistentIDs() throws {
        var builder = PickleBuilder()
        builder.op(.mark)
        builder.string("storage"); builder.global("torch", "FloatStorage"); builder.string("140"); builder.string("cpu"); builder.int(10)
        builder.op(.mark); builder.string("141"); builder.int(2); builder.int(4); builder.op(.tuple)
        builder.op(.tuple)
        builder.op(.binPersID)
        let object = try PickleMachine.load(builder.finished())
        #expect(object.storage(of: object.root)?.legacyView ==
                TorchStorageReference.LegacyStorageView(viewKey: "141", elementOffset: 2, elementCount: 4))

        var text = PickleBuilder()
        text.raw("Pxyz\n")
        #expect(throws: PickleError.invalidPersistentID("expected a tuple, found str", at: PickleLocation(offset: 2))) {
            try PickleMachine.load(text.finished())
        }
    }

    @Test("bytes after STOP are not read; endOffset says where the pickle ended")
    func afterStop() throws {
        var builder = PickleBuilder()
        builder.int(5)
        builder.stop()
        builder.raw([0xFF, 0xFF, PickleOpcode.reduce.rawValue])
        let object = try PickleMachine.load(builder.bytes, fileOffset: 1000)
        #expect(object.integer(of: object.root) == 5)
        #expect(object.startOffset == 1000)
        #expect(object.endOffset == 1005)
        #expect(object.byteCount == 5)
    }

    @Test("every opcode name matches pickletools")
    func opcodeNames() {
        #expect(PickleOpcode.allCases.count == 68)
        #expect(PickleOpcode(rawValue: 0x58)?.name == "BINUNICODE")
        #expect(PickleOpcode(rawValue: 0x95)?.name == "FRAME")
        #expect(PickleOpcode(rawValue: 0x93)?.name == "STACK_GLOBAL")
        #expect(Set(PickleOpcode.allCases.map(\.name)).count == 68)
    }

    @Test("summary renders Python-like text")
    func summaryText() throws {
        let object = try load { p in
            p.op(.emptyDict); p.op(.mark)
            p.string("a"); p.intTuple([1])
            p.string("b"); p.op(.none)
            p.string("c"); p.op(.mark); p.op(.newTrue); p.op(.binFloat); p.raw([0x3F, 0xF8, 0, 0, 0, 0, 0, 0]); p.op(.list)
            p.op(.setItems)
        }
        #expect(object.summary(of: object.root) == "{'a': (1,), 'b': None, 'c': [True, 1.5]}")
        #expect(object.summary(of: object.root, maxLength: 10) == "{'a': (1,)…")
    }
}
