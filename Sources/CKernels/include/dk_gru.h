// dk_gru: one direction of a GRU layer over a padded batch, forward and backward.
//
// PyTorch's nn.GRU convention (gate order r, z, n in the stacked weights):
//   r = σ(x·W_irᵀ + b_ir + h·W_hrᵀ + b_hr)     z = σ(x·W_izᵀ + b_iz + h·W_hzᵀ + b_hz)
//   n = tanh(x·W_inᵀ + b_in + r ⊙ (h·W_hnᵀ + b_hn))     h' = (1 − z) ⊙ n + z ⊙ h
// The input projections of every time step (x·W_ihᵀ + b_ih, [B, T, 3H]) are one GEMM the
// caller makes; these kernels run the recurrence: per step the [B, H]×[H, 3H] product on
// the packed GEMM of dk_gemm.h, then the gate math. Sequence b is `lengths[b]` tokens long:
// a step t ≥ lengths[b] leaves its h unchanged and writes zeros, so the reverse direction
// starts at each sequence's own last token with h = 0 (as PyTorch's packed sequences do).
// The initial state is zero. Shapes: B sequences, T steps, H hidden units; ld* are row
// strides in floats (an output row of a bidirectional layer holds both directions).
// Each entry point has a `_ref` twin (portable gate math, `_ref` GEMM); the dispatched one
// takes the AVX-512 or AVX2+FMA build of the gate math chosen by dk_kernel_path().
#ifndef DISTILLERY_DK_GRU_H
#define DISTILLERY_DK_GRU_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Floats per (b, t) of the forward's cache: r, z, n and h·W_hnᵀ + b_hn, H each.
#define DK_GRU_CACHE_PER_STEP 4

/// The gate math of one step of one sequence: xp [3H] (input projections, b_ih included),
/// hp [3H] (h·W_hhᵀ + b_hh); h [H] is replaced by h' and h' is also written to `out` [H].
/// `cache` (nullable, [4H]) receives r, z, n and the n-gate's recurrent term.
void dk_gru_gates(long H, const float *xp, const float *hp, float *h, float *out, float *cache);
void dk_gru_gates_ref(long H, const float *xp, const float *hp, float *h, float *out, float *cache);

/// The backward of dk_gru_gates for dh = dL/dh' [H], given the step's h [H] before it and
/// its cache: dxg [3H] = dL/d(input projections), dhg [3H] = dL/d(h·W_hhᵀ + b_hh), and
/// dhprev [H] = dh ⊙ z (the direct path; the caller adds dhg·W_hh).
void dk_gru_gates_backward(long H, const float *dh, const float *hprev, const float *cache,
                           float *dxg, float *dhg, float *dhprev);
void dk_gru_gates_backward_ref(long H, const float *dh, const float *hprev, const float *cache,
                               float *dxg, float *dhg, float *dhprev);

/// One direction forward: xp [B, T, 3H] (contiguous), W_hh [3H, H] packed with
/// dk_pack_weight, b_hh [3H]; writes out[(b·T + t)·ldo + j] for j < H (zeros past a
/// sequence's length) and, when `cache` is not NULL, cache [B, T, 4H] for the backward.
/// `reverse` runs t = T−1 … 0. Returns 0, or −1 when a scratch buffer could not be allocated.
int dk_gru_forward(long B, long T, long H, const float *xp, const float *whh_packed, const float *bhh,
                   const int32_t *lengths, int reverse, float *out, long ldo, float *cache);
int dk_gru_forward_ref(long B, long T, long H, const float *xp, const float *whh_packed, const float *bhh,
                       const int32_t *lengths, int reverse, float *out, long ldo, float *cache);

/// One direction backward: dout (rows `ldd` apart) = dL/d(out) of the forward, `out` and
/// `cache` as the forward wrote them, W_hh packed as its transpose (dk_pack_weight_transposed
/// (W_hh, H, H, 3H, ·): the [H, 3H] matrix W_hhᵀ). Writes dxg [B, T, 3H] = dL/d(xp) and
/// dhg [B, T, 3H] = dL/d(h·W_hhᵀ + b_hh) per step (zero rows past a sequence's length);
/// dL/dW_hh = Σ dhgᵀ·h_prev, dL/db_hh and dL/db_ih are their column sums — the caller's GEMMs.
/// Gradients at padded steps of `dout` are ignored. Returns 0, or −1 on allocation failure.
int dk_gru_backward(long B, long T, long H, const float *dout, long ldd, const float *out, long ldo,
                    const float *cache, const float *whh_t_packed, const int32_t *lengths, int reverse,
                    float *dxg, float *dhg);
int dk_gru_backward_ref(long B, long T, long H, const float *dout, long ldd, const float *out, long ldo,
                        const float *cache, const float *whh_t_packed, const int32_t *lengths, int reverse,
                        float *dxg, float *dhg);

#ifdef __cplusplus
}
#endif
#endif
