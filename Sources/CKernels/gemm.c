// Packed-weight SGEMM, C[M, N] = A[M, K] · Wᵀ (+ C), for the Linear layers of the encoder
// (see include/dk_gemm.h).
//
// Follows the BLIS/MLAS scheme for AVX2: the weight is packed once into 16-column
// micro-panels (k-major), A is packed per call into row micro-panels, and a 6×16
// micro-kernel keeps 12 ymm accumulators (6 broadcasts of A × 2 loads of W per k, 12
// FMAs, i.e. 6 cycles per k at Zen 3's two FMA pipes). Loops, outermost first: M blocks
// of at most MC_MAX rows; K blocks of at most KC_MAX (the packed A block, MC·KC·4 bytes,
// stays in L2, and the C block stays close while the K blocks add into it); 16-column
// panels (one panel's K-block slice, KC·64 bytes, stays in L1 while it meets every row
// panel; the next slice is prefetched meanwhile); row panels. Tails are exact: row tails
// use 1..5-row instantiations of the same kernel, column tails go through a 6×16 buffer,
// so nothing is read or written out of bounds. Every C element is the same operations
// whatever the row panel or split: per K block a float FMA chain over k from zero, then
// added to C (or stored, for the first block without accumulate). Training adds a
// transposed A (`dk_gemm_packed_at`: A given as Aᵀ [K, M], packed by contiguous 6-float
// copies), packing from a strided or a transposed source (`dk_pack_weight_ld`,
// `dk_pack_weight_transposed`), and `dk_gemm`, a BLAS-like op(A)·op(B) that packs op(B)
// into a per-thread buffer. The AVX-512 build (gemm_avx512.c) reuses this blocking with a
// 12×32 micro-kernel that reads A in place (and can end in GELU). Left out on purpose: alpha/beta, threads (the caller splits).
#include "dk_gemm.h"
#include "ckernels.h"
#include "gemm_internal.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "dk_target.h"

#define MR 6                // rows of the micro-kernel
#define NR DK_GEMM_PANEL    // columns of the micro-kernel = packed panel width
#define KC_MAX 384          // K block; 384·16·4 = 24 KB of W per panel slice (L1 is 32 KB)
#define MC_MAX DK_GEMM_M_BLOCK   // a multiple of MR; 144·384·4 = 216 KB of packed A (L2 512 KB)

long dk_packed_floats(long N, long K) { return (N + NR - 1) / NR * NR * K; }

void dk_pack_weight_ld(const float *W, long ldw, long N, long K, float *packed) {
    for (long p = 0; p < N; p += NR) {
        float *dst = packed + p * K;   // panel p / NR starts at (p / NR) · NR · K
        const long w = N - p < NR ? N - p : NR;
        for (long j = 0; j < w; j++) {
            const float *row = W + (p + j) * ldw;
            for (long k = 0; k < K; k++) dst[k * NR + j] = row[k];
        }
        for (long j = w; j < NR; j++)
            for (long k = 0; k < K; k++) dst[k * NR + j] = 0;
    }
}

void dk_pack_weight(const float *W, long N, long K, float *packed) { dk_pack_weight_ld(W, K, N, K, packed); }

void dk_pack_weight_transposed(const float *Wt, long ldw, long N, long K, float *packed) {
    // Wt [K, N]: for each k the panel's 16 values are contiguous in the source row.
    for (long p = 0; p < N; p += NR) {
        float *dst = packed + p * K;
        const long w = N - p < NR ? N - p : NR;
        if (w == NR) {
            for (long k = 0; k < K; k++) memcpy(dst + k * NR, Wt + k * ldw + p, NR * sizeof(float));
        } else {
            for (long k = 0; k < K; k++) {
                memcpy(dst + k * NR, Wt + k * ldw + p, (size_t)w * sizeof(float));
                memset(dst + k * NR + w, 0, (size_t)(NR - w) * sizeof(float));
            }
        }
    }
}

