/*
 * float16 / bfloat16 weights: exact row conversion to float32 (portable and AVX2 + F16C), the
 * convert-a-chunk-then-sgemm product, variant availability, and the BF16 GEMM's per-thread scratch.
 * The AVX512-BF16 GEMM itself is in half_avx512bf16.c.
 */
#include "half_kernels_internal.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#if BEATS_X86_64
#include <immintrin.h>
#endif

/* ---- Element conversions (the definition every variant matches) ------------------------------- */

float beats_f16_to_float(uint16_t bits) {
    const uint32_t sign = (uint32_t)(bits & 0x8000u) << 16;
    const uint32_t magnitude = bits & 0x7fffu;
    uint32_t result;
    if (magnitude >= 0x7c00u) {
        /* Inf, or NaN made quiet (bit 22) with its payload moved to the top of the float's. */
        const uint32_t payload = (magnitude & 0x3ffu) << 13;
        result = 0x7f800000u | payload | (payload != 0 ? 0x00400000u : 0);
    } else if (magnitude >= 0x0400u) {
        /* Normal: rebias the exponent (15 → 127), 112 << 23 = 0x38000000. */
        result = (magnitude << 13) + 0x38000000u;
    } else {
        /* Zero or subnormal: m · 2^-24, exact in float32 (m < 2^10, a power-of-two scale). */
        const float value = (float)magnitude * 0x1p-24f;
        memcpy(&result, &value, sizeof result);
    }
    result |= sign;
    float value;
    memcpy(&value, &result, sizeof value);
    return value;
}

float beats_bf16_to_float(uint16_t bits) {
    const uint32_t widened = (uint32_t)bits << 16;
    float value;
    memcpy(&value, &widened, sizeof value);
    return value;
}

uint16_t beats_float_to_bf16_activation(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    const uint32_t magnitude = bits & 0x7fffffffu;
    if (magnitude > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x0040u); /* NaN: quiet */
    if (magnitude < 0x00800000u) return (uint16_t)((bits >> 16) & 0x8000u); /* zero, subnormal: ±0 */
    const uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);                 /* nearest, ties to even */
    return (uint16_t)((bits + rounding) >> 16);
}

/* ---- Variants -------------------------------------------------------------------------------- */

int beats_half_variant_available(beats_half_variant variant) {
    switch (variant) {
    case BEATS_HALF_PORTABLE:
        return 1;
    case BEATS_HALF_F16C: {
        const uint32_t needed = BEATS_CPU_AVX2 | BEATS_CPU_F16C;
        return BEATS_X86_64 && (beats_cpu_features() & needed) == needed;
    }
    default:
        return 0;
    }
}

const char *beats_half_variant_name(beats_half_variant variant) {
    switch (variant) {
    case BEATS_HALF_PORTABLE: return "portable";
    case BEATS_HALF_F16C: return "f16c";
    default: return "unknown";
    }
}

/* ---- Row conversion -------------------------------------------------------------------------- */

static int beats_half_convert_check(beats_half_format format, const uint16_t *w, size_t w_stride, size_t rows,
                                    size_t columns, const float *out, size_t out_stride) {
    if (format != BEATS_HALF_F16 && format != BEATS_HALF_BF16) return BEATS_ERROR_INVALID_ARGUMENT;
    if (rows == 0 || columns == 0) return BEATS_OK;
    if (w == NULL || out == NULL) return BEATS_ERROR_INVALID_ARGUMENT;
    if (w_stride < columns || out_stride < columns) return BEATS_ERROR_INVALID_ARGUMENT;
    return BEATS_OK;
}

static void beats_half_rows_portable(beats_half_format format, const uint16_t *w, size_t w_stride, size_t rows,
                                     size_t columns, float *out, size_t out_stride) {
    for (size_t r = 0; r < rows; r++) {
        const uint16_t *row = w + r * w_stride;
        float *target = out + r * out_stride;
        if (format == BEATS_HALF_BF16) {
            for (size_t k = 0; k < columns; k++) target[k] = beats_bf16_to_float(row[k]);
        } else {
            for (size_t k = 0; k < columns; k++) target[k] = beats_f16_to_float(row[k]);
        }
    }
}

