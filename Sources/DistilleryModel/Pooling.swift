// Pooling: sentence embeddings from token states, as sentence-transformers computes them.
//
// Mean pooling is the mask-weighted mean over real tokens (padding excluded); CLS pooling
// takes the first token's state; normalization divides by the L2 norm (clamped like
// torch.nn.functional.normalize, eps 1e-12). Softmax turns logits into probabilities.
import CKernels
import DistilleryTensor
import Foundation

/// How token states become one vector per sequence.
public enum PoolingMode: String, Sendable, CaseIterable {
    case mean, cls
}

/// Pools `[B, T, H]` states to `[B, H]` with the given mode and padding mask `[B, T]`.
public func pool(_ states: Tensor, mask: [Int32], mode: PoolingMode, normalize: Bool) -> Tensor {
    let (B, T, H) = (states.shape[0], states.shape[1], states.shape[2])
    var out = [Float](repeating: 0, count: B * H)
    for b in 0..<B {
        switch mode {
        case .cls:
            for c in 0..<H { out[b * H + c] = states.data[b * T * H + c] }
        case .mean:
            states.data.withUnsafeBufferPointer { x in mask.withUnsafeBufferPointer { m in
                out.withUnsafeMutableBufferPointer { o in
                    maskedMeanForward(out: o.baseAddress! + b * H, x: x.baseAddress! + b * T * H,
                                      mask: m.baseAddress! + b * T, batch: 1, sequenceLength: T, hidden: H)
                }
            } }
        }
        if normalize {
            var sq = 0.0
            for c in 0..<H { sq += Double(out[b * H + c]) * Double(out[b * H + c]) }
            let norm = max(sq.squareRoot(), 1e-12)
            for c in 0..<H { out[b * H + c] = Float(Double(out[b * H + c]) / norm) }
        }
    }
    return Tensor(shape: [B, H], data: out)
}

/// out[b] = mean of x[b, t] over the tokens with mask[b, t] ≠ 0 (`x` is [B, T, H], `out`
/// [B, H]). Accumulates in Double so the mean does not depend on summation order; the count
/// is clamped at 1 (sentence-transformers clamps at 1e-9).
public func maskedMeanForward(out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, mask: UnsafePointer<Int32>,
                              batch B: Int, sequenceLength T: Int, hidden H: Int) {
    var acc = [Double](repeating: 0, count: H)
    for b in 0..<B {
        for c in 0..<H { acc[c] = 0 }
        var n = 0
        for t in 0..<T where mask[b * T + t] != 0 {
            n += 1
            let row = x + (b * T + t) * H
            for c in 0..<H { acc[c] += Double(row[c]) }
        }
        let denom = Double(max(n, 1))
        for c in 0..<H { out[b * H + c] = Float(acc[c] / denom) }
    }
}

/// The backward of `maskedMeanForward`: dx[b, t] += dy[b] / count for the tokens with
/// mask[b, t] ≠ 0; padding rows get nothing.
public func maskedMeanBackward(dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, mask: UnsafePointer<Int32>,
                               batch B: Int, sequenceLength T: Int, hidden H: Int) {
    for b in 0..<B {
        var n = 0
        for t in 0..<T where mask[b * T + t] != 0 { n += 1 }
        let scale = 1 / Float(max(n, 1))
        for t in 0..<T where mask[b * T + t] != 0 {
            let row = dx + (b * T + t) * H
            for c in 0..<H { row[c] += dy[b * H + c] * scale }
        }
    }
}

/// Row-wise softmax of `[B, L]` logits, computed in Double.
public func softmaxRows(_ logits: Tensor) -> Tensor {
    let (B, L) = (logits.shape[0], logits.shape[1])
    var out = [Float](repeating: 0, count: B * L)
    for b in 0..<B {
        let row = logits.data[(b * L)..<((b + 1) * L)]
        let m = Double(row.max() ?? 0)
        let e = row.map { Foundation.exp(Double($0) - m) }
        let s = e.reduce(0, +)
        for j in 0..<L { out[b * L + j] = Float(e[j] / s) }
    }
    return Tensor(shape: [B, L], data: out)
}

/// True when the AVX2+FMA builds of the kernels run on this CPU.
public func kernelsUseAVX2() -> Bool { dk_has_avx2() != 0 }
