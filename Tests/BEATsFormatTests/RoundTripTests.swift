import BEATsCheckpoint
import BEATsCore
import BEATsFormat
import BEATsTestSupport
import Foundation
import Testing

@Suite("Native format: round trips")
struct RoundTripTests {
    @Test("every tensor of every fixture survives float32 conversion bitwise", arguments: roundTripFixtures)
    func float32RoundTrip(fixture: String) throws {
        let converted = try ConvertedFixture.make(fixture)
        defer { converted.remove() }
        let source = try PyTorchCheckpoint.open(path: converted.sourcePath)
        let native = try NativeModelFile.open(path: converted.outputPath)

        #expect(native.formatName == "beatsw")
        #expect(native.kind == source.kind)
        #expect(native.config == source.config)
        #expect(native.labels == source.labels)
        let hasWeightNorm = source.tensorNames.contains("encoder.pos_conv.0.weight_g")
        let expectedNames = source.tensorNames.compactMap { name -> String? in
            if name == "encoder.pos_conv.0.weight_v" { return nil }
            return name == "encoder.pos_conv.0.weight_g" ? "encoder.pos_conv.0.weight" : name
        }
        #expect(native.tensorNames == expectedNames)
        #expect(converted.summary.tensors.count == expectedNames.count)

        for name in source.tensorNames where !name.hasPrefix("encoder.pos_conv.0.weight_") {
            let original = try #require(try source.tensor(named: name))
            let stored = try #require(try native.tensor(named: name))
            #expect(stored.shape == original.shape, "\(name)")
            if original.dtype.isFloatingPoint {
                // float16 and bfloat16 widen to float32 exactly; float32 is copied.
                #expect(stored.dtype == .float32, "\(name)")
                #expect(bitPatterns(try stored.floats()) == bitPatterns(try original.floats()), "\(name)")
            } else {
                #expect(stored.dtype == original.dtype, "\(name)")
                #expect(stored.packedLittleEndianBytes() == original.packedLittleEndianBytes(), "\(name)")
            }
        }
        if hasWeightNorm {
            let g = try #require(try source.tensor(named: "encoder.pos_conv.0.weight_g"))
            let v = try #require(try source.tensor(named: "encoder.pos_conv.0.weight_v"))
            let folded = try #require(try native.tensor(named: "encoder.pos_conv.0.weight"))
            #expect(folded.shape == v.shape)
            let expected = foldedWeightReference(g: try g.doubles(), v: try v.doubles(), shape: v.shape)
            let actual = try folded.doubles()
            let worst = zip(actual, expected).map { abs($0 - $1) }.max() ?? 0
            #expect(worst <= 1e-6)
            // Stored as the float32 nearest to the float64 value.
            #expect(actual == expected.map { Double(Float($0)) })
        }
        try native.verifyChecksums()
    }

    @Test("--dtype f16 stores every float tensor correctly rounded to float16", arguments: ["models/tiny.pt", "parser/bf16.pt"])
    func float16RoundTrip(fixture: String) throws {
        let converted = try ConvertedFixture.make(fixture, options: ConversionOptions(floatType: .float16))
        defer { converted.remove() }
        let source = try PyTorchCheckpoint.open(path: converted.sourcePath)
        let native = try NativeModelFile.open(path: converted.outputPath)
        for name in source.tensorNames where !name.hasPrefix("encoder.pos_conv.0.weight_") {
            let original = try #require(try source.tensor(named: name))
            let stored = try #require(try native.tensor(named: name))
            #expect(stored.dtype == .float16, "\(name)")
            let expected = try original.doubles().map { Float16($0).bitPattern }
            let actual = try #require(stored.contiguousBytes).bindMemory(to: UInt16.self).map { UInt16(littleEndian: $0) }
            #expect(actual == expected, "\(name)")
        }
        let folded = try #require(try native.tensor(named: "encoder.pos_conv.0.weight"))
        #expect(folded.dtype == .float16)
    }

