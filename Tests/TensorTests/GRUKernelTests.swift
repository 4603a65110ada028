// GRU kernel tests: the dispatched gate math and the direction loops (dk_gru_*) against
// their `_ref` twins on awkward hidden sizes and ragged lengths, forward and backward, and
// the padding rules every caller relies on (zeros past a length, h carried unchanged, a
// reverse pass that starts at each sequence's own last token). Parity with PyTorch and the
// gradient check in Double are in TrainingTests/BiGRUTests.swift.
import CKernels
import Foundation
import XCTest

/// Dispatched (AVX2/AVX-512, FMA-contracted, vectorised exp) vs `_ref` (scalar) GRU results,
/// relative to the largest value: both use the same exp approximation, so they differ by a
/// few float roundings per gate, compounded over ≤ 9 recurrent steps of ≤ 129 units
/// (~1e-6); a wrong index or lane is off by O(1).
let gruPathTolerance: Float = 2e-5

private func maxGap(_ a: [Float], _ b: [Float]) -> Float {
    let scale = max(b.map(abs).max() ?? 0, 1e-20)
    return zip(a, b).map { abs($0 - $1) }.max().map { $0 / scale } ?? 0
}

private func packed(_ w: [Float], rows: Int, cols: Int) -> [Float] {
    var p = [Float](repeating: 0, count: dk_packed_floats(rows, cols))
    dk_pack_weight(w, rows, cols, &p)
    return p
}

private func packedTransposed(_ w: [Float], rows: Int, cols: Int) -> [Float] {
    // w is [rows, cols] = [3H, H]; the packed matrix is its transpose [cols, rows].
    var p = [Float](repeating: 0, count: dk_packed_floats(cols, rows))
    dk_pack_weight_transposed(w, cols, cols, rows, &p)
    return p
}

final class GRUKernelTests: XCTestCase {
    func testGateMathMatchesItsReference() {
        for H in awkwardSizes {
            let xp = randomFloats(3 * H, seed: UInt64(H), scale: 3), hp = randomFloats(3 * H, seed: UInt64(H) + 1, scale: 3)
            let h0 = randomFloats(H, seed: UInt64(H) + 2)
            var (h1, o1, c1) = (h0, [Float](repeating: 0, count: H), [Float](repeating: 0, count: 4 * H))
            var (h2, o2, c2) = (h0, o1, c1)
            dk_gru_gates(H, xp, hp, &h1, &o1, &c1)
            dk_gru_gates_ref(H, xp, hp, &h2, &o2, &c2)
            XCTAssertLessThanOrEqual(maxGap(h1, h2), gruPathTolerance, "gates H=\(H)")
            XCTAssertEqual(o1, h1)
            XCTAssertLessThanOrEqual(maxGap(c1, c2), gruPathTolerance, "cache H=\(H)")
            // The written formula, in Double, for the reference.
            for j in 0..<H {
                let r = 1 / (1 + exp(-Double(xp[j] + hp[j]))), z = 1 / (1 + exp(-Double(xp[H + j] + hp[H + j])))
                let n = tanh(Double(xp[2 * H + j]) + r * Double(hp[2 * H + j]))
                XCTAssertEqual(Double(h2[j]), (1 - z) * n + z * Double(h0[j]), accuracy: 1e-6, "formula H=\(H) j=\(j)")
            }
            let dh = randomFloats(H, seed: UInt64(H) + 3)
            var (dx1, dg1, dp1) = ([Float](repeating: 0, count: 3 * H), [Float](repeating: 0, count: 3 * H), [Float](repeating: 0, count: H))
            var (dx2, dg2, dp2) = (dx1, dg1, dp1)
            dk_gru_gates_backward(H, dh, h0, c2, &dx1, &dg1, &dp1)
            dk_gru_gates_backward_ref(H, dh, h0, c2, &dx2, &dg2, &dp2)
            XCTAssertLessThanOrEqual(maxGap(dx1 + dg1 + dp1, dx2 + dg2 + dp2), gruPathTolerance, "gate backward H=\(H)")
        }
    }

