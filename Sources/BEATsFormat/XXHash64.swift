/// XXH64 (Yann Collet's xxHash, 64-bit variant), the checksum of native files.
///
/// Chosen over CRC-32C because, written in plain Swift, it runs several times faster on this
/// hardware (see `Formats/NATIVE-FORMAT.md`, "Checksums", for the measured numbers): a checksum
/// pass over the whole model must stay well below the time to copy the file.
public enum XXHash64 {
    static let prime1: UInt64 = 0x9E37_79B1_85EB_CA87
    static let prime2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    static let prime3: UInt64 = 0x1656_67B1_9E37_79F9
    static let prime4: UInt64 = 0x85EB_CA77_C2B2_AE63
    static let prime5: UInt64 = 0x27D4_EB2F_1656_67C5

    /// The hash of `bytes` with `seed` (native files use seed 0).
    public static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        let count = bytes.count
        guard let base = bytes.baseAddress else { return finish(seed &+ prime5, tail: bytes, from: 0) }
        var position = 0
        var hash: UInt64
        if count >= 32 {
            var lane1 = seed &+ prime1 &+ prime2
            var lane2 = seed &+ prime2
            var lane3 = seed
            var lane4 = seed &- prime1
            let stripes = count / 32
            for stripe in 0..<stripes {
                let at = stripe * 32
                lane1 = round(lane1, load(base, at))
                lane2 = round(lane2, load(base, at + 8))
                lane3 = round(lane3, load(base, at + 16))
                lane4 = round(lane4, load(base, at + 24))
            }
            position = stripes * 32
            hash = rotate(lane1, 1) &+ rotate(lane2, 7) &+ rotate(lane3, 12) &+ rotate(lane4, 18)
            hash = merge(hash, lane1)
            hash = merge(hash, lane2)
            hash = merge(hash, lane3)
            hash = merge(hash, lane4)
        } else {
            hash = seed &+ prime5
        }
        hash = hash &+ UInt64(count)
        return finish(hash, tail: bytes, from: position)
    }

    public static func hash(_ bytes: [UInt8], seed: UInt64 = 0) -> UInt64 {
        bytes.withUnsafeBytes { hash($0, seed: seed) }
    }

    /// XXH64 over bytes that arrive in pieces (the converter writes big tensors in chunks).
    /// `finalize()` equals ``XXHash64/hash(_:seed:)`` of all the pieces concatenated.
    public struct Streaming: Sendable {
        private var lanes: (UInt64, UInt64, UInt64, UInt64)
        private let seed: UInt64
        /// Bytes that did not fill a 32-byte stripe yet.
        private var pending: [UInt8] = []
        private var totalBytes: UInt64 = 0

        public init(seed: UInt64 = 0) {
            self.seed = seed
            lanes = (seed &+ prime1 &+ prime2, seed &+ prime2, seed, seed &- prime1)
            pending.reserveCapacity(32)
        }

        public mutating func update(_ bytes: UnsafeRawBufferPointer) {
            guard let base = bytes.baseAddress, bytes.count > 0 else { return }
            totalBytes &+= UInt64(bytes.count)
            var position = 0
            if !pending.isEmpty {
                let take = min(32 - pending.count, bytes.count)
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[0..<take]))
                position = take
                guard pending.count == 32 else { return }
                let stripe = pending
                stripe.withUnsafeBytes { if let stripeBase = $0.baseAddress { consumeStripes(stripeBase, count: 1) } }
                pending.removeAll(keepingCapacity: true)
            }
            let stripes = (bytes.count - position) / 32
            if stripes > 0 {
                consumeStripes(base + position, count: stripes)
                position += stripes * 32
            }
            if position < bytes.count {
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[position...]))
            }
        }

        public func finalize() -> UInt64 {
            var hash: UInt64
            if totalBytes >= 32 {
                hash = rotate(lanes.0, 1) &+ rotate(lanes.1, 7) &+ rotate(lanes.2, 12) &+ rotate(lanes.3, 18)
                hash = merge(hash, lanes.0)
                hash = merge(hash, lanes.1)
                hash = merge(hash, lanes.2)
                hash = merge(hash, lanes.3)
            } else {
                hash = seed &+ prime5
            }
            hash = hash &+ totalBytes
            return pending.withUnsafeBytes { finish(hash, tail: $0, from: 0) }
        }

        private mutating func consumeStripes(_ base: UnsafeRawPointer, count: Int) {
            var (lane1, lane2, lane3, lane4) = lanes
            for stripe in 0..<count {
                let at = stripe * 32
                lane1 = round(lane1, load(base, at))
                lane2 = round(lane2, load(base, at + 8))
                lane3 = round(lane3, load(base, at + 16))
                lane4 = round(lane4, load(base, at + 24))
            }
            lanes = (lane1, lane2, lane3, lane4)
        }
    }

    @inline(__always)
    private static func finish(_ partial: UInt64, tail bytes: UnsafeRawBufferPointer, from offset: Int) -> UInt64 {
        var hash = partial
        var position = offset
        let count = bytes.count
        if let base = bytes.baseAddress {
            while position + 8 <= count {
                hash ^= round(0, load(base, position))
                hash = rotate(hash, 27) &* prime1 &+ prime4
                position += 8
            }
            if position + 4 <= count {
                let word = UInt32(littleEndian: base.loadUnaligned(fromByteOffset: position, as: UInt32.self))
                hash ^= UInt64(word) &* prime1
                hash = rotate(hash, 23) &* prime2 &+ prime3
                position += 4
            }
            while position < count {
                hash ^= UInt64(base.load(fromByteOffset: position, as: UInt8.self)) &* prime5
                hash = rotate(hash, 11) &* prime1
                position += 1
            }
        }
        hash ^= hash >> 33
        hash = hash &* prime2
        hash ^= hash >> 29
        hash = hash &* prime3
        hash ^= hash >> 32
        return hash
    }

    @inline(__always)
    private static func load(_ base: UnsafeRawPointer, _ offset: Int) -> UInt64 {
        UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    @inline(__always)
    private static func rotate(_ value: UInt64, _ amount: UInt64) -> UInt64 {
        (value << amount) | (value >> (64 - amount))
    }

    @inline(__always)
    private static func round(_ accumulator: UInt64, _ input: UInt64) -> UInt64 {
        rotate(accumulator &+ input &* prime2, 31) &* prime1
    }

    @inline(__always)
    private static func merge(_ accumulator: UInt64, _ lane: UInt64) -> UInt64 {
        (accumulator ^ round(0, lane)) &* prime1 &+ prime4
    }
}
