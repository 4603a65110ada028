// AVX2 builds of the quantized GEMMs (for x86-64 without AVX-512 VNNI); layouts and
// numerics in quant.c and include/dk_quant.h.
//
// int8: activations quantized MC_Q rows at a time as plain int8 (no offset). AVX2 has no
// dot-product of bytes into int32, so the product of a 4-byte group is vpmaddubsw (u8 ×
// s8 → pairs summed to int16) then vpmaddwd with ones (→ int32): vpmaddubsw needs an
// unsigned operand, so it gets |q_a| and the weight with q_a's sign (vpsignb) — exact,
// since |q_a|·|q_w| ≤ 127·127 and a pair sum ≤ 32258 fits int16 (this is why neither
// side is ever -128). Micro-kernel 4 rows × 16 columns (8 ymm int32 accumulators).
// int4: as the AVX-512 build, the panel unpacked once per (M block, panel) into int8
// panel layout; a 4 rows × 8 columns micro-kernel keeps int32 group sums and float
// accumulators (16 ymm registers allow no more). bf16: bf16 → fp32 by shifts (a dword of
// the packed panel holds k and k + 1 of one column), a 4 × 16 FMA micro-kernel summing
// in k order, so it equals the `_ref` twin bit for bit. Column tails use masked loads
// and stores (vmaskmov).
#include "dk_quant.h"
#include "quant_internal.h"
#include <string.h>

#include "dk_target.h"

/// Lane mask of the first `cols` (0..8) of 8 lanes.
DK_AVX2 static inline __m256i lane_mask(long cols) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(cols < 0 ? 0 : cols > 8 ? 8 : cols)), idx);
}

/// Quantizes `rows` rows of A to int8 q (Kp bytes per row, zero past K) and scales s.
DK_AVX2 static void quantize_rows(const float *A, long lda, long rows, long K, long Kp, float fixedScale,
                                  int8_t *q, float *s) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (long r = 0; r < rows; r++) {
        const float *x = A + r * lda;
        float sc = fixedScale;
        if (!(sc > 0)) {
            __m256 m = _mm256_setzero_ps();
            long k = 0;
            for (; k + 8 <= K; k += 8) m = _mm256_max_ps(m, _mm256_and_ps(_mm256_loadu_ps(x + k), absmask));
            float lanes[8], mx = 0;
            _mm256_storeu_ps(lanes, m);
            for (int l = 0; l < 8; l++) mx = lanes[l] > mx ? lanes[l] : mx;
            for (; k < K; k++) { float v = x[k] < 0 ? -x[k] : x[k]; mx = v > mx ? v : mx; }
            sc = mx / 127.0f;
        }
        const __m256 inv = _mm256_set1_ps(sc > 0 ? 1.0f / sc : 0.0f);
        const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
        int8_t *qr = q + r * Kp;
        for (long k = 0; k < Kp; k += 8) {
            const __m256i m = lane_mask(K - k);
            __m256 v = _mm256_mul_ps(_mm256_maskload_ps(x + k, m), inv);
            v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);   // NaN → -127, as the reference
            __m256i i = _mm256_cvtps_epi32(v);
            __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
            w = _mm_packs_epi16(w, w);
            int8_t tmp[16];
            _mm_storeu_si128((__m128i *)tmp, w);
            memcpy(qr + k, tmp, (size_t)(Kp - k < 8 ? Kp - k : 8));
        }
        s[r] = sc;
    }
}

/// acc += the int32 dot products of 4-byte groups: a (4 signed bytes broadcast) · b.
DK_AVX2 static inline __m256i dot4(__m256i acc, __m256i a, __m256i b, __m256i ones) {
    const __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(a), _mm256_sign_epi8(b, a));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, ones));
}

// ---------------------------------------------------------------- int8

