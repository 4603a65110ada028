// gemm_internal: what gemm.c shares with its AVX-512 build (gemm_avx512.c); private to CKernels.
#ifndef DISTILLERY_GEMM_INTERNAL_H
#define DISTILLERY_GEMM_INTERNAL_H

/// K block length of every path (the per-block sums make results path- and split-independent).
long dk_gemm_k_block(long K);
/// Packs `rows` (≤ 6) rows × kc of A into dst[k·rows + r] (AVX2 build).
void dk_gemm_pack_a_panel(const float *A, long lda, long rows, long kc, float *dst);
/// The same from Aᵀ [K, M] (rows `lda` apart).
void dk_gemm_pack_at_panel(const float *At, long lda, long rows, long kc, float *dst);
/// The AVX-512 build of the packed GEMM: arguments and results as gemm.c's gemm_avx2; with
/// `gelu`, C becomes GELU of the finished sum (dk_gemm_packed_bias_gelu). Reads A in place
/// (no packing, `ws` unused) unless transA.
void dk_gemm_avx512(long M, long N, long K, const float *A, long lda, int transA, const float *packed,
                    const float *bias, float *C, long ldc, int accumulate, int gelu, float *ws);
#endif
