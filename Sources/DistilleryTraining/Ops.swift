// Ops: the layers of BERT training, each a `forward` with its `backward` right below it.
//
// Follows llm.c (train_gpt2.c): plain functions over raw row-major float buffers, shapes
// as arguments, whatever the backward needs from the forward passed in explicitly.
// Backward functions *accumulate* (`+=`) into parameter gradients, so one gradient block
// can collect a whole pass; gradients of activations are written (`=`) unless a flag
// says to accumulate. Semantics follow PyTorch/HF `BertForSequenceClassification`:
// embeddings summed as (word + type) + position, `nn.Embedding(padding_idx:)` (the pad
// row gets no gradient), biased-variance LayerNorm, exact-erf GELU, attention masked as
// HF's eager path does by adding torch.finfo(float32).min (masked keys get probability
// exactly 0, a row with every key masked is uniform), softmax cross-entropy averaged over
// the batch.
// Compute: every matrix product runs on the packed AVX2 GEMM (`PackedGemm`; weights are
// packed per call, which costs one pass over them against rows× as many flops); the
// row and element-wise kernels (softmax, GELU, LayerNorm, column sums) are the C kernels
// of dk_training.h. Threads: Linear products split C's row or column panels; attention
// makes each (sequence, head) a job and runs its small products single-threaded inside;
// element-wise work is split at multiples of 64; reductions over rows (bias and
// LayerNorm-parameter gradients, the embedding scatter-add) give each thread whole
// columns and add rows in order. Results therefore depend only on the inputs and the
// thread count. LayerNorm statistics are kept in double; softmax, GELU and their
// derivatives run in float like PyTorch's CPU kernels. Left out on purpose: fusing the
// element-wise kernels into the GEMMs, mixed precision, attention without a mask.
import CKernels
import DistilleryTensor
import Foundation

/// Elements per chunk when element-wise kernels are split over threads.
private let elementChunk = 64

// MARK: - Embeddings

/// out[i] = (word[ids[i]] + type[typeIds[i]]) + position[i % T], for `rows` = B·T tokens.
/// word: [V, H], position: [P, H], type: [Y, H], out: [rows, H].
public func embeddingForward(out: UnsafeMutablePointer<Float>, ids: UnsafePointer<Int32>,
                             typeIds: UnsafePointer<Int32>, rows: Int, sequenceLength T: Int, hidden H: Int,
                             word: UnsafePointer<Float>, position: UnsafePointer<Float>,
                             type: UnsafePointer<Float>) {
    Compute.parallelRanges(rows) { r in
        for i in r {
            let o = out + i * H, w = word + Int(ids[i]) * H
            let p = position + (i % T) * H, t = type + Int(typeIds[i]) * H
            for c in 0..<H { o[c] = (w[c] + t[c]) + p[c] }
        }
    }
}

/// Scatter-adds dOut [rows, H] into the three tables' gradients. Rows whose id equals
/// `paddingId` add nothing to dWord (as `nn.Embedding(padding_idx:)`). Ids repeat, so
/// threads split the H columns and each adds the rows in order.
public func embeddingBackward(dOut: UnsafePointer<Float>, ids: UnsafePointer<Int32>,
                              typeIds: UnsafePointer<Int32>, rows: Int, sequenceLength T: Int, hidden H: Int,
                              paddingId: Int?, dWord: UnsafeMutablePointer<Float>,
                              dPosition: UnsafeMutablePointer<Float>, dType: UnsafeMutablePointer<Float>) {
    Compute.parallelRanges(H) { cols in
        for i in 0..<rows {
            let d = dOut + i * H
            let p = dPosition + (i % T) * H, t = dType + Int(typeIds[i]) * H
            for c in cols { p[c] += d[c]; t[c] += d[c] }
            if Int(ids[i]) != paddingId {
                let w = dWord + Int(ids[i]) * H
                for c in cols { w[c] += d[c] }
            }
        }
    }
}

// MARK: - LayerNorm

/// y = (x − mean) · rstd · γ + β per row of x [rows, C], rstd = 1/sqrt(var + eps) with the
/// biased variance (statistics in double). Caches mean and rstd [rows] for the backward.
public func layerNormForward(y: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                             rstd: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>,
                             gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
                             rows: Int, cols C: Int, eps: Float) {
    Compute.parallelRanges(rows) { r in
        dk_layernorm_forward(x + r.lowerBound * C, y + r.lowerBound * C, mean + r.lowerBound, rstd + r.lowerBound,
                             gamma, beta, r.count, C, eps)
    }
}

