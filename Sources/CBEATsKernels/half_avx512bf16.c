/*
 * The AVX512-BF16 GEMM on bfloat16 weights: y[m][n] = Σ_k bf16(x[m][k]) · w[n][k].
 *
 * vdpbf16ps multiplies pairs of bfloat16 values and adds both products to a float32 lane:
 * acc[j] += a[2j+1]·b[2j+1], then += a[2j]·b[2j] (each product exact in float32, each sum rounded to
 * nearest even; subnormal inputs read as zero, subnormal results flushed). One ZMM of weights holds
 * 16 output columns × one k pair; an activation k pair is one broadcast 32-bit value.
 *
 * Loop nest, per call (one thread, one range of rows and one of output columns):
 *   for each K slab (≤ BEATS_BF16_SLAB_DEPTH, a multiple of 32 except the last):
 *     for each block of ≤ BEATS_BF16_BLOCK_ROWS activation rows:
 *       round the block's slab of x to bfloat16 into the scratch (vcvtne2ps2bf16), rows padded with
 *       zeros to a multiple of 32 values;
 *       for each pair of panels (32 weight rows, the last one shorter):
 *         repack the panels' slab of W from row-major into the scratch, k pair by k pair (a 16 × 16
 *         transpose of 32-bit pairs; rows past n_end and the odd last k are zero);
 *         for each tile of 8 activation rows: 16 ZMM accumulators (8 rows × 2 panels), then
 *         C = acc (first slab) or C += acc (later slabs), masked to the range's columns.
 * For up to 512 rows every weight is repacked once per call and every activation rounded once per
 * call, so the work outside vdpbf16ps is O(N·K + M·K) against the O(M·N·K) product. Scratch (the
 * caller's): 256 KB of rounded activations (512 rows × 256 k) and 16 KB for the panel pair.
 *
 * This file is compiled on every x86-64 build but runs only where cpuid reports AVX-512F/BW and
 * AVX512_BF16 and the OS saves ZMM state. bench/kernels/emulated_bf16_check.sh runs it through SIMDe
 * (and definitions of the BF16 instructions from Intel's pseudo-code) on machines without AVX-512.
 */
#include "half_kernels_internal.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#if BEATS_X86_64
#ifdef BEATS_EMULATE_AVX512
#include "beats_avx512bf16_emulation.h" /* bench/kernels: SIMDe plus the BF16 instructions */
#else
#include <immintrin.h>
#define beats_as_bh(v) ((__m512bh)(v))
#define beats_bh_as_si512(v) ((__m512i)(v))
#endif

#define BEATS_BF16_TILE_ROWS 8
#define BEATS_BF16_PANEL_LANES 16
/* Scratch: the rounded activations of one block × slab, then one panel pair of one slab. */
#define BEATS_BF16_ACTIVATION_BYTES ((size_t)BEATS_BF16_BLOCK_ROWS * BEATS_BF16_SLAB_DEPTH * 2)
#define BEATS_BF16_PANEL_PAIR_BYTES ((size_t)BEATS_BF16_PANEL_COLUMNS * BEATS_BF16_SLAB_DEPTH * 2)
_Static_assert(BEATS_BF16_ACTIVATION_BYTES + BEATS_BF16_PANEL_PAIR_BYTES <= BEATS_HALF_SCRATCH_BYTES, "fits the scratch");
_Static_assert(BEATS_BF16_SLAB_DEPTH % 32 == 0 && BEATS_BF16_PANEL_COLUMNS == 32, "slab and panel shapes");

/* ---- Activations: float32 → bfloat16 ---------------------------------------------------------- */

/* Rounds `rows` rows of `depth` floats (row r at x + r*x_stride) into a (row r at a + r*a_stride,
 * a_stride a multiple of 32 ≥ depth), zero-filling each row up to the next multiple of 32. */
