import BEATsCore
import BEATsTestSupport
import Foundation
import Testing

@Suite("Mapped file: page advice")
struct MappedFileTests {
    /// A file of `count` bytes that differ from page to page, and its contents.
    private static func makeFile(in directory: URL, count: Int) throws -> (path: String, bytes: [UInt8]) {
        let bytes = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 / MappedFile.pageSize) }
        let path = directory.appendingPathComponent("pages.bin").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return (path, bytes)
    }

    @Test("released pages of a file map read back the file's bytes, whatever the advice")
    func releasedPagesReadBack() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let page = MappedFile.pageSize
        let (path, expected) = try Self.makeFile(in: directory, count: 4 * page + 100)
        let file = try MappedFile(path: path)
        for pattern in [MappedFile.AccessPattern.random, .sequential, .normal] { file.advise(pattern) }
        #expect(Array(file.bytes) == expected)
        file.releasePages(in: UnsafeRawBufferPointer(rebasing: file.bytes[10..<(3 * page + 5)]))
        MappedFile.releasePages(in: file.bytes, ownedBy: file)
        #expect(Array(file.bytes) == expected)
    }

    @Test("in-memory files and bytes outside the map keep their values (MADV_DONTNEED would zero them)")
    func heapBytesAreLeftAlone() throws {
        let page = MappedFile.pageSize
        let copy = MappedFile(path: "in-memory", copying: [UInt8](repeating: 0xA5, count: 4 * page))
        copy.advise(.random)
        copy.releasePages(in: copy.bytes)
        MappedFile.releasePages(in: copy.bytes, ownedBy: copy)
        #expect(copy.bytes.allSatisfy { $0 == 0xA5 })

        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let mapped = try MappedFile(path: Self.makeFile(in: directory, count: page).path)
        let heap = OwnedBytes(count: 4 * page)
        heap.buffer.initializeMemory(as: UInt8.self, repeating: 0x5A)
        mapped.releasePages(in: UnsafeRawBufferPointer(heap.buffer))
        MappedFile.releasePages(in: UnsafeRawBufferPointer(heap.buffer), ownedBy: heap)
        #expect(heap.buffer.allSatisfy { $0 == 0x5A })
    }
}
