import Dispatch
import Foundation

/// How far two models' outputs are apart on one clip (`beats compare`): model A is the
/// reference, B the candidate (a quantized or otherwise converted copy, say).
public struct ClipComparison: Sendable, Codable, Equatable {
    /// The audio file.
    public var file: String
    /// Output shape (the same for both models).
    public var shape: [Int]
    /// Float outputs: cosine similarity and max/mean |B − A| over all elements.
    public var cosine: Double?
    /// Largest |B − A| (float outputs).
    public var maxAbsError: Double?
    /// Mean |B − A| (float outputs).
    public var meanAbsError: Double?
    /// Classifiers: mean over classes of KL(Bernoulli(A) ‖ Bernoulli(B)), in nats, each
    /// probability clamped to [1e-7, 1 − 1e-7].
    public var meanBernoulliKL: Double?
    /// Classifiers: 1 when both rank the same class first, else 0.
    public var top1Agreement: Double?
    /// Classifiers: |top-5(A) ∩ top-5(B)| / 5.
    public var top5Overlap: Double?
    /// Tokenizers: fraction of identical tokens.
    public var tokenAgreement: Double?

    /// Probabilities are clamped this far from 0 and 1 before the KL divergence (float32 sigmoid
    /// saturates at exactly 0 or 1, where the divergence would be infinite).
    public static let probabilityClamp = 1e-7

    /// Compares the outputs `a` and `b` of two models of one kind for `file`.
    public init(file: String, a: ModelOutput, b: ModelOutput) throws {
        guard a.shape == b.shape else { throw ComparisonError.shapes(file: file, a: a.shape, b: b.shape) }
        self.file = file
        shape = a.shape
        switch (a, b) {
        case (.tokens(let first), .tokens(let second)):
            tokenAgreement = OutputComparison.agreement(second, first)
        default:
            let first = (a.floatValues ?? []).map(Double.init)
            let second = (b.floatValues ?? []).map(Double.init)
            let comparison = OutputComparison(second, first)
            cosine = comparison.cosine
            maxAbsError = comparison.maxAbsError
            meanAbsError = comparison.meanAbsError
            if case .probabilities = a {
                meanBernoulliKL = Self.meanBernoulliKL(first, second)
                let topA = ParityMeasurement.top(first, 5), topB = ParityMeasurement.top(second, 5)
                top1Agreement = topA.first == topB.first ? 1 : 0
                top5Overlap = Double(Set(topA).intersection(topB).count) / Double(max(1, min(5, first.count)))
            }
        }
    }

    /// Mean over classes of p log(p/q) + (1 − p) log((1 − p)/(1 − q)), p from A, q from B.
    public static func meanBernoulliKL(_ p: [Double], _ q: [Double]) -> Double {
        guard !p.isEmpty else { return 0 }
        let low = probabilityClamp, high = 1 - probabilityClamp
        var sum = 0.0
        for (pa, qb) in zip(p, q) {
            let a = min(max(pa, low), high), b = min(max(qb, low), high)
            sum += a * log(a / b) + (1 - a) * log((1 - a) / (1 - b))
        }
        return sum / Double(p.count)
    }
}

/// `beats compare`'s result: every clip and, per measure, its mean and worst over clips.
public struct ComparisonReport: Sendable, Codable, Equatable {
    /// A measure's mean and worst value over the clips (worst: lowest for similarities and
    /// agreements, highest for errors and divergences).
    public struct Statistic: Sendable, Codable, Equatable {
        /// Mean over clips.
        public var mean: Double
        /// Worst clip's value.
        public var worst: Double
    }

    /// Model A (the reference), as given.
    public var modelA: String
    /// Model B (the candidate), as given.
    public var modelB: String
    /// Both models' kind.
    public var kind: ModelKind
    /// Precision of A's weights.
    public var precisionA: ModelPrecision
    /// Precision of B's weights.
    public var precisionB: ModelPrecision
    /// Every clip, in input order.
    public var clips: [ClipComparison]
    /// Keyed by the measure's JSON name (`cosine`, `max_abs_error`, …).
    public var summary: [String: Statistic]
    /// Wall time of the whole comparison.
    public var seconds: Double

