@testable import BEATsCheckpoint
import BEATsCore
import BEATsTestSupport
import Testing

/// Malformed and malicious pickles: each ends in one typed error that names what and where.
@Suite("Pickle hostile input")
struct PickleHostileTests {
    private func error(_ bytes: [UInt8], fileOffset: Int = 0, limits: PickleLimits = PickleLimits()) -> PickleError? {
        pickleError { _ = try PickleMachine.load(bytes, fileOffset: fileOffset, context: "data.pkl", limits: limits) }
    }

    private func at(_ offset: Int) -> PickleLocation { PickleLocation(offset: offset, context: "data.pkl") }

    @Test("unknown globals are refused at GLOBAL, before anything calls them",
          arguments: [("posix", "system"), ("builtins", "eval"), ("subprocess", "Popen"), ("os", "system"),
                      ("nt", "system"), ("__builtin__", "getattr"), ("torch", "load"), ("torch._utils", "_rebuild_qtensor"),
                      ("collections", "defaultdict"), ("torch", "UntypedStorage")])
    func forbiddenGlobal(module: String, name: String) {
        var builder = PickleBuilder()
        builder.global(module, name)
        builder.string("touch /tmp/pwned")
        builder.op(.tuple1)
        builder.op(.reduce)
        let refused = error(builder.finished(), fileOffset: 1000)
        #expect(refused == .forbiddenGlobal("\(module).\(name)", at: at(1002)))
        #expect(refused?.description == "pickle: forbidden global '\(module).\(name)' at offset 1002 (data.pkl)")
    }

    @Test("STACK_GLOBAL is held to the same allowlist")
    func forbiddenStackGlobal() {
        var builder = PickleBuilder(protocol: 4)
        builder.shortString("posix"); builder.op(.memoize)
        builder.shortString("system"); builder.op(.memoize)
        builder.op(.stackGlobal)
        #expect(error(builder.finished()) == .forbiddenGlobal("posix.system", at: at(19)))
        var notText = PickleBuilder(protocol: 4)
        notText.shortString("posix"); notText.int(3); notText.op(.stackGlobal)
        #expect(error(notText.finished()) == .wrongType(opcode: "STACK_GLOBAL", expected: "a str global name", found: "int", at: at(11)))
    }

    @Test("a forbidden name with control characters is shown escaped")
    func escapedGlobalName() {
        var builder = PickleBuilder()
        builder.op(.global)
        builder.raw("os\u{1B}[2J\nsystem\n")
        #expect(error(builder.finished())?.description == "pickle: forbidden global 'os\\x1b[2J.system' at offset 2 (data.pkl)")
    }

    @Test("evil.pt: the pickle calling posix.system is refused and names it")
    func evilCheckpoint() throws {
        let (file, offset) = try PickleFixtures.torchZipPickle("parser/evil.pt")
        let refused = pickleError {
            _ = try file.withUnsafeBytes { buffer in
                try PickleMachine.load(UnsafeRawBufferPointer(rebasing: buffer[offset...]), fileOffset: offset, context: "evil/data.pkl")
            }
        }
        // pickletools shows `c GLOBAL 'posix system'` at 8258 in the record, which starts at 64.
        #expect(refused == .forbiddenGlobal("posix.system", at: PickleLocation(offset: 64 + 8258, context: "evil/data.pkl")))
        #expect(refused?.description == "pickle: forbidden global 'posix.system' at offset 8322 (evil/data.pkl)")
    }

    @Test("REDUCE refuses what is not an allowed callable, and allowed markers that data never calls")
    func forbiddenCalls() {
        var onString = PickleBuilder()
        onString.string("eval"); onString.op(.emptyTuple); onString.op(.reduce)
        #expect(error(onString.finished()) == .wrongType(opcode: "REDUCE", expected: "a callable global", found: "str", at: at(12)))

        var onStorage = PickleBuilder()
        onStorage.global("torch", "FloatStorage"); onStorage.op(.emptyTuple); onStorage.op(.reduce)
        #expect(error(onStorage.finished()) ==
                .forbiddenCall("torch.FloatStorage", reason: "a data pickle never calls it", at: at(23)))

        var onDType = PickleBuilder()
        onDType.global("torch", "float32"); onDType.op(.emptyTuple); onDType.op(.reduce)
        #expect(error(onDType.finished()) == .forbiddenCall("torch.float32", reason: "a data pickle never calls it", at: at(18)))

