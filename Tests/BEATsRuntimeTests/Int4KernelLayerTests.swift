import BEATsKernels
import BEATsTestSupport
import CBEATsKernels
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs `body` and expects a KernelError with `expected`'s status.
private func expectKernelError(_ expected: beats_status, sourceLocation: SourceLocation = #_sourceLocation,
                               _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected \(String(cString: beats_status_description(expected.rawValue)))", sourceLocation: sourceLocation)
    } catch let error as KernelError {
        #expect(error.status == expected.rawValue, "\(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
    }
}

/// The Swift layer over the int4 kernels (BEATsKernels/Int4Kernels.swift): the quantizer's errors
/// with row and column, PackedInt4Matrix owned / wrapped / copied, unpacking and dequantization,
/// and the GEMM through `Int8KernelVariant`. (The C kernels themselves are tested in
/// BEATsKernelTests/Int4*.swift; this target is the kernel tests' neighbour that links the Swift layer.)
@Suite("Int4 kernel Swift layer")
struct Int4KernelLayerTests {
    /// A stand-in for a mapped file: owns aligned bytes and counts how long it lives.
    final class Owner {
        let bytes: UnsafeMutableRawBufferPointer
        init(count: Int) { bytes = .allocate(byteCount: count, alignment: 64) }
        deinit { bytes.deallocate() }
    }

    func randomWeights(rows: Int, columns: Int, seed: UInt64) -> [Float] {
        var random = SplitMix64(seed: seed)
        return (0..<(rows * columns)).map { _ in Float.random(in: -0.2...0.3, using: &random) }
    }

    @Test("quantize → pack → unpack → dequantize agree, and the statistics summarize the loss")
    func roundTrip() throws {
        let (rows, columns) = (21, 384)
        let w = randomWeights(rows: rows, columns: columns, seed: 1)
        for groupSize in Int4Kernels.groupSizes {
            let quantized = try Int4Quantization.quantize(w, rows: rows, columns: columns, groupSize: groupSize)
            #expect(quantized.weights.rows == rows && quantized.weights.groups == columns / groupSize)
            #expect(quantized.weights.values.allSatisfy { $0 <= 15 })
            let packed = try PackedInt4Matrix(quantized.weights)
            #expect(packed.rows == rows && packed.columns == columns && packed.groupSize == groupSize)
            #expect(packed.byteCount == PackedInt4Matrix.byteCount(rows: rows, columns: columns, groupSize: groupSize))
            #expect(packed.unpacked() == quantized.weights)
            let dequantized = packed.dequantized()
            #expect(dequantized == quantized.weights.dequantized())
            // The statistics are the dequantized values' errors.
            var squared = 0.0, norm = 0.0
            for row in 0..<rows {
                var rowSquared = 0.0
                for column in 0..<columns {
                    let error = Double(w[row * columns + column]) - Double(dequantized[row * columns + column])
                    rowSquared += error * error
                    norm += Double(w[row * columns + column]) * Double(w[row * columns + column])
                }
                #expect(quantized.rowErrors[row].squaredError == rowSquared)
                squared += rowSquared
            }
            #expect(abs(quantized.squaredError - squared) <= 1e-12 * squared)
            #expect(abs(quantized.squaredNorm - norm) <= 1e-12 * norm)
            #expect(quantized.relativeRMSError > 0.01 && quantized.relativeRMSError < 0.2, "G=\(groupSize)")
            #expect(abs(quantized.sqnrDecibels + 20 * log10(quantized.relativeRMSError)) < 1e-9)
        }
    }

