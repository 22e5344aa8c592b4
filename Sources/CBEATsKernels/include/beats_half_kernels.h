/*
 * beats_half_kernels.h — float16 and bfloat16 weights without a float32 copy of the model.
 *
 * Weights stay in the file's 16-bit form, row-major [rows = N outputs, columns = K inputs] with a
 * row stride in elements (a torch Linear weight used in place); a product y[m][n] = Σ_k x[m][k]·w[n][k]
 * (x float32, y float32, no bias) runs in one of two ways:
 *
 *   1. CONVERT + SGEMM (every CPU): beats_half_gemm_sgemm converts one chunk of W (a block of weight
 *      rows × a slab of K, at most `scratch_floats` floats) at a time into the caller's float32
 *      scratch and multiplies it with the caller's single-threaded sgemm (cblas_sgemm's signature),
 *      accumulating the K slabs into C. The conversion is exact, so the result is the product with
 *      the float32 weights Float(Float16(w)) / Float(bf16 w), summed in sgemm's order within each
 *      slab (see the function). The conversion is beats_half_to_float_rows_* (portable C, or
 *      AVX2 + F16C `vcvtph2ps`).
 *
 *   2. AVX512-BF16 GEMM (bfloat16 weights on CPUs with AVX512_BF16): beats_gemm_bf16_avx512 rounds
 *      the activations to bfloat16 (round to nearest even, as `vcvtne2ps2bf16`) and accumulates pairs
 *      of products in float32 with `vdpbf16ps`. It reads the same row-major weights as path 1 (no
 *      repacked layout in the file): it repacks each block of 32 weight rows × a K slab into its
 *      per-thread scratch as it goes. Rounding x to bfloat16 costs accuracy (about 2^-9 relative per
 *      activation; see bench/kernels/README-half.md for the measured output error).
 *
 * Formats: BEATS_HALF_F16 is IEEE 754 binary16; BEATS_HALF_BF16 is the upper 16 bits of a binary32.
 * Conversion is exact in every variant and bitwise identical across variants, including subnormals
 * (f16 subnormals become normal float32), ±0, ±Inf and NaN: an f16 NaN keeps its sign and payload
 * (shifted up by 13 bits) and becomes quiet (bit 22 set), as `vcvtph2ps` and Swift's
 * Float(Float16(bitPattern:)) do; a bf16 value is its bits shifted left by 16, NaN payloads untouched.
 *
 * Thread safety: every function is reentrant and safe to call concurrently on disjoint outputs (and
 * disjoint scratch). Callers split one product across threads by ranges of output columns (weight
 * rows). Status codes are beats_kernels.h's (beats_status_description describes them).
 */
#ifndef BEATS_HALF_KERNELS_H
#define BEATS_HALF_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "beats_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Formats and variants ---------------------------------------------------------------------- */

/** The 16-bit element type of a weight. */
typedef enum beats_half_format {
    /** IEEE 754 binary16 (torch.float16). */
    BEATS_HALF_F16 = 1,
    /** bfloat16: the upper half of a binary32 (torch.bfloat16). */
    BEATS_HALF_BF16 = 2,
} beats_half_format;

/** The builds of the row conversion (and so of beats_half_gemm_sgemm). */
typedef enum beats_half_variant {
    /** Portable C, every architecture. */
    BEATS_HALF_PORTABLE = 1,
    /** AVX2 + F16C (`vcvtph2ps` for f16, `vpmovzxwd` + shift for bf16); x86-64 with OS YMM support. */
    BEATS_HALF_F16C = 2,
} beats_half_variant;

/** 1 when `variant` was compiled in and this CPU runs it, else 0 (also for unknown values). */
int beats_half_variant_available(beats_half_variant variant);

/** Name of a variant: "portable", "f16c" ("unknown" for other values). */
const char *beats_half_variant_name(beats_half_variant variant);

/* ---- Row conversion ---------------------------------------------------------------------------- */

