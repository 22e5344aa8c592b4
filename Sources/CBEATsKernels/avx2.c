/*
 * AVX2 variants.
 *
 * The int8 product uses vpmaddubsw, which multiplies unsigned by signed bytes and adds adjacent
 * pairs into saturating int16. Activations are signed, so each product a·w is computed as
 * |a| · (w·sign(a)) (vpsignb). With |a| ≤ 128 and |w| ≤ 127 a pair sums to at most 2·128·127 =
 * 32512 < 32767: no saturation, the result is exact (this is why weights must not be -128: sign()
 * cannot negate it). vpmaddwd with ones then widens the pairs to int32 (4 products per output lane)
 * and vpaddd accumulates. Offsetting full int8 activations by +128 instead would let a pair reach
 * 2·255·127 = 64770 and saturate; 7-bit activations (|a| ≤ 63) can be offset by +64 (pair ≤ 32258),
 * which drops the sign step — the OFFSET form below, chosen per block of rows.
 *
 * Register tile: 4 activation rows × 16 weight rows (one packed panel = two YMM of 8 outputs × 4 k)
 * → 8 YMM accumulators whose lanes are output columns, so the epilogue is plain vector code.
 * Measured on a Zen 3 core (bench/kernels): ~125 GOPS with full int8 activations, ~160 with 7-bit.
 */
#include "kernels_internal.h"

#include <stdlib.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#if BEATS_X86_64
#include <immintrin.h>

#define BEATS_AVX2_TILE_ROWS 4

/* ---- The epilogue (mirrors beats_epilogue_element) -------------------------------------------- */

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
                                                         size_t from, size_t to) {
    if (from == 0 && to == 8) {
        const __m256 scale = _mm256_mul_ps(_mm256_set1_ps(a_scale), _mm256_loadu_ps(w_scales + column0));
        __m256 y = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), scale);
        if (bias != NULL) y = _mm256_add_ps(y, _mm256_loadu_ps(bias + column0));
        _mm256_storeu_ps(c_row + column0, y);
        return;
    }
    const __m256i mask = _mm256_andnot_si256(beats_lane_mask_avx2(from), beats_lane_mask_avx2(to));
    const __m256 scale =
        _mm256_mul_ps(_mm256_set1_ps(a_scale), _mm256_maskload_ps(w_scales + column0, mask));
    __m256 y = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), scale);
    if (bias != NULL) y = _mm256_add_ps(y, _mm256_maskload_ps(bias + column0, mask));
    _mm256_maskstore_ps(c_row + column0, mask, y);
}

/* ---- The register tile ------------------------------------------------------------------------
 *
 * Activations reach the tile in one of three forms:
 *   SIGNED  a block packed by beats_pack_block_avx2 as |a| then a (each row padded with zeros to
 *           whole quads): |a| · (w·sign(a)) per product;
 *   OFFSET  a block whose |a| are all ≤ 63 (7-bit activations, see beats_quantize_rows), packed as
 *           u = a + 64 ∈ [1, 127]: vpmaddubsw(u, w) cannot saturate (2·127·127 < 32767), no sign step,
 *           and 64·Σ_k W[n][k] is subtracted afterwards — about 25% faster than SIGNED;
 *   DIRECT  the caller's rows as they are (only when K is too large for the scratch block).
 * All three compute the same exact integers.
 */
enum { BEATS_AVX2_DIRECT, BEATS_AVX2_SIGNED, BEATS_AVX2_OFFSET };

#define BEATS_AVX2_OFFSET_VALUE 64
#define BEATS_AVX2_OFFSET_LIMIT 63

BEATS_TARGET_AVX2 static inline __m256i beats_dot_quad_avx2(__m256i activations, __m256i magnitudes,
                                                            __m256i weights, __m256i ones) {
    const __m256i products = _mm256_maddubs_epi16(magnitudes, _mm256_sign_epi8(weights, activations));
    return _mm256_madd_epi16(products, ones);
}

/* acc[r][h] = Σ_k A[row r][k] · W[16p + 8h + lane][k] for `rows` (1…4) in `form`, both constants
 * after inlining. DIRECT: rows at a + r·a_stride; packed forms: rows at a + r·a_stride in the scratch
 * block (a_stride = its row pitch). */
