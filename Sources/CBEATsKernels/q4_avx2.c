/*
 * The AVX2 int4 GEMM (needs F16C too, for the stored f16 scales).
 *
 * Weights are unsigned 4-bit, activations signed int8: exactly vpmaddubsw's operand types, so one
 * instruction multiplies 32 weight × activation pairs and adds adjacent pairs into int16, with no
 * sign trick and no offset. A pair is at most 2·15·128 = 3840 in magnitude, so the eight vpmaddubsw
 * results of 32 columns can be added in int16 (8·3840 = 30720 < 32767) before one vpmaddwd widens
 * them to int32: about one vpmaddubsw and one vpaddw per 32 multiply-adds, where the int8 kernel needs
 * three instructions (7-bit activations) or four. Each group then adds scale·dot + minimum·asum in
 * float32, in the order beats_q4_group_term defines; at G = 32 that epilogue is about a third of the
 * work, which is why the integer part has to be cheaper than int8's to break even.
 *
 * Structure: blocks of up to 64 activation rows; for each block, each 16-row weight panel; for each
 * span of 512 columns, the panel's nibbles are unpacked once into an 8 KB stack buffer (the four
 * vpmaddubsw operands of every 8-column block) and its f16 scales and minimums converted to float32
 * once, which all the block's register tiles then read (unpacking per tile cost 10 % more
 * instructions, converting per tile another 5 %). Register tile: 4 activation rows × 16 weight rows,
 * 8 int16 accumulators; the float sums (and a group's int32 dot when the group spans several
 * 32-column chunks) live in small stack buffers indexed by the tile's row, so the compiler keeps them
 * in memory instead of spilling the int16 accumulators. Stack use: about 19 KB.
 *
 * Measured on the development machine's Zen 3 cores (bench/kernels/run_q4_bench.sh, table in
 * q4_bench.c): on idle cores about the int8 kernel's speed at 7-bit activations for G = 32, 10–16 %
 * faster for G = 64 and 128.
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

/* Rows per block: every panel of the column range is swept once per block. */
#define BEATS_Q4_AVX2_BLOCK_ROWS 64
/* Columns per span: a panel's span is unpacked once per block into 16·SPAN bytes (8 KB, L1). A
 * multiple of 128, so a group never straddles two spans. */
#define BEATS_Q4_AVX2_SPAN 512
/* Most groups in a span (G = 32). */
#define BEATS_Q4_AVX2_SPAN_GROUPS (BEATS_Q4_AVX2_SPAN / 32)

/* Unpacks blocks [o_begin, o_end) of a panel into `unpacked`: per block 128 bytes, the vpmaddubsw
 * operands low0 (rows 0-7, columns 8o…8o+3), low1 (rows 8-15), high0, high1 (columns 8o+4…8o+7). */
/* Converts `count` consecutive scale entries (16 f16 scales, 16 f16 minimums each) to float32, 32
 * floats per entry in the same order (vcvtph2ps is exact, as beats_q4_half_to_float_inline). */
AVX2 static inline void beats_q4_convert_scales_avx2(const uint8_t *entries, size_t count, float *out) {
    for (size_t e = 0; e < count; e++) {
        for (int v = 0; v < 4; v++) {
            _mm256_store_ps(out + 32 * e + 8 * v, _mm256_cvtph_ps(_mm_load_si128((const __m128i *)(const void *)(entries + 64 * e + 16 * v))));
        }
    }
}

AVX2 static inline void beats_q4_unpack_span_avx2(const uint8_t *panel, size_t o_begin, size_t o_end, uint8_t *unpacked) {
    const __m256i nibble = _mm256_set1_epi8(0x0f);
    for (size_t o = o_begin; o < o_end; o++) {
        const uint8_t *block = panel + o * BEATS_Q4_BLOCK_BYTES;
        __m256i *out = (__m256i *)(void *)(unpacked + (o - o_begin) * 128);
        const __m256i w0 = _mm256_load_si256((const __m256i *)(const void *)block);
        const __m256i w1 = _mm256_load_si256((const __m256i *)(const void *)(block + 32));
        _mm256_store_si256(out, _mm256_and_si256(w0, nibble));
        _mm256_store_si256(out + 1, _mm256_and_si256(w1, nibble));
        _mm256_store_si256(out + 2, _mm256_and_si256(_mm256_srli_epi16(w0, 4), nibble));
        _mm256_store_si256(out + 3, _mm256_and_si256(_mm256_srli_epi16(w1, 4), nibble));
    }
}

