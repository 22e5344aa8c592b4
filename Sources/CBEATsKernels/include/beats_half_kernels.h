/*
 * beats_half_kernels.h — float16 and bfloat16 weights without a float32 copy of the model.
 *
 * Weights stay in the file's 16-bit form, row-major [rows = N outputs, columns = K inputs] with a row
 * stride in elements (a torch Linear weight used in place, no repacked layout). A product
 *     C[m][n] = Σ_k x[m][k] · w[n][k]        (x, C float32; no bias)
 * runs in one of three ways, each single-threaded over a caller's range of output columns (callers
 * split one product across threads by column ranges, each thread with its own scratch):
 *
 *   beats_half_gemm_avx2     AVX2 + FMA + F16C. A GEMM of our own whose weight packing converts: each
 *                            panel of 16 weight rows × one K slab is converted (vcvtph2ps, or a shift
 *                            for bf16) and transposed straight into the packed layout the 6×16 FMA
 *                            micro-kernel reads, so the weights are read once, 2 bytes each, and no
 *                            float32 copy exists beyond one 20 KB panel. Exact products: the result
 *                            equals the product with the float32 weights Float(Float16(w)) / bf16<<16,
 *                            summed in the order given at the function.
 *   beats_half_gemm_sgemm    any CPU: converts a chunk of weight rows × one K slab at a time into the
 *                            scratch (beats_half_to_float_rows_*) and multiplies it with the caller's
 *                            single-threaded sgemm (cblas_sgemm's signature). For CPUs without AVX2
 *                            (arm64 Macs, old x86), where the BLAS is the fast engine.
 *   beats_gemm_bf16_avx512   bfloat16 weights on CPUs with AVX512_BF16: activations rounded to
 *                            bfloat16 (nearest even), pairs of products accumulated in float32 by
 *                            vdpbf16ps. Faster, less exact: x is rounded (about 2^-9 relative per
 *                            value; bench/kernels/README-half.md has the measured output error).
 *
 * Formats: BEATS_HALF_F16 is IEEE 754 binary16; BEATS_HALF_BF16 is the upper 16 bits of a binary32.
 * Conversion is exact in every variant and bitwise identical across variants, including subnormals
 * (f16 subnormals become normal float32), ±0, ±Inf and NaN: an f16 NaN keeps its sign and payload
 * (shifted up by 13 bits) and becomes quiet (bit 22 set), as vcvtph2ps and Swift's
 * Float(Float16(bitPattern:)) do; a bf16 value is its bits shifted left by 16, NaN payloads untouched.
 *
 * Scratch: every product takes `scratch`, BEATS_HALF_SCRATCH_BYTES (1 MiB) 64-byte aligned bytes that
 * the call owns for its duration (one block per thread running products at once). Nothing is
 * allocated and no state is kept between calls; every function is reentrant.
 * Status codes are beats_kernels.h's (beats_status_description describes them).
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

/** The builds of the row conversion. */
typedef enum beats_half_variant {
    /** Portable C, every architecture. */
    BEATS_HALF_PORTABLE = 1,
    /** AVX2 + FMA + F16C (vcvtph2ps for f16, vpmovzxwd + shift for bf16), x86-64 with OS YMM state;
     *  also what beats_half_gemm_avx2 needs. */
    BEATS_HALF_AVX2 = 2,
} beats_half_variant;

/** 1 when `variant` was compiled in and this CPU runs it, else 0 (also for unknown values). */
int beats_half_variant_available(beats_half_variant variant);

/** Name of a variant: "portable", "avx2" ("unknown" for other values). */
const char *beats_half_variant_name(beats_half_variant variant);

/** Bytes of scratch every product function needs (64-byte aligned), per concurrent call. */
#define BEATS_HALF_SCRATCH_BYTES ((size_t)1 << 20)
/** Required alignment of the scratch, in bytes. */
#define BEATS_HALF_SCRATCH_ALIGNMENT 64

