// Packed-weight GEMM tests: the dispatched (AVX-512 or AVX2+FMA) dk_gemm_packed against its portable
// `_ref` twin and against a Double product, on awkward M, N, K (every micro-kernel row
// count, column tails, K and M blocks crossed), with and without accumulate, with padded
// lda/ldc (the padding must stay untouched); PackedMatrix on 1 and 2 threads, bitwise;
// the bias and the bias + GELU epilogues against the separate passes.
import CKernels
import DistilleryTensor
import XCTest

/// Sizes hitting every tail: 6-row micro-panels, 16-column panels, 8-wide vectors, k by 4.
private let gemmSizes = [1, 2, 3, 5, 7, 15, 16, 17, 31, 33, 63, 127, 129]
/// Float unit roundoff, 2⁻²⁴.
private let unitRoundoff = 0x1p-24
/// A float GEMM sums K products plus at most one C term per K block of the kernel (≤ 384
/// long), in float: the classic bound |ŷ − y| ≤ γₙ·Σ|terms| with γₙ = n·u / (1 − n·u)
/// and n = K + K/384 + 2 holds for any summation order and with or without FMA, so the
/// check cannot flake; random inputs usually land 100× inside it.
private func gemmErrorBound(k: Int, absoluteSum: Double) -> Double {
    let n = Double(k + k / 384 + 2)
    return n * unitRoundoff / (1 - n * unitRoundoff) * absoluteSum
}
/// A value no kernel writes: padding of C must still hold it afterwards.
private let sentinel: Float = -12345.5

private struct GemmCase {
    let m, n, k, lda, ldc: Int
    let accumulate: Bool
    var a: [Float], w: [Float], c0: [Float]

    init(m: Int, n: Int, k: Int, padA: Int = 0, padC: Int = 0, accumulate: Bool, seed: UInt64) {
        (self.m, self.n, self.k, self.lda, self.ldc, self.accumulate) = (m, n, k, k + padA, n + padC, accumulate)
        a = randomFloats(m * (k + padA), seed: seed)
        w = randomFloats(n * k, seed: seed &+ 1)
        c0 = randomFloats(m * (n + padC), seed: seed &+ 2)
        // Padding of C holds the sentinel.
        for i in 0..<m { for j in n..<ldc { c0[i * ldc + j] = sentinel } }
    }

    var packed: [Float] {
        var p = [Float](repeating: .nan, count: dk_packed_floats(n, k))
        dk_pack_weight(w, n, k, &p)
        return p
    }

    /// Runs one of the two C entry points on a copy of c0.
    func run(_ f: (Int, Int, Int, UnsafePointer<Float>?, Int, UnsafePointer<Float>?,
                   UnsafeMutablePointer<Float>?, Int, Int32, UnsafeMutablePointer<Float>?) -> Void) -> [Float] {
        var c = c0
        let p = packed
        var ws = [Float](repeating: .nan, count: dk_gemm_workspace_floats(m, k))
        f(m, n, k, a, lda, p, &c, ldc, accumulate ? 1 : 0, &ws)
        return c
    }

    /// Checks `c` against a Double product with the rigorous float bound, and the padding.
    func check(_ c: [Float], _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        var worstExcess = -Double.infinity
        var failures = 0
        a.withUnsafeBufferPointer { a in
            w.withUnsafeBufferPointer { w in
                for i in 0..<m {
                    for j in 0..<n {
                        var exact = accumulate ? Double(c0[i * ldc + j]) : 0
                        var absSum = abs(exact)
                        for t in 0..<k {
                            let p = Double(a[i * lda + t]) * Double(w[j * k + t])
                            exact += p
                            absSum += abs(p)
                        }
                        let err = abs(Double(c[i * ldc + j]) - exact)
                        let bound = gemmErrorBound(k: k, absoluteSum: absSum)
                        worstExcess = max(worstExcess, err - bound)
                        if !(err <= bound) { failures += 1 }
                    }
                    for j in n..<ldc where c[i * ldc + j] != sentinel { failures += 1 }
                }
            }
        }
        XCTAssertEqual(failures, 0, "\(label) M \(m) N \(n) K \(k) lda \(lda) ldc \(ldc) acc \(accumulate): worst error − bound \(worstExcess)",
                       file: file, line: line)
    }
}