BEATS_TARGET_AVX512BF16 static void beats_bf16_round_block(const float *x, size_t x_stride, size_t rows, size_t depth,
                                                           uint16_t *a, size_t a_stride) {
    for (size_t r = 0; r < rows; r++) {
        const float *row = x + r * x_stride;
        uint16_t *out = a + r * a_stride;
        size_t k = 0;
        for (; k + 32 <= depth; k += 32) {
            const __m512 low = _mm512_loadu_ps(row + k), high = _mm512_loadu_ps(row + k + 16);
            _mm512_storeu_si512((void *)(out + k), beats_bh_as_si512(_mm512_cvtne2ps_pbh(high, low)));
        }
        if (k < depth) {
            const size_t left = depth - k;
            const __mmask16 low_mask = (__mmask16)(left >= 16 ? 0xffffu : (1u << left) - 1);
            const __mmask16 high_mask = (__mmask16)(left > 16 ? (1u << (left - 16)) - 1 : 0u);
            const __m512 low = _mm512_maskz_loadu_ps(low_mask, row + k);
            const __m512 high = _mm512_maskz_loadu_ps(high_mask, row + k + 16);
            _mm512_storeu_si512((void *)(out + k), beats_bh_as_si512(_mm512_cvtne2ps_pbh(high, low)));
        }
    }
}

/* ---- Weights: row-major → panel of k pairs ---------------------------------------------------- */

/* Transposes 16 rows × 16 pairs (32-bit words; row j at rows + j*stride words, unaligned) into 16
 * vectors stored at out + 16q (q = 0 … 15), lane j of vector q = row j's pair q. */
BEATS_TARGET_AVX512BF16 static inline void beats_bf16_transpose_16x16(const uint16_t *rows, size_t stride, uint32_t *out) {
    __m512i r[16], t[16];
    for (int j = 0; j < 16; j++) r[j] = _mm512_loadu_si512((const void *)(rows + (size_t)j * stride));
    /* t[2i], t[2i+1]: rows 2i and 2i+1 interleaved by word, low and high halves of each 128-bit lane. */
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    /* r[4g + c]: rows 4g … 4g+3 of column 4L + c in 128-bit lane L. */
    for (int g = 0; g < 4; g++) {
        r[4 * g + 0] = _mm512_unpacklo_epi64(t[4 * g + 0], t[4 * g + 2]);
        r[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g + 0], t[4 * g + 2]);
        r[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
        r[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
    }
    /* Column 4L + c gathers lane L of r[c], r[4 + c], r[8 + c], r[12 + c]. */
    for (int c = 0; c < 4; c++) {
        const __m512i a = _mm512_shuffle_i32x4(r[c], r[4 + c], 0x44);      /* r[c].L0 L1, r[4+c].L0 L1 */
        const __m512i b = _mm512_shuffle_i32x4(r[c], r[4 + c], 0xee);      /* … L2 L3 */
        const __m512i d = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0x44);
        const __m512i e = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0xee);
        _mm512_store_si512((void *)(out + 16 * (0 + c)), _mm512_shuffle_i32x4(a, d, 0x88));
        _mm512_store_si512((void *)(out + 16 * (4 + c)), _mm512_shuffle_i32x4(a, d, 0xdd));
        _mm512_store_si512((void *)(out + 16 * (8 + c)), _mm512_shuffle_i32x4(b, e, 0x88));
        _mm512_store_si512((void *)(out + 16 * (12 + c)), _mm512_shuffle_i32x4(b, e, 0xdd));
    }
}

/* Panel of `valid` (0 … 16) weight rows (row j at w + j*w_stride) × `depth` k: for each pair q < ⌈depth/2⌉,
 * 16 words at panel + 16q, word j = w[j][2q] | w[j][2q+1] << 16; missing rows and the k past depth are 0. */
BEATS_TARGET_AVX512BF16 static void beats_bf16_pack_panel(const uint16_t *w, size_t w_stride, size_t valid, size_t depth,
                                                          uint32_t *panel) {
    const size_t pairs = (depth + 1) / 2, full_pairs = depth / 2;
    size_t q = 0;
    if (valid == BEATS_BF16_PANEL_LANES) {
        for (; q + 16 <= full_pairs; q += 16) beats_bf16_transpose_16x16(w + 2 * q, w_stride, panel + 16 * q);
    }
    for (; q < pairs; q++) {
        for (size_t j = 0; j < BEATS_BF16_PANEL_LANES; j++) {
            uint32_t word = 0;
            if (j < valid) {
                const uint16_t *row = w + j * w_stride;
                word = row[2 * q];
                if (2 * q + 1 < depth) word |= (uint32_t)row[2 * q + 1] << 16;
            }
            panel[16 * q + j] = word;
        }
    }
}

/* ---- The register tile ------------------------------------------------------------------------ */

