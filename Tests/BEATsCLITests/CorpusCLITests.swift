import BEATsCore
import BEATsTestSupport
import Foundation
import Testing

@Suite("beats run/classify/tokenize over many files (command line)")
struct CorpusCLITests {
    static let clips = ["chirp10s", "noise", "short", "speech"]

    /// The objects of a JSON Lines file, in file order.
    static func records(_ path: String) throws -> [[String: Any]] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
    }

    @Test("a directory: every clip once, sorted, one model load; --jsonl records each with the --json fields")
    func directoryToJSONLines() throws {
        try withScratchDirectory { directory in
            let jsonl = directory.appendingPathComponent("labels.jsonl").path
            let run = try CLI.beats(["classify", try CLI.model("tiny_ft"), try Fixtures.path("audio"), "--jsonl", jsonl, "--top", "3"])
            #expect(run.status == 0, "\(run.standardError)")
            let records = try Self.records(jsonl)
            let expected = try Self.clips.map { try CLI.audio($0) }
            #expect(records.compactMap { $0["file"] as? String } == expected)
            for (record, clip) in zip(records, Self.clips) {
                let labels = try #require(record["labels"] as? [[String: Any]])
                #expect(labels.count == 3)
                let official = try Fixtures.reference("tiny_ft/\(clip)").floats()
                for label in labels {
                    let index = try #require(label["index"] as? Int)
                    #expect(abs(Float(try #require(label["probability"] as? Double)) - official[index]) <= 1e-5)
                }
            }
        }
    }

    @Test("a bad input is recorded with its error, the others still run, exit status 1 at the end")
    func failuresAreRecorded() throws {
        try withScratchDirectory { directory in
            let bad = directory.appendingPathComponent("notes.wav").path
            try Data("not audio".utf8).write(to: URL(fileURLWithPath: bad))
            let jsonl = directory.appendingPathComponent("out.jsonl").path
            let run = try CLI.beats(["classify", try CLI.model("tiny_ft"), try CLI.audio("speech"), bad, try CLI.audio("noise"),
                                     "--jsonl", jsonl])
            #expect(run.status == 1)
            #expect(run.errorLines == ["error: 1 of 3 inputs failed (see \(jsonl))"])
            let records = try Self.records(jsonl)
            #expect(records.count == 3)
            let failed = records.filter { $0["error"] != nil }
            #expect(failed.count == 1 && failed.first?["file"] as? String == bad)
            #expect((failed.first?["error"] as? String)?.contains(bad) == true)
            #expect(records.filter { $0["labels"] != nil }.count == 2)
        }
    }

    @Test("--shard i/n: the shards' union is the whole sorted list, with no overlap")
    func shardsPartitionTheList() throws {
        try withScratchDirectory { directory in
            var seen: [String] = []
            for index in 0..<3 {
                let jsonl = directory.appendingPathComponent("shard\(index).jsonl").path
                let run = try CLI.beats(["tokenize", try CLI.model("tiny_tok"), try Fixtures.path("audio"), "--shard", "\(index)/3",
                                         "--jsonl", jsonl])
                #expect(run.status == 0, "\(run.standardError)")
                let files = try Self.records(jsonl).compactMap { $0["file"] as? String }
                // Positions ≡ index (mod 3) of the sorted list.
                let sorted = try Self.clips.map { try CLI.audio($0) }
                #expect(files == sorted.enumerated().filter { $0.offset % 3 == index }.map(\.element))
                seen += files
            }
            #expect(seen.sorted() == (try Self.clips.map { try CLI.audio($0) }))
            let bad = try CLI.beats(["tokenize", try CLI.model("tiny_tok"), try CLI.audio("short"), "--shard", "3/3"])
            #expect(bad.status != 0)
        }
    }

    @Test("--resume skips what the file holds, drops a torn last line, and appends the rest")
    func resume() throws {
        try withScratchDirectory { directory in
            let list = directory.appendingPathComponent("inputs.txt").path
            try (Self.clips.map { try CLI.audio($0) }.joined(separator: "\n") + "\n").write(toFile: list, atomically: true, encoding: .utf8)
            let jsonl = directory.appendingPathComponent("tokens.jsonl").path
            // As if interrupted: two whole lines from an earlier run, then a torn one.
            let first = try CLI.beats(["tokenize", try CLI.model("tiny_tok"), "--list", list, "--shard", "0/2", "--jsonl", jsonl])
            #expect(first.status == 0)
            let handle = try #require(FileHandle(forWritingAtPath: jsonl))
            handle.seekToEndOfFile()
            handle.write(Data("{\"file\": \"torn".utf8))
            try handle.close()
            let resumed = try CLI.beats(["tokenize", try CLI.model("tiny_tok"), "--list", list, "--jsonl", jsonl, "--resume"])
            #expect(resumed.status == 0, "\(resumed.standardError)")
            let records = try Self.records(jsonl)
            let files = records.compactMap { $0["file"] as? String }
            #expect(files.sorted() == (try Self.clips.map { try CLI.audio($0) }))
            for (record, file) in zip(records, files) {
                let clip = ((file as NSString).lastPathComponent as NSString).deletingPathExtension
                let tokens = try #require(record["tokens"] as? [Int]).map(Int64.init)
                #expect(agreement(tokens, try Fixtures.reference("tiny_tok/\(clip)").integers()) >= 0.99)
            }
        }
    }

    @Test("run --output-dir writes NAME.npy per input; a name collision is refused before any work")
    func outputDirectory() throws {
        try withScratchDirectory { directory in
            let run = try CLI.beats(["run", try CLI.model("tiny"), try CLI.audio("speech"), try CLI.audio("noise"),
                                     "--output-dir", directory.path])
            #expect(run.status == 0, "\(run.standardError)")
            for clip in ["speech", "noise"] {
                let output = try NumpyFile.read(path: directory.appendingPathComponent("\(clip).npy").path)
                #expect(maxAbsDifference(try output.floats(), try Fixtures.reference("tiny/\(clip)").floats()) <= 1e-4)
            }
            let other = directory.appendingPathComponent("other")
            try FileManager.default.createDirectory(at: other, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: try CLI.audio("short"), toPath: other.appendingPathComponent("speech.wav").path)
            let out = directory.appendingPathComponent("out")
            try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
            let clash = try CLI.beats(["run", try CLI.model("tiny"), try CLI.audio("speech"), other.appendingPathComponent("speech.wav").path,
                                       "--output-dir", out.path])
            expectOneErrorLine(clash, mentioning: ["speech.npy"])
            #expect(try FileManager.default.contentsOfDirectory(atPath: out.path).isEmpty)
        }
    }

    @Test("run --layer, --frames, --pool mean and --window equal the official code's outputs",
          arguments: [
            (["tiny", "speech", "--layer", "1"], "tiny_speech_layer1"),
            (["tiny", "noise", "--layer", "2"], "tiny_noise_layer2"),
            (["tiny_ft", "speech", "--layer", "1"], "tiny_ft_speech_layer1"),
            (["tiny_ft", "noise", "--frames"], "tiny_ft_noise_frames"),
            (["tiny", "speech", "--pool", "mean"], "tiny_speech_pool_mean"),
            (["tiny", "noise", "--window", "1", "--hop", "0.75"], "tiny_noise_window1_hop0.75"),
            (["tiny_ft", "chirp10s", "--window", "4", "--hop", "3"], "tiny_ft_chirp10s_window4_hop3"),
            (["tiny_ft", "speech", "--frames", "--window", "2", "--hop", "1.5"], "tiny_ft_speech_frames_window2"),
            (["tiny", "speech", "--pool", "mean", "--window", "1", "--hop", "0.5"], "tiny_speech_pool_mean_window1"),
          ])
    func granularity(arguments: [String], reference: String) throws {
        try withScratchDirectory { directory in
            let output = directory.appendingPathComponent("out.npy").path
            let run = try CLI.beats(["run", try CLI.model(arguments[0]), try CLI.audio(arguments[1]), "-o", output] + arguments.dropFirst(2))
            #expect(run.status == 0, "\(run.standardError)")
            let actual = try NumpyFile.read(path: output)
            let expected = try Fixtures.reference("granularity/\(reference)")
            #expect(actual.shape == expected.shape)
            let tolerance: Float = arguments[0] == "tiny_ft" && !arguments.contains("--layer") ? 1e-5 : 1e-4
            #expect(maxAbsDifference(try actual.floats(), try expected.floats()) <= tolerance)
        }
    }

    @Test("tokenize --window joins the windows' tokens as the official slices give them")
    func tokenWindows() throws {
        let run = try CLI.beats(["tokenize", try CLI.model("tiny_tok"), try CLI.audio("chirp10s"), "--window", "4", "--hop", "3"])
        #expect(run.status == 0)
        let tokens = try #require(run.outputLines.first).split(separator: " ").compactMap { Int64($0) }
        #expect(agreement(tokens, try Fixtures.reference("granularity/tiny_tok_chirp10s_window4_hop3").integers()) >= 0.99)
    }

    @Test("--layer beyond the encoder, --frames on a pre-trained model: one error line each")
    func granularityRefusals() throws {
        try withScratchDirectory { directory in
            let output = directory.appendingPathComponent("x.npy").path
            expectOneErrorLine(try CLI.beats(["run", try CLI.model("tiny"), try CLI.audio("speech"), "-o", output, "--layer", "3"]),
                               mentioning: ["layer 3", "1 to 2"])
            expectOneErrorLine(try CLI.beats(["run", try CLI.model("tiny"), try CLI.audio("speech"), "-o", output, "--frames"]),
                               mentioning: ["fine-tuned"])
            expectEntries(of: directory, [])
        }
    }

    @Test("a file longer than the model takes is classified in 10 s windows, with a note saying so")
    func defaultWindowsForLongFiles() throws {
        try withScratchDirectory { directory in
            // 700 s at 1 kHz (the lowest rate the loader takes): 1.4 MB, 11.2 M samples at 16 kHz.
            let path = directory.appendingPathComponent("long.wav").path
            let rate = 1000, count = 700 * rate
            var samples = [Int16](repeating: 0, count: count)
            var state: UInt32 = 12345
            for index in samples.indices {
                state = state &* 1_103_515_245 &+ 12345
                samples[index] = Int16(truncatingIfNeeded: Int(state >> 16) % 2000 - 1000)
            }
            var wav = Data("RIFF".utf8)
            func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { wav.append(contentsOf: $0) } }
            append(UInt32(36 + 2 * count)); wav.append(contentsOf: Array("WAVEfmt ".utf8))
            append(UInt32(16)); append(UInt16(1)); append(UInt16(1)); append(UInt32(rate)); append(UInt32(2 * rate))
            append(UInt16(2)); append(UInt16(16)); wav.append(contentsOf: Array("data".utf8)); append(UInt32(2 * count))
            samples.withUnsafeBytes { wav.append(contentsOf: $0) }
            try wav.write(to: URL(fileURLWithPath: path))
            let run = try CLI.beats(["classify", try CLI.model("tiny_ft"), path, "--json", "--top", "2"])
            #expect(run.status == 0, "\(run.standardError)")
            #expect(run.errorLines.count == 1 && run.errorLines[0].hasPrefix("note: \(path) is 700 s") && run.errorLines[0].contains("10 s windows"))
            let object = try jsonObject(run)
            let windows = try #require(object["windows"] as? [[String: Any]])
            #expect(windows.count == 70)
            #expect(windows.last?["end"] as? Double == 700)
            #expect((object["labels"] as? [Any])?.count == 2)
        }
    }
}
