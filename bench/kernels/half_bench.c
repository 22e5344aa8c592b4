/*
 * Micro-benchmark of float16 / bfloat16 weights against float32 weights on the full-size BEATs Linear
 * shapes (M = 496 tokens of a 10 s clip; K×N = 768×768 attention projections, 768×3072 fc1,
 * 3072×768 fc2), 1 and 2 threads, split the way the runtime splits them:
 *   f32 sgemm     cblas_sgemm on float32 weights, one single-threaded call per band of output columns
 *                 (Matrix.multiply(splitting:): bands on multiples of 8 columns);
 *   f16 / bf16 avx2   beats_half_gemm_avx2 per band (multiples of 16 columns): the GEMM that converts
 *                 while it packs;
 *   f16 / bf16 sgemm  beats_half_gemm_sgemm per band (multiples of 8): convert a chunk of weights into
 *                 the thread's scratch, cblas_sgemm it (AVX2 conversion; portable with --portable) —
 *                 the path for CPUs without AVX2;
 *   bf16 avx512   beats_gemm_bf16_avx512 per band on multiples of 32 columns (only on CPUs with
 *                 AVX512-BF16; "unavailable" otherwise).
 * GFLOP/s = 2·M·N·K / time. Like gemm_bench.c it prints "cpu" figures (operations over the median CPU
 * time of the slowest thread, CLOCK_THREAD_CPUTIME_ID: what idle cores give on a shared machine) and
 * the best wall time.
 *
 * Weights are "hot" (the same copy every repetition: it stays in the 32 MB L3) or, with --cold,
 * rotated through copies totalling ≥ 256 MB per format, so each product streams its weights from
 * memory as a forward pass through a 90 M-parameter model does.
 *
 *   bench/kernels/run_half_bench.sh [--reps N] [--cold] [--portable] [--shape K N]
 */
#include "beats_half_kernels.h"

#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void openblas_set_num_threads(int);
char *openblas_get_corename(void);

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double thread_cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int compare_doubles(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* cblas_sgemm with int enumerations, as the runtime calls it through dlsym. */
static void sgemm_adapter(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                          const float *b, int ldb, float beta, float *c, int ldc) {
    cblas_sgemm((enum CBLAS_ORDER)order, (enum CBLAS_TRANSPOSE)ta, (enum CBLAS_TRANSPOSE)tb, m, n, k, alpha, a, lda, b,
                ldb, beta, c, ldc);
}

enum method { METHOD_F32, METHOD_F16_AVX2, METHOD_BF16_AVX2, METHOD_F16_SGEMM, METHOD_BF16_SGEMM, METHOD_BF16_AVX512,
              METHOD_COUNT };
static const char *method_names[] = {"f32 sgemm", "f16 avx2", "bf16 avx2", "f16 sgemm", "bf16 sgemm", "bf16 avx512"};

typedef struct {
    enum method method;
    const float *x;
    const void *w; /* float32 or 16-bit weights [N, K] */
    float *c;
    size_t M, N, K, n_begin, n_end;
    void *scratch;
    beats_half_variant variant;
    double cpu_seconds;
} job;

static void *run_job(void *argument) {
    job *j = argument;
    const double start = thread_cpu_seconds();
    int status = BEATS_OK;
    const size_t band = j->n_end - j->n_begin;
    switch (j->method) {
    case METHOD_F32:
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)j->M, (int)band, (int)j->K, 1.0f, j->x, (int)j->K,
                    (const float *)j->w + j->n_begin * j->K, (int)j->K, 0.0f, j->c + j->n_begin, (int)j->N);
        break;
    case METHOD_F16_AVX2:
    case METHOD_BF16_AVX2:
        status = beats_half_gemm_avx2(j->method == METHOD_F16_AVX2 ? BEATS_HALF_F16 : BEATS_HALF_BF16, j->x, j->K, j->M,
                                      j->w, j->K, j->K, j->c, j->N, j->n_begin, j->n_end, j->scratch,
                                      BEATS_HALF_SCRATCH_BYTES);
        break;
    case METHOD_F16_SGEMM:
    case METHOD_BF16_SGEMM:
        status = beats_half_gemm_sgemm(j->variant, j->method == METHOD_F16_SGEMM ? BEATS_HALF_F16 : BEATS_HALF_BF16,
                                       sgemm_adapter, j->x, j->K, j->M, j->w, j->K, j->K, j->c, j->N, j->n_begin,
                                       j->n_end, j->scratch, BEATS_HALF_SCRATCH_BYTES);
        break;
    case METHOD_BF16_AVX512:
        status = beats_gemm_bf16_avx512(j->x, j->K, j->w, j->K, j->N, j->K, j->c, j->N, 0, j->M, j->n_begin, j->n_end,
                                        j->scratch, BEATS_HALF_SCRATCH_BYTES);
        break;
    default:
        break;
    }
    if (status != BEATS_OK) {
        fprintf(stderr, "%s failed: %s\n", method_names[j->method], beats_status_description(status));
        exit(1);
    }
    j->cpu_seconds = thread_cpu_seconds() - start;
    return NULL;
}

