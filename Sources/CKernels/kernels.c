// Element-wise and attention kernels of the fp32 encoder (see include/ckernels.h).
//
// Each kernel body is a static inline function written so that clang vectorises it
// (fixed 8-lane partial sums instead of serial reductions, branch-free math); it is
// instantiated twice: once plainly (the `_ref` twin and the fallback) and once under
// __attribute__((target("avx2,fma"))). exp and erf (dk_math.h, shared with training.c)
// are polynomial/rational approximations accurate to a few ulp (checked against libm in
// double by the tests).
// Attention's AVX2 build instead runs its two products on the packed GEMM of gemm.c, and
// LayerNorm's is written with intrinsics (on AVX-512 CPUs too). On the AVX-512 path GELU
// and the softmax run 16-lane intrinsics builds (masked tails).
#include "ckernels.h"
#include <math.h>
#include <string.h>

#include "dk_target.h"
#define LANES 8

#include "dk_math.h"

void dk_exp_ref(const float *x, float *y, long n) { for (long i = 0; i < n; i++) y[i] = dk_expf(x[i]); }
void dk_erf_ref(const float *x, float *y, long n) { for (long i = 0; i < n; i++) y[i] = dk_erff(x[i]); }

DK_INLINE float sum_lanes(const float *acc) {
    float s = 0;
    for (int l = 0; l < LANES; l++) s += acc[l];
    return s;
}

// ---------------------------------------------------------------- bias + GELU

// x + bias, then exact-erf GELU, row by row; `pre` (nullable, may alias x) keeps x + bias
// for the backward, `act` (may alias x) receives the activation. The bias is added after
// the product (acc + b), which in IEEE float is the same sum as b + acc.
DK_INLINE void bias_gelu_body(const float *x, const float *bias, float *pre, float *act, long rows, long cols) {
    const float inv_sqrt2 = 0.70710678118654752f;
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *pr = pre ? pre + r * cols : 0, *ar = act + r * cols;
        for (long c = 0; c < cols; c++) {
            float v = bias ? xr[c] + bias[c] : xr[c];
            if (pr) pr[c] = v;
            ar[c] = 0.5f * v * (1.0f + dk_erff(v * inv_sqrt2));
        }
    }
}
/// GELU of n vectors in place, in step (dk_math.h's _n forms).
DK_AVX2 __attribute__((always_inline)) static inline void gelu8_n(__m256 *v, const int n) {
    __m256 cdf[8];
    DK_EACH(cdf[i] = _mm256_mul_ps(v[i], _mm256_set1_ps(0.70710678118654752f)));
    erf8_n(cdf, n);
    DK_EACH(v[i] = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), v[i]), _mm256_add_ps(_mm256_set1_ps(1.0f), cdf[i])));
}
/// x + bias of n vectors from column c, `pre` kept, GELU stored to `act`.
DK_AVX2 __attribute__((always_inline)) static inline void bias_gelu_n(const float *x, const float *bias, float *pre,
                                                                       float *act, long c, const int n) {
    __m256 v[8];
    DK_EACH(v[i] = _mm256_loadu_ps(x + c + i * LANES));
    if (bias) DK_EACH(v[i] = _mm256_add_ps(v[i], _mm256_loadu_ps(bias + c + i * LANES)));
    if (pre) DK_EACH(_mm256_storeu_ps(pre + c + i * LANES, v[i]));
    gelu8_n(v, n);
    DK_EACH(_mm256_storeu_ps(act + c + i * LANES, v[i]));
}
DK_AVX2 static void bias_gelu_avx2(const float *x, const float *bias, float *pre, float *act, long rows, long cols) {
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *pr = pre ? pre + r * cols : 0, *ar = act + r * cols;
        long c = 0;
        for (; c + 4 * LANES <= cols; c += 4 * LANES) bias_gelu_n(xr, bias, pr, ar, c, 4);
        for (; c + LANES <= cols; c += LANES) bias_gelu_n(xr, bias, pr, ar, c, 1);
        if (c < cols) {   // the last partial vector through a zero-padded buffer
            float buf[LANES] = {0};
            long n = cols - c;
            for (long i = 0; i < n; i++) buf[i] = bias ? xr[c + i] + bias[c + i] : xr[c + i];
            if (pr) memcpy(pr + c, buf, (size_t)n * sizeof(float));
            __m256 v = _mm256_loadu_ps(buf);
            gelu8_n(&v, 1);
            _mm256_storeu_ps(buf, v);
            memcpy(ar + c, buf, (size_t)n * sizeof(float));
        }
    }
}
/// The AVX-512 build: 16 lanes, the row tail by masked loads and stores.
DK_AVX512 static void bias_gelu_avx512(const float *x, const float *bias, float *pre, float *act, long rows, long cols) {
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *pr = pre ? pre + r * cols : 0, *ar = act + r * cols;
        for (long c = 0; c < cols; c += 16) {
            const __mmask16 m = cols - c >= 16 ? 0xFFFF : (__mmask16)((1u << (cols - c)) - 1);
            __m512 v = _mm512_maskz_loadu_ps(m, xr + c);
            if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + c));
            if (pr) _mm512_mask_storeu_ps(pr + c, m, v);
            _mm512_mask_storeu_ps(ar + c, m, gelu16(v));
        }
    }
}
void dk_bias_gelu_ref(const float *x, const float *bias, float *pre, float *act, long rows, long cols) {
    bias_gelu_body(x, bias, pre, act, rows, cols);
}

