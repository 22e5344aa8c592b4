/*
 * Checks the float16 / bfloat16 kernels that run on this machine (half_check.sh builds it with ASan
 * and UBSan against OpenBLAS):
 *   - every one of the 65 536 bit patterns converts to the reference value (beats_f16_to_float /
 *     beats_bf16_to_float), bitwise, in each conversion variant, in every position of a row (so both
 *     the vector body and the scalar tail see it);
 *   - beats_half_gemm_avx2 on ragged shapes (rows around the 6-row tile and the 510-row block, K
 *     around the 320 slab, column ranges around the 16-column panel, strides wider than K) BITWISE
 *     against a scalar model of its arithmetic (per slab, fmaf from zero in ascending k; C = slab 0,
 *     then C + slab), and within (K + 8)·2⁻²⁴·Σ|x·w| of a float64 reference; outputs outside the range
 *     untouched; reading past a row or the stride padding would show (buffers end at the last element,
 *     padding is NaN);
 *   - beats_half_gemm_sgemm (both conversion variants, cblas_sgemm) within the same bound, and bitwise
 *     equal to one cblas_sgemm on the converted weights when K ≤ 320 and the range is one chunk;
 *   - argument errors.
 */
#include "beats_half_kernels.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void openblas_set_num_threads(int);

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint32_t next_random(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static float uniform(void) { return (float)(next_random() & 0xffffff) / 8388608.0f - 1.0f; }

static int failures = 0;

#define CHECK(condition, ...)                 \
    do {                                      \
        if (!(condition)) {                   \
            fprintf(stderr, __VA_ARGS__);     \
            fputc('\n', stderr);              \
            if (++failures > 20) exit(1);     \
        }                                     \
    } while (0)

static void *scratch;

static void sgemm_adapter(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                          const float *b, int ldb, float beta, float *c, int ldc) {
    cblas_sgemm((enum CBLAS_ORDER)order, (enum CBLAS_TRANSPOSE)ta, (enum CBLAS_TRANSPOSE)tb, m, n, k, alpha, a, lda, b,
                ldb, beta, c, ldc);
}

static float element(beats_half_format format, uint16_t bits) {
    return format == BEATS_HALF_BF16 ? beats_bf16_to_float(bits) : beats_f16_to_float(bits);
}

static void check_conversion(void) {
    typedef int (*convert_fn)(beats_half_format, const uint16_t *, size_t, size_t, size_t, float *, size_t);
    const convert_fn variants[2] = {beats_half_to_float_rows_portable, beats_half_to_float_rows_avx2};
    const char *names[2] = {"portable", "avx2"};
    /* 65 536 patterns as 1024 rows of 64, stride 70; then shifted by 1 … 39 so each pattern also
     * lands in the scalar tail of a 39-wide row. */
    uint16_t *bits = malloc(sizeof(uint16_t) * 1024 * 70);
    float *out = malloc(sizeof(float) * 1024 * 72);
    for (int v = 0; v < 2; v++) {
        if (!beats_half_variant_available(v == 0 ? BEATS_HALF_PORTABLE : BEATS_HALF_AVX2)) {
            printf("conversion %s: unavailable on this CPU\n", names[v]);
            continue;
        }
        for (int f = 0; f < 2; f++) {
            const beats_half_format format = f == 0 ? BEATS_HALF_F16 : BEATS_HALF_BF16;
            for (size_t i = 0; i < 1024 * 70; i++) bits[i] = (uint16_t)((i / 70) * 64 + i % 70);
            CHECK(variants[v](format, bits, 70, 1024, 64, out, 72) == BEATS_OK, "convert status");
            for (size_t r = 0; r < 1024; r++) {
                for (size_t k = 0; k < 64; k++) {
                    const float expected = element(format, bits[r * 70 + k]);
                    CHECK(memcmp(&expected, &out[r * 72 + k], 4) == 0, "%s format %d pattern %04x", names[v], f,
                          bits[r * 70 + k]);
                }
            }
            for (size_t shift = 1; shift < 40; shift++) {
                /* Rows of 39 starting at pattern r·39 + shift … */
                for (size_t r = 0; r < 1024; r++) {
                    for (size_t k = 0; k < 39; k++) bits[r * 70 + k] = (uint16_t)(r * 64 + (k + shift) % 64);
                }
                CHECK(variants[v](format, bits, 70, 1024, 39, out, 72) == BEATS_OK, "convert status");
                for (size_t r = 0; r < 1024; r++) {
                    for (size_t k = 0; k < 39; k++) {
                        const float expected = element(format, bits[r * 70 + k]);
                        CHECK(memcmp(&expected, &out[r * 72 + k], 4) == 0, "%s format %d tail pattern %04x", names[v],
                              f, bits[r * 70 + k]);
                    }
                }
            }
        }
        printf("conversion %s: all 65536 f16 and bf16 patterns bitwise equal to the reference\n", names[v]);
    }
    free(bits);
    free(out);
}

/* The scalar model of beats_half_gemm_avx2's arithmetic. */
static float avx2_model(beats_half_format format, const float *x_row, const uint16_t *w_row, size_t K) {
    const size_t pieces = (K + BEATS_HALF_AVX2_SLAB_DEPTH - 1) / BEATS_HALF_AVX2_SLAB_DEPTH;
    const size_t step = ((K + pieces - 1) / pieces + 7) / 8 * 8;
    float c = 0.0f;
    for (size_t k0 = 0; k0 < K; k0 += step) {
        const size_t end = K - k0 < step ? K : k0 + step;
        float t = 0.0f;
        for (size_t k = k0; k < end; k++) t = fmaf(x_row[k], element(format, w_row[k]), t);
        c = k0 == 0 ? t : c + t;
    }
    return c;
}

enum product { PRODUCT_AVX2, PRODUCT_SGEMM_PORTABLE, PRODUCT_SGEMM_AVX2 };

static void check_product(enum product product, beats_half_format format, size_t M, size_t K, size_t N, size_t n_begin,
                          size_t n_end, size_t x_pad, size_t w_pad) {
    const size_t x_stride = K + x_pad, w_stride = K + w_pad, c_stride = N + 3;
    const size_t x_count = (M - 1) * x_stride + K, w_count = (N - 1) * w_stride + K;
    float *x = malloc(sizeof(float) * x_count);
    uint16_t *w = malloc(sizeof(uint16_t) * w_count);
    float *c = malloc(sizeof(float) * M * c_stride);
    for (size_t i = 0; i < x_count; i++) x[i] = i % x_stride < K ? uniform() * (i % 5 == 0 ? 6.0f : 1.0f) : NAN;
    const uint16_t nan_bits = format == BEATS_HALF_BF16 ? 0x7fc0u : 0x7e00u;
    for (size_t i = 0; i < w_count; i++) {
        const float v = uniform() * 0.25f;
        uint32_t b;
        memcpy(&b, &v, 4);
        /* Any finite 16-bit pattern of either format (truncated: the rounding does not matter here). */
        const uint16_t bits = format == BEATS_HALF_BF16 ? (uint16_t)(b >> 16)
                                                        : (uint16_t)(((b >> 16) & 0x8000u) | (next_random() & 0x37ffu));
        w[i] = i % w_stride < K ? bits : nan_bits;
    }
    const float sentinel = -777.25f;
    for (size_t i = 0; i < M * c_stride; i++) c[i] = sentinel;
    int status;
    if (product == PRODUCT_AVX2) {
        status = beats_half_gemm_avx2(format, x, x_stride, M, w, w_stride, K, c, c_stride, n_begin, n_end, scratch,
                                      BEATS_HALF_SCRATCH_BYTES);
    } else {
        status = beats_half_gemm_sgemm(product == PRODUCT_SGEMM_AVX2 ? BEATS_HALF_AVX2 : BEATS_HALF_PORTABLE, format,
                                       sgemm_adapter, x, x_stride, M, w, w_stride, K, c, c_stride, n_begin, n_end,
                                       scratch, BEATS_HALF_SCRATCH_BYTES);
    }
    CHECK(status == BEATS_OK, "product %d M=%zu K=%zu N=%zu: status %d", product, M, K, N, status);
    /* One sgemm on the converted weights, for the bitwise case of the sgemm product. */
    float *direct = NULL;
    if (product != PRODUCT_AVX2 && K <= BEATS_HALF_SGEMM_SLAB_DEPTH && K > 0) {
        float *converted = malloc(sizeof(float) * N * K);
        for (size_t n = 0; n < N; n++) {
            for (size_t k = 0; k < K; k++) converted[n * K + k] = element(format, w[n * w_stride + k]);
        }
        direct = malloc(sizeof(float) * M * N);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)(n_end - n_begin), (int)K, 1.0f, x,
                    (int)x_stride, converted + n_begin * K, (int)K, 0.0f, direct + n_begin, (int)N);
        free(converted);
    }
    for (size_t m = 0; m < M; m++) {
        for (size_t n = 0; n < c_stride; n++) {
            const float got = c[m * c_stride + n];
            if (n < n_begin || n >= n_end) {
                CHECK(got == sentinel, "product %d: wrote outside the range at [%zu][%zu]", product, m, n);
                continue;
            }
            double exact = 0, magnitude = 0;
            for (size_t k = 0; k < K; k++) {
                const double term = (double)x[m * x_stride + k] * (double)element(format, w[n * w_stride + k]);
                exact += term;
                magnitude += fabs(term);
            }
            const double bound = (double)(K + 8) * 0x1p-24 * magnitude;
            CHECK(fabs((double)got - exact) <= bound, "product %d format %d M=%zu K=%zu N=%zu [%zu][%zu]: %.9g vs %.12g",
                  product, format, M, K, N, m, n, got, exact);
            if (product == PRODUCT_AVX2) {
                const float model = avx2_model(format, x + m * x_stride, w + n * w_stride, K);
                CHECK(memcmp(&got, &model, 4) == 0, "avx2 format %d M=%zu K=%zu N=%zu [%zu][%zu]: %.9g, model %.9g",
                      format, M, K, N, m, n, got, model);
            } else if (direct != NULL) {
                CHECK(memcmp(&got, &direct[m * N + n], 4) == 0, "sgemm product M=%zu K=%zu N=%zu [%zu][%zu]: %.9g vs "
                      "direct sgemm %.9g", M, K, N, m, n, got, direct[m * N + n]);
            }
        }
    }
    free(direct);
    free(x);
    free(w);
    free(c);
}

