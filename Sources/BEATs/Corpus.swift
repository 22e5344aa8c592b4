import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Many audio files through one model: the inputs, their share for this process, and a run
/// that works on several at once and hands the results back in input order.
public enum Corpus {
    /// The inputs of a run, sorted by path and without repeats: files as given, the audio files
    /// (recognised by content) directly inside each directory, and the lines of `listFile`
    /// (one path per line; blank lines and lines starting with `#` skipped).
    public static func inputs(_ paths: [String], listFile: String? = nil) throws -> [String] {
        var collected: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
                let names = try FileManager.default.contentsOfDirectory(atPath: path)
                let directory = path.hasSuffix("/") ? String(path.dropLast()) : path
                collected += names.map { directory + "/" + $0 }.filter(looksLikeAudio)
            } else {
                collected.append(path)
            }
        }
        if let listFile {
            let text: String
            do { text = try String(contentsOfFile: listFile, encoding: .utf8) } catch {
                throw BEATsError.unreadableList(path: listFile, reason: (error as NSError).localizedFailureReason ?? "cannot read it")
            }
            collected += text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        }
        return Array(Set(collected)).sorted()
    }

    /// The inputs at positions ≡ `index` (mod `count`) of the sorted list: `count` processes with
    /// indices 0 … count − 1 split a corpus with no coordination and no overlap.
    public static func shard(_ inputs: [String], index: Int, count: Int) -> [String] {
        inputs.enumerated().filter { $0.offset % count == index }.map(\.element)
    }

    /// Runs `work` on every input with at most `concurrency` at once, and calls `deliver` on the
    /// calling thread for each input in input order as soon as its result and all before it are
    /// in. Workers run at most a few inputs ahead of delivery, so results do not pile up.
    public static func run<Input: Sendable, Value: Sendable>(_ inputs: [Input], concurrency: Int,
                                                             work: @escaping @Sendable (Input) throws -> Value,
                                                             deliver: (_ index: Int, _ input: Input, _ result: Result<Value, any Error>) -> Void) {
        let board = ResultBoard<Value>(count: inputs.count, window: max(1, concurrency) * 4)
        let workers = max(1, min(concurrency, inputs.count))
        for _ in 0..<workers {
            Thread.detachNewThread {
                while let index = board.nextIndex() {
                    board.post(Result { try work(inputs[index]) }, at: index)
                }
            }
        }
        for index in inputs.indices {
            deliver(index, inputs[index], board.take(index))
        }
    }

    static func looksLikeAudio(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: 16)) ?? Data()
        return head.withUnsafeBytes { AudioSignature.name(of: $0) != nil }
    }
}

/// Results of a corpus run by index: workers post, the delivering thread takes them in order.
private final class ResultBoard<Value: Sendable>: @unchecked Sendable {
    private let condition = NSCondition()
    private var results: [Int: Result<Value, any Error>] = [:]
    private var next = 0
    private var delivered = 0
    private let count: Int
    private let window: Int

    init(count: Int, window: Int) {
        self.count = count
        self.window = window
    }

    /// The next input to work on, waiting while workers are `window` inputs ahead of delivery;
    /// nil when every input is taken.
    func nextIndex() -> Int? {
        condition.lock()
        defer { condition.unlock() }
        while next < count && next >= delivered + window { condition.wait() }
        guard next < count else { return nil }
        next += 1
        return next - 1
    }

    func post(_ result: Result<Value, any Error>, at index: Int) {
        condition.lock()
        results[index] = result
        condition.broadcast()
        condition.unlock()
    }

    func take(_ index: Int) -> Result<Value, any Error> {
        condition.lock()
        defer { condition.unlock() }
        while results[index] == nil { condition.wait() }
        delivered = index + 1
        condition.broadcast()
        return results.removeValue(forKey: index)!
    }
}

/// A JSON Lines file written one whole line per `write(2)`, so an interrupted run leaves a valid
/// file; with `resume`, the files already recorded are known and a torn last line is cut off.
public final class JSONLinesLog {
    /// The `"file"` values of the lines already in the file (empty unless resuming).
    public let recordedFiles: Set<String>
    private let descriptor: Int32
    private let path: String

    /// Opens `path` for appending (resume) or anew (replacing an earlier file).
    public init(path: String, resume: Bool) throws {
        self.path = path
        try OutputFile.checkWritable(path)
        var recorded = Set<String>()
        if resume, let data = FileManager.default.contents(atPath: path) {
            var bytes = [UInt8](data)
            // A line without its newline was torn by an interruption: drop it.
            if let lastNewline = bytes.lastIndex(of: 0x0A) { bytes.removeSubrange((lastNewline + 1)...) } else { bytes.removeAll() }
            if bytes.count != data.count, truncate(path, off_t(bytes.count)) != 0 {
                throw BEATsError.cannotWrite(path: path, reason: String(cString: strerror(errno)))
            }
            for line in bytes.split(separator: 0x0A) {
                if let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                   let file = object["file"] as? String {
                    recorded.insert(file)
                }
            }
        }
        recordedFiles = recorded
        let flags = O_WRONLY | O_CREAT | O_CLOEXEC | (resume ? O_APPEND : O_TRUNC)
        descriptor = open(path, flags, 0o644)
        guard descriptor >= 0 else { throw BEATsError.cannotWrite(path: path, reason: String(cString: strerror(errno))) }
    }

    deinit { close(descriptor) }

    /// Appends `{"file": file, …fields of body}` as one line, encoded as `--json` prints one
    /// input (so a line carries the same fields and number forms).
    public func append(file: String, _ body: some Encodable) throws {
        var data = try Self.line(file: file, body)
        data.append(0x0A)
        let written = data.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        guard written == data.count else {
            throw BEATsError.cannotWrite(path: path, reason: written < 0 ? String(cString: strerror(errno)) : "short write")
        }
    }

    /// `{"file": file, …fields of body}` as one line of JSON (no newline), keys sorted.
    public static func line(file: String, _ body: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(FileRecord(file: file, body: body))
    }

    /// Appends `{"file": file, "error": message}`.
    public func append(file: String, error message: String) throws {
        try append(file: file, ["error": message])
    }
}

/// `{"file", …body's fields}`: the body's keyed fields with the file beside them.
private struct FileRecord<Body: Encodable>: Encodable {
    let file: String
    let body: Body

    enum Key: String, CodingKey { case file }

    func encode(to encoder: any Encoder) throws {
        try body.encode(to: encoder)
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(file, forKey: .file)
    }
}
