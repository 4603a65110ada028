// Quantized GEMMs (int8, group-wise int4, bf16): packing, the portable `_ref` twins, the
// row quantizers and the dispatchers (see include/dk_quant.h for the numerics).
//
// Packed layouts, per 16-column panel (columns past N are zero, k past K is zero):
//   int8  [int32 corr[16]] [Kp/4][16][4] int8 — Kp = K rounded up to 4; for each group of
//         4 k, the 4 bytes of a column are adjacent (the dword vpdpbusd / vpmaddubsw +
//         vpmaddwd reduce), corr[j] = 128 · Σ_k W[j, k] (the VNNI u8 offset correction).
//   int4  per group of G k: [float scale[16]] [int32 corr[16]] [uint8 zero[16][4]]
//         [G/8][16][4] bytes whose low nibble is k4 step 2s and high nibble step 2s + 1 of
//         the [k4][16][4] int8 layout (so a 64-byte load splits into two int8 steps);
//         corr[j] = 128 · Σ_group (q − zero), zero replicated 4× per column for vpsubb.
//   bf16  [Kp2/2][16][2] bf16 — Kp2 = K rounded up to 2 (vdpbf16ps pairs).
// Activations are quantized per call into the workspace, MC_Q rows at a time: int8 rows
// of Kp bytes plus one float scale each (int8, int4), or bf16 rows of Kp2 (bf16). The SIMD
// builds live in quant_avx2.c and quant_avx512.c and read the same layouts.
#include "dk_quant.h"
#include "ckernels.h"
#include "quant_internal.h"
#include <math.h>
#include <string.h>

/// The path of the integer kernels: AVX-512 only with VNNI (vpdpbusd), else AVX2 on the
/// AVX-512 path too.
static int int_path(void) {
    return dk_has_avx512() && !dk_has_avx512_vnni() ? DK_PATH_AVX2 : dk_kernel_path();
}

const char *dk_quant_path(void) {
    switch (int_path()) {
    case DK_PATH_AVX512: return "avx512";
    case DK_PATH_AVX2: return "avx2";
    default: return "ref";
    }
}

// ---------------------------------------------------------------- int8 packing

long dk_q8_panel_bytes(long K) { return 64 + q_round4(K) * QP; }
long dk_q8_packed_bytes(long N, long K) { return (N + QP - 1) / QP * dk_q8_panel_bytes(K); }
long dk_q8_workspace_bytes(long M, long K) {
    // The block's row scales and quantized rows, and (int4) two unpacked int8 panels.
    return q_scales_bytes(M) + (M < MC_Q ? M : MC_Q) * q_round4(K) + 32 * q_round4(K);
}

void dk_q8_pack(const int8_t *W, long N, long K, void *packed) {
    const long Kp = q_round4(K), pb = dk_q8_panel_bytes(K);
    for (long p = 0; p < N; p += QP) {
        uint8_t *panel = (uint8_t *)packed + p / QP * pb;
        int32_t corr[QP] = {0};
        int8_t *q = (int8_t *)(panel + 64);
        for (long j = 0; j < QP; j++)
            for (long k = 0; k < Kp; k++) {
                int v = (p + j < N && k < K) ? W[(p + j) * K + k] : 0;
                if (v < -127) v = -127;
                q[(k / 4) * QP * 4 + j * 4 + k % 4] = (int8_t)v;
                corr[j] += 128 * v;
            }
        memcpy(panel, corr, sizeof corr);
    }
}

// ---------------------------------------------------------------- activation quantization

void dk_q8_quantize_rows(const float *X, long rows, long cols, long ldx, float fixedScale,
                         int8_t *Q, float *scale) {
    for (long r = 0; r < rows; r++) q8_quantize_row_ref(X + r * ldx, cols, cols, fixedScale, Q + r * cols, scale + r);
}

void q8_quantize_row_ref(const float *x, long K, long Kp, float fixedScale, int8_t *q, float *scale) {
    float s = fixedScale;
    if (!(s > 0)) {
        float m = 0;
        for (long k = 0; k < K; k++) m = fmaxf(m, fabsf(x[k]));
        s = m / 127.0f;
    }
    const float inv = s > 0 ? 1.0f / s : 0.0f;
    for (long k = 0; k < K; k++) {
        // max first: a NaN becomes -127, as the SIMD max does; then rint (half to even).
        float v = fminf(fmaxf(x[k] * inv, -127.0f), 127.0f);
        q[k] = (int8_t)rintf(v);
    }
    for (long k = K; k < Kp; k++) q[k] = 0;
    *scale = s;
}

