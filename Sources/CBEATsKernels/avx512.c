/*
 * AVX-512 VNNI variants.
 *
 * vpdpbusd multiplies unsigned by signed bytes and adds groups of four products into int32 lanes
 * without intermediate saturation. Activations are signed, so the kernel feeds a + 128 (a XOR 0x80,
 * in [1, 255]) and removes the offset afterwards: Σ (a+128)·w = Σ a·w + 128·Σ w, where Σ_k W[n][k]
 * is precomputed per weight row by beats_pack_weights. |Σ (a+128)·w| ≤ 255·127·65536 < 2^31.
 *
 * Register tile: 8 activation rows × 32 weight rows (two packed panels, one ZMM = 16 outputs × 4 k
 * each) → 16 ZMM accumulators whose lanes are output columns. A block of activation rows is first
 * copied to the thread's scratch as a + 128, so the inner loop is broadcast + vpdpbusd only.
 *
 * This file is compiled on every x86-64 build, but runs only where cpuid reports AVX-512F/BW/VNNI
 * and the OS saves ZMM state. bench/kernels/emulated_vnni_check.sh runs it through SIMDe's portable
 * implementation of the same intrinsics on machines without AVX-512.
 */
#include "kernels_internal.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#if BEATS_X86_64
#ifdef BEATS_EMULATE_AVX512
#include "beats_avx512_emulation.h" /* bench/kernels: SIMDe plus the few intrinsics it lacks */
#else
#include <immintrin.h>
#endif

#define BEATS_VNNI_TILE_ROWS 8

/* ---- The epilogue (mirrors beats_epilogue_element) -------------------------------------------- */

/* Writes lanes [from, to) (0 ≤ from < to ≤ 16) of one accumulator for output row c_row, columns
 * column0 + lane; partial vectors mask every load and store. */
BEATS_TARGET_AVX512 static inline void beats_epilogue_avx512(__m512i acc, float a_scale, const float *w_scales,
                                                             const float *bias, float *c_row, size_t column0,
                                                             size_t from, size_t to) {
    const __mmask16 mask = (__mmask16)((((uint32_t)1 << to) - 1) & ~(((uint32_t)1 << from) - 1));
    const __m512 scale = _mm512_mul_ps(_mm512_set1_ps(a_scale), _mm512_maskz_loadu_ps(mask, w_scales + column0));
    __m512 y = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), scale);
    if (bias != NULL) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(mask, bias + column0));
    _mm512_mask_storeu_ps(c_row + column0, mask, y);
}

/* ---- The register tile ------------------------------------------------------------------------
 *
 * Activations reach the tile either PACKED — a block of rows copied once into the thread's scratch as
 * u = a XOR 0x80 = a + 128, padded with 0x80 (a = 0) to whole quads — or DIRECT from the caller's rows
 * (only when K is too large for the scratch), converted per broadcast.
 */
enum { BEATS_AVX512_DIRECT, BEATS_AVX512_PACKED };

/* acc[r][h] = Σ_k A[row r][k] · W[16(p+h) + lane][k] for `rows` (1…8) and `panels` (1 or 2), all
 * constants after inlining. */
