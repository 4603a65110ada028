// Kernel tests: each C kernel's dispatched (AVX2+FMA) build against its portable `_ref`
// twin and against a Double reference, on awkward sizes; exp/erf accuracy over their
// whole useful range; the BLAS wrapper against a naive product.
import CKernels
import DistilleryTensor
import Foundation
import XCTest

/// Sizes that hit every vector-tail path (8-wide lanes, unroll by 4).
let awkwardSizes = [1, 2, 3, 5, 7, 15, 16, 17, 31, 33, 63, 127, 129]
/// exp and erf are polynomial/rational approximations: a few float ulps near 1.
let approximationTolerance = 4e-7
/// A float32 kernel against a Double reference of the same math over ≤ 129 terms.
let kernelTolerance: Float = 2e-5

/// Deterministic pseudo-random floats in [-scale, scale).
func randomFloats(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] {
    var s = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    return (0..<n).map { _ in
        s ^= s << 13; s ^= s >> 7; s ^= s << 17
        return (Float(s >> 40) / Float(1 << 24) * 2 - 1) * scale
    }
}

final class KernelTests: XCTestCase {
    func testExpMatchesLibm() {
        let xs = stride(from: -87.0, through: 0.0, by: 0.003).map { Float($0) }
        var ys = [Float](repeating: 0, count: xs.count)
        dk_exp_ref(xs, &ys, xs.count)
        var worst = 0.0
        for (x, y) in zip(xs, ys) {
            let e = Foundation.exp(Double(x))
            worst = max(worst, abs(Double(y) - e) / e)
        }
        XCTAssertLessThan(worst, approximationTolerance, "max relative error of exp")
    }

    func testErfMatchesLibm() {
        let xs = stride(from: -6.0, through: 6.0, by: 0.0007).map { Float($0) }
        var ys = [Float](repeating: 0, count: xs.count)
        dk_erf_ref(xs, &ys, xs.count)
        var worst = 0.0
        for (x, y) in zip(xs, ys) { worst = max(worst, abs(Double(y) - Foundation.erf(Double(x)))) }
        XCTAssertLessThan(worst, approximationTolerance, "max absolute error of erf")
    }

    func testBiasGeluAgainstReference() {
        for cols in awkwardSizes {
            let rows = 3
            let x = randomFloats(rows * cols, seed: UInt64(cols), scale: 6)
            let bias = randomFloats(cols, seed: 99, scale: 1)
            var fast = [Float](repeating: .nan, count: x.count), ref = fast, pre = fast
            dk_bias_gelu(x, bias, &pre, &fast, rows, cols)
            dk_bias_gelu_ref(x, bias, nil, &ref, rows, cols)
            // In place (x, pre and act one buffer) gives the same bits.
            var inPlace = x
            inPlace.withUnsafeMutableBufferPointer { p in dk_bias_gelu(p.baseAddress!, bias, p.baseAddress!, p.baseAddress!, rows, cols) }
            XCTAssertEqual(inPlace, fast, "in place, cols \(cols)")
            XCTAssertEqual(pre, (0..<(rows * cols)).map { x[$0] + bias[$0 % cols] }, "pre-activation kept, cols \(cols)")
            for i in 0..<(rows * cols) {
                let v = Double(x[i]) + Double(bias[i % cols])
                let exact = 0.5 * v * (1 + Foundation.erf(v / 2.0.squareRoot()))
                XCTAssertEqual(Double(fast[i]), exact, accuracy: Double(kernelTolerance), "cols \(cols) i \(i)")
                XCTAssertEqual(fast[i], ref[i], accuracy: kernelTolerance, "dispatched vs _ref, cols \(cols)")
            }
        }
    }

