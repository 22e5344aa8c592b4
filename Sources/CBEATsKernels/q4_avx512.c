/*
 * The AVX-512 VNNI int4 GEMM.
 *
 * vpdpbusd multiplies unsigned by signed bytes and adds groups of four products into int32 lanes.
 * The packed weights are unsigned nibbles and the activations signed int8, so a 64-byte block of the
 * packed layout AND 0x0F is directly the unsigned operand for 16 output rows × columns 8o…8o+3, and
 * (block >> 4) AND 0x0F the one for columns 8o+4…8o+7, each against one broadcast activation dword:
 * no offset, no correction. Each group then adds scale·dot + minimum·asum in float32, in the order
 * beats_q4_group_term defines.
 *
 * Register tile: 8 activation rows × 16 weight rows (one panel), with separate int32 accumulators
 * for the low and high nibbles so consecutive vpdpbusd of a row do not wait on each other (8 rows ×
 * 2 + 8 float accumulators + operands: 29 of the 32 ZMM registers).
 *
 * Compiled on every x86-64 build; runs only where beats_q4_kernel_available says so. Without such a
 * CPU, bench/kernels/emulated_q4_check.sh runs it through SIMDe's portable intrinsics.
 */
#include "q4_internal.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#if BEATS_X86_64
#ifdef BEATS_EMULATE_AVX512
#include "q4_avx512_emulation.h" /* bench/kernels: SIMDe plus the intrinsics it lacks */
#else
#include <immintrin.h>
#endif

#define AVX512 BEATS_TARGET_AVX512
#define BEATS_Q4_VNNI_TILE_ROWS 8

typedef struct beats_q4_avx512_job {
    const beats_q4_view *view;
    const int8_t *a;
    size_t a_stride;
    const float *a_scales;
    const int32_t *a_sums;
    size_t sums_stride;
    const float *bias;
    float *c;
    size_t c_stride;
    size_t n_begin, n_end;
} beats_q4_avx512_job;

static inline int32_t beats_q4_dword512(const int8_t *bytes) {
    int32_t value;
    memcpy(&value, bytes, sizeof value);
    return value;
}

/* acc[r] = Σ_g term_g for rows m … m+rows-1 (1…8, a constant after inlining) × panel p. */
AVX512 __attribute__((always_inline)) static inline void beats_q4_tile_avx512(const beats_q4_avx512_job *job, int rows,
                                                                              size_t m, size_t p,
                                                                              __m512 acc[BEATS_Q4_VNNI_TILE_ROWS]) {
    const beats_q4_view *view = job->view;
    const uint8_t *panel = beats_q4_panel(view, p);
    const __m512i nibble = _mm512_set1_epi8(0x0f);
    const int8_t *row[BEATS_Q4_VNNI_TILE_ROWS];
    const int32_t *sums[BEATS_Q4_VNNI_TILE_ROWS];
    for (int r = 0; r < rows; r++) {
        row[r] = job->a + (m + (size_t)r) * job->a_stride;
        sums[r] = job->a_sums + (m + (size_t)r) * job->sums_stride;
        acc[r] = _mm512_setzero_ps();
    }
    for (size_t g = 0; g < view->groups; g++) {
        __m512i low_dot[BEATS_Q4_VNNI_TILE_ROWS], high_dot[BEATS_Q4_VNNI_TILE_ROWS];
        for (int r = 0; r < rows; r++) low_dot[r] = high_dot[r] = _mm512_setzero_si512();
        const size_t first = g * view->blocks_per_group;
        for (size_t o = first; o < first + view->blocks_per_group; o++) {
            const __m512i w = _mm512_load_si512((const void *)(panel + o * BEATS_Q4_BLOCK_BYTES));
            const __m512i low = _mm512_and_si512(w, nibble);
            const __m512i high = _mm512_and_si512(_mm512_srli_epi16(w, 4), nibble);
            for (int r = 0; r < rows; r++) {
                const __m512i first4 = _mm512_set1_epi32(beats_q4_dword512(row[r] + 8 * o));
                const __m512i next4 = _mm512_set1_epi32(beats_q4_dword512(row[r] + 8 * o + 4));
                low_dot[r] = _mm512_dpbusd_epi32(low_dot[r], low, first4);
                high_dot[r] = _mm512_dpbusd_epi32(high_dot[r], high, next4);
            }
        }
        const uint8_t *entry = beats_q4_scale_entry(view, p, g);
        const __m512 scale = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(const void *)entry));
        const __m512 minimum = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(const void *)(entry + 32)));
        for (int r = 0; r < rows; r++) {
            const __m512i dot = _mm512_add_epi32(low_dot[r], high_dot[r]);
            const __m512 scaled = _mm512_mul_ps(scale, _mm512_cvtepi32_ps(dot));
            const __m512 shifted = _mm512_mul_ps(minimum, _mm512_cvtepi32_ps(_mm512_set1_epi32(sums[r][g])));
            acc[r] = _mm512_add_ps(acc[r], _mm512_add_ps(scaled, shifted));
        }
    }
}

