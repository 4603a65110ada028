// The bad-input catalogue's rows for the trade-off report commands (kd bench variants,
// kd report, kd pick): a --model without NAME=, unknown or repeated names, missing files,
// and report files of another format or version, with a key missing or of the wrong kind,
// a duplicate variant, a score out of range or a teacher that is not a variant — checked
// like every other row (BadInputCatalogueTests.check).
import Foundation
import TestSupport
import XCTest

extension BadInputCatalogueTests {
    /// A valid report object (the shape `kd bench variants` writes), for editing.
    func validReport() -> [String: Any] {
        func variant(_ name: String, kind: String, f1: Double, ms: Double) -> [String: Any] {
            ["spec": ["name": name, "path": "/models/\(name).h5", "kind": kind], "parameters": 1000, "file_bytes": 4000, "load_ms": 3.5,
             "peak_memory_bytes": 50_000_000, "accuracy": f1, "macro_f1": f1, "examples": 12,
             "latency": ["batch": 1, "median_ms": ms, "p90_ms": ms * 1.1, "p99_ms": ms * 1.2, "sequences_per_second": 1000 / ms],
             "throughput": ["batch": 4, "median_ms": ms * 3, "p90_ms": ms * 3.1, "p99_ms": ms * 3.2, "sequences_per_second": 4000 / (ms * 3)]]
        }
        return ["format": "distillery-tradeoff-report", "version": 1, "created": "2026-12-02T12:00:00Z", "dataset": "toy", "split": "test",
                "sequence_length": 16, "teacher": "t",
                "machine": ["cpu_model": "CPU", "cores": 2, "threads": 1, "kernel_path": "AVX2+FMA", "kd_version": "kd 0.6.0", "os": "Linux"],
                "variants": [variant("t", kind: "teacher", f1: 0.9, ms: 4), variant("s", kind: "student", f1: 0.85, ms: 1)]]
    }