BEATS_TARGET_AVX512 __attribute__((always_inline)) static inline void
beats_tile_avx512(int form, const int8_t *a, size_t a_stride, int rows, int panels, const beats_packed_view *view,
                  size_t p, __m512i acc[BEATS_VNNI_TILE_ROWS][2]) {
    const int8_t *panel0 = beats_panel(view, p);
    const int8_t *panel1 = panels == 2 ? beats_panel(view, p + 1) : panel0;
    const __m512i offset = _mm512_set1_epi32((int32_t)0x80808080u);
    for (int r = 0; r < rows; r++) acc[r][0] = acc[r][1] = _mm512_setzero_si512();
    for (size_t quad = 0; quad < view->quads; quad++) {
        const __m512i w0 = _mm512_load_si512((const void *)(panel0 + quad * BEATS_PANEL_BYTES_PER_QUAD));
        const __m512i w1 = _mm512_load_si512((const void *)(panel1 + quad * BEATS_PANEL_BYTES_PER_QUAD));
        for (int r = 0; r < rows; r++) {
            const int8_t *row = a + (size_t)r * a_stride;
            __m512i activations;
            if (form == BEATS_AVX512_PACKED) {
                int32_t bytes;
                memcpy(&bytes, row + 4 * quad, 4);
                activations = _mm512_set1_epi32(bytes);
            } else {
                int32_t bytes;
                if (quad < view->full_quads) {
                    memcpy(&bytes, row + 4 * quad, 4);
                } else {
                    bytes = beats_activation_quad(row, quad, view->columns);
                }
                activations = _mm512_xor_si512(_mm512_set1_epi32(bytes), offset);
            }
            acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], activations, w0);
            if (panels == 2) acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], activations, w1);
        }
    }
    for (int h = 0; h < panels; h++) {
        const __m512i sums = _mm512_loadu_si512((const void *)(view->row_sums + 16 * (p + (size_t)h)));
        const __m512i correction = _mm512_slli_epi32(sums, 7); /* 128·Σw */
        for (int r = 0; r < rows; r++) acc[r][h] = _mm512_sub_epi32(acc[r][h], correction);
    }
}

typedef struct beats_avx512_job {
    const float *a_scales;
    const beats_packed_view *view;
    const float *w_scales;
    const float *bias;
    float *c;
    size_t c_stride;
    size_t n_begin, n_end;
} beats_avx512_job;

BEATS_TARGET_AVX512 __attribute__((always_inline)) static inline void
beats_tile_and_store_avx512(const beats_avx512_job *job, int form, const int8_t *a, size_t a_stride, int rows,
                            int panels, size_t m, size_t p) {
    __m512i acc[BEATS_VNNI_TILE_ROWS][2];
    beats_tile_avx512(form, a, a_stride, rows, panels, job->view, p, acc);
    for (int h = 0; h < panels; h++) {
        const size_t column0 = (p + (size_t)h) * BEATS_PANEL_COLUMNS;
        const size_t from = job->n_begin > column0 ? job->n_begin - column0 : 0;
        const size_t to = job->n_end < column0 + BEATS_PANEL_COLUMNS ? job->n_end - column0 : BEATS_PANEL_COLUMNS;
        if (from >= to) continue;
        for (int r = 0; r < rows; r++) {
            const size_t row = m + (size_t)r;
            beats_epilogue_avx512(acc[r][h], job->a_scales[row], job->w_scales, job->bias, job->c + row * job->c_stride,
                                  column0, from, to);
        }
    }
}

#define BEATS_AVX512_ROWS_CASE(count)                                                                        \
    case count:                                                                                              \
        if (panels == 2) beats_tile_and_store_avx512(job, form, a, a_stride, count, 2, m, p);                \
        else beats_tile_and_store_avx512(job, form, a, a_stride, count, 1, m, p);                            \
        break;

BEATS_TARGET_AVX512 __attribute__((always_inline)) static inline void
beats_tile_rows_avx512(const beats_avx512_job *job, int form, const int8_t *a, size_t a_stride, size_t rows,
                       int panels, size_t m, size_t p) {
    switch (rows) {
        BEATS_AVX512_ROWS_CASE(8)
        BEATS_AVX512_ROWS_CASE(7)
        BEATS_AVX512_ROWS_CASE(6)
        BEATS_AVX512_ROWS_CASE(5)
        BEATS_AVX512_ROWS_CASE(4)
        BEATS_AVX512_ROWS_CASE(3)
        BEATS_AVX512_ROWS_CASE(2)
        BEATS_AVX512_ROWS_CASE(1)
    default:
        break;
    }
}

