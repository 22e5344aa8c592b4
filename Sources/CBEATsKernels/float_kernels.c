#include "beats_float_kernels.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define BEATS_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

/*
 * Polynomials shared by both variants.
 *
 * exp: Cephes expf — range reduction by n = round(x log2 e) with ln 2 split in two constants
 * (exact high part), a degree-5 polynomial on [-ln2/2, ln2/2], then scaling by 2^n through the
 * exponent bits. About 1 ulp on the range we use; inputs below EXP_LOWEST give 0 (2^n would
 * leave the normal range) and inputs are clamped at EXP_HIGHEST (callers never pass more: the
 * softmax argument is <= 0 and erf uses exp(-x^2)).
 *
 * erf: for |x| >= 0.75, Abramowitz & Stegun 7.1.26 (absolute error <= 1.5e-7; PyTorch's
 * vectorised CPU erf uses the same formula). Below 0.75 that formula computes erf as 1 minus a
 * number close to 1 and loses digits to cancellation, so there the Maclaurin series
 * 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1)) is used, to n = 8 (truncation < 1e-9).
 */
#define EXP_LOWEST (-87.33654f)
#define EXP_HIGHEST 88.0f
#define LOG2_E 1.44269504088896341f
#define LN2_HIGH 0.693359375f
#define LN2_LOW (-2.12194440e-4f)
#define EXP_P0 1.9875691500e-4f
#define EXP_P1 1.3981999507e-3f
#define EXP_P2 8.3334519073e-3f
#define EXP_P3 4.1665795894e-2f
#define EXP_P4 1.6666665459e-1f
#define EXP_P5 5.0000001201e-1f

#define ERF_P 0.3275911f
#define ERF_A1 0.254829592f
#define ERF_A2 (-0.284496736f)
#define ERF_A3 1.421413741f
#define ERF_A4 (-1.453152027f)
#define ERF_A5 1.061405429f

#define ERF_SERIES_LIMIT 0.75f
#define ERF_S0 1.1283791670955126f
#define ERF_S1 (-0.37612638903183754f)
#define ERF_S2 0.11283791670955126f
#define ERF_S3 (-0.026866170645131252f)
#define ERF_S4 0.005223977625442188f
#define ERF_S5 (-0.0008548327023450852f)
#define ERF_S6 0.00012055332981789664f
#define ERF_S7 (-1.492565035840625e-05f)
#define ERF_S8 1.6462114365889246e-06f

#define SQRT1_2 0.70710678118654752f
#define SQRT_2_OVER_PI 0.79788456080286536f

/* ---------------------------------------------------------------- portable variant */

static inline float scalar_exp(float x) {
    if (x < EXP_LOWEST) return 0.0f;
    if (x > EXP_HIGHEST) x = EXP_HIGHEST;
    float n = floorf(x * LOG2_E + 0.5f);
    float r = x - n * LN2_HIGH;
    r = r - n * LN2_LOW;
    float z = r * r;
    float y = EXP_P0;
    y = y * r + EXP_P1;
    y = y * r + EXP_P2;
    y = y * r + EXP_P3;
    y = y * r + EXP_P4;
    y = y * r + EXP_P5;
    y = y * z + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return y * scale;
}

static inline float scalar_erf(float x) {
    float a = fabsf(x);
    if (a < ERF_SERIES_LIMIT) {
        float s = x * x;
        float p = ERF_S8;
        p = p * s + ERF_S7;
        p = p * s + ERF_S6;
        p = p * s + ERF_S5;
        p = p * s + ERF_S4;
        p = p * s + ERF_S3;
        p = p * s + ERF_S2;
        p = p * s + ERF_S1;
        p = p * s + ERF_S0;
        return x * p;
    }
    float t = 1.0f / (1.0f + ERF_P * a);
    float p = ERF_A5;
    p = p * t + ERF_A4;
    p = p * t + ERF_A3;
    p = p * t + ERF_A2;
    p = p * t + ERF_A1;
    float y = 1.0f - p * t * scalar_exp(-a * a);
    return x < 0 ? -y : y;
}

static inline float scalar_gelu(float x) { return 0.5f * x * (1.0f + scalar_erf(x * SQRT1_2)); }

