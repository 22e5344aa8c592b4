import BEATs
import Foundation

// tagger MODEL AUDIO… [--concurrency N]: each file's top 5 AudioSet labels as one JSON line, in
// input order, from one shared model with at most N files in flight (default 4).
func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("tagger: \(message)\n".utf8))
    exit(2)
}

var arguments = Array(CommandLine.arguments.dropFirst())
var concurrency = 4
if let flag = arguments.firstIndex(of: "--concurrency") {
    guard flag + 1 < arguments.count, let value = Int(arguments[flag + 1]), value > 0 else { fail("--concurrency needs a positive number") }
    concurrency = value
    arguments.removeSubrange(flag...flag + 1)
}
guard arguments.count >= 2 else { fail("usage: tagger MODEL AUDIO… [--concurrency N]") }
let model: BEATsModel
do { model = try BEATsModel(contentsOf: URL(fileURLWithPath: arguments[0])) } catch { fail("\(error)") }
let files = Array(arguments.dropFirst())

let encoder = JSONEncoder()
encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]  // as `beats classify --json`
func json(_ value: some Encodable) -> String { String(decoding: try! encoder.encode(value), as: UTF8.self) }

var results: [Int: Result<[LabelScore], any Error>] = [:], printed = 0, failed = false
@MainActor func finish(_ index: Int, _ result: Result<[LabelScore], any Error>) {
    results[index] = result
    while let next = results.removeValue(forKey: printed) {  // print in input order
        switch next {
        case .success(let labels): print(#"{"file": \#(json(files[printed])), "labels": \#(json(labels))}"#)
        case .failure(let error): print(#"{"file": \#(json(files[printed])), "error": \#(json("\(error)"))}"#); failed = true
        }
        printed += 1
    }
}

await withTaskGroup(of: (Int, Result<[LabelScore], any Error>).self) { group in
    for (index, file) in files.enumerated() {
        if index >= concurrency, let (done, result) = await group.next() { finish(done, result) }
        group.addTask {
            do { return (index, .success(try await model.classify(contentsOf: URL(fileURLWithPath: file), top: 5))) }
            catch { return (index, .failure(error)) }
        }
    }
    for await (done, result) in group { finish(done, result) }
}
exit(failed ? 1 : 0)