// ---------------------------------------------------------------- shared epilogue

void q_gelu_rows(float *C, long ldc, long rows, long N, int epilogue, int simd) {
    if (epilogue != DK_EPILOGUE_GELU) return;
    for (long r = 0; r < rows; r++) {
        if (simd) dk_bias_gelu(C + r * ldc, NULL, NULL, C + r * ldc, 1, N);
        else dk_bias_gelu_ref(C + r * ldc, NULL, NULL, C + r * ldc, 1, N);
    }
}

// ---------------------------------------------------------------- int8 reference

void dk_q8_gemm_ref(long M, long N, long K, const float *A, long lda, const void *packed,
                    const float *wScale, const float *bias, float *C, long ldc, float actScale,
                    int epilogue, void *workspace) {
    const long Kp = q_round4(K), pb = dk_q8_panel_bytes(K);
    int8_t *qa = workspace;
    for (long i = 0; i < M; i++) {
        float s;
        q8_quantize_row_ref(A + i * lda, K, Kp, actScale, qa, &s);
        for (long j = 0; j < N; j++) {
            const int8_t *w = (const int8_t *)((const uint8_t *)packed + j / QP * pb + 64) + (j % QP) * 4;
            int32_t sum = 0;
            for (long k = 0; k < Kp; k++) sum += (int32_t)qa[k] * w[(k / 4) * QP * 4 + k % 4];
            C[i * ldc + j] = fmaf((float)sum, s * wScale[j], bias ? bias[j] : 0.0f);
        }
        q_gelu_rows(C + i * ldc, ldc, 1, N, epilogue, 0);
    }
}

// ---------------------------------------------------------------- int8, activation blocks of 32

long dk_q8b_panel_bytes(long K) { return K / Q8B * Q8B_BLOCK_BYTES; }
long dk_q8b_packed_bytes(long N, long K) { return (N + QP - 1) / QP * dk_q8b_panel_bytes(K); }
long dk_q8b_workspace_bytes(long M, long K) {
    // The block's activation scales [rows][K/32] (64-byte multiple), then its int8 rows.
    const long rows = M < MC_Q ? M : MC_Q;
    return (rows * (K / Q8B) * 4 + 63) / 64 * 64 + rows * K + 64;
}

int dk_q8b_pack(const int8_t *W, long N, long K, void *packed) {
    if (K <= 0 || K % Q8B != 0) return -1;
    const long pb = dk_q8b_panel_bytes(K);
    for (long p = 0; p < N; p += QP)
        for (long b = 0; b < K / Q8B; b++) {
            uint8_t *blk = (uint8_t *)packed + p / QP * pb + b * Q8B_BLOCK_BYTES;
            int32_t corr[QP] = {0};
            int8_t *q = (int8_t *)(blk + 64);
            for (long j = 0; j < QP; j++)
                for (long kk = 0; kk < Q8B; kk++) {
                    int v = p + j < N ? W[(p + j) * K + b * Q8B + kk] : 0;
                    if (v < -127) v = -127;
                    q[(kk / 4) * QP * 4 + j * 4 + kk % 4] = (int8_t)v;
                    corr[j] += 128 * v;
                }
            memcpy(blk, corr, sizeof corr);
        }
    return 0;
}

void dk_q8b_quantize_rows(const float *X, long rows, long K, long ldx, int8_t *Q, float *scale) {
    for (long r = 0; r < rows; r++)
        for (long b = 0; b < K / Q8B; b++)
            q8_quantize_row_ref(X + r * ldx + b * Q8B, Q8B, Q8B, 0, Q + r * K + b * Q8B, scale + r * (K / Q8B) + b);
}

