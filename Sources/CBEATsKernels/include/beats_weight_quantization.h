#ifndef BEATS_WEIGHT_QUANTIZATION_H
#define BEATS_WEIGHT_QUANTIZATION_H

/*
 * Weight quantization for the converter: one float32 weight row to symmetric int8 with one
 * float32 scale, exactly as the native format specifies (Formats/NATIVE-FORMAT.md, int8):
 *   scale    = (float)((double)max_k |w[k]| / 127)
 *   value[k] = clamp(round_half_even((double)w[k] / (double)scale), -127, 127)
 * with the division in float64. A row whose scale is 0 (all zeros, or so small that the scale
 * underflows) is stored as zeros with scale 0.
 *
 * Both variants give the same values and scale, and the same statistics bit for bit: each
 * accumulates element k in lane k mod 8 and adds the lanes up in order 0..7, in the same
 * operations (no FMA contraction).
 */

#include <stdint.h>

#include "beats_float_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What the quantized row lost, for the converter's report. */
typedef struct beats_weight_row_stats {
    double squared_error; /* sum over the row of (w - value * scale)^2 */
    double squared_norm;  /* sum over the row of w^2 */
    double max_error;     /* largest |w - value * scale| */
} beats_weight_row_stats;

/*
 * Quantizes weights[0..count) into values[0..count) and *scale, and sets *stats for the row.
 * Returns -1, or the index of the first weight that is NaN or infinite (then nothing is
 * written). variant as for the float kernels (BEATS_FLOAT_AVX2 on a CPU without it runs the
 * portable code).
 */
long beats_quantize_weight_row(beats_float_variant variant, const float *weights, long count, int8_t *values, float *scale,
                               beats_weight_row_stats *stats);

#ifdef __cplusplus
}
#endif

#endif
