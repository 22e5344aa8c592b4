// Measures the checksum candidates for native files (XXH64, CRC-32C) and SHA-256 on a buffer of
// pseudo-random bytes already in memory. Run through bench/checksum_speed.sh (release build).
import Foundation

let size = 256 << 20
let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)
var state: UInt64 = 0x1234_5678
for index in 0..<(size / 8) {
    state = state &* 6364136223846793005 &+ 1442695040888963407
    buffer.storeBytes(of: state, toByteOffset: index * 8, as: UInt64.self)
}
let bytes = UnsafeRawBufferPointer(buffer)

func measure(_ label: String, runs: Int = 5, _ body: () -> UInt64) {
    var best = Double.infinity
    var result: UInt64 = 0
    for _ in 0..<runs {
        let start = DispatchTime.now().uptimeNanoseconds
        result = body()
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        best = min(best, seconds)
    }
    print(String(format: "%-10@ %7.2f GB/s  (best of %d over %d MiB, result %016llx)", label as NSString, Double(size) / best / 1e9, runs, size >> 20, result))
}

measure("xxh64") { XXHash64.hash(bytes) }
measure("crc32c") { UInt64(CRC32C.checksum(bytes)) }
print("sha256 uses the SHA instructions: \(SHA256.usesHardwareInstructions)")
measure("sha256", runs: 3) { let digest = SHA256.digest(bytes); return digest.prefix(8).reduce(0) { $0 << 8 | UInt64($1) } }
print("check vectors: xxh64(\"abc\") = \(String(XXHash64.hash(Array("abc".utf8)), radix: 16)), crc32c(\"123456789\") = \(String(Array("123456789".utf8).withUnsafeBytes { CRC32C.checksum($0) }, radix: 16))")
