// AVX-512 builds of the quantized GEMMs (int8 and int4 with VNNI, bf16 with AVX512_BF16);
// layouts and numerics in quant.c and include/dk_quant.h.
//
// int8: activations are quantized MC_Q rows at a time into the workspace as u8 = q + 128
// (vpdpbusd multiplies unsigned by signed bytes); the micro-kernel is 12 rows × 32
// columns (two 16-column panels), 24 zmm int32 accumulators, per 4 k: 2 loads of W, 12
// dword broadcasts of A, 24 vpdpbusd. The offset comes back out exactly: sum − 128·Σw
// (the panel's corr). Epilogue: fmadd(cvt(sum), s_row·wScale, bias), masked at N.
// int4: per (M block, column pair) the two panels' nibbles are unpacked once into an int8
// scratch laid out as int8 panels (q − zero, in [-15, 15]); a 6×32 micro-kernel keeps 12
// int32 group sums (started at −corr of the group) and 12 float accumulators, folding each
// group in with fmadd(cvt(sum), scale_g, acc). bf16: activations rounded to bf16 per block;
// a 12×32 micro-kernel of vdpbf16ps (pairs of k) into fp32 accumulators.
// GELU, when asked for, runs over each finished M block (dk_bias_gelu's AVX2 build).
#include "dk_quant.h"
#include "quant_internal.h"
#include <string.h>

#include "dk_target.h"

static inline __mmask16 cols_mask(long cols) { return cols >= 16 ? 0xFFFF : (__mmask16)((1u << cols) - 1); }

/// Quantizes `rows` rows of A to q (+128 when `offset`), Kp bytes per row, scales to s.
DK_AVX512_VNNI static void quantize_rows(const float *A, long lda, long rows, long K, long Kp, float fixedScale,
                                    int offset, uint8_t *q, float *s) {
    for (long r = 0; r < rows; r++) {
        const float *x = A + r * lda;
        float sc = fixedScale;
        if (!(sc > 0)) {
            __m512 m = _mm512_setzero_ps();
            long k = 0;
            for (; k + 16 <= K; k += 16) m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(x + k)));
            if (k < K) m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_maskz_loadu_ps(cols_mask(K - k), x + k)));
            sc = _mm512_reduce_max_ps(m) / 127.0f;
        }
        const __m512 inv = _mm512_set1_ps(sc > 0 ? 1.0f / sc : 0.0f);
        const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
        const __m512i off = _mm512_set1_epi32(offset ? 128 : 0);
        uint8_t *qr = q + r * Kp;
        for (long k = 0; k < Kp; k += 16) {
            const __mmask16 m = k + 16 <= K ? 0xFFFF : k < K ? cols_mask(K - k) : 0;
            __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + k), inv);
            v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);   // NaN → -127, as the reference
            __m512i i = _mm512_add_epi32(_mm512_cvtps_epi32(v), off);
            _mm_mask_storeu_epi8(qr + k, cols_mask(Kp - k), _mm512_cvtepi32_epi8(i));
        }
        s[r] = sc;
    }
}

// ---------------------------------------------------------------- int8

