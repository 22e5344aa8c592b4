/*
 * beats_q4_kernels.h — int4 group-wise weight quantization: the converter's quantizer, the packed
 * layout a model file stores (used in place from a memory map), and the int4 × int8 GEMM.
 *
 * Same conventions as beats_kernels.h: three variants with their own entry points (scalar, avx2,
 * avx512vnni), bitwise-identical results (exact integer accumulation, the same float operations in
 * the same order, no FMA contraction), beats_status codes, strides in elements, row and column
 * ranges so callers split one product across threads.
 *
 * ---- Scheme --------------------------------------------------------------------------------------
 *
 * A weight W [N rows = output features, K columns = input features] is cut into groups of G
 * consecutive columns, G ∈ {32, 64, 128}, K a multiple of G (anything else: BEATS_ERROR_GROUP_SIZE).
 * Per (row n, group g = k / G) there is a scale and a minimum, both IEEE binary16 ("f16"), and per
 * weight an unsigned q[n][k] ∈ [0, 15]. The weight it stands for (float32 arithmetic, the product
 * rounded, then the sum rounded; no FMA):
 *
 *     w[n][k] = f32(scale[n][g]) * (float)q[n][k] + f32(minimum[n][g])
 *
 * Affine (a minimum per group) rather than symmetric: 7–11 % lower relative RMS error on the
 * full-size model, and the unsigned 4-bit values are exactly the unsigned operand of vpmaddubsw /
 * vpdpbusd while the activations are the signed one, so the kernels need neither the sign trick nor
 * an offset correction.
 *
 * Quantizer (beats_q4_quantize_weights; runs at conversion, scalar): per group lo = min, hi = max of
 * the float32 weights,
 *     minimum = f16(lo)                                   (round to nearest, ties to even)
 *     scale   = f16((hi - lo) / 15)                       (the difference and quotient in float64,
 *                                                          then one rounding to f16)
 *     q       = clamp(rint((w - f32(minimum)) / f32(scale)), 0, 15)   (float64, ties to even;
 *                                                          scale 0 → q = 0)
 * A NaN or infinite weight, or a group whose lo, hi or (hi - lo)/15 exceeds the f16 range
 * (|x| > 65504), is BEATS_ERROR_NOT_FLOAT16. The rounding of f32(minimum) can put it above lo and
 * the rounding of the scale can put 15·scale + minimum below hi; the clamp absorbs both, so a
 * weight's error is at most scale/2 plus |lo - f32(minimum)| (plus the float32 rounding of the
 * dequantized value), as the tests check.
 *
 * Activations: dynamic int8 per row with beats_quantize_rows_* at full levels,
 * L = BEATS_ACTIVATION_LEVELS_INT8 = 127 (not the 7-bit form the int8 AVX2 kernel prefers: with
 * weights ≤ 15 a vpmaddubsw pair is at most 2·15·128 = 3840, nowhere near int16 saturation), plus
 * per-group sums of the int8 activations (beats_q4_activation_sums), computed once per activation
 * matrix and shared by every GEMM on it (q, k and v read the same activations) and by every thread.
 *
 * GEMM (beats_gemm_q4_*), for output row m and column n, in exactly this float order:
 *     dot_g  = Σ_{k in group g} a[m][k] · q[n][k]                  (exact int32)
 *     asum_g = Σ_{k in group g} a[m][k]                            (exact int32, the caller's sums)
 *     acc    = 0.0f
 *     for g = 0, 1, …, K/G - 1:
 *         term = f32(scale[n][g]) * (float)dot_g + f32(minimum[n][g]) * (float)asum_g
 *         acc  = acc + term
 *     y       = a_scale[m] * acc
 *     C[m][n] = y + bias[n]                                        (y if bias == NULL)
 * (float)dot_g and (float)asum_g are exact: |dot_g| ≤ 128·15·128 and |asum_g| ≤ 128·128 < 2^24.
 * This is Σ_k a[m][k]·a_scale[m] · w[n][k] with w as dequantized above, up to float rounding.
 *
 * ---- Packed layout (the bytes a model file stores; version 1) -------------------------------------
 *
 * All integers little-endian. The buffer starts 64-byte aligned; every section starts at a multiple
 * of 64 bytes from the start. Np = N rounded up to a multiple of 16; P = Np / 16 panels (panel p holds
 * rows 16p … 16p+15); Gc = K / G groups per row.
 *
 *   offset  size  header field
 *   0       4     magic           0x57345142 (the bytes "BQ4W")
 *   4       4     version         1
 *   8       8     rows            N (≥ 1)
 *   16      8     columns         K (≥ G, a multiple of G, ≤ BEATS_MAX_COLUMNS = 65536)
 *   24      4     group_size      G: 32, 64 or 128
 *   28      4     reserved        0
 *   32      8     rows_padded     Np
 *   40      8     weights_offset  64
 *   48      8     scales_offset   64 + Np·K/2
 *   56      8     total_size      scales_offset + Np·Gc·4 (the whole buffer, header included)
 *
 *   weights section, at weights_offset, Np·K/2 bytes: panel p at weights_offset + p·8K. A panel is
 *     K/8 blocks of 64 bytes, block o (o = 0 … K/8 - 1) covering columns 8o … 8o+7 of the panel's 16
 *     rows; in block o, byte 4j + i (j = 0 … 15, i = 0 … 3) holds
 *         low nibble  (bits 0-3) = q[16p + j][8o + i]
 *         high nibble (bits 4-7) = q[16p + j][8o + 4 + i]
 *     So 64 bytes AND 0x0F are 16 rows × 4 columns in the order vpdpbusd wants (row j's four values
 *     in dword j), and (bytes >> 4) AND 0x0F the next 4 columns; the first or second 32 bytes are the
 *     same for rows 0-7 or 8-15 (the vpmaddubsw + vpmaddwd shape). The activation side is one
 *     broadcast dword of a[m][8o … 8o+3] and one of a[m][8o+4 … 8o+7].
 *   scales section, at scales_offset, Np·Gc·4 bytes: 64 bytes per (panel p, group g), at
 *     scales_offset + (p·Gc + g)·64:
 *         bytes 2j, 2j+1       (j = 0 … 15) = f16 scale[16p + j][g]
 *         bytes 32 + 2j, 33+2j (j = 0 … 15) = f16 minimum[16p + j][g]
 *     i.e. one vcvtph2ps of 16 halves per panel and group for the scales and one for the minimums.
 *   Padding rows (n ≥ N) have q = 0, scale = +0, minimum = +0, so they contribute exactly 0.
 *
 * Nothing else is stored: no activation-independent sums (unsigned weights need no offset
 * correction). beats_q4_packed_shape checks a buffer of a given length (the reader calls it on the
 * file's bytes): alignment, magic, version, shape limits, every offset and size recomputed from the
 * shape, total_size ≤ the length. The GEMM re-checks the header (never the length, which it is not
 * given): a buffer must have passed beats_q4_packed_shape with its true length before it is used.
 * Scales and minimums are not inspected: a NaN or infinite f16 in a file only makes outputs NaN/Inf.
 *
 * ---- Threads and memory ---------------------------------------------------------------------------
 *
 * Every function is safe to call concurrently on disjoint outputs. The GEMMs allocate nothing and
 * keep no state: activations are read in place (the int4 products need no transformed copy), the
 * group sums come from the caller (one M × K/G int32 buffer per activation matrix, shared by all
 * threads), and the AVX2 GEMM's working buffers (the unpacked weights of one panel span, the float
 * sums of one block of rows: 16 KB) are on its stack. No per-thread scratch is involved.
 *
 * Speed (bench/kernels/run_q4_bench.sh; Zen 3, AVX2): at G = 32 about the int8 GEMM's speed at 7-bit
 * activations, at G = 128 15–20 % faster: the per-group float epilogue (2 products, 2 sums, one
 * int → float conversion per output and group) is about a third of the work at G = 32; the int4
 * integer part is cheaper than int8's on AVX2 (no vpmaddwd per product pair), which pays for it. The
 * AVX-512 VNNI variant needs as many vpdpbusd per multiply-add as the int8 VNNI GEMM plus the nibble
 * unpacking and the same epilogue, so expect it to be slower than int8 there, most at G = 32 (not
 * measured: no such CPU here; its logic is checked through SIMDe by bench/kernels/emulated_q4_check.sh).
 */
