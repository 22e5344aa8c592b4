import BEATs
import Foundation

// readme-snippet MODEL AUDIO: the README's "Use from Swift" example, kept compiling here.
let model = try BEATsModel(contentsOf: URL(fileURLWithPath: CommandLine.arguments[1]))
let clip = try AudioClip(contentsOf: URL(fileURLWithPath: CommandLine.arguments[2]))

switch model.kind {
case .finetuned:                                        // AudioSet classifier
    for label in try model.classify(clip, top: 5) {
        print(label.probability, label.mid, label.name)
    }
    // Long audio: 10 s windows every 5 s, a timeline plus one label set for the whole clip.
    let windowed = try model.classify(clip, windows: Windowing(length: 10, hop: 5), top: 3)
    print(windowed.windows.count, "windows;", windowed.labels.map(\.name))
case .pretrained:                                       // embeddings [tokens, 768]
    let features = try model.features(of: clip)
    print(features.tokenCount, features.meanPooled().count)
case .tokenizer:                                        // acoustic tokens, one per patch
    print(try model.tokens(of: clip))
}

// From async code the same calls run off the cooperative pool; one model serves many tasks.
func topLabel(of path: String) async throws -> String {
    try await model.classify(contentsOf: URL(fileURLWithPath: path), top: 1).first?.name ?? "?"
}
if model.kind == .finetuned { print(try await topLabel(of: CommandLine.arguments[2])) }
