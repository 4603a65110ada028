// Training-kernel tests: the softmax inside the attention kernel and its backward, GELU and
// its derivative, LayerNorm forward/backward, column sums dispatched vs their `_ref`
// twins and vs Double references on awkward sizes; the training GEMM pieces — transposed
// packing, transposed A, the one-call dk_gemm in all four transpose combinations — against
// Double products and each other; PackedGemm on 1 and 2 threads, bitwise.
import CKernels
import DistilleryTensor
import Foundation
import XCTest

/// A float GEMM against a Double product: the γₙ bound of PackedGemmTests, n = K plus
/// one C term per K block, times Σ|a·b| — holds for any summation order, cannot flake.
private func productBound(k: Int, absoluteSum: Double) -> Double {
    let n = Double(k + k / 384 + 2), u = 0x1p-24
    return n * u / (1 - n * u) * absoluteSum
}

/// Largest |a − b| over the largest |b| (at least 1e-30).
private func relativeGap(_ a: [Float], _ b: [Double]) -> Double {
    let scale = max(b.map(abs).max() ?? 0, 1e-30)
    return zip(a, b).map { abs(Double($0) - $1) }.max().map { $0 / scale } ?? 0
}

final class TrainingKernelTests: XCTestCase {
    // MARK: softmax

    /// The masked softmax inside dk_attention_head, through its `scores` and `probs`
    /// outputs: scores are scale·q·kᵀ before the mask; probabilities are their softmax with
    /// masked keys exactly 0 and an all-masked row uniform; dropout and the head weight
    /// scale only the product with v.
    func testAttentionSoftmaxScoresDropoutAndHeadWeight() {
        let scale: Float = 0.35
        for T in awkwardSizes.filter({ $0 <= 63 }) {
            for pattern in ["all", "every third masked", "none"] {
                let D = 3, ld = 3 * D
                let qkv = randomFloats(T * ld, seed: UInt64(T) &* 31, scale: 3)
                let keep: [Int32] = (0..<T).map { j in pattern == "all" ? 1 : pattern == "none" ? 0 : (j % 3 == 1 ? 0 : 1) }
                let drop = randomFloats(T * T, seed: UInt64(T) + 1).map { $0 < -0.5 ? Float(0) : 1.25 }
                let weight: Float = 0.75
                var scratch = [Float](repeating: 0, count: dk_attention_scratch_floats(T, D))
                var probs = [Float](repeating: .nan, count: T * T), probsRef = probs, scores = probs, scoresRef = probs
                var out = [Float](repeating: .nan, count: T * D), outRef = out
                qkv.withUnsafeBufferPointer { p in
                    let q = p.baseAddress!, k = q + D, v = q + 2 * D
                    dk_attention_head(q, k, v, ld, &out, D, keep, T, D, scale, &scratch, &probs, &scores, drop, weight)
                    dk_attention_head_ref(q, k, v, ld, &outRef, D, keep, T, D, scale, &scratch, &probsRef, &scoresRef, drop, weight)
                }
                let anyKept = keep.contains(1)
                for t in 0..<T {
                    var m = -Double.infinity
                    for j in 0..<T {
                        let exact = (0..<D).reduce(0.0) { $0 + Double(qkv[t * ld + $1]) * Double(qkv[j * ld + D + $1]) } * Double(scale)
                        XCTAssertEqual(Double(scores[t * T + j]), exact, accuracy: Double(kernelTolerance), "scores, T \(T)")
                        XCTAssertEqual(scores[t * T + j], scoresRef[t * T + j], accuracy: kernelTolerance, "scores dispatched vs _ref")
                        if keep[j] != 0 { m = max(m, Double(scores[t * T + j])) }
                    }
                    // The softmax of the kernel's own scores, in Double.
                    let e: [Double] = (0..<T).map { keep[$0] != 0 ? Foundation.exp(Double(scores[t * T + $0]) - m) : 0 }
                    let z = e.reduce(0, +)
                    for j in 0..<T {
                        let expected = anyKept ? e[j] / z : 1 / Double(T)
                        XCTAssertEqual(Double(probs[t * T + j]), expected, accuracy: Double(kernelTolerance), "T \(T) \(pattern)")
                        XCTAssertEqual(probs[t * T + j], probsRef[t * T + j], accuracy: kernelTolerance, "dispatched vs _ref, T \(T)")
                        if anyKept && keep[j] == 0 { XCTAssertEqual(probs[t * T + j], 0, "masked key gets exactly 0") }
                    }
                    for d in 0..<D {
                        let exact = (0..<T).reduce(0.0) {
                            $0 + Double(weight) * Double(probs[t * T + $1]) * Double(drop[t * T + $1]) * Double(qkv[$1 * ld + 2 * D + d])
                        }
                        XCTAssertEqual(Double(out[t * D + d]), exact, accuracy: Double(kernelTolerance), "context with dropout and head weight, T \(T)")
                        XCTAssertEqual(out[t * D + d], outRef[t * D + d], accuracy: kernelTolerance, "context dispatched vs _ref")
                    }
                }
            }
        }
    }

