// Double-precision reference forwards of the distillation losses, for the gradient checks
// (the method of TestSupport/GradientCheckSupport.swift: differentiate the Double reference
// by central differences, compare with the Float analytic backward; the references are
// textbook formulas, written without the kernels' tricks — no max-shift beyond what Double
// needs, no fused terms).
// TestRNG, numericGradient and checkGradient come from TestSupport.
import Foundation
import TestSupport
import XCTest

/// Float-input loss vs the Double reference on the same (Float-rounded) inputs, relative:
/// the kernels sum in Double, so only the final rounding and summation order differ.
let lossCheckTolerance = 1e-9

/// Runs `body` with pointers to Float and Int32 arrays (test inputs, never mutated).
func withBuffers<R>(_ a: [Float], _ b: [Float], _ mask: [Int32],
                    _ body: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Int32>) -> R) -> R {
    let mask = mask.isEmpty ? [0] : mask   // a pointer even when the op takes no mask
    return a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in mask.withUnsafeBufferPointer { pm in
        body(pa.baseAddress!, pb.baseAddress!, pm.baseAddress!)
    } } }
}

// MARK: - Reference losses (Double, textbook)

enum LossReference {
    /// log softmax of one row.
    static func logSoftmax(_ z: [Double]) -> [Double] {
        let m = z.max()!
        let lse = m + log(z.reduce(0) { $0 + exp($1 - m) })
        return z.map { $0 - lse }
    }

    /// T² · mean_b Σ_j −softmax(zt/T)_j log softmax(zs/T)_j.
    static func softCrossEntropy(_ zs: [Double], _ zt: [Double], B: Int, L: Int, T: Double) -> Double {
        var total = 0.0
        for b in 0..<B {
            let ls = logSoftmax(zs[(b * L)..<((b + 1) * L)].map { $0 / T })
            let lt = logSoftmax(zt[(b * L)..<((b + 1) * L)].map { $0 / T })
            for j in 0..<L { total -= exp(lt[j]) * ls[j] }
        }
        return T * T * total / Double(B)
    }

    /// mean_b entropy of softmax(zt/T).
    static func entropy(_ zt: [Double], B: Int, L: Int, T: Double) -> Double {
        var total = 0.0
        for b in 0..<B {
            let lt = logSoftmax(zt[(b * L)..<((b + 1) * L)].map { $0 / T })
            for j in 0..<L where exp(lt[j]) > 0 { total -= exp(lt[j]) * lt[j] }
        }
        return total / Double(B)
    }

    /// Mean hard-label cross-entropy.
    static func crossEntropy(_ z: [Double], labels: [Int32], B: Int, L: Int) -> Double {
        var total = 0.0
        for b in 0..<B { total -= logSoftmax(Array(z[(b * L)..<((b + 1) * L)]))[Int(labels[b])] }
        return total / Double(B)
    }

    /// Σ_real Σ_c (s − t)² / (#real · H).
    static func hiddenMSE(_ s: [Double], _ t: [Double], mask: [Int32], H: Int) -> Double {
        var sum = 0.0, n = 0
        for i in 0..<mask.count where mask[i] != 0 {
            n += 1
            for c in 0..<H { sum += (s[i * H + c] - t[i * H + c]) * (s[i * H + c] - t[i * H + c]) }
        }
        return n == 0 ? 0 : sum / Double(n * H)
    }

    /// mean over real rows of 1 − cos.
    static func cosine(_ s: [Double], _ t: [Double], mask: [Int32], H: Int) -> Double {
        var sum = 0.0, n = 0
        for i in 0..<mask.count where mask[i] != 0 {
            n += 1
            let a = Array(s[(i * H)..<((i + 1) * H)]), b = Array(t[(i * H)..<((i + 1) * H)])
            let dot = zip(a, b).reduce(0) { $0 + $1.0 * $1.1 }
            let na = sqrt(a.reduce(0) { $0 + $1 * $1 }), nb = sqrt(b.reduce(0) { $0 + $1 * $1 })
            sum += 1 - dot / (na * nb)
        }
        return n == 0 ? 0 : sum / Double(n)
    }

    /// y = x·Wᵀ + b, x [n, i], W [o, i].
    static func linear(_ x: [Double], _ w: [Double], _ b: [Double], rows n: Int, inFeatures i: Int, outFeatures o: Int) -> [Double] {
        var y = [Double](repeating: 0, count: n * o)
        for r in 0..<n { for j in 0..<o {
            var s = b[j]
            for k in 0..<i { s += x[r * i + k] * w[j * i + k] }
            y[r * o + j] = s
        } }
        return y
    }

    /// q·kᵀ/√D per (sequence, head): [B, heads, T, T].
    static func scores(_ q: [Double], _ k: [Double], B: Int, T: Int, heads: Int, D: Int) -> [Double] {
        let A = heads * D
        var s = [Double](repeating: 0, count: B * heads * T * T)
        for b in 0..<B { for h in 0..<heads { for i in 0..<T { for j in 0..<T {
            var dot = 0.0
            for d in 0..<D { dot += q[(b * T + i) * A + h * D + d] * k[(b * T + j) * A + h * D + d] }
            s[((b * heads + h) * T + i) * T + j] = dot / Double(D).squareRoot()
        } } } }
        return s
    }

    /// Σ over heads, real queries × real keys of (s − t)², over heads · Σ_b n_b².
    static func attentionMSE(_ s: [Double], _ t: [Double], mask: [Int32], B: Int, T: Int, heads: Int) -> Double {
        var sum = 0.0, count = 0
        for b in 0..<B {
            let real = (0..<T).filter { mask[b * T + $0] != 0 }
            count += real.count * real.count * heads
            for h in 0..<heads { for i in real { for j in real {
                let idx = ((b * heads + h) * T + i) * T + j
                sum += (s[idx] - t[idx]) * (s[idx] - t[idx])
            } } }
        }
        return count == 0 ? 0 : sum / Double(count)
    }
}
