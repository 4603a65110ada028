// Double-precision reference forwards of the training ops.
//
// Each reference is the textbook formula written independently of the Float kernels
// (naive loops, no caching). A gradient check differentiates the *reference* forward by
// central differences in Double (numericGradient, checkGradient: TestSupport) and compares
// that with the Float analytic backward. The Float forward is compared with the same reference.
import DistilleryModel
import DistilleryTraining
import Foundation
import TestSupport
import XCTest

/// Float forward vs Double reference forward, as a fraction of the largest output: the
/// same rounding argument without the backward's extra chain of operations.
let forwardCheckTolerance = 1e-5

/// Runs `body` with mutable pointers to each array (zero to four of them).
func withPointers<R>(_ a: inout [Float], _ body: (UnsafeMutablePointer<Float>) -> R) -> R {
    a.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
}

// MARK: - Reference forwards (Double)

enum Reference {
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

    /// Biased-variance LayerNorm per row.
    static func layerNorm(_ x: [Double], _ g: [Double], _ b: [Double], rows n: Int, cols c: Int, eps: Double) -> [Double] {
        var y = [Double](repeating: 0, count: n * c)
        for r in 0..<n {
            let row = Array(x[(r * c)..<((r + 1) * c)])
            let m = row.reduce(0, +) / Double(c)
            let v = row.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(c)
            for j in 0..<c { y[r * c + j] = (row[j] - m) / (v + eps).squareRoot() * g[j] + b[j] }
        }
        return y
    }

    static func gelu(_ x: [Double]) -> [Double] { x.map { 0.5 * $0 * (1 + erf($0 / 2.0.squareRoot())) } }
    static func tanh(_ x: [Double]) -> [Double] { x.map { Foundation.tanh($0) } }

    /// Attention with the additive finfo.min mask, as HF's eager path; q, k, v [B·T, heads·D].
    static func attention(_ q: [Double], _ k: [Double], _ v: [Double], mask: [Int32], dropout: [Float]?,
                          B: Int, T: Int, heads: Int, D: Int) -> [Double] {
        let A = heads * D
        var ctx = [Double](repeating: 0, count: B * T * A)
        for b in 0..<B { for h in 0..<heads { for i in 0..<T {
            var s = [Double](repeating: 0, count: T)
            for j in 0..<T {
                var dot = 0.0
                for d in 0..<D { dot += q[(b * T + i) * A + h * D + d] * k[(b * T + j) * A + h * D + d] }
                s[j] = dot / Double(D).squareRoot() + (mask[b * T + j] == 0 ? -Double(Float.greatestFiniteMagnitude) : 0)
            }
            let m = s.max()!
            let e = s.map { exp($0 - m) }
            let z = e.reduce(0, +)
            for j in 0..<T {
                var p = e[j] / z
                if let dropout { p *= Double(dropout[((b * heads + h) * T + i) * T + j]) }
                for d in 0..<D { ctx[(b * T + i) * A + h * D + d] += p * v[(b * T + j) * A + h * D + d] }
            }
        } } }
        return ctx
    }

    /// Pre-mask attention scores q·kᵀ/√D as [B, heads, T, T]; q, k [B·T, heads·D].
    static func attentionScores(_ q: [Double], _ k: [Double], B: Int, T: Int, heads: Int, D: Int) -> [Double] {
        let A = heads * D
        var out = [Double](repeating: 0, count: B * heads * T * T)
        for b in 0..<B { for h in 0..<heads { for i in 0..<T { for j in 0..<T {
            var dot = 0.0
            for d in 0..<D { dot += q[(b * T + i) * A + h * D + d] * k[(b * T + j) * A + h * D + d] }
            out[((b * heads + h) * T + i) * T + j] = dot / Double(D).squareRoot()
        } } } }
        return out
    }

    /// Mean softmax cross-entropy over rows.
    static func crossEntropy(_ z: [Double], labels: [Int32], B: Int, L: Int) -> Double {
        var total = 0.0
        for b in 0..<B {
            let row = Array(z[(b * L)..<((b + 1) * L)])
            let m = row.max()!
            let lse = m + log(row.reduce(0) { $0 + exp($1 - m) })
            total += lse - row[Int(labels[b])]
        }
        return total / Double(B)
    }

    /// (word[id] + type[tt]) + position[t].
    static func embedding(word: [Double], position: [Double], type: [Double], ids: [Int32], typeIds: [Int32],
                          T: Int, H: Int) -> [Double] {
        var out = [Double](repeating: 0, count: ids.count * H)
        for i in 0..<ids.count { for c in 0..<H {
            out[i * H + c] = word[Int(ids[i]) * H + c] + type[Int(typeIds[i]) * H + c] + position[(i % T) * H + c]
        } }
        return out
    }
}

/// A parameter block of seeded random values for the small test models (`TestRNG.modelValues`).
func seededParameters(_ layout: ParameterLayout, seed: UInt64) -> ParameterBlock {
    var rng = TestRNG(seed: seed)
    var block = ParameterBlock(zeros: layout)
    for e in layout.entries { block.storage.replaceSubrange(e.range, with: rng.modelValues(for: e.name, count: e.count)) }
    return block
}