BEATS_TARGET_AVX2 __attribute__((always_inline)) static inline void
beats_tile_avx2(int form, const int8_t *a, size_t a_stride, int rows, const beats_packed_view *view, size_t p,
                __m256i acc[BEATS_AVX2_TILE_ROWS][2]) {
    const int8_t *panel = beats_panel(view, p);
    const __m256i ones = _mm256_set1_epi16(1);
    for (int r = 0; r < rows; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    const size_t quads = form == BEATS_AVX2_DIRECT ? view->full_quads : view->quads;
    for (size_t quad = 0; quad < quads; quad++) {
        const int8_t *weights = panel + quad * BEATS_PANEL_BYTES_PER_QUAD;
        const __m256i w0 = _mm256_load_si256((const __m256i *)(const void *)weights);
        const __m256i w1 = _mm256_load_si256((const __m256i *)(const void *)(weights + 32));
        for (int r = 0; r < rows; r++) {
            const int8_t *row = a + (size_t)r * a_stride;
            int32_t bytes;
            memcpy(&bytes, row + 4 * quad, 4);
            const __m256i first = _mm256_set1_epi32(bytes);
            if (form == BEATS_AVX2_OFFSET) {
                acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(_mm256_maddubs_epi16(first, w0), ones));
                acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(_mm256_maddubs_epi16(first, w1), ones));
            } else {
                __m256i magnitudes, activations;
                if (form == BEATS_AVX2_SIGNED) {
                    int32_t signs;
                    memcpy(&signs, row + view->columns_padded + 4 * quad, 4);
                    magnitudes = first;
                    activations = _mm256_set1_epi32(signs);
                } else {
                    activations = first;
                    magnitudes = _mm256_abs_epi8(first);
                }
                acc[r][0] = _mm256_add_epi32(acc[r][0], beats_dot_quad_avx2(activations, magnitudes, w0, ones));
                acc[r][1] = _mm256_add_epi32(acc[r][1], beats_dot_quad_avx2(activations, magnitudes, w1, ones));
            }
        }
    }
    if (form == BEATS_AVX2_DIRECT && view->tail != 0) {
        const int8_t *weights = panel + view->full_quads * BEATS_PANEL_BYTES_PER_QUAD;
        const __m256i w0 = _mm256_load_si256((const __m256i *)(const void *)weights);
        const __m256i w1 = _mm256_load_si256((const __m256i *)(const void *)(weights + 32));
        for (int r = 0; r < rows; r++) {
            const __m256i activations =
                _mm256_set1_epi32(beats_activation_quad(a + (size_t)r * a_stride, view->full_quads, view->columns));
            const __m256i magnitudes = _mm256_abs_epi8(activations);
            acc[r][0] = _mm256_add_epi32(acc[r][0], beats_dot_quad_avx2(activations, magnitudes, w0, ones));
            acc[r][1] = _mm256_add_epi32(acc[r][1], beats_dot_quad_avx2(activations, magnitudes, w1, ones));
        }
    }
    if (form == BEATS_AVX2_OFFSET) {
        for (int h = 0; h < 2; h++) {
            const __m256i sums = _mm256_loadu_si256((const __m256i *)(const void *)(view->row_sums + 16 * p + 8 * (size_t)h));
            const __m256i correction = _mm256_slli_epi32(sums, 6); /* 64·Σw */
            for (int r = 0; r < rows; r++) acc[r][h] = _mm256_sub_epi32(acc[r][h], correction);
        }
    }
}

typedef struct beats_avx2_job {
    const float *a_scales;
    const beats_packed_view *view;
    const float *w_scales;
    const float *bias;
    float *c;
    size_t c_stride;
    size_t n_begin, n_end;
} beats_avx2_job;

/* One tile: rows m … m+rows-1 (a: their activations in `form`) × panel p, then the epilogue. */
BEATS_TARGET_AVX2 __attribute__((always_inline)) static inline void
beats_tile_and_store_avx2(const beats_avx2_job *job, int form, const int8_t *a, size_t a_stride, int rows, size_t m,
                          size_t p) {
    __m256i acc[BEATS_AVX2_TILE_ROWS][2];
    beats_tile_avx2(form, a, a_stride, rows, job->view, p, acc);
    const size_t column0 = p * BEATS_PANEL_COLUMNS;
    const size_t from = job->n_begin > column0 ? job->n_begin - column0 : 0;
    const size_t to = job->n_end < column0 + BEATS_PANEL_COLUMNS ? job->n_end - column0 : BEATS_PANEL_COLUMNS;
    for (int r = 0; r < rows; r++) {
        float *c_row = job->c + (m + (size_t)r) * job->c_stride;
        for (size_t h = 0; h < 2; h++) {
            const size_t lo = 8 * h, hi = 8 * h + 8;
            const size_t lane_from = from > lo ? from - lo : 0;
            const size_t lane_to = to < hi ? (to > lo ? to - lo : 0) : 8;
            if (lane_from < lane_to) {
                beats_epilogue_avx2(acc[r][h], job->a_scales[m + (size_t)r], job->w_scales, job->bias, c_row,
                                    column0 + lo, lane_from, lane_to);
            }
        }
    }
}