/// dx = rstd · (dx̂ − mean(dx̂) − x̂ · mean(dx̂ · x̂)) with dx̂ = dy · γ and x̂ = (x − mean) · rstd;
/// dγ += Σ_rows dy · x̂, dβ += Σ_rows dy. dx is written (`accumulate` adds instead).
public func layerNormBackward(dx: UnsafeMutablePointer<Float>, dGamma: UnsafeMutablePointer<Float>,
                              dBeta: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>,
                              x: UnsafePointer<Float>, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                              gamma: UnsafePointer<Float>, rows: Int, cols C: Int, accumulate: Bool = false) {
    Compute.parallelRanges(rows) { r in
        let o = r.lowerBound * C
        dk_layernorm_backward(dx + o, dy + o, x + o, mean + r.lowerBound, rstd + r.lowerBound, gamma,
                              r.count, C, accumulate ? 1 : 0)
    }
    // Parameter gradients: each thread owns whole columns and adds the rows in order.
    Compute.parallelRanges(C) { c in
        dk_layernorm_param_backward(dGamma + c.lowerBound, dBeta + c.lowerBound, dy + c.lowerBound, x + c.lowerBound,
                                    mean, rstd, rows, c.count, C)
    }
}

// MARK: - Linear

/// y [rows, out] = x [rows, in] · Wᵀ + b, W [out, in] (PyTorch layout), b optional.
public func linearForward(y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>,
                          weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                          rows: Int, inFeatures: Int, outFeatures: Int) {
    guard rows > 0 else { return }
    if let bias {
        Compute.parallelRanges(rows) { r in
            for i in r { (y + i * outFeatures).update(from: bias, count: outFeatures) }
        }
    }
    PackedGemm.multiply(transA: false, transB: true, m: rows, n: outFeatures, k: inFeatures,
                        a: x, lda: inFeatures, b: weight, ldb: inFeatures,
                        c: y, ldc: outFeatures, accumulate: bias != nil)
}

/// dX = dY · W (written, or added when `accumulateInput`; skipped when dx is nil),
/// dW += dYᵀ · X, db += Σ_rows dY.
public func linearBackward(dx: UnsafeMutablePointer<Float>?, accumulateInput: Bool = false,
                           dWeight: UnsafeMutablePointer<Float>, dBias: UnsafeMutablePointer<Float>?,
                           dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                           rows: Int, inFeatures: Int, outFeatures: Int) {
    guard rows > 0 else { return }
    if let dx {
        PackedGemm.multiply(transA: false, transB: false, m: rows, n: inFeatures, k: outFeatures,
                            a: dy, lda: outFeatures, b: weight, ldb: inFeatures,
                            c: dx, ldc: inFeatures, accumulate: accumulateInput)
    }
    PackedGemm.multiply(transA: true, transB: false, m: outFeatures, n: inFeatures, k: rows,
                        a: dy, lda: outFeatures, b: x, ldb: inFeatures,
                        c: dWeight, ldc: inFeatures, accumulate: true)
    if let dBias {
        Compute.parallelRanges(outFeatures) { c in
            dk_column_sums(dBias + c.lowerBound, dy + c.lowerBound, rows, c.count, outFeatures)
        }
    }
}

// MARK: - GELU (exact erf)

/// y = x · Φ(x) = 0.5 · x · (1 + erf(x/√2)), element-wise over `count` floats.
public func geluForward(y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, count: Int) {
    Compute.parallelRanges(count, granularity: elementChunk) { r in
        dk_gelu_forward(x + r.lowerBound, y + r.lowerBound, r.count)
    }
}

/// dx = dy · (Φ(x) + x · φ(x)), φ the standard normal density (dx may alias dy).
public func geluBackward(dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, x: UnsafePointer<Float>, count: Int) {
    Compute.parallelRanges(count, granularity: elementChunk) { r in
        dk_gelu_backward(dy + r.lowerBound, x + r.lowerBound, dx + r.lowerBound, r.count)
    }
}

// MARK: - Tanh

/// y = tanh(x), element-wise.
public func tanhForward(y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, count: Int) {
    for i in 0..<count { y[i] = Float(Foundation.tanh(Double(x[i]))) }
}

