// kd as a newcomer meets it, end to end on the tiny fixture: stdin (`--input -` or no
// --input) and blank lines for every text command with output aligned to input, one flag
// vocabulary (old spellings as hidden aliases that warn, and conflict with the new ones),
// `--threads auto`, exit codes (0 ok, 1 bad input or failed run, 2 usage), `--version`,
// help with examples, and a predict that names its classes (or asks for --labels); and what
// a trained model carries and leaves beside itself: the maximum length, labels, classifier
// pooling and head start stored in the file (shown by `kd info`, read by eval / predict /
// embed / tokenize / label; a differing flag wins and says so), NAME.metrics.jsonl with
// one row per step and per dev evaluation, the checkpoint removed after success unless
// --keep-checkpoint, a model with a head refused without --replace-head, the defaults
// (probe head, the teacher's pooling), and --json on finetune, label and data prepare.
import Foundation
import TestSupport
import XCTest

/// Parses a whole stdout as one JSON object, failing the test when it is not one.
func jsonObject(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
    try XCTUnwrap(try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], text, file: file, line: line)
}

extension CLITestCase {
    /// Runs kd expecting exactly `status`, one `kd: error:` message containing every needle,
    /// nothing on stdout and nothing in `outDir`.
    @discardableResult
    func runFails(_ args: [String], status: Int32, stdin: Data? = nil, contains needles: [String],
                  file: StaticString = #filePath, line: UInt = #line) -> KDResult {
        let r = runFails(args, stdin: stdin, contains: needles, file: file, line: line)
        XCTAssertEqual(r.status, status, "kd \(args.joined(separator: " ")): \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.hasPrefix("kd: error: ") || r.stderr.contains("\nkd: error: "), r.stderr, file: file, line: line)
        XCTAssertEqual(r.stdout, "", "partial output on stdout", file: file, line: line)
        return r
    }
}

final class StdinTests: CLITestCase {
    /// Three texts, the middle one blank.
    let piped = Data("The movie was great!\n\nbad\n".utf8)

    func testPredictReadsAPipeWithOrWithoutDash() throws {
        let model = try SharedModel.tinyPath()
        let implicit = runOK(["predict", "--model", model], stdin: piped)
        let dash = runOK(["predict", "--model", model, "--input", "-"], stdin: piped)
        XCTAssertEqual(implicit.stdout, dash.stdout)
        let rows = outputLines(dash.stdout).map { parseJSONLine($0) }
        XCTAssertEqual(rows.map { $0["text"] as? String }, ["The movie was great!", "", "bad"], "one line out per line in, blank included")
        XCTAssertTrue(rows.allSatisfy { $0["label"] is String && $0["score"] is NSNumber })
    }

    func testEmbedAndTokenizeReadStdinAlignedWithInput() throws {
        let model = try SharedModel.tinyPath()
        let embedded = runOK(["embed", "--model", model, "--input", "-"], stdin: piped)
        XCTAssertEqual(outputLines(embedded.stdout).map { parseJSONLine($0)["text"] as? String }, ["The movie was great!", "", "bad"])
        let ids = runOK(["tokenize", "--model", model, "--input", "-"], stdin: piped)
        XCTAssertEqual(ids.stdout, "2 52 58 54 60 43 3\n2 3\n2 57 3\n")
    }

    func testBenchTokenizerReadsStdin() throws {
        let r = runOK(["bench", "tokenizer", "--model", try SharedModel.tinyPath(), "--input", "-", "--json"], stdin: piped)
        XCTAssertEqual(try jsonObject(r.stdout)["lines"] as? Int, 3)
    }

