// dk_training: the backward kernels of the encoder (their forwards are in ckernels.h).
//
// Softmax backward (with HF's padding mask), the exact-erf GELU derivative, LayerNorm
// backward from the row statistics the forward kept, the fixed-order column sums of bias
// and LayerNorm-parameter gradients, and the dropout mask. Each kernel has a portable
// `_ref` twin built from the same C body; the public entry point picks the AVX2+FMA build
// at run time. Every output element is computed by the same operations however the
// caller splits rows (or columns, for the column sums) over threads.
// Shapes: R rows, C columns, T keys per attention row; ld* are row strides in floats.
#ifndef DISTILLERY_DK_TRAINING_H
#define DISTILLERY_DK_TRAINING_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Softmax backward in place: d holds dP (w.r.t. the probabilities after dropout when
/// `dropout` is not NULL, whose mask is applied first); d becomes
/// scale · (p ⊙ (d − Σ_j p·d) + extra), with p == 0 giving 0 before `extra`. `extra`
/// (nullable) is a gradient w.r.t. the pre-mask scores s (the `scores` of dk_attention_head); the
/// result is the gradient w.r.t. the raw products x.
void dk_softmax_backward(float *d, long ldd, const float *p, long ldp, const float *dropout, long ldm,
                         const float *extra, long lde, long rows, long T, float scale);
void dk_softmax_backward_ref(float *d, long ldd, const float *p, long ldp, const float *dropout, long ldm,
                             const float *extra, long lde, long rows, long T, float scale);

/// dx = dy·(Φ(x) + x·φ(x)) over n floats (dx may alias dy).
void dk_gelu_backward(const float *dy, const float *x, float *dx, long n);
void dk_gelu_backward_ref(const float *dy, const float *x, float *dx, long n);

/// dx = rstd·(g − mean(g) − x̂·mean(g·x̂)), g = dy·γ, x̂ = (x − mean)·rstd, the two means
/// summed in double; written, or added when `accumulate`.
void dk_layernorm_backward(float *dx, const float *dy, const float *x, const float *mean,
                           const float *rstd, const float *gamma, long rows, long cols, int accumulate);
void dk_layernorm_backward_ref(float *dx, const float *dy, const float *x, const float *mean,
                               const float *rstd, const float *gamma, long rows, long cols, int accumulate);

/// dγ[c] += Σ_r dy[r, c]·x̂[r, c] and dβ[c] += Σ_r dy[r, c] over `cols` columns (pointers
/// at the first column, rows `ld` floats apart), rows added one at a time in order.
void dk_layernorm_param_backward(float *dgamma, float *dbeta, const float *dy, const float *x,
                                 const float *mean, const float *rstd, long rows, long cols, long ld);
void dk_layernorm_param_backward_ref(float *dgamma, float *dbeta, const float *dy, const float *x,
                                     const float *mean, const float *rstd, long rows, long cols, long ld);

/// out[c] += x[r, c] for r = 0, 1, … in order (a bias gradient), `cols` columns at the
/// pointers, rows `ld` floats apart.
void dk_column_sums(float *out, const float *x, long rows, long cols, long ld);
void dk_column_sums_ref(float *out, const float *x, long rows, long cols, long ld);

/// Inverted-dropout mask out[i] = u_i < p ? 0 : keep for i in [0, count), where u_i =
/// (mix(key ^ ((first + i)·0x9E3779B97F4A7C15)) >> 40) / 2²⁴ and mix is the SplitMix64
/// finalizer: the counter-based stream of DropoutRNG (Swift), element by element.
void dk_dropout_mask(uint64_t key, uint64_t first, long count, float p, float keep, float *out);
void dk_dropout_mask_ref(uint64_t key, uint64_t first, long count, float p, float keep, float *out);

/// One AdamW step over n elements (PyTorch's `torch.optim.AdamW` update, decoupled decay):
///   p ← p·decay_factor (when decay);  m ← m + (1−β1)(g − m);  v ← v·β2 + (1−β2)·g·g;
///   p ← p + negative_step · m / (sqrt(v) / correction2_root + eps).
/// Each element is rounded exactly as written (no fused multiply-adds), in any build.
void dk_adamw(float *p, float *m, float *v, const float *g, long n, int decay, float decay_factor,
              float one_minus_beta1, float beta2, float one_minus_beta2, float correction2_root,
              float eps, float negative_step);
void dk_adamw_ref(float *p, float *m, float *v, const float *g, long n, int decay, float decay_factor,
                  float one_minus_beta1, float beta2, float one_minus_beta2, float correction2_root,
                  float eps, float negative_step);

/// x[i] *= s over n floats (gradient clipping).
void dk_scale(float *x, long n, float s);
void dk_scale_ref(float *x, long n, float s);

#ifdef __cplusplus
}
#endif
#endif
