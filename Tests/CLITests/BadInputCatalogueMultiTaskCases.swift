// The bad-input catalogue's multi-task table (`kd distill --task`): overlapping or invalid
// head names, triples that do not pair up, a task whose teacher tokenizes differently or
// whose cache is another teacher's — each a one-line error, nothing written. And one
// small run end to end: two heads distilled, `kd info` lists them, `kd eval --task` picks
// one, `kd eval` without --task names them.
import Foundation
import TestSupport
import WeightIO
import XCTest

extension BadInputCatalogueTests {
    /// `kd distill` with tasks: each (name, teacher, labels, data) in order, then `extra`.
    func multiTaskArgs(_ tasks: [(String, String, String, String)], out: String? = nil, extra: [String] = []) throws -> [String] {
        var args = ["distill", "--student", try studentSpec("multi"), "--out", out ?? outPath("multi.h5"), "--threads", "1"]
        for (name, teacher, labels, data) in tasks { args += ["--task", name, "--teacher", teacher, "--labels", labels, "--data", data] }
        return args + extra
    }

    func multiTaskCases() throws -> [BadInputCase] {
        let (teacher, second, data, labels) = (try LabelTeachers.path(LabelTeachers.first), try LabelTeachers.path(LabelTeachers.second),
                                               try ToyData.path(), try cachePath())
        var cases: [BadInputCase] = []
        func add(_ name: String, _ tasks: [(String, String, String, String)], extra: [String] = [], _ needles: [String]) throws {
            cases.append(BadInputCase(name: name, args: try multiTaskArgs(tasks, extra: extra), contains: needles))
        }
        try add("multi-task: overlapping head names", [("news", teacher, labels, data), ("News", teacher, labels, data)],
                ["--task 'News'", "tasks 1 and 2 alike", "nothing was written"])
        try add("multi-task: head name with a dot", [("a.b", teacher, labels, data), ("c", teacher, labels, data)], ["--task 'a.b'", "characters"])
        try add("multi-task: one task", [("only", teacher, labels, data)], ["at least two --task"])
        try add("multi-task: unknown sampling", [("a", teacher, labels, data), ("b", teacher, labels, data)], extra: ["--task-sampling", "sqrtt"],
                ["--task-sampling", "proportional, sqrt, uniform"])
        var args = try multiTaskArgs([("a", teacher, labels, data), ("b", teacher, labels, data)])
        args.removeLast(2)   // the second --data
        cases.append(BadInputCase(name: "multi-task: a --data short", args: args, contains: ["2 --task but 1 --data"]))
        let missing = outPath("no-such-labels.h5")
        try add("multi-task: a task's cache is missing", [("a", teacher, labels, data), ("b", teacher, missing, data)], [missing, "task 'b'", "kd label"])
        try add("multi-task: a task's cache is another teacher's", [("a", teacher, labels, data), ("b", second, labels, data)], [labels])
        let otherVocabulary = try teacherFromLabelTeacher("other-vocab.h5", teacher) { $0.vocabulary[$0.vocabulary.count - 1] += "x" }
        try add("multi-task: a task's teacher tokenizes differently", [("a", teacher, labels, data), ("b", otherVocabulary, labels, data)],
                [otherVocabulary, "task 'b'", "one tokenizer"])
        return cases
    }

    /// The classifier teacher `path` as a TeacherFile, changed by `edit` and written to `temp/name`.
    func teacherFromLabelTeacher(_ name: String, _ path: String, _ edit: (inout TeacherFile) -> Void) throws -> String {
        var file = try TeacherFile.read(URL(fileURLWithPath: path))
        edit(&file)
        let url = temp.appendingPathComponent(name)
        try file.write(to: url)
        return url.path
    }

    func testMultiTaskDistill() throws { check(try multiTaskCases()) }

    func testMultiTaskRunInfoAndEvalByTask() throws {
        let (teacher, data, labels) = (try LabelTeachers.path(LabelTeachers.first), try ToyData.path(), try cachePath())
        let out = temp.appendingPathComponent("mt-run").path
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let model = out + "/multi.h5"
        let run = runKD(try multiTaskArgs([("first", teacher, labels, data), ("second", teacher, labels, data)], out: model,
                                          extra: ["--stop-after", "3", "--eval-every", "3", "--task-sampling", "uniform"]))
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("multi-task: 2 heads on one encoder"), run.stdout)
        XCTAssertTrue(run.stdout.contains("first: dev macro-F1"), run.stdout)
        let file = try TeacherFile.read(URL(fileURLWithPath: model))
        XCTAssertEqual(file.tasks.map(\.name), ["first", "second"])
        XCTAssertFalse(file.tensors.contains { $0.name.hasPrefix("classifier.") })

        let info = runKD(["info", model])
        XCTAssertEqual(info.status, 0, info.stderr)
        XCTAssertTrue(info.stdout.contains("task first:") && info.stdout.contains("task second:"), info.stdout)
        let eval = runKD(["eval", "--model", model, "--data", data, "--task", "second", "--split", "dev", "--json"])
        XCTAssertEqual(eval.status, 0, eval.stderr)
        XCTAssertTrue(eval.stdout.contains("\"macro_f1\""), eval.stdout)
        let noTask = runKD(["eval", "--model", model, "--data", data])
        XCTAssertNotEqual(noTask.status, 0)
        XCTAssertTrue(noTask.stderr.hasPrefix("kd: error: ") && noTask.stderr.contains("first, second") && noTask.stderr.contains("--task"), noTask.stderr)
        let wrongTask = runKD(["eval", "--model", model, "--data", data, "--task", "third"])
        XCTAssertNotEqual(wrongTask.status, 0)
        XCTAssertTrue(wrongTask.stderr.contains("'third'") && wrongTask.stderr.contains("first, second"), wrongTask.stderr)
        let singleWithTask = runKD(["eval", "--model", teacher, "--data", data, "--task", "first"])
        XCTAssertNotEqual(singleWithTask.status, 0)
        XCTAssertTrue(singleWithTask.stderr.contains("one classifier"), singleWithTask.stderr)
    }
}
