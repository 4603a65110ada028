// AttentionOps: multi-head self-attention, forward with its backward right below it.
//
// Semantics follow HF `BertSelfAttention` (eager path): scores q·kᵀ/√D plus the padding
// mask as torch.finfo(float32).min (masked keys get probability exactly 0, a row whose
// keys are all masked becomes uniform), softmax, dropout on the probabilities, HF's
// `head_mask` multiplying them, then the product with v. q, k and v are column blocks of
// one buffer whose rows are `ld` floats apart — the fused [B·T, 3·A] projection output —
// so one layout serves inference and training. Each (sequence, head) is one job on one
// thread; the forward is the C kernel `dk_attention_head` (two products on the packed
// GEMM around a vectorised masked softmax, with a scalar `_ref` twin), the backward runs
// its four products on `PackedGemm.single`. Left out on purpose: relative positions,
// causal masks, attention without a padding mask.
import CKernels
import DistilleryTensor
import Foundation

/// The additive score of a masked key, torch.finfo(float32).min as in HF's eager attention:
/// masked keys get probability exactly 0, and a row whose keys are all masked becomes uniform.
public let attentionMaskedScore: Float = -Float.greatestFiniteMagnitude

/// This thread's scratch block of `floats` floats for one attention job.
@inline(__always)
private func jobScratch(_ floats: Int) -> UnsafeMutablePointer<Float> {
    guard let p = dk_thread_buffer(DK_SLOT_USER, floats) else {
        fatalError("attention: could not allocate a \(floats)-float per-thread scratch block")
    }
    return p
}

/// Scaled dot-product attention for every (sequence, head).
///
/// q, k, v: [B·T, heads·D] column blocks whose rows are `ld` floats apart (default
/// heads·D), head h in columns h·D..<(h+1)·D; ctx: [B·T, heads·D], rows heads·D apart.
/// mask: [B, T], 1 = real key, 0 = padding. probs: nil, or [B, heads, T, T] receiving the
/// softmax of q·kᵀ/√D + mask (before dropout; the backward reads it). scores: nil, or
/// [B, heads, T, T] receiving q·kᵀ/√D before the mask. dropoutMask: like probs, or nil.
/// headWeights: nil, or [heads] (HF's head_mask for this layer).
/// ctx = (w_h · probs ⊙ dropoutMask) · v.
public func attentionForward(ctx: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>?,
                             scores: UnsafeMutablePointer<Float>? = nil,
                             q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, ld: Int? = nil,
                             mask: UnsafePointer<Int32>, dropoutMask: UnsafePointer<Float>?,
                             headWeights: UnsafePointer<Float>? = nil,
                             batch B: Int, sequenceLength T: Int, heads: Int, headSize D: Int) {
    let A = heads * D, ld = ld ?? A, TT = T * T
    let scale = 1 / Float(D).squareRoot()
    let scratchFloats = dk_attention_scratch_floats(T, D)
    Compute.parallelRanges(B * heads) { range in
        let scratch = jobScratch(scratchFloats)
        for job in range {
            let b = job / heads, h = job % heads
            let qkvOffset = b * T * ld + h * D
            dk_attention_head(q + qkvOffset, k + qkvOffset, v + qkvOffset, ld, ctx + b * T * A + h * D, A,
                              mask + b * T, T, D, scale, scratch, probs.map { $0 + job * TT },
                              scores.map { $0 + job * TT }, dropoutMask.map { $0 + job * TT },
                              headWeights?[h] ?? 1)
        }
    }
}

/// Backward of `attentionForward`: dq, dk, dv (same layout as q, k, v: rows `ld` apart)
/// are written. With P the probabilities, P̃ = w_h · P ⊙ mask: dV = P̃ᵀ·dCtx,
/// dW = dCtx·Vᵀ, dP = w_h · dW ⊙ mask, dS = P ⊙ (dP − rowsum(P ⊙ dP)) + dScores,
/// dQ = dS·K/√D, dK = dSᵀ·Q/√D. `dScores` (nil, or [B, heads, T, T]) is an extra
/// gradient w.r.t. the pre-mask scores q·kᵀ/√D. With `headWeights`, `dHeadWeights`
/// ([B·heads], written) receives each job's dLoss/dw_h = Σ dW ⊙ P ⊙ mask; summing over
/// the batch gives the head-mask gradient.
public func attentionBackward(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                              dv: UnsafeMutablePointer<Float>, dCtx: UnsafePointer<Float>,
                              probs: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                              v: UnsafePointer<Float>, ld: Int? = nil, dropoutMask: UnsafePointer<Float>?,
                              dScores: UnsafePointer<Float>? = nil,
                              headWeights: UnsafePointer<Float>? = nil, dHeadWeights: UnsafeMutablePointer<Double>? = nil,
                              batch B: Int, sequenceLength T: Int, heads: Int, headSize D: Int) {
    let A = heads * D, ld = ld ?? A, TT = T * T
    let scale = 1 / Float(D).squareRoot()
    Compute.parallelRanges(B * heads) { range in
        let dS = jobScratch(TT)
        for job in range {
            let b = job / heads, h = job % heads
            let off = b * T * ld + h * D, ctxOff = b * T * A + h * D
            let p = probs + job * TT, m = dropoutMask.map { $0 + job * TT }
            let w = headWeights?[h] ?? 1
            // dV = P̃ᵀ · dCtx (P̃ in dS for now)
            var weights = p
            if m != nil || w != 1 {
                if let m { for i in 0..<TT { dS[i] = p[i] * m[i] } } else { dS.update(from: p, count: TT) }
                if w != 1 { for i in 0..<TT { dS[i] *= w } }
                weights = UnsafePointer(dS)
            }
            PackedGemm.single(transA: true, transB: false, m: T, n: D, k: T, a: weights, lda: T,
                              b: dCtx + ctxOff, ldb: A, c: dv + off, ldc: ld, accumulate: false)
            // dW = dCtx_bh · v_bhᵀ, then dS = scale · (P ⊙ (w·dW·mask − Σ_j P·w·dW·mask) + dScores)
            PackedGemm.single(transA: false, transB: true, m: T, n: T, k: D, a: dCtx + ctxOff, lda: A,
                              b: v + off, ldb: ld, c: dS, ldc: T, accumulate: false)
            if let dHeadWeights {
                var sum = 0.0
                for i in 0..<TT { sum += Double(dS[i]) * Double(m.map { p[i] * $0[i] } ?? p[i]) }
                dHeadWeights[job] = sum
            }
            if w != 1 { for i in 0..<TT { dS[i] *= w } }
            dk_softmax_backward(dS, T, p, T, m, T, dScores.map { $0 + job * TT }, T, T, T, scale)
            // dQ = dS · k_bh, dK = dSᵀ · q_bh
            PackedGemm.single(transA: false, transB: false, m: T, n: D, k: T, a: dS, lda: T,
                              b: k + off, ldb: ld, c: dq + off, ldc: ld, accumulate: false)
            PackedGemm.single(transA: true, transB: false, m: T, n: D, k: T, a: dS, lda: T,
                              b: q + off, ldb: ld, c: dk + off, ldc: ld, accumulate: false)
        }
    }
}
