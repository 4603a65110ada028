// Plots: the report's two scatter plots as hand-written SVG — macro-F1 against batch-1
// latency and against file size (log-x when the values span more than a factor of 4),
// every point a labelled circle, the Pareto front a polyline through its points.
//
// Axes: a range that is one value (one variant, identical latencies) is widened around it,
// so no axis divides by zero and every coordinate written is a finite number; ticks are
// 1-2-5 steps (linear) or 1-2-5 per decade (log). Labels: each is placed at the first of a
// list of spots around its point (right, left, above, below, then further out) whose box
// overlaps no label or point placed before and stays inside the plot; when none is free
// the least-overlapping spot is taken, and a label away from its point gets a thin leader
// line. Text widths are estimated (0.6 em per character), which is enough for a short
// name. Left out on purpose: legends beyond the front's, interactivity, any script.
import Foundation

/// One point of a scatter plot.
struct PlotPoint {
    let label: String
    let x: Double
    let y: Double
    let onFront: Bool
    /// The teacher's point is drawn as a square.
    let isTeacher: Bool
}

/// An axis mapping data values to pixels.
struct Axis {
    let low: Double, high: Double
    let log: Bool
    let pixelLow: Double, pixelHigh: Double

    /// An axis over `values`: log when asked and every value is > 0, widened when the values
    /// are (nearly) one and padded by 6 % of the span (a factor on a log axis).
    init(values: [Double], log wantLog: Bool, pixels: (Double, Double)) {
        let finite = values.filter(\.isFinite)
        var lo = finite.min() ?? 0, hi = finite.max() ?? 1
        log = wantLog && lo > 0
        if log {
            var (a, b) = (Foundation.log10(lo), Foundation.log10(hi))
            if b - a < 1e-9 { (a, b) = (a - 0.5, b + 0.5) }
            let pad = (b - a) * 0.06
            (lo, hi) = (a - pad, b + pad)
        } else {
            if hi - lo < 1e-12 * max(1, abs(hi)) {
                let w = lo == 0 ? 1 : abs(lo) * 0.1
                (lo, hi) = (lo - w, hi + w)
            }
            let pad = (hi - lo) * 0.06
            (lo, hi) = (lo - pad, hi + pad)
        }
        (low, high) = (lo, hi)
        (pixelLow, pixelHigh) = pixels
    }

    /// The pixel coordinate of a data value.
    func pixel(_ v: Double) -> Double {
        let t = ((log ? Foundation.log10(max(v, 1e-300)) : v) - low) / (high - low)
        return pixelLow + t * (pixelHigh - pixelLow)
    }

    /// Ticks inside the axis with their labels: 1-2-5 steps, about `count` of them, every
    /// label of a linear axis with the decimals its step needs (0.66, 0.68, 0.70).
    func ticks(count: Int = 6) -> [(value: Double, text: String)] {
        if log {
            var out: [(Double, String)] = []
            let span = high - low
            let mantissas: [Double] = span > 3 ? [1] : span > 1.2 ? [1, 2, 5] : [1, 1.5, 2, 3, 5, 7]
            for e in Int(floor(low))...Int(ceil(high)) {
                for m in mantissas {
                    let v = m * pow(10, Double(e))
                    if Foundation.log10(v) >= low && Foundation.log10(v) <= high { out.append((v, tickText(v))) }
                }
            }
            return out
        }
        let raw = (high - low) / Double(count)
        let exponent = floor(Foundation.log10(raw))
        let magnitude = pow(10, exponent)
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw * (1 - 1e-9) } ?? 10 * magnitude
        let decimals = max(0, -Int(Foundation.log10(step).rounded(.down)))
        var out: [(Double, String)] = []
        var k = (low / step).rounded(.up)
        while k * step <= high + step * 1e-9 {
            let v = abs(k * step) < step * 1e-9 ? 0 : k * step
            out.append((v, String(format: "%.\(decimals)f", v)))
            k += 1
        }
        return out
    }
}

/// A tick label: as few digits as tell the ticks apart.
func tickText(_ v: Double) -> String {
    let a = abs(v)
    if a == 0 { return "0" }
    if a >= 100 { return String(format: "%.0f", v) }
    if a >= 1 { return v == v.rounded() ? String(format: "%.0f", v) : String(format: "%.1f", v) }
    var digits = 1
    while digits < 6 && abs(v - (v * pow(10, Double(digits))).rounded() / pow(10, Double(digits))) > a * 1e-6 { digits += 1 }
    return String(format: "%.\(digits)f", v)
}

/// Text safe inside XML/HTML elements and attribute values (also Monitoring's HTML report).
public func xmlEscape(_ s: String) -> String {
    var out = ""
    for c in s.unicodeScalars {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        case _ where c.value < 0x20 && c != "\n" && c != "\t": out += " "
        default: out.unicodeScalars.append(c)
        }
    }
    return out
}

/// A pixel coordinate as SVG text (one decimal).
func px(_ v: Double) -> String { String(format: "%.1f", v.isFinite ? v : 0) }

