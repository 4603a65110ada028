// The dequantizing route (dk_dq_*, include/dk_quant.h): packed int8 / int4 / bf16 weights through
// the fp32 GEMM. On every kernel path the dispatched build must equal dk_gemm_packed_bias
// over the fp32 packing of dk_dq_unpack's matrix bit for bit, and `_ref` must equal
// dk_gemm_packed_bias_ref of it; dk_dq_unpack must give each layout's stored values times
// their scales. Sizes cover row tails, column tails, several M blocks (> 144 rows), K
// blocks that start inside an int8 activation block or an int4 group (K = 416 → blocks of
// 208), and a K that is not a multiple of 4 (per-row int8 layout) or odd (bf16 pairs).
import CKernels
import XCTest

/// A packed int8, int4 or bf16 weight and the values it stands for, computed here from the
/// unpacked codes (independently of the packed layouts).
private struct DQCase {
    let layout: Int32, n: Int, k: Int, g: Int
    let packed: UnsafeMutableRawPointer
    let scale: [Float]       // int8: per row; int4: [n, k/g]; bf16: none
    let expected: [Float]    // W [n, k]

    init(layout: Int32, n: Int, k: Int, g: Int = 0, seed: UInt64) {
        (self.layout, self.n, self.k, self.g) = (layout, n, k, g)
        var s = seed | 1
        func next() -> UInt64 { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s }
        if layout == Int32(DK_DQ_BF16) {
            // Finite bf16 values of both signs over a wide range of exponents.
            let halves = (0..<(n * k)).map { _ in UInt16(next() % 2) << 15 | UInt16(0x3A00 + next() % 0x0A00) }
            scale = []
            packed = rawBuffer(dk_bf16_packed_bytes(n, k))
            dk_bf16_pack(halves, n, k, packed)
            expected = halves.map { Float(bitPattern: UInt32($0) << 16) }
        } else if layout == Int32(DK_DQ_Q4) {
            let groups = k / g
            let codes = (0..<(n * k)).map { _ in UInt8(next() % 16) }
            let zeros = (0..<(n * groups)).map { _ in UInt8(next() % 16) }
            scale = randomFloats(n * groups, seed: seed &+ 7, scale: 0.05)
            var nibbles = [UInt8](repeating: 0, count: n * k / 2)
            for i in 0..<(n * k) { nibbles[i / 2] |= codes[i] << (4 * UInt8(i % 2)) }
            packed = rawBuffer(dk_q4_packed_bytes(n, k, g))
            XCTAssertEqual(dk_q4_pack(nibbles, scale, zeros, n, k, g, packed), 0)
            let sc = scale
            expected = (0..<(n * k)).map { i in
                let (r, c) = (i / k, i % k)
                return Float(Int(codes[i]) - Int(zeros[r * groups + c / g])) * sc[r * groups + c / g]
            }
        } else {
            let q = (0..<(n * k)).map { _ in Int8(Int(next() % 255) - 127) }
            scale = randomFloats(n, seed: seed &+ 3, scale: 0.02)
            let bytes = layout == Int32(DK_DQ_Q8B) ? dk_q8b_packed_bytes(n, k) : dk_q8_packed_bytes(n, k)
            packed = rawBuffer(bytes)
            if layout == Int32(DK_DQ_Q8B) { XCTAssertEqual(dk_q8b_pack(q, n, k, packed), 0) } else { dk_q8_pack(q, n, k, packed) }
            let sc = scale
            expected = (0..<(n * k)).map { i in Float(q[i]) * sc[i / k] }
        }
    }

    var wScale: [Float]? { layout == Int32(DK_DQ_Q4) || layout == Int32(DK_DQ_BF16) ? nil : scale }
}

final class DequantRouteTests: XCTestCase {
    private let cases: [(Int32, Int, Int, Int)] = [   // layout, n, k, g
        (Int32(DK_DQ_Q8), 17, 13, 0), (Int32(DK_DQ_Q8), 40, 130, 0), (Int32(DK_DQ_Q8), 16, 801, 0),
        (Int32(DK_DQ_Q8B), 1, 32, 0), (Int32(DK_DQ_Q8B), 33, 96, 0), (Int32(DK_DQ_Q8B), 20, 416, 0),
        (Int32(DK_DQ_Q4), 15, 64, 32), (Int32(DK_DQ_Q4), 48, 416, 32), (Int32(DK_DQ_Q4), 17, 256, 64),
        (Int32(DK_DQ_Q4), 32, 384, 128), (Int32(DK_DQ_Q4), 9, 24, 8),
        (Int32(DK_DQ_BF16), 17, 13, 0), (Int32(DK_DQ_BF16), 33, 416, 0), (Int32(DK_DQ_BF16), 16, 801, 0),
    ]

    func testUnpackGivesTheStoredValuesTimesTheirScales() {
        for (i, (layout, n, k, g)) in cases.enumerated() {
            let c = DQCase(layout: layout, n: n, k: k, g: g, seed: UInt64(100 + i))
            defer { c.packed.deallocate() }
            var w = [Float](repeating: .nan, count: n * k)
            dk_dq_unpack(layout, n, k, g, c.packed, c.wScale, &w)
            XCTAssertEqual(w, c.expected, "layout \(layout) \(n)×\(k) g\(g)")
        }
    }

