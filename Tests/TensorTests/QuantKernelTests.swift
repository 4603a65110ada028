// Quantized-kernel tests (CKernels/include/dk_quant.h): the dispatched int8, int4 and bf16
// GEMMs against their `_ref` twins on awkward M, N, K (1…129, odd K) — bit for bit where
// the header promises it — the `_ref` kernels against Double products of the quantized
// values, the quantization error against the fp32 product with a bound derived from the
// scales, the row quantizer's rounding, bf16 rounding against a bit-level reference, the
// embedding-row dequantizers, and results independent of how M and N are split. The
// suite runs once per kernel path (`make test` forces DISTILLERY_KERNELS=ref and avx2).
import CKernels
import XCTest

/// The GELU epilogue runs the vector erf on SIMD paths and the scalar one in `_ref`; both
/// are within a few float ulps of libm (KernelTests checks erf to 2e-6 absolute).
private let geluTolerance: Float = 4e-6
/// bf16 paths sum exact bf16 products in fp32 in different orders (vdpbf16ps pairs k):
/// per element |Δ| ≤ 2·K·u·Σ|a·w| with u = 2⁻²⁴.
private func bf16OrderBound(k: Int, absSum: Double) -> Double { 2 * Double(k + 2) * 0x1p-24 * absSum }

/// A 64-byte aligned buffer filled with garbage the kernels must not read (callers deallocate).
func rawBuffer(_ bytes: Int) -> UnsafeMutableRawPointer {
    let p = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 1), alignment: 64)
    p.initializeMemory(as: UInt8.self, repeating: 0xA5, count: max(bytes, 1))   // garbage the kernels must not read
    return p
}

/// One int8 problem: A [m, k] fp32, W quantized per row, packed.
private struct Q8Case {
    let m, n, k: Int
    let a: [Float], bias: [Float]
    var q: [Int8], scale: [Float]
    let packed: UnsafeMutableRawPointer

    init(m: Int, n: Int, k: Int, seed: UInt64) {
        (self.m, self.n, self.k) = (m, n, k)
        // A few large activations per row, as LayerNorm outputs have.
        a = randomFloats(m * k, seed: seed).enumerated().map { $0.offset % 11 == 3 ? $0.element * 6 : $0.element }
        bias = randomFloats(n, seed: seed &+ 1)
        let w = randomFloats(n * k, seed: seed &+ 2)
        q = [Int8](repeating: 0, count: n * k)
        scale = [Float](repeating: 0, count: n)
        dk_q8_quantize_rows(w, n, k, k, 0, &q, &scale)
        packed = rawBuffer(dk_q8_packed_bytes(n, k))
        dk_q8_pack(q, n, k, packed)
    }

    typealias Gemm = (Int, Int, Int, UnsafePointer<Float>?, Int, UnsafeRawPointer?, UnsafePointer<Float>?,
                      UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int, Float, Int32, UnsafeMutableRawPointer?) -> Void

    func run(_ f: Gemm, actScale: Float = 0, epilogue: Int32 = Int32(DK_EPILOGUE_NONE), withBias: Bool = true) -> [Float] {
        var c = [Float](repeating: .nan, count: m * n)
        let ws = rawBuffer(dk_q8_workspace_bytes(m, k))
        defer { ws.deallocate() }
        withBias ? f(m, n, k, a, k, packed, scale, bias, &c, n, actScale, epilogue, ws)
            : f(m, n, k, a, k, packed, scale, nil, &c, n, actScale, epilogue, ws)
        return c
    }
}

final class QuantKernelTests: XCTestCase {
    func testPathName() {
        // The integer kernels' path: the kernel path, except AVX2 on an AVX-512 CPU without VNNI.
        let names = [Int32(DK_PATH_REF): "ref", Int32(DK_PATH_AVX2): "avx2", Int32(DK_PATH_AVX512): "avx512"]
        let vnni = dk_cpu_features() & Int32(DK_CPU_AVX512_VNNI) != 0
        let expected = dk_kernel_path() == Int32(DK_PATH_AVX512) && !vnni ? "avx2" : names[dk_kernel_path()]
        XCTAssertEqual(String(cString: dk_quant_path()), expected)
        print("quantized kernels path: \(String(cString: dk_quant_path()))")
    }

