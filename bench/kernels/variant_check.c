/*
 * Compares every kernel variant this build can run with the scalar one on random shapes, and the
 * GEMM with a float64 reference. Used by emulated_vnni_check.sh to exercise the AVX-512 VNNI code
 * through SIMDe on machines without AVX-512; the Swift tests (Tests/BEATsKernelTests) are the
 * project's real tests.
 *
 *   cc -O2 -I../../Sources/CBEATsKernels/include ../../Sources/CBEATsKernels/{variants,pack,scalar,avx2,avx512}.c variant_check.c
 */
#include "beats_kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*gemm_fn)(const int8_t *, size_t, const float *, const void *, const float *, const float *, float *,
                       size_t, size_t, size_t, size_t, size_t);
typedef int (*quantize_fn)(const float *, size_t, size_t, size_t, int, int8_t *, size_t, float *);

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t next_random(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static float uniform(float lo, float hi) { return lo + (hi - lo) * (float)((next_random() >> 40) / 16777216.0); }

static int same_bits(const float *x, const float *y, size_t count) {
    for (size_t i = 0; i < count; i++) {
        if (isnan(x[i]) && isnan(y[i])) continue;
        if (memcmp(&x[i], &y[i], sizeof(float)) != 0) return 0;
    }
    return 1;
}

int check_variant(const char *name, gemm_fn gemm, quantize_fn quantize) {
    const size_t sizes[] = {1, 3, 4, 5, 8, 15, 16, 17, 31, 32, 33, 65, 100, 768};
    const size_t count = sizeof sizes / sizeof sizes[0];
    int failures = 0, cases = 0;
    for (size_t trial = 0; trial < 160; trial++) {
        const size_t M = sizes[next_random() % count], N = sizes[next_random() % count];
        /* Now and then a K beyond the kernels' scratch block (their unpacked path). */
        const size_t K = trial % 40 == 39 ? 16385 + next_random() % 5000 : sizes[next_random() % count];
        /* Full int8, 7-bit (the AVX2 offset path) or any other level. */
        const int level = trial % 3 == 0 ? 127 : trial % 3 == 1 ? 63 : 1 + (int)(next_random() % 127);
        const size_t a_stride = K + next_random() % 3, c_stride = N + next_random() % 3;
        float *x = malloc(sizeof(float) * M * a_stride);
        for (size_t i = 0; i < M * a_stride; i++) x[i] = uniform(-3, 3);
        if (trial % 7 == 0) memset(x, 0, sizeof(float) * K); /* a zero row */
        int8_t *qa = malloc(M * a_stride), *qb = malloc(M * a_stride);
        float *sa = malloc(sizeof(float) * M), *sb = malloc(sizeof(float) * M);
        memset(qa, 0, M * a_stride);
        memset(qb, 0, M * a_stride);
        beats_quantize_rows_scalar(x, a_stride, M, K, level, qa, a_stride, sa);
        if (quantize(x, a_stride, M, K, level, qb, a_stride, sb) != BEATS_OK || memcmp(qa, qb, M * a_stride) != 0 ||
            !same_bits(sa, sb, M)) {
            printf("%s: quantize differs M=%zu K=%zu\n", name, M, K);
            failures++;
        }
        int8_t *w = malloc(N * K);
        for (size_t i = 0; i < N * K; i++) w[i] = (int8_t)((int)(next_random() % 255) - 127);
        if (trial % 5 == 0) for (size_t i = 0; i < N * K; i++) w[i] = (i & 1) ? 127 : -127; /* extremes */
        if (trial % 5 == 0) for (size_t i = 0; i < M * a_stride; i++) qa[i] = (int8_t)((i & 2) ? level : -level);
        float *ws = malloc(sizeof(float) * N), *bias = malloc(sizeof(float) * N);
        for (size_t n = 0; n < N; n++) ws[n] = uniform(0.001f, 0.02f), bias[n] = uniform(-1, 1);
        size_t packed_size = beats_packed_weights_size(N, K);
        void *packed = aligned_alloc(64, (packed_size + 63) / 64 * 64);
        if (beats_pack_weights(w, K, N, K, packed, packed_size) != BEATS_OK) {
            printf("pack failed\n");
            return 1;
        }
        size_t m0 = next_random() % M, n0 = next_random() % N;
        size_t m1 = m0 + 1 + next_random() % (M - m0), n1 = n0 + 1 + next_random() % (N - n0);
        if (trial % 3 == 0) m0 = 0, m1 = M, n0 = 0, n1 = N;
        float *ca = malloc(sizeof(float) * M * c_stride), *cb = malloc(sizeof(float) * M * c_stride);
        for (size_t i = 0; i < M * c_stride; i++) ca[i] = cb[i] = uniform(-1, 1);
        const float *b = (trial % 6 == 5) ? NULL : bias;
        int sa_status = beats_gemm_s8_scalar(qa, a_stride, sa, packed, ws, b, ca, c_stride, m0, m1, n0, n1);
        int sb_status = gemm(qa, a_stride, sa, packed, ws, b, cb, c_stride, m0, m1, n0, n1);
        cases++;
        if (sa_status != BEATS_OK || sb_status != BEATS_OK || !same_bits(ca, cb, M * c_stride)) {
            printf("%s: gemm differs level=%d M=%zu N=%zu K=%zu range m[%zu,%zu) n[%zu,%zu) status %d/%d\n", name, level, M, N,
                   K, m0, m1, n0, n1, sa_status, sb_status);
            failures++;
        }
        /* float64 reference of the product, every fourth trial (never the large K ones: too slow) */
        if (trial % 4 == 0) {
            for (size_t m = m0; m < m1; m++)
                for (size_t n = n0; n < n1; n++) {
                    double acc = 0;
                    for (size_t k = 0; k < K; k++) acc += (double)qa[m * a_stride + k] * w[n * K + k];
                    double expected = acc * ((double)sa[m] * ws[n]) + (b ? b[n] : 0);
                    double got = cb[m * c_stride + n];
                    if (fabs(got - expected) > 1e-5 * (fabs(expected) + 1)) {
                        printf("%s: reference mismatch %g vs %g\n", name, got, expected);
                        failures++;
                        m = m1;
                        break;
                    }
                }
        }
        free(x), free(qa), free(qb), free(sa), free(sb), free(w), free(ws), free(bias), free(packed), free(ca), free(cb);
    }
    printf("%s: %d gemm cases, %d failures\n", name, cases, failures);
    return failures;
}

int main(int argc, char **argv) {
    int failures = 0;
    failures += check_variant("scalar", beats_gemm_s8_scalar, beats_quantize_rows_scalar);
    if (beats_kernel_available(BEATS_KERNEL_AVX2)) {
        failures += check_variant("avx2", beats_gemm_s8_avx2, beats_quantize_rows_avx2);
    } else {
        printf("avx2: not run (CPU lacks AVX2)\n");
    }
    if (argc > 1 && strcmp(argv[1], "--emulated-avx512") == 0) {
        failures += check_variant("avx512vnni (SIMDe emulation)", beats_gemm_s8_avx512vnni, beats_quantize_rows_avx512);
    } else if (beats_kernel_available(BEATS_KERNEL_AVX512VNNI)) {
        failures += check_variant("avx512vnni", beats_gemm_s8_avx512vnni, beats_quantize_rows_avx512);
    } else {
        printf("avx512vnni: not run (CPU lacks AVX-512 VNNI); use emulated_vnni_check.sh\n");
    }
    return failures == 0 ? 0 : 1;
}