/// dx = dy · (1 − y²), from the forward's output y.
public func tanhBackward(dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, y: UnsafePointer<Float>, count: Int) {
    for i in 0..<count { dx[i] = dy[i] * (1 - y[i] * y[i]) }
}

// MARK: - Dropout

/// y = x · mask, where mask holds 0 (dropped) or 1/(1−p) (kept); see `DropoutRNG.mask`.
public func dropoutForward(y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>,
                           mask: UnsafePointer<Float>, count: Int) {
    Compute.parallelRanges(count, granularity: elementChunk) { r in for i in r { y[i] = x[i] * mask[i] } }
}

/// dx = dy · mask (same mask as the forward).
public func dropoutBackward(dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>,
                            mask: UnsafePointer<Float>, count: Int) {
    Compute.parallelRanges(count, granularity: elementChunk) { r in for i in r { dx[i] = dy[i] * mask[i] } }
}

/// y += x, element-wise (a residual connection).
public func residualAdd(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    Compute.parallelRanges(count, granularity: elementChunk) { r in for i in r { y[i] += x[i] } }
}

// MARK: - Multi-head self-attention

/// The additive score of a masked key, torch.finfo(float32).min as in HF's eager attention:
/// masked keys get probability exactly 0, and a row whose keys are all masked becomes uniform.
public let attentionMaskedScore: Float = -Float.greatestFiniteMagnitude

/// This thread's [T, T] scratch block for one attention job.
@inline(__always)
private func headScratch(_ T: Int) -> UnsafeMutablePointer<Float> {
    guard let p = dk_thread_buffer(DK_SLOT_USER, T * T) else {
        fatalError("attention: could not allocate a \(T)×\(T) per-thread scratch block")
    }
    return p
}

/// Scaled dot-product attention for every (sequence, head).
///
/// q, k, v, ctx: [B·T, heads·D], head h in columns h·D..<(h+1)·D (the Linear outputs).
/// mask: [B, T], 1 = real key, 0 = padding. probs: [B, heads, T, T], softmax of
/// q·kᵀ/√D + mask, cached for the backward (before dropout). scores: nil, or [B, heads, T, T]
/// receiving q·kᵀ/√D before the mask. dropoutMask: like probs, or nil.
/// ctx = (probs · dropoutMask) · v. Each (sequence, head) is one job on one thread: its two
/// products run single-threaded on the packed GEMM, the masked softmax in between.
public func attentionForward(ctx: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
                             scores: UnsafeMutablePointer<Float>? = nil,
                             q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                             mask: UnsafePointer<Int32>, dropoutMask: UnsafePointer<Float>?,
                             batch B: Int, sequenceLength T: Int, heads: Int, headSize D: Int) {
    let A = heads * D, jobs = B * heads, TT = T * T
    let scale = 1 / Float(D).squareRoot()
    Compute.parallelRanges(jobs) { range in
        let dropped = dropoutMask == nil ? nil : headScratch(T)
        for job in range {
            let off = (job / heads) * T * A + (job % heads) * D
            let p = probs + job * TT
            // S = q_bh · k_bhᵀ, then scale, mask and softmax in place.
            PackedGemm.single(transA: false, transB: true, m: T, n: T, k: D, a: q + off, lda: A,
                              b: k + off, ldb: A, c: p, ldc: T, accumulate: false)
            dk_masked_softmax(p, T, p, T, scores.map { $0 + job * TT }, T, mask + (job / heads) * T, T, T, scale)
            var weights = UnsafePointer(p)
            if let dropped, let dropoutMask {
                let m = dropoutMask + job * TT
                for i in 0..<TT { dropped[i] = p[i] * m[i] }
                weights = UnsafePointer(dropped)
            }
            // ctx_bh = P̃ · v_bh
            PackedGemm.single(transA: false, transB: false, m: T, n: D, k: T, a: weights, lda: T,
                              b: v + off, ldb: A, c: ctx + off, ldc: A, accumulate: false)
        }
    }
}

