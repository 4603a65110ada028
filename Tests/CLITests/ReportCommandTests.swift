// `kd bench variants`, `kd report` and `kd pick` end to end on the tiny fixture: two tiny
// classifiers and an int8 copy measured in one run (every figure present and plausible,
// peak memory from the child kd process), the six report files written and re-rendered
// identically from the saved JSON, pick's verdicts and exit codes, and the page checked as
// a person sees it — headless Chromium renders report.html to a PNG and
// benchmarks/check_report_png.py finds the plots, the front and the table, and fails on a
// page whose plots or table were removed (skipped with a message when chromium is absent).
import Foundation
import TestSupport
import XCTest

/// The tiny bench run once per test process: teacher (LabelTeachers.first), "b"
/// (LabelTeachers.second) and "q" (the teacher quantized to int8).
enum TinyBench {
    struct Run {
        let json: String
        let reportDir: String
        let stdout: String
        let stderr: String
    }

    static let run: Result<Run, SharedModel.ImportFailure> = {
        guard case .success(let teacher) = LabelTeachers.first, case .success(let second) = LabelTeachers.second,
              case .success(let data) = ToyData.folder else {
            return .failure(SharedModel.ImportFailure(message: "tiny classifiers or toy data missing"))
        }
        let dir = SharedModel.directory
        let q = dir.appendingPathComponent("bench-q.h5").path
        let qr = runKD(["quantize", "--model", teacher, "--scheme", "int8-dynamic", "--out", q, "--threads", "1"])
        guard qr.status == 0 else { return .failure(SharedModel.ImportFailure(message: qr.stderr)) }
        let json = dir.appendingPathComponent("bench.json").path, reportDir = dir.appendingPathComponent("bench-report").path
        let r = runKD(["bench", "variants", "--model", "teacher=\(teacher)", "--model", "b=\(second)", "--model", "q=\(q)",
                       "--teacher", "teacher", "--data", data, "--out", json, "--report-dir", reportDir, "--seconds", "0.02",
                       "--rounds", "2", "--throughput-batch", "4", "--max-length", "16", "--threads", "1"])
        return r.status == 0 && !r.signaled ? .success(Run(json: json, reportDir: reportDir, stdout: r.stdout, stderr: r.stderr))
            : .failure(SharedModel.ImportFailure(message: r.stderr))
    }()

    static func get(file: StaticString = #filePath, line: UInt = #line) throws -> Run {
        switch run {
        case .success(let r): return r
        case .failure(let f):
            XCTFail("kd bench variants on the tiny models failed: \(f.message)", file: file, line: line)
            throw f
        }
    }
}

/// Occurrences of `needle` in `text`.
func count(_ needle: String, in text: String) -> Int { text.components(separatedBy: needle).count - 1 }

