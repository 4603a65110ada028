// `kd label`, `kd label merge` and `kd label check` end to end on the tiny fixture: a
// classifier teacher made once per process by fine-tuning tiny-bert on the toy sentiment
// set for two steps (FinetuneTests' ToyData), a second one with another seed, and an
// encoder-only teacher imported from tiny-bert with its classifier removed.
//
// Checked: a cache with every tensor kind is written and passes `kd label check`; the same
// flags give the same bytes; shards (2 and 3 ways, with different --batch and --threads)
// merge into exactly the bytes of one run; --dry-run prints the cost and writes nothing;
// and every bad input of the issue is one `kd: error:` line, exit code 1, nothing written.
import Foundation
import TestSupport
import XCTest

/// Teachers for the label tests, made once per test process.
enum LabelTeachers {
    /// `kd finetune` of tiny-bert on the toy set for two steps with `seed`.
    static func classifier(seed: String) -> Result<String, SharedModel.ImportFailure> {
        guard case .success(let model) = SharedModel.tiny, case .success(let data) = ToyData.folder else {
            return .failure(SharedModel.ImportFailure(message: "tiny model or toy data missing"))
        }
        let out = SharedModel.directory.appendingPathComponent("label-teacher-\(seed).h5").path
        let r = runKD(["finetune", "--model", model.path, "--data", data, "--out", out, "--epochs", "1", "--batch-size", "8",
                       "--max-length", "16", "--max-steps", "2", "--seed", seed, "--threads", "1", "--replace-head",
                       "--checkpoint", SharedModel.directory.appendingPathComponent("label-teacher-\(seed).ckpt.h5").path])
        return r.status == 0 && !r.signaled ? .success(out) : .failure(SharedModel.ImportFailure(message: r.stderr))
    }
    static let first = classifier(seed: "13")
    static let second = classifier(seed: "14")

    static func path(_ result: Result<String, SharedModel.ImportFailure>, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        switch result {
        case .success(let p): return p
        case .failure(let f):
            XCTFail("making a classifier teacher failed: \(f.message)", file: file, line: line)
            throw f
        }
    }
}

final class LabelTests: CLITestCase {
    func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    /// The full-featured label run on the toy set.
    func labelArgs(teacher: String, data: String, out: String, _ extra: [String] = []) -> [String] {
        ["label", "--teacher", teacher, "--data", data, "--out", out, "--hidden", "all", "--attention", "2",
         "--augment", "3", "--max-length", "16", "--threads", "1"] + extra
    }

    /// Runs kd expecting failure with exit status exactly 1 (bad input).
    func runFailsWith1(_ args: [String], contains: [String], file: StaticString = #filePath, line: UInt = #line) {
        let r = runFails(args, contains: contains, file: file, line: line)
        XCTAssertEqual(r.status, 1, "kd \(args.joined(separator: " ")): exit status", file: file, line: line)
    }

    /// Runs kd expecting failure with exit status exactly 2 (a flag's value is wrong: usage).
    func runFailsWith2(_ args: [String], contains: [String], file: StaticString = #filePath, line: UInt = #line) {
        let r = runFails(args, contains: contains, file: file, line: line)
        XCTAssertEqual(r.status, 2, "kd \(args.joined(separator: " ")): exit status", file: file, line: line)
    }

