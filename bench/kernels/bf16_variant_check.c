/*
 * Checks the AVX512-BF16 GEMM (beats_gemm_bf16_avx512) and measures what rounding the activations to
 * bfloat16 costs. Built by emulated_bf16_check.sh with the kernel's intrinsics emulated (SIMDe plus
 * beats_avx512bf16_emulation.h) under ASan/UBSan; on a CPU with AVX512-BF16 it also runs on the real
 * instructions when built without BEATS_EMULATE_AVX512 (then the bitwise check below holds only if the
 * hardware adds in the order of Intel's pseudo-code, which it is documented to).
 *
 * 1. Ragged shapes (M, K, N around the tile, panel and slab sizes, row and column sub-ranges, strides
 *    wider than K) against
 *      (a) a scalar model of the kernel's arithmetic — per 256-wide K slab, per output: t = 0, then per
 *          k pair t += x'[2q+1]·w[2q+1], t += x'[2q]·w[2q] in float32; C = t (first slab) or C + t —
 *          which must match BITWISE (x' = beats_float_to_bf16_activation(x)); this pins down the
 *          packing, tiles, masks and slab bookkeeping exactly;
 *      (b) a float64 reference Σ x'·w, within the a-priori bound (K + 8)·2⁻²⁴·Σ|x'·w|;
 *    and checks that outputs outside the ranges are untouched and that NaN/Inf propagate.
 * 2. Full-size BEATs shapes (M = 496; K×N = 768×768, 768×3072, 3072×768): the relative error of the
 *    BF16 GEMM's outputs against the exact product of the float32 activations with the same bfloat16
 *    weights (float64), i.e. the accuracy cost of bfloat16 activations.
 *
 *   variant_check options: --full-only, --ragged-only
 */
#include "beats_half_kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t next_random(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

/* Uniform in [-1, 1). */
static float uniform(void) { return (float)(next_random() & 0xffffff) / 8388608.0f - 1.0f; }

/* Approximately standard normal (sum of 4 uniforms, scaled). */
static float normal(void) { return (uniform() + uniform() + uniform() + uniform()) * 0.8660254f; }

