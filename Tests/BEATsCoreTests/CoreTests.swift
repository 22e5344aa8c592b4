import BEATsCore
import BEATsTestSupport
import Foundation
import Testing

@Suite("Core")
struct CoreTests {
    @Test("embedded AudioSet table equals Fixtures/class_labels_indices.csv")
    func ontologyMatchesCSV() throws {
        let text = String(decoding: try Fixtures.bytes("class_labels_indices.csv"), as: UTF8.self)
        var rows: [AudioSetLabel] = []
        for line in text.split(separator: "\n").dropFirst() {
            // index,mid,"display, name" — the name is the rest of the line, quotes removed.
            let parts = line.split(separator: ",", maxSplits: 2, omittingEmptySubsequences: false)
            let name = parts[2].hasPrefix("\"") ? String(parts[2].dropFirst().dropLast()) : String(parts[2])
            rows.append(AudioSetLabel(index: Int(parts[0])!, mid: String(parts[1]), name: name))
        }
        #expect(rows.count == 527)
        #expect(AudioSetOntology.labels == rows)
        #expect(AudioSetOntology.name(forMID: "/m/09x0r") == "Speech")
    }

    @Test("npy round trip keeps shape and values")
    func npyRoundTrip() throws {
        let values: [Float] = [1, -2.5, 3.25, .infinity, 0, 7]
        let bytes = NumpyFile.encode(values, shape: [2, 3])
        #expect(bytes.count % 64 == 24 % 64 || (bytes.count - 24) % 64 == 0)
        let tensor = try NumpyFile.decode(ByteStorage(copying: bytes))
        #expect(tensor.shape == [2, 3])
        #expect(tensor.dtype == .float32)
        #expect(try tensor.floats() == values)
    }

    @Test("reads a reference .npy made by numpy")
    func readsReference() throws {
        let fbank = try Fixtures.reference("fbank/speech")
        #expect(fbank.shape == [1, 365, 128])
        #expect(fbank.dtype == .float32)
        let tokens = try Fixtures.reference("tiny_tok/speech")
        #expect(tokens.dtype == .int64)
    }

    @Test("strided views read the right elements and reject out-of-storage shapes")
    func stridedViews() throws {
        let values: [Float] = (0..<12).map(Float.init)
        let storage = values.withUnsafeBytes { ByteStorage(copying: Array($0)) }
        let transposed = try TensorView(name: "t", dtype: .float32, shape: [4, 3], strides: [1, 4], storage: storage)
        #expect(try transposed.floats() == [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11])
        #expect(throws: TensorError.outOfStorage(tensor: "u", neededBytes: 52, storageBytes: 48)) {
            try TensorView(name: "u", dtype: .float32, shape: [13], storage: storage)
        }
        #expect(throws: TensorError.elementCountOverflow(tensor: "v", shape: [Int.max, 4])) {
            try TensorView(name: "v", dtype: .float32, shape: [Int.max, 4], storage: storage)
        }
        #expect(throws: TensorError.negativeStride(tensor: "w", stride: [-1])) {
            try TensorView(name: "w", dtype: .float32, shape: [2], strides: [-1], storage: storage)
        }
    }

    @Test("bfloat16 and float16 conversions round to nearest even")
    func floatBits() {
        #expect(FloatBits.floatToBFloat16(1.0) == 0x3F80)
        #expect(FloatBits.bfloat16ToFloat(0x3F80) == 1.0)
        // 1 + 2^-8 is exactly halfway between two bfloat16 values: ties to even (down).
        #expect(FloatBits.floatToBFloat16(1.00390625) == 0x3F80)
        #expect(FloatBits.halfToFloat(FloatBits.floatToHalf(0.333333)) == Float(Float16(0.333333)))
    }
}