/// c[rows, 16·np] = epilogue of the int32 sums of `rows` u8 activation rows (Kp bytes
/// apart) against one or two int8 panels (`pnext` bytes from the first to the second).
DK_AVX512_VNNI DK_INLINE void q8_kernel(long Kp, const uint8_t *a, const uint8_t *w, long pnext, const float *s,
                                   const float *wScale, const float *bias, float *c, long ldc,
                                   __mmask16 m0, __mmask16 m1, const int rows, const int np) {
    __m512i x[12], y[12];
    for (int r = 0; r < 12; r++) {
        if (r >= rows) break;
        x[r] = _mm512_setzero_si512();
        y[r] = _mm512_setzero_si512();
    }
    const uint8_t *w0 = w + 64, *w1 = w + pnext + 64;
    for (long k = 0; k < Kp; k += 4) {
        const __m512i b0 = _mm512_loadu_si512(w0 + k * 16);
        const __m512i b1 = np == 2 ? _mm512_loadu_si512(w1 + k * 16) : b0;
        for (int r = 0; r < 12; r++) {
            if (r >= rows) break;
            int32_t av;
            memcpy(&av, a + r * Kp + k, 4);
            const __m512i ar = _mm512_set1_epi32(av);
            x[r] = _mm512_dpbusd_epi32(x[r], ar, b0);
            if (np == 2) y[r] = _mm512_dpbusd_epi32(y[r], ar, b1);
        }
    }
    const __m512i c0 = _mm512_loadu_si512(w), c1 = np == 2 ? _mm512_loadu_si512(w + pnext) : c0;
    const __m512 ws0 = _mm512_maskz_loadu_ps(m0, wScale), ws1 = _mm512_maskz_loadu_ps(m1, wScale + 16);
    const __m512 bi0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
    const __m512 bi1 = bias && np == 2 ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
    for (int r = 0; r < 12; r++) {
        if (r >= rows) break;
        const __m512 sr = _mm512_set1_ps(s[r]);
        const __m512 f0 = _mm512_cvtepi32_ps(_mm512_sub_epi32(x[r], c0));
        _mm512_mask_storeu_ps(c + r * ldc, m0, _mm512_fmadd_ps(f0, _mm512_mul_ps(sr, ws0), bi0));
        if (np == 2) {
            const __m512 f1 = _mm512_cvtepi32_ps(_mm512_sub_epi32(y[r], c1));
            _mm512_mask_storeu_ps(c + r * ldc + 16, m1, _mm512_fmadd_ps(f1, _mm512_mul_ps(sr, ws1), bi1));
        }
    }
}

#define Q8_CALL(R, NP) q8_kernel(Kp, a, w, pnext, s, wScale, bias, c, ldc, m0, m1, R, NP)
#define Q8_ROWS(NP)                                                                        \
    switch (rows) {                                                                        \
    case 12: Q8_CALL(12, NP); break; case 11: Q8_CALL(11, NP); break;                      \
    case 10: Q8_CALL(10, NP); break; case 9: Q8_CALL(9, NP); break;                        \
    case 8: Q8_CALL(8, NP); break; case 7: Q8_CALL(7, NP); break;                          \
    case 6: Q8_CALL(6, NP); break; case 5: Q8_CALL(5, NP); break;                          \
    case 4: Q8_CALL(4, NP); break; case 3: Q8_CALL(3, NP); break;                          \
    case 2: Q8_CALL(2, NP); break; default: Q8_CALL(1, NP); break;                         \
    }

DK_AVX512_VNNI static void q8_tile(long Kp, const uint8_t *a, const uint8_t *w, long pnext, const float *s,
                              const float *wScale, const float *bias, float *c, long ldc, long rows, long cols) {
    const __mmask16 m0 = cols_mask(cols), m1 = cols > 16 ? cols_mask(cols - 16) : 0;
    if (cols > 16) { Q8_ROWS(2) } else { Q8_ROWS(1) }
}

DK_AVX512_VNNI void q8_gemm_avx512(long M, long N, long K, const float *A, long lda, const void *packed,
                              const float *wScale, const float *bias, float *C, long ldc, float actScale,
                              int epilogue, void *workspace) {
    const long Kp = q_round4(K), pb = dk_q8_panel_bytes(K);
    float *s = workspace;
    uint8_t *qa = (uint8_t *)workspace + q_scales_bytes(M);
    for (long i0 = 0; i0 < M; i0 += MC_Q) {
        const long mc = M - i0 < MC_Q ? M - i0 : MC_Q;
        quantize_rows(A + i0 * lda, lda, mc, K, Kp, actScale, 1, qa, s);
        for (long j = 0; j < N; j += 32) {
            const long cols = N - j < 32 ? N - j : 32;
            const uint8_t *w = (const uint8_t *)packed + j / 16 * pb;
            for (long i = 0; i < mc; i += 12) {
                const long rows = mc - i < 12 ? mc - i : 12;
                q8_tile(Kp, qa + i * Kp, w, pb, s + i, wScale + j, bias ? bias + j : NULL,
                        C + (i0 + i) * ldc + j, ldc, rows, cols);
            }
        }
        q_gelu_rows(C + i0 * ldc, ldc, mc, N, epilogue, 1);
    }
}