    func testSoftmaxBackwardAgainstReference() {
        let scale: Float = 0.5
        for T in awkwardSizes {
            let rows = 2
            var p = randomFloats(rows * T, seed: UInt64(T) + 3).map { abs($0) }
            p[0] = 0   // a masked key
            let d = randomFloats(rows * T, seed: UInt64(T) + 4)
            let drop = randomFloats(rows * T, seed: UInt64(T) + 5).map { $0 < -0.4 ? Float(0) : 1.25 }
            let extra = randomFloats(rows * T, seed: UInt64(T) + 6)
            for (useDrop, useExtra) in [(false, false), (true, false), (false, true), (true, true)] {
                var fast = d, ref = d
                let m: [Float]? = useDrop ? drop : nil, e: [Float]? = useExtra ? extra : nil
                dk_softmax_backward(&fast, T, p, T, m, T, e, T, rows, T, scale)
                dk_softmax_backward_ref(&ref, T, p, T, m, T, e, T, rows, T, scale)
                var expected = [Double](repeating: 0, count: rows * T)
                for r in 0..<rows {
                    let dd = (0..<T).map { Double(d[r * T + $0]) * (useDrop ? Double(drop[r * T + $0]) : 1) }
                    let c = (0..<T).reduce(0.0) { $0 + Double(p[r * T + $1]) * dd[$1] }
                    for j in 0..<T {
                        let pj = Double(p[r * T + j])
                        expected[r * T + j] = ((pj == 0 ? 0 : pj * (dd[j] - c)) + (useExtra ? Double(extra[r * T + j]) : 0)) * Double(scale)
                    }
                }
                XCTAssertLessThanOrEqual(relativeGap(fast, expected), Double(kernelTolerance), "T \(T) dropout \(useDrop) extra \(useExtra)")
                XCTAssertLessThanOrEqual(relativeGap(ref, expected), Double(kernelTolerance), "_ref, T \(T)")
            }
        }
    }

    // MARK: GELU

