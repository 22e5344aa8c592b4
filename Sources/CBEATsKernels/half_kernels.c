/*
 * float16 / bfloat16 weights: exact row conversion to float32 (portable and AVX2 + F16C), the AVX2
 * GEMM that converts while it packs, the convert-a-chunk-then-sgemm product, and variant
 * availability. The AVX512-BF16 GEMM is in half_avx512bf16.c.
 */
#include "half_kernels_internal.h"

#include <limits.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#if BEATS_X86_64
#include <immintrin.h>
#endif

/* ---- Element conversions (the definition every variant matches) ------------------------------- */

float beats_f16_to_float(uint16_t bits) {
    const uint32_t sign = (uint32_t)(bits & 0x8000u) << 16;
    const uint32_t magnitude = bits & 0x7fffu;
    uint32_t result;
    if (magnitude >= 0x7c00u) {
        /* Inf, or NaN made quiet (bit 22) with its payload moved to the top of the float's. */
        const uint32_t payload = (magnitude & 0x3ffu) << 13;
        result = 0x7f800000u | payload | (payload != 0 ? 0x00400000u : 0);
    } else if (magnitude >= 0x0400u) {
        /* Normal: rebias the exponent (15 → 127), 112 << 23 = 0x38000000. */
        result = (magnitude << 13) + 0x38000000u;
    } else {
        /* Zero or subnormal: m · 2^-24, exact in float32 (m < 2^10, a power-of-two scale). */
        const float value = (float)magnitude * 0x1p-24f;
        memcpy(&result, &value, sizeof result);
    }
    result |= sign;
    float value;
    memcpy(&value, &result, sizeof value);
    return value;
}

float beats_bf16_to_float(uint16_t bits) {
    const uint32_t widened = (uint32_t)bits << 16;
    float value;
    memcpy(&value, &widened, sizeof value);
    return value;
}

uint16_t beats_float_to_bf16_activation(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    const uint32_t magnitude = bits & 0x7fffffffu;
    if (magnitude > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x0040u); /* NaN: quiet */
    if (magnitude < 0x00800000u) return (uint16_t)((bits >> 16) & 0x8000u); /* zero, subnormal: ±0 */
    const uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);                 /* nearest, ties to even */
    return (uint16_t)((bits + rounding) >> 16);
}

/* ---- Variants -------------------------------------------------------------------------------- */

int beats_half_variant_available(beats_half_variant variant) {
    switch (variant) {
    case BEATS_HALF_PORTABLE:
        return 1;
    case BEATS_HALF_AVX2: {
        const uint32_t needed = BEATS_CPU_AVX2 | BEATS_CPU_FMA | BEATS_CPU_F16C;
        return BEATS_X86_64 && (beats_cpu_features() & needed) == needed;
    }
    default:
        return 0;
    }
}

const char *beats_half_variant_name(beats_half_variant variant) {
    switch (variant) {
    case BEATS_HALF_PORTABLE: return "portable";
    case BEATS_HALF_AVX2: return "avx2";
    default: return "unknown";
    }
}

/* ---- Row conversion -------------------------------------------------------------------------- */

static int beats_half_convert_check(beats_half_format format, const uint16_t *w, size_t w_stride, size_t rows,
                                    size_t columns, const float *out, size_t out_stride) {
    if (format != BEATS_HALF_F16 && format != BEATS_HALF_BF16) return BEATS_ERROR_INVALID_ARGUMENT;
    if (rows == 0 || columns == 0) return BEATS_OK;
    if (w == NULL || out == NULL) return BEATS_ERROR_INVALID_ARGUMENT;
    if (w_stride < columns || out_stride < columns) return BEATS_ERROR_INVALID_ARGUMENT;
    return BEATS_OK;
}

static void beats_half_rows_portable(beats_half_format format, const uint16_t *w, size_t w_stride, size_t rows,
                                     size_t columns, float *out, size_t out_stride) {
    for (size_t r = 0; r < rows; r++) {
        const uint16_t *row = w + r * w_stride;
        float *target = out + r * out_stride;
        if (format == BEATS_HALF_BF16) {
            for (size_t k = 0; k < columns; k++) target[k] = beats_bf16_to_float(row[k]);
        } else {
            for (size_t k = 0; k < columns; k++) target[k] = beats_f16_to_float(row[k]);
        }
    }
}

