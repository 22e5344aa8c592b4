import BEATsTestSupport
import CBEATsKernels
import Testing

/// The packed int4 layout: sizes, the header and sections byte for byte as beats_q4_kernels.h
/// documents them (the model file stores these bytes), the round trip, and validation of hostile
/// buffers.
@Suite("Int4 packing")
struct Int4PackTests {
    @Test("packed size: 64-byte header, Np·K/2 bytes of nibbles, Np·K/G·4 bytes of f16 scales and minimums")
    func packedSize() {
        #expect(beats_q4_packed_size(16, 32, 32) == 64 + 16 * 16 + 16 * 1 * 4)
        #expect(beats_q4_packed_size(17, 64, 32) == 64 + 32 * 32 + 32 * 2 * 4)
        #expect(beats_q4_packed_size(768, 3072, 128) == 64 + 768 * 1536 + 768 * 24 * 4)
        #expect(beats_q4_packed_size(1, 65536, 32) == 64 + 16 * 32768 + 16 * 2048 * 4)
        for (rows, columns, group) in [(0, 32, 32), (5, 0, 32), (5, 48, 32), (5, 64, 16), (5, 256, 256), (5, 65536 + 128, 128),
                                       (Int.max / 4, 1024, 32), (1 << 31 + 1, 32, 32)] {
            #expect(beats_q4_packed_size(rows, columns, group) == 0, "\(rows) × \(columns) / \(group)")
        }
    }

    @Test("header and sections are laid out byte for byte as documented", arguments: [32, 64, 128])
    func layout(group: Int) throws {
        let problem = Int4Problem.random(m: 1, n: 37, k: group * 3, group: group, seed: UInt64(group))
        let (n, k, groups) = (problem.n, problem.k, problem.groups)
        let packed = try problem.packed()
        let rowsPadded = 48, scalesOffset = 64 + rowsPadded * k / 2
        #expect(packed.byteCount == scalesOffset + rowsPadded * groups * 4)
        // Header.
        #expect(Array(packed.bytes[0..<4]) == Array("BQ4W".utf8))
        #expect(packed.load(UInt32.self, at: 0) == BEATS_Q4_MAGIC)
        #expect(packed.load(UInt32.self, at: 4) == 1)
        #expect(packed.load(UInt64.self, at: 8) == UInt64(n))
        #expect(packed.load(UInt64.self, at: 16) == UInt64(k))
        #expect(packed.load(UInt32.self, at: 24) == UInt32(group))
        #expect(packed.load(UInt32.self, at: 28) == 0)
        #expect(packed.load(UInt64.self, at: 32) == UInt64(rowsPadded))
        #expect(packed.load(UInt64.self, at: 40) == 64)
        #expect(packed.load(UInt64.self, at: 48) == UInt64(scalesOffset))
        #expect(packed.load(UInt64.self, at: 56) == UInt64(packed.byteCount))
        // Weights: panel p at 64 + p·8K; block o (columns 8o…8o+7) at +64·o; byte 4j + i holds
        // q[16p+j][8o+i] (low nibble) and q[16p+j][8o+4+i] (high nibble). Padding rows are 0.
        for row in 0..<rowsPadded {
            let (p, j) = (row / 16, row % 16)
            for o in 0..<(k / 8) {
                for i in 0..<4 {
                    let byte = packed.load(UInt8.self, at: 64 + p * 8 * k + 64 * o + 4 * j + i)
                    let low = row < n ? problem.values[row * k + 8 * o + i] : 0
                    let high = row < n ? problem.values[row * k + 8 * o + 4 + i] : 0
                    #expect(byte == low | high << 4, "row \(row) block \(o) byte \(i)")
                }
            }
            // Scales section: (p, g) entry at scalesOffset + (p·groups + g)·64; scale j at 2j, minimum j at 32 + 2j.
            for g in 0..<groups {
                let entry = scalesOffset + (p * groups + g) * 64
                #expect(packed.load(UInt16.self, at: entry + 2 * j) == (row < n ? problem.scales[row * groups + g] : 0))
                #expect(packed.load(UInt16.self, at: entry + 32 + 2 * j) == (row < n ? problem.minimums[row * groups + g] : 0))
            }
        }
    }