    func testRowQuantizerRoundsHalfToEvenAndClamps() {
        // scale 1 (static): 0.5 → 0, 1.5 → 2, 2.5 → 2, -0.5 → 0, 200 → 127, -200 → -127.
        let x: [Float] = [0.5, 1.5, 2.5, -0.5, -1.5, 200, -200, 126.5]
        var q = [Int8](repeating: 9, count: x.count), s: Float = 0
        dk_q8_quantize_rows(x, 1, x.count, x.count, 1, &q, &s)
        XCTAssertEqual(q, [0, 2, 2, 0, -2, 127, -127, 126])
        XCTAssertEqual(s, 1)
        // Dynamic: max|x| maps to ±127, every value within half a step.
        let y = randomFloats(301, seed: 7)
        var q2 = [Int8](repeating: 0, count: y.count)
        dk_q8_quantize_rows(y, 1, y.count, y.count, 0, &q2, &s)
        XCTAssertEqual(s, y.map(abs).max()! / 127)
        for (v, qv) in zip(y, q2) { XCTAssertLessThanOrEqual(abs(Float(qv) * s - v), s / 2 * 1.0001) }
        XCTAssertEqual(q2.map { abs(Int($0)) }.max(), 127)
        // An all-zero row: scale 0, all zeros.
        dk_q8_quantize_rows([Float](repeating: 0, count: 5), 1, 5, 5, 0, &q, &s)
        XCTAssertEqual(s, 0)
        XCTAssertEqual(Array(q.prefix(5)), [0, 0, 0, 0, 0])
    }

    func testInt8PackLayout() {
        // W [17, 5]: Kp 8; panel 0 = corr[16] then [k/4][16][4]; -128 clamped to -127.
        var w = (0..<85).map { Int8(truncatingIfNeeded: $0 * 7 - 300) }
        w[0] = -128
        let p = rawBuffer(dk_q8_packed_bytes(17, 5))
        defer { p.deallocate() }
        XCTAssertEqual(dk_q8_packed_bytes(17, 5), 2 * (64 + 8 * 16))
        dk_q8_pack(w, 17, 5, p)
        let bytes = p.assumingMemoryBound(to: Int8.self), corr = p.assumingMemoryBound(to: Int32.self)
        XCTAssertEqual(bytes[64 + 0], -127)
        XCTAssertEqual(bytes[64 + 3 * 4 + 2], w[3 * 5 + 2])                 // column 3, k 2
        XCTAssertEqual(bytes[64 + 64 + 5 * 4 + 0], w[5 * 5 + 4])            // column 5, k 4
        XCTAssertEqual(bytes[64 + 64 + 5 * 4 + 1], 0)                       // k 5 is padding
        XCTAssertEqual(Int(corr[3]), 128 * (0..<5).reduce(0) { $0 + Int(w[3 * 5 + $1]) })
        XCTAssertEqual(bytes[(64 + 128) + 64 + 0 * 4 + 1], w[16 * 5 + 1])   // panel 1, column 16
        XCTAssertEqual(bytes[(64 + 128) + 64 + 1 * 4 + 1], 0)               // column 17 is padding
    }

    /// Dispatched == `_ref` bit for bit (GELU: within geluTolerance), dynamic and static
    /// scales, with and without bias, on every awkward size along each axis.
    func testInt8DispatchedMatchesReference() {
        var cases: [(Int, Int, Int)] = []
        for s in awkwardSizes { cases += [(s, 33, 31), (13, s, 17), (14, 35, s)] }
        cases += [(97, 40, 129), (200, 48, 64)]   // past the 96-row activation block
        for (index, (m, n, k)) in cases.enumerated() {
            let g = Q8Case(m: m, n: n, k: k, seed: UInt64(index))
            for actScale: Float in [0, 0.02] {
                XCTAssertEqual(g.run(dk_q8_gemm, actScale: actScale), g.run(dk_q8_gemm_ref, actScale: actScale),
                               "int8 \(m)×\(n)×\(k) static \(actScale)")
            }
            XCTAssertEqual(g.run(dk_q8_gemm, withBias: false), g.run(dk_q8_gemm_ref, withBias: false), "int8 no bias \(m)×\(n)×\(k)")
            let fast = g.run(dk_q8_gemm, epilogue: Int32(DK_EPILOGUE_GELU)), ref = g.run(dk_q8_gemm_ref, epilogue: Int32(DK_EPILOGUE_GELU))
            for (x, y) in zip(fast, ref) where !(abs(x - y) <= geluTolerance * max(1, abs(y))) {
                XCTFail("int8 GELU \(m)×\(n)×\(k): \(x) vs \(y)"); break
            }
        }
    }

