// The retraining loop and pseudo-perplexity end to end through `kd` (issue 16):
// `kd data prepare --append` keeps every old row where it was (byte-identical prefixes),
// splits and deduplicates the new rows, and chains versions; `kd distill --replay-fraction`
// trains on the newest rows plus a share of the old; `kd import` of a BertForMaskedLM keeps
// its head, and `kd eval --pseudo-perplexity` reproduces the PPPL of the Python reference
// (Tests/Fixtures/tiny-mlm/golden.h5, scripts/make_mlm_golden.py).
import Foundation
import TestSupport
import WeightIO
import XCTest

/// PLL sums of ≤ 12 pieces in float32 encoder + head vs float64 reference over the same HF
/// states: per piece ≤ ~1e-5 (the head's parity), so 1e-3 per split sum; PPPL relative 1e-4.
let pseudoLogLikelihoodTolerance = 1e-3

final class RetrainTests: CLITestCase {
    /// The toy set cut in two: the first `split` rows (header kept) and the rest.
    func toyHalves(_ split: Int = 60, extraNew: [String] = []) throws -> (old: String, new: String) {
        let lines = try String(contentsOf: Fixtures.url("train/toy-sentiment.csv"), encoding: .utf8)
            .split(separator: "\n").map(String.init)
        let old = try write("old.csv", ([lines[0]] + lines[1...split]).joined(separator: "\n") + "\n")
        let new = try write("new.csv", ([lines[0]] + lines[(split + 1)...] + extraNew).joined(separator: "\n") + "\n")
        return (old, new)
    }

    func prepare(_ csv: String, out: String) {
        runOK(["data", "prepare", "--csv", csv, "--text-column", "text", "--label-column", "label", "--name", "toy", "--out", out])
    }

    func manifest(_ folder: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/manifest.json"))) as? [String: Any])
    }

    func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    func testAppendKeepsOldSplitsAndSplitsOnlyNewRows() throws {
        // One duplicate of an old row (different case: a normalized duplicate), one old text with the other label.
        let (oldCSV, newCSV) = try toyHalves(extraNew: ["THE MOVIE IS TERRIBLE,negative", "the plot is very terrible,positive"])
        let base = temp.appendingPathComponent("toy").path
        prepare(oldCSV, out: base)
        let before = try ["train", "dev", "test", "manifest"].map { try bytes("\(base)/\($0 == "manifest" ? "manifest.json" : $0 + ".jsonl")") }
        let r = runOK(["data", "prepare", "--append", newCSV, "--base", base])
        let v2 = base + "-v2"
        XCTAssertTrue(r.stdout.contains("version 2:"), r.stdout)
        // The base folder is untouched.
        let after = try ["train", "dev", "test", "manifest"].map { try bytes("\(base)/\($0 == "manifest" ? "manifest.json" : $0 + ".jsonl")") }
        XCTAssertEqual(before, after, "the base folder changed")
        let m = try manifest(v2)
        let versions = try XCTUnwrap(m["versions"] as? [[String: Any]])
        XCTAssertEqual(versions.map { $0["version"] as? Int }, [1, 2])
        let added = try XCTUnwrap(versions[1]["totals"] as? [String: Int])
        XCTAssertEqual(versions[1]["duplicatesOfEarlier"] as? Int, 1)
        XCTAssertEqual(versions[1]["conflictsWithEarlier"] as? Int, 1)
        XCTAssertEqual(versions[1]["rowsKept"] as? Int, 60)
        XCTAssertEqual(added.values.reduce(0, +), 60)
        XCTAssertEqual(added["test"], 6, "10% of 30 per class")
        XCTAssertEqual(added["dev"], 6)
        for (i, split) in ["train", "dev", "test"].enumerated() {
            let file = try bytes("\(v2)/\(split).jsonl")
            XCTAssertEqual(file.prefix(before[i].count), before[i], "\(split): the old rows are not a byte-identical prefix")
            let newLines = String(decoding: file.dropFirst(before[i].count), as: UTF8.self).split(separator: "\n")
            XCTAssertEqual(newLines.count, added[split])
            XCTAssertTrue(newLines.allSatisfy { $0.contains("\"id\":\"toy@v2:") }, "new rows carry version ids")
        }
        let totals = try XCTUnwrap(m["totals"] as? [String: Int])
        XCTAssertEqual(totals.values.reduce(0, +), 120)
        // Deterministic: the same append into another folder gives the same bytes.
        let again = temp.appendingPathComponent("again").path
        runOK(["data", "prepare", "--append", newCSV, "--base", base, "--out", again])
        for name in ["train.jsonl", "dev.jsonl", "test.jsonl", "manifest.json"] {
            XCTAssertEqual(try bytes("\(v2)/\(name)"), try bytes("\(again)/\(name)"), name)
        }
        // A third version chains: v2 is its prefix, the default folder is -v3.
        let third = try write("third.csv", "text,label\nthe story was great fun,positive\nthe end was terrible and boring,negative\n")
        runOK(["data", "prepare", "--append", third, "--base", v2])
        let v3 = base + "-v3"
        XCTAssertEqual(try bytes("\(v3)/train.jsonl").prefix(try bytes("\(v2)/train.jsonl").count), try bytes("\(v2)/train.jsonl"))
        XCTAssertEqual(try XCTUnwrap(try manifest(v3)["versions"] as? [[String: Any]]).count, 3)
    }

