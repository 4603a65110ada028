// `kd prune` end to end on the tiny classifier teacher (LabelTests) and the toy data: the
// importance tables print; a per-layer pruned file with a trimmed vocabulary loads in info,
// eval, predict, embed, label and bench and keeps its shapes; a pruned file distils as a
// teacher; and each bad input of the issue is one `kd: error:` line naming the flag or
// file, a non-zero exit, and nothing written.
import Foundation
import TestSupport
import XCTest

final class PruneCLITests: CLITestCase {
    /// The tiny teacher (2 layers of 4 heads, FFN 64), the toy data and a label cache of it.
    func setUpCache() throws -> (teacher: String, data: String, labels: String) {
        let (teacher, data) = (try LabelTeachers.path(LabelTeachers.first), try ToyData.path())
        let labels = temp.appendingPathComponent("labels.h5").path
        runOK(["label", "--teacher", teacher, "--data", data, "--out", labels, "--max-length", "16", "--threads", "1"])
        return (teacher, data, labels)
    }

    func testImportancePruneAndEveryCommandRunsThePrunedFile() throws {
        let t = try setUpCache()
        let scores = runOK(["prune", "--importance", "--model", t.teacher, "--data", t.data, "--labels", t.labels, "--threads", "1"])
        XCTAssertTrue(scores.stdout.contains("head importance"), scores.stdout)
        XCTAssertTrue(scores.stdout.contains("without layer"), scores.stdout)
        assertOutDirEmpty("prune --importance")

        let out = outPath("p.h5")
        let r = runOK(["prune", "--model", t.teacher, "--out", out, "--heads", "0.3", "--ffn", "0.5", "--vocab", t.data,
                       "--data", t.data, "--labels", t.labels, "--threads", "1", "--json"])
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let after = try XCTUnwrap(report["after"] as? [String: Any])
        let heads = try XCTUnwrap(after["heads"] as? [Int]), ffn = try XCTUnwrap(after["ffn"] as? [Int])
        XCTAssertEqual(heads.reduce(0, +), 6, "30% of 8 heads go: \(heads)")
        XCTAssertEqual(ffn.reduce(0, +), 64, "half of 128 neurons go: \(ffn)")
        let vocab = try XCTUnwrap(report["vocabulary"] as? [String: Any])
        XCTAssertLessThan(vocab["kept"] as! Int, vocab["of"] as! Int)

        let info = runOK(["info", out])
        XCTAssertTrue(info.stdout.contains("heads \(heads.map(String.init).joined(separator: "/"))"), info.stdout)
        XCTAssertTrue(info.stdout.contains("FFN \(ffn.map(String.init).joined(separator: "/"))"), info.stdout)
        runOK(["eval", "--model", out, "--data", t.data, "--teacher", t.teacher, "--threads", "1"])
        runOK(["predict", "--model", out, "--threads", "1"], stdin: Data("good movie\nbad plot\n".utf8))
        runOK(["embed", "--model", out, "--threads", "1"], stdin: Data("good movie\n".utf8))
        runOK(["label", "--teacher", out, "--data", t.data, "--out", outPath("pl.h5"), "--max-length", "16", "--threads", "1"])
        runOK(["bench", "latency", "--model", t.teacher, "--model", out, "--batch-size", "1", "--seq", "8", "--threads", "1",
               "--iters", "2", "--warmup", "1", "--rounds", "1"])
        // A pruned file distils as a teacher.
        let spec = try write("s.json", """
            {"format": "distillery-student", "version": 1, "name": "s",
             "architecture": {"layers": 1, "hidden_size": 32, "heads": 4, "intermediate_size": 24},
             "init": {"from": "random"}, "layer_map": {"kind": "uniform"},
             "losses": {"soft_ce": 1, "hidden_mse": 1}, "temperature": 2.0,
             "schedule": {"kind": "one-stage", "epochs": 1}, "training": {"learning_rate": 1e-3, "batch_size": 8}}
            """)
        runOK(["distill", "--teacher", out, "--student", spec, "--labels", outPath("pl.h5"), "--data", t.data,
               "--out", outPath("s.h5"), "--threads", "1"])
    }

