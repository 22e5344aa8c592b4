/*
 * CPU feature detection and run-time selection of the kernel variant.
 */
#include "kernels_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#if BEATS_X86_64
#include <cpuid.h>

static uint64_t beats_xgetbv0(void) {
    uint32_t low, high;
    __asm__ volatile("xgetbv" : "=a"(low), "=d"(high) : "c"(0));
    return ((uint64_t)high << 32) | low;
}

static uint32_t beats_detect_features(void) {
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    const int has_osxsave = (ecx >> 27) & 1, has_avx = (ecx >> 28) & 1;
    const int has_fma = (ecx >> 12) & 1, has_f16c = (ecx >> 29) & 1;
    if (!has_osxsave || !has_avx) return 0;
    const uint64_t xcr0 = beats_xgetbv0();
    /* XCR0 bits 1-2: SSE and AVX (YMM upper halves) state; bits 5-7: opmask, ZMM0-15 upper, ZMM16-31. */
    const int os_ymm = (xcr0 & 0x6) == 0x6;
    const int os_zmm = os_ymm && (xcr0 & 0xe0) == 0xe0;
    if (!os_ymm) return 0;

    uint32_t features = 0;
    if (has_fma) features |= BEATS_CPU_FMA;
    if (has_f16c) features |= BEATS_CPU_F16C;
    unsigned max_leaf = __get_cpuid_max(0, NULL);
    if (max_leaf >= 7) {
        __cpuid_count(7, 0, eax, ebx, ecx, edx);
        if ((ebx >> 5) & 1) features |= BEATS_CPU_AVX2;
        if (os_zmm) {
            if ((ebx >> 16) & 1) features |= BEATS_CPU_AVX512F;
            if ((ebx >> 30) & 1) features |= BEATS_CPU_AVX512BW;
            if ((ebx >> 31) & 1) features |= BEATS_CPU_AVX512VL;
            if ((ecx >> 11) & 1) features |= BEATS_CPU_AVX512VNNI;
        }
        unsigned subleaves = eax;
        if (subleaves >= 1) {
            __cpuid_count(7, 1, eax, ebx, ecx, edx);
            if ((eax >> 4) & 1) features |= BEATS_CPU_AVXVNNI;
        }
    }
    return features;
}
#else
static uint32_t beats_detect_features(void) { return 0; }
#endif

/* Bit 31 marks "detected"; the rest are feature flags. Computing twice in a race is harmless. */
static _Atomic uint32_t beats_features_cache = 0;

uint32_t beats_cpu_features(void) {
    uint32_t cached = atomic_load_explicit(&beats_features_cache, memory_order_relaxed);
    if (cached & 0x80000000u) return cached & 0x7fffffffu;
    uint32_t features = beats_detect_features();
    atomic_store_explicit(&beats_features_cache, features | 0x80000000u, memory_order_relaxed);
    return features;
}

int beats_cpu_can_run(beats_kernel_variant variant) {
    const uint32_t features = beats_cpu_features();
    switch (variant) {
    case BEATS_KERNEL_SCALAR:
        return 1;
    case BEATS_KERNEL_AVX2:
        return BEATS_X86_64 && (features & BEATS_CPU_AVX2) != 0;
    case BEATS_KERNEL_AVX512VNNI: {
        const uint32_t needed = BEATS_CPU_AVX512F | BEATS_CPU_AVX512BW | BEATS_CPU_AVX512VNNI;
        return BEATS_X86_64 && (features & needed) == needed;
    }
    default:
        return 0;
    }
}

int beats_kernel_available(beats_kernel_variant variant) {
    if (variant == BEATS_KERNEL_AUTO) return 1;
    return beats_cpu_can_run(variant);
}

static beats_kernel_variant beats_best_variant(void) {
    if (beats_cpu_can_run(BEATS_KERNEL_AVX512VNNI)) return BEATS_KERNEL_AVX512VNNI;
    if (beats_cpu_can_run(BEATS_KERNEL_AVX2)) return BEATS_KERNEL_AVX2;
    return BEATS_KERNEL_SCALAR;
}

static beats_kernel_variant beats_variant_from_environment(void) {
    const char *requested = getenv("BEATS_KERNEL");
    if (requested == NULL) return BEATS_KERNEL_AUTO;
    const beats_kernel_variant candidates[] = {BEATS_KERNEL_SCALAR, BEATS_KERNEL_AVX2, BEATS_KERNEL_AVX512VNNI};
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
        if (strcmp(requested, beats_kernel_variant_name(candidates[i])) == 0 && beats_cpu_can_run(candidates[i])) {
            return candidates[i];
        }
    }
    return BEATS_KERNEL_AUTO; /* unknown or unavailable: the best available variant */
}

/* 0 = not chosen yet. */
static _Atomic int beats_selected_variant = 0;

beats_kernel_variant beats_kernel_selected(void) {
    int selected = atomic_load_explicit(&beats_selected_variant, memory_order_relaxed);
    if (selected != 0) return (beats_kernel_variant)selected;
    beats_kernel_variant chosen = beats_variant_from_environment();
    if (chosen == BEATS_KERNEL_AUTO) chosen = beats_best_variant();
    int expected = 0;
    atomic_compare_exchange_strong(&beats_selected_variant, &expected, (int)chosen);
    return (beats_kernel_variant)atomic_load_explicit(&beats_selected_variant, memory_order_relaxed);
}