/* ---- Row conversion ---------------------------------------------------------------------------- */

/**
 * out[r][k] = float(w[r][k]) for r < rows, k < columns (row r at w + r*w_stride, out + r*out_stride;
 * strides in elements, ≥ columns). rows == 0 or columns == 0 does nothing. `out` must not overlap `w`.
 * Returns BEATS_OK, BEATS_ERROR_INVALID_ARGUMENT (NULL pointer with a non-empty block, stride too
 * small, unknown format) or BEATS_ERROR_UNAVAILABLE (the AVX2 variant on a CPU without AVX2 + F16C).
 */
int beats_half_to_float_rows_portable(beats_half_format format, const uint16_t *w, size_t w_stride, size_t rows,
                                      size_t columns, float *out, size_t out_stride);
int beats_half_to_float_rows_avx2(beats_half_format format, const uint16_t *w, size_t w_stride, size_t rows,
                                  size_t columns, float *out, size_t out_stride);

/* ---- Products: shared contract ------------------------------------------------------------------
 *
 * C[m][n] = Σ_k x[m][k] · w[n][k] for the function's rows m and columns n in [n_begin, n_end), with
 *   x   float32 activations, row m at x + m*x_stride (x_stride ≥ columns = K),
 *   w   16-bit weights of `format`, row n at w + n*w_stride (w_stride ≥ K; only rows n_begin … n_end−1
 *       and their first K values are read),
 *   C   row m at c + m*c_stride + n (c_stride ≥ n_end); only the range's outputs are written, and
 *       their previous contents are ignored (never read before being written).
 * Empty ranges do nothing; K = 0 writes zeros. Non-finite values propagate as in any float product.
 * Errors: BEATS_ERROR_INVALID_ARGUMENT (NULL pointers, reversed range, strides too small, scratch
 * smaller than BEATS_HALF_SCRATCH_BYTES, unknown format), BEATS_ERROR_MISALIGNED (scratch not
 * 64-byte aligned), BEATS_ERROR_UNAVAILABLE (a CPU without the variant's instructions).
 */

/** K slab and row block of beats_half_gemm_avx2 (see there). */
#define BEATS_HALF_AVX2_SLAB_DEPTH 320
#define BEATS_HALF_AVX2_BLOCK_ROWS 510
/** Output columns per packed weight panel of beats_half_gemm_avx2: column ranges starting on
 *  multiples of this split best. */
#define BEATS_HALF_AVX2_PANEL_COLUMNS 16

/**
 * The product for rows [0, rows), with AVX2 + FMA + F16C. K is split into ⌈K/320⌉ slabs of nearly
 * equal size (multiples of 8 except the last); for each slab and each output, the products are
 * accumulated from zero in ascending k by fused multiply-add (one rounding per step), and the slab
 * sums are added to C in slab order (C = slab 0, C = C + slab 1, …). So every output is computed the
 * same way whatever the row and column ranges: results do not depend on how callers split the work.
 */
int beats_half_gemm_avx2(beats_half_format format, const float *x, size_t x_stride, size_t rows,
                         const uint16_t *w, size_t w_stride, size_t columns,
                         float *c, size_t c_stride, size_t n_begin, size_t n_end,
                         void *scratch, size_t scratch_bytes);

/** cblas_sgemm's signature with its enumerations as int (CblasRowMajor = 101, CblasNoTrans = 111,
 *  CblasTrans = 112): what OpenBLAS exports and the runtime loads with dlsym. It must be reentrant
 *  (callers run several at once on disjoint outputs), e.g. OpenBLAS set to one thread. */
typedef void (*beats_sgemm_function)(int order, int transpose_a, int transpose_b, int m, int n, int k, float alpha,
                                     const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);

/** K slab of beats_half_gemm_sgemm: OpenBLAS's own K block on its Haswell/Zen kernels. */
#define BEATS_HALF_SGEMM_SLAB_DEPTH 320