static inline float scalar_activation(float x, beats_activation activation) {
    switch (activation) {
    case BEATS_ACTIVATION_GELU: return scalar_gelu(x);
    case BEATS_ACTIVATION_GELU_TANH:
        return 0.5f * x * (1.0f + tanhf(SQRT_2_OVER_PI * (x + 0.044715f * x * x * x)));
    case BEATS_ACTIVATION_RELU: return x > 0.0f ? x : 0.0f;
    case BEATS_ACTIVATION_TANH: return tanhf(x);
    case BEATS_ACTIVATION_LINEAR: return x;
    }
    return x;
}

static void portable_bias_activation(float *x, long ld, long rows, long cols, const float *bias,
                                     beats_activation activation) {
    for (long r = 0; r < rows; r++) {
        float *row = x + r * ld;
        for (long c = 0; c < cols; c++) row[c] = scalar_activation(row[c] + (bias ? bias[c] : 0.0f), activation);
    }
}

static void portable_layer_norm_row(float *out, const float *y, const float *bias, const float *residual,
                                    float residual_scale, const float *gamma, const float *beta, float eps,
                                    long cols) {
    float sum = 0.0f;
    for (long c = 0; c < cols; c++) {
        float v = y[c];
        if (bias) v += bias[c];
        if (residual) v = residual[c] * residual_scale + v;
        out[c] = v;
        sum += v;
    }
    if (!gamma) return;
    float mean = sum / (float)cols;
    float squares = 0.0f;
    for (long c = 0; c < cols; c++) {
        float d = out[c] - mean;
        squares += d * d;
    }
    float rstd = 1.0f / sqrtf(squares / (float)cols + eps);
    for (long c = 0; c < cols; c++) out[c] = (out[c] - mean) * rstd * gamma[c] + (beta ? beta[c] : 0.0f);
}

/* Returns 1 / sum; normalises the row only when `normalize` is set. */
static float portable_softmax_row(float *s, long cols, float post_scale, const float *bias_row, float gate, int normalize) {
    float first_max = -INFINITY;
    for (long j = 0; j < cols; j++) first_max = s[j] > first_max ? s[j] : first_max;
    float second_max = -INFINITY;
    for (long j = 0; j < cols; j++) {
        float v = (s[j] - first_max) * post_scale;
        if (bias_row) v += gate * bias_row[j];
        s[j] = v;
        second_max = v > second_max ? v : second_max;
    }
    float sum = 0.0f;
    for (long j = 0; j < cols; j++) {
        float e = scalar_exp(s[j] - second_max);
        s[j] = e;
        sum += e;
    }
    float inverse = 1.0f / sum;
    if (normalize)
        for (long j = 0; j < cols; j++) s[j] *= inverse;
    return inverse;
}

/* ---------------------------------------------------------------- AVX2 + FMA variant */

#ifdef BEATS_X86
#define AVX2 __attribute__((target("avx2,fma")))

AVX2 static inline __m256 avx2_exp(__m256 x) {
    __m256 underflow = _mm256_cmp_ps(x, _mm256_set1_ps(EXP_LOWEST), _CMP_LT_OQ);
    x = _mm256_min_ps(x, _mm256_set1_ps(EXP_HIGHEST));
    __m256 n = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(LOG2_E), _mm256_set1_ps(0.5f)));
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HIGH), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LOW), r);
    __m256 z = _mm256_mul_ps(r, r);
    __m256 y = _mm256_set1_ps(EXP_P0);
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(EXP_P1));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(EXP_P2));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(EXP_P3));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(EXP_P4));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(EXP_P5));
    y = _mm256_fmadd_ps(y, z, r);
    y = _mm256_add_ps(y, _mm256_set1_ps(1.0f));
    /* n >= -126 here (underflow lanes are zeroed below), so the exponent field is >= 1. */
    __m256i exponent = _mm256_cvttps_epi32(_mm256_max_ps(n, _mm256_set1_ps(-126.0f)));
    __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(exponent, _mm256_set1_epi32(127)), 23);
    y = _mm256_mul_ps(y, _mm256_castsi256_ps(bits));
    return _mm256_andnot_ps(underflow, y);
}

