/*
 * The int4 packed layout (beats_q4_kernels.h): sizes, packing, validation of stored bytes,
 * unpacking; plus the binary16 conversions, the int4 variants' availability and the activation
 * group sums, which every variant shares.
 */
#include "q4_internal.h"

#include <math.h>

int beats_q4_kernel_available(beats_kernel_variant variant) {
    switch (variant) {
    case BEATS_KERNEL_SCALAR:
        return 1;
    case BEATS_KERNEL_AVX2:
        return beats_kernel_available(BEATS_KERNEL_AVX2) && (beats_cpu_features() & BEATS_CPU_F16C) != 0;
    case BEATS_KERNEL_AVX512VNNI:
        /* AVX-512F includes the 512-bit vcvtph2ps. */
        return beats_kernel_available(BEATS_KERNEL_AVX512VNNI);
    default:
        return 0;
    }
}

int beats_q4_group_size_valid(size_t group) { return group == 32 || group == 64 || group == 128; }

float beats_q4_half_to_float(uint16_t bits) { return beats_q4_half_to_float_inline(bits); }

uint16_t beats_q4_half_from_double(double value) {
    const uint16_t sign = signbit(value) ? 0x8000u : 0;
    const double magnitude = fabs(value);
    if (isnan(value)) return (uint16_t)(sign | 0x7e00u);
    /* Halfway between 65504 and the next binade's first value (65536) rounds up, to Inf. */
    if (magnitude >= 65520.0) return (uint16_t)(sign | 0x7c00u);
    if (magnitude < 0x1p-14) {
        /* Subnormal range: a multiple of 2^-24, scaled exactly, rounded once (ties to even in the
         * default rounding mode). 1024 · 2^-24 is the smallest normal, whose encoding follows on. */
        return (uint16_t)(sign | (uint16_t)nearbyint(magnitude * 0x1p24));
    }
    int exponent;
    (void)frexp(magnitude, &exponent); /* magnitude = f · 2^exponent, f in [0.5, 1) */
    exponent -= 1;                     /* magnitude = 1.x · 2^exponent, exponent in [-14, 15] */
    double mantissa = nearbyint(ldexp(magnitude, 10 - exponent)); /* [1024, 2048], one rounding */
    if (mantissa == 2048.0) {
        mantissa = 1024.0;
        exponent += 1;
    }
    return (uint16_t)(sign | (uint16_t)((exponent + 15) << 10) | (uint16_t)((uint32_t)mantissa - 1024u));
}

/* ---- Packing ------------------------------------------------------------------------------------- */

size_t beats_q4_packed_size(size_t rows, size_t columns, size_t group) {
    return beats_q4_sizes(rows, columns, group, NULL, NULL);
}

static int beats_q4_half_finite(uint16_t bits) { return (bits & 0x7c00u) != 0x7c00u; }

