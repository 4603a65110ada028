// The AVX-512 build of the packed-weight SGEMM of gemm.c (see include/dk_gemm.h).
//
// Same packed formats, blocking and sums as the AVX2 build, so results are bit for bit
// those of the AVX2 path (and independent of the caller's split): the weight's 16-column
// panels are taken two at a time as one 32-column tile and A 12 rows at a time, so the
// micro-kernel is 12×32 with 24 zmm accumulators (per k: 2 loads of W, 12 embedded
// broadcasts of A, 24 FMAs). A is not packed: each element is broadcast straight from its
// row (12 rows `lda` apart, each read sequentially; the ≤ 144-row block stays in L2 while
// every 32-column tile meets it, as the packed one did), which saves the packing pass the AVX2 build needs for its
// 6-row panels (3.4% of a batch-1 MiniLM forward in
// the last profile). Aᵀ (training) is still packed by
// gemm.c's routine into 6-row panels, taken two at a time. An optional GELU (gelu16 of
// dk_math.h, as dk_bias_gelu's AVX-512 build) is applied in the last K block's store. Per K
// block every C element is a float FMA chain over k from zero, then added to C (or to the
// bias, or stored), exactly as in gemm.c. Column tails use masked loads and stores of C
// (the packed W is zero past N), row tails compile-time row counts 1..12. Loops, outermost
// first: M blocks of MC_MAX rows, K blocks (gemm.c's dk_gemm_k_block), Aᵀ packed once per
// block, 32-column tiles (their W slice stays near while every row panel meets it), 12-row
// panels.
#include "dk_gemm.h"
#include "gemm_internal.h"

#include "dk_target.h"
#define NR DK_GEMM_PANEL
#define MR 12
#define MC_MAX DK_GEMM_M_BLOCK   // as gemm.c (the workspace size is shared)

#include "dk_math.h"   // gelu16 for the fused epilogue

/// c[rows, 16·np] (+)= a · b over kc, then GELU when `gelu`. A is read in one of two forms
/// (`direct`, a compile-time constant after inlining): packed, a0/a1 the top (≤ 6 rows) and
/// bottom 6-row panels of gemm.c's packing; or direct, a0 the first row of A itself (rows
/// `lda` apart, k contiguous) — each element is broadcast straight from memory either way,
/// so both forms run the same FMA chains. b: the first W panel's K-block slice, `bnext`
/// floats to the second panel's.
DK_AVX512 DK_INLINE void kernel(long kc, const float *a0, const float *a1, long lda, const float *b, long bnext,
                                float *c, long ldc, int load_c, const float *bias, int gelu,
                                __mmask16 m0, __mmask16 m1, const int rows, const int np, const int direct) {
    const int s0 = rows < 6 ? rows : 6, s1 = rows - 6;
    __m512 x[MR], y[MR];
    for (int r = 0; r < MR; r++) {
        if (r >= rows) break;
        x[r] = _mm512_setzero_ps();
        y[r] = _mm512_setzero_ps();
    }
    for (long k = 0; k < kc; k++) {
        const __m512 b0 = _mm512_loadu_ps(b + k * NR);
        const __m512 b1 = np == 2 ? _mm512_loadu_ps(b + bnext + k * NR) : b0;
        for (int r = 0; r < MR; r++) {
            if (r >= rows) break;
            const float av = direct ? a0[r * lda + k] : r < 6 ? a0[k * s0 + r] : a1[k * s1 + r - 6];
            const __m512 ar = _mm512_set1_ps(av);
            x[r] = _mm512_fmadd_ps(ar, b0, x[r]);
            if (np == 2) y[r] = _mm512_fmadd_ps(ar, b1, y[r]);
        }
    }
    for (int r = 0; r < MR; r++) {
        if (r >= rows) break;
        float *cr = c + r * ldc;
        if (load_c) {
            x[r] = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, cr), x[r]);
            if (np == 2) y[r] = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, cr + NR), y[r]);
        } else if (bias) {
            x[r] = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, bias), x[r]);
            if (np == 2) y[r] = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, bias + NR), y[r]);
        }
        if (gelu) {
            x[r] = gelu16(x[r]);
            if (np == 2) y[r] = gelu16(y[r]);
        }
        _mm512_mask_storeu_ps(cr, m0, x[r]);
        if (np == 2) _mm512_mask_storeu_ps(cr + NR, m1, y[r]);
    }
}