typedef struct beats_bf16_job {
    const uint32_t *panels[2]; /* the repacked panel pair */
    size_t pairs;              /* k pairs in the slab */
    float *c;
    size_t c_stride;
    size_t column0;            /* output column of the panel pair's lane 0 */
    size_t valid[2];           /* columns of each panel inside the range (0 … 16) */
    int first_slab;
} beats_bf16_job;

/* acc[r][h] = Σ_q bf16 pairs of activation row r (at a + r*a_stride) · panel h, then stored to C
 * rows m … m+rows−1; `rows` (1 … 8) and `panels` (1, 2) are constants after inlining. */
BEATS_TARGET_AVX512BF16 __attribute__((always_inline)) static inline void
beats_bf16_tile(const beats_bf16_job *job, const uint16_t *a, size_t a_stride, int rows, int panels, size_t m) {
    __m512 acc[BEATS_BF16_TILE_ROWS][2];
    for (int r = 0; r < rows; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    const uint32_t *panel0 = job->panels[0], *panel1 = job->panels[1];
    for (size_t q = 0; q < job->pairs; q++) {
        const __m512i w0 = _mm512_load_si512((const void *)(panel0 + 16 * q));
        const __m512i w1 = panels == 2 ? _mm512_load_si512((const void *)(panel1 + 16 * q)) : w0;
        for (int r = 0; r < rows; r++) {
            int32_t pair;
            memcpy(&pair, a + (size_t)r * a_stride + 2 * q, sizeof pair);
            const __m512i activations = _mm512_set1_epi32(pair);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], beats_as_bh(activations), beats_as_bh(w0));
            if (panels == 2) acc[r][1] = _mm512_dpbf16_ps(acc[r][1], beats_as_bh(activations), beats_as_bh(w1));
        }
    }
    for (int h = 0; h < panels; h++) {
        const size_t valid = job->valid[h];
        const __mmask16 mask = (__mmask16)(valid >= 16 ? 0xffffu : (1u << valid) - 1);
        const size_t column = job->column0 + 16 * (size_t)h;
        for (int r = 0; r < rows; r++) {
            float *target = job->c + (m + (size_t)r) * job->c_stride + column;
            __m512 y = acc[r][h];
            if (!job->first_slab) y = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, target), y);
            _mm512_mask_storeu_ps(target, mask, y);
        }
    }
}

#define BEATS_BF16_ROWS_CASE(count)                                                       \
    case count:                                                                           \
        if (panels == 2) beats_bf16_tile(job, a, a_stride, count, 2, m);                  \
        else beats_bf16_tile(job, a, a_stride, count, 1, m);                              \
        break;

BEATS_TARGET_AVX512BF16 __attribute__((noinline)) static void
beats_bf16_tiles(const beats_bf16_job *job, const uint16_t *a, size_t a_stride, int panels, size_t block_begin,
                 size_t block_end) {
    for (size_t m = block_begin; m < block_end; m += BEATS_BF16_TILE_ROWS) {
        const size_t rows = block_end - m < BEATS_BF16_TILE_ROWS ? block_end - m : BEATS_BF16_TILE_ROWS;
        switch (rows) {
            BEATS_BF16_ROWS_CASE(8)
            BEATS_BF16_ROWS_CASE(7)
            BEATS_BF16_ROWS_CASE(6)
            BEATS_BF16_ROWS_CASE(5)
            BEATS_BF16_ROWS_CASE(4)
            BEATS_BF16_ROWS_CASE(3)
            BEATS_BF16_ROWS_CASE(2)
            BEATS_BF16_ROWS_CASE(1)
        default:
            break;
        }
        a += rows * a_stride;
    }
}

/* ---- The product ------------------------------------------------------------------------------ */

