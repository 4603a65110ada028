// Tests of dk_q8b (CKernels/include/dk_quant.h): int8 GEMM with activation scales per block
// of 32 k. The dispatched kernel against its `_ref` twin bit for bit (awkward M and N, K a
// multiple of 32, rows past the 96-row activation block, with and without bias; GELU within
// the erf tolerance), `_ref` against a Double product of the block-quantized values, the
// block quantizer (scale per block = max|x|/127, rounding as dk_q8_quantize_rows), the
// accuracy gain over per-row scales when one channel is an outlier, split independence,
// the packed layout, and the refusal of K not a multiple of 32. Runs per kernel path.
import CKernels
import XCTest

/// One problem: A [m, k] with an outlier channel (LayerNorm-like), W int8 per row, packed.
private struct Q8BCase {
    let m, n, k: Int
    let a: [Float], bias: [Float]
    var q: [Int8], scale: [Float]
    let packed: UnsafeMutableRawPointer

    init(m: Int, n: Int, k: Int, seed: UInt64, outlier: Float = 20) {
        (self.m, self.n, self.k) = (m, n, k)
        a = randomFloats(m * k, seed: seed).enumerated().map { $0.offset % k == 5 ? $0.element * outlier : $0.element }
        bias = randomFloats(n, seed: seed &+ 1)
        let w = randomFloats(n * k, seed: seed &+ 2)
        q = [Int8](repeating: 0, count: n * k)
        scale = [Float](repeating: 0, count: n)
        dk_q8_quantize_rows(w, n, k, k, 0, &q, &scale)
        packed = rawBuffer(dk_q8b_packed_bytes(n, k))
        XCTAssertEqual(dk_q8b_pack(q, n, k, packed), 0)
    }

    typealias Gemm = (Int, Int, Int, UnsafePointer<Float>?, Int, UnsafeRawPointer?, UnsafePointer<Float>?,
                      UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int, Int32, UnsafeMutableRawPointer?) -> Void

    func run(_ f: Gemm, epilogue: Int32 = Int32(DK_EPILOGUE_NONE), withBias: Bool = true) -> [Float] {
        var c = [Float](repeating: .nan, count: m * n)
        let ws = rawBuffer(dk_q8b_workspace_bytes(m, k))
        defer { ws.deallocate() }
        withBias ? f(m, n, k, a, k, packed, scale, bias, &c, n, epilogue, ws)
            : f(m, n, k, a, k, packed, scale, nil, &c, n, epilogue, ws)
        return c
    }
}

final class Q8BlockKernelTests: XCTestCase {
    func testPackLayoutAndRefusal() {
        // W [17, 64]: 2 blocks per panel, each corr[16] int32 then [8][16][4] int8.
        var w = (0..<(17 * 64)).map { Int8(truncatingIfNeeded: $0 * 7 - 300) }
        w[0] = -128
        XCTAssertEqual(dk_q8b_panel_bytes(64), 2 * (64 + 512))
        XCTAssertEqual(dk_q8b_packed_bytes(17, 64), 2 * dk_q8b_panel_bytes(64))
        let p = rawBuffer(dk_q8b_packed_bytes(17, 64))
        defer { p.deallocate() }
        XCTAssertEqual(dk_q8b_pack(w, 17, 64, p), 0)
        let bytes = p.assumingMemoryBound(to: Int8.self)
        XCTAssertEqual(bytes[64 + 0], -127)                                        // -128 clamped
        XCTAssertEqual(bytes[64 + 64 + 3 * 4 + 1], w[3 * 64 + 5])                  // block 0, column 3, k 5
        XCTAssertEqual(bytes[576 + 64 + 2 * 64 + 4 * 4 + 3], w[4 * 64 + 32 + 11])  // block 1, column 4, k 43
        let corr1 = (p + 576).assumingMemoryBound(to: Int32.self)
        XCTAssertEqual(Int(corr1[4]), 128 * (32..<64).reduce(0) { $0 + Int(w[4 * 64 + $1]) })
        XCTAssertEqual(bytes[1152 + 64 + 1 * 4], 0)                      // column 17 is padding
        for k in [0, 31, 33, 48, 100] { XCTAssertEqual(dk_q8b_pack(w, 1, k, p), -1, "K \(k)") }
        // The GEMM refuses such a K too: C is left untouched.
        var c: [Float] = [42]
        let ws = rawBuffer(dk_q8b_workspace_bytes(1, 64))
        defer { ws.deallocate() }
        dk_q8b_gemm(1, 1, 48, [Float](repeating: 1, count: 48), 48, p, [1], nil, &c, 1, Int32(DK_EPILOGUE_NONE), ws)
        XCTAssertEqual(c, [42])
    }

