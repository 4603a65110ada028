// Thresholds (defaults, levels, the flag and file syntaxes, refusals of out-of-range
// values) and the drift report (overall level, exit code, the HTML page is self-contained).
import Foundation
import Monitoring
import XCTest

final class ThresholdTests: XCTestCase {
    func testDefaultsAndLevels() {
        let t = DriftThresholds()
        XCTAssertEqual(t[.lengthPSI], ThresholdPair(warn: 0.1, drift: 0.25))
        XCTAssertEqual(t[.embeddingMMDPValue], ThresholdPair(warn: 0.05, drift: 0.01))
        XCTAssertEqual(DriftStatistic.lengthPSI.level(0.099, t[.lengthPSI]), .ok)
        XCTAssertEqual(DriftStatistic.lengthPSI.level(0.1, t[.lengthPSI]), .warn)
        XCTAssertEqual(DriftStatistic.lengthPSI.level(0.25, t[.lengthPSI]), .drift)
        XCTAssertEqual(DriftStatistic.embeddingMMDPValue.level(0.5, t[.embeddingMMDPValue]), .ok)
        XCTAssertEqual(DriftStatistic.embeddingMMDPValue.level(0.03, t[.embeddingMMDPValue]), .warn)
        XCTAssertEqual(DriftStatistic.embeddingMMDPValue.level(0.002, t[.embeddingMMDPValue]), .drift)
        XCTAssertEqual(DriftLevel.allCases.map(\.exitCode), [0, 1, 2])
        // Every default passes the checks a user's value must pass.
        var copy = DriftThresholds()
        for s in DriftStatistic.allCases { XCTAssertNoThrow(try copy.set(s, s.defaultLevels, source: "default")) }
    }

    func testFlagSyntax() throws {
        var t = DriftThresholds()
        try t.apply(flag: "piece_js=0.03:0.08")
        XCTAssertEqual(t[.pieceJS], ThresholdPair(warn: 0.03, drift: 0.08))
        for bad in ["piece_js", "piece_js=0.03", "piece_js=a:b", "piece_js=0.03:0.08:1", "nope=0.1:0.2"] {
            XCTAssertThrowsError(try t.apply(flag: bad), bad) { XCTAssertTrue(String(describing: $0).contains("--threshold \(bad)")) }
        }
    }

    func testOutOfRangeRefused() {
        var t = DriftThresholds()
        let cases: [(DriftStatistic, Double, Double, String)] = [
            (.lengthPSI, 0.3, 0.2, "warn ≤ drift"), (.lengthPSI, 0, 0.2, "0 < warn"), (.lengthPSI, -0.1, 0.2, "0 < warn"),
            (.lengthPSI, .nan, 0.2, "finite"), (.labelPSI, 0.1, .infinity, "finite"),
            (.pieceJS, 0.5, 1.5, "≤ 1"), (.unknownRateIncrease, 0.2, 2, "≤ 1"),
            (.embeddingMMDPValue, 0.01, 0.05, "drift ≤ warn"), (.embeddingMMDPValue, 1, 0.5, "warn < 1"), (.embeddingMMDPValue, 0.05, 0, "0 < drift"),
        ]
        for (s, w, d, needle) in cases {
            XCTAssertThrowsError(try t.set(s, ThresholdPair(warn: w, drift: d), source: "src"), "\(s) \(w) \(d)") {
                let m = String(describing: $0)
                XCTAssertTrue(m.hasPrefix("src: \(s.rawValue)") && m.contains(needle), m)
            }
        }
        XCTAssertEqual(t, DriftThresholds(), "a refused value must leave the thresholds as they were")
    }