int beats_half_to_float_rows_portable(beats_half_format format, const uint16_t *w, size_t w_stride, size_t rows,
                                      size_t columns, float *out, size_t out_stride) {
    const int status = beats_half_convert_check(format, w, w_stride, rows, columns, out, out_stride);
    if (status != BEATS_OK || rows == 0 || columns == 0) return status;
    beats_half_rows_portable(format, w, w_stride, rows, columns, out, out_stride);
    return BEATS_OK;
}

/* Splits `count` into ⌈count / limit⌉ pieces: the step (a multiple of 8, ≤ limit when limit is one)
 * of pieces of nearly equal size, the last one shorter. */
static size_t beats_half_split_step(size_t count, size_t limit) {
    const size_t pieces = (count + limit - 1) / limit;
    return beats_round_up((count + pieces - 1) / pieces, 8);
}

/* Arguments every product checks the same way (rows: the row range's length). */
static int beats_half_product_check(beats_half_format format, const float *x, size_t x_stride, const uint16_t *w,
                                    size_t w_stride, size_t columns, const float *c, size_t c_stride, size_t n_begin,
                                    size_t n_end, const void *scratch, size_t scratch_bytes) {
    if (format != BEATS_HALF_F16 && format != BEATS_HALF_BF16) return BEATS_ERROR_INVALID_ARGUMENT;
    if (n_begin > n_end) return BEATS_ERROR_INVALID_ARGUMENT;
    if (x == NULL || w == NULL || c == NULL) return BEATS_ERROR_INVALID_ARGUMENT;
    if (x_stride < columns || w_stride < columns || c_stride < n_end) return BEATS_ERROR_INVALID_ARGUMENT;
    return beats_half_scratch_check(scratch, scratch_bytes);
}

static void beats_half_zero_outputs(float *c, size_t c_stride, size_t m_begin, size_t m_end, size_t n_begin,
                                    size_t n_end) {
    for (size_t m = m_begin; m < m_end; m++) memset(c + m * c_stride + n_begin, 0, (n_end - n_begin) * sizeof(float));
}

#if BEATS_X86_64

/* ---- AVX2: row conversion ----------------------------------------------------------------------- */

/* vcvtph2ps converts every binary16 exactly (subnormals included, whatever MXCSR says) and quiets
 * signalling NaNs keeping the payload: the same bits as beats_f16_to_float (the tests check all 65 536). */
