/*
 * AVX2 variants.
 *
 * The int8 product uses vpmaddubsw, which multiplies unsigned by signed bytes and adds adjacent
 * pairs into saturating int16. Activations are signed, so each product a·w is computed as
 * |a| · (w·sign(a)) (vpabsb, vpsignb). With both operands in [-127, 127] a pair sums to at most
 * 2·127·127 = 32258 < 32767: no saturation, the result is exact. vpmaddwd with ones then widens
 * the pairs to int32 (4 products per output lane) and vpaddd accumulates.
 * (Offsetting activations by +128 instead would let a pair reach 2·255·127 = 64770 and saturate.)
 *
 * Register tile: 4 activation rows × 16 weight rows (one packed panel = two YMM of 8 outputs × 4 k)
 * → 8 YMM accumulators whose lanes are output columns, so the epilogue is plain vector code.
 */
#include "kernels_internal.h"

#pragma STDC FP_CONTRACT OFF

#if BEATS_X86_64
#include <immintrin.h>

#define BEATS_AVX2_TILE_ROWS 4

/* ---- GELU and the epilogue (mirror beats_gelu_element / beats_epilogue_element) -------------- */

BEATS_TARGET_AVX2 static inline __m256 beats_gelu_avx2(__m256 x) {
    const __m256 limit = _mm256_set1_ps(BEATS_ERF_LIMIT);
    const __m256 negative_limit = _mm256_set1_ps(-BEATS_ERF_LIMIT);
    const __m256 z = _mm256_mul_ps(x, _mm256_set1_ps(BEATS_FRAC_1_SQRT2));
    __m256 zc = _mm256_max_ps(z, negative_limit);
    zc = _mm256_min_ps(zc, limit);
    const __m256 t = _mm256_mul_ps(zc, zc);
    __m256 p = _mm256_set1_ps(BEATS_ERF_P5);
    p = _mm256_add_ps(_mm256_mul_ps(p, t), _mm256_set1_ps(BEATS_ERF_P4));
    p = _mm256_add_ps(_mm256_mul_ps(p, t), _mm256_set1_ps(BEATS_ERF_P3));
    p = _mm256_add_ps(_mm256_mul_ps(p, t), _mm256_set1_ps(BEATS_ERF_P2));
    p = _mm256_add_ps(_mm256_mul_ps(p, t), _mm256_set1_ps(BEATS_ERF_P1));
    p = _mm256_add_ps(_mm256_mul_ps(p, t), _mm256_set1_ps(BEATS_ERF_P0));
    __m256 q = _mm256_set1_ps(BEATS_ERF_Q5);
    q = _mm256_add_ps(_mm256_mul_ps(q, t), _mm256_set1_ps(BEATS_ERF_Q4));
    q = _mm256_add_ps(_mm256_mul_ps(q, t), _mm256_set1_ps(BEATS_ERF_Q3));
    q = _mm256_add_ps(_mm256_mul_ps(q, t), _mm256_set1_ps(BEATS_ERF_Q2));
    q = _mm256_add_ps(_mm256_mul_ps(q, t), _mm256_set1_ps(BEATS_ERF_Q1));
    q = _mm256_add_ps(_mm256_mul_ps(q, t), _mm256_set1_ps(1.0f));
    __m256 e = _mm256_mul_ps(zc, _mm256_div_ps(p, q));
    e = _mm256_blendv_ps(e, _mm256_set1_ps(1.0f), _mm256_cmp_ps(zc, limit, _CMP_GE_OQ));
    e = _mm256_blendv_ps(e, _mm256_set1_ps(-1.0f), _mm256_cmp_ps(zc, negative_limit, _CMP_LE_OQ));
    const __m256 half = _mm256_mul_ps(_mm256_set1_ps(0.5f), x);
    return _mm256_mul_ps(half, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

/* Lane mask for the first `count` (0…8) lanes. */
BEATS_TARGET_AVX2 static inline __m256i beats_lane_mask_avx2(size_t count) {
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)count), lanes);
}

/* Writes lanes [from, to) (0 ≤ from < to ≤ 8) of one accumulator vector for output row m, columns
 * column0 + lane. Full vectors use plain loads and stores; partial ones mask every load and store so
 * nothing outside [from, to) is touched. */
