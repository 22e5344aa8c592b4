#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// OpenBLAS, loaded with `dlopen` when the first model is built rather than linked.
///
/// Why not link it: OpenBLAS starts its worker threads in its library constructor, and each
/// worker spins on `sched_yield` for about 0.1 s before it sleeps. Linked, every `beats` command
/// pays that on its second core, including those that never multiply a matrix: `beats convert`
/// of the full model measured 0.40 s linked against 0.35 s without the workers, because the
/// spinning thread competes with the converter's SHA-256 thread. Loaded here, only commands
/// that run a model load it.
///
/// The library is found as `BEATS_OPENBLAS` (a path) if set, else by its usual names
/// (`libopenblas.so.0` on Linux: Debian's libopenblas0 with any of its threading variants).
/// Only the LP64 interface is used (32-bit `blasint`, plain symbol names); the 64-bit-integer
/// builds name their symbols with a `64_` suffix and are not picked up by mistake.
struct OpenBLAS: @unchecked Sendable {
    typealias SGEMM = @convention(c) (Int32, Int32, Int32, Int32, Int32, Int32, Float, UnsafePointer<Float>?, Int32,
                                      UnsafePointer<Float>?, Int32, Float, UnsafeMutablePointer<Float>?, Int32) -> Void
    typealias StringQuery = @convention(c) () -> UnsafeMutablePointer<CChar>?
    typealias IntQuery = @convention(c) () -> Int32
    typealias IntSetting = @convention(c) (Int32) -> Void

    /// CBLAS enumerations (cblas.h).
    static let rowMajor: Int32 = 101, noTranspose: Int32 = 111, transpose: Int32 = 112

    let path: String
    let sgemm: SGEMM
    let configuration: StringQuery?
    let coreName: StringQuery?
    let threadCount: IntQuery?

    /// The loaded library, or why it could not be loaded; tried once per process.
    static let shared: Result<OpenBLAS, ModelError> = load()

    /// The library for code that only runs after a model was built (building calls
    /// ``ensureLoaded()``, which reports a missing library as an error).
    static var loaded: OpenBLAS {
        switch shared {
        case .success(let library): return library
        case .failure(let error): fatalError("\(error)")
        }
    }

    /// Throws ``ModelError/blasUnavailable(_:)`` when OpenBLAS cannot be loaded.
    static func ensureLoaded() throws(ModelError) {
        if case .failure(let error) = shared { throw error }
    }

    /// `BEATS_OPENBLAS` if set, then the usual names.
    static var candidates: [String] {
        var candidates: [String] = []
        if let chosen = getenv("BEATS_OPENBLAS") { candidates.append(String(cString: chosen)) }
        #if os(Linux)
        candidates += ["libopenblas.so.0", "libopenblas.so"]
        #else
        candidates += ["libopenblas.0.dylib", "libopenblas.dylib", "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
                       "/usr/local/opt/openblas/lib/libopenblas.dylib"]
        #endif
        return candidates
    }

    /// The first of `candidates` that loads and has `cblas_sgemm`.
    static func load(candidates: [String] = candidates) -> Result<OpenBLAS, ModelError> {
        var failures: [String] = []
        for candidate in candidates {
            guard let handle = dlopen(candidate, RTLD_NOW | RTLD_LOCAL) else {
                failures.append(dlerror().map { String(cString: $0) } ?? candidate)
                continue
            }
            // Never closed: the worker threads OpenBLAS started live in it.
            guard let sgemm = dlsym(handle, "cblas_sgemm") else {
                failures.append("\(candidate): no cblas_sgemm")
                continue
            }
            func optional<T>(_ name: String, as type: T.Type) -> T? {
                dlsym(handle, name).map { unsafeBitCast($0, to: type) }
            }
            // Single-threaded, once: the runtime splits work across its own threads (see `Matrix`),
            // so concurrent passes never share OpenBLAS's pool and no pass changes a setting
            // another relies on.
            optional("openblas_set_num_threads", as: IntSetting.self)?(1)
            return .success(OpenBLAS(path: candidate, sgemm: unsafeBitCast(sgemm, to: SGEMM.self),
                                     configuration: optional("openblas_get_config", as: StringQuery.self),
                                     coreName: optional("openblas_get_corename", as: StringQuery.self),
                                     threadCount: optional("openblas_get_num_threads", as: IntQuery.self)))
        }
        return .failure(.blasUnavailable(failures.joined(separator: "; ")))
    }
}
