// Test helpers shared by the gradient-checking targets (TrainingTests, DistillationTests):
// seeded inputs, central differences in Double and the check every gradient test makes.
//
// The method: differentiate a Double reference forward (a textbook formula, written
// independently of the Float kernels) by central differences — accurate to ~1e-9 — and
// compare that with the Float analytic backward, so a check tests the backward formula,
// not float noise.
import Foundation
import XCTest

/// Float backward vs Double finite differences, as a fraction of the tensor's largest
/// gradient. Float kernels carry ~6e-8 relative rounding per operation, compounded over
/// sums of tens of terms and a few chained ops (~1e-6); a wrong formula is off by O(1).
/// 1e-4 sits between the two with two orders of margin on each side.
public let gradientCheckTolerance = 1e-4
/// Central-difference step relative to max(1, |x|). The references are Double, so the
/// truncation error h²·f''' (~1e-12) and the cancellation error 1e-16/h (~1e-10) are both
/// far below the tolerance.
public let finiteDifferenceStep = 1e-6

/// Gradient of a scalar Double function by central differences, step relative to |x|.
public func numericGradient(at x: [Float], step: Double = finiteDifferenceStep, _ f: ([Double]) -> Double) -> [Double] {
    var xd = x.map(Double.init)
    var grad = [Double](repeating: 0, count: x.count)
    for i in 0..<x.count {
        let h = step * max(1, abs(xd[i]))
        let saved = xd[i]
        xd[i] = saved + h
        let up = f(xd)
        xd[i] = saved - h
        let down = f(xd)
        xd[i] = saved
        grad[i] = (up - down) / (2 * h)
    }
    return grad
}

/// Gradient of φ(x) = Σ_i w_i f(x)_i by central differences: the backward of a vector
/// function seeded with the upstream gradient w.
public func numericGradient(at x: [Float], weights w: [Double], _ f: ([Double]) -> [Double]) -> [Double] {
    numericGradient(at: x) { v in zip(f(v), w).reduce(0) { $0 + $1.0 * $1.1 } }
}

/// Asserts a Float analytic gradient against a Double numeric one; returns the error. A
/// numeric gradient that is all zero must be matched by an all-zero analytic one (an input
/// that cannot move the output); it fails otherwise, so the check can always fail.
@discardableResult
public func checkGradient(_ name: String, analytic: [Float], numeric: [Double], tolerance: Double = gradientCheckTolerance,
                          file: StaticString = #filePath, line: UInt = #line) -> Double {
    let err = relativeError(analytic, numeric)
    print("gradient check \(name): relative error \(err)")
    XCTAssertLessThanOrEqual(err, tolerance, "gradient \(name)", file: file, line: line)
    XCTAssertTrue(numeric.contains { $0 != 0 } || analytic.allSatisfy { $0 == 0 }, "\(name): numeric gradient is all zero", file: file, line: line)
    return err
}

/// Seeded uniform numbers for test inputs (SplitMix64).
public struct TestRNG {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [lo, hi).
    public mutating func uniform(_ lo: Double = -1, _ hi: Double = 1) -> Double {
        lo + (hi - lo) * Double(next() >> 11) / Double(1 << 53)
    }
    public mutating func floats(_ n: Int, _ lo: Double = -1, _ hi: Double = 1) -> [Float] {
        (0..<n).map { _ in Float(uniform(lo, hi)) }
    }
    public mutating func doubles(_ n: Int, _ lo: Double = -1, _ hi: Double = 1) -> [Double] {
        (0..<n).map { _ in uniform(lo, hi) }
    }
    /// Random values for the tensor `name` of a small test model: LayerNorm scales in
    /// [0.7, 1.3] (near 1, so no layer collapses), everything else in [-0.5, 0.5].
    public mutating func modelValues(for name: String, count: Int) -> [Float] {
        name.hasSuffix("LayerNorm.weight") ? floats(count, 0.7, 1.3) : floats(count, -0.5, 0.5)
    }
}

/// max |a − b| / max(max |b|, 1e-30): the error as a fraction of the largest reference value.
public func relativeError(_ a: [Float], _ b: [Double]) -> Double {
    precondition(a.count == b.count, "relativeError: \(a.count) vs \(b.count) elements")
    let scale = max(b.map(abs).max() ?? 0, 1e-30)
    var worst = 0.0
    for i in 0..<a.count { worst = max(worst, abs(Double(a[i]) - b[i])) }
    return worst / scale
}
