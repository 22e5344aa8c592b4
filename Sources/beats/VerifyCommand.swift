import ArgumentParser
import BEATs
import Foundation

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a model against official outputs: one clip (--reference) or a reference set (--manifest).",
        discussion: """
            With --manifest (a reference set from tools/reference/beats_reference.py --out DIR): the model's \
            provenance first (checkpoint SHA-256: recorded in a native file or an export's config.json, hashed otherwise; \
            kind; config), then every clip with the set's options, a table and a summary. Default criteria follow from the model's \
            precision (Formats/REFERENCE-SET.md): float32 within atol of the reference or within 2x PyTorch \
            float32's own distance from the float64 truth; float16/bfloat16 cosine >= 0.9999; int8 cosine >= 0.999; \
            classifiers below float32 also the same top-5 classes; tokens 99 % (float32), 95 %, 90 % identical. \
            They are printed with the result. Exit status: 0 all pass, 1 a failure, 2 could not run (missing file, \
            bad manifest). One clip (AUDIO --reference R.npy [--truth T.f64.npy]): exit 0 PASS, 1 FAIL or error.
            """
    )

    @Argument(help: "Model: a PyTorch checkpoint or a converted file.") var model: String
    @Argument(help: "Audio (one clip, with --reference).") var audio: String?
    @Option(help: "The official output for this model and clip (.npy).") var reference: String?
    @Option(help: "One clip: the official output in float64 (.npy), for the float32 rule against the truth.") var truth: String?
    @Option(help: "A reference set's manifest.json: verify every clip of the set.") var manifest: String?
    @Option(help: "With --manifest: write JUnit XML here (one testcase per clip; '-' for standard output).") var junit: String?
    @Flag(help: "Print one JSON object instead of the table.") var json = false
    @Option(help: "Absolute tolerance against the reference (default by precision: float32 1e-4 features, 1e-5 probabilities).") var atol: Double?
    @Option(help: "Relative tolerance, with the absolute one.") var rtol: Double?
    @Option(help: "Least cosine similarity with the reference (default by precision; none for float32).") var minCosine: Double?
    @Option(help: "Token models: fraction of identical tokens needed (default by precision: 0.99 for float32).") var minAgreement: Double?
    @OptionGroup var inference: InferenceOptions

    func validate() throws {
        if manifest != nil {
            guard audio == nil, reference == nil, truth == nil else {
                throw ValidationError("--manifest takes the clips from the set: give no AUDIO, --reference or --truth")
            }
        } else {
            guard audio != nil, reference != nil else { throw ValidationError("give AUDIO --reference REF.npy (one clip) or --manifest M.json (a set)") }
            guard junit == nil else { throw ValidationError("--junit needs --manifest") }
        }
        if let minAgreement, !(0...1).contains(minAgreement) { throw ValidationError("--min-agreement is a fraction from 0 to 1") }
        if let minCosine, !(-1...1).contains(minCosine) { throw ValidationError("--min-cosine is between -1 and 1") }
        if let atol, !(atol >= 0) { throw ValidationError("--atol must be a non-negative number") }
        if let rtol, !(rtol >= 0) { throw ValidationError("--rtol must be a non-negative number") }
    }

    /// The defaults with the options given on the command line in their place.
    func adjust(_ criteria: inout ParityCriteria) {
        if let atol { criteria.atol = atol }
        if let rtol { criteria.rtol = rtol }
        if let minCosine { criteria.minimumCosine = minCosine }
        if let minAgreement { criteria.minimumAgreement = minAgreement }
    }

    func run() throws {
        if let manifest {
            try runSet(manifest)
        } else if let audio, let reference {
            try runClip(audio: audio, reference: reference)
        }
    }

    private func runClip(audio: String, reference: String) throws {
        let network = try inference.openModel(model, command: "verify")
        let result = try ParityCheck.run(model: network, audio: audio, reference: reference, truth: truth, adjust: adjust)
        if json {
            try printRaw(try result.json() + "\n")
        } else {
            let m = result.measurement
            print("shape \(result.shape)")
            if let tokens = m.tokenAgreement {
                let count = result.shape.first ?? 0
                print("tokens: \(Int((tokens * Double(count)).rounded()))/\(count) identical (\(String(format: "%.2f", tokens * 100)) %)")
            }
            if let maxAbs = m.maxAbsError, let worst = m.worstIndex {
                print(String(format: "max abs error  %.3e (element %d)", maxAbs, worst))
            }
            if let mean = m.meanAbsError { print(String(format: "mean abs error %.3e", mean)) }
            if let cosine = m.cosine { print(String(format: "cosine         %.9f", cosine)) }
            if let overlap = m.topOverlap, let count = m.topCount { print("top-\(count)          \(overlap)/\(count) classes in common") }
            if let ours = m.truthMaxAbsError, let torch = m.referenceTruthMaxAbsError, let oursMean = m.truthMeanAbsError,
               let torchMean = m.referenceTruthMeanAbsError {
                print(String(format: "from the float64 truth: ours max %.3e mean %.3e, PyTorch float32 max %.3e mean %.3e",
                             ours, oursMean, torch, torchMean))
            }
            print("criteria       \(result.precision.rawValue) \(result.output.rawValue): \(result.criteriaSummary)")
            for failure in m.failures { print("  \(failure)") }
            print(result.passed ? "PASS" : "FAIL")
        }
        if !result.passed { throw ExitCode(1) }
    }

    /// A reference set: any error before the verdict (missing file, bad manifest, unreadable
    /// model) is exit status 2, with a JUnit file saying so when one was asked for.
    private func runSet(_ manifestPath: String) throws {
        if let junit { try OutputFile.checkWritable(junit) }
        let report: ParityReport
        do {
            let manifest = try ReferenceManifest.read(path: manifestPath)
            try ParityCheck.requireFiles(of: manifest)
            let network = try inference.openModel(model, command: "verify")
            var criteria = ParityCriteria.defaults(
                for: ModelPrecision(weights: network.weights),
                output: ParityReport.output(kind: manifest.checkpoint.kind, request: manifest.clips[0].request))
            adjust(&criteria)
            report = try ParityCheck.run(model: network, manifest: manifest, criteria: criteria)
        } catch {
            let message = oneLine(String(describing: error))
            if let junit {
                try? OutputFile.write(Array(ParityReport.junitError(message: message, manifest: manifestPath, model: model).utf8), to: junit)
            }
            FileHandle.standardError.write(Data("error: \(message)\n".utf8))
            throw ExitCode(2)
        }
        if let junit { try OutputFile.write(Array(report.junitXML().utf8), to: junit) }
        try printRaw(json ? try report.json() + "\n" : report.table())
        if report.exitStatus != 0 { throw ExitCode(report.exitStatus) }
    }
}
