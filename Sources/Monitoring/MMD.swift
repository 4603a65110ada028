// MMD: the kernel two-sample test on embeddings — squared maximum mean discrepancy with a
// Gaussian (RBF) kernel and a permutation p-value (Gretton et al. 2012, "A kernel
// two-sample test", JMLR 13).
//
// MMD² is the unbiased U-statistic
//   1/(m(m−1)) Σ_{i≠j} k(x_i,x_j) + 1/(n(n−1)) Σ_{i≠j} k(y_i,y_j) − 2/(mn) Σ_{i,j} k(x_i,y_j)
// with k(a,b) = exp(−‖a−b‖² / (2σ²)) and σ the median heuristic: the median Euclidean
// distance between distinct points of the pooled sample. The p-value permutes the pooled
// sample `permutations` times with a seeded generator (SplitMix64), so a run is
// reproducible: p = (1 + #{permuted MMD² ≥ observed}) / (1 + permutations), which is never
// 0 and is a valid p-value (Phipson & Smyth 2010). Cost is one N×N kernel matrix
// (N = m + n) and O(m·N) per permutation, so callers subsample each side to a cap
// (`subsampleIndices`). Left out on purpose: linear-time MMD estimators, other kernels,
// and bandwidth selection by test power.
import Foundation

/// A small, fast, seedable generator (SplitMix64, Steele et al. 2014): the same seed gives
/// the same permutations and subsamples on every machine.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// A generator started from `seed`.
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E9B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// At most `cap` indices of `0..<count`, chosen uniformly without replacement by a seeded
/// partial Fisher–Yates shuffle and returned in ascending order (all of them when
/// `count ≤ cap`).
public func subsampleIndices(count: Int, cap: Int, seed: UInt64) -> [Int] {
    guard count > cap else { return Array(0..<count) }
    var rng = SplitMix64(seed: seed)
    var pool = Array(0..<count)
    for i in 0..<cap {
        let j = i + Int(rng.next() % UInt64(count - i))
        pool.swapAt(i, j)
    }
    return pool[0..<cap].sorted()
}

/// The result of a kernel two-sample test.
public struct MMDResult: Codable, Sendable, Equatable {
    /// Unbiased MMD² estimate (may be slightly negative when the samples agree).
    public var mmd2: Double
    /// Permutation p-value in (0, 1].
    public var pValue: Double
    /// The RBF bandwidth σ (median heuristic).
    public var bandwidth: Double
    /// Points used from each side.
    public var referenceCount: Int
    public var currentCount: Int
    public var permutations: Int
    public var seed: UInt64

    enum CodingKeys: String, CodingKey {
        case mmd2, pValue = "p_value", bandwidth, referenceCount = "reference_count", currentCount = "current_count", permutations, seed
    }
}

/// Squared Euclidean distances between all rows of `points` (each of equal length), as a
/// flat N×N matrix.
func squaredDistances(_ points: [[Float]]) -> [Double] {
    let n = points.count
    var d = [Double](repeating: 0, count: n * n)
    for i in 0..<n {
        for j in (i + 1)..<max(i + 1, n) {
            var s = 0.0
            let a = points[i], b = points[j]
            for k in a.indices { let t = Double(a[k]) - Double(b[k]); s += t * t }
            d[i * n + j] = s
            d[j * n + i] = s
        }
    }
    return d
}

/// The median heuristic: the median Euclidean distance over pairs i < j of an N×N matrix
/// of squared distances (the lower middle value for an even count); 1 when every distance
/// is 0 (all points equal), so the kernel stays defined.
public func medianHeuristicBandwidth(squaredDistances d: [Double], count n: Int) -> Double {
    var values: [Double] = []
    values.reserveCapacity(n * (n - 1) / 2)
    for i in 0..<n { for j in (i + 1)..<max(i + 1, n) { values.append(d[i * n + j]) } }
    guard !values.isEmpty else { return 1 }
    values.sort()
    let median = values[(values.count - 1) / 2].squareRoot()
    return median > 0 ? median : 1
}

/// The unbiased MMD² of the split `isX` (true: first sample) of a pooled kernel matrix.
private func unbiasedMMD2(kernel K: [Double], count n: Int, isX: [Bool], m: Int, total: Double) -> Double {
    // With k(a,a) = 1 on the diagonal: Sxx + Syy + 2·Sxy = total (every entry once).
    var sxx = 0.0, sxy = 0.0
    for i in 0..<n where isX[i] {
        let row = i * n
        for j in 0..<n { if isX[j] { sxx += K[row + j] } else { sxy += K[row + j] } }
    }
    let syy = total - sxx - 2 * sxy
    let k = Double(n - m), mm = Double(m)
    return (sxx - mm) / (mm * (mm - 1)) + (syy - k) / (k * (k - 1)) - 2 * sxy / (mm * k)
}

/// The kernel two-sample test of `reference` against `current` (rows are points of equal
/// dimension; each side needs at least two). Callers subsample first: the cost is
/// O((m+n)²·d) for the kernel and O(m·(m+n)) per permutation.
public func mmdTest(reference: [[Float]], current: [[Float]], permutations: Int, seed: UInt64) -> MMDResult {
    precondition(reference.count >= 2 && current.count >= 2, "MMD needs at least two points on each side")
    precondition(permutations >= 1, "MMD needs at least one permutation")
    let pooled = reference + current
    let n = pooled.count, m = reference.count
    let d = squaredDistances(pooled)
    let sigma = medianHeuristicBandwidth(squaredDistances: d, count: n)
    let scale = 1 / (2 * sigma * sigma)
    let K = d.map { Foundation.exp(-$0 * scale) }
    let total = K.reduce(0, +)
    var isX = (0..<n).map { $0 < m }
    let observed = unbiasedMMD2(kernel: K, count: n, isX: isX, m: m, total: total)
    var rng = SplitMix64(seed: seed)
    var atLeast = 0
    // A relative tolerance so that a permutation equal to the observed split (the same
    // value up to summation order) counts as "at least as large".
    let tolerance = 1e-12 * max(1, abs(observed))
    for _ in 0..<permutations {
        for i in stride(from: n - 1, to: 0, by: -1) {   // Fisher–Yates, spelled out so the order is ours, not the library's
            isX.swapAt(i, Int(rng.next() % UInt64(i + 1)))
        }
        if unbiasedMMD2(kernel: K, count: n, isX: isX, m: m, total: total) >= observed - tolerance { atLeast += 1 }
    }
    return MMDResult(mmd2: observed, pValue: Double(1 + atLeast) / Double(1 + permutations), bandwidth: sigma,
                     referenceCount: m, currentCount: n - m, permutations: permutations, seed: seed)
}