    func testGeluForwardAndBackwardAgainstReference() {
        for n in awkwardSizes + [1000] {
            var x = randomFloats(n, seed: UInt64(n) + 11, scale: 6)
            if n > 8 { x[0] = -12; x[1] = 12; x[2] = 0; x[3] = -1e-4 }
            let dy = randomFloats(n, seed: UInt64(n) + 12)
            var y = [Float](repeating: .nan, count: n), yRef = y, dx = y, dxRef = y
            dk_bias_gelu(x, nil, nil, &y, 1, n)
            dk_bias_gelu_ref(x, nil, nil, &yRef, 1, n)
            dk_gelu_backward(dy, x, &dx, n)
            dk_gelu_backward_ref(dy, x, &dxRef, n)
            for i in 0..<n {
                let v = Double(x[i]), cdf = 0.5 * (1 + erf(v / 2.0.squareRoot()))
                let grad = Double(dy[i]) * (cdf + v * exp(-0.5 * v * v) / (2 * Double.pi).squareRoot())
                XCTAssertEqual(Double(y[i]), v * cdf, accuracy: Double(kernelTolerance), "gelu n \(n) x \(v)")
                XCTAssertEqual(Double(dx[i]), grad, accuracy: Double(kernelTolerance), "gelu' n \(n) x \(v)")
                XCTAssertEqual(y[i], yRef[i], accuracy: kernelTolerance, "dispatched vs _ref")
                XCTAssertEqual(dx[i], dxRef[i], accuracy: kernelTolerance, "dispatched vs _ref")
            }
            // A split at any multiple of 8 gives the same bits (the tail runs the vector code).
            if n > 16 {
                var parts = [Float](repeating: 0, count: n)
                dy.withUnsafeBufferPointer { d in x.withUnsafeBufferPointer { xs in parts.withUnsafeMutableBufferPointer { o in
                    dk_gelu_backward(d.baseAddress!, xs.baseAddress!, o.baseAddress!, 16)
                    dk_gelu_backward(d.baseAddress! + 16, xs.baseAddress! + 16, o.baseAddress! + 16, n - 16)
                } } }
                XCTAssertEqual(parts, dx, "split at 16, n \(n)")
            }
        }
    }

    // MARK: LayerNorm

    func testLayerNormForwardBackwardAgainstReference() {
        for cols in awkwardSizes {
            let rows = 3
            var x = randomFloats(rows * cols, seed: UInt64(cols) + 21, scale: 3)
            for c in 0..<cols { x[2 * cols + c] = 100 + Float(c) * 0.01 }   // large offset, tiny spread
            let gamma = randomFloats(cols, seed: 22), beta = randomFloats(cols, seed: 23)
            let dy = randomFloats(rows * cols, seed: UInt64(cols) + 24)
            var y = [Float](repeating: .nan, count: rows * cols), yRef = y
            var mean = [Float](repeating: .nan, count: rows), rstd = mean, meanRef = mean, rstdRef = mean
            dk_residual_layernorm(x, nil, nil, nil, nil, &y, &mean, &rstd, gamma, beta, rows, cols, 1e-5)
            dk_residual_layernorm_ref(x, nil, nil, nil, nil, &yRef, &meanRef, &rstdRef, gamma, beta, rows, cols, 1e-5)
            XCTAssertEqual(mean, meanRef, "double statistics agree, cols \(cols)")
            for r in 0..<rows {
                let v = (0..<cols).map { Double(x[r * cols + $0]) }
                let m = v.reduce(0, +) / Double(cols)
                let s = 1 / (v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(cols) + 1e-5).squareRoot()
                for c in 0..<cols {
                    let expected = (v[c] - m) * s * Double(gamma[c]) + Double(beta[c])
                    XCTAssertEqual(Double(y[r * cols + c]), expected, accuracy: 1e-5, "cols \(cols) row \(r)")
                    XCTAssertEqual(y[r * cols + c], yRef[r * cols + c], accuracy: kernelTolerance)
                }
            }
            // Backward vs the Double formula on the kernel's own float statistics.
            for accumulate in [false, true] {
                let start = randomFloats(rows * cols, seed: 25)
                var dx = accumulate ? start : [Float](repeating: .nan, count: rows * cols), dxRef = dx
                dk_layernorm_backward(&dx, dy, x, mean, rstd, gamma, rows, cols, accumulate ? 1 : 0)
                dk_layernorm_backward_ref(&dxRef, dy, x, mean, rstd, gamma, rows, cols, accumulate ? 1 : 0)
                var expected = [Double](repeating: 0, count: rows * cols)
                for r in 0..<rows {
                    let m = Double(mean[r]), s = Double(rstd[r])
                    let g = (0..<cols).map { Double(dy[r * cols + $0]) * Double(gamma[$0]) }
                    let xh = (0..<cols).map { (Double(x[r * cols + $0]) - m) * s }
                    let mg = g.reduce(0, +) / Double(cols), mgx = zip(g, xh).map(*).reduce(0, +) / Double(cols)
                    for c in 0..<cols {
                        expected[r * cols + c] = s * (g[c] - mg - xh[c] * mgx) + (accumulate ? Double(start[r * cols + c]) : 0)
                    }
                }
                // The offset row's x̂ comes from x − mean in float (ulp 8e-6 against a
                // spread of 0.03, ~3e-4 of x̂), as in the op the gradient checks cover.
                XCTAssertLessThanOrEqual(relativeGap(dx, expected), 1e-3, "cols \(cols) accumulate \(accumulate)")
                XCTAssertLessThanOrEqual(relativeGap(dxRef, expected), 1e-3, "_ref, cols \(cols)")
            }
            // Parameter gradients and bias column sums, over a column block of a wider matrix.
            var dg = randomFloats(cols, seed: 26), db = randomFloats(cols, seed: 27)
            var dgRef = dg, dbRef = db, sums = db, sumsRef = db
            let dg0 = dg, db0 = db
            dk_layernorm_param_backward(&dg, &db, dy, x, mean, rstd, rows, cols, cols)
            dk_layernorm_param_backward_ref(&dgRef, &dbRef, dy, x, mean, rstd, rows, cols, cols)
            dk_column_sums(&sums, dy, rows, cols, cols)
            dk_column_sums_ref(&sumsRef, dy, rows, cols, cols)
            XCTAssertEqual(db, sums, "dβ is the column sum")
            XCTAssertEqual(sums, sumsRef, "column sums add rows in order: bitwise equal")
            for c in 0..<cols {
                var eg = Double(dg0[c]), eb = Double(db0[c])
                for r in 0..<rows {
                    eg += Double(dy[r * cols + c]) * (Double(x[r * cols + c]) - Double(mean[r])) * Double(rstd[r])
                    eb += Double(dy[r * cols + c])
                }
                XCTAssertEqual(Double(dg[c]), eg, accuracy: 1e-3 * max(1, abs(eg)), "dγ cols \(cols)")
                XCTAssertEqual(Double(db[c]), eb, accuracy: Double(kernelTolerance), "dβ cols \(cols)")
                XCTAssertEqual(dg[c], dgRef[c], accuracy: 1e-3 * max(1, abs(dgRef[c])))
            }
        }
    }