BEATS_TARGET_AVX2 static inline void beats_epilogue_avx2(__m256i acc, float a_scale, const float *w_scales,
                                                         const float *bias, float *c_row, size_t column0,
                                                         size_t from, size_t to, uint32_t flags) {
    if (from == 0 && to == 8) {
        const __m256 scale = _mm256_mul_ps(_mm256_set1_ps(a_scale), _mm256_loadu_ps(w_scales + column0));
        __m256 y = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), scale);
        if (bias != NULL) y = _mm256_add_ps(y, _mm256_loadu_ps(bias + column0));
        if (flags & BEATS_GEMM_GELU) y = beats_gelu_avx2(y);
        if (flags & BEATS_GEMM_ACCUMULATE) y = _mm256_add_ps(_mm256_loadu_ps(c_row + column0), y);
        _mm256_storeu_ps(c_row + column0, y);
        return;
    }
    const __m256i mask = _mm256_andnot_si256(beats_lane_mask_avx2(from), beats_lane_mask_avx2(to));
    const __m256 scale =
        _mm256_mul_ps(_mm256_set1_ps(a_scale), _mm256_maskload_ps(w_scales + column0, mask));
    __m256 y = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), scale);
    if (bias != NULL) y = _mm256_add_ps(y, _mm256_maskload_ps(bias + column0, mask));
    if (flags & BEATS_GEMM_GELU) y = beats_gelu_avx2(y);
    if (flags & BEATS_GEMM_ACCUMULATE) y = _mm256_add_ps(_mm256_maskload_ps(c_row + column0, mask), y);
    _mm256_maskstore_ps(c_row + column0, mask, y);
}

/* ---- The register tile ------------------------------------------------------------------------ */

BEATS_TARGET_AVX2 static inline __m256i beats_dot_quad_avx2(__m256i activations, __m256i magnitudes,
                                                            __m256i weights, __m256i ones) {
    const __m256i products = _mm256_maddubs_epi16(magnitudes, _mm256_sign_epi8(weights, activations));
    return _mm256_madd_epi16(products, ones);
}