    /// Writes `object` as JSON into the temp directory.
    func writeReport(_ name: String, _ object: [String: Any]) throws -> String {
        try write(name, try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }

    func reportCases() throws -> [BadInputCase] {
        let tiny = try SharedModel.tinyPath()
        let data = try ToyData.path()
        let json = outPath("bench.json"), dir = outPath("report")
        var cases: [BadInputCase] = []
        func bench(_ name: String, _ models: [String], _ extra: [String], _ needles: [String]) {
            cases.append(BadInputCase(name: "bench variants: \(name)",
                                      args: ["bench", "variants"] + models.flatMap { ["--model", $0] } + ["--data", data, "--out", json] + extra,
                                      contains: needles))
        }
        bench("--model without NAME=", [tiny], [], ["--model", "NAME=PATH"])
        bench("--model with an empty path", ["t="], [], ["--model", "NAME=PATH"])
        bench("--model name with a slash", ["a/b=\(tiny)"], [], ["--model", "a/b"])
        bench("model file missing", ["t=\(outPath("none.h5"))"], [], ["none.h5", "no such file"])
        bench("the same name twice", ["t=\(tiny)", "t=\(tiny)"], [], ["'t'", "twice"])
        bench("--teacher not a variant", ["t=\(tiny)"], ["--teacher", "x"], ["--teacher x", "not one of the variants"])
        bench("--kind for no variant", ["t=\(tiny)"], ["--kind", "x=student"], ["--kind", "x"])
        bench("--throughput-batch 0", ["t=\(tiny)"], ["--throughput-batch", "0"], ["--throughput-batch"])
        bench("--rounds 0", ["t=\(tiny)"], ["--rounds", "0"], ["--rounds"])
        bench("--seconds not finite", ["t=\(tiny)"], ["--seconds", "nan"], ["--seconds"])
        bench("--eval-limit 0", ["t=\(tiny)"], ["--eval-limit", "0"], ["--eval-limit"])
        cases.append(BadInputCase(name: "bench variants: data folder missing",
                                  args: ["bench", "variants", "--model", "t=\(tiny)", "--data", outPath("nodata"), "--out", json],
                                  contains: ["nodata"]))
        cases.append(BadInputCase(name: "bench variants: --out in a missing directory",
                                  args: ["bench", "variants", "--model", "t=\(tiny)", "--data", data, "--out", outPath("no/dir/b.json")],
                                  contains: ["no/dir"]))

        func report(_ name: String, _ file: String, _ needles: [String], out: String? = nil) {
            cases.append(BadInputCase(name: "report: \(name)", args: ["report", "--bench", file, "--out", out ?? dir], contains: needles))
        }
        func pick(_ name: String, _ args: [String], _ needles: [String]) {
            cases.append(BadInputCase(name: "pick: \(name)", args: ["pick"] + args, contains: needles))
        }
        let missing = outPath("none.json")
        report("file missing", missing, [missing, "no such file"])
        pick("file missing", ["--report", missing], [missing, "no such file"])
        report("a directory", temp.path, [temp.path, "is a directory"])
        report("not JSON", try write("not.json", "{\"format\": "), ["not.json"])
        report("a JSON array", try write("array.json", "[1, 2]"), ["array.json", "array"])
        var other = validReport()
        other["format"] = "distillery-run"
        report("another format", try writeReport("other.json", other), ["other.json", "format", "distillery-run"])
        var newer = validReport()
        newer["version"] = 2
        let newerFile = try writeReport("newer.json", newer)
        report("a newer version", newerFile, ["newer.json", "version", "2"])
        pick("a newer version", ["--report", newerFile], ["newer.json", "version"])
        var noFormat = validReport()
        noFormat["format"] = nil
        report("format missing", try writeReport("noformat.json", noFormat), ["noformat.json", "format", "missing"])
        var noMachine = validReport()
        noMachine["machine"] = nil
        report("machine missing", try writeReport("nomachine.json", noMachine), ["nomachine.json", "machine", "missing"])
        var badKind = validReport()
        badKind["sequence_length"] = "long"
        report("a key of the wrong kind", try writeReport("kind.json", badKind), ["kind.json", "sequence_length"])
        var noLatency = validReport()
        var variants = noLatency["variants"] as! [[String: Any]]
        variants[1]["latency"] = nil
        noLatency["variants"] = variants
        report("a variant without latency", try writeReport("nolatency.json", noLatency), ["nolatency.json", "latency", "missing"])
        var twice = validReport()
        twice["variants"] = [(validReport()["variants"] as! [[String: Any]])[0], (validReport()["variants"] as! [[String: Any]])[0]]
        report("a variant name twice", try writeReport("twice.json", twice), ["twice.json", "'t'", "twice"])
        var outOfRange = validReport()
        variants = outOfRange["variants"] as! [[String: Any]]
        variants[1]["macro_f1"] = 1.5
        outOfRange["variants"] = variants
        report("macro-F1 above 1", try writeReport("range.json", outOfRange), ["range.json", "macro_f1", "1.5"])
        var strangerTeacher = validReport()
        strangerTeacher["teacher"] = "nobody"
        report("a teacher that is not a variant", try writeReport("teacher.json", strangerTeacher), ["teacher.json", "nobody"])
        var empty = validReport()
        empty["variants"] = [[String: Any]]()
        report("no variants", try writeReport("empty.json", empty), ["empty.json", "variants"])
        let valid = try writeReport("valid.json", validReport())
        report("--out is a file", valid, [valid, "is a file"], out: valid)
        report("--out in a missing directory", valid, ["does not exist"], out: outPath("no/dir"))
        pick("negative --max-drop", ["--report", valid] + flagArgs("--max-drop", "-1"), ["--max-drop"])
        pick("--max-latency-ms 0", ["--report", valid, "--max-latency-ms", "0"], ["--max-latency-ms"])
        pick("--max-mb not finite", ["--report", valid, "--max-mb", "inf"], ["--max-mb"])
        return cases
    }

    func testReportCommands() throws { check(try reportCases()) }
}
