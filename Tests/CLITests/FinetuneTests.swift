// `kd finetune` and `kd eval` end to end on the tiny fixture: the tiny-bert model imported
// once per process, and a toy two-class sentiment set prepared from the committed
// Tests/Fixtures/train/toy-sentiment.csv (120 sentences made only of tiny-bert vocabulary
// words: "<subject> is|was [very] <adjective>", the adjective decides the label).
//
// Checked: training lowers the loss and beats chance on test; the same seed gives the same
// output and checkpoint bytes; a run SIGKILLed mid-epoch and resumed ends bit-identical to
// an uninterrupted run (1 thread); resuming with another config or from another model,
// and every bad input of issue 3, is a clear `kd: error:` with nothing written.
import Foundation
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The toy dataset prepared once per test process.
enum ToyData {
    static let csv = Fixtures.url("train/toy-sentiment.csv")
    /// `kd data prepare --csv` output folder, or the failed run's stderr.
    static let folder: Result<String, SharedModel.ImportFailure> = {
        let out = SharedModel.directory.appendingPathComponent("toy").path
        let r = runKD(["data", "prepare", "--csv", csv.path, "--text-column", "text", "--label-column", "label",
                       "--name", "toy", "--out", out])
        return r.status == 0 && !r.signaled ? .success(out) : .failure(SharedModel.ImportFailure(message: r.stderr))
    }()

    static func path(file: StaticString = #filePath, line: UInt = #line) throws -> String {
        switch folder {
        case .success(let p): return p
        case .failure(let f):
            XCTFail("kd data prepare of the toy set failed: \(f.message)", file: file, line: line)
            throw f
        }
    }
}

final class FinetuneTests: CLITestCase {
    /// Flags of the standard tiny run: 12 steps per epoch, 120 steps, eval every 6; a random
    /// head (these expectations were measured with it; `DefaultsTests` covers the probe
    /// default) over tiny-bert's own 3-way head, checkpoints kept for the tests to read.
    func runArgs(model: String, data: String, out: String, _ extra: [String] = []) -> [String] {
        ["finetune", "--model", model, "--data", data, "--out", out, "--epochs", "10", "--batch-size", "8",
         "--lr", "1e-3", "--max-length", "16", "--eval-every", "6", "--threads", "1", "--replace-head", "--keep-checkpoint"]
            + (extra.contains("--head-init") ? [] : ["--head-init", "random"]) + extra
    }