    func testNothingOnStdinIsAnError() throws {
        let model = try SharedModel.tinyPath()
        for command in ["predict", "embed", "tokenize"] {
            runFails([command, "--model", model, "--input", "-"], status: 1, stdin: Data(), contains: ["<stdin>: empty", "--input FILE"])
        }
        runFails(["predict", "--model", model], status: 1, stdin: Data(), contains: ["<stdin>: empty"])
    }
}

final class FlagVocabularyTests: CLITestCase {
    func testOldOutputSpellingStillWorksAndSaysSo() throws {
        let out = outPath("e.jsonl")
        let r = runOK(["embed", "--model", try SharedModel.tinyPath(), "--input", CLIFixtures.sentences.path, "--output", out])
        XCTAssertTrue(r.stderr.contains("kd: --output is now --out"), r.stderr)
        XCTAssertEqual(outputLines(try String(contentsOfFile: out, encoding: .utf8)).count, 6)
    }

    func testOldAndNewSpellingsTogetherAreAUsageError() throws {
        let model = try SharedModel.tinyPath()
        runFails(["embed", "--model", model, "--input", CLIFixtures.sentences.path, "--out", outPath("a.jsonl"), "--output", outPath("b.jsonl")],
                 status: 2, contains: ["--output is the old spelling of --out", "give only --out"])
        runFails(["bench", "latency", "--model", model, "--batch", "1", "--batch-size", "1", "--iters", "1"],
                 status: 2, contains: ["--batch is the old spelling of --batch-size"])
        runFails(["finetune", "--model", model, "--data", try ToyData.path(), "--out", outPath("m.h5"), "--batch", "8", "--batch-size", "8",
                  "--replace-head"], status: 2, contains: ["--batch is the old spelling of --batch-size"])
        assertOutDirEmpty("conflicting spellings")
    }

    func testThreadsTakeANumberOrAuto() throws {
        let model = try SharedModel.tinyPath()
        let auto = runOK(["embed", "--model", model, "--input", CLIFixtures.sentences.path, "--threads", "auto"]).stdout
        let one = runOK(["embed", "--model", model, "--input", CLIFixtures.sentences.path, "--threads", "1"]).stdout
        XCTAssertEqual(outputLines(auto).count, outputLines(one).count)
        runFails(["embed", "--model", model, "--input", CLIFixtures.sentences.path, "--threads", "many"], status: 2,
                 contains: ["--threads 'many' is not a number or 'auto'", "--threads auto"])
        runFails(["bench", "latency", "--model", model, "--threads", "1,lots", "--iters", "1"], status: 2,
                 contains: ["--threads '1,lots'", "auto"])
    }
}

final class ExitCodeTests: CLITestCase {
    func testUsageErrorsExit2WithOneErrorLine() throws {
        let model = try SharedModel.tinyPath()
        let missing = runFails(["predict", "--input", CLIFixtures.sentences.path], status: 2, contains: ["Missing expected argument '--model"])
        XCTAssertTrue(missing.stderr.hasPrefix("kd: error: "), missing.stderr)
        runFails(["embed", "--model", model, "--no-such-flag"], status: 2, contains: ["Unknown option '--no-such-flag'"])
        runFails(["embed", "--model", model, "--batch-size", "many"], status: 2, contains: ["--batch-size"])
        runFails(["embed", "--model", model, "--input", CLIFixtures.sentences.path, "--pooling", "max"], status: 2, contains: ["--pooling 'max'"])
    }

    func testBadInputExits1() throws {
        let input = temp.appendingPathComponent("none.txt").path
        runFails(["embed", "--model", try SharedModel.tinyPath(), "--input", input], status: 1, contains: [input, "no such file"])
        runFails(["info", input], status: 1, contains: [input, "no such file"])
    }

    func testVersionNamesCommitAndKernels() {
        let r = runOK(["--version"])
        XCTAssertTrue(r.stdout.hasPrefix("kd "), r.stdout)
        XCTAssertTrue(r.stdout.contains("(commit ") && r.stdout.contains("kernels"), r.stdout)
    }

