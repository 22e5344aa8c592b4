import BEATsCheckpoint
import Foundation

/// Writes small zip archives byte by byte so tests can exercise each container feature (and
/// each way of getting it wrong) without any external tool.
struct ZipTestBuilder {
    struct Entry {
        var name: String
        var contents: [UInt8]
        var deflate = false
        /// Sizes and CRC left out of the local header and written in a data descriptor after the data.
        var dataDescriptor = false
        /// Bytes of padding in an extra field of the local header only (torch's `FB` field).
        var localPadding = 0
        /// Central sizes and offset written as 0xFFFFFFFF with a ZIP64 extra field.
        var zip64Fields = false
        /// The CRC written to the archive; nil writes the real one.
        var crcOverride: UInt32?
        /// The uncompressed size written to the archive; nil writes the real one.
        var declaredSizeOverride: Int?
    }

    var entries: [Entry] = []
    var comment: [UInt8] = []
    /// Write ZIP64 end records (locator + record) and 0xFFFF / 0xFFFFFFFF in the classic end record.
    var zip64EndRecords = false

    mutating func add(_ entry: Entry) { entries.append(entry) }

    func bytes() -> [UInt8] {
        var out = [UInt8]()
        var central = [UInt8]()
        for entry in entries {
            let name = Array(entry.name.utf8)
            let payload: [UInt8] = entry.deflate
                ? entry.contents.withUnsafeBytes { Inflater.deflateRaw($0) }
                : entry.contents
            let realCRC = entry.contents.withUnsafeBytes { Inflater.crc32($0) }
            let crc = entry.crcOverride ?? realCRC
            let uncompressedSize = entry.declaredSizeOverride ?? entry.contents.count
            let method: UInt16 = entry.deflate ? 8 : 0
            let flags: UInt16 = entry.dataDescriptor ? 0x0808 : 0x0800
            let localOffset = out.count

            var localExtra = [UInt8]()
            if entry.localPadding > 0 {
                localExtra += le16(0x4246) + le16(UInt16(entry.localPadding)) + [UInt8](repeating: 0x5A, count: entry.localPadding)
            }
            out += le32(0x0403_4b50) + le16(20) + le16(flags) + le16(method) + le16(0) + le16(0)
            if entry.dataDescriptor {
                out += le32(0) + le32(0) + le32(0)
            } else {
                out += le32(crc) + le32(UInt32(payload.count)) + le32(UInt32(uncompressedSize))
            }
            out += le16(UInt16(name.count)) + le16(UInt16(localExtra.count)) + name + localExtra + payload
            if entry.dataDescriptor {
                out += le32(0x0807_4b50) + le32(crc) + le32(UInt32(payload.count)) + le32(UInt32(uncompressedSize))
            }

            var centralExtra = [UInt8]()
            var sizes = (le32(UInt32(payload.count)), le32(UInt32(uncompressedSize)), le32(UInt32(localOffset)))
            if entry.zip64Fields {
                centralExtra = le16(0x0001) + le16(24) + le64(UInt64(uncompressedSize)) + le64(UInt64(payload.count)) + le64(UInt64(localOffset))
                sizes = (le32(0xFFFF_FFFF), le32(0xFFFF_FFFF), le32(0xFFFF_FFFF))
            }
            central += le32(0x0201_4b50) + le16(45) + le16(20) + le16(flags) + le16(method) + le16(0) + le16(0) + le32(crc)
            central += sizes.0 + sizes.1 + le16(UInt16(name.count)) + le16(UInt16(centralExtra.count)) + le16(0)
            central += le16(0) + le16(0) + le32(0) + sizes.2 + name + centralExtra
        }
        let centralOffset = out.count
        out += central
        if zip64EndRecords {
            let recordOffset = out.count
            out += le32(0x0606_4b50) + le64(44) + le16(45) + le16(45) + le32(0) + le32(0)
            out += le64(UInt64(entries.count)) + le64(UInt64(entries.count)) + le64(UInt64(central.count)) + le64(UInt64(centralOffset))
            out += le32(0x0706_4b50) + le32(0) + le64(UInt64(recordOffset)) + le32(1)
            out += le32(0x0605_4b50) + le16(0) + le16(0) + le16(0xFFFF) + le16(0xFFFF) + le32(0xFFFF_FFFF) + le32(0xFFFF_FFFF)
        } else {
            out += le32(0x0605_4b50) + le16(0) + le16(0) + le16(UInt16(entries.count)) + le16(UInt16(entries.count))
            out += le32(UInt32(central.count)) + le32(UInt32(centralOffset))
        }
        out += le16(UInt16(comment.count)) + comment
        return out
    }

    /// Writes the archive to a fresh temporary file and returns its path.
    func write(in directory: URL, name: String = "test.zip") throws -> String {
        let url = directory.appendingPathComponent(name)
        try Data(bytes()).write(to: url)
        return url.path
    }
}

func le16(_ value: UInt16) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }
func le32(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }
func le64(_ value: UInt64) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }
