// Divergences: histograms and the distances between two of them that drift monitoring
// reports — the population stability index (PSI), Jensen–Shannon divergence and KL.
//
// PSI follows the credit-scoring convention (Siddiqi 2006; Yurdakul 2018):
// PSI = Σ_i (a_i − e_i) · ln(a_i / e_i) over bin proportions e (reference, "expected")
// and a (new data, "actual"). It is the symmetric (Jeffreys) KL divergence, so it is ≥ 0
// and 0 only for equal histograms. An empty bin would make it infinite, so proportions
// below `psiEpsilon` are raised to it (no renormalisation, as the common implementations
// do). Jensen–Shannon is computed in bits, so it lies in [0, 1]; it needs no epsilon
// (the mixture is positive wherever either side is). Bins are built from the reference:
// quantile edges for an ordinal value (token lengths), fixed edges for a bounded one
// (confidences), categories for a discrete one (labels, word pieces). Left out on
// purpose: kernel density estimates and adaptive re-binning of the new data — the bins
// are fixed by the reference so that the same new data always gives the same numbers.
import Foundation

/// Proportions below this are raised to it before PSI takes their logarithm: an empty bin
/// facing a bin holding 10% then adds (0.1 − 1e-4) · ln(0.1 / 1e-4) ≈ 0.69 — far beyond the
/// usual 0.25 drift level, yet finite. 1e-4 is the value most PSI implementations use and
/// lies below 1/n for every sample under 10 000 items, so a bin that holds a single item is
/// never touched.
public let psiEpsilon = 1e-4

/// Counts normalised to proportions (all zero when the total is zero).
public func proportions(_ counts: [Double]) -> [Double] {
    let total = counts.reduce(0, +)
    return total > 0 ? counts.map { $0 / total } : counts.map { _ in 0 }
}

/// Population stability index of `actual` against `expected`, both given as counts or
/// proportions over the same bins (each side is normalised first); empty proportions are
/// raised to `epsilon`.
public func populationStabilityIndex(expected: [Double], actual: [Double], epsilon: Double = psiEpsilon) -> Double {
    precondition(expected.count == actual.count, "PSI: \(expected.count) expected bins vs \(actual.count) actual bins")
    let e = proportions(expected), a = proportions(actual)
    var sum = 0.0
    for i in e.indices {
        let ei = max(e[i], epsilon), ai = max(a[i], epsilon)
        sum += (ai - ei) * Foundation.log(ai / ei)
    }
    return sum
}

/// Kullback–Leibler divergence KL(p ‖ q) in nats over proportions (normalised first);
/// infinite when q is zero where p is not.
public func kullbackLeibler(_ p: [Double], _ q: [Double]) -> Double {
    precondition(p.count == q.count, "KL: \(p.count) vs \(q.count) bins")
    let pp = proportions(p), qq = proportions(q)
    var sum = 0.0
    for i in pp.indices where pp[i] > 0 {
        guard qq[i] > 0 else { return .infinity }
        sum += pp[i] * Foundation.log(pp[i] / qq[i])
    }
    return sum
}

/// Jensen–Shannon divergence in bits, in [0, 1]: ½ KL(p ‖ m) + ½ KL(q ‖ m) with
/// m = (p + q) / 2, over proportions (each side normalised first).
public func jensenShannon(_ p: [Double], _ q: [Double]) -> Double {
    precondition(p.count == q.count, "JS: \(p.count) vs \(q.count) bins")
    let pp = proportions(p), qq = proportions(q)
    var sum = 0.0
    for i in pp.indices {
        let m = (pp[i] + qq[i]) / 2
        if pp[i] > 0 { sum += 0.5 * pp[i] * Foundation.log2(pp[i] / m) }
        if qq[i] > 0 { sum += 0.5 * qq[i] * Foundation.log2(qq[i] / m) }
    }
    return min(max(sum, 0), 1)
}

/// Bins over the real line given by ascending upper edges: bin i holds values in
/// (edges[i−1], edges[i]], the last bin everything above the last edge.
public struct Binning: Codable, Sendable, Equatable {
    /// Ascending, distinct upper edges; `edges.count + 1` bins.
    public let edges: [Double]

