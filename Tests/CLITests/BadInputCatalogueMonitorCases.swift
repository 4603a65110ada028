// The bad-input catalogue's `kd monitor` table: inputs with no usable text, lines that are
// not what their format says, an unknown format, a reference prepared for another
// vocabulary, thresholds out of range (flag and file), and a report path that is an input.
// Besides the catalogue's checks, every case must exit 3 (bad input) or 4 (usage): 1 and 2
// are monitor's warn and drift verdicts, so an error must never read as one.
import Foundation
import TestSupport
import XCTest

extension BadInputCatalogueTests {
    /// `kd monitor` on the tiny model and the toy dataset.
    func monitorCases() throws -> [BadInputCase] {
        let tiny = try SharedModel.tinyPath(), toy = try ToyData.path()
        let good = try write("new.txt", "the movie was good\nthe plot is boring\n")
        func monitor(_ name: String, input: String? = nil, reference: String? = nil, extra: [String] = [], _ needles: [String]) -> BadInputCase {
            BadInputCase(name: name, args: ["monitor", "--model", tiny, "--reference", reference ?? toy, "--input", input ?? good,
                                            "--threads", "1", "--permutations", "20"] + extra, contains: needles)
        }
        var cases: [BadInputCase] = []
        let blank = try write("blank.txt", "\n   \n\t\n")
        cases.append(monitor("only blank lines", input: blank, [blank, "no usable lines", "3 blank"]))
        let empty = try write("empty.txt", "")
        cases.append(monitor("empty file", input: empty, [empty, "no usable lines"]))
        let emptyJSONL = try write("empty-texts.jsonl", "{\"text\": \"\"}\n{\"text\": \"  \"}\n")
        cases.append(monitor("jsonl of empty texts", input: emptyJSONL, [emptyJSONL, "no usable lines", "2 blank"]))
        let notObject = try write("bad.jsonl", "{\"text\": \"fine\"}\n[1, 2]\n")
        cases.append(monitor("jsonl line not an object", input: notObject, [notObject + ":2", "not a JSON object"]))
        let noField = try write("nofield.jsonl", "{\"body\": \"fine\"}\n")
        cases.append(monitor("jsonl without the text field", input: noField, [noField + ":1", "no 'text' field", "--text-field"]))
        let numberField = try write("number.jsonl", "{\"text\": 42}\n")
        cases.append(monitor("jsonl text not a string", input: numberField, [numberField + ":1", "'text'", "not a string"]))
        let csv = try write("new.csv", "id,body\n1,hello\n")
        cases.append(monitor("csv without the text column", input: csv, [csv, "'text'", "--text-field"]))
        let latin = try write("latin1.txt", Data("caf".utf8) + Data([0xE9, 0x0A]))
        cases.append(monitor("invalid UTF-8", input: latin, [latin + ":1", "UTF-8"]))
        let xml = try write("new.xml", "<texts/>")
        cases.append(monitor("unknown input format", input: xml, [xml, "unknown input format '.xml'", "--format"]))
        let noExtension = try write("newtexts", "hello\n")
        cases.append(monitor("no extension", input: noExtension, [noExtension, "unknown input format", "--format"]))
        cases.append(monitor("--format unknown", extra: ["--format", "parquet"], ["--format", "parquet", "txt, jsonl, csv"]))
        cases.append(monitor("input missing", input: temp.appendingPathComponent("nope.txt").path, ["nope.txt", "no such file"]))
        cases.append(monitor("input is a directory", input: outDir.path, [outDir.path, "directory"]))

        // The reference: missing, and prepared for another vocabulary.
        cases.append(monitor("reference missing", reference: temp.appendingPathComponent("nodata").path, ["nodata", "kd data prepare"]))
        let manifestURL = URL(fileURLWithPath: toy).appendingPathComponent("manifest.json")
        var manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: manifestURL)) as! [String: Any]
        manifest["tokenizer"] = ["vocabularySize": 30522, "vocabularySHA256": String(repeating: "ab", count: 32)]
        let other = try dataVariant("other-tokenizer", "manifest.json", JSONSerialization.data(withJSONObject: manifest, options: [.sortedKeys]))
        cases.append(monitor("reference prepared for another vocabulary", reference: other,
                             [other + "/manifest.json", "tokenizer", "30522-token", "95-token", "--tokenizer"]))
        cases.append(monitor("--split unknown", extra: ["--split", "validation"], ["--split", "validation"]))

        // Thresholds.
        cases.append(monitor("threshold warn above drift", extra: ["--threshold", "length_psi=0.3:0.2"], ["--threshold", "length_psi", "warn ≤ drift"]))
        cases.append(monitor("threshold negative", extra: ["--threshold=length_psi=-1:0.2"], ["length_psi", "0 < warn"]))
        cases.append(monitor("threshold rate above 1", extra: ["--threshold", "unk_rate_increase=0.5:1.5"], ["unk_rate_increase", "≤ 1"]))
        cases.append(monitor("threshold p-value order", extra: ["--threshold", "embedding_mmd_p=0.01:0.05"], ["embedding_mmd_p", "drift ≤ warn"]))
        cases.append(monitor("threshold not a number", extra: ["--threshold", "label_psi=low:high"], ["label_psi", "NAME=WARN:DRIFT"]))
        cases.append(monitor("threshold unknown name", extra: ["--threshold", "mood=0.1:0.2"], ["'mood'", "length_psi"]))
        let badFile = try write("thresholds.json", #"{"confidence_psi": {"warn": 0.2, "drift": -3}}"#)
        cases.append(monitor("thresholds file out of range", extra: ["--thresholds", badFile], [badFile, "confidence_psi"]))
        let unknownKey = try write("thresholds-key.json", #"{"piece_js": {"warn": 0.02, "drift": 0.05, "alarm": 1}}"#)
        cases.append(monitor("thresholds file extra key", extra: ["--thresholds", unknownKey], [unknownKey, "piece_js.alarm"]))
        cases.append(monitor("thresholds file missing", extra: ["--thresholds", temp.appendingPathComponent("t.json").path], ["t.json", "no such file"]))

        // Outputs that are inputs, and other flags.
        cases.append(monitor("--report is the input", extra: ["--report", good], ["--report", good, "is an input"]))
        cases.append(monitor("--report inside the reference", extra: ["--report", toy + "/train.jsonl"], ["--report", "train.jsonl", "is an input"]))
        cases.append(monitor("--report is a directory", extra: ["--report", outDir.path], [outDir.path, "directory"]))
        cases.append(monitor("--mmd-sample 1", extra: ["--mmd-sample", "1"], ["--mmd-sample"]))
        cases.append(monitor("--permutations 0", extra: ["--permutations", "0"], ["--permutations"]))
        return cases
    }

    func testMonitor() throws {
        let cases = try monitorCases()
        check(cases)
        for c in cases {
            let r = runKD(c.args, stdin: c.stdin)
            XCTAssertTrue(r.status == 3 || r.status == 4, "[\(c.name)] exit \(r.status): kd monitor errors exit 3 or 4, never a verdict (0/1/2)")
        }
    }
}
