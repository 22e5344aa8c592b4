/*
 * For emulated_vnni_check.sh only: the AVX-512 intrinsics avx512.c uses, from SIMDe (portable C
 * implementations, Debian's libsimde-dev), plus the few SIMDe 0.7.4 lacks, written here from the
 * Intel intrinsics guide's definitions. Masked loads and stores touch only the selected lanes, as the
 * hardware does.
 */
#ifndef BEATS_AVX512_EMULATION_H
#define BEATS_AVX512_EMULATION_H

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

#include <math.h>
#include <stdint.h>

typedef simde__mmask16 __mmask16;

static inline simde__m512 beats_emulated_cvtepi32_ps(simde__m512i a) {
    simde__m512i_private in = simde__m512i_to_private(a);
    simde__m512_private out;
    for (int i = 0; i < 16; i++) out.f32[i] = (float)in.i32[i];
    return simde__m512_from_private(out);
}

/* vcvtps2dq: round in the current mode (nearest-even by default); NaN and out-of-range give INT_MIN. */
static inline simde__m512i beats_emulated_cvtps_epi32(simde__m512 a) {
    simde__m512_private in = simde__m512_to_private(a);
    simde__m512i_private out;
    for (int i = 0; i < 16; i++) {
        const float x = in.f32[i];
        out.i32[i] = (x >= -2147483648.0f && x < 2147483648.0f) ? (int32_t)nearbyintf(x) : INT32_MIN;
    }
    return simde__m512i_from_private(out);
}

static inline simde__m512 beats_emulated_maskz_loadu_ps(simde__mmask16 mask, const void *address) {
    const float *source = (const float *)address;
    simde__m512_private out;
    for (int i = 0; i < 16; i++) out.f32[i] = ((mask >> i) & 1) ? source[i] : 0.0f;
    return simde__m512_from_private(out);
}

static inline void beats_emulated_mask_storeu_ps(void *address, simde__mmask16 mask, simde__m512 a) {
    float *target = (float *)address;
    simde__m512_private in = simde__m512_to_private(a);
    for (int i = 0; i < 16; i++) {
        if ((mask >> i) & 1) target[i] = in.f32[i];
    }
}

static inline int32_t beats_emulated_reduce_max_epi32(simde__m512i a) {
    simde__m512i_private in = simde__m512i_to_private(a);
    int32_t best = in.i32[0];
    for (int i = 1; i < 16; i++) best = in.i32[i] > best ? in.i32[i] : best;
    return best;
}

#define _mm512_cvtepi32_ps beats_emulated_cvtepi32_ps
#define _mm512_cvtps_epi32 beats_emulated_cvtps_epi32
#define _mm512_maskz_loadu_ps beats_emulated_maskz_loadu_ps
#define _mm512_mask_storeu_ps beats_emulated_mask_storeu_ps
#define _mm512_reduce_max_epi32 beats_emulated_reduce_max_epi32

#endif