#ifndef BEATS_Q4_KERNELS_H
#define BEATS_Q4_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "beats_kernels.h"
#include "beats_weight_quantization.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Rows of W (output features) per packed panel; column ranges on multiples of this split best. */
#define BEATS_Q4_PANEL_ROWS 16
/** Largest f16 value; weights and group extents beyond it cannot be stored. */
#define BEATS_Q4_FLOAT16_MAX 65504.0
/** The packed format's magic and version, as the header stores them. */
#define BEATS_Q4_MAGIC 0x57345142u
#define BEATS_Q4_VERSION 1u
/** Size of the packed header, and the alignment of the buffer and of every section. */
#define BEATS_Q4_HEADER_BYTES 64
#define BEATS_Q4_ALIGNMENT 64

/** 1 when `variant`'s int4 kernels were compiled in and this CPU runs them, else 0. Stricter than
 *  beats_kernel_available for AVX2: the int4 AVX2 kernels also need F16C (vcvtph2ps). */
int beats_q4_kernel_available(beats_kernel_variant variant);

/** 1 for a group size the int4 kernels accept (32, 64, 128), else 0. */
int beats_q4_group_size_valid(size_t group);

/* ---- binary16 ----------------------------------------------------------------------------------- */

/** The f16 value `bits` as float32 (exact; NaN stays NaN, quieted as vcvtph2ps does). */
float beats_q4_half_to_float(uint16_t bits);

