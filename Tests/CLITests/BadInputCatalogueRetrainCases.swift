// The bad-input catalogue's retraining and masked-LM table (issue 16): appending a CSV
// with other columns or labels, to a folder that is not a prepared dataset or over the
// base itself; replaying on a dataset that was never appended to; pseudo-perplexity of a
// model without a masked-LM head. Each must fail with one `kd: error:` line and write
// nothing (the base folder included).
import Foundation
import TestSupport
import XCTest

extension BadInputCatalogueTests {
    func retrainCases() throws -> [BadInputCase] {
        var cases: [BadInputCase] = []
        let base = temp.appendingPathComponent("base").path
        let r = runKD(["data", "prepare", "--csv", Fixtures.url("train/toy-sentiment.csv").path, "--text-column", "text",
                       "--label-column", "label", "--name", "toy", "--out", base])
        XCTAssertEqual(r.status, 0, r.stderr)
        func append(_ name: String, csv: String, base folder: String = base, extra: [String] = [], _ needles: [String]) {
            cases.append(BadInputCase(name: name, args: ["data", "prepare", "--append", csv, "--base", folder, "--out", outPath("v2")] + extra,
                                      contains: needles))
        }
        let otherColumns = try write("other-columns.csv", "review,sentiment\nthe film was fun,positive\n")
        append("append: CSV without a text column", csv: otherColumns, [otherColumns, "text"])
        append("append: --text-column names no column", csv: otherColumns, extra: ["--text-column", "body", "--label-column", "sentiment"],
               [otherColumns, "body"])
        let newLabel = try write("new-label.csv", "text,label\nthe film was fun,positive\nthe film was ok,neutral\n")
        append("append: a label the dataset lacks", csv: newLabel, [newLabel, "label 'neutral'", "negative, positive"])
        let onlyOld = try write("only-old.csv", "text,label\nthe movie is terrible,negative\nThe plot is very terrible,negative\n")
        append("append: nothing new", csv: onlyOld, [onlyOld, "none of the 2 rows is new", "duplicates of earlier versions 2"])
        let good = try write("good.csv", "text,label\nthe story was great fun,positive\nthe end was bad and boring,negative\n")
        let empty = temp.appendingPathComponent("not-prepared").path
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        append("append: base is not a prepared dataset", csv: good, base: empty, [empty, "manifest.json", "not a prepared dataset"])
        append("append: base does not exist", csv: good, base: temp.appendingPathComponent("nowhere").path, ["nowhere", "no such dataset folder"])
        cases.append(BadInputCase(name: "append: --out is the base", args: ["data", "prepare", "--append", good, "--base", base, "--out", base],
                                  contains: ["--out", "is the --base folder"]))
        cases.append(BadInputCase(name: "append: without --base", args: ["data", "prepare", "--append", good, "--out", outPath("v2")],
                                  contains: ["--append", "needs --base"]))
        cases.append(BadInputCase(name: "append: --base without --append", args: ["data", "prepare", "--base", base, "--out", outPath("v2")],
                                  contains: ["--base", "needs --append"]))
        append("append: with --csv", csv: good, extra: ["--csv", good], ["--csv", "does not go with --append"])
        append("append: with --labels", csv: good, extra: ["--labels", "a,b"], ["--labels", "does not go with --append"])

        // distill --replay-fraction
        let (teacher, data, labels) = (try LabelTeachers.path(LabelTeachers.first), try ToyData.path(), try cachePath())
        let spec = try studentSpec("replay")
        func distill(_ name: String, _ extra: [String], _ needles: [String]) {
            cases.append(BadInputCase(name: name, args: ["distill", "--teacher", teacher, "--student", spec, "--labels", labels, "--data", data,
                                                         "--out", outPath("s.h5"), "--threads", "1"] + extra, contains: needles))
        }
        distill("replay on a dataset without versions", ["--replay-fraction", "0.3"], [data, "--replay-fraction needs a dataset with versions"])
        distill("replay fraction above 1", ["--replay-fraction", "1.5"], ["--replay-fraction 1.5"])
        distill("replay fraction not a number", ["--replay-fraction", "nan"], ["--replay-fraction"])
        distill("replay with --train-limit", ["--replay-fraction", "0.5", "--train-limit", "10"], ["--replay-fraction", "--train-limit"])

        // eval --pseudo-perplexity
        let classifier = try SharedModel.tinyPath()
        cases.append(BadInputCase(name: "pseudo-perplexity without a masked-LM head",
                                  args: ["eval", "--model", classifier, "--data", data, "--pseudo-perplexity"],
                                  contains: [classifier, "no masked-LM head", "BertForMaskedLM"]))
        cases.append(BadInputCase(name: "pseudo-perplexity with --teacher",
                                  args: ["eval", "--model", classifier, "--data", data, "--pseudo-perplexity", "--teacher", classifier],
                                  contains: ["--teacher", "--pseudo-perplexity"]))
        let mlm = temp.appendingPathComponent("mlm.h5").path
        XCTAssertEqual(runKD(["import", Fixtures.url("tiny-mlm").path, "--out", mlm]).status, 0)
        cases.append(BadInputCase(name: "pseudo-perplexity on a folder that is not prepared",
                                  args: ["eval", "--model", mlm, "--data", empty, "--pseudo-perplexity"],
                                  contains: [empty, "not a prepared dataset"]))
        cases.append(BadInputCase(name: "pseudo-perplexity --max-length too small",
                                  args: ["eval", "--model", mlm, "--data", data, "--pseudo-perplexity", "--max-length", "2"],
                                  contains: ["--max-length"]))
        return cases
    }

    func testRetrainAndPseudoPerplexity() throws { check(try retrainCases()) }
}