/* One product split into `threads` bands of output columns on multiples of `align` (the caller's
 * thread runs the first). Returns the largest per-thread CPU time. */
static double run_split(job base, int threads, size_t align, void **scratch) {
    pthread_t handles[2];
    job jobs[2];
    const size_t units = base.N / align;
    for (int t = 0; t < threads; t++) {
        jobs[t] = base;
        jobs[t].scratch = scratch[t];
        jobs[t].n_begin = units * (size_t)t / (size_t)threads * align;
        jobs[t].n_end = t == threads - 1 ? base.N : units * (size_t)(t + 1) / (size_t)threads * align;
    }
    for (int t = 1; t < threads; t++) pthread_create(&handles[t], NULL, run_job, &jobs[t]);
    run_job(&jobs[0]);
    for (int t = 1; t < threads; t++) pthread_join(handles[t], NULL);
    double slowest = 0;
    for (int t = 0; t < threads; t++) slowest = jobs[t].cpu_seconds > slowest ? jobs[t].cpu_seconds : slowest;
    return slowest;
}

static uint16_t to_f16(float value) {
    /* Round to nearest even through float arithmetic on normal values in [2^-14, 65504] (the weights here). */
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    const uint32_t sign = (bits >> 16) & 0x8000u;
    bits &= 0x7fffffffu;
    if (bits < 0x38800000u) return (uint16_t)sign; /* below the f16 normal range: 0 (fine for a benchmark) */
    const uint32_t rounded = bits + 0xfffu + ((bits >> 13) & 1u);
    return (uint16_t)(sign | ((rounded - 0x38000000u) >> 13));
}

