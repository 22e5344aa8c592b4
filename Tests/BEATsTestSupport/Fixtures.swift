import BEATsCore
import Foundation

/// Locates the package's `Fixtures/` folder from this source file's path, so tests run from any
/// working directory. A missing fixture is an error (tests fail, never skip).
public enum Fixtures {
    public struct Missing: Error, CustomStringConvertible {
        public let path: String
        public var description: String { "fixture missing: \(path)" }
    }

    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // BEATsTestSupport
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // package root
        .appendingPathComponent("Fixtures")

    /// Absolute path of `relative` inside `Fixtures/`; throws if the file does not exist.
    public static func path(_ relative: String) throws -> String {
        let path = root.appendingPathComponent(relative).path
        guard FileManager.default.fileExists(atPath: path) else { throw Missing(path: path) }
        return path
    }

    public static func bytes(_ relative: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: try path(relative))))
    }

    /// A reference .npy from `Fixtures/ref/`, e.g. `reference("tiny/speech")`.
    public static func reference(_ name: String) throws -> TensorView {
        try NumpyFile.read(path: try path("ref/\(name).npy"))
    }

    /// The clips every parity test runs over.
    public static let clips = ["speech", "chirp10s", "noise", "short"]

    /// A fresh temporary directory, removed by the caller.
    public static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("beats-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
