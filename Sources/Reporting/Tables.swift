// Tables: the Pareto front of a trade-off report, its Markdown and CSV tables, and `pick`
// — the smallest variant within a macro-F1 drop, a latency and a size limit.
//
// The front is the set of variants no other variant beats on both axes at once (higher
// macro-F1 and lower batch-1 median latency, at least as good on one and better on the
// other); variants with identical figures are all on it. Table rows: the teacher first, then
// by batch-1 latency; numbers are rounded for reading (the CSV keeps them whole, quoted by
// RFC 4180 where a cell holds a comma, quote or line break). Left out on purpose:
// confidence intervals — a latency's spread is its p90/p99 columns.
import Foundation

/// Variant names on the front of `y` (higher is better) against `x` (lower is better),
/// ordered by `x`.
func front(_ variants: [VariantMeasurement], x: (VariantMeasurement) -> Double, y: (VariantMeasurement) -> Double) -> [String] {
    variants.filter { v in
        !variants.contains { u in x(u) <= x(v) && y(u) >= y(v) && (x(u) < x(v) || y(u) > y(v)) }
    }.sorted { (x($0), $0.spec.name) < (x($1), $1.spec.name) }.map(\.spec.name)
}

/// The variants on the macro-F1 versus batch-1 latency Pareto front, fastest first.
public func paretoFront(_ r: TradeoffReport) -> [String] { front(r.variants, x: { $0.latency.medianMs }, y: { $0.macroF1 }) }

/// The variants on the macro-F1 versus file size front, smallest first.
public func sizeFront(_ r: TradeoffReport) -> [String] { front(r.variants, x: { Double($0.fileBytes) }, y: { $0.macroF1 }) }

// MARK: - cells

/// A column of the trade-off table: header and the cell of one variant.
struct Column {
    let header: String
    let cell: (TradeoffReport, VariantMeasurement) -> String
}

/// "22.7M", "412k", "950".
func formatCount(_ n: Int) -> String {
    let d = Double(n)
    return d >= 1e6 ? String(format: "%.1fM", d / 1e6) : d >= 1e3 ? String(format: "%.0fk", d / 1e3) : "\(n)"
}

/// Milliseconds with 2–3 significant digits.
func formatMs(_ ms: Double) -> String {
    ms >= 100 ? String(format: "%.0f", ms) : ms >= 10 ? String(format: "%.1f", ms) : String(format: "%.2f", ms)
}

/// A KL divergence: four decimals, or two significant digits below 0.001 (so a small
/// divergence does not read as 0.0000).
func formatKL(_ kl: Double) -> String {
    kl == 0 ? "0" : kl < 0.001 ? String(format: "%.1e", kl) : String(format: "%.4f", kl)
}

/// The columns of the Markdown and HTML tables, in order.
func tableColumns(_ r: TradeoffReport) -> [Column] {
    let dash = "—"
    let tb = r.variants.first?.throughput.batch ?? 0
    return [
        Column(header: "variant") { _, v in v.spec.name },
        Column(header: "kind") { _, v in v.spec.kind },
        Column(header: "params") { _, v in formatCount(v.parameters) },
        Column(header: "file MB") { _, v in String(format: v.fileMB >= 10 ? "%.1f" : "%.2f", v.fileMB) },
        Column(header: "b1 median ms") { _, v in formatMs(v.latency.medianMs) },
        Column(header: "b1 p90 ms") { _, v in formatMs(v.latency.p90Ms) },
        Column(header: "b1 p99 ms") { _, v in formatMs(v.latency.p99Ms) },
        Column(header: "seq/s (b\(tb))") { _, v in String(format: "%.1f", v.throughput.sequencesPerSecond) },
        Column(header: "peak MB") { _, v in v.peakMemoryBytes.map { String(format: "%.0f", Double($0) / 1e6) } ?? dash },
        Column(header: "load ms") { _, v in formatMs(v.loadMs) },
        Column(header: "accuracy") { _, v in String(format: "%.4f", v.accuracy) },
        Column(header: "macro-F1") { _, v in String(format: "%.4f", v.macroF1) },
        Column(header: "% of teacher F1") { r, v in r.percentOfTeacherF1(v).map { String(format: "%.1f", $0) } ?? dash },
        Column(header: "agreement") { _, v in v.agreement.map { String(format: "%.4f", $0) } ?? dash },
        Column(header: "KL") { _, v in v.meanKL.map(formatKL) ?? dash },
        Column(header: "speed-up") { r, v in r.speedupVsTeacher(v).map { String(format: "%.1f×", $0) } ?? dash },
    ]
}