AVX2 static inline __m256 avx2_erf(__m256 x) {
    const __m256 sign_mask = _mm256_set1_ps(-0.0f);
    __m256 sign = _mm256_and_ps(x, sign_mask);
    __m256 a = _mm256_andnot_ps(sign_mask, x);
    __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(_mm256_set1_ps(ERF_P), a, _mm256_set1_ps(1.0f)));
    __m256 p = _mm256_set1_ps(ERF_A5);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(ERF_A4));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(ERF_A3));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(ERF_A2));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(ERF_A1));
    __m256 e = avx2_exp(_mm256_mul_ps(_mm256_xor_ps(a, sign_mask), a));
    __m256 y = _mm256_or_ps(_mm256_fnmadd_ps(_mm256_mul_ps(p, t), e, _mm256_set1_ps(1.0f)), sign);

    __m256 s = _mm256_mul_ps(x, x);
    __m256 series = _mm256_set1_ps(ERF_S8);
    series = _mm256_fmadd_ps(series, s, _mm256_set1_ps(ERF_S7));
    series = _mm256_fmadd_ps(series, s, _mm256_set1_ps(ERF_S6));
    series = _mm256_fmadd_ps(series, s, _mm256_set1_ps(ERF_S5));
    series = _mm256_fmadd_ps(series, s, _mm256_set1_ps(ERF_S4));
    series = _mm256_fmadd_ps(series, s, _mm256_set1_ps(ERF_S3));
    series = _mm256_fmadd_ps(series, s, _mm256_set1_ps(ERF_S2));
    series = _mm256_fmadd_ps(series, s, _mm256_set1_ps(ERF_S1));
    series = _mm256_fmadd_ps(series, s, _mm256_set1_ps(ERF_S0));
    series = _mm256_mul_ps(x, series);
    __m256 small = _mm256_cmp_ps(a, _mm256_set1_ps(ERF_SERIES_LIMIT), _CMP_LT_OQ);
    return _mm256_blendv_ps(y, series, small);
}

AVX2 static inline __m256 avx2_gelu(__m256 x) {
    __m256 erf = avx2_erf(_mm256_mul_ps(x, _mm256_set1_ps(SQRT1_2)));
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), _mm256_add_ps(_mm256_set1_ps(1.0f), erf));
}

AVX2 static inline float avx2_horizontal_sum(__m256 v) {
    __m128 low = _mm256_castps256_ps128(v);
    __m128 high = _mm256_extractf128_ps(v, 1);
    __m128 sum = _mm_add_ps(low, high);
    sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
    sum = _mm_add_ss(sum, _mm_shuffle_ps(sum, sum, 1));
    return _mm_cvtss_f32(sum);
}

AVX2 static inline float avx2_horizontal_max(__m256 v) {
    __m128 low = _mm256_castps256_ps128(v);
    __m128 high = _mm256_extractf128_ps(v, 1);
    __m128 m = _mm_max_ps(low, high);
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

AVX2 static void avx2_bias_gelu(float *x, long ld, long rows, long cols, const float *bias) {
    for (long r = 0; r < rows; r++) {
        float *row = x + r * ld;
        long c = 0;
        for (; c + 8 <= cols; c += 8) {
            __m256 v = _mm256_loadu_ps(row + c);
            if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + c));
            _mm256_storeu_ps(row + c, avx2_gelu(v));
        }
        for (; c < cols; c++) row[c] = scalar_gelu(row[c] + (bias ? bias[c] : 0.0f));
    }
}

AVX2 static void avx2_bias_add(float *x, long ld, long rows, long cols, const float *bias) {
    for (long r = 0; r < rows; r++) {
        float *row = x + r * ld;
        long c = 0;
        for (; c + 8 <= cols; c += 8)
            _mm256_storeu_ps(row + c, _mm256_add_ps(_mm256_loadu_ps(row + c), _mm256_loadu_ps(bias + c)));
        for (; c < cols; c++) row[c] += bias[c];
    }
}

