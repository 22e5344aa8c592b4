/*
 * The AVX2 int4 GEMM (needs F16C too, for the stored f16 scales).
 *
 * Weights are unsigned 4-bit, activations signed int8: exactly vpmaddubsw's operand types, so one
 * instruction multiplies 32 weight × activation pairs and adds adjacent pairs into int16, with no
 * sign trick and no offset. A pair is at most 2·15·128 = 3840 in magnitude, so eight vpmaddubsw
 * results can be added in int16 (8·3840 = 30720 < 32767) before one vpmaddwd widens them to int32:
 * per 32 multiply-adds about one vpmaddubsw and one vpaddw (the int8 kernel needs three or four
 * instructions), plus the nibble unpacking (and / shift / and per 32 bytes), shared by every row of
 * the tile. Each group then adds scale·dot + minimum·asum in float32, in the order
 * beats_q4_group_term defines.
 *
 * Register tile: 4 activation rows × 16 weight rows (one panel). Per 64-byte block (16 rows × 8
 * columns) the tile loads two YMM of nibbles, unpacks them into four vpmaddubsw operands (rows 0-7
 * and 8-15, columns 8o…8o+3 and 8o+4…8o+7) and broadcasts two activation dwords per row.
 */
#include "q4_internal.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#if BEATS_X86_64
#include <immintrin.h>

#define AVX2 BEATS_TARGET_AVX2_F16C
#define BEATS_Q4_AVX2_TILE_ROWS 4
/* 64-byte blocks whose int16 sums may be added before widening: 2 vpmaddubsw per block and lane,
 * at most 8 per lane. */
#define BEATS_Q4_AVX2_CHUNK_BLOCKS 4

typedef struct beats_q4_avx2_job {
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
} beats_q4_avx2_job;

/* Lane mask for the first `count` (0…8) lanes. */
AVX2 static inline __m256i beats_q4_lane_mask_avx2(size_t count) {
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)count), lanes);
}

/* Writes lanes [from, to) (0 ≤ from < to ≤ 8) of output row c_row, columns column0 + lane:
 * y = a_scale · acc, plus the bias (beats_q4_epilogue). */
AVX2 static inline void beats_q4_store_avx2(__m256 acc, float a_scale, const float *bias, float *c_row, size_t column0,
                                            size_t from, size_t to) {
    __m256 y = _mm256_mul_ps(_mm256_set1_ps(a_scale), acc);
    if (from == 0 && to == 8) {
        if (bias != NULL) y = _mm256_add_ps(y, _mm256_loadu_ps(bias + column0));
        _mm256_storeu_ps(c_row + column0, y);
        return;
    }
    const __m256i mask = _mm256_andnot_si256(beats_q4_lane_mask_avx2(from), beats_q4_lane_mask_avx2(to));
    if (bias != NULL) y = _mm256_add_ps(y, _mm256_maskload_ps(bias + column0, mask));
    _mm256_maskstore_ps(c_row + column0, mask, y);
}

static inline int32_t beats_q4_dword(const int8_t *bytes) {
    int32_t value;
    memcpy(&value, bytes, sizeof value);
    return value;
}

/* acc[r][h] = Σ_g term_g for rows m … m+rows-1 (1…4, a constant after inlining) × panel p,
 * lanes = panel rows 8h … 8h+7. */
