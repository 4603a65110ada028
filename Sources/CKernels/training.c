// Backward kernels of the encoder (see include/dk_training.h): softmax, GELU and
// LayerNorm backward, the fixed-order column sums of bias and LayerNorm-parameter
// gradients, and the dropout mask. Their forwards are the encoder kernels of kernels.c,
// shared by inference and training.
//
// Same scheme as kernels.c: each kernel body is a static inline function written so that
// clang vectorises it (fixed-lane partial sums, branch-free selects), instantiated once
// plainly (the `_ref` twin and the fallback) and once under target("avx2,fma"), chosen at
// run time by dk_has_avx2(). The GELU derivative, whose exp/erf clang does not vectorise,
// has an AVX2 build written with the intrinsics twins of dk_math.h instead; its last
// partial vector goes through a zero-padded 8-float buffer, so every element sees the
// same operations wherever a caller's split falls. LayerNorm's backward reads the row
// statistics the forward kept (computed in double). Left out on purpose: fusing these
// with the GEMMs around them.
#include "dk_training.h"
#include "ckernels.h"
#include "dk_math.h"

#define LANES 8

DK_INLINE float lane_sum(const float *acc) {
    float s = 0;
    for (int l = 0; l < LANES; l++) s += acc[l];
    return s;
}

DK_INLINE double lane_sum_d(const double *acc) {
    double s = 0;
    for (int l = 0; l < LANES; l++) s += acc[l];
    return s;
}

// ---------------------------------------------------------------- softmax backward

DK_INLINE void softmax_backward_body(float *d, long ldd, const float *p, long ldp, const float *dropout, long ldm,
                                     const float *extra, long lde, long rows, long T, float scale) {
    for (long r = 0; r < rows; r++) {
        float *dr = d + r * ldd;
        const float *pr = p + r * ldp;
        if (dropout) {
            const float *mr = dropout + r * ldm;
            for (long j = 0; j < T; j++) dr[j] *= mr[j];
        }
        float acc[LANES] = {0};
        long j = 0;
        for (; j + LANES <= T; j += LANES)
            for (int l = 0; l < LANES; l++) acc[l] += pr[j + l] * dr[j + l];
        float c = lane_sum(acc);
        for (; j < T; j++) c += pr[j] * dr[j];
        if (extra) {
            const float *er = extra + r * lde;
            for (j = 0; j < T; j++) dr[j] = ((pr[j] == 0.0f ? 0.0f : pr[j] * (dr[j] - c)) + er[j]) * scale;
        } else {
            for (j = 0; j < T; j++) dr[j] = (pr[j] == 0.0f ? 0.0f : pr[j] * (dr[j] - c)) * scale;
        }
    }
}
DK_AVX2 static void softmax_backward_avx2(float *d, long ldd, const float *p, long ldp, const float *m, long ldm,
                                          const float *e, long lde, long rows, long T, float scale) {
    softmax_backward_body(d, ldd, p, ldp, m, ldm, e, lde, rows, T, scale);
}
void dk_softmax_backward_ref(float *d, long ldd, const float *p, long ldp, const float *m, long ldm,
                             const float *e, long lde, long rows, long T, float scale) {
    softmax_backward_body(d, ldd, p, ldp, m, ldm, e, lde, rows, T, scale);
}

// ---------------------------------------------------------------- GELU (exact erf)

#define INV_SQRT2 0.70710678118654752f
#define INV_SQRT_2PI 0.39894228040143268f

