import BEATsCore
import BEATsKernels
import Dispatch

/// A Linear weight stored as int8 in the file (symmetric, one float32 scale per output row),
/// packed once at load into the layout the int8 GEMM kernels read.
///
/// The forward pass quantizes each activation row to int8 with its own scale (dynamic
/// quantization), multiplies with int32 accumulation and rescales to float32:
/// `out[m][n] = a_scale[m] · w_scale[n] · Σ_k a[m][k] · w[n][k]`. The bias is added by the caller's
/// element-wise pass, as on the float path.
final class Int8Weight: Sendable {
    let name: String
    let packed: PackedInt8Matrix

    init(_ matrix: QuantizedMatrix) throws {
        name = matrix.name
        guard let scaleBase = matrix.scales.baseAddress, matrix.scales.count == matrix.rows,
              let valueBase = matrix.values.baseAddress, matrix.values.count == matrix.rows * matrix.columns else {
            throw ModelError.invalidInt8Weight(tensor: name,
                                               reason: "values or scales do not match shape [\(matrix.rows), \(matrix.columns)]")
        }
        do {
            packed = try PackedInt8Matrix(values: valueBase, stride: matrix.columns, rows: matrix.rows, columns: matrix.columns,
                                          scales: scaleBase, scalesOwner: matrix.owner)
        } catch {
            throw ModelError.invalidInt8Weight(tensor: name, reason: error.description)
        }
        // The kernels read only the packed copy: without this both copies stay resident and the
        // process holds the int8 weights twice (~86 MB more for the full model).
        MappedFile.releasePages(in: UnsafeRawBufferPointer(matrix.values), ownedBy: matrix.owner)
    }

    /// output[rows, self.rows] = input[rows, columns] · Wᵀ (no bias), split across `loop`'s
    /// threads: activation rows are quantized in parallel into `scratch`, then each thread
    /// computes a band of output columns (whole packed panels) for every row.
    func multiply(_ input: UnsafePointer<Float>, leading lda: Int, rows count: Int,
                  into output: UnsafeMutablePointer<Float>, leading ldc: Int,
                  kernel: Int8KernelVariant, scratch: Int8Scratch, loop: ParallelLoop) {
        guard count > 0 else { return }
        let (K, N) = (packed.columns, packed.rows)
        precondition(count <= scratch.rows && K <= scratch.columns, "int8 scratch smaller than [\(count), \(K)]")
        let threads = max(1, min(loop.threads, count * N / 4096 + 1))
        let work = UncheckedSendable((input, output, scratch.values, scratch.scales))
        let name = self.name
        loop.forEachLane(count, lanes: threads) { _, range in
            let (input, _, quantized, activationScales) = work.value
            do {
                try kernel.quantizeRows(input + range.lowerBound * lda, leading: lda, rows: range.count, columns: K,
                                        into: quantized + range.lowerBound * K, leading: K,
                                        scales: activationScales + range.lowerBound)
            } catch {
                preconditionFailure("int8 '\(name)': quantizing activations failed: \(error)")
            }
        }
        let panels = (N + PackedInt8Matrix.panelColumns - 1) / PackedInt8Matrix.panelColumns
        let packed = self.packed
        loop.forEachLane(panels, lanes: threads) { _, panelRange in
            let (_, output, quantized, activationScales) = work.value
            let first = panelRange.lowerBound * PackedInt8Matrix.panelColumns
            let last = min(N, panelRange.upperBound * PackedInt8Matrix.panelColumns)
            do {
                try kernel.multiply(quantized, leading: K, scales: activationScales, packed, into: output, leading: ldc,
                                    rows: 0..<count, columns: first..<last)
            } catch {
                // Shapes and strides were checked when the weight was packed and the arena sized.
                preconditionFailure("int8 '\(name)': GEMM failed: \(error)")
            }
        }
    }
}

/// A forward pass's scratch for the int8 Linears: the quantized activations [rows, columns] and
/// their per-row scales, sized for the widest Linear input at the arena's token capacity.
struct Int8Scratch {
    let values: UnsafeMutablePointer<Int8>
    let scales: UnsafeMutablePointer<Float>
    let rows: Int
    let columns: Int
}
