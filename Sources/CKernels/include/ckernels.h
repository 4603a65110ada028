// CKernels: the element-wise and attention kernels of the fp32 encoder.
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

/// Returns 1 when the AVX2+FMA builds of the kernels are in use, 0 for the portable ones.
int dk_has_avx2(void);

/// x[r, c] = gelu_erf(x[r, c] + bias[c]) for x: [R, C], exact-erf GELU (HF "gelu").
void dk_bias_gelu(float *x, const float *bias, long rows, long cols);
void dk_bias_gelu_ref(float *x, const float *bias, long rows, long cols);

/// x[r, :] = LayerNorm(x[r, :] + bias + residual[r, :]) * gamma + beta, x: [R, C].
/// `bias` and `residual` may be NULL. Two-pass mean/variance in float, like PyTorch.
void dk_bias_residual_layernorm(float *x, const float *bias, const float *residual,
                                const float *gamma, const float *beta,
                                long rows, long cols, float eps);
void dk_bias_residual_layernorm_ref(float *x, const float *bias, const float *residual,
                                    const float *gamma, const float *beta,
                                    long rows, long cols, float eps);

/// One attention head of one sequence: out[t, :] = softmax(scale * q[t] . k^T + mask) v.
/// q, k, v: rows of `ld` floats, the head's D columns at the pointer ([T, D] views);
/// out: rows of `ldo` floats. `keep[j]` != 0 marks a key that may be attended (padding
/// keys get probability exactly 0, as HF's finfo.min mask does). A query row whose keys
/// are all masked gets a uniform average, as HF does. `scratch` holds
/// dk_attention_scratch_floats(T, D) floats.
/// When `probs` is not NULL it receives the [T, T] attention probabilities.
void dk_attention_head(const float *q, const float *k, const float *v, long ld,
                       float *out, long ldo, const int32_t *keep, long T, long D,
                       float scale, float *scratch, float *probs);
void dk_attention_head_ref(const float *q, const float *k, const float *v, long ld,
                           float *out, long ldo, const int32_t *keep, long T, long D,
                           float scale, float *scratch, float *probs);

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