    func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    /// Losses from the plain progress lines (`step N/M (...): loss X, ...`).
    func losses(_ stderr: String) -> [Double] {
        stderr.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("step "), let r = line.range(of: ": loss ") else { return nil }
            return Double(line[r.upperBound...].prefix { $0 != "," })
        }
    }

    func testTrainingLowersLossAndLearnsToyTask() throws {
        let (model, data) = (try SharedModel.tinyPath(), try ToyData.path())
        let out = outPath("toy.h5")
        let r = runOK(runArgs(model: model, data: data, out: out, ["--lr", "2e-3", "--checkpoint", temp.appendingPathComponent("c.h5").path]))
        let l = losses(r.stderr)
        XCTAssertGreaterThan(l.count, 5, r.stderr)
        // Chance level is ln 2 ≈ 0.693; the mean loss of the last logged steps must fall well below it.
        XCTAssertLessThan(l.last!, 0.75 * l.first!, "loss did not drop: \(l)")
        XCTAssertTrue(r.stdout.contains("best dev macro-F1"), r.stdout)
        // The output is a teacher file with the dataset's labels that kd eval / predict use.
        let info = runOK(["info", out, "--tensors"])
        XCTAssertTrue(info.stdout.contains("labels: negative, positive"), info.stdout)
        let eval = runOK(["eval", "--model", out, "--data", data, "--split", "test", "--json"])
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(json["examples"] as? Int, 12)
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(json["accuracy"] as? Double), 0.75, eval.stdout)
        let confusion = try XCTUnwrap(json["confusion"] as? [[Int]])
        let trace = confusion.indices.reduce(0) { $0 + confusion[$1][$1] }
        XCTAssertEqual(json["accuracy"] as? Double ?? -1, Double(trace) / 12, accuracy: 1e-6)
        let input = try write("in.txt", "the movie was very great\nthe story is terrible\n")
        let predict = runOK(["predict", "--model", out, "--input", input])
        XCTAssertTrue(predict.stdout.contains("\"label\":\"positive\"") || predict.stdout.contains("\"label\":\"negative\""), predict.stdout)
        let table = runOK(["eval", "--model", out, "--data", data, "--split", "dev"])
        for needle in ["accuracy", "macro-F1", "precision", "confusion matrix", "negative", "positive"] {
            XCTAssertTrue(table.stdout.contains(needle), table.stdout)
        }
        // Fidelity to a teacher: a model agrees with itself everywhere, at KL 0.
        let selfEval = runOK(["eval", "--model", out, "--data", data, "--split", "test", "--teacher", out, "--json"])
        let selfJSON = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(selfEval.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(selfJSON["agreement"] as? Double, 1.0, selfEval.stdout)
        XCTAssertEqual(selfJSON["mean_kl"] as? Double, 0.0, selfEval.stdout)
        XCTAssertTrue(runOK(["eval", "--model", out, "--data", data, "--teacher", out]).stdout.contains("agreement 1.0000"))
        // A teacher with other labels (the tiny fixture's 3-way head) is refused, naming the file.
        let bad = runKD(["eval", "--model", out, "--data", data, "--teacher", model])
        XCTAssertEqual(bad.status, 1, bad.stderr)
        XCTAssertTrue(bad.stderr.contains("kd: error: \(model): the teacher's labels (negative, neutral, positive) differ"), bad.stderr)
    }

    func testSameSeedGivesIdenticalBytes() throws {
        let (model, data) = (try SharedModel.tinyPath(), try ToyData.path())
        var outputs: [Data] = [], checkpoints: [Data] = []
        for (i, seed) in ["13", "13", "14"].enumerated() {
            let ckpt = temp.appendingPathComponent("c\(i).h5").path
            runOK(runArgs(model: model, data: data, out: outPath("m\(i).h5"), ["--seed", seed, "--checkpoint", ckpt, "--epochs", "3"]))
            outputs.append(try bytes(outPath("m\(i).h5")))
            checkpoints.append(try bytes(ckpt))
        }
        XCTAssertEqual(outputs[0], outputs[1], "same seed, same threads: output files differ")
        XCTAssertEqual(checkpoints[0], checkpoints[1], "same seed, same threads: checkpoints differ")
        XCTAssertNotEqual(outputs[0], outputs[2], "another seed gave the same weights")
    }

    /// Deterministic kill: the run pauses after step 19 (checkpoints at 8 and 16, so step
    /// 17–19 are lost), is SIGKILLed there, and resumes from the step-16 checkpoint.
    func testSIGKILLMidEpochThenResumeIsBitIdentical() throws {
        let (model, data) = (try SharedModel.tinyPath(), try ToyData.path())
        let reference = temp.appendingPathComponent("reference.h5").path
        runOK(runArgs(model: model, data: data, out: reference, ["--checkpoint-every", "8", "--checkpoint", temp.appendingPathComponent("ref.ckpt.h5").path]))

        let out = outPath("resumed.h5"), ckpt = temp.appendingPathComponent("run.ckpt.h5").path
        let args = runArgs(model: model, data: data, out: out, ["--checkpoint-every", "8", "--checkpoint", ckpt])
        let log = temp.appendingPathComponent("killed.log")
        let p = try start(args + ["--debug-pause-after-step", "19"], log: log)
        let paused = waitUntil(timeout: 120) { ((try? String(contentsOf: log, encoding: .utf8)) ?? "").contains("paused after step 19") }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        XCTAssertTrue(paused, "the run never reached step 19: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
        XCTAssertEqual(p.terminationReason, .uncaughtSignal)
        XCTAssertEqual(p.terminationStatus, SIGKILL)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "a killed run must not leave an output file")
        XCTAssertTrue(FileManager.default.fileExists(atPath: ckpt), "no checkpoint after 19 steps with --checkpoint-every 8")

        let r = runOK(args + ["--resume", ckpt])
        XCTAssertTrue(r.stderr.contains("resuming from \(ckpt) at step 16/120"), r.stderr)
        XCTAssertEqual(try bytes(out), try bytes(reference), "resumed run's weights differ from the uninterrupted run")
        XCTAssertEqual(try bytes(ckpt), try bytes(temp.appendingPathComponent("ref.ckpt.h5").path), "final checkpoints differ")
    }

    /// Undirected kill: SIGKILL as soon as the first checkpoint lands, wherever the run is
    /// (mid-step, mid-evaluation, mid-write of the next checkpoint); resume must still match.
    func testSIGKILLAtFirstCheckpointThenResumeIsBitIdentical() throws {
        let (model, data) = (try SharedModel.tinyPath(), try ToyData.path())
        let extra = ["--epochs", "30", "--checkpoint-every", "5"]
        let reference = temp.appendingPathComponent("reference.h5").path
        runOK(runArgs(model: model, data: data, out: reference, extra + ["--checkpoint", temp.appendingPathComponent("ref.ckpt.h5").path]))

        let out = outPath("resumed.h5"), ckpt = temp.appendingPathComponent("run.ckpt.h5").path
        let args = runArgs(model: model, data: data, out: out, extra + ["--checkpoint", ckpt])
        let p = try start(args, log: temp.appendingPathComponent("killed.log"))
        let appeared = waitUntil(timeout: 120) { FileManager.default.fileExists(atPath: ckpt) }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        XCTAssertTrue(appeared)
        if p.terminationReason == .uncaughtSignal {
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), "a killed run must not leave an output file")
        }
        runOK(args + ["--resume", ckpt])
        XCTAssertEqual(try bytes(out), try bytes(reference), "resumed run's weights differ from the uninterrupted run")
    }

    func testResumeWithChangedHyperParameterFails() throws {
        let (model, data) = (try SharedModel.tinyPath(), try ToyData.path())
        let ckpt = temp.appendingPathComponent("run.ckpt.h5").path
        runOK(runArgs(model: model, data: data, out: temp.appendingPathComponent("first.h5").path, ["--epochs", "2", "--checkpoint", ckpt]))
        let before = try bytes(ckpt)
        runFails(runArgs(model: model, data: data, out: outPath("x.h5"), ["--epochs", "2", "--checkpoint", ckpt, "--resume", ckpt, "--lr", "3e-3"]),
                 contains: ["cannot resume with a different training config", "learning_rate differs", "0.001 in the checkpoint, 0.003 now"])
        runFails(runArgs(model: model, data: data, out: outPath("x.h5"), ["--epochs", "2", "--checkpoint", ckpt, "--resume", ckpt, "--batch-size", "4"]),
                 contains: ["batch_size differs"])
        XCTAssertEqual(try bytes(ckpt), before, "a refused resume modified the checkpoint")
    }

    func testResumeFromAnotherModelFails() throws {
        let (model, data) = (try SharedModel.tinyPath(), try ToyData.path())
        let ckpt = temp.appendingPathComponent("run.ckpt.h5").path, other = temp.appendingPathComponent("other.h5").path
        runOK(runArgs(model: model, data: data, out: other, ["--epochs", "1", "--checkpoint", ckpt]))
        // Same architecture, different weights: the fine-tuned file as --model.
        runFails(runArgs(model: other, data: data, out: outPath("x.h5"), ["--epochs", "1", "--checkpoint", temp.appendingPathComponent("c2.h5").path, "--resume", ckpt]),
                 contains: ["checkpoint comes from another model", "model_fingerprint"])
        // A file that is not a checkpoint.
        runFails(runArgs(model: model, data: data, out: outPath("x.h5"), ["--epochs", "1", "--resume", model]),
                 contains: ["not a Distillery checkpoint", "distillery-teacher"])
        runFails(runArgs(model: model, data: data, out: outPath("x.h5"), ["--resume", temp.appendingPathComponent("none.h5").path]),
                 contains: ["no such checkpoint"])
    }

    /// `--pooling mean`: the classifier reads the masked mean of the last hidden states; the
    /// output has no pooler, says so in its config, learns the toy task, and a fine-tune
    /// that starts from it keeps mean pooling unless told otherwise.
    func testMeanPoolingHead() throws {
        let (model, data) = (try SharedModel.tinyPath(), try ToyData.path())
        let out = outPath("mean.h5")
        runOK(runArgs(model: model, data: data, out: out, ["--lr", "2e-3", "--pooling", "mean", "--checkpoint", temp.appendingPathComponent("c.h5").path]))
        let info = runOK(["info", out, "--tensors"])
        XCTAssertFalse(info.stdout.contains("pooler.dense"), info.stdout)
        XCTAssertTrue(info.stdout.contains("classifier.weight"), info.stdout)
        XCTAssertTrue(info.stdout.contains("classifier: on the mean of the last hidden states (no pooler)"), info.stdout)
        let eval = runOK(["eval", "--model", out, "--data", data, "--split", "test", "--json"])
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as? [String: Any])
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(json["accuracy"] as? Double), 0.75, eval.stdout)
        // Continuing from the mean-pooled model: still no pooler; --pooling cls brings a fresh one.
        runOK(runArgs(model: out, data: data, out: outPath("again.h5"), ["--epochs", "1", "--checkpoint", temp.appendingPathComponent("c2.h5").path]))
        XCTAssertFalse(runOK(["info", outPath("again.h5"), "--tensors"]).stdout.contains("pooler.dense"))
        runOK(runArgs(model: out, data: data, out: outPath("cls.h5"), ["--epochs", "1", "--pooling", "cls", "--checkpoint", temp.appendingPathComponent("c3.h5").path]))
        let clsInfo = runOK(["info", outPath("cls.h5"), "--tensors"]).stdout
        XCTAssertTrue(clsInfo.contains("pooler.dense") && clsInfo.contains("classifier: on the tanh pooler over [CLS]"), clsInfo)
    }

    /// `--head-init probe` (LP-FT): the head is first fitted on the frozen features. With the
    /// first step at learning rate 0 (warm-up), the kept model is the probe's head on the
    /// untouched encoder, so its train accuracy is the one the probe reports. A checkpoint of
    /// a probe run does not resume as a random-head run.
    func testProbeHeadInit() throws {
        let (model, data) = (try SharedModel.tinyPath(), try ToyData.path())
        let out = temp.appendingPathComponent("probe.h5").path, ckpt = temp.appendingPathComponent("probe.ckpt.h5").path
        let r = runOK(runArgs(model: model, data: data, out: out, ["--head-init", "probe", "--max-steps", "1", "--eval-every", "1",
                                                                   "--checkpoint", ckpt]))
        let line = try XCTUnwrap(r.stderr.split(separator: "\n").first { $0.hasPrefix("linear probe (--head-init probe): train accuracy ") }, r.stderr)
        let probeAccuracy = try XCTUnwrap(Double(line.split(separator: " ")[6].dropLast()), String(line))
        let eval = runOK(["eval", "--model", out, "--data", data, "--split", "train", "--max-length", "16", "--json"])
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as? [String: Any])
        let trainRows = try String(contentsOfFile: data + "/train.jsonl", encoding: .utf8).split(separator: "\n").count
        XCTAssertEqual(try XCTUnwrap(json["accuracy"] as? Double), probeAccuracy, accuracy: 1.0 / Double(trainRows) + 1e-4, eval.stdout)
        runFails(runArgs(model: model, data: data, out: outPath("x.h5"), ["--head-init", "random", "--max-steps", "1", "--eval-every", "1",
                                                                          "--checkpoint", ckpt, "--resume", ckpt]),
                 contains: ["head_init differs", "\"probe\" in the checkpoint"])
    }

    func testBadInputs() throws {
        let (model, data) = (try SharedModel.tinyPath(), try ToyData.path())
        let out = outPath("x.h5")
        // Dataset folder that does not exist.
        runFails(runArgs(model: model, data: temp.appendingPathComponent("data/nope").path, out: out),
                 contains: ["no such dataset folder", "kd data prepare"])
        runFails(["eval", "--model", model, "--data", "data/no-such-dataset"], contains: ["no such dataset folder"])
        // A label in dev that train does not have.
        let bad = temp.appendingPathComponent("bad").path
        try FileManager.default.copyItem(atPath: data, toPath: bad)
        var dev = try String(contentsOfFile: bad + "/dev.jsonl", encoding: .utf8)
        dev += "{\"id\":\"x\",\"text\":\"the plot is ok\",\"label\":\"sarcastic\"}\n"
        try dev.write(toFile: bad + "/dev.jsonl", atomically: true, encoding: .utf8)
        runFails(runArgs(model: model, data: bad, out: out), contains: ["dev.jsonl:13", "label 'sarcastic' is unknown to train.jsonl"])
        // --max-length over the model's 64 positions.
        runFails(runArgs(model: model, data: data, out: out, ["--max-length", "65"]), contains: ["--max-length 65 exceeds the model's 64 positions"])
        // Model files that are not Distillery files.
        runFails(runArgs(model: CLIFixtures.tinyBert.appendingPathComponent("model.safetensors").path, data: data, out: out),
                 contains: ["not an HDF5 file", "kd import"])
        let ckpt = temp.appendingPathComponent("c.h5").path
        runOK(runArgs(model: model, data: data, out: temp.appendingPathComponent("m.h5").path, ["--epochs", "1", "--checkpoint", ckpt]))
        runFails(runArgs(model: ckpt, data: data, out: out), contains: ["distillery-checkpoint", "kd import"])
        runFails(["eval", "--model", ckpt, "--data", data], contains: ["distillery-checkpoint"])
        // Flags.
        runFails(runArgs(model: model, data: data, out: out, ["--schedule", "step"]), contains: ["--schedule 'step'"])
        runFails(runArgs(model: model, data: data, out: out, ["--warmup", "2.5"]), contains: ["--warmup '2.5'"])
        runFails(runArgs(model: model, data: data, out: out, ["--pooling", "max"]), contains: ["--pooling 'max'", "mean, cls"])
        runFails(runArgs(model: model, data: data, out: out, ["--head-init", "zeros"]), contains: ["--head-init 'zeros'", "random, probe"])
        // kd eval: a dataset whose labels the model does not know.
        runFails(["eval", "--model", temp.appendingPathComponent("m.h5").path, "--data", bad, "--split", "dev"],
                 contains: ["label 'sarcastic' is unknown to the model"])
    }
}
