// The first stage of LP-FT (Kumar et al., "Fine-Tuning can Distort Pretrained Features and
// Underperform Out-of-Distribution", ICLR 2022): fit the new classification head alone on
// the frozen encoder's features — a multinomial logistic regression solved to convergence —
// then fine-tune everything from there, so fine-tuning does not start by pushing a random
// head's gradients back into the pretrained features.
import DistilleryModel
import DistilleryTensor
import Foundation

/// The vector the classifier reads for each sequence — the tanh pooler over [CLS], or the
/// masked mean of the last hidden states (`config.classifierPooling`) — with dropout off.
/// Runs the inference encoder with an identity classifier, whose logits are then exactly its
/// input (every other term of each sum is 0 · x). `tensors` may hold a classifier; it is replaced.
public func classifierFeatures(config: BertConfig, tensors: [String: Tensor], sequences: [[Int32]], batchSize: Int,
                               paddingId: Int32) throws -> [[Float]] {
    var config = config
    config.labels = []
    let H = config.hiddenSize
    var tensors = tensors.filter { !$0.key.hasPrefix("classifier.") }
    var identity = [Float](repeating: 0, count: H * H)
    for i in 0..<H { identity[i * H + i] = 1 }
    tensors["classifier.weight"] = Tensor(shape: [H, H], data: identity)
    tensors["classifier.bias"] = Tensor(shape: [H], data: [Float](repeating: 0, count: H))
    let encoder = try BertEncoder(config: config, tensors: tensors)
    return try classifierLogits(encoder: encoder, sequences: sequences, batchSize: batchSize, paddingId: paddingId)
}

/// A fitted multinomial logistic regression in the HF classifier layout.
public struct SoftmaxRegression: Sendable {
    /// [classes, dim] and [classes].
    public var weight: [Float]
    public var bias: [Float]
    /// The objective at the solution, L-BFGS iterations taken, the largest |gradient| left.
    public var objective: Double
    public var iterations: Int
    public var gradientMax: Double
    /// Training accuracy of the fitted head.
    public var accuracy: Double
}

/// Minimizes mean cross-entropy + (l2 / 2)·‖W‖² (the bias is not penalized) over `features`
/// (n rows of `dim`), starting from zero: L-BFGS (memory 10) with a backtracking Armijo line
/// search in Double, until the largest |gradient| is below `tolerance` or `maxIterations`.
/// Convex, so the result does not depend on the start; deterministic. With l2 = 1 / (C · n)
/// this is scikit-learn's LogisticRegression(C) objective divided by C · n.
public func fitSoftmaxRegression(features: [[Float]], labels: [Int32], classes: Int, l2: Double,
                                 maxIterations: Int = 500, tolerance: Double = 1e-6) -> SoftmaxRegression {
    precondition(features.count == labels.count && !features.isEmpty && classes >= 2, "fitSoftmaxRegression: bad inputs")
    let n = features.count, dim = features[0].count
    let x = features.flatMap { $0.map(Double.init) }
    let weights = classes * dim

    func objective(_ theta: [Double]) -> (value: Double, gradient: [Double], correct: Int) {
        var value = 0.0, correct = 0
        var grad = [Double](repeating: 0, count: theta.count)
        var z = [Double](repeating: 0, count: classes)
        theta.withUnsafeBufferPointer { th in x.withUnsafeBufferPointer { xs in grad.withUnsafeMutableBufferPointer { g in
            for i in 0..<n {
                let row = xs.baseAddress! + i * dim
                for c in 0..<classes {
                    var s = th[weights + c]
                    let w = th.baseAddress! + c * dim
                    for k in 0..<dim { s += w[k] * row[k] }
                    z[c] = s
                }
                let y = Int(labels[i])
                let top = z.max()!
                if z[y] == top { correct += 1 }
                value += top - z[y]
                var sum = 0.0
                for c in 0..<classes { z[c] = Foundation.exp(z[c] - top); sum += z[c] }
                value += Foundation.log(sum)
                for c in 0..<classes {
                    let d = (z[c] / sum - (c == y ? 1 : 0)) / Double(n)
                    g[weights + c] += d
                    let gw = g.baseAddress! + c * dim
                    for k in 0..<dim { gw[k] += d * row[k] }
                }
            }
        } } }
        value /= Double(n)
        for j in 0..<weights {
            value += 0.5 * l2 * theta[j] * theta[j]
            grad[j] += l2 * theta[j]
        }
        return (value, grad, correct)
    }
    func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }

    var theta = [Double](repeating: 0, count: weights + classes)
    var current = objective(theta)
    var s: [[Double]] = [], y: [[Double]] = []
    var iterations = 0
    while iterations < maxIterations, current.gradient.map(abs).max()! >= tolerance {
        iterations += 1
        // Two-loop recursion: d = −H·g with the last few (s, y) pairs.
        var q = current.gradient
        var alphas = [Double](repeating: 0, count: s.count)
        for j in s.indices.reversed() {
            alphas[j] = dot(s[j], q) / dot(y[j], s[j])
            for k in q.indices { q[k] -= alphas[j] * y[j][k] }
        }
        let gamma = s.isEmpty ? 1 / max(1, dot(q, q).squareRoot()) : dot(s.last!, y.last!) / dot(y.last!, y.last!)
        for k in q.indices { q[k] *= gamma }
        for j in s.indices {
            let beta = dot(y[j], q) / dot(y[j], s[j])
            for k in q.indices { q[k] += s[j][k] * (alphas[j] - beta) }
        }
        var direction = q.map { -$0 }
        var slope = dot(current.gradient, direction)
        if slope >= 0 {   // not a descent direction (numerical trouble): restart from steepest descent
            s.removeAll(); y.removeAll()
            direction = current.gradient.map { -$0 }
            slope = dot(current.gradient, direction)
        }
        var step = 1.0
        var next = current, candidate = theta
        while true {
            for k in theta.indices { candidate[k] = theta[k] + step * direction[k] }
            next = objective(candidate)
            if next.value <= current.value + 1e-4 * step * slope { break }
            step *= 0.5
            if step < 1e-20 { break }
        }
        if step < 1e-20 { break }   // no decrease possible at this precision: converged
        let sNew = zip(candidate, theta).map { $0 - $1 }, yNew = zip(next.gradient, current.gradient).map { $0 - $1 }
        if dot(sNew, yNew) > 1e-12 {
            s.append(sNew); y.append(yNew)
            if s.count > 10 { s.removeFirst(); y.removeFirst() }
        }
        theta = candidate
        current = next
    }
    return SoftmaxRegression(weight: theta[0..<weights].map(Float.init), bias: theta[weights...].map(Float.init),
                             objective: current.value, iterations: iterations,
                             gradientMax: current.gradient.map(abs).max()!, accuracy: Double(current.correct) / Double(n))
}
