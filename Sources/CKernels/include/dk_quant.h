// dk_quant: int8, int4 and bf16 GEMMs against weights packed once at load, for quantized
// Linear layers; plus the row quantizers and embedding-row dequantizers that go with them.
//
// Every product is C[M, N] = epilogue(bias + A[M, K] · Wᵀ) for a PyTorch-layout weight
// W [N, K] and fp32 activations A; the output is fp32. Weights are packed once into
// 16-column panels (zero-padded past N and past K); activations are quantized per call into
// the caller's workspace. Single-threaded like dk_gemm_packed: the caller splits M rows
// (any split) or N at multiples of 16 (packed + (n0/16)·dk_*_panel_bytes(K), scales and
// bias + n0, C + n0) over its threads; every C element is computed by the same operations
// whatever the split, so results do not depend on it.
//
// int8 (`dk_q8_*`): weights symmetric per output row, w = q · wScale[n], q in [-127, 127]
// (-128 is clamped to -127 by the pack). Activations symmetric int8 per row of A: with
// actScale == 0 dynamically (s = max|a| / 127), with actScale > 0 a static scale s;
// q = clamp(rint(a · (1/s)), -127, 127), rint = round half to even (the SIMD rounding).
// The int32 sums Σ q_a · q_w are exact on every path (VNNI: vpdpbusd on q_a + 128 minus a
// packed 128 · column sum; AVX2: vpmaddubsw on |q_a| and sign(q_w, q_a), which cannot
// saturate for |q| ≤ 127), so every path gives the same int32; the epilogue then computes
// fmaf((float)sum, s · wScale[n], bias[n]) (then GELU) identically: the SIMD paths are bit
// for bit equal to `_ref` except the GELU epilogue (vector erf, a few ulps).
//
// int4 (`dk_q4_*`): group-wise, w = (q − zero) · scale per group of G consecutive k (G a
// multiple of 8 dividing K — 32, 64, 128; the caller validates, the pack returns -1
// otherwise); q, zero in 0..15 (symmetric: zero = 8). Unpacked in the kernel into the int8
// path (q − zero in [-15, 15] against per-row int8 activations): per group an exact int32
// sum, then acc = fmaf((float)sum, scale, acc) over the groups in order, then
// fmaf(acc, s, bias). Same determinism and bit-equality as int8.
//
// bf16 (`dk_bf16_*`): weights bf16 (upper 16 bits of the fp32, round to nearest even),
// activations rounded to bf16 per call, products summed in fp32 (vdpbf16ps where the CPU
// has AVX512_BF16, else bf16 → fp32 and FMA). Paths differ in fp32 rounding only. Models on
// the AVX2 path run bf16 weights through the dequantizing route instead (dk_dq_*, below:
// activations not rounded), which is 2.4x faster there.
#ifndef DISTILLERY_DK_QUANT_H
#define DISTILLERY_DK_QUANT_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Output features per packed panel of every format here.
#define DK_QUANT_PANEL 16
/// Epilogues: none, or the exact-erf GELU of dk_bias_gelu applied after the bias.
enum { DK_EPILOGUE_NONE = 0, DK_EPILOGUE_GELU = 1 };

/// The path the integer kernels take: "ref", "avx2", or "avx512" (the AVX-512 path on a CPU
/// with VNNI; without it they run their AVX2 builds).
const char *dk_quant_path(void);

// ---------------------------------------------------------------- int8

/// Bytes of the packed int8 weight [N, K]; 64-byte alignment of the buffer recommended.
long dk_q8_packed_bytes(long N, long K);
/// Bytes of one 16-column panel (for splitting N over threads).
long dk_q8_panel_bytes(long K);
/// Packs W [N, K] int8 (row-major) with its column sums into `packed`.
void dk_q8_pack(const int8_t *W, long N, long K, void *packed);
/// Bytes of the workspace dk_q8_gemm / dk_q4_gemm need for M rows and K.
long dk_q8_workspace_bytes(long M, long K);
/// C = epilogue(bias + dequant(quant(A) · Wᵀ)); actScale 0: dynamic per-row scales, > 0:
/// that static scale. wScale [N]; bias [N] or NULL; C rows `ldc` >= N floats apart.
void dk_q8_gemm(long M, long N, long K, const float *A, long lda, const void *packed,
                const float *wScale, const float *bias, float *C, long ldc, float actScale,
                int epilogue, void *workspace);
void dk_q8_gemm_ref(long M, long N, long K, const float *A, long lda, const void *packed,
                    const float *wScale, const float *bias, float *C, long ldc, float actScale,
                    int epilogue, void *workspace);