/// K block length: K split into equal blocks of at most KC_MAX, rounded up to 8.
long dk_gemm_k_block(long K) {
    long blocks = (K + KC_MAX - 1) / KC_MAX;
    long kc = (K + blocks - 1) / blocks;
    return (kc + 7) & ~7L;
}

long dk_gemm_workspace_floats(long M, long K) {
    long mc = (M + MR - 1) / MR * MR;
    if (mc > MC_MAX) mc = MC_MAX;
    long kc = dk_gemm_k_block(K);
    if (kc > K) kc = K;
    return mc * kc;
}

// ---------------------------------------------------------------- portable reference

/// A(i, k) of a row-major A (lda per row) or, when `trans`, of Aᵀ stored [K, M].
#define A_AT(A, lda, trans, i, k) ((trans) ? (A)[(k) * (lda) + (i)] : (A)[(i) * (lda) + (k)])

static void gemm_ref(long M, long N, long K, const float *A, long lda, int transA, const float *packed,
                     const float *bias, float *C, long ldc, int accumulate) {
    const long kcb = dk_gemm_k_block(K);
    for (long i = 0; i < M; i++) {
        float *c = C + i * ldc;
        for (long j = 0; j < N; j += NR) {
            const long cols = N - j < NR ? N - j : NR;
            const float *w = packed + j * K;
            for (long k0 = 0; k0 < K; k0 += kcb) {
                const long k1 = K - k0 < kcb ? K : k0 + kcb;
                float acc[NR] = {0};   // one row × one panel: 16 independent sums (vectorises)
                for (long k = k0; k < k1; k++) {
                    const float ak = A_AT(A, lda, transA, i, k);
                    for (long l = 0; l < NR; l++) acc[l] += ak * w[k * NR + l];
                }
                const int add = accumulate || k0 > 0;
                for (long l = 0; l < cols; l++)
                    c[j + l] = add ? c[j + l] + acc[l] : bias ? bias[j + l] + acc[l] : acc[l];
            }
        }
    }
}

void dk_gemm_packed_ref(long M, long N, long K, const float *A, long lda, const float *packed,
                        float *C, long ldc, int accumulate, float *workspace) {
    (void)workspace;
    gemm_ref(M, N, K, A, lda, 0, packed, NULL, C, ldc, accumulate);
}

void dk_gemm_packed_bias_ref(long M, long N, long K, const float *A, long lda, const float *packed,
                             const float *bias, float *C, long ldc, float *workspace) {
    (void)workspace;
    gemm_ref(M, N, K, A, lda, 0, packed, bias, C, ldc, 0);
}

void dk_gemm_packed_at_ref(long M, long N, long K, const float *At, long lda, const float *packed,
                           float *C, long ldc, int accumulate, float *workspace) {
    (void)workspace;
    gemm_ref(M, N, K, At, lda, 1, packed, NULL, C, ldc, accumulate);
}

// ---------------------------------------------------------------- AVX2 + FMA


