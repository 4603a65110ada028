// kd monitor end to end on the tiny model and the toy dataset: each verdict's exit code
// (0 no drift, 1 warn, 2 drift) from inputs built to land there, the three input formats,
// the JSON report, the HTML page, thresholds that change a verdict, a teacher, and a
// reference prepared for the model's own vocabulary.
import Foundation
import TestSupport
import XCTest

final class MonitorTests: CLITestCase {
    /// The toy training texts, one per line (the reference itself: nothing can have drifted).
    func trainTexts() throws -> [String] {
        let data = try String(contentsOfFile: try ToyData.path() + "/train.jsonl", encoding: .utf8)
        return data.split(separator: "\n").map { parseJSONLine($0)["text"] as! String }
    }

    func monitor(_ input: String, _ extra: [String] = [], reference: String? = nil) throws -> KDResult {
        runKD(["monitor", "--model", try SharedModel.tinyPath(), "--reference", try reference ?? ToyData.path(), "--input", input,
               "--threads", "1", "--permutations", "200"] + extra)
    }

    /// The levels of the statistics in a `--json` report, by name.
    func levels(_ r: KDResult) throws -> [String: String] {
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
        let statistics = try XCTUnwrap(object["statistics"] as? [[String: Any]])
        return Dictionary(uniqueKeysWithValues: statistics.map { ($0["statistic"] as! String, $0["level"] as! String) })
    }

    func testNoDriftExitsZero() throws {
        let input = try write("same.txt", try trainTexts().joined(separator: "\n") + "\n\n")
        let report = outPath("drift.html")
        let r = try monitor(input, ["--json", "--report", report])
        XCTAssertEqual(r.status, 0, r.stderr)
        let l = try levels(r)
        XCTAssertEqual(Set(l.values), ["ok"], "\(l)")
        XCTAssertEqual(Set(l.keys), ["length_psi", "unk_rate_increase", "unseen_piece_rate", "piece_js", "piece_psi", "embedding_mmd_p",
                                     "label_psi", "confidence_psi"])
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(object["skipped_lines"] as? Int, 1)
        XCTAssertEqual(object["format"] as? String, "distillery-drift-report")
        let html = try String(contentsOfFile: report, encoding: .utf8)
        XCTAssertTrue(html.contains("<svg") && html.contains("Verdict: no drift"))
        XCTAssertFalse(html.contains("http"), "the page must not refer to anything outside it")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: outDir.path), ["drift.html"], "no temporary file left")
    }

    func testWarnExitsOne() throws {
        // Five [UNK] pieces among ~430: an [UNK] share of ~0.012, past the 0.01 warn level,
        // while two odd lines among 98 move nothing else.
        let texts = try trainTexts() + ["中文 😀 the movie", "the plot ☃ ☃ was good"]
        let input = try write("warn.txt", texts.joined(separator: "\n"))
        let r = try monitor(input, ["--json"])
        XCTAssertEqual(r.status, 1, r.stdout + r.stderr)
        let l = try levels(r)
        XCTAssertEqual(l.filter { $0.value != "ok" }, ["unk_rate_increase": "warn"])
        // A looser threshold makes the same input pass; the text summary says why.
        let loose = try monitor(input, ["--threshold", "unk_rate_increase=0.02:0.05"])
        XCTAssertEqual(loose.status, 0, loose.stdout + loose.stderr)
        XCTAssertTrue(loose.stdout.contains("verdict: no drift (exit 0)"), loose.stdout)
        let strict = try monitor(input)
        XCTAssertTrue(strict.stdout.contains("verdict: WARN — unk_rate_increase (exit 1)"), strict.stdout)
    }

    func testDriftExitsTwoInEveryFormat() throws {
        let lines = (0..<30).map { "中文测试 \($0) 😀 ☃ 12345678901234567890 xyzzy \($0 * 7)" }
        let jsonl = try write("drift.jsonl", lines.map { "{\"id\": 1, \"text\": \"\($0)\"}" }.joined(separator: "\n") + "\n")
        let csv = try write("drift.csv", "id,text\n" + lines.enumerated().map { "\($0),\"\($1)\"" }.joined(separator: "\n") + "\n")
        let txt = try write("drift.txt", lines.joined(separator: "\n"))
        var reports: [String] = []   // name=value of every statistic
        for input in [txt, jsonl, csv] {
            let r = try monitor(input, ["--json", "--teacher", try SharedModel.tinyPath()])
            XCTAssertEqual(r.status, 2, r.stderr)
            let l = try levels(r)
            for name in ["length_psi", "unk_rate_increase", "unseen_piece_rate", "piece_js", "piece_psi", "embedding_mmd_p"] {
                XCTAssertEqual(l[name], "drift", "\(input): \(name) in \(l)")
            }
            XCTAssertEqual(l["teacher_agreement_drop"], "ok", "the model is its own teacher: agreement 1 on both sides")
            let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
            let values = (object["statistics"] as! [[String: Any]]).map { "\($0["statistic"]!)=\($0["value"]!)" }
            reports.append(values.joined(separator: " "))
        }
        XCTAssertEqual(Set(reports).count, 1, "the same texts in three formats give the same statistics")
    }

    func testReferencePreparedForTheModel() throws {
        let folder = temp.appendingPathComponent("toy-for-tiny").path
        runOK(["data", "prepare", "--csv", ToyData.csv.path, "--text-column", "text", "--label-column", "label", "--name", "toy",
               "--out", folder, "--tokenizer", try SharedModel.tinyPath()])
        let manifest = try String(contentsOfFile: folder + "/manifest.json", encoding: .utf8)
        XCTAssertTrue(manifest.contains("\"vocabularySize\" : 95"), manifest)
        let input = try write("same.txt", try trainTexts().joined(separator: "\n"))
        XCTAssertEqual(try monitor(input, reference: folder).status, 0)
        // Without --tokenizer the manifest has no record and keeps its old bytes.
        XCTAssertFalse(try String(contentsOfFile: try ToyData.path() + "/manifest.json", encoding: .utf8).contains("tokenizer"))
    }
}
