import BEATsCheckpoint
import BEATsCore
import BEATsFormat
import BEATsTestSupport
import Foundation

/// A weight store held in memory, for converter tests that need tensors no fixture has.
final class MemoryWeightStore: WeightStore, @unchecked Sendable {
    let formatName = "memory"
    let kind: ModelKind
    let config: BEATsConfig
    let labels: [AudioSetLabel]
    let tensorNames: [String]
    private let tensors: [String: TensorView]

    init(kind: ModelKind = .pretrained, config: BEATsConfig = BEATsConfig(), labels: [AudioSetLabel] = [],
         tensors: [(String, DType, [Int], [UInt8])]) throws {
        self.kind = kind
        self.config = config
        self.labels = labels
        tensorNames = tensors.map(\.0)
        var views: [String: TensorView] = [:]
        for (name, dtype, shape, bytes) in tensors {
            views[name] = try TensorView(name: name, dtype: dtype, shape: shape, storage: ByteStorage(copying: bytes))
        }
        self.tensors = views
    }

    func tensor(named name: String) throws -> TensorView? { tensors[name] }

    /// Tensors built in memory carry no checksums.
    func verifyChecksums() throws {}

    static func float32(_ values: [Float]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }
}

/// Native files converted from fixtures, in a temporary folder that the caller removes.
struct ConvertedFixture {
    let directory: URL
    let sourcePath: String
    let outputPath: String
    let summary: ConversionSummary

    static func make(_ fixture: String, options: ConversionOptions = ConversionOptions(), hashSource: Bool = false) throws -> ConvertedFixture {
        let directory = try Fixtures.temporaryDirectory()
        let sourcePath = try Fixtures.path(fixture)
        let checkpoint = try PyTorchCheckpoint.open(path: sourcePath)
        let outputPath = directory.appendingPathComponent("model.beatsw").path
        var options = options
        options.sourceName = (sourcePath as NSString).lastPathComponent
        if hashSource { options.sourcePathToHash = sourcePath }
        let summary = try NativeConverter.convert(checkpoint, to: outputPath, options: options)
        return ConvertedFixture(directory: directory, sourcePath: sourcePath, outputPath: outputPath, summary: summary)
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}

/// The checkpoints every round-trip test converts.
let roundTripFixtures = [
    "models/tiny.pt", "models/tiny_ft.pt", "models/tiny_tok.pt",
    "parser/legacy.pt", "parser/deflated.pt", "parser/fp16.pt", "parser/bf16.pt", "parser/views.pt",
]

func bitPatterns(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }

/// v · (g / ‖v‖), the norm over every dimension but 2, in float64 (what `weight_norm(dim=2)`
/// computes, in torch's order of operations).
func foldedWeightReference(g: [Double], v: [Double], shape: [Int]) -> [Double] {
    let kernel = shape[2]
    var norms = [Double](repeating: 0, count: kernel)
    for (index, value) in v.enumerated() { norms[index % kernel] += value * value }
    return v.enumerated().map { index, value in value * (g[index % kernel] / norms[index % kernel].squareRoot()) }
}
