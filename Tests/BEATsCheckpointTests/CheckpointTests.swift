import BEATsCheckpoint
import BEATsCore
import BEATsTestSupport
import Foundation
import Testing

/// The reference manifest (`Fixtures/manifest.json`), parsed with Foundation.
enum Manifest {
    static func load() throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: try Fixtures.path("manifest.json")))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func model(_ name: String) throws -> [String: Any] {
        let models = try #require(try load()["models"] as? [String: Any])
        return try #require(models[name] as? [String: Any])
    }
}

/// Every tensor of a checkpoint as packed little-endian bytes, by name.
func packedTensors(_ checkpoint: PyTorchCheckpoint) throws -> [String: (DType, [Int], [UInt8])] {
    var result: [String: (DType, [Int], [UInt8])] = [:]
    for name in checkpoint.tensorNames {
        let view = try #require(try checkpoint.tensor(named: name))
        result[name] = (view.dtype, view.shape, view.packedLittleEndianBytes())
    }
    return result
}

@Suite("PyTorch checkpoints")
struct CheckpointTests {
    /// `list(torch.load('tiny.pt')['model'].keys())`.
    static let tinyKeys = [
        "post_extract_proj.weight", "post_extract_proj.bias",
        "patch_embedding.weight", "encoder.pos_conv.0.bias",
        "encoder.pos_conv.0.weight_g", "encoder.pos_conv.0.weight_v",
        "encoder.layers.0.self_attn.grep_a", "encoder.layers.0.self_attn.relative_attention_bias.weight",
        "encoder.layers.0.self_attn.k_proj.weight", "encoder.layers.0.self_attn.k_proj.bias",
        "encoder.layers.0.self_attn.v_proj.weight", "encoder.layers.0.self_attn.v_proj.bias",
        "encoder.layers.0.self_attn.q_proj.weight", "encoder.layers.0.self_attn.q_proj.bias",
        "encoder.layers.0.self_attn.out_proj.weight", "encoder.layers.0.self_attn.out_proj.bias",
        "encoder.layers.0.self_attn.grep_linear.weight", "encoder.layers.0.self_attn.grep_linear.bias",
        "encoder.layers.0.self_attn_layer_norm.weight", "encoder.layers.0.self_attn_layer_norm.bias",
        "encoder.layers.0.fc1.weight", "encoder.layers.0.fc1.bias",
        "encoder.layers.0.fc2.weight", "encoder.layers.0.fc2.bias",
        "encoder.layers.0.final_layer_norm.weight", "encoder.layers.0.final_layer_norm.bias",
        "encoder.layers.1.self_attn.grep_a", "encoder.layers.1.self_attn.k_proj.weight",
        "encoder.layers.1.self_attn.k_proj.bias", "encoder.layers.1.self_attn.v_proj.weight",
        "encoder.layers.1.self_attn.v_proj.bias", "encoder.layers.1.self_attn.q_proj.weight",
        "encoder.layers.1.self_attn.q_proj.bias", "encoder.layers.1.self_attn.out_proj.weight",
        "encoder.layers.1.self_attn.out_proj.bias", "encoder.layers.1.self_attn.grep_linear.weight",
        "encoder.layers.1.self_attn.grep_linear.bias", "encoder.layers.1.self_attn.relative_attention_bias.weight",
        "encoder.layers.1.self_attn_layer_norm.weight", "encoder.layers.1.self_attn_layer_norm.bias",
        "encoder.layers.1.fc1.weight", "encoder.layers.1.fc1.bias",
        "encoder.layers.1.fc2.weight", "encoder.layers.1.fc2.bias",
        "encoder.layers.1.final_layer_norm.weight", "encoder.layers.1.final_layer_norm.bias",
        "encoder.layer_norm.weight", "encoder.layer_norm.bias",
        "layer_norm.weight", "layer_norm.bias",
    ]

