// Ops: the layers of BERT training, each a `forward` with its `backward` right below it.
//
// Follows llm.c (train_gpt2.c): plain functions over raw row-major float buffers, shapes
// as arguments, whatever the backward needs from the forward passed in explicitly.
// Backward functions *accumulate* (`+=`) into parameter gradients, so one gradient block
// can collect a whole pass; gradients of activations are written (`=`) unless a flag
// says to accumulate. Semantics follow PyTorch/HF `BertForSequenceClassification`:
// embeddings summed as (word + type) + position, `nn.Embedding(padding_idx:)` (the pad
// row gets no gradient), biased-variance LayerNorm, exact-erf GELU, attention masked by
// adding `-Float.greatestFiniteMagnitude` (torch.finfo(float32).min, as HF's eager path),
// softmax cross-entropy averaged over the batch.
// Threads: element-wise work and the attention softmax are row-parallel with
// `Compute.parallelRanges`; matrix products — including attention's per-(sequence, head)
// products, issued one after another — go through `gemm` (OpenBLAS threads) outside any
// parallel region;
// reductions over rows (bias and LayerNorm-parameter gradients, embedding scatter-add)
// run serially in a fixed order so results depend only on the thread count.
// Row statistics, erf, exp and tanh are evaluated in Double and rounded once.
// Left out on purpose: fused kernels, mixed precision, attention without a mask.
import DistilleryTensor
import Foundation

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
/// `paddingId` add nothing to dWord (as `nn.Embedding(padding_idx:)`). Serial: ids repeat.
public func embeddingBackward(dOut: UnsafePointer<Float>, ids: UnsafePointer<Int32>,
                              typeIds: UnsafePointer<Int32>, rows: Int, sequenceLength T: Int, hidden H: Int,
                              paddingId: Int?, dWord: UnsafeMutablePointer<Float>,
                              dPosition: UnsafeMutablePointer<Float>, dType: UnsafeMutablePointer<Float>) {
    for i in 0..<rows {
        let d = dOut + i * H
        let p = dPosition + (i % T) * H, t = dType + Int(typeIds[i]) * H
        for c in 0..<H { p[c] += d[c]; t[c] += d[c] }
        if Int(ids[i]) != paddingId {
            let w = dWord + Int(ids[i]) * H
            for c in 0..<H { w[c] += d[c] }
        }
    }
}

// MARK: - LayerNorm

/// y = (x − mean) · rstd · γ + β per row of x [rows, C], rstd = 1/sqrt(var + eps) with the
/// biased variance. Caches mean and rstd [rows] for the backward.
public func layerNormForward(y: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                             rstd: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>,
                             gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
                             rows: Int, cols C: Int, eps: Float) {
    Compute.parallelRanges(rows) { r in
        for i in r {
            let xr = x + i * C, yr = y + i * C
            var sum = 0.0
            for c in 0..<C { sum += Double(xr[c]) }
            let m = sum / Double(C)
            var sq = 0.0
            for c in 0..<C { let d = Double(xr[c]) - m; sq += d * d }
            let s = 1 / (sq / Double(C) + Double(eps)).squareRoot()
            for c in 0..<C { yr[c] = Float((Double(xr[c]) - m) * s) * gamma[c] + beta[c] }
            mean[i] = Float(m)
            rstd[i] = Float(s)
        }
    }
}

/// dx = rstd · (dx̂ − mean(dx̂) − x̂ · mean(dx̂ · x̂)) with dx̂ = dy · γ and x̂ = (x − mean) · rstd;
/// dγ += Σ_rows dy · x̂, dβ += Σ_rows dy. dx is written (`accumulate` adds instead).
public func layerNormBackward(dx: UnsafeMutablePointer<Float>, dGamma: UnsafeMutablePointer<Float>,
                              dBeta: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>,
                              x: UnsafePointer<Float>, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                              gamma: UnsafePointer<Float>, rows: Int, cols C: Int, accumulate: Bool = false) {
    Compute.parallelRanges(rows) { r in
        for i in r {
            let xr = x + i * C, dyr = dy + i * C, dxr = dx + i * C
            let m = mean[i], s = rstd[i]
            var sumG = 0.0, sumGX = 0.0
            for c in 0..<C {
                let g = Double(dyr[c] * gamma[c])
                sumG += g
                sumGX += g * Double((xr[c] - m) * s)
            }
            let meanG = sumG / Double(C), meanGX = sumGX / Double(C)
            for c in 0..<C {
                let xh = Double((xr[c] - m) * s)
                let v = Float(Double(s) * (Double(dyr[c] * gamma[c]) - meanG - xh * meanGX))
                dxr[c] = accumulate ? dxr[c] + v : v
            }
        }
    }
    // Parameter gradients: a fixed-order serial reduction over rows.
    for i in 0..<rows {
        let xr = x + i * C, dyr = dy + i * C
        let m = mean[i], s = rstd[i]
        for c in 0..<C {
            dGamma[c] += dyr[c] * ((xr[c] - m) * s)
            dBeta[c] += dyr[c]
        }
    }
}

