import BEATsCheckpoint
import BEATsCore
import BEATsTestSupport
import Foundation
import Testing

/// A safetensors file from a header text and data bytes (8-byte length, header, data).
func safetensorsBytes(_ header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
    safetensorsBytes(header: Array(header.utf8), data: data, declaredLength: declaredLength)
}

func safetensorsBytes(header text: [UInt8], data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
    let length = declaredLength ?? UInt64(text.count)
    return (0..<8).map { UInt8(truncatingIfNeeded: length >> (8 * $0)) } + text + data
}

private func open(_ bytes: [UInt8], limits: SafetensorsFile.Limits = SafetensorsFile.Limits()) throws -> SafetensorsFile {
    // No config.json can be beside an in-memory file: point the lookup at a path that does not exist.
    try SafetensorsFile.open(file: MappedFile(path: "t.safetensors", copying: bytes), configPath: "/nonexistent/config.json", limits: limits)
}

private let twoTensors = """
    {"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},"a":{"dtype":"I32","shape":[],"data_offsets":[0,4]},"__metadata__":{"format":"pt"}}
    """
private let twoTensorData: [UInt8] = [7, 0, 0, 0] + [0, 0, 0x80, 0x3F] + [0, 0, 0, 0x40]

@Suite("safetensors: reading")
struct SafetensorsReadingTests {
    @Test("a valid file: names in data order, dtypes, shapes, values, metadata; no config means none")
    func valid() throws {
        let file = try open(safetensorsBytes(twoTensors, data: twoTensorData))
        #expect(file.formatName == "safetensors")
        #expect(file.tensorNames == ["a", "b"])
        #expect(try file.tensor(named: "a")?.integers() == [7])
        let b = try #require(try file.tensor(named: "b"))
        #expect(b.shape == [2] && b.dtype == .float32)
        #expect(try b.floats() == [1, 2])
        #expect(file.metadata.map(\.key) == ["format"] && file.metadata.first?.value == "pt")
        #expect(!file.hasBEATsConfig)
        #expect(file.configAbsence == "a state dict with 2 tensors, no BEATs config")
        #expect(throws: ConfigError.absent(format: "safetensors", what: "a state dict with 2 tensors, no BEATs config")) {
            try file.requireBEATsConfig()
        }
    }

    @Test("tensors are views into the map, not copies")
    func zeroCopy() throws {
        let file = try SafetensorsFile.open(path: try Fixtures.path("safetensors/tiny_ft/model.safetensors"))
        let mapped = try MappedFile(path: try Fixtures.path("safetensors/tiny_ft/model.safetensors"))
        let view = try #require(try file.tensor(named: "post_extract_proj.weight"))
        let owner = try #require(view.storage.owner as? MappedFile)
        let base = try #require(owner.bytes.baseAddress)
        let start = try #require(view.storage.bytes.baseAddress)
        #expect(start >= base && start + view.byteCount <= base + owner.count)
        #expect(owner.count == mapped.count)
    }

    @Test("the torch-written fixture holds tiny_ft.pt's tensors bit for bit, its config, kind and labels")
    func torchWritten() throws {
        let file = try SafetensorsFile.open(path: try Fixtures.path("safetensors/tiny_ft/model.safetensors"))
        let checkpoint = try PyTorchCheckpoint.open(path: try Fixtures.path("models/tiny_ft.pt"))
        #expect(Set(file.tensorNames) == Set(checkpoint.tensorNames))
        for name in checkpoint.tensorNames {
            let ours = try #require(try file.tensor(named: name))
            let theirs = try #require(try checkpoint.tensor(named: name))
            #expect(ours.dtype == theirs.dtype && ours.shape == theirs.shape, "\(name)")
            #expect(ours.packedLittleEndianBytes() == theirs.packedLittleEndianBytes(), "\(name)")
        }
        #expect(file.hasBEATsConfig)
        #expect(file.configSource?.hasSuffix("tiny_ft/config.json") == true)
        #expect(file.config == checkpoint.config)
        #expect(file.kind == .finetuned)
        #expect(file.labels == checkpoint.labels)
        #expect(file.labels.count == 527)
        try file.verifyChecksums()
    }

    @Test("the config comes from __metadata__ when no config.json is beside the file")
    func metadataConfig() throws {
        let config = #"{"kind": "pretrained", "cfg": {"input_patch_size": 16, "encoder_layers": 3}}"#
        let escaped = config.replacingOccurrences(of: "\"", with: "\\\"")
        let header = #"{"__metadata__":{"beats_config":""# + escaped + #""},"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#
        let file = try open(safetensorsBytes(header, data: [5]))
        #expect(file.hasBEATsConfig)
        #expect(file.configSource == "__metadata__[beats_config]")
        #expect(file.config.inputPatchSize == 16 && file.config.encoderLayers == 3)
        #expect(file.kind == .pretrained)
    }

    @Test("recognised by content: a length with zero top bytes and '{' at offset 8")
    func recognition() {
        let good = safetensorsBytes("{}")
        #expect(good.withUnsafeBytes { SafetensorsFile.recognizes($0) })
        let zip: [UInt8] = Array("PK\u{03}\u{04}".utf8) + [UInt8](repeating: 0, count: 8)
        #expect(!zip.withUnsafeBytes { SafetensorsFile.recognizes($0) })
    }
}