/* Every panel of the column range over rows [m, block_end) whose activations are in `form`
 * (a: row m's, a_stride: the row pitch). Panels outside, tiles inside: each panel (16 × K bytes) is
 * reused by all the block's tiles while it sits in L1/L2. */
BEATS_TARGET_AVX2 __attribute__((always_inline)) static inline void
beats_block_avx2(const beats_avx2_job *job, int form, const int8_t *a, size_t a_stride, size_t m, size_t block_end) {
    const size_t first_panel = job->n_begin / BEATS_PANEL_COLUMNS;
    const size_t end_panel = (job->n_end + BEATS_PANEL_COLUMNS - 1) / BEATS_PANEL_COLUMNS;
    for (size_t p = first_panel; p < end_panel; p++) {
        size_t row = m;
        const int8_t *rows = a;
        for (; row + BEATS_AVX2_TILE_ROWS <= block_end; row += BEATS_AVX2_TILE_ROWS, rows += BEATS_AVX2_TILE_ROWS * a_stride) {
            beats_tile_and_store_avx2(job, form, rows, a_stride, 4, row, p);
        }
        switch (block_end - row) {
        case 3: beats_tile_and_store_avx2(job, form, rows, a_stride, 3, row, p); break;
        case 2: beats_tile_and_store_avx2(job, form, rows, a_stride, 2, row, p); break;
        case 1: beats_tile_and_store_avx2(job, form, rows, a_stride, 1, row, p); break;
        default: break;
        }
    }
}

/* Copies `rows` activation rows into the scratch block in the OFFSET form when every |a| ≤ 63, else
 * in the SIGNED form; returns the form. Row pitch: columns_padded (OFFSET) or 2·columns_padded. */
BEATS_TARGET_AVX2 static int beats_pack_block_avx2(const int8_t *a, size_t a_stride, size_t rows,
                                                   const beats_packed_view *view, int8_t *block) {
    const size_t columns = view->columns, padded = view->columns_padded;
    __m256i largest = _mm256_setzero_si256();
    int scalar_largest = 0;
    for (size_t r = 0; r < rows; r++) {
        const int8_t *row = a + r * a_stride;
        size_t k = 0;
        for (; k + 32 <= columns; k += 32) {
            largest = _mm256_max_epu8(largest, _mm256_abs_epi8(_mm256_loadu_si256((const __m256i *)(const void *)(row + k))));
        }
        for (; k < columns; k++) scalar_largest = abs(row[k]) > scalar_largest ? abs(row[k]) : scalar_largest;
    }
    /* Any byte above 63 in `largest`? (unsigned max, so |-128| = 128 counts too.) */
    const __m256i above = _mm256_cmpeq_epi8(_mm256_min_epu8(largest, _mm256_set1_epi8(BEATS_AVX2_OFFSET_LIMIT)), largest);
    const int offset = _mm256_movemask_epi8(above) == -1 && scalar_largest <= BEATS_AVX2_OFFSET_LIMIT;

    for (size_t r = 0; r < rows; r++) {
        const int8_t *row = a + r * a_stride;
        if (offset) {
            int8_t *out = block + r * padded;
            const __m256i shift = _mm256_set1_epi8(BEATS_AVX2_OFFSET_VALUE);
            size_t k = 0;
            for (; k + 32 <= columns; k += 32) {
                const __m256i values = _mm256_loadu_si256((const __m256i *)(const void *)(row + k));
                _mm256_storeu_si256((__m256i *)(void *)(out + k), _mm256_add_epi8(values, shift));
            }
            for (; k < columns; k++) out[k] = (int8_t)(row[k] + BEATS_AVX2_OFFSET_VALUE);
            for (; k < padded; k++) out[k] = BEATS_AVX2_OFFSET_VALUE; /* a = 0 against zero weights */
        } else {
            int8_t *magnitudes = block + r * 2 * padded, *signs = magnitudes + padded;
            size_t k = 0;
            for (; k + 32 <= columns; k += 32) {
                const __m256i values = _mm256_loadu_si256((const __m256i *)(const void *)(row + k));
                _mm256_storeu_si256((__m256i *)(void *)(magnitudes + k), _mm256_abs_epi8(values));
                _mm256_storeu_si256((__m256i *)(void *)(signs + k), values);
            }
            for (; k < columns; k++) {
                magnitudes[k] = (int8_t)abs(row[k]);
                signs[k] = row[k];
            }
            for (; k < padded; k++) magnitudes[k] = signs[k] = 0;
        }
    }
    return offset ? BEATS_AVX2_OFFSET : BEATS_AVX2_SIGNED;
}

