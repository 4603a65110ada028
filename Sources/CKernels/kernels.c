// Element-wise and attention kernels of the fp32 encoder (see include/ckernels.h).
//
// Each kernel body is a static inline function written so that clang vectorises it
// (fixed 8-lane partial sums instead of serial reductions, branch-free math); it is
// instantiated twice: once plainly (the `_ref` twin and the fallback) and once under
// __attribute__((target("avx2,fma"))). exp and erf (dk_math.h, shared with training.c)
// are polynomial/rational approximations accurate to a few ulp (checked against libm in
// double by the tests).
// Attention's AVX2 build instead runs its two products on the packed GEMM of gemm.c.
#include "ckernels.h"
#include <math.h>
#include <string.h>

#define DK_INLINE static inline __attribute__((always_inline))
#define DK_AVX2 __attribute__((target("avx2,fma")))
#define LANES 8

#include "dk_math.h"

void dk_exp_ref(const float *x, float *y, long n) { for (long i = 0; i < n; i++) y[i] = dk_expf(x[i]); }
void dk_erf_ref(const float *x, float *y, long n) { for (long i = 0; i < n; i++) y[i] = dk_erff(x[i]); }

// ---------------------------------------------------------------- bias + GELU

DK_INLINE void bias_gelu_body(float *x, const float *bias, long rows, long cols) {
    const float inv_sqrt2 = 0.70710678118654752f;
    for (long r = 0; r < rows; r++) {
        float *row = x + r * cols;
        for (long c = 0; c < cols; c++) {
            float v = row[c] + bias[c];
            row[c] = 0.5f * v * (1.0f + dk_erff(v * inv_sqrt2));
        }
    }
}
DK_AVX2 static void bias_gelu_avx2(float *x, const float *b, long r, long c) { bias_gelu_body(x, b, r, c); }
void dk_bias_gelu_ref(float *x, const float *b, long r, long c) { bias_gelu_body(x, b, r, c); }

// ---------------------------------------------------------------- bias + residual + LayerNorm

DK_INLINE float sum_lanes(const float *acc) {
    float s = 0;
    for (int l = 0; l < LANES; l++) s += acc[l];
    return s;
}

DK_INLINE void layernorm_body(float *x, const float *bias, const float *residual,
                              const float *gamma, const float *beta,
                              long rows, long cols, float eps) {
    for (long r = 0; r < rows; r++) {
        float *row = x + r * cols;
        const float *res = residual ? residual + r * cols : 0;
        if (bias && res) { for (long c = 0; c < cols; c++) row[c] += bias[c] + res[c]; }
        else if (bias) { for (long c = 0; c < cols; c++) row[c] += bias[c]; }
        else if (res) { for (long c = 0; c < cols; c++) row[c] += res[c]; }
        float acc[LANES] = {0};
        long c = 0;
        for (; c + LANES <= cols; c += LANES)
            for (int l = 0; l < LANES; l++) acc[l] += row[c + l];
        float mean = sum_lanes(acc);
        for (; c < cols; c++) mean += row[c];
        mean /= (float)cols;
        float vacc[LANES] = {0};
        c = 0;
        for (; c + LANES <= cols; c += LANES)
            for (int l = 0; l < LANES; l++) { float d = row[c + l] - mean; vacc[l] += d * d; }
        float var = sum_lanes(vacc);
        for (; c < cols; c++) { float d = row[c] - mean; var += d * d; }
        var /= (float)cols;
        float inv = 1.0f / sqrtf(var + eps);
        for (c = 0; c < cols; c++) row[c] = (row[c] - mean) * inv * gamma[c] + beta[c];
    }
}
DK_AVX2 static void layernorm_avx2(float *x, const float *b, const float *res, const float *g,
                                   const float *be, long r, long c, float eps) {
    layernorm_body(x, b, res, g, be, r, c, eps);
}
void dk_bias_residual_layernorm_ref(float *x, const float *b, const float *res, const float *g,
                                    const float *be, long r, long c, float eps) {
    layernorm_body(x, b, res, g, be, r, c, eps);
}

// ---------------------------------------------------------------- attention, one head

