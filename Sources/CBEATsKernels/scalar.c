/*
 * Portable C variants: the reference the SIMD variants are tested against, and the kernels on
 * machines without AVX2.
 */
#include "kernels_internal.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

int beats_quantize_rows_scalar(const float *x, size_t x_stride, size_t rows, size_t columns, int max_level,
                               int8_t *q, size_t q_stride, float *scales) {
    int status = beats_quantize_check(x, x_stride, columns, max_level, q, q_stride, scales, rows);
    if (status != BEATS_OK || rows == 0 || columns == 0) return status;
    const float level = (float)max_level;
    for (size_t r = 0; r < rows; r++) {
        const float *row = x + r * x_stride;
        int8_t *out = q + r * q_stride;
        int32_t max_bits = 0;
        for (size_t k = 0; k < columns; k++) {
            const int32_t bits = beats_abs_bits(row[k]);
            max_bits = bits > max_bits ? bits : max_bits;
        }
        const float scale = beats_row_scale(max_bits, level);
        scales[r] = scale;
        if (scale == 0.0f) {
            memset(out, 0, columns);
            continue;
        }
        for (size_t k = 0; k < columns; k++) out[k] = beats_quantize_element(row[k], scale, level);
    }
    return BEATS_OK;
}

int beats_gemm_s8_scalar(const int8_t *a, size_t a_stride, const float *a_scales, const void *packed_w,
                         const float *w_scales, const float *bias, float *c, size_t c_stride, size_t m_begin,
                         size_t m_end, size_t n_begin, size_t n_end) {
    beats_packed_view view;
    int status = beats_gemm_check(a, a_stride, a_scales, packed_w, w_scales, c, c_stride, m_begin, m_end,
                                  n_begin, n_end, &view);
    if (status != BEATS_OK || m_begin == m_end || n_begin == n_end) return status;

    const size_t first_panel = n_begin / BEATS_PANEL_COLUMNS;
    const size_t end_panel = (n_end + BEATS_PANEL_COLUMNS - 1) / BEATS_PANEL_COLUMNS;
    for (size_t p = first_panel; p < end_panel; p++) {
        const int8_t *panel = beats_panel(&view, p);
        const size_t column0 = p * BEATS_PANEL_COLUMNS;
        const size_t from = n_begin > column0 ? n_begin : column0;
        const size_t to = n_end < column0 + BEATS_PANEL_COLUMNS ? n_end : column0 + BEATS_PANEL_COLUMNS;
        for (size_t m = m_begin; m < m_end; m++) {
            const int8_t *row = a + m * a_stride;
            int32_t acc[BEATS_PANEL_COLUMNS] = {0};
            for (size_t quad = 0; quad < view.quads; quad++) {
                int8_t activations[4];
                const int32_t packed_quad = beats_activation_quad(row, quad, view.columns);
                memcpy(activations, &packed_quad, 4);
                const int8_t *weights = panel + quad * BEATS_PANEL_BYTES_PER_QUAD;
                for (size_t j = 0; j < BEATS_PANEL_COLUMNS; j++) {
                    for (size_t i = 0; i < 4; i++) acc[j] += (int32_t)activations[i] * weights[4 * j + i];
                }
            }
            float *out = c + m * c_stride;
            for (size_t n = from; n < to; n++) {
                out[n] = beats_epilogue_element(acc[n - column0], a_scales[m], w_scales[n], bias, n);
            }
        }
    }
    return BEATS_OK;
}