/* Every panel pair of the column range over rows [m, block_end) (a: row m's activations in `form`). */
BEATS_TARGET_AVX512 __attribute__((noinline)) static void
beats_block_avx512(const beats_avx512_job *job, int form, const int8_t *a, size_t a_stride, size_t m, size_t block_end) {
    const size_t first_panel = job->n_begin / BEATS_PANEL_COLUMNS;
    const size_t end_panel = (job->n_end + BEATS_PANEL_COLUMNS - 1) / BEATS_PANEL_COLUMNS;
    for (size_t p = first_panel; p < end_panel; p += 2) {
        const int panels = end_panel - p >= 2 ? 2 : 1;
        for (size_t row = m; row < block_end; row += BEATS_VNNI_TILE_ROWS) {
            const size_t rows = block_end - row < BEATS_VNNI_TILE_ROWS ? block_end - row : BEATS_VNNI_TILE_ROWS;
            const int8_t *tile_rows = a + (row - m) * a_stride;
            if (form == BEATS_AVX512_PACKED) {
                beats_tile_rows_avx512(job, BEATS_AVX512_PACKED, tile_rows, a_stride, rows, panels, row, p);
            } else {
                beats_tile_rows_avx512(job, BEATS_AVX512_DIRECT, tile_rows, a_stride, rows, panels, row, p);
            }
        }
    }
}

/* Copies `rows` activation rows into the scratch as a + 128 (unsigned), padded with 128 (a = 0). */
BEATS_TARGET_AVX512 static void beats_pack_block_avx512(const int8_t *a, size_t a_stride, size_t rows,
                                                        const beats_packed_view *view, int8_t *block) {
    const __m512i offset = _mm512_set1_epi32((int32_t)0x80808080u);
    const size_t columns = view->columns, padded = view->columns_padded;
    for (size_t r = 0; r < rows; r++) {
        const int8_t *row = a + r * a_stride;
        int8_t *out = block + r * padded;
        size_t k = 0;
        for (; k + 64 <= columns; k += 64) {
            _mm512_storeu_si512((void *)(out + k), _mm512_xor_si512(_mm512_loadu_si512((const void *)(row + k)), offset));
        }
        for (; k < columns; k++) out[k] = (int8_t)(row[k] ^ (int8_t)0x80);
        for (; k < padded; k++) out[k] = (int8_t)0x80;
    }
}

BEATS_TARGET_AVX512 static void beats_gemm_s8_avx512_body(const beats_avx512_job *job, const int8_t *a, size_t a_stride,
                                                          size_t m_begin, size_t m_end) {
    const size_t padded = job->view->columns_padded;
    size_t block_rows = BEATS_SCRATCH_BYTES / padded / BEATS_VNNI_TILE_ROWS * BEATS_VNNI_TILE_ROWS;
    if (block_rows > 256) block_rows = 256;
    int8_t *scratch = block_rows >= BEATS_VNNI_TILE_ROWS ? beats_thread_scratch() : NULL;
    if (scratch == NULL) {
        for (size_t block = m_begin; block < m_end; block += 64) {
            const size_t block_end = m_end - block < 64 ? m_end : block + 64;
            beats_block_avx512(job, BEATS_AVX512_DIRECT, a + block * a_stride, a_stride, block, block_end);
        }
        return;
    }
    for (size_t block = m_begin; block < m_end; block += block_rows) {
        const size_t block_end = m_end - block < block_rows ? m_end : block + block_rows;
        beats_pack_block_avx512(a + block * a_stride, a_stride, block_end - block, job->view, scratch);
        beats_block_avx512(job, BEATS_AVX512_PACKED, scratch, padded, block, block_end);
    }
}

