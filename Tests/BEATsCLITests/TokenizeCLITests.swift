import BEATsCore
import BEATsTestSupport
import Foundation
import Testing

@Suite("beats tokenize (command line)")
struct TokenizeCLITests {
    @Test("tiny_tok.pt + speech.wav: one line of space-separated tokens, the reference's")
    func printed() throws {
        let run = try CLI.beats(["tokenize", try CLI.model("tiny_tok"), try CLI.audio("speech")])
        #expect(run.status == 0)
        #expect(run.standardError.isEmpty)
        #expect(run.outputLines.count == 1)
        let tokens = (run.outputLines.first ?? "").split(separator: " ", omittingEmptySubsequences: false).map { Int64($0) }
        #expect(tokens.allSatisfy { $0 != nil }, "\(run.standardOutput)")
        let reference = try Fixtures.reference("tiny_tok/speech").integers()
        #expect(tokens.count == reference.count)
        #expect(agreement(tokens.compactMap { $0 }, reference) >= 0.99)
    }

    @Test("-o: an int64 [T] .npy equal to the reference, one summary line")
    func npy() throws {
        try withScratchDirectory { directory in
            let output = directory.appendingPathComponent("tokens.npy").path
            let run = try CLI.beats(["tokenize", try CLI.model("tiny_tok"), try CLI.audio("speech"), "-o", output])
            #expect(run.status == 0)
            #expect(run.standardError.isEmpty)
            #expect(run.outputLines == ["\(output): 176 tokens"])
            expectEntries(of: directory, ["tokens.npy"])
            let tokens = try NumpyFile.read(path: output)
            #expect(tokens.dtype == .int64)
            #expect(tokens.shape == [176])
            #expect(agreement(try tokens.integers(), try Fixtures.reference("tiny_tok/speech").integers()) >= 0.99)
        }
    }

    @Test("a model that is no tokenizer: one error line saying tokenize needs a tokenizer")
    func notATokenizer() throws {
        let model = try CLI.model("tiny_ft")
        let run = try CLI.beats(["tokenize", model, try CLI.audio("speech")])
        expectOneErrorLine(run, mentioning: [model, "tokenizer"])
    }

    @Test("an output it cannot write: one error line naming it, nothing left behind", arguments: UnwritableOutput.allCases)
    func unwritableOutput(output: UnwritableOutput) throws {
        let model = try CLI.model("tiny_tok"), audio = try CLI.audio("speech")
        try output.expectRefused { ["tokenize", model, audio, "-o", $0] }
    }
}
