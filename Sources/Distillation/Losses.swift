// Losses: the distillation losses, each a `forward` returning the loss with its
// `backward` right below it, over raw row-major float buffers (llm.c style, as
// DistilleryTraining's Ops.swift).
//
// References: DistilBERT (`distiller.py`: KL(softmax(t/T) ‖ softmax(s/T))·T² with
// batchmean reduction, cosine embedding loss on the final hidden states of real tokens),
// TinyBERT (`task_distill.py`: soft cross-entropy on the logits, MSE on the embedding
// output and on hidden states through a learned `fit_dense`, MSE on the pre-softmax
// attention scores q·kᵀ/√D). Hard-label CE is DistilleryTraining's
// `crossEntropyForward/Backward` (`predictionLoss*` below combines the two).
// Normalisation (ours, stated per loss): means over *real* tokens only. Hidden MSE divides
// Σ (s−t)² over real tokens by (#real tokens · H); attention MSE divides Σ over real query ×
// real key positions by (heads · Σ_b n_b²); cosine averages 1 − cos over real tokens.
// TinyBERT's code instead averages over every position, padding included (padded keys are
// zeroed in both student and teacher, padded queries are compared like real ones), so its
// loss shrinks with the amount of padding in a batch; ours does not. A batch without a real
// token has loss 0 and gradient 0.
// Backward functions write the student gradient (`accumulate` adds instead) and scale by
// `dLoss` — pass the loss weight there. Sums are taken in Double, results rounded once.
// Teachers are frozen: no gradient flows to teacher inputs.
// Left out on purpose: relation-based attention losses (MiniLM), losses on value vectors,
// parallel loops (these losses cost a few passes over the hidden states, far below a layer).
import DistilleryModel
import DistilleryTensor
import DistilleryTraining
import Foundation

// MARK: - Soft cross-entropy with temperature

/// What the soft cross-entropy forward measured for a batch.
public struct SoftCrossEntropy: Sendable, Equatable {
    /// T² · mean_b Σ_j −p_t,j log p_s,j with p = softmax(z/T): the loss that is minimised.
    public var loss: Double
    /// T² · mean_b KL(p_t ‖ p_s) = loss − T²·teacherEntropy (same gradient as `loss`).
    public var kl: Double
    /// mean_b H(p_t), the entropy of the teacher's tempered distribution (not scaled by T²).
    public var teacherEntropy: Double
}

/// log softmax(z/T) of one row into `out`, in Double, max-shifted (any magnitude is safe).
@inline(__always)
private func logSoftmax(_ z: UnsafePointer<Float>, _ L: Int, _ T: Double, _ out: UnsafeMutablePointer<Double>) {
    var m = -Double.infinity
    for j in 0..<L { m = max(m, Double(z[j]) / T) }
    var sum = 0.0
    for j in 0..<L { sum += Foundation.exp(Double(z[j]) / T - m) }
    let lse = m + Foundation.log(sum)
    for j in 0..<L { out[j] = Double(z[j]) / T - lse }
}

/// Soft cross-entropy of student logits zs [B, L] against teacher logits zt [B, L] at
/// temperature T: T² · (1/B) Σ_b Σ_j −softmax(zt/T)_j · log softmax(zs/T)_j (TinyBERT's
/// `soft_cross_entropy` with Hinton's T² so gradients keep their size as T changes).
public func softCrossEntropyForward(studentLogits zs: UnsafePointer<Float>, teacherLogits zt: UnsafePointer<Float>,
                                    batch B: Int, classes L: Int, temperature T: Double) -> SoftCrossEntropy {
    guard B > 0 else { return SoftCrossEntropy(loss: 0, kl: 0, teacherEntropy: 0) }
    let ls = UnsafeMutablePointer<Double>.allocate(capacity: L), lt = UnsafeMutablePointer<Double>.allocate(capacity: L)
    defer { ls.deallocate(); lt.deallocate() }
    var ce = 0.0, kl = 0.0, entropy = 0.0
    for b in 0..<B {
        logSoftmax(zs + b * L, L, T, ls)
        logSoftmax(zt + b * L, L, T, lt)
        for j in 0..<L {
            let p = Foundation.exp(lt[j])
            guard p > 0 else { continue }   // 0 · log 0 = 0
            ce -= p * ls[j]
            entropy -= p * lt[j]
            kl += p * (lt[j] - ls[j])
        }
    }
    let scale = T * T / Double(B)
    return SoftCrossEntropy(loss: ce * scale, kl: kl * scale, teacherEntropy: entropy / Double(B))
}