final class ReportCommandTests: CLITestCase {
    func testBenchVariantsMeasuresEveryVariant() throws {
        let run = try TinyBench.get()
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run.json))) as! [String: Any]
        XCTAssertEqual(report["format"] as? String, "distillery-tradeoff-report")
        XCTAssertEqual(report["version"] as? Int, 1)
        XCTAssertEqual(report["teacher"] as? String, "teacher")
        XCTAssertEqual(report["sequence_length"] as? Int, 16)
        let machine = report["machine"] as! [String: Any]
        XCTAssertFalse((machine["cpu_model"] as! String).isEmpty)
        XCTAssertEqual(machine["threads"] as? Int, 1)
        XCTAssertTrue((machine["kd_version"] as! String).hasPrefix("kd "))
        let variants = report["variants"] as! [[String: Any]]
        XCTAssertEqual(variants.map { ($0["spec"] as! [String: Any])["name"] as! String }, ["teacher", "b", "q"])
        XCTAssertEqual(variants.map { ($0["spec"] as! [String: Any])["kind"] as! String }, ["teacher", "model", "quantized"])
        for v in variants {
            let spec = v["spec"] as! [String: Any], name = spec["name"] as! String
            let size = try FileManager.default.attributesOfItem(atPath: spec["path"] as! String)[.size] as! Int
            XCTAssertEqual(v["file_bytes"] as? Int, size, name)
            XCTAssertGreaterThan(v["parameters"] as! Int, 20_000, name)
            XCTAssertGreaterThan(v["load_ms"] as! Double, 0, name)
            // A fresh kd process holds at least the runtime and the model: well over 1 MB, under 1 GB for a tiny model.
            let peak = try XCTUnwrap(v["peak_memory_bytes"] as? Int, "\(name): peak memory measured by the child kd")
            XCTAssertTrue((1_000_000..<1_000_000_000).contains(peak), "\(name): \(peak)")
            let b1 = v["latency"] as! [String: Any], tb = v["throughput"] as! [String: Any]
            XCTAssertEqual(b1["batch"] as? Int, 1)
            XCTAssertEqual(tb["batch"] as? Int, 4)
            let median = b1["median_ms"] as! Double, p90 = b1["p90_ms"] as! Double, p99 = b1["p99_ms"] as! Double
            XCTAssertTrue(median > 0 && median <= p90 && p90 <= p99, "\(name): \(median) \(p90) \(p99)")
            XCTAssertEqual(tb["sequences_per_second"] as! Double, 4 / (tb["median_ms"] as! Double / 1000), accuracy: 1e-6)
            XCTAssertTrue((0...1).contains(v["macro_f1"] as! Double))
            XCTAssertEqual(v["examples"] as? Int, 12, "the toy set's test split")
            if name == "teacher" {
                XCTAssertNil(v["agreement"], "no agreement of the teacher with itself")
            } else {
                XCTAssertTrue((0...1).contains(v["agreement"] as! Double), name)
                XCTAssertGreaterThanOrEqual(v["mean_kl"] as! Double, 0, name)
            }
        }
        // The table on stdout: a header and one row per variant, the teacher first.
        let rows = run.stdout.split(separator: "\n").filter { $0.hasPrefix("| ") }
        XCTAssertEqual(rows.count, 4, run.stdout)
        XCTAssertTrue(rows[1].hasPrefix("| teacher"), run.stdout)
        XCTAssertTrue(run.stderr.contains("latency: batch 1 and 4"), run.stderr)
    }

    func testReportFilesAndRerenderFromTheSavedJSON() throws {
        let run = try TinyBench.get()
        let names = ["report.md", "report.json", "report.csv", "f1-vs-latency.svg", "f1-vs-size.svg", "report.html"]
        let again = outPath("again")
        let r = runOK(["report", "--bench", run.json, "--out", again])
        XCTAssertTrue(r.stdout.contains("| variant | kind | params"), r.stdout)
        for name in names {
            let first = try Data(contentsOf: URL(fileURLWithPath: run.reportDir).appendingPathComponent(name))
            let second = try Data(contentsOf: URL(fileURLWithPath: again).appendingPathComponent(name))
            XCTAssertEqual(first, second, "\(name) rendered twice from one report differs")
        }
        let html = try String(contentsOfFile: again + "/report.html", encoding: .utf8)
        XCTAssertFalse(html.contains("http://") || html.contains("https://") || html.contains("<script") || html.contains("<link"),
                       "the page must be self-contained")
        XCTAssertEqual(count("<svg ", in: html), 2)
        XCTAssertGreaterThanOrEqual(count("<circle class=\"point\"", in: html), 4, "b and q in each plot (the teacher is a square)")
        XCTAssertEqual(count("<polyline class=\"front\"", in: html), 2)
        XCTAssertEqual(count("<tr", in: html), 4, "a header and three variant rows")
        XCTAssertFalse(html.contains("nan") || html.contains("inf\""), "no non-finite coordinate")
        let csv = try String(contentsOfFile: again + "/report.csv", encoding: .utf8)
        XCTAssertEqual(csv.components(separatedBy: "\r\n").filter { !$0.isEmpty }.count, 4)
        let svg = try String(contentsOfFile: again + "/f1-vs-latency.svg", encoding: .utf8)
        XCTAssertTrue(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""), "a standalone SVG names its namespace")
    }

    func testPickNamesAVariantOrTheUnmetLimit() throws {
        let run = try TinyBench.get()
        let ok = runOK(["pick", "--report", run.json, "--max-drop", "100"])
        XCTAssertTrue(ok.stdout.contains("the smallest of 3 variant(s)"), ok.stdout)
        XCTAssertTrue(ok.stdout.hasPrefix("q:"), "the int8 copy is the smallest file: \(ok.stdout)")
        let none = runKD(["pick", "--report", run.json, "--max-latency-ms", "0.000001"])
        XCTAssertEqual(none.status, 3, none.stderr)
        XCTAssertTrue(none.stdout.contains("no variant meets --max-latency-ms"), none.stdout)
        XCTAssertTrue(none.stdout.contains("closest: "), none.stdout)
        let json = runKD(["pick", "--report", run.reportDir + "/report.json", "--max-mb", "0.01", "--json"])
        XCTAssertEqual(json.status, 3)
        let result = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(result["unmet"] as? [String], ["--max-mb 0.01"])
        XCTAssertNotNil(result["closest"] as? String)
    }

    func testPageAsAPersonSeesIt() throws {
        let run = try TinyBench.get()
        guard ["/usr/bin/chromium", "/usr/bin/chromium-browser"].contains(where: FileManager.default.isExecutableFile(atPath:)) else {
            throw XCTSkip("chromium is not installed (apt-get install -y chromium): the rendered page is not checked")
        }
        let script = Fixtures.root.appendingPathComponent("benchmarks/render_report.sh").path
        func render(_ dir: String) throws -> (status: Int32, output: String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/bash")
            p.arguments = [script, dir, dir + "/page.png", "--teacher", "--off-front"]
            let pipe = Pipe()
            (p.standardOutput, p.standardError) = (pipe, pipe)
            try p.run()
            let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            return (p.terminationStatus, text)
        }
        let good = outPath("page")
        runOK(["report", "--bench", run.json, "--out", good])
        let r = try render(good)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("ok"), r.output)

        // The same page with its plots, or its table, taken out must fail the check.
        let html = try String(contentsOfFile: good + "/report.html", encoding: .utf8)
        let noPlots = html.replacingOccurrences(of: "<svg [\\s\\S]*?</svg>", with: "", options: .regularExpression)
        let noTable = html.replacingOccurrences(of: "<table[\\s\\S]*?</table>", with: "", options: .regularExpression)
        for (name, page, reason) in [("no-plots", noPlots, "plot grid"), ("no-table", noTable, "teacher row")] {
            XCTAssertNotEqual(page, html)
            let dir = outPath(name)
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
            try Data(page.utf8).write(to: URL(fileURLWithPath: dir + "/report.html"))
            let bad = try render(dir)
            XCTAssertEqual(bad.status, 1, "\(name): \(bad.output)")
            XCTAssertTrue(bad.output.contains(reason), "\(name): \(bad.output)")
        }
    }
}
