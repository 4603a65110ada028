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

/// A weight the AVX2 driver reads one slice at a time: `fill` writes panel j's (j a
/// multiple of 16) k in [k0, k0 + kc) as [kc][16] floats into `buf` (room for kc rounded
/// up to 8 rows) and returns it. How quantized weights run through the fp32 micro-kernel.
typedef struct dk_slice_source {
    const float *(*fill)(const struct dk_slice_source *src, long j, long k0, long kc, float *buf);
} dk_slice_source;
/// C = bias + A · Wᵀ by gemm.c's AVX2 loops and micro-kernel, W given by `src` (bias may
/// be NULL): the same operations as dk_gemm_packed_bias over the fp32 packing of the
/// weight `src` describes. ws: dk_gemm_workspace_floats(M, K); slice: (block + 8) · 16 floats
/// for the K block of dk_gemm_k_block(K).
void dk_gemm_avx2_sliced(long M, long N, long K, const float *A, long lda, const dk_slice_source *src,
                         const float *bias, float *C, long ldc, float *ws, float *slice);
/// The same on the AVX-512 micro-kernel (gemm_avx512.c; its sums, so the same bits): A read
/// in place, two panels' slices at a time in `slices`, room for 2 · (block + 8) · 16 floats.
void dk_gemm_avx512_sliced(long M, long N, long K, const float *A, long lda, const dk_slice_source *src,
                           const float *bias, float *C, long ldc, float *slices);
#endif