/** `value` rounded once to f16, to nearest with ties to even (subnormals included); beyond
 *  ±65504 it rounds to ±Inf or NaN like any IEEE conversion (the quantizer refuses those first). */
uint16_t beats_q4_half_from_double(double value);

/* ---- Weight quantization (conversion time) --------------------------------------------------------- */

/**
 * Quantizes `rows` rows of `columns` float32 weights (row r at w + r*w_stride) as described at the
 * top of this file: q[r][k] at q + r*q_stride + k (one value 0…15 per byte), f16 bit patterns of the
 * scales and minimums row-major [rows][columns / group] at scales and minimums (no stride), and, when
 * `stats` is not NULL, stats[r] for each row: squared_error = Σ_k ((double)w − (double)w')², with w'
 * the float32 dequantized weight of the formula above, summed in k order; squared_norm = Σ_k w² in k
 * order; max_error = the largest |w − w'|.
 * Returns BEATS_OK, BEATS_ERROR_INVALID_ARGUMENT (NULL pointer, stride < columns), BEATS_ERROR_GROUP_SIZE
 * (group not 32/64/128 or columns not a multiple of it; also columns = 0) or BEATS_ERROR_NOT_FLOAT16
 * (a NaN/infinite weight, or a group beyond the f16 range — the status names neither row nor
 * column; the outputs are then partly written).
 */
int beats_q4_quantize_weights(const float *w, size_t w_stride, size_t rows, size_t columns, size_t group,
                              uint8_t *q, size_t q_stride, uint16_t *scales, uint16_t *minimums,
                              beats_weight_row_stats *stats);

/* ---- Packing ------------------------------------------------------------------------------------ */

/** Bytes of the packed form of an N = rows × K = columns int4 matrix with groups of `group` columns
 *  (the header's total_size); 0 when the shape is invalid (a dimension 0, group not 32/64/128,
 *  columns not a multiple of it, columns > BEATS_MAX_COLUMNS) or the size overflows. */
size_t beats_q4_packed_size(size_t rows, size_t columns, size_t group);

/**
 * Packs row-major q (row n at q + n*q_stride, `columns` values in [0, 15]) and the f16 scales and
 * minimums (row-major [rows][columns / group], no stride) into `packed` (64-byte aligned, packed_size ≥
 * beats_q4_packed_size(rows, columns, group)) in the layout above. Bytes past total_size are untouched.
 * Returns BEATS_OK, BEATS_ERROR_INVALID_ARGUMENT (NULL, q_stride < columns, packed_size too small),
 * BEATS_ERROR_GROUP_SIZE, BEATS_ERROR_TOO_LARGE, BEATS_ERROR_MISALIGNED or BEATS_ERROR_INT4_OUT_OF_RANGE
 * (a value above 15, or a scale or minimum that is infinite or NaN); on an error the buffer never
 * holds a valid header (it is written last).
 */
int beats_q4_pack(const uint8_t *q, size_t q_stride, const uint16_t *scales, const uint16_t *minimums,
                  size_t rows, size_t columns, size_t group, void *packed, size_t packed_size);

/**
 * Checks that the `packed_size` bytes at `packed` begin with a valid packed int4 matrix (see the
 * layout) and reports its shape (any of rows, columns, group may be NULL). Returns BEATS_OK,
 * BEATS_ERROR_MISALIGNED (not 64-byte aligned) or BEATS_ERROR_BAD_PACKED_INT4 (NULL, shorter than 64
 * bytes or than the header's total_size, or any header field inconsistent). Bytes past total_size
 * are allowed (a file may pad), and are never read by the kernels.
 */
