#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// libsndfile, loaded with `dlopen` the first time a file that is not integer/float PCM WAV is
/// opened, rather than linked: the package builds, and WAV works, on a machine without it.
///
/// It decodes FLAC, Ogg Vorbis, Opus, MP3 (through mpg123), AIFF, W64, RF64, CAF, µ-law and
/// A-law WAV and the rest of its list to float as libsndfile normalises them. The library is
/// found as `BEATS_SNDFILE` (a path) if set, else by its usual names (`libsndfile.so.1` on Linux:
/// Debian's libsndfile1). Only the few calls below are used, declared here from `sndfile.h`
/// (libsndfile 1.x, stable ABI since 1.0): nothing is needed at build time.
struct SndFileLibrary: @unchecked Sendable {
    /// `SF_INFO` (sndfile.h): `sf_count_t frames` (int64) at offset 0, then five C ints —
    /// samplerate (8), channels (12), format (16), sections (20), seekable (24); 32 bytes with
    /// padding. Passed to C as raw bytes so the layout is the one written here, not Swift's.
    struct Info {
        static let size = 32
        var frames: Int64 = 0
        var sampleRate: Int32 = 0
        var channels: Int32 = 0
        var format: Int32 = 0

        init() {}

        init(_ raw: UnsafeRawBufferPointer) {
            frames = raw.loadUnaligned(fromByteOffset: 0, as: Int64.self)
            sampleRate = raw.loadUnaligned(fromByteOffset: 8, as: Int32.self)
            channels = raw.loadUnaligned(fromByteOffset: 12, as: Int32.self)
            format = raw.loadUnaligned(fromByteOffset: 16, as: Int32.self)
        }
    }

    typealias Open = @convention(c) (UnsafePointer<CChar>?, Int32, UnsafeMutableRawPointer?) -> OpaquePointer?
    typealias ReadFloatFrames = @convention(c) (OpaquePointer?, UnsafeMutablePointer<Float>?, Int64) -> Int64
    typealias Close = @convention(c) (OpaquePointer?) -> Int32
    typealias ErrorNumber = @convention(c) (OpaquePointer?) -> Int32
    typealias ErrorText = @convention(c) (OpaquePointer?) -> UnsafePointer<CChar>?
    typealias Version = @convention(c) () -> UnsafePointer<CChar>?

    /// `SFM_READ`.
    static let readMode: Int32 = 0x10

    let path: String
    /// `sf_open(path, mode, info)`.
    private let openFile: Open
    /// `sf_readf_float(file, frames × channels floats, frames)`: frames read, 0 at the end.
    let readFloatFrames: ReadFloatFrames
    /// `sf_close(file)`.
    let close: Close
    /// `sf_error(file)`: 0 when the last call on `file` succeeded.
    let errorNumber: ErrorNumber
    /// `sf_strerror(file)`, `sf_strerror(NULL)` for the last failed `sf_open`.
    let errorText: ErrorText
    /// `sf_version_string()`, e.g. "libsndfile-1.2.0".
    let versionString: Version?

    /// `sf_open(path, SFM_READ, &info)`: the handle and what the header says, or nil (then
    /// `errorText(nil)` says why).
    func open(path: String) -> (handle: OpaquePointer, info: Info)? {
        var raw = [UInt8](repeating: 0, count: Info.size)
        let handle = raw.withUnsafeMutableBytes { info in
            path.withCString { openFile($0, SndFileLibrary.readMode, info.baseAddress) }
        }
        guard let handle else { return nil }
        return (handle, raw.withUnsafeBytes { Info($0) })
    }

    /// libsndfile's version, e.g. "libsndfile-1.2.0".
    var version: String { versionString?().map { String(cString: $0) } ?? "libsndfile" }

    /// The loaded library, or why it could not be loaded (the `dlerror` of each candidate); tried
    /// once per process, the first time it is needed.
    static let shared: Result<SndFileLibrary, LoadFailure> = load()

    /// Why no candidate loaded.
    struct LoadFailure: Error {
        let reason: String
    }

    /// `BEATS_SNDFILE` if set, then the usual names.
    static var candidates: [String] {
        var candidates: [String] = []
        if let chosen = getenv("BEATS_SNDFILE") { candidates.append(String(cString: chosen)) }
        #if os(Linux)
        candidates += ["libsndfile.so.1", "libsndfile.so"]
        #else
        candidates += ["libsndfile.1.dylib", "libsndfile.dylib", "/opt/homebrew/opt/libsndfile/lib/libsndfile.dylib",
                       "/usr/local/opt/libsndfile/lib/libsndfile.dylib"]
        #endif
        return candidates
    }

    /// The first of `candidates` that loads and has every call used here.
    static func load(candidates: [String] = candidates) -> Result<SndFileLibrary, LoadFailure> {
        var failures: [String] = []
        for candidate in candidates {
            guard let handle = dlopen(candidate, RTLD_NOW | RTLD_LOCAL) else {
                failures.append(dlerror().map { String(cString: $0) } ?? candidate)
                continue
            }
            func symbol<T>(_ name: String, as type: T.Type) -> T? {
                dlsym(handle, name).map { unsafeBitCast($0, to: type) }
            }
            guard let open = symbol("sf_open", as: Open.self),
                  let read = symbol("sf_readf_float", as: ReadFloatFrames.self),
                  let close = symbol("sf_close", as: Close.self),
                  let errorNumber = symbol("sf_error", as: ErrorNumber.self),
                  let errorText = symbol("sf_strerror", as: ErrorText.self)
            else {
                failures.append("\(candidate): not libsndfile (sf_open, sf_readf_float, sf_close, sf_error or sf_strerror missing)")
                dlclose(handle)
                continue
            }
            // Never closed: handles opened from it may live as long as the process.
            return .success(SndFileLibrary(path: candidate, openFile: open, readFloatFrames: read, close: close,
                                           errorNumber: errorNumber, errorText: errorText,
                                           versionString: symbol("sf_version_string", as: Version.self)))
        }
        return .failure(LoadFailure(reason: failures.joined(separator: "; ")))
    }

    /// Names of libsndfile's major formats (`SF_FORMAT_TYPEMASK`) and the subtypes people ask
    /// about (`SF_FORMAT_SUBMASK`), for messages.
    static func formatName(_ format: Int32) -> String {
        let major: String
        switch format & 0x0FFF_0000 {
        case 0x01_0000: major = "WAV"
        case 0x02_0000: major = "AIFF"
        case 0x03_0000: major = "AU"
        case 0x0B_0000: major = "W64"
        case 0x13_0000: major = "WAVEX"
        case 0x17_0000: major = "FLAC"
        case 0x18_0000: major = "CAF"
        case 0x20_0000: major = "Ogg"
        case 0x22_0000: major = "RF64"
        case 0x23_0000: major = "MPEG"
        default: major = "libsndfile format 0x" + String(format & 0x0FFF_0000, radix: 16)
        }
        let subtype: String?
        switch format & 0xFFFF {
        case 0x0010: subtype = "µ-law"
        case 0x0011: subtype = "A-law"
        case 0x0060: subtype = "Vorbis"
        case 0x0064: subtype = "Opus"
        case 0x0080: subtype = "Layer I"
        case 0x0081: subtype = "Layer II"
        case 0x0082: subtype = "MP3"
        default: subtype = nil
        }
        if major == "MPEG", subtype == "MP3" { return "MP3" }
        return subtype.map { "\(major) \($0)" } ?? major
    }
}
