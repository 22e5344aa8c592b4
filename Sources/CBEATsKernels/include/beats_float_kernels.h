#ifndef BEATS_FLOAT_KERNELS_H
#define BEATS_FLOAT_KERNELS_H

/*
 * Float32 row kernels for the BEATs encoder: the element-wise work between the GEMMs (bias,
 * activation, residual, LayerNorm, attention softmax), fused so each row is read once while it
 * sits in L1. Every kernel has an AVX2+FMA variant and a portable one, chosen at run time; both
 * use the same polynomials, so results differ only by FMA rounding.
 *
 * Matrices are row-major with an explicit leading dimension (elements between row starts).
 * Callers split rows across threads; the kernels themselves are single-threaded and reentrant.
 * Every kernel takes the variant to run (callers pass beats_float_best_variant(); tests pass
 * each); asking for AVX2 on a CPU without it runs the portable code.
 */

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    BEATS_FLOAT_PORTABLE = 0,
    BEATS_FLOAT_AVX2 = 1,
} beats_float_variant;

/* The fastest variant this CPU runs (AVX2 needs AVX2, FMA and OS support for YMM state). */
beats_float_variant beats_float_best_variant(void);

/* Activations the official code can be configured with (`activation_fn`). */
typedef enum {
    BEATS_ACTIVATION_GELU = 0,         /* exact: 0.5 x (1 + erf(x / sqrt 2)) */
    BEATS_ACTIVATION_GELU_TANH = 1,    /* fairseq gelu_accurate: tanh approximation */
    BEATS_ACTIVATION_RELU = 2,
    BEATS_ACTIVATION_TANH = 3,
    BEATS_ACTIVATION_LINEAR = 4,
} beats_activation;

/* x[r][c] = act(x[r][c] + bias[c]); bias may be NULL. */
void beats_bias_activation(beats_float_variant variant, float *x, long ld, long rows, long cols, const float *bias, beats_activation activation);

/* out[r][c] = a[r][c] * swish(a[r][c + cols]) where a = y + bias (fairseq GLU_Linear, "swish");
 * y is rows x (2 cols); bias (2 cols) may be NULL. out may not alias y. */
void beats_bias_glu_swish(beats_float_variant variant, float *out, long ldo, const float *y, long ldy, long rows, long cols, const float *bias);

/*
 * v = (y + bias) + residual * residual_scale, then, if gamma is not NULL, LayerNorm over the row:
 * out = (v - mean) / sqrt(var + eps) * gamma + beta (beta may be NULL only when gamma is NULL).
 * bias and residual may be NULL. out may alias y or residual (row by row, in place).
 */
void beats_bias_residual_layer_norm(beats_float_variant variant, float *out, long ldo, const float *y, long ldy, const float *bias,
                                    const float *residual, long ldr, float residual_scale,
                                    const float *gamma, const float *beta, float eps, long rows, long cols);

/*
 * Attention softmax for `rows` query rows of one head, in place on scores (rows x cols, ld),
 * where the first row is query `first_row` of the sequence (cols keys):
 *   s = (scores - rowmax(scores)) * post_scale + gate[i] * bias_by_offset[j - i + cols - 1]
 *   scores = softmax(s)
 * bias_by_offset (2 cols - 1 values, relative offset j - i) may be NULL (no relative bias);
 * gate (one value per query, indexed from first_row) may be NULL (factor 1).
 * When inverse_sums is not NULL the rows are left as exp(s - max) and inverse_sums[r] receives
 * 1 / sum for row r of this call, so the caller can normalise the (much narrower) product with
 * V instead of the scores.
 */
void beats_attention_softmax(beats_float_variant variant, float *scores, long ld, long rows, long cols, long first_row,
                             float post_scale, const float *bias_by_offset, const float *gate, float *inverse_sums);

/* Element-wise maths, exposed for tests: the polynomials the kernels use. */
void beats_exp(beats_float_variant variant, float *out, const float *in, long count);
void beats_erf(beats_float_variant variant, float *out, const float *in, long count);

#ifdef __cplusplus
}
#endif

#endif
