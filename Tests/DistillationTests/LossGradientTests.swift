// Per-loss checks, tinygrad style: each distillation loss's forward against a Double
// reference and its backward against central differences of that reference, including
// extreme inputs (logits of ±1000, T = 0.5 and T = 8, all padding but one token), plus the
// properties the losses must have (KL(p, p) = 0, soft CE of identical logits = T²·H(p_t),
// cosine loss of parallel vectors = 0).
import Distillation
import DistilleryTensor
import DistilleryModel
import DistilleryTraining
import Foundation
import TestSupport
import XCTest

/// Losses computed through Float GEMMs (projections, attention scores) vs the Double
/// reference: each output element carries Float rounding (~6e-8 relative, accumulated over
/// a dot product of a few terms), so 1e-5 relative holds with margin; a wrong formula is O(1) off.
let floatPathTolerance = 1e-5

final class LossGradientTests: XCTestCase {
    override func setUp() { Compute.setThreads(2) }
    override func tearDown() { Compute.setThreads(1) }

    // MARK: Soft cross-entropy

    private func checkSoftCE(_ label: String, zs: [Float], zt: [Float], B: Int, L: Int, T: Double) {
        let result = withBuffers(zs, zt, []) { s, t, _ in
            softCrossEntropyForward(studentLogits: s, teacherLogits: t, batch: B, classes: L, temperature: T)
        }
        let zsd = zs.map(Double.init), ztd = zt.map(Double.init)
        let reference = LossReference.softCrossEntropy(zsd, ztd, B: B, L: L, T: T)
        let entropy = LossReference.entropy(ztd, B: B, L: L, T: T)
        XCTAssertTrue(result.loss.isFinite && result.kl.isFinite, "\(label): finite")
        XCTAssertEqual(result.loss, reference, accuracy: lossCheckTolerance * max(1, abs(reference)), "\(label) loss")
        XCTAssertEqual(result.teacherEntropy, entropy, accuracy: lossCheckTolerance * max(1, entropy), "\(label) teacher entropy")
        // KL = soft CE − T²·H(p_t), and KL ≥ 0 (Gibbs).
        XCTAssertEqual(result.kl, result.loss - T * T * result.teacherEntropy, accuracy: lossCheckTolerance * max(1, abs(reference)), "\(label) KL identity")
        XCTAssertGreaterThanOrEqual(result.kl, -lossCheckTolerance * max(1, abs(reference)), "\(label) KL ≥ 0")
        let dz = FloatBuffer(count: B * L)
        withBuffers(zs, zt, []) { s, t, _ in
            softCrossEntropyBackward(dStudentLogits: dz.pointer, studentLogits: s, teacherLogits: t, batch: B, classes: L, temperature: T)
        }
        XCTAssertTrue(dz.array.allSatisfy(\.isFinite), "\(label): finite gradient")
        checkGradient("soft CE \(label)", analytic: dz.array,
                      numeric: numericGradient(at: zs) { LossReference.softCrossEntropy($0, ztd, B: B, L: L, T: T) })
    }

    func testSoftCrossEntropy() {
        var rng = TestRNG(seed: 21)
        let (B, L) = (3, 4)
        let zs = rng.floats(B * L, -3, 3), zt = rng.floats(B * L, -3, 3)
        for T in [1.0, 0.5, 2.0, 8.0] { checkSoftCE("ordinary T=\(T)", zs: zs, zt: zt, B: B, L: L, T: T) }
        // Logits of ±1000: both distributions saturate; the max-shifted log-softmax keeps
        // everything finite and the gradient (p_s − p_t)·T/B exact.
        let large: [Float] = [1000, -1000, 3, 0, -500, 400, 410, 2, 80, 80.5, -3, 79]
        let largeTeacher: [Float] = [990, -990, 5, 1, 420, -400, 415, 3, 81, 80, -2, 78]
        for T in [0.5, 1.0, 8.0] { checkSoftCE("large logits T=\(T)", zs: large, zt: largeTeacher, B: B, L: L, T: T) }
    }