// ---------------------------------------------------------------- int4

/// Unpacks the int4 panel at `p` (K/G groups) into int8 panel layout [K/4][16][4] (q − zero).
DK_AVX512_VNNI static void q4_unpack_panel(const uint8_t *p, long K, long G, int8_t *dst) {
    const __m512i low = _mm512_set1_epi8(15);
    for (long g = 0; g < K / G; g++) {
        const uint8_t *blk = p + g * (Q4_GROUP_HEADER + G * 8);
        const __m512i z = _mm512_loadu_si512(blk + 128);
        for (long c = 0; c < G / 8; c++) {
            const __m512i v = _mm512_loadu_si512(blk + Q4_GROUP_HEADER + c * 64);
            int8_t *d = dst + (g * G / 4 + 2 * c) * 64;
            _mm512_storeu_si512(d, _mm512_sub_epi8(_mm512_and_si512(v, low), z));
            _mm512_storeu_si512(d + 64, _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(v, 4), low), z));
        }
    }
}

/// c[rows ≤ 6, 16·np]: per group int32 sums from −corr, folded into float accumulators.
/// p: the first int4 panel (group headers), u: its unpacked int8 panel; the second panel
/// `pnext` / `unext` bytes further. nb == 0: one activation scale per row, s[r], applied at
/// the end; nb > 0 (dk_q4b, G = 32): s[r·nb + g] per group, multiplied into the group scale.
DK_AVX512_VNNI DK_INLINE void q4_kernel(long K, long G, const uint8_t *a, const uint8_t *p, long pnext,
                                   const int8_t *u, long unext, const float *s, long nb, const float *bias,
                                   float *c, long ldc, __mmask16 m0, __mmask16 m1, const int rows, const int np) {
    __m512 fx[6], fy[6];
    __m512i x[6], y[6];
    for (int r = 0; r < 6; r++) {
        if (r >= rows) break;
        fx[r] = _mm512_setzero_ps();
        fy[r] = _mm512_setzero_ps();
    }
    const long gb = Q4_GROUP_HEADER + G * 8;
    for (long g = 0; g < K / G; g++) {
        const uint8_t *h0 = p + g * gb, *h1 = h0 + pnext;
        const __m512i nc0 = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_loadu_si512(h0 + 64));
        const __m512i nc1 = np == 2 ? _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_loadu_si512(h1 + 64)) : nc0;
        for (int r = 0; r < 6; r++) {
            if (r >= rows) break;
            x[r] = nc0;
            y[r] = nc1;
        }
        for (long k = g * G; k < (g + 1) * G; k += 4) {
            const __m512i b0 = _mm512_loadu_si512(u + k * 16);
            const __m512i b1 = np == 2 ? _mm512_loadu_si512(u + unext + k * 16) : b0;
            for (int r = 0; r < 6; r++) {
                if (r >= rows) break;
                int32_t av;
                memcpy(&av, a + r * K + k, 4);
                const __m512i ar = _mm512_set1_epi32(av);
                x[r] = _mm512_dpbusd_epi32(x[r], ar, b0);
                if (np == 2) y[r] = _mm512_dpbusd_epi32(y[r], ar, b1);
            }
        }
        const __m512 sc0 = _mm512_loadu_ps((const float *)h0);
        const __m512 sc1 = np == 2 ? _mm512_loadu_ps((const float *)h1) : sc0;
        for (int r = 0; r < 6; r++) {
            if (r >= rows) break;
            if (nb) {
                const __m512 sb = _mm512_set1_ps(s[r * nb + g]);
                fx[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(x[r]), _mm512_mul_ps(sc0, sb), fx[r]);
                if (np == 2) fy[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(y[r]), _mm512_mul_ps(sc1, sb), fy[r]);
            } else {
                fx[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(x[r]), sc0, fx[r]);
                if (np == 2) fy[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(y[r]), sc1, fy[r]);
            }
        }
    }
    const __m512 bi0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
    const __m512 bi1 = bias && np == 2 ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
    for (int r = 0; r < 6; r++) {
        if (r >= rows) break;
        if (nb) {
            _mm512_mask_storeu_ps(c + r * ldc, m0, _mm512_add_ps(fx[r], bi0));
            if (np == 2) _mm512_mask_storeu_ps(c + r * ldc + 16, m1, _mm512_add_ps(fy[r], bi1));
        } else {
            const __m512 sr = _mm512_set1_ps(s[r]);
            _mm512_mask_storeu_ps(c + r * ldc, m0, _mm512_fmadd_ps(fx[r], sr, bi0));
            if (np == 2) _mm512_mask_storeu_ps(c + r * ldc + 16, m1, _mm512_fmadd_ps(fy[r], sr, bi1));
        }
    }
}