/// Packs rows [0, rows) × k [0, kc) of A (rows ≤ MR) into one micro-panel: dst[k·rows + r].
DK_AVX2 void dk_gemm_pack_a_panel(const float *A, long lda, long rows, long kc, float *dst) {
    long k = 0;
    if (rows == 6 || rows == 4) {
        const float *r0 = A, *r1 = A + lda, *r2 = A + 2 * lda, *r3 = A + 3 * lda;
        const float *r4 = A + 4 * lda, *r5 = A + 5 * lda;
        for (; k + 8 <= kc; k += 8) {
            // Transpose rows × 8 k: rows 0-3 by the 4×4 unpack/shuffle network (one per
            // 128-bit lane), rows 4-5 by one unpack; each k gets 4 (+ 2) floats.
            __m256 a = _mm256_loadu_ps(r0 + k), b = _mm256_loadu_ps(r1 + k);
            __m256 c = _mm256_loadu_ps(r2 + k), d = _mm256_loadu_ps(r3 + k);
            __m256 ab0 = _mm256_unpacklo_ps(a, b), ab1 = _mm256_unpackhi_ps(a, b);
            __m256 cd0 = _mm256_unpacklo_ps(c, d), cd1 = _mm256_unpackhi_ps(c, d);
            __m256 q0 = _mm256_shuffle_ps(ab0, cd0, _MM_SHUFFLE(1, 0, 1, 0));   // k 0 | k 4
            __m256 q1 = _mm256_shuffle_ps(ab0, cd0, _MM_SHUFFLE(3, 2, 3, 2));   // k 1 | k 5
            __m256 q2 = _mm256_shuffle_ps(ab1, cd1, _MM_SHUFFLE(1, 0, 1, 0));   // k 2 | k 6
            __m256 q3 = _mm256_shuffle_ps(ab1, cd1, _MM_SHUFFLE(3, 2, 3, 2));   // k 3 | k 7
            if (rows == 4) {
                float *o = dst + k * 4;
                _mm256_storeu_ps(o, _mm256_permute2f128_ps(q0, q1, 0x20));
                _mm256_storeu_ps(o + 8, _mm256_permute2f128_ps(q2, q3, 0x20));
                _mm256_storeu_ps(o + 16, _mm256_permute2f128_ps(q0, q1, 0x31));
                _mm256_storeu_ps(o + 24, _mm256_permute2f128_ps(q2, q3, 0x31));
                continue;
            }
            __m256 e = _mm256_loadu_ps(r4 + k), f = _mm256_loadu_ps(r5 + k);
            __m256 ef0 = _mm256_unpacklo_ps(e, f), ef1 = _mm256_unpackhi_ps(e, f);
            float *o = dst + k * 6;
            __m128 e0 = _mm256_castps256_ps128(ef0), e1 = _mm256_castps256_ps128(ef1);
            __m128 e4 = _mm256_extractf128_ps(ef0, 1), e5 = _mm256_extractf128_ps(ef1, 1);
            _mm_storeu_ps(o + 0, _mm256_castps256_ps128(q0));  _mm_storel_pi((__m64 *)(o + 4), e0);
            _mm_storeu_ps(o + 6, _mm256_castps256_ps128(q1));  _mm_storeh_pi((__m64 *)(o + 10), e0);
            _mm_storeu_ps(o + 12, _mm256_castps256_ps128(q2)); _mm_storel_pi((__m64 *)(o + 16), e1);
            _mm_storeu_ps(o + 18, _mm256_castps256_ps128(q3)); _mm_storeh_pi((__m64 *)(o + 22), e1);
            _mm_storeu_ps(o + 24, _mm256_extractf128_ps(q0, 1)); _mm_storel_pi((__m64 *)(o + 28), e4);
            _mm_storeu_ps(o + 30, _mm256_extractf128_ps(q1, 1)); _mm_storeh_pi((__m64 *)(o + 34), e4);
            _mm_storeu_ps(o + 36, _mm256_extractf128_ps(q2, 1)); _mm_storel_pi((__m64 *)(o + 40), e5);
            _mm_storeu_ps(o + 42, _mm256_extractf128_ps(q3, 1)); _mm_storeh_pi((__m64 *)(o + 46), e5);
        }
    }
    for (; k < kc; k++)
        for (long r = 0; r < rows; r++) dst[k * rows + r] = A[r * lda + k];
}

/// Packs rows [0, rows) × k [0, kc) of A given as Aᵀ (row k of At holds A(·, k)): the
/// panel's `rows` values of each k are contiguous in the source, so this is a copy.
DK_AVX2 void dk_gemm_pack_at_panel(const float *At, long lda, long rows, long kc, float *dst) {
    if (rows == MR) {
        for (long k = 0; k < kc; k++) {
            const float *src = At + k * lda;
            _mm_storeu_ps(dst + k * MR, _mm_loadu_ps(src));
            dst[k * MR + 4] = src[4];
            dst[k * MR + 5] = src[5];
        }
        return;
    }
    for (long k = 0; k < kc; k++)
        for (long r = 0; r < rows; r++) dst[k * rows + r] = At[k * lda + r];
}