    /// Every subcommand's help has an example and no line over 80 columns.
    func testHelpHasExamplesWithinEightyColumns() {
        let commands = [["import"], ["info"], ["tokenize"], ["embed"], ["predict"], ["bench", "latency"], ["bench", "tokenizer"],
                        ["bench", "train-step"], ["bench", "distill-step"], ["data", "prepare"], ["finetune"], ["eval"],
                        ["label", "run"], ["label", "merge"], ["label", "check"], ["distill"], ["monitor"], []]
        for command in commands {
            let r = runKD(["help"] + command)
            XCTAssertEqual(r.status, 0, "kd help \(command): \(r.stderr)")
            let help = r.stdout + r.stderr
            XCTAssertTrue(help.contains("kd "), help)
            if !command.isEmpty { XCTAssertTrue(help.contains("Example"), "kd \(command.joined(separator: " ")) --help has no example:\n\(help)") }
            for line in help.split(separator: "\n") where line.count > 80 {
                XCTFail("kd \(command.joined(separator: " ")) --help: line over 80 columns: \(line)")
            }
        }
    }
}

final class PredictLabelTests: CLITestCase {
    /// tiny-bert imported from a config.json without id2label / label2id: a 3-way head, no names.
    func unnamedModel() throws -> String {
        let dir = try copyTinyBert()
        let configURL = dir.appendingPathComponent("config.json")
        var config = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: configURL)) as? [String: Any])
        config["id2label"] = nil
        config["label2id"] = nil
        try JSONSerialization.data(withJSONObject: config).write(to: configURL)
        let model = temp.appendingPathComponent("unnamed.h5").path
        runOK(["import", dir.path, "--out", model])
        return model
    }

    func testModelWithoutLabelNamesAsksForLabels() throws {
        let model = try unnamedModel()
        runFails(["predict", "--model", model, "--input", CLIFixtures.sentences.path, "--out", outPath("p.jsonl")], status: 1,
                 contains: [model, "no stored label names", "--labels NAME,NAME"])
        let named = runOK(["predict", "--model", model, "--input", CLIFixtures.sentences.path, "--labels", "neg,mid,pos"])
        let rows = outputLines(named.stdout).map { parseJSONLine($0) }
        XCTAssertEqual(rows.count, 6)
        XCTAssertTrue(rows.allSatisfy { ["neg", "mid", "pos"].contains($0["label"] as? String ?? "") }, named.stdout)
        runFails(["predict", "--model", model, "--input", CLIFixtures.sentences.path, "--labels", "a,b"], status: 2,
                 contains: ["--labels names 2 classes", "has 3"])
    }

    func testLabelsOverrideStoredNamesAndSaySo() throws {
        let r = runOK(["predict", "--model", try SharedModel.tinyPath(), "--input", CLIFixtures.sentences.path, "--labels", "a,b,c"])
        XCTAssertTrue(r.stderr.contains("--labels a,b,c overrides the names stored"), r.stderr)
        XCTAssertTrue(r.stdout.contains(#""probs":{"a":"#), r.stdout)
    }

    func testInfoIsShortByDefaultAndJSONOnRequest() throws {
        let model = try SharedModel.tinyPath()
        let short = runOK(["info", model]).stdout
        XCTAssertFalse(short.contains("encoder.layer.0.attention.self.query.weight"), short)
        XCTAssertTrue(short.contains("(list them with --tensors)"), short)
        XCTAssertTrue(runOK(["info", model, "--tensors"]).stdout.contains("encoder.layer.0.attention.self.query.weight"))
        let json = try jsonObject(runOK(["info", model, "--json"]).stdout)
        XCTAssertEqual(json["tensor_count"] as? Int, 41)
        XCTAssertNil(json["tensors"])
        let settings = try XCTUnwrap(json["settings"] as? [String: Any])
        XCTAssertEqual(settings["labels"] as? [String], ["negative", "neutral", "positive"])
        XCTAssertEqual(settings["classifier_pooling"] as? String, "cls")
        XCTAssertEqual(settings["pooling"] as? String, "cls")
    }
}

final class TrainedModelTests: CLITestCase {
    /// A short fine-tune of tiny-bert on the toy set: 4 steps of 8 at max length 12, dev every 2.
    func finetuneArgs(model: String, out: String, _ extra: [String] = []) throws -> [String] {
        ["finetune", "--model", model, "--data", try ToyData.path(), "--out", out, "--epochs", "1", "--batch-size", "8",
         "--max-length", "12", "--max-steps", "4", "--eval-every", "2", "--threads", "1"] + extra
    }

    func rows(_ path: String) throws -> [[String: Any]] {
        outputLines(try String(contentsOfFile: path, encoding: .utf8)).map { parseJSONLine($0) }
    }

    func testFinetuneStoresSettingsLogsMetricsAndRemovesItsCheckpoint() throws {
        let out = outPath("m.h5")
        let r = runOK(try finetuneArgs(model: try SharedModel.tinyPath(), out: out, ["--replace-head", "--json"]))
        XCTAssertTrue(r.stderr.contains("head start probe (default, LP-FT)"), r.stderr)
        let report = try jsonObject(r.stdout)
        XCTAssertEqual(report["max_length"] as? Int, 12)
        XCTAssertEqual(report["head_init"] as? String, "probe")
        XCTAssertEqual(report["pooling"] as? String, "cls", "tiny-bert's old head read [CLS]")
        XCTAssertEqual(report["labels"] as? [String], ["negative", "positive"])
        XCTAssertNil(report["checkpoint"])
        XCTAssertNotNil((report["best"] as? [String: Any])?["macro_f1"])
        // Beside the model: the log, and no checkpoint.
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: outDir.path)), ["m.h5", "m.metrics.jsonl"])
        XCTAssertEqual(report["metrics"] as? String, outPath("m.metrics.jsonl"))
        let log = try rows(outPath("m.metrics.jsonl"))
        let steps = log.filter { $0["loss"] != nil }, evaluations = log.filter { $0["dev_macro_f1"] != nil }
        XCTAssertEqual(steps.compactMap { $0["step"] as? Int }, [1, 2, 3, 4])
        XCTAssertEqual(evaluations.compactMap { $0["step"] as? Int }, [2, 4])
        for row in steps { XCTAssertEqual(Set(row.keys), ["step", "epoch", "loss", "lr", "grad_norm", "examples", "time"]) }
        for row in evaluations { XCTAssertEqual(Set(row.keys), ["step", "dev_accuracy", "dev_macro_f1", "best", "time"]) }
        // The stored settings, as info shows them and the other commands use them.
        let settings = try XCTUnwrap(try jsonObject(runOK(["info", out, "--json"]).stdout)["settings"] as? [String: Any])
        XCTAssertEqual(settings["max_length"] as? Int, 12)
        XCTAssertEqual(settings["head_init"] as? String, "probe")
        XCTAssertEqual(settings["labels"] as? [String], ["negative", "positive"])
        XCTAssertTrue(runOK(["info", out]).stdout.contains("max length: 12 (stored"))
        let eval = try jsonObject(runOK(["eval", "--model", out, "--data", try ToyData.path(), "--json"]).stdout)
        XCTAssertEqual(eval["max_length"] as? Int, 12)
        let overridden = runOK(["eval", "--model", out, "--data", try ToyData.path(), "--max-length", "16", "--json"])
        XCTAssertTrue(overridden.stderr.contains("--max-length 16 overrides the 12 stored in \(out)"), overridden.stderr)
        XCTAssertEqual(try jsonObject(overridden.stdout)["max_length"] as? Int, 16)
        // A 20-word line is cut at the stored 12 tokens by every text command.
        let long = try write("long.txt", String(repeating: "the movie ", count: 10) + "\n")
        XCTAssertEqual(runOK(["tokenize", "--model", out, "--input", long]).stdout.split(separator: " ").count, 12)
        let embedded = runOK(["embed", "--model", out, "--input", long, "--max-length", "4"])
        XCTAssertTrue(embedded.stderr.contains("overrides the 12 stored"), embedded.stderr)
    }

    func testKeepCheckpoint() throws {
        let out = outPath("m.h5")
        let r = runOK(try finetuneArgs(model: try SharedModel.tinyPath(), out: out, ["--replace-head", "--keep-checkpoint"]))
        XCTAssertTrue(r.stderr.contains("checkpoint kept: \(outPath("m.ckpt.h5"))"), r.stderr)
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: outDir.path)), ["m.h5", "m.metrics.jsonl", "m.ckpt.h5"])
    }

    func testRetuningAModelWithAHeadNeedsReplaceHead() throws {
        let model = try SharedModel.tinyPath()
        runFails(try finetuneArgs(model: model, out: outPath("m.h5")), status: 1,
                 contains: [model, "already has a classifier (negative, neutral, positive)", "--replace-head"])
        assertOutDirEmpty("finetune over an existing head")
    }

    /// An encoder whose sentence-transformers pooling is mean gets a mean-pooling classifier
    /// by default, and info says so before and after.
    func testDefaultPoolingFollowsTheTeacher() throws {
        let dir = try copyTinyBertEncoder()
        try Data(#"[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},{"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"}]"#.utf8)
            .write(to: dir.appendingPathComponent("modules.json"))
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("1_Pooling"), withIntermediateDirectories: true)
        try Data(#"{"pooling_mode_mean_tokens":true,"pooling_mode_cls_token":false}"#.utf8)
            .write(to: dir.appendingPathComponent("1_Pooling/config.json"))
        let encoder = temp.appendingPathComponent("st.h5").path
        runOK(["import", dir.path, "--out", encoder])
        XCTAssertTrue(runOK(["info", encoder]).stdout.contains("would read the mean of the last hidden states"))
        let out = outPath("st-tuned.h5")
        let r = runOK(try finetuneArgs(model: encoder, out: out, ["--json"]))
        XCTAssertTrue(r.stderr.contains("mean of the last hidden states (the teacher's sentence pooling)"), r.stderr)
        XCTAssertEqual(try jsonObject(r.stdout)["pooling"] as? String, "mean")
        XCTAssertTrue(runOK(["info", out]).stdout.contains("classifier: on the mean of the last hidden states (no pooler); head start probe"))
        // An explicit flag still wins.
        let cls = runOK(try finetuneArgs(model: encoder, out: outPath("cls.h5"), ["--pooling", "cls", "--head-init", "random", "--json"]))
        let clsReport = try jsonObject(cls.stdout)
        XCTAssertEqual(clsReport["pooling"] as? String, "cls")
        XCTAssertEqual(clsReport["head_init"] as? String, "random")
    }

    func testPrepareAndLabelReportJSON() throws {
        let out = temp.appendingPathComponent("toy2").path
        let prepared = runOK(["data", "prepare", "--csv", ToyData.csv.path, "--text-column", "text", "--label-column", "label",
                              "--name", "toy2", "--out", out, "--json"])
        let manifest = try XCTUnwrap(try jsonObject(prepared.stdout)["manifest"] as? [String: Any], prepared.stdout)
        XCTAssertEqual(manifest["labels"] as? [String], ["negative", "positive"])
        let teacher = try LabelTeachers.path(LabelTeachers.first)
        let labels = outPath("labels.h5")
        let r = runOK(["label", "--teacher", teacher, "--data", try ToyData.path(), "--out", labels, "--threads", "1", "--json"])
        let report = try jsonObject(r.stdout)
        XCTAssertEqual(report["out"] as? String, labels)
        XCTAssertEqual(report["examples"] as? Int, 96)
        XCTAssertGreaterThan(report["bytes"] as? Int ?? 0, 0)
        XCTAssertTrue(r.stderr.contains("overrides") == false, "the teacher's stored length is used without a note: \(r.stderr)")
    }
}