DK_AVX2 DK_INLINE void q8_kernel(long Kp, const int8_t *a, const int8_t *w, const float *s, const float *wScale,
                                 const float *bias, float *c, long ldc, long cols, const int rows) {
    __m256i x[4], y[4];
    const __m256i ones = _mm256_set1_epi16(1);
    for (int r = 0; r < rows; r++) x[r] = y[r] = _mm256_setzero_si256();
    for (long k = 0; k < Kp; k += 4) {
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)(w + k * 16));
        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(w + k * 16 + 32));
        for (int r = 0; r < rows; r++) {
            int32_t av;
            memcpy(&av, a + r * Kp + k, 4);
            const __m256i ar = _mm256_set1_epi32(av);
            x[r] = dot4(x[r], ar, b0, ones);
            y[r] = dot4(y[r], ar, b1, ones);
        }
    }
    const __m256i m0 = lane_mask(cols), m1 = lane_mask(cols - 8);
    const __m256 ws0 = _mm256_maskload_ps(wScale, m0), ws1 = _mm256_maskload_ps(wScale + 8, m1);
    const __m256 bi0 = bias ? _mm256_maskload_ps(bias, m0) : _mm256_setzero_ps();
    const __m256 bi1 = bias ? _mm256_maskload_ps(bias + 8, m1) : _mm256_setzero_ps();
    for (int r = 0; r < rows; r++) {
        const __m256 sr = _mm256_set1_ps(s[r]);
        _mm256_maskstore_ps(c + r * ldc, m0, _mm256_fmadd_ps(_mm256_cvtepi32_ps(x[r]), _mm256_mul_ps(sr, ws0), bi0));
        _mm256_maskstore_ps(c + r * ldc + 8, m1, _mm256_fmadd_ps(_mm256_cvtepi32_ps(y[r]), _mm256_mul_ps(sr, ws1), bi1));
    }
}

DK_AVX2 void q8_gemm_avx2(long M, long N, long K, const float *A, long lda, const void *packed,
                  const float *wScale, const float *bias, float *C, long ldc, float actScale,
                  int epilogue, void *workspace) {
    const long Kp = q_round4(K), pb = dk_q8_panel_bytes(K);
    float *s = workspace;
    int8_t *qa = (int8_t *)workspace + q_scales_bytes(M);
    for (long i0 = 0; i0 < M; i0 += MC_Q) {
        const long mc = M - i0 < MC_Q ? M - i0 : MC_Q;
        quantize_rows(A + i0 * lda, lda, mc, K, Kp, actScale, qa, s);
        for (long j = 0; j < N; j += 16) {
            const long cols = N - j < 16 ? N - j : 16;
            const int8_t *w = (const int8_t *)packed + j / 16 * pb + 64;
            for (long i = 0; i < mc; i += 4) {
                const long rows = mc - i < 4 ? mc - i : 4;
                const int8_t *a = qa + i * Kp;
                float *c = C + (i0 + i) * ldc + j;
                const float *bj = bias ? bias + j : NULL;
                switch (rows) {
                case 4: q8_kernel(Kp, a, w, s + i, wScale + j, bj, c, ldc, cols, 4); break;
                case 3: q8_kernel(Kp, a, w, s + i, wScale + j, bj, c, ldc, cols, 3); break;
                case 2: q8_kernel(Kp, a, w, s + i, wScale + j, bj, c, ldc, cols, 2); break;
                default: q8_kernel(Kp, a, w, s + i, wScale + j, bj, c, ldc, cols, 1); break;
                }
            }
        }
        q_gelu_rows(C + i0 * ldc, ldc, mc, N, epilogue, 1);
    }
}

// ---------------------------------------------------------------- int4

/// Unpacks one int4 panel (K/G groups) into int8 panel layout [K/4][16][4] (q − zero).
DK_AVX2 static void q4_unpack_panel(const uint8_t *p, long K, long G, int8_t *dst) {
    const __m256i low = _mm256_set1_epi8(15);
    for (long g = 0; g < K / G; g++) {
        const uint8_t *blk = p + g * (Q4_GROUP_HEADER + G * 8);
        for (long c = 0; c < G / 8; c++)
            for (int h = 0; h < 2; h++) {
                const __m256i z = _mm256_loadu_si256((const __m256i *)(blk + 128 + 32 * h));
                const __m256i v = _mm256_loadu_si256((const __m256i *)(blk + Q4_GROUP_HEADER + c * 64 + 32 * h));
                int8_t *d = dst + (g * G / 4 + 2 * c) * 64 + 32 * h;
                _mm256_storeu_si256((__m256i *)d, _mm256_sub_epi8(_mm256_and_si256(v, low), z));
                _mm256_storeu_si256((__m256i *)(d + 64),
                                    _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(v, 4), low), z));
            }
    }
}