// ---------------------------------------------------------------- residual + LayerNorm

// Per row: s = (x + bias) ⊙ dropout + residual (each term optional), stored in `sum`
// (nullable; may alias x) for the backward; then y = (s − mean)·rstd·γ + β with the
// biased variance, both statistics in double (two passes), stored as float in mean/rstd
// when those are not NULL. y may alias x or sum. The terms are added in the order the
// layer computes them: the dense output with its bias, dropout, then the residual. The
// add pass is specialised per combination of terms (no per-element branches) and also
// accumulates the mean's lane sums, in the same lane order as a separate pass would.

/// s = (x + b) ⊙ d + r over one row with the terms that are present (compile-time flags
/// after inlining), stored in `s`; acc[l] += s[c + l] over the whole 8-lane chunks.
DK_INLINE void add_row(const float *x, const float *b, const float *d, const float *r, float *s, long cols,
                       double *acc, const int hb, const int hd, const int hr) {
    long c = 0;
    for (; c + LANES <= cols; c += LANES)
        for (int l = 0; l < LANES; l++) {
            float v = hb ? x[c + l] + b[c + l] : x[c + l];
            if (hd) v *= d[c + l];
            if (hr) v = v + r[c + l];
            s[c + l] = v;
            acc[l] += (double)v;
        }
    for (; c < cols; c++) {
        float v = hb ? x[c] + b[c] : x[c];
        if (hd) v *= d[c];
        if (hr) v = v + r[c];
        s[c] = v;
    }
}