DK_INLINE void gelu_backward_body(const float *dy, const float *x, float *dx, long n) {
    for (long i = 0; i < n; i++) {
        float v = x[i];
        float cdf = 0.5f * (1.0f + dk_erff(v * INV_SQRT2));
        float pdf = INV_SQRT_2PI * dk_expf(-0.5f * v * v);
        dx[i] = dy[i] * (cdf + v * pdf);
    }
}
DK_AVX2 static inline __m256 gelu_grad8(__m256 dy, __m256 v) {
    __m256 cdf = _mm256_mul_ps(_mm256_set1_ps(0.5f),
                               _mm256_add_ps(_mm256_set1_ps(1.0f), erf8(_mm256_mul_ps(v, _mm256_set1_ps(INV_SQRT2)))));
    __m256 pdf = _mm256_mul_ps(_mm256_set1_ps(INV_SQRT_2PI),
                               exp8(_mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(-0.5f), v), v)));
    return _mm256_mul_ps(dy, _mm256_fmadd_ps(v, pdf, cdf));
}
DK_AVX2 static void gelu_backward_avx2(const float *dy, const float *x, float *dx, long n) {
    long i = 0;
    for (; i + LANES <= n; i += LANES)
        _mm256_storeu_ps(dx + i, gelu_grad8(_mm256_loadu_ps(dy + i), _mm256_loadu_ps(x + i)));
    if (i < n) {
        float bd[LANES] = {0}, bx[LANES] = {0};
        memcpy(bd, dy + i, (size_t)(n - i) * sizeof(float));
        memcpy(bx, x + i, (size_t)(n - i) * sizeof(float));
        _mm256_storeu_ps(bd, gelu_grad8(_mm256_loadu_ps(bd), _mm256_loadu_ps(bx)));
        memcpy(dx + i, bd, (size_t)(n - i) * sizeof(float));
    }
}
void dk_gelu_backward_ref(const float *dy, const float *x, float *dx, long n) { gelu_backward_body(dy, x, dx, n); }

// ---------------------------------------------------------------- LayerNorm

DK_INLINE void layernorm_backward_body(float *dx, const float *dy, const float *x, const float *mean,
                                       const float *rstd, const float *gamma, long rows, long cols, int accumulate) {
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * cols, *dyr = dy + r * cols;
        float *dxr = dx + r * cols;
        const float m = mean[r], s = rstd[r];
        double ag[LANES] = {0}, agx[LANES] = {0};
        long c = 0;
        for (; c + LANES <= cols; c += LANES)
            for (int l = 0; l < LANES; l++) {
                float g = dyr[c + l] * gamma[c + l], xh = (xr[c + l] - m) * s;
                ag[l] += (double)g;
                agx[l] += (double)g * (double)xh;
            }
        double sumG = lane_sum_d(ag), sumGX = lane_sum_d(agx);
        for (; c < cols; c++) {
            float g = dyr[c] * gamma[c], xh = (xr[c] - m) * s;
            sumG += (double)g;
            sumGX += (double)g * (double)xh;
        }
        const double meanG = sumG / (double)cols, meanGX = sumGX / (double)cols;
        for (c = 0; c < cols; c++) {
            float g = dyr[c] * gamma[c], xh = (xr[c] - m) * s;
            float v = (float)((double)s * ((double)g - meanG - (double)xh * meanGX));
            dxr[c] = accumulate ? dxr[c] + v : v;
        }
    }
}
DK_AVX2 static void layernorm_backward_avx2(float *dx, const float *dy, const float *x, const float *mean,
                                            const float *rstd, const float *g, long rows, long cols, int acc) {
    layernorm_backward_body(dx, dy, x, mean, rstd, g, rows, cols, acc);
}
void dk_layernorm_backward_ref(float *dx, const float *dy, const float *x, const float *mean,
                               const float *rstd, const float *g, long rows, long cols, int acc) {
    layernorm_backward_body(dx, dy, x, mean, rstd, g, rows, cols, acc);
}

DK_INLINE void layernorm_param_body(float *dgamma, float *dbeta, const float *dy, const float *x,
                                    const float *mean, const float *rstd, long rows, long cols, long ld) {
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * ld, *dyr = dy + r * ld;
        const float m = mean[r], s = rstd[r];
        for (long c = 0; c < cols; c++) {
            dgamma[c] += dyr[c] * ((xr[c] - m) * s);
            dbeta[c] += dyr[c];
        }
    }
}
DK_AVX2 static void layernorm_param_avx2(float *dg, float *db, const float *dy, const float *x,
                                         const float *mean, const float *rstd, long rows, long cols, long ld) {
    layernorm_param_body(dg, db, dy, x, mean, rstd, rows, cols, ld);
}
void dk_layernorm_param_backward_ref(float *dg, float *db, const float *dy, const float *x,
                                     const float *mean, const float *rstd, long rows, long cols, long ld) {
    layernorm_param_body(dg, db, dy, x, mean, rstd, rows, cols, ld);
}