#define Q4_CALL(R, NP) q4_kernel(K, G, a, p, pnext, u, unext, s, nb, bias, c, ldc, m0, m1, R, NP)
#define Q4_ROWS(NP)                                                                        \
    switch (rows) {                                                                        \
    case 6: Q4_CALL(6, NP); break; case 5: Q4_CALL(5, NP); break;                          \
    case 4: Q4_CALL(4, NP); break; case 3: Q4_CALL(3, NP); break;                          \
    case 2: Q4_CALL(2, NP); break; default: Q4_CALL(1, NP); break;                         \
    }

DK_AVX512_VNNI static void q4_tile(long K, long G, const uint8_t *a, const uint8_t *p, long pnext, const int8_t *u,
                              long unext, const float *s, long nb, const float *bias, float *c, long ldc, long rows, long cols) {
    const __mmask16 m0 = cols_mask(cols), m1 = cols > 16 ? cols_mask(cols - 16) : 0;
    if (cols > 16) { Q4_ROWS(2) } else { Q4_ROWS(1) }
}

DK_AVX512_VNNI static void q8b_quantize_rows(const float *A, long lda, long rows, long K, uint8_t *q, float *s);

DK_AVX512_VNNI void q4_gemm_avx512(long M, long N, long K, long G, const float *A, long lda, const void *packed,
                              const float *bias, float *C, long ldc, float actScale, int epilogue, void *workspace,
                              int blocks) {
    const long pb = dk_q4_panel_bytes(K, G), mrows = M < MC_Q ? M : MC_Q, nb = blocks ? K / Q8B : 0;
    float *s = workspace;
    uint8_t *qa = (uint8_t *)workspace + (blocks ? q_block_scales_bytes(M, K) : q_scales_bytes(M));
    int8_t *u = (int8_t *)(qa + mrows * K);   // two unpacked panels, K·16 bytes each
    for (long i0 = 0; i0 < M; i0 += MC_Q) {
        const long mc = M - i0 < MC_Q ? M - i0 : MC_Q;
        if (blocks) q8b_quantize_rows(A + i0 * lda, lda, mc, K, qa, s);
        else quantize_rows(A + i0 * lda, lda, mc, K, K, actScale, 1, qa, s);
        for (long j = 0; j < N; j += 32) {
            const long cols = N - j < 32 ? N - j : 32;
            const uint8_t *p = (const uint8_t *)packed + j / 16 * pb;
            q4_unpack_panel(p, K, G, u);
            if (cols > 16) q4_unpack_panel(p + pb, K, G, u + K * 16);
            for (long i = 0; i < mc; i += 6) {
                const long rows = mc - i < 6 ? mc - i : 6;
                q4_tile(K, G, qa + i * K, p, pb, u, K * 16, s + i * (nb ? nb : 1), nb, bias ? bias + j : NULL,
                        C + (i0 + i) * ldc + j, ldc, rows, cols);
            }
        }
        q_gelu_rows(C + i0 * ldc, ldc, mc, N, epilogue, 1);
    }
}

