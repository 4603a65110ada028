// The bad-input catalogue's training tables: finetune, eval, label (run, merge, check),
// distill and the benches — numeric flags that overflow or are not finite, hostile label
// caches and checkpoints, student specs with absurd sizes, outputs that are inputs.
import Foundation
import TestSupport
import WeightIO
import XCTest
#if canImport(Glibc)
import Glibc
#endif

extension BadInputCatalogueTests {
    /// The tiny fine-tune run every finetune case starts from (4 steps of 8, one thread).
    func finetuneArgs(_ extra: [String], model: String? = nil, data: String? = nil, out: String? = nil) throws -> [String] {
        ["finetune", "--model", try model ?? SharedModel.tinyPath(), "--data", try data ?? ToyData.path(), "--out", out ?? outPath("f.h5"),
         "--epochs", "1", "--batch-size", "8", "--max-length", "16", "--max-steps", "4", "--threads", "1", "--replace-head",
         "--head-init", "random", "--checkpoint", outPath("f.ckpt.h5")] + extra
    }

    /// A checkpoint of the tiny fine-tune run paused after step 2 (its epoch order saved),
    /// rewritten with `edit` applied to the saved order; the run's arguments to resume it.
    func hostileCheckpoint(_ name: String, _ edit: (inout CheckpointFile.Order) -> Void) throws -> (path: String, args: [String]) {
        let ckpt = temp.appendingPathComponent("\(name).ckpt.h5").path
        let args = try finetuneArgs(["--checkpoint", ckpt, "--checkpoint-every", "1"], out: outPath("\(name).h5"))
        let log = temp.appendingPathComponent("\(name).log")
        let p = try start(args + ["--debug-pause-after-step", "2"], log: log)
        let paused = waitUntil(timeout: 120) { ((try? String(contentsOf: log, encoding: .utf8)) ?? "").contains("paused after step 2") }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        XCTAssertTrue(paused, "the run never paused: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
        try FileManager.default.removeItem(at: log)
        for leftover in try FileManager.default.contentsOfDirectory(atPath: outDir.path) {   // the paused run's metrics log
            try FileManager.default.removeItem(atPath: outPath(leftover))
        }
        var file = try CheckpointFile.read(URL(fileURLWithPath: ckpt)) { names in names.sorted() }
        var order = try XCTUnwrap(file.order, "a mid-epoch checkpoint saves its order")
        edit(&order)
        file.order = order
        try FileManager.default.removeItem(atPath: ckpt)
        try file.write(to: URL(fileURLWithPath: ckpt))
        return (ckpt, args + ["--resume", ckpt])
    }

    /// `kd finetune` and `kd eval`.
    func finetuneCases() throws -> [BadInputCase] {
        var cases: [BadInputCase] = []
        func finetune(_ name: String, _ extra: [String], _ needles: [String]) throws {
            cases.append(BadInputCase(name: name, args: try finetuneArgs(extra), contains: needles))
        }
        for (flag, value) in [("--warmup", "1e300"), ("--warmup", "-1"), ("--warmup", "nan"), ("--warmup", "inf"), ("--epochs", "9223372036854775807"),
                              ("--epochs", "0"), ("--epochs", "-1"), ("--lr", "-1"), ("--lr", "nan"), ("--lr", "inf"), ("--lr", "0"),
                              ("--batch-size", "0"), ("--batch-size", "9223372036854775807"), ("--max-steps", "0"), ("--max-steps", "-5"),
                              ("--eval-every", "0"), ("--checkpoint-every", "-1"), ("--weight-decay", "-1"), ("--weight-decay", "nan"),
                              ("--clip", "-1"), ("--clip", "inf"), ("--max-length", "100000"), ("--seed", "1e3"), ("--threads", "0")] {
            try finetune("finetune \(flag) \(value)", flagArgs(flag, value), [flag])
        }
        // A negative number after a flag is read as a flag: the message says how to write it.
        try finetune("finetune --lr -1 (as two words)", ["--lr", "-1"], ["--lr -1", "--lr=-1"])
        // --epochs huge with no --max-steps: the step count must not wrap.
        cases.append(BadInputCase(name: "finetune --epochs 2^62 without --max-steps",
                                  args: try finetuneArgs(["--epochs", "4611686018427387904"]).filter { $0 != "--max-steps" && $0 != "4" }, contains: ["--epochs"]))
        let model = try teacherVariant("ft-model.h5") { _ in }
        cases.append(BadInputCase(name: "finetune --out is --model", args: try finetuneArgs([], model: model, out: model),
                                  contains: ["--out", model, "is an input", "--force"]))
        let data = try dataVariant("ft-data", "train.jsonl", try Data(contentsOf: URL(fileURLWithPath: try ToyData.path() + "/train.jsonl")))
        cases.append(BadInputCase(name: "finetune --checkpoint is the data's train.jsonl",
                                  args: try finetuneArgs([], data: data) + ["--checkpoint", data + "/train.jsonl"], contains: ["--checkpoint", "train.jsonl", "is an input"]))
        let badLine = try dataVariant("bad-line", "train.jsonl", Data("{\"id\":\"a\",\"text\":\"good\",\"label\":\"positive\"}\n{\"text\": 5}\n".utf8))
        try finetune("train.jsonl line not an example", ["--data", badLine], ["\(badLine)/train.jsonl:2"])
        let unknown = try dataVariant("unknown-label", "train.jsonl", Data("{\"id\":\"a\",\"text\":\"good\",\"label\":\"purple\"}\n".utf8))
        try finetune("train.jsonl unknown label", ["--data", unknown], ["train.jsonl:1", "purple"])
        let noManifest = temp.appendingPathComponent("no-manifest")
        try FileManager.default.createDirectory(at: noManifest, withIntermediateDirectories: true)
        try finetune("data without manifest", ["--data", noManifest.path], [noManifest.path, "manifest.json"])
        let typed = try dataVariant("typed-manifest", "manifest.json", Data(#"{"format":"distillery-dataset","formatVersion":1,"labels":"positive"}"#.utf8))
        try finetune("manifest with wrong types", ["--data", typed], ["manifest.json", "is missing"])
        let escape = try dataVariant("escape", "manifest.json", try String(contentsOfFile: try ToyData.path() + "/manifest.json", encoding: .utf8)
            .replacingOccurrences(of: "\"train.jsonl\"", with: "\"../../../../etc/passwd\"").data(using: .utf8)!)
        try finetune("manifest file name escaping the folder", ["--data", escape], ["manifest.json", "../../../../etc/passwd"])
        try finetune("--resume is the model", ["--resume", try SharedModel.tinyPath()], [try SharedModel.tinyPath(), "checkpoint"])
        try finetune("--resume is a directory", ["--resume", temp.path], [temp.path])
        let duplicate = try hostileCheckpoint("dup-order") { $0.indices[1] = $0.indices[0] }
        cases.append(BadInputCase(name: "checkpoint order names an example twice", args: duplicate.args, contains: [duplicate.path, "data order", "twice"]))
        let outside = try hostileCheckpoint("out-order") { $0.indices[0] = 1 << 40 }
        cases.append(BadInputCase(name: "checkpoint order outside the data", args: outside.args, contains: [outside.path, "data order", "1099511627776"]))
        let offsets = try hostileCheckpoint("offsets") { $0.offsets[1] = -3 }
        cases.append(BadInputCase(name: "checkpoint batch offsets out of order", args: offsets.args, contains: [offsets.path, "offsets"]))

        // eval
        let (tiny, toy) = (try SharedModel.tinyPath(), try ToyData.path())
        cases.append(BadInputCase(name: "eval --split bogus", args: ["eval", "--model", tiny, "--data", toy, "--split", "bogus"], contains: ["--split", "bogus"]))
        cases.append(BadInputCase(name: "eval --batch-size 0", args: ["eval", "--model", tiny, "--data", toy, "--batch-size", "0"], contains: ["--batch-size"]))
        cases.append(BadInputCase(name: "eval --batch-size huge", args: ["eval", "--model", tiny, "--data", toy, "--batch-size", "9223372036854775807"],
                                  contains: ["--batch-size"]))
        cases.append(BadInputCase(name: "eval --data missing", args: ["eval", "--model", tiny, "--data", temp.appendingPathComponent("none").path], contains: ["none", "no such"]))
        let teacher = try LabelTeachers.path(LabelTeachers.first)
        cases.append(BadInputCase(name: "eval --teacher with other labels", args: ["eval", "--model", teacher, "--data", toy, "--teacher", tiny], contains: [tiny, "labels"]))
        return cases
    }

    /// `kd label` (run, merge, check).
    func labelCases() throws -> [BadInputCase] {
        let (teacher, data) = (try LabelTeachers.path(LabelTeachers.first), try ToyData.path())
        let out = outPath("l.h5")
        var cases: [BadInputCase] = []
        func label(_ name: String, _ extra: [String], _ needles: [String]) {
            cases.append(BadInputCase(name: name, args: ["label", "--teacher", teacher, "--data", data, "--out", out, "--max-length", "16", "--threads", "1"] + extra,
                                      contains: needles))
        }
        for (flag, value) in [("--max-disk", "1e300"), ("--max-disk", "-5G"), ("--max-disk", "99999999999999999999G"), ("--max-disk", "nan"),
                              ("--max-disk", "9223372036854775807T"), ("--top-k", "-1"), ("--augment", "-1"), ("--augment", "9223372036854775807"),
                              ("--augment-prob", "nan"), ("--augment-prob", "-0.5"), ("--neighbours", "0"), ("--neighbours", "-1"), ("--shard", "1/-1"),
                              ("--shard", "9223372036854775807/9223372036854775807"), ("--hidden", "99"), ("--hidden", "-1"), ("--attention", "9223372036854775807"),
                              ("--batch-size", "0"), ("--max-length", "-16")] {
            label("label \(flag) \(value)", flagArgs(flag, value), [flag])
        }
        cases.append(BadInputCase(name: "label --out is --teacher", args: ["label", "--teacher", teacher, "--data", data, "--out", teacher],
                                  contains: ["--out", teacher, "is an input"]))
        let dataCopy = try dataVariant("label-data", "train.jsonl", try Data(contentsOf: URL(fileURLWithPath: data + "/train.jsonl")))
        cases.append(BadInputCase(name: "label --out is the data's manifest", args: ["label", "--teacher", teacher, "--data", dataCopy, "--out", dataCopy + "/manifest.json"],
                                  contains: ["--out", "manifest.json", "is an input"]))
        let emptyTrain = try dataVariant("empty-train", "train.jsonl", Data())
        label("training split with no rows", ["--data", emptyTrain], [emptyTrain])

        // Hostile caches: checked at open, by check and by merge.
        let cache = try cachePath()
        let gold = try cacheVariant("gold.h5", from: cache) { $0[3].label = 2 }
        let negativeGold = try cacheVariant("neg-gold.h5", from: cache) { $0[1].label = -7 }
        let row = try cacheVariant("row.h5", from: cache) { $0[2].sourceRow = 100_000 }
        let token = try cacheVariant("token.h5", from: cache) { $0[0].tokenIDs[1] = 1_000_000 }
        for (file, needles) in [(gold, ["gold label 2", "0..<2"]), (negativeGold, ["gold label -7"]), (row, ["source row", "100000"]),
                                (token, ["token id 1000000", "0..<95"])] {
            cases.append(BadInputCase(name: "label check \(URL(fileURLWithPath: file).lastPathComponent)",
                                      args: ["label", "check", file, "--teacher", teacher, "--data", data], contains: [file] + needles))
        }
        cases.append(BadInputCase(name: "label merge --out is a part", args: ["label", "merge", "--out", cache, cache], contains: ["--out", cache, "is an input"]))
        cases.append(BadInputCase(name: "label merge of a hostile cache", args: ["label", "merge", "--out", outPath("m.h5"), gold], contains: [gold, "gold label 2"]))
        cases.append(BadInputCase(name: "label check of a directory", args: ["label", "check", temp.path, "--teacher", teacher, "--data", data], contains: [temp.path, "directory"]))
        return cases
    }

    /// `kd distill`: student specs with absurd sizes and wrong types, hostile caches, flags.
    func distillCases() throws -> [BadInputCase] {
        let (teacher, data, labels) = (try LabelTeachers.path(LabelTeachers.first), try ToyData.path(), try cachePath())
        var cases: [BadInputCase] = []
        func distill(_ name: String, student: String? = nil, labels cacheFile: String? = nil, out: String? = nil, extra: [String] = [], _ needles: [String]) throws {
            let spec = try student ?? studentSpec("ok")
            cases.append(BadInputCase(name: name, args: ["distill", "--teacher", teacher, "--student", spec, "--labels", cacheFile ?? labels, "--data", data,
                                                         "--out", out ?? outPath("s.h5"), "--threads", "1"] + extra, contains: needles))
        }
        for (key, value) in [("layers", -1 as Any), ("layers", 1 << 40), ("layers", 0), ("hidden_size", 0), ("hidden_size", 1 << 40), ("heads", 0),
                             ("heads", 3), ("intermediate_size", 1 << 40), ("intermediate_size", -64), ("layers", "3"), ("layers", 1.5), ("heads", NSNull())] {
            let spec = try studentSpec("arch-\(key)-\(cases.count)", architecture: [key: value])
            try distill("student \(key)=\(value)", student: spec, [spec, key])
        }
        for (key, value) in [("temperature", -1 as Any), ("temperature", 0), ("temperature", "2"), ("losses", ["soft_ce": -1]),
                             ("losses", ["soft_ce": "1"]), ("schedule", ["kind": "one-stage", "epochs": 1 << 62]), ("schedule", ["kind": "one-stage", "epochs": -1]),
                             ("layer_map", ["kind": "explicit", "map": [1 << 40]]), ("unknown_key", 1)] {
            let spec = try studentSpec("spec-\(key)-\(cases.count)", extra: [key: value])
            try distill("student \(key)=\(value)", student: spec, [spec, key])
        }
        let notJSON = try write("not-json.json", "{\"format\": ")
        try distill("student not JSON", student: notJSON, [notJSON, "JSON"])
        try distill("student is a directory", student: temp.path, [temp.path])
        for (flag, value) in [("--epochs", "9223372036854775807"), ("--epochs", "-1"), ("--epochs", "1,2,3"), ("--stop-after", "0"), ("--warmup", "1e300"),
                              ("--warmup", "nan"), ("--lr", "-1"), ("--losses", "soft_ce=abc"), ("--losses", "soft_ce=-1"), ("--batch-size", "0"),
                              ("--clip", "nan"), ("--eval-every", "-1")] {
            try distill("distill \(flag) \(value)", extra: flagArgs(flag, value), [flag])
        }
        let gold = try cacheVariant("distill-gold.h5", from: labels) { $0[5].label = 9 }
        try distill("distill with a cache whose gold label is out of range", labels: gold, [gold, "gold label 9"])
        let token = try cacheVariant("distill-token.h5", from: labels) { $0[4].tokenIDs[2] = 95 }
        try distill("distill with a cache whose token id is outside the vocabulary", labels: token, [token, "token id 95", "0..<95"])
        try distill("distill --out is --labels", out: labels, ["--out", labels, "is an input"])
        return cases
    }

    /// `kd bench`.
    func benchCases() throws -> [BadInputCase] {
        let tiny = try SharedModel.tinyPath()
        var cases: [BadInputCase] = []
        for (flag, value) in [("--seq", "0"), ("--seq", "100000"), ("--seconds", "-1"), ("--seconds", "nan"), ("--seconds", "1e300"), ("--warmup", "-1"),
                              ("--iters", "-1"), ("--rounds", "0"), ("--batch-size", "9223372036854775807")] {
            cases.append(BadInputCase(name: "bench latency \(flag) \(value)", args: ["bench", "latency", "--model", tiny, "--seq", "16", "--iters", "1", flag, value], contains: [flag]))
        }
        for (flag, value) in [("--seq", "0"), ("--labels", "1"), ("--batch-size", "0"), ("--iters", "0"), ("--warmup", "-1")] {
            cases.append(BadInputCase(name: "bench train-step \(flag) \(value)", args: ["bench", "train-step", "--model", tiny, "--iters", "1", flag, value], contains: [flag]))
        }
        cases.append(BadInputCase(name: "bench tokenizer --repeats 0", args: ["bench", "tokenizer", "--model", tiny, "--input", CLIFixtures.sentences.path, "--repeats", "0"],
                                  contains: ["--repeats"]))
        cases.append(BadInputCase(name: "bench tokenizer --repeats huge",
                                  args: ["bench", "tokenizer", "--model", tiny, "--input", CLIFixtures.sentences.path, "--repeats", "9223372036854775807"], contains: ["--repeats"]))
        let teacher = try LabelTeachers.path(LabelTeachers.first)
        cases.append(BadInputCase(name: "bench distill-step --temperature 0",
                                  args: ["bench", "distill-step", "--teacher", teacher, "--student", try studentSpec("bench"), "--iters", "1", "--temperature", "0"],
                                  contains: ["--temperature"]))
        return cases
    }
}
