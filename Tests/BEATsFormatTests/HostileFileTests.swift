import BEATsCore
import BEATsFormat
import BEATsTestSupport
import Foundation
import Testing

/// A valid int8 tiny_ft file, its bytes, and helpers to write altered copies.
private struct Specimen {
    let converted: ConvertedFixture
    let bytes: [UInt8]
    let header: NativeHeader

    init() throws {
        converted = try ConvertedFixture.make("models/tiny_ft.pt", options: ConversionOptions(quantizeInt8: true))
        bytes = try Array(Data(contentsOf: URL(fileURLWithPath: converted.outputPath)))
        header = try NativeModelFile.open(path: converted.outputPath).header
    }

    /// Writes `bytes` to a new file and opens it.
    func open(_ bytes: [UInt8]) throws -> NativeModelFile {
        let path = converted.directory.appendingPathComponent("altered-\(UUID().uuidString).beatsw").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return try NativeModelFile.open(path: path)
    }

    /// The file with its header replaced by `change(header)`, re-encoded with a valid checksum
    /// (offsets and checksums do not change the header's length).
    func withHeader(_ change: (inout NativeHeader) -> Void) -> [UInt8] {
        var altered = header
        change(&altered)
        let prefix = altered.encodedPrefix()
        var result = bytes
        result.replaceSubrange(0..<prefix.count, with: prefix)
        return result
    }

    func index(of name: String) -> Int { header.tensors.firstIndex { $0.name == name } ?? -1 }
}

@Suite("Native format: hostile files")
struct HostileFileTests {
    @Test("a valid file opens and verifies")
    func validFile() throws {
        let specimen = try Specimen()
        defer { specimen.converted.remove() }
        let file = try specimen.open(specimen.bytes)
        #expect(file.checksumFailures().isEmpty)
        #expect(specimen.bytes.withUnsafeBytes { NativeModelFile.recognizes(UnsafeRawBufferPointer(rebasing: $0[0..<16])) })
    }