    /// Bins with these upper edges (sorted and deduplicated).
    public init(edges: [Double]) { self.edges = Array(Set(edges)).sorted() }

    /// The number of bins.
    public var count: Int { edges.count + 1 }

    /// The bin of `value`.
    public func bin(of value: Double) -> Int {
        var lo = 0, hi = edges.count   // first edge ≥ value
        while lo < hi {
            let mid = (lo + hi) / 2
            if edges[mid] < value { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// Counts of `values` per bin.
    public func counts(_ values: [Double]) -> [Double] {
        var c = [Double](repeating: 0, count: count)
        for v in values { c[bin(of: v)] += 1 }
        return c
    }

    /// Short labels, e.g. "≤ 12", "13–20" for integer-valued data, "> 40".
    public func labels(integer: Bool) -> [String] {
        func f(_ x: Double) -> String { integer ? String(Int(x.rounded(.down))) : String(format: "%.2f", x) }
        guard !edges.isEmpty else { return ["all"] }
        var out = ["≤ " + f(edges[0])]
        for i in 1..<edges.count {
            out.append(integer ? (Int(edges[i - 1]) + 1 == Int(edges[i]) ? f(edges[i]) : "\(Int(edges[i - 1]) + 1)–\(f(edges[i]))")
                               : "\(f(edges[i - 1]))–\(f(edges[i]))")
        }
        out.append("> " + f(edges[edges.count - 1]))
        return out
    }

    /// Edges at the reference's deciles (or `parts`-quantiles): the value at rank
    /// ⌈k·n/parts⌉ of the sorted reference for k = 1 … parts−1, deduplicated, so each bin
    /// holds about 1/parts of the reference (ties on integer data merge bins).
    public static func quantiles(of reference: [Double], parts: Int = 10) -> Binning {
        precondition(parts >= 2, "quantile binning needs at least two parts")
        let sorted = reference.sorted()
        guard !sorted.isEmpty else { return Binning(edges: []) }
        var edges: [Double] = []
        for k in 1..<parts {
            let rank = Int((Double(k * sorted.count) / Double(parts)).rounded(.up))
            edges.append(sorted[max(0, min(sorted.count - 1, rank - 1))])
        }
        // The top edge equal to the maximum would leave the last bin empty for the reference.
        return Binning(edges: edges.filter { $0 < sorted[sorted.count - 1] })
    }

    /// `bins` equal-width bins over [lower, upper] (values outside go to the end bins).
    public static func uniform(from lower: Double, to upper: Double, bins: Int) -> Binning {
        precondition(bins >= 1 && upper > lower, "uniform binning needs bins ≥ 1 and upper > lower")
        return Binning(edges: (1..<bins).map { lower + (upper - lower) * Double($0) / Double(bins) })
    }
}

/// Counts of category indices `0..<categories`.
public func categoryCounts(_ values: [Int], categories: Int) -> [Double] {
    var c = [Double](repeating: 0, count: categories)
    for v in values where v >= 0 && v < categories { c[v] += 1 }
    return c
}

/// Word-piece counts folded onto the reference's `top` most frequent pieces plus one
/// "other" bin (every remaining piece, including pieces the reference never saw). With
/// thousands of rare pieces a per-piece histogram is dominated by sampling noise — its PSI
/// grows like (pieces − 1)·(1/n₁ + 1/n₂) with no drift at all — so the divergences compare
/// the head of the distribution, where each bin has enough counts, and the tail as a whole.
public struct PieceBins: Sendable {
    /// The piece ids that get their own bin, most frequent first (ties: smaller id first).
    public let pieces: [Int32]
    private let index: [Int32: Int]

    /// The `top` most frequent ids of `reference` (id → count).
    public init(reference: [Int32: Int], top: Int) {
        pieces = reference.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(top).map(\.key)
        index = Dictionary(uniqueKeysWithValues: pieces.enumerated().map { ($1, $0) })
    }

    /// Counts per bin: one per kept piece, then "other".
    public func counts(_ counts: [Int32: Int]) -> [Double] {
        var c = [Double](repeating: 0, count: pieces.count + 1)
        for (id, n) in counts { c[index[id] ?? pieces.count] += Double(n) }
        return c
    }
}
