/*
 * The portable int4 GEMM: the reference the SIMD variants are tested against (bitwise), and the
 * kernel on machines without AVX2 + F16C. It reads the packed layout directly, one output panel of
 * 16 columns at a time, in the float order beats_q4_kernels.h defines.
 */
#include "q4_internal.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

int beats_gemm_q4_scalar(const int8_t *a, size_t a_stride, const float *a_scales, const int32_t *a_sums,
                         size_t sums_stride, const void *packed_w, const float *bias, float *c, size_t c_stride,
                         size_t m_begin, size_t m_end, size_t n_begin, size_t n_end) {
    beats_q4_view view;
    const int status = beats_q4_gemm_check(a, a_stride, a_scales, a_sums, sums_stride, packed_w, c, c_stride, m_begin,
                                           m_end, n_begin, n_end, &view);
    if (status != BEATS_OK || m_begin == m_end || n_begin == n_end) return status;

    const size_t first_panel = n_begin / BEATS_Q4_PANEL_ROWS;
    const size_t end_panel = (n_end + BEATS_Q4_PANEL_ROWS - 1) / BEATS_Q4_PANEL_ROWS;
    for (size_t p = first_panel; p < end_panel; p++) {
        const uint8_t *panel = beats_q4_panel(&view, p);
        const size_t column0 = p * BEATS_Q4_PANEL_ROWS;
        const size_t from = n_begin > column0 ? n_begin : column0;
        const size_t to = n_end < column0 + BEATS_Q4_PANEL_ROWS ? n_end : column0 + BEATS_Q4_PANEL_ROWS;
        for (size_t m = m_begin; m < m_end; m++) {
            const int8_t *row = a + m * a_stride;
            const int32_t *sums = a_sums + m * sums_stride;
            float acc[BEATS_Q4_PANEL_ROWS] = {0};
            for (size_t g = 0; g < view.groups; g++) {
                int32_t dot[BEATS_Q4_PANEL_ROWS] = {0};
                for (size_t o = g * view.blocks_per_group; o < (g + 1) * view.blocks_per_group; o++) {
                    const uint8_t *block = panel + o * BEATS_Q4_BLOCK_BYTES;
                    const int8_t *values = row + 8 * o;
                    for (size_t j = 0; j < BEATS_Q4_PANEL_ROWS; j++) {
                        for (size_t i = 0; i < 4; i++) {
                            const uint8_t byte = block[4 * j + i];
                            dot[j] += (int32_t)values[i] * (byte & 0x0f) + (int32_t)values[4 + i] * (byte >> 4);
                        }
                    }
                }
                const uint8_t *entry = beats_q4_scale_entry(&view, p, g);
                for (size_t j = 0; j < BEATS_Q4_PANEL_ROWS; j++) {
                    const float scale = beats_q4_half_to_float_inline(beats_q4_load_half(entry + 2 * j));
                    const float minimum = beats_q4_half_to_float_inline(beats_q4_load_half(entry + 32 + 2 * j));
                    acc[j] = acc[j] + beats_q4_group_term(scale, dot[j], minimum, sums[g]);
                }
            }
            float *out = c + m * c_stride;
            for (size_t n = from; n < to; n++) out[n] = beats_q4_epilogue(acc[n - column0], a_scales[m], bias, n);
        }
    }
    return BEATS_OK;
}