void dk_q8b_gemm_ref(long M, long N, long K, const float *A, long lda, const void *packed,
                     const float *wScale, const float *bias, float *C, long ldc, int epilogue, void *workspace) {
    if (K <= 0 || K % Q8B != 0) return;   // dk_q8b_pack refused such a K
    const long nb = K / Q8B, pb = dk_q8b_panel_bytes(K);
    float *s = workspace;
    int8_t *qa = (int8_t *)workspace + (nb * 4 + 63) / 64 * 64;
    for (long i = 0; i < M; i++) {
        dk_q8b_quantize_rows(A + i * lda, 1, K, lda, qa, s);
        for (long j = 0; j < N; j++) {
            float acc = 0;
            for (long b = 0; b < nb; b++) {
                const int8_t *w = (const int8_t *)((const uint8_t *)packed + j / QP * pb + b * Q8B_BLOCK_BYTES + 64) + (j % QP) * 4;
                int32_t sum = 0;
                for (long kk = 0; kk < Q8B; kk++) sum += (int32_t)qa[b * Q8B + kk] * w[(kk / 4) * QP * 4 + kk % 4];
                acc = fmaf((float)sum, s[b], acc);
            }
            C[i * ldc + j] = fmaf(acc, wScale[j], bias ? bias[j] : 0.0f);
        }
        q_gelu_rows(C + i * ldc, ldc, 1, N, epilogue, 0);
    }
}

void dk_q8b_gemm(long M, long N, long K, const float *A, long lda, const void *packed,
                 const float *wScale, const float *bias, float *C, long ldc, int epilogue, void *workspace) {
    if (M <= 0 || N <= 0 || K <= 0 || K % Q8B != 0) return;
    switch (int_path()) {
    case DK_PATH_AVX512: q8b_gemm_avx512(M, N, K, A, lda, packed, wScale, bias, C, ldc, epilogue, workspace); break;
    case DK_PATH_AVX2: q8b_gemm_avx2(M, N, K, A, lda, packed, wScale, bias, C, ldc, epilogue, workspace); break;
    default: dk_q8b_gemm_ref(M, N, K, A, lda, packed, wScale, bias, C, ldc, epilogue, workspace);
    }
}

// ---------------------------------------------------------------- int4 packing and reference

long dk_q4_panel_bytes(long K, long G) { return G > 0 ? K / G * (Q4_GROUP_HEADER + G * 8) : 0; }
long dk_q4_packed_bytes(long N, long K, long G) { return (N + QP - 1) / QP * dk_q4_panel_bytes(K, G); }

int dk_q4_pack(const uint8_t *Q, const float *scale, const uint8_t *zero, long N, long K, long G,
               void *packed) {
    if (G <= 0 || G % 8 != 0 || K % G != 0) return -1;
    const long groups = K / G, pb = dk_q4_panel_bytes(K, G), gb = Q4_GROUP_HEADER + G * 8;
    for (long p = 0; p < N; p += QP)
        for (long g = 0; g < groups; g++) {
            uint8_t *blk = (uint8_t *)packed + p / QP * pb + g * gb;
            float sc[QP] = {0};
            int32_t corr[QP] = {0};
            uint8_t *zb = blk + 128, *nib = blk + Q4_GROUP_HEADER;
            memset(nib, 0, (size_t)G * 8);
            for (long j = 0; j < QP; j++) {
                const long n = p + j;
                const int z = n < N ? (zero ? zero[n * groups + g] & 15 : 8) : 0;
                if (n < N) sc[j] = scale[n * groups + g];
                for (int t = 0; t < 4; t++) zb[j * 4 + t] = (uint8_t)z;
                for (long kk = 0; kk < G; kk++) {
                    const long k = g * G + kk;
                    const int q = n < N ? (Q[n * (K / 2) + k / 2] >> (4 * (k & 1))) & 15 : 0;
                    corr[j] += 128 * (q - z);
                    // k within the group: chunk kk/8, nibble (kk/4)&1, byte t = kk%4.
                    nib[(kk / 8) * 64 + j * 4 + kk % 4] |= (uint8_t)(q << (4 * ((kk / 4) & 1)));
                }
            }
            memcpy(blk, sc, sizeof sc);
            memcpy(blk + 64, corr, sizeof corr);
        }
    return 0;
}

