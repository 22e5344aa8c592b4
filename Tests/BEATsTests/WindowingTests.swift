import BEATs
import BEATsTestSupport
import Foundation
import Testing

@Suite("Long audio in windows")
struct WindowingTests {
    @Test("window ranges start every hop; the last ends at the end and needs one patch")
    func ranges() throws {
        let windowing = Windowing(length: 1, hop: 0.5)
        // 2.2 s: [0, 1), [0.5, 1.5), [1, 2), [1.5, 2.2) ends the audio.
        #expect(try windowing.ranges(sampleCount: 35_200, sampleRate: 16_000, minimumSamples: 2800)
                == [0..<16_000, 8000..<24_000, 16_000..<32_000, 24_000..<35_200])
        // 2.1 s with 1 s windows: the tail [2, 2.1) holds 1600 samples, less than a patch: dropped.
        #expect(try Windowing(length: 1).ranges(sampleCount: 33_600, sampleRate: 16_000, minimumSamples: 2800)
                == [0..<16_000, 16_000..<32_000])
        // Shorter than one window: the whole clip.
        #expect(try Windowing(length: 10).ranges(sampleCount: 5000, sampleRate: 16_000, minimumSamples: 2800) == [0..<5000])
        #expect(throws: BEATsError.self) { try Windowing(length: 0).ranges(sampleCount: 10, sampleRate: 16_000, minimumSamples: 1) }
        #expect(throws: BEATsError.self) { try Windowing(length: 1, hop: -1).ranges(sampleCount: 10, sampleRate: 16_000, minimumSamples: 1) }
    }

    @Test("each window's output is the output of that slice; the timeline's maxima rank the classes")
    func windowsEqualSlices() throws {
        let model = try BEATsModel(path: Fixtures.path("models/tiny_ft.pt"), configuration: .init(threads: 2))
        let clip = try AudioClip(contentsOf: URL(fileURLWithPath: Fixtures.path("audio/chirp10s.wav")))
        let windowing = Windowing(length: 4, hop: 3)
        let windows = try model.outputs(for: clip, windows: windowing)
        // chirp10s is 10 s: the window starting at 6 s ends at the end of the audio and is the last.
        #expect(windows.map(\.start) == [0, 3, 6])
        #expect(windows.map(\.end) == [4, 7, 10])
        var maxima = [Float](repeating: 0, count: 527)
        for window in windows {
            let slice = Array(clip.samples[Int(window.start * 16_000)..<Int(window.end * 16_000)])
            let alone = try model.output(for: AudioClip(sampleRate: 16_000, samples: slice))
            #expect(window.value == alone)
            if case .probabilities(let values) = alone { maxima = zip(maxima, values).map { max($0, $1) } }
        }
        let classified = try model.classify(clip, windows: windowing, top: 3)
        #expect(classified.windows.count == 3)
        #expect(classified.labels == LabelScore.ranked(maxima, labels: model.classLabels, top: 3))
    }

    @Test("streaming windows from the file equal windows cut from the whole clip",
          arguments: [Windowing(length: 4, hop: 3), Windowing(length: 1), Windowing(length: 2, hop: 3.5), Windowing(length: 30)])
    func streamingEqualsWhole(windowing: Windowing) throws {
        let model = try BEATsModel(path: Fixtures.path("models/tiny.pt"), configuration: .init(threads: 2))
        let url = URL(fileURLWithPath: try Fixtures.path("audio/chirp10s.wav"))
        let whole = try model.outputs(for: AudioClip(contentsOf: url), windows: windowing)
        let streamed = try model.outputs(contentsOf: url, windows: windowing)
        #expect(streamed == whole)
        #expect(!streamed.isEmpty)
    }
}
