/*
 * Micro-benchmark of the int8 GEMM against OpenBLAS sgemm on the full-size BEATs Linear shapes
 * (496 tokens = a 10 s clip; K×N = 768×768 attention projections, 768×3072 fc1, 3072×768 fc2).
 * Reports the median of repeated runs in GOPS (2·M·N·K operations per product), single-threaded and
 * with the column range split across 2 threads the way the runtime splits it.
 *
 * Two clocks: wall time, and CPU time (CLOCK_THREAD_CPUTIME_ID / CLOCK_PROCESS_CPUTIME_ID), which
 * counts only the time our threads were on a core. On the shared 2-core development machine other
 * processes often hold the cores, so the median wall time then understates the kernels; the best
 * (minimum) wall time and the CPU-time figure ("cpu GOPS" = ops / median CPU time of the slowest
 * thread) are what idle cores give.
 *
 *   bench/kernels/run_bench.sh [--variant avx2|scalar|avx512vnni] [--reps N] [--levels 127|63]
 *
 * --variant picks the kernels' entry points (beats_gemm_s8_avx2, …); without it, the best this CPU
 * runs. L is the activation quantization level: 127 (full int8) or 63 (7-bit, the AVX2 offset path).
 */
#include "beats_kernels.h"

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

static double process_cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int compare_doubles(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

typedef int (*gemm_fn)(const int8_t *, size_t, const float *, const void *, const float *, const float *, float *,
                       size_t, size_t, size_t, size_t, size_t);
typedef int (*quantize_fn)(const float *, size_t, size_t, size_t, int, int8_t *, size_t, float *);

/* The variant under test: its name and entry points. */
static const char *variant_name;
static gemm_fn gemm;
static quantize_fn quantize;

static int choose_variant(beats_kernel_variant variant) {
    if (!beats_kernel_available(variant)) return 0;
    variant_name = beats_kernel_variant_name(variant);
    switch (variant) {
    case BEATS_KERNEL_AVX512VNNI: gemm = beats_gemm_s8_avx512vnni, quantize = beats_quantize_rows_avx512; break;
    case BEATS_KERNEL_AVX2: gemm = beats_gemm_s8_avx2, quantize = beats_quantize_rows_avx2; break;
    default: gemm = beats_gemm_s8_scalar, quantize = beats_quantize_rows_scalar; break;
    }
    return 1;
}

typedef struct {
    const int8_t *a;
    const float *a_scales;
    const void *packed;
    const float *w_scales, *bias;
    float *c;
    size_t M, N, K, n_begin, n_end;
    double cpu_seconds;
} gemm_job;

static void *run_job(void *argument) {
    gemm_job *job = argument;
    const double start = thread_cpu_seconds();
    int status = gemm(job->a, job->K, job->a_scales, job->packed, job->w_scales, job->bias, job->c, job->N, 0, job->M,
                      job->n_begin, job->n_end);
    if (status != BEATS_OK) {
        fprintf(stderr, "gemm failed: %s\n", beats_status_description(status));
        exit(1);
    }
    job->cpu_seconds = thread_cpu_seconds() - start;
    return NULL;
}

/* One product split into `threads` column ranges on panel boundaries (the caller's thread runs the
 * first). Returns the largest per-thread CPU time. */
static double run_split(gemm_job base, int threads) {
    pthread_t handles[8];
    gemm_job jobs[8];
    size_t panels = (base.N + BEATS_PANEL_COLUMNS - 1) / BEATS_PANEL_COLUMNS;
    for (int t = 0; t < threads; t++) {
        jobs[t] = base;
        jobs[t].n_begin = panels * (size_t)t / (size_t)threads * BEATS_PANEL_COLUMNS;
        size_t end = panels * (size_t)(t + 1) / (size_t)threads * BEATS_PANEL_COLUMNS;
        jobs[t].n_end = end < base.N ? end : base.N;
    }
    for (int t = 1; t < threads; t++) pthread_create(&handles[t], NULL, run_job, &jobs[t]);
    run_job(&jobs[0]);
    for (int t = 1; t < threads; t++) pthread_join(handles[t], NULL);
    double slowest = 0;
    for (int t = 0; t < threads; t++) slowest = jobs[t].cpu_seconds > slowest ? jobs[t].cpu_seconds : slowest;
    return slowest;
}

int main(int argc, char **argv) {
    int reps = 30;
    int levels[2] = {BEATS_ACTIVATION_LEVELS_INT8, BEATS_ACTIVATION_LEVELS_7BIT}, level_count = 2;
    if (!choose_variant(BEATS_KERNEL_AVX512VNNI) && !choose_variant(BEATS_KERNEL_AVX2)) choose_variant(BEATS_KERNEL_SCALAR);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--variant") == 0 && i + 1 < argc) {
            const char *name = argv[++i];
            beats_kernel_variant v = strcmp(name, "scalar") == 0 ? BEATS_KERNEL_SCALAR
                                     : strcmp(name, "avx2") == 0 ? BEATS_KERNEL_AVX2
                                                                 : BEATS_KERNEL_AVX512VNNI;
            if (!choose_variant(v)) {
                fprintf(stderr, "variant %s not available on this CPU\n", name);
                return 1;
            }
        } else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--levels") == 0 && i + 1 < argc) {
            levels[0] = atoi(argv[++i]);
            level_count = 1;
        }
    }
    printf("int8 kernel: %s   OpenBLAS core: %s   cpu features: 0x%x\n", variant_name, openblas_get_corename(),
           beats_cpu_features());
    const size_t shapes[][3] = {{496, 768, 768}, {496, 768, 3072}, {496, 3072, 768}};
    printf("%-16s %3s %3s | %9s %9s %9s %9s | %9s %9s %9s %9s | %8s\n", "shape MxKxN", "L", "thr", "int8 ms",
           "GOPS", "best", "cpu GOPS", "sgemm ms", "GOPS", "best", "cpu GOPS", "quant ms");
    for (int li = 0; li < level_count; li++)
    for (size_t s = 0; s < 3; s++) {
        const int level = levels[li];
        const size_t M = shapes[s][0], K = shapes[s][1], N = shapes[s][2];
        float *x = malloc(sizeof(float) * M * K), *wf = malloc(sizeof(float) * N * K);
        float *c = malloc(sizeof(float) * M * N), *a_scales = malloc(sizeof(float) * M);
        float *w_scales = malloc(sizeof(float) * N), *bias = malloc(sizeof(float) * N);
        int8_t *a = malloc(M * K), *w = malloc(N * K);
        srand(7);
        for (size_t i = 0; i < M * K; i++) x[i] = (float)rand() / (float)RAND_MAX * 2 - 1;
        for (size_t i = 0; i < N * K; i++) {
            w[i] = (int8_t)(rand() % 255 - 127);
            wf[i] = w[i] * 0.01f;
        }
        for (size_t n = 0; n < N; n++) w_scales[n] = 0.01f, bias[n] = 0.1f;
        size_t size = beats_packed_weights_size(N, K);
        void *packed = aligned_alloc(64, (size + 63) / 64 * 64);
        beats_pack_weights(w, K, N, K, packed, size);
        quantize(x, K, M, K, level, a, K, a_scales);

        for (int threads = 1; threads <= 2; threads++) {
            double *t_int8 = malloc(sizeof(double) * (size_t)reps), *t_blas = malloc(sizeof(double) * (size_t)reps);
            double *t_quant = malloc(sizeof(double) * (size_t)reps);
            double *c_int8 = malloc(sizeof(double) * (size_t)reps), *c_blas = malloc(sizeof(double) * (size_t)reps);
            gemm_job job = {a, a_scales, packed, w_scales, bias, c, M, N, K, 0, N, 0};
            openblas_set_num_threads(threads);
            run_split(job, threads); /* warm-up */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N, (int)K, 1.0f, x, (int)K, wf, (int)K, 0.0f,
                        c, (int)N);
            for (int r = 0; r < reps; r++) {
                double t0 = now_seconds();
                c_int8[r] = run_split(job, threads);
                double t1 = now_seconds();
                double p1 = process_cpu_seconds();
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N, (int)K, 1.0f, x, (int)K, wf, (int)K,
                            0.0f, c, (int)N);
                double t2 = now_seconds();
                c_blas[r] = (process_cpu_seconds() - p1) / threads; /* OpenBLAS's threads: mean per thread */
                quantize(x, K, M, K, level, a, K, a_scales);
                double t3 = now_seconds();
                t_int8[r] = t1 - t0, t_blas[r] = t2 - t1, t_quant[r] = t3 - t2;
            }
            qsort(t_int8, (size_t)reps, sizeof(double), compare_doubles);
            qsort(t_blas, (size_t)reps, sizeof(double), compare_doubles);
            qsort(t_quant, (size_t)reps, sizeof(double), compare_doubles);
            qsort(c_int8, (size_t)reps, sizeof(double), compare_doubles);
            qsort(c_blas, (size_t)reps, sizeof(double), compare_doubles);
            const double ops = 2.0 * (double)M * (double)N * (double)K;
            const double mi = t_int8[reps / 2], mb = t_blas[reps / 2];
            char label[64];
            snprintf(label, sizeof label, "%zux%zux%zu", M, K, N);
            printf("%-16s %3d %3d | %9.3f %9.1f %9.1f %9.1f | %9.3f %9.1f %9.1f %9.1f | %8.3f\n", label, level, threads,
                   mi * 1e3, ops / mi * 1e-9, ops / t_int8[0] * 1e-9, ops / c_int8[reps / 2] * 1e-9, mb * 1e3,
                   ops / mb * 1e-9, ops / t_blas[0] * 1e-9, ops / c_blas[reps / 2] * 1e-9, t_quant[reps / 2] * 1e3);
            free(t_int8), free(t_blas), free(t_quant), free(c_int8), free(c_blas);
        }
        free(x), free(wf), free(c), free(a_scales), free(w_scales), free(bias), free(a), free(w), free(packed);
    }
    return 0;
}
