import BEATs
import BEATsTestSupport
import Foundation
import Testing

@Suite("BEATsModel: one model, many tasks")
struct ConcurrencyTests {
    static let clips = ["speech", "chirp10s", "noise", "short"]

    static func clip(_ name: String) throws -> AudioClip {
        try AudioClip(contentsOf: URL(fileURLWithPath: Fixtures.path("audio/\(name).wav")))
    }

    /// Eight calls over four different clips (each clip twice), as they would come from a server.
    static func workload() throws -> [AudioClip] {
        let clips = try Self.clips.map(clip)
        return (0..<8).map { clips[$0 % clips.count] }
    }

    @Test("8 concurrent calls give bit for bit what serial calls give", arguments: ["tiny", "tiny_ft", "tiny_tok"])
    func concurrentEqualsSerial(model name: String) async throws {
        let model = try BEATsModel(path: Fixtures.path("models/\(name).pt"), configuration: .init(threads: 2))
        let clips = try Self.workload()
        let serial = try clips.map { try model.output(for: $0) }
        let concurrent = try await withThrowingTaskGroup(of: (Int, ModelOutput).self) { group in
            for (index, clip) in clips.enumerated() {
                group.addTask { (index, try await model.output(for: clip)) }
            }
            var results = [ModelOutput?](repeating: nil, count: clips.count)
            for try await (index, output) in group { results[index] = output }
            return results
        }
        for index in clips.indices {
            #expect(concurrent[index] == serial[index], "call \(index)")
        }
    }

    @Test("two models opened from one file with different thread counts run side by side")
    func modelsDoNotDisturbEachOther() async throws {
        let path = try Fixtures.path("models/tiny_ft.pt")
        let one = try BEATsModel(path: path, configuration: .init(threads: 1))
        let two = try BEATsModel(path: path, configuration: .init(threads: 2))
        let clip = try Self.clip("speech")
        let alone = try await one.probabilities(for: clip)
        async let first = one.classify(clip, top: 527)
        async let second = two.classify(clip, top: 527)
        let (a, b) = try await (first, second)
        #expect(a.sorted { $0.index < $1.index }.map(\.probability) == alone)
        // Different thread counts split GEMMs differently: equal up to float32 rounding.
        let official = try Fixtures.reference("tiny_ft/speech").floats()
        for label in b { #expect(abs(label.probability - official[label.index]) <= 1e-5) }
    }
}