    @Test("tiny.pt: format, kind, state-dict keys in order, zero-copy records")
    func tiny() throws {
        let checkpoint = try PyTorchCheckpoint.open(path: try Fixtures.path("models/tiny.pt"))
        #expect(checkpoint.formatName == "pytorch-zip")
        #expect(checkpoint.archivePrefix == "tiny/")
        #expect(checkpoint.kind == .pretrained)
        #expect(checkpoint.tensorNames == CheckpointTests.tinyKeys)
        #expect(checkpoint.labels.isEmpty)
        #expect(checkpoint.byteOrder == .little)
        let weight = try #require(try checkpoint.tensor(named: "post_extract_proj.weight"))
        #expect(weight.dtype == .float32)
        #expect(weight.shape == [64, 48])
        #expect(weight.storage.owner is MappedFile)  // a view into the map, not a copy
        #expect(try checkpoint.tensor(named: "no.such.tensor") == nil)
        let parameters = try checkpoint.tensorNames.reduce(0) { $0 + (try #require(try checkpoint.tensor(named: $1))).elementCount }
        #expect(parameters == (try Manifest.model("tiny")["params"] as? Int))
        try checkpoint.verifyChecksums()
    }

    @Test("kinds and configs of tiny, tiny_ft and tiny_tok match the manifest", arguments: ["tiny", "tiny_ft", "tiny_tok"])
    func kindAndConfig(model: String) throws {
        let entry = try Manifest.model(model)
        let checkpoint = try PyTorchCheckpoint.open(path: try Fixtures.path(try #require(entry["file"] as? String)))
        #expect(checkpoint.kind.rawValue == entry["kind"] as? String)
        let cfg = try #require(entry["cfg"] as? [String: Any])
        let values = Dictionary(uniqueKeysWithValues: checkpoint.config.values.map { ($0.key, $0.value) })
        var compared = 0
        for (key, expected) in cfg {
            let actual = try #require(values[key], "config has no \(key)")
            switch actual {
            case .int(let number): #expect(number == (expected as? NSNumber)?.intValue, "\(key)")
            case .double(let number): #expect(number == (expected as? NSNumber)?.doubleValue, "\(key)")
            case .bool(let flag): #expect(flag == (expected as? NSNumber)?.boolValue, "\(key)")
            case .string(let text): #expect(text == expected as? String, "\(key)")
            }
            compared += 1
        }
        #expect(compared == cfg.count)
        // Keys the checkpoint leaves out take the official defaults.
        if cfg["quant_n"] == nil { #expect(checkpoint.config.quantN == 1024) }
        if cfg["predictor_class"] == nil { #expect(checkpoint.config.predictorClass == 527) }
    }

    @Test("tiny_ft.pt: label_dict gives 527 labels with AudioSet display names")
    func labels() throws {
        let checkpoint = try PyTorchCheckpoint.open(path: try Fixtures.path("models/tiny_ft.pt"))
        #expect(checkpoint.kind == .finetuned)
        #expect(checkpoint.labels.count == 527)
        #expect(checkpoint.labels.first == AudioSetLabel(index: 0, mid: "/m/09x0r", name: "Speech"))
        #expect(checkpoint.labels.last == AudioSetLabel(index: 526, mid: "/m/07hvw1", name: "Field recording"))
        // Against the CSV the package ships: index,mid,"display_name".
        let csv = try String(contentsOfFile: try Fixtures.path("class_labels_indices.csv"), encoding: .utf8)
        let rows = csv.split(separator: "\n").dropFirst()
        #expect(rows.count == 527)
        for (label, row) in zip(checkpoint.labels, rows) {
            let fields = row.split(separator: ",", maxSplits: 2)
            #expect(String(label.index) == fields[0] && label.mid == fields[1])
            #expect("\"\(label.name)\"" == fields[2] || label.name == fields[2])
        }
        #expect(checkpoint.tensorNames.suffix(2) == ["predictor.weight", "predictor.bias"])
    }

    @Test("tiny_tok.pt: tokenizer keys (quantize.*, quantize_layer.*) and codebook config")
    func tokenizer() throws {
        let checkpoint = try PyTorchCheckpoint.open(path: try Fixtures.path("models/tiny_tok.pt"))
        #expect(checkpoint.kind == .tokenizer)
        #expect(checkpoint.config.quantN == 64)
        #expect(checkpoint.config.quantDim == 16)
        #expect(checkpoint.labels.isEmpty)
        let codebook = try #require(try checkpoint.tensor(named: "quantize.embedding.weight"))
        #expect(codebook.shape == [64, 16])
    }

    @Test("tiny.pt, legacy.pt and deflated.pt give bitwise-identical tensors")
    func crossFormats() throws {
        let zip = try PyTorchCheckpoint.open(path: try Fixtures.path("models/tiny.pt"))
        let legacy = try PyTorchCheckpoint.open(path: try Fixtures.path("parser/legacy.pt"))
        let deflated = try PyTorchCheckpoint.open(path: try Fixtures.path("parser/deflated.pt"))
        #expect(legacy.formatName == "pytorch-legacy")
        #expect(deflated.formatName == "pytorch-zip")
        #expect(deflated.archivePrefix == "archive/")
        #expect(legacy.tensorNames == zip.tensorNames)
        #expect(deflated.tensorNames == zip.tensorNames)
        #expect(legacy.config == zip.config && deflated.config == zip.config)
        #expect(legacy.kind == .pretrained && deflated.kind == .pretrained)
        let reference = try packedTensors(zip)
        for other in [legacy, deflated] {
            let tensors = try packedTensors(other)
            for name in zip.tensorNames {
                let (dtype, shape, bytes) = try #require(reference[name])
                let (otherDtype, otherShape, otherBytes) = try #require(tensors[name])
                #expect(dtype == otherDtype && shape == otherShape, "\(name)")
                #expect(bytes == otherBytes, "\(other.formatName) \(name)")
            }
        }
        // The deflated records are inflated copies, not views into the map.
        #expect(!((try #require(try deflated.tensor(named: "layer_norm.bias"))).storage.owner is MappedFile))
    }

    @Test("fp16.pt and bf16.pt hold tiny.pt's values rounded to half and bfloat16")
    func reducedPrecision() throws {
        let tiny = try PyTorchCheckpoint.open(path: try Fixtures.path("models/tiny.pt"))
        let half = try PyTorchCheckpoint.open(path: try Fixtures.path("parser/fp16.pt"))
        let brain = try PyTorchCheckpoint.open(path: try Fixtures.path("parser/bf16.pt"))
        #expect(Set(half.tensorNames) == Set(tiny.tensorNames))
        #expect(Set(brain.tensorNames) == Set(tiny.tensorNames))
        var elements = 0
        for name in tiny.tensorNames {
            let values = try #require(try tiny.tensor(named: name)).floats()
            let halfView = try #require(try half.tensor(named: name))
            let brainView = try #require(try brain.tensor(named: name))
            #expect(halfView.dtype == .float16 && brainView.dtype == .bfloat16, "\(name)")
            let halfBits = try halfView.integers16()
            let brainBits = try brainView.integers16()
            #expect(halfBits == values.map(FloatBits.floatToHalf), "\(name)")
            #expect(brainBits == values.map(FloatBits.floatToBFloat16), "\(name)")
            // And decoding goes back through the same rounding.
            #expect(try halfView.floats() == values.map { FloatBits.halfToFloat(FloatBits.floatToHalf($0)) }, "\(name)")
            elements += values.count
        }
        #expect(elements == 99_592)
    }

    @Test("views.pt matches manifest parser.views element by element")
    func views() throws {
        let manifest = try Manifest.load()
        let parser = try #require(manifest["parser"] as? [String: Any])
        let expected = try #require(parser["views"] as? [String: Any])
        let checkpoint = try PyTorchCheckpoint.open(path: try Fixtures.path("parser/views.pt"))
        #expect(Set(checkpoint.tensorNames) == Set(expected.keys))
        #expect(checkpoint.tensorNames.count == 9)

        func flatten(_ value: Any) -> [NSNumber] {
            if let list = value as? [Any] { return list.flatMap(flatten) }
            return (value as? NSNumber).map { [$0] } ?? []
        }
        func shape(_ value: Any) -> [Int] {
            guard let list = value as? [Any] else { return [] }
            return [list.count] + (list.first.map(shape) ?? [])
        }
        for name in checkpoint.tensorNames {
            let view = try #require(try checkpoint.tensor(named: name))
            let reference = try #require(expected[name])
            if name == "empty" {
                #expect(view.shape == [0, 3])
            } else {
                #expect(view.shape == shape(reference), "\(name)")
            }
            let numbers = flatten(reference)
            switch view.dtype {
            case .float32: #expect(try view.floats() == numbers.map(\.floatValue), "\(name)")
            case .int64: #expect(try view.integers() == numbers.map(\.int64Value), "\(name)")
            case .bool: #expect(try view.integers() == numbers.map { $0.boolValue ? 1 : 0 }, "\(name)")
            default: Issue.record("unexpected dtype \(view.dtype) for \(name)")
            }
        }
        let transposed = try #require(try checkpoint.tensor(named: "transposed"))
        #expect(transposed.strides == [1, 8] && !transposed.isContiguous)
        let sharedA = try #require(try checkpoint.tensor(named: "shared_a"))
        let sharedB = try #require(try checkpoint.tensor(named: "shared_b"))
        #expect(sharedB.storageOffset == 16)
        #expect(sharedA.storage.bytes.baseAddress == sharedB.storage.bytes.baseAddress)  // one record, two views
        let scalar = try #require(try checkpoint.tensor(named: "scalar"))
        #expect(scalar.shape == [])
        #expect(try scalar.floats() == [3.5])
    }

    @Test("byteorder 'big': records are byte-swapped on read")
    func bigEndian() throws {
        let checkpoint = try PyTorchCheckpoint.open(path: try Fixtures.path("generated/big_endian.pt"))
        #expect(checkpoint.byteOrder == .big)
        let weight = try #require(try checkpoint.tensor(named: "w"))
        #expect(weight.byteOrder == .big)
        #expect(try weight.floats() == (0..<16).map(Float.init))
        #expect(try #require(try checkpoint.tensor(named: "n")).integers() == [7, -2])
    }

    @Test("a top-level dict of tensors lists its own keys; nested dicts join keys with '.'")
    func plainStateDict() throws {
        let checkpoint = try PyTorchCheckpoint.open(path: try Fixtures.path("generated/plain_state_dict.pt"))
        #expect(checkpoint.tensorNames == ["a", "sub.b", "sub.c"])
        #expect(checkpoint.kind == .pretrained)
        #expect(checkpoint.config == BEATsConfig())
        #expect(try #require(try checkpoint.tensor(named: "sub.b")).floats() == [4, 5, 6, 7])
        #expect(try #require(try checkpoint.tensor(named: "sub.c")).integers() == [3, 4])
    }

    @Test("recognizes: zip local header, empty zip, pickle protocol 2; not others")
    func recognizes() {
        func check(_ bytes: [UInt8]) -> Bool { bytes.withUnsafeBytes { PyTorchCheckpoint.recognizes($0) } }
        #expect(check([0x50, 0x4B, 0x03, 0x04, 0, 0]))
        #expect(check([0x50, 0x4B, 0x05, 0x06]))
        #expect(check([0x80, 0x02, 0x8A, 0x0A]))
        #expect(!check([0x50, 0x4B, 0x01, 0x02]))
        #expect(!check([0x80, 0x07]))
        #expect(!check([0x93, 0x4E, 0x55, 0x4D]))  // .npy
        #expect(!check([0x80]))
        #expect(!check([]))
    }
}

extension TensorView {
    /// The raw 16-bit elements (float16 / bfloat16 bit patterns) in row-major order.
    func integers16() throws -> [UInt16] {
        let bytes = packedLittleEndianBytes()
        return stride(from: 0, to: bytes.count, by: 2).map { UInt16(bytes[$0]) | UInt16(bytes[$0 + 1]) << 8 }
    }
}

@Suite("Legacy stream")
struct LegacyStreamTests {
    @Test("storage views (view_metadata): a tensor over elements 4..11 of its root storage")
    func views() throws {
        let checkpoint = try PyTorchCheckpoint.open(path: try Fixtures.path("generated/legacy_views.pt"))
        #expect(checkpoint.formatName == "pytorch-legacy")
        #expect(checkpoint.tensorNames == ["whole", "part"])
        let record = try #require(checkpoint.tensorRecord(named: "part"))
        #expect(record.storage.legacyView?.elementOffset == 4)
        #expect(try #require(try checkpoint.tensor(named: "whole")).floats() == (0..<16).map(Float.init))
        let part = try #require(try checkpoint.tensor(named: "part"))
        #expect(part.shape == [2, 3])
        #expect(try part.floats() == [6, 7, 8, 9, 10, 11])  // torch.load gives [[6, 7, 8], [9, 10, 11]]
    }

    @Test("a storage view reaching past its root storage")
    func viewBeyondRoot() throws {
        let path = try Fixtures.path("hostile/legacy_view_beyond.pt")
        #expect(throws: CheckpointError.recordTooShort(tensor: "part", record: "0", neededBytes: 72, recordBytes: 64)) {
            try PyTorchCheckpoint.open(path: path)
        }
    }

    @Test("legacy.pt reads only the pickles and the eight-byte storage headers at open")
    func legacyLayout() throws {
        let checkpoint = try PyTorchCheckpoint.open(path: try Fixtures.path("parser/legacy.pt"))
        let weight = try #require(try checkpoint.tensor(named: "post_extract_proj.weight"))
        #expect(weight.storage.owner is MappedFile)
        #expect(checkpoint.byteOrder == .little)
        try checkpoint.verifyChecksums()  // no CRCs in a legacy stream: builds every view, reads no tensor bytes
    }
}

@Suite("BEATs view of odd checkpoints")
struct BEATsViewTests {
    @Test("fine-tuned without label_dict: the 527 AudioSet labels (predictor_class 527)")
    func finetunedWithoutLabelDict() throws {
        let checkpoint = try PyTorchCheckpoint.open(path: try Fixtures.path("generated/finetuned_no_labels.pt"))
        #expect(checkpoint.kind == .finetuned)
        #expect(checkpoint.labels == AudioSetOntology.labels)
        #expect(checkpoint.labels[137] == AudioSetLabel(index: 137, mid: "/m/04rlf", name: "Music"))
    }

    @Test("a cfg key holding a list is an error naming the key and where the list was made")
    func configList() throws {
        let path = try Fixtures.path("hostile/cfg_list_value.pt")
        let archive = try ZipArchive(path: path)
        let pickle = try archive.dataRange(of: try #require(archive.entry(named: "cfg_list_value/data.pkl")))
        do {
            _ = try PyTorchCheckpoint.open(path: path)
            Issue.record("accepted")
        } catch let error as CheckpointError {
            guard case .configValue(let key, let found, let offset) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(key == "encoder_layers" && found == "list" && pickle.contains(offset))
            #expect(try Fixtures.bytes("hostile/cfg_list_value.pt")[offset] == 0x5D)  // EMPTY_LIST
        }
    }

    @Test("a cfg key holding a str where a number belongs")
    func configString() throws {
        let path = try Fixtures.path("hostile/cfg_string_value.pt")
        #expect(throws: ConfigError.wrongType(key: "encoder_layers", expected: "an integer")) { try PyTorchCheckpoint.open(path: path) }
    }
}