    func testVocabularyMinimumCountKeepsFewerTokens() throws {
        let (teacher, data) = (try LabelTeachers.path(LabelTeachers.first), try ToyData.path())
        func kept(_ extra: [String]) throws -> (kept: Int, unknown: Int) {
            let r = runOK(["prune", "--model", teacher, "--out", outPath("v.h5"), "--vocab", data, "--json", "--threads", "1"] + extra)
            let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            let v = try XCTUnwrap(report["vocabulary"] as? [String: Any])
            return (v["kept"] as! Int, v["test_tokens_now_unknown"] as! Int)
        }
        let all = try kept([]), frequent = try kept(["--vocab-min-count", "1000"])
        XCTAssertLessThan(frequent.kept, all.kept)
        XCTAssertGreaterThan(frequent.unknown, all.unknown)
    }

    func testUniformPruningGivesEqualLayers() throws {
        let t = try setUpCache()
        let out = outPath("u.h5")
        runOK(["prune", "--model", t.teacher, "--out", out, "--heads", "0.5", "--uniform", "--data", t.data, "--labels", t.labels, "--threads", "1"])
        XCTAssertTrue(runOK(["info", out]).stdout.contains("heads 2/2"))
    }

    /// `runFails` plus the exit code: 2 for a flag's value, 1 for an input.
    func fails(_ args: [String], contains: [String], status: Int32 = 1, file: StaticString = #filePath, line: UInt = #line) {
        let r = runFails(args, contains: contains, file: file, line: line)
        XCTAssertEqual(r.status, status, r.stderr, file: file, line: line)
    }

    func testBadInputsAreClearErrors() throws {
        let t = try setUpCache()
        let out = outPath("p.h5")
        let base = ["prune", "--model", t.teacher, "--out", out, "--data", t.data, "--labels", t.labels, "--threads", "1"]
        fails(base + ["--heads", "1"], contains: ["--heads 1.0 must be a fraction in [0, 1)"], status: 2)
        fails(base + ["--ffn=-0.1"], contains: ["--ffn -0.1 must be a fraction in [0, 1)"], status: 2)
        fails(base + ["--layers", "2"], contains: ["--layers 2", "has 2 layers", "remove at most 1"], status: 2)
        fails(base + ["--heads", "0.9"], contains: ["--heads: 0.9 removes all 4 heads of layer"], status: 2)
        fails(base + ["--ffn", "0.9", "--uniform"], contains: ["--ffn: 0.9 with --uniform keeps no FFN neurons"], status: 2)
        fails(["prune", "--model", t.teacher, "--out", out, "--heads", "0.3", "--threads", "1"],
                 contains: ["--heads/--ffn/--layers ranks units by their importance on data", "--labels"], status: 2)
        fails(["prune", "--importance", "--model", t.teacher, "--data", t.data], contains: ["--importance", "--labels"], status: 2)
        // A cache made from another model.
        let other = try LabelTeachers.path(LabelTeachers.second)
        fails(["prune", "--model", other, "--out", out, "--heads", "0.3", "--data", t.data, "--labels", t.labels, "--threads", "1"],
                 contains: ["labels.h5", "--teacher"])
        fails(["prune", "--model", t.teacher, "--out", out, "--threads", "1"], contains: ["nothing to prune"], status: 2)
        assertOutDirEmpty("prune with bad input")
    }

    func testRecordedShapesContradictingTheTensorsAreRefused() throws {
        let t = try setUpCache()
        let out = temp.appendingPathComponent("p.h5").path
        runOK(["prune", "--model", t.teacher, "--out", out, "--heads", "0.3", "--data", t.data, "--labels", t.labels, "--threads", "1"])
        // Change layer 0's recorded head count in place (same byte length, so the HDF5 file stays valid).
        var bytes = try Data(contentsOf: URL(fileURLWithPath: out))
        let key = try XCTUnwrap(bytes.range(of: Data("\"distillery_layer_heads\"".utf8)), "the pruned file records its heads")
        let digit = try XCTUnwrap(bytes[key.upperBound...].firstIndex { (0x30...0x39).contains($0) })
        bytes[digit] = bytes[digit] == 0x31 ? 0x32 : 0x31
        let bad = try write("bad.h5", bytes)
        for command in [["eval", "--model", bad, "--data", t.data, "--threads", "1"], ["info", bad]] {
            runFails(command, contains: ["bad.h5", "encoder.layer.0.attention.self.query.weight", "distillery_layer_heads"])
        }
    }
}

