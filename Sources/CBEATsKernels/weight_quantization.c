/*
 * Per-row int8 weight quantization (see beats_weight_quantization.h). The converter quantizes
 * 85 M weights of the full model; in float64 scalar code the division alone kept it at about
 * 6 ns per weight, the AVX2 variant does four divisions per instruction.
 */
#include "beats_weight_quantization.h"
/* The kernels' shared rules: no FMA contraction (every variant rounds alike), BEATS_X86_64,
 * BEATS_TARGET_AVX2. */
#include "kernels_internal.h"

#include <math.h>
#include <string.h>

#if BEATS_X86_64
#include <immintrin.h>
#endif

enum { LANES = 8 };

/* -1 when all of weights[0..count) are finite, else the first index that is not. */
static long first_non_finite(const float *weights, long count) {
    for (long k = 0; k < count; k++)
        if (!isfinite(weights[k])) return k;
    return -1;
}

/* The scale of a row whose largest magnitude is `largest`. */
static float row_scale(float largest) { return (float)((double)largest / 127.0); }

/* A row whose scale is 0: stored as zeros, every weight is its own error. */
static void store_zero_row(const float *weights, long count, int8_t *values, beats_weight_row_stats *stats) {
    double lanes_error[LANES] = {0}, lanes_max[LANES] = {0};
    for (long k = 0; k < count; k++) {
        const double w = weights[k];
        const double error = fabs(w);
        lanes_error[k % LANES] += error * error;
        if (error > lanes_max[k % LANES]) lanes_max[k % LANES] = error;
        values[k] = 0;
    }
    double squared = 0, largest = 0;
    for (int lane = 0; lane < LANES; lane++) {
        squared += lanes_error[lane];
        if (lanes_max[lane] > largest) largest = lanes_max[lane];
    }
    stats->squared_error = squared;
    stats->squared_norm = squared;
    stats->max_error = largest;
}

/* One weight: its value, and its error and square added to its lane. */
static inline void quantize_element(double w, double step, int8_t *value, double *squared_error, double *squared_norm, double *max_error) {
    double q = nearbyint(w / step); /* the default rounding mode: to nearest, ties to even */
    q = q < -127.0 ? -127.0 : (q > 127.0 ? 127.0 : q);
    *value = (int8_t)q;
    const double error = fabs(w - q * step);
    *squared_error += error * error;
    *squared_norm += w * w;
    *max_error = error > *max_error ? error : *max_error;
}

static void reduce_lanes(const double *squared_error, const double *squared_norm, const double *max_error, beats_weight_row_stats *stats) {
    double error = 0, norm = 0, largest = 0;
    for (int lane = 0; lane < LANES; lane++) {
        error += squared_error[lane];
        norm += squared_norm[lane];
        if (max_error[lane] > largest) largest = max_error[lane];
    }
    stats->squared_error = error;
    stats->squared_norm = norm;
    stats->max_error = largest;
}

static long quantize_portable(const float *weights, long count, int8_t *values, float *scale, beats_weight_row_stats *stats) {
    const long bad = first_non_finite(weights, count);
    if (bad >= 0) return bad;
    float largest = 0;
    for (long k = 0; k < count; k++) {
        const float magnitude = fabsf(weights[k]);
        if (magnitude > largest) largest = magnitude;
    }
    *scale = row_scale(largest);
    if (*scale == 0) {
        store_zero_row(weights, count, values, stats);
        return -1;
    }
    const double step = *scale;
    double squared_error[LANES] = {0}, squared_norm[LANES] = {0}, max_error[LANES] = {0};
    for (long k = 0; k < count; k++)
        quantize_element(weights[k], step, &values[k], &squared_error[k % LANES], &squared_norm[k % LANES], &max_error[k % LANES]);
    reduce_lanes(squared_error, squared_norm, max_error, stats);
    return -1;
}

#if BEATS_X86_64
#define AVX2 BEATS_TARGET_AVX2

/* Four doubles to four int8 (already integers in [-127, 127]), stored at out. */
AVX2 static inline void store_four(__m256d rounded, int8_t *out) {
    const __m128i words = _mm256_cvtpd_epi32(rounded);
    const __m128i halves = _mm_packs_epi32(words, words);
    const __m128i bytes = _mm_packs_epi16(halves, halves);
    const int32_t packed = _mm_cvtsi128_si32(bytes);
    memcpy(out, &packed, 4);
}