    /// Runs `a` and `b` on each file, decoding each once, and compares their outputs.
    public static func run(_ a: BEATsModel, _ b: BEATsModel, files: [String],
                           progress: ((ClipComparison) -> Void)? = nil) throws -> ComparisonReport {
        guard a.kind == b.kind else { throw ComparisonError.kinds(a: a.source, aKind: a.kind, b: b.source, bKind: b.kind) }
        let started = DispatchTime.now().uptimeNanoseconds
        var clips: [ClipComparison] = []
        for file in files {
            let clip = try AudioClip(contentsOf: URL(fileURLWithPath: file))
            let first = try a.run(clip, source: file).output
            let second = try b.run(clip, source: file).output
            let comparison = try ClipComparison(file: file, a: first, b: second)
            progress?(comparison)
            clips.append(comparison)
        }
        return ComparisonReport(modelA: a.source, modelB: b.source, kind: a.kind, precisionA: ModelPrecision(weights: a.weights),
                                precisionB: ModelPrecision(weights: b.weights), clips: clips, summary: summarize(clips),
                                seconds: Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
    }

    /// The measures in the order they are printed: JSON name, value, whether higher is better.
    static var measures: [(name: String, value: (ClipComparison) -> Double?, higherIsBetter: Bool)] {
        [
            ("cosine", \.cosine, true), ("max_abs_error", \.maxAbsError, false), ("mean_abs_error", \.meanAbsError, false),
            ("mean_bernoulli_kl", \.meanBernoulliKL, false), ("top1_agreement", \.top1Agreement, true),
            ("top5_overlap", \.top5Overlap, true), ("token_agreement", \.tokenAgreement, true),
        ]
    }

    static func summarize(_ clips: [ClipComparison]) -> [String: Statistic] {
        var summary: [String: Statistic] = [:]
        for measure in measures {
            let values = clips.compactMap(measure.value)
            guard !values.isEmpty else { continue }
            let worst = measure.higherIsBetter ? values.min()! : values.max()!
            summary[measure.name] = Statistic(mean: values.reduce(0, +) / Double(values.count), worst: worst)
        }
        return summary
    }

    /// The report as a table: one row per clip and the mean and worst rows.
    public func table() -> String {
        let present = Self.measures.filter { measure in clips.contains { measure.value($0) != nil } }
        let width = max(4, clips.map(\.file.count).max() ?? 4)
        func pad(_ text: String, _ count: Int) -> String { text.count >= count ? text : text + String(repeating: " ", count: count - text.count) }
        // Every column at least two spaces wider than its name ("mean_bernoulli_kl" is 17).
        func columnWidth(_ name: String) -> Int { max(16, name.count + 2) }
        func cell(_ value: Double?, _ name: String) -> String {
            guard let value else { return pad("-", columnWidth(name)) }
            let text = name.hasSuffix("error") || name.hasSuffix("kl") ? String(format: "%.4e", value) : String(format: "%.9f", value)
            return pad(text, columnWidth(name))
        }
        var lines = ["A  \(modelA) (\(precisionA.rawValue))", "B  \(modelB) (\(precisionB.rawValue))", "kind \(kind.rawValue), \(clips.count) clips"]
        lines.append(pad("clip", width) + "  " + present.map { pad($0.name, columnWidth($0.name)) }.joined())
        for clip in clips {
            lines.append(pad(clip.file, width) + "  " + present.map { cell($0.value(clip), $0.name) }.joined())
        }
        for row in ["mean", "worst"] {
            lines.append(pad(row, width) + "  " + present.map { measure in
                let statistic = summary[measure.name]
                return cell(row == "mean" ? statistic?.mean : statistic?.worst, measure.name)
            }.joined())
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The report as one JSON object (snake_case keys, sorted).
    public func json() throws -> String {
        try ParityJSON.encode(self)
    }
}

/// Why two models cannot be compared.
public enum ComparisonError: Error, CustomStringConvertible, Equatable, Sendable {
    case kinds(a: String, aKind: ModelKind, b: String, bKind: ModelKind)
    case shapes(file: String, a: [Int], b: [Int])

    /// The message, naming both models or the file.
    public var description: String {
        switch self {
        case .kinds(let a, let aKind, let b, let bKind):
            return "\(a) is \(aKind.rawValue) and \(b) is \(bKind.rawValue): compare needs two models of one kind"
        case .shapes(let file, let a, let b):
            return "\(file): the models' outputs have different shapes (\(a) and \(b)): not the same architecture"
        }
    }
}