        var badArity = PickleBuilder()
        badArity.global("torch._utils", "_rebuild_tensor_v2"); badArity.op(.emptyTuple); badArity.op(.reduce)
        #expect(error(badArity.finished()) ==
                .forbiddenCall("torch._utils._rebuild_tensor_v2", reason: "takes 6 to 7 arguments, got 0", at: at(36)))

        var newObjOnFunction = PickleBuilder()
        newObjOnFunction.global("torch._utils", "_rebuild_parameter"); newObjOnFunction.op(.emptyTuple); newObjOnFunction.op(.newObj)
        #expect(error(newObjOnFunction.finished())?.description.hasPrefix("pickle: refusing to call 'torch._utils._rebuild_parameter'") == true)

        var encoding = PickleBuilder()
        encoding.global("_codecs", "encode"); encoding.string("x"); encoding.string("rot13"); encoding.op(.tuple2); encoding.op(.reduce)
        #expect(error(encoding.finished()) ==
                .forbiddenCall("_codecs.encode", reason: "encoding 'rot13' is not latin-1 or utf-8", at: at(35)))
    }

    @Test("refused opcodes: INST, OBJ, EXT1/2/4, NEXT_BUFFER", arguments: [
        (PickleOpcode.inst, "INST"), (.obj, "OBJ"), (.ext1, "EXT1"), (.ext2, "EXT2"), (.ext4, "EXT4"), (.nextBuffer, "NEXT_BUFFER"),
    ])
    func unsupportedOpcodes(opcode: PickleOpcode, name: String) {
        #expect(error([0x80, 2, opcode.rawValue, 0, 0, 0, 0, 0x2E]) == .unsupportedOpcode(name, at: at(2)))
    }

    @Test("an unknown opcode is named with its file offset")
    func unknownOpcode() {
        let refused = error([0x80, 2, 0x4B, 1, 0xFF, 0x2E], fileOffset: 64)
        #expect(refused == .unknownOpcode(0xFF, at: at(68)))
        #expect(refused?.description == "pickle: unknown opcode 0xff at offset 68 (data.pkl)")
        #expect(error([0x80, 6, 0x4E, 0x2E]) == .unsupportedProtocol(6, at: at(0)))
    }

    @Test("SETITEM on a list, APPEND on a dict, ADDITEMS on a frozenset")
    func wrongContainer() {
        var setItem = PickleBuilder()
        setItem.op(.emptyList); setItem.int(0); setItem.int(1); setItem.op(.setItem)
        let refused = error(setItem.finished())
        #expect(refused == .wrongType(opcode: "SETITEM", expected: "a dict", found: "list", at: at(7)))
        #expect(refused?.description == "pickle: SETITEM expects a dict, found list at offset 7 (data.pkl)")

        var setItems = PickleBuilder()
        setItems.op(.emptyList); setItems.op(.mark); setItems.int(0); setItems.int(1); setItems.op(.setItems)
        #expect(error(setItems.finished()) == .wrongType(opcode: "SETITEMS", expected: "a dict", found: "list", at: at(8)))

        var append = PickleBuilder()
        append.op(.emptyDict); append.int(1); append.op(.append)
        #expect(error(append.finished()) == .wrongType(opcode: "APPEND", expected: "a list", found: "dict", at: at(5)))

        var appends = PickleBuilder()
        appends.op(.emptyTuple); appends.op(.mark); appends.int(1); appends.op(.appends)
        #expect(error(appends.finished()) == .wrongType(opcode: "APPENDS", expected: "a list", found: "tuple", at: at(6)))

        var addItems = PickleBuilder(protocol: 4)
        addItems.op(.mark); addItems.op(.frozenSet); addItems.op(.mark); addItems.int(1); addItems.op(.addItems)
        #expect(error(addItems.finished()) == .wrongType(opcode: "ADDITEMS", expected: "a set", found: "frozenset", at: at(7)))

        var oddItems = PickleBuilder()
        oddItems.op(.emptyDict); oddItems.op(.mark); oddItems.int(1); oddItems.op(.setItems)
        #expect(error(oddItems.finished()) ==
                .invalidArgument(opcode: "SETITEMS", reason: "odd number of items (1) for key/value pairs", at: at(6)))

        var build = PickleBuilder()
        build.op(.emptyList); build.op(.emptyDict); build.string("x"); build.int(1); build.op(.setItem); build.op(.build)
        #expect(error(build.finished()) ==
                .wrongType(opcode: "BUILD", expected: "an OrderedDict or a tensor to set state on", found: "list", at: at(13)))
    }

    @Test("stack underflow: nothing to pop, or only values below the last MARK")
    func stackUnderflow() {
        #expect(error([0x80, 2, 0x2E]) == .stackUnderflow(opcode: "STOP", at: at(2)))
        #expect(error([0x80, 2, 0x61, 0x2E]) == .stackUnderflow(opcode: "APPEND", at: at(2)))
        #expect(error([0x80, 2, 0x30, 0x2E]) == .stackUnderflow(opcode: "POP", at: at(2)))
        #expect(error([0x80, 2, 0x4E, 0x86, 0x2E]) == .stackUnderflow(opcode: "TUPLE2", at: at(3)))
        // The list is below the MARK, so APPEND cannot reach it (Python's unpickler agrees).
        var belowMark = PickleBuilder()
        belowMark.op(.emptyList); belowMark.op(.mark); belowMark.int(1); belowMark.op(.append)
        #expect(error(belowMark.finished()) == .stackUnderflow(opcode: "APPEND", at: at(6)))
        #expect(error([0x80, 2, 0x28, 0x32, 0x2E]) == .stackUnderflow(opcode: "DUP", at: at(3)))
        #expect(error([0x80, 2, 0x28, 0x71, 0x00, 0x2E]) == .stackUnderflow(opcode: "BINPUT", at: at(3)))
    }

    @Test("opcodes that collect up to a MARK without one")
    func missingMark() {
        #expect(error([0x80, 2, 0x4E, 0x74, 0x2E]) == .missingMark(opcode: "TUPLE", at: at(3)))
        #expect(error([0x80, 2, 0x5D, 0x4E, 0x65, 0x2E]) == .missingMark(opcode: "APPENDS", at: at(4)))
        #expect(error([0x80, 2, 0x7D, 0x4E, 0x4E, 0x75, 0x2E]) == .missingMark(opcode: "SETITEMS", at: at(5)))
        #expect(error([0x80, 2, 0x31, 0x2E]) == .missingMark(opcode: "POP_MARK", at: at(2)))
    }

    @Test("GET of a memo key never stored")
    func unknownMemoKey() {
        #expect(error([0x80, 2, 0x68, 7, 0x2E]) == .unknownMemoKey(7, opcode: "BINGET", at: at(2)))
        #expect(error([0x80, 2, 0x6A, 0xFF, 0xFF, 0xFF, 0xFF, 0x2E]) == .unknownMemoKey(0xFFFF_FFFF, opcode: "LONG_BINGET", at: at(2)))
        #expect(error([0x80, 2] + Array("g12\n.".utf8)) == .unknownMemoKey(12, opcode: "GET", at: at(2)))
    }

    @Test("lengths beyond the input are truncation, never an allocation")
    func lengthsBeyondInput() {
        #expect(error([0x80, 2, 0x58, 0xFF, 0xFF, 0xFF, 0xFF, 0x41, 0x2E]) == .truncated(opcode: "BINUNICODE", at: at(2)))
        #expect(error([0x80, 2, 0x8D] + [UInt8](repeating: 0xFF, count: 8) + [0x2E]) == .truncated(opcode: "BINUNICODE8", at: at(2)))
        #expect(error([0x80, 2, 0x8E, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x2E]) == .truncated(opcode: "BINBYTES8", at: at(2)))
        #expect(error([0x80, 2, 0x96, 0x10, 0, 0, 0, 0, 0, 0, 0, 0x2E]) == .truncated(opcode: "BYTEARRAY8", at: at(2)))
        #expect(error([0x80, 2, 0x42, 0x02, 0, 0, 0, 0x2E]) == .truncated(opcode: "BINBYTES", at: at(2)))
        #expect(error([0x80, 2, 0x8C, 0x05, 0x41, 0x2E]) == .truncated(opcode: "SHORT_BINUNICODE", at: at(2)))
        #expect(error([0x80, 2, 0x54, 0xFF, 0xFF, 0xFF, 0xFF, 0x2E]) ==
                .invalidArgument(opcode: "BINSTRING", reason: "negative length -1", at: at(2)))
        #expect(error([0x80, 2, 0x8B, 0xFF, 0xFF, 0xFF, 0xFF, 0x2E]) ==
                .invalidArgument(opcode: "LONG4", reason: "negative byte count -1", at: at(2)))
        #expect(error([0x80, 2, 0x8B, 0xFF, 0xFF, 0xFF, 0x7F, 0x2E]) == .limitExceeded(limit: "integer size", value: 1024, at: at(2)))
        #expect(error([0x80, 2, 0x8A, 0x09, 1, 2, 0x2E]) == .truncated(opcode: "LONG1", at: at(2)))
        #expect(error([0x80, 2, 0x95, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x2E]) == .truncated(opcode: "FRAME", at: at(2)))
        #expect(error([0x80, 2, 0x63, 0x6F, 0x73, 0x0A, 0x73, 0x79, 0x73]) == .truncated(opcode: "GLOBAL", at: at(2)))
    }

    @Test("malformed arguments: bad UTF-8, bad numbers, unquoted STRING")
    func malformedArguments() {
        #expect(error([0x80, 2, 0x8C, 0x02, 0xC3, 0x28, 0x2E]) ==
                .invalidArgument(opcode: "SHORT_BINUNICODE", reason: "text is not valid UTF-8", at: at(2)))
        #expect(error([0x80, 2] + Array("Iabc\n.".utf8)) ==
                .invalidArgument(opcode: "INT", reason: "'abc' is not a decimal integer", at: at(2)))
        #expect(error([0x80, 2] + Array("Fx\n.".utf8)) == .invalidArgument(opcode: "FLOAT", reason: "'x' is not a float", at: at(2)))
        #expect(error([0x80, 2] + Array("Sabc\n.".utf8)) == .invalidArgument(opcode: "STRING", reason: "argument is not quoted", at: at(2)))
        #expect(error([0x80, 2] + Array("S'\\x4'\n.".utf8)) == .invalidArgument(opcode: "STRING", reason: "invalid \\x escape", at: at(2)))
        #expect(error([0x80, 2, 0x4E, 0x70, 0x2D, 0x31, 0x0A, 0x2E]) ==
                .invalidArgument(opcode: "PUT", reason: "negative memo key -1", at: at(3)))
    }

    @Test("invalid tensor arguments name the problem")
    func invalidTensors() {
        func tensorError(shape: [Int], stride: [Int], offset: Int = 0) -> PickleError? {
            var builder = PickleBuilder()
            builder.tensor(key: "0", count: 100, offset: offset, shape: shape, stride: stride)
            return error(builder.finished())
        }
        #expect(tensorError(shape: [2, 3], stride: [-1, 1])?.description.contains("invalid tensor: negative stride [-1, 1]") == true)
        #expect(tensorError(shape: [-2, 3], stride: [3, 1])?.description.contains("negative size [-2, 3]") == true)
        #expect(tensorError(shape: [2, 3], stride: [1])?.description.contains("size [2, 3] and stride [1] differ in rank") == true)
        #expect(tensorError(shape: [2], stride: [1], offset: -1)?.description.contains("negative storage offset -1") == true)

        var notStorage = PickleBuilder()
        notStorage.global("torch._utils", "_rebuild_tensor_v2")
        notStorage.op(.mark); notStorage.string("0"); notStorage.int(0); notStorage.intTuple([1]); notStorage.intTuple([1])
        notStorage.op(.newFalse); notStorage.op(.none); notStorage.op(.tuple); notStorage.op(.reduce)
        #expect(error(notStorage.finished()) ==
                .invalidTensor("the storage argument is a str, not a persistent storage", at: at(53)))

        var badID = PickleBuilder()
        badID.op(.mark); badID.string("module"); badID.op(.none); badID.op(.none); badID.op(.none); badID.op(.none); badID.op(.tuple)
        badID.op(.binPersID)
        #expect(error(badID.finished()) == .invalidPersistentID("only 'storage' ids are data, found 'module'", at: at(18)))
    }

    @Test("truncating a valid pickle at every length gives an error, never a crash")
    func everyPrefix() throws {
        for name in ["pickle/torch_p2.pkl", "pickle/torch_p5.pkl", "pickle/sample_p0.pkl"] {
            let bytes = try Fixtures.bytes(name)
            _ = try PickleMachine.load(bytes)
            for length in 0..<bytes.count {
                let refused = pickleError { _ = try PickleMachine.load(Array(bytes[..<length])) }
                switch refused {
                case .truncated?, .missingStop?: break
                default: Issue.record("\(name) cut at \(length): \(String(describing: refused))")
                }
            }
        }
    }
}