AVX2 static void avx2_layer_norm_row(float *out, const float *y, const float *bias, const float *residual,
                                     float residual_scale, const float *gamma, const float *beta, float eps,
                                     long cols) {
    __m256 sum8 = _mm256_setzero_ps();
    __m256 scale8 = _mm256_set1_ps(residual_scale);
    long c = 0;
    for (; c + 8 <= cols; c += 8) {
        __m256 v = _mm256_loadu_ps(y + c);
        if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + c));
        if (residual) v = _mm256_fmadd_ps(_mm256_loadu_ps(residual + c), scale8, v);
        _mm256_storeu_ps(out + c, v);
        sum8 = _mm256_add_ps(sum8, v);
    }
    float sum = avx2_horizontal_sum(sum8);
    for (; c < cols; c++) {
        float v = y[c];
        if (bias) v += bias[c];
        if (residual) v = residual[c] * residual_scale + v;
        out[c] = v;
        sum += v;
    }
    if (!gamma) return;
    float mean = sum / (float)cols;
    __m256 mean8 = _mm256_set1_ps(mean);
    __m256 squares8 = _mm256_setzero_ps();
    for (c = 0; c + 8 <= cols; c += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(out + c), mean8);
        squares8 = _mm256_fmadd_ps(d, d, squares8);
    }
    float squares = avx2_horizontal_sum(squares8);
    for (; c < cols; c++) {
        float d = out[c] - mean;
        squares += d * d;
    }
    float rstd = 1.0f / sqrtf(squares / (float)cols + eps);
    __m256 rstd8 = _mm256_set1_ps(rstd);
    for (c = 0; c + 8 <= cols; c += 8) {
        __m256 normal = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(out + c), mean8), rstd8);
        __m256 shift = beta ? _mm256_loadu_ps(beta + c) : _mm256_setzero_ps();
        _mm256_storeu_ps(out + c, _mm256_fmadd_ps(normal, _mm256_loadu_ps(gamma + c), shift));
    }
    for (; c < cols; c++) out[c] = (out[c] - mean) * rstd * gamma[c] + (beta ? beta[c] : 0.0f);
}

AVX2 static float avx2_softmax_row(float *s, long cols, float post_scale, const float *bias_row, float gate, int normalize) {
    long c;
    __m256 max8 = _mm256_set1_ps(-INFINITY);
    for (c = 0; c + 8 <= cols; c += 8) max8 = _mm256_max_ps(max8, _mm256_loadu_ps(s + c));
    float first_max = avx2_horizontal_max(max8);
    for (; c < cols; c++) first_max = s[c] > first_max ? s[c] : first_max;

    __m256 first_max8 = _mm256_set1_ps(first_max);
    __m256 post8 = _mm256_set1_ps(post_scale);
    __m256 gate8 = _mm256_set1_ps(gate);
    max8 = _mm256_set1_ps(-INFINITY);
    for (c = 0; c + 8 <= cols; c += 8) {
        __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(s + c), first_max8), post8);
        if (bias_row) v = _mm256_fmadd_ps(gate8, _mm256_loadu_ps(bias_row + c), v);
        _mm256_storeu_ps(s + c, v);
        max8 = _mm256_max_ps(max8, v);
    }
    float second_max = avx2_horizontal_max(max8);
    for (; c < cols; c++) {
        float v = (s[c] - first_max) * post_scale;
        if (bias_row) v += gate * bias_row[c];
        s[c] = v;
        second_max = v > second_max ? v : second_max;
    }

    __m256 second_max8 = _mm256_set1_ps(second_max);
    __m256 sum8 = _mm256_setzero_ps();
    for (c = 0; c + 8 <= cols; c += 8) {
        __m256 e = avx2_exp(_mm256_sub_ps(_mm256_loadu_ps(s + c), second_max8));
        _mm256_storeu_ps(s + c, e);
        sum8 = _mm256_add_ps(sum8, e);
    }
    float sum = avx2_horizontal_sum(sum8);
    for (; c < cols; c++) {
        float e = scalar_exp(s[c] - second_max);
        s[c] = e;
        sum += e;
    }

    float inverse = 1.0f / sum;
    if (!normalize) return inverse;
    __m256 inverse8 = _mm256_set1_ps(inverse);
    for (c = 0; c + 8 <= cols; c += 8) _mm256_storeu_ps(s + c, _mm256_mul_ps(_mm256_loadu_ps(s + c), inverse8));
    for (; c < cols; c++) s[c] *= inverse;
    return inverse;
}

AVX2 static void avx2_exp_array(float *out, const float *in, long count) {
    long i = 0;
    for (; i + 8 <= count; i += 8) _mm256_storeu_ps(out + i, avx2_exp(_mm256_loadu_ps(in + i)));
    for (; i < count; i++) out[i] = scalar_exp(in[i]);
}

AVX2 static void avx2_erf_array(float *out, const float *in, long count) {
    long i = 0;
    for (; i + 8 <= count; i += 8) _mm256_storeu_ps(out + i, avx2_erf(_mm256_loadu_ps(in + i)));
    for (; i < count; i++) out[i] = scalar_erf(in[i]);
}

/* AVX2 and FMA reported by CPUID, and the OS saving YMM state (XGETBV). Cached after the first
 * call; the race on first use is benign (every thread computes the same value). */
