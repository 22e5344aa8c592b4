import BEATsCore
import BEATsFormat

/// How a model stores its weight matrices, which decides how close to the official float32
/// output it can be and so which ``ParityCriteria`` judge it.
public enum ModelPrecision: String, Sendable, Codable, CaseIterable {
    case float32, float16, bfloat16, int8, int4
    /// More than one lower precision among the weight matrices (a per-tensor mix).
    case mixed

    /// The precision of `weights`' matrices (tensors of two or more dimensions): float32 when
    /// all are float32 or float64, the one lower precision present, or `.mixed`.
    public init(weights: any WeightStore) {
        var lower: Set<ModelPrecision> = []
        if let native = weights as? NativeModelFile {
            for entry in native.header.tensors where entry.shape.count >= 2 {
                if let precision = Self.lower(entry.dtype.rawValue) { lower.insert(precision) }
            }
        } else {
            for name in weights.tensorNames {
                guard let tensor = try? weights.tensor(named: name), tensor.shape.count >= 2 else { continue }
                if let precision = Self.lower(tensor.dtype.rawValue) { lower.insert(precision) }
            }
        }
        self = lower.count == 1 ? lower.first! : lower.isEmpty ? .float32 : .mixed
    }

    /// The lower precision a dtype name stands for (nil for float32, float64 and integers that
    /// are not weights).
    private static func lower(_ dtype: String) -> ModelPrecision? {
        switch dtype {
        case "float16": return .float16
        case "bfloat16": return .bfloat16
        case "qint8", "int8": return .int8
        case let name where name.contains("int4"): return .int4
        default: return nil
        }
    }
}

/// What a model's output must satisfy against the official output to pass `beats verify`.
///
/// Derived from SPEC "Parity": the truth is the official code in float64; PyTorch float32 has
/// its own distance from it, and a float32 model must be no further than a small multiple of
/// that distance. Lower precisions cannot be: they are judged on what they are used for
/// (direction of features, the top classes, the tokens). ``defaults(for:output:)`` gives the
/// measured defaults; every field is shown with the result.
public struct ParityCriteria: Sendable, Codable, Equatable {
    /// Which output the criteria are for.
    public enum Output: String, Sendable, Codable {
        /// Features, layer outputs, embeddings.
        case features
        /// Class probabilities (per clip or per frame).
        case probabilities
        /// Discrete tokens.
        case tokens
    }

    /// Float outputs pass when every element is within atol + rtol·|reference| (numpy.allclose)...
    public var atol: Double?
    /// Relative tolerance of the atol rule (0 by default).
    public var rtol: Double
    /// ...or, with the float64 truth, when ours is within `truthMultiple` × PyTorch float32's
    /// own distance from the truth, in max and in mean absolute error.
    public var truthMultiple: Double?
    /// Float outputs: least cosine similarity with the reference.
    public var minimumCosine: Double?
    /// Probabilities: the `sameTop` most probable classes must be the reference's (as a set).
    public var sameTop: Int?
    /// Tokens: least fraction of identical tokens.
    public var minimumAgreement: Double?

    /// Criteria with the given fields; nil fields are not checked.
    public init(atol: Double? = nil, rtol: Double = 0, truthMultiple: Double? = nil, minimumCosine: Double? = nil,
                sameTop: Int? = nil, minimumAgreement: Double? = nil) {
        self.atol = atol
        self.rtol = rtol
        self.truthMultiple = truthMultiple
        self.minimumCosine = minimumCosine
        self.sameTop = sameTop
        self.minimumAgreement = minimumAgreement
    }

    /// The default criteria for a model of `precision` and an output (Formats/REFERENCE-SET.md
    /// §Criteria gives the measurements behind each number).
    public static func defaults(for precision: ModelPrecision, output: Output) -> ParityCriteria {
        switch (precision, output) {
        case (.float32, .features): return ParityCriteria(atol: 1e-4, truthMultiple: 2)
        case (.float32, .probabilities): return ParityCriteria(atol: 1e-5, truthMultiple: 2)
        case (.float32, .tokens): return ParityCriteria(minimumAgreement: 0.99)
        case (.float16, .features), (.bfloat16, .features): return ParityCriteria(minimumCosine: 0.9999)
        case (.float16, .probabilities), (.bfloat16, .probabilities): return ParityCriteria(minimumCosine: 0.9999, sameTop: 5)
        case (.float16, .tokens), (.bfloat16, .tokens): return ParityCriteria(minimumAgreement: 0.95)
        case (.int8, .features): return ParityCriteria(minimumCosine: 0.999)
        case (.int8, .probabilities): return ParityCriteria(minimumCosine: 0.999, sameTop: 5)
        case (.int8, .tokens): return ParityCriteria(minimumAgreement: 0.9)
        case (.int4, .features), (.mixed, .features): return ParityCriteria(minimumCosine: 0.99)
        case (.int4, .probabilities), (.mixed, .probabilities): return ParityCriteria(minimumCosine: 0.99, sameTop: 5)
        case (.int4, .tokens), (.mixed, .tokens): return ParityCriteria(minimumAgreement: 0.8)
        }
    }

    /// The criteria in one line, as `verify` prints them.
    public var summary: String {
        var parts: [String] = []
        if let atol {
            var rule = "max abs ≤ \(Self.number(atol))" + (rtol > 0 ? " + \(Self.number(rtol))·|ref|" : "")
            if let truthMultiple {
                rule += " or, from the float64 truth, max and mean abs ≤ \(Self.number(truthMultiple))× PyTorch float32's"
            }
            parts.append(rule)
        } else if let truthMultiple {
            parts.append("from the float64 truth, max and mean abs ≤ \(Self.number(truthMultiple))× PyTorch float32's")
        }
        if let minimumCosine { parts.append("cosine ≥ \(Self.number(minimumCosine))") }
        if let sameTop { parts.append("same top-\(sameTop) classes") }
        if let minimumAgreement { parts.append("≥ \(Self.number(minimumAgreement * 100)) % identical tokens") }
        return parts.joined(separator: "; ")
    }