    /// The `_ref` int8 GEMM against Double: exactly the product of the dequantized values
    /// (up to float rounding), and within the quantization bound of the fp32 product.
    func testInt8ReferenceAgainstDouble() {
        for (index, (m, n, k)) in [(5, 17, 129), (12, 33, 384), (3, 7, 1)].enumerated() {
            let g = Q8Case(m: m, n: n, k: k, seed: UInt64(50 + index))
            let c = g.run(dk_q8_gemm_ref)
            var qa = [Int8](repeating: 0, count: m * k), sa = [Float](repeating: 0, count: m)
            dk_q8_quantize_rows(g.a, m, k, k, 0, &qa, &sa)
            for i in 0..<m {
                for j in 0..<n {
                    var exact = 0.0, bound = 0.0, dequant = 0.0
                    for t in 0..<k {
                        let a = Double(g.a[i * k + t]), w = Double(g.q[j * k + t]) * Double(g.scale[j])
                        exact += a * w
                        dequant += Double(qa[i * k + t]) * Double(sa[i]) * w
                        // |Δa| ≤ s_a/2 against the quantized weight: the activation error only
                        // (the weight is exactly q·scale here).
                        bound += Double(sa[i]) / 2 * abs(w)
                    }
                    let y = Double(c[i * n + j]) - Double(g.bias[j])
                    XCTAssertEqual(y, dequant, accuracy: 1e-5 * (1 + abs(dequant)) + 2e-6, "dequantized product \(i),\(j)")
                    XCTAssertLessThanOrEqual(abs(y - exact), bound * 1.001 + 1e-5, "quantization bound \(i),\(j)")
                }
            }
        }
    }

    func testInt8SplitIndependent() {
        let g = Q8Case(m: 50, n: 70, k: 45, seed: 3)
        let whole = g.run(dk_q8_gemm)
        var c = [Float](repeating: .nan, count: 50 * 70)
        let ws = rawBuffer(dk_q8_workspace_bytes(50, 45))
        defer { ws.deallocate() }
        let pb = dk_q8_panel_bytes(45)
        c.withUnsafeMutableBufferPointer { c in
            // rows 0..<19 and 19..<50; columns 0..<32 and 32..<70 (a multiple of 16).
            for (r0, r1) in [(0, 19), (19, 50)] {
                for (n0, n1) in [(0, 32), (32, 70)] {
                    g.a.withUnsafeBufferPointer { a in
                        dk_q8_gemm(r1 - r0, n1 - n0, 45, a.baseAddress! + r0 * 45, 45, g.packed + n0 / 16 * pb,
                                   Array(g.scale[n0...]), Array(g.bias[n0...]), c.baseAddress! + r0 * 70 + n0, 70, 0,
                                   Int32(DK_EPILOGUE_NONE), ws)
                    }
                }
            }
        }
        XCTAssertEqual(c, whole)
    }

    // ---------------------------------------------------------------- int4

    private func q4Case(n: Int, k: Int, g: Int, seed: UInt64, symmetric: Bool) -> (UnsafeMutableRawPointer, [UInt8], [Float], [UInt8]) {
        let groups = k / g
        var s = seed | 1
        let nibbles = (0..<(n * k / 2)).map { _ -> UInt8 in s = s &* 6364136223846793005 &+ 1442695040888963407; return UInt8(truncatingIfNeeded: s >> 33) }
        let scales = randomFloats(n * groups, seed: seed &+ 5).map { 0.01 + abs($0) * 0.05 }
        let zeros = (0..<(n * groups)).map { symmetric ? UInt8(8) : UInt8($0 * 5 % 16) }
        let p = rawBuffer(dk_q4_packed_bytes(n, k, g))
        XCTAssertEqual(dk_q4_pack(nibbles, scales, symmetric ? nil : zeros, n, k, g, p), 0)
        return (p, nibbles, scales, zeros)
    }

