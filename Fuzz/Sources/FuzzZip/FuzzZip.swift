import BEATsCheckpoint
import BEATsCore

/// The zip container alone: end records, ZIP64, the central directory, every entry's local
/// header, and each entry's contents (stored views CRC-checked, deflated entries inflated).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzZip(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let file = MappedFile(path: "fuzz.zip", copying: UnsafeBufferPointer(start: data, count: size))
    // Small inflate cap: a few MB is plenty to reach every path and keeps runs fast.
    guard let archive = try? ZipArchive(file: file, limits: ZipLimits(maximumInflatedBytes: 8 << 20)) else { return 0 }
    for entry in archive.entries {
        _ = archive.entry(named: entry.name)
        _ = try? archive.dataRange(of: entry)
        if let contents = try? archive.contents(of: entry, verify: true) {
            withExtendedLifetime(contents) {
                // Touch the first and last byte: a view that lies about its bounds shows up under ASan.
                if contents.count > 0 { blackHole(contents.bytes[0] &+ contents.bytes[contents.count - 1]) }
            }
        }
    }
    return 0
}

/// Keeps a read from being optimised away.
@inline(never) @_optimize(none)
func blackHole(_ value: UInt8) {}
