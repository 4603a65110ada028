// Rendering a trade-off report: the plots on degenerate inputs (one variant, identical
// latencies and scores, values spanning decades) keep every coordinate a finite number
// inside the picture, draw a circle per point and the front line; labels of crowded points
// are nudged apart; names are escaped; the six files round-trip through readTradeoffReport;
// and a report file of another format or version, or with a bad value, is refused naming
// the file and the key.
import Foundation
import Reporting
import TestSupport
import XCTest

/// Occurrences of `needle` in `text`.
func count(_ needle: String, in text: String) -> Int { text.components(separatedBy: needle).count - 1 }

/// Every number in the SVG's coordinate attributes.
func coordinates(_ svg: String) -> [Double] {
    let pattern = try! NSRegularExpression(pattern: "\\b(?:x|y|x1|y1|x2|y2|cx|cy|width|height)=\"([^\"]*)\"|points=\"([^\"]*)\"")
    var out: [Double] = []
    for m in pattern.matches(in: svg, range: NSRange(svg.startIndex..., in: svg)) {
        for g in 1...2 {
            guard let r = Range(m.range(at: g), in: svg) else { continue }
            for part in svg[r].split(whereSeparator: { $0 == "," || $0 == " " }) {
                out.append(Double(part) ?? .nan)
            }
        }
    }
    return out
}

/// The (x, y) of every label's text element, in order.
func labelPositions(_ svg: String) -> [(String, Double, Double)] {
    let pattern = try! NSRegularExpression(pattern: "<text class=\"label\" x=\"([^\"]+)\" y=\"([^\"]+)\"[^>]*>([^<]*)</text>")
    return pattern.matches(in: svg, range: NSRange(svg.startIndex..., in: svg)).map { m in
        let g = { (i: Int) in String(svg[Range(m.range(at: i), in: svg)!]) }
        return (g(3), Double(g(1))!, Double(g(2))!)
    }
}

final class PlotTests: XCTestCase {
    /// Checks one plot: finite coordinates inside the picture, `points` circles or squares, a front.
    func checkPlot(_ svg: String, points: Int, file: StaticString = #filePath, line: UInt = #line) {
        let numbers = coordinates(svg)
        XCTAssertFalse(numbers.isEmpty, file: file, line: line)
        XCTAssertTrue(numbers.allSatisfy(\.isFinite), "non-finite coordinate in \(svg)", file: file, line: line)
        XCTAssertTrue(numbers.allSatisfy { $0 >= -1 && $0 <= 700 }, "a coordinate outside the picture: \(numbers.filter { $0 < -1 || $0 > 700 })",
                      file: file, line: line)
        XCTAssertFalse(svg.lowercased().contains("nan") || svg.contains("inf"), file: file, line: line)
        XCTAssertEqual(count("class=\"point\"", in: svg), points, file: file, line: line)
        XCTAssertEqual(count("<polyline class=\"front\"", in: svg), 1, file: file, line: line)
        XCTAssertGreaterThanOrEqual(count("<line ", in: svg), 4, "grid lines", file: file, line: line)
    }

    func testOneVariant() {
        let r = report([variant("only", f1: 0.8, ms: 3, mb: 10)])
        checkPlot(latencyPlotSVG(r), points: 1)
        checkPlot(sizePlotSVG(r), points: 1)
    }

    func testIdenticalLatenciesAndScores() {
        let r = report([variant("a", kind: "teacher", f1: 0.9, ms: 5, mb: 10), variant("b", f1: 0.9, ms: 5, mb: 10),
                        variant("c", f1: 0.9, ms: 5, mb: 10)])
        checkPlot(latencyPlotSVG(r), points: 3)
        let labels = labelPositions(latencyPlotSVG(r))
        XCTAssertEqual(labels.map(\.0).sorted(), ["a", "b", "c"])
        XCTAssertEqual(Set(labels.map { "\($0.1),\($0.2)" }).count, 3, "three labels of one point are placed apart: \(labels)")
    }

    func testZeroScoresAndZeroLatency() {
        // A zero latency cannot go on a log axis: the axis falls back to linear, still finite.
        let r = report([variant("a", f1: 0, ms: 0, mb: 0), variant("b", f1: 0, ms: 1e-9, mb: 1e-9)])
        checkPlot(latencyPlotSVG(r), points: 2)
        checkPlot(sizePlotSVG(r), points: 2)
    }

    func testDemoShapedPlotHasEveryPointLabelledAndFewOverlaps() {
        let svg = latencyPlotSVG(sample)
        checkPlot(svg, points: sample.variants.count)
        XCTAssertTrue(svg.contains("(log scale)"), "40 ms over 2.5 ms spans more than a factor of 4")
        let labels = labelPositions(svg)
        XCTAssertEqual(labels.map(\.0).sorted(), sample.variants.map(\.spec.name).sorted())
        // Label boxes (estimated as the renderer does) do not overlap.
        let boxes = labels.map { (x: $0.1, y: $0.2 - 10, w: Double($0.0.count) * 6.6, h: 13.0) }
        for i in boxes.indices { for j in boxes.indices where j > i {
            let (a, b) = (boxes[i], boxes[j])
            let overlaps = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h
            XCTAssertFalse(overlaps, "labels \(labels[i].0) and \(labels[j].0) overlap")
        } }
    }

