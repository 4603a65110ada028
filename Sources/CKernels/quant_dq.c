// The dequantizing route of the quantized GEMMs (include/dk_quant.h): int8, int4 and bf16
// weights multiplied in fp32 by the fp32 GEMM's AVX2 loops and micro-kernel (gemm.c), each
// panel's K-block slice dequantized into a [kc][16] float buffer just before the row panels
// use it.
//
// Why: without VNNI, a byte dot product is vpmaddubsw + vpmaddwd; where the CPU has one
// vector-integer multiply pipe (AMD Zen 1/2) that is 16 multiply-adds per cycle, the same
// as two FMA pipes in fp32, so the integer GEMM (which also quantizes its activations)
// cannot beat fp32 there (benchmarks/results/2026-12-02-quantization-zen2.md). Dequantizing
// a slice costs ~1/mc of the slice's FMAs (mc ≤ 144 rows share it), the weights stay packed
// in memory (the file's size is the resident size), and activations stay fp32. bf16 takes
// it on every AVX2 CPU: its own AVX2 GEMM widens each weight to fp32 for every 4-row panel
// and rounds the activations, 0.4x the fp32 GEMM's speed on Zen 2, while widening a slice
// once per 144 rows is exact and nearly free.
//
// Numerics: w = (float)q · wScale[n] (int8) or (float)(q − zero) · scale (int4), each one
// rounding (bf16: none, the value is the upper half of its fp32); then exactly
// dk_gemm_packed_bias over those weights (the same per-K-block FMA chains), so the AVX2
// build equals dk_gemm_packed_bias of dk_dq_unpack's matrix bit for bit, and `_ref` equals
// dk_gemm_packed_bias_ref of it.
#include "dk_quant.h"
#include "dk_gemm.h"
#include "ckernels.h"
#include "gemm_internal.h"
#include "quant_internal.h"
#include <stdlib.h>
#include <string.h>

#include "dk_target.h"

typedef struct {
    dk_slice_source base;          // first: the driver's callback sees this struct
    int layout;
    long N, K, G, pb;              // pb: bytes per 16-column panel
    const uint8_t *packed;
    const float *wScale;           // int8 row scales [N]; NULL for int4
} dq_source;

long dk_dq_panel_bytes(int layout, long K, long G) {
    switch (layout) {
    case DK_DQ_Q8: return dk_q8_panel_bytes(K);
    case DK_DQ_Q8B: return dk_q8b_panel_bytes(K);
    case DK_DQ_BF16: return dk_bf16_panel_bytes(K);
    default: return dk_q4_panel_bytes(K, G);
    }
}

/// The layouts the route reads, as their packs validate them.
static int dq_valid(int layout, long K, long G) {
    switch (layout) {
    case DK_DQ_Q8: return K > 0;
    case DK_DQ_Q8B: return K > 0 && K % Q8B == 0;
    case DK_DQ_Q4: return G > 0 && G % 8 == 0 && K % G == 0;
    case DK_DQ_BF16: return K > 0;
    default: return 0;
    }
}

/// The dequantized weight of column n (< N) at k (< K).
static float dq_value(const dq_source *s, long n, long k) {
    const uint8_t *panel = s->packed + n / QP * s->pb;
    const long j = n % QP;
    switch (s->layout) {
    case DK_DQ_Q8:
        return (float)((const int8_t *)(panel + 64))[(k / 4) * 64 + j * 4 + k % 4] * s->wScale[n];
    case DK_DQ_Q8B: {
        const uint8_t *blk = panel + k / Q8B * Q8B_BLOCK_BYTES + 64;
        return (float)((const int8_t *)blk)[(k % Q8B / 4) * 64 + j * 4 + k % 4] * s->wScale[n];
    }
    case DK_DQ_BF16: {   // [Kp/2][16 columns][2 k] halves (dk_bf16_pack)
        const uint32_t bits = (uint32_t)((const uint16_t *)panel)[(k / 2) * QP * 2 + j * 2 + k % 2] << 16;
        float w;
        memcpy(&w, &bits, sizeof w);
        return w;
    }
    default: {
        const uint8_t *blk = panel + k / s->G * (Q4_GROUP_HEADER + s->G * 8);
        float scale;
        memcpy(&scale, blk + j * 4, sizeof scale);
        return (float)q4_value(blk, j, k % s->G) * scale;
    }
    }
}

