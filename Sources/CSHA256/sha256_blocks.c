// SHA-256 block compression (FIPS 180-4). The native-format converter hashes the whole source
// checkpoint (361 MB for the official model) while it converts; plain Swift manages ~0.1 GB/s,
// the x86 SHA extensions well over 1 GB/s, which keeps the hash off the conversion's critical path.
#include "sha256_blocks.h"

#include <string.h>

static const uint32_t round_constants[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static inline uint32_t rotate_right(uint32_t value, unsigned amount) {
    return (value >> amount) | (value << (32 - amount));
}

static void compress_portable(uint32_t state[8], const uint8_t *data, size_t blocks) {
    uint32_t schedule[64];
    for (size_t block = 0; block < blocks; block++, data += 64) {
        for (int i = 0; i < 16; i++) {
            const uint8_t *word = data + 4 * i;
            schedule[i] = ((uint32_t)word[0] << 24) | ((uint32_t)word[1] << 16) | ((uint32_t)word[2] << 8) | word[3];
        }
        for (int i = 16; i < 64; i++) {
            uint32_t early = schedule[i - 15], late = schedule[i - 2];
            uint32_t sigma0 = rotate_right(early, 7) ^ rotate_right(early, 18) ^ (early >> 3);
            uint32_t sigma1 = rotate_right(late, 17) ^ rotate_right(late, 19) ^ (late >> 10);
            schedule[i] = schedule[i - 16] + sigma0 + schedule[i - 7] + sigma1;
        }
        uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
        uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
        for (int i = 0; i < 64; i++) {
            uint32_t sum1 = rotate_right(e, 6) ^ rotate_right(e, 11) ^ rotate_right(e, 25);
            uint32_t choose = (e & f) ^ (~e & g);
            uint32_t temp1 = h + sum1 + choose + round_constants[i] + schedule[i];
            uint32_t sum0 = rotate_right(a, 2) ^ rotate_right(a, 13) ^ rotate_right(a, 22);
            uint32_t majority = (a & b) ^ (a & c) ^ (b & c);
            h = g; g = f; f = e; e = d + temp1;
            d = c; c = b; b = a; a = temp1 + sum0 + majority;
        }
        state[0] += a; state[1] += b; state[2] += c; state[3] += d;
        state[4] += e; state[5] += f; state[6] += g; state[7] += h;
    }
}

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>

// The SHA extensions keep the state as two vectors, ABEF and CDGH, and run two rounds per
// sha256rnds2 on message words already added to their round constants.
__attribute__((target("sha,sse4.1,ssse3")))
static void compress_sha_extensions(uint32_t state[8], const uint8_t *data, size_t blocks) {
    const __m128i byte_swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i dcba = _mm_loadu_si128((const __m128i *)&state[0]);
    __m128i hgfe = _mm_loadu_si128((const __m128i *)&state[4]);
    __m128i cdab = _mm_shuffle_epi32(dcba, 0xB1);
    __m128i efgh = _mm_shuffle_epi32(hgfe, 0x1B);
    __m128i abef = _mm_alignr_epi8(cdab, efgh, 8);
    __m128i cdgh = _mm_blend_epi16(efgh, cdab, 0xF0);

    // Four rounds on the message quad W[4q..4q+3].
#define SHA256_FOUR_ROUNDS(message, quad)                                                                  \
    do {                                                                                                 \
        const __m128i scheduled = _mm_add_epi32((message), _mm_loadu_si128((const __m128i *)&round_constants[4 * (quad)])); \
        cdgh = _mm_sha256rnds2_epu32(cdgh, abef, scheduled);                                             \
        abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(scheduled, 0x0E));                   \
    } while (0)
    // The next quad from the previous four, oldest first: msg1 adds the σ0 terms, the alignr brings
    // W[t-7..t-4], msg2 adds the σ1 terms (including those of the two words it has just made).
#define SHA256_NEXT_QUAD(oldest, older, newer, newest) \
    _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32((oldest), (older)), _mm_alignr_epi8((newest), (newer), 4)), (newest))

    for (size_t block = 0; block < blocks; block++, data += 64) {
        const __m128i saved_abef = abef, saved_cdgh = cdgh;
        // The message lives in four registers, rotated by hand: an indexed array here ends up on
        // the stack, and its store-to-load round trips cost a third of the throughput.
        __m128i w0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 0)), byte_swap);
        __m128i w1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 16)), byte_swap);
        __m128i w2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 32)), byte_swap);
        __m128i w3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 48)), byte_swap);
        SHA256_FOUR_ROUNDS(w0, 0);
        SHA256_FOUR_ROUNDS(w1, 1);
        SHA256_FOUR_ROUNDS(w2, 2);
        SHA256_FOUR_ROUNDS(w3, 3);
        for (int quad = 4; quad < 16; quad += 4) {
            w0 = SHA256_NEXT_QUAD(w0, w1, w2, w3);
            SHA256_FOUR_ROUNDS(w0, quad);
            w1 = SHA256_NEXT_QUAD(w1, w2, w3, w0);
            SHA256_FOUR_ROUNDS(w1, quad + 1);
            w2 = SHA256_NEXT_QUAD(w2, w3, w0, w1);
            SHA256_FOUR_ROUNDS(w2, quad + 2);
            w3 = SHA256_NEXT_QUAD(w3, w0, w1, w2);
            SHA256_FOUR_ROUNDS(w3, quad + 3);
        }
        abef = _mm_add_epi32(abef, saved_abef);
        cdgh = _mm_add_epi32(cdgh, saved_cdgh);
    }
#undef SHA256_FOUR_ROUNDS
#undef SHA256_NEXT_QUAD

    __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
    __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);
    _mm_storeu_si128((__m128i *)&state[0], _mm_blend_epi16(feba, dchg, 0xF0));
    _mm_storeu_si128((__m128i *)&state[4], _mm_alignr_epi8(dchg, feba, 8));
}

static int cpu_has_sha_extensions(void) {
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    const int ssse3 = (ecx >> 9) & 1, sse41 = (ecx >> 19) & 1;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
    const int sha = (ebx >> 29) & 1;
    return ssse3 && sse41 && sha;
}

int beats_sha256_uses_sha_extensions(void) {
    // Every thread computes the same answer, so a relaxed atomic cache is enough.
    static int cached = -1;
    int known = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (known < 0) {
        known = cpu_has_sha_extensions();
        __atomic_store_n(&cached, known, __ATOMIC_RELAXED);
    }
    return known;
}

void beats_sha256_blocks(uint32_t state[8], const uint8_t *data, size_t blocks) {
    if (beats_sha256_uses_sha_extensions()) {
        compress_sha_extensions(state, data, blocks);
    } else {
        compress_portable(state, data, blocks);
    }
}
#else
int beats_sha256_uses_sha_extensions(void) { return 0; }

void beats_sha256_blocks(uint32_t state[8], const uint8_t *data, size_t blocks) {
    compress_portable(state, data, blocks);
}
#endif
