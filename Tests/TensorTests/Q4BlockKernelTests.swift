// Tests of dk_q4b (CKernels/include/dk_quant.h): int4 group-32 weights against activations
// quantized per block of 32 k. The dispatched kernel against its `_ref` twin bit for bit
// (awkward M and N, K a multiple of 32, rows past the 96-row activation block, symmetric
// and asymmetric groups, with and without bias; GELU within the erf tolerance), `_ref`
// against a Double product of the block-quantized activations and dequantized weights,
// the accuracy gain over dk_q4_gemm's per-row activation scales when one channel is an
// outlier, split independence, and K not a multiple of 32 left alone. Runs per kernel path.
import CKernels
import XCTest

/// The GELU epilogue: vector erf on SIMD paths, scalar in `_ref` (as QuantKernelTests).
private let geluTolerance: Float = 4e-6

/// One problem: A [m, k] with an outlier channel, W int4 groups of 32, packed.
private struct Q4BCase {
    let m, n, k: Int
    let a: [Float], bias: [Float]
    let nibbles: [UInt8], scales: [Float], zeros: [UInt8]
    let packed: UnsafeMutableRawPointer

    init(m: Int, n: Int, k: Int, seed: UInt64, symmetric: Bool, outlier: Float = 20) {
        (self.m, self.n, self.k) = (m, n, k)
        a = randomFloats(m * k, seed: seed).enumerated().map { $0.offset % k == 5 ? $0.element * outlier : $0.element }
        bias = randomFloats(n, seed: seed &+ 1)
        var s = seed | 1
        nibbles = (0..<(n * k / 2)).map { _ in s = s &* 6364136223846793005 &+ 1442695040888963407; return UInt8(truncatingIfNeeded: s >> 33) }
        let groups = k / 32
        scales = randomFloats(n * groups, seed: seed &+ 5).map { 0.01 + abs($0) * 0.05 }
        zeros = (0..<(n * groups)).map { symmetric ? UInt8(8) : UInt8($0 * 5 % 16) }
        packed = rawBuffer(dk_q4_packed_bytes(n, k, 32))
        XCTAssertEqual(dk_q4_pack(nibbles, scales, symmetric ? nil : zeros, n, k, 32, packed), 0)
    }

    typealias Gemm = (Int, Int, Int, UnsafePointer<Float>?, Int, UnsafeRawPointer?, UnsafePointer<Float>?,
                      UnsafeMutablePointer<Float>?, Int, Int32, UnsafeMutableRawPointer?) -> Void

    func run(_ f: Gemm, epilogue: Int32 = Int32(DK_EPILOGUE_NONE), withBias: Bool = true) -> [Float] {
        var c = [Float](repeating: .nan, count: m * n)
        let ws = rawBuffer(dk_q4b_workspace_bytes(m, k))
        defer { ws.deallocate() }
        withBias ? f(m, n, k, a, k, packed, bias, &c, n, epilogue, ws) : f(m, n, k, a, k, packed, nil, &c, n, epilogue, ws)
        return c
    }

    /// The dequantized weight W[j, t].
    func weight(_ j: Int, _ t: Int) -> Double {
        let q = Int(nibbles[j * k / 2 + t / 2] >> (4 * UInt8(t & 1))) & 15
        let g = j * (k / 32) + t / 32
        return Double(q - Int(zeros[g])) * Double(scales[g])
    }
}

final class Q4BlockKernelTests: XCTestCase {
    func testDispatchedMatchesReference() {
        var cases: [(Int, Int, Int)] = []
        for s in awkwardSizes { cases += [(s, 33, 64), (13, s, 96)] }
        cases += [(100, 17, 384), (129, 40, 32), (6, 1536, 32)]
        for (index, (m, n, k)) in cases.enumerated() {
            for symmetric in [true, false] {
                let g = Q4BCase(m: m, n: n, k: k, seed: UInt64(index), symmetric: symmetric)
                defer { g.packed.deallocate() }
                XCTAssertEqual(g.run(dk_q4b_gemm), g.run(dk_q4b_gemm_ref), "q4b \(m)×\(n)×\(k) symmetric \(symmetric)")
                XCTAssertEqual(g.run(dk_q4b_gemm, withBias: false), g.run(dk_q4b_gemm_ref, withBias: false), "q4b no bias \(m)×\(n)×\(k)")
                if index % 5 == 0 {
                    let fast = g.run(dk_q4b_gemm, epilogue: Int32(DK_EPILOGUE_GELU)), ref = g.run(dk_q4b_gemm_ref, epilogue: Int32(DK_EPILOGUE_GELU))
                    for i in 0..<fast.count { XCTAssertEqual(fast[i], ref[i], accuracy: geluTolerance, "q4b GELU \(m)×\(n)×\(k) [\(i)]") }
                }
            }
        }
    }