/// The micro-kernel: c[0..rows, 0..16) = (c +) a-panel · b-panel over kc, `rows` a
/// compile-time constant after inlining. a: [kc][rows] packed A, b: [kc][16] packed W.
/// The products are summed from zero and C is added once at the end, so the C tile
/// (prefetched here) is read after the k loop has hidden its latency. Meanwhile the `pfn`
/// cache lines from `pf` on (the next weight slice's share of this tile) are prefetched,
/// one every two k steps (any left over after the loop, at its end).
DK_AVX2 DK_INLINE void kernel_rows(long kc, const float *a, const float *b, float *c, long ldc,
                                   int load_c, const float *bias, const int rows, const char *pf, long pfn) {
    __m256 x[MR], y[MR];
    for (int r = 0; r < MR; r++) {
        if (r >= rows) break;
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + r * ldc + NR - 1), _MM_HINT_T0);
        x[r] = _mm256_setzero_ps();
        y[r] = _mm256_setzero_ps();
    }
    // One k step: two 8-float halves of the W row (unaligned loads: the packed buffer's
    // alignment is the caller's; PackedMatrix gives 64 bytes), one broadcast per row.
#define DK_STEP(i)                                                                  \
    do {                                                                            \
        __m256 b0 = _mm256_loadu_ps(b + (i) * NR);                                  \
        __m256 b1 = _mm256_loadu_ps(b + (i) * NR + 8);                              \
        for (int r = 0; r < MR; r++) {                                              \
            if (r >= rows) break;                                                   \
            __m256 ar = _mm256_broadcast_ss(a + (i) * rows + r);                    \
            x[r] = _mm256_fmadd_ps(ar, b0, x[r]);                                   \
            y[r] = _mm256_fmadd_ps(ar, b1, y[r]);                                   \
        }                                                                           \
    } while (0)
    long k = 0;
    for (; k + 4 <= kc; k += 4) {
        if (pfn > 0) { _mm_prefetch(pf, _MM_HINT_T0); pf += 64; pfn--; }
        DK_STEP(0); DK_STEP(1);
        if (pfn > 0) { _mm_prefetch(pf, _MM_HINT_T0); pf += 64; pfn--; }
        DK_STEP(2); DK_STEP(3);
        a += 4 * rows;
        b += 4 * NR;
    }
    for (; k < kc; k++) {
        DK_STEP(0);
        a += rows;
        b += NR;
    }
#undef DK_STEP
    for (; pfn > 0; pfn--, pf += 64) _mm_prefetch(pf, _MM_HINT_T0);
    for (int r = 0; r < MR; r++) {
        if (r >= rows) break;
        if (load_c) {
            x[r] = _mm256_add_ps(_mm256_loadu_ps(c + r * ldc), x[r]);
            y[r] = _mm256_add_ps(_mm256_loadu_ps(c + r * ldc + 8), y[r]);
        } else if (bias) {   // the same sum as a C pre-filled with the bias and load_c
            x[r] = _mm256_add_ps(_mm256_loadu_ps(bias), x[r]);
            y[r] = _mm256_add_ps(_mm256_loadu_ps(bias + 8), y[r]);
        }
        _mm256_storeu_ps(c + r * ldc, x[r]);
        _mm256_storeu_ps(c + r * ldc + 8, y[r]);
    }
}

DK_AVX2 static void kernel_any(long kc, const float *a, const float *b, float *c, long ldc,
                               int load_c, const float *bias, long rows, const char *pf, long pfn) {
    switch (rows) {
    case 6: kernel_rows(kc, a, b, c, ldc, load_c, bias, 6, pf, pfn); break;
    case 5: kernel_rows(kc, a, b, c, ldc, load_c, bias, 5, pf, pfn); break;
    case 4: kernel_rows(kc, a, b, c, ldc, load_c, bias, 4, pf, pfn); break;
    case 3: kernel_rows(kc, a, b, c, ldc, load_c, bias, 3, pf, pfn); break;
    case 2: kernel_rows(kc, a, b, c, ldc, load_c, bias, 2, pf, pfn); break;
    default: kernel_rows(kc, a, b, c, ldc, load_c, bias, 1, pf, pfn); break;
    }
}