    @Test("pack then unpack gives back the values, scales and minimums",
          arguments: [(1, 32, 32), (16, 64, 32), (17, 96, 32), (33, 128, 64), (50, 384, 128), (5, 3072, 64)])
    func roundTrip(rows: Int, columns: Int, group: Int) throws {
        let problem = Int4Problem.random(m: 1, n: rows, k: columns, group: group, seed: UInt64(rows * columns))
        let packed = try problem.packed()
        var shape = (0, 0, 0)
        #expect(beats_q4_packed_shape(packed.pointer, packed.byteCount, &shape.0, &shape.1, &shape.2) == KernelStatus.ok)
        #expect(shape == (rows, columns, group))
        let stride = columns + 3
        var values = [UInt8](repeating: 0xAA, count: rows * stride)
        var scales = [UInt16](repeating: 0xAAAA, count: problem.scales.count), minimums = scales
        #expect(beats_q4_unpack(packed.pointer, packed.byteCount, &values, stride, &scales, &minimums) == KernelStatus.ok)
        for row in 0..<rows {
            #expect(Array(values[(row * stride)..<(row * stride + columns)]) == Array(problem.values[(row * columns)..<((row + 1) * columns)]))
            #expect(values[(row * stride + columns)..<(row * stride + stride)].allSatisfy { $0 == 0xAA }, "stride padding untouched")
        }
        #expect(scales == problem.scales && minimums == problem.minimums)
        // Unpack checks its own arguments and the buffer.
        #expect(beats_q4_unpack(packed.pointer, packed.byteCount, &values, columns - 1, &scales, &minimums) == KernelStatus.invalidArgument)
        #expect(beats_q4_unpack(packed.pointer, packed.byteCount - 1, &values, stride, &scales, &minimums) == Int4Status.badPackedInt4)
        #expect(beats_q4_unpack(packed.pointer, packed.byteCount, nil, stride, &scales, &minimums) == KernelStatus.invalidArgument)
    }

    @Test("packing refuses bad values, scales, shapes and buffers, and never leaves a valid header behind")
    func packErrors() throws {
        let (rows, columns, group) = (3, 64, 32)
        let size = beats_q4_packed_size(rows, columns, group)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size + 128, alignment: 64)
        defer { buffer.deallocate() }
        let values = [UInt8](repeating: 7, count: rows * columns)
        let scales = [UInt16](repeating: 0x3c00, count: rows * 2), minimums = [UInt16](repeating: 0xbc00, count: rows * 2)
        #expect(beats_q4_pack(values, columns, scales, minimums, rows, columns, group, buffer, size) == KernelStatus.ok)
        #expect(beats_q4_packed_shape(buffer, size, nil, nil, nil) == KernelStatus.ok)