    /// `_ref` equals the Double sum of block-quantized activations times dequantized weights
    /// up to float rounding of the per-group products and sums (≤ 4e-6 of Σ|terms|).
    func testReferenceAgainstDouble() {
        let g = Q4BCase(m: 5, n: 19, k: 128, seed: 7, symmetric: false)
        defer { g.packed.deallocate() }
        let c = g.run(dk_q4b_gemm_ref)
        var qa = [Int8](repeating: 0, count: 5 * 128), sa = [Float](repeating: 0, count: 5 * 4)
        dk_q8b_quantize_rows(g.a, 5, 128, 128, &qa, &sa)
        for i in 0..<5 {
            for j in 0..<19 {
                var exact = Double(g.bias[j]), absSum = abs(Double(g.bias[j]))
                for t in 0..<128 {
                    let term = Double(qa[i * 128 + t]) * Double(sa[i * 4 + t / 32]) * g.weight(j, t)
                    exact += term
                    absSum += abs(term)
                }
                XCTAssertEqual(Double(c[i * 19 + j]), exact, accuracy: 4e-6 * absSum + 1e-6, "q4b ref [\(i), \(j)]")
            }
        }
    }

    func testMoreAccurateThanPerRowWithAnOutlier() {
        let g = Q4BCase(m: 16, n: 64, k: 384, seed: 9, symmetric: true, outlier: 20)
        defer { g.packed.deallocate() }
        var rowC = [Float](repeating: .nan, count: 16 * 64)
        let ws = rawBuffer(dk_q8_workspace_bytes(16, 384))
        defer { ws.deallocate() }
        dk_q4_gemm(16, 64, 384, 32, g.a, 384, g.packed, g.bias, &rowC, 64, 0, Int32(DK_EPILOGUE_NONE), ws)
        let blockC = g.run(dk_q4b_gemm)
        var rowErr = 0.0, blockErr = 0.0
        for i in 0..<16 {
            for j in 0..<64 {
                var exact = Double(g.bias[j])
                for t in 0..<384 { exact += Double(g.a[i * 384 + t]) * g.weight(j, t) }
                rowErr += (Double(rowC[i * 64 + j]) - exact) * (Double(rowC[i * 64 + j]) - exact)
                blockErr += (Double(blockC[i * 64 + j]) - exact) * (Double(blockC[i * 64 + j]) - exact)
            }
        }
        XCTAssertLessThan(blockErr, rowErr / 4, "squared error: blocks \(blockErr), per row \(rowErr)")
    }

    func testSplitIndependentAndBadKLeftAlone() {
        let g = Q4BCase(m: 50, n: 70, k: 96, seed: 3, symmetric: false)
        defer { g.packed.deallocate() }
        let whole = g.run(dk_q4b_gemm)
        var c = [Float](repeating: .nan, count: 50 * 70)
        let ws = rawBuffer(dk_q4b_workspace_bytes(50, 96))
        defer { ws.deallocate() }
        let pb = dk_q4_panel_bytes(96, 32)
        c.withUnsafeMutableBufferPointer { c in
            for (r0, r1) in [(0, 19), (19, 50)] {
                for (n0, n1) in [(0, 32), (32, 48), (48, 70)] {
                    g.a.withUnsafeBufferPointer { a in
                        dk_q4b_gemm(r1 - r0, n1 - n0, 96, a.baseAddress! + r0 * 96, 96, g.packed + n0 / 16 * pb,
                                    Array(g.bias[n0...]), c.baseAddress! + r0 * 70 + n0, 70, Int32(DK_EPILOGUE_NONE), ws)
                    }
                }
            }
        }
        XCTAssertEqual(c, whole)
        var untouched = [Float](repeating: 7, count: 4)
        dk_q4b_gemm(2, 2, 48, g.a, 48, g.packed, nil, &untouched, 2, Int32(DK_EPILOGUE_NONE), ws)
        dk_q4b_gemm_ref(2, 2, 48, g.a, 48, g.packed, nil, &untouched, 2, Int32(DK_EPILOGUE_NONE), ws)
        XCTAssertEqual(untouched, [7, 7, 7, 7], "K = 48 is not a multiple of 32: nothing written")
    }
}
