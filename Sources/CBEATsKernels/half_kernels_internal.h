/*
 * Shared definitions of the float16 / bfloat16 kernels (half_kernels.c, half_avx512bf16.c): the
 * per-function ISA targets and the BF16 GEMM's per-thread scratch.
 */
#ifndef BEATS_HALF_KERNELS_INTERNAL_H
#define BEATS_HALF_KERNELS_INTERNAL_H

#include "beats_half_kernels.h"
#include "kernels_internal.h"

/* Per-function ISA targets, so the files compile without global -m flags. The emulation check
 * (bench/kernels/emulated_bf16_check.sh) defines BEATS_TARGET_AVX512BF16 as empty to run the
 * AVX512-BF16 code through SIMDe on a machine without AVX-512. */
#ifndef BEATS_TARGET_F16C
#define BEATS_TARGET_F16C __attribute__((target("avx2,f16c")))
#endif
#ifndef BEATS_TARGET_AVX512BF16
#define BEATS_TARGET_AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512bf16")))
#endif

/* A 64-byte aligned per-thread block of BEATS_BF16_SCRATCH_BYTES for the BF16 GEMM, allocated on a
 * thread's first call and freed when the thread exits; NULL if it cannot be allocated. */
void *beats_half_thread_scratch(void);

#endif /* BEATS_HALF_KERNELS_INTERNAL_H */