final class PackedGemmTests: XCTestCase {
    func testDispatchMatchesThisMachine() {
        XCTAssertEqual(dk_gemm_has_avx2(), dk_has_avx2(), "dk_gemm and the other kernels must agree on AVX2+FMA")
    }

    func testPackedSizeAndLayout() {
        XCTAssertEqual(dk_packed_floats(1, 1), 16)
        XCTAssertEqual(dk_packed_floats(16, 5), 80)
        XCTAssertEqual(dk_packed_floats(17, 3), 96)
        // W [17, 3]: panel 0 holds rows 0..15 k-major, panel 1 row 16 then zeros.
        let w = (0..<51).map(Float.init)
        var p = [Float](repeating: .nan, count: dk_packed_floats(17, 3))
        dk_pack_weight(w, 17, 3, &p)
        XCTAssertEqual(p[0 * 16 + 5], w[5 * 3 + 0])
        XCTAssertEqual(p[2 * 16 + 15], w[15 * 3 + 2])
        XCTAssertEqual(p[48 + 1 * 16 + 0], w[16 * 3 + 1])
        XCTAssertEqual(p[48 + 2 * 16 + 7], 0)
    }

    /// Every awkward size on each axis in turn, the other two fixed at awkward values.
    func testAwkwardShapesAgainstReferenceAndDouble() {
        var cases: [(Int, Int, Int)] = []
        for s in gemmSizes {
            cases.append((s, 17, 33))   // M: all row counts of the micro-kernel, M < 6
            cases.append((7, s, 31))    // N: column tails, N < 16
            cases.append((13, 33, s))   // K: 1, k-loop tails
        }
        for (index, (m, n, k)) in cases.enumerated() {
            for accumulate in [false, true] {
                let g = GemmCase(m: m, n: n, k: k, accumulate: accumulate, seed: UInt64(index * 2 + (accumulate ? 1 : 0)))
                let fast = g.run(dk_gemm_packed), ref = g.run(dk_gemm_packed_ref)
                g.check(fast, "dispatched")
                g.check(ref, "_ref")
            }
        }
    }

    /// Blocks crossed: K over the 384 K block (3 blocks when > 768), M over the 144-row
    /// block, N over many panels, with lda/ldc padded.
    func testBlockedShapesWithPaddedStrides() {
        // 8, 9, 152: the 1-3 row tail merged and re-split as 4 + 4, 5 + 4, (144 +) 4 + 4.
        let shapes = [(150, 40, 385), (145, 129, 63), (20, 19, 800), (6, 16, 384), (1, 1, 769),
                      (8, 20, 40), (9, 17, 9), (152, 24, 50), (146, 3, 20)]
        for (index, (m, n, k)) in shapes.enumerated() {
            for accumulate in [false, true] {
                let g = GemmCase(m: m, n: n, k: k, padA: 3, padC: 5, accumulate: accumulate, seed: UInt64(100 + index))
                g.check(g.run(dk_gemm_packed), "dispatched")
                g.check(g.run(dk_gemm_packed_ref), "_ref")
            }
        }
    }

    func testPaddedStridesOnAwkwardSizes() {
        for s in gemmSizes {
            let g = GemmCase(m: s, n: s, k: s, padA: 1, padC: 7, accumulate: s % 2 == 1, seed: UInt64(200 + s))
            g.check(g.run(dk_gemm_packed), "dispatched")
            g.check(g.run(dk_gemm_packed_ref), "_ref")
        }
    }