AVX512 __attribute__((always_inline)) static inline void beats_q4_tile_and_store_avx512(const beats_q4_avx512_job *job,
                                                                                        int rows, size_t m, size_t p) {
    __m512 acc[BEATS_Q4_VNNI_TILE_ROWS];
    beats_q4_tile_avx512(job, rows, m, p, acc);
    const size_t column0 = p * BEATS_Q4_PANEL_ROWS;
    const size_t from = job->n_begin > column0 ? job->n_begin - column0 : 0;
    const size_t to = job->n_end < column0 + BEATS_Q4_PANEL_ROWS ? job->n_end - column0 : BEATS_Q4_PANEL_ROWS;
    const __mmask16 mask = (__mmask16)((((uint32_t)1 << to) - 1) & ~(((uint32_t)1 << from) - 1));
    for (int r = 0; r < rows; r++) {
        const size_t row = m + (size_t)r;
        /* beats_q4_epilogue: y = a_scale · acc, then + bias. */
        __m512 y = _mm512_mul_ps(_mm512_set1_ps(job->a_scales[row]), acc[r]);
        if (job->bias != NULL) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(mask, job->bias + column0));
        _mm512_mask_storeu_ps(job->c + row * job->c_stride + column0, mask, y);
    }
}

#define BEATS_Q4_AVX512_ROWS_CASE(count)                                                                     \
    case count: beats_q4_tile_and_store_avx512(job, count, m, p); break;

/* Rows per block, as in the AVX2 kernel: each panel swept once per block of rows. */
#define BEATS_Q4_AVX512_BLOCK_ROWS 64

AVX512 __attribute__((noinline)) static void beats_gemm_q4_avx512_body(const beats_q4_avx512_job *job, size_t m_begin,
                                                                       size_t m_end) {
    const size_t first_panel = job->n_begin / BEATS_Q4_PANEL_ROWS;
    const size_t end_panel = (job->n_end + BEATS_Q4_PANEL_ROWS - 1) / BEATS_Q4_PANEL_ROWS;
    for (size_t block = m_begin; block < m_end; block += BEATS_Q4_AVX512_BLOCK_ROWS) {
        const size_t block_end = m_end - block < BEATS_Q4_AVX512_BLOCK_ROWS ? m_end : block + BEATS_Q4_AVX512_BLOCK_ROWS;
        for (size_t p = first_panel; p < end_panel; p++) {
            for (size_t m = block; m < block_end; m += BEATS_Q4_VNNI_TILE_ROWS) {
                const size_t rows = block_end - m < BEATS_Q4_VNNI_TILE_ROWS ? block_end - m : BEATS_Q4_VNNI_TILE_ROWS;
                switch (rows) {
                    BEATS_Q4_AVX512_ROWS_CASE(8)
                    BEATS_Q4_AVX512_ROWS_CASE(7)
                    BEATS_Q4_AVX512_ROWS_CASE(6)
                    BEATS_Q4_AVX512_ROWS_CASE(5)
                    BEATS_Q4_AVX512_ROWS_CASE(4)
                    BEATS_Q4_AVX512_ROWS_CASE(3)
                    BEATS_Q4_AVX512_ROWS_CASE(2)
                    BEATS_Q4_AVX512_ROWS_CASE(1)
                default: break;
                }
            }
        }
    }
}

int beats_gemm_q4_avx512vnni(const int8_t *a, size_t a_stride, const float *a_scales, const int32_t *a_sums,
                             size_t sums_stride, const void *packed_w, const float *bias, float *c, size_t c_stride,
                             size_t m_begin, size_t m_end, size_t n_begin, size_t n_end) {
#ifndef BEATS_EMULATE_AVX512
    if (!beats_q4_kernel_available(BEATS_KERNEL_AVX512VNNI)) return BEATS_ERROR_UNAVAILABLE;
#endif
    beats_q4_view view;
    const int status = beats_q4_gemm_check(a, a_stride, a_scales, a_sums, sums_stride, packed_w, c, c_stride, m_begin,
                                           m_end, n_begin, n_end, &view);
    if (status != BEATS_OK || m_begin == m_end || n_begin == n_end) return status;
    const beats_q4_avx512_job job = {&view, a, a_stride, a_scales, a_sums, sums_stride, bias, c, c_stride, n_begin, n_end};
    beats_gemm_q4_avx512_body(&job, m_begin, m_end);
    return BEATS_OK;
}

#else /* not x86-64: the AVX-512 variant is unavailable */

int beats_gemm_q4_avx512vnni(const int8_t *a, size_t a_stride, const float *a_scales, const int32_t *a_sums,
                             size_t sums_stride, const void *packed_w, const float *bias, float *c, size_t c_stride,
                             size_t m_begin, size_t m_end, size_t n_begin, size_t n_end) {
    (void)a, (void)a_stride, (void)a_scales, (void)a_sums, (void)sums_stride, (void)packed_w, (void)bias, (void)c;
    (void)c_stride, (void)m_begin, (void)m_end, (void)n_begin, (void)n_end;
    return BEATS_ERROR_UNAVAILABLE;
}

#endif