    /// The route equals the fp32 GEMM over the dequantized weight, bit for bit, on the
    /// dispatched path and on `_ref`; the two paths differ only by FMA rounding.
    func testRouteIsTheFP32GemmOfTheDequantizedWeight() {
        for (i, (layout, n, k, g)) in cases.enumerated() {
            let c = DQCase(layout: layout, n: n, k: k, g: g, seed: UInt64(200 + i))
            defer { c.packed.deallocate() }
            var w = [Float](repeating: 0, count: n * k)
            dk_dq_unpack(layout, n, k, g, c.packed, c.wScale, &w)
            var fp = [Float](repeating: 0, count: dk_packed_floats(n, k))
            dk_pack_weight(w, n, k, &fp)
            for m in [1, 5, 7, 13, 150] {
                let a = randomFloats(m * k, seed: UInt64(m * 31 + i)), bias = randomFloats(n, seed: UInt64(m + i))
                let ws = rawBuffer(dk_dq_workspace_bytes(m, k))
                defer { ws.deallocate() }
                var gws = [Float](repeating: 0, count: dk_gemm_workspace_floats(m, k))
                var route = [Float](repeating: .nan, count: m * n), routeRef = route, fused = route, fusedRef = route
                dk_dq_gemm(layout, m, n, k, g, a, k, c.packed, c.wScale, bias, &route, n, ws)
                dk_dq_gemm_ref(layout, m, n, k, g, a, k, c.packed, c.wScale, bias, &routeRef, n, ws)
                dk_gemm_packed_bias(m, n, k, a, k, fp, bias, &fused, n, &gws)
                dk_gemm_packed_bias_ref(m, n, k, a, k, fp, bias, &fusedRef, n, &gws)
                let name = "layout \(layout) \(m)×\(n)×\(k) g\(g)"
                XCTAssertEqual(route, fused, name)
                XCTAssertEqual(routeRef, fusedRef, name)
                // FMA vs separate rounding: |Δ| ≤ 2·K·u·Σ|a·w| per element.
                for r in 0..<m { for j in 0..<n {
                    var absSum = Double(abs(bias[j]))
                    for t in 0..<k { absSum += Double(abs(a[r * k + t] * w[j * k + t])) }
                    XCTAssertLessThanOrEqual(Double(abs(route[r * n + j] - routeRef[r * n + j])),
                                             2 * Double(k + 2) * 0x1p-24 * absSum, "\(name) [\(r), \(j)]")
                } }
            }
        }
    }

    /// Splitting N at a multiple of 16 (packed, scales, bias and C offset) changes nothing.
    func testSplittingColumnsChangesNothing() {
        for (i, (layout, n, k, g)) in cases.enumerated() where n > 16 {
            let c = DQCase(layout: layout, n: n, k: k, g: g, seed: UInt64(300 + i))
            defer { c.packed.deallocate() }
            let m = 11
            let a = randomFloats(m * k, seed: UInt64(i)), bias = randomFloats(n, seed: UInt64(i + 1))
            let ws = rawBuffer(dk_dq_workspace_bytes(m, k))
            defer { ws.deallocate() }
            var whole = [Float](repeating: .nan, count: m * n), split = whole
            dk_dq_gemm(layout, m, n, k, g, a, k, c.packed, c.wScale, bias, &whole, n, ws)
            let panelBytes = layout == Int32(DK_DQ_Q4) ? dk_q4_panel_bytes(k, g) : layout == Int32(DK_DQ_BF16) ? dk_bf16_panel_bytes(k)
                : layout == Int32(DK_DQ_Q8B) ? dk_q8b_panel_bytes(k) : dk_q8_panel_bytes(k)
            let scales = c.scale
            split.withUnsafeMutableBufferPointer { y in
                bias.withUnsafeBufferPointer { b in
                    scales.withUnsafeBufferPointer { s in
                        dk_dq_gemm(layout, m, 16, k, g, a, k, c.packed, c.wScale == nil ? nil : s.baseAddress, b.baseAddress, y.baseAddress, n, ws)
                        dk_dq_gemm(layout, m, n - 16, k, g, a, k, c.packed + panelBytes, c.wScale == nil ? nil : s.baseAddress! + 16,
                                   b.baseAddress! + 16, y.baseAddress! + 16, n, ws)
                    }
                }
            }
            XCTAssertEqual(whole, split, "layout \(layout) \(n)×\(k) g\(g)")
        }
    }

    func testInvalidShapesWriteNothing() {
        let c = DQCase(layout: Int32(DK_DQ_Q4), n: 16, k: 64, g: 32, seed: 1)
        defer { c.packed.deallocate() }
        let ws = rawBuffer(dk_dq_workspace_bytes(2, 64))
        defer { ws.deallocate() }
        var y = [Float](repeating: 7, count: 32)
        dk_dq_gemm(Int32(DK_DQ_Q4), 2, 16, 64, 24, randomFloats(128, seed: 2), 64, c.packed, nil, nil, &y, 16, ws)   // 24 ∤ 64
        dk_dq_gemm(Int32(DK_DQ_Q8B), 2, 16, 60, 0, randomFloats(120, seed: 2), 60, c.packed, c.scale, nil, &y, 16, ws)   // 32 ∤ 60
        dk_dq_gemm(9, 2, 16, 64, 32, randomFloats(128, seed: 2), 64, c.packed, nil, nil, &y, 16, ws)   // no such layout
        XCTAssertEqual(y, [Float](repeating: 7, count: 32))
    }
}