    func testLayerNormAgainstReference() {
        for cols in awkwardSizes {
            let rows = 4
            let x = randomFloats(rows * cols, seed: UInt64(cols) + 7, scale: 3)
            let residual = randomFloats(rows * cols, seed: 5, scale: 1)
            let bias = randomFloats(cols, seed: 6), gamma = randomFloats(cols, seed: 8), beta = randomFloats(cols, seed: 9)
            // Dropout scales the dense output (with its bias) before the residual is added.
            let drop = randomFloats(rows * cols, seed: 10).map { $0 < -0.5 ? Float(0) : 1.25 }
            var fast = [Float](repeating: .nan, count: x.count), ref = fast, sum = fast
            var meanKept = [Float](repeating: .nan, count: rows), rstdKept = meanKept
            dk_residual_layernorm(x, bias, drop, residual, &sum, &fast, &meanKept, &rstdKept, gamma, beta, rows, cols, 1e-12)
            dk_residual_layernorm_ref(x, bias, drop, residual, nil, &ref, nil, nil, gamma, beta, rows, cols, 1e-12)
            XCTAssertEqual(sum, (0..<(rows * cols)).map { (x[$0] + bias[$0 % cols]) * drop[$0] + residual[$0] }, "sum kept, cols \(cols)")
            // In place (y over x, no sum kept) gives the same bits.
            var inPlace = x
            inPlace.withUnsafeMutableBufferPointer { p in
                dk_residual_layernorm(p.baseAddress!, bias, drop, residual, nil, p.baseAddress!, nil, nil, gamma, beta, rows, cols, 1e-12)
            }
            XCTAssertEqual(inPlace, fast, "in place, cols \(cols)")
            for r in 0..<rows {
                let v = (0..<cols).map { (Double(x[r * cols + $0]) + Double(bias[$0])) * Double(drop[r * cols + $0]) + Double(residual[r * cols + $0]) }
                let mean = v.reduce(0, +) / Double(cols)
                let variance = v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(cols)
                XCTAssertEqual(Double(meanKept[r]), mean, accuracy: 1e-5 * max(1, abs(mean)), "mean kept, cols \(cols)")
                let rstd = 1 / (variance + 1e-12).squareRoot()
                XCTAssertEqual(Double(rstdKept[r]), rstd, accuracy: 1e-5 * rstd, "rstd kept, cols \(cols)")
                for c in 0..<cols {
                    let exact = (v[c] - mean) / (variance + 1e-12).squareRoot() * Double(gamma[c]) + Double(beta[c])
                    // cols 1: variance 0, output is beta exactly; otherwise float rounding.
                    XCTAssertEqual(Double(fast[r * cols + c]), exact, accuracy: 1e-4, "cols \(cols)")
                    XCTAssertEqual(fast[r * cols + c], ref[r * cols + c], accuracy: kernelTolerance, "dispatched vs _ref, cols \(cols)")
                }
            }
        }
    }