/// c[rows ≤ 4, 8 columns of half h of the panel]: per group int32 sums, float accumulators.
/// nb == 0: one activation scale per row (s[r], at the end); nb > 0 (dk_q4b, G = 32):
/// s[r·nb + g] per group, multiplied into the group scale.
DK_AVX2 DK_INLINE void q4_kernel(long K, long G, const int8_t *a, const uint8_t *p, const int8_t *u, int h,
                                 const float *s, long nb, const float *bias, float *c, long ldc, long cols, const int rows) {
    __m256 f[4];
    __m256i x[4];
    const __m256i ones = _mm256_set1_epi16(1);
    for (int r = 0; r < rows; r++) f[r] = _mm256_setzero_ps();
    const long gb = Q4_GROUP_HEADER + G * 8;
    for (long g = 0; g < K / G; g++) {
        for (int r = 0; r < rows; r++) x[r] = _mm256_setzero_si256();
        for (long k = g * G; k < (g + 1) * G; k += 4) {
            const __m256i b = _mm256_loadu_si256((const __m256i *)(u + k * 16 + 32 * h));
            for (int r = 0; r < rows; r++) {
                int32_t av;
                memcpy(&av, a + r * K + k, 4);
                x[r] = dot4(x[r], _mm256_set1_epi32(av), b, ones);
            }
        }
        const __m256 sc = _mm256_loadu_ps((const float *)(p + g * gb) + 8 * h);
        for (int r = 0; r < rows; r++)
            f[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(x[r]), nb ? _mm256_mul_ps(sc, _mm256_set1_ps(s[r * nb + g])) : sc, f[r]);
    }
    const __m256i m = lane_mask(cols);
    const __m256 bi = bias ? _mm256_maskload_ps(bias, m) : _mm256_setzero_ps();
    for (int r = 0; r < rows; r++)
        _mm256_maskstore_ps(c + r * ldc, m, nb ? _mm256_add_ps(f[r], bi) : _mm256_fmadd_ps(f[r], _mm256_set1_ps(s[r]), bi));
}

DK_AVX2 static void q8b_quantize_rows(const float *A, long lda, long rows, long K, int8_t *q, float *s);

DK_AVX2 void q4_gemm_avx2(long M, long N, long K, long G, const float *A, long lda, const void *packed,
                  const float *bias, float *C, long ldc, float actScale, int epilogue, void *workspace, int blocks) {
    const long pb = dk_q4_panel_bytes(K, G), mrows = M < MC_Q ? M : MC_Q, nb = blocks ? K / Q8B : 0;
    float *s = workspace;
    int8_t *qa = (int8_t *)workspace + (blocks ? q_block_scales_bytes(M, K) : q_scales_bytes(M));
    int8_t *u = qa + mrows * K;
    for (long i0 = 0; i0 < M; i0 += MC_Q) {
        const long mc = M - i0 < MC_Q ? M - i0 : MC_Q;
        if (blocks) q8b_quantize_rows(A + i0 * lda, lda, mc, K, qa, s);
        else quantize_rows(A + i0 * lda, lda, mc, K, K, actScale, qa, s);
        for (long j = 0; j < N; j += 16) {
            const uint8_t *p = (const uint8_t *)packed + j / 16 * pb;
            q4_unpack_panel(p, K, G, u);
            for (int h = 0; h < 2 && j + 8 * h < N; h++) {
                const long cols = N - j - 8 * h < 8 ? N - j - 8 * h : 8;
                const float *bj = bias ? bias + j + 8 * h : NULL;
                for (long i = 0; i < mc; i += 4) {
                    const long rows = mc - i < 4 ? mc - i : 4;
                    const int8_t *a = qa + i * K;
                    float *c = C + (i0 + i) * ldc + j + 8 * h;
                    switch (rows) {
                    case 4: q4_kernel(K, G, a, p, u, h, s + i * (nb ? nb : 1), nb, bj, c, ldc, cols, 4); break;
                    case 3: q4_kernel(K, G, a, p, u, h, s + i * (nb ? nb : 1), nb, bj, c, ldc, cols, 3); break;
                    case 2: q4_kernel(K, G, a, p, u, h, s + i * (nb ? nb : 1), nb, bj, c, ldc, cols, 2); break;
                    default: q4_kernel(K, G, a, p, u, h, s + i * (nb ? nb : 1), nb, bj, c, ldc, cols, 1); break;
                    }
                }
            }
        }
        q_gelu_rows(C + i0 * ldc, ldc, mc, N, epilogue, 1);
    }
}

// ---------------------------------------------------------------- bf16

