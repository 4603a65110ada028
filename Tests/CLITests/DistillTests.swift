// `kd distill` and `kd bench distill-step` end to end on the tiny fixture: the label
// tests' classifier teacher (tiny-bert fine-tuned for two steps on the toy set), its
// label cache, and small student specs written per test (a narrower sliced student with
// projections; a same-width one with attention-score MSE).
//
// Checked: the plan and where the teacher's states come from are printed before training;
// a student is trained, written without its projections, and `kd eval --teacher` reports
// its fidelity; same seed gives the same bytes; a run SIGKILLed mid-way and resumed ends
// bit-identical to an uninterrupted run; and each bad input (cache from another teacher,
// spec with an unknown key, a layer map out of range, attention loss at unequal head
// counts, cached states asked for but not stored, a missing cache) is one `kd: error:`
// line, exit 1, nothing written.
import Foundation
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class DistillTests: CLITestCase {
    /// A student spec for the tiny teacher (hidden 32, 2 layers of 4 heads of 8, FFN 64).
    func spec(_ name: String, hidden: Int = 16, heads: Int = 2, layerMap: Any = ["kind": "uniform"],
              losses: [String: Double] = ["soft_ce": 1, "hard_ce": 0.5, "embedding_mse": 1, "hidden_mse": 1],
              schedule: [String: Any] = ["kind": "two-stage", "intermediate_epochs": 1, "prediction_epochs": 2],
              extra: [String: Any] = [:]) throws -> String {
        var object: [String: Any] = [
            "format": "distillery-student", "version": 1, "name": name,
            "architecture": ["layers": 1, "hidden_size": hidden, "heads": heads, "intermediate_size": hidden == 32 ? 64 : 24],
            "init": ["from": hidden == 32 ? "teacher-layers" : "teacher-slice", "pick": "last"],
            "layer_map": layerMap, "losses": losses, "temperature": 2.0, "schedule": schedule,
            "training": ["learning_rate": 1e-3, "batch_size": 8],
        ]
        for (k, v) in extra { object[k] = v }
        return try write("\(name).json", JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }

    /// The teacher, the toy data and a label cache (logits and every hidden state, 2 augmented copies per row).
    func setUpCache(_ extra: [String] = ["--hidden", "all", "--augment", "2"]) throws -> (teacher: String, data: String, labels: String) {
        let (teacher, data) = (try LabelTeachers.path(LabelTeachers.first), try ToyData.path())
        let labels = temp.appendingPathComponent("labels.h5").path
        runOK(["label", "--teacher", teacher, "--data", data, "--out", labels, "--max-length", "16", "--threads", "1"] + extra)
        return (teacher, data, labels)
    }

    func distillArgs(_ t: (teacher: String, data: String, labels: String), student: String, out: String, _ extra: [String] = []) -> [String] {
        ["distill", "--teacher", t.teacher, "--student", student, "--labels", t.labels, "--data", t.data, "--out", out,
         "--eval-every", "10", "--threads", "1"] + extra
    }

    func testDistillPrintsThePlanTrainsAndEvalReportsFidelity() throws {
        let t = try setUpCache()
        let student = try spec("narrow")
        let out = outPath("student.h5")
        let r = runOK(distillArgs(t, student: student, out: out, ["--checkpoint", temp.appendingPathComponent("s.ckpt.h5").path]))
        for needle in ["distillation plan: narrow", "16→32, learned", "embedding MSE", "stage 1", "stage 2",
                       "teacher hidden states [0, 2]: read from", "augmented", "best dev macro-F1"] {
            XCTAssertTrue((r.stdout + r.stderr).contains(needle), "output lacks '\(needle)':\n\(r.stdout)\n\(r.stderr)")
        }
        XCTAssertTrue(r.stderr.contains("stage 1/2 (intermediate)") && r.stderr.contains("stage 2/2 (prediction)"), r.stderr)
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: outDir.path)), ["student.h5", "student.metrics.jsonl"],
                       "temporary files left")
        // The student file: 1 layer, hidden 16, no projection tensors, the teacher's labels.
        let info = runOK(["info", out, "--tensors"])
        XCTAssertTrue(info.stdout.contains("labels: negative, positive"), info.stdout)
        XCTAssertFalse(info.stdout.contains("distill.projection"), info.stdout)
        let eval = runOK(["eval", "--model", out, "--data", t.data, "--split", "test", "--teacher", t.teacher, "--json"])
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as? [String: Any])
        let agreement = try XCTUnwrap(json["agreement"] as? Double), kl = try XCTUnwrap(json["mean_kl"] as? Double)
        XCTAssertTrue((0...1).contains(agreement) && kl > 0, eval.stdout)
        // The teacher run online gives the plan the same layers (and says so).
        let online = runOK(distillArgs(t, student: student, out: outPath("online.h5"), ["--teacher-states", "online", "--stop-after", "2"]))
        XCTAssertTrue(online.stdout.contains("teacher hidden states [0, 2]: teacher run online"), online.stdout)
    }

    /// A mean-pooling teacher (`kd finetune --pooling mean`) gives a mean-pooling student:
    /// no pooler in the plan's parameter count or the file, and eval/predict read it.
    func testMeanPoolingTeacherGivesMeanPoolingStudent() throws {
        let (model, data) = (try SharedModel.tinyPath(), try ToyData.path())
        let teacher = temp.appendingPathComponent("mean-teacher.h5").path
        runOK(["finetune", "--model", model, "--data", data, "--out", teacher, "--epochs", "1", "--batch-size", "8", "--max-length", "16",
               "--max-steps", "2", "--pooling", "mean", "--threads", "1", "--replace-head", "--checkpoint", temp.appendingPathComponent("t.ckpt.h5").path])
        let labels = temp.appendingPathComponent("mean-labels.h5").path
        runOK(["label", "--teacher", teacher, "--data", data, "--out", labels, "--max-length", "16", "--threads", "1"])
        let out = outPath("mean-student.h5")
        let r = runOK(distillArgs((teacher, data, labels), student: try spec("narrow"), out: out,
                                  ["--stop-after", "4", "--checkpoint", temp.appendingPathComponent("s.ckpt.h5").path]))
        XCTAssertTrue(r.stdout.contains("with mean pooling and 2-class classifier"), r.stdout)
        XCTAssertTrue(r.stdout.contains("teacher run online"), r.stdout)
        let info = runOK(["info", out, "--tensors"]).stdout
        XCTAssertTrue(info.contains("classifier: on the mean of the last hidden states (no pooler)"), info)
        XCTAssertFalse(info.contains("pooler.dense"), info)
        let eval = runOK(["eval", "--model", out, "--data", data, "--split", "test", "--teacher", teacher, "--json"])
        XCTAssertTrue(eval.stdout.contains("\"agreement\""), eval.stdout)
    }

    func testAttentionScoreLossAtEqualWidthAndSameSeedSameBytes() throws {
        let t = try setUpCache(["--augment", "1"])
        let student = try spec("wide", hidden: 32, heads: 4, losses: ["soft_ce": 1, "attention_mse": 1, "hidden_mse": 1],
                               schedule: ["kind": "one-stage", "epochs": 2])
        var outputs: [Data] = []
        for i in 0..<2 {
            let r = runOK(distillArgs(t, student: student, out: outPath("w\(i).h5"), ["--checkpoint", temp.appendingPathComponent("w\(i).ckpt.h5").path]))
            XCTAssertTrue(r.stdout.contains("attention scores of layers [2]: teacher run online"), r.stdout)
            outputs.append(try Data(contentsOf: URL(fileURLWithPath: outPath("w\(i).h5"))))
        }
        XCTAssertEqual(outputs[0], outputs[1], "same seed, same threads: students differ")
        // An ablation replaces the spec's loss weights: the plan shows only hard CE.
        let hard = runOK(distillArgs(t, student: student, out: outPath("hard.h5"), ["--losses", "hard_ce=1", "--epochs", "1", "--stop-after", "2",
                                                                                  "--checkpoint", temp.appendingPathComponent("h.ckpt.h5").path]))
        XCTAssertTrue(hard.stdout.contains("hard CE ×1") && !hard.stdout.contains("soft CE ×"), hard.stdout)
        XCTAssertTrue(hard.stdout.contains("teacher hidden states: none needed"), hard.stdout)
        XCTAssertTrue(hard.stdout.contains("schedule: one stage, 1 epoch"), hard.stdout)
    }

    /// The run pauses after step 13 (checkpoints every 5), is SIGKILLed, and resumes from step 10.
    func testSIGKILLThenResumeIsBitIdentical() throws {
        let t = try setUpCache()
        let student = try spec("narrow")
        let reference = temp.appendingPathComponent("reference.h5").path
        runOK(distillArgs(t, student: student, out: reference, ["--checkpoint-every", "5", "--checkpoint", temp.appendingPathComponent("ref.ckpt.h5").path]))
        let out = outPath("resumed.h5"), ckpt = temp.appendingPathComponent("run.ckpt.h5").path
        let args = distillArgs(t, student: student, out: out, ["--checkpoint-every", "5", "--checkpoint", ckpt])
        let log = temp.appendingPathComponent("killed.log")
        let p = try start(args + ["--debug-pause-after-step", "13"], log: log)
        let paused = waitUntil(timeout: 120) { ((try? String(contentsOf: log, encoding: .utf8)) ?? "").contains("paused after step 13") }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        XCTAssertTrue(paused, "the run never reached step 13: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "a killed run must not leave an output file")
        let r = runOK(args + ["--resume", ckpt, "--keep-checkpoint"])   // kept for the refused resume below
        XCTAssertTrue(r.stderr.contains("resuming from \(ckpt) at step 10/"), r.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out)), try Data(contentsOf: URL(fileURLWithPath: reference)),
                       "resumed student differs from the uninterrupted run")
        // Resuming with another recipe is refused before training.
        let other = try spec("narrow", losses: ["soft_ce": 2, "hard_ce": 0.5, "embedding_mse": 1, "hidden_mse": 1])
        let bad = runKD(distillArgs(t, student: other, out: outPath("other.h5"), ["--resume", ckpt, "--checkpoint", temp.appendingPathComponent("o.ckpt.h5").path]))
        XCTAssertEqual(bad.status, 1, bad.stderr)
        XCTAssertTrue(bad.stderr.contains("kd: error: \(ckpt): the checkpoint comes from another model"), bad.stderr)
    }

    /// --json: the plan (and, unless --plan-only, the result) as one JSON object on stdout;
    /// the student stores the cache's maximum length, its log lies beside it, and the old
    /// --max-steps still works as --stop-after, saying so.
    func testJSONReportLogAndStoredLength() throws {
        let t = try setUpCache()
        let student = try spec("narrow")
        let planOnly = try jsonObject(runOK(distillArgs(t, student: student, out: outPath("p.h5"), ["--plan-only", "--json"])).stdout)
        XCTAssertTrue((planOnly["plan"] as? [String: Any])?["plan"] is String, "\(planOnly)")
        XCTAssertNil(planOnly["result"])
        let out = outPath("s.h5")
        let r = runOK(distillArgs(t, student: student, out: out, ["--max-steps", "3", "--json"]))
        XCTAssertTrue(r.stderr.contains("--max-steps is now --stop-after"), r.stderr)
        let result = try XCTUnwrap(try jsonObject(r.stdout)["result"] as? [String: Any], r.stdout)
        XCTAssertEqual(result["max_length"] as? Int, 16)
        XCTAssertEqual(result["metrics"] as? String, outPath("s.metrics.jsonl"))
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: outDir.path)), ["s.h5", "s.metrics.jsonl"])
        let steps = outputLines(try String(contentsOfFile: outPath("s.metrics.jsonl"), encoding: .utf8)).map { parseJSONLine($0) }
            .filter { $0["loss"] != nil }
        XCTAssertEqual(steps.compactMap { $0["step"] as? Int }, [1, 2, 3])
        let settings = try XCTUnwrap(try jsonObject(runOK(["info", out, "--json"]).stdout)["settings"] as? [String: Any])
        XCTAssertEqual(settings["max_length"] as? Int, 16)
        XCTAssertNil(settings["head_init"], "a student's head is not the teacher's probe")
    }

    func testBadInputsAreClearErrorsBeforeTraining() throws {
        let t = try setUpCache(["--augment", "1"])
        let good = try spec("narrow")
        func fails(_ args: [String], _ needles: [String], status: Int32 = 1, file: StaticString = #filePath, line: UInt = #line) {
            let r = runKD(args)
            XCTAssertEqual(r.status, status, "kd \(args.joined(separator: " ")): \(r.stderr)", file: file, line: line)
            XCTAssertFalse(r.signaled, file: file, line: line)
            for n in needles { XCTAssertTrue(r.stderr.contains(n), "stderr lacks '\(n)': \(r.stderr)", file: file, line: line) }
            XCTAssertFalse(r.stderr.contains("step 1/"), "training started: \(r.stderr)", file: file, line: line)
            XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: outDir.path)) ?? ["?"], [], "files written", file: file, line: line)
        }
        let out = outPath("s.h5")
        // A cache made with another teacher.
        let other = try LabelTeachers.path(LabelTeachers.second)
        fails(distillArgs((other, t.data, t.labels), student: good, out: out), ["kd: error: ", "labels.h5", "made with teacher"])
        // Spec errors name the file and key.
        let unknown = try spec("unknown", extra: ["layers_map": ["kind": "uniform"]])
        fails(distillArgs(t, student: unknown, out: out), [unknown, "layers_map"])
        let outOfRange = try spec("range", layerMap: ["kind": "explicit", "teacher_layers": [3]])
        fails(distillArgs(t, student: outOfRange, out: out), ["layer_map.teacher_layers", "teacher layer 3"])
        let heads = try spec("heads", hidden: 16, heads: 2, losses: ["soft_ce": 1, "attention_mse": 1], schedule: ["kind": "one-stage", "epochs": 1])
        fails(distillArgs(t, student: heads, out: out), ["attention", "2 heads", "4"])
        let zeroT = try spec("zero-t", extra: ["temperature": 0])
        fails(distillArgs(t, student: zeroT, out: out), ["temperature"])
        // Cached states asked for, but the cache holds logits only.
        fails(distillArgs(t, student: good, out: out, ["--teacher-states", "cache"]), ["--teacher-states cache", "re-label with --hidden 0,2"])
        fails(distillArgs((t.teacher, t.data, temp.appendingPathComponent("none.h5").path), student: good, out: out), ["none.h5: no such label cache", "kd label"])
        fails(distillArgs(t, student: temp.appendingPathComponent("missing.json").path, out: out), ["missing.json: no such student spec"])
        // --losses (ablations): unknown kinds, all off, and a two-stage student without one of its stages' losses.
        fails(distillArgs(t, student: good, out: out, ["--losses", "bogus=1"]), ["--losses 'bogus=1'", "hard_ce"], status: 2)
        fails(distillArgs(t, student: good, out: out, ["--losses", "hard_ce=0"]), ["turns every loss off"], status: 2)
        fails(distillArgs(t, student: good, out: out, ["--losses", "hard_ce=1"]), ["two-stage schedule", "one-stage"], status: 2)
        fails(distillArgs(t, student: good, out: out, ["--epochs", "2"]), ["--epochs '2'", "two-stage schedule", "4,3"], status: 2)
        fails(distillArgs(t, student: good, out: out, ["--epochs", "0,1"]), ["--epochs '0,1'", "≥ 1"], status: 2)
    }

    func testBenchDistillStepRuns() throws {
        let teacher = try LabelTeachers.path(LabelTeachers.first)
        let student = try spec("bench")
        let r = runOK(["bench", "distill-step", "--teacher", teacher, "--student", student, "--batch-size", "2", "--seq", "8",
                       "--threads", "1", "--warmup", "0", "--iters", "2", "--json"])
        let rows = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        XCTAssertEqual(rows.first?["iters"] as? Int, 2, r.stdout)
        XCTAssertGreaterThan(try XCTUnwrap(rows.first?["median_ms"] as? Double), 0)
    }
}
