/*
 * Shared definitions of the float16 / bfloat16 kernels (half_kernels.c, half_avx512bf16.c): the
 * per-function ISA targets and the scratch check.
 */
#ifndef BEATS_HALF_KERNELS_INTERNAL_H
#define BEATS_HALF_KERNELS_INTERNAL_H

#include "beats_half_kernels.h"
#include "kernels_internal.h"

/* Per-function ISA targets, so the files compile without global -m flags. The emulation check
 * (bench/kernels/emulated_bf16_check.sh) defines BEATS_TARGET_AVX512BF16 as empty to run the
 * AVX512-BF16 code through SIMDe on a machine without AVX-512. */
#ifndef BEATS_TARGET_HALF_AVX2
#define BEATS_TARGET_HALF_AVX2 __attribute__((target("avx2,fma,f16c")))
#endif
#ifndef BEATS_TARGET_AVX512BF16
#define BEATS_TARGET_AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512bf16")))
#endif

/* The scratch every product takes: present, large enough, aligned. */
static inline int beats_half_scratch_check(const void *scratch, size_t scratch_bytes) {
    if (scratch == NULL || scratch_bytes < BEATS_HALF_SCRATCH_BYTES) return BEATS_ERROR_INVALID_ARGUMENT;
    if ((uintptr_t)scratch % BEATS_HALF_SCRATCH_ALIGNMENT != 0) return BEATS_ERROR_MISALIGNED;
    return BEATS_OK;
}

#endif /* BEATS_HALF_KERNELS_INTERNAL_H */
