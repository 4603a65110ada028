// CKernels: the element-wise and attention kernels of the fp32 encoder, one family for
// inference and training (the backward kernels are in dk_training.h).
//
// Every kernel has a portable `_ref` twin built from the same C body; the public entry
// point picks the AVX2+FMA build at run time (`__builtin_cpu_supports`), never through
// -march flags, so one binary runs on any x86-64. Matrix products are in dk_gemm.h, the
// training kernels in dk_training.h. Shapes use short names: R rows, C columns, T tokens, D head size.
#ifndef DISTILLERY_CKERNELS_H
#define DISTILLERY_CKERNELS_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// CPU features, as bits of dk_cpu_features().
/// DK_CPU_AVX512_BW_VL stands for BW, VL and DQ together.
enum { DK_CPU_AVX2_FMA = 1, DK_CPU_AVX512F = 2, DK_CPU_AVX512_VNNI = 4, DK_CPU_AVX512_BF16 = 8, DK_CPU_AVX512_BW_VL = 16,
       DK_CPU_AVX512_EMULATED = 32 /* the AVX-512 bits come from the emulation build (dk_target.h), not the CPU */ };
/// Kernel paths, as dk_kernel_path() returns them.
/// Ordered: a path implies the ones below it (AVX-512 = F, BW, VL and DQ, plus AVX2+FMA).
/// The AVX-512 int8 and int4 kernels also need VNNI and the bf16 ones AVX512_BF16: without
/// them, quantized layers run their AVX2 kernels or the dequantizing route (dk_quant.h).
enum { DK_PATH_REF = 0, DK_PATH_AVX2 = 1, DK_PATH_AVX512 = 2 };

/// The CPU's features (DK_CPU_* bits), probed once.
int dk_cpu_features(void);
/// The kernel path every dispatcher takes: the best the CPU has, or the one the
/// environment variable DISTILLERY_KERNELS forces (`ref`, `avx2`, `avx512`; a path the
/// CPU lacks gives the best one below it).
int dk_kernel_path(void);
/// 1 when DISTILLERY_KERNELS chose the path.
int dk_kernel_path_forced(void);
/// Returns 1 when the AVX2+FMA builds of the kernels are in use (also on the AVX-512
/// path, where kernels without an AVX-512 build run them), 0 for the portable ones.
/// GELU, the attention softmax and the GEMMs have AVX-512 builds.
int dk_has_avx2(void);
/// Returns 1 on the AVX-512 path.
int dk_has_avx512(void);
/// Returns 1 on the AVX-512 path of a CPU with VNNI: the int8/int4 kernels' AVX-512 builds.
int dk_has_avx512_vnni(void);
/// Returns 1 on the AVX-512 path of a CPU with AVX512_BF16: the bf16 kernels' AVX-512 build.
int dk_has_avx512_bf16(void);

/// One spin-wait hint (x86 `pause`: ~37 ns on Zen 2), for threads polling a flag.
static inline void dk_cpu_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/// act[r, c] = gelu_erf(x[r, c] + bias[c]) for x: [R, C], exact-erf GELU (HF "gelu").
/// `bias` may be NULL; `pre` (nullable) receives x + bias, the pre-activation the backward
/// reads. `pre` and `act` may alias x.
void dk_bias_gelu(const float *x, const float *bias, float *pre, float *act, long rows, long cols);
void dk_bias_gelu_ref(const float *x, const float *bias, float *pre, float *act, long rows, long cols);

/// The post-LN step of a BERT layer, per row of x [R, C]:
///   s = (x + bias) ⊙ dropout + residual      (bias [C], dropout and residual [R, C]; each may be NULL)
///   y = (s − mean(s)) / sqrt(var(s) + eps) ⊙ gamma + beta   (biased variance)
/// Statistics are computed in double (two passes). `sum` (nullable, may alias x) keeps s
/// for the backward; `mean` and `rstd` (nullable, [R]) keep the statistics as float.
/// y may alias x.
void dk_residual_layernorm(const float *x, const float *bias, const float *dropout, const float *residual,
                           float *sum, float *y, float *mean, float *rstd, const float *gamma,
                           const float *beta, long rows, long cols, float eps);
void dk_residual_layernorm_ref(const float *x, const float *bias, const float *dropout, const float *residual,
                               float *sum, float *y, float *mean, float *rstd, const float *gamma,
                               const float *beta, long rows, long cols, float eps);

/// One attention head of one sequence: out[t, :] = w · (softmax(scale · q[t]·kᵀ + mask) ⊙ dropout[t]) · v.
/// q, k, v: rows of `ld` floats, the head's D columns at the pointer ([T, D] views);
/// out: rows of `ldo` floats. `keep[j]` != 0 marks a key that may be attended (padding
/// keys get probability exactly 0, as HF's finfo.min mask does). A query row whose keys
/// are all masked gets a uniform average, as HF does. `scratch` holds
/// dk_attention_scratch_floats(T, D) floats. Optional outputs ([T, T], NULL to skip):
/// `probs` the probabilities (before dropout), `scores` scale · q·kᵀ before the mask.
/// `dropout` (nullable, [T, T]) multiplies the probabilities used for the product (0 or
/// 1/(1−p)); `weight` is the head-mask value (HF's `head_mask`; 1 for none).
void dk_attention_head(const float *q, const float *k, const float *v, long ld,
                       float *out, long ldo, const int32_t *keep, long T, long D,
                       float scale, float *scratch, float *probs, float *scores,
                       const float *dropout, float weight);
void dk_attention_head_ref(const float *q, const float *k, const float *v, long ld,
                           float *out, long ldo, const int32_t *keep, long T, long D,
                           float scale, float *scratch, float *probs, float *scores,
                           const float *dropout, float weight);

/// Scratch floats dk_attention_head needs for T tokens and head size D.
long dk_attention_scratch_floats(long T, long D);

/// Vectorisable exp used by the softmax, exposed for its accuracy test.
void dk_exp_ref(const float *x, float *y, long n);
/// Vectorisable erf used by GELU, exposed for its accuracy test.
void dk_erf_ref(const float *x, float *y, long n);

#ifdef __cplusplus
}
#endif
#endif