    func testAttentionHeadAgainstReference() {
        // Up to 129 keys: the AVX2 softmax takes its rows 8, 4 and 1 vectors at a time.
        for T in awkwardSizes {
            for D in T <= 64 ? [1, 8, 17, 32, 40, 64] : [32] {
                let ld = 3 * D + 5   // rows wider than the head, as in the fused QKV buffer
                let qkv = randomFloats(T * ld, seed: UInt64(T * 100 + D), scale: 2)
                var keep = [Int32](repeating: 1, count: T)
                if T > 2 { keep[T - 1] = 0; keep[T / 2] = 0 }
                let scale = 1 / Float(D).squareRoot()
                var fast = [Float](repeating: 0, count: T * D), ref = fast
                // Inference keeps no probabilities; with a head weight too (the AVX2 build
                // applies 1 / sum and the weight to each output row).
                var inference = fast, weighted = fast
                var probs = [Float](repeating: 0, count: T * T)
                var scratch = [Float](repeating: 0, count: dk_attention_scratch_floats(T, D))
                qkv.withUnsafeBufferPointer { p in
                    let q = p.baseAddress!, k = q + D, v = q + 2 * D
                    dk_attention_head(q, k, v, ld, &fast, D, keep, T, D, scale, &scratch, &probs, nil, nil, 1)
                    dk_attention_head_ref(q, k, v, ld, &ref, D, keep, T, D, scale, &scratch, nil, nil, nil, 1)
                    dk_attention_head(q, k, v, ld, &inference, D, keep, T, D, scale, &scratch, nil, nil, nil, 1)
                    dk_attention_head(q, k, v, ld, &weighted, D, keep, T, D, scale, &scratch, nil, nil, nil, 0.75)
                }
                for t in 0..<T {
                    var s = (0..<T).map { j -> Double in
                        (0..<D).reduce(0.0) { $0 + Double(qkv[t * ld + $1]) * Double(qkv[j * ld + D + $1]) } * Double(scale)
                    }
                    let m = s.indices.filter { keep[$0] != 0 }.map { s[$0] }.max()!
                    for j in 0..<T { s[j] = keep[j] != 0 ? Foundation.exp(s[j] - m) : 0 }
                    let sum = s.reduce(0, +)
                    XCTAssertEqual(probs[t * T..<(t + 1) * T].reduce(0, +), 1, accuracy: 1e-5, "probabilities sum to 1")
                    for j in 0..<T {
                        XCTAssertEqual(Double(probs[t * T + j]), s[j] / sum, accuracy: 1e-6)
                        if keep[j] == 0 { XCTAssertEqual(probs[t * T + j], 0, "masked key gets exactly 0") }
                    }
                    for d in 0..<D {
                        let exact = (0..<T).reduce(0.0) { $0 + s[$1] / sum * Double(qkv[$1 * ld + 2 * D + d]) }
                        XCTAssertEqual(Double(fast[t * D + d]), exact, accuracy: Double(kernelTolerance), "T \(T) D \(D)")
                        XCTAssertEqual(fast[t * D + d], ref[t * D + d], accuracy: kernelTolerance, "dispatched vs _ref")
                        XCTAssertEqual(Double(inference[t * D + d]), exact, accuracy: Double(kernelTolerance), "no probs, T \(T) D \(D)")
                        XCTAssertEqual(Double(weighted[t * D + d]), 0.75 * exact, accuracy: Double(kernelTolerance), "weight, T \(T) D \(D)")
                    }
                }
            }
        }
    }

    func testAllMaskedRowAveragesValuesLikeHF() {
        // HF adds finfo.min to every score, so a fully masked row becomes uniform.
        let T = 3, D = 2
        let qkv = randomFloats(T * 3 * D, seed: 3)
        var out = [Float](repeating: 0, count: T * D)
        var scratch = [Float](repeating: 0, count: dk_attention_scratch_floats(T, D))
        qkv.withUnsafeBufferPointer { p in
            dk_attention_head(p.baseAddress!, p.baseAddress! + D, p.baseAddress! + 2 * D, 3 * D, &out, D,
                              [0, 0, 0], T, D, 1, &scratch, nil, nil, nil, 1)
        }
        for d in 0..<D {
            let mean = (0..<T).map { qkv[$0 * 3 * D + 2 * D + d] }.reduce(0, +) / Float(T)
            XCTAssertEqual(out[d], mean, accuracy: 1e-6)
        }
    }

    func testGemmWrapperAgainstNaiveProduct() {
        for (m, n, k) in [(1, 1, 1), (3, 5, 7), (17, 33, 15), (129, 31, 63)] {
            let a = randomFloats(m * k, seed: 1), b = randomFloats(n * k, seed: 2)
            var c = [Float](repeating: 0.5, count: m * n)
            gemmABt(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: k, c: &c, ldc: n, accumulate: true)
            for i in 0..<m { for j in 0..<n {
                let exact = 0.5 + (0..<k).reduce(0.0) { $0 + Double(a[i * k + $1]) * Double(b[j * k + $1]) }
                XCTAssertEqual(Double(c[i * n + j]), exact, accuracy: 1e-4, "\(m)x\(n)x\(k)")
            } }
        }
    }

    func testDispatchReportsAVX2OnThisMachineWhenAvailable() {
        // Not a speed test: documents which build the other tests exercised.
        print("CKernels build in use: \(dk_has_avx512() != 0 ? "AVX-512 (GEMMs) + AVX2+FMA" : dk_has_avx2() != 0 ? "AVX2+FMA" : "portable")")
    }
}