// ---------------------------------------------------------------- bf16

/// Rounds `rows` rows of A to bf16 (round to nearest even, as dk_f32_to_bf16), Kp per row.
DK_AVX512_VNNI static void bf16_rows(const float *A, long lda, long rows, long K, long Kp, uint16_t *dst) {
    const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7fff);
    const __m512i absmask = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000);
    for (long r = 0; r < rows; r++)
        for (long k = 0; k < Kp; k += 16) {
            const __mmask16 m = k + 16 <= K ? 0xFFFF : k < K ? cols_mask(K - k) : 0;
            const __m512i u = _mm512_castps_si512(_mm512_maskz_loadu_ps(m, A + r * lda + k));
            __m512i t = _mm512_add_epi32(u, _mm512_add_epi32(bias, _mm512_and_si512(_mm512_srli_epi32(u, 16), one)));
            const __mmask16 nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(u, absmask), inf);
            t = _mm512_mask_mov_epi32(t, nan, _mm512_or_si512(u, _mm512_set1_epi32(0x400000)));
            _mm256_mask_storeu_epi16(dst + r * Kp + k, cols_mask(Kp - k), _mm512_cvtepi32_epi16(_mm512_srli_epi32(t, 16)));
        }
}

DK_AVX512_BF16 DK_INLINE void bf16_kernel(long Kp, const uint16_t *a, const uint16_t *w, long pnext,
                                         const float *bias, float *c, long ldc, __mmask16 m0, __mmask16 m1,
                                         const int rows, const int np) {
    __m512 x[12], y[12];
    for (int r = 0; r < 12; r++) {
        if (r >= rows) break;
        x[r] = _mm512_setzero_ps();
        y[r] = _mm512_setzero_ps();
    }
    const uint16_t *w1 = w + pnext;
    for (long k = 0; k < Kp; k += 2) {
        const __m512bh b0 = (__m512bh)_mm512_loadu_si512(w + k * 16);
        const __m512bh b1 = np == 2 ? (__m512bh)_mm512_loadu_si512(w1 + k * 16) : b0;
        for (int r = 0; r < 12; r++) {
            if (r >= rows) break;
            int32_t av;
            memcpy(&av, a + r * Kp + k, 4);
            const __m512bh ar = (__m512bh)_mm512_set1_epi32(av);
            x[r] = _mm512_dpbf16_ps(x[r], ar, b0);
            if (np == 2) y[r] = _mm512_dpbf16_ps(y[r], ar, b1);
        }
    }
    const __m512 bi0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
    const __m512 bi1 = bias && np == 2 ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
    for (int r = 0; r < 12; r++) {
        if (r >= rows) break;
        _mm512_mask_storeu_ps(c + r * ldc, m0, _mm512_add_ps(x[r], bi0));
        if (np == 2) _mm512_mask_storeu_ps(c + r * ldc + 16, m1, _mm512_add_ps(y[r], bi1));
    }
}

#define BF_CALL(R, NP) bf16_kernel(Kp, a, w, pnext, bias, c, ldc, m0, m1, R, NP)
#define BF_ROWS(NP)                                                                        \
    switch (rows) {                                                                        \
    case 12: BF_CALL(12, NP); break; case 11: BF_CALL(11, NP); break;                      \
    case 10: BF_CALL(10, NP); break; case 9: BF_CALL(9, NP); break;                        \
    case 8: BF_CALL(8, NP); break; case 7: BF_CALL(7, NP); break;                          \
    case 6: BF_CALL(6, NP); break; case 5: BF_CALL(5, NP); break;                          \
    case 4: BF_CALL(4, NP); break; case 3: BF_CALL(3, NP); break;                          \
    case 2: BF_CALL(2, NP); break; default: BF_CALL(1, NP); break;                         \
    }

DK_AVX512_BF16 static void bf16_tile(long Kp, const uint16_t *a, const uint16_t *w, long pnext, const float *bias,
                                    float *c, long ldc, long rows, long cols) {
    const __mmask16 m0 = cols_mask(cols), m1 = cols > 16 ? cols_mask(cols - 16) : 0;
    if (cols > 16) { BF_ROWS(2) } else { BF_ROWS(1) }
}