DK_AVX2 DK_INLINE void bf16_kernel(long Kp, const uint16_t *a, const uint16_t *w, const float *bias,
                                   float *c, long ldc, long cols, const int rows) {
    __m256 x[4], y[4];
    for (int r = 0; r < rows; r++) x[r] = y[r] = _mm256_setzero_ps();
    const __m256i hi = _mm256_set1_epi32((int)0xffff0000u);
    for (long k = 0; k < Kp; k += 2) {
        // A dword of the panel: low half bf16 of k, high half bf16 of k + 1, per column.
        const __m256i v0 = _mm256_loadu_si256((const __m256i *)(w + k * 16));
        const __m256i v1 = _mm256_loadu_si256((const __m256i *)(w + k * 16 + 16));
        const __m256 e0 = _mm256_castsi256_ps(_mm256_slli_epi32(v0, 16)), o0 = _mm256_castsi256_ps(_mm256_and_si256(v0, hi));
        const __m256 e1 = _mm256_castsi256_ps(_mm256_slli_epi32(v1, 16)), o1 = _mm256_castsi256_ps(_mm256_and_si256(v1, hi));
        for (int r = 0; r < rows; r++) {
            uint32_t ak = (uint32_t)a[r * Kp + k] << 16, ak1 = (uint32_t)a[r * Kp + k + 1] << 16;
            float fa, fb;
            memcpy(&fa, &ak, 4);
            memcpy(&fb, &ak1, 4);
            const __m256 a0 = _mm256_set1_ps(fa), a1 = _mm256_set1_ps(fb);
            x[r] = _mm256_fmadd_ps(a0, e0, x[r]);
            y[r] = _mm256_fmadd_ps(a0, e1, y[r]);
            x[r] = _mm256_fmadd_ps(a1, o0, x[r]);
            y[r] = _mm256_fmadd_ps(a1, o1, y[r]);
        }
    }
    const __m256i m0 = lane_mask(cols), m1 = lane_mask(cols - 8);
    const __m256 bi0 = bias ? _mm256_maskload_ps(bias, m0) : _mm256_setzero_ps();
    const __m256 bi1 = bias ? _mm256_maskload_ps(bias + 8, m1) : _mm256_setzero_ps();
    for (int r = 0; r < rows; r++) {
        _mm256_maskstore_ps(c + r * ldc, m0, bias ? _mm256_add_ps(x[r], bi0) : x[r]);
        _mm256_maskstore_ps(c + r * ldc + 8, m1, bias ? _mm256_add_ps(y[r], bi1) : y[r]);
    }
}

DK_AVX2 void bf16_gemm_avx2(long M, long N, long K, const float *A, long lda, const void *packed,
                    const float *bias, float *C, long ldc, int epilogue, void *workspace) {
    const long Kp = q_round2(K), pb = dk_bf16_panel_bytes(K);
    uint16_t *a = workspace;
    for (long i0 = 0; i0 < M; i0 += MC_Q) {
        const long mc = M - i0 < MC_Q ? M - i0 : MC_Q;
        for (long r = 0; r < mc; r++) bf16_round_row(A + (i0 + r) * lda, K, Kp, a + r * Kp);
        for (long j = 0; j < N; j += 16) {
            const long cols = N - j < 16 ? N - j : 16;
            const uint16_t *w = (const uint16_t *)((const uint8_t *)packed + j / 16 * pb);
            for (long i = 0; i < mc; i += 4) {
                const long rows = mc - i < 4 ? mc - i : 4;
                const uint16_t *ai = a + i * Kp;
                float *c = C + (i0 + i) * ldc + j;
                const float *bj = bias ? bias + j : NULL;
                switch (rows) {
                case 4: bf16_kernel(Kp, ai, w, bj, c, ldc, cols, 4); break;
                case 3: bf16_kernel(Kp, ai, w, bj, c, ldc, cols, 3); break;
                case 2: bf16_kernel(Kp, ai, w, bj, c, ldc, cols, 2); break;
                default: bf16_kernel(Kp, ai, w, bj, c, ldc, cols, 1); break;
                }
            }
        }
        q_gelu_rows(C + i0 * ldc, ldc, mc, N, epilogue, 1);
    }
}

// ---------------------------------------------------------------- int8, activation blocks of 32
// (dk_q8b, numerics in dk_quant.h.) Activations plain int8 with one scale per 32 k; a
// 4 rows × 8 columns micro-kernel (half a panel) keeps int32 block sums (dot4) and float
// accumulators: acc = fmadd(cvt(sum), s_block, acc), then fmadd(acc, wScale, bias).