int beats_half_to_float_rows_portable(beats_half_format format, const uint16_t *w, size_t w_stride, size_t rows,
                                      size_t columns, float *out, size_t out_stride) {
    const int status = beats_half_convert_check(format, w, w_stride, rows, columns, out, out_stride);
    if (status != BEATS_OK || rows == 0 || columns == 0) return status;
    beats_half_rows_portable(format, w, w_stride, rows, columns, out, out_stride);
    return BEATS_OK;
}

#if BEATS_X86_64

/* vcvtph2ps converts every binary16 exactly (subnormals included, whatever MXCSR says) and quiets
 * signalling NaNs keeping the payload: the same bits as beats_f16_to_float (the tests check all 65 536). */
BEATS_TARGET_F16C static void beats_half_rows_f16c(beats_half_format format, const uint16_t *w, size_t w_stride,
                                                   size_t rows, size_t columns, float *out, size_t out_stride) {
    for (size_t r = 0; r < rows; r++) {
        const uint16_t *row = w + r * w_stride;
        float *target = out + r * out_stride;
        size_t k = 0;
        if (format == BEATS_HALF_BF16) {
            for (; k + 16 <= columns; k += 16) {
                const __m256i h = _mm256_loadu_si256((const __m256i *)(const void *)(row + k));
                const __m256i low = _mm256_cvtepu16_epi32(_mm256_castsi256_si128(h));
                const __m256i high = _mm256_cvtepu16_epi32(_mm256_extracti128_si256(h, 1));
                _mm256_storeu_si256((__m256i *)(void *)(target + k), _mm256_slli_epi32(low, 16));
                _mm256_storeu_si256((__m256i *)(void *)(target + k + 8), _mm256_slli_epi32(high, 16));
            }
            for (; k < columns; k++) target[k] = beats_bf16_to_float(row[k]);
        } else {
            for (; k + 32 <= columns; k += 32) {
                const __m128i h0 = _mm_loadu_si128((const __m128i *)(const void *)(row + k));
                const __m128i h1 = _mm_loadu_si128((const __m128i *)(const void *)(row + k + 8));
                const __m128i h2 = _mm_loadu_si128((const __m128i *)(const void *)(row + k + 16));
                const __m128i h3 = _mm_loadu_si128((const __m128i *)(const void *)(row + k + 24));
                _mm256_storeu_ps(target + k, _mm256_cvtph_ps(h0));
                _mm256_storeu_ps(target + k + 8, _mm256_cvtph_ps(h1));
                _mm256_storeu_ps(target + k + 16, _mm256_cvtph_ps(h2));
                _mm256_storeu_ps(target + k + 24, _mm256_cvtph_ps(h3));
            }
            for (; k + 8 <= columns; k += 8) {
                _mm256_storeu_ps(target + k, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(row + k))));
            }
            for (; k < columns; k++) target[k] = beats_f16_to_float(row[k]);
        }
    }
}

int beats_half_to_float_rows_f16c(beats_half_format format, const uint16_t *w, size_t w_stride, size_t rows,
                                  size_t columns, float *out, size_t out_stride) {
    if (!beats_half_variant_available(BEATS_HALF_F16C)) return BEATS_ERROR_UNAVAILABLE;
    const int status = beats_half_convert_check(format, w, w_stride, rows, columns, out, out_stride);
    if (status != BEATS_OK || rows == 0 || columns == 0) return status;
    beats_half_rows_f16c(format, w, w_stride, rows, columns, out, out_stride);
    return BEATS_OK;
}

#else /* not x86-64 */

int beats_half_to_float_rows_f16c(beats_half_format format, const uint16_t *w, size_t w_stride, size_t rows,
                                  size_t columns, float *out, size_t out_stride) {
    (void)format, (void)w, (void)w_stride, (void)rows, (void)columns, (void)out, (void)out_stride;
    return BEATS_ERROR_UNAVAILABLE;
}

#endif

/* ---- Convert a chunk, then sgemm -------------------------------------------------------------- */

enum { BEATS_CBLAS_ROW_MAJOR = 101, BEATS_CBLAS_NO_TRANS = 111, BEATS_CBLAS_TRANS = 112 };

/* Splits `count` into ceil(count / limit) pieces of `step` (a multiple of 8, ≤ limit when limit is one)
 * elements, the last one smaller: the step of that split. */
static size_t beats_half_split_step(size_t count, size_t limit) {
    const size_t pieces = (count + limit - 1) / limit;
    return beats_round_up((count + pieces - 1) / pieces, 8);
}