final class PruneRecoveryCLITests: CLITestCase {
    func testScheduleDistilsEachStepAndARerunReusesThem() throws {
        let (teacher, data) = (try LabelTeachers.path(LabelTeachers.first), try ToyData.path())
        let labels = temp.appendingPathComponent("labels.h5").path
        runOK(["label", "--teacher", teacher, "--data", data, "--out", labels, "--max-length", "16", "--threads", "1"])
        runFails(["prune", "--model", teacher, "--out", outPath("x.h5"), "--heads", "0.5", "--schedule", "1,0.5", "--data", data, "--labels", labels],
                 contains: ["--schedule 1.0,0.5 must be increasing fractions"])
        let out = outPath("r.h5")
        let args = ["prune", "--model", teacher, "--out", out, "--heads", "0.5", "--ffn", "0.5", "--layers", "1", "--schedule", "0.5,1",
                    "--vocab", data, "--data", data, "--labels", labels, "--recover-limit", "16", "--recover-lr", "1e-3", "--threads", "1"]
        let first = runOK(args)
        XCTAssertTrue(first.stdout.contains("step 1 (0.5 of the amounts)"), first.stdout)
        XCTAssertTrue(first.stdout.contains("best dev macro-F1"), first.stdout)
        for name in ["r.step1.pruned.h5", "r.step1.student.json", "r.step1.h5", "r.step2.pruned.h5", "r.step2.h5", "r.h5"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: outPath(name)), name)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: outPath("r.step1.ckpt.h5")), "checkpoints are removed after a step")
        let info = runOK(["info", out]).stdout
        XCTAssertTrue(info.contains("1 layers"), info)
        XCTAssertTrue(info.contains("heads 2,") || info.contains("heads 2 "), info)
        XCTAssertTrue(info.contains("vocabulary: pruned"), info)
        runOK(["eval", "--model", out, "--data", data, "--teacher", teacher, "--threads", "1"])
        let step2 = try Data(contentsOf: URL(fileURLWithPath: outPath("r.step2.h5")))
        let again = runOK(args)
        XCTAssertTrue(again.stderr.contains("step 2: \(outPath("r.step2.h5")) exists — reusing it"), again.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: outPath("r.step2.h5"))), step2)
    }

    /// A model with fewer layers than its teacher (here: the teacher's top layer alone) is
    /// distilled back layer against the teacher layer given, and refused without one.
    func testRecoveryAgainstATeacherOfOtherLayersNeedsTheirMap() throws {
        let (teacher, data) = (try LabelTeachers.path(LabelTeachers.first), try ToyData.path())
        let labels = temp.appendingPathComponent("labels.h5").path
        runOK(["label", "--teacher", teacher, "--data", data, "--out", labels, "--max-length", "16", "--threads", "1"])
        let student = temp.appendingPathComponent("one-layer.h5").path
        let cut = runOK(["prune", "--model", teacher, "--out", student, "--layers", "1", "--data", data, "--labels", labels,
                         "--threads", "1", "--json"])
        let kept = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(cut.stdout.utf8)) as? [String: Any])?["kept_layers"] as? [Int])
        XCTAssertEqual(kept.count, 1)
        let out = outPath("r.h5")
        let base = ["prune", "--model", student, "--teacher", teacher, "--out", out, "--heads", "0.5", "--schedule", "1",
                    "--data", data, "--labels", labels, "--recover-limit", "16", "--threads", "1"]
        for (extra, message) in [([], "--recover-teacher-layers (1-based"),
                                 (["--recover-teacher-layers", "3"], "must be increasing teacher layers in 1...2"),
                                 (["--recover-teacher-layers", "1,2"], "names 2 layers but --model"),
                                 (["--recover-teacher-layers", "x"], "'x' is not a layer number")] {
            let r = runFails(base + extra, contains: [message])
            XCTAssertEqual(r.status, 2, r.stderr)
        }
        runFails(["prune", "--model", student, "--out", out, "--heads", "0.5", "--data", data, "--labels", labels,
                  "--teacher", teacher, "--recover-teacher-layers", "2"], contains: ["add --schedule"])
        assertOutDirEmpty("prune --schedule with a missing or bad layer map")
        let layer = kept[0] + 1
        runOK(base + ["--recover-teacher-layers", String(layer)])
        let spec = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: outPath("r.step1.student.json")))) as? [String: Any])
        XCTAssertEqual((spec["layer_map"] as? [String: Any])?["teacher_layers"] as? [Int], [layer])
        let again = runOK(base + ["--recover-teacher-layers", String(layer)])
        XCTAssertTrue(again.stderr.contains("exists — reusing it"), again.stderr)
    }
}

