// Test helpers shared by the gradient-checking targets (TrainingTests, DistillationTests):
// seeded inputs and the relative error every gradient and forward check reports.
import Foundation

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
