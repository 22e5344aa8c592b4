import Dispatch

/// The one place the runtime calls `cblas_sgemm`: row-major C = alpha · op(A) · op(B) + beta · C.
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
}

/// The OpenBLAS the runtime runs on (for `beats bench` and diagnostics). Asking loads it.
public enum BLASBackend {
    /// The kernel set OpenBLAS picked for this CPU (`openblas_get_corename`, e.g. "Zen").
    public static var coreName: String { text(try? OpenBLAS.shared.get().coreName?()) }
    /// OpenBLAS's worker count (process-wide: OpenBLAS keeps one pool); 1 if it cannot be asked.
    public static var threadCount: Int { Int((try? OpenBLAS.shared.get().threadCount?()) ?? 1) }
    /// OpenBLAS's build description (`openblas_get_config`).
    public static var configuration: String { text(try? OpenBLAS.shared.get().configuration?()) }
    /// Where the library was loaded from, or why it was not.
    public static var library: String {
        switch OpenBLAS.shared {
        case .success(let library): return library.path
        case .failure(let error): return error.description
        }
    }

    static func setThreadCount(_ count: Int) { (try? OpenBLAS.shared.get())?.setThreadCount?(Int32(max(1, count))) }

    private static func text(_ pointer: UnsafeMutablePointer<CChar>??) -> String {
        guard let pointer, let pointer else { return "unknown" }
        return String(cString: pointer)
    }
}

/// Splits independent work (rows, heads, groups) across a fixed number of threads. With one
/// thread the work runs inline, so single-threaded runs take no dispatch overhead.
struct ParallelLoop: Sendable {
    let threads: Int

    /// Calls `body(range)` for disjoint ranges covering `0..<count`, at most `threads` at once.
    func forEachChunk(_ count: Int, minimumChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        forEachLane(count, lanes: min(threads, max(1, count / max(1, minimumChunk)))) { _, range in body(range) }
    }

    /// Calls `body(lane, range)` for at most `lanes` disjoint ranges covering `0..<count`, all at
    /// once; `lane` (0 ..< lanes) picks the caller's per-lane scratch.
    func forEachLane(_ count: Int, lanes: Int, _ body: (Int, Range<Int>) -> Void) {
        guard count > 0 else { return }
        let chunks = min(lanes, count)
        if chunks <= 1 {
            body(0, 0..<count)
            return
        }
        withoutActuallyEscaping(body) { body in
            let work = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                let start = count * chunk / chunks
                let end = count * (chunk + 1) / chunks
                work.value(chunk, start..<end)
            }
        }
    }
}

/// Carries a value the compiler cannot prove Sendable (raw pointers into the arena, closures
/// over them) into a parallel loop whose iterations touch disjoint memory.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// A torch `nn.Linear`: weight [out, in] row-major, optional bias [out]. The weight is float32
/// used in place (one sgemm), or int8 when the file stores it quantized (the int8 GEMM kernels).
struct Linear {
    /// The float32 weight; nil when the weight runs on the int8 kernels.
    let weight: FloatTensor?
    let quantizedWeight: Int8Weight?
    let bias: FloatTensor?
    let inputs: Int
    let outputs: Int

    init(_ loader: WeightLoader, _ prefix: String, inputs: Int, outputs: Int, bias hasBias: Bool = true) throws {
        self.inputs = inputs
        self.outputs = outputs
        if let matrix = try loader.store.quantizedMatrix(named: "\(prefix).weight") {
            guard matrix.rows == outputs, matrix.columns == inputs else {
                throw ModelError.shapeMismatch(tensor: "\(prefix).weight", expected: [outputs, inputs], actual: [matrix.rows, matrix.columns])
            }
            quantizedWeight = try Int8Weight(matrix, workspace: loader.int8Workspace)
            weight = nil
        } else {
            weight = try loader.load("\(prefix).weight", shape: [outputs, inputs])
            quantizedWeight = nil
        }
        bias = hasBias ? try loader.load("\(prefix).bias", shape: [outputs]) : nil
    }

    /// output[rows, out] = input[rows, in] · weightᵀ, without the bias (callers fuse it into the
    /// next element-wise pass).
    func multiply(_ input: UnsafePointer<Float>, leading lda: Int, rows: Int,
                  into output: UnsafeMutablePointer<Float>, leading ldc: Int) {
        if let quantizedWeight {
            quantizedWeight.multiply(input, leading: lda, rows: rows, into: output, leading: ldc)
        } else if let weight {
            Matrix.multiply(rows: rows, columns: outputs, depth: inputs, input, leading: lda,
                            weight.pointer, leading: inputs, transposeB: true, into: output, leading: ldc)
        }
    }
}

/// A torch `nn.LayerNorm` (eps 1e-5, elementwise affine).
struct LayerNormWeights {
    let gamma: FloatTensor
    let beta: FloatTensor
    static let epsilon: Float = 1e-5

    init(_ loader: WeightLoader, _ prefix: String, width: Int) throws {
        gamma = try loader.load("\(prefix).weight", shape: [width])
        beta = try loader.load("\(prefix).bias", shape: [width])
    }
}