BEATS_TARGET_AVX2 static void beats_gemm_s8_avx2_body(const beats_avx2_job *job, const int8_t *a, size_t a_stride,
                                                      size_t m_begin, size_t m_end) {
    const size_t padded = job->view->columns_padded;
    /* Rows per block: as many as fit the scratch in the SIGNED form (2 bytes per activation). */
    size_t block_rows = BEATS_SCRATCH_BYTES / (2 * padded) / BEATS_AVX2_TILE_ROWS * BEATS_AVX2_TILE_ROWS;
    if (block_rows > 256) block_rows = 256;
    int8_t *scratch = block_rows >= BEATS_AVX2_TILE_ROWS ? beats_thread_scratch() : NULL;
    if (scratch == NULL) {
        /* K too large for the scratch (or no memory): read the rows in place, 64 at a time. */
        for (size_t block = m_begin; block < m_end; block += 64) {
            const size_t block_end = m_end - block < 64 ? m_end : block + 64;
            beats_block_avx2(job, BEATS_AVX2_DIRECT, a + block * a_stride, a_stride, block, block_end);
        }
        return;
    }
    for (size_t block = m_begin; block < m_end; block += block_rows) {
        const size_t block_end = m_end - block < block_rows ? m_end : block + block_rows;
        const int form = beats_pack_block_avx2(a + block * a_stride, a_stride, block_end - block, job->view, scratch);
        if (form == BEATS_AVX2_OFFSET) {
            beats_block_avx2(job, BEATS_AVX2_OFFSET, scratch, padded, block, block_end);
        } else {
            beats_block_avx2(job, BEATS_AVX2_SIGNED, scratch, 2 * padded, block, block_end);
        }
    }
}

int beats_gemm_s8_avx2(const int8_t *a, size_t a_stride, const float *a_scales, const void *packed_w,
                       const float *w_scales, const float *bias, float *c, size_t c_stride, size_t m_begin,
                       size_t m_end, size_t n_begin, size_t n_end) {
    if (!beats_kernel_available(BEATS_KERNEL_AVX2)) return BEATS_ERROR_UNAVAILABLE;
    beats_packed_view view;
    int status = beats_gemm_check(a, a_stride, a_scales, packed_w, w_scales, c, c_stride, m_begin, m_end,
                                  n_begin, n_end, &view);
    if (status != BEATS_OK || m_begin == m_end || n_begin == n_end) return status;
    const beats_avx2_job job = {a_scales, &view, w_scales, bias, c, c_stride, n_begin, n_end};
    beats_gemm_s8_avx2_body(&job, a, a_stride, m_begin, m_end);
    return BEATS_OK;
}

/* ---- Activation quantization ------------------------------------------------------------------ */

BEATS_TARGET_AVX2 static void beats_quantize_row_avx2(const float *row, size_t columns, float level, int8_t *out,
                                                      float *scale_out) {
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
    const float scale = beats_row_scale(max_abs_bits, level);
    *scale_out = scale;
    if (scale == 0.0f) {
        memset(out, 0, columns);
        return;
    }

    const __m256 scales = _mm256_set1_ps(scale);
    const __m256 low = _mm256_set1_ps(-level), high = _mm256_set1_ps(level);
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
    for (; k < columns; k++) out[k] = beats_quantize_element(row[k], scale, level);
}

int beats_quantize_rows_avx2(const float *x, size_t x_stride, size_t rows, size_t columns, int max_level, int8_t *q,
                             size_t q_stride, float *scales) {
    if (!beats_kernel_available(BEATS_KERNEL_AVX2)) return BEATS_ERROR_UNAVAILABLE;
    int status = beats_quantize_check(x, x_stride, columns, max_level, q, q_stride, scales, rows);
    if (status != BEATS_OK || rows == 0 || columns == 0) return status;
    for (size_t r = 0; r < rows; r++) {
        beats_quantize_row_avx2(x + r * x_stride, columns, (float)max_level, q + r * q_stride, &scales[r]);
    }
    return BEATS_OK;
}

#else /* not x86-64: the AVX2 variants are unavailable */

int beats_gemm_s8_avx2(const int8_t *a, size_t a_stride, const float *a_scales, const void *packed_w,
                       const float *w_scales, const float *bias, float *c, size_t c_stride, size_t m_begin,
                       size_t m_end, size_t n_begin, size_t n_end) {
    (void)a, (void)a_stride, (void)a_scales, (void)packed_w, (void)w_scales, (void)bias, (void)c, (void)c_stride;
    (void)m_begin, (void)m_end, (void)n_begin, (void)n_end;
    return BEATS_ERROR_UNAVAILABLE;
}

int beats_quantize_rows_avx2(const float *x, size_t x_stride, size_t rows, size_t columns, int max_level, int8_t *q,
                             size_t q_stride, float *scales) {
    (void)x, (void)x_stride, (void)rows, (void)columns, (void)max_level, (void)q, (void)q_stride, (void)scales;
    return BEATS_ERROR_UNAVAILABLE;
}

#endif
