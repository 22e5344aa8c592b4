/*
 * For emulated_bf16_check.sh only: the AVX-512 intrinsics half_avx512bf16.c uses, from SIMDe (via
 * beats_avx512_emulation.h, which adds the masked loads and stores SIMDe 0.7.4 lacks), plus the two
 * AVX512_BF16 instructions written here from the pseudo-code of Intel's SDM / intrinsics guide
 * rather than taken from SIMDe (whose vdpbf16ps adds the two products before the accumulator and
 * keeps subnormals):
 *
 *   vcvtne2ps2bf16 (_mm512_cvtne2ps_pbh(a, b)): words 0–15 from b, 16–31 from a; each float rounded
 *     to bfloat16 to nearest even, NaN → quiet NaN (bit 6 of the result set), subnormal inputs read as
 *     zero (the instruction ignores MXCSR: DAZ and FTZ are implied).
 *   vdpbf16ps (_mm512_dpbf16_ps(src, a, b)): per float lane j,
 *     t = src[j] + a[2j+1]·b[2j+1]; t = t + a[2j]·b[2j]; each product exact, each sum rounded to
 *     nearest even; subnormal bfloat16 inputs read as zero and a subnormal sum is flushed to zero
 *     (sign kept), as the instruction does whatever MXCSR says.
 */
#ifndef BEATS_AVX512BF16_EMULATION_H
#define BEATS_AVX512BF16_EMULATION_H

#include "beats_avx512_emulation.h"

#include <stdint.h>
#include <string.h>

static inline simde__m512bh beats_as_bh(simde__m512i v) {
    simde__m512bh out;
    memcpy(&out, &v, sizeof out);
    return out;
}

static inline simde__m512i beats_bh_as_si512(simde__m512bh v) {
    simde__m512i out;
    memcpy(&out, &v, sizeof out);
    return out;
}

static inline uint16_t beats_emulated_bf16_round(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x40u); /* NaN */
    if ((bits & 0x7f800000u) == 0) return (uint16_t)((bits >> 16) & 0x8000u);        /* DAZ */
    const uint32_t lsb = (bits >> 16) & 1u;
    return (uint16_t)((bits + 0x7fffu + lsb) >> 16);
}

static inline simde__m512bh beats_emulated_cvtne2ps_pbh(simde__m512 a, simde__m512 b) {
    float af[16], bf[16];
    uint16_t words[32];
    memcpy(af, &a, sizeof af);
    memcpy(bf, &b, sizeof bf);
    for (int j = 0; j < 16; j++) {
        words[j] = beats_emulated_bf16_round(bf[j]);
        words[16 + j] = beats_emulated_bf16_round(af[j]);
    }
    simde__m512bh out;
    memcpy(&out, words, sizeof out);
    return out;
}

/* A bfloat16 word as float, subnormals read as zero. */
static inline float beats_emulated_bf16_daz(uint16_t word) {
    uint32_t bits = (uint32_t)word << 16;
    if ((bits & 0x7f800000u) == 0) bits &= 0x80000000u;
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

static inline float beats_emulated_ftz(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    if ((bits & 0x7f800000u) == 0) bits &= 0x80000000u;
    memcpy(&value, &bits, sizeof value);
    return value;
}

static inline simde__m512 beats_emulated_dpbf16_ps(simde__m512 src, simde__m512bh a, simde__m512bh b) {
    float acc[16];
    uint16_t aw[32], bw[32];
    memcpy(acc, &src, sizeof acc);
    memcpy(aw, &a, sizeof aw);
    memcpy(bw, &b, sizeof bw);
    for (int j = 0; j < 16; j++) {
        float t = acc[j];
        t = beats_emulated_ftz(t + beats_emulated_bf16_daz(aw[2 * j + 1]) * beats_emulated_bf16_daz(bw[2 * j + 1]));
        t = beats_emulated_ftz(t + beats_emulated_bf16_daz(aw[2 * j]) * beats_emulated_bf16_daz(bw[2 * j]));
        acc[j] = t;
    }
    simde__m512 out;
    memcpy(&out, acc, sizeof out);
    return out;
}

#undef _mm512_cvtne2ps_pbh
#undef _mm512_dpbf16_ps
#define _mm512_cvtne2ps_pbh beats_emulated_cvtne2ps_pbh
#define _mm512_dpbf16_ps beats_emulated_dpbf16_ps

#endif