    func testSoftCrossEntropyProperties() {
        var rng = TestRNG(seed: 22)
        let (B, L) = (4, 5)
        let z = rng.floats(B * L, -4, 4)
        for T in [0.5, 1.0, 8.0] {
            let r = withBuffers(z, z, []) { s, t, _ in softCrossEntropyForward(studentLogits: s, teacherLogits: t, batch: B, classes: L, temperature: T) }
            // KL(p, p) = 0: the same log-probabilities are subtracted term by term.
            XCTAssertEqual(r.kl, 0, accuracy: 1e-12, "KL(p,p) at T=\(T)")
            // Identical logits: soft CE = T² · teacher entropy.
            let entropy = LossReference.entropy(z.map(Double.init), B: B, L: L, T: T)
            XCTAssertEqual(r.loss, T * T * entropy, accuracy: 1e-12 * max(1, T * T * entropy), "soft CE = T²·H at T=\(T)")
            XCTAssertGreaterThan(entropy, 0.01, "the property is not vacuous")
            // …and is the minimum: zero gradient.
            let dz = FloatBuffer(count: B * L)
            withBuffers(z, z, []) { s, t, _ in
                softCrossEntropyBackward(dStudentLogits: dz.pointer, studentLogits: s, teacherLogits: t, batch: B, classes: L, temperature: T)
            }
            XCTAssertTrue(dz.array.allSatisfy { $0 == 0 }, "zero gradient at identical logits, T=\(T)")
        }
        // Shifting a row of the student's logits changes nothing (softmax is shift invariant).
        let shifted = z.enumerated().map { $0.offset < L ? $0.element + 7 : $0.element }
        let a = withBuffers(z, z.reversed(), []) { s, t, _ in softCrossEntropyForward(studentLogits: s, teacherLogits: t, batch: B, classes: L, temperature: 2) }
        let b = withBuffers(shifted, z.reversed(), []) { s, t, _ in softCrossEntropyForward(studentLogits: s, teacherLogits: t, batch: B, classes: L, temperature: 2) }
        XCTAssertEqual(a.loss, b.loss, accuracy: 1e-5)
    }

    func testPredictionLossCombinesSoftAndHard() {
        var rng = TestRNG(seed: 23)
        let (B, L) = (3, 4)
        let zs = rng.floats(B * L, -3, 3), zt = rng.floats(B * L, -3, 3)
        let labels: [Int32] = [2, 0, 3]
        let (wSoft, wHard, T) = (0.7, 0.3, 2.0)
        let probs = FloatBuffer(count: B * L), dz = FloatBuffer(count: B * L)
        let ztd = zt.map(Double.init)
        func reference(_ z: [Double]) -> Double {
            wSoft * LossReference.softCrossEntropy(z, ztd, B: B, L: L, T: T) + wHard * LossReference.crossEntropy(z, labels: labels, B: B, L: L)
        }
        let (total, soft, hard) = withBuffers(zs, zt, labels) { s, t, y in
            predictionLossForward(probabilities: probs.pointer, studentLogits: s, teacherLogits: t, labels: y, batch: B, classes: L,
                                  temperature: T, softWeight: wSoft, hardWeight: wHard)
        }
        let ref = reference(zs.map(Double.init))
        XCTAssertEqual(total, ref, accuracy: 1e-6 * max(1, ref), "total (hard CE is DistilleryTraining's Float-probability CE)")
        XCTAssertEqual(hard, LossReference.crossEntropy(zs.map(Double.init), labels: labels, B: B, L: L), accuracy: 1e-6)
        XCTAssertGreaterThan(soft.loss, 0)
        withBuffers(zs, zt, labels) { s, t, y in
            predictionLossBackward(dStudentLogits: dz.pointer, studentLogits: s, teacherLogits: t, labels: y, batch: B, classes: L,
                                   temperature: T, softWeight: wSoft, hardWeight: wHard)
        }
        checkGradient("prediction loss (soft + hard)", analytic: dz.array, numeric: numericGradient(at: zs, reference))
        // accumulate adds to what is there.
        let before = dz.array
        withBuffers(zs, zt, labels) { s, t, y in
            predictionLossBackward(dStudentLogits: dz.pointer, studentLogits: s, teacherLogits: t, labels: y, batch: B, classes: L,
                                   temperature: T, softWeight: wSoft, hardWeight: wHard, accumulate: true)
        }
        for (a, b) in zip(dz.array, before) { XCTAssertEqual(a, 2 * b, accuracy: 1e-7) }
    }