    @Test("truncated files", arguments: [0, 7, 31, 100, 5000, -1])
    func truncated(length: Int) throws {
        let specimen = try Specimen()
        defer { specimen.converted.remove() }
        let cut = length < 0 ? specimen.bytes.count - 1 : length
        let bytes = Array(specimen.bytes.prefix(cut))
        #expect(throws: NativeFormatError.self) { try specimen.open(bytes) }
        if cut < 32 {
            #expect(throws: NativeFormatError.fileTooSmall(size: cut)) { try specimen.open(bytes) }
        } else if cut < 32 + specimen.header.encodedBlock().count {
            #expect(throws: NativeFormatError.headerBeyondFile(headerEnd: UInt64(32 + specimen.header.encodedBlock().count), fileSize: cut)) {
                try specimen.open(bytes)
            }
        } else {
            let last = try #require(specimen.header.tensors.last)
            let scales = try #require(last.scales ?? Optional(last.data))
            #expect(throws: NativeFormatError.pastEndOfFile(tensor: last.name, region: last.scales == nil ? .data : .scales,
                                                            end: UInt64(scales.end), fileSize: cut)) {
                try specimen.open(bytes)
            }
        }
    }

    @Test("wrong magic, newer and older major versions, newer minor accepted")
    func magicAndVersion() throws {
        let specimen = try Specimen()
        defer { specimen.converted.remove() }
        var bytes = specimen.bytes
        bytes[1] = UInt8(ascii: "b")
        #expect(throws: NativeFormatError.badMagic) { try specimen.open(bytes) }
        #expect(!bytes.withUnsafeBytes { NativeModelFile.recognizes(UnsafeRawBufferPointer(rebasing: $0[0..<16])) })

        bytes = specimen.bytes
        bytes[8] = 2
        #expect(throws: NativeFormatError.newerMajorVersion(found: 2, supported: 1)) { try specimen.open(bytes) }
        #expect(NativeFormatError.newerMajorVersion(found: 2, supported: 1).description.contains("newer"))
        bytes[8] = 0
        #expect(throws: NativeFormatError.unsupportedVersion(major: 0)) { try specimen.open(bytes) }

        bytes = specimen.bytes
        bytes[10] = 7  // minor 7: later minors only append to the header, so this reader still reads it
        let file = try specimen.open(bytes)
        #expect(file.header.minorVersion == 7)
    }

    @Test("header length beyond the file, out of range, and a corrupted header")
    func headerLength() throws {
        let specimen = try Specimen()
        defer { specimen.converted.remove() }
        var bytes = specimen.bytes
        let huge = UInt64(specimen.bytes.count)  // 32 + this is past the end
        withUnsafeBytes(of: huge.littleEndian) { bytes.replaceSubrange(16..<24, with: $0) }
        #expect(throws: NativeFormatError.headerBeyondFile(headerEnd: huge + 32, fileSize: specimen.bytes.count)) { try specimen.open(bytes) }

        withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { bytes.replaceSubrange(16..<24, with: $0) }
        #expect(throws: NativeFormatError.headerLengthOutOfRange(length: 1 << 40, limit: 16 << 20)) { try specimen.open(bytes) }
        withUnsafeBytes(of: UInt64(0).littleEndian) { bytes.replaceSubrange(16..<24, with: $0) }
        #expect(throws: NativeFormatError.headerLengthOutOfRange(length: 0, limit: 16 << 20)) { try specimen.open(bytes) }

        bytes = specimen.bytes
        bytes[40] ^= 0x01  // inside the header block
        do {
            _ = try specimen.open(bytes)
            Issue.record("a corrupted header was accepted")
        } catch let error as NativeFormatError {
            guard case .headerChecksumMismatch = error else { Issue.record("unexpected \(error)"); return }
        }
    }

    @Test("tensor past the end of the file")
    func tensorPastEnd() throws {
        let specimen = try Specimen()
        defer { specimen.converted.remove() }
        let position = specimen.index(of: "predictor.bias")
        // Aligned, after the previous region, but beyond the end of the file.
        let offset = (specimen.bytes.count + 63) / 64 * 64 + 64 * 100
        let bytes = specimen.withHeader { $0.tensors[position].data.offset = offset }
        #expect(throws: NativeFormatError.pastEndOfFile(tensor: "predictor.bias", region: .data,
                                                        end: UInt64(offset + specimen.header.tensors[position].data.length),
                                                        fileSize: specimen.bytes.count)) {
            try specimen.open(bytes)
        }
        let wild = specimen.withHeader { $0.tensors[position].data.offset = Int.max / 64 * 64 }
        #expect(throws: NativeFormatError.self) { try specimen.open(wild) }
    }

    @Test("overlapping tensors")
    func overlap() throws {
        let specimen = try Specimen()
        defer { specimen.converted.remove() }
        let first = specimen.header.tensors[0], second = specimen.header.tensors[1]
        #expect(first.name == "post_extract_proj.weight")
        let bytes = specimen.withHeader { $0.tensors[1].data.offset = first.data.offset }
        // post_extract_proj.weight is qint8: its scales end is the previous region's end.
        let previousEnd = try #require(first.scales).end
        #expect(throws: NativeFormatError.overlap(tensor: second.name, region: .data, offset: UInt64(first.data.offset), previousEnd: previousEnd)) {
            try specimen.open(bytes)
        }
    }

    @Test("misaligned offset, region before the data region, wrong length")
    func misalignedAndWrongLength() throws {
        let specimen = try Specimen()
        defer { specimen.converted.remove() }
        let position = specimen.index(of: "layer_norm.bias")
        let entry = specimen.header.tensors[position]
        let misaligned = specimen.withHeader { $0.tensors[position].data.offset += 4 }
        #expect(throws: NativeFormatError.misaligned(tensor: "layer_norm.bias", region: .data, offset: UInt64(entry.data.offset + 4))) {
            try specimen.open(misaligned)
        }
        let early = specimen.withHeader { $0.tensors[0].data.offset = 64 }
        #expect(throws: NativeFormatError.beforeDataRegion(tensor: specimen.header.tensors[0].name, region: .data, offset: 64,
                                                          dataStart: specimen.header.tensors[0].data.offset)) {
            try specimen.open(early)
        }
        let long = specimen.withHeader { $0.tensors[position].data.length += 4 }
        #expect(throws: NativeFormatError.lengthMismatch(tensor: "layer_norm.bias", region: .data,
                                                        stored: UInt64(entry.data.length + 4), expected: entry.data.length)) {
            try specimen.open(long)
        }
    }

    @Test("trailing bytes after the last tensor")
    func trailingBytes() throws {
        let specimen = try Specimen()
        defer { specimen.converted.remove() }
        #expect(throws: NativeFormatError.trailingBytes(expectedEnd: specimen.bytes.count, fileSize: specimen.bytes.count + 3)) {
            try specimen.open(specimen.bytes + [1, 2, 3])
        }
    }

    @Test("unknown dtype, duplicate names, over-limit counts")
    func headerFields() throws {
        let specimen = try Specimen()
        defer { specimen.converted.remove() }
        // The dtype byte of the first tensor follows its name: u32 length + "post_extract_proj.weight".
        let block = specimen.header.encodedBlock()
        let name = Array("post_extract_proj.weight".utf8)
        let nameStart = try #require(firstRange(of: name, in: block))
        var altered = block
        altered[nameStart + name.count] = 42
        #expect(throws: NativeFormatError.unknownDType(tensor: "post_extract_proj.weight", code: 42)) {
            try specimen.open(resealed(specimen.bytes, block: altered))
        }

        // The writer refuses duplicate names; the reader too (tensors 1 and 2 renamed alike,
        // same byte length, so the header keeps its size).
        var header = specimen.header
        header.tensors[1].name = "post_extract_proj.bias"
        header.tensors[2].name = "post_extract_proj.bias"
        let directory = specimen.converted.directory
        let path = directory.appendingPathComponent("dup.beatsw").path
        #expect(throws: NativeWriteError.invalidTensor(name: "post_extract_proj.bias", reason: "name appears twice")) {
            _ = try NativeModelWriter(destination: path, header: header)
        }
        let first = specimen.header.tensors[1].name, second = specimen.header.tensors[2].name
        if first.utf8.count == second.utf8.count {
            let duplicated = specimen.withHeader { $0.tensors[2].name = first }
            #expect(throws: NativeFormatError.duplicateTensorName(first)) { try specimen.open(duplicated) }
        } else {
            Issue.record("tensors 1 and 2 (\(first), \(second)) no longer have names of equal length")
        }

        // A tensor count over the limit, written where the count sits (just before the first name).
        var counted = block
        let countOffset = nameStart - 4 - 4
        withUnsafeBytes(of: UInt32(70_000).littleEndian) { counted.replaceSubrange(countOffset..<(countOffset + 4), with: $0) }
        #expect(throws: NativeFormatError.limitExceeded(field: "tensor count", value: 70_000, limit: 65_536, offset: 32 + countOffset)) {
            try specimen.open(resealed(specimen.bytes, block: counted))
        }

        // A string length running past the header block.
        var long = block
        withUnsafeBytes(of: UInt32(1000).littleEndian) { long.replaceSubrange((nameStart - 4)..<nameStart, with: $0) }
        #expect(throws: NativeFormatError.self) { try specimen.open(resealed(specimen.bytes, block: long)) }
    }

    @Test("a flipped byte in tensor data is reported with the tensor's name", arguments: ["encoder.layers.1.fc2.bias", "encoder.layers.0.fc1.weight"])
    func corruptedData(name: String) throws {
        let specimen = try Specimen()
        defer { specimen.converted.remove() }
        let entry = try #require(specimen.header.tensors.first { $0.name == name })
        var bytes = specimen.bytes
        bytes[entry.data.offset + entry.data.length / 2] ^= 0x10
        let file = try specimen.open(bytes)  // opening reads no tensor data
        let failures = file.checksumFailures()
        #expect(failures.count == 1)
        guard case .checksumMismatch(let tensor, let region, let offset, _, _) = failures.first else {
            Issue.record("expected a checksum mismatch, got \(failures)")
            return
        }
        #expect(tensor == name && region == .data && offset == entry.data.offset)
        let store: any WeightStore = file  // what `beats check` and library callers hold
        #expect(throws: failures[0]) { try store.verifyChecksums() }
        #expect(failures[0].description.contains(name))

        if let scales = entry.scales {
            var scaleBytes = specimen.bytes
            scaleBytes[scales.offset] ^= 0x01
            let scaleFailures = try specimen.open(scaleBytes).checksumFailures()
            guard case .checksumMismatch(let tensor, let region, _, _, _) = scaleFailures.first else {
                Issue.record("expected a scales checksum mismatch")
                return
            }
            #expect(tensor == name && region == .scales)
        }
    }

    @Test("every DType has a code, and codes round trip")
    func dtypeCodes() {
        for dtype in DType.allCases {
            #expect(NativeFormat.dtype(code: NativeFormat.code(of: dtype)) == dtype)
        }
        #expect(NativeFormat.dtype(code: 11) == nil)
    }
}

private func firstRange(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
    guard needle.count <= haystack.count else { return nil }
    for start in 0...(haystack.count - needle.count) where Array(haystack[start..<(start + needle.count)]) == needle {
        return start
    }
    return nil
}

/// The file with its header block replaced by `block` (same length) and the checksum recomputed.
private func resealed(_ bytes: [UInt8], block: [UInt8]) -> [UInt8] {
    var result = bytes
    result.replaceSubrange(32..<(32 + block.count), with: block)
    let checksum = block.withUnsafeBytes { XXHash64.hash($0) }
    withUnsafeBytes(of: checksum.littleEndian) { result.replaceSubrange(24..<32, with: $0) }
    return result
}
