import BEATs
import BEATsTestSupport
import Foundation
import Testing

@Suite("OutputFile: outputs that never destroy")
struct OutputFileTests {
    @Test("a regular file is replaced whole and no temporary file stays")
    func regularFile() throws {
        let directory = try Fixtures.temporaryDirectory()
        let path = directory.appendingPathComponent("out.npy").path
        try OutputFile.write([1, 2, 3], to: path)
        try OutputFile.write([4, 5], to: path)
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: path))) == [4, 5])
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["out.npy"])
    }

    @Test("a symbolic link keeps being a link; its target gets the bytes")
    func symbolicLink() throws {
        let directory = try Fixtures.temporaryDirectory()
        let target = directory.appendingPathComponent("target.npy").path
        let link = directory.appendingPathComponent("link.npy").path
        try Data([9]).write(to: URL(fileURLWithPath: target))
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        try OutputFile.write([7, 7], to: link)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == target)
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: target))) == [7, 7])
    }

    @Test("a FIFO is written through, not replaced")
    func fifo() throws {
        let directory = try Fixtures.temporaryDirectory()
        let path = directory.appendingPathComponent("pipe").path
        #expect(mkfifo(path, 0o600) == 0)
        // A reader that reads until the writer closes (Foundation's Data(contentsOf:) stops at the
        // FIFO's size, 0, and would leave the writer without a reader).
        let reader = Thread.detachNewThreadWithResult { () -> [UInt8] in
            let descriptor = open(path, O_RDONLY)
            defer { close(descriptor) }
            var bytes: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 64)
            while true {
                let count = read(descriptor, &buffer, buffer.count)
                if count <= 0 { break }
                bytes += buffer[0..<count]
            }
            return bytes
        }
        try OutputFile.write([1, 2, 3, 4], to: path)
        #expect(reader.wait() == [1, 2, 3, 4])
        var status = stat()
        #expect(stat(path, &status) == 0 && status.st_mode & S_IFMT == S_IFIFO)
    }

    @Test("a directory or a missing directory is refused before anything is written")
    func refusals() throws {
        let directory = try Fixtures.temporaryDirectory()
        #expect(throws: BEATsError.cannotWrite(path: directory.path, reason: "it is a directory")) {
            try OutputFile.checkWritable(directory.path)
        }
        let missing = directory.appendingPathComponent("no/such/x.npy").path
        #expect(throws: BEATsError.cannotWrite(path: missing, reason: "directory \(directory.path)/no/such does not exist")) {
            try OutputFile.write([1], to: missing)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }
}

extension Thread {
    /// Runs `body` on a new thread; `wait()` returns its result.
    static func detachNewThreadWithResult<T: Sendable>(_ body: @escaping @Sendable () -> T) -> PendingResult<T> {
        let pending = PendingResult<T>()
        Thread.detachNewThread { pending.set(body()) }
        return pending
    }
}

final class PendingResult<T: Sendable>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var value: T?
    func set(_ value: T) { self.value = value; done.signal() }
    func wait() -> T { done.wait(); return value! }
}