/// One tile of `rows` × `cols` (cols < 16 goes through a 6×16 buffer), prefetching
/// `pfn` lines from `pf` as it runs.
DK_AVX2 static void tile(long kc, const float *a, const float *b, float *c, long ldc,
                         int load_c, const float *bias, long rows, long cols, const char *pf, long pfn) {
    if (cols == NR) { kernel_any(kc, a, b, c, ldc, load_c, bias, rows, pf, pfn); return; }
    float buf[MR * NR] __attribute__((aligned(32))) = {0};
    if (load_c)
        for (long r = 0; r < rows; r++) memcpy(buf + r * NR, c + r * ldc, (size_t)cols * sizeof(float));
    else if (bias) {   // the bias as the C tile to add to (the same sum)
        for (long r = 0; r < rows; r++) memcpy(buf + r * NR, bias, (size_t)cols * sizeof(float));
        load_c = 1;
    }
    kernel_any(kc, a, b, buf, NR, load_c, NULL, rows, pf, pfn);
    for (long r = 0; r < rows; r++) memcpy(c + r * ldc, buf + r * NR, (size_t)cols * sizeof(float));
}

/// Height of the row panel starting at row i of an M block of mc rows: 6, except that a
/// tail of 1-3 rows is merged with the panel before it and the two re-split as 4 + 3,
/// 4 + 4 or 5 + 4 (a k step costs max(rows, 4) cycles: FMA latency 4 over 2·rows
/// chains at 2 FMAs per cycle, so 6 + 2 rows take 10 cycles per k and 4 + 4 take 8).
static long panel_rows(long i, long mc) {
    const long left = mc - i;
    if (left >= MR + 4 || left <= MR) return left < MR ? left : MR;
    return left == 7 ? 4 : left == 8 ? 4 : left == 9 ? 5 : MR;   // left in 7..9
}

/// The loops above. The weight's K-block slice of panel j is read from `packed`, or, when
/// `src` is given, written by src->fill into `slice` (the dequantizing route, dk_quant.h).
DK_AVX2 static void gemm_avx2_src(long M, long N, long K, const float *A, long lda, int transA,
                                  const float *packed, const dk_slice_source *src, float *slice,
                                  const float *bias, float *C, long ldc, int accumulate, float *ws) {
    const long kcb = dk_gemm_k_block(K);
    for (long i0 = 0; i0 < M; i0 += MC_MAX) {
        const long mc = M - i0 < MC_MAX ? M - i0 : MC_MAX;
        for (long k0 = 0; k0 < K; k0 += kcb) {
            const long kc = K - k0 < kcb ? K - k0 : kcb;
            const int load_c = accumulate || k0 > 0;
            for (long i = 0, rows; i < mc; i += rows) {
                rows = panel_rows(i, mc);
                if (transA) dk_gemm_pack_at_panel(A + k0 * lda + i0 + i, lda, rows, kc, ws + i * kc);
                else dk_gemm_pack_a_panel(A + (i0 + i) * lda + k0, lda, rows, kc, ws + i * kc);
            }
            for (long j = 0; j < N; j += NR) {
                const long cols = N - j < NR ? N - j : NR;
                const float *b = src ? src->fill(src, j, k0, kc, slice) : packed + j * K + k0 * NR;
                // Prefetch the next panel's slice (kc·64 bytes) while the row panels of
                // this one run, each tile its share, spread over its k loop (a burst per
                // tile fills the line buffers: with few row panels, the weights' stream
                // from memory and the FMAs then take turns instead of overlapping).
                const char *next = src ? NULL : (const char *)(b + NR * K);
                const long lines = j + NR < N && !src ? kc : 0;
                long line = 0;
                for (long i = 0, rows; i < mc; i += rows) {
                    rows = panel_rows(i, mc);
                    const long end = lines * (i + rows) / mc;
                    tile(kc, ws + i * kc, b, C + (i0 + i) * ldc + j, ldc, load_c, bias ? bias + j : NULL, rows, cols,
                         next ? next + line * 64 : NULL, end - line);
                    line = end;
                }
            }
        }
    }
}