static dq_source dq_make(int layout, long N, long K, long G, const void *packed, const float *wScale,
                         const float *(*fill)(const dk_slice_source *, long, long, long, float *)) {
    dq_source s = {{fill}, layout, N, K, G, dk_dq_panel_bytes(layout, K, G), packed, wScale};
    return s;
}

void dk_dq_unpack(int layout, long N, long K, long G, const void *packed, const float *wScale, float *W) {
    if (!dq_valid(layout, K, G)) return;
    const dq_source s = dq_make(layout, N, K, G, packed, wScale, NULL);
    for (long n = 0; n < N; n++)
        for (long k = 0; k < K; k++) W[n * K + k] = dq_value(&s, n, k);
}

long dk_dq_workspace_bytes(long M, long K) {
    // The AVX2 driver's packed A and one slice; the AVX-512 one reads A in place and fills two.
    return (dk_gemm_workspace_floats(M, K) + 2 * (dk_gemm_k_block(K) + 8) * QP) * (long)sizeof(float) + 64;
}

// ---------------------------------------------------------------- portable reference

/// The slice of panel j over [k0, k0 + kc), element by element (0 past N).
static const float *fill_ref(const dk_slice_source *base, long j, long k0, long kc, float *buf) {
    const dq_source *s = (const dq_source *)base;
    for (long k = 0; k < kc; k++)
        for (long l = 0; l < QP; l++) buf[k * QP + l] = j + l < s->N ? dq_value(s, j + l, k0 + k) : 0.0f;
    return buf;
}

void dk_dq_gemm_ref(int layout, long M, long N, long K, long G, const float *A, long lda, const void *packed,
                    const float *wScale, const float *bias, float *C, long ldc, void *workspace) {
    if (M <= 0 || N <= 0 || !dq_valid(layout, K, G)) return;
    // gemm.c's gemm_ref over the dequantized slices: per K block a float sum over k from
    // zero per (row, column), then stored with the bias or added to C.
    const dq_source s = dq_make(layout, N, K, G, packed, wScale, fill_ref);
    const long kcb = dk_gemm_k_block(K);
    float *slice = (float *)(((uintptr_t)workspace + 63) & ~(uintptr_t)63);
    for (long j = 0; j < N; j += QP) {
        const long cols = N - j < QP ? N - j : QP;
        for (long k0 = 0; k0 < K; k0 += kcb) {
            const long kc = K - k0 < kcb ? K - k0 : kcb;
            const float *w = fill_ref(&s.base, j, k0, kc, slice);
            for (long i = 0; i < M; i++) {
                float acc[QP] = {0};
                for (long k = 0; k < kc; k++) {
                    const float ak = A[i * lda + k0 + k];
                    for (long l = 0; l < QP; l++) acc[l] += ak * w[k * QP + l];
                }
                float *c = C + i * ldc + j;
                for (long l = 0; l < cols; l++) c[l] = k0 > 0 ? c[l] + acc[l] : bias ? bias[j + l] + acc[l] : acc[l];
            }
        }
    }
}

// ---------------------------------------------------------------- AVX2

/// One 4-k step of a panel: 64 bytes [16 columns][4 k] of unsigned bytes u (v0: columns
/// 0-7, one column per 32-bit lane; v1: 8-15) → dst[t][16] = (u − off) · scale for t =
/// 0..3, where `off` holds 2²³ plus each column's offset (its zero point, or 128 for
/// sign-flipped int8). Byte t of each lane is moved into the low mantissa bits of 2²³:
/// the float 2²³ + u, from which subtracting `off` gives u − offset exactly, then one
/// rounding by the scale: the same value as (float)(q − z) · scale. No shuffles or
/// int → float conversions: 14.6 against 23.9 cycles per 64 weights on Zen 2.
DK_AVX2 static inline void dq_step(__m256i v0, __m256i v1, __m256 off0, __m256 off1, __m256 s0, __m256 s1,
                                   float *dst) {
    const __m256i byte = _mm256_set1_epi32(255), two23 = _mm256_set1_epi32(0x4B000000);
#define DQ_BYTE(v, t) ((t) == 3 ? _mm256_srli_epi32(v, 24) : (t) == 0 ? _mm256_and_si256(v, byte) \
                                 : _mm256_and_si256(_mm256_srli_epi32(v, 8 * (t)), byte))
