import CBEATsKernels

/// Which build of the float32 row kernels (`beats_float_kernels.h`) runs. Every model picks one
/// when it is built and keeps it: nothing process-wide decides it, so two models (or a test that
/// pins the portable variant) never disturb each other.
public enum FloatKernelVariant: Sendable, CaseIterable, CustomStringConvertible {
    /// Plain C, any CPU.
    case portable
    /// AVX2 + FMA.
    case avx2

    /// The fastest variant this CPU runs (`beats_float_best_variant`).
    public static let best: FloatKernelVariant = beats_float_best_variant() == BEATS_FLOAT_AVX2 ? .avx2 : .portable

    /// The variant's name: `portable` or `avx2`.
    public var description: String { self == .avx2 ? "avx2" : "portable" }

    var cValue: beats_float_variant { self == .avx2 ? BEATS_FLOAT_AVX2 : BEATS_FLOAT_PORTABLE }
}

/// An element-wise activation the row kernels apply after adding a bias (`beats_activation`).
public enum RowActivation: Sendable, Equatable {
    /// Exact GELU, 0.5·x·(1 + erf(x/√2)) (torch's default `gelu`).
    case gelu
    /// The tanh approximation (fairseq's `gelu_accurate` / `gelu_fast`).
    case geluTanh
    /// max(x, 0).
    case relu
    /// The hyperbolic tangent.
    case tanh
    /// Identity: only the bias is added.
    case linear

    var cValue: beats_activation {
        switch self {
        case .gelu: return BEATS_ACTIVATION_GELU
        case .geluTanh: return BEATS_ACTIVATION_GELU_TANH
        case .relu: return BEATS_ACTIVATION_RELU
        case .tanh: return BEATS_ACTIVATION_TANH
        case .linear: return BEATS_ACTIVATION_LINEAR
        }
    }
}

/// The fused float32 row kernels of the forward pass, one Swift call per C function of
/// `beats_float_kernels.h`. Matrices are row-major with a leading dimension (`ld…`) in floats.
/// These functions cannot fail: the C side has no status, and the runtime sizes every buffer
/// before it calls them.
extension FloatKernelVariant {
    /// `x[r][c] = activation(x[r][c] + bias[c])` (`beats_bias_activation`); `bias` may be nil.
    @inline(__always)
    public func biasActivation(_ x: UnsafeMutablePointer<Float>, leading ld: Int, rows: Int, columns: Int,
                               bias: UnsafePointer<Float>?, _ activation: RowActivation) {
        beats_bias_activation(cValue, x, ld, rows, columns, bias, activation.cValue)
    }

    /// `out[r][c] = a[r][c] · swish(a[r][c + columns])` with `a = y + bias` (fairseq's GLU_Linear),
    /// `beats_bias_glu_swish`.
    @inline(__always)
    public func biasGLUSwish(into output: UnsafeMutablePointer<Float>, leading ldo: Int, _ y: UnsafePointer<Float>,
                             leading ldy: Int, rows: Int, columns: Int, bias: UnsafePointer<Float>?) {
        beats_bias_glu_swish(cValue, output, ldo, y, ldy, rows, columns, bias)
    }

    /// `out = LayerNorm((y + bias) + residualScale · residual)` per row, or without the
    /// LayerNorm when `gamma` and `beta` are nil (`beats_bias_residual_layer_norm`).
    @inline(__always)
    public func biasResidualLayerNorm(into output: UnsafeMutablePointer<Float>, leading ldo: Int,
                                      _ y: UnsafePointer<Float>, leading ldy: Int, bias: UnsafePointer<Float>?,
                                      residual: UnsafePointer<Float>?, leading ldr: Int, residualScale: Float,
                                      gamma: UnsafePointer<Float>?, beta: UnsafePointer<Float>?, epsilon: Float,
                                      rows: Int, columns: Int) {
        beats_bias_residual_layer_norm(cValue, output, ldo, y, ldy, bias, residual, ldr, residualScale, gamma, beta,
                                       epsilon, rows, columns)
    }

    /// BEATs' attention softmax over score rows `firstRow ..< firstRow + rows` of one head, in
    /// place and unnormalised, with the relative-position bias (gated per query) added after the
    /// row maximum is taken; writes 1 / row sum to `inverseSums` (`beats_attention_softmax`).
    @inline(__always)
    public func attentionSoftmax(_ scores: UnsafeMutablePointer<Float>, leading ld: Int, rows: Int, columns: Int,
                                 firstRow: Int, postScale: Float, biasByOffset: UnsafePointer<Float>?,
                                 gates: UnsafePointer<Float>?, inverseSums: UnsafeMutablePointer<Float>) {
        beats_attention_softmax(cValue, scores, ld, rows, columns, firstRow, postScale, biasByOffset, gates, inverseSums)
    }

    /// The kernels' exp polynomial over `input` (`beats_exp`), for accuracy tests.
    public func exp(_ input: [Float]) -> [Float] {
        var output = [Float](repeating: 0, count: input.count)
        beats_exp(cValue, &output, input, input.count)
        return output
    }

    /// The kernels' erf polynomial over `input` (`beats_erf`), for accuracy tests.
    public func erf(_ input: [Float]) -> [Float] {
        var output = [Float](repeating: 0, count: input.count)
        beats_erf(cValue, &output, input, input.count)
        return output
    }
}
