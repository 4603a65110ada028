// quant_internal: constants and functions shared by quant.c and its SIMD builds
// (quant_avx2.c, quant_avx512.c); private to CKernels.
#ifndef DISTILLERY_QUANT_INTERNAL_H
#define DISTILLERY_QUANT_INTERNAL_H
#include <stdint.h>

#define QP 16                 // columns per packed panel (DK_QUANT_PANEL)
#define MC_Q 96               // activation rows quantized per block (a multiple of 12 and 4)
#define Q4_GROUP_HEADER 192   // int4 group header: scale[16], corr[16], zero[16][4]

static inline long q_round4(long K) { return (K + 3) & ~3L; }
static inline long q_round2(long K) { return (K + 1) & ~1L; }
/// Workspace of the SIMD int8/int4 paths: the block's row scales (this many bytes, a
/// multiple of 64), then its quantized rows of Kp bytes; within dk_q8_workspace_bytes.
static inline long q_scales_bytes(long M) { return ((M < MC_Q ? M : MC_Q) * 4 + 63) / 64 * 64; }

/// The int4 weight value (q − zero) of column j (in its panel) at k = kk within the group
/// whose block starts at `blk` (dk_q4_pack's layout).
static inline int q4_value(const uint8_t *blk, long j, long kk) {
    const uint8_t byte = blk[Q4_GROUP_HEADER + (kk / 8) * 64 + j * 4 + kk % 4];
    return ((byte >> (4 * ((kk / 4) & 1))) & 15) - blk[128 + j * 4];
}

/// One activation row → int8 (Kp − K zero bytes after it) and its scale (dk_quant.h).
void q8_quantize_row_ref(const float *x, long K, long Kp, float fixedScale, int8_t *q, float *scale);
/// One activation row → bf16 (zero-padded to Kp).
void bf16_round_row(const float *x, long K, long Kp, uint16_t *y);
/// GELU in place over `rows` rows of N (SIMD build of dk_bias_gelu when `simd`).
void q_gelu_rows(float *C, long ldc, long rows, long N, int epilogue, int simd);

void q8_gemm_avx512(long M, long N, long K, const float *A, long lda, const void *packed,
                    const float *wScale, const float *bias, float *C, long ldc, float actScale,
                    int epilogue, void *workspace);
void q8_gemm_avx2(long M, long N, long K, const float *A, long lda, const void *packed,
                  const float *wScale, const float *bias, float *C, long ldc, float actScale,
                  int epilogue, void *workspace);
/// int4 GEMMs; `blocks` != 0: activation scales per block of 32 (dk_q4b, G = 32).
void q4_gemm_avx512(long M, long N, long K, long G, const float *A, long lda, const void *packed,
                    const float *bias, float *C, long ldc, float actScale, int epilogue, void *workspace,
                    int blocks);
void q4_gemm_avx2(long M, long N, long K, long G, const float *A, long lda, const void *packed,
                  const float *bias, float *C, long ldc, float actScale, int epilogue, void *workspace,
                  int blocks);
/// Workspace bytes for the block activation scales [rows][K/32] of MC_Q rows (64-byte multiple).
static inline long q_block_scales_bytes(long M, long K) { return ((M < MC_Q ? M : MC_Q) * (K / 32) * 4 + 63) / 64 * 64; }
#define Q8B 32                          // activation block of dk_q8b (DK_Q8B_BLOCK)
#define Q8B_BLOCK_BYTES (64 + Q8B * 16)  // corr[16] int32 + [8][16][4] int8
void q8b_gemm_avx512(long M, long N, long K, const float *A, long lda, const void *packed,
                     const float *wScale, const float *bias, float *C, long ldc, int epilogue, void *workspace);
void q8b_gemm_avx2(long M, long N, long K, const float *A, long lda, const void *packed,
                   const float *wScale, const float *bias, float *C, long ldc, int epilogue, void *workspace);
void bf16_gemm_avx512(long M, long N, long K, const float *A, long lda, const void *packed,
                      const float *bias, float *C, long ldc, int epilogue, void *workspace);
void bf16_gemm_avx2(long M, long N, long K, const float *A, long lda, const void *packed,
                    const float *bias, float *C, long ldc, int epilogue, void *workspace);
#endif
