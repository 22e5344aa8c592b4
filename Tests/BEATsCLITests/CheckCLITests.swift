import BEATsTestSupport
import Foundation
import Testing

@Suite("beats check (command line)")
struct CheckCLITests {
    /// A float32 conversion of tiny.pt in `directory`, and a copy of it with one byte changed at
    /// `offset` (negative: from the end).
    static func corruptedCopy(in directory: URL, offset: Int) throws -> (good: String, bad: String) {
        let good = try CLI.convert("tiny", in: directory)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        let index = offset < 0 ? bytes.count + offset : offset
        bytes[index] ^= 0x01
        let bad = directory.appendingPathComponent("corrupted.beatsw")
        try bytes.write(to: bad)
        return (good, bad.path)
    }

    /// Success: exit 0, nothing on stderr, one stdout line `prefix` + a duration + " " + `unit`.
    static func expectOkLine(_ run: CLIRun, _ prefix: String, _ unit: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(run.status == 0, "\(run.standardError)", sourceLocation: sourceLocation)
        #expect(run.standardError.isEmpty, sourceLocation: sourceLocation)
        #expect(run.outputLines.count == 1, "\(run.standardOutput)", sourceLocation: sourceLocation)
        let line = run.outputLines.first ?? ""
        #expect(line.hasPrefix(prefix), "\(line)", sourceLocation: sourceLocation)
        let duration = line.dropFirst(prefix.count).dropLast(unit.count + 1)
        #expect(line.hasSuffix(" " + unit) && Double(duration) != nil, "\(line)", sourceLocation: sourceLocation)
    }

    @Test("a converted file: one ok line with tensors, size and every checksum")
    func convertedFile() throws {
        try withScratchDirectory { directory in
            let file = try CLI.convert("tiny", in: directory)
            Self.expectOkLine(try CLI.beats(["check", file]),
                              "ok: \(file): 49 tensors, 0.40 MB of tensor data, header and every checksum match (", "s)")
        }
    }

    @Test("tiny.pt: one ok line, every stored CRC-32 matches")
    func checkpoint() throws {
        let file = try CLI.model("tiny")
        Self.expectOkLine(try CLI.beats(["check", file]), "ok: \(file): 50 tensors, every stored CRC-32 matches (pytorch-zip) (", "s)")
    }

    @Test("one flipped bit in the last tensor's data: exit 1, one line naming file and tensor")
    func flippedDataByte() throws {
        try withScratchDirectory { directory in
            // The file ends with the last region of the table, layer_norm.bias's data (NATIVE-FORMAT.md §1, §7).
            let (_, bad) = try Self.corruptedCopy(in: directory, offset: -1)
            let run = try CLI.beats(["check", bad])
            expectOneErrorLine(run, mentioning: [bad, "'layer_norm.bias'", "checksum"])
        }
    }

    @Test("--header-only: one ok line, and tensor data is not read (a corrupted tensor still passes)")
    func headerOnly() throws {
        try withScratchDirectory { directory in
            let (good, bad) = try Self.corruptedCopy(in: directory, offset: -1)
            for file in [good, bad] {
                Self.expectOkLine(try CLI.beats(["check", "--header-only", file]), "ok: \(file): 49 tensors, header and layout valid (open ", "ms)")
            }
        }
    }

    @Test("a changed header byte fails even with --header-only: one error line about the header",
          arguments: [[], ["--header-only"]])
    func flippedHeaderByte(options: [String]) throws {
        try withScratchDirectory { directory in
            // Offset 40: inside the header block, which starts at 32 (NATIVE-FORMAT.md §2).
            let (_, bad) = try Self.corruptedCopy(in: directory, offset: 40)
            let run = try CLI.beats(["check"] + options + [bad])
            expectOneErrorLine(run, mentioning: ["header"])
        }
    }
}