    // MARK: Hidden-state MSE and cosine

    /// Masks: padded batch, all padding but one token, and no padding.
    private let masks: [(String, [Int32])] = [
        ("padded", [1, 1, 1, 0, 1, 1, 0, 0]),
        ("all padding but one", [0, 0, 0, 0, 0, 1, 0, 0]),
        ("no padding", [1, 1, 1, 1, 1, 1, 1, 1]),
    ]

    func testHiddenMSE() {
        var rng = TestRNG(seed: 31)
        let H = 5
        for (label, mask) in masks {
            let rows = mask.count
            let s = rng.floats(rows * H, -2, 2), t = rng.floats(rows * H, -2, 2)
            let td = t.map(Double.init)
            let loss = withBuffers(s, t, mask) { hiddenMSEForward(student: $0, teacher: $1, mask: $2, rows: rows, hidden: H) }
            let ref = LossReference.hiddenMSE(s.map(Double.init), td, mask: mask, H: H)
            XCTAssertEqual(loss, ref, accuracy: lossCheckTolerance * max(1, ref), "\(label) loss")
            let ds = FloatBuffer(count: rows * H)
            withBuffers(s, t, mask) { hiddenMSEBackward(dStudent: ds.pointer, student: $0, teacher: $1, mask: $2, rows: rows, hidden: H) }
            checkGradient("hidden MSE \(label)", analytic: ds.array,
                          numeric: numericGradient(at: s) { LossReference.hiddenMSE($0, td, mask: mask, H: H) })
            // Padding rows get no gradient at all.
            for i in 0..<rows where mask[i] == 0 { XCTAssertTrue(ds.array[(i * H)..<((i + 1) * H)].allSatisfy { $0 == 0 }, "\(label) padding row \(i)") }
        }
        // No real token: loss 0, gradient 0 (not NaN).
        let zeroMask = [Int32](repeating: 0, count: 4)
        let s = rng.floats(4 * H), t = rng.floats(4 * H)
        XCTAssertEqual(withBuffers(s, t, zeroMask) { hiddenMSEForward(student: $0, teacher: $1, mask: $2, rows: 4, hidden: H) }, 0)
        let ds = FloatBuffer(s)
        withBuffers(s, t, zeroMask) { hiddenMSEBackward(dStudent: ds.pointer, student: $0, teacher: $1, mask: $2, rows: 4, hidden: H) }
        XCTAssertTrue(ds.array.allSatisfy { $0 == 0 })
    }

    func testCosineLoss() {
        var rng = TestRNG(seed: 32)
        let H = 6
        for (label, mask) in masks {
            let rows = mask.count
            let s = rng.floats(rows * H, -2, 2), t = rng.floats(rows * H, -2, 2)
            let td = t.map(Double.init)
            let loss = withBuffers(s, t, mask) { cosineLossForward(student: $0, teacher: $1, mask: $2, rows: rows, hidden: H) }
            let ref = LossReference.cosine(s.map(Double.init), td, mask: mask, H: H)
            XCTAssertEqual(loss, ref, accuracy: lossCheckTolerance * max(1, ref), "\(label) loss")
            let ds = FloatBuffer(count: rows * H)
            withBuffers(s, t, mask) { cosineLossBackward(dStudent: ds.pointer, student: $0, teacher: $1, mask: $2, rows: rows, hidden: H) }
            checkGradient("cosine \(label)", analytic: ds.array,
                          numeric: numericGradient(at: s) { LossReference.cosine($0, td, mask: mask, H: H) })
        }
        // Large-magnitude states (hidden states of ~100): cosine is scale-invariant.
        let mask = masks[0].1, rows = mask.count
        let s = rng.floats(rows * H, -100, 100), t = rng.floats(rows * H, -100, 100)
        let ds = FloatBuffer(count: rows * H)
        withBuffers(s, t, mask) { cosineLossBackward(dStudent: ds.pointer, student: $0, teacher: $1, mask: $2, rows: rows, hidden: H) }
        checkGradient("cosine large states", analytic: ds.array,
                      numeric: numericGradient(at: s) { LossReference.cosine($0, t.map(Double.init), mask: mask, H: H) })
    }