    func testFile() throws {
        var t = DriftThresholds()
        try t.apply(file: Data(#"{"label_psi": {"warn": 0.2, "drift": 0.4}, "embedding_mmd_p": {"warn": 0.1, "drift": 0.001}}"#.utf8), source: "t.json")
        XCTAssertEqual(t[.labelPSI], ThresholdPair(warn: 0.2, drift: 0.4))
        XCTAssertEqual(t[.embeddingMMDPValue], ThresholdPair(warn: 0.1, drift: 0.001))
        let bad: [(String, String)] = [
            ("[1]", "expected a JSON object"), ("{", "not valid JSON"), (#"{"x": {"warn": 1, "drift": 2}}"#, "unknown statistic 'x'"),
            (#"{"label_psi": 3}"#, "label_psi must be an object"), (#"{"label_psi": {"warn": 0.1}}"#, "needs numbers warn and drift"),
            (#"{"label_psi": {"warn": 0.1, "drift": 0.2, "alarm": 1}}"#, "label_psi.alarm"),
            (#"{"label_psi": {"warn": "0.1", "drift": 0.2}}"#, "needs numbers"),
            (#"{"label_psi": {"warn": 0.5, "drift": 0.2}}"#, "warn ≤ drift"),
        ]
        for (text, needle) in bad {
            XCTAssertThrowsError(try t.apply(file: Data(text.utf8), source: "t.json"), text) {
                let m = String(describing: $0)
                XCTAssertTrue(m.hasPrefix("t.json: ") && m.contains(needle), m)
            }
        }
    }
}

final class DriftReportTests: XCTestCase {
    func report(_ values: [(DriftStatistic, Double)]) -> DriftReport {
        let t = DriftThresholds()
        let summary = TokenSummary(lines: 3, pieces: 12, unknownRate: 0, meanLength: 4, truncatedShare: 0)
        return DriftReport(model: "m.h5", reference: "data/x", split: "train", input: "new <b>.txt", maxLength: 64,
                           referenceTokens: summary, inputTokens: summary, skippedLines: 1, referenceModelLines: 3, mmd: nil, fidelity: nil,
                           statistics: values.map { StatisticResult($0.0, value: $0.1, thresholds: t, detail: "d") }, notes: ["a note"],
                           histograms: [HistogramComparison(name: "length", title: "Token length", bins: ["≤ 3", "> 3"], reference: [2, 1], current: [0, 3])],
                           thresholds: t)
    }

    func testLevelIsTheWorstStatistic() {
        XCTAssertEqual(report([(.lengthPSI, 0.01), (.embeddingMMDPValue, 0.4)]).exitCode, 0)
        XCTAssertEqual(report([(.lengthPSI, 0.15), (.embeddingMMDPValue, 0.4)]).exitCode, 1)
        let drift = report([(.lengthPSI, 0.15), (.embeddingMMDPValue, 0.001)])
        XCTAssertEqual(drift.exitCode, 2)
        XCTAssertEqual(drift.firing(.drift), [.embeddingMMDPValue])
        XCTAssertEqual(drift.firing(.warn), [.lengthPSI])
        XCTAssertTrue(drift.text.contains("verdict: DRIFT — embedding_mmd_p; warn: length_psi (exit 2)"), drift.text)
        XCTAssertEqual(report([]).exitCode, 0)
    }

    func testHTMLIsSelfContainedAndEscaped() {
        let html = report([(.lengthPSI, 0.3)]).html
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"))
        XCTAssertTrue(html.contains("<svg"))
        XCTAssertTrue(html.contains("new &lt;b&gt;.txt"))
        XCTAssertFalse(html.contains("new <b>"))
        for external in ["http:", "https:", "<script", "<link", "src=", "url("] {
            XCTAssertFalse(html.contains(external), "the page refers to something outside it: \(external)")
        }
    }

    func testJSONRoundTrip() throws {
        let r = report([(.lengthPSI, 0.3)])
        let data = try JSONEncoder().encode(r)
        let back = try JSONDecoder().decode(DriftReport.self, from: data)
        XCTAssertEqual(back.statistics, r.statistics)
        XCTAssertEqual(back.level, .drift)
        XCTAssertEqual(back.thresholds, r.thresholds)
        let object = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        XCTAssertEqual(object["format"] as? String, "distillery-drift-report")
    }
}
