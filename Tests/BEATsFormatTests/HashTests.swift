import BEATsFormat
import Testing

@Suite("Native format: checksums and SHA-256")
struct HashTests {
    /// Deterministic pseudo-random bytes.
    static func bytes(_ count: Int) -> [UInt8] {
        var state: UInt64 = 0x9E37_79B9
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
    }

    @Test("XXH64 reference vectors")
    func xxhashVectors() {
        #expect(XXHash64.hash([]) == 0xEF46_DB37_51D8_E999)
        #expect(XXHash64.hash(Array("abc".utf8)) == 0x44BC_2CF5_AD77_0999)
        // Values from the reference implementation (python xxhash 4.1.0, xxh64(data).intdigest()).
        let data = Self.bytes(1000)
        #expect(XXHash64.hash(Array(data.prefix(31))) == XXHashVectors.first31)
        #expect(XXHash64.hash(data) == XXHashVectors.thousand)
    }

    @Test("streaming XXH64 equals one-shot for any split")
    func xxhashStreaming() {
        let data = Self.bytes(1000)
        let expected = XXHash64.hash(data)
        for pieces in [[1000], [1, 999], [31, 1, 968], [32, 32, 936], [7, 13, 100, 880], [999, 1]] {
            var hasher = XXHash64.Streaming()
            var start = 0
            for length in pieces {
                data[start..<(start + length)].withUnsafeBytes { hasher.update($0) }
                start += length
            }
            #expect(hasher.finalize() == expected, "split \(pieces)")
        }
        #expect(XXHash64.Streaming().finalize() == XXHash64.hash([]))
    }

    @Test("SHA-256 reference vectors, in one piece and streamed")
    func sha256Vectors() {
        func hex(_ digest: [UInt8]) -> String { digest.map { String(format: "%02x", $0) }.joined() }
        #expect(hex(SHA256.digest(UnsafeRawBufferPointer(start: nil, count: 0))) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(hex(Array("abc".utf8).withUnsafeBytes { SHA256.digest($0) }) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let pattern = (0..<5).flatMap { _ in (0..<256).map { UInt8($0) } }
        let expected = "d414b085826eb06778483ba35564dc849e643359f69ed9747878ba6e54985bed"  // hashlib
        #expect(hex(pattern.withUnsafeBytes { SHA256.digest($0) }) == expected)
        var hasher = SHA256()
        for split in [(0, 3), (3, 64), (64, 65), (65, 200), (200, 1280)] { hasher.update(Array(pattern[split.0..<split.1])) }
        #expect(hex(hasher.finalize()) == expected)
    }
}

private enum XXHashVectors {
    static let first31: UInt64 = 0x4FFF_26BC_0543_D291
    static let thousand: UInt64 = 0x182A_A49A_2481_081F
}
