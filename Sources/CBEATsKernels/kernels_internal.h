/*
 * Shared definitions of the kernel variants: the packed weight layout, argument checks, and the
 * element-wise float operations every variant must perform identically (quantization rounding,
 * the GEMM epilogue). The SIMD variants mirror these functions operation by operation, which
 * is what makes their results bitwise equal to the scalar ones.
 */
#ifndef BEATS_KERNELS_INTERNAL_H
#define BEATS_KERNELS_INTERNAL_H

#include "beats_kernels.h"

#include <stdint.h>
#include <string.h>

/* No a*b+c → fma contraction anywhere: the variants must round every product and sum alike.
 * (clang honours the standard pragma; GCC ignores it and needs its own.) Each .c file repeats this. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#if defined(__x86_64__) || defined(_M_X64)
#define BEATS_X86_64 1
#else
#define BEATS_X86_64 0
#endif

/* Per-function ISA targets, so the files compile without global -mavx2 flags. The emulation check
 * (bench/kernels/emulated_vnni_check.sh) defines BEATS_TARGET_AVX512 as empty to run the AVX-512
 * code through SIMDe on a machine without AVX-512. */
#ifndef BEATS_TARGET_AVX2
#define BEATS_TARGET_AVX2 __attribute__((target("avx2")))
#endif
#ifndef BEATS_TARGET_AVX512
#define BEATS_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vnni")))
#endif

/* ---- Packed weight layout ----------------------------------------------------------------------
 *
 *   offset 0             header (64 bytes, below)
 *   offset 64            int32 row_sums[rows_padded]: Σ_k W[n][k] (0 for padding rows)
 *   offset panel_offset  panels: for each group of 16 rows p (output columns of the GEMM), for each
 *                        quad of 4 columns q (k = 4q … 4q+3): 64 bytes, byte 4·j + i = W[16p + j][4q + i].
 *                        Padding rows and columns are 0.
 *
 * One k-quad of a panel is one ZMM register (16 outputs × 4 k, the vpdpbusd shape) or two YMM
 * registers (8 outputs × 4 k each, the vpmaddubsw + vpmaddwd shape); an activation k-quad is one
 * broadcast 32-bit value.
 */
#define BEATS_PACKED_MAGIC 0x57384b42u /* "BK8W" little-endian */
#define BEATS_PACKED_VERSION 1u
#define BEATS_PANEL_BYTES_PER_QUAD 64

typedef struct beats_packed_header {
    uint32_t magic;
    uint32_t version;
    uint64_t rows;
    uint64_t columns;
    uint64_t rows_padded;    /* multiple of 16 */
    uint64_t columns_padded; /* multiple of 4 */
    uint64_t panel_offset;   /* multiple of 64 */
    uint64_t reserved[2];
} beats_packed_header;

_Static_assert(sizeof(beats_packed_header) == 64, "header is 64 bytes");

typedef struct beats_packed_view {
    size_t rows, columns, rows_padded, columns_padded;
    size_t quads;      /* columns_padded / 4 */
    size_t full_quads; /* columns / 4: quads without padding */
    size_t tail;       /* columns % 4 */
    const int32_t *row_sums;
    const int8_t *panels;
} beats_packed_view;

static inline size_t beats_round_up(size_t value, size_t multiple) {
    return (value + multiple - 1) / multiple * multiple;
}

/* Validates the header (alignment, magic, consistent sizes) and fills `view`. */
static inline int beats_packed_open(const void *packed, beats_packed_view *view) {
    if (packed == NULL) return BEATS_ERROR_INVALID_ARGUMENT;
    if (((uintptr_t)packed % BEATS_PACKED_ALIGNMENT) != 0) return BEATS_ERROR_MISALIGNED;
    beats_packed_header header;
    memcpy(&header, packed, sizeof header);
    if (header.magic != BEATS_PACKED_MAGIC || header.version != BEATS_PACKED_VERSION) {
        return BEATS_ERROR_BAD_PACKED_WEIGHTS;
    }
    if (header.rows == 0 || header.columns == 0 || header.columns > BEATS_MAX_COLUMNS ||
        header.rows > SIZE_MAX / BEATS_MAX_COLUMNS ||
        header.rows_padded != beats_round_up(header.rows, BEATS_PANEL_COLUMNS) ||
        header.columns_padded != beats_round_up(header.columns, 4) ||
        header.panel_offset != beats_round_up(64 + 4 * header.rows_padded, 64)) {
        return BEATS_ERROR_BAD_PACKED_WEIGHTS;
    }
    const char *base = (const char *)packed;
    view->rows = (size_t)header.rows;
    view->columns = (size_t)header.columns;
    view->rows_padded = (size_t)header.rows_padded;
    view->columns_padded = (size_t)header.columns_padded;
    view->quads = view->columns_padded / 4;
    view->full_quads = view->columns / 4;
    view->tail = view->columns % 4;
    view->row_sums = (const int32_t *)(const void *)(base + 64);
    view->panels = (const int8_t *)(base + header.panel_offset);
    return BEATS_OK;
}