int beats_q4_packed_shape(const void *packed, size_t packed_size, size_t *rows, size_t *columns, size_t *group);

/**
 * The inverse of beats_q4_pack: validates `packed` like beats_q4_packed_shape, then writes q row-major
 * (row n at q + n*q_stride, one value per byte) and the f16 scales and minimums row-major
 * [rows][columns / group]. Returns BEATS_OK, BEATS_ERROR_INVALID_ARGUMENT (NULL output, q_stride too
 * small), BEATS_ERROR_MISALIGNED or BEATS_ERROR_BAD_PACKED_INT4.
 */
int beats_q4_unpack(const void *packed, size_t packed_size, uint8_t *q, size_t q_stride, uint16_t *scales,
                    uint16_t *minimums);

/* ---- Activations -------------------------------------------------------------------------------- */

/**
 * sums[r*sums_stride + g] = Σ_{k = g·group}^{g·group + group − 1} a[r*a_stride + k] (exact int32) for
 * r < rows, g < columns / group: the per-group activation sums the GEMM's minimum term needs. Call it
 * once on the int8 activations beats_quantize_rows_* produced (L = 127) and pass the result to every
 * GEMM on them. Returns BEATS_OK, BEATS_ERROR_INVALID_ARGUMENT (NULL with rows > 0, a_stride < columns,
 * sums_stride < columns / group) or BEATS_ERROR_GROUP_SIZE; the AVX2 form BEATS_ERROR_UNAVAILABLE
 * without AVX2. rows = 0 does nothing. The sums are exact, so every form gives the same values;
 * beats_q4_activation_sums runs the fastest this CPU has (AVX2: about 1 ns per 32 activations).
 */
int beats_q4_activation_sums(const int8_t *a, size_t a_stride, size_t rows, size_t columns, size_t group,
                             int32_t *sums, size_t sums_stride);
int beats_q4_activation_sums_scalar(const int8_t *a, size_t a_stride, size_t rows, size_t columns, size_t group,
                                    int32_t *sums, size_t sums_stride);
int beats_q4_activation_sums_avx2(const int8_t *a, size_t a_stride, size_t rows, size_t columns, size_t group,
                                  int32_t *sums, size_t sums_stride);

/* ---- GEMM --------------------------------------------------------------------------------------- */

/**
 * C[m][n] (at c + m*c_stride + n) for m in [m_begin, m_end), n in [n_begin, n_end), as defined at the
 * top of this file, from
 *   a           int8 activations, row m at a + m*a_stride (K = the packed matrix's columns; any int8),
 *   a_scales    one scale per activation row (indexed by m),
 *   a_sums      the group sums of a (beats_q4_activation_sums), row m at a_sums + m*sums_stride,
 *   packed_w    a packed int4 matrix (N = its rows; n_end ≤ N) that passed beats_q4_packed_shape,
 *   bias        N floats or NULL.
 * Rows and columns outside the ranges are neither read from a / a_sums nor written to c; an empty
 * range does nothing. Strides in elements: a_stride ≥ K, sums_stride ≥ K/G, c_stride ≥ n_end.
 * Returns BEATS_OK, BEATS_ERROR_INVALID_ARGUMENT, BEATS_ERROR_BAD_PACKED_INT4, BEATS_ERROR_MISALIGNED,
 * or BEATS_ERROR_UNAVAILABLE (the SIMD variants where beats_q4_kernel_available says 0).
 */
int beats_gemm_q4_scalar(const int8_t *a, size_t a_stride, const float *a_scales, const int32_t *a_sums,
                         size_t sums_stride, const void *packed_w, const float *bias, float *c, size_t c_stride,
                         size_t m_begin, size_t m_end, size_t n_begin, size_t n_end);
int beats_gemm_q4_avx2(const int8_t *a, size_t a_stride, const float *a_scales, const int32_t *a_sums,
                       size_t sums_stride, const void *packed_w, const float *bias, float *c, size_t c_stride,
                       size_t m_begin, size_t m_end, size_t n_begin, size_t n_end);
int beats_gemm_q4_avx512vnni(const int8_t *a, size_t a_stride, const float *a_scales, const int32_t *a_sums,
                             size_t sums_stride, const void *packed_w, const float *bias, float *c, size_t c_stride,
                             size_t m_begin, size_t m_end, size_t n_begin, size_t n_end);

#ifdef __cplusplus
}
#endif

#endif /* BEATS_Q4_KERNELS_H */