    /// Splitting rows at 6-row panels or columns at 16-column panels never changes a bit,
    /// so the result is the same for 1 and 2 threads, and repeatable.
    func testPackedMatrixIsBitwiseIdenticalAcrossThreadCounts() {
        let saved = Compute.threads
        defer { Compute.setThreads(saved) }
        // Column splits up to DK_GEMM_M_BLOCK rows, row splits above (Compute.gemmSplit).
        let shapes = [(128, 1152, 384), (37, 100, 65), (5, 40, 17), (130, 33, 7), (1, 16, 1), (200, 48, 70), (300, 8, 9)]
        XCTAssertEqual(Compute.gemmSplit(rows: 128, columns: 1152, workers: 2), .columnPanels(72))
        XCTAssertEqual(Compute.gemmSplit(rows: 200, columns: 48, workers: 2), .rowPanels(34))
        XCTAssertEqual(Compute.gemmSplit(rows: 300, columns: 8, workers: 2), .rowPanels(50))
        XCTAssertEqual(Compute.gemmSplit(rows: 40, columns: 8, workers: 2), .none)
        XCTAssertEqual(Compute.gemmSplit(rows: 4096, columns: 384, workers: 1), .none)
        for (index, (m, n, k)) in shapes.enumerated() {
            for accumulate in [false, true] {
                let g = GemmCase(m: m, n: n, k: k, padA: 2, padC: 3, accumulate: accumulate, seed: UInt64(300 + index))
                let matrix = PackedMatrix(Tensor(shape: [n, k], data: g.w))
                XCTAssertEqual(matrix.outFeatures, n)
                XCTAssertEqual(matrix.inFeatures, k)
                func multiply(threads: Int) -> [Float] {
                    Compute.setThreads(threads)
                    var c = g.c0
                    g.a.withUnsafeBufferPointer { a in
                        c.withUnsafeMutableBufferPointer { c in
                            matrix.multiply(rows: m, x: a.baseAddress!, lda: g.lda, y: c.baseAddress!,
                                            ldc: g.ldc, accumulate: accumulate)
                        }
                    }
                    return c
                }
                let one = multiply(threads: 1), two = multiply(threads: 2), again = multiply(threads: 2)
                XCTAssertEqual(one, g.run(dk_gemm_packed), "PackedMatrix vs one dk_gemm_packed call, shape \(m)x\(n)x\(k)")
                XCTAssertEqual(one, two, "1 vs 2 threads, shape \(m)x\(n)x\(k) acc \(accumulate)")
                XCTAssertEqual(two, again, "2 threads twice, shape \(m)x\(n)x\(k) acc \(accumulate)")
                if m * n * k <= 100_000 { g.check(two, "PackedMatrix 2 threads") }
            }
        }
    }

    func testZeroRowsLeavesOutputUntouched() {
        let matrix = PackedMatrix(Tensor(shape: [3, 2], data: [1, 2, 3, 4, 5, 6]))
        var y: [Float] = [sentinel]
        let x: [Float] = [1, 1]
        matrix.multiply(rows: 0, x: x, lda: 2, y: &y, ldc: 3, accumulate: false)
        XCTAssertEqual(y, [sentinel])
    }
}

/// The bias epilogue: C = bias + A·Wᵀ must be bit for bit a C pre-filled with the bias and
/// accumulated (what the training path did before the epilogue existed), for the dispatched
/// kernel and its `_ref`, across K blocks and column tails, and through PackedMatrix on 1
/// and 2 threads.
final class GemmBiasEpilogueTests: XCTestCase {
    func testBiasEpilogueEqualsPrefilledAccumulate() {
        for (m, n, k) in [(1, 1, 1), (7, 17, 33), (13, 31, 385), (6, 16, 1000), (129, 33, 63)] {
            let a = randomFloats(m * k, seed: UInt64(m * 1000 + k)), w = randomFloats(n * k, seed: UInt64(n + 7))
            let bias = randomFloats(n, seed: 99)
            var packed = [Float](repeating: 0, count: dk_packed_floats(n, k))
            dk_pack_weight(w, n, k, &packed)
            var ws = [Float](repeating: 0, count: dk_gemm_workspace_floats(m, k))
            var prefilled = (0..<m).flatMap { _ in bias }, prefilledRef = prefilled
            dk_gemm_packed(m, n, k, a, k, packed, &prefilled, n, 1, &ws)
            dk_gemm_packed_ref(m, n, k, a, k, packed, &prefilledRef, n, 1, &ws)
            var fused = [Float](repeating: .nan, count: m * n), fusedRef = fused
            dk_gemm_packed_bias(m, n, k, a, k, packed, bias, &fused, n, &ws)
            dk_gemm_packed_bias_ref(m, n, k, a, k, packed, bias, &fusedRef, n, &ws)
            XCTAssertEqual(fused, prefilled, "\(m)x\(n)x\(k)")
            XCTAssertEqual(fusedRef, prefilledRef, "_ref \(m)x\(n)x\(k)")
            let matrix = PackedMatrix(Tensor(shape: [n, k], data: w))
            for threads in [1, 2] {
                Compute.setThreads(threads)
                var y = [Float](repeating: .nan, count: m * n)
                a.withUnsafeBufferPointer { ap in bias.withUnsafeBufferPointer { bp in y.withUnsafeMutableBufferPointer { yp in
                    matrix.multiply(rows: m, x: ap.baseAddress!, lda: k, y: yp.baseAddress!, ldc: n, accumulate: false,
                                    bias: bp.baseAddress!)
                } } }
                XCTAssertEqual(y, prefilled, "PackedMatrix \(threads) thread(s), \(m)x\(n)x\(k)")
            }
            Compute.setThreads(1)
        }
    }