/* Start of panel `p` (rows 16p … 16p+15 of W). */
static inline const int8_t *beats_panel(const beats_packed_view *view, size_t p) {
    return view->panels + p * view->quads * BEATS_PANEL_BYTES_PER_QUAD;
}

/* The four activation bytes of quad `q` of a row as one 32-bit value, bytes past the row's end as 0
 * (the matching packed weights are 0, so they add nothing; this only avoids reading past the row). */
static inline int32_t beats_activation_quad(const int8_t *row, size_t q, size_t columns) {
    int32_t value = 0;
    size_t start = 4 * q;
    size_t count = columns - start < 4 ? columns - start : 4;
    memcpy(&value, row + start, count);
    return value;
}

/* Arguments every GEMM variant checks the same way. */
static inline int beats_gemm_check(const int8_t *a, size_t a_stride, const float *a_scales,
                                   const void *packed_w, const float *w_scales, float *c,
                                   size_t c_stride, size_t m_begin, size_t m_end, size_t n_begin,
                                   size_t n_end, beats_packed_view *view) {
    int status = beats_packed_open(packed_w, view);
    if (status != BEATS_OK) return status;
    if (a == NULL || a_scales == NULL || w_scales == NULL || c == NULL) return BEATS_ERROR_INVALID_ARGUMENT;
    if (m_begin > m_end || n_begin > n_end || n_end > view->rows) return BEATS_ERROR_INVALID_ARGUMENT;
    if (a_stride < view->columns || c_stride < n_end) return BEATS_ERROR_INVALID_ARGUMENT;
    return BEATS_OK;
}

static inline int beats_quantize_check(const float *x, size_t x_stride, size_t columns, int max_level,
                                       const int8_t *q, size_t q_stride, const float *scales, size_t rows) {
    if (max_level < 1 || max_level > 127) return BEATS_ERROR_INVALID_ARGUMENT;
    if (rows == 0 || columns == 0) return BEATS_OK;
    if (x == NULL || q == NULL || scales == NULL) return BEATS_ERROR_INVALID_ARGUMENT;
    if (x_stride < columns || q_stride < columns) return BEATS_ERROR_INVALID_ARGUMENT;
    return BEATS_OK;
}

/* ---- Element operations (the definition every variant mirrors) -------------------------------- */

/* SSE/AVX min/max semantics: if either operand is NaN (or both are zeros), the second is returned. */
static inline float beats_min_like_simd(float a, float b) { return a < b ? a : b; }
static inline float beats_max_like_simd(float a, float b) { return a > b ? a : b; }

/* |x| as ordered bits: integer max of these is the float max of |x|, NaN (bits above Inf) winning. */
static inline int32_t beats_abs_bits(float x) {
    int32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits & 0x7fffffff;
}

static inline float beats_float_from_bits(int32_t bits) {
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

/* The per-row scale from the largest |x| bits. */
static inline float beats_row_scale(int32_t max_abs_bits, float level) {
    return beats_float_from_bits(max_abs_bits) / level;
}

/* q = clamp(rint(x / scale), -level, level), NaN quotient → 0. Caller handles scale == 0. */
static inline int8_t beats_quantize_element(float x, float scale, float level) {
    float r = x / scale;
    if (r != r) r = 0.0f;
    r = beats_max_like_simd(r, -level);
    r = beats_min_like_simd(r, level);
    /* Adding and subtracting 1.5·2^23 rounds |r| < 2^22 to an integer, half to even in the default
     * rounding mode — the same result as cvtps2dq, without a libm call. */
    float rounded = (r + 12582912.0f) - 12582912.0f;
    return (int8_t)(int32_t)rounded;
}

/* The GEMM epilogue for one output element. */
static inline float beats_epilogue_element(int32_t acc, float a_scale, float w_scale, const float *bias, size_t n) {
    float scale = a_scale * w_scale;
    float y = (float)acc * scale;
    if (bias != NULL) y = y + bias[n];
    return y;
}

/* A 64-byte aligned per-thread scratch block of BEATS_SCRATCH_BYTES, allocated on a thread's first
 * call and freed when the thread exits; NULL if it cannot be allocated (callers then use a path
 * without scratch). The SIMD GEMMs copy a block of activation rows into it in the form their inner
 * loop wants (|a| and a, a + 64, a + 128), once per block instead of once per weight panel. */
#define BEATS_SCRATCH_BYTES (128 * 1024)
int8_t *beats_thread_scratch(void);

#endif /* BEATS_KERNELS_INTERNAL_H */