static void check_products(void) {
    const size_t Ms[] = {1, 5, 6, 7, 13, 511, 1025};
    const size_t Ks[] = {1, 7, 8, 9, 31, 319, 320, 321, 700};
    const size_t Ns[] = {1, 8, 15, 16, 17, 40};
    size_t cases = 0;
    for (int p = PRODUCT_AVX2; p <= PRODUCT_SGEMM_AVX2; p++) {
        const beats_half_variant needed = p == PRODUCT_SGEMM_PORTABLE ? BEATS_HALF_PORTABLE : BEATS_HALF_AVX2;
        if (!beats_half_variant_available(needed)) {
            printf("product %d: unavailable on this CPU\n", p);
            continue;
        }
        for (int f = 1; f <= 2; f++) {
            for (size_t a = 0; a < sizeof Ms / sizeof Ms[0]; a++) {
                for (size_t b = 0; b < sizeof Ks / sizeof Ks[0]; b++) {
                    for (size_t d = 0; d < sizeof Ns / sizeof Ns[0]; d++) {
                        const size_t M = Ms[a], K = Ks[b], N = Ns[d];
                        if (M > 13 && (K > 9 || N > 17)) continue; /* keep the big-M cases few */
                        check_product((enum product)p, (beats_half_format)f, M, K, N, 0, N, 0, 0);
                        check_product((enum product)p, (beats_half_format)f, M, K, N, N / 3, N - N / 4, 3, 5);
                        cases += 2;
                    }
                }
            }
            check_product((enum product)p, (beats_half_format)f, 600, 1000, 70, 3, 67, 2, 1);
            cases++;
        }
    }
    printf("products: %zu cases within the float64 bound; avx2 bitwise equal to its scalar model; sgemm product\n"
           "  bitwise equal to one sgemm on the converted weights where it is one call\n", cases);

    /* Errors. */
    float x[64], c[64];
    uint16_t w[64] = {0};
    for (int i = 0; i < 64; i++) x[i] = 1.0f;
    const size_t size = BEATS_HALF_SCRATCH_BYTES;
    if (beats_half_variant_available(BEATS_HALF_AVX2)) {
        CHECK(beats_half_gemm_avx2(BEATS_HALF_F16, x, 8, 2, w, 8, 8, c, 8, 0, 8, scratch, size - 1) ==
                  BEATS_ERROR_INVALID_ARGUMENT, "small scratch");
        CHECK(beats_half_gemm_avx2(BEATS_HALF_F16, x, 8, 2, w, 8, 8, c, 8, 0, 8, (char *)scratch + 32, size) ==
                  BEATS_ERROR_MISALIGNED, "misaligned scratch");
        CHECK(beats_half_gemm_avx2(BEATS_HALF_F16, x, 7, 2, w, 8, 8, c, 8, 0, 8, scratch, size) ==
                  BEATS_ERROR_INVALID_ARGUMENT, "x stride");
        CHECK(beats_half_gemm_avx2(BEATS_HALF_F16, x, 8, 2, w, 8, 8, c, 7, 0, 8, scratch, size) ==
                  BEATS_ERROR_INVALID_ARGUMENT, "c stride");
        CHECK(beats_half_gemm_avx2((beats_half_format)3, x, 8, 2, w, 8, 8, c, 8, 0, 8, scratch, size) ==
                  BEATS_ERROR_INVALID_ARGUMENT, "format");
        CHECK(beats_half_gemm_avx2(BEATS_HALF_F16, x, 8, 2, w, 8, 8, c, 8, 5, 4, scratch, size) ==
                  BEATS_ERROR_INVALID_ARGUMENT, "reversed range");
        CHECK(beats_half_gemm_avx2(BEATS_HALF_F16, NULL, 8, 0, NULL, 8, 8, NULL, 8, 0, 8, NULL, 0) == BEATS_OK, "empty");
        for (int i = 0; i < 16; i++) c[i] = 5.0f;
        CHECK(beats_half_gemm_avx2(BEATS_HALF_F16, x, 8, 2, w, 8, 0, c, 8, 1, 7, scratch, size) == BEATS_OK &&
                  c[0] == 5.0f && c[1] == 0.0f && c[6] == 0.0f && c[7] == 5.0f && c[9] == 0.0f, "K = 0 writes zeros");
    }
    CHECK(beats_half_gemm_sgemm(BEATS_HALF_PORTABLE, BEATS_HALF_F16, NULL, x, 8, 2, w, 8, 8, c, 8, 0, 8, scratch, size) ==
              BEATS_ERROR_INVALID_ARGUMENT, "NULL sgemm");
    CHECK(beats_half_gemm_sgemm((beats_half_variant)9, BEATS_HALF_F16, sgemm_adapter, x, 8, 2, w, 8, 8, c, 8, 0, 8,
                                scratch, size) == BEATS_ERROR_INVALID_ARGUMENT, "variant");
    if (!beats_gemm_bf16_avx512_available()) {
        CHECK(beats_gemm_bf16_avx512(x, 8, w, 8, 8, 8, c, 8, 0, 2, 0, 8, scratch, size) == BEATS_ERROR_UNAVAILABLE,
              "BF16 GEMM on a CPU without AVX512-BF16");
        printf("bf16-avx512: unavailable on this CPU (returns BEATS_ERROR_UNAVAILABLE)\n");
    }
}

int main(void) {
    openblas_set_num_threads(1);
    scratch = aligned_alloc(BEATS_HALF_SCRATCH_ALIGNMENT, BEATS_HALF_SCRATCH_BYTES);
    for (size_t i = 0; i < BEATS_HALF_SCRATCH_BYTES / sizeof(float); i++) ((float *)scratch)[i] = NAN;
    check_conversion();
    check_products();
    free(scratch);
    if (failures) {
        fprintf(stderr, "FAILED: %d mismatches\n", failures);
        return 1;
    }
    printf("OK\n");
    return 0;
}