AVX2 __attribute__((always_inline)) static inline void beats_q4_tile_avx2(const beats_q4_avx2_job *job, int rows,
                                                                          size_t m, size_t p,
                                                                          __m256 acc[BEATS_Q4_AVX2_TILE_ROWS][2]) {
    const beats_q4_view *view = job->view;
    const uint8_t *panel = beats_q4_panel(view, p);
    const __m256i nibble = _mm256_set1_epi8(0x0f);
    const __m256i ones = _mm256_set1_epi16(1);
    const int8_t *row[BEATS_Q4_AVX2_TILE_ROWS];
    const int32_t *sums[BEATS_Q4_AVX2_TILE_ROWS];
    for (int r = 0; r < rows; r++) {
        row[r] = job->a + (m + (size_t)r) * job->a_stride;
        sums[r] = job->a_sums + (m + (size_t)r) * job->sums_stride;
        acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    }
    const size_t chunks = view->blocks_per_group / BEATS_Q4_AVX2_CHUNK_BLOCKS;
    for (size_t g = 0; g < view->groups; g++) {
        __m256i dot[BEATS_Q4_AVX2_TILE_ROWS][2];
        for (int r = 0; r < rows; r++) dot[r][0] = dot[r][1] = _mm256_setzero_si256();
        for (size_t chunk = 0; chunk < chunks; chunk++) {
            __m256i partial[BEATS_Q4_AVX2_TILE_ROWS][2];
            for (int r = 0; r < rows; r++) partial[r][0] = partial[r][1] = _mm256_setzero_si256();
            const size_t first = g * view->blocks_per_group + chunk * BEATS_Q4_AVX2_CHUNK_BLOCKS;
            for (size_t o = first; o < first + BEATS_Q4_AVX2_CHUNK_BLOCKS; o++) {
                const uint8_t *block = panel + o * BEATS_Q4_BLOCK_BYTES;
                const __m256i w0 = _mm256_load_si256((const __m256i *)(const void *)block);
                const __m256i w1 = _mm256_load_si256((const __m256i *)(const void *)(block + 32));
                const __m256i low0 = _mm256_and_si256(w0, nibble);
                const __m256i high0 = _mm256_and_si256(_mm256_srli_epi16(w0, 4), nibble);
                const __m256i low1 = _mm256_and_si256(w1, nibble);
                const __m256i high1 = _mm256_and_si256(_mm256_srli_epi16(w1, 4), nibble);
                for (int r = 0; r < rows; r++) {
                    const __m256i first4 = _mm256_set1_epi32(beats_q4_dword(row[r] + 8 * o));
                    const __m256i next4 = _mm256_set1_epi32(beats_q4_dword(row[r] + 8 * o + 4));
                    partial[r][0] = _mm256_add_epi16(partial[r][0], _mm256_maddubs_epi16(low0, first4));
                    partial[r][0] = _mm256_add_epi16(partial[r][0], _mm256_maddubs_epi16(high0, next4));
                    partial[r][1] = _mm256_add_epi16(partial[r][1], _mm256_maddubs_epi16(low1, first4));
                    partial[r][1] = _mm256_add_epi16(partial[r][1], _mm256_maddubs_epi16(high1, next4));
                }
            }
            for (int r = 0; r < rows; r++) {
                for (int h = 0; h < 2; h++) {
                    dot[r][h] = _mm256_add_epi32(dot[r][h], _mm256_madd_epi16(partial[r][h], ones));
                }
            }
        }
        const uint8_t *entry = beats_q4_scale_entry(view, p, g);
        __m256 scale[2], minimum[2];
        for (int h = 0; h < 2; h++) {
            scale[h] = _mm256_cvtph_ps(_mm_load_si128((const __m128i *)(const void *)(entry + 16 * h)));
            minimum[h] = _mm256_cvtph_ps(_mm_load_si128((const __m128i *)(const void *)(entry + 32 + 16 * h)));
        }
        for (int r = 0; r < rows; r++) {
            const __m256 asum = _mm256_cvtepi32_ps(_mm256_set1_epi32(sums[r][g]));
            for (int h = 0; h < 2; h++) {
                const __m256 scaled = _mm256_mul_ps(scale[h], _mm256_cvtepi32_ps(dot[r][h]));
                const __m256 shifted = _mm256_mul_ps(minimum[h], asum);
                acc[r][h] = _mm256_add_ps(acc[r][h], _mm256_add_ps(scaled, shifted));
            }
        }
    }
}

