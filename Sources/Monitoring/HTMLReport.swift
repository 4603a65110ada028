// HTMLReport: a drift report as one self-contained page — the verdict, a table of every
// statistic with its thresholds, and each histogram as inline SVG bars (reference and new
// side by side). No scripts, fonts, stylesheets or images from anywhere else: the page
// opens offline and can be attached to an alert as it is.
//
// Left out on purpose: interactivity and plots of the embeddings themselves.
import Foundation
import Reporting

private let referenceColour = "#4c72b0", currentColour = "#dd8452"

/// One histogram as an SVG bar chart: per bin a reference bar and a new bar, proportions on
/// the y axis, bin labels under the bars (every k-th when there are many).
func svgHistogram(_ h: HistogramComparison) -> String {
    let width = 640.0, height = 220.0, left = 44.0, bottom = 46.0, top = 14.0
    let plotW = width - left - 10, plotH = height - bottom - top
    let n = max(1, h.bins.count)
    let peak = max(h.reference.max() ?? 0, h.current.max() ?? 0, 1e-9)
    let slot = plotW / Double(n), bar = max(1, slot * 0.4)
    var svg = "<svg width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"\(xmlEscape(h.title))\">"
    svg += "<line x1=\"\(left)\" y1=\"\(top + plotH)\" x2=\"\(width - 10)\" y2=\"\(top + plotH)\" stroke=\"#333\"/>"
    for k in 0...4 {
        let v = peak * Double(k) / 4, y = top + plotH - plotH * Double(k) / 4
        svg += "<line x1=\"\(left - 3)\" y1=\"\(f1(y))\" x2=\"\(left)\" y2=\"\(f1(y))\" stroke=\"#333\"/>"
        svg += "<text x=\"\(left - 5)\" y=\"\(f1(y + 3))\" font-size=\"9\" text-anchor=\"end\">\(String(format: "%.2f", v))</text>"
    }
    let labelEvery = max(1, Int((Double(n) / 16).rounded(.up)))
    for i in 0..<n {
        let x = left + slot * Double(i) + slot * 0.1
        for (side, values, colour) in [(0.0, h.reference, referenceColour), (1.0, h.current, currentColour)] {
            let v = i < values.count ? values[i] : 0
            let barH = plotH * v / peak
            svg += "<rect x=\"\(f1(x + side * bar))\" y=\"\(f1(top + plotH - barH))\" width=\"\(f1(bar))\" height=\"\(f1(barH))\" fill=\"\(colour)\"><title>\(xmlEscape(h.bins[i])): \(side == 0 ? "reference" : "new") \(String(format: "%.4f", v))</title></rect>"
        }
        if i % labelEvery == 0 {
            let lx = left + slot * (Double(i) + 0.5), ly = top + plotH + 12
            svg += "<text x=\"\(f1(lx))\" y=\"\(f1(ly))\" font-size=\"9\" text-anchor=\"end\" transform=\"rotate(-35 \(f1(lx)) \(f1(ly)))\">\(xmlEscape(String(h.bins[i].prefix(14))))</text>"
        }
    }
    svg += "<rect x=\"\(width - 150)\" y=\"2\" width=\"10\" height=\"10\" fill=\"\(referenceColour)\"/><text x=\"\(width - 136)\" y=\"11\" font-size=\"10\">reference</text>"
    svg += "<rect x=\"\(width - 80)\" y=\"2\" width=\"10\" height=\"10\" fill=\"\(currentColour)\"/><text x=\"\(width - 66)\" y=\"11\" font-size=\"10\">new</text>"
    return svg + "</svg>"
}

private func f1(_ x: Double) -> String { String(format: "%.1f", x) }

extension DriftReport {
    /// The report as a self-contained HTML page (inline CSS and SVG, no external URLs).
    public var html: String {
        let colour: [DriftLevel: String] = [.ok: "#2e7d32", .warn: "#b26a00", .drift: "#c62828"]
        var rows = ""
        for s in statistics {
            let bound = s.alarms == "below" ? "&lt;" : "≥"
            rows += "<tr><td>\(s.group)</td><td><code>\(s.statistic.rawValue)</code><br><small>\(xmlEscape(s.statistic.summary))</small></td>"
            rows += "<td class=\"n\">\(String(format: "%.4g", s.value))</td><td class=\"n\">\(bound) \(String(format: "%.4g", s.warn))</td>"
            rows += "<td class=\"n\">\(bound) \(String(format: "%.4g", s.drift))</td>"
            rows += "<td style=\"color:\(colour[s.level]!);font-weight:bold\">\(s.level.rawValue)</td><td><small>\(xmlEscape(s.detail))</small></td></tr>\n"
        }
        let charts = histograms.map { "<h3>\(xmlEscape($0.title))</h3>\n\(svgHistogram($0))" }.joined(separator: "\n")
        let notesHTML = notes.isEmpty ? "" : "<ul>" + notes.map { "<li>\(xmlEscape($0))</li>" }.joined() + "</ul>"
        let verdict = level == .ok ? "no drift" : level == .warn ? "warn" : "drift"
        return """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>Drift report: \(xmlEscape(input))</title>
        <style>body{font-family:sans-serif;max-width:980px;margin:1em auto;padding:0 1em;color:#222}
        table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}
        td.n{text-align:right;font-variant-numeric:tabular-nums}.verdict{font-size:1.4em;font-weight:bold}</style></head>
        <body>
        <h1>Drift report</h1>
        <p class="verdict" style="color:\(colour[level]!)">Verdict: \(verdict) (exit code \(exitCode))</p>
        <p>New inputs <code>\(xmlEscape(input))</code> (\(inputTokens.lines) texts, \(skippedLines) blank skipped) against
        <code>\(xmlEscape(reference))</code> split <code>\(xmlEscape(split))</code> (\(referenceTokens.lines) texts, \(referenceModelLines) run
        through the model), model <code>\(xmlEscape(model))</code>, maximum length \(maxLength).</p>
        <table><tr><th>group</th><th>statistic</th><th>value</th><th>warn</th><th>drift</th><th>level</th><th>detail</th></tr>
        \(rows)</table>
        \(notesHTML)
        <h2>Histograms</h2>
        \(charts)
        <p><small>\(DriftReport.formatName) v\(DriftReport.formatVersion). PSI raises empty bins to \(psiEpsilon); Jensen–Shannon in bits.</small></p>
        </body></html>

        """
    }
}