/// A vocabulary-pruned file segments words with the vocabulary it was pruned from; `kd
/// import` of it, and an HF or GGUF export imported back, must give the same pieces (or the
/// same vectors) as the file itself — not a tokenizer over the pruned vocabulary alone.
final class PrunedVocabularyRoundTripTests: CLITestCase {
    /// Largest difference allowed between the pruned file's and a round trip's outputs: F32
    /// exports carry the same values, so only summation order could differ.
    static let roundTripTolerance = 1e-5

    func testImportAndExportsKeepTheOriginalSegmentation() throws {
        let (teacher, data) = (try LabelTeachers.path(LabelTeachers.first), try ToyData.path())
        let pruned = outPath("v.h5")
        runOK(["prune", "--model", teacher, "--out", pruned, "--vocab", data, "--threads", "1"])
        // Words of the original vocabulary whose pieces were partly dropped (the toy data has
        // no "plays", "runs", "lovely" or "endings").
        let text = Data("the actor plays runs fun\nlovely endings xyz\n".utf8)
        func tokens(_ model: String) -> String { runOK(["tokenize", "--model", model], stdin: text).stdout }
        func outputs(_ model: String) -> [Double] {
            let embedded = outputLines(runOK(["embed", "--model", model, "--threads", "1"], stdin: text).stdout)
                .flatMap { floats(parseJSONLine($0)["embedding"]) }
            let predicted = outputLines(runOK(["predict", "--model", model, "--threads", "1"], stdin: text).stdout)
                .flatMap { line -> [Double] in
                    let probs = parseJSONLine(line)["probs"] as? [String: Any] ?? [:]
                    return probs.keys.sorted().compactMap { (probs[$0] as? NSNumber)?.doubleValue }
                }
            return embedded + predicted
        }
        let expected = outputs(pruned), prunedTokens = tokens(pruned)
        XCTAssertTrue(prunedTokens.split(separator: "\n").contains { $0.split(separator: " ").contains("1") },
                      "some piece of the text reads as [UNK] (id 1): \(prunedTokens)")

        let imported = outPath("imported.h5")
        runOK(["import", pruned, "--out", imported])
        XCTAssertEqual(tokens(imported), prunedTokens)
        XCTAssertTrue(runOK(["info", imported]).stdout.contains("vocabulary: pruned to"))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: imported)).count, try Data(contentsOf: URL(fileURLWithPath: pruned)).count,
                       "the import is the same file, original vocabulary included")

        for (format, out) in [("safetensors", outPath("hf")), ("gguf", outPath("v.gguf"))] {
            let r = runOK(["export", "--model", pruned, "--format", format, "--out", out])
            XCTAssertTrue(r.stdout.contains("dropped pieces sharing [UNK]'s embedding row"), r.stdout)
            let back = outPath("back-\(format).h5")
            runOK(["import", out, "--out", back])
            XCTAssertEqual(tokens(back), tokens(teacher), "\(format): the original vocabulary's ids")
            let got = outputs(back)
            XCTAssertEqual(got.count, expected.count, format)
            let worst = zip(got, expected).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertLessThanOrEqual(worst, Self.roundTripTolerance, "\(format): largest difference from the pruned file's outputs")
        }
        let onnx = runOK(["export", "--model", pruned, "--format", "onnx", "--out", outPath("v.onnx")])
        XCTAssertTrue(onnx.stdout.contains("input_ids are the pruned ids"), onnx.stdout)
    }
}