static uint16_t to_bf16(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    return (uint16_t)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

int main(int argc, char **argv) {
    int reps = 15, cold = 0;
    beats_half_variant variant = beats_half_variant_available(BEATS_HALF_AVX2) ? BEATS_HALF_AVX2 : BEATS_HALF_PORTABLE;
    size_t shapes[3][2] = {{768, 768}, {768, 3072}, {3072, 768}};
    int shape_count = 3;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--cold") == 0) cold = 1;
        else if (strcmp(argv[i], "--portable") == 0) variant = BEATS_HALF_PORTABLE;
        else if (strcmp(argv[i], "--shape") == 0 && i + 2 < argc) {
            shapes[0][0] = (size_t)atol(argv[++i]);
            shapes[0][1] = (size_t)atol(argv[++i]);
            shape_count = 1;
        } else {
            fprintf(stderr, "usage: %s [--reps N] [--cold] [--portable] [--shape K N]\n", argv[0]);
            return 2;
        }
    }
    if (reps < 1 || reps > 1000) reps = 15;
    openblas_set_num_threads(1);
    const int bf16_gemm = beats_gemm_bf16_avx512_available();
    const int avx2 = beats_half_variant_available(BEATS_HALF_AVX2);
    printf("OpenBLAS core: %s; sgemm-path conversion: %s; scratch %zu KB per thread; weights %s; AVX2 GEMM: %s; "
           "AVX512-BF16 GEMM: %s\n",
           openblas_get_corename(), beats_half_variant_name(variant), BEATS_HALF_SCRATCH_BYTES / 1024,
           cold ? "cold (rotated through >= 256 MB)" : "hot (one copy)", avx2 ? "available" : "unavailable",
           bf16_gemm ? "available" : "unavailable");
    const size_t M = 496;
    void *scratch[2];
    for (int t = 0; t < 2; t++) {
        scratch[t] = aligned_alloc(BEATS_HALF_SCRATCH_ALIGNMENT, BEATS_HALF_SCRATCH_BYTES);
        memset(scratch[t], 0, BEATS_HALF_SCRATCH_BYTES);
    }
    printf("%-12s %-14s %4s %10s %10s %10s\n", "shape MxKxN", "method", "thr", "cpu GF/s", "best GF/s", "vs f32");
    for (int s = 0; s < shape_count; s++) {
        const size_t K = shapes[s][0], N = shapes[s][1];
        const size_t f32_bytes = N * K * 4;
        const size_t copies = cold ? (256u << 20) / f32_bytes + 1 : 1;
        float *x = aligned_alloc(64, M * K * 4);
        float *c = aligned_alloc(64, M * N * 4);
        float **w32 = malloc(copies * sizeof *w32);
        uint16_t **w16 = malloc(copies * sizeof *w16), **wb16 = malloc(copies * sizeof *wb16);
        for (size_t i = 0; i < M * K; i++) x[i] = (float)rand() / (float)RAND_MAX - 0.5f;
        for (size_t copy = 0; copy < copies; copy++) {
            w32[copy] = aligned_alloc(64, f32_bytes);
            w16[copy] = aligned_alloc(64, N * K * 2);
            wb16[copy] = aligned_alloc(64, N * K * 2);
            for (size_t i = 0; i < N * K; i++) {
                const float v = ((float)rand() / (float)RAND_MAX - 0.5f) * 0.1f;
                w16[copy][i] = to_f16(v);
                wb16[copy][i] = to_bf16(v);
                w32[copy][i] = beats_f16_to_float(w16[copy][i]);
            }
        }
        const double flops = 2.0 * (double)M * (double)N * (double)K;
        /* The methods take turns within every repetition, so load from other processes on the shared
         * machine falls on all of them alike. */
        for (int threads = 1; threads <= 2; threads++) {
            static double cpu[METHOD_COUNT][1000];
            double best_wall[METHOD_COUNT];
            int runs[METHOD_COUNT];
            for (int method = 0; method < METHOD_COUNT; method++) {
                best_wall[method] = 1e30;
                runs[method] = method == METHOD_BF16_AVX512 ? bf16_gemm
                               : (method == METHOD_F16_AVX2 || method == METHOD_BF16_AVX2) ? avx2 : 1;
            }
            for (int r = -1; r < reps; r++) { /* r = -1 warms up */
                const size_t copy = (size_t)(r + 1) % copies;
                for (int method = METHOD_F32; method < METHOD_COUNT; method++) {
                    if (!runs[method]) continue;
                    job base = {.method = (enum method)method, .x = x, .c = c, .M = M, .N = N, .K = K,
                                .variant = variant};
                    base.w = method == METHOD_F32 ? (const void *)w32[copy]
                             : (method == METHOD_F16_AVX2 || method == METHOD_F16_SGEMM) ? (const void *)w16[copy]
                                                                                        : (const void *)wb16[copy];
                    const size_t align = method == METHOD_BF16_AVX512 ? BEATS_BF16_PANEL_COLUMNS
                                         : (method == METHOD_F16_AVX2 || method == METHOD_BF16_AVX2)
                                             ? BEATS_HALF_AVX2_PANEL_COLUMNS
                                             : 8;
                    const double start = now_seconds();
                    const double slowest = run_split(base, threads, align, scratch);
                    const double wall = now_seconds() - start;
                    if (r < 0) continue;
                    cpu[method][r] = slowest;
                    if (wall < best_wall[method]) best_wall[method] = wall;
                }
            }
            char shape[32];
            snprintf(shape, sizeof shape, "%zux%zux%zu", M, K, N);
            double f32_median = 0;
            for (int method = METHOD_F32; method < METHOD_COUNT; method++) {
                if (!runs[method]) {
                    printf("%-12s %-14s %4d %10s\n", shape, method_names[method], threads, "unavailable");
                    continue;
                }
                qsort(cpu[method], (size_t)reps, sizeof cpu[method][0], compare_doubles);
                const double median = cpu[method][reps / 2];
                if (method == METHOD_F32) f32_median = median;
                printf("%-12s %-14s %4d %10.1f %10.1f %9.2fx\n", shape, method_names[method], threads,
                       flops / median * 1e-9, flops / best_wall[method] * 1e-9, median / f32_median);
            }
        }
        for (size_t copy = 0; copy < copies; copy++) free(w32[copy]), free(w16[copy]), free(wb16[copy]);
        free(w32), free(w16), free(wb16), free(x), free(c);
    }
    printf("(vs f32 = median CPU time / f32's median CPU time: below 1 is faster than float32 weights)\n");
    return 0;
}