BEATS_TARGET_AVX512BF16 static void beats_gemm_bf16_body(const float *x, size_t x_stride, const uint16_t *w,
                                                         size_t w_stride, size_t columns, float *c, size_t c_stride,
                                                         size_t m_begin, size_t m_end, size_t n_begin, size_t n_end,
                                                         uint8_t *scratch) {
    uint16_t *activations = (uint16_t *)(void *)scratch;
    uint32_t *panels = (uint32_t *)(void *)(scratch + BEATS_BF16_ACTIVATION_BYTES);
    /* Slabs: ⌈K / 256⌉ pieces of a multiple of 32 (the last one shorter). */
    const size_t pieces = (columns + BEATS_BF16_SLAB_DEPTH - 1) / BEATS_BF16_SLAB_DEPTH;
    const size_t slab_step = beats_round_up((columns + pieces - 1) / pieces, 32);
    for (size_t k0 = 0; k0 < columns; k0 += slab_step) {
        const size_t depth = columns - k0 < slab_step ? columns - k0 : slab_step;
        const size_t a_stride = beats_round_up(depth, 32);
        const size_t pairs = (depth + 1) / 2;
        for (size_t block = m_begin; block < m_end; block += BEATS_BF16_BLOCK_ROWS) {
            const size_t block_end = m_end - block < BEATS_BF16_BLOCK_ROWS ? m_end : block + BEATS_BF16_BLOCK_ROWS;
            beats_bf16_round_block(x + block * x_stride + k0, x_stride, block_end - block, depth, activations, a_stride);
            for (size_t n = n_begin; n < n_end; n += BEATS_BF16_PANEL_COLUMNS) {
                const size_t left = n_end - n;
                beats_bf16_job job = {
                    .panels = {panels, panels + 16 * pairs},
                    .pairs = pairs,
                    .c = c,
                    .c_stride = c_stride,
                    .column0 = n,
                    .valid = {left < 16 ? left : 16, left > 16 ? (left - 16 < 16 ? left - 16 : 16) : 0},
                    .first_slab = k0 == 0,
                };
                beats_bf16_pack_panel(w + n * w_stride + k0, w_stride, job.valid[0], depth, panels);
                const int panel_count = job.valid[1] > 0 ? 2 : 1;
                if (panel_count == 2) {
                    beats_bf16_pack_panel(w + (n + 16) * w_stride + k0, w_stride, job.valid[1], depth, panels + 16 * pairs);
                }
                beats_bf16_tiles(&job, activations, a_stride, panel_count, block, block_end);
            }
        }
    }
}

int beats_gemm_bf16_avx512_available(void) {
    const uint32_t needed = BEATS_CPU_AVX512F | BEATS_CPU_AVX512BW | BEATS_CPU_AVX512BF16;
    return (beats_cpu_features() & needed) == needed;
}

int beats_gemm_bf16_avx512(const float *x, size_t x_stride, const uint16_t *w, size_t w_stride, size_t w_rows,
                           size_t columns, float *c, size_t c_stride, size_t m_begin, size_t m_end, size_t n_begin,
                           size_t n_end, void *scratch, size_t scratch_bytes) {
#ifndef BEATS_EMULATE_AVX512
    if (!beats_gemm_bf16_avx512_available()) return BEATS_ERROR_UNAVAILABLE;
#endif
    if (m_begin > m_end || n_begin > n_end || n_end > w_rows) return BEATS_ERROR_INVALID_ARGUMENT;
    if (m_begin == m_end || n_begin == n_end) return BEATS_OK;
    if (x == NULL || w == NULL || c == NULL) return BEATS_ERROR_INVALID_ARGUMENT;
    if (x_stride < columns || w_stride < columns || c_stride < n_end) return BEATS_ERROR_INVALID_ARGUMENT;
    const int status = beats_half_scratch_check(scratch, scratch_bytes);
    if (status != BEATS_OK) return status;
    if (columns == 0) { /* an empty sum */
        for (size_t m = m_begin; m < m_end; m++) memset(c + m * c_stride + n_begin, 0, (n_end - n_begin) * sizeof(float));
        return BEATS_OK;
    }
    beats_gemm_bf16_body(x, x_stride, w, w_stride, columns, c, c_stride, m_begin, m_end, n_begin, n_end,
                         (uint8_t *)scratch);
    return BEATS_OK;
}

#else /* not x86-64: the AVX512-BF16 GEMM is unavailable */

int beats_gemm_bf16_avx512_available(void) { return 0; }

int beats_gemm_bf16_avx512(const float *x, size_t x_stride, const uint16_t *w, size_t w_stride, size_t w_rows,
                           size_t columns, float *c, size_t c_stride, size_t m_begin, size_t m_end, size_t n_begin,
                           size_t n_end, void *scratch, size_t scratch_bytes) {
    (void)x, (void)x_stride, (void)w, (void)w_stride, (void)w_rows, (void)columns, (void)c, (void)c_stride;
    (void)m_begin, (void)m_end, (void)n_begin, (void)n_end, (void)scratch, (void)scratch_bytes;
    return BEATS_ERROR_UNAVAILABLE;
}

#endif