DK_INLINE void column_sums_body(float *out, const float *x, long rows, long cols, long ld) {
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * ld;
        for (long c = 0; c < cols; c++) out[c] += xr[c];
    }
}
DK_AVX2 static void column_sums_avx2(float *out, const float *x, long rows, long cols, long ld) {
    column_sums_body(out, x, rows, cols, ld);
}
void dk_column_sums_ref(float *out, const float *x, long rows, long cols, long ld) {
    column_sums_body(out, x, rows, cols, ld);
}

// ---------------------------------------------------------------- dropout masks
//
// SplitMix64's finalizer per element. AVX2 has no 64-bit multiply: each product by a
// constant is three 32×32→64 multiplies (lo·lo + (hi·lo + lo·hi) << 32), exact mod 2⁶⁴.

#define MIX_GOLDEN 0x9E3779B97F4A7C15ULL
#define MIX_C1 0xBF58476D1CE4E5B9ULL
#define MIX_C2 0x94D049BB133111EBULL

DK_INLINE uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * MIX_C1;
    z = (z ^ (z >> 27)) * MIX_C2;
    return z ^ (z >> 31);
}

void dk_dropout_mask_ref(uint64_t key, uint64_t first, long count, float p, float keep, float *out) {
    for (long i = 0; i < count; i++) {
        uint64_t bits = mix64(key ^ ((first + (uint64_t)i) * MIX_GOLDEN));
        out[i] = (float)(bits >> 40) * (1.0f / 16777216.0f) < p ? 0.0f : keep;
    }
}

DK_AVX2 static inline __m256i mul64_const(__m256i a, uint64_t c) {
    const __m256i clo = _mm256_set1_epi64x((long long)(c & 0xFFFFFFFFu));
    const __m256i chi = _mm256_set1_epi64x((long long)(c >> 32));
    __m256i lo = _mm256_mul_epu32(a, clo);
    __m256i cross = _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(a, 32), clo), _mm256_mul_epu32(a, chi));
    return _mm256_add_epi64(lo, _mm256_slli_epi64(cross, 32));
}

DK_AVX2 static void dropout_mask_avx2(uint64_t key, uint64_t first, long count, float p, float keep, float *out) {
    const __m256i k = _mm256_set1_epi64x((long long)key);
    const __m128 pv = _mm_set1_ps(p), kv = _mm_set1_ps(keep), scale = _mm_set1_ps(1.0f / 16777216.0f);
    long i = 0;
    for (; i + 4 <= count; i += 4) {
        const uint64_t c0 = first + (uint64_t)i;
        __m256i idx = _mm256_add_epi64(_mm256_set1_epi64x((long long)c0), _mm256_set_epi64x(3, 2, 1, 0));
        __m256i z = _mm256_xor_si256(k, mul64_const(idx, MIX_GOLDEN));
        z = mul64_const(_mm256_xor_si256(z, _mm256_srli_epi64(z, 30)), MIX_C1);
        z = mul64_const(_mm256_xor_si256(z, _mm256_srli_epi64(z, 27)), MIX_C2);
        z = _mm256_xor_si256(z, _mm256_srli_epi64(z, 31));
        // The top 24 bits of each lane, gathered into 4 int32s and converted exactly.
        __m256i top = _mm256_srli_epi64(z, 40);
        __m256i packed = _mm256_permutevar8x32_epi32(top, _mm256_set_epi32(7, 5, 3, 1, 6, 4, 2, 0));
        __m128 u = _mm_mul_ps(_mm_cvtepi32_ps(_mm256_castsi256_si128(packed)), scale);
        _mm_storeu_ps(out + i, _mm_andnot_ps(_mm_cmplt_ps(u, pv), kv));
    }
    dk_dropout_mask_ref(key, first + (uint64_t)i, count - i, p, keep, out + i);
}

// ---------------------------------------------------------------- dispatch

void dk_softmax_backward(float *d, long ldd, const float *p, long ldp, const float *m, long ldm,
                         const float *e, long lde, long rows, long T, float scale) {
    if (dk_has_avx2()) softmax_backward_avx2(d, ldd, p, ldp, m, ldm, e, lde, rows, T, scale);
    else dk_softmax_backward_ref(d, ldd, p, ldp, m, ldm, e, lde, rows, T, scale);
}