    func testCosineOfParallelVectorsIsZero() {
        var rng = TestRNG(seed: 33)
        let (rows, H) = (4, 7)
        let t = rng.floats(rows * H, -1, 1)
        let mask: [Int32] = [1, 1, 1, 0]
        for factor: Float in [1, 3.5, 1e-3] {
            let s = t.map { $0 * factor }
            let loss = withBuffers(s, t, mask) { cosineLossForward(student: $0, teacher: $1, mask: $2, rows: rows, hidden: H) }
            // cos rounds to 1 within a few Double ulps of the Float products.
            XCTAssertEqual(loss, 0, accuracy: 1e-7, "identical directions, factor \(factor)")
        }
        // Opposite vectors: loss 2.
        let loss = withBuffers(t.map { -$0 }, t, mask) { cosineLossForward(student: $0, teacher: $1, mask: $2, rows: rows, hidden: H) }
        XCTAssertEqual(loss, 2, accuracy: 1e-7)
        // A zero student row is defined as cos = 0 with no gradient, never NaN.
        var s = t
        for c in 0..<H { s[c] = 0 }
        let ds = FloatBuffer(count: rows * H)
        withBuffers(s, t, mask) { cosineLossBackward(dStudent: ds.pointer, student: $0, teacher: $1, mask: $2, rows: rows, hidden: H) }
        XCTAssertTrue(ds.array.allSatisfy(\.isFinite))
        XCTAssertTrue(ds.array[0..<H].allSatisfy { $0 == 0 })
    }

    func testProjectedHiddenLosses() {
        var rng = TestRNG(seed: 34)
        let (Hs, Ht) = (3, 5)
        for kind in [HiddenStateLoss.mse, .cosine] {
            for (label, mask) in masks {
                let rows = mask.count
                let x = rng.floats(rows * Hs, -2, 2), w = rng.floats(Ht * Hs), b = rng.floats(Ht), t = rng.floats(rows * Ht, -2, 2)
                let xd = x.map(Double.init), wd = w.map(Double.init), bd = b.map(Double.init), td = t.map(Double.init)
                func reference(_ x: [Double], _ w: [Double], _ b: [Double]) -> Double {
                    let y = LossReference.linear(x, w, b, rows: rows, inFeatures: Hs, outFeatures: Ht)
                    return kind == .mse ? LossReference.hiddenMSE(y, td, mask: mask, H: Ht) : LossReference.cosine(y, td, mask: mask, H: Ht)
                }
                let projected = FloatBuffer(count: rows * Ht)
                let X = FloatBuffer(x), W = FloatBuffer(w), Bb = FloatBuffer(b), Tt = FloatBuffer(t)
                let loss = mask.withUnsafeBufferPointer { m in
                    projectedHiddenLossForward(kind, projected: projected.pointer, student: X.pointer, weight: W.pointer, bias: Bb.pointer,
                                               teacher: Tt.pointer, mask: m.baseAddress!, rows: rows, studentHidden: Hs, teacherHidden: Ht)
                }
                let ref = reference(xd, wd, bd)
                XCTAssertEqual(loss, ref, accuracy: floatPathTolerance * max(1, ref), "\(kind) \(label) loss")
                // Parameter gradients accumulate: start them at known values and subtract.
                let startW = rng.floats(Ht * Hs), startB = rng.floats(Ht)
                let dX = FloatBuffer(count: rows * Hs), dW = FloatBuffer(startW), dB = FloatBuffer(startB)
                let weight: Float = 0.5
                mask.withUnsafeBufferPointer { m in
                    projectedHiddenLossBackward(kind, dStudent: dX.pointer, dWeight: dW.pointer, dBias: dB.pointer, projected: projected.pointer,
                                                student: X.pointer, weight: W.pointer, teacher: Tt.pointer, mask: m.baseAddress!,
                                                rows: rows, studentHidden: Hs, teacherHidden: Ht, dLoss: weight)
                }
                let scaled: ([Double]) -> [Double] = { $0.map { $0 * Double(weight) } }
                checkGradient("projected \(kind) \(label) dX", analytic: dX.array, numeric: scaled(numericGradient(at: x) { reference($0, wd, bd) }))
                checkGradient("projected \(kind) \(label) dW", analytic: zip(dW.array, startW).map { $0 - $1 },
                              numeric: scaled(numericGradient(at: w) { reference(xd, $0, bd) }))
                checkGradient("projected \(kind) \(label) db", analytic: zip(dB.array, startB).map { $0 - $1 },
                              numeric: scaled(numericGradient(at: b) { reference(xd, wd, $0) }))
            }
        }
    }