// MARK: - Linear

/// y [rows, out] = x [rows, in] · Wᵀ + b, W [out, in] (PyTorch layout), b optional.
public func linearForward(y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>,
                          weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                          rows: Int, inFeatures: Int, outFeatures: Int) {
    guard rows > 0 else { return }
    if let bias {
        for i in 0..<rows { (y + i * outFeatures).update(from: bias, count: outFeatures) }
    }
    gemm(transA: false, transB: true, m: rows, n: outFeatures, k: inFeatures,
         a: x, lda: inFeatures, b: weight, ldb: inFeatures,
         beta: bias == nil ? 0 : 1, c: y, ldc: outFeatures)
}

/// dX = dY · W (written, or added when `accumulateInput`; skipped when dx is nil),
/// dW += dYᵀ · X, db += Σ_rows dY.
public func linearBackward(dx: UnsafeMutablePointer<Float>?, accumulateInput: Bool = false,
                           dWeight: UnsafeMutablePointer<Float>, dBias: UnsafeMutablePointer<Float>?,
                           dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                           rows: Int, inFeatures: Int, outFeatures: Int) {
    guard rows > 0 else { return }
    if let dx {
        gemm(transA: false, transB: false, m: rows, n: inFeatures, k: outFeatures,
             a: dy, lda: outFeatures, b: weight, ldb: inFeatures,
             beta: accumulateInput ? 1 : 0, c: dx, ldc: inFeatures)
    }
    gemm(transA: true, transB: false, m: outFeatures, n: inFeatures, k: rows,
         a: dy, lda: outFeatures, b: x, ldb: inFeatures, beta: 1, c: dWeight, ldc: inFeatures)
    if let dBias {
        for i in 0..<rows {
            let d = dy + i * outFeatures
            for j in 0..<outFeatures { dBias[j] += d[j] }
        }
    }
}

// MARK: - GELU (exact erf)

private let inverseSqrt2 = 1 / 2.0.squareRoot()
private let inverseSqrt2Pi = 1 / (2 * Double.pi).squareRoot()

/// y = x · Φ(x) = 0.5 · x · (1 + erf(x/√2)), element-wise over `count` floats.
public func geluForward(y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, count: Int) {
    Compute.parallelRanges(count) { r in
        for i in r {
            let v = Double(x[i])
            y[i] = Float(0.5 * v * (1 + Foundation.erf(v * inverseSqrt2)))
        }
    }
}