void dk_gelu_backward(const float *dy, const float *x, float *dx, long n) {
    if (dk_has_avx2()) gelu_backward_avx2(dy, x, dx, n);
    else dk_gelu_backward_ref(dy, x, dx, n);
}

void dk_layernorm_backward(float *dx, const float *dy, const float *x, const float *mean,
                           const float *rstd, const float *g, long rows, long cols, int acc) {
    if (dk_has_avx2()) layernorm_backward_avx2(dx, dy, x, mean, rstd, g, rows, cols, acc);
    else dk_layernorm_backward_ref(dx, dy, x, mean, rstd, g, rows, cols, acc);
}

void dk_layernorm_param_backward(float *dg, float *db, const float *dy, const float *x,
                                 const float *mean, const float *rstd, long rows, long cols, long ld) {
    if (dk_has_avx2()) layernorm_param_avx2(dg, db, dy, x, mean, rstd, rows, cols, ld);
    else dk_layernorm_param_backward_ref(dg, db, dy, x, mean, rstd, rows, cols, ld);
}

void dk_column_sums(float *out, const float *x, long rows, long cols, long ld) {
    if (dk_has_avx2()) column_sums_avx2(out, x, rows, cols, ld);
    else dk_column_sums_ref(out, x, rows, cols, ld);
}

void dk_dropout_mask(uint64_t key, uint64_t first, long count, float p, float keep, float *out) {
    if (dk_has_avx2()) dropout_mask_avx2(key, first, count, p, keep, out);
    else dk_dropout_mask_ref(key, first, count, p, keep, out);
}

// ---------------------------------------------------------------- AdamW and gradient scaling
//
// The optimizer's element-wise loops over every parameter (tens of millions). Contraction
// into FMAs is off so each element sees exactly the roundings of the expression as
// written (the Swift loop these replace did not fuse), keeping runs bit-identical.

DK_INLINE void adamw_body(float *p, float *m, float *v, const float *g, long n, int decay,
                          float decay_factor, float one_minus_beta1, float beta2, float one_minus_beta2,
                          float correction2_root, float eps, float negative_step) {
#pragma clang fp contract(off)
    for (long i = 0; i < n; i++) {
        float pi = decay ? p[i] * decay_factor : p[i];
        float mi = m[i] + one_minus_beta1 * (g[i] - m[i]);
        float vi = v[i] * beta2;
        vi = vi + one_minus_beta2 * g[i] * g[i];
        float denominator = sqrtf(vi) / correction2_root + eps;
        p[i] = pi + negative_step * mi / denominator;
        m[i] = mi;
        v[i] = vi;
    }
}
DK_AVX2 static void adamw_avx2(float *p, float *m, float *v, const float *g, long n, int decay, float df,
                               float ob1, float b2, float ob2, float c2, float eps, float step) {
    adamw_body(p, m, v, g, n, decay, df, ob1, b2, ob2, c2, eps, step);
}
void dk_adamw_ref(float *p, float *m, float *v, const float *g, long n, int decay, float df,
                  float ob1, float b2, float ob2, float c2, float eps, float step) {
    adamw_body(p, m, v, g, n, decay, df, ob1, b2, ob2, c2, eps, step);
}
void dk_adamw(float *p, float *m, float *v, const float *g, long n, int decay, float df,
              float ob1, float b2, float ob2, float c2, float eps, float step) {
    if (dk_has_avx2()) adamw_avx2(p, m, v, g, n, decay, df, ob1, b2, ob2, c2, eps, step);
    else dk_adamw_ref(p, m, v, g, n, decay, df, ob1, b2, ob2, c2, eps, step);
}

DK_INLINE void scale_body(float *x, long n, float s) {
    for (long i = 0; i < n; i++) x[i] *= s;
}
DK_AVX2 static void scale_avx2(float *x, long n, float s) { scale_body(x, n, s); }
void dk_scale_ref(float *x, long n, float s) { scale_body(x, n, s); }
void dk_scale(float *x, long n, float s) {
    if (dk_has_avx2()) scale_avx2(x, n, s);
    else dk_scale_ref(x, n, s);
}