    func testDirectionForwardAndBackwardMatchTheirReferences() {
        for H in [1, 3, 7, 16, 17, 33, 129] {
            let lengths: [Int32] = [9, 1, 4, 0, 7]
            let (B, T) = (lengths.count, 9)
            let xp = randomFloats(B * T * 3 * H, seed: UInt64(10 * H), scale: 2)
            let whh = randomFloats(3 * H * H, seed: UInt64(10 * H + 1), scale: Float(1 / Double(H).squareRoot()))
            let bhh = randomFloats(3 * H, seed: UInt64(10 * H + 2))
            let (pw, pt) = (packed(whh, rows: 3 * H, cols: H), packedTransposed(whh, rows: 3 * H, cols: H))
            let dout = randomFloats(B * T * H, seed: UInt64(10 * H + 3))
            for reverse: Int32 in [0, 1] {
                var (o1, c1) = ([Float](repeating: 7, count: B * T * H), [Float](repeating: 7, count: B * T * 4 * H))
                var (o2, c2) = (o1, c1)
                XCTAssertEqual(dk_gru_forward(B, T, H, xp, pw, bhh, lengths, reverse, &o1, H, &c1), 0)
                XCTAssertEqual(dk_gru_forward_ref(B, T, H, xp, pw, bhh, lengths, reverse, &o2, H, &c2), 0)
                XCTAssertLessThanOrEqual(maxGap(o1, o2), gruPathTolerance, "forward H=\(H) reverse=\(reverse)")
                XCTAssertLessThanOrEqual(maxGap(c1, c2), gruPathTolerance, "cache H=\(H) reverse=\(reverse)")
                // Padding: zeros past each length.
                for b in 0..<B { for t in Int(lengths[b])..<T { for j in 0..<H { XCTAssertEqual(o1[(b * T + t) * H + j], 0) } } }
                var (dx1, dg1) = ([Float](repeating: 7, count: B * T * 3 * H), [Float](repeating: 7, count: B * T * 3 * H))
                var (dx2, dg2) = (dx1, dg1)
                XCTAssertEqual(dk_gru_backward(B, T, H, dout, H, o1, H, c1, pt, lengths, reverse, &dx1, &dg1), 0)
                XCTAssertEqual(dk_gru_backward_ref(B, T, H, dout, H, o2, H, c2, pt, lengths, reverse, &dx2, &dg2), 0)
                XCTAssertLessThanOrEqual(maxGap(dx1, dx2), gruPathTolerance, "backward dxg H=\(H) reverse=\(reverse)")
                XCTAssertLessThanOrEqual(maxGap(dg1, dg2), gruPathTolerance, "backward dhg H=\(H) reverse=\(reverse)")
                for b in 0..<B { for t in Int(lengths[b])..<T { for j in 0..<3 * H { XCTAssertEqual(dx1[(b * T + t) * 3 * H + j], 0) } } }
            }
        }
    }

    /// A sequence run alone at its own length gives the same outputs as inside a padded
    /// batch, in both directions: padding neither feeds the state nor shifts the reverse start.
    func testPaddedBatchEqualsEachSequenceAlone() {
        let H = 5, T = 6
        let lengths: [Int32] = [6, 3, 1]
        let B = lengths.count
        let xp = randomFloats(B * T * 3 * H, seed: 99, scale: 2)
        let whh = randomFloats(3 * H * H, seed: 100, scale: 0.5), bhh = randomFloats(3 * H, seed: 101)
        let pw = packed(whh, rows: 3 * H, cols: H)
        for reverse: Int32 in [0, 1] {
            var all = [Float](repeating: 0, count: B * T * H)
            XCTAssertEqual(dk_gru_forward_ref(B, T, H, xp, pw, bhh, lengths, reverse, &all, H, nil), 0)
            for b in 0..<B {
                let n = Int(lengths[b])
                let own = Array(xp[(b * T * 3 * H)..<((b * T + n) * 3 * H)])
                var alone = [Float](repeating: 0, count: n * H)
                XCTAssertEqual(dk_gru_forward_ref(1, n, H, own, pw, bhh, [Int32(n)], reverse, &alone, H, nil), 0)
                XCTAssertEqual(Array(all[(b * T * H)..<((b * T + n) * H)]), alone, "sequence \(b) reverse=\(reverse)")
            }
        }
    }
}