#define DQ_VALUE(v, t, off, sc) \
    _mm256_mul_ps(_mm256_sub_ps(_mm256_castsi256_ps(_mm256_or_si256(DQ_BYTE(v, t), two23)), off), sc)
    _mm256_storeu_ps(dst, DQ_VALUE(v0, 0, off0, s0));
    _mm256_storeu_ps(dst + 8, DQ_VALUE(v1, 0, off1, s1));
    _mm256_storeu_ps(dst + QP, DQ_VALUE(v0, 1, off0, s0));
    _mm256_storeu_ps(dst + QP + 8, DQ_VALUE(v1, 1, off1, s1));
    _mm256_storeu_ps(dst + 2 * QP, DQ_VALUE(v0, 2, off0, s0));
    _mm256_storeu_ps(dst + 2 * QP + 8, DQ_VALUE(v1, 2, off1, s1));
    _mm256_storeu_ps(dst + 3 * QP, DQ_VALUE(v0, 3, off0, s0));
    _mm256_storeu_ps(dst + 3 * QP + 8, DQ_VALUE(v1, 3, off1, s1));
#undef DQ_VALUE
#undef DQ_BYTE
}

/// How far ahead (bytes) a fill prefetches its packed bytes: one 64-byte line per step,
/// eight ahead, past the slice's end into the next panel's. Without it the fill waited on
/// the stream of a 12 MB int8 model (MiniLM) at 16 rows.
#define DQ_PREFETCH 512

DK_AVX2 static const float *fill_avx2(const dk_slice_source *base, long j, long k0, long kc, float *buf) {
    const dq_source *s = (const dq_source *)base;
    const uint8_t *panel = s->packed + j / QP * s->pb;
    const long kend = k0 + kc;
    if (s->layout == DK_DQ_Q4) {
        // k0 and kc are multiples of 8 (K is a multiple of G, G of 8), so are group
        // boundaries: one 64-byte load holds 8 k (low nibbles k..k+3, high k+4..k+7).
        const long gb = Q4_GROUP_HEADER + s->G * 8;
        const __m256i low = _mm256_set1_epi8(15), byte = _mm256_set1_epi32(255);
        for (long k = k0; k < kend;) {
            const uint8_t *blk = panel + k / s->G * gb;
            const __m256 s0 = _mm256_loadu_ps((const float *)blk), s1 = _mm256_loadu_ps((const float *)blk + 8);
            // dq_step's offsets: 2²³ plus each column's zero point (the low byte of its lane).
            const __m256i zp0 = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(blk + 128)), byte);
            const __m256i zp1 = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(blk + 160)), byte);
            const __m256 off0 = _mm256_add_ps(_mm256_cvtepi32_ps(zp0), _mm256_set1_ps(8388608.0f));
            const __m256 off1 = _mm256_add_ps(_mm256_cvtepi32_ps(zp1), _mm256_set1_ps(8388608.0f));
            const long gend = (k / s->G + 1) * s->G < kend ? (k / s->G + 1) * s->G : kend;
            for (; k < gend; k += 8) {
                const uint8_t *p = blk + Q4_GROUP_HEADER + (k % s->G / 8) * 64;
                _mm_prefetch((const char *)p + DQ_PREFETCH, _MM_HINT_T0);
                const __m256i v0 = _mm256_loadu_si256((const __m256i *)p), v1 = _mm256_loadu_si256((const __m256i *)(p + 32));
                dq_step(_mm256_and_si256(v0, low), _mm256_and_si256(v1, low), off0, off1, s0, s1, buf + (k - k0) * QP);
                dq_step(_mm256_and_si256(_mm256_srli_epi16(v0, 4), low), _mm256_and_si256(_mm256_srli_epi16(v1, 4), low),
                        off0, off1, s0, s1, buf + (k - k0 + 4) * QP);
            }
        }
        return buf;
    }
    if (s->layout == DK_DQ_BF16) {
        // k0 is even; per k pair, 64 bytes hold 16 columns × (k, k + 1) as 32-bit lanes
        // (low half k, high half k + 1): the fp32 values are the lane shifted up, and the
        // lane with its low half cleared. An odd K's last pair writes its zero-padded k = K
        // into the buffer's spare row.
        const __m256i high = _mm256_set1_epi32((int)0xFFFF0000u);
        for (long k = k0; k < kend; k += 2) {
            const __m256i *p = (const __m256i *)(panel + (k / 2) * 64);
            _mm_prefetch((const char *)p + DQ_PREFETCH, _MM_HINT_T0);
            const __m256i v0 = _mm256_loadu_si256(p), v1 = _mm256_loadu_si256(p + 1);
            float *d = buf + (k - k0) * QP;
            _mm256_storeu_ps(d, _mm256_castsi256_ps(_mm256_slli_epi32(v0, 16)));
            _mm256_storeu_ps(d + 8, _mm256_castsi256_ps(_mm256_slli_epi32(v1, 16)));
            _mm256_storeu_ps(d + QP, _mm256_castsi256_ps(_mm256_and_si256(v0, high)));
            _mm256_storeu_ps(d + QP + 8, _mm256_castsi256_ps(_mm256_and_si256(v1, high)));
        }
        return buf;
    }
    float sc[QP] = {0};
    memcpy(sc, s->wScale + j, (size_t)(s->N - j < QP ? s->N - j : QP) * sizeof(float));
    const __m256 s0 = _mm256_loadu_ps(sc), s1 = _mm256_loadu_ps(sc + 8);
    // int8 q as the unsigned byte q + 128 (its sign bit flipped), offset 2²³ + 128.
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    const __m256 off = _mm256_set1_ps(8388736.0f);
    // k0 is a multiple of 8; a K that is not a multiple of 4 (int8 per-row layout only)
    // is zero-padded to one, and the buffer has room for the rounded-up rows.
    for (long k = k0; k < kend; k += 4) {
        const uint8_t *p = s->layout == DK_DQ_Q8 ? panel + 64 + (k / 4) * 64
                                                 : panel + k / Q8B * Q8B_BLOCK_BYTES + 64 + (k % Q8B / 4) * 64;
        _mm_prefetch((const char *)p + DQ_PREFETCH, _MM_HINT_T0);
        dq_step(_mm256_xor_si256(_mm256_loadu_si256((const __m256i *)p), flip),
                _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + 32)), flip), off, off, s0, s1,
                buf + (k - k0) * QP);
    }
    return buf;
}