/* The tile for rows m … m+rows-1 (1…4, constant after inlining) × panel p over groups
 * [g_begin, g_end) of the unpacked span (whose first block is g_begin·G/8) and its converted
 * scales: adds Σ_g term_g into acc[r·16 + lane]; dots[r·16 + lane] holds a group's int32 dot when the
 * group spans several chunks; asums receives the rows' group sums as float (exact: |Σ| ≤ 2^14). The
 * buffers are indexed from run-time offsets, so they stay in memory. */
AVX2 __attribute__((always_inline)) static inline void beats_q4_tile_avx2(const beats_q4_avx2_job *job, int rows,
                                                                          size_t m, size_t p, size_t g_begin, size_t g_end,
                                                                          const uint8_t *unpacked, const float *scales,
                                                                          float *asums, float *acc, int32_t *dots) {
    const beats_q4_view *view = job->view;
    const __m256i ones = _mm256_set1_epi16(1);
    const int8_t *row[BEATS_Q4_AVX2_TILE_ROWS];
    (void)p; /* the panel's data arrives unpacked and converted */
    for (int r = 0; r < rows; r++) {
        row[r] = job->a + (m + (size_t)r) * job->a_stride;
        const int32_t *sums = job->a_sums + (m + (size_t)r) * job->sums_stride;
        float *out = asums + BEATS_Q4_AVX2_SPAN_GROUPS * (size_t)r - g_begin;
        size_t g = g_begin;
        for (; g + 8 <= g_end; g += 8) {
            _mm256_storeu_ps(out + g, _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(const void *)(sums + g))));
        }
        for (; g < g_end; g++) out[g] = (float)sums[g];
    }
    const size_t chunks = view->blocks_per_group / BEATS_Q4_AVX2_CHUNK_BLOCKS;
    const size_t o_base = g_begin * view->blocks_per_group;
    for (size_t g = g_begin; g < g_end; g++) {
        for (size_t chunk = 0; chunk < chunks; chunk++) {
            __m256i partial[BEATS_Q4_AVX2_TILE_ROWS][2];
            for (int r = 0; r < rows; r++) partial[r][0] = partial[r][1] = _mm256_setzero_si256();
            const size_t first = g * view->blocks_per_group + chunk * BEATS_Q4_AVX2_CHUNK_BLOCKS;
            for (size_t o = first; o < first + BEATS_Q4_AVX2_CHUNK_BLOCKS; o++) {
                const __m256i *w = (const __m256i *)(const void *)(unpacked + (o - o_base) * 128);
                const __m256i low0 = _mm256_load_si256(w), low1 = _mm256_load_si256(w + 1);
                const __m256i high0 = _mm256_load_si256(w + 2), high1 = _mm256_load_si256(w + 3);
                for (int r = 0; r < rows; r++) {
                    const __m256i first4 = _mm256_set1_epi32(beats_q4_dword(row[r] + 8 * o));
                    const __m256i next4 = _mm256_set1_epi32(beats_q4_dword(row[r] + 8 * o + 4));
                    partial[r][0] = _mm256_add_epi16(partial[r][0], _mm256_maddubs_epi16(low0, first4));
                    partial[r][1] = _mm256_add_epi16(partial[r][1], _mm256_maddubs_epi16(low1, first4));
                    partial[r][0] = _mm256_add_epi16(partial[r][0], _mm256_maddubs_epi16(high0, next4));
                    partial[r][1] = _mm256_add_epi16(partial[r][1], _mm256_maddubs_epi16(high1, next4));
                }
            }
            for (int r = 0; r < rows; r++) {
                for (int h = 0; h < 2; h++) {
                    __m256i *slot = (__m256i *)(void *)(dots + 16 * r + 8 * h);
                    const __m256i widened = _mm256_madd_epi16(partial[r][h], ones);
                    _mm256_store_si256(slot, chunk == 0 ? widened : _mm256_add_epi32(_mm256_load_si256(slot), widened));
                }
            }
        }
        const float *entry = scales + 32 * (g - g_begin);
        for (int h = 0; h < 2; h++) {
            const __m256 scale = _mm256_load_ps(entry + 8 * h);
            const __m256 minimum = _mm256_load_ps(entry + 16 + 8 * h);
            for (int r = 0; r < rows; r++) {
                const __m256 asum = _mm256_broadcast_ss(asums + BEATS_Q4_AVX2_SPAN_GROUPS * (size_t)r + (g - g_begin));
                const __m256i dot = _mm256_load_si256((const __m256i *)(const void *)(dots + 16 * r + 8 * h));
                const __m256 scaled = _mm256_mul_ps(scale, _mm256_cvtepi32_ps(dot));
                const __m256 shifted = _mm256_mul_ps(minimum, asum);
                float *slot = acc + 16 * r + 8 * h;
                _mm256_store_ps(slot, _mm256_add_ps(_mm256_load_ps(slot), _mm256_add_ps(scaled, shifted)));
            }
        }
    }
}