    @Test("float16 rounding is to nearest, ties to even, with overflow to infinity")
    func float16Rounding() throws {
        // 1 + 2^-11 lies halfway between 1 and the next float16: ties go to the even one (1).
        let values: [Float] = [1 + 0x1p-11, 1 + 3 * 0x1p-11, 65519, 65520, -65520, 0x1p-25, 0x1p-24 * 1.5, 0.1]
        let expectedBits: [UInt16] = [0x3C00, 0x3C02, 0x7BFF, 0x7C00, 0xFC00, 0x0000, 0x0002, 0x2E66]
        let store = try MemoryWeightStore(tensors: [("values", .float32, [values.count], MemoryWeightStore.float32(values))])
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("f16.beatsw").path
        _ = try NativeConverter.convert(store, to: path, options: ConversionOptions(floatType: .float16))
        let stored = try #require(try NativeModelFile.open(path: path).tensor(named: "values"))
        let bits = try #require(stored.contiguousBytes).bindMemory(to: UInt16.self).map { UInt16(littleEndian: $0) }
        #expect(bits == expectedBits)
    }

    @Test("parametrizations.weight.original0/1 (torch ≥ 2.1) fold to the very bytes weight_g/weight_v give",
          arguments: [ConversionOptions.FloatType.float32, .float16])
    func parametrizedWeightNorm(floatType: ConversionOptions.FloatType) throws {
        let checkpoint = try PyTorchCheckpoint.open(path: try Fixtures.path("models/tiny.pt"))
        let renamed = ["encoder.pos_conv.0.weight_g": "encoder.pos_conv.0.parametrizations.weight.original0",
                       "encoder.pos_conv.0.weight_v": "encoder.pos_conv.0.parametrizations.weight.original1"]
        func store(renaming: [String: String]) throws -> MemoryWeightStore {
            try MemoryWeightStore(kind: checkpoint.kind, config: checkpoint.config, labels: checkpoint.labels,
                                  tensors: checkpoint.tensorNames.map { name in
                let view = try #require(try checkpoint.tensor(named: name))
                return (renaming[name] ?? name, view.dtype, view.shape, view.packedLittleEndianBytes())
            })
        }
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var files: [[UInt8]] = []
        for (index, renaming) in [[:], renamed].enumerated() {
            let path = directory.appendingPathComponent("\(index).beatsw").path
            _ = try NativeConverter.convert(try store(renaming: renaming), to: path, options: ConversionOptions(floatType: floatType))
            let native = try NativeModelFile.open(path: path)
            #expect(native.tensorNames.contains("encoder.pos_conv.0.weight"))
            #expect(!native.tensorNames.contains { $0.contains("weight_") || $0.contains("parametrizations") })
            files.append(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
        }
        #expect(files[0] == files[1])

        let incomplete = try MemoryWeightStore(kind: checkpoint.kind, config: checkpoint.config, tensors: [
            ("encoder.pos_conv.0.parametrizations.weight.original1", .float32, [1], MemoryWeightStore.float32([1])),
        ])
        #expect(throws: ConversionError.missingWeightNormPart(present: "encoder.pos_conv.0.parametrizations.weight.original1",
                                                              missing: "encoder.pos_conv.0.parametrizations.weight.original0")) {
            try NativeConverter.convert(incomplete, to: directory.appendingPathComponent("x.beatsw").path, options: ConversionOptions())
        }
    }

    @Test("header records converter, source name and the source's SHA-256")
    func provenance() throws {
        let converted = try ConvertedFixture.make("models/tiny.pt", hashSource: true)
        defer { converted.remove() }
        let header = try NativeModelFile.open(path: converted.outputPath).header
        #expect(header.converter == NativeFormat.converterName)
        #expect(header.sourceName == "tiny.pt")
        // sha256sum Fixtures/models/tiny.pt
        let expected = "aef3876e5d295d837911d8ff58e333bbfc96e4d932daaec6f8d086ca8725244e"
        #expect(header.sourceSHA256.map { String(format: "%02x", $0) }.joined() == expected)
        #expect(header.metadata.contains(NativeMetadataItem(key: "source_format", value: "pytorch-zip")))
        #expect(header.metadata.contains(NativeMetadataItem(key: "quantization", value: "none")))
    }

    @Test("layout: page-aligned data region, 64-byte aligned tensors, file ends at the last tensor")
    func layout() throws {
        let converted = try ConvertedFixture.make("models/tiny_ft.pt", options: ConversionOptions(floatType: .float32, quantizeInt8: true))
        defer { converted.remove() }
        let native = try NativeModelFile.open(path: converted.outputPath)
        let headerLength = native.header.encodedBlock().count
        let dataStart = NativeHeader.dataStart(headerLength: headerLength)
        #expect(dataStart % 4096 == 0 && dataStart >= 32 + headerLength)
        var previousEnd = dataStart
        for entry in native.header.tensors {
            for region in [entry.data, entry.scales].compactMap({ $0 }) {
                #expect(region.offset % 64 == 0)
                #expect(region.offset >= previousEnd)
                previousEnd = region.end
            }
        }
        #expect(native.byteCount == previousEnd)
        #expect(converted.summary.bytesOut == native.byteCount)
    }

    @Test("without fsync (--no-fsync) the file is byte for byte the durable one",
          arguments: [false, true])
    func nonDurableConversionWritesTheSameBytes(quantize: Bool) throws {
        let durable = try ConvertedFixture.make("models/tiny_ft.pt", options: ConversionOptions(quantizeInt8: quantize), hashSource: true)
        defer { durable.remove() }
        var options = ConversionOptions(quantizeInt8: quantize)
        options.durable = false
        let fast = try ConvertedFixture.make("models/tiny_ft.pt", options: options, hashSource: true)
        defer { fast.remove() }
        #expect(try Data(contentsOf: URL(fileURLWithPath: fast.outputPath)) == Data(contentsOf: URL(fileURLWithPath: durable.outputPath)))
        #expect(try FileManager.default.contentsOfDirectory(atPath: fast.directory.path) == ["model.beatsw"])
    }

    @Test("a region copied from a file descriptor equals the same bytes appended; a source that ends early is an error")
    func writerCopiesFromDescriptor() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // 600 KB: more than two of the writer's 256 KB pieces, and not a multiple of one.
        let bytes = (0..<(600 << 10)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
        let sourcePath = directory.appendingPathComponent("source.bin").path
        try Data(bytes).write(to: URL(fileURLWithPath: sourcePath))
        let source = try MappedFile(path: sourcePath)
        let entry = NativeTensorEntry(name: "x", dtype: .uint8, shape: [bytes.count - 100], data: NativeRegion(offset: 0, length: 0, checksum: 0))
        let header = NativeHeader(kind: .pretrained, config: BEATsConfig(), tensors: [entry])

        let copiedPath = directory.appendingPathComponent("copied.beatsw").path
        let copied = try NativeModelWriter(destination: copiedPath, header: header)
        try copied.append(copyingFrom: source.descriptor, sourcePath: sourcePath, at: 100, count: bytes.count - 100)
        try copied.finishRegion()
        try copied.commit()
        let appendedPath = directory.appendingPathComponent("appended.beatsw").path
        let appended = try NativeModelWriter(destination: appendedPath, header: header)
        try bytes.withUnsafeBytes { try appended.append(UnsafeRawBufferPointer(rebasing: $0[100...])) }
        try appended.finishRegion()
        try appended.commit()
        #expect(try Data(contentsOf: URL(fileURLWithPath: copiedPath)) == Data(contentsOf: URL(fileURLWithPath: appendedPath)))
        try NativeModelFile.open(path: copiedPath).verifyChecksums()

        // The file is 100 bytes shorter than the region needs from offset 200.
        let short = try NativeModelWriter(destination: directory.appendingPathComponent("short.beatsw").path, header: header)
        #expect(throws: NativeWriteError.sourceShrank(path: sourcePath, offset: bytes.count)) {
            try short.append(copyingFrom: source.descriptor, sourcePath: sourcePath, at: 200, count: bytes.count - 100)
        }
        short.abandon()
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: directory.path)) == ["source.bin", "copied.beatsw", "appended.beatsw"])
    }

    @Test("the writer refuses regions that are too long or missing")
    func writerChecksRegions() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("w.beatsw").path
        let entry = NativeTensorEntry(name: "x", dtype: .float32, shape: [2], data: NativeRegion(offset: 0, length: 0, checksum: 0))
        let writer = try NativeModelWriter(destination: path, header: NativeHeader(kind: .pretrained, config: BEATsConfig(), tensors: [entry]))
        let tooMany = [UInt8](repeating: 0, count: 12)
        #expect(throws: NativeWriteError.regionOverflow(tensor: "x", region: .data, planned: 8)) {
            try tooMany.withUnsafeBytes { try writer.append($0) }
        }
        #expect(throws: NativeWriteError.regionsLeft(next: "x")) { try writer.commit() }
        writer.abandon()
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }
}