@Suite("safetensors: hostile headers")
struct SafetensorsHostileTests {
    private let path = "t.safetensors"

    @Test("shorter than the 8-byte length")
    func tooShort() {
        #expect(throws: SafetensorsError.tooShort(path: path, fileSize: 5)) { try open([1, 2, 3, 4, 5]) }
    }

    @Test("header length beyond the file, zero, or over the limit (just under and over)")
    func headerLength() throws {
        let bytes = safetensorsBytes("{}", declaredLength: 1000)
        #expect(throws: SafetensorsError.headerLength(path: path, declared: 1000, fileSize: 10, limit: 16 << 20)) { try open(bytes) }
        #expect(throws: SafetensorsError.headerLength(path: path, declared: 0, fileSize: 10, limit: 16 << 20)) {
            try open(safetensorsBytes("{}", declaredLength: 0))
        }
        var limits = SafetensorsFile.Limits()
        limits.maximumHeaderBytes = 2
        #expect(try open(safetensorsBytes("{}"), limits: limits).tensorNames.isEmpty)
        limits.maximumHeaderBytes = 1
        #expect(throws: SafetensorsError.headerLength(path: path, declared: 2, fileSize: 10, limit: 1)) {
            try open(safetensorsBytes("{}"), limits: limits)
        }
    }

    @Test("invalid JSON names the file offset")
    func invalidJSON() {
        #expect(throws: SafetensorsError.invalidHeader(path: path, .syntax(offset: 16, reason: "expected ',' or '}' in an object"))) {
            try open(safetensorsBytes(#"{"a": 1 "b"}"#))
        }
        #expect(throws: SafetensorsError.invalidHeader(path: path, .syntax(offset: 10, reason: "string is not valid UTF-8"))) {
            try open(safetensorsBytes(header: Array("{\"".utf8) + [0xFF] + Array("\":1}".utf8)))
        }
    }

    @Test("deep nesting stops at the depth limit, iteratively (100 000 levels do not touch the stack)")
    func deepNesting() {
        let deep = "{\"a\":" + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}"
        #expect(throws: SafetensorsError.invalidHeader(path: path, .tooDeep(offset: 8 + 5 + 63, limit: 64))) {
            try open(safetensorsBytes(deep))
        }
    }

    @Test("duplicate tensor names")
    func duplicateNames() {
        let header = #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#
        #expect(throws: SafetensorsError.invalidHeader(path: path, .duplicateKey(key: "a", offset: 8 + 53))) {
            try open(safetensorsBytes(header, data: [1, 2]))
        }
    }

    @Test("unknown dtypes and dtypes BEATs never uses")
    func dtypes() {
        #expect(throws: SafetensorsError.unsupportedDType(path: path, tensor: "a", dtype: "F13", known: false)) {
            try open(safetensorsBytes(#"{"a":{"dtype":"F13","shape":[1],"data_offsets":[0,1]}}"#, data: [0]))
        }
        #expect(throws: SafetensorsError.unsupportedDType(path: path, tensor: "a", dtype: "F8_E4M3", known: true)) {
            try open(safetensorsBytes(#"{"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}"#, data: [0]))
        }
    }

    @Test("offsets not matching dtype × shape, reversed, or overflowing")
    func lengthMismatch() {
        #expect(throws: SafetensorsError.badOffsets(path: path, tensor: "a", begin: 0, end: 3, expectedLength: 4)) {
            try open(safetensorsBytes(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,3]}}"#, data: [0, 0, 0]))
        }
        #expect(throws: SafetensorsError.badOffsets(path: path, tensor: "a", begin: 4, end: 0, expectedLength: 4)) {
            try open(safetensorsBytes(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#, data: [0, 0, 0, 0]))
        }
        #expect(throws: SafetensorsError.badOffsets(path: path, tensor: "a", begin: 0, end: 4, expectedLength: nil)) {
            try open(safetensorsBytes(#"{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]))
        }
    }

    @Test("overlapping regions, in either header order")
    func overlap() {
        let header = #"{"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]},"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#
        #expect(throws: SafetensorsError.overlap(path: path, tensor: "b", other: "a")) { try open(safetensorsBytes(header, data: [1, 2, 3])) }
    }

    @Test("holes in the data, bytes after the last tensor, a tensor past the end")
    func coverage() {
        #expect(throws: SafetensorsError.gap(path: path, from: 0, to: 1)) {
            try open(safetensorsBytes(#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#, data: [1, 2]))
        }
        #expect(throws: SafetensorsError.gap(path: path, from: 1, to: 3)) {
            try open(safetensorsBytes(#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#, data: [1, 2, 3]))
        }
        #expect(throws: SafetensorsError.beyondData(path: path, tensor: "a", end: 8, dataLength: 2)) {
            try open(safetensorsBytes(#"{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}}"#, data: [1, 2]))
        }
    }

    @Test("schema: top level, entries, shapes, offsets and metadata of the wrong type")
    func schema() {
        #expect(throws: SafetensorsError.schema(path: path, entry: "(top level)", reason: "expected an object, found an array")) {
            try open(safetensorsBytes("[]"))
        }
        #expect(throws: SafetensorsError.schema(path: path, entry: "a", reason: "'shape' must hold non-negative integers")) {
            try open(safetensorsBytes(#"{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}}"#))
        }
        #expect(throws: SafetensorsError.schema(path: path, entry: "a", reason: "'data_offsets' must be two non-negative integers")) {
            try open(safetensorsBytes(#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0]}}"#, data: [0]))
        }
        #expect(throws: SafetensorsError.schema(path: path, entry: "a", reason: "unknown field 'extra'")) {
            try open(safetensorsBytes(#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"extra":1}}"#, data: [0]))
        }
        #expect(throws: SafetensorsError.schema(path: path, entry: "__metadata__", reason: "'n' is a number, not a string")) {
            try open(safetensorsBytes(#"{"__metadata__":{"n":1}}"#))
        }
    }

    @Test("tensor count limit, just at and over")
    func tensorCount() throws {
        let header = #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#
        var limits = SafetensorsFile.Limits()
        limits.maximumTensors = 2
        #expect(try open(safetensorsBytes(header, data: [1, 2]), limits: limits).tensorNames == ["a", "b"])
        limits.maximumTensors = 1
        #expect(throws: SafetensorsError.tooManyTensors(path: path, count: 2, limit: 1)) { try open(safetensorsBytes(header, data: [1, 2]), limits: limits) }
    }

    @Test("a config that is not a BEATs config, or malformed, is refused or ignored with the reason")
    func badConfig() {
        let header = #"{"__metadata__":{"beats_config":"{\"cfg\": [1]}"}}"#
        #expect(throws: SafetensorsError.config(source: "__metadata__[beats_config]", reason: "'cfg' is an array, not an object")) {
            try open(safetensorsBytes(header))
        }
        let wrongType = #"{"__metadata__":{"beats_config":"{\"cfg\": {\"encoder_layers\": \"x\"}}"}}"#
        #expect(throws: SafetensorsError.config(source: "__metadata__[beats_config]", reason: "config 'encoder_layers': expected an integer")) {
            try open(safetensorsBytes(wrongType))
        }
    }
}

@Suite("JSONReader")
struct JSONReaderTests {
    @Test("values, escapes, surrogate pairs, exact large integers")
    func values() throws {
        let value = try JSONReader.parse(#" {"a": [1, -2.5e3, true, false, null, "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"], "big": 9007199254740993} "#)
        #expect(value["a"] == .array([.integer(1), .number(-2500), .bool(true), .bool(false), .null,
                                      .string("x\"\\/\u{08}\u{0C}\n\r\té😀")]))
        #expect(value["big"] == .integer(9_007_199_254_740_993))
    }

    @Test("refuses what RFC 8259 refuses", arguments: [
        "", "{", "[1,]", "{\"a\":1,}", "01", "1.", "-", "\"\u{01}\"", "\"\\x\"", "\"\\ud800\"", "tru", "{} x", "{'a':1}", "[1 2]",
    ])
    func refusals(text: String) {
        #expect(throws: JSONError.self) { try JSONReader.parse(text) }
    }

    @Test("depth: 64 levels parse, 65 are refused")
    func depth() throws {
        _ = try JSONReader.parse(String(repeating: "[", count: 64) + String(repeating: "]", count: 64))
        #expect(throws: JSONError.tooDeep(offset: 64, limit: 64)) {
            try JSONReader.parse(String(repeating: "[", count: 65) + String(repeating: "]", count: 65))
        }
    }

    @Test("value count: at the limit parses, one more is refused")
    func valueCount() throws {
        let limits = JSONReader.Limits(maximumValues: 4)
        _ = try JSONReader.parse("[1,2,3]", limits: limits)
        #expect(throws: JSONError.tooManyValues(offset: 7, limit: 4)) { try JSONReader.parse("[1,2,3,4]", limits: limits) }
    }
}
