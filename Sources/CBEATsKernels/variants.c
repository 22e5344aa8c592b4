/*
 * CPU feature detection, which kernel variants this CPU runs, status descriptions, and the
 * per-thread scratch block of the SIMD GEMMs.
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
            if (os_zmm && ((eax >> 5) & 1)) features |= BEATS_CPU_AVX512BF16;
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

int beats_kernel_available(beats_kernel_variant variant) {
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

const char *beats_kernel_variant_name(beats_kernel_variant variant) {
    switch (variant) {
    case BEATS_KERNEL_SCALAR: return "scalar";
    case BEATS_KERNEL_AVX2: return "avx2";
    case BEATS_KERNEL_AVX512VNNI: return "avx512vnni";
    default: return "unknown";
    }
}

const char *beats_status_description(int status) {
    switch (status) {
    case BEATS_OK: return "ok";
    case BEATS_ERROR_INVALID_ARGUMENT: return "invalid argument (null pointer, range out of bounds or stride too small)";
    case BEATS_ERROR_BAD_PACKED_WEIGHTS: return "not a packed weight buffer written by beats_pack_weights";
    case BEATS_ERROR_WEIGHT_OUT_OF_RANGE: return "weight out of range [-127, 127] (int8 weights must be symmetric)";
    case BEATS_ERROR_MISALIGNED: return "packed weight buffer is not 64-byte aligned";
    case BEATS_ERROR_UNAVAILABLE: return "kernel variant not available on this CPU";
    case BEATS_ERROR_TOO_LARGE: return "matrix too large for the int8 kernels (more than 65536 columns)";
    case BEATS_ERROR_GROUP_SIZE: return "int4 group size not 32, 64 or 128, or columns not a positive multiple of it";
    case BEATS_ERROR_INT4_OUT_OF_RANGE: return "int4 value above 15, or a float16 scale or minimum that is infinite or NaN";
    case BEATS_ERROR_NOT_FLOAT16: return "weight is NaN or infinite, or a group's minimum, maximum or scale exceeds the float16 range (65504)";
    case BEATS_ERROR_BAD_PACKED_INT4: return "not a packed int4 matrix written by beats_q4_pack (bad header, or shorter than its header says)";
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