DK_INLINE void layernorm_body(const float *x, const float *bias, const float *dropout, const float *residual,
                              float *sum, float *y, float *mean, float *rstd,
                              const float *gamma, const float *beta, long rows, long cols, float eps) {
    const int terms = (bias ? 4 : 0) | (dropout ? 2 : 0) | (residual ? 1 : 0);
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        float *sr = sum ? sum + r * cols : yr;
        const float *dr = dropout ? dropout + r * cols : 0, *rr = residual ? residual + r * cols : 0;
        double acc[LANES] = {0};
        switch (terms) {
        case 0: {
            long c = 0;
            for (; c + LANES <= cols; c += LANES)
                for (int l = 0; l < LANES; l++) acc[l] += (double)xr[c + l];
            if (sum && xr != sr) memcpy(sr, xr, (size_t)cols * sizeof(float));
            break;
        }
        case 1: add_row(xr, bias, dr, rr, sr, cols, acc, 0, 0, 1); break;
        case 2: add_row(xr, bias, dr, rr, sr, cols, acc, 0, 1, 0); break;
        case 3: add_row(xr, bias, dr, rr, sr, cols, acc, 0, 1, 1); break;
        case 4: add_row(xr, bias, dr, rr, sr, cols, acc, 1, 0, 0); break;
        case 5: add_row(xr, bias, dr, rr, sr, cols, acc, 1, 0, 1); break;
        case 6: add_row(xr, bias, dr, rr, sr, cols, acc, 1, 1, 0); break;
        default: add_row(xr, bias, dr, rr, sr, cols, acc, 1, 1, 1); break;
        }
        if (terms) xr = sr;
        double total = 0;
        for (int l = 0; l < LANES; l++) total += acc[l];
        for (long c = cols / LANES * LANES; c < cols; c++) total += (double)xr[c];
        const double m = total / (double)cols;
        double sacc[LANES] = {0};
        long c = 0;
        for (; c + LANES <= cols; c += LANES)
            for (int l = 0; l < LANES; l++) { double d = (double)xr[c + l] - m; sacc[l] += d * d; }
        double sq = 0;
        for (int l = 0; l < LANES; l++) sq += sacc[l];
        for (; c < cols; c++) { double d = (double)xr[c] - m; sq += d * d; }
        const double s = 1.0 / sqrt(sq / (double)cols + (double)eps);
        for (c = 0; c < cols; c++) yr[c] = (float)(((double)xr[c] - m) * s) * gamma[c] + beta[c];
        if (mean) mean[r] = (float)m;
        if (rstd) rstd[r] = (float)s;
    }
}
/// Lanes 0-3 and 4-7 of v as doubles.
DK_AVX2 static inline __m256d widen_lo(__m256 v) { return _mm256_cvtps_pd(_mm256_castps256_ps128(v)); }
DK_AVX2 static inline __m256d widen_hi(__m256 v) { return _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)); }
/// The lane sums acc[0…7] held as lo (0-3) and hi (4-7), added in lane order.
DK_AVX2 static inline double sum_lanes_pd(__m256d lo, __m256d hi) {
    double acc[LANES], total = 0;
    _mm256_storeu_pd(acc, lo);
    _mm256_storeu_pd(acc + 4, hi);
    for (int l = 0; l < LANES; l++) total += acc[l];
    return total;
}

/// The AVX2 build, written out: compiled from the body, clang had left its sums and its
/// last pass scalar (1.7 ns per element on Zen 2; the AVX-512 build of the body, which this
/// replaces too, has the same scalar loops). Same statistics as the body: the eight double
/// lane sums of each pass are the body's acc[0…7] (low half, high half), added in order.
DK_AVX2 static void layernorm_avx2(const float *x, const float *bias, const float *dropout, const float *residual,
                                   float *sum, float *y, float *mean, float *rstd, const float *gamma,
                                   const float *beta, long rows, long cols, float eps) {
    const int terms = bias || dropout || residual;
    const long whole = cols / LANES * LANES;
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        float *sr = sum ? sum + r * cols : yr;
        const float *dr = dropout ? dropout + r * cols : 0, *rr = residual ? residual + r * cols : 0;
        __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
        for (long c = 0; c < whole; c += LANES) {
            __m256 v = _mm256_loadu_ps(xr + c);
            if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + c));
            if (dr) v = _mm256_mul_ps(v, _mm256_loadu_ps(dr + c));
            if (rr) v = _mm256_add_ps(v, _mm256_loadu_ps(rr + c));
            if (terms) _mm256_storeu_ps(sr + c, v);
            lo = _mm256_add_pd(lo, widen_lo(v));
            hi = _mm256_add_pd(hi, widen_hi(v));
        }
        for (long c = whole; c < cols; c++) {
            float v = bias ? xr[c] + bias[c] : xr[c];
            if (dr) v *= dr[c];
            if (rr) v = v + rr[c];
            if (terms) sr[c] = v;
        }
        if (terms) xr = sr;
        else if (sum && xr != sr) memcpy(sr, xr, (size_t)cols * sizeof(float));
        double total = sum_lanes_pd(lo, hi);
        for (long c = whole; c < cols; c++) total += (double)xr[c];
        const double m = total / (double)cols;
        const __m256d mv = _mm256_set1_pd(m);
        lo = hi = _mm256_setzero_pd();
        for (long c = 0; c < whole; c += LANES) {
            __m256 v = _mm256_loadu_ps(xr + c);
            __m256d dl = _mm256_sub_pd(widen_lo(v), mv), dh = _mm256_sub_pd(widen_hi(v), mv);
            lo = _mm256_fmadd_pd(dl, dl, lo);
            hi = _mm256_fmadd_pd(dh, dh, hi);
        }
        double sq = sum_lanes_pd(lo, hi);
        for (long c = whole; c < cols; c++) { double d = (double)xr[c] - m; sq = fma(d, d, sq); }
        const double s = 1.0 / sqrt(sq / (double)cols + (double)eps);
        const __m256d sv = _mm256_set1_pd(s);
        for (long c = 0; c < whole; c += LANES) {
            __m256 v = _mm256_loadu_ps(xr + c);
            __m128 nl = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_sub_pd(widen_lo(v), mv), sv));
            __m128 nh = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_sub_pd(widen_hi(v), mv), sv));
            __m256 n = _mm256_insertf128_ps(_mm256_castps128_ps256(nl), nh, 1);
            _mm256_storeu_ps(yr + c, _mm256_fmadd_ps(n, _mm256_loadu_ps(gamma + c), _mm256_loadu_ps(beta + c)));
        }
        for (long c = whole; c < cols; c++) yr[c] = fmaf((float)(((double)xr[c] - m) * s), gamma[c], beta[c]);
        if (mean) mean[r] = (float)m;
        if (rstd) rstd[r] = (float)s;
    }
}
void dk_residual_layernorm_ref(const float *x, const float *b, const float *d, const float *res, float *sum,
                               float *y, float *mean, float *rstd, const float *g, const float *be,
                               long r, long c, float eps) {
    layernorm_body(x, b, d, res, sum, y, mean, rstd, g, be, r, c, eps);
}