        var bad = values
        bad[2 * columns + 40] = 16
        #expect(beats_q4_pack(bad, columns, scales, minimums, rows, columns, group, buffer, size) == Int4Status.int4OutOfRange)
        #expect(beats_q4_packed_shape(buffer, size, nil, nil, nil) == Int4Status.badPackedInt4, "a failed pack leaves no header")
        for special: UInt16 in [0x7c00, 0xfc00, 0x7e00, 0x7c01] { // ±Inf, NaNs
            var badScales = scales
            badScales[5] = special
            #expect(beats_q4_pack(values, columns, badScales, minimums, rows, columns, group, buffer, size) == Int4Status.int4OutOfRange)
            var badMinimums = minimums
            badMinimums[0] = special
            #expect(beats_q4_pack(values, columns, scales, badMinimums, rows, columns, group, buffer, size) == Int4Status.int4OutOfRange)
        }
        #expect(beats_q4_pack(values, columns, scales, minimums, rows, 48, group, buffer, size) == Int4Status.groupSize)
        #expect(beats_q4_pack(values, columns, scales, minimums, rows, columns, 16, buffer, size) == Int4Status.groupSize)
        #expect(beats_q4_pack(values, columns, scales, minimums, rows, columns, 48, buffer, size) == Int4Status.groupSize)
        #expect(beats_q4_pack(values, columns, scales, minimums, rows, 65536 + 32, group, buffer, size) == KernelStatus.tooLarge)
        #expect(beats_q4_pack(values, columns, scales, minimums, rows, columns, group, buffer, size - 1) == KernelStatus.invalidArgument)
        #expect(beats_q4_pack(values, columns - 1, scales, minimums, rows, columns, group, buffer, size) == KernelStatus.invalidArgument)
        #expect(beats_q4_pack(values, columns, scales, minimums, rows, columns, group, buffer + 32, size) == KernelStatus.misaligned)
        #expect(beats_q4_pack(nil, columns, scales, minimums, rows, columns, group, buffer, size) == KernelStatus.invalidArgument)
        #expect(beats_q4_pack(values, columns, scales, minimums, 0, columns, group, buffer, size) == KernelStatus.invalidArgument)
    }

    @Test("packed_shape rejects short buffers, misalignment and every inconsistent header field")
    func hostileHeaders() throws {
        let problem = Int4Problem.random(m: 1, n: 20, k: 128, group: 64, seed: 3)
        let packed = try problem.packed()
        let size = packed.byteCount
        #expect(beats_q4_packed_shape(packed.pointer, size, nil, nil, nil) == KernelStatus.ok)
        #expect(beats_q4_packed_shape(packed.pointer, size + 100, nil, nil, nil) == KernelStatus.ok, "trailing bytes are allowed")
        #expect(beats_q4_packed_shape(packed.pointer, size - 1, nil, nil, nil) == Int4Status.badPackedInt4)
        #expect(beats_q4_packed_shape(packed.pointer, 63, nil, nil, nil) == Int4Status.badPackedInt4)
        #expect(beats_q4_packed_shape(packed.pointer, 0, nil, nil, nil) == Int4Status.badPackedInt4)
        #expect(beats_q4_packed_shape(nil, size, nil, nil, nil) == Int4Status.badPackedInt4)

        let copy = UnsafeMutableRawPointer.allocate(byteCount: size + 64, alignment: 64)
        defer { copy.deallocate() }
        (copy + 16).copyMemory(from: packed.pointer, byteCount: size)
        #expect(beats_q4_packed_shape(copy + 16, size, nil, nil, nil) == KernelStatus.misaligned)

        // One field at a time: each altered header is refused, by packed_shape and by every GEMM (which
        // recomputes every size from the shape; it is only not given the length). Changing the row
        // count within the same 16-row panel (20 → 17…32) is consistent and harmless, so not here.
        let alterations: [(offset: Int, width: Int, value: UInt64)] = [
            (0, 4, 0x57345143), (4, 4, 2), (8, 8, 0), (8, 8, 33), (8, 8, 1 << 40), (8, 8, 1 << 32 + 20), (16, 8, 0), (16, 8, 192),
            (16, 8, 64 * 1025 * 16), (24, 4, 32), (24, 4, 128), (24, 4, 48), (24, 4, 0), (28, 4, 1), (32, 8, 16), (32, 8, 48),
            (40, 8, 0), (40, 8, 128), (48, 8, 64), (48, 8, UInt64(64 + 32 * 64 + 64)), (56, 8, UInt64(size + 64)),
            (56, 8, UInt64(size - 64)), (56, 8, .max),
        ]
        let m = problem.m, n = problem.n
        for alteration in alterations {
            let corrupt = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
            defer { corrupt.deallocate() }
            corrupt.copyMemory(from: packed.pointer, byteCount: size)
            if alteration.width == 4 {
                corrupt.storeBytes(of: UInt32(truncatingIfNeeded: alteration.value), toByteOffset: alteration.offset, as: UInt32.self)
            } else {
                corrupt.storeBytes(of: alteration.value, toByteOffset: alteration.offset, as: UInt64.self)
            }
            #expect(beats_q4_packed_shape(corrupt, size, nil, nil, nil) == Int4Status.badPackedInt4, "\(alteration)")
            for variant in KernelVariant.allCases where variant.int4Available {
                var c = [Float](repeating: 0, count: m * n)
                let status = problem.activations.withUnsafeBufferPointer { a in
                    variant.int4GemmFunction(a.baseAddress, problem.activationStride, problem.activationScales, problem.sums,
                                             problem.sumsStride, corrupt, nil, &c, n, 0, m, 0, n)
                }
                #expect(status == Int4Status.badPackedInt4, "\(variant) \(alteration)")
            }
        }
    }

    @Test("a header describing a larger, self-consistent matrix is refused when the bytes are shorter")
    func consistentButLargerHeader() throws {
        let problem = Int4Problem.random(m: 1, n: 16, k: 64, group: 32, seed: 8)
        let packed = try problem.packed()
        // Rewrite the header for 1000 × 4096 consistently: only the length gives it away.
        let rows = 1000, columns = 4096, group = 32, rowsPadded = 1008
        let scalesOffset = 64 + rowsPadded * columns / 2
        packed.pointer.storeBytes(of: UInt64(rows), toByteOffset: 8, as: UInt64.self)
        packed.pointer.storeBytes(of: UInt64(columns), toByteOffset: 16, as: UInt64.self)
        packed.pointer.storeBytes(of: UInt32(group), toByteOffset: 24, as: UInt32.self)
        packed.pointer.storeBytes(of: UInt64(rowsPadded), toByteOffset: 32, as: UInt64.self)
        packed.pointer.storeBytes(of: UInt64(scalesOffset), toByteOffset: 48, as: UInt64.self)
        let total = scalesOffset + rowsPadded * (columns / group) * 4
        packed.pointer.storeBytes(of: UInt64(total), toByteOffset: 56, as: UInt64.self)
        #expect(total == beats_q4_packed_size(rows, columns, group))
        #expect(beats_q4_packed_shape(packed.pointer, packed.byteCount, nil, nil, nil) == Int4Status.badPackedInt4)
        var values = [UInt8](repeating: 0, count: 16)
        var scales = [UInt16](repeating: 0, count: 2), minimums = scales
        #expect(beats_q4_unpack(packed.pointer, packed.byteCount, &values, 4096, &scales, &minimums) == Int4Status.badPackedInt4)
    }

    @Test("random header corruption: whatever packed_shape accepts can be unpacked and multiplied")
    func fuzzHeaders() throws {
        let problem = Int4Problem.random(m: 3, n: 24, k: 128, group: 32, seed: 21)
        let packed = try problem.packed()
        let size = packed.byteCount
        var random = SplitMix64(seed: 22)
        var accepted = 0
        let corrupt = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
        defer { corrupt.deallocate() }
        for trial in 0..<3000 {
            corrupt.copyMemory(from: packed.pointer, byteCount: size)
            // Flip one to three bytes of the header, or rewrite one field with a random value.
            if trial % 2 == 0 {
                for _ in 0..<(1 + Int(random.next() % 3)) {
                    let offset = Int(random.next() % 64)
                    corrupt.storeBytes(of: UInt8(truncatingIfNeeded: random.next()), toByteOffset: offset, as: UInt8.self)
                }
            } else {
                let offset = [8, 16, 32, 40, 48, 56][Int(random.next() % 6)]
                let value = [UInt64(random.next() % 4096), random.next(), UInt64(random.next() % 70_000)][Int(random.next() % 3)]
                corrupt.storeBytes(of: value, toByteOffset: offset, as: UInt64.self)
            }
            var shape = (0, 0, 0)
            guard beats_q4_packed_shape(corrupt, size, &shape.0, &shape.1, &shape.2) == KernelStatus.ok else { continue }
            accepted += 1
            #expect(beats_q4_packed_size(shape.0, shape.1, shape.2) <= size)
            var values = [UInt8](repeating: 0, count: shape.0 * shape.1)
            var scales = [UInt16](repeating: 0, count: shape.0 * shape.1 / shape.2), minimums = scales
            #expect(beats_q4_unpack(corrupt, size, &values, shape.1, &scales, &minimums) == KernelStatus.ok)
            let a = [Int8](repeating: 1, count: shape.1)
            var sums = [Int32](repeating: 0, count: shape.1 / shape.2)
            var c = [Float](repeating: 0, count: shape.0)
            #expect(beats_q4_activation_sums(a, shape.1, 1, shape.1, shape.2, &sums, sums.count) == KernelStatus.ok)
            #expect(beats_gemm_q4_scalar(a, shape.1, [1], sums, sums.count, corrupt, nil, &c, shape.0, 0, 1, 0, shape.0) == KernelStatus.ok)
        }
        // Only corruptions that keep the header intact (or change nothing) may pass.
        #expect(accepted < 300, "accepted \(accepted)")
    }
}