/* acc[r][h] += Σ_k A[row r][k] · W[16p + 8h + lane][k], for `rows` (1…4, a constant after inlining). */
BEATS_TARGET_AVX2 __attribute__((always_inline)) static inline void
beats_tile_avx2(const int8_t *a, size_t a_stride, int rows, const int8_t *panel, const beats_packed_view *view,
                __m256i acc[BEATS_AVX2_TILE_ROWS][2]) {
    const __m256i ones = _mm256_set1_epi16(1);
    for (int r = 0; r < rows; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    for (size_t quad = 0; quad < view->full_quads; quad++) {
        const __m256i w0 = _mm256_load_si256((const __m256i *)(const void *)(panel + quad * BEATS_PANEL_BYTES_PER_QUAD));
        const __m256i w1 = _mm256_load_si256((const __m256i *)(const void *)(panel + quad * BEATS_PANEL_BYTES_PER_QUAD + 32));
        for (int r = 0; r < rows; r++) {
            int32_t bytes;
            memcpy(&bytes, a + (size_t)r * a_stride + 4 * quad, 4);
            const __m256i activations = _mm256_set1_epi32(bytes);
            const __m256i magnitudes = _mm256_abs_epi8(activations);
            acc[r][0] = _mm256_add_epi32(acc[r][0], beats_dot_quad_avx2(activations, magnitudes, w0, ones));
            acc[r][1] = _mm256_add_epi32(acc[r][1], beats_dot_quad_avx2(activations, magnitudes, w1, ones));
        }
    }
    if (view->tail != 0) {
        const size_t quad = view->full_quads;
        const __m256i w0 = _mm256_load_si256((const __m256i *)(const void *)(panel + quad * BEATS_PANEL_BYTES_PER_QUAD));
        const __m256i w1 = _mm256_load_si256((const __m256i *)(const void *)(panel + quad * BEATS_PANEL_BYTES_PER_QUAD + 32));
        for (int r = 0; r < rows; r++) {
            const __m256i activations = _mm256_set1_epi32(beats_activation_quad(a + (size_t)r * a_stride, quad, view->columns));
            const __m256i magnitudes = _mm256_abs_epi8(activations);
            acc[r][0] = _mm256_add_epi32(acc[r][0], beats_dot_quad_avx2(activations, magnitudes, w0, ones));
            acc[r][1] = _mm256_add_epi32(acc[r][1], beats_dot_quad_avx2(activations, magnitudes, w1, ones));
        }
    }
}

BEATS_TARGET_AVX2 __attribute__((always_inline)) static inline void
beats_tile_and_store_avx2(const int8_t *a, size_t a_stride, const float *a_scales, int rows, size_t m,
                          const int8_t *panel, const beats_packed_view *view, const float *w_scales,
                          const float *bias, float *c, size_t c_stride, size_t column0, size_t from, size_t to,
                          uint32_t flags) {
    __m256i acc[BEATS_AVX2_TILE_ROWS][2];
    beats_tile_avx2(a + m * a_stride, a_stride, rows, panel, view, acc);
    for (int r = 0; r < rows; r++) {
        float *c_row = c + (m + (size_t)r) * c_stride;
        for (size_t h = 0; h < 2; h++) {
            const size_t lo = 8 * h, hi = 8 * h + 8;
            const size_t lane_from = from > lo ? from - lo : 0;
            const size_t lane_to = to < hi ? (to > lo ? to - lo : 0) : 8;
            if (lane_from < lane_to) {
                beats_epilogue_avx2(acc[r][h], a_scales[m + (size_t)r], w_scales, bias, c_row, column0 + lo,
                                    lane_from, lane_to, flags);
            }
        }
    }
}

/* Activation rows per cache block: the block (rows × K bytes) stays in L2 while every panel of the
 * column range streams past it; each panel (16 × K bytes) is reused by all the block's tiles. */
static size_t beats_block_rows(size_t columns) {
    size_t rows = (size_t)(128 * 1024) / (columns == 0 ? 1 : columns);
    rows = rows / BEATS_AVX2_TILE_ROWS * BEATS_AVX2_TILE_ROWS;
    if (rows < BEATS_AVX2_TILE_ROWS) rows = BEATS_AVX2_TILE_ROWS;
    if (rows > 256) rows = 256;
    return rows;
}

BEATS_TARGET_AVX2 static void beats_gemm_s8_avx2_body(const int8_t *a, size_t a_stride, const float *a_scales,
                                                      const beats_packed_view *view, const float *w_scales,
                                                      const float *bias, float *c, size_t c_stride, size_t m_begin,
                                                      size_t m_end, size_t n_begin, size_t n_end, uint32_t flags) {
    const size_t block_rows = beats_block_rows(view->columns_padded);
    const size_t first_panel = n_begin / BEATS_PANEL_COLUMNS;
    const size_t end_panel = (n_end + BEATS_PANEL_COLUMNS - 1) / BEATS_PANEL_COLUMNS;
    for (size_t block = m_begin; block < m_end; block += block_rows) {
        const size_t block_end = m_end - block < block_rows ? m_end : block + block_rows;
        for (size_t p = first_panel; p < end_panel; p++) {
            const int8_t *panel = beats_panel(view, p);
            const size_t column0 = p * BEATS_PANEL_COLUMNS;
            const size_t from = n_begin > column0 ? n_begin - column0 : 0;
            const size_t to = n_end < column0 + BEATS_PANEL_COLUMNS ? n_end - column0 : BEATS_PANEL_COLUMNS;
            size_t m = block;
            for (; m + BEATS_AVX2_TILE_ROWS <= block_end; m += BEATS_AVX2_TILE_ROWS) {
                beats_tile_and_store_avx2(a, a_stride, a_scales, 4, m, panel, view, w_scales, bias, c, c_stride,
                                          column0, from, to, flags);
            }
            switch (block_end - m) {
            case 3:
                beats_tile_and_store_avx2(a, a_stride, a_scales, 3, m, panel, view, w_scales, bias, c, c_stride,
                                          column0, from, to, flags);
                break;
            case 2:
                beats_tile_and_store_avx2(a, a_stride, a_scales, 2, m, panel, view, w_scales, bias, c, c_stride,
                                          column0, from, to, flags);
                break;
            case 1:
                beats_tile_and_store_avx2(a, a_stride, a_scales, 1, m, panel, view, w_scales, bias, c, c_stride,
                                          column0, from, to, flags);
                break;
            default:
                break;
            }
        }
    }
}

int beats_gemm_s8_avx2(const int8_t *a, size_t a_stride, const float *a_scales, const void *packed_w,
                       const float *w_scales, const float *bias, float *c, size_t c_stride, size_t m_begin,
                       size_t m_end, size_t n_begin, size_t n_end, uint32_t flags) {
    if (!beats_cpu_can_run(BEATS_KERNEL_AVX2)) return BEATS_ERROR_UNAVAILABLE;
    beats_packed_view view;
    int status = beats_gemm_check(a, a_stride, a_scales, packed_w, w_scales, c, c_stride, m_begin, m_end,
                                  n_begin, n_end, flags, &view);
    if (status != BEATS_OK || m_begin == m_end || n_begin == n_end) return status;
    beats_gemm_s8_avx2_body(a, a_stride, a_scales, &view, w_scales, bias, c, c_stride, m_begin, m_end, n_begin,
                            n_end, flags);
    return BEATS_OK;
}

/* ---- Activation quantization ------------------------------------------------------------------ */

BEATS_TARGET_AVX2 static void beats_quantize_row_avx2(const float *row, size_t columns, int8_t *out, float *scale_out) {
    const __m256i magnitude_mask = _mm256_set1_epi32(0x7fffffff);
    __m256i max_bits = _mm256_setzero_si256();
    size_t k = 0;
    for (; k + 8 <= columns; k += 8) {
        const __m256i bits = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(const void *)(row + k)), magnitude_mask);
        max_bits = _mm256_max_epi32(max_bits, bits);
    }
    int32_t lanes[8];
    _mm256_storeu_si256((__m256i *)(void *)lanes, max_bits);
    int32_t max_abs_bits = 0;
    for (int i = 0; i < 8; i++) max_abs_bits = lanes[i] > max_abs_bits ? lanes[i] : max_abs_bits;
    for (; k < columns; k++) {
        const int32_t bits = beats_abs_bits(row[k]);
        max_abs_bits = bits > max_abs_bits ? bits : max_abs_bits;
    }
    const float scale = beats_row_scale(max_abs_bits);
    *scale_out = scale;
    if (scale == 0.0f) {
        memset(out, 0, columns);
        return;
    }

    const __m256 scales = _mm256_set1_ps(scale);
    const __m256 low = _mm256_set1_ps(-127.0f), high = _mm256_set1_ps(127.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    k = 0;
    for (; k + 32 <= columns; k += 32) {
        __m256i integers[4];
        for (int v = 0; v < 4; v++) {
            __m256 r = _mm256_div_ps(_mm256_loadu_ps(row + k + 8 * (size_t)v), scales);
            r = _mm256_and_ps(r, _mm256_cmp_ps(r, r, _CMP_ORD_Q)); /* NaN → +0 */
            r = _mm256_min_ps(_mm256_max_ps(r, low), high);
            integers[v] = _mm256_cvtps_epi32(r);
        }
        const __m256i words = _mm256_packs_epi32(integers[0], integers[1]);
        const __m256i words_high = _mm256_packs_epi32(integers[2], integers[3]);
        const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(words, words_high), order);
        _mm256_storeu_si256((__m256i *)(void *)(out + k), bytes);
    }
    for (; k < columns; k++) out[k] = beats_quantize_element(row[k], scale);
}