/// dzs = dLoss · (T/B) · (softmax(zs/T) − softmax(zt/T)) — the T² of the loss times the 1/T
/// of the chain rule. Written (`accumulate` adds).
public func softCrossEntropyBackward(dStudentLogits dzs: UnsafeMutablePointer<Float>, studentLogits zs: UnsafePointer<Float>,
                                     teacherLogits zt: UnsafePointer<Float>, batch B: Int, classes L: Int,
                                     temperature T: Double, dLoss: Float = 1, accumulate: Bool = false) {
    guard B > 0 else { return }
    let ls = UnsafeMutablePointer<Double>.allocate(capacity: L), lt = UnsafeMutablePointer<Double>.allocate(capacity: L)
    defer { ls.deallocate(); lt.deallocate() }
    let scale = Double(dLoss) * T / Double(B)
    for b in 0..<B {
        logSoftmax(zs + b * L, L, T, ls)
        logSoftmax(zt + b * L, L, T, lt)
        let d = dzs + b * L
        for j in 0..<L {
            let g = Float(scale * (Foundation.exp(ls[j]) - Foundation.exp(lt[j])))
            d[j] = accumulate ? d[j] + g : g
        }
    }
}

// MARK: - Prediction loss: soft CE + hard CE on the same logits

/// w_soft · softCE(zs, zt, T) + w_hard · CE(zs, labels); returns (total, soft parts, hard CE).
/// `probabilities` [B, L] is scratch for `crossEntropyForward`.
public func predictionLossForward(probabilities: UnsafeMutablePointer<Float>, studentLogits zs: UnsafePointer<Float>,
                                  teacherLogits zt: UnsafePointer<Float>, labels: UnsafePointer<Int32>,
                                  batch B: Int, classes L: Int, temperature T: Double,
                                  softWeight: Double, hardWeight: Double) -> (total: Double, soft: SoftCrossEntropy, hard: Double) {
    let soft = softWeight > 0 ? softCrossEntropyForward(studentLogits: zs, teacherLogits: zt, batch: B, classes: L, temperature: T)
                              : SoftCrossEntropy(loss: 0, kl: 0, teacherEntropy: 0)
    let hard = hardWeight > 0 ? crossEntropyForward(probs: probabilities, logits: zs, labels: labels, batch: B, classes: L) : 0
    return (softWeight * soft.loss + hardWeight * hard, soft, hard)
}

/// dzs of `predictionLossForward`'s total, times dLoss. Written (`accumulate` adds).
public func predictionLossBackward(dStudentLogits dzs: UnsafeMutablePointer<Float>, studentLogits zs: UnsafePointer<Float>,
                                   teacherLogits zt: UnsafePointer<Float>, labels: UnsafePointer<Int32>,
                                   batch B: Int, classes L: Int, temperature T: Double,
                                   softWeight: Double, hardWeight: Double, dLoss: Float = 1, accumulate: Bool = false) {
    let n = B * L
    if !accumulate { dzs.update(repeating: 0, count: n) }
    if hardWeight > 0 {
        let tmp = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
        defer { tmp.deallocate() }
        crossEntropyBackward(dLogits: tmp, logits: zs, labels: labels, batch: B, classes: L, dLoss: dLoss * Float(hardWeight))
        for i in 0..<n { dzs[i] += tmp[i] }
    }
    if softWeight > 0 {
        softCrossEntropyBackward(dStudentLogits: dzs, studentLogits: zs, teacherLogits: zt, batch: B, classes: L,
                                 temperature: T, dLoss: dLoss * Float(softWeight), accumulate: true)
    }
}

// MARK: - Hidden-state MSE (also the embedding MSE, at hidden-state index 0)