/// The numeric columns (right-aligned).
let rightAlignedColumns: Set<Int> = Set(2...15)

/// The trade-off table in Markdown (GitHub tables), variants on the front marked with ◆,
/// followed by a line saying what the columns measured.
public func markdownTable(_ r: TradeoffReport) -> String {
    let columns = tableColumns(r)
    let onFront = Set(paretoFront(r))
    func escape(_ s: String) -> String { s.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ") }
    var lines = ["| " + columns.map(\.header).joined(separator: " | ") + " |",
                 "|" + columns.indices.map { rightAlignedColumns.contains($0) ? "---:|" : "---|" }.joined()]
    for v in r.tableOrder {
        let cells = columns.enumerated().map { i, c in
            escape(c.cell(r, v)) + (i == 0 && onFront.contains(v.spec.name) ? " ◆" : "")
        }
        lines.append("| " + cells.joined(separator: " | ") + " |")
    }
    lines.append("")
    lines.append(tableLegend(r))
    return lines.joined(separator: "\n")
}

/// What the columns measured, in one paragraph.
func tableLegend(_ r: TradeoffReport) -> String {
    let tb = r.variants.first?.throughput.batch ?? 0
    var text = "◆ on the macro-F1 vs batch-1 latency Pareto front. Latency: forward passes of \(r.sequenceLength) tokens "
        + "(every position real), \(r.machine.threads) thread(s), variants taking turns; seq/s at batch \(tb). "
        + "Scores on \(r.dataset) (\(r.split), \(r.variants.first?.examples ?? 0) examples). "
        + "Peak MB: peak resident memory of a fresh process that loaded the model and ran one batch-\(tb) pass."
    if let t = r.teacher { text += " Agreement, KL (teacher ‖ variant, nats) and speed-up against \(t)." }
    return text
}

// MARK: - CSV

/// One CSV cell (RFC 4180): quoted when it holds a comma, a quote, CR or LF, quotes doubled.
public func csvCell(_ s: String) -> String {
    s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" })
        ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
}

/// The trade-off table as CSV: one header line, one line per variant in table order, full
/// precision, empty cells for what was not measured, CRLF line ends (RFC 4180).
public func csvTable(_ r: TradeoffReport) -> String {
    let header = ["variant", "kind", "parent", "note", "path", "parameters", "file_bytes", "load_ms", "peak_memory_bytes",
                  "b1_median_ms", "b1_p90_ms", "b1_p99_ms", "b1_seq_per_s", "throughput_batch", "tb_median_ms", "tb_p90_ms",
                  "tb_p99_ms", "tb_seq_per_s", "accuracy", "macro_f1", "percent_of_teacher_f1", "agreement", "mean_kl",
                  "speedup_vs_teacher", "pareto", "examples"]
    let onFront = Set(paretoFront(r))
    func number(_ x: Double?) -> String { x.map { "\($0)" } ?? "" }
    let rows = r.tableOrder.map { v -> [String] in
        [v.spec.name, v.spec.kind, v.spec.parent ?? "", v.spec.note ?? "", v.spec.path, "\(v.parameters)", "\(v.fileBytes)",
         number(v.loadMs), v.peakMemoryBytes.map(String.init) ?? "", number(v.latency.medianMs), number(v.latency.p90Ms),
         number(v.latency.p99Ms), number(v.latency.sequencesPerSecond), "\(v.throughput.batch)", number(v.throughput.medianMs),
         number(v.throughput.p90Ms), number(v.throughput.p99Ms), number(v.throughput.sequencesPerSecond), number(v.accuracy),
         number(v.macroF1), number(r.percentOfTeacherF1(v)), number(v.agreement), number(v.meanKL), number(r.speedupVsTeacher(v)),
         onFront.contains(v.spec.name) ? "true" : "false", "\(v.examples)"]
    }
    return ([header] + rows).map { $0.map(csvCell).joined(separator: ",") + "\r\n" }.joined()
}
