/*
 * Shared definitions of the int4 kernels (beats_q4_kernels.h): the packed header, its validation,
 * the binary16 conversions, and the float operations of the GEMM that every variant mirrors
 * operation by operation (which makes their results bitwise equal to the scalar ones).
 */
#ifndef BEATS_Q4_INTERNAL_H
#define BEATS_Q4_INTERNAL_H

#include "beats_q4_kernels.h"
#include "kernels_internal.h" /* no FMA contraction, BEATS_X86_64, BEATS_TARGET_*, beats_round_up */

#include <stdint.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

/* AVX2 + F16C for the int4 AVX2 kernels (vcvtph2ps turns the stored scales into float32). */
#ifndef BEATS_TARGET_AVX2_F16C
#define BEATS_TARGET_AVX2_F16C __attribute__((target("avx2,f16c")))
#endif

/* The header exactly as the layout in beats_q4_kernels.h describes it (little-endian hosts only:
 * every machine the kernels run on). */
typedef struct beats_q4_header {
    uint32_t magic;
    uint32_t version;
    uint64_t rows;
    uint64_t columns;
    uint32_t group_size;
    uint32_t reserved;
    uint64_t rows_padded;
    uint64_t weights_offset;
    uint64_t scales_offset;
    uint64_t total_size;
} beats_q4_header;

_Static_assert(sizeof(beats_q4_header) == BEATS_Q4_HEADER_BYTES, "the int4 header is 64 bytes");

/* Bytes of one block of a panel (16 rows × 8 columns, two nibbles per byte), and of one panel-group
 * entry of the scales section (16 f16 scales, 16 f16 minimums). */
#define BEATS_Q4_BLOCK_BYTES 64
#define BEATS_Q4_SCALE_ENTRY_BYTES 64

/* Everything a kernel needs from a validated header. */
typedef struct beats_q4_view {
    size_t rows, columns, group, groups, rows_padded;
    size_t blocks;           /* columns / 8: 64-byte blocks per panel */
    size_t blocks_per_group; /* group / 8 */
    size_t total_size;
    const uint8_t *weights;  /* the weights section */
    const uint8_t *scales;   /* the scales section */
} beats_q4_view;

/* Largest rows: keeps every size computation below (and Np·K/2 + Np·Gc·4) far from overflow. */
#define BEATS_Q4_MAX_ROWS ((size_t)1 << 31)

/* The sizes of a shape: 0 when the shape is invalid. */
static inline size_t beats_q4_sizes(size_t rows, size_t columns, size_t group, size_t *rows_padded,
                                    size_t *scales_offset) {
    if (rows == 0 || rows > BEATS_Q4_MAX_ROWS || columns == 0 || columns > BEATS_MAX_COLUMNS) return 0;
    if (!beats_q4_group_size_valid(group) || columns % group != 0) return 0;
    const size_t padded = beats_round_up(rows, BEATS_Q4_PANEL_ROWS);
    const size_t scales_at = BEATS_Q4_HEADER_BYTES + padded * (columns / 2);
    if (rows_padded != NULL) *rows_padded = padded;
    if (scales_offset != NULL) *scales_offset = scales_at;
    return scales_at + padded * (columns / group) * 4;
}

/* Validates the header (alignment, magic, version, shape, every offset recomputed) and fills `view`.
 * Does not know the buffer's length: beats_q4_packed_shape compares total_size with it. */
static inline int beats_q4_open(const void *packed, beats_q4_view *view) {
    if (packed == NULL) return BEATS_ERROR_BAD_PACKED_INT4;
    if (((uintptr_t)packed % BEATS_Q4_ALIGNMENT) != 0) return BEATS_ERROR_MISALIGNED;
    beats_q4_header header;
    memcpy(&header, packed, sizeof header);
    if (header.magic != BEATS_Q4_MAGIC || header.version != BEATS_Q4_VERSION || header.reserved != 0) {
        return BEATS_ERROR_BAD_PACKED_INT4;
    }
    /* The u64 fields are compared before any narrowing to size_t. */
    if (header.rows == 0 || header.rows > BEATS_Q4_MAX_ROWS || header.columns == 0 ||
        header.columns > BEATS_MAX_COLUMNS) {
        return BEATS_ERROR_BAD_PACKED_INT4;
    }
    size_t rows_padded = 0, scales_offset = 0;
    const size_t total = beats_q4_sizes((size_t)header.rows, (size_t)header.columns, header.group_size,
                                        &rows_padded, &scales_offset);
    if (total == 0 || header.rows_padded != rows_padded || header.weights_offset != BEATS_Q4_HEADER_BYTES ||
        header.scales_offset != scales_offset || header.total_size != total) {
        return BEATS_ERROR_BAD_PACKED_INT4;
    }
    const uint8_t *base = (const uint8_t *)packed;
    view->rows = (size_t)header.rows;
    view->columns = (size_t)header.columns;
    view->group = header.group_size;
    view->groups = view->columns / view->group;
    view->rows_padded = rows_padded;
    view->blocks = view->columns / 8;
    view->blocks_per_group = view->group / 8;
    view->total_size = total;
    view->weights = base + BEATS_Q4_HEADER_BYTES;
    view->scales = base + scales_offset;
    return BEATS_OK;
}