    func testNamesAreEscaped() {
        let r = report([variant("<b>&\"x\"", kind: "teacher", f1: 0.9, ms: 5, mb: 10), variant("y", f1: 0.8, ms: 2, mb: 5)])
        for text in [latencyPlotSVG(r), htmlPage(r)] {
            XCTAssertFalse(text.contains("<b>&"), text)
            XCTAssertTrue(text.contains("&lt;b&gt;&amp;&quot;x&quot;"))
        }
        XCTAssertTrue(markdownTable(r).contains("<b>&\"x\""), "Markdown keeps the name (a renderer escapes it)")
    }
}

final class ReportFileTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("reporting-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func testWriteAndReadBack() throws {
        let out = dir.appendingPathComponent("report").path
        let paths = try writeTradeoffReport(sample, directory: out)
        XCTAssertEqual(paths.map { URL(fileURLWithPath: $0).lastPathComponent },
                       ["report.md", "report.json", "report.csv", "f1-vs-latency.svg", "f1-vs-size.svg", "report.html"])
        XCTAssertEqual(try readTradeoffReport(out + "/report.json"), sample)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out).filter { $0.hasPrefix(".") }, [], "no partial file left")
        let md = try String(contentsOfFile: out + "/report.md", encoding: .utf8)
        XCTAssertTrue(md.contains("| teacher ◆ | teacher |"), md)
        XCTAssertTrue(md.contains("Test CPU @ 2.60GHz"))
        XCTAssertTrue(md.contains("recipe hash: abc123"))
        let html = try String(contentsOfFile: out + "/report.html", encoding: .utf8)
        XCTAssertTrue(html.contains("<tr class=\"teacher front\""), "teacher row first and marked")
        XCTAssertTrue(html.contains("<td class=\"n\">16.0×</td>"), "l1's speed-up over the teacher: 40 ms / 2.5 ms")
    }

    /// `mutate` applied to a valid report's JSON object must make reading fail with `needles`.
    func assertRefused(_ needles: [String], file: StaticString = #filePath, line: UInt = #line,
                       _ mutate: (inout [String: Any]) -> Void) throws {
        var object = try JSONSerialization.jsonObject(with: try tradeoffReportJSON(sample)) as! [String: Any]
        mutate(&object)
        let path = dir.appendingPathComponent("bad.json").path
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try readTradeoffReport(path), file: file, line: line) { error in
            let text = String(describing: error)
            XCTAssertTrue(text.hasPrefix(path + ": "), text, file: file, line: line)
            for n in needles { XCTAssertTrue(text.contains(n), "\(text) lacks \(n)", file: file, line: line) }
        }
    }

    func testBadReportsAreRefusedNamingTheKey() throws {
        try assertRefused(["format", "distillery-label-cache"]) { $0["format"] = "distillery-label-cache" }
        try assertRefused(["version", "7"]) { $0["version"] = 7 }
        try assertRefused(["version", "string"]) { $0["version"] = "1" }
        try assertRefused(["created", "missing"]) { $0["created"] = nil }
        try assertRefused(["machine.cpu_model", "missing"]) { o in
            var m = o["machine"] as! [String: Any]
            m["cpu_model"] = nil
            o["machine"] = m
        }
        try assertRefused(["variants[2].agreement", "1.2"]) { o in
            var v = o["variants"] as! [[String: Any]]
            v[2]["agreement"] = 1.2
            o["variants"] = v
        }
        try assertRefused(["variants[1].latency.median_ms", "-1"]) { o in
            var v = o["variants"] as! [[String: Any]]
            var l = v[1]["latency"] as! [String: Any]
            l["median_ms"] = -1
            v[1]["latency"] = l
            o["variants"] = v
        }
        try assertRefused(["teacher", "ghost"]) { $0["teacher"] = "ghost" }
    }

    func testWriteRefusesAFileAsDirectoryAndLeavesNothing() throws {
        let file = dir.appendingPathComponent("taken").path
        FileManager.default.createFile(atPath: file, contents: Data("x".utf8))
        XCTAssertThrowsError(try writeTradeoffReport(sample, directory: file)) { XCTAssertTrue("\($0)".contains("is a file"), "\($0)") }
        XCTAssertThrowsError(try writeTradeoffReport(sample, directory: dir.appendingPathComponent("a/b").path)) {
            XCTAssertTrue("\($0)".contains("does not exist"), "\($0)")
        }
        var bad = sample
        bad.variants[0].macroF1 = .nan
        XCTAssertThrowsError(try writeTradeoffReport(bad, directory: dir.appendingPathComponent("nan").path)) {
            XCTAssertTrue("\($0)".contains("macro_f1"), "\($0)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(), ["taken"])
    }
}