    func testReplayFractionTrainsOnNewRowsPlusAShareOfTheOld() throws {
        let (oldCSV, newCSV) = try toyHalves()
        let base = temp.appendingPathComponent("toy").path
        prepare(oldCSV, out: base)
        runOK(["data", "prepare", "--append", newCSV, "--base", base])
        let data = base + "-v2"
        let teacher = try LabelTeachers.path(LabelTeachers.first)
        let labels = temp.appendingPathComponent("labels.h5").path
        runOK(["label", "--teacher", teacher, "--data", data, "--out", labels, "--max-length", "16", "--threads", "1"])
        let spec = try write("s.json", """
            {"format": "distillery-student", "version": 1, "name": "s", "architecture": {"layers": 1, "hidden_size": 16, "heads": 2, "intermediate_size": 24},
             "init": {"from": "teacher-slice", "pick": "last"}, "layer_map": {"kind": "uniform"}, "losses": {"soft_ce": 1},
             "temperature": 2.0, "schedule": {"kind": "one-stage", "epochs": 1}, "training": {"learning_rate": 1e-3, "batch_size": 8}}
            """)
        let oldTrain = try String(contentsOfFile: base + "/train.jsonl", encoding: .utf8).split(separator: "\n").count
        let newTrain = try String(contentsOfFile: data + "/train.jsonl", encoding: .utf8).split(separator: "\n").count - oldTrain
        func plan(_ fraction: String) throws -> String {
            runOK(["distill", "--teacher", teacher, "--student", spec, "--labels", labels, "--data", data, "--out", outPath("s.h5"),
                   "--threads", "1", "--plan-only", "--replay-fraction", fraction]).stdout
        }
        XCTAssertTrue(try plan("0").contains("replay: \(newTrain) examples of version 2 + 0 of \(oldTrain) from earlier versions"))
        XCTAssertTrue(try plan("1").contains("replay: \(newTrain) examples of version 2 + \(oldTrain) of \(oldTrain)"))
        let half = try plan("0.5")
        let replayed = try XCTUnwrap(half.range(of: #"\+ \d+ of"#, options: .regularExpression)).lowerBound
        let count = Int(half[half.index(replayed, offsetBy: 2)...].prefix { $0.isNumber })!
        XCTAssertGreaterThan(count, oldTrain / 4, half)
        XCTAssertLessThan(count, oldTrain * 3 / 4, half)
        // And it trains: a student from --init of itself, on new rows only.
        runOK(["distill", "--teacher", teacher, "--student", spec, "--labels", labels, "--data", data, "--out", outPath("s.h5"),
               "--threads", "1", "--replay-fraction", "0.3"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: outPath("s.h5")))
        runOK(["distill", "--teacher", teacher, "--student", spec, "--labels", labels, "--data", data, "--out", outPath("s2.h5"),
               "--threads", "1", "--replay-fraction", "0", "--init", outPath("s.h5")])
        runOK(["eval", "--model", outPath("s2.h5"), "--data", base, "--split", "test"])
    }

    func testMaskedLMImportAndPseudoPerplexityMatchTheReference() throws {
        let model = outPath("mlm.h5")
        let imported = runOK(["import", Fixtures.url("tiny-mlm").path, "--out", model]).stdout
        XCTAssertTrue(imported.contains("masked-lm(tied decoder)"), imported)
        let info = runOK(["info", model]).stdout
        XCTAssertTrue(info.contains("masked-LM head: cls.predictions.* (BertForMaskedLM), decoder tied to the word embeddings"), info)
        let golden = try HDF5File.open(Fixtures.url("tiny-mlm/golden.h5"))
        let sentences = try golden.readStrings("pppl/sentences")
        let pll = try golden.readTensor("pppl/pll").data.map(Double.init)
        let offsets = try golden.readInt64s("pppl/offsets").values.map(Int.init)
        let byText = Dictionary(uniqueKeysWithValues: sentences.indices.map { (sentences[$0], (pll[$0], offsets[$0 + 1] - offsets[$0] - 2)) })
        // Six sentences, three per label: one per label in each split.
        let csv = try write("mlm.csv", "text,label\n" + sentences.enumerated().map { "\"\($1)\",\($0 % 2 == 0 ? "a" : "b")" }.joined(separator: "\n") + "\n")
        let data = temp.appendingPathComponent("mlm-data").path
        runOK(["data", "prepare", "--csv", csv, "--text-column", "text", "--label-column", "label", "--name", "mlm", "--out", data])
        var seen = 0
        for split in ["train", "dev", "test"] {
            let texts = try String(contentsOfFile: "\(data)/\(split).jsonl", encoding: .utf8).split(separator: "\n").map {
                try XCTUnwrap(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String])["text"]!
            }
            let expected = try texts.map { try XCTUnwrap(byText[$0], "\($0) is not a golden sentence") }
            let (expectedPLL, pieces) = (expected.map(\.0).reduce(0, +), expected.map(\.1).reduce(0, +))
            let r = runOK(["eval", "--model", model, "--data", data, "--split", split, "--pseudo-perplexity", "--json", "--batch-size", "5"])
            let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            XCTAssertEqual(report["scoredPieces"] as? Int, pieces)
            let got = try XCTUnwrap(report["pseudoLogLikelihood"] as? Double)
            print("pseudo-log-likelihood \(split): kd \(got), reference \(expectedPLL)")
            XCTAssertEqual(got, expectedPLL, accuracy: pseudoLogLikelihoodTolerance, split)
            let pppl = try XCTUnwrap(report["pseudoPerplexity"] as? Double)
            XCTAssertEqual(pppl, exp(-expectedPLL / Double(pieces)), accuracy: pseudoLogLikelihoodTolerance * pppl, split)
            seen += texts.count
        }
        XCTAssertEqual(seen, sentences.count)
    }
}