/* Panel p's first block. */
static inline const uint8_t *beats_q4_panel(const beats_q4_view *view, size_t p) {
    return view->weights + p * view->blocks * BEATS_Q4_BLOCK_BYTES;
}

/* Panel p's scales for group g (16 f16), followed at +32 bytes by its minimums. */
static inline const uint8_t *beats_q4_scale_entry(const beats_q4_view *view, size_t p, size_t g) {
    return view->scales + (p * view->groups + g) * BEATS_Q4_SCALE_ENTRY_BYTES;
}

/* Arguments every GEMM variant checks the same way, in this order. */
static inline int beats_q4_gemm_check(const int8_t *a, size_t a_stride, const float *a_scales, const int32_t *a_sums,
                                      size_t sums_stride, const void *packed_w, float *c, size_t c_stride,
                                      size_t m_begin, size_t m_end, size_t n_begin, size_t n_end,
                                      beats_q4_view *view) {
    const int status = beats_q4_open(packed_w, view);
    if (status != BEATS_OK) return status;
    if (a == NULL || a_scales == NULL || a_sums == NULL || c == NULL) return BEATS_ERROR_INVALID_ARGUMENT;
    if (m_begin > m_end || n_begin > n_end || n_end > view->rows) return BEATS_ERROR_INVALID_ARGUMENT;
    if (a_stride < view->columns || sums_stride < view->groups || c_stride < n_end) return BEATS_ERROR_INVALID_ARGUMENT;
    return BEATS_OK;
}

/* ---- binary16 ------------------------------------------------------------------------------------ */

static inline uint16_t beats_q4_load_half(const uint8_t *bytes) {
    uint16_t bits;
    memcpy(&bits, bytes, sizeof bits);
    return bits;
}

/* f16 → f32, exactly what vcvtph2ps does: subnormals become normal floats, Inf stays Inf, a NaN keeps
 * its payload with the quiet bit set. */
static inline float beats_q4_half_to_float_inline(uint16_t bits) {
    const uint32_t sign = (uint32_t)(bits & 0x8000u) << 16;
    const uint32_t exponent = (bits >> 10) & 0x1fu;
    const uint32_t mantissa = bits & 0x3ffu;
    uint32_t out;
    if (exponent == 0x1f) {
        out = sign | 0x7f800000u | (mantissa << 13) | (mantissa != 0 ? 0x00400000u : 0);
    } else if (exponent != 0) {
        out = sign | ((exponent + 112) << 23) | (mantissa << 13);
    } else if (mantissa == 0) {
        out = sign;
    } else {
        /* Subnormal: mantissa · 2^-24, normalised (mantissa < 2^10, so 1…10 shifts). */
        uint32_t shifted = mantissa;
        int32_t e = 113; /* biased float32 exponent of 2^-14 */
        while ((shifted & 0x400u) == 0) {
            shifted <<= 1;
            e--;
        }
        out = sign | ((uint32_t)e << 23) | ((shifted & 0x3ffu) << 13);
    }
    float value;
    memcpy(&value, &out, sizeof value);
    return value;
}

/* ---- The GEMM's float operations (every variant mirrors these) ------------------------------------ */

/* One group's contribution to output (m, n). */
static inline float beats_q4_group_term(float scale, int32_t dot, float minimum, int32_t asum) {
    const float scaled = scale * (float)dot;
    const float shifted = minimum * (float)asum;
    return scaled + shifted;
}

/* The epilogue of output (m, n) from its accumulated sum. */
static inline float beats_q4_epilogue(float acc, float a_scale, const float *bias, size_t n) {
    float y = a_scale * acc;
    if (bias != NULL) y = y + bias[n];
    return y;
}

#endif /* BEATS_Q4_INTERNAL_H */