    // MARK: dropout masks

    func testDropoutMaskMatchesItsReferenceBitwise() {
        let key: UInt64 = 0x0123_4567_89AB_CDEF
        for count in awkwardSizes + [4096] { for first: UInt64 in [0, 5, 1 << 33] {
            var fast = [Float](repeating: .nan, count: count), ref = fast
            dk_dropout_mask(key, first, count, 0.3, 1 / 0.7, &fast)
            dk_dropout_mask_ref(key, first, count, 0.3, 1 / 0.7, &ref)
            XCTAssertEqual(fast, ref, "count \(count) first \(first)")
            XCTAssertTrue(fast.allSatisfy { $0 == 0 || $0 == 1 / 0.7 })
        } }
        // Drop rate ≈ p over many draws (binomial, 5 sigma).
        var big = [Float](repeating: 0, count: 100_000)
        dk_dropout_mask(key, 0, big.count, 0.1, 1 / 0.9, &big)
        let dropped = Double(big.filter { $0 == 0 }.count)
        XCTAssertEqual(dropped, 10_000, accuracy: 5 * (100_000 * 0.1 * 0.9).squareRoot())
    }

    // MARK: GEMM pieces

    func testTransposedPackingEqualsPacking() {
        for n in awkwardSizes { for k in [1, 5, 17] {
            let w = randomFloats(n * k, seed: UInt64(n * 100 + k))
            var wt = [Float](repeating: 0, count: n * k)
            for i in 0..<n { for j in 0..<k { wt[j * n + i] = w[i * k + j] } }
            var packed = [Float](repeating: .nan, count: dk_packed_floats(n, k)), fromT = packed
            dk_pack_weight(w, n, k, &packed)
            dk_pack_weight_transposed(wt, n, n, k, &fromT)
            XCTAssertEqual(fromT, packed, "n \(n) k \(k)")
            if n > 16 {   // in two parts at a panel boundary
                var parts = [Float](repeating: .nan, count: packed.count)
                wt.withUnsafeBufferPointer { src in parts.withUnsafeMutableBufferPointer { dst in
                    dk_pack_weight_transposed(src.baseAddress!, n, 16, k, dst.baseAddress!)
                    dk_pack_weight_transposed(src.baseAddress! + 16, n, n - 16, k, dst.baseAddress! + 16 * k)
                } }
                XCTAssertEqual(parts, packed, "two parts, n \(n) k \(k)")
            }
        } }
    }