BEATS_TARGET_HALF_AVX2 static inline __m256 beats_half_load8(beats_half_format format, const uint16_t *source) {
    const __m128i h = _mm_loadu_si128((const __m128i *)(const void *)source);
    if (format == BEATS_HALF_BF16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    return _mm256_cvtph_ps(h);
}

static inline float beats_half_element(beats_half_format format, uint16_t bits) {
    return format == BEATS_HALF_BF16 ? beats_bf16_to_float(bits) : beats_f16_to_float(bits);
}

BEATS_TARGET_HALF_AVX2 static void beats_half_rows_avx2(beats_half_format format, const uint16_t *w, size_t w_stride,
                                                        size_t rows, size_t columns, float *out, size_t out_stride) {
    for (size_t r = 0; r < rows; r++) {
        const uint16_t *row = w + r * w_stride;
        float *target = out + r * out_stride;
        size_t k = 0;
        for (; k + 32 <= columns; k += 32) {
            const __m256 v0 = beats_half_load8(format, row + k), v1 = beats_half_load8(format, row + k + 8);
            const __m256 v2 = beats_half_load8(format, row + k + 16), v3 = beats_half_load8(format, row + k + 24);
            _mm256_storeu_ps(target + k, v0);
            _mm256_storeu_ps(target + k + 8, v1);
            _mm256_storeu_ps(target + k + 16, v2);
            _mm256_storeu_ps(target + k + 24, v3);
        }
        for (; k + 8 <= columns; k += 8) _mm256_storeu_ps(target + k, beats_half_load8(format, row + k));
        for (; k < columns; k++) target[k] = beats_half_element(format, row[k]);
    }
}

int beats_half_to_float_rows_avx2(beats_half_format format, const uint16_t *w, size_t w_stride, size_t rows,
                                  size_t columns, float *out, size_t out_stride) {
    if (!beats_half_variant_available(BEATS_HALF_AVX2)) return BEATS_ERROR_UNAVAILABLE;
    const int status = beats_half_convert_check(format, w, w_stride, rows, columns, out, out_stride);
    if (status != BEATS_OK || rows == 0 || columns == 0) return status;
    beats_half_rows_avx2(format, w, w_stride, rows, columns, out, out_stride);
    return BEATS_OK;
}

/* ---- AVX2: the GEMM that converts while it packs -------------------------------------------------
 *
 * Loop nest (per call):
 *   for each K slab (≤ 320):
 *     for each block of ≤ 510 rows of x:
 *       pack the block's slab of x into tiles of 6 rows, k-major: Xp[tile][k][0..5] (rows past the
 *       block are zero);
 *       for each panel of 16 weight rows in [n_begin, n_end):
 *         convert + transpose the panel's slab into P[k][0..15] (rows past n_end are zero);
 *         for each tile: 12 YMM accumulators (6 rows × 16 columns) over the slab, then C = acc
 *         (first slab) or C += acc, masked to the tile's rows and the range's columns.
 * The 6×16 micro-kernel per k: 2 loads of P, 6 broadcasts of Xp, 12 FMAs (the shape of a Haswell
 * sgemm kernel: 12 accumulators cover the FMA latency × 2 ports, 8 loads per 12 FMAs fit 2 ports).
 * P (20 KB) stays in L1 while the tiles of the x block stream from L2; the weights are read once per
 * block of 510 rows, 2 bytes each, straight into P.
 */
#define BEATS_HALF_TILE_ROWS 6
#define BEATS_HALF_XP_FLOATS ((size_t)BEATS_HALF_AVX2_BLOCK_ROWS * BEATS_HALF_AVX2_SLAB_DEPTH + 8)
#define BEATS_HALF_PANEL_OFFSET ((BEATS_HALF_XP_FLOATS + 15) / 16 * 16)
#define BEATS_HALF_AVX2_SCRATCH_FLOATS (BEATS_HALF_PANEL_OFFSET + 16 * BEATS_HALF_AVX2_SLAB_DEPTH)

_Static_assert(BEATS_HALF_AVX2_BLOCK_ROWS % BEATS_HALF_TILE_ROWS == 0, "blocks are whole tiles");
_Static_assert(BEATS_HALF_AVX2_SLAB_DEPTH % 8 == 0, "slabs are multiples of 8");
_Static_assert(BEATS_HALF_AVX2_SCRATCH_FLOATS * sizeof(float) <= BEATS_HALF_SCRATCH_BYTES, "fits the scratch");

/* In-register transpose of 8 vectors of 8 floats: r[i][j] → r[j][i]. */
BEATS_TARGET_HALF_AVX2 static inline void beats_half_transpose8(__m256 r[8]) {
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    /* s_j: rows 0–3 (4–7) of columns j and j + 4 in the two 128-bit halves. */
    const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xee);
    const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xee);
    const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xee);
    const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xee);
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/* Xp tiles for `rows` rows (row r at x + r*x_stride) × depth: tile t at xp + t*6*depth, element
 * [k][i] = x[6t + i][k], rows past `rows` zero. Writes up to 2 floats past the last tile. */