/// Number of real (mask ≠ 0) rows.
@inline(__always)
private func realCount(_ mask: UnsafePointer<Int32>, _ rows: Int) -> Int {
    var n = 0
    for i in 0..<rows where mask[i] != 0 { n += 1 }
    return n
}

/// Σ over real rows of Σ_c (s − t)², divided by (#real rows · H). s, t: [rows, H];
/// mask: [rows] (the attention mask flattened, 1 = real token).
public func hiddenMSEForward(student s: UnsafePointer<Float>, teacher t: UnsafePointer<Float>,
                             mask: UnsafePointer<Int32>, rows: Int, hidden H: Int) -> Double {
    let n = realCount(mask, rows)
    guard n > 0 else { return 0 }
    var sum = 0.0
    for i in 0..<rows where mask[i] != 0 {
        for c in 0..<H { let d = Double(s[i * H + c]) - Double(t[i * H + c]); sum += d * d }
    }
    return sum / Double(n * H)
}

/// ds = dLoss · 2(s − t) / (#real · H) on real rows, 0 on padding rows. Written (`accumulate` adds).
public func hiddenMSEBackward(dStudent ds: UnsafeMutablePointer<Float>, student s: UnsafePointer<Float>,
                              teacher t: UnsafePointer<Float>, mask: UnsafePointer<Int32>, rows: Int, hidden H: Int,
                              dLoss: Float = 1, accumulate: Bool = false) {
    let n = realCount(mask, rows)
    let scale = n > 0 ? 2 * Double(dLoss) / Double(n * H) : 0
    for i in 0..<rows {
        for c in 0..<H {
            let g = mask[i] != 0 ? Float(scale * (Double(s[i * H + c]) - Double(t[i * H + c]))) : 0
            ds[i * H + c] = accumulate ? ds[i * H + c] + g : g
        }
    }
}

// MARK: - Cosine loss (DistilBERT)

/// Norms below this are treated as zero (cosine undefined): the row then contributes loss 1
/// and no gradient. PyTorch's `cosine_similarity` clamps |s|·|t| at eps = 1e-8 to the same
/// effect; hidden states after LayerNorm have norms of order √H, far above it.
public let cosineZeroNorm = 1e-8

/// mean over real rows of 1 − cos(s_i, t_i) (`nn.CosineEmbeddingLoss` with target 1 on the
/// real tokens, as DistilBERT's `loss_cos`). s, t: [rows, H]; mask [rows].
public func cosineLossForward(student s: UnsafePointer<Float>, teacher t: UnsafePointer<Float>,
                              mask: UnsafePointer<Int32>, rows: Int, hidden H: Int) -> Double {
    let n = realCount(mask, rows)
    guard n > 0 else { return 0 }
    var sum = 0.0
    for i in 0..<rows where mask[i] != 0 {
        var st = 0.0, ss = 0.0, tt = 0.0
        for c in 0..<H {
            let a = Double(s[i * H + c]), b = Double(t[i * H + c])
            st += a * b; ss += a * a; tt += b * b
        }
        let norms = ss.squareRoot() * tt.squareRoot()
        sum += 1 - (norms > cosineZeroNorm ? st / norms : 0)
    }
    return sum / Double(n)
}

/// ds_i = −(dLoss/#real) · (t_i/(|s_i||t_i|) − cos_i · s_i/|s_i|²) on real rows, 0 elsewhere.
/// Written (`accumulate` adds).
public func cosineLossBackward(dStudent ds: UnsafeMutablePointer<Float>, student s: UnsafePointer<Float>,
                               teacher t: UnsafePointer<Float>, mask: UnsafePointer<Int32>, rows: Int, hidden H: Int,
                               dLoss: Float = 1, accumulate: Bool = false) {
    let n = realCount(mask, rows)
    let scale = n > 0 ? -Double(dLoss) / Double(n) : 0
    for i in 0..<rows {
        var st = 0.0, ss = 0.0, tt = 0.0
        if mask[i] != 0 {
            for c in 0..<H {
                let a = Double(s[i * H + c]), b = Double(t[i * H + c])
                st += a * b; ss += a * a; tt += b * b
            }
        }
        let ns = ss.squareRoot(), nt = tt.squareRoot()
        let live = mask[i] != 0 && ns * nt > cosineZeroNorm
        let cos = live ? st / (ns * nt) : 0
        for c in 0..<H {
            let g = live ? Float(scale * (Double(t[i * H + c]) / (ns * nt) - cos * Double(s[i * H + c]) / ss)) : 0
            ds[i * H + c] = accumulate ? ds[i * H + c] + g : g
        }
    }
}