    static func number(_ value: Double) -> String {
        if value == value.rounded() && abs(value) < 1e6 { return String(Int(value)) }
        if abs(value) >= 0.01 { return String(format: "%g", value) }
        return String(format: "%.0e", value)
    }
}

/// One output judged against its reference: the numbers and the verdict.
public struct ParityMeasurement: Sendable, Codable, Equatable {
    /// Largest and mean |ours − reference| (float outputs).
    public var maxAbsError: Double?
    /// Mean |ours − reference|.
    public var meanAbsError: Double?
    /// Flat index of the largest error.
    public var worstIndex: Int?
    /// Cosine similarity with the reference.
    public var cosine: Double?
    /// Probabilities: how many of the reference's top-K classes ours has in its top K, and K.
    public var topOverlap: Int?
    /// K of the top-K overlap.
    public var topCount: Int?
    /// Tokens: fraction identical.
    public var tokenAgreement: Double?
    /// With the float64 truth: ours' and PyTorch float32's max and mean distance from it.
    public var truthMaxAbsError: Double?
    /// Ours' mean distance from the truth.
    public var truthMeanAbsError: Double?
    /// PyTorch float32's largest distance from the truth.
    public var referenceTruthMaxAbsError: Double?
    /// PyTorch float32's mean distance from the truth.
    public var referenceTruthMeanAbsError: Double?
    /// Why it failed, one sentence per criterion missed (empty when it passed).
    public var failures: [String] = []

    /// Whether every criterion held.
    public var passed: Bool { failures.isEmpty }

    /// Judges float output `ours` against `reference` (and the float64 `truth` when known).
    public init(floats ours: [Double], reference: [Double], truth: [Double]?, output: ParityCriteria.Output,
                criteria: ParityCriteria) {
        precondition(ours.count == reference.count, "parity: \(ours.count) values against \(reference.count)")
        let direct = OutputComparison(ours, reference)
        maxAbsError = direct.maxAbsError
        meanAbsError = direct.meanAbsError
        worstIndex = direct.worstIndex
        cosine = direct.cosine
        var closeEnough: Bool?
        if let atol = criteria.atol {
            closeEnough = direct.allClose(atol: atol, rtol: criteria.rtol)
        }
        if let truth, truth.count == ours.count {
            let fromTruth = OutputComparison(ours, truth)
            let referenceFromTruth = OutputComparison(reference, truth)
            truthMaxAbsError = fromTruth.maxAbsError
            truthMeanAbsError = fromTruth.meanAbsError
            referenceTruthMaxAbsError = referenceFromTruth.maxAbsError
            referenceTruthMeanAbsError = referenceFromTruth.meanAbsError
            if let multiple = criteria.truthMultiple, closeEnough != true {
                closeEnough = fromTruth.maxAbsError <= multiple * referenceFromTruth.maxAbsError
                    && fromTruth.meanAbsError <= multiple * referenceFromTruth.meanAbsError
            }
        }
        if closeEnough == false {
            var reason = String(format: "max abs error %.3e", direct.maxAbsError)
            if let atol = criteria.atol { reason += " > atol " + ParityCriteria.number(atol) }
            if let ourMax = truthMaxAbsError, let ourMean = truthMeanAbsError, let torchMax = referenceTruthMaxAbsError,
               let torchMean = referenceTruthMeanAbsError, let multiple = criteria.truthMultiple {
                reason += String(format: "; from the float64 truth max %.3e, mean %.3e, beyond %@× PyTorch float32's (max %.3e, mean %.3e)",
                                 ourMax, ourMean, ParityCriteria.number(multiple), torchMax, torchMean)
            }
            failures.append(reason)
        }
        if let minimum = criteria.minimumCosine, !(direct.cosine >= minimum) {
            failures.append(String(format: "cosine %.6f < %@", direct.cosine, ParityCriteria.number(minimum)))
        }
        if output == .probabilities, let top = criteria.sameTop ?? (reference.count >= 5 ? 5 : nil) {
            let count = min(top, reference.count)
            let overlap = Set(Self.top(ours, count)).intersection(Self.top(reference, count)).count
            topOverlap = overlap
            topCount = count
            if criteria.sameTop != nil && overlap < count {
                failures.append("top-\(count) classes: \(overlap) of \(count) in common")
            }
        }
    }

    /// Judges tokens against the reference's.
    public init(tokens ours: [Int], reference: [Int], criteria: ParityCriteria) {
        let agreement = OutputComparison.agreement(ours, reference)
        tokenAgreement = agreement
        let minimum = criteria.minimumAgreement ?? 0.99
        if !(agreement >= minimum) {
            failures.append(String(format: "%.2f %% identical tokens < %@ %%", agreement * 100, ParityCriteria.number(minimum * 100)))
        }
    }

    /// No numbers yet and no failure.
    public init() {}

    /// A measurement that failed before any number (shape, provenance of the clip).
    public init(failure: String) {
        failures = [failure]
    }

    /// Indices of the `count` largest values, largest first (ties by index).
    static func top(_ values: [Double], _ count: Int) -> [Int] {
        Array(values.indices.sorted { values[$0] != values[$1] ? values[$0] > values[$1] : $0 < $1 }.prefix(count))
    }
}