/// A rectangle in pixels.
struct Box {
    var x0: Double, y0: Double, x1: Double, y1: Double
    func overlap(_ o: Box) -> Double {
        max(0, min(x1, o.x1) - max(x0, o.x0)) * max(0, min(y1, o.y1) - max(y0, o.y0))
    }
}

/// Plot size and margins (pixels).
let plotWidth = 680.0, plotHeight = 440.0
let marginLeft = 64.0, marginRight = 24.0, marginTop = 56.0, marginBottom = 52.0
/// Label font size and estimated character width (px).
let labelFontSize = 11.0, labelCharWidth = 6.6

/// A scatter plot of `points` as a standalone SVG document (`inline`: without the XML
/// namespace, for an HTML page).
func scatterSVG(title: String, points: [PlotPoint], xLabel: String, yLabel: String, logX: Bool, inline: Bool = false) -> String {
    let xs = points.map(\.x), ys = points.map(\.y)
    let logWanted = logX && (xs.min() ?? 0) > 0 && (xs.max() ?? 0) / max(xs.min() ?? 1, 1e-300) > 4
    let xAxis = Axis(values: xs, log: logWanted, pixels: (marginLeft, plotWidth - marginRight))
    let yAxis = Axis(values: ys, log: false, pixels: (plotHeight - marginBottom, marginTop))
    var s = "<svg \(inline ? "" : "xmlns=\"http://www.w3.org/2000/svg\" ")width=\"\(Int(plotWidth))\" height=\"\(Int(plotHeight))\" "
        + "viewBox=\"0 0 \(Int(plotWidth)) \(Int(plotHeight))\" font-family=\"sans-serif\" class=\"plot\" role=\"img\">\n"
    s += "<title>\(xmlEscape(title))</title>\n"
    s += "<rect x=\"0\" y=\"0\" width=\"\(Int(plotWidth))\" height=\"\(Int(plotHeight))\" fill=\"#ffffff\"/>\n"
    s += "<text x=\"\(px(plotWidth / 2))\" y=\"22\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">\(xmlEscape(title))</text>\n"
    // Grid and ticks.
    let (left, right, top, bottom) = (marginLeft, plotWidth - marginRight, marginTop, plotHeight - marginBottom)
    for (t, text) in xAxis.ticks() {
        let x = xAxis.pixel(t)
        s += "<line x1=\"\(px(x))\" y1=\"\(px(top))\" x2=\"\(px(x))\" y2=\"\(px(bottom))\" stroke=\"#e4e4e4\"/>\n"
        s += "<text x=\"\(px(x))\" y=\"\(px(bottom + 16))\" text-anchor=\"middle\" font-size=\"11\" fill=\"#444\">\(text)</text>\n"
    }
    for (t, text) in yAxis.ticks() {
        let y = yAxis.pixel(t)
        s += "<line x1=\"\(px(left))\" y1=\"\(px(y))\" x2=\"\(px(right))\" y2=\"\(px(y))\" stroke=\"#e4e4e4\"/>\n"
        s += "<text x=\"\(px(left - 6))\" y=\"\(px(y + 4))\" text-anchor=\"end\" font-size=\"11\" fill=\"#444\">\(text)</text>\n"
    }
    s += "<rect x=\"\(px(left))\" y=\"\(px(top))\" width=\"\(px(right - left))\" height=\"\(px(bottom - top))\" fill=\"none\" stroke=\"#888\"/>\n"
    s += "<text x=\"\(px((left + right) / 2))\" y=\"\(px(plotHeight - 12))\" text-anchor=\"middle\" font-size=\"12\">"
        + "\(xmlEscape(xLabel))\(xAxis.log ? " (log scale)" : "")</text>\n"
    s += "<text x=\"16\" y=\"\(px((top + bottom) / 2))\" text-anchor=\"middle\" font-size=\"12\" "
        + "transform=\"rotate(-90 16 \(px((top + bottom) / 2)))\">\(xmlEscape(yLabel))</text>\n"
    // The front, then the points, then the labels (on top).
    let front = points.filter(\.onFront).sorted { $0.x < $1.x }
    if front.count >= 1 {
        let coords = front.map { "\(px(xAxis.pixel($0.x))),\(px(yAxis.pixel($0.y)))" }.joined(separator: " ")
        s += "<polyline class=\"front\" points=\"\(coords)\" fill=\"none\" stroke=\"#d9480f\" stroke-width=\"2\" stroke-dasharray=\"6 3\"/>\n"
    }
    var placed: [Box] = points.map { p in
        let (x, y) = (xAxis.pixel(p.x), yAxis.pixel(p.y))
        return Box(x0: x - 5, y0: y - 5, x1: x + 5, y1: y + 5)
    }
    for p in points {
        let (x, y) = (xAxis.pixel(p.x), yAxis.pixel(p.y))
        let fill = p.onFront ? "#d9480f" : "#1c7ed6"
        if p.isTeacher {
            s += "<rect class=\"point\" x=\"\(px(x - 5))\" y=\"\(px(y - 5))\" width=\"10\" height=\"10\" fill=\"\(fill)\" stroke=\"#222\"/>\n"
        } else {
            s += "<circle class=\"point\" cx=\"\(px(x))\" cy=\"\(px(y))\" r=\"5\" fill=\"\(fill)\" stroke=\"#222\"/>\n"
        }
    }
    for p in points.sorted(by: { $0.x < $1.x }) {
        let (x, y) = (xAxis.pixel(p.x), yAxis.pixel(p.y))
        let w = Double(p.label.count) * labelCharWidth, h = labelFontSize + 2
        // Candidate spots: (text x, baseline y, anchor-left?) around the point, then further out.
        var spots: [(Double, Double)] = []   // top-left corners of the label box
        for d in [0.0, 14, 28, 42] {
            spots += [(x + 8, y - h / 2 - d), (x + 8, y - h / 2 + d), (x - 8 - w, y - h / 2 - d), (x - 8 - w, y - h / 2 + d),
                      (x - w / 2, y - 8 - h - d), (x - w / 2, y + 8 + d)]
        }
        func cost(_ spot: (Double, Double)) -> Double {
            let b = Box(x0: spot.0, y0: spot.1, x1: spot.0 + w, y1: spot.1 + h)
            let outside = (b.x0 < left ? left - b.x0 : 0) + (b.x1 > right ? b.x1 - right : 0)
                + (b.y0 < top ? top - b.y0 : 0) + (b.y1 > bottom ? b.y1 - bottom : 0)
            return placed.reduce(0) { $0 + $1.overlap(b) } + outside * h * 4
        }
        let spot = spots.first { cost($0) == 0 } ?? spots.min { cost($0) < cost($1) }!
        placed.append(Box(x0: spot.0, y0: spot.1, x1: spot.0 + w, y1: spot.1 + h))
        let (cx, cy) = (spot.0 + w / 2, spot.1 + h / 2)
        if abs(cy - y) > 10 || abs(cx - x) > w / 2 + 12 {
            let ex = min(max(x, spot.0), spot.0 + w), ey = min(max(y, spot.1), spot.1 + h)
            s += "<line x1=\"\(px(x))\" y1=\"\(px(y))\" x2=\"\(px(ex))\" y2=\"\(px(ey))\" stroke=\"#999\" stroke-width=\"0.8\"/>\n"
        }
        s += "<text class=\"label\" x=\"\(px(spot.0))\" y=\"\(px(spot.1 + h - 3))\" font-size=\"\(Int(labelFontSize))\" fill=\"#222\">"
            + "\(xmlEscape(p.label))</text>\n"
    }
    // Legend in the top margin, right-aligned, clear of the data.
    let ly = marginTop - 10
    s += "<line x1=\"\(px(right - 250))\" y1=\"\(px(ly))\" x2=\"\(px(right - 224))\" y2=\"\(px(ly))\" stroke=\"#d9480f\" "
        + "stroke-width=\"2\" stroke-dasharray=\"6 3\"/>\n"
    s += "<text x=\"\(px(right - 219))\" y=\"\(px(ly + 4))\" font-size=\"11\" fill=\"#444\">Pareto front</text>\n"
    s += "<circle cx=\"\(px(right - 140))\" cy=\"\(px(ly))\" r=\"4\" fill=\"#1c7ed6\" stroke=\"#222\"/>\n"
    s += "<text x=\"\(px(right - 132))\" y=\"\(px(ly + 4))\" font-size=\"11\" fill=\"#444\">variant</text>\n"
    s += "<rect x=\"\(px(right - 82))\" y=\"\(px(ly - 4))\" width=\"8\" height=\"8\" fill=\"#fff\" stroke=\"#222\"/>\n"
    s += "<text x=\"\(px(right - 70))\" y=\"\(px(ly + 4))\" font-size=\"11\" fill=\"#444\">teacher</text>\n"
    return s + "</svg>\n"
}