    /// (m, n, k) covering row/column tails, tiny and K-blocked (> 384) products.
    static let shapes = [(1, 1, 1), (5, 17, 33), (7, 16, 129), (33, 31, 2), (129, 3, 17), (16, 33, 400), (63, 15, 7)]

    func testGemmAllTransposesAgainstDouble() {
        for (m, n, k) in Self.shapes {
            for transA in [false, true] { for transB in [false, true] { for accumulate in [false, true] {
                let (lda, ldb, ldc) = ((transA ? m : k) + 3, (transB ? k : n) + 2, n + 1)
                let a = randomFloats((transA ? k : m) * lda, seed: UInt64(m + 7 * n + 13 * k))
                let b = randomFloats((transB ? n : k) * ldb, seed: UInt64(m + 5 * n + 11 * k))
                let c0 = randomFloats(m * ldc, seed: 99)
                func A(_ i: Int, _ p: Int) -> Float { transA ? a[p * lda + i] : a[i * lda + p] }
                func B(_ p: Int, _ j: Int) -> Float { transB ? b[j * ldb + p] : b[p * ldb + j] }
                var fast = c0, ref = c0
                XCTAssertEqual(dk_gemm(transA ? 1 : 0, transB ? 1 : 0, m, n, k, a, lda, b, ldb, &fast, ldc, accumulate ? 1 : 0), 0)
                dk_gemm_ref(transA ? 1 : 0, transB ? 1 : 0, m, n, k, a, lda, b, ldb, &ref, ldc, accumulate ? 1 : 0)
                let label = "m \(m) n \(n) k \(k) transA \(transA) transB \(transB) accumulate \(accumulate)"
                for i in 0..<m {
                    for j in 0..<n {
                        var exact = accumulate ? Double(c0[i * ldc + j]) : 0, absSum = abs(exact)
                        for p in 0..<k { let t = Double(A(i, p)) * Double(B(p, j)); exact += t; absSum += abs(t) }
                        let bound = productBound(k: k, absoluteSum: absSum)
                        XCTAssertLessThanOrEqual(abs(Double(fast[i * ldc + j]) - exact), bound, label)
                        XCTAssertLessThanOrEqual(abs(Double(ref[i * ldc + j]) - exact), bound, "_ref " + label)
                    }
                    XCTAssertEqual(fast[i * ldc + n], c0[i * ldc + n], "padding of C untouched, " + label)
                }
            } } }
        }
    }

    func testTransposedAMatchesPlainABitwise() {
        for (m, n, k) in Self.shapes {
            let a = randomFloats(m * k, seed: UInt64(3 * m + k))
            var at = [Float](repeating: 0, count: m * k)
            for i in 0..<m { for p in 0..<k { at[p * m + i] = a[i * k + p] } }
            var packed = [Float](repeating: 0, count: dk_packed_floats(n, k))
            dk_pack_weight(randomFloats(n * k, seed: 4), n, k, &packed)
            var ws = [Float](repeating: .nan, count: dk_gemm_workspace_floats(m, k))
            var plain = [Float](repeating: .nan, count: m * n), trans = plain, transRef = plain
            dk_gemm_packed(m, n, k, a, k, packed, &plain, n, 0, &ws)
            dk_gemm_packed_at(m, n, k, at, m, packed, &trans, n, 0, &ws)
            dk_gemm_packed_at_ref(m, n, k, at, m, packed, &transRef, n, 0, nil)
            XCTAssertEqual(trans, plain, "packed Aᵀ panels equal packed A panels: m \(m) n \(n) k \(k)")
            XCTAssertLessThanOrEqual(zip(transRef, plain).map { abs($0 - $1) }.max() ?? 0, 1e-4, "_ref, m \(m) n \(n) k \(k)")
        }
    }