/**
 * out[r][k] = float(w[r][k]) for r < rows, k < columns (row r at w + r*w_stride, out + r*out_stride;
 * strides in elements, ≥ columns). rows == 0 or columns == 0 does nothing. `out` must not overlap `w`.
 * Returns BEATS_OK, BEATS_ERROR_INVALID_ARGUMENT (NULL pointer with a non-empty block, stride too
 * small, unknown format) or BEATS_ERROR_UNAVAILABLE (the F16C variant on a CPU without AVX2 + F16C).
 */
int beats_half_to_float_rows_portable(beats_half_format format, const uint16_t *w, size_t w_stride, size_t rows,
                                      size_t columns, float *out, size_t out_stride);
int beats_half_to_float_rows_f16c(beats_half_format format, const uint16_t *w, size_t w_stride, size_t rows,
                                  size_t columns, float *out, size_t out_stride);

/* ---- Path 1: convert chunks of W + the caller's sgemm ------------------------------------------ */

/** cblas_sgemm's signature with its enumerations as int (CblasRowMajor = 101, CblasNoTrans = 111,
 *  CblasTrans = 112): what OpenBLAS exports, and what the runtime loads with dlsym. It must be
 *  single-threaded or at least reentrant (callers run several at once on disjoint outputs). */
typedef void (*beats_sgemm_function)(int order, int transpose_a, int transpose_b, int m, int n, int k, float alpha,
                                     const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);

/** Depth of one K slab (elements of K converted per chunk): OpenBLAS's own K block on Haswell/Zen
 *  cores is 320, and a slab of this size keeps sgemm's packing of x and of the chunk the same as
 *  one call over all of K would do. K is split into ceil(K / depth) slabs of nearly equal size. */
#define BEATS_HALF_SLAB_DEPTH 320

/** Recommended scratch per calling thread, in floats (4 MiB): chunks of up to 3276 weight rows ×
 *  one slab, so every full-size BEATs Linear band converts one chunk per slab. Any size ≥
 *  BEATS_HALF_MIN_SCRATCH_FLOATS works; smaller scratch means narrower chunks, and x is repacked
 *  by sgemm once per chunk (measured in bench/kernels/README-half.md). */
#define BEATS_HALF_SCRATCH_FLOATS ((size_t)1 << 20)
/** Smallest scratch beats_half_gemm_sgemm accepts: 8 weight rows × one full slab. */
#define BEATS_HALF_MIN_SCRATCH_FLOATS ((size_t)(8 * BEATS_HALF_SLAB_DEPTH))

/**
 * C[m][n] = Σ_k x[m][k] · float(w[n][k]) for m < rows, n in [n_begin, n_end), with
 *   x    float32 activations, row m at x + m*x_stride (x_stride ≥ columns),
 *   w    16-bit weights of `format`, row n at w + n*w_stride (w_stride ≥ columns; rows n_begin … n_end−1
 *        are read, so w needs at least n_end rows),
 *   c    output, row m at c + m*c_stride + n (c_stride ≥ n_end); only columns [n_begin, n_end) of rows
 *        [0, rows) are written; their previous contents are ignored (never read),
 *   scratch  `scratch_floats` floats this call owns (BEATS_HALF_SCRATCH_FLOATS recommended),
 *   sgemm    a single-threaded cblas_sgemm.
 * Per K slab [k0, k0 + depth) (the slabs as described at BEATS_HALF_SLAB_DEPTH) and per chunk of
 * weight rows that fits the scratch with that depth (chunks split [n_begin, n_end) into nearly equal
 * pieces, multiples of 8 rows except the last), the chunk is converted with `variant` and
 *   sgemm(RowMajor, NoTrans, Trans, rows, chunk, depth, 1, x + k0, x_stride, scratch, depth,
 *         k0 == 0 ? 0 : 1, c + chunk_start, c_stride)
 * accumulates it: the result is the exact product's float32 rounding in sgemm's summation order
 * within each slab, slabs added in order. When all of K fits one slab and [n_begin, n_end) one chunk,
 * it is one sgemm call on the converted weights, bitwise equal to calling sgemm on them directly.
 * Empty ranges (rows == 0, n_begin == n_end) do nothing. K (`columns`), rows and every stride must
 * fit in an int (sgemm's argument type).
 * Returns BEATS_OK, BEATS_ERROR_INVALID_ARGUMENT (NULL pointers, reversed range, strides too small,
 * scratch below BEATS_HALF_MIN_SCRATCH_FLOATS, sizes above INT_MAX, unknown format) or
 * BEATS_ERROR_UNAVAILABLE (the F16C variant on a CPU without it).
 */