// ---------------------------------------------------------------- attention, one head

DK_INLINE void attention_body(const float *q, const float *k, const float *v, long ld,
                              float *out, long ldo, const int32_t *keep, long T, long D,
                              float scale, float *scratch, float *probs, float *scores,
                              const float *dropout, float weight) {
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
            const float *kd = kt + d * T;
            for (long j = 0; j < T; j++) s[j] = fmaf(qt[d], kd[j], s[j]);
        }
        for (long j = 0; j < T; j++) s[j] *= scale;
        if (scores) memcpy(scores + t * T, s, (size_t)T * sizeof(float));
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
        if (dropout) for (j = 0; j < T; j++) s[j] *= dropout[t * T + j];
        if (weight != 1.0f) for (j = 0; j < T; j++) s[j] *= weight;
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
                           float scale, float *scratch, float *probs, float *scores,
                           const float *dropout, float weight) {
    attention_body(q, k, v, ld, out, ldo, keep, T, D, scale, scratch, probs, scores, dropout, weight);
}

// ---------------------------------------------------------------- attention through the packed GEMM
//
// The same math as attention_body, as two products on the packed-weight GEMM (dk_gemm.h):
// S = Q·Kᵀ with K packed as a [T, D] "weight", a masked softmax per row, then O = P·V
// with Vᵀ packed as a [D, T] "weight". Packing a head costs 2·T·D copies against
// 4·T²·D flops. Rows of S are padded to a multiple of 8 with zeros so the softmax runs
// on whole vectors.

#include "dk_gemm.h"

/// n vectors of a score row from s: e = exp(s − max) · keep, stored back and added to
/// `sum` in column order (so the sum does not depend on n).
DK_AVX2 __attribute__((always_inline)) static inline __m256 exp_rows_n(float *s, const float *keepf, __m256 mv,
                                                                        __m256 sum, const int n) {
    __m256 e[8];
    DK_EACH(e[i] = _mm256_sub_ps(_mm256_loadu_ps(s + i * 8), mv));
    exp8_n(e, n);
    DK_EACH(e[i] = _mm256_mul_ps(e[i], _mm256_loadu_ps(keepf + i * 8)));
    DK_EACH(_mm256_storeu_ps(s + i * 8, e[i]));
    DK_EACH(sum = _mm256_add_ps(sum, e[i]));
    return sum;
}

