/*
 * beats_kernels.h — int8 GEMM and activation quantization kernels for the BEATs runtime.
 *
 * Three variants of every kernel; the caller picks one (beats_kernel_available says which this CPU
 * runs) and calls its functions directly — nothing process-wide chooses for it:
 *   - "avx512vnni": AVX-512F/BW + AVX-512 VNNI (vpdpbusd), x86-64 with OS support for ZMM state;
 *   - "avx2":       AVX2 (vpmaddubsw with the sign-transfer trick), x86-64 with OS support for YMM state;
 *   - "scalar":     portable C, every architecture.
 * All variants give bitwise-identical results for the same inputs (integer accumulation is exact and
 * every variant performs the same float operations in the same order, without FMA contraction), so a
 * model's output does not depend on the machine it runs on.
 *
 * Quantization scheme (chosen for this project; PyTorch's quantize_dynamic differs):
 *   - weights: symmetric int8 per output row, values in [-127, 127] (never -128), one float32 scale
 *     per row, as stored by the native file (`QuantizedMatrix`);
 *   - activations: symmetric per row (per token), computed on the fly by beats_quantize_rows_* with
 *     L = max_level (127: full int8; 63: 7 bits, see below):
 *       scale = max_k |x[k]| / L                 (float32 division)
 *       q[k]  = clamp(rint(x[k] / scale), -L, L) (float32 division, round half to even)
 *     A row whose scale is 0 (all zeros, or so tiny that max/L underflows) gets scale 0 and q = 0.
 *     PyTorch's dynamic quantization uses one affine uint8 range for the whole tensor, 7 bits on x86
 *     (reduce_range); per-row symmetric quantization has a finer step for every row at either L.
 *   - 7-bit activations (L = 63) give the same exact GEMM results for the values they have, but let
 *     the AVX2 kernel skip its sign step (+25–35% throughput on AVX2; no effect on AVX-512 VNNI or
 *     scalar). The AVX2 GEMM detects this per block of rows, so callers only choose L.
 *   - A quotient x/scale that is NaN gives q = 0; a row containing NaN gets a NaN scale and a row
 *     containing ±Inf an Inf scale, so non-finite input shows up as NaN/Inf in the GEMM output
 *     instead of silently vanishing.
 *
 * GEMM (a Linear layer y = x·Wᵀ + b on quantized operands):
 *   acc[m][n] = Σ_k A[m][k] · W[n][k]                         (exact, int32)
 *   y         = (float)acc · (a_scale[m] · w_scale[n])        (float32, this order: scale product first)
 *   C[m][n]   = y + bias[n]                                   (y if bias == NULL)
 * W is [N, K] row-major (a torch Linear weight), packed once at load with beats_pack_weights.
 *
 * Thread safety: every function is safe to call concurrently on disjoint outputs. The GEMM takes a
 * row range [m_begin, m_end) and a column range [n_begin, n_end) so callers split one product
 * across threads (column ranges on multiples of BEATS_PANEL_COLUMNS are most efficient).
 * The SIMD GEMMs copy each block of activation rows once into a 128 KB per-thread scratch buffer
 * (allocated on the thread's first call, freed when the thread exits; if it cannot be allocated they
 * read the rows in place, more slowly). No function keeps any other state between calls.
 */
#ifndef BEATS_KERNELS_H
#define BEATS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Results ---------------------------------------------------------------------------------- */