/// Backward of `attentionForward`: dq, dk, dv [B·T, heads·D] are written.
/// With P the probabilities, P̃ = P·mask: dV = P̃ᵀ·dCtx, dP = (dCtx·Vᵀ)·mask,
/// dS = P ⊙ (dP − rowsum(P ⊙ dP)) + dScores, dQ = dS·K/√D, dK = dSᵀ·Q/√D. `dScores`
/// (nil, or [B, heads, T, T]) is an extra gradient w.r.t. the pre-mask scores q·kᵀ/√D.
public func attentionBackward(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                              dv: UnsafeMutablePointer<Float>, dCtx: UnsafePointer<Float>,
                              probs: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                              v: UnsafePointer<Float>, dropoutMask: UnsafePointer<Float>?,
                              dScores: UnsafePointer<Float>? = nil,
                              batch B: Int, sequenceLength T: Int, heads: Int, headSize D: Int) {
    let A = heads * D, jobs = B * heads, TT = T * T
    let scale = 1 / Float(D).squareRoot()
    Compute.parallelRanges(jobs) { range in
        let dS = headScratch(T)
        for job in range {
            let off = (job / heads) * T * A + (job % heads) * D
            let p = probs + job * TT, m = dropoutMask.map { $0 + job * TT }
            // dV = P̃ᵀ · dCtx (P̃ in dS for now)
            var weights = p
            if let m {
                for i in 0..<TT { dS[i] = p[i] * m[i] }
                weights = UnsafePointer(dS)
            }
            PackedGemm.single(transA: true, transB: false, m: T, n: D, k: T, a: weights, lda: T,
                              b: dCtx + off, ldb: A, c: dv + off, ldc: A, accumulate: false)
            // dP = dCtx_bh · v_bhᵀ, then dS = scale · (P ⊙ (dP·mask − Σ_j P·dP·mask) + dScores)
            PackedGemm.single(transA: false, transB: true, m: T, n: T, k: D, a: dCtx + off, lda: A,
                              b: v + off, ldb: A, c: dS, ldc: T, accumulate: false)
            dk_softmax_backward(dS, T, p, T, m, T, dScores.map { $0 + job * TT }, T, T, T, scale)
            // dQ = dS · k_bh, dK = dSᵀ · q_bh
            PackedGemm.single(transA: false, transB: false, m: T, n: D, k: T, a: dS, lda: T,
                              b: k + off, ldb: A, c: dq + off, ldc: A, accumulate: false)
            PackedGemm.single(transA: true, transB: false, m: T, n: D, k: T, a: dS, lda: T,
                              b: q + off, ldb: A, c: dk + off, ldc: A, accumulate: false)
        }
    }
}

// MARK: - Softmax cross-entropy

/// loss = (1/B) Σ_b −log softmax(logits_b)[label_b] over logits [B, L]; also writes the
/// softmax probabilities [B, L] the backward needs. Log-sum-exp in Double, max-shifted,
/// so logits of any magnitude are safe.
public func crossEntropyForward(probs: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>,
                                labels: UnsafePointer<Int32>, batch B: Int, classes L: Int) -> Double {
    var total = 0.0
    for b in 0..<B {
        let z = logits + b * L
        var m = -Double.infinity
        for j in 0..<L { m = max(m, Double(z[j])) }
        var sum = 0.0
        for j in 0..<L { sum += Foundation.exp(Double(z[j]) - m) }
        let logSum = m + Foundation.log(sum)
        for j in 0..<L { probs[b * L + j] = Float(Foundation.exp(Double(z[j]) - logSum)) }
        total += logSum - Double(z[Int(labels[b])])
    }
    return total / Double(B)
}

/// dLogits = dLoss · (softmax − onehot(label)) / B, written. Recomputed from the logits
/// in Double with p_label − 1 taken as −Σ_{j≠label} p_j, so a confident, correct row keeps
/// its tiny gradient (~e^-margin) instead of rounding to 0 as 1 − p in Float would.
public func crossEntropyBackward(dLogits: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>,
                                 labels: UnsafePointer<Int32>, batch B: Int, classes L: Int, dLoss: Float = 1) {
    let s = Double(dLoss) / Double(B)
    let p = UnsafeMutablePointer<Double>.allocate(capacity: L)
    defer { p.deallocate() }
    for b in 0..<B {
        let z = logits + b * L, y = Int(labels[b])
        var m = -Double.infinity
        for j in 0..<L { m = max(m, Double(z[j])) }
        var sum = 0.0
        for j in 0..<L { p[j] = Foundation.exp(Double(z[j]) - m); sum += p[j] }
        var others = 0.0
        for j in 0..<L where j != y { p[j] /= sum; others += p[j] }
        for j in 0..<L { dLogits[b * L + j] = Float((j == y ? -others : p[j]) * s) }
    }
}