/// Macro-F1 against batch-1 median latency, the front of `paretoFront` marked.
public func latencyPlotSVG(_ r: TradeoffReport, inline: Bool = false) -> String {
    let front = Set(paretoFront(r))
    let points = r.variants.map {
        PlotPoint(label: $0.spec.name, x: $0.latency.medianMs, y: $0.macroF1, onFront: front.contains($0.spec.name), isTeacher: $0.spec.name == r.teacher)
    }
    return scatterSVG(title: "Macro-F1 vs batch-1 latency (\(r.dataset), \(r.split))", points: points,
                      xLabel: "batch-1 median latency, ms (\(r.sequenceLength) tokens, \(r.machine.threads) thread(s))",
                      yLabel: "macro-F1", logX: true, inline: inline)
}

/// Macro-F1 against file size, the size front marked.
public func sizePlotSVG(_ r: TradeoffReport, inline: Bool = false) -> String {
    let front = Set(sizeFront(r))
    let points = r.variants.map {
        PlotPoint(label: $0.spec.name, x: $0.fileMB, y: $0.macroF1, onFront: front.contains($0.spec.name), isTeacher: $0.spec.name == r.teacher)
    }
    return scatterSVG(title: "Macro-F1 vs file size (\(r.dataset), \(r.split))", points: points, xLabel: "file size, MB",
                      yLabel: "macro-F1", logX: true, inline: inline)
}