typedef enum beats_status {
    BEATS_OK = 0,
    /** A pointer is NULL, a range is reversed or out of bounds, or a stride is too small. */
    BEATS_ERROR_INVALID_ARGUMENT = -1,
    /** The packed weight buffer's header is not one written by beats_pack_weights. */
    BEATS_ERROR_BAD_PACKED_WEIGHTS = -2,
    /** A weight is -128: the kernels need symmetric int8 in [-127, 127]. */
    BEATS_ERROR_WEIGHT_OUT_OF_RANGE = -3,
    /** The packed weight buffer is not 64-byte aligned. */
    BEATS_ERROR_MISALIGNED = -4,
    /** The requested kernel variant cannot run on this CPU (or was not compiled for it). */
    BEATS_ERROR_UNAVAILABLE = -5,
    /** The matrix is larger than the kernels accept (see BEATS_MAX_COLUMNS). */
    BEATS_ERROR_TOO_LARGE = -6,
    /** int4 kernels (beats_q4_kernels.h): the group size is not 32, 64 or 128, or the columns are not
     *  a positive multiple of it. */
    BEATS_ERROR_GROUP_SIZE = -7,
    /** int4 packing: a value above 15, or an f16 scale or minimum that is infinite or NaN. */
    BEATS_ERROR_INT4_OUT_OF_RANGE = -8,
    /** int4 quantization: a weight is NaN or infinite, or a group's minimum, maximum or scale is
     *  beyond the float16 range (|x| > 65504). */
    BEATS_ERROR_NOT_FLOAT16 = -9,
    /** The buffer is not a packed int4 matrix written by beats_q4_pack (bad header, or shorter than
     *  its header says). */
    BEATS_ERROR_BAD_PACKED_INT4 = -10,
} beats_status;

/** Short English description of a status ("weight out of range [-127, 127]", …). Never NULL. */
const char *beats_status_description(int status);

/* ---- CPU features and kernel variants --------------------------------------------------------- */

/** Bit flags returned by beats_cpu_features(). A flag is set only when the CPU has the instructions
 *  AND the operating system saves the register state they need (XGETBV). */
enum {
    BEATS_CPU_AVX2 = 1u << 0,
    BEATS_CPU_FMA = 1u << 1,
    BEATS_CPU_F16C = 1u << 2,
    BEATS_CPU_AVX512F = 1u << 3,
    BEATS_CPU_AVX512BW = 1u << 4,
    BEATS_CPU_AVX512VL = 1u << 5,
    BEATS_CPU_AVX512VNNI = 1u << 6,
    /** AVX-VNNI (256-bit vpdpbusd, Alder Lake / Zen 5); reported only, no kernel uses it yet. */
    BEATS_CPU_AVXVNNI = 1u << 7,
    /** AVX512_BF16 (vdpbf16ps, vcvtne2ps2bf16; cpuid leaf 7 subleaf 1 EAX bit 5), with OS ZMM state:
     *  the bfloat16 GEMM of beats_half_kernels.h. */
    BEATS_CPU_AVX512BF16 = 1u << 8,
};

/** The features of the CPU this process runs on (cpuid + xgetbv; 0 on non-x86 machines). */
uint32_t beats_cpu_features(void);

/** The builds of the int8 kernels; each has its own entry points (beats_gemm_s8_avx2, …). */
typedef enum beats_kernel_variant {
    BEATS_KERNEL_SCALAR = 1,
    BEATS_KERNEL_AVX2 = 2,
    BEATS_KERNEL_AVX512VNNI = 3,
} beats_kernel_variant;

/** 1 when `variant` was compiled in and this CPU can run it, else 0 (also for unknown values). */
int beats_kernel_available(beats_kernel_variant variant);

/** Name of a variant: "scalar", "avx2", "avx512vnni" ("unknown" for other values). */
const char *beats_kernel_variant_name(beats_kernel_variant variant);

/* ---- Activation quantization ------------------------------------------------------------------ */

/** Full int8 activations (the default) and 7-bit activations (faster on AVX2); see the top of this file. */
#define BEATS_ACTIVATION_LEVELS_INT8 127
#define BEATS_ACTIVATION_LEVELS_7BIT 63

/**
 * Quantizes `rows` rows of `columns` floats (row r at x + r*x_stride) to integers in
 * [-max_level, max_level] (row r at q + r*q_stride) with one scale per row (scales[r]), as described
 * at the top of this file. Strides are in elements and must be ≥ columns; 1 ≤ max_level ≤ 127.
 * Returns BEATS_OK, BEATS_ERROR_INVALID_ARGUMENT, or BEATS_ERROR_UNAVAILABLE (the SIMD variants on
 * a CPU without their instructions).
 */
int beats_quantize_rows_scalar(const float *x, size_t x_stride, size_t rows, size_t columns, int max_level,
                               int8_t *q, size_t q_stride, float *scales);
int beats_quantize_rows_avx2(const float *x, size_t x_stride, size_t rows, size_t columns, int max_level,
                             int8_t *q, size_t q_stride, float *scales);
