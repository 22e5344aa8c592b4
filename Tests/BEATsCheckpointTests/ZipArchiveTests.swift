import BEATsCheckpoint
import BEATsCore
import BEATsTestSupport
import Foundation
import Testing

/// Runs `body` with a fresh temporary directory that is removed afterwards.
@discardableResult
func withTemporaryDirectory<T>(_ body: (URL) throws -> T) throws -> T {
    let directory = try Fixtures.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    return try body(directory)
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
func pseudoRandomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var state = seed | 1
    return (0..<count).map { _ in
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return UInt8(truncatingIfNeeded: state >> 24)
    }
}

func contentsArray(_ archive: ZipArchive, _ name: String, verify: Bool = false) throws -> [UInt8] {
    let entry = try #require(archive.entry(named: name))
    let storage = try archive.contents(of: entry, verify: verify)
    // Inflated bytes live as long as the storage that owns them.
    return withExtendedLifetime(storage) { Array(storage.bytes) }
}

@Suite("Zip container")
struct ZipArchiveTests {
    let text = Array("The quick brown fox jumps over the lazy dog. ".utf8)

    @Test("stored entry behind a trailing comment that itself holds an end-record signature")
    func storedWithComment() throws {
        var builder = ZipTestBuilder()
        builder.add(.init(name: "a/data.pkl", contents: text))
        // A comment that contains a fake end record must not be taken for the real one.
        builder.comment = Array("comment PK".utf8) + le32(0x0605_4b50) + [UInt8](repeating: 0x20, count: 40)
        try withTemporaryDirectory { directory in
            let archive = try ZipArchive(path: try builder.write(in: directory))
            #expect(archive.entries.map(\.name) == ["a/data.pkl"])
            #expect(try contentsArray(archive, "a/data.pkl", verify: true) == text)
        }
    }

    @Test("comment of the maximum length (65,535 bytes)")
    func maximumComment() throws {
        var builder = ZipTestBuilder()
        builder.add(.init(name: "x", contents: [1, 2, 3]))
        builder.comment = [UInt8](repeating: 0x41, count: 0xFFFF)
        try withTemporaryDirectory { directory in
            let archive = try ZipArchive(path: try builder.write(in: directory))
            #expect(try contentsArray(archive, "x") == [1, 2, 3])
        }
    }

    @Test("ZIP64 end records and ZIP64 extra fields give the real sizes and offsets")
    func zip64() throws {
        var builder = ZipTestBuilder()
        builder.zip64EndRecords = true
        builder.add(.init(name: "p/first", contents: text, zip64Fields: true))
        builder.add(.init(name: "p/second", contents: Array(text.reversed()), deflate: true, zip64Fields: true))
        try withTemporaryDirectory { directory in
            let archive = try ZipArchive(path: try builder.write(in: directory))
            #expect(archive.entries.count == 2)
            let second = try #require(archive.entry(named: "p/second"))
            #expect(second.uncompressedSize == text.count)
            #expect(second.localHeaderOffset == 30 + 7 + text.count)
            #expect(try contentsArray(archive, "p/first") == text)
            #expect(try contentsArray(archive, "p/second") == Array(text.reversed()))
        }
    }

    @Test("data descriptor: sizes and CRC come from the central directory, not the zeroed local header")
    func dataDescriptor() throws {
        var builder = ZipTestBuilder()
        builder.add(.init(name: "d/one", contents: text, dataDescriptor: true))
        builder.add(.init(name: "d/two", contents: text + text, deflate: true, dataDescriptor: true))
        try withTemporaryDirectory { directory in
            let archive = try ZipArchive(path: try builder.write(in: directory))
            #expect(try #require(archive.entry(named: "d/one")).hasDataDescriptor)
            #expect(try contentsArray(archive, "d/one", verify: true) == text)
            #expect(try contentsArray(archive, "d/two") == text + text)
        }
    }