int beats_half_gemm_sgemm(beats_half_variant variant, beats_half_format format, beats_sgemm_function sgemm,
                          const float *x, size_t x_stride, size_t rows,
                          const uint16_t *w, size_t w_stride, size_t columns,
                          float *c, size_t c_stride, size_t n_begin, size_t n_end,
                          float *scratch, size_t scratch_floats) {
    if (variant != BEATS_HALF_PORTABLE && variant != BEATS_HALF_F16C) return BEATS_ERROR_INVALID_ARGUMENT;
    if (!beats_half_variant_available(variant)) return BEATS_ERROR_UNAVAILABLE;
    if (format != BEATS_HALF_F16 && format != BEATS_HALF_BF16) return BEATS_ERROR_INVALID_ARGUMENT;
    if (n_begin > n_end) return BEATS_ERROR_INVALID_ARGUMENT;
    if (rows == 0 || n_begin == n_end) return BEATS_OK;
    if (x == NULL || w == NULL || c == NULL || scratch == NULL || sgemm == NULL) return BEATS_ERROR_INVALID_ARGUMENT;
    if (x_stride < columns || w_stride < columns || c_stride < n_end) return BEATS_ERROR_INVALID_ARGUMENT;
    if (scratch_floats < BEATS_HALF_MIN_SCRATCH_FLOATS) return BEATS_ERROR_INVALID_ARGUMENT;
    if (rows > INT_MAX || columns > INT_MAX || x_stride > INT_MAX || c_stride > INT_MAX || n_end > INT_MAX) {
        return BEATS_ERROR_INVALID_ARGUMENT;
    }
    if (columns == 0) { /* an empty sum */
        for (size_t m = 0; m < rows; m++) memset(c + m * c_stride + n_begin, 0, (n_end - n_begin) * sizeof(float));
        return BEATS_OK;
    }

    const size_t depth_step = beats_half_split_step(columns, BEATS_HALF_SLAB_DEPTH);
    const size_t slab_floats = depth_step < columns ? depth_step : columns;
    const size_t chunk_limit = scratch_floats / slab_floats / 8 * 8; /* ≥ 8: see BEATS_HALF_MIN_SCRATCH_FLOATS */
    const size_t chunk_step = beats_half_split_step(n_end - n_begin, chunk_limit);
    for (size_t k0 = 0; k0 < columns; k0 += depth_step) {
        const size_t depth = columns - k0 < depth_step ? columns - k0 : depth_step;
        for (size_t n0 = n_begin; n0 < n_end; n0 += chunk_step) {
            const size_t chunk = n_end - n0 < chunk_step ? n_end - n0 : chunk_step;
            const uint16_t *block = w + n0 * w_stride + k0;
            if (variant == BEATS_HALF_F16C) {
#if BEATS_X86_64
                beats_half_rows_f16c(format, block, w_stride, chunk, depth, scratch, depth);
#endif
            } else {
                beats_half_rows_portable(format, block, w_stride, chunk, depth, scratch, depth);
            }
            sgemm(BEATS_CBLAS_ROW_MAJOR, BEATS_CBLAS_NO_TRANS, BEATS_CBLAS_TRANS, (int)rows, (int)chunk, (int)depth,
                  1.0f, x + k0, (int)x_stride, scratch, (int)depth, k0 == 0 ? 0.0f : 1.0f, c + n0, (int)c_stride);
        }
    }
    return BEATS_OK;
}

/* ---- The BF16 GEMM's per-thread scratch ------------------------------------------------------- */

static pthread_key_t beats_half_scratch_key;
static int beats_half_scratch_key_ready = 0;
static pthread_once_t beats_half_scratch_once = PTHREAD_ONCE_INIT;

static void beats_half_make_scratch_key(void) {
    beats_half_scratch_key_ready = pthread_key_create(&beats_half_scratch_key, free) == 0;
}

void *beats_half_thread_scratch(void) {
    pthread_once(&beats_half_scratch_once, beats_half_make_scratch_key);
    if (!beats_half_scratch_key_ready) return NULL;
    void *scratch = pthread_getspecific(beats_half_scratch_key);
    if (scratch != NULL) return scratch;
    void *allocated = aligned_alloc(64, beats_round_up(BEATS_BF16_SCRATCH_BYTES, 64));
    if (allocated == NULL) return NULL;
    if (pthread_setspecific(beats_half_scratch_key, allocated) != 0) {
        free(allocated);
        return NULL;
    }
    return allocated;
}
