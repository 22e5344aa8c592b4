import BEATsCheckpoint
import BEATsCore
import Testing

/// The zip reader's resource limits (Formats/SECURITY.md), each just under and just over. The
/// pickle machine's limits have theirs in PickleLimitTests.
@Suite("Zip resource limits")
struct ZipResourceLimitTests {
    private func archive(_ bytes: [UInt8], _ limits: ZipLimits) throws -> ZipArchive {
        try ZipArchive(file: MappedFile(path: "limits.zip", copying: bytes), limits: limits)
    }

    @Test("defaults are the documented values")
    func defaults() {
        let limits = ZipLimits()
        #expect(limits.maximumEntries == 1 << 20)
        #expect(limits.maximumInflatedBytes == 8 << 30)
        #expect(ZipLimits.deflateMaximumRatio == 1032)
    }

    @Test("entry count: at the limit opens, one more is refused before any record is read")
    func entryCount() throws {
        var builder = ZipTestBuilder()
        for index in 0..<3 { builder.add(.init(name: "entry\(index)", contents: [UInt8(index)])) }
        let bytes = builder.bytes()
        #expect(try archive(bytes, ZipLimits(maximumEntries: 3)).entries.count == 3)
        #expect(throws: ZipError.entryLimitExceeded(count: 3, limit: 2)) { try archive(bytes, ZipLimits(maximumEntries: 2)) }
    }

    @Test("inflated size: an entry declaring exactly the limit inflates, one byte over is refused before allocating")
    func inflatedSize() throws {
        var builder = ZipTestBuilder()
        let contents = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        builder.add(.init(name: "big", contents: contents, deflate: true))
        let bytes = builder.bytes()
        let atLimit = try archive(bytes, ZipLimits(maximumInflatedBytes: 1000))
        let entry = try #require(atLimit.entry(named: "big"))
        #expect(try contentsArray(atLimit, "big") == contents)
        let overLimit = try archive(bytes, ZipLimits(maximumInflatedBytes: 999))
        #expect(throws: ZipError.declaredSizeTooLarge(entry: "big", declared: 1000, limit: 999)) {
            try overLimit.contents(of: entry)
        }
    }

    @Test("inflate ratio: a declared size of 1032 × compressed + 64 is tried, one byte more is refused before allocating")
    func inflateRatio() throws {
        let contents = [UInt8](repeating: 0, count: 5000)
        let compressedCount = contents.withUnsafeBytes { Inflater.deflateRaw($0) }.count
        let bound = compressedCount * ZipLimits.deflateMaximumRatio + 64
        func declaring(_ size: Int) throws -> (ZipArchive, ZipEntry) {
            var builder = ZipTestBuilder()
            builder.add(.init(name: "bomb", contents: contents, deflate: true, declaredSizeOverride: size))
            let archive = try archive(builder.bytes(), ZipLimits())
            return (archive, try #require(archive.entry(named: "bomb")))
        }
        // At the bound the buffer is allocated and the stream found to end early.
        let (atBound, entry) = try declaring(bound)
        let dataOffset = try atBound.dataRange(of: entry).lowerBound
        #expect(throws: ZipError.inflate(entry: "bomb", offset: dataOffset, .outputShort(produced: 5000, expected: bound))) {
            try atBound.contents(of: entry)
        }
        let (overBound, overEntry) = try declaring(bound + 1)
        #expect(throws: ZipError.declaredSizeTooLarge(entry: "bomb", declared: bound + 1, limit: bound)) {
            try overBound.contents(of: overEntry)
        }
    }
}