BEATS_TARGET_HALF_AVX2 static void beats_half_pack_x(const float *x, size_t x_stride, size_t rows, size_t depth,
                                                     float *xp) {
    for (size_t m = 0; m < rows; m += BEATS_HALF_TILE_ROWS, xp += BEATS_HALF_TILE_ROWS * depth) {
        const float *tile = x + m * x_stride;
        const size_t tile_rows = rows - m < BEATS_HALF_TILE_ROWS ? rows - m : BEATS_HALF_TILE_ROWS;
        size_t k = 0;
        if (tile_rows == BEATS_HALF_TILE_ROWS) {
            for (; k + 8 <= depth; k += 8) {
                __m256 r[8];
                for (int i = 0; i < BEATS_HALF_TILE_ROWS; i++) r[i] = _mm256_loadu_ps(tile + (size_t)i * x_stride + k);
                r[6] = r[7] = _mm256_setzero_ps();
                beats_half_transpose8(r);
                /* 8 floats per k where 6 belong: in ascending k each store's last two lanes are
                 * overwritten by the next one (or by the next tile, or land in the 8 spare floats). */
                for (int j = 0; j < 8; j++) _mm256_storeu_ps(xp + (k + (size_t)j) * BEATS_HALF_TILE_ROWS, r[j]);
            }
        }
        for (; k < depth; k++) {
            for (size_t i = 0; i < BEATS_HALF_TILE_ROWS; i++) {
                xp[k * BEATS_HALF_TILE_ROWS + i] = i < tile_rows ? tile[i * x_stride + k] : 0.0f;
            }
        }
    }
}

/* P[k][j] = float(w[j][k]) for j < 16 (row j at w + j*w_stride), k < depth; rows j ≥ valid are zero. */
BEATS_TARGET_HALF_AVX2 static void beats_half_pack_w(beats_half_format format, const uint16_t *w, size_t w_stride,
                                                     size_t valid, size_t depth, float *panel) {
    for (size_t group = 0; group < 2; group++) {
        const uint16_t *rows = w + 8 * group * w_stride;
        float *out = panel + 8 * group;
        size_t k = 0;
        if (valid >= 8 * (group + 1)) {
            for (; k + 8 <= depth; k += 8) {
                __m256 r[8];
                for (size_t i = 0; i < 8; i++) r[i] = beats_half_load8(format, rows + i * w_stride + k);
                beats_half_transpose8(r);
                for (size_t j = 0; j < 8; j++) _mm256_store_ps(out + (k + j) * 16, r[j]);
            }
        }
        for (; k < depth; k++) {
            for (size_t i = 0; i < 8; i++) {
                out[k * 16 + i] = 8 * group + i < valid ? beats_half_element(format, rows[i * w_stride + k]) : 0.0f;
            }
        }
    }
}

#define BEATS_HALF_FMA_STEP(offset)                                                                   \
    do {                                                                                              \
        const __m256 b0 = _mm256_load_ps(b + 16 * (offset)), b1 = _mm256_load_ps(b + 16 * (offset) + 8); \
        for (int r = 0; r < BEATS_HALF_TILE_ROWS; r++) {                                              \
            const __m256 broadcast = _mm256_broadcast_ss(a + BEATS_HALF_TILE_ROWS * (offset) + r);    \
            acc[r][0] = _mm256_fmadd_ps(broadcast, b0, acc[r][0]);                                    \
            acc[r][1] = _mm256_fmadd_ps(broadcast, b1, acc[r][1]);                                    \
        }                                                                                             \
    } while (0)

/* One 6×16 tile over a slab: a = the tile's Xp, b = the panel; writes rows < `rows`, columns < `columns`
 * of C (row r at c + r*c_stride): C = acc on the first slab, C + acc after. */
BEATS_TARGET_HALF_AVX2 __attribute__((noinline)) static void
beats_half_tile_avx2(const float *a, const float *b, size_t depth, float *c, size_t c_stride, size_t rows,
                     size_t columns, int first_slab) {
    __m256 acc[BEATS_HALF_TILE_ROWS][2];
    for (int r = 0; r < BEATS_HALF_TILE_ROWS; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    size_t k = 0;
    for (; k + 4 <= depth; k += 4, a += 4 * BEATS_HALF_TILE_ROWS, b += 64) {
        BEATS_HALF_FMA_STEP(0);
        BEATS_HALF_FMA_STEP(1);
        BEATS_HALF_FMA_STEP(2);
        BEATS_HALF_FMA_STEP(3);
    }
    for (; k < depth; k++, a += BEATS_HALF_TILE_ROWS, b += 16) BEATS_HALF_FMA_STEP(0);

    if (columns == 16) {
        for (size_t r = 0; r < rows; r++) {
            float *row = c + r * c_stride;
            __m256 y0 = acc[r][0], y1 = acc[r][1];
            if (!first_slab) {
                y0 = _mm256_add_ps(_mm256_loadu_ps(row), y0);
                y1 = _mm256_add_ps(_mm256_loadu_ps(row + 8), y1);
            }
            _mm256_storeu_ps(row, y0);
            _mm256_storeu_ps(row + 8, y1);
        }
        return;
    }
    /* Lane i of the masks is on when column i (i + 8) is inside the range. */
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i mask0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)columns), lanes);
    const __m256i mask1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)columns - 8), lanes);
    for (size_t r = 0; r < rows; r++) {
        float *row = c + r * c_stride;
        __m256 y0 = acc[r][0], y1 = acc[r][1];
        if (!first_slab) {
            y0 = _mm256_add_ps(_mm256_maskload_ps(row, mask0), y0);
            y1 = _mm256_add_ps(_mm256_maskload_ps(row + 8, mask1), y1);
        }
        _mm256_maskstore_ps(row, mask0, y0);
        _mm256_maskstore_ps(row + 8, mask1, y1);
    }
}