void dk_q4_gemm_ref(long M, long N, long K, long G, const float *A, long lda, const void *packed,
                    const float *bias, float *C, long ldc, float actScale, int epilogue, void *workspace) {
    if (G <= 0 || G % 8 != 0 || K % G != 0) return;   // dk_q4_pack refused such a G
    const long groups = K / G, pb = dk_q4_panel_bytes(K, G), gb = Q4_GROUP_HEADER + G * 8;
    int8_t *qa = workspace;
    for (long i = 0; i < M; i++) {
        float s;
        q8_quantize_row_ref(A + i * lda, K, K, actScale, qa, &s);
        for (long j = 0; j < N; j++) {
            float acc = 0;
            for (long g = 0; g < groups; g++) {
                const uint8_t *blk = (const uint8_t *)packed + j / QP * pb + g * gb;
                int32_t sum = 0;
                for (long kk = 0; kk < G; kk++) sum += (int32_t)qa[g * G + kk] * q4_value(blk, j % QP, kk);
                float sc;
                memcpy(&sc, blk + (j % QP) * 4, sizeof sc);
                acc = fmaf((float)sum, sc, acc);
            }
            C[i * ldc + j] = fmaf(acc, s, bias ? bias[j] : 0.0f);
        }
        q_gelu_rows(C + i * ldc, ldc, 1, N, epilogue, 0);
    }
}

// ---------------------------------------------------------------- bf16

static inline uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);   // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}
static inline float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

void dk_f32_to_bf16(const float *x, uint16_t *y, long n) { for (long i = 0; i < n; i++) y[i] = f32_to_bf16(x[i]); }
void dk_bf16_to_f32(const uint16_t *x, float *y, long n) { for (long i = 0; i < n; i++) y[i] = bf16_to_f32(x[i]); }

long dk_bf16_panel_bytes(long K) { return q_round2(K) * QP * 2; }
long dk_bf16_packed_bytes(long N, long K) { return (N + QP - 1) / QP * dk_bf16_panel_bytes(K); }
long dk_bf16_workspace_bytes(long M, long K) { return (M < MC_Q ? M : MC_Q) * q_round2(K) * 2 + 64; }

void dk_bf16_pack(const uint16_t *W, long N, long K, void *packed) {
    const long Kp = q_round2(K), pb = dk_bf16_panel_bytes(K);
    for (long p = 0; p < N; p += QP) {
        uint16_t *panel = (uint16_t *)((uint8_t *)packed + p / QP * pb);
        for (long j = 0; j < QP; j++)
            for (long k = 0; k < Kp; k++)
                panel[(k / 2) * QP * 2 + j * 2 + k % 2] = (p + j < N && k < K) ? W[(p + j) * K + k] : 0;
    }
}

void bf16_round_row(const float *x, long K, long Kp, uint16_t *y) {
    dk_f32_to_bf16(x, y, K);
    for (long k = K; k < Kp; k++) y[k] = 0;
}

void dk_bf16_gemm_ref(long M, long N, long K, const float *A, long lda, const void *packed,
                      const float *bias, float *C, long ldc, int epilogue, void *workspace) {
    const long Kp = q_round2(K), pb = dk_bf16_panel_bytes(K);
    uint16_t *a = workspace;
    for (long i = 0; i < M; i++) {
        bf16_round_row(A + i * lda, K, Kp, a);
        for (long j = 0; j < N; j++) {
            const uint16_t *w = (const uint16_t *)((const uint8_t *)packed + j / QP * pb) + (j % QP) * 2;
            float acc = 0;
            for (long k = 0; k < Kp; k++) acc = fmaf(bf16_to_f32(a[k]), bf16_to_f32(w[(k / 2) * QP * 2 + k % 2]), acc);
            C[i * ldc + j] = bias ? acc + bias[j] : acc;
        }
        q_gelu_rows(C + i * ldc, ldc, 1, N, epilogue, 0);
    }
}

// ---------------------------------------------------------------- embedding rows

void dk_q8_dequantize_row(const int8_t *q, float scale, long n, float *out) {
    for (long c = 0; c < n; c++) out[c] = (float)q[c] * scale;
}

void dk_q4_dequantize_row(const uint8_t *q, const float *scale, const uint8_t *zero, long n, long G,
                          float *out) {
    for (long c = 0; c < n; c++) {
        const int v = (q[c / 2] >> (4 * (c & 1))) & 15;
        out[c] = (float)(v - (zero ? zero[c / G] : 8)) * scale[c / G];
    }
}

// ---------------------------------------------------------------- dispatch

void dk_q8_gemm(long M, long N, long K, const float *A, long lda, const void *packed,
                const float *wScale, const float *bias, float *C, long ldc, float actScale,
                int epilogue, void *workspace) {
    if (M <= 0 || N <= 0) return;
    switch (int_path()) {
    case DK_PATH_AVX512: q8_gemm_avx512(M, N, K, A, lda, packed, wScale, bias, C, ldc, actScale, epilogue, workspace); break;
    case DK_PATH_AVX2: q8_gemm_avx2(M, N, K, A, lda, packed, wScale, bias, C, ldc, actScale, epilogue, workspace); break;
    default: dk_q8_gemm_ref(M, N, K, A, lda, packed, wScale, bias, C, ldc, actScale, epilogue, workspace);
    }
}

