import BEATsCore
import CBEATsKernels
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// A Linear weight stored as int8 in the file (symmetric, one float32 scale per output row),
/// packed once at load into the layout the int8 GEMM kernels read.
///
/// The forward pass quantizes each activation row to int8 with its own scale (dynamic
/// quantization), multiplies with int32 accumulation and rescales to float32:
/// `out[m][n] = a_scale[m] · w_scale[n] · Σ_k a[m][k] · w[n][k]`. The bias is added by the caller's
/// element-wise pass, as on the float path.
final class Int8Weight: @unchecked Sendable {
    let name: String
    let rows: Int
    let columns: Int
    /// Per-output-row scales, in place in the mapped file.
    let scales: UnsafePointer<Float>
    private let packed: OwnedBytes
    private let workspace: Int8Workspace
    /// Keeps `scales` alive (the mapped file).
    private let owner: AnyObject

    init(_ matrix: QuantizedMatrix, workspace: Int8Workspace) throws {
        name = matrix.name
        rows = matrix.rows
        columns = matrix.columns
        guard let scaleBase = matrix.scales.baseAddress, matrix.scales.count == rows,
              let valueBase = matrix.values.baseAddress, matrix.values.count == rows * columns else {
            throw ModelError.invalidInt8Weight(tensor: name, reason: "values or scales do not match shape [\(rows), \(columns)]")
        }
        let size = beats_packed_weights_size(rows, columns)
        guard size > 0 else {
            throw ModelError.invalidInt8Weight(tensor: name, reason: "shape [\(rows), \(columns)] is too large for the int8 kernels")
        }
        packed = OwnedBytes(count: size)
        let status = beats_pack_weights(valueBase, columns, rows, columns, packed.buffer.baseAddress, size)
        guard status == BEATS_OK.rawValue else {
            throw ModelError.invalidInt8Weight(tensor: name, reason: String(cString: beats_status_description(status)))
        }
        scales = scaleBase
        owner = matrix.owner
        self.workspace = workspace
        Int8Weight.releasePages(of: UnsafeRawBufferPointer(matrix.values))
    }

    /// The kernels read only the packed copy, so the file's int8 pages are handed back to the
    /// kernel (`madvise(MADV_DONTNEED)` on the whole pages inside the values: a read-only private
    /// file map re-reads them if touched again). Without this both copies stay resident and the
    /// process holds the int8 weights twice (~86 MB more for the full model).
    private static func releasePages(of region: UnsafeRawBufferPointer) {
        guard let base = region.baseAddress else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (Int(bitPattern: base) + page - 1) / page * page
        let end = (Int(bitPattern: base) + region.count) / page * page
        guard end > start, let pointer = UnsafeMutableRawPointer(bitPattern: start) else { return }
        _ = madvise(pointer, end - start, MADV_DONTNEED)
    }

    /// Activation levels: ±63 (7 bits) where the kernels are AVX2 — an exact 7-bit × 8-bit product
    /// takes three instructions per 32 multiply-adds instead of four, 15–60 % faster per GEMM, as
    /// PyTorch's x86 int8 does — and the full ±127 where VNNI makes both the same speed. Measured on
    /// the fixtures: features cosine vs the official float32 0.99991 (7-bit) and 0.99997 (8-bit).
    static let activationLevels: Int32 = beats_kernel_selected() == BEATS_KERNEL_AVX512VNNI
        ? Int32(BEATS_ACTIVATION_LEVELS_INT8) : Int32(BEATS_ACTIVATION_LEVELS_7BIT)

    /// output[rows, self.rows] = input[rows, columns] · Wᵀ (no bias), split across the model's
    /// thread count: activation rows are quantized in parallel, then each thread computes a band
    /// of output columns (whole packed panels) for every row.
    func multiply(_ input: UnsafePointer<Float>, leading lda: Int, rows count: Int,
                  into output: UnsafeMutablePointer<Float>, leading ldc: Int) {
        guard count > 0 else { return }
        let (quantized, activationScales) = workspace.buffers(rows: count, columns: columns)
        let threads = max(1, min(workspace.threads, count * rows / 4096 + 1))
        let K = columns, N = rows
        let work = UncheckedSendable((input, output, quantized, activationScales))
        DispatchQueue.concurrentPerform(iterations: min(threads, count)) { part in
            let (input, _, quantized, activationScales) = work.value
            let chunks = min(threads, count)
            let start = count * part / chunks, end = count * (part + 1) / chunks
            _ = beats_quantize_rows(input + start * lda, lda, end - start, K, Int8Weight.activationLevels,
                                    quantized + start * K, K, activationScales + start)
        }
        let panels = (N + Int(BEATS_PANEL_COLUMNS) - 1) / Int(BEATS_PANEL_COLUMNS)
        let bands = max(1, min(threads, panels))
        let packedBase = UncheckedSendable(UnsafeRawPointer(packed.buffer.baseAddress!))
        let weightScales = UncheckedSendable(scales)
        DispatchQueue.concurrentPerform(iterations: bands) { band in
            let (_, output, quantized, activationScales) = work.value
            let first = panels * band / bands * Int(BEATS_PANEL_COLUMNS)
            let last = min(N, panels * (band + 1) / bands * Int(BEATS_PANEL_COLUMNS))
            guard first < last else { return }
            _ = beats_gemm_s8(quantized, K, activationScales, packedBase.value, weightScales.value, nil,
                              output, ldc, 0, count, first, last, 0)
        }
    }
}

/// Scratch for the quantized activations of whichever int8 Linear runs now (one forward pass at a
/// time per model), grown to the largest [rows, columns] seen and then reused: no allocation per call.
final class Int8Workspace: @unchecked Sendable {
    /// Threads the int8 GEMMs split across: the model's count, set when it is built (OpenBLAS's
    /// own count is 1 in int8 models, see `BEATsModel.blasThreads`).
    var threads = 1
    private var activations = OwnedBytes(count: 0)
    private var scales = OwnedBytes(count: 0)

    func buffers(rows: Int, columns: Int) -> (UnsafeMutablePointer<Int8>, UnsafeMutablePointer<Float>) {
        if activations.buffer.count < rows * columns { activations = OwnedBytes(count: rows * columns) }
        if scales.buffer.count < rows * MemoryLayout<Float>.stride { scales = OwnedBytes(count: rows * MemoryLayout<Float>.stride) }
        return (activations.buffer.baseAddress!.assumingMemoryBound(to: Int8.self),
                scales.buffer.baseAddress!.assumingMemoryBound(to: Float.self))
    }
}