AVX2 static inline void quantize_four(__m128 floats, __m256d step, int8_t *out, __m256d *squared_error, __m256d *squared_norm,
                                      __m256d *max_error) {
    const __m256d w = _mm256_cvtps_pd(floats);
    __m256d q = _mm256_round_pd(_mm256_div_pd(w, step), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    q = _mm256_min_pd(_mm256_max_pd(q, _mm256_set1_pd(-127.0)), _mm256_set1_pd(127.0));
    store_four(q, out);
    const __m256d error = _mm256_andnot_pd(_mm256_set1_pd(-0.0), _mm256_sub_pd(w, _mm256_mul_pd(q, step)));
    *squared_error = _mm256_add_pd(*squared_error, _mm256_mul_pd(error, error));
    *squared_norm = _mm256_add_pd(*squared_norm, _mm256_mul_pd(w, w));
    /* maxpd(a, b) is a > b ? a : b, as the portable code's error > max ? error : max. */
    *max_error = _mm256_max_pd(error, *max_error);
}

AVX2 static long quantize_avx2(const float *weights, long count, int8_t *values, float *scale, beats_weight_row_stats *stats) {
    const __m256 sign = _mm256_set1_ps(-0.0f), infinity = _mm256_set1_ps(INFINITY);
    __m256 largest8 = _mm256_setzero_ps();
    int all_finite = 1;
    long k = 0;
    for (; k + 8 <= count; k += 8) {
        const __m256 magnitude = _mm256_andnot_ps(sign, _mm256_loadu_ps(weights + k));
        all_finite &= _mm256_movemask_ps(_mm256_cmp_ps(magnitude, infinity, _CMP_LT_OQ)) == 0xff;
        largest8 = _mm256_max_ps(largest8, magnitude);
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, largest8);
    float largest = 0;
    for (int lane = 0; lane < 8; lane++) largest = lanes[lane] > largest ? lanes[lane] : largest;
    for (; k < count; k++) {
        const float magnitude = fabsf(weights[k]);
        all_finite &= isfinite(magnitude) != 0;
        largest = magnitude > largest ? magnitude : largest;
    }
    if (!all_finite) return first_non_finite(weights, count);

    *scale = row_scale(largest);
    if (*scale == 0) {
        store_zero_row(weights, count, values, stats);
        return -1;
    }
    const __m256d step = _mm256_set1_pd(*scale);
    __m256d error_low = _mm256_setzero_pd(), error_high = _mm256_setzero_pd();
    __m256d norm_low = _mm256_setzero_pd(), norm_high = _mm256_setzero_pd();
    __m256d max_low = _mm256_setzero_pd(), max_high = _mm256_setzero_pd();
    k = 0;
    for (; k + 8 <= count; k += 8) {
        quantize_four(_mm_loadu_ps(weights + k), step, values + k, &error_low, &norm_low, &max_low);
        quantize_four(_mm_loadu_ps(weights + k + 4), step, values + k + 4, &error_high, &norm_high, &max_high);
    }
    double squared_error[LANES], squared_norm[LANES], max_error[LANES];
    _mm256_storeu_pd(squared_error, error_low), _mm256_storeu_pd(squared_error + 4, error_high);
    _mm256_storeu_pd(squared_norm, norm_low), _mm256_storeu_pd(squared_norm + 4, norm_high);
    _mm256_storeu_pd(max_error, max_low), _mm256_storeu_pd(max_error + 4, max_high);
    for (; k < count; k++)
        quantize_element(weights[k], (double)*scale, &values[k], &squared_error[k % LANES], &squared_norm[k % LANES], &max_error[k % LANES]);
    reduce_lanes(squared_error, squared_norm, max_error, stats);
    return -1;
}
#endif

long beats_quantize_weight_row(beats_float_variant variant, const float *weights, long count, int8_t *values, float *scale,
                               beats_weight_row_stats *stats) {
    if (count <= 0) {
        *scale = 0;
        stats->squared_error = stats->squared_norm = stats->max_error = 0;
        return -1;
    }
#if BEATS_X86_64
    /* beats_float_best_variant also checks that the OS saves YMM state. */
    if (variant == BEATS_FLOAT_AVX2 && beats_float_best_variant() == BEATS_FLOAT_AVX2) return quantize_avx2(weights, count, values, scale, stats);
#endif
    (void)variant;
    return quantize_portable(weights, count, values, scale, stats);
}