int beats_quantize_rows_avx2(const float *x, size_t x_stride, size_t rows, size_t columns, int8_t *q,
                             size_t q_stride, float *scales) {
    if (!beats_cpu_can_run(BEATS_KERNEL_AVX2)) return BEATS_ERROR_UNAVAILABLE;
    int status = beats_quantize_check(x, x_stride, columns, q, q_stride, scales, rows);
    if (status != BEATS_OK || rows == 0 || columns == 0) return status;
    for (size_t r = 0; r < rows; r++) beats_quantize_row_avx2(x + r * x_stride, columns, q + r * q_stride, &scales[r]);
    return BEATS_OK;
}

/* ---- GELU ------------------------------------------------------------------------------------- */

BEATS_TARGET_AVX2 static void beats_gelu_avx2_body(float *x, size_t count) {
    size_t i = 0;
    for (; i + 8 <= count; i += 8) _mm256_storeu_ps(x + i, beats_gelu_avx2(_mm256_loadu_ps(x + i)));
    for (; i < count; i++) x[i] = beats_gelu_element(x[i]);
}

int beats_gelu_f32_avx2(float *x, size_t count) {
    if (!beats_cpu_can_run(BEATS_KERNEL_AVX2)) return BEATS_ERROR_UNAVAILABLE;
    if (x == NULL) return count == 0 ? BEATS_OK : BEATS_ERROR_INVALID_ARGUMENT;
    beats_gelu_avx2_body(x, count);
    return BEATS_OK;
}

#else /* not x86-64: the AVX2 variants are unavailable */

int beats_gemm_s8_avx2(const int8_t *a, size_t a_stride, const float *a_scales, const void *packed_w,
                       const float *w_scales, const float *bias, float *c, size_t c_stride, size_t m_begin,
                       size_t m_end, size_t n_begin, size_t n_end, uint32_t flags) {
    (void)a, (void)a_stride, (void)a_scales, (void)packed_w, (void)w_scales, (void)bias, (void)c, (void)c_stride;
    (void)m_begin, (void)m_end, (void)n_begin, (void)n_end, (void)flags;
    return BEATS_ERROR_UNAVAILABLE;
}

int beats_quantize_rows_avx2(const float *x, size_t x_stride, size_t rows, size_t columns, int8_t *q,
                             size_t q_stride, float *scales) {
    (void)x, (void)x_stride, (void)rows, (void)columns, (void)q, (void)q_stride, (void)scales;
    return BEATS_ERROR_UNAVAILABLE;
}

int beats_gelu_f32_avx2(float *x, size_t count) {
    (void)x, (void)count;
    return BEATS_ERROR_UNAVAILABLE;
}

#endif
