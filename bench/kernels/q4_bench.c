/*
 * Micro-benchmark of the int4 group-wise GEMM (beats_q4_kernels.h) against the int8 GEMM at 7-bit
 * activations (L = 63, the int8 AVX2 kernel's fast form), on the full-size BEATs Linear shapes
 * (M = 496 tokens of a 10 s clip; K×N = 768×768, 768×3072, 3072×768), 1 and 2 threads splitting
 * the column range on panel boundaries the way the runtime does.
 *
 * Clocks as in gemm_bench.c: median wall time ("ms"), GOPS of the best wall time ("best"), and GOPS
 * over the median ("cpu") and the smallest ("cpu max") CPU time of the slowest thread
 * (CLOCK_THREAD_CPUTIME_ID): on the shared 2-core development machine that is what idle cores
 * deliver. "ratio" is int4 time / int8 time from the median CPU times, "r(max)" from the smallest;
 * each repetition runs the int8 and the int4 product back to back, so both see the same load. The int4 time includes its activation
 * group sums (beats_q4_activation_sums, computed once, before the threads start), which the int8
 * product does not need; "sums ms" shows that part alone. Activation quantization is left out of
 * both (the same beats_quantize_rows_* call, at L = 127 for int4 and 63 for int8).
 *
 *   bench/kernels/run_q4_bench.sh [--variant avx2|scalar|avx512vnni] [--reps N] [--group 32|64|128]
 *
 * Measured 2026-12-03 on the development machine (AMD EPYC, Zen 3, AVX2 + FMA + F16C, no AVX-512; 2
 * cores shared with other jobs, load average 1–3.5), four runs of --reps 31. GOPS from the smallest
 * CPU time ("cpu max"), best of the four runs; "ratio" = int4 time / int8 time, best vs best, then the
 * run-by-run ratio of the median CPU times (range, and the middle of the four):
 *
 *   shape M×K×N    G  thr  int8 L=63  int4   best/best  median ratio
 *   496×768×768   32   1      181      183     0.99     1.09–1.24 (1.22)
 *   496×768×768   32   2      355      341     1.04     1.09–1.23 (1.21)
 *   496×768×768   64   1      182      206     0.89     0.97–1.13 (1.10)
 *   496×768×768   64   2      354      382     0.92     0.93–1.14 (1.11)
 *   496×768×768  128   1      186      220     0.84     0.86–1.07 (1.04)
 *   496×768×768  128   2      353      419     0.84     0.91–1.08 (1.04)
 *   496×768×3072  32   1      172      174     0.99     1.17–1.20 (1.19)
 *   496×768×3072  32   2      351      343     1.03     1.14–1.20 (1.20)
 *   496×768×3072  64   1      177      199     0.89     0.89–1.09 (1.02)
 *   496×768×3072  64   2      354      389     0.91     0.90–1.09 (1.05)
 *   496×768×3072 128   1      173      204     0.85     0.95–1.04 (0.99)
 *   496×768×3072 128   2      352      411     0.86     0.91–1.08 (1.01)
 *   496×3072×768  32   1      187      182     1.03     1.08–1.29 (1.21)
 *   496×3072×768  32   2      365      357     1.02     1.07–1.27 (1.25)
 *   496×3072×768  64   1      186      205     0.90     1.03–1.14 (1.10)
 *   496×3072×768  64   2      363      410     0.88     0.98–1.11 (1.04)
 *   496×3072×768 128   1      188      223     0.84     0.90–1.14 (1.03)
 *   496×3072×768 128   2      366      432     0.85     0.89–1.09 (0.99)
 *
 * The activation group sums (computed once, single-threaded, AVX2) took 0.04 ms at K = 768 and
 * 0.15 ms at K = 3072 (included in the int4 figures). On idle cores int4 matches int8 at G = 32 and is
 * 10–16 % faster at G = 64 and 128; with the other jobs running, the int4 kernel — whose vector
 * pipes are busier — lost more than int8 (median ratio about 1.2 at G = 32).
 */