int beats_force_kernel(beats_kernel_variant variant) {
    if (variant == BEATS_KERNEL_AUTO) {
        atomic_store(&beats_selected_variant, (int)beats_best_variant());
        return BEATS_OK;
    }
    if (!beats_cpu_can_run(variant)) return BEATS_ERROR_UNAVAILABLE;
    atomic_store(&beats_selected_variant, (int)variant);
    return BEATS_OK;
}

const char *beats_kernel_variant_name(beats_kernel_variant variant) {
    switch (variant) {
    case BEATS_KERNEL_AUTO: return "auto";
    case BEATS_KERNEL_SCALAR: return "scalar";
    case BEATS_KERNEL_AVX2: return "avx2";
    case BEATS_KERNEL_AVX512VNNI: return "avx512vnni";
    default: return "unknown";
    }
}

const char *beats_kernel_name(void) { return beats_kernel_variant_name(beats_kernel_selected()); }

const char *beats_status_description(int status) {
    switch (status) {
    case BEATS_OK: return "ok";
    case BEATS_ERROR_INVALID_ARGUMENT: return "invalid argument (null pointer, range out of bounds or stride too small)";
    case BEATS_ERROR_BAD_PACKED_WEIGHTS: return "not a packed weight buffer written by beats_pack_weights";
    case BEATS_ERROR_WEIGHT_OUT_OF_RANGE: return "weight out of range [-127, 127] (int8 weights must be symmetric)";
    case BEATS_ERROR_MISALIGNED: return "packed weight buffer is not 64-byte aligned";
    case BEATS_ERROR_UNAVAILABLE: return "kernel variant not available on this CPU";
    case BEATS_ERROR_TOO_LARGE: return "matrix too large for the int8 kernels (more than 65536 columns)";
    default: return "unknown status";
    }
}

/* ---- Per-thread scratch ---------------------------------------------------------------------- */

static pthread_key_t beats_scratch_key;
static int beats_scratch_key_ready = 0;
static pthread_once_t beats_scratch_once = PTHREAD_ONCE_INIT;

static void beats_make_scratch_key(void) {
    beats_scratch_key_ready = pthread_key_create(&beats_scratch_key, free) == 0;
}

int8_t *beats_thread_scratch(void) {
    pthread_once(&beats_scratch_once, beats_make_scratch_key);
    if (!beats_scratch_key_ready) return NULL;
    int8_t *scratch = pthread_getspecific(beats_scratch_key);
    if (scratch != NULL) return scratch;
    void *allocated = aligned_alloc(64, BEATS_SCRATCH_BYTES);
    if (allocated == NULL) return NULL;
    if (pthread_setspecific(beats_scratch_key, allocated) != 0) {
        free(allocated);
        return NULL;
    }
    return allocated;
}

/* ---- Dispatching entry points ----------------------------------------------------------------- */

int beats_quantize_rows(const float *x, size_t x_stride, size_t rows, size_t columns, int max_level, int8_t *q,
                        size_t q_stride, float *scales) {
    switch (beats_kernel_selected()) {
    case BEATS_KERNEL_AVX512VNNI:
        return beats_quantize_rows_avx512(x, x_stride, rows, columns, max_level, q, q_stride, scales);
    case BEATS_KERNEL_AVX2: return beats_quantize_rows_avx2(x, x_stride, rows, columns, max_level, q, q_stride, scales);
    default: return beats_quantize_rows_scalar(x, x_stride, rows, columns, max_level, q, q_stride, scales);
    }
}

int beats_gemm_s8(const int8_t *a, size_t a_stride, const float *a_scales, const void *packed_w,
                  const float *w_scales, const float *bias, float *c, size_t c_stride, size_t m_begin,
                  size_t m_end, size_t n_begin, size_t n_end, uint32_t flags) {
    switch (beats_kernel_selected()) {
    case BEATS_KERNEL_AVX512VNNI:
        return beats_gemm_s8_avx512vnni(a, a_stride, a_scales, packed_w, w_scales, bias, c, c_stride,
                                        m_begin, m_end, n_begin, n_end, flags);
    case BEATS_KERNEL_AVX2:
        return beats_gemm_s8_avx2(a, a_stride, a_scales, packed_w, w_scales, bias, c, c_stride, m_begin,
                                  m_end, n_begin, n_end, flags);
    default:
        return beats_gemm_s8_scalar(a, a_stride, a_scales, packed_w, w_scales, bias, c, c_stride, m_begin,
                                    m_end, n_begin, n_end, flags);
    }
}

void beats_gelu_f32(float *x, size_t count) {
    switch (beats_kernel_selected()) {
    case BEATS_KERNEL_AVX512VNNI: (void)beats_gelu_f32_avx512(x, count); return;
    case BEATS_KERNEL_AVX2: (void)beats_gelu_f32_avx2(x, count); return;
    default: beats_gelu_f32_scalar(x, count); return;
    }
}
