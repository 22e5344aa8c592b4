/// The one place the runtime calls `cblas_sgemm`: row-major C = alpha · op(A) · op(B) + beta · C.
///
/// OpenBLAS runs single-threaded (``OpenBLAS`` sets that once, when it is loaded): the runtime
/// splits work across its own threads, so calls from many forward passes at once never share or
/// reconfigure OpenBLAS's thread pool.
enum Matrix {
    /// `transposeB` reads B as [n, k] (a torch Linear weight [out, in] used in place).
    @inline(__always)
    static func multiply(rows m: Int, columns n: Int, depth k: Int,
                         _ a: UnsafePointer<Float>, leading lda: Int,
                         _ b: UnsafePointer<Float>, leading ldb: Int, transposeB: Bool,
                         into c: UnsafeMutablePointer<Float>, leading ldc: Int,
                         alpha: Float = 1, beta: Float = 0) {
        OpenBLAS.loaded.sgemm(OpenBLAS.rowMajor, OpenBLAS.noTranspose, transposeB ? OpenBLAS.transpose : OpenBLAS.noTranspose,
                              Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// ``multiply(rows:columns:depth:_:leading:_:leading:transposeB:into:leading:alpha:beta:)``
    /// split into bands of output columns, one single-threaded sgemm per band on `loop`'s threads.
    /// Each band packs its own slice of B and all of A; splitting the columns (the weight's rows)
    /// rather than the tokens keeps each thread's weight slice private to its cache.
    static func multiply(rows m: Int, columns n: Int, depth k: Int,
                         _ a: UnsafePointer<Float>, leading lda: Int,
                         _ b: UnsafePointer<Float>, leading ldb: Int, transposeB: Bool,
                         into c: UnsafeMutablePointer<Float>, leading ldc: Int, splitting loop: ParallelLoop) {
        // Below ~2 MFLOP a second thread costs more than it saves.
        let bands = m * n * k < 1 << 21 ? 1 : min(loop.threads, max(1, n / 32))
        guard bands > 1 else {
            multiply(rows: m, columns: n, depth: k, a, leading: lda, b, leading: ldb, transposeB: transposeB, into: c, leading: ldc)
            return
        }
        let operands = UncheckedSendable((a, b, c))
        loop.forEachLane(n / 8, lanes: bands) { _, eighths in
            let (a, b, c) = operands.value
            let first = eighths.lowerBound * 8
            let last = eighths.upperBound == n / 8 ? n : eighths.upperBound * 8
            multiply(rows: m, columns: last - first, depth: k, a, leading: lda,
                     transposeB ? b + first * ldb : b + first, leading: ldb, transposeB: transposeB,
                     into: c + first, leading: ldc)
        }
    }
}

/// The OpenBLAS the runtime runs on (for `beats bench` and diagnostics). Asking loads it.
public enum BLASBackend {
    /// The kernel set OpenBLAS picked for this CPU (`openblas_get_corename`, e.g. "Zen"; honours
    /// `OPENBLAS_CORETYPE`).
    public static var coreName: String { text(try? OpenBLAS.shared.get().coreName?()) }
    /// OpenBLAS's worker count: 1 once the runtime has loaded it (see ``Matrix``).
    public static var threadCount: Int { Int((try? OpenBLAS.shared.get().threadCount?()) ?? 1) }
    /// OpenBLAS's build description (`openblas_get_config`): version, build options, target core.
    public static var configuration: String { text(try? OpenBLAS.shared.get().configuration?()) }
    /// Where the library was loaded from, or why it was not.
    public static var library: String {
        switch OpenBLAS.shared {
        case .success(let library): return library.path
        case .failure(let error): return error.description
        }
    }

    private static func text(_ pointer: UnsafeMutablePointer<CChar>??) -> String {
        guard let pointer, let pointer else { return "unknown" }
        return String(cString: pointer)
    }
}