    @Test("unrepresentable weights are named by row and column; bad group sizes by size")
    func quantizationErrors() {
        var w = randomWeights(rows: 4, columns: 64, seed: 2)
        w[2 * 64 + 45] = .nan
        w[3 * 64 + 1] = 70000
        let nanError = #expect(throws: Int4QuantizationError.self) {
            try Int4Quantization.quantize(w, rows: 4, columns: 64, groupSize: 32)
        }
        if case let .notRepresentable(row, column, value)? = nanError {
            #expect(row == 2 && column == 45 && value.isNaN)
        } else {
            Issue.record("expected the NaN at [2, 45], got \(String(describing: nanError))")
        }
        #expect(nanError?.description.contains("[2, 45]") == true)
        w[2 * 64 + 45] = 0
        #expect(throws: Int4QuantizationError.notRepresentable(row: 3, column: 1, value: 70000)) {
            try Int4Quantization.quantize(w, rows: 4, columns: 64, groupSize: 32)
        }
        // Within one group the NaN/Inf is named before an earlier out-of-range weight.
        var row = [Float](repeating: 1, count: 32)
        row[3] = -1e5
        row[9] = .infinity
        #expect(throws: Int4QuantizationError.notRepresentable(row: 0, column: 9, value: .infinity)) {
            try Int4Quantization.quantizeRow(row, groupSize: 32)
        }
        #expect(throws: Int4QuantizationError.invalidGroupSize(groupSize: 32, columns: 48)) {
            try Int4Quantization.quantizeRow([Float](repeating: 1, count: 48), groupSize: 32)
        }
        #expect(throws: Int4QuantizationError.invalidGroupSize(groupSize: 16, columns: 64)) {
            try Int4Quantization.quantizeRow([Float](repeating: 1, count: 64), groupSize: 16)
        }
    }

    @Test("a wrapped matrix uses the owner's bytes in place and keeps the owner alive")
    func wrapping() throws {
        let quantized = try Int4Quantization.quantize(randomWeights(rows: 18, columns: 128, seed: 3), rows: 18, columns: 128,
                                                      groupSize: 64)
        let packed = try PackedInt4Matrix(quantized.weights)
        weak var weakOwner: Owner?
        var wrapped: PackedInt4Matrix?
        do {
            let owner = Owner(count: packed.byteCount + 40) // a file may hold bytes after the matrix
            weakOwner = owner
            UnsafeMutableRawBufferPointer(rebasing: owner.bytes[0..<packed.byteCount]).copyMemory(from: packed.bytes)
            wrapped = try PackedInt4Matrix(wrapping: UnsafeRawBufferPointer(owner.bytes), owner: owner)
            #expect(wrapped!.bytes.baseAddress == UnsafeRawPointer(owner.bytes.baseAddress!))
        }
        #expect(weakOwner != nil, "the wrapped matrix keeps its owner alive")
        #expect(wrapped!.unpacked() == quantized.weights)
        #expect(wrapped!.byteCount == packed.byteCount)
        wrapped = nil
        #expect(weakOwner == nil, "and releases it with the matrix")

        // Misaligned bytes are refused in place but can be copied; short or corrupt bytes are refused.
        let owner = Owner(count: packed.byteCount + 64)
        UnsafeMutableRawBufferPointer(rebasing: owner.bytes[8..<(8 + packed.byteCount)]).copyMemory(from: packed.bytes)
        let shifted = UnsafeRawBufferPointer(rebasing: owner.bytes[8..<(8 + packed.byteCount)])
        expectKernelError(BEATS_ERROR_MISALIGNED) {
            _ = try PackedInt4Matrix(wrapping: shifted, owner: owner)
        }
        let copied = try PackedInt4Matrix(copying: shifted)
        #expect(copied.unpacked() == quantized.weights)
        expectKernelError(BEATS_ERROR_BAD_PACKED_INT4) {
            _ = try PackedInt4Matrix(copying: UnsafeRawBufferPointer(rebasing: shifted[0..<(packed.byteCount - 1)]))
        }
        expectKernelError(BEATS_ERROR_BAD_PACKED_INT4) {
            _ = try PackedInt4Matrix(wrapping: UnsafeRawBufferPointer(rebasing: owner.bytes[0..<64]), owner: owner)
        }
    }

    @Test("packing refuses values above 15 and bad shapes with typed statuses")
    func packErrors() {
        let good = Int4Weights(rows: 2, columns: 32, groupSize: 32, values: [UInt8](repeating: 3, count: 64),
                               scaleBits: [0x3c00, 0x3c00], minimumBits: [0, 0])
        #expect(throws: Never.self) { _ = try PackedInt4Matrix(good) }
        var bad = good
        bad.values[40] = 16
        expectKernelError(BEATS_ERROR_INT4_OUT_OF_RANGE) { _ = try PackedInt4Matrix(bad) }
        bad = good
        bad.scaleBits[1] = 0x7c00
        expectKernelError(BEATS_ERROR_INT4_OUT_OF_RANGE) { _ = try PackedInt4Matrix(bad) }
        let values = [UInt8](repeating: 0, count: 96), halves = [UInt16](repeating: 0, count: 3)
        expectKernelError(BEATS_ERROR_GROUP_SIZE) {
            _ = try PackedInt4Matrix(values: values, stride: 48, rows: 2, columns: 48, groupSize: 32, scaleBits: halves, minimumBits: halves)
        }
        expectKernelError(BEATS_ERROR_TOO_LARGE) {
            _ = try PackedInt4Matrix(values: values, stride: 65536 + 32, rows: 1, columns: 65536 + 32, groupSize: 32,
                                 scaleBits: halves, minimumBits: halves)
        }
        #expect(PackedInt4Matrix.byteCount(rows: 3, columns: 48, groupSize: 32) == nil)
        #expect(String(cString: beats_status_description(BEATS_ERROR_GROUP_SIZE.rawValue)).contains("32, 64 or 128"))
    }

    @Test("the GEMM through Int8KernelVariant: every int4 variant gives the scalar bits, bias included")
    func multiply() throws {
        let (m, n, k, groupSize) = (13, 40, 256, 64)
        let quantized = try Int4Quantization.quantize(randomWeights(rows: n, columns: k, seed: 4), rows: n, columns: k,
                                                      groupSize: groupSize)
        let weights = try PackedInt4Matrix(quantized.weights)
        var random = SplitMix64(seed: 5)
        let x = (0..<(m * k)).map { _ in Float.random(in: -3...3, using: &random) }
        let bias = (0..<n).map { _ in Float.random(in: -1...1, using: &random) }
        var reference: [Float]?
        for variant in Int8KernelVariant.allCases {
            guard variant.supportsInt4 else {
                print("NOTE: \(variant) int4 NOT RUN here (CPU lacks it)")
                continue
            }
            var a = [Int8](repeating: 0, count: m * k), scales = [Float](repeating: 0, count: m)
            var sums = [Int32](repeating: 0, count: m * k / groupSize)
            try variant.quantizeRowsForInt4(x, leading: k, rows: m, columns: k, into: &a, leading: k, scales: &scales,
                                            groupSums: &sums, leading: k / groupSize, groupSize: groupSize)
            #expect(scales.allSatisfy { $0 > 0 })
            #expect(a.contains(127) || a.contains(-127), "full int8 levels")
            var c = [Float](repeating: .nan, count: m * n)
            try variant.multiply(a, leading: k, scales: scales, groupSums: sums, leading: k / groupSize, weights, bias: bias,
                                 into: &c, leading: n, rows: 0..<m, columns: 0..<n)
            if let reference {
                #expect(c.map(\.bitPattern) == reference.map(\.bitPattern), "\(variant)")
            } else {
                reference = c
                // Against float64 on the dequantized weights and the quantized activations.
                let dequantized = weights.dequantized()
                for row in 0..<m {
                    for column in 0..<n {
                        var exact = 0.0, magnitude = 0.0
                        for index in 0..<k {
                            let term = Double(a[row * k + index]) * Double(scales[row]) * Double(dequantized[column * k + index])
                            exact += term
                            magnitude += abs(term)
                        }
                        exact += Double(bias[column])
                        // The dequantized float32 weights carry their own rounding (ulp/2 each).
                        #expect(abs(Double(c[row * n + column]) - exact) <= 1e-5 * magnitude + 1e-6)
                    }
                }
            }
        }
        #expect(reference != nil)
        // A group size that does not match the weights' is caught by the sums' stride check or the sums.
        var sums = [Int32](repeating: 0, count: 4)
        expectKernelError(BEATS_ERROR_GROUP_SIZE) {
            try Int4Kernels.activationGroupSums([Int8](repeating: 0, count: 96), leading: 96, rows: 1, columns: 96, groupSize: 64,
                                                into: &sums, leading: 4)
        }
        var c = [Float](repeating: 0, count: n)
        expectKernelError(BEATS_ERROR_INVALID_ARGUMENT) {
            try Int8KernelVariant.scalar.multiply([Int8](repeating: 0, count: k), leading: k, scales: [1], groupSums: sums,
                                                  leading: 3, weights, into: &c, leading: n, rows: 0..<1, columns: 0..<n)
        }
    }
}