// MARK: - Hidden-state losses through a learned projection

/// A loss between a student hidden state and the teacher's.
public enum HiddenStateLoss: Sendable {
    /// `hiddenMSEForward`.
    case mse
    /// `cosineLossForward`.
    case cosine
}

/// The loss `kind` of student state s [rows, H] against t [rows, H].
public func hiddenLossForward(_ kind: HiddenStateLoss, student s: UnsafePointer<Float>, teacher t: UnsafePointer<Float>,
                              mask: UnsafePointer<Int32>, rows: Int, hidden H: Int) -> Double {
    switch kind {
    case .mse: return hiddenMSEForward(student: s, teacher: t, mask: mask, rows: rows, hidden: H)
    case .cosine: return cosineLossForward(student: s, teacher: t, mask: mask, rows: rows, hidden: H)
    }
}

/// Backward of `hiddenLossForward`. Written (`accumulate` adds).
public func hiddenLossBackward(_ kind: HiddenStateLoss, dStudent ds: UnsafeMutablePointer<Float>, student s: UnsafePointer<Float>,
                               teacher t: UnsafePointer<Float>, mask: UnsafePointer<Int32>, rows: Int, hidden H: Int,
                               dLoss: Float = 1, accumulate: Bool = false) {
    switch kind {
    case .mse: hiddenMSEBackward(dStudent: ds, student: s, teacher: t, mask: mask, rows: rows, hidden: H, dLoss: dLoss, accumulate: accumulate)
    case .cosine: cosineLossBackward(dStudent: ds, student: s, teacher: t, mask: mask, rows: rows, hidden: H, dLoss: dLoss, accumulate: accumulate)
    }
}

/// projected [rows, Ht] = x [rows, Hs] · Wᵀ + b (W [Ht, Hs]), then the loss `kind` against the
/// teacher state t [rows, Ht]. `projected` is kept by the caller for the backward.
public func projectedHiddenLossForward(_ kind: HiddenStateLoss, projected: UnsafeMutablePointer<Float>,
                                       student x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                                       teacher t: UnsafePointer<Float>, mask: UnsafePointer<Int32>, rows: Int,
                                       studentHidden Hs: Int, teacherHidden Ht: Int) -> Double {
    linearForward(y: projected, x: x, weight: weight, bias: bias, rows: rows, inFeatures: Hs, outFeatures: Ht)
    return hiddenLossForward(kind, student: UnsafePointer(projected), teacher: t, mask: mask, rows: rows, hidden: Ht)
}

/// Backward of `projectedHiddenLossForward`: dx [rows, Hs] written (`accumulateStudent` adds),
/// dW [Ht, Hs] and db [Ht] accumulated, all times dLoss.
public func projectedHiddenLossBackward(_ kind: HiddenStateLoss, dStudent dx: UnsafeMutablePointer<Float>, accumulateStudent: Bool = false,
                                        dWeight: UnsafeMutablePointer<Float>, dBias: UnsafeMutablePointer<Float>,
                                        projected: UnsafePointer<Float>, student x: UnsafePointer<Float>,
                                        weight: UnsafePointer<Float>, teacher t: UnsafePointer<Float>, mask: UnsafePointer<Int32>,
                                        rows: Int, studentHidden Hs: Int, teacherHidden Ht: Int, dLoss: Float = 1) {
    let dy = UnsafeMutablePointer<Float>.allocate(capacity: max(rows * Ht, 1))
    defer { dy.deallocate() }
    hiddenLossBackward(kind, dStudent: dy, student: projected, teacher: t, mask: mask, rows: rows, hidden: Ht, dLoss: dLoss)
    linearBackward(dx: dx, accumulateInput: accumulateStudent, dWeight: dWeight, dBias: dBias, dy: UnsafePointer(dy),
                   x: x, weight: weight, rows: rows, inFeatures: Hs, outFeatures: Ht)
}