    func testBlockQuantizer() {
        // Block 0 ±1 with one 100, block 1 small: each block gets its own max/127.
        var x = randomFloats(64, seed: 3)
        x[7] = 100
        for i in 32..<64 { x[i] *= 0.01 }
        var q = [Int8](repeating: 0, count: 64), s = [Float](repeating: 0, count: 2)
        dk_q8b_quantize_rows(x, 1, 64, 64, &q, &s)
        XCTAssertEqual(s[0], 100 / 127)
        XCTAssertEqual(s[1], x[32..<64].map(abs).max()! / 127)
        // Each block rounds exactly as the row quantizer does on those 32 values.
        for b in 0..<2 {
            var qr = [Int8](repeating: 0, count: 32), sr: Float = 0
            dk_q8_quantize_rows(Array(x[(b * 32)..<(b * 32 + 32)]), 1, 32, 32, 0, &qr, &sr)
            XCTAssertEqual(Array(q[(b * 32)..<(b * 32 + 32)]), qr)
            XCTAssertEqual(s[b], sr)
        }
        // An all-zero block: scale 0, zeros.
        dk_q8b_quantize_rows([Float](repeating: 0, count: 32), 1, 32, 32, &q, &s)
        XCTAssertEqual(s[0], 0)
        XCTAssertEqual(Array(q.prefix(32)), [Int8](repeating: 0, count: 32))
    }

    /// Dispatched == `_ref` bit for bit on awkward M and N, K multiples of 32.
    func testDispatchedMatchesReference() {
        let sizes = [1, 2, 3, 5, 6, 7, 13, 15, 16, 17, 31, 33, 63, 127]
        var cases: [(Int, Int, Int)] = []
        for s in sizes { cases += [(s, 33, 64), (13, s, 96)] }
        for k in [32, 160, 384, 1536] { cases.append((9, 40, k)) }
        cases += [(97, 40, 128), (200, 48, 64)]   // past the 96-row activation block
        for (index, (m, n, k)) in cases.enumerated() {
            let g = Q8BCase(m: m, n: n, k: k, seed: UInt64(index))
            defer { g.packed.deallocate() }
            XCTAssertEqual(g.run(dk_q8b_gemm), g.run(dk_q8b_gemm_ref), "q8b \(m)×\(n)×\(k)")
            XCTAssertEqual(g.run(dk_q8b_gemm, withBias: false), g.run(dk_q8b_gemm_ref, withBias: false), "q8b no bias \(m)×\(n)×\(k)")
            let fast = g.run(dk_q8b_gemm, epilogue: Int32(DK_EPILOGUE_GELU)), ref = g.run(dk_q8b_gemm_ref, epilogue: Int32(DK_EPILOGUE_GELU))
            for (x, y) in zip(fast, ref) where !(abs(x - y) <= 4e-6 * max(1, abs(y))) {
                XCTFail("q8b GELU \(m)×\(n)×\(k): \(x) vs \(y)"); break
            }
        }
    }