/// Symmetric per-row quantization, as the activation path does it: for each of `rows`
/// rows of X (`ldx` floats apart), scale[r] = max|x| / 127 (or `fixedScale` when > 0) and
/// Q[r·cols + c] = clamp(rint(x · (1/scale)), -127, 127) (0 for an all-zero row).
void dk_q8_quantize_rows(const float *X, long rows, long cols, long ldx, float fixedScale,
                         int8_t *Q, float *scale);

// ---------------------------------------------------------------- int8, activation blocks of 32

// `dk_q8b_*`: int8 weights per output row as above, activations quantized per BLOCK of 32
// consecutive k (llama.cpp Q8_0 style) instead of per row, so one outlier channel of a
// LayerNorm output only coarsens the step of its own 32 values. K must be a multiple of
// DK_Q8B_BLOCK (the pack returns -1 and the GEMM does nothing otherwise; validate first).
// Per row i and block b: s_ib = max|a_ib| / 127, q = clamp(rint(a · (1/s_ib)), -127, 127)
// (the dk_q8_quantize_rows rounding over 32 values); per output (i, j):
//   sum_b = Σ_{k in b} q_a · q_w (exact int32), acc = fmaf((float)sum_b, s_ib, acc) over b
//   in order, C = fmaf(acc, wScale[j], bias[j]) (then GELU).
// Every path performs exactly these operations, so SIMD builds equal `_ref` bit for bit
// (except the GELU epilogue). Packed panel (16 columns) = per block [int32 corr[16]]
// [8][16][4] int8 (corr = 128·Σ_block w, the VNNI u8-offset correction). Threads: split M
// anyhow or N at multiples of 16 (packed + (n0/16)·dk_q8b_panel_bytes(K)).
#define DK_Q8B_BLOCK 32
long dk_q8b_packed_bytes(long N, long K);
long dk_q8b_panel_bytes(long K);
/// Packs W [N, K] int8 row-major; returns 0, or -1 when K is not a multiple of 32.
int dk_q8b_pack(const int8_t *W, long N, long K, void *packed);
long dk_q8b_workspace_bytes(long M, long K);
void dk_q8b_gemm(long M, long N, long K, const float *A, long lda, const void *packed,
                 const float *wScale, const float *bias, float *C, long ldc, int epilogue, void *workspace);
void dk_q8b_gemm_ref(long M, long N, long K, const float *A, long lda, const void *packed,
                     const float *wScale, const float *bias, float *C, long ldc, int epilogue, void *workspace);
/// The activation quantizer of dk_q8b_gemm: Q [rows, K] and scale [rows, K/32] (K % 32 == 0).
void dk_q8b_quantize_rows(const float *X, long rows, long K, long ldx, int8_t *Q, float *scale);

// ---------------------------------------------------------------- int4, group-wise

/// Bytes of the packed int4 weight [N, K] with groups of G.
long dk_q4_packed_bytes(long N, long K, long G);
long dk_q4_panel_bytes(long K, long G);
/// Packs Q [N, K/2] (two nibbles per byte, low nibble = even k), scale [N, K/G] and zero
/// [N, K/G] (0..15; NULL means 8 everywhere). Returns 0, or -1 when G is not a multiple
/// of 8 or does not divide K (nothing written).
int dk_q4_pack(const uint8_t *Q, const float *scale, const uint8_t *zero, long N, long K, long G,
               void *packed);
/// C = epilogue(bias + A · Wᵀ) with activations quantized as dk_q8_gemm does (actScale 0:
/// dynamic per row); workspace of dk_q8_workspace_bytes(M, K). A G dk_q4_pack refuses
/// makes it return without writing C (the caller validates first).
void dk_q4_gemm(long M, long N, long K, long G, const float *A, long lda, const void *packed,
                const float *bias, float *C, long ldc, float actScale, int epilogue, void *workspace);
void dk_q4_gemm_ref(long M, long N, long K, long G, const float *A, long lda, const void *packed,
                    const float *bias, float *C, long ldc, float actScale, int epilogue, void *workspace);

// ---------------------------------------------------------------- int4 g32, activation blocks of 32

// `dk_q4b_*`: the int4 group-32 weights of dk_q4_pack (G = 32) against activations
// quantized per block of 32 k as dk_q8b does (s_ib = max|a_ib| / 127 for row i, block b),
// so the activation blocks and the weight groups coincide. Per output (i, j):
//   sum_b = Σ_{k in b} q_a · (q_w − zero) (exact int32),
//   acc = fmaf((float)sum_b, scale[j, b] · s_ib, acc) over b in order (the product
//   rounded to float first), C = acc + bias[j] (then GELU).
// Every path performs exactly these operations (bit-equal to `_ref` except GELU). K must
// be a multiple of 32 (nothing is written otherwise). Threads: as dk_q4_gemm.
long dk_q4b_workspace_bytes(long M, long K);
void dk_q4b_gemm(long M, long N, long K, const float *A, long lda, const void *packed,
                 const float *bias, float *C, long ldc, int epilogue, void *workspace);
