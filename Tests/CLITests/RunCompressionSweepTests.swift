// kd run's compression sweeps end to end on the tiny sweep recipe
// (Tests/Fixtures/pipeline/tiny-sweep-recipe.json: the tiny teacher, a heads grid with
// short recoveries and two survivors recovered fully, a scheme grid of the winner): the
// choice is the one the objective defines (the most compressed within max_drop of the
// uncompressed model's dev macro-F1, else the least-dropping), every trial is recorded
// with its rung and size, the winner is the file downstream steps read, and a rerun skips
// the sweep. Refusals (no max_drop, empty grids) are rows of the bad-input catalogue
// (BadInputCataloguePipelineCases.swift); the kill-and-resume check is
// `RECIPE=Tests/Fixtures/pipeline/tiny-sweep-recipe.json scripts/kill-resume.sh`.
import Foundation
import TestSupport
import XCTest

/// The tiny sweep recipe as a JSON object with absolute paths.
func tinySweepRecipeObject() throws -> [String: Any] {
    let data = try Data(contentsOf: Fixtures.url("pipeline/tiny-sweep-recipe.json"))
    let text = String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\"Tests/", with: "\"\(Fixtures.root.path)/Tests/")
    return try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
}

final class RunCompressionSweepTests: CLITestCase {
    /// The tiny sweep recipe without bench and report, edited by `edit`.
    func recipe(_ name: String, _ edit: (inout [String: Any]) -> Void = { _ in }) throws -> String {
        var object = try tinySweepRecipeObject()
        editJSON(&object, ["stages", "bench"], nil)
        editJSON(&object, ["stages", "report"], nil)
        edit(&object)
        return try write(name, try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]))
    }

    /// Runs `kd run … --json`; step id → status.
    @discardableResult
    func run(_ recipe: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String: String] {
        let r = runOK(["run", recipe, "--out", outPath("run"), "--json"], file: file, line: line)
        let steps = (try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any])["steps"] as! [[String: Any]]
        return Dictionary(uniqueKeysWithValues: steps.map { ($0["step"] as! String, $0["status"] as! String) })
    }

    /// The finished folder of `step`.
    func finishedFolder(_ step: String) throws -> URL {
        let stages = outDir.appendingPathComponent("run/stages")
        guard let folder = try FileManager.default.contentsOfDirectory(atPath: stages.path).first(where: {
            $0.hasPrefix(step + ".") && FileManager.default.fileExists(atPath: stages.appendingPathComponent("\($0)/done.json").path)
        }) else { throw CLIHarnessError(message: "no finished \(step) in \(stages.path)") }
        return stages.appendingPathComponent(folder)
    }

    func sweepRecord(_ step: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: try finishedFolder(step).appendingPathComponent("sweep/sweep.json"))) as! [String: Any]
    }

    /// The objective, recomputed from the recorded trials: the smallest within `maxDrop`
    /// (ties: higher F1), else the highest F1 (ties: smaller). Returns the trial's index.
    func expectedWinner(_ trials: [[String: Any]], size: String, maxDrop: Double) -> Int {
        let drop = trials.map { $0["drop"] as! Double }, f1 = trials.map { $0["devMacroF1"] as! Double }
        let sizes = trials.map { ($0[size] as! NSNumber).intValue }
        let within = trials.indices.filter { drop[$0] <= maxDrop + 1e-9 }
        if !within.isEmpty { return within.min { (sizes[$0], -f1[$0]) < (sizes[$1], -f1[$1]) }! }
        return trials.indices.min { (-f1[$0], sizes[$0]) < (-f1[$1], sizes[$1]) }!
    }

    func testPruneGridHalvesThenPicksTheMostCompressedWithinMaxDrop() throws {
        // max_drop 100: every candidate is within, so the fewest parameters must win — and the
        // short round must keep the two most pruned (0.75 and 0.5) for full recovery.
        let tiny = try recipe("prune-sweep.json") { editJSON(&$0, ["stages", "prune", 0, "max_drop"], 100) }
        let first = try run(tiny)
        XCTAssertEqual(first["prune-pswept"], "ran")
        XCTAssertEqual(first["quantize-pswept-q"], "ran")
        let record = try sweepRecord("prune-pswept")
        let trials = record["trials"] as! [[String: Any]]
        let short = trials.filter { $0["rung"] as? String == "short" }, full = trials.filter { $0["rung"] as? String == "full" }
        XCTAssertEqual(short.map { ($0["settings"] as! [String: Double])["heads"]! }.sorted(), [0.25, 0.5, 0.75])
        XCTAssertEqual(Set(short.map { $0["trainLimit"] as! Int }), [16])
        XCTAssertEqual(full.map { ($0["settings"] as! [String: Double])["heads"]! }.sorted(), [0.5, 0.75])
        XCTAssertEqual(Set(full.map { $0["round"] as! Int }), [1])
        let winner = record["winner"] as! [String: Double]
        XCTAssertEqual(winner["heads"], 0.75)
        let chosen = full[expectedWinner(full, size: "parameters", maxDrop: 100)]
        XCTAssertEqual(chosen["settings"] as! [String: Double], winner)
        XCTAssertTrue((record["why"] as! String).contains("fewest parameters"), "\(record["why"]!)")
        // The winner is the file downstream reads: its bytes are the winning full trial's size.
        let model = try finishedFolder("prune-pswept").appendingPathComponent("model.h5")
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: model.path)[.size] as? Int, chosen["fileBytes"] as? Int)
        let mattered = (record["mattered"] as! [[String: Any]]).first!
        XCTAssertEqual(mattered["setting"] as? String, "heads")
        XCTAssertEqual((mattered["meanSizeByValue"] as! [String: Double]).count, 3)
        // Trial models are gone once scored; a rerun skips the whole sweep.
        let left = try FileManager.default.contentsOfDirectory(atPath: try finishedFolder("prune-pswept").appendingPathComponent("sweep").path)
        XCTAssertEqual(left, ["sweep.json"])
        XCTAssertEqual(try run(tiny)["prune-pswept"], "skipped")
    }

    func testOneShotGridAndSchemeGridFollowTheObjective() throws {
        // No recovery: every candidate pruned once and scored; max_drop 0 on a tiny model —
        // whatever the scores, the choice must be the objective's on the recorded trials.
        let tiny = try recipe("one-shot.json") { object in
            editJSON(&object, ["stages", "prune", 0, "recover"], nil)
            editJSON(&object, ["stages", "prune", 0, "sweep"], nil)
            editJSON(&object, ["stages", "prune", 0, "max_drop"], 0)
            editJSON(&object, ["stages", "quantize", 0, "schemes"], ["grid": ["bf16", "int8-dynamic"]])
            editJSON(&object, ["stages", "quantize", 0, "max_drop"], 100)
        }
        try run(tiny)
        let prune = try sweepRecord("prune-pswept")
        let trials = prune["trials"] as! [[String: Any]]
        XCTAssertEqual(trials.map { $0["rung"] as! String }, ["one-shot", "one-shot", "one-shot"])
        let chosen = trials[expectedWinner(trials, size: "parameters", maxDrop: 0)]
        XCTAssertEqual(chosen["settings"] as! [String: Double], prune["winner"] as! [String: Double])
        let met = (chosen["drop"] as! Double) <= 1e-9
        XCTAssertEqual((prune["why"] as! String).contains("least-dropping"), !met, "\(prune["why"]!)")
        // The scheme grid: max_drop 100, so the smallest file (int8-dynamic) wins. (int4-g32 is
        // left out: the pruned tiny model's 8- and 16-column rows have no 32-wide groups.)
        let quantize = try sweepRecord("quantize-pswept-q")
        let schemes = quantize["trials"] as! [[String: Any]]
        XCTAssertEqual(schemes.map { $0["scheme"] as! String }, ["bf16", "int8-dynamic"])
        XCTAssertEqual(quantize["winnerScheme"] as? String, schemes[expectedWinner(schemes, size: "fileBytes", maxDrop: 100)]["scheme"] as? String)
        XCTAssertEqual(quantize["winnerScheme"] as? String, "int8-dynamic")
        let model = try finishedFolder("quantize-pswept-q").appendingPathComponent("model.h5")
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: model.path)[.size] as? Int,
                       schemes.first { $0["scheme"] as? String == "int8-dynamic" }?["fileBytes"] as? Int)
    }

    func testDryRunCountsTheSweepsTrials() throws {
        let tiny = try recipe("dry.json")
        let dry = runOK(["run", tiny, "--out", outPath("run"), "--dry-run"])
        XCTAssertTrue(dry.stdout.contains("sweep of 3 candidates: 3 short recoveries in 1 round(s), 2 recovered fully"), dry.stdout)
        XCTAssertTrue(dry.stdout.contains("2 schemes, each scored on up to 1000 dev examples"), dry.stdout)
        assertOutDirEmpty("kd run --dry-run")
    }
}