    func testAccumulateAddsToStudentGradient() {
        var rng = TestRNG(seed: 35)
        let (rows, H) = (4, 3)
        let s = rng.floats(rows * H), t = rng.floats(rows * H), mask: [Int32] = [1, 1, 0, 1]
        let start = rng.floats(rows * H)
        for kind in [HiddenStateLoss.mse, .cosine] {
            let fresh = FloatBuffer(count: rows * H), acc = FloatBuffer(start)
            withBuffers(s, t, mask) { p, q, m in
                hiddenLossBackward(kind, dStudent: fresh.pointer, student: p, teacher: q, mask: m, rows: rows, hidden: H)
                hiddenLossBackward(kind, dStudent: acc.pointer, student: p, teacher: q, mask: m, rows: rows, hidden: H, accumulate: true)
            }
            for i in 0..<(rows * H) { XCTAssertEqual(acc.array[i], start[i] + fresh.array[i], accuracy: 1e-7, "\(kind) element \(i)") }
        }
    }

    // MARK: Attention scores and attention-score MSE

    func testAttentionScoresForwardBackward() {
        var rng = TestRNG(seed: 41)
        let (B, T, heads, D) = (2, 3, 2, 4)
        let n = B * T * heads * D
        let q = rng.floats(n), k = rng.floats(n)
        let qd = q.map(Double.init), kd = k.map(Double.init)
        let scores = FloatBuffer(count: B * heads * T * T)
        let Q = FloatBuffer(q), K = FloatBuffer(k)
        attentionScoresForward(scores: scores.pointer, q: Q.pointer, k: K.pointer, batch: B, sequenceLength: T, heads: heads, headSize: D)
        let ref = LossReference.scores(qd, kd, B: B, T: T, heads: heads, D: D)
        XCTAssertLessThanOrEqual(relativeError(scores.array, ref), floatPathTolerance)
        let w = rng.floats(B * heads * T * T).map(Double.init)
        let dS = FloatBuffer(w.map(Float.init))
        let wF = w.map { Double(Float($0)) }
        func phi(_ q: [Double], _ k: [Double]) -> Double {
            zip(LossReference.scores(q, k, B: B, T: T, heads: heads, D: D), wF).reduce(0) { $0 + $1.0 * $1.1 }
        }
        // dq/dk accumulate: start them at known values.
        let startQ = rng.floats(n), startK = rng.floats(n)
        let dq = FloatBuffer(startQ), dk = FloatBuffer(startK)
        attentionScoresBackward(dq: dq.pointer, dk: dk.pointer, dScores: dS.pointer, q: Q.pointer, k: K.pointer,
                                batch: B, sequenceLength: T, heads: heads, headSize: D)
        checkGradient("attention scores dQ", analytic: zip(dq.array, startQ).map { $0 - $1 }, numeric: numericGradient(at: q) { phi($0, kd) })
        checkGradient("attention scores dK", analytic: zip(dk.array, startK).map { $0 - $1 }, numeric: numericGradient(at: k) { phi(qd, $0) })
    }