/// One padded score row in place, left unnormalised: s[j] = keep[j] ? exp(scale·s[j] - max)
/// : 0; returns 1 / sum. `keepf` is 1 or 0 per column (0 on the padding), Tp a multiple of 8.
DK_AVX2 static float softmax_row_avx2(float *s, const float *keepf, long Tp, float scale) {
    const __m256 sc = _mm256_set1_ps(scale), neg = _mm256_set1_ps(-INFINITY);
    __m256 m = neg;
    for (long j = 0; j < Tp; j += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(s + j), sc);
        _mm256_storeu_ps(s + j, v);
        __m256 k = _mm256_cmp_ps(_mm256_loadu_ps(keepf + j), _mm256_setzero_ps(), _CMP_NEQ_OQ);
        m = _mm256_max_ps(m, _mm256_blendv_ps(neg, v, k));
    }
    const __m256 mv = _mm256_set1_ps(hmax8(m));
    __m256 sum = _mm256_setzero_ps();
    long j = 0;
    for (; j + 64 <= Tp; j += 64) sum = exp_rows_n(s + j, keepf + j, mv, sum, 8);
    for (; j + 32 <= Tp; j += 32) sum = exp_rows_n(s + j, keepf + j, mv, sum, 4);
    for (; j < Tp; j += 8) sum = exp_rows_n(s + j, keepf + j, mv, sum, 1);
    return 1.0f / hsum8(sum);
}

/// softmax_row_avx2 on 16 lanes, normalised (a last half vector of Tp % 16 = 8 by masked
/// loads/stores).
DK_AVX512 static void softmax_row_avx512(float *s, const float *keepf, long Tp, float scale) {
    const __m512 sc = _mm512_set1_ps(scale), neg = _mm512_set1_ps(-INFINITY);
    __m512 m = neg;
    for (long j = 0; j < Tp; j += 16) {
        const __mmask16 t = Tp - j >= 16 ? 0xFFFF : 0x00FF;
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(t, s + j), sc);
        _mm512_mask_storeu_ps(s + j, t, v);
        __mmask16 k = _mm512_mask_cmp_ps_mask(t, _mm512_maskz_loadu_ps(t, keepf + j), _mm512_setzero_ps(), _CMP_NEQ_OQ);
        m = _mm512_mask_max_ps(m, k, m, v);
    }
    __m512 mv = _mm512_set1_ps(_mm512_reduce_max_ps(m));
    __m512 sum = _mm512_setzero_ps();
    for (long j = 0; j < Tp; j += 16) {
        const __mmask16 t = Tp - j >= 16 ? 0xFFFF : 0x00FF;
        __m512 e = _mm512_mul_ps(exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(t, s + j), mv)),
                                 _mm512_maskz_loadu_ps(t, keepf + j));
        _mm512_mask_storeu_ps(s + j, t, e);
        sum = _mm512_add_ps(sum, e);
    }
    __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
    for (long j = 0; j < Tp; j += 16) {
        const __mmask16 t = Tp - j >= 16 ? 0xFFFF : 0x00FF;
        _mm512_mask_storeu_ps(s + j, t, _mm512_mul_ps(_mm512_maskz_loadu_ps(t, s + j), inv));
    }
}

static long round8(long n) { return (n + 7) & ~7L; }

long dk_attention_scratch_floats(long T, long D) {
    long Tp = round8(T), big = T > D ? T : D;
    long gemm = dk_packed_floats(T, D) + dk_packed_floats(D, T) + T * Tp + Tp + T
              + dk_gemm_workspace_floats(T, big);
    long plain = T * (D + 1);
    return gemm > plain ? gemm : plain;
}