static uint16_t bf16_nearest(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    return (uint16_t)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

static float bf16_value(uint16_t word) { return beats_bf16_to_float(word); }

static int failures = 0;

/* The products' scratch (1 MiB, 64-byte aligned). */
static void *scratch;

#define CHECK(condition, ...)                 \
    do {                                      \
        if (!(condition)) {                   \
            fprintf(stderr, __VA_ARGS__);     \
            fputc('\n', stderr);              \
            if (++failures > 20) exit(1);     \
        }                                     \
    } while (0)

/* The scalar model of the kernel's arithmetic (see the top of this file). */
static float model_output(const float *x_row, const uint16_t *w_row, size_t K) {
    const size_t pieces = (K + BEATS_BF16_SLAB_DEPTH - 1) / BEATS_BF16_SLAB_DEPTH;
    size_t step = (K + pieces - 1) / pieces;
    step = (step + 31) / 32 * 32;
    float c = 0.0f;
    for (size_t k0 = 0; k0 < K; k0 += step) {
        const size_t end = K - k0 < step ? K : k0 + step;
        float t = 0.0f;
        for (size_t k = k0; k < end; k += 2) {
            float odd = 0.0f;
            if (k + 1 < end) {
                odd = bf16_value(beats_float_to_bf16_activation(x_row[k + 1])) * bf16_value(w_row[k + 1]);
            }
            t = t + odd;
            t = t + bf16_value(beats_float_to_bf16_activation(x_row[k])) * bf16_value(w_row[k]);
        }
        c = k0 == 0 ? t : c + t;
    }
    return c;
}

static void check_shape(size_t M, size_t K, size_t N, size_t m_begin, size_t m_end, size_t n_begin, size_t n_end,
                        size_t x_pad, size_t w_pad) {
    const size_t x_stride = K + x_pad, w_stride = K + w_pad, c_stride = N + 3;
    /* Buffers end exactly at the last row's last element (ASan catches any read past it), and the
     * stride padding between rows is NaN, so reading it would show up in the outputs. */
    float *x = malloc(sizeof(float) * ((M - 1) * x_stride + K));
    uint16_t *w = malloc(sizeof(uint16_t) * ((N - 1) * w_stride + K));
    float *c = malloc(sizeof(float) * M * c_stride);
    for (size_t i = 0; i < (M - 1) * x_stride + K; i++) {
        x[i] = i % x_stride < K ? normal() * (i % 7 == 0 ? 8.0f : 1.0f) : NAN;
    }
    for (size_t i = 0; i < (N - 1) * w_stride + K; i++) {
        w[i] = i % w_stride < K ? bf16_nearest(normal() * 0.05f) : (uint16_t)0x7fc0u;
    }
    const float sentinel = -12345.5f;
    for (size_t i = 0; i < M * c_stride; i++) c[i] = sentinel;
    int status = beats_gemm_bf16_avx512(x, x_stride, w, w_stride, N, K, c, c_stride, m_begin, m_end, n_begin, n_end,
                                        scratch, BEATS_HALF_SCRATCH_BYTES);
    CHECK(status == BEATS_OK, "M=%zu K=%zu N=%zu: status %d", M, K, N, status);
    for (size_t m = 0; m < M; m++) {
        for (size_t n = 0; n < c_stride; n++) {
            const float got = c[m * c_stride + n];
            if (m < m_begin || m >= m_end || n < n_begin || n >= n_end) {
                CHECK(got == sentinel, "M=%zu K=%zu N=%zu: wrote outside the range at [%zu][%zu]", M, K, N, m, n);
                continue;
            }
            const float model = model_output(x + m * x_stride, w + n * w_stride, K);
            double exact = 0, magnitude = 0;
            for (size_t k = 0; k < K; k++) {
                const double term = (double)bf16_value(beats_float_to_bf16_activation(x[m * x_stride + k])) *
                                    (double)bf16_value(w[n * w_stride + k]);
                exact += term;
                magnitude += fabs(term);
            }
            CHECK(memcmp(&got, &model, sizeof got) == 0, "M=%zu K=%zu N=%zu [%zu][%zu]: %.9g, model %.9g", M, K, N, m,
                  n, got, model);
            const double bound = (double)(K + 8) * 0x1p-24 * magnitude + 1e-30;
            CHECK(fabs((double)got - exact) <= bound, "M=%zu K=%zu N=%zu [%zu][%zu]: %.9g vs exact %.12g (bound %.3g)",
                  M, K, N, m, n, got, exact, bound);
        }
    }
    free(x);
    free(w);
    free(c);
}

static void check_ragged(void) {
    const size_t Ms[] = {1, 7, 8, 9, 23};
    const size_t Ks[] = {1, 2, 3, 31, 32, 33, 64, 255, 256, 257, 300, 513};
    const size_t Ns[] = {1, 15, 16, 17, 32, 33, 70};
    size_t cases = 0;
    for (size_t a = 0; a < sizeof Ms / sizeof Ms[0]; a++) {
        for (size_t b = 0; b < sizeof Ks / sizeof Ks[0]; b++) {
            for (size_t d = 0; d < sizeof Ns / sizeof Ns[0]; d++) {
                const size_t M = Ms[a], K = Ks[b], N = Ns[d];
                check_shape(M, K, N, 0, M, 0, N, 0, 0);
                check_shape(M, K, N, M / 3, M, N / 4, N - N / 5, 5, 3); /* sub-ranges, wider strides */
                cases += 2;
            }
        }
    }
    /* More rows than one block of 512, so blocks and repacking repeat. */
    check_shape(530, 70, 40, 3, 529, 5, 39, 1, 2);
    cases++;
    printf("ragged shapes: %zu cases, bitwise equal to the scalar model and within the float64 bound\n", cases);

    /* Non-finite activations propagate to their row's outputs. */
    const size_t M = 3, K = 40, N = 20;
    float x[3 * 40], c[3 * 20];
    uint16_t w[20 * 40];
    for (size_t i = 0; i < M * K; i++) x[i] = uniform();
    for (size_t i = 0; i < N * K; i++) w[i] = bf16_nearest(uniform() + 2.0f); /* positive weights */
    x[0 * K + 5] = NAN;
    x[1 * K + 7] = INFINITY;
    CHECK(beats_gemm_bf16_avx512(x, K, w, K, N, K, c, N, 0, M, 0, N, scratch, BEATS_HALF_SCRATCH_BYTES) == BEATS_OK,
          "non-finite: status");
    for (size_t n = 0; n < N; n++) {
        CHECK(isnan(c[n]), "NaN activation: output [0][%zu] = %g", n, c[n]);
        CHECK(isinf(c[N + n]) && c[N + n] > 0, "Inf activation: output [1][%zu] = %g", n, c[N + n]);
        CHECK(isfinite(c[2 * N + n]), "finite row: output [2][%zu] = %g", n, c[2 * N + n]);
    }
    /* Argument checks. */
    const size_t size = BEATS_HALF_SCRATCH_BYTES;
    CHECK(beats_gemm_bf16_avx512(x, K, w, K, N, K, c, N, 0, M, 0, N + 1, scratch, size) == BEATS_ERROR_INVALID_ARGUMENT,
          "n_end > rows");
    CHECK(beats_gemm_bf16_avx512(x, K - 1, w, K, N, K, c, N, 0, M, 0, N, scratch, size) == BEATS_ERROR_INVALID_ARGUMENT,
          "x stride");
    CHECK(beats_gemm_bf16_avx512(NULL, K, w, K, N, K, c, N, 0, M, 0, N, scratch, size) == BEATS_ERROR_INVALID_ARGUMENT,
          "NULL x");
    CHECK(beats_gemm_bf16_avx512(x, K, w, K, N, K, c, N, 0, M, 0, N, scratch, size - 1) == BEATS_ERROR_INVALID_ARGUMENT,
          "small scratch");
    CHECK(beats_gemm_bf16_avx512(x, K, w, K, N, K, c, N, 0, M, 0, N, (char *)scratch + 4, size) == BEATS_ERROR_MISALIGNED,
          "misaligned scratch");
    CHECK(beats_gemm_bf16_avx512(NULL, K, NULL, K, N, K, NULL, N, 2, 2, 0, N, NULL, 0) == BEATS_OK, "empty range");
}

static void measure_full(void) {
    const size_t M = 496;
    const size_t shapes[3][2] = {{768, 768}, {768, 3072}, {3072, 768}};
    printf("accuracy cost of bfloat16 activations (M = 496, bf16 weights N(0, 0.02^2)/√(K/768) scale):\n");
    printf("  %-14s %-26s %12s %12s %12s\n", "K x N", "activations", "rel. L2 err", "max rel err", "f32x L2 err");
    for (int s = 0; s < 3; s++) {
        const size_t K = shapes[s][0], N = shapes[s][1];
        float *x = malloc(sizeof(float) * M * K);
        uint16_t *w = malloc(sizeof(uint16_t) * N * K);
        float *c = malloc(sizeof(float) * M * N);
        const float scale = 0.02f * sqrtf(768.0f / (float)K);
        for (size_t i = 0; i < N * K; i++) w[i] = bf16_nearest(normal() * scale);
        for (int kind = 0; kind < 2; kind++) {
            /* LayerNorm-like inputs (q/k/v, fc1) or GELU outputs (fc2's input). */
            for (size_t i = 0; i < M * K; i++) {
                const float v = normal();
                x[i] = kind == 0 ? v : 0.5f * v * (1.0f + erff(v * 0.70710678f));
            }
            if (beats_gemm_bf16_avx512(x, K, w, K, N, K, c, N, 0, M, 0, N, scratch, BEATS_HALF_SCRATCH_BYTES) != BEATS_OK) {
                fprintf(stderr, "full-size GEMM failed\n");
                exit(1);
            }
            double error2 = 0, norm2 = 0, max_relative = 0, f32_error2 = 0;
            for (size_t m = 0; m < M; m++) {
                double row_norm2 = 0;
                double *exact = malloc(sizeof(double) * N);
                for (size_t n = 0; n < N; n++) {
                    double sum = 0;
                    float naive = 0; /* float32 activations, float32 sequential sum: the float path's scale of error */
                    for (size_t k = 0; k < K; k++) {
                        sum += (double)x[m * K + k] * (double)bf16_value(w[n * K + k]);
                        naive += x[m * K + k] * bf16_value(w[n * K + k]);
                    }
                    exact[n] = sum;
                    row_norm2 += sum * sum;
                    f32_error2 += ((double)naive - sum) * ((double)naive - sum);
                }
                const double row_rms = sqrt(row_norm2 / (double)N);
                for (size_t n = 0; n < N; n++) {
                    const double difference = (double)c[m * N + n] - exact[n];
                    error2 += difference * difference;
                    const double relative = fabs(difference) / row_rms;
                    if (relative > max_relative) max_relative = relative;
                }
                norm2 += row_norm2;
                free(exact);
            }
            char label[32];
            snprintf(label, sizeof label, "%zux%zu", K, N);
            printf("  %-14s %-26s %12.3e %12.3e %12.3e\n", label, kind == 0 ? "normal (LayerNorm-like)" : "GELU(normal)",
                   sqrt(error2 / norm2), max_relative, sqrt(f32_error2 / norm2));
        }
        free(x);
        free(w);
        free(c);
    }
    printf("  (rel. L2 err = ||y_bf16x - y|| / ||y||, y exact with float32 x and the same bf16 weights; max rel err =\n"
           "   max |error| / rms of the output row; f32x L2 err = a sequential float32 sum with float32 x, for scale)\n");
}

int main(int argc, char **argv) {
    int ragged = 1, full = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--full-only") == 0) ragged = 0;
        else if (strcmp(argv[i], "--ragged-only") == 0) full = 0;
        else {
            fprintf(stderr, "usage: %s [--full-only | --ragged-only]\n", argv[0]);
            return 2;
        }
    }
    /* Filled with NaN: a product that read scratch before writing it would show it. */
    scratch = aligned_alloc(BEATS_HALF_SCRATCH_ALIGNMENT, BEATS_HALF_SCRATCH_BYTES);
    for (size_t i = 0; i < BEATS_HALF_SCRATCH_BYTES / sizeof(float); i++) ((float *)scratch)[i] = NAN;
    if (ragged) check_ragged();
    if (full) measure_full();
    free(scratch);
    if (failures) {
        fprintf(stderr, "FAILED: %d mismatches\n", failures);
        return 1;
    }
    printf("OK\n");
    return 0;
}