AVX2 __attribute__((always_inline)) static inline void beats_q4_tile_and_store_avx2(const beats_q4_avx2_job *job,
                                                                                    int rows, size_t m, size_t p) {
    __m256 acc[BEATS_Q4_AVX2_TILE_ROWS][2];
    beats_q4_tile_avx2(job, rows, m, p, acc);
    const size_t column0 = p * BEATS_Q4_PANEL_ROWS;
    const size_t from = job->n_begin > column0 ? job->n_begin - column0 : 0;
    const size_t to = job->n_end < column0 + BEATS_Q4_PANEL_ROWS ? job->n_end - column0 : BEATS_Q4_PANEL_ROWS;
    for (int r = 0; r < rows; r++) {
        const size_t row = m + (size_t)r;
        float *c_row = job->c + row * job->c_stride;
        for (size_t h = 0; h < 2; h++) {
            const size_t lo = 8 * h, hi = 8 * h + 8;
            const size_t lane_from = from > lo ? from - lo : 0;
            const size_t lane_to = to < hi ? (to > lo ? to - lo : 0) : 8;
            if (lane_from < lane_to) {
                beats_q4_store_avx2(acc[r][h], job->a_scales[row], job->bias, c_row, column0 + lo, lane_from, lane_to);
            }
        }
    }
}

/* Rows per block: every panel of the column range is swept once per block, its tiles reusing the
 * panel from L1/L2 while the block's activation rows stay in L2. */
#define BEATS_Q4_AVX2_BLOCK_ROWS 64

AVX2 static void beats_gemm_q4_avx2_body(const beats_q4_avx2_job *job, size_t m_begin, size_t m_end) {
    const size_t first_panel = job->n_begin / BEATS_Q4_PANEL_ROWS;
    const size_t end_panel = (job->n_end + BEATS_Q4_PANEL_ROWS - 1) / BEATS_Q4_PANEL_ROWS;
    for (size_t block = m_begin; block < m_end; block += BEATS_Q4_AVX2_BLOCK_ROWS) {
        const size_t block_end = m_end - block < BEATS_Q4_AVX2_BLOCK_ROWS ? m_end : block + BEATS_Q4_AVX2_BLOCK_ROWS;
        for (size_t p = first_panel; p < end_panel; p++) {
            size_t m = block;
            for (; m + BEATS_Q4_AVX2_TILE_ROWS <= block_end; m += BEATS_Q4_AVX2_TILE_ROWS) {
                beats_q4_tile_and_store_avx2(job, BEATS_Q4_AVX2_TILE_ROWS, m, p);
            }
            switch (block_end - m) {
            case 3: beats_q4_tile_and_store_avx2(job, 3, m, p); break;
            case 2: beats_q4_tile_and_store_avx2(job, 2, m, p); break;
            case 1: beats_q4_tile_and_store_avx2(job, 1, m, p); break;
            default: break;
            }
        }
    }
}

int beats_gemm_q4_avx2(const int8_t *a, size_t a_stride, const float *a_scales, const int32_t *a_sums,
                       size_t sums_stride, const void *packed_w, const float *bias, float *c, size_t c_stride,
                       size_t m_begin, size_t m_end, size_t n_begin, size_t n_end) {
    if (!beats_q4_kernel_available(BEATS_KERNEL_AVX2)) return BEATS_ERROR_UNAVAILABLE;
    beats_q4_view view;
    const int status = beats_q4_gemm_check(a, a_stride, a_scales, a_sums, sums_stride, packed_w, c, c_stride, m_begin,
                                           m_end, n_begin, n_end, &view);
    if (status != BEATS_OK || m_begin == m_end || n_begin == n_end) return status;
    const beats_q4_avx2_job job = {&view, a, a_stride, a_scales, a_sums, sums_stride, bias, c, c_stride, n_begin, n_end};
    beats_gemm_q4_avx2_body(&job, m_begin, m_end);
    return BEATS_OK;
}

#else /* not x86-64: the AVX2 variant is unavailable */

int beats_gemm_q4_avx2(const int8_t *a, size_t a_stride, const float *a_scales, const int32_t *a_sums,
                       size_t sums_stride, const void *packed_w, const float *bias, float *c, size_t c_stride,
                       size_t m_begin, size_t m_end, size_t n_begin, size_t n_end) {
    (void)a, (void)a_stride, (void)a_scales, (void)a_sums, (void)sums_stride, (void)packed_w, (void)bias, (void)c;
    (void)c_stride, (void)m_begin, (void)m_end, (void)n_begin, (void)n_end;
    return BEATS_ERROR_UNAVAILABLE;
}

#endif
