import BEATsCore
import BEATsTestSupport
import Foundation
import Testing

@Suite("beats tensor (command line)")
struct TensorCLITests {
    static let name = "encoder.layers.0.fc1.weight"

    /// `beats tensor FILE NAME -o DIRECTORY/OUTPUT`; the command must succeed.
    static func extract(_ file: String, _ name: String = name, to directory: URL, as output: String) throws -> TensorView {
        let path = directory.appendingPathComponent(output).path
        let run = try CLI.beats(["tensor", file, name, "-o", path])
        try #require(run.status == 0, "\(run.standardError)")
        #expect(run.standardError.isEmpty)
        return try NumpyFile.read(path: path)
    }

    @Test("fc1.weight of tiny.pt: a float32 .npy of shape (128, 64) with NumPy's exact header")
    func checkpointTensor() throws {
        try withScratchDirectory { directory in
            let tensor = try Self.extract(try CLI.model("tiny"), to: directory, as: "fc1.npy")
            #expect(tensor.dtype == .float32)
            #expect(tensor.shape == [128, 64])
            let bytes = try Data(contentsOf: directory.appendingPathComponent("fc1.npy"))
            #expect(bytes.count == 128 + 128 * 64 * 4)
            let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (128, 64), }"
            let expected = [0x93] + Array("NUMPY".utf8) + [1, 0, 118, 0] + Array(header.utf8)
                + Array(repeating: UInt8(ascii: " "), count: 118 - header.utf8.count - 1) + [UInt8(ascii: "\n")]
            #expect(Array(bytes.prefix(128)) == expected)
            expectEntries(of: directory, ["fc1.npy"])
        }
    }

    /// A stored precision and how far its values may be from tiny.pt's float32.
    enum Precision: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case f32, f16, int8
        var testDescription: String { rawValue }
        /// The .npy's dtype: float16 as stored, int8 dequantized to float32.
        var npyDType: DType { self == .f16 ? .float16 : .float32 }
        var convertOptions: [String] {
            switch self {
            case .f32: return []
            case .f16: return ["--dtype", "f16"]
            case .int8: return ["--quantize", "int8"]
            }
        }
    }

    @Test("from a converted file: .npy equal to the checkpoint's within the stored precision (int8 as float32)",
          arguments: Precision.allCases)
    func convertedTensor(precision: Precision) throws {
        try withScratchDirectory { directory in
            let original = try Self.extract(try CLI.model("tiny"), to: directory, as: "original.npy")
            let file = try CLI.convert("tiny", in: directory, options: precision.convertOptions)
            let stored = try Self.extract(file, to: directory, as: "stored.npy")
            #expect(stored.dtype == precision.npyDType)
            #expect(stored.shape == [128, 64])
            let expected = try original.floats(), actual = try stored.floats()
            switch precision {
            case .f32:
                #expect(actual == expected)
            case .f16:
                // Round to nearest binary16: error at most 2^-11 relative, 2^-25 absolute for subnormals.
                #expect(zip(actual, expected).allSatisfy { abs($0 - $1) <= abs($1) * 0x1p-11 + 0x1p-25 })
                #expect(actual != expected)
            case .int8:
                // Per row: at most half a step, step = max |w| / 127 (NATIVE-FORMAT.md §5).
                for row in 0..<128 {
                    let range = row * 64..<(row + 1) * 64
                    let halfStep = expected[range].map(abs).max()! / 254
                    #expect(maxAbsDifference(Array(actual[range]), Array(expected[range])) <= halfStep * 1.0001, "row \(row)")
                }
                #expect(actual != expected)
            }
        }
    }

    @Test("an unknown tensor name: one error line with a 'did you mean' hint, no file")
    func unknownName() throws {
        try withScratchDirectory { directory in
            let model = try CLI.model("tiny")
            let run = try CLI.beats(["tensor", model, "fc1.weight", "-o", directory.appendingPathComponent("x.npy").path])
            expectOneErrorLine(run, mentioning: [model, "'fc1.weight'", "did you mean 'encoder.layers.0.fc1.weight'"])
            expectEntries(of: directory, [])
        }
    }

    @Test("an output it cannot write: one error line naming it, nothing left behind", arguments: UnwritableOutput.allCases)
    func unwritableOutput(output: UnwritableOutput) throws {
        let model = try CLI.model("tiny")
        try output.expectRefused { ["tensor", model, Self.name, "-o", $0] }
    }
}