BEATS_TARGET_HALF_AVX2 static void beats_half_gemm_avx2_body(beats_half_format format, const float *x, size_t x_stride,
                                                             size_t rows, const uint16_t *w, size_t w_stride,
                                                             size_t columns, float *c, size_t c_stride, size_t n_begin,
                                                             size_t n_end, float *scratch) {
    float *xp = scratch, *panel = scratch + BEATS_HALF_PANEL_OFFSET;
    const size_t slab_step = beats_half_split_step(columns, BEATS_HALF_AVX2_SLAB_DEPTH);
    for (size_t k0 = 0; k0 < columns; k0 += slab_step) {
        const size_t depth = columns - k0 < slab_step ? columns - k0 : slab_step;
        for (size_t block = 0; block < rows; block += BEATS_HALF_AVX2_BLOCK_ROWS) {
            const size_t block_rows = rows - block < BEATS_HALF_AVX2_BLOCK_ROWS ? rows - block : BEATS_HALF_AVX2_BLOCK_ROWS;
            beats_half_pack_x(x + block * x_stride + k0, x_stride, block_rows, depth, xp);
            for (size_t n = n_begin; n < n_end; n += 16) {
                const size_t valid = n_end - n < 16 ? n_end - n : 16;
                beats_half_pack_w(format, w + n * w_stride + k0, w_stride, valid, depth, panel);
                for (size_t m = 0; m < block_rows; m += BEATS_HALF_TILE_ROWS) {
                    const size_t tile_rows = block_rows - m < BEATS_HALF_TILE_ROWS ? block_rows - m : BEATS_HALF_TILE_ROWS;
                    beats_half_tile_avx2(xp + m * depth, panel, depth, c + (block + m) * c_stride + n, c_stride,
                                         tile_rows, valid, k0 == 0);
                }
            }
        }
    }
}

int beats_half_gemm_avx2(beats_half_format format, const float *x, size_t x_stride, size_t rows, const uint16_t *w,
                         size_t w_stride, size_t columns, float *c, size_t c_stride, size_t n_begin, size_t n_end,
                         void *scratch, size_t scratch_bytes) {
    if (!beats_half_variant_available(BEATS_HALF_AVX2)) return BEATS_ERROR_UNAVAILABLE;
    if (n_begin > n_end) return BEATS_ERROR_INVALID_ARGUMENT;
    if (rows == 0 || n_begin == n_end) return BEATS_OK;
    const int status = beats_half_product_check(format, x, x_stride, w, w_stride, columns, c, c_stride, n_begin, n_end,
                                                scratch, scratch_bytes);
    if (status != BEATS_OK) return status;
    if (columns == 0) {
        beats_half_zero_outputs(c, c_stride, 0, rows, n_begin, n_end);
        return BEATS_OK;
    }
    beats_half_gemm_avx2_body(format, x, x_stride, rows, w, w_stride, columns, c, c_stride, n_begin, n_end,
                              (float *)scratch);
    return BEATS_OK;
}

#else /* not x86-64 */

int beats_half_to_float_rows_avx2(beats_half_format format, const uint16_t *w, size_t w_stride, size_t rows,
                                  size_t columns, float *out, size_t out_stride) {
    (void)format, (void)w, (void)w_stride, (void)rows, (void)columns, (void)out, (void)out_stride;
    return BEATS_ERROR_UNAVAILABLE;
}

