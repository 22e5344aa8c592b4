import ArgumentParser
import BEATsCore
import Foundation

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Compare a model's output for a clip with a reference .npy; PASS/FAIL as exit status.",
        discussion: """
            Float outputs pass when every element satisfies |out - ref| <= atol + rtol * |ref| \
            (numpy.allclose). Token outputs pass when at least --min-agreement of the tokens are identical. \
            Make references with tools/reference/beats_reference.py and the official code. Exit status: \
            0 PASS, 1 FAIL or error.
            """
    )

    @Argument(help: "Model: a PyTorch checkpoint or a converted file.") var model: String
    @Argument(help: "Audio: a WAV file.") var audio: String
    @Option(help: "The official output for this model and clip (.npy).") var reference: String
    @Option(help: "Absolute tolerance (default 1e-4 for features, 1e-5 for probabilities).") var atol: Double?
    @Option(help: "Relative tolerance.") var rtol: Double = 0
    @Option(help: "Token models: fraction of identical tokens needed.") var minAgreement: Double = 0.99
    @OptionGroup var inference: InferenceOptions

    func run() throws {
        let session = try InferenceSession(modelPath: model, threads: inference.threads)
        let output = try session.run(audioPath: audio)
        let expected = try NumpyFile.read(path: reference)
        guard expected.shape == output.shape else {
            throw CommandError("\(reference): shape \(expected.shape) but the model gives \(output.shape)")
        }
        let passed: Bool
        switch output {
        case .tokens(let tokens):
            let reference = try expected.integers()
            let same = zip(tokens, reference).filter { $0 == $1 }.count
            let agreement = tokens.isEmpty ? 1 : Double(same) / Double(tokens.count)
            passed = agreement >= minAgreement
            print("tokens: \(same)/\(tokens.count) identical (\(String(format: "%.2f", agreement * 100)) %), need \(String(format: "%.2f", minAgreement * 100)) %")
        case .features(_, _, let values), .probabilities(let values):
            let reference = try expected.doubles()
            let tolerance = atol ?? (session.kind == .finetuned ? 1e-5 : 1e-4)
            let comparison = Comparison(values.map(Double.init), reference)
            passed = comparison.allClose(atol: tolerance, rtol: rtol)
            print("shape \(output.shape)")
            print(String(format: "max abs error  %.3e (element %d)", comparison.maxAbsError, comparison.worstIndex))
            print(String(format: "mean abs error %.3e", comparison.meanAbsError))
            print(String(format: "cosine         %.9f", comparison.cosine))
            print(String(format: "tolerance      atol %.1e, rtol %.1e", tolerance, rtol))
        }
        print(passed ? "PASS" : "FAIL")
        if !passed { throw ExitCode(1) }
    }
}

/// Element-wise comparison of an output with its reference, in float64.
struct Comparison {
    let actual: [Double]
    let expected: [Double]
    let maxAbsError: Double
    let worstIndex: Int
    let meanAbsError: Double
    let cosine: Double

    init(_ actual: [Double], _ expected: [Double]) {
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

    func allClose(atol: Double, rtol: Double) -> Bool {
        zip(actual, expected).allSatisfy { abs($0 - $1) <= atol + rtol * abs($1) }
    }
}