DK_AVX512_BF16 void bf16_gemm_avx512(long M, long N, long K, const float *A, long lda, const void *packed,
                                    const float *bias, float *C, long ldc, int epilogue, void *workspace) {
    const long Kp = q_round2(K), pb = dk_bf16_panel_bytes(K);
    uint16_t *a = workspace;
    for (long i0 = 0; i0 < M; i0 += MC_Q) {
        const long mc = M - i0 < MC_Q ? M - i0 : MC_Q;
        bf16_rows(A + i0 * lda, lda, mc, K, Kp, a);
        for (long j = 0; j < N; j += 32) {
            const long cols = N - j < 32 ? N - j : 32;
            const uint16_t *w = (const uint16_t *)((const uint8_t *)packed + j / 16 * pb);
            for (long i = 0; i < mc; i += 12) {
                const long rows = mc - i < 12 ? mc - i : 12;
                bf16_tile(Kp, a + i * Kp, w, pb / 2, bias ? bias + j : NULL, C + (i0 + i) * ldc + j, ldc, rows, cols);
            }
        }
        q_gelu_rows(C + i0 * ldc, ldc, mc, N, epilogue, 1);
    }
}

// ---------------------------------------------------------------- int8, activation blocks of 32
// (dk_q8b, numerics in dk_quant.h.) Activations → u8 = q + 128 with one scale per 32 k; a
// 6 × 32 micro-kernel (as int4's) keeps 12 int32 block sums, each started at −corr of the
// block, and 12 float accumulators: acc = fmadd(cvt(sum), s_block, acc), then
// fmadd(acc, wScale, bias) — the `_ref` operations lane for lane.

/// `rows` rows of A → u8 (q + 128), K bytes per row; scales s[r·(K/32) + b].
DK_AVX512_VNNI static void q8b_quantize_rows(const float *A, long lda, long rows, long K, uint8_t *q, float *s) {
    const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    const __m512i off = _mm512_set1_epi32(128);
    const long nb = K / Q8B;
    for (long r = 0; r < rows; r++)
        for (long b = 0; b < nb; b++) {
            const float *x = A + r * lda + b * Q8B;
            const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
            const float sc = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1))) / 127.0f;
            const __m512 inv = _mm512_set1_ps(sc > 0 ? 1.0f / sc : 0.0f);
            const __m512 t0 = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(v0, inv), lo), hi);   // NaN → -127
            const __m512 t1 = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(v1, inv), lo), hi);
            uint8_t *qr = q + r * K + b * Q8B;
            _mm_storeu_si128((__m128i *)qr, _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(t0), off)));
            _mm_storeu_si128((__m128i *)(qr + 16), _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(t1), off)));
            s[r * nb + b] = sc;
        }
}