    /// `_ref` == the Double product of the block-quantized activations and the weights, and
    /// within the activation quantization bound Σ_k s_block/2·|w| of the fp32 product.
    func testReferenceAgainstDouble() {
        for (index, (m, n, k)) in [(5, 17, 128), (12, 33, 384), (3, 7, 32)].enumerated() {
            let g = Q8BCase(m: m, n: n, k: k, seed: UInt64(70 + index))
            defer { g.packed.deallocate() }
            let c = g.run(dk_q8b_gemm_ref)
            var qa = [Int8](repeating: 0, count: m * k), sa = [Float](repeating: 0, count: m * k / 32)
            dk_q8b_quantize_rows(g.a, m, k, k, &qa, &sa)
            for i in 0..<m {
                for j in 0..<n {
                    var exact = 0.0, bound = 0.0, dequant = 0.0, absSum = 0.0
                    for t in 0..<k {
                        let a = Double(g.a[i * k + t]), w = Double(g.q[j * k + t]) * Double(g.scale[j])
                        let sb = Double(sa[i * k / 32 + t / 32])
                        exact += a * w
                        dequant += Double(qa[i * k + t]) * sb * w
                        absSum += abs(Double(qa[i * k + t]) * sb * w)
                        bound += sb / 2 * abs(w)
                    }
                    let y = Double(c[i * n + j]) - Double(g.bias[j])
                    XCTAssertEqual(y, dequant, accuracy: 4e-6 * absSum + 2e-6, "dequantized product \(i),\(j)")
                    XCTAssertLessThanOrEqual(abs(y - exact), bound * 1.001 + 1e-5, "quantization bound \(i),\(j)")
                }
            }
        }
    }

    /// With one outlier channel (×20), block scales lose far less than one scale per row.
    func testMoreAccurateThanPerRowWithAnOutlier() {
        let g = Q8BCase(m: 16, n: 64, k: 384, seed: 9, outlier: 20)
        defer { g.packed.deallocate() }
        let perRowPacked = rawBuffer(dk_q8_packed_bytes(64, 384))
        defer { perRowPacked.deallocate() }
        dk_q8_pack(g.q, 64, 384, perRowPacked)
        var rowC = [Float](repeating: .nan, count: 16 * 64)
        let ws = rawBuffer(dk_q8_workspace_bytes(16, 384))
        defer { ws.deallocate() }
        dk_q8_gemm(16, 64, 384, g.a, 384, perRowPacked, g.scale, g.bias, &rowC, 64, 0, Int32(DK_EPILOGUE_NONE), ws)
        let blockC = g.run(dk_q8b_gemm)
        var rowErr = 0.0, blockErr = 0.0
        for i in 0..<16 {
            for j in 0..<64 {
                var exact = Double(g.bias[j])
                for t in 0..<384 { exact += Double(g.a[i * 384 + t]) * Double(g.q[j * 384 + t]) * Double(g.scale[j]) }
                rowErr += (Double(rowC[i * 64 + j]) - exact) * (Double(rowC[i * 64 + j]) - exact)
                blockErr += (Double(blockC[i * 64 + j]) - exact) * (Double(blockC[i * 64 + j]) - exact)
            }
        }
        XCTAssertLessThan(blockErr, rowErr / 4, "squared error: blocks \(blockErr), per row \(rowErr)")
    }

    func testSplitIndependent() {
        let g = Q8BCase(m: 50, n: 70, k: 96, seed: 3)
        defer { g.packed.deallocate() }
        let whole = g.run(dk_q8b_gemm)
        var c = [Float](repeating: .nan, count: 50 * 70)
        let ws = rawBuffer(dk_q8b_workspace_bytes(50, 96))
        defer { ws.deallocate() }
        let pb = dk_q8b_panel_bytes(96)
        c.withUnsafeMutableBufferPointer { c in
            for (r0, r1) in [(0, 19), (19, 50)] {
                for (n0, n1) in [(0, 32), (32, 48), (48, 70)] {
                    g.a.withUnsafeBufferPointer { a in
                        dk_q8b_gemm(r1 - r0, n1 - n0, 96, a.baseAddress! + r0 * 96, 96, g.packed + n0 / 16 * pb,
                                    Array(g.scale[n0...]), Array(g.bias[n0...]), c.baseAddress! + r0 * 70 + n0, 70,
                                    Int32(DK_EPILOGUE_NONE), ws)
                    }
                }
            }
        }
        XCTAssertEqual(c, whole)
    }
}