#define DK_ROWS(np, direct)                                                                            \
    switch (rows) {                                                                              \
    case 12: kernel(kc, a0, a1, lda, b, bnext, c, ldc, load_c, bias, gelu, m0, m1, 12, np, direct); break;          \
    case 11: kernel(kc, a0, a1, lda, b, bnext, c, ldc, load_c, bias, gelu, m0, m1, 11, np, direct); break;          \
    case 10: kernel(kc, a0, a1, lda, b, bnext, c, ldc, load_c, bias, gelu, m0, m1, 10, np, direct); break;          \
    case 9: kernel(kc, a0, a1, lda, b, bnext, c, ldc, load_c, bias, gelu, m0, m1, 9, np, direct); break;            \
    case 8: kernel(kc, a0, a1, lda, b, bnext, c, ldc, load_c, bias, gelu, m0, m1, 8, np, direct); break;            \
    case 7: kernel(kc, a0, a1, lda, b, bnext, c, ldc, load_c, bias, gelu, m0, m1, 7, np, direct); break;            \
    case 6: kernel(kc, a0, a1, lda, b, bnext, c, ldc, load_c, bias, gelu, m0, m1, 6, np, direct); break;            \
    case 5: kernel(kc, a0, a1, lda, b, bnext, c, ldc, load_c, bias, gelu, m0, m1, 5, np, direct); break;            \
    case 4: kernel(kc, a0, a1, lda, b, bnext, c, ldc, load_c, bias, gelu, m0, m1, 4, np, direct); break;            \
    case 3: kernel(kc, a0, a1, lda, b, bnext, c, ldc, load_c, bias, gelu, m0, m1, 3, np, direct); break;            \
    case 2: kernel(kc, a0, a1, lda, b, bnext, c, ldc, load_c, bias, gelu, m0, m1, 2, np, direct); break;            \
    default: kernel(kc, a0, a1, lda, b, bnext, c, ldc, load_c, bias, gelu, m0, m1, 1, np, direct); break;           \
    }

DK_AVX512 static void tile(long kc, const float *a0, const float *a1, long lda, const float *b, long bnext,
                           float *c, long ldc, int load_c, const float *bias, int gelu, long rows, long cols, int direct) {
    const __mmask16 m0 = cols >= NR ? 0xFFFF : (__mmask16)((1u << cols) - 1);
    const __mmask16 m1 = cols >= 2 * NR ? 0xFFFF : cols > NR ? (__mmask16)((1u << (cols - NR)) - 1) : 0;
    if (direct) {
        if (cols > NR) { DK_ROWS(2, 1) } else { DK_ROWS(1, 1) }
    } else {
        if (cols > NR) { DK_ROWS(2, 0) } else { DK_ROWS(1, 0) }
    }
}

DK_AVX512 void dk_gemm_avx512(long M, long N, long K, const float *A, long lda, int transA,
                              const float *packed, const float *bias, float *C, long ldc, int accumulate,
                              int gelu, float *ws) {
    const long kcb = dk_gemm_k_block(K);
    const int direct = !transA;   // Aᵀ is packed (its rows are k); A itself is read in place
    for (long i0 = 0; i0 < M; i0 += MC_MAX) {
        const long mc = M - i0 < MC_MAX ? M - i0 : MC_MAX;
        for (long k0 = 0; k0 < K; k0 += kcb) {
            const long kc = K - k0 < kcb ? K - k0 : kcb;
            const int load_c = accumulate || k0 > 0, act = gelu && k0 + kc == K;
            if (!direct)
                for (long i = 0; i < mc; i += 6) {
                    const long rows = mc - i < 6 ? mc - i : 6;
                    dk_gemm_pack_at_panel(A + k0 * lda + i0 + i, lda, rows, kc, ws + i * kc);
                }
            for (long j = 0; j < N; j += 2 * NR) {
                const long cols = N - j < 2 * NR ? N - j : 2 * NR;
                const float *b = packed + j * K + k0 * NR;
                for (long i = 0; i < mc; i += MR) {
                    const long rows = mc - i < MR ? mc - i : MR;
                    float *c = C + (i0 + i) * ldc + j;
                    const float *bj = bias ? bias + j : NULL;
                    if (direct)
                        tile(kc, A + (i0 + i) * lda + k0, NULL, lda, b, NR * K, c, ldc, load_c, bj, act, rows, cols, 1);
                    else
                        tile(kc, ws + i * kc, ws + (i + 6) * kc, 0, b, NR * K, c, ldc, load_c, bj, act, rows, cols, 0);
                }
            }
        }
    }
}

DK_AVX512 void dk_gemm_avx512_sliced(long M, long N, long K, const float *A, long lda, const dk_slice_source *src,
                                     const float *bias, float *C, long ldc, float *slices) {
    if (M <= 0 || N <= 0 || K <= 0) return;
    const long kcb = dk_gemm_k_block(K), room = (kcb + 8) * NR;
    for (long i0 = 0; i0 < M; i0 += MC_MAX) {
        const long mc = M - i0 < MC_MAX ? M - i0 : MC_MAX;
        for (long k0 = 0; k0 < K; k0 += kcb) {
            const long kc = K - k0 < kcb ? K - k0 : kcb;
            const int load_c = k0 > 0;
            for (long j = 0; j < N; j += 2 * NR) {
                const long cols = N - j < 2 * NR ? N - j : 2 * NR;
                // The two panels' K-block slices, filled once for every row panel of the block.
                const float *b = src->fill(src, j, k0, kc, slices);
                const long bnext = cols > NR ? src->fill(src, j + NR, k0, kc, slices + room) - b : 0;
                for (long i = 0; i < mc; i += MR) {
                    const long rows = mc - i < MR ? mc - i : MR;
                    tile(kc, A + (i0 + i) * lda + k0, NULL, lda, b, bnext, C + (i0 + i) * ldc + j, ldc, load_c,
                         bias ? bias + j : NULL, 0, rows, cols, 1);
                }
            }
        }
    }
}