DK_AVX512_VNNI DK_INLINE void q8b_kernel(long K, const uint8_t *a, const uint8_t *p, long pnext, const float *s,
                                    const float *wScale, const float *bias, float *c, long ldc,
                                    __mmask16 m0, __mmask16 m1, const int rows, const int np) {
    __m512 fx[6], fy[6];
    __m512i x[6], y[6];
    for (int r = 0; r < 6; r++) {
        if (r >= rows) break;
        fx[r] = _mm512_setzero_ps();
        fy[r] = _mm512_setzero_ps();
    }
    const long nb = K / Q8B;
    for (long b = 0; b < nb; b++) {
        const uint8_t *h0 = p + b * Q8B_BLOCK_BYTES, *h1 = h0 + pnext;
        const __m512i nc0 = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_loadu_si512(h0));
        const __m512i nc1 = np == 2 ? _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_loadu_si512(h1)) : nc0;
        for (int r = 0; r < 6; r++) {
            if (r >= rows) break;
            x[r] = nc0;
            y[r] = nc1;
        }
        for (long kk = 0; kk < Q8B; kk += 4) {
            const __m512i b0 = _mm512_loadu_si512(h0 + 64 + kk * 16);
            const __m512i b1 = np == 2 ? _mm512_loadu_si512(h1 + 64 + kk * 16) : b0;
            for (int r = 0; r < 6; r++) {
                if (r >= rows) break;
                int32_t av;
                memcpy(&av, a + r * K + b * Q8B + kk, 4);
                const __m512i ar = _mm512_set1_epi32(av);
                x[r] = _mm512_dpbusd_epi32(x[r], ar, b0);
                if (np == 2) y[r] = _mm512_dpbusd_epi32(y[r], ar, b1);
            }
        }
        for (int r = 0; r < 6; r++) {
            if (r >= rows) break;
            const __m512 sb = _mm512_set1_ps(s[r * nb + b]);
            fx[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(x[r]), sb, fx[r]);
            if (np == 2) fy[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(y[r]), sb, fy[r]);
        }
    }
    const __m512 ws0 = _mm512_maskz_loadu_ps(m0, wScale), ws1 = np == 2 ? _mm512_maskz_loadu_ps(m1, wScale + 16) : ws0;
    const __m512 bi0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
    const __m512 bi1 = bias && np == 2 ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
    for (int r = 0; r < 6; r++) {
        if (r >= rows) break;
        _mm512_mask_storeu_ps(c + r * ldc, m0, _mm512_fmadd_ps(fx[r], ws0, bi0));
        if (np == 2) _mm512_mask_storeu_ps(c + r * ldc + 16, m1, _mm512_fmadd_ps(fy[r], ws1, bi1));
    }
}

#define Q8B_CALL(R, NP) q8b_kernel(K, a, p, pnext, s, wScale, bias, c, ldc, m0, m1, R, NP)
#define Q8B_ROWS(NP)                                                                       \
    switch (rows) {                                                                        \
    case 6: Q8B_CALL(6, NP); break; case 5: Q8B_CALL(5, NP); break;                        \
    case 4: Q8B_CALL(4, NP); break; case 3: Q8B_CALL(3, NP); break;                        \
    case 2: Q8B_CALL(2, NP); break; default: Q8B_CALL(1, NP); break;                       \
    }

DK_AVX512_VNNI static void q8b_tile(long K, const uint8_t *a, const uint8_t *p, long pnext, const float *s,
                               const float *wScale, const float *bias, float *c, long ldc, long rows, long cols) {
    const __mmask16 m0 = cols_mask(cols), m1 = cols > 16 ? cols_mask(cols - 16) : 0;
    if (cols > 16) { Q8B_ROWS(2) } else { Q8B_ROWS(1) }
}

DK_AVX512_VNNI void q8b_gemm_avx512(long M, long N, long K, const float *A, long lda, const void *packed,
                               const float *wScale, const float *bias, float *C, long ldc, int epilogue, void *workspace) {
    const long pb = dk_q8b_panel_bytes(K), nb = K / Q8B, mrows = M < MC_Q ? M : MC_Q;
    float *s = workspace;
    uint8_t *qa = (uint8_t *)workspace + (mrows * nb * 4 + 63) / 64 * 64;
    for (long i0 = 0; i0 < M; i0 += MC_Q) {
        const long mc = M - i0 < MC_Q ? M - i0 : MC_Q;
        q8b_quantize_rows(A + i0 * lda, lda, mc, K, qa, s);
        for (long j = 0; j < N; j += 32) {
            const long cols = N - j < 32 ? N - j : 32;
            const uint8_t *p = (const uint8_t *)packed + j / 16 * pb;
            for (long i = 0; i < mc; i += 6) {
                const long rows = mc - i < 6 ? mc - i : 6;
                q8b_tile(K, qa + i * K, p, pb, s + i * nb, wScale + j, bias ? bias + j : NULL,
                         C + (i0 + i) * ldc + j, ldc, rows, cols);
            }
        }
        q_gelu_rows(C + i0 * ldc, ldc, mc, N, epilogue, 1);
    }
}