    func testLabelWritesACacheThatChecksAgainstItsTeacherAndData() throws {
        let (teacher, data) = (try LabelTeachers.path(LabelTeachers.first), try ToyData.path())
        let out = outPath("labels.h5")
        let r = runOK(labelArgs(teacher: teacher, data: data, out: out))
        for needle in ["label cache for toy: 96 training examples + ", "augmented copies", "hidden states 3 × 32 (layers 0,1,2)",
                       "attention 4 maps (layers 2)", "on disk", "labeled "] {
            XCTAssertTrue(r.stderr.contains(needle), "stderr lacks '\(needle)':\n\(r.stderr)")
        }
        XCTAssertTrue(r.stdout.contains("→ \(out)"), r.stdout)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: outDir.path), ["labels.h5"], "temporary files left")
        let check = runOK(["label", "check", out, "--teacher", teacher, "--data", data])
        XCTAssertTrue(check.stdout.contains("logits full, hidden [0,1,2], attention [2], shard 0/1 — matches"), check.stdout)
        // Same flags, same bytes; another seed, other copies.
        runOK(labelArgs(teacher: teacher, data: data, out: outPath("again.h5")))
        XCTAssertEqual(try bytes(out), try bytes(outPath("again.h5")))
        runOK(labelArgs(teacher: teacher, data: data, out: outPath("seed.h5"), ["--seed", "99"]))
        XCTAssertNotEqual(try bytes(out), try bytes(outPath("seed.h5")))
    }

    func testShardsMergeIntoTheBytesOfOneRun() throws {
        let (teacher, data) = (try LabelTeachers.path(LabelTeachers.first), try ToyData.path())
        let extra = ["--top-k", "1"]
        let single = outPath("single.h5")
        runOK(labelArgs(teacher: teacher, data: data, out: single, extra))
        // Two ways.
        for i in 0..<2 { runOK(labelArgs(teacher: teacher, data: data, out: temp.appendingPathComponent("two-\(i).h5").path, extra + ["--shard", "\(i)/2"])) }
        let merged2 = outPath("merged2.h5")
        let m = runOK(["label", "merge", "--out", merged2, temp.appendingPathComponent("two-1.h5").path, temp.appendingPathComponent("two-0.h5").path])
        XCTAssertTrue(m.stdout.contains("merged 2 shards"), m.stdout)
        XCTAssertEqual(try bytes(merged2), try bytes(single), "2 shards merged differ from one run")
        // Three ways, each shard with its own batch size and thread count.
        for (i, flags) in [["--batch-size", "5"], ["--threads", "2"], ["--batch", "1"]].enumerated() {
            runOK(labelArgs(teacher: teacher, data: data, out: temp.appendingPathComponent("three-\(i).h5").path, extra + ["--shard", "\(i)/3"]) + flags)
        }
        let merged3 = outPath("merged3.h5")
        runOK(["label", "merge", "--out", merged3] + (0..<3).map { temp.appendingPathComponent("three-\($0).h5").path })
        XCTAssertEqual(try bytes(merged3), try bytes(single), "3 shards merged differ from one run")
    }

    func testDryRunPrintsTheCostAndWritesNothing() throws {
        let (teacher, data) = (try LabelTeachers.path(LabelTeachers.first), try ToyData.path())
        let r = runOK(labelArgs(teacher: teacher, data: data, out: outPath("labels.h5"), ["--dry-run"]))
        for needle in ["96 training examples", "token ids + metadata", "logits (all 2)", "hidden states 3 × 32", "uncompressed", "on disk"] {
            XCTAssertTrue(r.stdout.contains(needle), "dry run lacks '\(needle)':\n\(r.stdout)")
        }
        assertOutDirEmpty("kd label --dry-run")
    }

    func testBadInputs() throws {
        let (teacher, data) = (try LabelTeachers.path(LabelTeachers.first), try ToyData.path())
        let out = outPath("labels.h5")
        // A teacher without a classifier head.
        let hf = try copyTinyBert()
        var editor = try SafetensorsEditor(hf.appendingPathComponent("model.safetensors"))
        editor.remove("classifier.weight")
        editor.remove("classifier.bias")
        try editor.write(to: hf.appendingPathComponent("model.safetensors"))
        let encoder = temp.appendingPathComponent("encoder.h5").path
        runOK(["import", hf.path, "--out", encoder])
        runFailsWith1(labelArgs(teacher: encoder, data: data, out: out), contains: ["encoder.h5: the teacher has no classifier head", "kd finetune"])
        // Label names differ: tiny-bert's own head (negative, neutral, positive) on the two-label toy set.
        runFailsWith1(labelArgs(teacher: try SharedModel.tinyPath(), data: data, out: out),
                      contains: ["labels [negative, positive] differ from the teacher's [negative, neutral, positive]"])
        // --shard.
        runFailsWith2(labelArgs(teacher: teacher, data: data, out: out, ["--shard", "3/2"]), contains: ["--shard 3/2", "0..<2"])
        runFailsWith2(labelArgs(teacher: teacher, data: data, out: out, ["--shard", "a/b"]), contains: ["--shard 'a/b' is not i/n"])
        runFailsWith2(labelArgs(teacher: teacher, data: data, out: out, ["--shard", "0/0"]), contains: ["--shard 0/0"])
        // Layers out of range (tiny has 2 layers: hidden 0…2, attention 1…2).
        runFailsWith2(labelArgs(teacher: teacher, data: data, out: out, ["--hidden", "0,3"]),
                      contains: ["--hidden layer 3 is out of range", "has 2 layers", "0 (embeddings) … 2"])
        runFailsWith2(labelArgs(teacher: teacher, data: data, out: out, ["--attention", "0"]), contains: ["--attention layer 0 is out of range"])
        runFailsWith2(labelArgs(teacher: teacher, data: data, out: out, ["--hidden", "x"]), contains: ["--hidden 'x'", "not a layer number"])
        // Over --max-disk.
        runFailsWith1(labelArgs(teacher: teacher, data: data, out: out, ["--max-disk", "10K"]),
                      contains: ["over --max-disk 10K", "--hidden", "online", "--dry-run"])
        runFailsWith2(labelArgs(teacher: teacher, data: data, out: out, ["--max-disk", "lots"]), contains: ["--max-disk 'lots' is not a size"])
        // Other flags.
        runFailsWith2(labelArgs(teacher: teacher, data: data, out: out, ["--top-k", "2"]), contains: ["--top-k 2 keeps every one of the teacher's 2 classes"])
        runFailsWith2(labelArgs(teacher: teacher, data: data, out: out, ["--augment-prob", "1.5"]), contains: ["--augment-prob 1.5"])
        runFailsWith1(labelArgs(teacher: teacher, data: temp.appendingPathComponent("nope").path, out: out), contains: ["no such dataset folder"])
    }

    func testMergeAndCheckBadInputs() throws {
        let (teacher, data) = (try LabelTeachers.path(LabelTeachers.first), try ToyData.path())
        let other = try LabelTeachers.path(LabelTeachers.second)
        func part(_ name: String, _ shard: String, teacher: String) -> String {
            let p = temp.appendingPathComponent(name).path
            runOK(["label", "--teacher", teacher, "--data", data, "--out", p, "--max-length", "16", "--shard", shard])
            return p
        }
        let p0 = part("p0.h5", "0/2", teacher: teacher), p1 = part("p1.h5", "1/2", teacher: teacher)
        let q1 = part("q1.h5", "1/2", teacher: other), r0 = part("r0.h5", "0/3", teacher: teacher)
        let out = outPath("merged.h5")
        runFailsWith1(["label", "merge", "--out", out, p0], contains: ["shard 1/2 missing", "pass every part 0..<2"])
        runFailsWith1(["label", "merge", "--out", out, p0, p0, p1], contains: ["shard 0/2 is given twice", "p0.h5"])
        runFailsWith1(["label", "merge", "--out", out, p0, q1], contains: ["q1.h5 and", "p0.h5 are not shards of one run", "teacher_sha256"])
        runFailsWith1(["label", "merge", "--out", out, p0, r0], contains: ["r0.h5 is shard 0/3", "same --shard i/n split"])
        runFailsWith1(["label", "merge", "--out", out, p0, teacher], contains: ["not a Distillery label cache"])
        runFailsWith1(["label", "merge", "--out", out], contains: ["no shard files given"])
        // A cache checked against another teacher, or other data, before training.
        runFailsWith1(["label", "check", p0, "--teacher", other, "--data", data],
                      contains: ["p0.h5", "made with teacher", "label-teacher-13.h5", "label-teacher-14.h5"])
        let changed = temp.appendingPathComponent("changed").path
        try FileManager.default.copyItem(atPath: data, toPath: changed)
        var train = try String(contentsOfFile: changed + "/train.jsonl", encoding: .utf8)
        train += "{\"id\":\"x\",\"text\":\"the plot is good\",\"label\":\"positive\"}\n"
        try train.write(toFile: changed + "/train.jsonl", atomically: true, encoding: .utf8)
        runFailsWith1(["label", "check", p0, "--teacher", teacher, "--data", changed], contains: ["made from data 'toy'", "changed"])
    }
}
