import BEATsKernels

/// A torch `nn.Linear`: weight [out, in] row-major, optional bias [out]. The weight is float32
/// used in place (sgemm), or int8 when the file stores it quantized (the int8 GEMM kernels).
struct Linear: Sendable {
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
            quantizedWeight = try Int8Weight(matrix)
            weight = nil
        } else {
            weight = try loader.load("\(prefix).weight", shape: [outputs, inputs])
            quantizedWeight = nil
        }
        bias = hasBias ? try loader.load("\(prefix).bias", shape: [outputs]) : nil
    }

    /// output[rows, out] = input[rows, in] · weightᵀ, without the bias (callers fuse it into the
    /// next element-wise pass), split across `pass`'s threads.
    func multiply(_ input: UnsafePointer<Float>, leading lda: Int, rows: Int,
                  into output: UnsafeMutablePointer<Float>, leading ldc: Int, in pass: ForwardPass) {
        if let quantizedWeight {
            quantizedWeight.multiply(input, leading: lda, rows: rows, into: output, leading: ldc,
                                     kernel: pass.int8Kernel, scratch: pass.arena.int8Scratch, loop: pass.loop)
        } else if let weight {
            Matrix.multiply(rows: rows, columns: outputs, depth: inputs, input, leading: lda,
                            weight.pointer, leading: inputs, transposeB: true, into: output, leading: ldc,
                            splitting: pass.loop)
        }
    }
}

/// A torch `nn.LayerNorm` (eps 1e-5, elementwise affine).
struct LayerNormWeights: Sendable {
    let gamma: FloatTensor
    let beta: FloatTensor
    static let epsilon: Float = 1e-5

    init(_ loader: WeightLoader, _ prefix: String, width: Int) throws {
        gamma = try loader.load("\(prefix).weight", shape: [width])
        beta = try loader.load("\(prefix).bias", shape: [width])
    }
}
