import ArgumentParser
import BEATs
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
        let network = try inference.openModel(model, command: "verify")
        let output = try network.output(contentsOf: URL(fileURLWithPath: audio))
        let expected = try NumpyFile.read(path: reference)
        guard expected.shape == output.shape else {
            throw CommandError("\(reference): shape \(expected.shape) but the model gives \(output.shape)")
        }
        let passed: Bool
        switch output {
        case .tokens(let tokens):
            let agreement = OutputComparison.agreement(tokens, try expected.integers().map { Int($0) })
            let same = Int((agreement * Double(tokens.count)).rounded())
            passed = agreement >= minAgreement
            print("tokens: \(same)/\(tokens.count) identical (\(String(format: "%.2f", agreement * 100)) %), need \(String(format: "%.2f", minAgreement * 100)) %")
        case .features, .probabilities, .frameProbabilities, .embedding:
            let values = output.floatValues ?? []
            let tolerance = atol ?? (network.kind == .finetuned ? 1e-5 : 1e-4)
            let comparison = OutputComparison(values.map(Double.init), try expected.doubles())
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