void dk_q4_gemm(long M, long N, long K, long G, const float *A, long lda, const void *packed,
                const float *bias, float *C, long ldc, float actScale, int epilogue, void *workspace) {
    if (M <= 0 || N <= 0 || G <= 0 || G % 8 != 0 || K % G != 0) return;   // dk_q4_pack refused such a G
    switch (int_path()) {
    case DK_PATH_AVX512: q4_gemm_avx512(M, N, K, G, A, lda, packed, bias, C, ldc, actScale, epilogue, workspace, 0); break;
    case DK_PATH_AVX2: q4_gemm_avx2(M, N, K, G, A, lda, packed, bias, C, ldc, actScale, epilogue, workspace, 0); break;
    default: dk_q4_gemm_ref(M, N, K, G, A, lda, packed, bias, C, ldc, actScale, epilogue, workspace);
    }
}

// ---------------------------------------------------------------- int4 g32, activation blocks of 32

long dk_q4b_workspace_bytes(long M, long K) {
    // Block scales, the block's int8 rows, two unpacked int8 panels (as dk_q8_workspace_bytes).
    return q_block_scales_bytes(M, K) + (M < MC_Q ? M : MC_Q) * K + 32 * K + 64;
}

void dk_q4b_gemm_ref(long M, long N, long K, const float *A, long lda, const void *packed,
                     const float *bias, float *C, long ldc, int epilogue, void *workspace) {
    if (K <= 0 || K % Q8B != 0) return;
    const long nb = K / Q8B, pb = dk_q4_panel_bytes(K, Q8B), gb = Q4_GROUP_HEADER + Q8B * 8;
    float *s = workspace;
    int8_t *qa = (int8_t *)workspace + (nb * 4 + 63) / 64 * 64;
    for (long i = 0; i < M; i++) {
        dk_q8b_quantize_rows(A + i * lda, 1, K, lda, qa, s);
        for (long j = 0; j < N; j++) {
            float acc = 0;
            for (long b = 0; b < nb; b++) {
                const uint8_t *blk = (const uint8_t *)packed + j / QP * pb + b * gb;
                int32_t sum = 0;
                for (long kk = 0; kk < Q8B; kk++) sum += (int32_t)qa[b * Q8B + kk] * q4_value(blk, j % QP, kk);
                float sc;
                memcpy(&sc, blk + (j % QP) * 4, sizeof sc);
                acc = fmaf((float)sum, sc * s[b], acc);
            }
            C[i * ldc + j] = acc + (bias ? bias[j] : 0.0f);
        }
        q_gelu_rows(C + i * ldc, ldc, 1, N, epilogue, 0);
    }
}

void dk_q4b_gemm(long M, long N, long K, const float *A, long lda, const void *packed,
                 const float *bias, float *C, long ldc, int epilogue, void *workspace) {
    if (M <= 0 || N <= 0 || K <= 0 || K % Q8B != 0) return;
    switch (int_path()) {
    case DK_PATH_AVX512: q4_gemm_avx512(M, N, K, Q8B, A, lda, packed, bias, C, ldc, 0, epilogue, workspace, 1); break;
    case DK_PATH_AVX2: q4_gemm_avx2(M, N, K, Q8B, A, lda, packed, bias, C, ldc, 0, epilogue, workspace, 1); break;
    default: dk_q4b_gemm_ref(M, N, K, A, lda, packed, bias, C, ldc, epilogue, workspace);
    }
}

void dk_bf16_gemm(long M, long N, long K, const float *A, long lda, const void *packed,
                  const float *bias, float *C, long ldc, int epilogue, void *workspace) {
    if (M <= 0 || N <= 0) return;
    if (dk_has_avx512_bf16())
        bf16_gemm_avx512(M, N, K, A, lda, packed, bias, C, ldc, epilogue, workspace);
    else if (dk_has_avx2()) bf16_gemm_avx2(M, N, K, A, lda, packed, bias, C, ldc, epilogue, workspace);
    else dk_bf16_gemm_ref(M, N, K, A, lda, packed, bias, C, ldc, epilogue, workspace);
}