// MARK: - Attention-score MSE (TinyBERT)

/// Pre-softmax attention scores S = q·kᵀ/√D per (sequence, head), no mask added.
/// q, k: [B·T, heads·D] (the Linear outputs the training model caches); scores: [B, heads, T, T].
public func attentionScoresForward(scores: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                                   batch B: Int, sequenceLength T: Int, heads: Int, headSize D: Int) {
    let A = heads * D, scale = 1 / Float(D).squareRoot()
    for job in 0..<(B * heads) {
        let off = (job / heads) * T * A + (job % heads) * D
        gemm(transA: false, transB: true, m: T, n: T, k: D, alpha: scale, a: q + off, lda: A,
             b: k + off, ldb: A, beta: 0, c: scores + job * T * T, ldc: T)
    }
}

/// Backward of `attentionScoresForward`: dq += dS·k/√D, dk += dSᵀ·q/√D (accumulated, so the
/// attention backward's dq/dk can be added to).
public func attentionScoresBackward(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                                    dScores: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                                    batch B: Int, sequenceLength T: Int, heads: Int, headSize D: Int) {
    let A = heads * D, scale = 1 / Float(D).squareRoot()
    for job in 0..<(B * heads) {
        let off = (job / heads) * T * A + (job % heads) * D
        gemm(transA: false, transB: false, m: T, n: D, k: T, alpha: scale, a: dScores + job * T * T, lda: T,
             b: k + off, ldb: A, beta: 1, c: dq + off, ldc: A)
        gemm(transA: true, transB: false, m: T, n: D, k: T, alpha: scale, a: dScores + job * T * T, lda: T,
             b: q + off, ldb: A, beta: 1, c: dk + off, ldc: A)
    }
}

/// Σ over heads and real query × real key positions of (S_s − S_t)², divided by
/// heads · Σ_b n_b² (n_b real tokens in sequence b). Scores: [B, heads, T, T]; mask: [B, T].
public func attentionScoreMSEForward(student s: UnsafePointer<Float>, teacher t: UnsafePointer<Float>, mask: UnsafePointer<Int32>,
                                     batch B: Int, sequenceLength T: Int, heads: Int) -> Double {
    var sum = 0.0, count = 0
    for b in 0..<B {
        let m = mask + b * T
        let n = realCount(m, T)
        count += n * n * heads
        for h in 0..<heads {
            let base = (b * heads + h) * T * T
            for i in 0..<T where m[i] != 0 {
                for j in 0..<T where m[j] != 0 {
                    let d = Double(s[base + i * T + j]) - Double(t[base + i * T + j])
                    sum += d * d
                }
            }
        }
    }
    return count > 0 ? sum / Double(count) : 0
}

/// dS_s = dLoss · 2(S_s − S_t) / (heads · Σ_b n_b²) at real × real positions, 0 elsewhere.
/// Written (`accumulate` adds).
public func attentionScoreMSEBackward(dStudent ds: UnsafeMutablePointer<Float>, student s: UnsafePointer<Float>,
                                      teacher t: UnsafePointer<Float>, mask: UnsafePointer<Int32>,
                                      batch B: Int, sequenceLength T: Int, heads: Int, dLoss: Float = 1, accumulate: Bool = false) {
    var count = 0
    for b in 0..<B { let n = realCount(mask + b * T, T); count += n * n * heads }
    let scale = count > 0 ? 2 * Double(dLoss) / Double(count) : 0
    for b in 0..<B {
        let m = mask + b * T
        for h in 0..<heads {
            let base = (b * heads + h) * T * T
            for i in 0..<T {
                for j in 0..<T {
                    let idx = base + i * T + j
                    let g = m[i] != 0 && m[j] != 0 ? Float(scale * (Double(s[idx]) - Double(t[idx]))) : 0
                    ds[idx] = accumulate ? ds[idx] + g : g
                }
            }
        }
    }
}
