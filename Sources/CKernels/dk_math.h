// dk_math: float exp and erf shared by the inference (kernels.c) and training
// (training.c) kernels, with 8-lane (AVX2) and 16-lane (AVX-512) intrinsics twins; private
// to CKernels (not under include/). Written branch-free so
// clang vectorises loops over them; accuracy is checked against libm by KernelTests.
#ifndef DISTILLERY_DK_MATH_H
#define DISTILLERY_DK_MATH_H
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "dk_target.h"

DK_INLINE float dk_expf(float x) {
    // Cephes-style expf: x = n ln2 + r, |r| <= ln2/2, exp(r) by a degree-6 polynomial.
    x = fminf(fmaxf(x, -87.33654f), 88.72283f);
    float n = rintf(x * 1.44269504088896341f);
    float r = fmaf(n, -0.693359375f, x);
    r = fmaf(n, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = fmaf(p, r, 1.3981999507e-3f);
    p = fmaf(p, r, 8.3334519073e-3f);
    p = fmaf(p, r, 4.1665795894e-2f);
    p = fmaf(p, r, 1.6666665459e-1f);
    p = fmaf(p, r, 5.0000001201e-1f);
    p = fmaf(p, r * r, r) + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

DK_INLINE float dk_erff(float x) {
    // Rational approximation of erf on [-4, 4] (the one Eigen and XLA use); erf is
    // +-1 to float precision outside it.
    x = fminf(fmaxf(x, -4.0f), 4.0f);
    float x2 = x * x;
    float p = -2.72614225801306e-10f;
    p = fmaf(x2, p, 2.77068142495902e-08f);
    p = fmaf(x2, p, -2.10102402082508e-06f);
    p = fmaf(x2, p, -5.69250639462346e-05f);
    p = fmaf(x2, p, -7.34990630326855e-04f);
    p = fmaf(x2, p, -2.95459980854025e-03f);
    p = fmaf(x2, p, -1.60960333262415e-02f);
    p = x * p;
    float q = -1.45660718464996e-05f;
    q = fmaf(x2, q, -2.13374055278905e-04f);
    q = fmaf(x2, q, -1.68282697438203e-03f);
    q = fmaf(x2, q, -7.37332916720468e-03f);
    q = fmaf(x2, q, -1.42647390514189e-02f);
    return p / q;
}

// ---------------------------------------------------------------- AVX2 twins (8 lanes)
//
// The same approximations on 8 floats at a time, for kernels written with intrinsics.

// The _n forms take n vectors and run each step on all of them before the next (n a
// constant at the call site, at most 8): the same operations on each vector, so the same
// bits as n single calls. A single call is one long dependent chain (exp: ~20 operations)
// and too few of them fit the scheduler at once to keep the FMA pipes busy; on Zen 2 exp
// of 8 vectors in step takes 9.1 cycles per vector against 12.0 one at a time, and GELU of
// 4 takes 11.3 against 13.7 (benchmarks/results/2026-12-02-quantization-zen2.md).
#define DK_EACH(expr) for (int i = 0; i < n; i++) expr   // one step, on each of the n vectors

/// exp of n vectors in place (dk_expf's steps).
DK_AVX2 __attribute__((always_inline)) static inline void exp8_n(__m256 *x, const int n) {
    __m256 k[8], r[8], p[8];
    DK_EACH(x[i] = _mm256_min_ps(_mm256_max_ps(x[i], _mm256_set1_ps(-87.33654f)), _mm256_set1_ps(88.72283f)));
    DK_EACH(k[i] = _mm256_round_ps(_mm256_mul_ps(x[i], _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    DK_EACH(r[i] = _mm256_fmadd_ps(k[i], _mm256_set1_ps(-0.693359375f), x[i]));
    DK_EACH(r[i] = _mm256_fmadd_ps(k[i], _mm256_set1_ps(2.12194440e-4f), r[i]));
    DK_EACH(p[i] = _mm256_fmadd_ps(_mm256_set1_ps(1.9875691500e-4f), r[i], _mm256_set1_ps(1.3981999507e-3f)));
    DK_EACH(p[i] = _mm256_fmadd_ps(p[i], r[i], _mm256_set1_ps(8.3334519073e-3f)));
    DK_EACH(p[i] = _mm256_fmadd_ps(p[i], r[i], _mm256_set1_ps(4.1665795894e-2f)));
    DK_EACH(p[i] = _mm256_fmadd_ps(p[i], r[i], _mm256_set1_ps(1.6666665459e-1f)));
    DK_EACH(p[i] = _mm256_fmadd_ps(p[i], r[i], _mm256_set1_ps(5.0000001201e-1f)));
    DK_EACH(p[i] = _mm256_add_ps(_mm256_fmadd_ps(p[i], _mm256_mul_ps(r[i], r[i]), r[i]), _mm256_set1_ps(1.0f)));
    DK_EACH(x[i] = _mm256_mul_ps(p[i], _mm256_castsi256_ps(_mm256_slli_epi32(
                       _mm256_add_epi32(_mm256_cvtps_epi32(k[i]), _mm256_set1_epi32(127)), 23))));
}

DK_AVX2 static inline __m256 exp8(__m256 x) {
    exp8_n(&x, 1);
    return x;
}

DK_AVX2 static inline float hmax8(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

DK_AVX2 static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/// erf of n vectors in place: the rational approximation of dk_erff.
DK_AVX2 __attribute__((always_inline)) static inline void erf8_n(__m256 *x, const int n) {
    __m256 x2[8], p[8], q[8];
    DK_EACH(x[i] = _mm256_min_ps(_mm256_max_ps(x[i], _mm256_set1_ps(-4.0f)), _mm256_set1_ps(4.0f)));
    DK_EACH(x2[i] = _mm256_mul_ps(x[i], x[i]));
    DK_EACH(p[i] = _mm256_fmadd_ps(x2[i], _mm256_set1_ps(-2.72614225801306e-10f), _mm256_set1_ps(2.77068142495902e-08f)));
    DK_EACH(q[i] = _mm256_fmadd_ps(x2[i], _mm256_set1_ps(-1.45660718464996e-05f), _mm256_set1_ps(-2.13374055278905e-04f)));
    DK_EACH(p[i] = _mm256_fmadd_ps(x2[i], p[i], _mm256_set1_ps(-2.10102402082508e-06f)));
    DK_EACH(q[i] = _mm256_fmadd_ps(x2[i], q[i], _mm256_set1_ps(-1.68282697438203e-03f)));
    DK_EACH(p[i] = _mm256_fmadd_ps(x2[i], p[i], _mm256_set1_ps(-5.69250639462346e-05f)));
    DK_EACH(q[i] = _mm256_fmadd_ps(x2[i], q[i], _mm256_set1_ps(-7.37332916720468e-03f)));
    DK_EACH(p[i] = _mm256_fmadd_ps(x2[i], p[i], _mm256_set1_ps(-7.34990630326855e-04f)));
    DK_EACH(q[i] = _mm256_fmadd_ps(x2[i], q[i], _mm256_set1_ps(-1.42647390514189e-02f)));
    DK_EACH(p[i] = _mm256_fmadd_ps(x2[i], p[i], _mm256_set1_ps(-2.95459980854025e-03f)));
    DK_EACH(p[i] = _mm256_fmadd_ps(x2[i], p[i], _mm256_set1_ps(-1.60960333262415e-02f)));
    DK_EACH(x[i] = _mm256_div_ps(_mm256_mul_ps(x[i], p[i]), q[i]));
}

/// erf of 8 floats.
DK_AVX2 static inline __m256 erf8(__m256 x) {
    erf8_n(&x, 1);
    return x;
}

// ---------------------------------------------------------------- AVX-512 twins (16 lanes)
//
// exp8 and erf8 on 16 floats, for the AVX-512 builds (same constants, same operation order).

DK_AVX512 static inline __m512 exp16(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.33654f)), _mm512_set1_ps(88.72283f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-0.693359375f), x);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}

/// erf of 16 floats: the rational approximation of dk_erff.
DK_AVX512 static inline __m512 erf16(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-4.0f)), _mm512_set1_ps(4.0f));
    __m512 x2 = _mm512_mul_ps(x, x);
    __m512 p = _mm512_set1_ps(-2.72614225801306e-10f);
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(2.77068142495902e-08f));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(-2.10102402082508e-06f));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(-5.69250639462346e-05f));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(-7.34990630326855e-04f));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(-2.95459980854025e-03f));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(-1.60960333262415e-02f));
    p = _mm512_mul_ps(x, p);
    __m512 q = _mm512_set1_ps(-1.45660718464996e-05f);
    q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(-2.13374055278905e-04f));
    q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(-1.68282697438203e-03f));
    q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(-7.37332916720468e-03f));
    q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(-1.42647390514189e-02f));
    return _mm512_div_ps(p, q);
}

/// Exact-erf GELU of 16 floats: 0.5 · v · (1 + erf(v / √2)).
DK_AVX512 static inline __m512 gelu16(__m512 v) {
    __m512 cdf = _mm512_add_ps(_mm512_set1_ps(1.0f), erf16(_mm512_mul_ps(v, _mm512_set1_ps(0.70710678118654752f))));
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), v), cdf);
}

#endif