int beats_quantize_rows_avx512(const float *x, size_t x_stride, size_t rows, size_t columns, int max_level,
                               int8_t *q, size_t q_stride, float *scales);

/* ---- Weight packing --------------------------------------------------------------------------- */

/** Columns of W (output features) per packed panel; column ranges on multiples of this split best. */
#define BEATS_PANEL_COLUMNS 16
/** Largest K (input features): keeps the int32 accumulators exact in every variant. */
#define BEATS_MAX_COLUMNS 65536
/** Required alignment of a packed weight buffer, in bytes. */
#define BEATS_PACKED_ALIGNMENT 64

/**
 * Bytes needed to pack an int8 weight matrix of `rows` (N, output features) × `columns`
 * (K, input features); 0 if a dimension is 0, columns > BEATS_MAX_COLUMNS or the size overflows.
 * About rows × columns bytes plus 4 bytes per row (padding to multiples of 16 rows and 4 columns).
 */
size_t beats_packed_weights_size(size_t rows, size_t columns);

/**
 * Packs W (row n at w + n*w_stride, `columns` int8 values each, all in [-127, 127]) into `packed`
 * (64-byte aligned, `packed_size` ≥ beats_packed_weights_size(rows, columns)) in the layout every
 * GEMM variant reads, with the per-row sums the VNNI variant needs. Call once per weight at load.
 * Returns BEATS_OK, BEATS_ERROR_INVALID_ARGUMENT, BEATS_ERROR_MISALIGNED, BEATS_ERROR_TOO_LARGE or
 * BEATS_ERROR_WEIGHT_OUT_OF_RANGE (the buffer's contents are then unspecified).
 */
int beats_pack_weights(const int8_t *w, size_t w_stride, size_t rows, size_t columns,
                       void *packed, size_t packed_size);

/** Reads the shape recorded in a packed buffer. Returns BEATS_OK or BEATS_ERROR_BAD_PACKED_WEIGHTS. */
int beats_packed_weights_shape(const void *packed, size_t *rows, size_t *columns);

/* ---- GEMM ------------------------------------------------------------------------------------- */

/**
 * C[m][n] (at c + m*c_stride + n) for m in [m_begin, m_end), n in [n_begin, n_end), from
 *   a        int8 activations, row m at a + m*a_stride, K = the packed matrix's columns,
 *   a_scales one scale per activation row (indexed by m),
 *   packed_w the weights packed by beats_pack_weights (N = its rows; n_end ≤ N),
 *   w_scales one scale per weight row (indexed by n),
 *   bias     N floats or NULL,
 * as described at the top of this file. Rows and columns outside the ranges are neither read from
 * `a` nor written to `c`; an empty range does nothing. Strides are in elements (a_stride ≥ K,
 * c_stride ≥ n_end). Activations may be any int8 (the quantizer gives [-max_level, max_level]).
 * Returns BEATS_OK, BEATS_ERROR_INVALID_ARGUMENT, BEATS_ERROR_BAD_PACKED_WEIGHTS,
 * BEATS_ERROR_MISALIGNED, or BEATS_ERROR_UNAVAILABLE (the SIMD variants on a CPU without their
 * instructions).
 */
int beats_gemm_s8_scalar(const int8_t *a, size_t a_stride, const float *a_scales,
                         const void *packed_w, const float *w_scales, const float *bias,
                         float *c, size_t c_stride,
                         size_t m_begin, size_t m_end, size_t n_begin, size_t n_end);
int beats_gemm_s8_avx2(const int8_t *a, size_t a_stride, const float *a_scales,
                       const void *packed_w, const float *w_scales, const float *bias,
                       float *c, size_t c_stride,
                       size_t m_begin, size_t m_end, size_t n_begin, size_t n_end);
int beats_gemm_s8_avx512vnni(const int8_t *a, size_t a_stride, const float *a_scales,
                             const void *packed_w, const float *w_scales, const float *bias,
                             float *c, size_t c_stride,
                             size_t m_begin, size_t m_end, size_t n_begin, size_t n_end);

#ifdef __cplusplus
}
#endif

#endif /* BEATS_KERNELS_H */