#include "beats_kernels.h"
#include "beats_q4_kernels.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double clock_seconds(clockid_t id) {
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int compare_doubles(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

typedef int (*gemm_s8_fn)(const int8_t *, size_t, const float *, const void *, const float *, const float *, float *,
                          size_t, size_t, size_t, size_t, size_t);
typedef int (*gemm_q4_fn)(const int8_t *, size_t, const float *, const int32_t *, size_t, const void *, const float *,
                          float *, size_t, size_t, size_t, size_t, size_t);

static gemm_s8_fn gemm_s8;
static gemm_q4_fn gemm_q4;

typedef struct {
    int int4;
    const int8_t *a;
    const float *a_scales;
    const int32_t *sums;
    size_t groups;
    const void *packed;
    const float *w_scales, *bias;
    float *c;
    size_t M, N, K, n_begin, n_end;
    double cpu_seconds;
} job_t;

static void *run_job(void *argument) {
    job_t *job = argument;
    const double start = clock_seconds(CLOCK_THREAD_CPUTIME_ID);
    const int status = job->int4 ? gemm_q4(job->a, job->K, job->a_scales, job->sums, job->groups, job->packed, job->bias,
                                           job->c, job->N, 0, job->M, job->n_begin, job->n_end)
                                 : gemm_s8(job->a, job->K, job->a_scales, job->packed, job->w_scales, job->bias, job->c,
                                           job->N, 0, job->M, job->n_begin, job->n_end);
    if (status != BEATS_OK) {
        fprintf(stderr, "gemm failed: %s\n", beats_status_description(status));
        exit(1);
    }
    job->cpu_seconds = clock_seconds(CLOCK_THREAD_CPUTIME_ID) - start;
    return NULL;
}

/* One product split into `threads` column ranges on 16-column boundaries; the slowest thread's CPU time. */
static double run_split(job_t base, int threads) {
    pthread_t handles[8];
    job_t jobs[8];
    const size_t panels = (base.N + 15) / 16;
    for (int t = 0; t < threads; t++) {
        jobs[t] = base;
        jobs[t].n_begin = panels * (size_t)t / (size_t)threads * 16;
        const size_t end = panels * (size_t)(t + 1) / (size_t)threads * 16;
        jobs[t].n_end = end < base.N ? end : base.N;
    }
    for (int t = 1; t < threads; t++) pthread_create(&handles[t], NULL, run_job, &jobs[t]);
    run_job(&jobs[0]);
    for (int t = 1; t < threads; t++) pthread_join(handles[t], NULL);
    double slowest = 0;
    for (int t = 0; t < threads; t++) slowest = jobs[t].cpu_seconds > slowest ? jobs[t].cpu_seconds : slowest;
    return slowest;
}

typedef struct {
    double wall_median, wall_best, cpu_median, cpu_best;
} timing_t;

static timing_t summarize(double *wall, double *cpu, int reps) {
    qsort(wall, (size_t)reps, sizeof(double), compare_doubles);
    qsort(cpu, (size_t)reps, sizeof(double), compare_doubles);
    return (timing_t){wall[reps / 2], wall[0], cpu[reps / 2], cpu[0]};
}

int main(int argc, char **argv) {
    int reps = 30;
    size_t groups_to_run[3] = {32, 64, 128}, group_count = 3;
    beats_kernel_variant variant = beats_q4_kernel_available(BEATS_KERNEL_AVX512VNNI) ? BEATS_KERNEL_AVX512VNNI
                                   : beats_q4_kernel_available(BEATS_KERNEL_AVX2)     ? BEATS_KERNEL_AVX2
                                                                                     : BEATS_KERNEL_SCALAR;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--variant") == 0 && i + 1 < argc) {
            const char *name = argv[++i];
            variant = strcmp(name, "scalar") == 0 ? BEATS_KERNEL_SCALAR
                      : strcmp(name, "avx2") == 0 ? BEATS_KERNEL_AVX2
                                                  : BEATS_KERNEL_AVX512VNNI;
        } else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--group") == 0 && i + 1 < argc) {
            groups_to_run[0] = (size_t)atoi(argv[++i]);
            group_count = 1;
        }
    }
    if (!beats_q4_kernel_available(variant) || !beats_kernel_available(variant)) {
        fprintf(stderr, "variant %s not available on this CPU\n", beats_kernel_variant_name(variant));
        return 1;
    }
    switch (variant) {
    case BEATS_KERNEL_AVX512VNNI: gemm_s8 = beats_gemm_s8_avx512vnni, gemm_q4 = beats_gemm_q4_avx512vnni; break;
    case BEATS_KERNEL_AVX2: gemm_s8 = beats_gemm_s8_avx2, gemm_q4 = beats_gemm_q4_avx2; break;
    default: gemm_s8 = beats_gemm_s8_scalar, gemm_q4 = beats_gemm_q4_scalar; break;
    }
    printf("variant: %s   cpu features: 0x%x   reps: %d\n", beats_kernel_variant_name(variant), beats_cpu_features(), reps);
    printf("%-14s %4s %3s | %8s %8s %8s %8s | %8s %8s %8s %8s %8s | %7s %7s\n", "shape MxKxN", "G", "thr", "int8 ms",
           "best", "cpu", "cpu max", "int4 ms", "best", "cpu", "cpu max", "sums ms", "ratio", "r(max)");
    const size_t shapes[][3] = {{496, 768, 768}, {496, 768, 3072}, {496, 3072, 768}};
    for (size_t s = 0; s < 3; s++) {
        const size_t M = shapes[s][0], K = shapes[s][1], N = shapes[s][2];
        float *x = malloc(sizeof(float) * M * K), *c = malloc(sizeof(float) * M * N);
        float *a_scales = malloc(sizeof(float) * M), *w_scales = malloc(sizeof(float) * N), *bias = malloc(sizeof(float) * N);
        int8_t *a7 = malloc(M * K), *a8 = malloc(M * K), *w8 = malloc(N * K);
        uint8_t *q = malloc(N * K);
        float *wf = malloc(sizeof(float) * N * K);
        srand(7);
        for (size_t i = 0; i < M * K; i++) x[i] = (float)rand() / (float)RAND_MAX * 2 - 1;
        for (size_t i = 0; i < N * K; i++) {
            w8[i] = (int8_t)(rand() % 255 - 127);
            wf[i] = (float)rand() / (float)RAND_MAX * 0.2f - 0.1f;
        }
        for (size_t n = 0; n < N; n++) w_scales[n] = 0.01f, bias[n] = 0.1f;
        const size_t s8_size = beats_packed_weights_size(N, K);
        void *s8_packed = aligned_alloc(64, (s8_size + 63) / 64 * 64);
        beats_pack_weights(w8, K, N, K, s8_packed, s8_size);
        float *a7_scales = malloc(sizeof(float) * M);
        beats_quantize_rows_scalar(x, K, M, K, BEATS_ACTIVATION_LEVELS_7BIT, a7, K, a7_scales);
        beats_quantize_rows_scalar(x, K, M, K, BEATS_ACTIVATION_LEVELS_INT8, a8, K, a_scales);

        for (size_t gi = 0; gi < group_count; gi++) {
            const size_t G = groups_to_run[gi], groups = K / G;
            uint16_t *scales = malloc(2 * N * groups), *minimums = malloc(2 * N * groups);
            if (beats_q4_quantize_weights(wf, K, N, K, G, q, K, scales, minimums, NULL) != BEATS_OK) return 1;
            const size_t q4_size = beats_q4_packed_size(N, K, G);
            void *q4_packed = aligned_alloc(64, (q4_size + 63) / 64 * 64);
            if (beats_q4_pack(q, K, scales, minimums, N, K, G, q4_packed, q4_size) != BEATS_OK) return 1;
            int32_t *sums = malloc(sizeof(int32_t) * M * groups);
            for (int threads = 1; threads <= 2; threads++) {
                double *w8t = malloc(sizeof(double) * (size_t)reps), *c8t = malloc(sizeof(double) * (size_t)reps);
                double *w4t = malloc(sizeof(double) * (size_t)reps), *c4t = malloc(sizeof(double) * (size_t)reps);
                double *sum_t = malloc(sizeof(double) * (size_t)reps), *sum_c = malloc(sizeof(double) * (size_t)reps);
                job_t s8_job = {0, a7, a7_scales, NULL, 0, s8_packed, w_scales, bias, c, M, N, K, 0, N, 0};
                job_t q4_job = {1, a8, a_scales, sums, groups, q4_packed, NULL, bias, c, M, N, K, 0, N, 0};
                beats_q4_activation_sums(a8, K, M, K, G, sums, groups);
                run_split(s8_job, threads); /* warm-up */
                run_split(q4_job, threads);
                for (int r = 0; r < reps; r++) {
                    double t0 = clock_seconds(CLOCK_MONOTONIC);
                    c8t[r] = run_split(s8_job, threads);
                    double t1 = clock_seconds(CLOCK_MONOTONIC);
                    const double cpu0 = clock_seconds(CLOCK_THREAD_CPUTIME_ID);
                    beats_q4_activation_sums(a8, K, M, K, G, sums, groups);
                    const double sums_cpu = clock_seconds(CLOCK_THREAD_CPUTIME_ID) - cpu0;
                    double t2 = clock_seconds(CLOCK_MONOTONIC);
                    c4t[r] = run_split(q4_job, threads) + sums_cpu;
                    double t3 = clock_seconds(CLOCK_MONOTONIC);
                    w8t[r] = t1 - t0, w4t[r] = t3 - t1, sum_t[r] = t2 - t1, sum_c[r] = sums_cpu;
                }
                const timing_t t8 = summarize(w8t, c8t, reps), t4 = summarize(w4t, c4t, reps), ts = summarize(sum_t, sum_c, reps);
                const double ops = 2.0 * (double)M * (double)N * (double)K;
                char label[64];
                snprintf(label, sizeof label, "%zux%zux%zu", M, K, N);
                printf("%-14s %4zu %3d | %8.3f %8.1f %8.1f %8.1f | %8.3f %8.1f %8.1f %8.1f %8.3f | %7.3f %7.3f\n", label, G,
                       threads, t8.wall_median * 1e3, ops / t8.wall_best * 1e-9, ops / t8.cpu_median * 1e-9,
                       ops / t8.cpu_best * 1e-9, t4.wall_median * 1e3, ops / t4.wall_best * 1e-9, ops / t4.cpu_median * 1e-9,
                       ops / t4.cpu_best * 1e-9, ts.cpu_median * 1e3, t4.cpu_median / t8.cpu_median,
                       t4.cpu_best / t8.cpu_best);
                fflush(stdout);
                free(w8t), free(c8t), free(w4t), free(c4t), free(sum_t), free(sum_c);
            }
            free(scales), free(minimums), free(q4_packed), free(sums);
        }
        free(x), free(c), free(a_scales), free(w_scales), free(bias), free(a7), free(a8), free(w8), free(q), free(wf);
        free(s8_packed), free(a7_scales);
    }
    return 0;
}
