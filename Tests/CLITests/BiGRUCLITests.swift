// The BiGRU student end to end on the tiny fixture: `kd distill --student` with a bigru spec
// (the label tests' tiny classifier teacher and its cache with augmented copies), then
// `kd info`, `predict`, `embed`, `eval --teacher` and `bench latency` on the student file
// as on any model; a run SIGKILLed mid-way and resumed ends bit-identical to an
// uninterrupted one; and the bad inputs: a BiGRU spec asking for a layer map or an
// intermediate (attention, hidden, embedding) loss, BERT-only flags, and a BiGRU file given
// to a BERT-only command — one `kd: error:` line each, exit 1, nothing written.
import Foundation
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class BiGRUCLITests: CLITestCase {
    /// A BiGRU spec for the tiny teacher (vocabulary of 95, hidden 32): embeddings projected to 8.
    func biGRUSpec(_ name: String, losses: [String: Double] = ["logit_mse": 1, "hard_ce": 0.5],
                   extra: [String: Any] = [:]) throws -> String {
        var object: [String: Any] = [
            "format": "distillery-student", "version": 1, "name": name,
            "architecture": ["kind": "bigru", "embedding_size": 8, "hidden_size": 6, "layers": 2],
            "init": ["from": "teacher-embeddings"], "losses": losses,
            "schedule": ["kind": "one-stage", "epochs": 2], "training": ["learning_rate": 5e-3, "batch_size": 8],
        ]
        for (k, v) in extra { object[k] = v }
        return try write("\(name).json", JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }

    func setUpCache() throws -> (teacher: String, data: String, labels: String) {
        let (teacher, data) = (try LabelTeachers.path(LabelTeachers.first), try ToyData.path())
        let labels = temp.appendingPathComponent("labels.h5").path
        runOK(["label", "--teacher", teacher, "--data", data, "--out", labels, "--max-length", "16", "--threads", "1", "--augment", "2"])
        return (teacher, data, labels)
    }

    func distillArgs(_ t: (teacher: String, data: String, labels: String), student: String, out: String, _ extra: [String] = []) -> [String] {
        ["distill", "--teacher", t.teacher, "--student", student, "--labels", t.labels, "--data", t.data, "--out", out,
         "--eval-every", "5", "--threads", "1"] + extra
    }

    func testDistillThenEveryInferenceCommandRunsTheStudent() throws {
        let t = try setUpCache()
        let out = outPath("gru.h5")
        let r = runOK(distillArgs(t, student: try biGRUSpec("gru"), out: out, ["--checkpoint", temp.appendingPathComponent("g.ckpt.h5").path]))
        for needle in ["BiGRU, 2 bidirectional layers of 6 units", "teacher word embeddings projected to 8", "logit_mse 1.0",
                       "augmented", "none needed", "best dev macro-F1"] {
            XCTAssertTrue((r.stdout + r.stderr).contains(needle), "output lacks '\(needle)':\n\(r.stdout)\n\(r.stderr)")
        }
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: outDir.path)), ["gru.h5", "gru.metrics.jsonl"])
        let info = runOK(["info", out, "--tensors"])
        for needle in ["BiGRU student, 2 bidirectional layers of 6 units", "labels: negative, positive", "gru.weight_hh_l1_reverse", "max length: 16"] {
            XCTAssertTrue(info.stdout.contains(needle), "info lacks '\(needle)': \(info.stdout)")
        }
        let lines = try write("lines.txt", Data("a fine day\nterrible\n".utf8))
        let predicted = outputLines(runOK(["predict", "--model", out, "--input", lines]).stdout).map { parseJSONLine($0) }
        XCTAssertEqual(predicted.count, 2)
        XCTAssertTrue(predicted.allSatisfy { ["negative", "positive"].contains($0["label"] as? String ?? "") }, "\(predicted)")
        let embedded = outputLines(runOK(["embed", "--model", out, "--input", lines]).stdout).map { parseJSONLine($0) }
        XCTAssertEqual((embedded.first?["embedding"] as? [Any])?.count, 12, "mean of the last layer's [B, T, 2H] outputs")
        let eval = try jsonObject(runOK(["eval", "--model", out, "--data", t.data, "--teacher", t.teacher, "--json"]).stdout)
        XCTAssertTrue((0...1).contains(try XCTUnwrap(eval["agreement"] as? Double)), "\(eval)")
        let bench = runOK(["bench", "latency", "--model", out, "--model", t.teacher, "--batch-size", "1", "--seq", "16", "--iters", "3"])
        XCTAssertTrue(bench.stdout.contains("BiGRU 2 layers, hidden 6 per direction"), bench.stdout)
        // Same seed, same bytes.
        let again = outPath("again.h5")
        runOK(distillArgs(t, student: try biGRUSpec("gru"), out: again, ["--checkpoint", temp.appendingPathComponent("a.ckpt.h5").path]))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: again)), try Data(contentsOf: URL(fileURLWithPath: out)))
    }

    func testSIGKILLThenResumeIsBitIdentical() throws {
        let t = try setUpCache()
        let student = try biGRUSpec("gru", losses: ["soft_ce": 1])
        let reference = temp.appendingPathComponent("reference.h5").path
        runOK(distillArgs(t, student: student, out: reference, ["--checkpoint-every", "4", "--checkpoint", temp.appendingPathComponent("ref.ckpt.h5").path]))
        let out = outPath("resumed.h5"), ckpt = temp.appendingPathComponent("run.ckpt.h5").path
        let args = distillArgs(t, student: student, out: out, ["--checkpoint-every", "4", "--checkpoint", ckpt])
        let log = temp.appendingPathComponent("killed.log")
        let p = try start(args + ["--debug-pause-after-step", "6"], log: log)
        let paused = waitUntil(timeout: 120) { ((try? String(contentsOf: log, encoding: .utf8)) ?? "").contains("paused after step 6") }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        XCTAssertTrue(paused, "the run never reached step 6: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "a killed run must not leave an output file")
        let r = runOK(args + ["--resume", ckpt])
        XCTAssertTrue(r.stderr.contains("resuming from \(ckpt) at step 4/"), r.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out)), try Data(contentsOf: URL(fileURLWithPath: reference)),
                       "resumed student differs from the uninterrupted run")
    }

    func testBadBiGRUInputsAreClearErrors() throws {
        let t = try setUpCache()
        func fails(_ args: [String], _ needles: [String], status: Int32 = 1, file: StaticString = #filePath, line: UInt = #line) {
            let r = runKD(args)
            XCTAssertEqual(r.status, status, "kd \(args.joined(separator: " ")): \(r.stderr)", file: file, line: line)
            XCTAssertFalse(r.signaled, file: file, line: line)
            for n in needles { XCTAssertTrue(r.stderr.contains(n), "stderr lacks '\(n)': \(r.stderr)", file: file, line: line) }
            XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: outDir.path)) ?? ["?"], [], "files written", file: file, line: line)
        }
        let out = outPath("s.h5")
        let attention = try biGRUSpec("attn", losses: ["soft_ce": 1, "attention_mse": 1])
        fails(distillArgs(t, student: attention, out: out), ["kd: error: \(attention)", "'losses.attention_mse'", "no hidden states or attention scores"])
        let hidden = try biGRUSpec("hid", losses: ["logit_mse": 1, "hidden_mse": 0.5])
        fails(distillArgs(t, student: hidden, out: out), ["'losses.hidden_mse'", "logit_mse"])
        let layerMap = try biGRUSpec("map", extra: ["layer_map": ["kind": "uniform"]])
        fails(distillArgs(t, student: layerMap, out: out), ["'layer_map'", "BiGRU"])
        let twoStage = try biGRUSpec("two", extra: ["schedule": ["kind": "two-stage", "intermediate_epochs": 1, "prediction_epochs": 1]])
        fails(distillArgs(t, student: twoStage, out: out), ["'schedule.kind'", "one-stage"])
        let good = try biGRUSpec("good")
        fails(distillArgs(t, student: good, out: out, ["--teacher-states", "online"]), ["--teacher-states", "BiGRU"], status: 2)
        // A BiGRU file where a BERT model is needed.
        let student = temp.appendingPathComponent("student.h5").path
        runOK(distillArgs(t, student: good, out: student, ["--stop-after", "2", "--checkpoint", temp.appendingPathComponent("c.ckpt.h5").path]))
        fails(["finetune", "--model", student, "--data", t.data, "--out", out], ["kd: error: \(student): is a BiGRU student", "takes a BERT model"])
    }
}
