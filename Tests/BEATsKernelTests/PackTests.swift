import CBEATsKernels
import Testing

@Suite("Weight packing")
struct PackTests {
    @Test("packed size: 64-byte header, 4 bytes per padded row, rows padded to 16 and columns to 4")
    func packedSize() {
        #expect(beats_packed_weights_size(16, 4) == 128 + 64)
        #expect(beats_packed_weights_size(17, 5) == 192 + 32 * 8)
        #expect(beats_packed_weights_size(768, 3072) == 3136 + 768 * 3072)
        #expect(beats_packed_weights_size(0, 5) == 0)
        #expect(beats_packed_weights_size(5, 0) == 0)
        #expect(beats_packed_weights_size(5, Int(BEATS_MAX_COLUMNS) + 1) == 0)
        #expect(beats_packed_weights_size(Int.max / 4, 1024) == 0)
    }

    @Test("records the shape and refuses what it cannot pack")
    func shapeAndErrors() throws {
        let packed = try PackedWeights(values: [Int8](repeating: 3, count: 21 * 10), rows: 21, columns: 10)
        var rows = 0, columns = 0
        #expect(beats_packed_weights_shape(packed.pointer, &rows, &columns) == KernelStatus.ok)
        #expect(rows == 21 && columns == 10)

        var weights = [Int8](repeating: 1, count: 6 * 9)
        weights[4 * 9 + 7] = -128
        #expect(throws: PackError(status: KernelStatus.weightOutOfRange)) {
            try PackedWeights(values: weights, rows: 6, columns: 9)
        }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 64)
        defer { buffer.deallocate() }
        let ones = [Int8](repeating: 1, count: 64)
        #expect(beats_pack_weights(ones, 8, 8, 8, buffer + 4, 4000) == KernelStatus.misaligned)
        #expect(beats_pack_weights(ones, 8, 8, 8, buffer, beats_packed_weights_size(8, 8) - 1) == KernelStatus.invalidArgument)
        #expect(beats_pack_weights(ones, 7, 8, 8, buffer, 4096) == KernelStatus.invalidArgument)
        #expect(beats_pack_weights(ones, Int(BEATS_MAX_COLUMNS) + 1, 1, Int(BEATS_MAX_COLUMNS) + 1, buffer, 4096) == KernelStatus.tooLarge)
        // A failed pack never leaves a buffer that looks packed.
        weights[4 * 9 + 7] = -128
        #expect(beats_pack_weights(weights, 9, 6, 9, buffer, 4096) == KernelStatus.weightOutOfRange)
        #expect(beats_packed_weights_shape(buffer, &rows, &columns) == KernelStatus.badPackedWeights)
    }

    @Test("a corrupted header is refused by every GEMM variant")
    func corruptedHeader() throws {
        let problem = GemmProblem.random(m: 2, n: 16, k: 8, seed: 1)
        let packed = try problem.packed()
        // Claim a different column count: the padded sizes no longer agree.
        packed.pointer.storeBytes(of: UInt64(9), toByteOffset: 16, as: UInt64.self)
        for variant in KernelVariant.allCases where variant.isAvailable {
            var c = [Float](repeating: 0, count: 32)
            #expect(variant.gemm(problem, packed: packed, into: &c, rows: 0..<2, columns: 0..<16) == KernelStatus.badPackedWeights)
        }
    }
}