int beats_half_gemm_avx2(beats_half_format format, const float *x, size_t x_stride, size_t rows, const uint16_t *w,
                         size_t w_stride, size_t columns, float *c, size_t c_stride, size_t n_begin, size_t n_end,
                         void *scratch, size_t scratch_bytes) {
    (void)format, (void)x, (void)x_stride, (void)rows, (void)w, (void)w_stride, (void)columns, (void)c;
    (void)c_stride, (void)n_begin, (void)n_end, (void)scratch, (void)scratch_bytes;
    return BEATS_ERROR_UNAVAILABLE;
}

#endif

/* ---- Convert a chunk, then sgemm -------------------------------------------------------------- */

enum { BEATS_CBLAS_ROW_MAJOR = 101, BEATS_CBLAS_NO_TRANS = 111, BEATS_CBLAS_TRANS = 112 };

int beats_half_gemm_sgemm(beats_half_variant variant, beats_half_format format, beats_sgemm_function sgemm,
                          const float *x, size_t x_stride, size_t rows,
                          const uint16_t *w, size_t w_stride, size_t columns,
                          float *c, size_t c_stride, size_t n_begin, size_t n_end,
                          void *scratch, size_t scratch_bytes) {
    if (variant != BEATS_HALF_PORTABLE && variant != BEATS_HALF_AVX2) return BEATS_ERROR_INVALID_ARGUMENT;
    if (!beats_half_variant_available(variant)) return BEATS_ERROR_UNAVAILABLE;
    if (n_begin > n_end) return BEATS_ERROR_INVALID_ARGUMENT;
    if (rows == 0 || n_begin == n_end) return BEATS_OK;
    const int status = beats_half_product_check(format, x, x_stride, w, w_stride, columns, c, c_stride, n_begin, n_end,
                                                scratch, scratch_bytes);
    if (status != BEATS_OK) return status;
    if (sgemm == NULL) return BEATS_ERROR_INVALID_ARGUMENT;
    if (rows > INT_MAX || columns > INT_MAX || x_stride > INT_MAX || c_stride > INT_MAX || n_end > INT_MAX) {
        return BEATS_ERROR_INVALID_ARGUMENT;
    }
    if (columns == 0) {
        beats_half_zero_outputs(c, c_stride, 0, rows, n_begin, n_end);
        return BEATS_OK;
    }
    float *chunk_buffer = (float *)scratch;
    const size_t slab_step = beats_half_split_step(columns, BEATS_HALF_SGEMM_SLAB_DEPTH);
    const size_t slab_floats = slab_step < columns ? slab_step : columns;
    const size_t chunk_limit = scratch_bytes / sizeof(float) / slab_floats / 8 * 8; /* ≥ 8: scratch ≥ 1 MiB */
    const size_t chunk_step = beats_half_split_step(n_end - n_begin, chunk_limit);
    for (size_t k0 = 0; k0 < columns; k0 += slab_step) {
        const size_t depth = columns - k0 < slab_step ? columns - k0 : slab_step;
        for (size_t n0 = n_begin; n0 < n_end; n0 += chunk_step) {
            const size_t chunk = n_end - n0 < chunk_step ? n_end - n0 : chunk_step;
            const uint16_t *block = w + n0 * w_stride + k0;
            int converted = 0;
#if BEATS_X86_64
            if (variant == BEATS_HALF_AVX2) {
                beats_half_rows_avx2(format, block, w_stride, chunk, depth, chunk_buffer, depth);
                converted = 1;
            }
#endif
            if (!converted) beats_half_rows_portable(format, block, w_stride, chunk, depth, chunk_buffer, depth);
            sgemm(BEATS_CBLAS_ROW_MAJOR, BEATS_CBLAS_NO_TRANS, BEATS_CBLAS_TRANS, (int)rows, (int)chunk, (int)depth,
                  1.0f, x + k0, (int)x_stride, chunk_buffer, (int)depth, k0 == 0 ? 0.0f : 1.0f, c + n0, (int)c_stride);
        }
    }
    return BEATS_OK;
}