DK_INLINE void attention_body(const float *q, const float *k, const float *v, long ld,
                              float *out, long ldo, const int32_t *keep, long T, long D,
                              float scale, float *scratch, float *probs) {
    // kt: K transposed to [D, T] so that scores for one query row are a vectorised
    // sum over D of q[d] * kt[d, :]. s: one row of scores, T floats.
    float *kt = scratch;
    float *s = scratch + D * T;
    long valid = 0;
    for (long j = 0; j < T; j++) valid += keep[j] != 0;
    for (long j = 0; j < T; j++)
        for (long d = 0; d < D; d++) kt[d * T + j] = k[j * ld + d];
    for (long t = 0; t < T; t++) {
        const float *qt = q + t * ld;
        for (long j = 0; j < T; j++) s[j] = 0;
        for (long d = 0; d < D; d++) {
            float qd = qt[d] * scale;
            const float *kd = kt + d * T;
            for (long j = 0; j < T; j++) s[j] = fmaf(qd, kd[j], s[j]);
        }
        // No attendable key at all: HF's finfo.min mask makes every score equal, so the
        // row is a uniform average.
        if (!valid) for (long j = 0; j < T; j++) s[j] = 0;
        float m = -INFINITY;
        for (long j = 0; j < T; j++) if (keep[j] || !valid) m = fmaxf(m, s[j]);
        float acc[LANES] = {0};
        long j = 0;
        for (; j + LANES <= T; j += LANES)
            for (int l = 0; l < LANES; l++) {
                float e = (keep[j + l] || !valid) ? dk_expf(s[j + l] - m) : 0.0f;
                s[j + l] = e;
                acc[l] += e;
            }
        float sum = sum_lanes(acc);
        for (; j < T; j++) {
            float e = (keep[j] || !valid) ? dk_expf(s[j] - m) : 0.0f;
            s[j] = e;
            sum += e;
        }
        float inv = 1.0f / sum;
        for (j = 0; j < T; j++) s[j] *= inv;
        if (probs) memcpy(probs + t * T, s, (size_t)T * sizeof(float));
        float *ot = out + t * ldo;
        for (long d = 0; d < D; d++) ot[d] = 0;
        for (j = 0; j < T; j++) {
            float p = s[j];
            if (p == 0.0f) continue;
            const float *vj = v + j * ld;
            for (long d = 0; d < D; d++) ot[d] = fmaf(p, vj[d], ot[d]);
        }
    }
}
void dk_attention_head_ref(const float *q, const float *k, const float *v, long ld,
                           float *out, long ldo, const int32_t *keep, long T, long D,
                           float scale, float *scratch, float *probs) {
    attention_body(q, k, v, ld, out, ldo, keep, T, D, scale, scratch, probs);
}

// ---------------------------------------------------------------- attention through the packed GEMM
//
// The same math as attention_body, as two products on the packed-weight GEMM (dk_gemm.h):
// S = Q·Kᵀ with K packed as a [T, D] "weight", a masked softmax per row, then O = P·V
// with Vᵀ packed as a [D, T] "weight". Packing a head costs 2·T·D copies against
// 4·T²·D flops. Rows of S are padded to a multiple of 8 with zeros so the softmax runs
// on whole vectors.

#include <immintrin.h>
#include "dk_gemm.h"

/// One padded score row in place: s[j] = keep[j] ? exp(scale·s[j] - max) / sum : 0.
/// `keepf` is 1 or 0 per column (0 on the padding), Tp a multiple of 8.
DK_AVX2 static void softmax_row_avx2(float *s, const float *keepf, long Tp, float scale) {
    const __m256 sc = _mm256_set1_ps(scale), neg = _mm256_set1_ps(-INFINITY);
    __m256 m = neg;
    for (long j = 0; j < Tp; j += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(s + j), sc);
        _mm256_storeu_ps(s + j, v);
        __m256 k = _mm256_cmp_ps(_mm256_loadu_ps(keepf + j), _mm256_setzero_ps(), _CMP_NEQ_OQ);
        m = _mm256_max_ps(m, _mm256_blendv_ps(neg, v, k));
    }
    __m256 mv = _mm256_set1_ps(hmax8(m));
    __m256 sum = _mm256_setzero_ps();
    for (long j = 0; j < Tp; j += 8) {
        __m256 e = _mm256_mul_ps(exp8(_mm256_sub_ps(_mm256_loadu_ps(s + j), mv)), _mm256_loadu_ps(keepf + j));
        _mm256_storeu_ps(s + j, e);
        sum = _mm256_add_ps(sum, e);
    }
    __m256 inv = _mm256_set1_ps(1.0f / hsum8(sum));
    for (long j = 0; j < Tp; j += 8) _mm256_storeu_ps(s + j, _mm256_mul_ps(_mm256_loadu_ps(s + j), inv));
}

