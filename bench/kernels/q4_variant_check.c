/*
 * Compares every int4 GEMM variant this build can run with the scalar one (bitwise) on random ragged
 * shapes, sub-ranges and extreme values, checks the GEMM against a float64 reference, and checks the
 * scalar f16 → f32 conversion against vcvtph2ps on all 65536 inputs. Used by emulated_q4_check.sh
 * to exercise the AVX-512 VNNI code through SIMDe on machines without AVX-512; the Swift tests
 * (Tests/BEATsKernelTests/Int4*.swift) are the project's real tests.
 *
 *   cc -O2 -I../../Sources/CBEATsKernels/include ../../Sources/CBEATsKernels/{variants,pack,scalar,avx2,avx512,q4_*}.c \
 *      q4_variant_check.c -lm
 */
#include "beats_kernels.h"
#include "beats_q4_kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

typedef int (*gemm_q4_fn)(const int8_t *, size_t, const float *, const int32_t *, size_t, const void *, const float *,
                          float *, size_t, size_t, size_t, size_t, size_t);

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
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

#if defined(__x86_64__) && !defined(BEATS_EMULATE_AVX512)
__attribute__((target("f16c"))) static float hardware_half_to_float(uint16_t bits) {
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits)));
}

/* beats_q4_half_to_float must equal vcvtph2ps bit for bit, NaNs included. */
static int check_half_conversion(void) {
    if ((beats_cpu_features() & BEATS_CPU_F16C) == 0) {
        printf("f16 → f32: not compared (CPU lacks F16C)\n");
        return 0;
    }
    int failures = 0;
    for (uint32_t bits = 0; bits < 65536; bits++) {
        const float ours = beats_q4_half_to_float((uint16_t)bits), theirs = hardware_half_to_float((uint16_t)bits);
        if (memcmp(&ours, &theirs, sizeof ours) != 0) {
            if (failures++ < 5) printf("f16 0x%04x: %a vs vcvtph2ps %a\n", bits, ours, theirs);
        }
        /* Every finite half survives the trip through double. */
        if ((bits & 0x7c00u) != 0x7c00u && beats_q4_half_from_double((double)ours) != bits) {
            if (failures++ < 5) printf("f16 0x%04x does not round-trip\n", bits);
        }
    }
    printf("f16 → f32 vs vcvtph2ps, all 65536 inputs: %d failures\n", failures);
    return failures;
}
#else
static int check_half_conversion(void) { return 0; }
#endif

/* One random int4 matrix, packed; q in [0, 15] (all 15 when `extreme`), f16 scales and minimums. */
static void *random_packed(size_t N, size_t K, size_t G, int extreme, uint8_t *q, uint16_t *scales, uint16_t *minimums) {
    const size_t groups = K / G;
    for (size_t i = 0; i < N * K; i++) q[i] = extreme ? 15 : (uint8_t)(next_random() % 16);
    for (size_t i = 0; i < N * groups; i++) {
        scales[i] = beats_q4_half_from_double(uniform(0.0f, 0.02f));
        minimums[i] = beats_q4_half_from_double(uniform(-0.15f, 0.0f));
    }
    if (N * groups > 2) scales[1] = 0, minimums[2] = 0x8000; /* a zero scale, a -0 minimum */
    const size_t size = beats_q4_packed_size(N, K, G);
    void *packed = aligned_alloc(64, (size + 63) / 64 * 64);
    if (packed == NULL || beats_q4_pack(q, K, scales, minimums, N, K, G, packed, size) != BEATS_OK) {
        printf("pack failed N=%zu K=%zu G=%zu\n", N, K, G);
        exit(1);
    }
    size_t rows, columns, group;
    if (beats_q4_packed_shape(packed, size, &rows, &columns, &group) != BEATS_OK || rows != N || columns != K || group != G) {
        printf("packed_shape disagrees\n");
        exit(1);
    }
    return packed;
}

