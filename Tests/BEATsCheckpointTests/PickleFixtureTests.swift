@testable import BEATsCheckpoint
import BEATsCore
import BEATsTestSupport
import Testing

/// Real pickles written by torch.save and Python's pickler, compared with what Python's own
/// unpickler read from them (Fixtures/pickle/expected.json, tools/fixtures/make_pickle_vectors.py).
@Suite("Pickle fixtures")
struct PickleFixtureTests {
    private func check(_ object: PickleObject, against expected: PickleFixtures.Expected, name: String) throws {
        #expect(object.startOffset == expected.data_offset, "\(name)")
        #expect(object.byteCount == expected.pickle_size, "\(name)")
        let root = object.root
        let state = object.value(forKey: "model", in: root) ?? root
        let tensors = try object.tensorEntries(in: state)
        #expect(tensors.map(\.asExpected) == expected.tensors, "\(name)")
        if let cfg = expected.cfg {
            let config = try object.configScalars(in: try #require(object.value(forKey: "cfg", in: root)))
            #expect(config == cfg.mapValues(\.config), "\(name)")
        } else {
            #expect(object.value(forKey: "cfg", in: root) == nil, "\(name)")
        }
        if let labels = expected.label_dict {
            let read = try object.integerKeyedStrings(in: try #require(object.value(forKey: "label_dict", in: root)))
            #expect(read == Dictionary(uniqueKeysWithValues: labels.map { (Int($0.key)!, $0.value) }), "\(name)")
        }
    }

    @Test("torch zip checkpoints: data.pkl gives the same cfg, labels and tensor records as Python",
          arguments: ["models/tiny.pt", "models/tiny_ft.pt", "models/tiny_tok.pt", "parser/views.pt", "parser/fp16.pt", "parser/bf16.pt"])
    func zipCheckpoint(relative: String) throws {
        let expected = try #require(try PickleFixtures.expected()[relative])
        try check(try PickleFixtures.loadTorchZip(relative), against: expected, name: relative)
    }

    @Test("torch.save with pickle protocols 2, 4 and 5 (FRAME, MEMOIZE, STACK_GLOBAL, parameters with state)",
          arguments: ["pickle/torch_p2.pkl", "pickle/torch_p4.pkl", "pickle/torch_p5.pkl"])
    func torchProtocols(relative: String) throws {
        let expected = try #require(try PickleFixtures.expected()[relative])
        let object = try PickleMachine.load(try Fixtures.bytes(relative))
        try check(object, against: expected, name: relative)
        // The non-tensor values torch.save wrote beside the state dict.
        let size = try #require(object.value(forKey: "size", in: object.root))
        #expect(object.integers(of: size) == [2, 3])
        let dtype = try #require(object.value(forKey: "dtype", in: object.root))
        #expect(object.global(of: dtype) == .dtype(.float16))
        let cfg = try #require(object.value(forKey: "cfg", in: object.root))
        #expect(object.value(forKey: "skip", in: cfg).map { object.isNone($0) } == true)
    }

    @Test("tiny.pt: the state dict as the BEATs view will read it")
    func tinyStateDict() throws {
        let object = try PickleFixtures.loadTorchZip("models/tiny.pt")
        #expect(object.root == PickleNodeID(0))
        #expect(object.dictEntries(of: object.root)?.compactMap { object.string(of: $0.key) } == ["cfg", "model"])
        let model = try #require(object.value(forKey: "model", in: object.root))
        #expect(object.isOrderedDict(model))
        let tensors = try object.tensorEntries(in: model)
        #expect(tensors.count == 50)
        #expect(tensors.first?.name == "post_extract_proj.weight")
        #expect(tensors.first?.tensor == TorchTensorRecord(
            storage: TorchStorageReference(key: "0", dtype: .float32, location: "cpu", elementCount: 3072),
            storageOffset: 0, shape: [64, 48], stride: [48, 1]))
        // The manifest's parameter count is the sum of the tensors' element counts.
        #expect(tensors.reduce(0) { $0 + $1.tensor.shape.reduce(1, *) } == 99_592)
        // The config goes straight into BEATsConfig.
        let config = try BEATsConfig(values: try object.configScalars(in: try #require(object.value(forKey: "cfg", in: object.root))))
        #expect(config.encoderEmbedDim == 64)
        #expect(config.embedDim == 48)
        #expect(config.numBuckets == 32)
        #expect(config.deepNorm)
        #expect(config.finetunedModel == false)
    }

    @Test("tiny_ft.pt: label_dict maps 527 indices to AudioSet MIDs")
    func labels() throws {
        let object = try PickleFixtures.loadTorchZip("models/tiny_ft.pt")
        let labels = try object.integerKeyedStrings(in: try #require(object.value(forKey: "label_dict", in: object.root)))
        #expect(labels.count == 527)
        #expect(labels[0] == "/m/09x0r")
        #expect(labels[526] == "/m/07hvw1")
    }

    @Test("legacy.pt: magic, protocol, sys_info, main pickle and key list read back to back")
    func legacyStream() throws {
        let expected = try #require(try PickleFixtures.expected()["parser/legacy.pt"])
        let file = try Fixtures.bytes("parser/legacy.pt")
        try file.withUnsafeBytes { buffer in
            func load(at offset: Int) throws -> PickleObject {
                try PickleMachine.load(UnsafeRawBufferPointer(rebasing: buffer[offset...]), fileOffset: offset, context: "legacy.pt")
            }
            let magic = try load(at: 0)
            #expect(magic.bigInteger(of: magic.root)?.description == expected.magic)
            #expect(magic.bigInteger(of: magic.root) ==
                    PickleBigInt(littleEndianTwosComplement: [0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]))
            let version = try load(at: magic.endOffset)
            #expect(version.integer(of: version.root) == 1001)
            let systemInfo = try load(at: version.endOffset)
            #expect(systemInfo.value(forKey: "little_endian", in: systemInfo.root).flatMap { systemInfo.bool(of: $0) } == true)
            let main = try load(at: systemInfo.endOffset)
            #expect(main.endOffset == expected.main_end)
            try check(main, against: expected, name: "legacy.pt")
            let keys = try load(at: main.endOffset)
            let keyStrings = try #require(keys.items(of: keys.root)).compactMap { keys.string(of: $0) }
            // 50 tensors over 49 storages: both layers' relative_attention_bias.weight share one.
            #expect(keyStrings.count == 49)
            #expect(Set(keyStrings) == Set(expected.tensors.map(\.key)))
        }
    }

    @Test("one structure pickled with protocols 0 to 5 reads the same", arguments: 0...5)
    func sampleProtocols(version: Int) throws {
        let object = try PickleMachine.load(try Fixtures.bytes("pickle/sample_p\(version).pkl"))
        let root = object.root
        func value(_ key: String) throws -> PickleNodeID { try #require(object.value(forKey: key, in: root)) }
        #expect(object.integer(of: try value("int_small")) == 7)
        #expect(object.integer(of: try value("int_neg")) == -300)
        #expect(object.bigInteger(of: try value("int_big"))?.description == "18446744073709551621")
        #expect(object.bigInteger(of: try value("int_neg_big"))?.description == "-1180591620717411303424")
        #expect(object.integer(of: try value("int64_min")) == Int.min)
        #expect(object.double(of: try value("float")) == 0.1)
        #expect(object.bool(of: try value("bool")) == true)
        #expect(object.isNone(try value("none")))
        #expect(object.string(of: try value("str")) == "h\u{e9}llo \u{2713}\n\\")
        #expect(object.bytes(of: try value("bytes")) == [0x00, 0xFF, 0x61, 0x62])
        #expect(object.bytes(of: try value("bytearray")) == [0x78, 0x79])
        #expect(object.summary(of: try value("list")) == "[1, [2, 3], (4,)]")
        #expect(object.summary(of: try value("tuples")) == "((), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4, 5))")
        #expect(object.kind(of: try value("set")) == .set)
        #expect(object.summary(of: try value("set")) == "{1}")
        #expect(object.kind(of: try value("frozenset")) == .frozenSet)
        #expect(object.summary(of: try value("frozenset")) == "frozenset({2})")
        let shared = try #require(object.items(of: try value("shared")))
        #expect(shared.count == 2 && shared[0] == shared[1])
        #expect(object.isOrderedDict(try value("od")))
        #expect(object.summary(of: try value("od")) == "OrderedDict({'a': 1})")
        #expect(object.dictEntries(of: root)?.count == 17)
    }
}