    func testInt4PackRejectsBadGroups() {
        let p = rawBuffer(1024)
        defer { p.deallocate() }
        XCTAssertEqual(dk_q4_pack([UInt8](repeating: 0, count: 48), [Float](repeating: 1, count: 4), nil, 2, 48, 12, p), -1)
        XCTAssertEqual(dk_q4_pack([UInt8](repeating: 0, count: 48), [Float](repeating: 1, count: 4), nil, 2, 48, 32, p), -1)
        XCTAssertEqual(dk_q4_pack([UInt8](repeating: 0, count: 48), [Float](repeating: 1, count: 6), nil, 2, 48, 16, p), 0)
    }

    /// Dispatched == `_ref` bit for bit; `_ref` == Double of the dequantized weights.
    func testInt4AgainstReferenceAndDouble() {
        var cases: [(Int, Int, Int, Int)] = []
        for s in awkwardSizes { cases += [(s, 33, 64, 32), (13, s, 96, 32)] }
        cases += [(7, 20, 128, 128), (100, 17, 192, 64), (9, 40, 8, 8), (5, 3, 24, 8)]
        for (index, (m, n, k, g)) in cases.enumerated() {
            for symmetric in [true, false] {
                let (p, nib, scales, zeros) = q4Case(n: n, k: k, g: g, seed: UInt64(index), symmetric: symmetric)
                defer { p.deallocate() }
                let a = randomFloats(m * k, seed: UInt64(index) &+ 9), bias = randomFloats(n, seed: 4)
                let ws = rawBuffer(dk_q8_workspace_bytes(m, k))
                defer { ws.deallocate() }
                var fast = [Float](repeating: .nan, count: m * n), ref = fast
                dk_q4_gemm(m, n, k, g, a, k, p, bias, &fast, n, 0, Int32(DK_EPILOGUE_NONE), ws)
                dk_q4_gemm_ref(m, n, k, g, a, k, p, bias, &ref, n, 0, Int32(DK_EPILOGUE_NONE), ws)
                XCTAssertEqual(fast, ref, "int4 \(m)×\(n)×\(k) g\(g) symmetric \(symmetric)")
                // _ref against Double of (q − zero)·scale times the quantized activations.
                var qa = [Int8](repeating: 0, count: m * k), sa = [Float](repeating: 0, count: m)
                dk_q8_quantize_rows(a, m, k, k, 0, &qa, &sa)
                let groups = k / g
                for i in 0..<min(m, 4) {
                    for j in 0..<n {
                        var exact = 0.0, absSum = 0.0
                        for t in 0..<k {
                            let q = Int(nib[j * k / 2 + t / 2] >> (4 * UInt8(t & 1))) & 15
                            let w = Double(q - Int(zeros[j * groups + t / g])) * Double(scales[j * groups + t / g])
                            exact += Double(qa[i * k + t]) * Double(sa[i]) * w
                            absSum += abs(Double(qa[i * k + t]) * Double(sa[i]) * w)
                        }
                        XCTAssertEqual(Double(ref[i * n + j]) - Double(bias[j]), exact, accuracy: 4e-6 * absSum + 2e-6,
                                       "int4 ref \(i),\(j)")
                    }
                }
            }
        }
    }

    // ---------------------------------------------------------------- bf16