void dk_dq_gemm(int layout, long M, long N, long K, long G, const float *A, long lda, const void *packed,
                const float *wScale, const float *bias, float *C, long ldc, void *workspace) {
    if (M <= 0 || N <= 0 || !dq_valid(layout, K, G)) return;
    if (!dk_has_avx2()) {
        dk_dq_gemm_ref(layout, M, N, K, G, A, lda, packed, wScale, bias, C, ldc, workspace);
        return;
    }
    const dq_source s = dq_make(layout, N, K, G, packed, wScale, fill_avx2);
    float *ws = (float *)(((uintptr_t)workspace + 63) & ~(uintptr_t)63);
    if (dk_has_avx512()) dk_gemm_avx512_sliced(M, N, K, A, lda, &s.base, bias, C, ldc, ws);
    else dk_gemm_avx2_sliced(M, N, K, A, lda, &s.base, bias, C, ldc, ws, ws + dk_gemm_workspace_floats(M, K));
}

// ---------------------------------------------------------------- the route

static int route = -1, bf16_route = -1;

/// DISTILLERY_QUANT_ROUTE: 1 for "fp32", 0 for "int", -1 when unset (or anything else).
static int forced_route(void) {
    const char *want = getenv("DISTILLERY_QUANT_ROUTE");
    return want && strcmp(want, "fp32") == 0 ? 1 : want && strcmp(want, "int") == 0 ? 0 : -1;
}

int dk_quant_dequant_route(void) {
    if (route < 0) {
        route = forced_route();
        if (route < 0) {
            // Measured on Zen 2 only (the int8 GEMM 1.3x the fp32 one at batch 32); other
            // AVX2-only CPUs with two integer multiply pipes (Zen 3, Haswell to Coffee Lake)
            // keep the integer kernels until measured. An AVX-512 CPU without VNNI (Skylake-SP)
            // has only the AVX2 integer kernels, which ran slower than the AVX2 fp32 GEMM
            // even on Ice Lake (1303 vs 1176 ms, batch 32), against an AVX-512 fp32 GEMM
            // twice as fast as the AVX2 one there: the route, on the AVX-512 GEMM.
            __builtin_cpu_init();
            route = (dk_kernel_path() == DK_PATH_AVX2 && (__builtin_cpu_is("znver1") || __builtin_cpu_is("znver2"))) ||
                    (dk_has_avx512() && !dk_has_avx512_vnni());
        }
    }
    return route;
}

int dk_bf16_dequant_route(void) {
    if (bf16_route < 0) {
        bf16_route = forced_route();
        // Without vdpbf16ps the bf16 kernels convert every weight for every row panel and
        // round the activations: 2.25x the dequantizing route's time on Zen 2 (batch 32).
        if (bf16_route < 0) bf16_route = dk_has_avx2() && !dk_has_avx512_bf16();
    }
    return bf16_route;
}
