// GPTQ rounding: the factorisation it rests on, and its purpose — a smaller layer output
// error than round-to-nearest on the calibration inputs (and on fresh inputs from the same
// distribution) — for int4 (symmetric, asymmetric, groups 32 and 64) and int8.
import DistilleryTensor
@testable import Quantization
import TestSupport
import XCTest

/// U from upperCholeskyOfInverse satisfies UᵀU·H = I up to Double rounding on a
/// well-conditioned 37 × 37 matrix (condition number < 100: errors ~1e-14 per entry).
private let choleskyIdentityTolerance = 1e-9
/// GPTQ must cut the squared output error of round-to-nearest on its calibration inputs to
/// at most this fraction (a rounding that ignored H, or pushed the error the wrong way,
/// lands near or above 1; GPTQ on inputs with a few strong directions sits well below).
private let calibrationErrorFraction = 0.8
/// On fresh inputs from the same distribution the gain must hold too, if less sharply.
private let heldOutErrorFraction = 0.9

final class GPTQTests: XCTestCase {
    /// Inputs [rows, width] whose columns are correlated (8 latent factors mixed into every
    /// column, plus noise) with a few outlier channels ten times larger — the shape of a
    /// LayerNorm output, where rounding errors in different columns do not cancel alike.
    private func correlatedInputs(rows: Int, width: Int, mixing: [Float], seed: UInt64) -> [Float] {
        var rng = TestRNG(seed: seed)
        let factors = 8
        var x = [Float](repeating: 0, count: rows * width)
        for r in 0..<rows {
            let z = rng.floats(factors)
            for c in 0..<width {
                var v: Float = 0.2 * Float(rng.uniform())
                for f in 0..<factors { v += z[f] * mixing[f * width + c] }
                x[r * width + c] = c % 29 == 3 ? 10 * v : v
            }
        }
        return x
    }

    /// ‖X·(W − Q)ᵀ‖² for the dequantized Q.
    private func outputError(_ x: [Float], rows: Int, _ w: Tensor, _ q: QuantizedTensor) -> Double {
        let d = q.dequantized().data
        let (N, K) = (w.shape[0], w.shape[1])
        var total = 0.0
        for r in 0..<rows {
            for n in 0..<N {
                var s = 0.0
                for k in 0..<K { s += Double(x[r * K + k]) * Double(w.data[n * K + k] - d[n * K + k]) }
                total += s * s
            }
        }
        return total
    }

    func testUpperCholeskyOfInverseInvertsH() throws {
        let n = 37
        var rng = TestRNG(seed: 3)
        let a = rng.doubles(n * n)
        var h = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { for k in 0..<n { h[i * n + j] += a[k * n + i] * a[k * n + j] / Double(n) } } }
        for i in 0..<n { h[i * n + i] += 1 }
        let u = try XCTUnwrap(upperCholeskyOfInverse(h, n))
        for i in 0..<n { for j in 0..<i { XCTAssertEqual(u[i * n + j], 0, "U[\(i), \(j)] below the diagonal") } }
        for i in 0..<n {
            for j in 0..<n {   // (UᵀU·H)[i, j]
                var s = 0.0
                for k in 0..<n {
                    var hinv = 0.0
                    for m in 0..<n { hinv += u[m * n + i] * u[m * n + k] }
                    s += hinv * h[k * n + j]
                }
                XCTAssertEqual(s, i == j ? 1 : 0, accuracy: choleskyIdentityTolerance, "(UᵀU·H)[\(i), \(j)]")
            }
        }
        var notDefinite = h
        notDefinite[5 * n + 5] = -1
        XCTAssertNil(upperCholeskyOfInverse(notDefinite, n))
    }

    func testGPTQLowersTheLayerOutputErrorBelowRoundToNearest() throws {
        let (N, K, rows) = (24, 128, 400)
        var rng = TestRNG(seed: 11)
        let mixing = rng.floats(8 * K)
        let w = Tensor(shape: [N, K], data: rng.floats(N * K, -0.5, 0.5))
        let calibration = correlatedInputs(rows: rows, width: K, mixing: mixing, seed: 12)
        let heldOut = correlatedInputs(rows: rows, width: K, mixing: mixing, seed: 13)
        var hessian = HessianAccumulator(width: K)
        calibration.withUnsafeBufferPointer { hessian.add($0.baseAddress!, rows: rows / 2, stride: K) }   // two calls add up
        calibration.withUnsafeBufferPointer { hessian.add($0.baseAddress! + rows / 2 * K, rows: rows - rows / 2, stride: K) }
        XCTAssertEqual(hessian.rowCount, rows)
        for format: QuantizedTensor.Format in [.int4(group: 32, symmetric: true), .int4(group: 32, symmetric: false),
                                              .int4(group: 64, symmetric: true), .int8] {
            let nearest = QuantizedTensor(quantizing: w, as: format)
            let gptq = try gptqQuantize(w, hessian: hessian, format: format)
            XCTAssertNoThrow(try gptq.validate(), "\(format)")
            let (rtnError, gptqError) = (outputError(calibration, rows: rows, w, nearest), outputError(calibration, rows: rows, w, gptq))
            XCTAssertLessThan(gptqError, calibrationErrorFraction * rtnError, "\(format): calibration error GPTQ \(gptqError) vs nearest \(rtnError)")
            let (rtnHeld, gptqHeld) = (outputError(heldOut, rows: rows, w, nearest), outputError(heldOut, rows: rows, w, gptq))
            XCTAssertLessThan(gptqHeld, heldOutErrorFraction * rtnHeld, "\(format): held-out error GPTQ \(gptqHeld) vs nearest \(rtnHeld)")
        }
    }

    func testThreadCountDoesNotChangeGPTQAndDeadInputsGetZeroWeights() throws {
        let (N, K, rows) = (13, 64, 120)
        var rng = TestRNG(seed: 21)
        let w = Tensor(shape: [N, K], data: rng.floats(N * K, -0.5, 0.5))
        var x = rng.floats(rows * K)
        for r in 0..<rows { x[r * K + 7] = 0 }   // input 7 never fires
        var hessian = HessianAccumulator(width: K)
        x.withUnsafeBufferPointer { hessian.add($0.baseAddress!, rows: rows, stride: K) }
        let before = Compute.threads
        defer { Compute.setThreads(before) }
        Compute.setThreads(1)
        let one = try gptqQuantize(w, hessian: hessian, format: .int4(group: 32, symmetric: false))
        Compute.setThreads(2)
        let two = try gptqQuantize(w, hessian: hessian, format: .int4(group: 32, symmetric: false))
        XCTAssertEqual(one, two)
        let d = one.dequantized()
        for n in 0..<N { XCTAssertEqual(d.data[n * K + 7], 0, "row \(n): a weight on a dead input") }
    }
}
