// Ops: the layers of BERT, each a `forward` with its `backward` right below it (attention
// is in AttentionOps.swift). Inference and training call the same functions.
//
// Follows llm.c (train_gpt2.c): plain functions over raw row-major float buffers, shapes
// as arguments, whatever the backward needs from the forward passed in explicitly.
// Backward functions *accumulate* (`+=`) into parameter gradients, so one gradient block
// can collect a whole pass; gradients of activations are written (`=`) unless a flag
// says to accumulate. Semantics follow PyTorch/HF `BertForSequenceClassification`:
// embeddings summed as (word + type) + position, `nn.Embedding(padding_idx:)` (the pad
// row gets no gradient), biased-variance LayerNorm, exact-erf GELU, softmax
// cross-entropy averaged over the batch.
// Compute: matrix products run on the packed GEMM (`PackedGemm` packs a weight per call;
// the model's Linear layers go through `WeightMatrix`, which may hold it packed once);
// a Linear's bias is the GEMM's starting value (its epilogue), not a separate pass. The
// row and element-wise kernels are C: the forwards of ckernels.h (bias-GELU, residual +
// LayerNorm) and the backwards of dk_training.h. Threads: Linear products split C's row
// or column panels; element-wise work is split at multiples of 64; reductions over rows
// (bias and LayerNorm-parameter gradients, the embedding scatter-add) give each thread
// whole columns and add rows in order. Results therefore depend only on the inputs and
// the thread count. LayerNorm statistics are kept in double; GELU and its derivative run
// in float like PyTorch's CPU kernels. Left out on purpose: mixed precision.
import CKernels
import DistilleryTensor
import Foundation

/// Elements per chunk when element-wise kernels are split over threads.
private let elementChunk = 64

// MARK: - Embeddings