/**
 * The product for rows [0, rows) through `sgemm`, converting with `variant`. K is split into
 * ⌈K/320⌉ slabs of nearly equal size (multiples of 8 except the last), [n_begin, n_end) into chunks
 * of at most scratch_bytes / (4·slab) weight rows (nearly equal, multiples of 8 except the last; 819
 * rows with the standard scratch); per slab, per chunk: convert it into the scratch, then
 *   sgemm(RowMajor, NoTrans, Trans, rows, chunk, slab, 1, x + k0, x_stride, scratch, slab,
 *         k0 == 0 ? 0 : 1, c + chunk_start, c_stride)
 * — the product with the exactly converted weights, summed in sgemm's order within each call. When
 * K ≤ 320 and the range is at most one chunk, that is one sgemm call, bitwise equal to calling sgemm
 * on the converted weights. rows, K, every stride and n_end must fit in an int (sgemm's arguments).
 */
int beats_half_gemm_sgemm(beats_half_variant variant, beats_half_format format, beats_sgemm_function sgemm,
                          const float *x, size_t x_stride, size_t rows,
                          const uint16_t *w, size_t w_stride, size_t columns,
                          float *c, size_t c_stride, size_t n_begin, size_t n_end,
                          void *scratch, size_t scratch_bytes);

/** 1 when this build has the AVX512-BF16 GEMM and the CPU runs it (AVX-512F/BW + AVX512_BF16 with OS
 *  ZMM state; see BEATS_CPU_AVX512BF16), else 0. */
int beats_gemm_bf16_avx512_available(void);

/** K slab and row block of beats_gemm_bf16_avx512; output columns per panel pair (column ranges
 *  starting on multiples of it split best). */
#define BEATS_BF16_SLAB_DEPTH 256
#define BEATS_BF16_BLOCK_ROWS 512
#define BEATS_BF16_PANEL_COLUMNS 32

/**
 * The product for rows [m_begin, m_end) with bfloat16 weights (format BEATS_HALF_BF16 implied;
 * w_rows = rows of w, n_end ≤ w_rows), on AVX512-BF16:
 *   C[m][n] = Σ_k bf16(x[m][k]) · w[n][k]
 * bf16(x) rounds to nearest even (NaN stays NaN, made quiet; subnormal x reads as ±0). K is split into
 * ⌈K/256⌉ slabs of nearly equal size (multiples of 32 except the last); per slab and output, vdpbf16ps
 * accumulates from zero, k pair by k pair in ascending order (t += x[2q+1]·w[2q+1], then
 * t += x[2q]·w[2q]: each product exact, each sum rounded to nearest; subnormal sums flushed to zero),
 * and the slab sums are added to C in order. Not bitwise equal to the other products: x is rounded.
 * Weights are repacked as they are used (panels of 32 rows × one slab, in the scratch), so the file
 * keeps the plain row-major layout.
 */
int beats_gemm_bf16_avx512(const float *x, size_t x_stride,
                           const uint16_t *w, size_t w_stride, size_t w_rows, size_t columns,
                           float *c, size_t c_stride,
                           size_t m_begin, size_t m_end, size_t n_begin, size_t n_end,
                           void *scratch, size_t scratch_bytes);

/* ---- Reference element conversions (the definition every variant matches) --------------------- */

/** float32 value of an IEEE binary16 bit pattern (exact; NaN quieted, payload kept). */
float beats_f16_to_float(uint16_t bits);
/** float32 value of a bfloat16 bit pattern (bits << 16). */
float beats_bf16_to_float(uint16_t bits);
/** bfloat16 rounding of the BF16 GEMM's activations: nearest even, NaN → quiet NaN (sign and the
 *  payload's upper bits kept), subnormal → signed zero (as vcvtne2ps2bf16). */
uint16_t beats_float_to_bf16_activation(float value);

#ifdef __cplusplus
}
#endif

#endif /* BEATS_HALF_KERNELS_H */
