// dk_emulate_avx512: the AVX-512 intrinsics CKernels uses that SIMDe 0.7.4 (Debian 12's
// libsimde-dev) does not provide, written lane by lane from Intel's definitions. Included
// by dk_target.h in the emulation build only (see there). Masked loads and stores touch
// only the lanes their mask selects, as the instructions do: the kernels rely on it at
// row ends. The VNNI and BF16 instructions check that the emulated CPU has them
// (DISTILLERY_EMULATE_VNNI=0 / _BF16=0 take them away) and abort when it does not, where a
// real CPU would fault: a dispatcher that reaches them without asking is caught.
#ifndef DISTILLERY_DK_EMULATE_AVX512_H
#define DISTILLERY_DK_EMULATE_AVX512_H
#include "ckernels.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DK_EMU static inline __attribute__((always_inline))

DK_EMU simde__m512 dk_emu_maskz_loadu_ps(simde__mmask16 k, const void *p) {
    float v[16];
    for (int i = 0; i < 16; i++) v[i] = (k >> i) & 1 ? ((const float *)p)[i] : 0.0f;
    return simde_mm512_loadu_ps(v);
}

DK_EMU void dk_emu_mask_storeu_ps(void *p, simde__mmask16 k, simde__m512 a) {
    float v[16];
    simde_mm512_storeu_ps(v, a);
    for (int i = 0; i < 16; i++) if ((k >> i) & 1) ((float *)p)[i] = v[i];
}

DK_EMU void dk_emu_mask_storeu_epi16_256(void *p, simde__mmask16 k, simde__m256i a) {
    int16_t v[16];
    simde_mm256_storeu_si256((simde__m256i *)v, a);
    for (int i = 0; i < 16; i++) if ((k >> i) & 1) memcpy((int16_t *)p + i, &v[i], 2);
}

DK_EMU void dk_emu_mask_storeu_epi8_128(void *p, simde__mmask16 k, simde__m128i a) {
    int8_t v[16];
    simde_mm_storeu_si128((simde__m128i *)v, a);
    for (int i = 0; i < 16; i++) if ((k >> i) & 1) ((int8_t *)p)[i] = v[i];
}

/// vpmovdw / vpmovdb: each int32 lane truncated to its low 16 / 8 bits.
DK_EMU simde__m256i dk_emu_cvtepi32_epi16(simde__m512i a) {
    int32_t v[16];
    int16_t r[16];
    simde_mm512_storeu_si512(v, a);
    for (int i = 0; i < 16; i++) r[i] = (int16_t)(uint16_t)(uint32_t)v[i];
    return simde_mm256_loadu_si256((const simde__m256i *)r);
}

DK_EMU simde__m128i dk_emu_cvtepi32_epi8(simde__m512i a) {
    int32_t v[16];
    int8_t r[16];
    simde_mm512_storeu_si512(v, a);
    for (int i = 0; i < 16; i++) r[i] = (int8_t)(uint8_t)(uint32_t)v[i];
    return simde_mm_loadu_si128((const simde__m128i *)r);
}

/// vcvtdq2ps and vcvtps2dq (round to nearest even; out of range gives INT32_MIN), as two
/// AVX halves.
DK_EMU simde__m512 dk_emu_cvtepi32_ps(simde__m512i a) {
    int32_t v[16];
    float r[16];
    simde_mm512_storeu_si512(v, a);
    _mm256_storeu_ps(r, _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)v)));
    _mm256_storeu_ps(r + 8, _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(v + 8))));
    return simde_mm512_loadu_ps(r);
}

DK_EMU simde__m512i dk_emu_cvtps_epi32(simde__m512 a) {
    float v[16];
    int32_t r[16];
    simde_mm512_storeu_ps(v, a);
    _mm256_storeu_si256((__m256i *)r, _mm256_cvtps_epi32(_mm256_loadu_ps(v)));
    _mm256_storeu_si256((__m256i *)(r + 8), _mm256_cvtps_epi32(_mm256_loadu_ps(v + 8)));
    return simde_mm512_loadu_si512(r);
}

/// Sums and maxima over the 16 lanes in the order clang's lowering takes: halves, then
/// halves of those.
DK_EMU float dk_emu_reduce_add_ps(simde__m512 a) {
    float v[16];
    simde_mm512_storeu_ps(v, a);
    for (int w = 8; w >= 1; w /= 2)
        for (int i = 0; i < w; i++) v[i] = v[i] + v[i + w];
    return v[0];
}

DK_EMU float dk_emu_reduce_max_ps(simde__m512 a) {
    float v[16];
    simde_mm512_storeu_ps(v, a);
    for (int w = 8; w >= 1; w /= 2)
        for (int i = 0; i < w; i++) v[i] = v[i] > v[i + w] ? v[i] : v[i + w];
    return v[0];
}

static inline void dk_emu_require(int feature, const char *what) {
    if (!(dk_cpu_features() & feature)) {
        fprintf(stderr, "emulated AVX-512: %s executed on a CPU without it\n", what);
        abort();
    }
}

DK_EMU simde__m512i dk_emu_dpbusd_epi32(simde__m512i src, simde__m512i a, simde__m512i b) {
    dk_emu_require(DK_CPU_AVX512_VNNI, "vpdpbusd (AVX512_VNNI)");
    return simde_mm512_dpbusd_epi32(src, a, b);
}

DK_EMU simde__m512 dk_emu_dpbf16_ps(simde__m512 src, simde__m512bh a, simde__m512bh b) {
    dk_emu_require(DK_CPU_AVX512_BF16, "vdpbf16ps (AVX512_BF16)");
    return simde_mm512_dpbf16_ps(src, a, b);
}

#undef _mm512_dpbusd_epi32
#undef _mm512_dpbf16_ps
#define _mm512_dpbusd_epi32 dk_emu_dpbusd_epi32
#define _mm512_dpbf16_ps dk_emu_dpbf16_ps
#undef _mm512_maskz_loadu_ps
#undef _mm512_mask_storeu_ps
#undef _mm256_mask_storeu_epi16
#undef _mm_mask_storeu_epi8
#undef _mm512_cvtepi32_epi16
#undef _mm512_cvtepi32_epi8
#undef _mm512_cvtepi32_ps
#undef _mm512_cvtps_epi32
#undef _mm512_reduce_add_ps
#undef _mm512_reduce_max_ps
#undef _mm512_mask_cmp_ps_mask
#define _mm512_maskz_loadu_ps dk_emu_maskz_loadu_ps
#define _mm512_mask_storeu_ps dk_emu_mask_storeu_ps
#define _mm256_mask_storeu_epi16 dk_emu_mask_storeu_epi16_256
#define _mm_mask_storeu_epi8 dk_emu_mask_storeu_epi8_128
#define _mm512_cvtepi32_epi16 dk_emu_cvtepi32_epi16
#define _mm512_cvtepi32_epi8 dk_emu_cvtepi32_epi8
#define _mm512_cvtepi32_ps dk_emu_cvtepi32_ps
#define _mm512_cvtps_epi32 dk_emu_cvtps_epi32
#define _mm512_reduce_add_ps dk_emu_reduce_add_ps
#define _mm512_reduce_max_ps dk_emu_reduce_max_ps
#define _mm512_mask_cmp_ps_mask(k, a, b, imm) ((simde__mmask16)((k) & simde_mm512_cmp_ps_mask((a), (b), (imm))))

#undef DK_EMU
#endif