/// `rows` rows of A → int8, K bytes per row; scales s[r·(K/32) + b].
DK_AVX2 static void q8b_quantize_rows(const float *A, long lda, long rows, long K, int8_t *q, float *s) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    const long nb = K / Q8B;
    for (long r = 0; r < rows; r++)
        for (long b = 0; b < nb; b++) {
            const float *x = A + r * lda + b * Q8B;
            __m256 v[4], m = _mm256_setzero_ps();
            for (int t = 0; t < 4; t++) {
                v[t] = _mm256_loadu_ps(x + 8 * t);
                m = _mm256_max_ps(m, _mm256_and_ps(v[t], absmask));
            }
            float lanes[8], mx = 0;
            _mm256_storeu_ps(lanes, m);
            for (int l = 0; l < 8; l++) mx = lanes[l] > mx ? lanes[l] : mx;
            const float sc = mx / 127.0f;
            const __m256 inv = _mm256_set1_ps(sc > 0 ? 1.0f / sc : 0.0f);
            __m256i i[4];
            for (int t = 0; t < 4; t++) i[t] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(v[t], inv), lo), hi));
            // packs interleave 128-bit lanes: [0a 1a 0b 1b], [2a 3a 2b 3b] → bytes permuted back.
            const __m256i w01 = _mm256_packs_epi32(i[0], i[1]), w23 = _mm256_packs_epi32(i[2], i[3]);
            const __m256i bytes = _mm256_packs_epi16(w01, w23);
            const __m256i ordered = _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256((__m256i *)(q + r * K + b * Q8B), ordered);
            s[r * nb + b] = sc;
        }
}

DK_AVX2 DK_INLINE void q8b_kernel(long K, const int8_t *a, const uint8_t *p, const float *s, const float *wScale,
                                  const float *bias, float *c, long ldc, long cols, const int rows) {
    __m256 f[4];
    __m256i x[4];
    const __m256i ones = _mm256_set1_epi16(1);
    const long nb = K / Q8B;
    for (int r = 0; r < rows; r++) f[r] = _mm256_setzero_ps();
    for (long b = 0; b < nb; b++) {
        const int8_t *w = (const int8_t *)(p + b * Q8B_BLOCK_BYTES + 64);
        for (int r = 0; r < rows; r++) x[r] = _mm256_setzero_si256();
        for (long kk = 0; kk < Q8B; kk += 4) {
            const __m256i b0 = _mm256_loadu_si256((const __m256i *)(w + kk * 16));
            for (int r = 0; r < rows; r++) {
                int32_t av;
                memcpy(&av, a + r * K + b * Q8B + kk, 4);
                x[r] = dot4(x[r], _mm256_set1_epi32(av), b0, ones);
            }
        }
        for (int r = 0; r < rows; r++) f[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(x[r]), _mm256_set1_ps(s[r * nb + b]), f[r]);
    }
    const __m256i m = lane_mask(cols);
    const __m256 ws = _mm256_maskload_ps(wScale, m);
    const __m256 bi = bias ? _mm256_maskload_ps(bias, m) : _mm256_setzero_ps();
    for (int r = 0; r < rows; r++) _mm256_maskstore_ps(c + r * ldc, m, _mm256_fmadd_ps(f[r], ws, bi));
}

DK_AVX2 void q8b_gemm_avx2(long M, long N, long K, const float *A, long lda, const void *packed,
                           const float *wScale, const float *bias, float *C, long ldc, int epilogue, void *workspace) {
    const long pb = dk_q8b_panel_bytes(K), nb = K / Q8B, mrows = M < MC_Q ? M : MC_Q;
    float *s = workspace;
    int8_t *qa = (int8_t *)workspace + (mrows * nb * 4 + 63) / 64 * 64;
    for (long i0 = 0; i0 < M; i0 += MC_Q) {
        const long mc = M - i0 < MC_Q ? M - i0 : MC_Q;
        q8b_quantize_rows(A + i0 * lda, lda, mc, K, qa, s);
        for (long j = 0; j < N; j += 8) {
            const long cols = N - j < 8 ? N - j : 8;
            // Columns j..j+7 are half (j/8)%2 of panel j/16: 32 bytes into each 64-byte k4 row.
            const uint8_t *p = (const uint8_t *)packed + j / 16 * pb + (j / 8 % 2) * 32;
            for (long i = 0; i < mc; i += 4) {
                const long rows = mc - i < 4 ? mc - i : 4;
                const int8_t *a = qa + i * K;
                float *c = C + (i0 + i) * ldc + j;
                const float *bj = bias ? bias + j : NULL;
                switch (rows) {
                case 4: q8b_kernel(K, a, p, s + i * nb, wScale + j, bj, c, ldc, cols, 4); break;
                case 3: q8b_kernel(K, a, p, s + i * nb, wScale + j, bj, c, ldc, cols, 3); break;
                case 2: q8b_kernel(K, a, p, s + i * nb, wScale + j, bj, c, ldc, cols, 2); break;
                default: q8b_kernel(K, a, p, s + i * nb, wScale + j, bj, c, ldc, cols, 1); break;
                }
            }
        }
        q_gelu_rows(C + i0 * ldc, ldc, mc, N, epilogue, 1);
    }
}
