import BEATsCore
import BEATsKernels

/// A Linear weight stored as float16 or bfloat16 in the file and used there: the forward pass reads
/// the 16-bit values from the file's memory map and never makes a float32 copy of them.
///
/// `multiply` computes `output = input · Wᵀ` (no bias) with the product ``kernel`` names:
/// - ``HalfKernelVariant/avx2``: our GEMM whose weight packing converts (exact conversion, FMA
///   accumulation; results do not depend on the thread count);
/// - ``HalfKernelVariant/avx512bf16`` (bfloat16 weights on AVX512-BF16 CPUs): vdpbf16ps, activations
///   rounded to bfloat16;
/// - ``HalfKernelVariant/portable`` (CPUs without AVX2): chunks of W converted into the lane's scratch
///   and multiplied by OpenBLAS's sgemm.
/// Each of the pass's lanes computes a band of output columns with its own scratch block.
final class HalfWeight: @unchecked Sendable {
    let name: String
    /// The weight as the kernels read it: [rows = outputs, columns = inputs], row-major.
    let matrix: HalfMatrix
    /// The product this weight runs on (already adapted to its format, see
    /// ``HalfKernelVariant/variant(for:)``).
    let kernel: HalfKernelVariant
    /// True when `matrix` points into the weight file itself (false: an owned little-endian copy of
    /// a view that was strided, big-endian or misaligned, still 2 bytes per weight).
    let isInPlace: Bool
    /// Keeps the bytes behind `matrix` alive: the file's storage owner or our own buffer.
    private let owner: AnyObject

    var rows: Int { matrix.rows }
    var columns: Int { matrix.columns }
    var format: HalfFormat { matrix.format }

    /// Wraps `rows × columns` 16-bit values at `values` (row-major, `stride` between rows) that
    /// `owner` keeps alive.
    init(name: String, values: UnsafePointer<UInt16>, rows: Int, columns: Int, stride: Int? = nil, format: HalfFormat,
         owner: AnyObject, kernel: HalfKernelVariant = .preferred) {
        self.name = name
        matrix = HalfMatrix(values: values, rows: rows, columns: columns, stride: stride, format: format)
        self.kernel = kernel.variant(for: format)
        isInPlace = true
        self.owner = owner
    }

    /// The weight `view` (dtype float16 or bfloat16, shape [outputs, inputs]): in place when the view
    /// is contiguous, little-endian and 2-byte aligned (native files and torch zip records are),
    /// else copied once into an owned buffer in the same 16-bit form.
    init(_ view: TensorView, outputs: Int, inputs: Int, kernel: HalfKernelVariant = .preferred) throws(ModelError) {
        let format: HalfFormat
        switch view.dtype {
        case .float16: format = .float16
        case .bfloat16: format = .bfloat16
        default: throw .unsupportedDType(tensor: view.name, dtype: view.dtype)
        }
        guard view.shape == [outputs, inputs] else {
            throw .shapeMismatch(tensor: view.name, expected: [outputs, inputs], actual: view.shape)
        }
        name = view.name
        self.kernel = kernel.variant(for: format)
        let (rows, columns) = (outputs, inputs)
        if let bytes = view.contiguousBytes, let base = bytes.baseAddress,
           Int(bitPattern: base) % MemoryLayout<UInt16>.alignment == 0 {
            matrix = HalfMatrix(values: base.assumingMemoryBound(to: UInt16.self), rows: rows, columns: columns, format: format)
            owner = view.storage.owner
            isInPlace = true
        } else {
            let packed = view.packedLittleEndianBytes()
            let buffer = OwnedBytes(count: packed.count)
            buffer.buffer.copyBytes(from: packed)
            let values = UnsafePointer(buffer.buffer.baseAddress!.bindMemory(to: UInt16.self, capacity: rows * columns))
            matrix = HalfMatrix(values: values, rows: rows, columns: columns, format: format)
            owner = buffer
            isInPlace = false
        }
    }

    /// output[count, rows] = input[count, columns] · Wᵀ (no bias), split across `pass`'s threads:
    /// ``Linear``'s `multiply` contract. `scratch` needs a lane per thread of the pass
    /// (`HalfScratch.bytesPerLane` bytes each).
    func multiply(_ input: UnsafePointer<Float>, leading lda: Int, rows count: Int,
                  into output: UnsafeMutablePointer<Float>, leading ldc: Int, in pass: ForwardPass, scratch: HalfScratch) {
        multiply(input, leading: lda, rows: count, into: output, leading: ldc, loop: pass.loop, scratch: scratch)
    }

    /// The product on `loop`'s threads: bands of whole units of ``HalfKernelVariant/columnAlignment``
    /// output columns, one per lane, each with lane's block of `scratch` (at most `scratch.lanes`
    /// lanes run).
    func multiply(_ input: UnsafePointer<Float>, leading lda: Int, rows count: Int,
                  into output: UnsafeMutablePointer<Float>, leading ldc: Int, loop: ParallelLoop, scratch: HalfScratch) {
        guard count > 0, rows > 0 else { return }
        let unit = kernel.columnAlignment
        let units = (rows + unit - 1) / unit
        // Below ~2 MFLOP a second thread costs more than it saves (as for Matrix.multiply).
        let lanes = count * rows * columns < 1 << 21 ? 1 : min(loop.threads, scratch.lanes, units)
        let sgemm: SGEMMFunction? = kernel == .portable ? OpenBLAS.loaded.sgemm : nil
        let (matrix, kernel, name, total) = (self.matrix, self.kernel, self.name, rows)
        let format = matrix.format
        let work = UncheckedSendable((input, output))
        loop.forEachLane(units, lanes: lanes) { lane, range in
            let (input, output) = work.value
            let first = range.lowerBound * unit
            let last = min(total, range.upperBound * unit)
            do {
                try kernel.multiply(input, leading: lda, rows: count, matrix, into: output, leading: ldc,
                                    columns: first..<last, scratch: scratch.pointer(lane: lane), sgemm: sgemm)
            } catch {
                // Shapes, strides and scratch are fixed when the weight and the arena are built.
                preconditionFailure("\(format) weight '\(name)': product (\(kernel)) failed: \(error)")
            }
        }
    }
}