static int check_variant(const char *name, gemm_q4_fn gemm) {
    const size_t sizes[] = {1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 65, 100};
    const size_t count = sizeof sizes / sizeof sizes[0];
    const size_t group_sizes[] = {32, 64, 128};
    int failures = 0, cases = 0;
    for (size_t trial = 0; trial < 240; trial++) {
        const size_t G = group_sizes[next_random() % 3];
        const size_t M = sizes[next_random() % count], N = sizes[next_random() % count];
        const size_t K = G * (1 + next_random() % (trial % 20 == 19 ? 48 : 6));
        const size_t groups = K / G;
        const size_t a_stride = K + next_random() % 5, c_stride = N + next_random() % 3, sums_stride = groups + next_random() % 2;
        const int extreme = trial % 5 == 0;
        int8_t *a = malloc(M * a_stride);
        for (size_t i = 0; i < M * a_stride; i++) a[i] = (int8_t)((int)(next_random() % 256) - 128);
        if (extreme) for (size_t i = 0; i < M * a_stride; i++) a[i] = (i / 3) % 2 ? 127 : -128; /* int16 worst case */
        float *a_scales = malloc(sizeof(float) * M);
        for (size_t m = 0; m < M; m++) a_scales[m] = uniform(0.001f, 0.05f);
        int32_t *sums = malloc(sizeof(int32_t) * M * sums_stride);
        if (beats_q4_activation_sums(a, a_stride, M, K, G, sums, sums_stride) != BEATS_OK) return 1;
        {
            /* Every form of the sums gives the same exact values. */
            int32_t *scalar_sums = malloc(sizeof(int32_t) * M * sums_stride);
            memcpy(scalar_sums, sums, sizeof(int32_t) * M * sums_stride);
            if (beats_q4_activation_sums_scalar(a, a_stride, M, K, G, scalar_sums, sums_stride) != BEATS_OK ||
                memcmp(scalar_sums, sums, sizeof(int32_t) * M * sums_stride) != 0) {
                printf("%s: activation sums differ between forms G=%zu M=%zu K=%zu\n", name, G, M, K);
                failures++;
            }
            free(scalar_sums);
        }
        uint8_t *q = malloc(N * K);
        uint16_t *scales = malloc(2 * N * groups), *minimums = malloc(2 * N * groups);
        void *packed = random_packed(N, K, G, extreme, q, scales, minimums);
        float *bias = malloc(sizeof(float) * N);
        for (size_t n = 0; n < N; n++) bias[n] = uniform(-1, 1);
        const float *b = trial % 6 == 5 ? NULL : bias;

        size_t m0 = next_random() % M, n0 = next_random() % N;
        size_t m1 = m0 + 1 + next_random() % (M - m0), n1 = n0 + 1 + next_random() % (N - n0);
        if (trial % 3 == 0) m0 = 0, m1 = M, n0 = 0, n1 = N;
        float *expected = malloc(sizeof(float) * M * c_stride), *actual = malloc(sizeof(float) * M * c_stride);
        for (size_t i = 0; i < M * c_stride; i++) expected[i] = actual[i] = uniform(-1, 1);
        const int s_status = beats_gemm_q4_scalar(a, a_stride, a_scales, sums, sums_stride, packed, b, expected, c_stride,
                                                  m0, m1, n0, n1);
        const int v_status = gemm(a, a_stride, a_scales, sums, sums_stride, packed, b, actual, c_stride, m0, m1, n0, n1);
        cases++;
        if (s_status != BEATS_OK || v_status != BEATS_OK || !same_bits(expected, actual, M * c_stride)) {
            printf("%s: differs from scalar G=%zu M=%zu N=%zu K=%zu m[%zu,%zu) n[%zu,%zu) status %d/%d\n", name, G, M, N, K,
                   m0, m1, n0, n1, s_status, v_status);
            failures++;
        }
        /* float64 reference: Σ_k (a·s_a)(scale·q + minimum) + b from the dequantized operands. */
        if (trial % 4 == 0) {
            for (size_t m = m0; m < m1; m++) {
                for (size_t n = n0; n < n1; n++) {
                    double sum = 0, magnitude = 0;
                    for (size_t k = 0; k < K; k++) {
                        const size_t g = k / G;
                        const double w = (double)beats_q4_half_to_float(scales[n * groups + g]) * q[n * K + k] +
                                         (double)beats_q4_half_to_float(minimums[n * groups + g]);
                        const double x = (double)a[m * a_stride + k] * a_scales[m];
                        sum += x * w;
                        magnitude += fabs(x * w);
                    }
                    const double want = sum + (b ? b[n] : 0), got = actual[m * c_stride + n];
                    if (fabs(got - want) > 1e-5 * (magnitude + fabs(want)) + 1e-30) {
                        printf("%s: reference mismatch [%zu,%zu] %.9g vs %.9g\n", name, m, n, got, want);
                        failures++;
                        m = m1;
                        break;
                    }
                }
            }
        }
        free(a), free(a_scales), free(sums), free(q), free(scales), free(minimums), free(packed), free(bias);
        free(expected), free(actual);
    }
    printf("%s: %d gemm cases, %d failures\n", name, cases, failures);
    return failures;
}

int main(int argc, char **argv) {
    int failures = check_half_conversion();
    failures += check_variant("scalar", beats_gemm_q4_scalar);
    if (beats_q4_kernel_available(BEATS_KERNEL_AVX2)) {
        failures += check_variant("avx2", beats_gemm_q4_avx2);
    } else {
        printf("avx2: not run (CPU lacks AVX2 + F16C)\n");
    }
    if (argc > 1 && strcmp(argv[1], "--emulated-avx512") == 0) {
        failures += check_variant("avx512vnni (SIMDe emulation)", beats_gemm_q4_avx512vnni);
    } else if (beats_q4_kernel_available(BEATS_KERNEL_AVX512VNNI)) {
        failures += check_variant("avx512vnni", beats_gemm_q4_avx512vnni);
    } else {
        printf("avx512vnni: not run (CPU lacks AVX-512 VNNI); use emulated_q4_check.sh\n");
    }
    return failures == 0 ? 0 : 1;
}