int beats_q4_pack(const uint8_t *q, size_t q_stride, const uint16_t *scales, const uint16_t *minimums, size_t rows,
                  size_t columns, size_t group, void *packed, size_t packed_size) {
    if (q == NULL || scales == NULL || minimums == NULL || packed == NULL || rows == 0) {
        return BEATS_ERROR_INVALID_ARGUMENT;
    }
    if (!beats_q4_group_size_valid(group) || columns == 0 || columns % group != 0) return BEATS_ERROR_GROUP_SIZE;
    if (columns > BEATS_MAX_COLUMNS || rows > BEATS_Q4_MAX_ROWS) return BEATS_ERROR_TOO_LARGE;
    if (q_stride < columns) return BEATS_ERROR_INVALID_ARGUMENT;
    size_t rows_padded = 0, scales_offset = 0;
    const size_t total = beats_q4_sizes(rows, columns, group, &rows_padded, &scales_offset);
    if (total == 0) return BEATS_ERROR_TOO_LARGE;
    if (packed_size < total) return BEATS_ERROR_INVALID_ARGUMENT;
    if (((uintptr_t)packed % BEATS_Q4_ALIGNMENT) != 0) return BEATS_ERROR_MISALIGNED;

    const size_t groups = columns / group, blocks = columns / 8;
    uint8_t *base = (uint8_t *)packed;
    /* Zero everything first: the header stays invalid until the end, padding rows are 0. */
    memset(base, 0, total);
    uint8_t *weights = base + BEATS_Q4_HEADER_BYTES, *scale_section = base + scales_offset;
    for (size_t n = 0; n < rows; n++) {
        const uint8_t *row = q + n * q_stride;
        const size_t p = n / BEATS_Q4_PANEL_ROWS, j = n % BEATS_Q4_PANEL_ROWS;
        uint8_t *panel = weights + p * blocks * BEATS_Q4_BLOCK_BYTES;
        for (size_t o = 0; o < blocks; o++) {
            for (size_t i = 0; i < 4; i++) {
                const uint8_t low = row[8 * o + i], high = row[8 * o + 4 + i];
                if (low > 15 || high > 15) return BEATS_ERROR_INT4_OUT_OF_RANGE;
                panel[o * BEATS_Q4_BLOCK_BYTES + 4 * j + i] = (uint8_t)(low | (high << 4));
            }
        }
        for (size_t g = 0; g < groups; g++) {
            const uint16_t scale = scales[n * groups + g], minimum = minimums[n * groups + g];
            if (!beats_q4_half_finite(scale) || !beats_q4_half_finite(minimum)) return BEATS_ERROR_INT4_OUT_OF_RANGE;
            uint8_t *entry = scale_section + (p * groups + g) * BEATS_Q4_SCALE_ENTRY_BYTES;
            memcpy(entry + 2 * j, &scale, 2);
            memcpy(entry + 32 + 2 * j, &minimum, 2);
        }
    }
    const beats_q4_header header = {
        .magic = BEATS_Q4_MAGIC,
        .version = BEATS_Q4_VERSION,
        .rows = rows,
        .columns = columns,
        .group_size = (uint32_t)group,
        .reserved = 0,
        .rows_padded = rows_padded,
        .weights_offset = BEATS_Q4_HEADER_BYTES,
        .scales_offset = scales_offset,
        .total_size = total,
    };
    memcpy(base, &header, sizeof header);
    return BEATS_OK;
}

/* beats_q4_open plus the buffer's length: the header and everything it describes lie inside. */
static int beats_q4_open_sized(const void *packed, size_t packed_size, beats_q4_view *view) {
    if (packed == NULL) return BEATS_ERROR_BAD_PACKED_INT4;
    if (((uintptr_t)packed % BEATS_Q4_ALIGNMENT) != 0) return BEATS_ERROR_MISALIGNED;
    if (packed_size < BEATS_Q4_HEADER_BYTES) return BEATS_ERROR_BAD_PACKED_INT4;
    const int status = beats_q4_open(packed, view);
    if (status != BEATS_OK) return status;
    return view->total_size <= packed_size ? BEATS_OK : BEATS_ERROR_BAD_PACKED_INT4;
}

int beats_q4_packed_shape(const void *packed, size_t packed_size, size_t *rows, size_t *columns, size_t *group) {
    beats_q4_view view;
    const int status = beats_q4_open_sized(packed, packed_size, &view);
    if (status != BEATS_OK) return status;
    if (rows != NULL) *rows = view.rows;
    if (columns != NULL) *columns = view.columns;
    if (group != NULL) *group = view.group;
    return BEATS_OK;
}

int beats_q4_unpack(const void *packed, size_t packed_size, uint8_t *q, size_t q_stride, uint16_t *scales,
                    uint16_t *minimums) {
    beats_q4_view view;
    const int status = beats_q4_open_sized(packed, packed_size, &view);
    if (status != BEATS_OK) return status;
    if (q == NULL || scales == NULL || minimums == NULL || q_stride < view.columns) return BEATS_ERROR_INVALID_ARGUMENT;
    for (size_t n = 0; n < view.rows; n++) {
        uint8_t *row = q + n * q_stride;
        const size_t p = n / BEATS_Q4_PANEL_ROWS, j = n % BEATS_Q4_PANEL_ROWS;
        const uint8_t *panel = beats_q4_panel(&view, p);
        for (size_t o = 0; o < view.blocks; o++) {
            for (size_t i = 0; i < 4; i++) {
                const uint8_t byte = panel[o * BEATS_Q4_BLOCK_BYTES + 4 * j + i];
                row[8 * o + i] = byte & 0x0f;
                row[8 * o + 4 + i] = byte >> 4;
            }
        }
        for (size_t g = 0; g < view.groups; g++) {
            const uint8_t *entry = beats_q4_scale_entry(&view, p, g);
            scales[n * view.groups + g] = beats_q4_load_half(entry + 2 * j);
            minimums[n * view.groups + g] = beats_q4_load_half(entry + 32 + 2 * j);
        }
    }
    return BEATS_OK;
}