    func testPackedGemmIsBitwiseTheSameOnAnyThreadCount() {
        // Shapes that take the row split, the column split and the single-thread path on 2 threads.
        for (m, n, k) in [(200, 40, 70), (7, 100, 33), (5, 9, 3), (50, 384, 400)] {
            for transA in [false, true] { for transB in [false, true] {
                let a = randomFloats(m * k, seed: UInt64(m * k)), b = randomFloats(n * k, seed: UInt64(n + k))
                let (lda, ldb) = (transA ? m : k, transB ? k : n)
                var single = [Float](repeating: .nan, count: m * n)
                XCTAssertEqual(dk_gemm(transA ? 1 : 0, transB ? 1 : 0, m, n, k, a, lda, b, ldb, &single, n, 0), 0)
                for threads in [1, 2] {
                    Compute.setThreads(threads)
                    var c = [Float](repeating: .nan, count: m * n)
                    a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                        PackedGemm.multiply(transA: transA, transB: transB, m: m, n: n, k: k, a: ap.baseAddress!, lda: lda,
                                            b: bp.baseAddress!, ldb: ldb, c: cp.baseAddress!, ldc: n, accumulate: false)
                    } } }
                    XCTAssertEqual(c, single, "m \(m) n \(n) k \(k) transA \(transA) transB \(transB), \(threads) thread(s)")
                }
            } }
        }
        Compute.setThreads(1)
    }
}

/// The optimizer kernels: dk_adamw bit for bit its `_ref` twin and the formula evaluated
/// in Swift float operations in the written order (no fused multiply-adds), on awkward
/// lengths, with and without decay; dk_scale likewise.
final class OptimizerKernelTests: XCTestCase {
    func testAdamWKernelMatchesTheWrittenFormulaBitForBit() {
        let (df, ob1, b2, ob2, c2, eps, step): (Float, Float, Float, Float, Float, Float, Float) =
            (0.9995, 0.1, 0.999, 0.001, 0.0447, 1e-8, -3e-4)
        for n in awkwardSizes + [4096] {
            for decay in [false, true] {
                let p0 = randomFloats(n, seed: UInt64(n) + 1), m0 = randomFloats(n, seed: UInt64(n) + 2, scale: 0.1)
                let v0 = randomFloats(n, seed: UInt64(n) + 3, scale: 0.01).map(abs), g = randomFloats(n, seed: UInt64(n) + 4)
                var (p, m, v) = (p0, m0, v0), (pr, mr, vr) = (p0, m0, v0)
                dk_adamw(&p, &m, &v, g, n, decay ? 1 : 0, df, ob1, b2, ob2, c2, eps, step)
                dk_adamw_ref(&pr, &mr, &vr, g, n, decay ? 1 : 0, df, ob1, b2, ob2, c2, eps, step)
                var (pe, me, ve) = (p0, m0, v0)
                for i in 0..<n {
                    if decay { pe[i] = pe[i] * df }
                    me[i] = me[i] + ob1 * (g[i] - me[i])
                    ve[i] = ve[i] * b2
                    ve[i] = ve[i] + ob2 * g[i] * g[i]
                    let denominator = ve[i].squareRoot() / c2 + eps
                    pe[i] = pe[i] + step * me[i] / denominator
                }
                XCTAssertEqual(p, pe, "n \(n) decay \(decay)")
                XCTAssertEqual(m, me)
                XCTAssertEqual(v, ve)
                XCTAssertEqual(pr, pe, "_ref, n \(n)")
            }
        }
    }

    func testScaleKernel() {
        for n in awkwardSizes {
            let x = randomFloats(n, seed: UInt64(n))
            var fast = x, ref = x
            dk_scale(&fast, n, 0.37)
            dk_scale_ref(&ref, n, 0.37)
            XCTAssertEqual(fast, x.map { $0 * 0.37 })
            XCTAssertEqual(ref, fast)
        }
    }
}
