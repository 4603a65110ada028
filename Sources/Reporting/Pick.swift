// Pick: the variant to ship — the smallest file among the variants that keep the teacher's
// test macro-F1 within `maxDrop` points and, when given, stay under a batch-1 median latency
// and a file size; when none does, which limit nothing met and the variant closest to
// meeting them all.
//
// The drop is in macro-F1 points (teacher 0.950, variant 0.941: 0.9 points), as
// `kd quantize --max-drop` counts it; a report without a teacher measures the drop from its
// best macro-F1 and says so. "Closest" sums each limit's relative excess (a variant 20 %
// over the latency limit and 0.5 points over a 1-point drop limit scores 0.2 + 0.5).
// Left out on purpose: weighting the limits — a user who cares more about one tightens it.
import Foundation

/// What `pick` found.
public struct PickResult: Codable, Sendable, Equatable {
    /// The chosen variant's name (nil when nothing qualifies).
    public var chosen: String?
    /// Every variant within all limits, smallest file first.
    public var qualifying: [String]
    /// The limits no variant meets even alone (flag and value, e.g. "--max-latency-ms 5"),
    /// empty when some variant meets each but none meets all together.
    public var unmet: [String]
    /// When nothing qualifies: the variant with the smallest summed relative excess.
    public var closest: String?
    /// What was compared against: the teacher's name, or the best variant's without one.
    public var reference: String
    /// The verdict in one or two sentences.
    public var text: String

    /// Whether a variant qualified.
    public var found: Bool { chosen != nil }
}

/// The smallest variant (file size; ties: faster) whose macro-F1 is at most `maxDrop`
/// points below the teacher's and, when given, whose batch-1 median is at most
/// `maxLatencyMs` and whose file is at most `maxMB` MB (10^6 bytes).
public func pick(_ r: TradeoffReport, maxDrop: Double, maxLatencyMs: Double?, maxMB: Double?) -> PickResult {
    let reference = r.teacherMeasurement ?? r.variants.max { ($0.macroF1, $1.spec.name) < ($1.macroF1, $0.spec.name) }!
    let referenceName = reference.spec.name + (r.teacherMeasurement == nil ? " (best macro-F1; the report names no teacher)" : "")
    func drop(_ v: VariantMeasurement) -> Double { 100 * (reference.macroF1 - v.macroF1) }

    struct Limit {
        let flag: String
        let limit: Double
        let value: (VariantMeasurement) -> Double
        /// How far over the limit, relative to it (0 when within).
        func excess(_ v: VariantMeasurement) -> Double {
            let over = value(v) - limit
            return over <= 0 ? 0 : over / max(limit, 1e-9)
        }
    }
    var limits = [Limit(flag: "--max-drop", limit: maxDrop, value: drop)]
    if let maxLatencyMs { limits.append(Limit(flag: "--max-latency-ms", limit: maxLatencyMs, value: { $0.latency.medianMs })) }
    if let maxMB { limits.append(Limit(flag: "--max-mb", limit: maxMB, value: { $0.fileMB })) }
    // The drop limit's excess is counted in points over max(limit, 1) so a 0-point limit still
    // compares (a relative excess over 0 would be infinite).
    func excess(_ l: Limit, _ v: VariantMeasurement) -> Double {
        l.flag == "--max-drop" ? max(0, l.value(v) - l.limit) / max(l.limit, 1) : l.excess(v)
    }

    let qualifying = r.variants.filter { v in limits.allSatisfy { $0.value(v) <= $0.limit } }
        .sorted { ($0.fileBytes, $0.latency.medianMs, $0.spec.name) < ($1.fileBytes, $1.latency.medianMs, $1.spec.name) }
    let limitText = limits.map { "\($0.flag) \(formatLimit($0.limit))" }.joined(separator: ", ")
    if let best = qualifying.first {
        let text = String(format: "%@: %.2f MB, batch-1 median %@ ms, macro-F1 %.4f (%.2f points below %@) — the smallest of %d variant(s) within %@",
                          best.spec.name, best.fileMB, formatMs(best.latency.medianMs), best.macroF1, drop(best), reference.spec.name,
                          qualifying.count, limitText)
        return PickResult(chosen: best.spec.name, qualifying: qualifying.map(\.spec.name), unmet: [], closest: nil,
                          reference: referenceName, text: text)
    }
    let unmet = limits.filter { l in !r.variants.contains { l.value($0) <= l.limit } }
    let score = { (v: VariantMeasurement) in limits.reduce(0.0) { $0 + excess($1, v) } }
    let nearest = r.variants.min { (score($0), $0.fileBytes, $0.spec.name) < (score($1), $1.fileBytes, $1.spec.name) }!
    var text = unmet.isEmpty
        ? "no variant meets \(limitText) together (each limit alone is met by some variant)"
        : "no variant meets " + unmet.map { "\($0.flag) \(formatLimit($0.limit))" }.joined(separator: " or ")
            + (unmet.count == limits.count ? "" : " (of \(limitText))")
    let misses = limits.filter { $0.value(nearest) > $0.limit }.map { l -> String in
        switch l.flag {
        case "--max-drop": return String(format: "drops %.2f points", l.value(nearest))
        case "--max-latency-ms": return "batch-1 median \(formatMs(l.value(nearest))) ms"
        default: return String(format: "%.2f MB", l.value(nearest))
        }
    }
    text += "; closest: \(nearest.spec.name) (\(misses.joined(separator: ", ")))"
    return PickResult(chosen: nil, qualifying: [], unmet: unmet.map { "\($0.flag) \(formatLimit($0.limit))" }, closest: nearest.spec.name,
                      reference: referenceName, text: text)
}

/// A limit as typed: "5", "1.5", "0.25".
func formatLimit(_ x: Double) -> String {
    x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : String(x)
}
