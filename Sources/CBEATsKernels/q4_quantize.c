/*
 * int4 group-wise weight quantization for the converter (beats_q4_kernels.h). Scalar on purpose:
 * it runs once per model at conversion, and its float64 steps are the definition the tests and the
 * native format's description repeat.
 */
#include "q4_internal.h"

#include <math.h>

/* One group of `group` weights → q, f16 scale and minimum; adds to the row's statistics.
 * lo and hi: the first of equal values wins (so −0 and +0 keep the order they come in). */
static int beats_q4_quantize_group(const float *x, size_t group, uint8_t *q, uint16_t *scale_bits,
                                   uint16_t *minimum_bits, double *squared_error, double *squared_norm,
                                   double *max_error) {
    float lo = x[0], hi = x[0];
    for (size_t k = 0; k < group; k++) {
        if (!isfinite(x[k])) return BEATS_ERROR_NOT_FLOAT16;
        if (x[k] < lo) lo = x[k];
        if (x[k] > hi) hi = x[k];
    }
    if (fabsf(lo) > BEATS_Q4_FLOAT16_MAX || fabsf(hi) > BEATS_Q4_FLOAT16_MAX) return BEATS_ERROR_NOT_FLOAT16;
    const double step = ((double)hi - (double)lo) / 15.0;
    /* Cannot exceed (2·65504)/15 once lo and hi fit, but the rule is part of the definition. */
    if (step > BEATS_Q4_FLOAT16_MAX) return BEATS_ERROR_NOT_FLOAT16;
    *minimum_bits = beats_q4_half_from_double((double)lo);
    *scale_bits = beats_q4_half_from_double(step);
    const float minimum = beats_q4_half_to_float_inline(*minimum_bits);
    const float scale = beats_q4_half_to_float_inline(*scale_bits);
    for (size_t k = 0; k < group; k++) {
        double level = 0.0;
        if (scale != 0.0f) {
            level = nearbyint(((double)x[k] - (double)minimum) / (double)scale); /* ties to even */
            level = level < 0.0 ? 0.0 : (level > 15.0 ? 15.0 : level);
        }
        q[k] = (uint8_t)level;
        /* The weight the kernels stand for: float32 product, then float32 sum. */
        const float product = scale * (float)q[k];
        const float dequantized = product + minimum;
        const double error = (double)x[k] - (double)dequantized;
        *squared_error += error * error;
        *squared_norm += (double)x[k] * (double)x[k];
        if (fabs(error) > *max_error) *max_error = fabs(error);
    }
    return BEATS_OK;
}

int beats_q4_quantize_weights(const float *w, size_t w_stride, size_t rows, size_t columns, size_t group,
                              uint8_t *q, size_t q_stride, uint16_t *scales, uint16_t *minimums,
                              beats_weight_row_stats *stats) {
    if (!beats_q4_group_size_valid(group) || columns == 0 || columns % group != 0) return BEATS_ERROR_GROUP_SIZE;
    if (rows == 0) return BEATS_OK;
    if (w == NULL || q == NULL || scales == NULL || minimums == NULL || w_stride < columns || q_stride < columns) {
        return BEATS_ERROR_INVALID_ARGUMENT;
    }
    const size_t groups = columns / group;
    for (size_t r = 0; r < rows; r++) {
        double squared_error = 0, squared_norm = 0, max_error = 0;
        for (size_t g = 0; g < groups; g++) {
            const int status = beats_q4_quantize_group(w + r * w_stride + g * group, group, q + r * q_stride + g * group,
                                                       &scales[r * groups + g], &minimums[r * groups + g],
                                                       &squared_error, &squared_norm, &max_error);
            if (status != BEATS_OK) return status;
        }
        if (stats != NULL) {
            stats[r].squared_error = squared_error;
            stats[r].squared_norm = squared_norm;
            stats[r].max_error = max_error;
        }
    }
    return BEATS_OK;
}