int beats_gemm_s8_avx512vnni(const int8_t *a, size_t a_stride, const float *a_scales, const void *packed_w,
                             const float *w_scales, const float *bias, float *c, size_t c_stride, size_t m_begin,
                             size_t m_end, size_t n_begin, size_t n_end) {
#ifndef BEATS_EMULATE_AVX512
    if (!beats_kernel_available(BEATS_KERNEL_AVX512VNNI)) return BEATS_ERROR_UNAVAILABLE;
#endif
    beats_packed_view view;
    int status = beats_gemm_check(a, a_stride, a_scales, packed_w, w_scales, c, c_stride, m_begin, m_end,
                                  n_begin, n_end, &view);
    if (status != BEATS_OK || m_begin == m_end || n_begin == n_end) return status;
    const beats_avx512_job job = {a_scales, &view, w_scales, bias, c, c_stride, n_begin, n_end};
    beats_gemm_s8_avx512_body(&job, a, a_stride, m_begin, m_end);
    return BEATS_OK;
}

/* ---- Activation quantization ------------------------------------------------------------------ */

BEATS_TARGET_AVX512 static void beats_quantize_row_avx512(const float *row, size_t columns, float level, int8_t *out,
                                                          float *scale_out) {
    const __m512i magnitude_mask = _mm512_set1_epi32(0x7fffffff);
    __m512i max_bits = _mm512_setzero_si512();
    size_t k = 0;
    for (; k + 16 <= columns; k += 16) {
        max_bits = _mm512_max_epi32(max_bits, _mm512_and_si512(_mm512_loadu_si512((const void *)(row + k)), magnitude_mask));
    }
    int32_t max_abs_bits = _mm512_reduce_max_epi32(max_bits);
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
    const __m512 scales = _mm512_set1_ps(scale);
    const __m512 low = _mm512_set1_ps(-level), high = _mm512_set1_ps(level);
    k = 0;
    for (; k + 16 <= columns; k += 16) {
        __m512 r = _mm512_div_ps(_mm512_loadu_ps(row + k), scales);
        r = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(r, r, _CMP_ORD_Q), r); /* NaN → +0 */
        r = _mm512_min_ps(_mm512_max_ps(r, low), high);
        _mm_storeu_si128((__m128i *)(void *)(out + k), _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(r)));
    }
    for (; k < columns; k++) out[k] = beats_quantize_element(row[k], scale, level);
}

int beats_quantize_rows_avx512(const float *x, size_t x_stride, size_t rows, size_t columns, int max_level,
                               int8_t *q, size_t q_stride, float *scales) {
#ifndef BEATS_EMULATE_AVX512
    if (!beats_kernel_available(BEATS_KERNEL_AVX512VNNI)) return BEATS_ERROR_UNAVAILABLE;
#endif
    int status = beats_quantize_check(x, x_stride, columns, max_level, q, q_stride, scales, rows);
    if (status != BEATS_OK || rows == 0 || columns == 0) return status;
    for (size_t r = 0; r < rows; r++) {
        beats_quantize_row_avx512(x + r * x_stride, columns, (float)max_level, q + r * q_stride, &scales[r]);
    }
    return BEATS_OK;
}

#else /* not x86-64: the AVX-512 variants are unavailable */

int beats_gemm_s8_avx512vnni(const int8_t *a, size_t a_stride, const float *a_scales, const void *packed_w,
                             const float *w_scales, const float *bias, float *c, size_t c_stride, size_t m_begin,
                             size_t m_end, size_t n_begin, size_t n_end) {
    (void)a, (void)a_stride, (void)a_scales, (void)packed_w, (void)w_scales, (void)bias, (void)c, (void)c_stride;
    (void)m_begin, (void)m_end, (void)n_begin, (void)n_end;
    return BEATS_ERROR_UNAVAILABLE;
}

int beats_quantize_rows_avx512(const float *x, size_t x_stride, size_t rows, size_t columns, int max_level,
                               int8_t *q, size_t q_stride, float *scales) {
    (void)x, (void)x_stride, (void)rows, (void)columns, (void)max_level, (void)q, (void)q_stride, (void)scales;
    return BEATS_ERROR_UNAVAILABLE;
}

#endif
