#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a command's output file so that it never destroys what the path names, and never
/// leaves half a file behind. The one home of these rules for every output the toolkit writes
/// (`.npy`, JSON, token lists):
///
/// - `-` is standard output;
/// - a FIFO, character device or terminal (`/dev/stdout` among them) is opened and written
///   through, never replaced;
/// - a symbolic link to a regular file: its target is replaced, the link stays (as `cp` and
///   editors do);
/// - a regular file or a new name: the bytes go to a temporary file in the same directory,
///   which is renamed over the path only once complete (atomic for other processes);
/// - a directory, or a path whose directory does not exist: ``BEATsError/cannotWrite(path:reason:)``,
///   which ``checkWritable(_:)`` raises before any work starts.
public enum OutputFile {
    /// Where the bytes for `path` will go.
    enum Destination: Equatable {
        case standardOutput
        /// Opened and written through (FIFO, character device).
        case stream(String)
        /// Replaced atomically through a temporary file beside it.
        case file(String)
    }

    /// Throws unless `path` can take an output: call it before expensive work so a typo in `-o`
    /// fails at once.
    public static func checkWritable(_ path: String) throws(BEATsError) {
        _ = try destination(for: path)
    }

    /// Writes `bytes` to `path` by the rules above.
    public static func write(_ bytes: [UInt8], to path: String) throws(BEATsError) {
        switch try destination(for: path) {
        case .standardOutput:
            try writeAll(bytes, to: STDOUT_FILENO, path: path)
        case .stream(let target):
            let descriptor = open(target, O_WRONLY | O_CLOEXEC)
            guard descriptor >= 0 else { throw failure(path, errno) }
            defer { close(descriptor) }
            try writeAll(bytes, to: descriptor, path: path)
        case .file(let target):
            try replaceAtomically(target, with: bytes, reportedAs: path)
        }
    }

    static func destination(for path: String) throws(BEATsError) -> Destination {
        if path == "-" { return .standardOutput }
        guard !path.isEmpty else { throw .cannotWrite(path: "''", reason: "empty path") }
        var status = stat()
        if stat(path, &status) == 0 {
            switch status.st_mode & S_IFMT {
            case S_IFDIR: throw .cannotWrite(path: path, reason: "it is a directory")
            case S_IFIFO, S_IFCHR, S_IFSOCK: return .stream(path)
            case S_IFREG: return .file(try resolvedLink(path))
            default: throw .cannotWrite(path: path, reason: "not a regular file, FIFO or device")
            }
        }
        let error = errno
        guard error == ENOENT else { throw failure(path, error) }
        // A dangling symbolic link would be replaced by a file; refuse instead of guessing.
        var linkStatus = stat()
        if lstat(path, &linkStatus) == 0 { throw .cannotWrite(path: path, reason: "it is a symbolic link to a missing file") }
        let directory = directoryName(path)
        var directoryStatus = stat()
        guard stat(directory, &directoryStatus) == 0 else {
            throw .cannotWrite(path: path, reason: "directory \(directory) does not exist")
        }
        guard directoryStatus.st_mode & S_IFMT == S_IFDIR else {
            throw .cannotWrite(path: path, reason: "\(directory) is not a directory")
        }
        return .file(path)
    }

    /// The regular file a path names, following symbolic links (so the link survives).
    private static func resolvedLink(_ path: String) throws(BEATsError) -> String {
        var linkStatus = stat()
        guard lstat(path, &linkStatus) == 0, linkStatus.st_mode & S_IFMT == S_IFLNK else { return path }
        guard let resolved = realpath(path, nil) else { throw failure(path, errno) }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    private static func replaceAtomically(_ target: String, with bytes: [UInt8], reportedAs path: String) throws(BEATsError) {
        let temporary = directoryName(target) + "/." + baseName(target) + ".\(getpid()).partial"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw failure(path, errno) }
        var committed = false
        defer {
            if !committed { unlink(temporary) }
        }
        do {
            try writeAll(bytes, to: descriptor, path: path)
        } catch {
            close(descriptor)
            throw error
        }
        guard close(descriptor) == 0 else { throw failure(path, errno) }
        guard rename(temporary, target) == 0 else { throw failure(path, errno) }
        committed = true
    }

    private static func writeAll(_ bytes: [UInt8], to descriptor: Int32, path: String) throws(BEATsError) {
        var failed: Int32 = 0
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = systemWrite(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failed = errno
                    return
                }
                offset += written
            }
        }
        if failed != 0 { throw failure(path, failed) }
    }

    private static func failure(_ path: String, _ code: Int32) -> BEATsError {
        .cannotWrite(path: path, reason: String(cString: strerror(code)))
    }

    static func directoryName(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let directory = String(path[..<slash])
        return directory.isEmpty ? "/" : directory
    }

    private static func baseName(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }
}

/// `write(2)`, named apart from ``OutputFile/write(_:to:)`` so the call inside it is not taken for
/// a recursive one.
private func systemWrite(_ descriptor: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    write(descriptor, bytes, count)
}