int beats_half_gemm_sgemm(beats_half_variant variant, beats_half_format format, beats_sgemm_function sgemm,
                          const float *x, size_t x_stride, size_t rows,
                          const uint16_t *w, size_t w_stride, size_t columns,
                          float *c, size_t c_stride, size_t n_begin, size_t n_end,
                          float *scratch, size_t scratch_floats);

/* ---- Path 2: AVX512-BF16 GEMM on bfloat16 weights ---------------------------------------------- */

/** 1 when this build has the AVX512-BF16 GEMM and the CPU runs it (AVX-512F/BW + AVX512_BF16 and OS
 *  ZMM state, see BEATS_CPU_AVX512BF16), else 0. */
int beats_gemm_bf16_avx512_available(void);

/** Weight rows per packed panel pair of the BF16 GEMM: column ranges on multiples of this split best. */
#define BEATS_BF16_PANEL_ROWS 32

/**
 * C[m][n] = Σ_k bf16(x[m][k]) · w[n][k] for m in [m_begin, m_end), n in [n_begin, n_end), with w
 * bfloat16 row-major (row n at w + n*w_stride, `columns` = K values, w_stride ≥ K, n_end ≤ w_rows),
 * x float32 (row m at x + m*x_stride, x_stride ≥ K), c float32 (c_stride ≥ n_end). Outputs outside
 * the ranges are neither read nor written; inside them previous contents are ignored.
 *
 * Arithmetic: bf16(x) rounds to nearest even (NaN stays NaN, quiet); products of two bfloat16 values
 * are exact in float32 and are added in float32 two k at a time by `vdpbf16ps` (which treats
 * subnormal inputs as zero and flushes subnormal results), k in ascending pairs within slabs of
 * BEATS_BF16_SLAB_DEPTH, slabs added to C in order. Not bitwise equal to path 1: x is rounded.
 *
 * Scratch: a 64-byte aligned per-thread block of BEATS_BF16_SCRATCH_BYTES, allocated on a thread's
 * first call and freed when the thread exits (the rounded activations of up to 512 rows × one slab,
 * and one repacked panel pair of weights).
 * Returns BEATS_OK, BEATS_ERROR_INVALID_ARGUMENT, BEATS_ERROR_UNAVAILABLE (CPU without AVX512-BF16,
 * or not compiled in) or BEATS_ERROR_TOO_LARGE (the scratch could not be allocated).
 */
int beats_gemm_bf16_avx512(const float *x, size_t x_stride,
                           const uint16_t *w, size_t w_stride, size_t w_rows, size_t columns,
                           float *c, size_t c_stride,
                           size_t m_begin, size_t m_end, size_t n_begin, size_t n_end);

/** K slab and row block of the BF16 GEMM, and its per-thread scratch. */
#define BEATS_BF16_SLAB_DEPTH 256
#define BEATS_BF16_BLOCK_ROWS 512
#define BEATS_BF16_SCRATCH_BYTES ((size_t)(BEATS_BF16_BLOCK_ROWS * BEATS_BF16_SLAB_DEPTH * 2 + \
                                           BEATS_BF16_PANEL_ROWS * BEATS_BF16_SLAB_DEPTH * 2))

/* ---- Reference element conversions (the definition every variant matches) --------------------- */

/** float32 value of an IEEE binary16 bit pattern (exact; NaN quieted, payload kept). */
float beats_f16_to_float(uint16_t bits);
/** float32 value of a bfloat16 bit pattern (bits << 16). */
float beats_bf16_to_float(uint16_t bits);
/** bfloat16 rounding of the BF16 GEMM's activations: nearest even, NaN → quiet NaN (sign and the
 *  payload's upper bits kept), subnormal → signed zero (as `vcvtne2ps2bf16`). */
uint16_t beats_float_to_bf16_activation(float value);

#ifdef __cplusplus
}
#endif

#endif /* BEATS_HALF_KERNELS_H */