AVX2 static void beats_gemm_q4_avx2_body(const beats_q4_avx2_job *job, size_t m_begin, size_t m_end) {
    const beats_q4_view *view = job->view;
    const size_t first_panel = job->n_begin / BEATS_Q4_PANEL_ROWS;
    const size_t end_panel = (job->n_end + BEATS_Q4_PANEL_ROWS - 1) / BEATS_Q4_PANEL_ROWS;
    const size_t span_groups = BEATS_Q4_AVX2_SPAN / view->group;
    _Alignas(64) float acc[BEATS_Q4_AVX2_BLOCK_ROWS * BEATS_Q4_PANEL_ROWS];
    _Alignas(64) int32_t dots[BEATS_Q4_AVX2_BLOCK_ROWS * BEATS_Q4_PANEL_ROWS];
    _Alignas(64) uint8_t unpacked[BEATS_Q4_AVX2_SPAN * BEATS_Q4_PANEL_ROWS];
    _Alignas(64) float scales[BEATS_Q4_AVX2_SPAN_GROUPS * 32];
    _Alignas(64) float asums[BEATS_Q4_AVX2_TILE_ROWS * BEATS_Q4_AVX2_SPAN_GROUPS];
    for (size_t block = m_begin; block < m_end; block += BEATS_Q4_AVX2_BLOCK_ROWS) {
        const size_t block_end = m_end - block < BEATS_Q4_AVX2_BLOCK_ROWS ? m_end : block + BEATS_Q4_AVX2_BLOCK_ROWS;
        for (size_t p = first_panel; p < end_panel; p++) {
            memset(acc, 0, sizeof(float) * BEATS_Q4_PANEL_ROWS * (block_end - block));
            for (size_t g_begin = 0; g_begin < view->groups; g_begin += span_groups) {
                const size_t g_end = view->groups - g_begin < span_groups ? view->groups : g_begin + span_groups;
                beats_q4_unpack_span_avx2(beats_q4_panel(view, p), g_begin * view->blocks_per_group,
                                          g_end * view->blocks_per_group, unpacked);
                beats_q4_convert_scales_avx2(beats_q4_scale_entry(view, p, g_begin), g_end - g_begin, scales);
                size_t m = block;
                for (; m + BEATS_Q4_AVX2_TILE_ROWS <= block_end; m += BEATS_Q4_AVX2_TILE_ROWS) {
                    const size_t offset = (m - block) * BEATS_Q4_PANEL_ROWS;
                    beats_q4_tile_avx2(job, BEATS_Q4_AVX2_TILE_ROWS, m, p, g_begin, g_end, unpacked, scales, asums, acc + offset, dots + offset);
                }
                const size_t offset = (m - block) * BEATS_Q4_PANEL_ROWS;
                switch (block_end - m) {
                case 3: beats_q4_tile_avx2(job, 3, m, p, g_begin, g_end, unpacked, scales, asums, acc + offset, dots + offset); break;
                case 2: beats_q4_tile_avx2(job, 2, m, p, g_begin, g_end, unpacked, scales, asums, acc + offset, dots + offset); break;
                case 1: beats_q4_tile_avx2(job, 1, m, p, g_begin, g_end, unpacked, scales, asums, acc + offset, dots + offset); break;
                default: break;
                }
            }
            const size_t column0 = p * BEATS_Q4_PANEL_ROWS;
            const size_t from = job->n_begin > column0 ? job->n_begin - column0 : 0;
            const size_t to = job->n_end < column0 + BEATS_Q4_PANEL_ROWS ? job->n_end - column0 : BEATS_Q4_PANEL_ROWS;
            for (size_t row = block; row < block_end; row++) {
                float *c_row = job->c + row * job->c_stride;
                for (size_t h = 0; h < 2; h++) {
                    const size_t lo = 8 * h, hi = 8 * h + 8;
                    const size_t lane_from = from > lo ? from - lo : 0;
                    const size_t lane_to = to < hi ? (to > lo ? to - lo : 0) : 8;
                    if (lane_from < lane_to) {
                        const __m256 sum = _mm256_load_ps(acc + (row - block) * BEATS_Q4_PANEL_ROWS + lo);
                        beats_q4_store_avx2(sum, job->a_scales[row], job->bias, c_row, column0 + lo, lane_from, lane_to);
                    }
                }
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