/// dx = dy · (Φ(x) + x · φ(x)), φ the standard normal density.
public func geluBackward(dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, x: UnsafePointer<Float>, count: Int) {
    Compute.parallelRanges(count) { r in
        for i in r {
            let v = Double(x[i])
            let cdf = 0.5 * (1 + Foundation.erf(v * inverseSqrt2))
            let pdf = inverseSqrt2Pi * Foundation.exp(-0.5 * v * v)
            dx[i] = Float(Double(dy[i]) * (cdf + v * pdf))
        }
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
    Compute.parallelRanges(count) { r in for i in r { y[i] = x[i] * mask[i] } }
}

/// dx = dy · mask (same mask as the forward).
public func dropoutBackward(dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>,
                            mask: UnsafePointer<Float>, count: Int) {
    Compute.parallelRanges(count) { r in for i in r { dx[i] = dy[i] * mask[i] } }
}

// MARK: - Multi-head self-attention

/// The additive score of a masked key, torch.finfo(float32).min as in HF's eager attention:
/// masked keys get probability exactly 0, and a row whose keys are all masked becomes uniform.
public let attentionMaskedScore: Float = -Float.greatestFiniteMagnitude

/// Scaled dot-product attention for every (sequence, head).
///
/// q, k, v, ctx: [B·T, heads·D], head h in columns h·D..<(h+1)·D (the Linear outputs).
/// mask: [B, T], 1 = real key, 0 = padding. probs: [B, heads, T, T], softmax of
/// q·kᵀ/√D + mask, cached for the backward (before dropout). dropoutMask: like probs, or nil.
/// ctx = (probs · dropoutMask) · v. The three products per (sequence, head) are GEMMs run
/// one after another (BLAS threads); the masked softmax is row-parallel in between.
public func attentionForward(ctx: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
                             q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                             mask: UnsafePointer<Int32>, dropoutMask: UnsafePointer<Float>?,
                             batch B: Int, sequenceLength T: Int, heads: Int, headSize D: Int) {
    let A = heads * D, jobs = B * heads
    let scale = 1 / Float(D).squareRoot()
    // scores[job] = (q_bh · k_bhᵀ) · scale
    for job in 0..<jobs {
        let off = (job / heads) * T * A + (job % heads) * D
        gemm(transA: false, transB: true, m: T, n: T, k: D, alpha: scale, a: q + off, lda: A,
             b: k + off, ldb: A, beta: 0, c: probs + job * T * T, ldc: T)
    }
    // Masked softmax per row, in place; the dropped-out copy when dropout is on.
    let dropped = dropoutMask.map { _ in UnsafeMutablePointer<Float>.allocate(capacity: jobs * T * T) }
    defer { dropped?.deallocate() }
    Compute.parallelRanges(jobs * T) { rows in
        let e = UnsafeMutablePointer<Double>.allocate(capacity: T)
        defer { e.deallocate() }
        for r in rows {
            let b = r / (heads * T)
            let row = probs + r * T, m = mask + b * T
            var maxScore = -Float.infinity
            for j in 0..<T {
                if m[j] == 0 { row[j] += attentionMaskedScore }
                maxScore = max(maxScore, row[j])
            }
            var sum = 0.0
            for j in 0..<T { e[j] = Foundation.exp(Double(row[j]) - Double(maxScore)); sum += e[j] }
            for j in 0..<T { row[j] = Float(e[j] / sum) }
            if let dropped, let dropoutMask {
                for j in 0..<T { dropped[r * T + j] = row[j] * dropoutMask[r * T + j] }
            }
        }
    }
    let weights = UnsafePointer(dropped ?? probs)
    // ctx_bh = P̃ · v_bh
    for job in 0..<jobs {
        let off = (job / heads) * T * A + (job % heads) * D
        gemm(transA: false, transB: false, m: T, n: D, k: T, a: weights + job * T * T, lda: T,
             b: v + off, ldb: A, beta: 0, c: ctx + off, ldc: A)
    }
}

/// Backward of `attentionForward`: dq, dk, dv [B·T, heads·D] are written.
/// With P the probabilities, P̃ = P·mask: dV = P̃ᵀ·dCtx, dP = (dCtx·Vᵀ)·mask,
/// dS = P ⊙ (dP − rowsum(P ⊙ dP)), dQ = dS·K/√D, dK = dSᵀ·Q/√D.
public func attentionBackward(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                              dv: UnsafeMutablePointer<Float>, dCtx: UnsafePointer<Float>,
                              probs: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                              v: UnsafePointer<Float>, dropoutMask: UnsafePointer<Float>?,
                              batch B: Int, sequenceLength T: Int, heads: Int, headSize D: Int) {
    let A = heads * D, jobs = B * heads, n = jobs * T * T
    let scale = 1 / Float(D).squareRoot()
    let dS = UnsafeMutablePointer<Float>.allocate(capacity: n)
    defer { dS.deallocate() }
    // P̃ (in dS for now) for dV = P̃ᵀ · dCtx.
    var weights = probs
    if let dropoutMask {
        Compute.parallelRanges(n) { r in for i in r { dS[i] = probs[i] * dropoutMask[i] } }
        weights = UnsafePointer(dS)
    }
    for job in 0..<jobs {
        let off = (job / heads) * T * A + (job % heads) * D
        gemm(transA: true, transB: false, m: T, n: D, k: T, a: weights + job * T * T, lda: T,
             b: dCtx + off, ldb: A, beta: 0, c: dv + off, ldc: A)
    }
    // dP = dCtx_bh · v_bhᵀ
    for job in 0..<jobs {
        let off = (job / heads) * T * A + (job % heads) * D
        gemm(transA: false, transB: true, m: T, n: T, k: D, a: dCtx + off, lda: A,
             b: v + off, ldb: A, beta: 0, c: dS + job * T * T, ldc: T)
    }
    // dS = P ⊙ (dP·mask − Σ_j P·dP·mask) · scale, row-parallel, in place.
    Compute.parallelRanges(jobs * T) { rows in
        for r in rows {
            let p = probs + r * T, d = dS + r * T
            if let dropoutMask { for j in 0..<T { d[j] *= dropoutMask[r * T + j] } }
            var rowDot = 0.0
            for j in 0..<T { rowDot += Double(p[j]) * Double(d[j]) }
            let c = Float(rowDot)
            for j in 0..<T { d[j] = p[j] == 0 ? 0 : p[j] * (d[j] - c) * scale }
        }
    }
    // dQ = dS · k_bh, dK = dSᵀ · q_bh
    for job in 0..<jobs {
        let off = (job / heads) * T * A + (job % heads) * D
        gemm(transA: false, transB: false, m: T, n: D, k: T, a: dS + job * T * T, lda: T,
             b: k + off, ldb: A, beta: 0, c: dq + off, ldc: A)
        gemm(transA: true, transB: false, m: T, n: D, k: T, a: dS + job * T * T, lda: T,
             b: q + off, ldb: A, beta: 0, c: dk + off, ldc: A)
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