DK_AVX2 static void gemm_avx2(long M, long N, long K, const float *A, long lda, int transA,
                              const float *packed, const float *bias, float *C, long ldc, int accumulate,
                              float *ws) {
    gemm_avx2_src(M, N, K, A, lda, transA, packed, NULL, NULL, bias, C, ldc, accumulate, ws);
}

void dk_gemm_avx2_sliced(long M, long N, long K, const float *A, long lda, const dk_slice_source *src,
                         const float *bias, float *C, long ldc, float *ws, float *slice) {
    if (M <= 0 || N <= 0 || K <= 0) return;
    gemm_avx2_src(M, N, K, A, lda, 0, NULL, src, slice, bias, C, ldc, 0, ws);
}

// ---------------------------------------------------------------- dispatch and workspace

int dk_gemm_has_avx2(void) { return dk_has_avx2(); }

static void gemm_dispatch(long M, long N, long K, const float *A, long lda, int transA,
                          const float *packed, const float *bias, float *C, long ldc, int accumulate,
                          float *workspace) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {   // an empty sum: C stays (accumulate) or becomes the bias, or 0
        if (!accumulate)
            for (long i = 0; i < M; i++) {
                if (bias) memcpy(C + i * ldc, bias, (size_t)N * sizeof(float));
                else memset(C + i * ldc, 0, (size_t)N * sizeof(float));
            }
        return;
    }
    if (dk_has_avx512()) dk_gemm_avx512(M, N, K, A, lda, transA, packed, bias, C, ldc, accumulate, 0, workspace);
    else if (dk_gemm_has_avx2()) gemm_avx2(M, N, K, A, lda, transA, packed, bias, C, ldc, accumulate, workspace);
    else gemm_ref(M, N, K, A, lda, transA, packed, bias, C, ldc, accumulate);
}

/// GELU in place over C [M, N] (rows `ldc` apart) by the dispatched element-wise kernel.
static void gelu_rows(float *C, long M, long N, long ldc) {
    if (ldc == N) dk_bias_gelu(C, NULL, NULL, C, M, N);
    else for (long i = 0; i < M; i++) dk_bias_gelu(C + i * ldc, NULL, NULL, C + i * ldc, 1, N);
}

void dk_gemm_packed(long M, long N, long K, const float *A, long lda, const float *packed,
                    float *C, long ldc, int accumulate, float *workspace) {
    gemm_dispatch(M, N, K, A, lda, 0, packed, NULL, C, ldc, accumulate, workspace);
}

void dk_gemm_packed_bias(long M, long N, long K, const float *A, long lda, const float *packed,
                         const float *bias, float *C, long ldc, float *workspace) {
    gemm_dispatch(M, N, K, A, lda, 0, packed, bias, C, ldc, 0, workspace);
}

void dk_gemm_packed_bias_gelu(long M, long N, long K, const float *A, long lda, const float *packed,
                              const float *bias, float *C, long ldc, float *workspace) {
    if (M <= 0 || N <= 0) return;
    if (dk_has_avx512() && K > 0) dk_gemm_avx512(M, N, K, A, lda, 0, packed, bias, C, ldc, 0, 1, workspace);
    else {
        gemm_dispatch(M, N, K, A, lda, 0, packed, bias, C, ldc, 0, workspace);
        gelu_rows(C, M, N, ldc);
    }
}