    /// GELU fused into the store equals the GEMM with bias then the GELU kernel, bit for bit
    /// on the same path (the AVX-512 store runs the very gelu16 of dk_bias_gelu), and the
    /// dispatched result stays within the GELU kernel tolerance of the `_ref` one; through
    /// PackedMatrix on 1 and 2 threads with a padded ldc (padding untouched).
    func testGeluEpilogueEqualsBiasThenGelu() {
        for (m, n, k) in [(1, 1, 1), (7, 17, 33), (13, 31, 385), (6, 16, 1000), (129, 33, 63), (25, 1536, 384)] {
            let a = randomFloats(m * k, seed: UInt64(m * 31 + k)), w = randomFloats(n * k, seed: UInt64(n + 3), scale: 0.2)
            let bias = randomFloats(n, seed: 98)
            var packed = [Float](repeating: 0, count: dk_packed_floats(n, k))
            dk_pack_weight(w, n, k, &packed)
            var ws = [Float](repeating: 0, count: dk_gemm_workspace_floats(m, k))
            var twoPass = [Float](repeating: .nan, count: m * n), twoPassRef = twoPass
            dk_gemm_packed_bias(m, n, k, a, k, packed, bias, &twoPass, n, &ws)
            twoPass.withUnsafeMutableBufferPointer { p in dk_bias_gelu(p.baseAddress!, nil, nil, p.baseAddress!, m, n) }
            dk_gemm_packed_bias_ref(m, n, k, a, k, packed, bias, &twoPassRef, n, &ws)
            twoPassRef.withUnsafeMutableBufferPointer { p in dk_bias_gelu_ref(p.baseAddress!, nil, nil, p.baseAddress!, m, n) }
            var fused = [Float](repeating: .nan, count: m * n), fusedRef = fused
            dk_gemm_packed_bias_gelu(m, n, k, a, k, packed, bias, &fused, n, &ws)
            dk_gemm_packed_bias_gelu_ref(m, n, k, a, k, packed, bias, &fusedRef, n, &ws)
            XCTAssertEqual(fused, twoPass, "\(m)x\(n)x\(k)")
            XCTAssertEqual(fusedRef, twoPassRef, "_ref \(m)x\(n)x\(k)")
            // GEMM rounding (FMA vs not, ≤ 385-term sums of |terms| ≲ 0.2·k/2) plus GELU's.
            let tolerance = Float(k) * 1e-6 + kernelTolerance
            for i in 0..<(m * n) { XCTAssertEqual(fused[i], fusedRef[i], accuracy: tolerance, "dispatched vs _ref \(m)x\(n)x\(k) i \(i)") }
            let matrix = PackedMatrix(Tensor(shape: [n, k], data: w))
            let ldc = n + 3
            for threads in [1, 2] {
                Compute.setThreads(threads)
                var y = [Float](repeating: -7, count: m * ldc)
                a.withUnsafeBufferPointer { ap in bias.withUnsafeBufferPointer { bp in y.withUnsafeMutableBufferPointer { yp in
                    matrix.multiply(rows: m, x: ap.baseAddress!, lda: k, y: yp.baseAddress!, ldc: ldc, accumulate: false,
                                    bias: bp.baseAddress!, gelu: true)
                } } }
                for i in 0..<m {
                    XCTAssertEqual(Array(y[i * ldc..<(i * ldc + n)]), Array(fused[i * n..<(i + 1) * n]), "PackedMatrix \(threads) thread(s) row \(i)")
                    XCTAssertEqual(Array(y[(i * ldc + n)..<((i + 1) * ldc)]), [-7, -7, -7], "padding untouched")
                }
            }
            Compute.setThreads(1)
        }
    }
}
