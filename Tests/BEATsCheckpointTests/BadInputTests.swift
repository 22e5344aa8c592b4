import BEATsCheckpoint
import BEATsCore
import BEATsTestSupport
import Foundation
import Testing

/// Opens a checkpoint and reads every tensor's values: the whole path a malformed file can break.
func openAndReadAll(_ path: String) throws {
    let checkpoint = try PyTorchCheckpoint.open(path: path)
    for name in checkpoint.tensorNames {
        _ = try #require(try checkpoint.tensor(named: name)).packedLittleEndianBytes()
    }
}

/// True when `error` is one of the reader's typed errors (never a stray `Error` from elsewhere).
func isTypedReaderError(_ error: any Error) -> Bool {
    error is ZipError || error is PickleError || error is CheckpointError || error is TensorError
        || error is FileAccessError || error is ConfigError
}

/// Writes `bytes` to a temporary file, runs `body` on its path.
@discardableResult
func withFile<T>(_ bytes: [UInt8], _ body: (String) throws -> T) throws -> T {
    try withTemporaryDirectory { directory in
        let url = directory.appendingPathComponent("input.pt")
        try Data(bytes).write(to: url)
        return try body(url.path)
    }
}

@Suite("Bad input")
struct BadInputTests {
    @Test("empty file")
    func empty() throws {
        try withFile([]) { path in
            #expect(throws: CheckpointError.notACheckpoint(path: path, firstBytes: [])) { try PyTorchCheckpoint.open(path: path) }
        }
    }