/* ---- Activation group sums ----------------------------------------------------------------------- */

/* Exact integers, so every way of adding gives the same sums. The AVX2 form adds 8 bytes per
 * vpsadbw lane (on a ^ 0x80 = a + 128, unsigned), several times faster than the plain loop. */

static int beats_q4_sums_check(const int8_t *a, size_t a_stride, size_t rows, size_t columns, size_t group,
                               const int32_t *sums, size_t sums_stride) {
    if (!beats_q4_group_size_valid(group) || columns == 0 || columns % group != 0) return BEATS_ERROR_GROUP_SIZE;
    if (rows == 0) return BEATS_OK;
    if (a == NULL || sums == NULL || a_stride < columns || sums_stride < columns / group) return BEATS_ERROR_INVALID_ARGUMENT;
    return BEATS_OK;
}

int beats_q4_activation_sums_scalar(const int8_t *a, size_t a_stride, size_t rows, size_t columns, size_t group,
                                    int32_t *sums, size_t sums_stride) {
    const int status = beats_q4_sums_check(a, a_stride, rows, columns, group, sums, sums_stride);
    if (status != BEATS_OK || rows == 0) return status;
    const size_t groups = columns / group;
    for (size_t r = 0; r < rows; r++) {
        const int8_t *row = a + r * a_stride;
        int32_t *out = sums + r * sums_stride;
        for (size_t g = 0; g < groups; g++) {
            int32_t sum = 0;
            const int8_t *values = row + g * group;
            for (size_t k = 0; k < group; k++) sum += values[k];
            out[g] = sum;
        }
    }
    return BEATS_OK;
}

#if BEATS_X86_64
#include <immintrin.h>

BEATS_TARGET_AVX2 static void beats_q4_sums_avx2_body(const int8_t *a, size_t a_stride, size_t rows, size_t groups,
                                                      size_t group, int32_t *sums, size_t sums_stride) {
    const __m256i offset = _mm256_set1_epi8((char)0x80), zero = _mm256_setzero_si256();
    for (size_t r = 0; r < rows; r++) {
        const int8_t *row = a + r * a_stride;
        int32_t *out = sums + r * sums_stride;
        for (size_t g = 0; g < groups; g++) {
            __m256i total = zero;
            for (size_t k = g * group; k < (g + 1) * group; k += 32) {
                const __m256i bytes = _mm256_loadu_si256((const __m256i *)(const void *)(row + k));
                total = _mm256_add_epi64(total, _mm256_sad_epu8(_mm256_xor_si256(bytes, offset), zero));
            }
            __m128i half = _mm_add_epi64(_mm256_castsi256_si128(total), _mm256_extracti128_si256(total, 1));
            half = _mm_add_epi64(half, _mm_unpackhi_epi64(half, half));
            out[g] = (int32_t)_mm_cvtsi128_si64(half) - 128 * (int32_t)group;
        }
    }
}

int beats_q4_activation_sums_avx2(const int8_t *a, size_t a_stride, size_t rows, size_t columns, size_t group,
                                  int32_t *sums, size_t sums_stride) {
    if (!beats_kernel_available(BEATS_KERNEL_AVX2)) return BEATS_ERROR_UNAVAILABLE;
    const int status = beats_q4_sums_check(a, a_stride, rows, columns, group, sums, sums_stride);
    if (status != BEATS_OK || rows == 0) return status;
    beats_q4_sums_avx2_body(a, a_stride, rows, columns / group, group, sums, sums_stride);
    return BEATS_OK;
}
#else
int beats_q4_activation_sums_avx2(const int8_t *a, size_t a_stride, size_t rows, size_t columns, size_t group,
                                  int32_t *sums, size_t sums_stride) {
    (void)a, (void)a_stride, (void)rows, (void)columns, (void)group, (void)sums, (void)sums_stride;
    return BEATS_ERROR_UNAVAILABLE;
}
#endif

int beats_q4_activation_sums(const int8_t *a, size_t a_stride, size_t rows, size_t columns, size_t group, int32_t *sums,
                             size_t sums_stride) {
    if (beats_kernel_available(BEATS_KERNEL_AVX2)) {
        return beats_q4_activation_sums_avx2(a, a_stride, rows, columns, group, sums, sums_stride);
    }
    return beats_q4_activation_sums_scalar(a, a_stride, rows, columns, group, sums, sums_stride);
}