    @Test("deflated entry is inflated to exactly its declared size; stored entry is a view into the map")
    func deflatedAndStored() throws {
        let big = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 / 7) }
        var builder = ZipTestBuilder()
        builder.add(.init(name: "z/deflated", contents: big, deflate: true))
        builder.add(.init(name: "z/stored", contents: big))
        try withTemporaryDirectory { directory in
            let archive = try ZipArchive(path: try builder.write(in: directory))
            let deflated = try #require(archive.entry(named: "z/deflated"))
            #expect(deflated.method == .deflated)
            #expect(deflated.compressedSize < big.count / 10)
            let inflated = try archive.contents(of: deflated)
            #expect(inflated.count == big.count)
            #expect(Array(inflated.bytes) == big)
            #expect(ObjectIdentifier(inflated.owner) != ObjectIdentifier(archive.file))

            let stored = try archive.contents(of: try #require(archive.entry(named: "z/stored")))
            #expect(ObjectIdentifier(stored.owner) == ObjectIdentifier(archive.file))
            let mapStart = try #require(archive.file.bytes.baseAddress)
            let viewStart = try #require(stored.bytes.baseAddress)
            let expectedStart = try archive.dataRange(of: try #require(archive.entry(named: "z/stored"))).lowerBound
            #expect(viewStart - mapStart == expectedStart)
            #expect(Array(stored.bytes) == big)
        }
    }

    @Test("local extra field longer than the central one (torch's 64-byte alignment padding)")
    func localPadding() throws {
        var builder = ZipTestBuilder()
        // 30 + 6 (name) + 4 (extra header) + 24 = 64: data starts on a 64-byte boundary.
        builder.add(.init(name: "t/data", contents: text, localPadding: 24))
        try withTemporaryDirectory { directory in
            let archive = try ZipArchive(path: try builder.write(in: directory))
            let entry = try #require(archive.entry(named: "t/data"))
            #expect(try archive.dataRange(of: entry) == 64..<64 + text.count)
            #expect(try contentsArray(archive, "t/data", verify: true) == text)
        }
    }

    @Test("empty archive (only an end record) has no entries")
    func emptyArchive() throws {
        try withTemporaryDirectory { directory in
            let archive = try ZipArchive(path: try ZipTestBuilder().write(in: directory))
            #expect(archive.entries.isEmpty)
        }
    }

    @Test("entry names with '..' components or absolute paths are refused", arguments: [
        "../escape", "a/../../etc/passwd", "/etc/passwd", "a\\..\\b", "C:\\windows", "\\server\\share",
    ])
    func unsafeNames(name: String) throws {
        var builder = ZipTestBuilder()
        builder.add(.init(name: "ok/data.pkl", contents: [1]))
        builder.add(.init(name: name, contents: [2]))
        try withTemporaryDirectory { directory in
            let path = try builder.write(in: directory)
            let offset = 30 + 11 + 1 + 30 + name.utf8.count + 1 + 46 + 11
            #expect(throws: ZipError.badEntryName(name: name, offset: offset)) { try ZipArchive(path: path) }
        }
    }

    @Test("names that only look odd are fine")
    func oddButSafeNames() throws {
        var builder = ZipTestBuilder()
        builder.add(.init(name: "a/..b/c..", contents: [1]))
        builder.add(.init(name: "archive/.data/version", contents: [2]))
        try withTemporaryDirectory { directory in
            let archive = try ZipArchive(path: try builder.write(in: directory))
            #expect(archive.entries.map(\.name) == ["a/..b/c..", "archive/.data/version"])
        }
    }

    @Test("CRC mismatch is detected for stored (when verifying) and deflated (always) entries")
    func checksumMismatch() throws {
        var builder = ZipTestBuilder()
        builder.add(.init(name: "c/stored", contents: text, crcOverride: 0xDEAD_BEEF))
        builder.add(.init(name: "c/deflated", contents: text, deflate: true, crcOverride: 0x1234_5678))
        let actual = text.withUnsafeBytes { Inflater.crc32($0) }
        #expect(actual == 0x30EB_05BC)  // zlib.crc32(text) in Python
        try withTemporaryDirectory { directory in
            let archive = try ZipArchive(path: try builder.write(in: directory))
            let stored = try #require(archive.entry(named: "c/stored"))
            // Handing out a view does not read the bytes, so it cannot check them.
            #expect(try contentsArray(archive, "c/stored") == text)
            #expect(throws: ZipError.checksumMismatch(entry: "c/stored", expected: 0xDEAD_BEEF, actual: actual)) {
                try archive.verifyChecksum(of: stored)
            }
            #expect(throws: ZipError.checksumMismatch(entry: "c/deflated", expected: 0x1234_5678, actual: actual)) {
                try archive.contents(of: try #require(archive.entry(named: "c/deflated")))
            }
        }
    }

    @Test("a zero CRC means 'not written' and is accepted")
    func zeroChecksum() throws {
        var builder = ZipTestBuilder()
        builder.add(.init(name: "c/stored", contents: text, crcOverride: 0))
        builder.add(.init(name: "c/deflated", contents: text, deflate: true, crcOverride: 0))
        try withTemporaryDirectory { directory in
            let archive = try ZipArchive(path: try builder.write(in: directory))
            #expect(try contentsArray(archive, "c/stored", verify: true) == text)
            #expect(try contentsArray(archive, "c/deflated", verify: true) == text)
        }
    }

    @Test("zip bomb: a deflated entry that inflates beyond its declared size stops at the declared size")
    func zipBomb() throws {
        let zeros = [UInt8](repeating: 0, count: 4 << 20)
        var builder = ZipTestBuilder()
        builder.add(.init(name: "b/bomb", contents: zeros, deflate: true, declaredSizeOverride: 1000))
        try withTemporaryDirectory { directory in
            let archive = try ZipArchive(path: try builder.write(in: directory))
            let entry = try #require(archive.entry(named: "b/bomb"))
            let offset = try archive.dataRange(of: entry).lowerBound
            #expect(throws: ZipError.inflate(entry: "b/bomb", offset: offset, .outputBeyondCapacity(capacity: 1000))) {
                try archive.contents(of: entry)
            }
        }
    }

    @Test("a declared size beyond what DEFLATE can reach is refused before allocating")
    func declaredSizeBeyondDeflateRatio() throws {
        var builder = ZipTestBuilder()
        builder.add(.init(name: "b/liar", contents: text, deflate: true, declaredSizeOverride: 1 << 31))
        try withTemporaryDirectory { directory in
            let archive = try ZipArchive(path: try builder.write(in: directory))
            let entry = try #require(archive.entry(named: "b/liar"))
            let limit = entry.compressedSize * 1032 + 64
            #expect(throws: ZipError.declaredSizeTooLarge(entry: "b/liar", declared: 1 << 31, limit: limit)) {
                try archive.contents(of: entry)
            }
        }
    }

    @Test("a declared size larger than the stream gives 'inflates to fewer bytes'")
    func declaredSizeTooSmallStream() throws {
        var builder = ZipTestBuilder()
        builder.add(.init(name: "b/short", contents: text, deflate: true, declaredSizeOverride: text.count + 5))
        try withTemporaryDirectory { directory in
            let archive = try ZipArchive(path: try builder.write(in: directory))
            let entry = try #require(archive.entry(named: "b/short"))
            let offset = try archive.dataRange(of: entry).lowerBound
            #expect(throws: ZipError.inflate(entry: "b/short", offset: offset, .outputShort(produced: text.count, expected: text.count + 5))) {
                try archive.contents(of: entry)
            }
        }
    }

    @Test("tiny.pt: torch's layout (prefix, ZIP64 end records, data descriptors, padded local headers)")
    func torchLayout() throws {
        let archive = try ZipArchive(path: try Fixtures.path("models/tiny.pt"))
        #expect(archive.entries.count == 55)
        #expect(archive.entries.first?.name == "tiny/data.pkl")
        #expect(archive.entries.allSatisfy { $0.method == .stored && $0.hasDataDescriptor })
        let record = try #require(archive.entry(named: "tiny/data/0"))
        #expect(record.uncompressedSize == 12288)
        #expect(record.crc32 == 0x522C_8904)
        #expect(try archive.dataRange(of: record).lowerBound % 64 == 0)
        #expect(try contentsArray(archive, "tiny/byteorder", verify: true) == Array("little".utf8))
        for entry in archive.entries { try archive.verifyChecksum(of: entry) }
    }

    @Test("deflated.pt holds byte-for-byte the entries of tiny.pt")
    func deflatedFixture() throws {
        let stored = try ZipArchive(path: try Fixtures.path("models/tiny.pt"))
        let deflated = try ZipArchive(path: try Fixtures.path("parser/deflated.pt"))
        #expect(deflated.entries.allSatisfy { $0.method == .deflated })
        var compared = 0
        for entry in deflated.entries where entry.name.hasPrefix("archive/data") {
            let twin = try #require(stored.entry(named: "tiny/" + entry.name.dropFirst("archive/".count)))
            let inflated = try deflated.contents(of: entry)
            let view = try stored.contents(of: twin)
            withExtendedLifetime((inflated, view)) { #expect(Array(inflated.bytes) == Array(view.bytes)) }
            compared += 1
        }
        #expect(compared == 50)  // data.pkl + 49 records
    }

    @Test("empty file and random bytes are typed errors")
    func notAZip() throws {
        try withTemporaryDirectory { directory in
            let empty = directory.appendingPathComponent("empty")
            try Data().write(to: empty)
            #expect(throws: ZipError.tooShort(fileSize: 0)) { try ZipArchive(path: empty.path) }
            let random = directory.appendingPathComponent("random")
            try Data(pseudoRandomBytes(100_000, seed: 7)).write(to: random)
            #expect(throws: ZipError.endRecordNotFound(fileSize: 100_000)) { try ZipArchive(path: random.path) }
        }
    }

    @Test("central directory pointing outside the file")
    func centralDirectoryOutside() throws {
        var bytes = ZipTestBuilder().bytes()
        bytes.replaceSubrange(16..<20, with: le32(5000))  // central directory offset
        bytes.replaceSubrange(12..<16, with: le32(46))  // its size
        bytes.replaceSubrange(8..<12, with: le16(1) + le16(1))  // entry counts
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("outside.zip")
            try Data(bytes).write(to: url)
            #expect(throws: ZipError.centralDirectoryOutOfFile(offset: 5000, size: 46, fileSize: 22)) { try ZipArchive(path: url.path) }
        }
    }

    @Test("entry count larger than the central directory can hold")
    func tooManyEntries() throws {
        var builder = ZipTestBuilder()
        builder.add(.init(name: "a", contents: [1]))
        var bytes = builder.bytes()
        let end = bytes.count - 22
        bytes.replaceSubrange(end + 8..<end + 12, with: le16(60000) + le16(60000))
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("many.zip")
            try Data(bytes).write(to: url)
            #expect(throws: ZipError.tooManyEntries(count: 60000, centralDirectorySize: 47)) { try ZipArchive(path: url.path) }
        }
    }

    @Test("local header offset pointing at garbage")
    func badLocalHeader() throws {
        var builder = ZipTestBuilder()
        builder.add(.init(name: "a", contents: [1, 2, 3, 4, 5, 6, 7, 8]))
        var bytes = builder.bytes()
        bytes.replaceSubrange(0..<4, with: le32(0x1234_5678))
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("local.zip")
            try Data(bytes).write(to: url)
            let archive = try ZipArchive(path: url.path)
            let entry = try #require(archive.entry(named: "a"))
            #expect(throws: ZipError.localHeaderInvalid(entry: "a", offset: 0, found: 0x1234_5678)) { try archive.contents(of: entry) }
        }
    }

    @Test("ZIP64 field marked 0xFFFFFFFF without its extra field")
    func zip64ExtraMissing() throws {
        var builder = ZipTestBuilder()
        builder.add(.init(name: "a", contents: [1, 2, 3]))
        var bytes = builder.bytes()
        let central = 30 + 1 + 3
        bytes.replaceSubrange(central + 24..<central + 28, with: le32(0xFFFF_FFFF))  // uncompressed size
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("z64.zip")
            try Data(bytes).write(to: url)
            #expect(throws: ZipError.zip64ExtraMissing(entry: "a", field: "uncompressed size", offset: central)) { try ZipArchive(path: url.path) }
        }
    }

    @Test("every error message names what and where")
    func messages() {
        #expect(ZipError.checksumMismatch(entry: "x/data/3", expected: 0xABC, actual: 0xDEF).description
            == "zip: entry 'x/data/3': CRC-32 is 0xdef, the archive says 0xabc")
        #expect(ZipError.inflate(entry: "b", offset: 40, .outputBeyondCapacity(capacity: 1000)).description
            == "zip: entry 'b' at offset 40 inflates beyond its declared size of 1000 bytes")
        #expect(ZipError.badEntryName(name: "../x", offset: 12).description.contains("'../x' (central record at offset 12)"))
    }
}
