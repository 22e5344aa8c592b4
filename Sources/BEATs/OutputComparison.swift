/// Element-wise distance between a model's output and a reference, in float64: what `verify`
/// and `compare` report.
public struct OutputComparison: Sendable, Equatable {
    /// Largest |actual − expected| (NaN when either side has a NaN there).
    public let maxAbsError: Double
    /// Flat index of the largest error.
    public let worstIndex: Int
    /// Mean of |actual − expected| over all elements (0 when there are none).
    public let meanAbsError: Double
    /// Cosine similarity of the two as vectors (1 when both are all zeros).
    public let cosine: Double
    private let actual: [Double]
    private let expected: [Double]

    /// Compares `actual` with `expected`, element by element; both must have the same count.
    public init(_ actual: [Double], _ expected: [Double]) {
        precondition(actual.count == expected.count, "comparison of \(actual.count) with \(expected.count) values")
        self.actual = actual
        self.expected = expected
        var maxError = 0.0, worst = 0, sum = 0.0, dot = 0.0, normA = 0.0, normB = 0.0
        for index in actual.indices {
            let error = abs(actual[index] - expected[index])
            if error > maxError || error.isNaN { maxError = error; worst = index }
            sum += error
            dot += actual[index] * expected[index]
            normA += actual[index] * actual[index]
            normB += expected[index] * expected[index]
        }
        maxAbsError = maxError
        worstIndex = worst
        meanAbsError = actual.isEmpty ? 0 : sum / Double(actual.count)
        cosine = normA == 0 && normB == 0 ? 1 : dot / (normA.squareRoot() * normB.squareRoot())
    }

    /// Whether every element satisfies |actual − expected| ≤ atol + rtol·|expected| (numpy.allclose).
    public func allClose(atol: Double, rtol: Double) -> Bool {
        zip(actual, expected).allSatisfy { abs($0 - $1) <= atol + rtol * abs($1) }
    }

    /// Fraction of equal positions of two token sequences of the same length (1 for empty ones).
    public static func agreement(_ actual: [Int], _ expected: [Int]) -> Double {
        guard !actual.isEmpty else { return 1 }
        return Double(zip(actual, expected).filter { $0 == $1 }.count) / Double(actual.count)
    }
}