DK_AVX2 static void attention_gemm_avx2(const float *q, const float *k, const float *v, long ld,
                                        float *out, long ldo, const int32_t *keep, long T, long D,
                                        float scale, float *scratch, float *probs, float *scores,
                                        const float *dropout, float weight, int wide) {
    const long Tp = round8(T);
    float *kpack = scratch;                        // K as a packed [T, D] weight
    float *vpack = kpack + dk_packed_floats(T, D); // Vᵀ as a packed [D, T] weight
    float *S = vpack + dk_packed_floats(D, T);     // [T, Tp] scores, then their exps
    float *keepf = S + T * Tp;                     // [Tp]
    float *rowscale = keepf + Tp;                  // [T] 1 / sum · weight per row (AVX2)
    float *ws = rowscale + T;                      // GEMM workspace
    long valid = 0;
    for (long j = 0; j < T; j++) valid += keep[j] != 0;
    for (long j = 0; j < Tp; j++) keepf[j] = j < T && (keep[j] || !valid) ? 1.0f : 0.0f;
    // Both packed straight from the strided rows: K [T, D] as the weight of S = Q·Kᵀ, and
    // V [T, D] as the transposed source of the weight Vᵀ [D, T] of out = P·V.
    dk_pack_weight_ld(k, ld, T, D, kpack);
    dk_pack_weight_transposed(v, ld, D, T, vpack);
    dk_gemm_packed(T, T, D, q, ld, kpack, S, Tp, 0, ws);
    // The AVX2 softmax leaves each row unnormalised: its D outputs are scaled by 1 / sum
    // (and the weight) after the product instead of its T probabilities, the same for
    // inference and training; the probabilities kept for the backward are normalised.
    for (long t = 0; t < T; t++) {
        float *row = S + t * Tp;
        if (scores) for (long j = 0; j < T; j++) scores[t * T + j] = row[j] * scale;
        // No attendable key at all: HF's finfo.min mask makes every score equal.
        if (!valid) memset(row, 0, (size_t)T * sizeof(float));
        for (long j = T; j < Tp; j++) row[j] = 0;
        if (wide) {
            softmax_row_avx512(row, keepf, Tp, scale);
            if (probs) memcpy(probs + t * T, row, (size_t)T * sizeof(float));
            if (dropout) for (long j = 0; j < T; j++) row[j] *= dropout[t * T + j];
            if (weight != 1.0f) for (long j = 0; j < T; j++) row[j] *= weight;
        } else {
            const float inv = softmax_row_avx2(row, keepf, Tp, scale);
            rowscale[t] = inv * weight;
            if (probs) for (long j = 0; j < T; j++) probs[t * T + j] = row[j] * inv;
            if (dropout) for (long j = 0; j < T; j++) row[j] *= dropout[t * T + j];
        }
    }
    dk_gemm_packed(T, D, T, S, Tp, vpack, out, ldo, 0, ws);
    if (!wide)
        for (long t = 0; t < T; t++) {
            float *o = out + t * ldo;
            for (long d = 0; d < D; d++) o[d] *= rowscale[t];
        }
}

// ---------------------------------------------------------------- dispatch

void dk_bias_gelu(const float *x, const float *bias, float *pre, float *act, long rows, long cols) {
    if (dk_has_avx512()) bias_gelu_avx512(x, bias, pre, act, rows, cols);
    else if (dk_has_avx2()) bias_gelu_avx2(x, bias, pre, act, rows, cols);
    else dk_bias_gelu_ref(x, bias, pre, act, rows, cols);
}

void dk_residual_layernorm(const float *x, const float *bias, const float *dropout, const float *residual,
                           float *sum, float *y, float *mean, float *rstd, const float *gamma,
                           const float *beta, long rows, long cols, float eps) {
    if (dk_has_avx2()) layernorm_avx2(x, bias, dropout, residual, sum, y, mean, rstd, gamma, beta, rows, cols, eps);
    else dk_residual_layernorm_ref(x, bias, dropout, residual, sum, y, mean, rstd, gamma, beta, rows, cols, eps);
}

void dk_attention_head(const float *q, const float *k, const float *v, long ld,
                       float *out, long ldo, const int32_t *keep, long T, long D,
                       float scale, float *scratch, float *probs, float *scores,
                       const float *dropout, float weight) {
    if (dk_has_avx2())
        attention_gemm_avx2(q, k, v, ld, out, ldo, keep, T, D, scale, scratch, probs, scores, dropout, weight, dk_has_avx512());
    else dk_attention_head_ref(q, k, v, ld, out, ldo, keep, T, D, scale, scratch, probs, scores, dropout, weight);
}
