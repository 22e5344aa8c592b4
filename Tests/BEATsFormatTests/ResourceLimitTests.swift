import BEATsCore
import BEATsFormat
import Testing

/// A native file assembled in memory: preamble, `block` (resealed with its XXH64), zero padding to
/// the data region, then `data`.
private func nativeFile(block: [UInt8], data: [UInt8] = []) -> [UInt8] {
    var out = NativeFormat.magic
    func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) } }
    append(NativeFormat.majorVersion)
    append(NativeFormat.minorVersion)
    append(UInt32(0))
    append(UInt64(block.count))
    append(block.withUnsafeBytes { XXHash64.hash($0) })
    out += block
    out += [UInt8](repeating: 0, count: NativeHeader.dataStart(headerLength: block.count) - out.count)
    return out + data
}

private func open(_ bytes: [UInt8]) throws -> NativeModelFile {
    try NativeModelFile.open(file: MappedFile(path: "limits.beatsw", copying: bytes))
}

/// The native reader's resource limits (Formats/SECURITY.md), each just under and just over.
/// Other field limits (rank, name and string lengths, counts) have tests in HostileFileTests.
@Suite("Native format resource limits")
struct NativeResourceLimitTests {
    @Test("limits are the documented values")
    func documented() {
        #expect(NativeFormat.maxHeaderLength == 16_777_216)
        #expect(NativeFormat.maxTensorCount == 65_536)
        #expect(NativeFormat.maxRank == 8)
        #expect(NativeFormat.maxLabelCount == 100_000)
        #expect(NativeFormat.maxMetadataEntries == 4096)
        #expect(NativeFormat.maxConfigEntries == 256)
    }

    @Test("header length: exactly 16 MiB opens (the tail is a later minor version's), one byte more is refused unread")
    func headerLength() throws {
        let header = NativeHeader(kind: .pretrained, config: BEATsConfig())
        var block = header.encodedBlock()
        block += [UInt8](repeating: 0, count: NativeFormat.maxHeaderLength - block.count)
        let file = try open(nativeFile(block: block))
        #expect(file.tensorNames.isEmpty)
        #expect(file.header.kind == .pretrained)

        block.append(0)
        #expect(throws: NativeFormatError.headerLengthOutOfRange(length: UInt64(NativeFormat.maxHeaderLength + 1),
                                                                 limit: NativeFormat.maxHeaderLength)) {
            try open(nativeFile(block: block))
        }
    }

    @Test("tensor count: 65 536 tensors open, a count of 65 537 is refused before any entry is read")
    func tensorCount() throws {
        let count = NativeFormat.maxTensorCount
        let value: [UInt8] = [42]
        let checksum = value.withUnsafeBytes { XXHash64.hash($0) }
        func entries(dataStart: Int) -> [NativeTensorEntry] {
            (0..<count).map { index in
                NativeTensorEntry(name: "t\(index)", dtype: .uint8, shape: [1],
                                  data: NativeRegion(offset: dataStart + index * NativeFormat.tensorAlignment, length: 1, checksum: checksum))
            }
        }
        // The block's length does not depend on offsets: size it, then place the regions.
        var header = NativeHeader(kind: .pretrained, config: BEATsConfig(), tensors: entries(dataStart: 0))
        let dataStart = NativeHeader.dataStart(headerLength: header.encodedBlock().count)
        header.tensors = entries(dataStart: dataStart)
        var data = [UInt8](repeating: 0, count: (count - 1) * NativeFormat.tensorAlignment + 1)
        for index in 0..<count { data[index * NativeFormat.tensorAlignment] = 42 }
        let block = header.encodedBlock()
        let file = try open(nativeFile(block: block, data: data))
        #expect(file.tensorNames.count == count)
        #expect(file.checksumFailures().isEmpty)
        #expect(try file.tensor(named: "t65535")?.integers() == [42])

        // The count sits right after the metadata, where an empty-table header's block ends.
        let countOffset = NativeHeader(kind: .pretrained, config: BEATsConfig()).encodedBlock().count - 4
        var over = block
        withUnsafeBytes(of: UInt32(count + 1).littleEndian) { over.replaceSubrange(countOffset..<countOffset + 4, with: $0) }
        #expect(throws: NativeFormatError.limitExceeded(field: "tensor count", value: UInt64(count + 1), limit: count,
                                                        offset: NativeFormat.preambleSize + countOffset)) {
            try open(nativeFile(block: over, data: data))
        }
    }
}