    @Test("random bytes, with and without a zip or pickle start")
    func random() throws {
        let noise = pseudoRandomBytes(50_000, seed: 42)
        try withFile(noise) { path in
            #expect(throws: CheckpointError.notACheckpoint(path: path, firstBytes: Array(noise.prefix(4)))) {
                try PyTorchCheckpoint.open(path: path)
            }
        }
        try withFile([0x50, 0x4B, 0x03, 0x04] + noise) { path in
            #expect(throws: ZipError.endRecordNotFound(fileSize: 50_004)) { try PyTorchCheckpoint.open(path: path) }
        }
        for seed in UInt64(1)...20 {
            try withFile([0x80, 0x02] + pseudoRandomBytes(2_000, seed: seed)) { path in
                do {
                    try openAndReadAll(path)
                    Issue.record("random pickle bytes (seed \(seed)) were accepted")
                } catch {
                    #expect(error is CheckpointError, "seed \(seed): \(error)")
                }
            }
        }
    }

    @Test("truncated.pt (the first half of a checkpoint)")
    func truncatedFixture() throws {
        let path = try Fixtures.path("parser/truncated.pt")
        #expect(throws: ZipError.endRecordNotFound(fileSize: 208_008)) { try PyTorchCheckpoint.open(path: path) }
    }

    @Test("tiny.pt and legacy.pt cut at many lengths, head kept or tail kept: always a typed error",
          arguments: ["models/tiny.pt", "parser/legacy.pt"])
    func cuts(fixture: String) throws {
        let bytes = try Fixtures.bytes(fixture)
        // Every 7919th length, the first bytes, and the last 40 (the end records of a zip).
        var lengths = Array(stride(from: 0, to: bytes.count, by: 7919)) + [1, 2, 3, 4, 15, 21, 22, 23, 100, 1000]
        lengths += (1...40).map { bytes.count - $0 } + [bytes.count - 100, bytes.count - 1000, bytes.count - 5000]
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("cut.pt")
            for length in lengths where length >= 0 && length < bytes.count {
                for keepHead in [true, false] {
                    let piece = keepHead ? Array(bytes[..<length]) : Array(bytes[(bytes.count - length)...])
                    try Data(piece).write(to: url)
                    do {
                        try openAndReadAll(url.path)
                        Issue.record("\(fixture) cut to \(length) bytes (head kept: \(keepHead)) was accepted")
                    } catch {
                        #expect(isTypedReaderError(error), "\(length) \(keepHead): \(error)")
                    }
                }
            }
        }
    }

    @Test("single-byte corruptions of views.pt and legacy_views.pt: typed error or valid tensors, never a crash",
          arguments: ["parser/views.pt", "generated/legacy_views.pt"])
    func byteFlips(fixture: String) throws {
        let original = try Fixtures.bytes(fixture)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var refused = 0
        for _ in 0..<400 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let position = Int((state >> 33) % UInt64(original.count))
            var bytes = original
            bytes[position] ^= UInt8(truncatingIfNeeded: (state >> 13) | 1)
            do {
                let checkpoint = try PyTorchCheckpoint.open(file: MappedFile(path: "flip@\(position)", copying: bytes))
                for name in checkpoint.tensorNames {
                    _ = try #require(try checkpoint.tensor(named: name)).packedLittleEndianBytes()
                }
            } catch {
                #expect(isTypedReaderError(error), "flip at \(position): \(error)")
                refused += 1
            }
        }
        #expect(refused > 0)
    }

    @Test("a missing data/N record names the tensor and the record")
    func missingRecord() throws {
        let path = try Fixtures.path("hostile/missing_record.pt")
        #expect(throws: CheckpointError.missingRecord(tensor: "w", record: "missing_record/data/0")) { try PyTorchCheckpoint.open(path: path) }
    }

    @Test("a record shorter than its storage names the tensor and the record")
    func shortRecord() throws {
        let path = try Fixtures.path("hostile/short_record.pt")
        #expect(throws: CheckpointError.recordTooShort(tensor: "w", record: "short_record/data/0", neededBytes: 64, recordBytes: 40)) {
            try PyTorchCheckpoint.open(path: path)
        }
    }

    @Test("a shape whose element count overflows")
    func overflowingShape() throws {
        let path = try Fixtures.path("hostile/overflow_shape.pt")
        #expect(throws: TensorError.elementCountOverflow(tensor: "w", shape: [1 << 62, 4])) { try PyTorchCheckpoint.open(path: path) }
    }

    @Test("a shape that reaches beyond its storage")
    func shapeBeyondStorage() throws {
        let path = try Fixtures.path("hostile/shape_exceeds_storage.pt")
        #expect(throws: TensorError.outOfStorage(tensor: "w", neededBytes: 40_000, storageBytes: 64)) { try PyTorchCheckpoint.open(path: path) }
    }

    @Test("a negative stride")
    func negativeStride() throws {
        let path = try Fixtures.path("hostile/negative_stride.pt")
        do {
            _ = try PyTorchCheckpoint.open(path: path)
            Issue.record("negative stride accepted")
        } catch let error as TensorError {
            #expect(error == .negativeStride(tensor: "w", stride: [-1]))
        } catch let error as PickleError {
            // The pickle machine may refuse the stride while rebuilding the tensor record.
            #expect(error.description.contains("stride"), "\(error)")
        }
    }

    @Test("zip bomb: a record inflating far beyond its declared 64 bytes")
    func zipBomb() throws {
        let checkpoint = try PyTorchCheckpoint.open(path: try Fixtures.path("hostile/zip_bomb.pt"))
        let archive = try ZipArchive(path: try Fixtures.path("hostile/zip_bomb.pt"))
        let entry = try #require(archive.entry(named: "zip_bomb/data/0"))
        #expect(entry.uncompressedSize == 64)
        let offset = try archive.dataRange(of: entry).lowerBound
        #expect(throws: ZipError.inflate(entry: "zip_bomb/data/0", offset: offset, .outputBeyondCapacity(capacity: 64))) {
            try checkpoint.tensor(named: "w")
        }
    }

    @Test("evil.pt: the unknown global is named and nothing runs")
    func evil() throws {
        let marker = "/tmp/beats-pwned"
        try? FileManager.default.removeItem(atPath: marker)
        let path = try Fixtures.path("parser/evil.pt")
        do {
            _ = try PyTorchCheckpoint.open(path: path)
            Issue.record("evil.pt was accepted")
        } catch let error as PickleError {
            guard case .forbiddenGlobal(let name, let location) = error else {
                Issue.record("expected a forbidden global, got \(error)")
                return
            }
            #expect(name == "posix.system")
            #expect(location.context == "evil/data.pkl")
            // GLOBAL 'posix system' sits at this offset of evil.pt's data.pkl (8249 bytes before it in tiny's, plus the header).
            let archive = try ZipArchive(path: path)
            let pickleStart = try archive.dataRange(of: try #require(archive.entry(named: "evil/data.pkl"))).lowerBound
            let bytes = try Fixtures.bytes("parser/evil.pt")
            #expect(Array(bytes[location.offset..<location.offset + 13]) == Array("cposix\nsystem".utf8))
            #expect(location.offset > pickleStart)
            #expect(error.description.contains("posix.system"))
        }
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    @Test("legacy file with a wrong magic number names the offset and the value")
    func legacyWrongMagic() throws {
        var bytes = try Fixtures.bytes("parser/legacy.pt")
        #expect(bytes[4] == 0x6C)
        bytes[4] = 0x6D
        try withFile(bytes) { path in
            #expect(throws: CheckpointError.legacyMagic(offset: 0, found: "0x1950a86a20f9469cfc6d")) { try PyTorchCheckpoint.open(path: path) }
        }
        // A pickle that is not a number at all.
        try withFile([0x80, 0x02, 0x4E, 0x2E]) { path in  // PROTO 2, NONE, STOP
            #expect(throws: CheckpointError.legacyMagic(offset: 0, found: "None None")) { try PyTorchCheckpoint.open(path: path) }
        }
    }

    @Test("legacy storage whose element count runs past the end of the file")
    func legacyStorageBeyondFile() throws {
        var bytes = try Fixtures.bytes("parser/legacy.pt")
        // The first storage's count (4096 float32) follows the key list, at offset 10093 (found with pickletools).
        let countOffset = 10_093
        #expect(Array(bytes[countOffset..<countOffset + 8]) == le64(4096))
        bytes.replaceSubrange(countOffset..<countOffset + 8, with: le64(1 << 40))
        try withFile(bytes) { path in
            do {
                _ = try PyTorchCheckpoint.open(path: path)
                Issue.record("accepted")
            } catch let error as CheckpointError {
                guard case .legacyStorageBeyondFile(_, let offset, let count, let width, let remaining) = error else {
                    Issue.record("unexpected \(error)")
                    return
                }
                #expect(offset == countOffset && count == 1 << 40 && width == 4 && remaining == bytes.count - countOffset - 8)
            }
        }
    }

    @Test("a CRC mismatch in a tensor record is found by verifyChecksums (through WeightStore), not by opening")
    func corruptedRecord() throws {
        var bytes = try Fixtures.bytes("models/tiny.pt")
        let archive = try ZipArchive(path: try Fixtures.path("models/tiny.pt"))
        let entry = try #require(archive.entry(named: "tiny/data/5"))
        let range = try archive.dataRange(of: entry)
        bytes[range.lowerBound + 3] ^= 0x01
        try withFile(bytes) { path in
            let checkpoint: any WeightStore = try PyTorchCheckpoint.open(path: path)
            #expect(checkpoint.tensorNames.count == 50)
            do {
                try checkpoint.verifyChecksums()
                Issue.record("corruption not detected")
            } catch let error as ZipError {
                guard case .checksumMismatch(let name, let expected, _) = error else {
                    Issue.record("unexpected \(error)")
                    return
                }
                #expect(name == "tiny/data/5" && expected == entry.crc32)
            }
        }
    }

    @Test("a data.pkl whose CRC does not match is refused at open")
    func corruptedPickle() throws {
        var bytes = try Fixtures.bytes("models/tiny.pt")
        let archive = try ZipArchive(path: try Fixtures.path("models/tiny.pt"))
        let entry = try #require(archive.entry(named: "tiny/data.pkl"))
        let range = try archive.dataRange(of: entry)
        // Inside a string of the pickle, so the pickle itself would still load.
        let cfgKey = try #require(Array(bytes[range]).firstRange(of: Array("encoder_layers".utf8)))
        bytes[range.lowerBound + cfgKey.lowerBound] = UInt8(ascii: "E")
        try withFile(bytes) { path in
            do {
                _ = try PyTorchCheckpoint.open(path: path)
                Issue.record("accepted")
            } catch let error as ZipError {
                guard case .checksumMismatch(let name, let expected, _) = error else {
                    Issue.record("unexpected \(error)")
                    return
                }
                #expect(name == "tiny/data.pkl" && expected == entry.crc32)
            }
        }
    }
}