static long round8(long n) { return (n + 7) & ~7L; }

long dk_attention_scratch_floats(long T, long D) {
    long Tp = round8(T), big = T > D ? T : D;
    long gemm = dk_packed_floats(T, D) + dk_packed_floats(D, T) + T * Tp + Tp
              + dk_gemm_workspace_floats(T, big);
    long plain = T * (D + 1);
    return gemm > plain ? gemm : plain;
}

DK_AVX2 static void attention_gemm_avx2(const float *q, const float *k, const float *v, long ld,
                                        float *out, long ldo, const int32_t *keep, long T, long D,
                                        float scale, float *scratch, float *probs) {
    const long Tp = round8(T);
    float *kpack = scratch;                        // K as a packed [T, D] weight
    float *vpack = kpack + dk_packed_floats(T, D); // Vᵀ as a packed [D, T] weight
    float *S = vpack + dk_packed_floats(D, T);     // [T, Tp] scores, then probabilities
    float *keepf = S + T * Tp;                     // [Tp]
    float *ws = keepf + Tp;                        // GEMM workspace
    long valid = 0;
    for (long j = 0; j < T; j++) valid += keep[j] != 0;
    for (long j = 0; j < Tp; j++) keepf[j] = j < T && (keep[j] || !valid) ? 1.0f : 0.0f;
    // Both packed straight from the strided rows: K [T, D] as the weight of S = Q·Kᵀ, and
    // V [T, D] as the transposed source of the weight Vᵀ [D, T] of out = P·V.
    dk_pack_weight_ld(k, ld, T, D, kpack);
    dk_pack_weight_transposed(v, ld, D, T, vpack);
    dk_gemm_packed(T, T, D, q, ld, kpack, S, Tp, 0, ws);
    for (long t = 0; t < T; t++) {
        float *row = S + t * Tp;
        // No attendable key at all: HF's finfo.min mask makes every score equal.
        if (!valid) memset(row, 0, (size_t)T * sizeof(float));
        for (long j = T; j < Tp; j++) row[j] = 0;
        softmax_row_avx2(row, keepf, Tp, scale);
        if (probs) memcpy(probs + t * T, row, (size_t)T * sizeof(float));
    }
    dk_gemm_packed(T, D, T, S, Tp, vpack, out, ldo, 0, ws);
}

// ---------------------------------------------------------------- dispatch

static int avx2_state = -1;
int dk_has_avx2(void) {
    if (avx2_state < 0) {
        __builtin_cpu_init();
        avx2_state = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return avx2_state;
}

void dk_bias_gelu(float *x, const float *bias, long rows, long cols) {
    if (dk_has_avx2()) bias_gelu_avx2(x, bias, rows, cols);
    else dk_bias_gelu_ref(x, bias, rows, cols);
}

void dk_bias_residual_layernorm(float *x, const float *bias, const float *residual,
                                const float *gamma, const float *beta,
                                long rows, long cols, float eps) {
    if (dk_has_avx2()) layernorm_avx2(x, bias, residual, gamma, beta, rows, cols, eps);
    else dk_bias_residual_layernorm_ref(x, bias, residual, gamma, beta, rows, cols, eps);
}

void dk_attention_head(const float *q, const float *k, const float *v, long ld,
                       float *out, long ldo, const int32_t *keep, long T, long D,
                       float scale, float *scratch, float *probs) {
    if (dk_has_avx2()) attention_gemm_avx2(q, k, v, ld, out, ldo, keep, T, D, scale, scratch, probs);
    else dk_attention_head_ref(q, k, v, ld, out, ldo, keep, T, D, scale, scratch, probs);
}