/// out[i] = (word[ids[i]] + type[typeIds[i]]) + position[i % T], for `rows` = B·T tokens.
/// word: [V, H], position: [P, H], type: [Y, H], out: [rows, H]. A table given in quantized
/// storage (`quantizedWord`, `quantizedPosition`) is read from it instead of its fp32 pointer,
/// one dequantized row at a time (the same values its dequantized copy holds).
public func embeddingForward(out: UnsafeMutablePointer<Float>, ids: UnsafePointer<Int32>,
                             typeIds: UnsafePointer<Int32>, rows: Int, sequenceLength T: Int, hidden H: Int,
                             word: UnsafePointer<Float>, position: UnsafePointer<Float>,
                             type: UnsafePointer<Float>,
                             quantizedWord: QuantizedTensor? = nil, quantizedPosition: QuantizedTensor? = nil) {
    Compute.parallelRanges(rows) { r in
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 2 * H)
        defer { scratch.deallocate() }
        for i in r {
            let o = out + i * H, t = type + Int(typeIds[i]) * H
            var w = word + Int(ids[i]) * H, p = position + (i % T) * H
            if let q = quantizedWord { q.dequantizeRow(Int(ids[i]), into: scratch); w = UnsafePointer(scratch) }
            if let q = quantizedPosition { q.dequantizeRow(i % T, into: scratch + H); p = UnsafePointer(scratch + H) }
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
/// biased variance (statistics in double). Caches mean and rstd [rows] for the backward
/// (either may be nil when no backward follows).
public func layerNormForward(y: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>?,
                             rstd: UnsafeMutablePointer<Float>?, x: UnsafePointer<Float>,
                             gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
                             rows: Int, cols C: Int, eps: Float) {
    residualLayerNormForward(sum: nil, y: y, mean: mean, rstd: rstd, x: x, bias: nil, dropout: nil, residual: nil,
                             gamma: gamma, beta: beta, rows: rows, cols: C, eps: eps)
}

/// The post-LN step of a layer: s = (x + bias) ⊙ dropout + residual (each optional), kept in
/// `sum` when given (it may alias x), then y = LayerNorm(s) as `layerNormForward`. One
/// fused pass per row (dk_residual_layernorm); y may alias x.
public func residualLayerNormForward(sum: UnsafeMutablePointer<Float>?, y: UnsafeMutablePointer<Float>,
                                     mean: UnsafeMutablePointer<Float>?, rstd: UnsafeMutablePointer<Float>?,
                                     x: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                                     dropout: UnsafePointer<Float>?, residual: UnsafePointer<Float>?,
                                     gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
                                     rows: Int, cols C: Int, eps: Float) {
    Compute.parallelRanges(rows) { r in
        let o = r.lowerBound * C
        dk_residual_layernorm(x + o, bias, dropout.map { $0 + o }, residual.map { $0 + o }, sum.map { $0 + o },
                              y + o, mean.map { $0 + r.lowerBound }, rstd.map { $0 + r.lowerBound },
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

/// y [rows, out] = x [rows, in] · Wᵀ + b, W [out, in] (PyTorch layout), b optional. The
/// bias is the GEMM's starting value (`PackedGemm.multiply(bias:)`), not a second pass.
public func linearForward(y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>,
                          weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                          rows: Int, inFeatures: Int, outFeatures: Int) {
    guard rows > 0 else { return }
    PackedGemm.multiply(transA: false, transB: true, m: rows, n: outFeatures, k: inFeatures,
                        a: x, lda: inFeatures, b: weight, ldb: inFeatures,
                        c: y, ldc: outFeatures, accumulate: false, bias: bias)
}

/// dX = dY · W (written, or added when `accumulateInput`; skipped when dx is nil),
/// dW += dYᵀ · X, db += Σ_rows dY.
/// `dy` rows are `ldy` floats apart (default `outFeatures`; wider when dY is a column block
/// of a fused buffer, e.g. the query part of [rows, 3·A]).
public func linearBackward(dx: UnsafeMutablePointer<Float>?, accumulateInput: Bool = false,
                           dWeight: UnsafeMutablePointer<Float>, dBias: UnsafeMutablePointer<Float>?,
                           dy: UnsafePointer<Float>, ldy: Int? = nil, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                           rows: Int, inFeatures: Int, outFeatures: Int) {
    guard rows > 0 else { return }
    let ldy = ldy ?? outFeatures
    if let dx {
        PackedGemm.multiply(transA: false, transB: false, m: rows, n: inFeatures, k: outFeatures,
                            a: dy, lda: ldy, b: weight, ldb: inFeatures,
                            c: dx, ldc: inFeatures, accumulate: accumulateInput)
    }
    PackedGemm.multiply(transA: true, transB: false, m: outFeatures, n: inFeatures, k: rows,
                        a: dy, lda: ldy, b: x, ldb: inFeatures,
                        c: dWeight, ldc: inFeatures, accumulate: true)
    if let dBias {
        Compute.parallelRanges(outFeatures) { c in
            dk_column_sums(dBias + c.lowerBound, dy + c.lowerBound, rows, c.count, ldy)
        }
    }
}

// MARK: - GELU (exact erf)

/// y = x · Φ(x) = 0.5 · x · (1 + erf(x/√2)), element-wise over `count` floats.
public func geluForward(y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, count: Int) {
    Compute.parallelRanges(count, granularity: elementChunk) { r in
        dk_bias_gelu(x + r.lowerBound, nil, nil, y + r.lowerBound, 1, r.count)
    }
}

/// act = GELU(x + bias) over x [rows, C], bias [C]; `pre` (nil, or aliasing x) keeps x + bias
/// for the backward. One fused pass per row (dk_bias_gelu); act may alias x.
public func biasGeluForward(act: UnsafeMutablePointer<Float>, pre: UnsafeMutablePointer<Float>?,
                            x: UnsafePointer<Float>, bias: UnsafePointer<Float>, rows: Int, cols C: Int) {
    Compute.parallelRanges(rows) { r in
        let o = r.lowerBound * C
        dk_bias_gelu(x + o, bias, pre.map { $0 + o }, act + o, r.count, C)
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