void dk_gemm_packed_bias_gelu_ref(long M, long N, long K, const float *A, long lda, const float *packed,
                                  const float *bias, float *C, long ldc, float *workspace) {
    (void)workspace;
    gemm_ref(M, N, K, A, lda, 0, packed, bias, C, ldc, 0);
    for (long i = 0; i < M; i++) dk_bias_gelu_ref(C + i * ldc, NULL, NULL, C + i * ldc, 1, N);
}

void dk_gemm_packed_at(long M, long N, long K, const float *At, long lda, const float *packed,
                       float *C, long ldc, int accumulate, float *workspace) {
    gemm_dispatch(M, N, K, At, lda, 1, packed, NULL, C, ldc, accumulate, workspace);
}

// Per-thread buffers: DK_THREAD_BUFFERS slots per thread behind a pthread key whose
// destructor frees them when the thread exits (dispatch pool threads come and go).
typedef struct { float *data[DK_THREAD_BUFFERS]; long floats[DK_THREAD_BUFFERS]; } thread_ws;
static pthread_key_t ws_key;
static pthread_once_t ws_once = PTHREAD_ONCE_INIT;
static void ws_free(void *p) {
    thread_ws *w = p;
    for (int i = 0; i < DK_THREAD_BUFFERS; i++) free(w->data[i]);
    free(w);
}
static void ws_init(void) { pthread_key_create(&ws_key, ws_free); }

float *dk_thread_buffer(int slot, long floats) {
    if (slot < 0 || slot >= DK_THREAD_BUFFERS) return NULL;
    pthread_once(&ws_once, ws_init);
    thread_ws *w = pthread_getspecific(ws_key);
    if (!w) {
        w = calloc(1, sizeof *w);
        if (!w) return NULL;
        pthread_setspecific(ws_key, w);
    }
    if (w->floats[slot] < floats) {
        free(w->data[slot]);
        w->data[slot] = NULL;
        w->floats[slot] = 0;
        size_t bytes = ((size_t)(floats > 0 ? floats : 1) * sizeof(float) + 63) & ~(size_t)63;
        float *p = aligned_alloc(64, bytes);
        if (!p) return NULL;
        w->data[slot] = p;
        w->floats[slot] = floats;
    }
    return w->data[slot];
}

float *dk_gemm_thread_workspace(long floats) { return dk_thread_buffer(DK_SLOT_GEMM_WORKSPACE, floats); }

// ---------------------------------------------------------------- op(A) · op(B), one call

/// Packs op(B) as the [N, K] "weight" of C = op(A) · op(B): op(B) = Bᵀ when transB (B is
/// stored [N, K]), else B [K, N] itself.
static void pack_op_b(int transB, const float *B, long ldb, long N, long K, float *packed) {
    if (transB) dk_pack_weight_ld(B, ldb, N, K, packed);
    else dk_pack_weight_transposed(B, ldb, N, K, packed);
}

int dk_gemm(int transA, int transB, long M, long N, long K, const float *A, long lda,
            const float *B, long ldb, float *C, long ldc, int accumulate) {
    if (M <= 0 || N <= 0) return 0;
    float *packed = dk_thread_buffer(DK_SLOT_GEMM_PACKED, dk_packed_floats(N, K));
    float *ws = dk_thread_buffer(DK_SLOT_GEMM_WORKSPACE, dk_gemm_workspace_floats(M, K));
    if (!packed || !ws) return -1;
    pack_op_b(transB, B, ldb, N, K, packed);
    gemm_dispatch(M, N, K, A, lda, transA, packed, NULL, C, ldc, accumulate, ws);
    return 0;
}

void dk_gemm_ref(int transA, int transB, long M, long N, long K, const float *A, long lda,
                 const float *B, long ldb, float *C, long ldc, int accumulate) {
    for (long i = 0; i < M; i++)
        for (long j = 0; j < N; j++) {
            float acc = 0;
            for (long k = 0; k < K; k++)
                acc += A_AT(A, lda, transA, i, k) * (transB ? B[j * ldb + k] : B[k * ldb + j]);
            C[i * ldc + j] = accumulate ? C[i * ldc + j] + acc : acc;
        }
}