    func testAttentionScoreMSE() {
        var rng = TestRNG(seed: 42)
        let (B, T, heads) = (2, 4, 3)
        let cases: [(String, [Int32], Double)] = [
            ("padded", [1, 1, 1, 0, 1, 1, 0, 0], 3),
            ("all padding but one", [0, 0, 1, 0, 0, 0, 0, 0], 3),
            ("no padding, large scores", [1, 1, 1, 1, 1, 1, 1, 1], 50),
        ]
        for (label, mask, magnitude) in cases {
            let count = B * heads * T * T
            let s = rng.floats(count, -magnitude, magnitude), t = rng.floats(count, -magnitude, magnitude)
            let td = t.map(Double.init)
            let loss = withBuffers(s, t, mask) { attentionScoreMSEForward(student: $0, teacher: $1, mask: $2, batch: B, sequenceLength: T, heads: heads) }
            let ref = LossReference.attentionMSE(s.map(Double.init), td, mask: mask, B: B, T: T, heads: heads)
            XCTAssertEqual(loss, ref, accuracy: lossCheckTolerance * max(1, ref), "\(label) loss")
            let ds = FloatBuffer(count: count)
            withBuffers(s, t, mask) { attentionScoreMSEBackward(dStudent: ds.pointer, student: $0, teacher: $1, mask: $2, batch: B, sequenceLength: T, heads: heads) }
            checkGradient("attention MSE \(label)", analytic: ds.array,
                          numeric: numericGradient(at: s) { LossReference.attentionMSE($0, td, mask: mask, B: B, T: T, heads: heads) })
        }
    }

    /// The whole attention path of one pair: scores from (q, k), MSE against the teacher's
    /// scores; dQ and dK through both backwards.
    func testAttentionScoreMSEThroughQueryKey() {
        var rng = TestRNG(seed: 43)
        let (B, T, heads, D) = (2, 3, 2, 2)
        let mask: [Int32] = [1, 1, 0, 1, 1, 1]
        let n = B * T * heads * D, count = B * heads * T * T
        let q = rng.floats(n), k = rng.floats(n), teacher = rng.floats(count)
        let qd = q.map(Double.init), kd = k.map(Double.init), td = teacher.map(Double.init)
        func reference(_ q: [Double], _ k: [Double]) -> Double {
            LossReference.attentionMSE(LossReference.scores(q, k, B: B, T: T, heads: heads, D: D), td, mask: mask, B: B, T: T, heads: heads)
        }
        let Q = FloatBuffer(q), K = FloatBuffer(k), S = FloatBuffer(count: count), Tt = FloatBuffer(teacher), dS = FloatBuffer(count: count)
        let dq = FloatBuffer(count: n), dk = FloatBuffer(count: n)
        attentionScoresForward(scores: S.pointer, q: Q.pointer, k: K.pointer, batch: B, sequenceLength: T, heads: heads, headSize: D)
        let loss = mask.withUnsafeBufferPointer { m in
            attentionScoreMSEForward(student: S.pointer, teacher: Tt.pointer, mask: m.baseAddress!, batch: B, sequenceLength: T, heads: heads)
        }
        XCTAssertEqual(loss, reference(qd, kd), accuracy: floatPathTolerance * max(1, loss))
        mask.withUnsafeBufferPointer { m in
            attentionScoreMSEBackward(dStudent: dS.pointer, student: S.pointer, teacher: Tt.pointer, mask: m.baseAddress!,
                                      batch: B, sequenceLength: T, heads: heads)
        }
        attentionScoresBackward(dq: dq.pointer, dk: dk.pointer, dScores: dS.pointer, q: Q.pointer, k: K.pointer,
                                batch: B, sequenceLength: T, heads: heads, headSize: D)
        checkGradient("attention MSE via dQ", analytic: dq.array, numeric: numericGradient(at: q) { reference($0, kd) })
        checkGradient("attention MSE via dK", analytic: dk.array, numeric: numericGradient(at: k) { reference(qd, $0) })
    }
}
