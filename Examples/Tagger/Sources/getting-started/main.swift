import BEATs
import Foundation

// The Swift code of the DocC article Sources/BEATs/BEATs.docc/GettingStarted.md, block by block,
// so that CI compiles it. Keep the two in step. Nothing here runs: `getting-started` only prints
// where to read.

func convertCheckpoint() throws {
    var options = ConversionOptions(quantizeInt8: true)
    options.floatType = .float16          // tensors that stay floating point
    let summary = try ModelConversion.convert("BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt",
                                              to: "beats-as2m.beatsw", options: options) { progress in
        print("[\(progress.index)/\(progress.count)] \(progress.tensor.name)")
    }
    print("\(summary.tensors.count) tensors, \(summary.bytesOut) bytes")
}

func walkThrough() throws {
    let model = try BEATsModel(contentsOf: URL(fileURLWithPath: "beats-as2m.beatsw"))
    print(model.kind, model.classLabels.count)     // finetuned 527

    let clip = try AudioClip(contentsOf: URL(fileURLWithPath: "clip.wav"))
    for label in try model.classify(clip, top: 5) {
        print(label.probability, label.mid, label.name)
    }
    let probabilities = try model.probabilities(for: clip)   // all 527, in classifier order

    let encoder = try BEATsModel(contentsOf: URL(fileURLWithPath: "BEATs_iter3_plus_AS2M.pt"))
    let features = try encoder.features(of: clip)
    print(features.tokenCount, features.dimension)
    let firstToken = features[token: 0]          // one token's vector
    let embedding = features.meanPooled()        // one vector for the whole clip

    let tokenizer = try BEATsModel(contentsOf: URL(fileURLWithPath: "tokenizer.pt"))
    let tokens = try tokenizer.tokens(of: clip)

    let recording = try AudioClip(contentsOf: URL(fileURLWithPath: "recording.wav"))
    let result = try model.classify(recording, windows: Windowing(length: 10, hop: 5), top: 3)
    for window in result.windows {
        print(window.start, window.end, window.value.map(\.name))
    }
    print(result.labels.map(\.name))             // one label set for the whole recording

    let shared = try BEATsModel(contentsOf: URL(fileURLWithPath: "beats-as2m.beatsw"),
                                configuration: BEATsModel.Configuration(threads: 1))
    _ = (probabilities, firstToken, embedding, tokens, shared)
}

func tag(_ files: [URL], with model: BEATsModel) async throws -> [[LabelScore]] {
    try await withThrowingTaskGroup(of: (Int, [LabelScore]).self) { group in
        var results = [[LabelScore]](repeating: [], count: files.count)
        for (index, file) in files.enumerated() {
            if index >= 4, let (done, labels) = try await group.next() { results[done] = labels }
            group.addTask { (index, try await model.classify(contentsOf: file, top: 5)) }
        }
        for try await (done, labels) in group { results[done] = labels }
        return results
    }
}

print("The code of Sources/BEATs/BEATs.docc/GettingStarted.md; read it there.")