void dk_q4b_gemm_ref(long M, long N, long K, const float *A, long lda, const void *packed,
                     const float *bias, float *C, long ldc, int epilogue, void *workspace);

// ---------------------------------------------------------------- bf16

/// fp32 → bf16, round to nearest even (NaN stays NaN).
void dk_f32_to_bf16(const float *x, uint16_t *y, long n);
void dk_bf16_to_f32(const uint16_t *x, float *y, long n);
long dk_bf16_packed_bytes(long N, long K);
long dk_bf16_panel_bytes(long K);
/// Packs W [N, K] bf16 (row-major).
void dk_bf16_pack(const uint16_t *W, long N, long K, void *packed);
long dk_bf16_workspace_bytes(long M, long K);
void dk_bf16_gemm(long M, long N, long K, const float *A, long lda, const void *packed,
                  const float *bias, float *C, long ldc, int epilogue, void *workspace);
void dk_bf16_gemm_ref(long M, long N, long K, const float *A, long lda, const void *packed,
                      const float *bias, float *C, long ldc, int epilogue, void *workspace);

// ---------------------------------------------------------------- the dequantizing route

// `dk_dq_*`: the same packed int8 / int4 / bf16 weights multiplied in fp32 by dk_gemm's
// loops and micro-kernel (AVX2, or AVX-512 on that path), each panel's K-block slice
// dequantized just before use: w = (float)q · wScale[n] (int8), (float)(q − zero) · scale
// (int4) or the bf16 value itself (exact), then exactly dk_gemm_packed_bias over those
// weights (activations stay fp32, not quantized or rounded). For CPUs whose integer
// multiply is no faster than their FMA (no VNNI and one vector-integer multiply pipe, as AMD
// Zen 1/2), where the integer GEMMs above are slower than fp32, and for bf16 without
// vdpbf16ps. The AVX2 and AVX-512 builds equal
// dk_gemm_packed_bias on dk_pack_weight(dk_dq_unpack(…)) bit for bit; `_ref` equals
// dk_gemm_packed_bias_ref of it. Layouts: DK_DQ_Q8 (dk_q8_pack), DK_DQ_Q8B (dk_q8b_pack),
// DK_DQ_Q4 (dk_q4_pack with group G; G is ignored otherwise), DK_DQ_BF16 (dk_bf16_pack);
// wScale NULL for int4 and bf16. An invalid K / G writes nothing. Threads: as the GEMMs
// above (packed, wScale, bias and C offset by n0 for a split of N at multiples of 16).
enum { DK_DQ_Q8 = 0, DK_DQ_Q8B = 1, DK_DQ_Q4 = 2, DK_DQ_BF16 = 3 };
long dk_dq_workspace_bytes(long M, long K);
/// Bytes of one 16-column panel of `layout` (for splitting N over threads).
long dk_dq_panel_bytes(int layout, long K, long G);
void dk_dq_gemm(int layout, long M, long N, long K, long G, const float *A, long lda, const void *packed,
                const float *wScale, const float *bias, float *C, long ldc, void *workspace);
void dk_dq_gemm_ref(int layout, long M, long N, long K, long G, const float *A, long lda, const void *packed,
                    const float *wScale, const float *bias, float *C, long ldc, void *workspace);
/// The fp32 weight W [N, K] (row-major) a packed weight stands for on this route.
void dk_dq_unpack(int layout, long N, long K, long G, const void *packed, const float *wScale, float *W);
/// 1 when quantized Linear layers take the dequantizing route on this machine: forced by
/// DISTILLERY_QUANT_ROUTE=fp32 (or =int for the integer GEMMs), else on the AVX2 path of
/// AMD Zen 1/2 (measured there) and on the AVX-512 path without VNNI; 0 elsewhere. Read once.
int dk_quant_dequant_route(void);
/// 1 when bf16 Linear layers take the dequantizing route: forced as above, else on any CPU
/// without AVX512_BF16 whose path is AVX2 or AVX-512 (there the bf16 GEMM converts every
/// weight for every row panel and rounds the activations, and ran at 0.4x the fp32 GEMM on
/// Zen 2); 0 with vdpbf16ps and on `ref`.
int dk_bf16_dequant_route(void);

// ---------------------------------------------------------------- embedding rows

/// out[c] = q[c] · scale for one int8 row of n values.
void dk_q8_dequantize_row(const int8_t *q, float scale, long n, float *out);
/// out[c] = (nibble(c) − zero[c/G]) · scale[c/G] for one int4 row (n/2 bytes, low nibble
/// = even c; zero NULL means 8); n a multiple of G.
void dk_q4_dequantize_row(const uint8_t *q, const float *scale, const uint8_t *zero, long n, long G,
                          float *out);

#ifdef __cplusplus
}
#endif
#endif
