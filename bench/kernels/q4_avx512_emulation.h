/*
 * For emulated_q4_check.sh only: the AVX-512 intrinsics q4_avx512.c uses, from SIMDe (portable C,
 * Debian's libsimde-dev) through beats_avx512_emulation.h, plus the one SIMDe 0.7.4 lacks:
 * _mm512_cvtph_ps, built here from SIMDe's own portable F16C conversion (two 8-lane halves), so the
 * emulated kernel does not share its f16 → f32 code with the scalar kernel it is compared with.
 */
#ifndef BEATS_Q4_AVX512_EMULATION_H
#define BEATS_Q4_AVX512_EMULATION_H

#include "beats_avx512_emulation.h"

#include <simde/x86/f16c.h>

static inline simde__m512 beats_emulated_cvtph_ps(simde__m256i halves) {
    simde__m256i_private in = simde__m256i_to_private(halves);
    simde__m512_private out;
    for (int part = 0; part < 2; part++) {
        simde__m256 converted = simde_mm256_cvtph_ps(in.m128i[part]);
        simde__m256_private lanes = simde__m256_to_private(converted);
        for (int i = 0; i < 8; i++) out.f32[8 * part + i] = lanes.f32[i];
    }
    return simde__m512_from_private(out);
}

#define _mm512_cvtph_ps beats_emulated_cvtph_ps

#endif
