// kd run end to end on the tiny recipe (the tiny fixture model, the toy dataset, seconds per
// step): a rerun skips every step and says so; an edit reruns exactly the steps it
// touches; --from and --only redo what they name (and --only refuses when its inputs
// have not run); --dry-run writes nothing; a sweep records its trials and its winner.
// The kill-and-resume check is scripts/kill-resume.sh (it needs seconds of SIGKILLs).
import Foundation
import TestSupport
import XCTest

final class RunRecipeTests: CLITestCase {
    /// The tiny recipe without bench and report (timing is slow in a debug build and not
    /// what these tests check), edited by `edit`, written to the temp directory.
    func recipe(_ name: String = "tiny.json", _ edit: (inout [String: Any]) -> Void = { _ in }) throws -> String {
        var object = try tinyRecipeObject()
        var stages = object["stages"] as! [String: Any]
        stages["bench"] = nil
        stages["report"] = nil
        object["stages"] = stages
        edit(&object)
        return try write(name, try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]))
    }

    /// Runs `kd run … --json` and returns step id → status, and the summary.
    @discardableResult
    func run(_ recipe: String, _ extra: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws -> [String: String] {
        let r = runOK(["run", recipe, "--out", outPath("run"), "--json"] + extra, file: file, line: line)
        let summary = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        let steps = summary["steps"] as! [[String: Any]]
        return Dictionary(uniqueKeysWithValues: steps.map { ($0["step"] as! String, $0["status"] as! String) })
    }

    func testRerunSkipsEverythingAndAnEditRerunsWhatItTouches() throws {
        let tiny = try recipe()
        let first = try run(tiny)
        XCTAssertEqual(Set(first.values), ["ran"], "\(first)")
        XCTAssertEqual(first.count, 11)
        let model = try finishedOutput("distill-s1", file: "model.h5")
        let before = try Data(contentsOf: URL(fileURLWithPath: model))

        let second = runOK(["run", tiny, "--out", outPath("run")])
        XCTAssertTrue(second.stderr.contains("distill-s1: up to date, skipped"), second.stderr)
        XCTAssertTrue(second.stdout.contains("0 steps ran, 11 up to date"), second.stdout)

        // More distillation epochs: the student and what is made from it rerun, nothing else.
        let edited = try recipe("edited.json") { object in
            editJSON(&object, ["stages", "distill", 0, "epochs"], 4)
        }
        let third = try run(edited)
        let reran = Set(third.filter { $0.value == "ran" }.keys)
        XCTAssertEqual(reran, ["distill-s1", "quantize-s1-int8-dynamic", "quantize-s1-int4-g32", "export-s1-onnx", "export-s1-gguf"])
        XCTAssertEqual(Set(third.filter { $0.value == "skipped" }.keys), Set(third.keys).subtracting(reran))

        // Back to the first recipe: its folders are still there, so nothing runs.
        XCTAssertEqual(Set(try run(tiny).values), ["skipped"])
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: model)), before)
    }

    func testFromAndOnlyRedoWhatTheyName() throws {
        let tiny = try recipe()
        try run(tiny)
        let model = try finishedOutput("quantize-s1-int8-dynamic", file: "model.h5")
        let before = try Data(contentsOf: URL(fileURLWithPath: model))
        let from = try run(tiny, ["--from", "quantize"])
        XCTAssertEqual(Set(from.filter { $0.value == "ran" }.keys),
                       ["quantize-teacher-int8-dynamic", "quantize-teacher-int4-g32", "quantize-s1-int8-dynamic", "quantize-s1-int4-g32",
                        "export-s1-onnx", "export-s1-gguf"])
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: model)), before, "a redone step must give the same bytes")
        let only = try run(tiny, ["--only", "label"])
        XCTAssertEqual(only.filter { $0.value == "ran" }.map(\.key), ["label"])
    }

    func testOnlyNeedsItsInputsAndDryRunWritesNothing() throws {
        let tiny = try recipe()
        let dry = runOK(["run", tiny, "--out", outPath("run"), "--dry-run"])
        XCTAssertTrue(dry.stdout.contains("plan of recipe 'tiny'"), dry.stdout)
        XCTAssertTrue(dry.stdout.contains("distill-s1"), dry.stdout)
        assertOutDirEmpty("kd run --dry-run")
        let r = runKD(["run", tiny, "--out", outPath("run"), "--only", "distill"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("kd: error: ") && r.stderr.contains("needs prepare, teacher, label") && r.stderr.contains("--from"), r.stderr)
    }

    func testSweepRecordsTrialsAndTrainsTheWinner() throws {
        let swept = try recipe("sweep.json") { object in
            editJSON(&object, ["stages", "distill", 0, "learning_rate"], ["grid": [0.003, 0.0001]])
            editJSON(&object, ["stages", "distill", 0, "sweep"], ["trial_steps": 3])
            var stages = object["stages"] as! [String: Any]
            (stages["prune"], stages["quantize"], stages["export"]) = (nil, nil, nil)
            object["stages"] = stages
        }
        XCTAssertEqual(try run(swept)["distill-s1"], "ran")
        let folder = URL(fileURLWithPath: try finishedOutput("distill-s1", file: "model.h5")).deletingLastPathComponent()
        let record = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("sweep/sweep.json"))) as! [String: Any]
        let trials = record["trials"] as! [[String: Any]]
        XCTAssertEqual(trials.count, 2)
        XCTAssertEqual(Set(trials.map { ($0["settings"] as! [String: Double])["learning_rate"]! }), [0.003, 0.0001])
        XCTAssertNotNil(record["winner"] as? [String: Double])
        XCTAssertEqual((record["mattered"] as? [[String: Any]])?.first?["setting"] as? String, "learning_rate")
        let spec = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("student.json"))) as! [String: Any]
        XCTAssertNotNil(spec["architecture"])
    }

    /// The file `name` of the finished step `step` in the run folder.
    func finishedOutput(_ step: String, file name: String) throws -> String {
        let stages = outDir.appendingPathComponent("run/stages")
        let folders = try FileManager.default.contentsOfDirectory(atPath: stages.path).filter {
            $0.hasPrefix(step + ".") && FileManager.default.fileExists(atPath: stages.appendingPathComponent("\($0)/done.json").path)
        }
        guard let folder = folders.first else { throw CLIHarnessError(message: "no finished \(step) in \(stages.path)") }
        return stages.appendingPathComponent("\(folder)/\(name)").path
    }
}