static int detect_avx2_fma(void) {
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    int has_fma = (ecx >> 12) & 1, has_osxsave = (ecx >> 27) & 1, has_avx = (ecx >> 28) & 1;
    if (!has_fma || !has_osxsave || !has_avx) return 0;
    unsigned int xcr0_low, xcr0_high;
    __asm__ volatile("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));
    if ((xcr0_low & 6) != 6) return 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
    return (ebx >> 5) & 1;
}

static int avx2_supported(void) {
    static volatile int cached = -1;
    int value = cached;
    if (value < 0) {
        value = detect_avx2_fma();
        cached = value;
    }
    return value;
}

static inline int use_avx2(beats_float_variant variant) { return variant == BEATS_FLOAT_AVX2 && avx2_supported(); }

beats_float_variant beats_float_best_variant(void) { return avx2_supported() ? BEATS_FLOAT_AVX2 : BEATS_FLOAT_PORTABLE; }
#else
beats_float_variant beats_float_best_variant(void) { return BEATS_FLOAT_PORTABLE; }
#endif

/* ---------------------------------------------------------------- public entry points */

void beats_bias_activation(beats_float_variant variant, float *x, long ld, long rows, long cols, const float *bias, beats_activation activation) {
#ifdef BEATS_X86
    if (use_avx2(variant)) {
        if (activation == BEATS_ACTIVATION_GELU) {
            avx2_bias_gelu(x, ld, rows, cols, bias);
            return;
        }
        if (activation == BEATS_ACTIVATION_LINEAR) {
            if (bias) avx2_bias_add(x, ld, rows, cols, bias);
            return;
        }
    }
#endif
    portable_bias_activation(x, ld, rows, cols, bias, activation);
}

void beats_bias_glu_swish(beats_float_variant variant, float *out, long ldo, const float *y, long ldy, long rows, long cols, const float *bias) {
    for (long r = 0; r < rows; r++) {
        const float *row = y + r * ldy;
        float *target = out + r * ldo;
        for (long c = 0; c < cols; c++) {
            float value = row[c] + (bias ? bias[c] : 0.0f);
            float gate = row[c + cols] + (bias ? bias[c + cols] : 0.0f);
            target[c] = value * (gate / (1.0f + scalar_exp(-gate)));
        }
    }
}

void beats_bias_residual_layer_norm(beats_float_variant variant, float *out, long ldo, const float *y, long ldy, const float *bias,
                                    const float *residual, long ldr, float residual_scale,
                                    const float *gamma, const float *beta, float eps, long rows, long cols) {
    for (long r = 0; r < rows; r++) {
        const float *residual_row = residual ? residual + r * ldr : NULL;
#ifdef BEATS_X86
        if (use_avx2(variant)) {
            avx2_layer_norm_row(out + r * ldo, y + r * ldy, bias, residual_row, residual_scale, gamma, beta, eps, cols);
            continue;
        }
#endif
        portable_layer_norm_row(out + r * ldo, y + r * ldy, bias, residual_row, residual_scale, gamma, beta, eps, cols);
    }
}

void beats_attention_softmax(beats_float_variant variant, float *scores, long ld, long rows, long cols, long first_row,
                             float post_scale, const float *bias_by_offset, const float *gate, float *inverse_sums) {
    int normalize = inverse_sums == NULL;
    for (long r = 0; r < rows; r++) {
        long query = first_row + r;
        const float *bias_row = bias_by_offset ? bias_by_offset + (cols - 1 - query) : NULL;
        float gate_value = gate ? gate[query] : 1.0f;
        float inverse;
#ifdef BEATS_X86
        if (use_avx2(variant))
            inverse = avx2_softmax_row(scores + r * ld, cols, post_scale, bias_row, gate_value, normalize);
        else
#endif
            inverse = portable_softmax_row(scores + r * ld, cols, post_scale, bias_row, gate_value, normalize);
        if (inverse_sums) inverse_sums[r] = inverse;
    }
}

void beats_exp(beats_float_variant variant, float *out, const float *in, long count) {
#ifdef BEATS_X86
    if (use_avx2(variant)) {
        avx2_exp_array(out, in, count);
        return;
    }
#endif
    for (long i = 0; i < count; i++) out[i] = scalar_exp(in[i]);
}

void beats_erf(beats_float_variant variant, float *out, const float *in, long count) {
#ifdef BEATS_X86
    if (use_avx2(variant)) {
        avx2_erf_array(out, in, count);
        return;
    }
#endif
    for (long i = 0; i < count; i++) out[i] = scalar_erf(in[i]);
}