    func testBF16RoundingAgainstBitReference() {
        func reference(_ x: Float) -> UInt16 {
            if x.isNaN { return UInt16(x.bitPattern >> 16) | 0x40 }
            let u = x.bitPattern, lower = u & 0xFFFF, upper = u >> 16
            if lower > 0x8000 || (lower == 0x8000 && upper & 1 == 1) { return UInt16(truncatingIfNeeded: upper + 1) }
            return UInt16(upper)
        }
        var xs: [Float] = [0, -0, 1, -1, .infinity, -.infinity, .nan, .greatestFiniteMagnitude, .leastNonzeroMagnitude,
                           Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000), Float(bitPattern: 0x3F80_8001),
                           Float(bitPattern: 0x3F80_7FFF)]
        xs += randomFloats(1000, seed: 11).map { $0 * 1e3 }
        var y = [UInt16](repeating: 0, count: xs.count)
        dk_f32_to_bf16(xs, &y, xs.count)
        for (x, h) in zip(xs, y) { XCTAssertEqual(h, reference(x), "bf16(\(x)) bits \(String(x.bitPattern, radix: 16))") }
        var back = [Float](repeating: 0, count: xs.count)
        dk_bf16_to_f32(y, &back, y.count)
        for (x, b) in zip(xs, back) where x.isFinite && abs(x) < 1e38 && (x == 0 || abs(x) >= Float.leastNormalMagnitude) {
            XCTAssertLessThanOrEqual(abs(b - x), abs(x) * 0x1p-8, "bf16 round trip of \(x)")
        }
    }

    func testBF16AgainstReferenceAndDouble() {
        var cases: [(Int, Int, Int)] = []
        for s in awkwardSizes { cases += [(s, 33, 31), (13, s, 17), (14, 35, s)] }
        cases += [(100, 40, 129)]
        for (index, (m, n, k)) in cases.enumerated() {
            let a = randomFloats(m * k, seed: UInt64(index)), w = randomFloats(n * k, seed: UInt64(index) &+ 1)
            let bias = randomFloats(n, seed: 2)
            var wb = [UInt16](repeating: 0, count: n * k), ab = [UInt16](repeating: 0, count: m * k)
            dk_f32_to_bf16(w, &wb, n * k)
            dk_f32_to_bf16(a, &ab, m * k)
            let p = rawBuffer(dk_bf16_packed_bytes(n, k)), ws = rawBuffer(dk_bf16_workspace_bytes(m, k))
            defer { p.deallocate(); ws.deallocate() }
            dk_bf16_pack(wb, n, k, p)
            var fast = [Float](repeating: .nan, count: m * n), ref = fast
            dk_bf16_gemm(m, n, k, a, k, p, bias, &fast, n, Int32(DK_EPILOGUE_NONE), ws)
            dk_bf16_gemm_ref(m, n, k, a, k, p, bias, &ref, n, Int32(DK_EPILOGUE_NONE), ws)
            var wf = [Float](repeating: 0, count: n * k), af = [Float](repeating: 0, count: m * k)
            dk_bf16_to_f32(wb, &wf, n * k)
            dk_bf16_to_f32(ab, &af, m * k)
            for i in 0..<m {
                for j in 0..<n {
                    var exact = Double(bias[j]), absSum = abs(Double(bias[j]))
                    for t in 0..<k { let v = Double(af[i * k + t]) * Double(wf[j * k + t]); exact += v; absSum += abs(v) }
                    let bound = bf16OrderBound(k: k, absSum: absSum)
                    XCTAssertLessThanOrEqual(abs(Double(ref[i * n + j]) - exact), bound, "bf16 ref \(m)×\(n)×\(k) \(i),\(j)")
                    XCTAssertLessThanOrEqual(abs(Double(fast[i * n + j]) - exact), bound, "bf16 dispatched \(m)×\(n)×\(k) \(i),\(j)")
                }
            }
        }
    }

    // ---------------------------------------------------------------- embedding rows

    func testEmbeddingRowDequantizers() {
        let q: [Int8] = [-127, 0, 5, 127]
        var out = [Float](repeating: 0, count: 4)
        dk_q8_dequantize_row(q, 0.5, 4, &out)
        XCTAssertEqual(out, [-63.5, 0, 2.5, 63.5])
        // n 16, G 8: bytes low nibble = even c.
        let nib: [UInt8] = (0..<8).map { UInt8($0 | (15 - $0) << 4) }
        var o4 = [Float](repeating: 0, count: 16)
        dk_q4_dequantize_row(nib, [1, 0.5], [3, 8], 16, 8, &o4)
        XCTAssertEqual(o4[0], Float(0 - 3) * 1)
        XCTAssertEqual(o4[1], Float(15 - 3) * 1)
        XCTAssertEqual(o4[9], Float(15 - 4 - 8) * 0.5)
        dk_q4_dequantize_row(nib, [1, 0.5], nil, 16, 8, &o4)
        XCTAssertEqual(o4[2], Float(1 - 8))
    }
}
