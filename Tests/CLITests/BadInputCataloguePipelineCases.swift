// The bad-input catalogue's rows for `kd run`: recipes with an unknown stage or key (named
// by key path, with the nearest known key offered), a wrong kind, malformed JSON (line and
// column), an input file that is missing, a model name no stage makes, an empty sweep
// grid, a pruning or scheme grid without its max_drop (or empty, or unnamed), a run folder
// made by another recipe, unknown --from/--only stages. Checked like
// every other row (BadInputCatalogueTests.check): nothing may be written.
import Foundation
import TestSupport
import XCTest

/// The tiny recipe (Tests/Fixtures/pipeline/tiny-recipe.json) as a JSON object with absolute
/// paths, so a test can edit it and run it from any directory.
func tinyRecipeObject() throws -> [String: Any] {
    let data = try Data(contentsOf: Fixtures.url("pipeline/tiny-recipe.json"))
    let text = String(decoding: data, as: UTF8.self)
        .replacingOccurrences(of: "\"Tests/", with: "\"\(Fixtures.root.path)/Tests/")
    return try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
}

/// Edits `object[path…]` (keys and array indices) in place.
func editJSON(_ object: inout [String: Any], _ path: [Any], _ value: Any?) {
    guard let head = path.first as? String else { return }
    if path.count == 1 { object[head] = value; return }
    if var child = object[head] as? [String: Any] {
        editJSON(&child, Array(path.dropFirst()), value)
        object[head] = child
    } else if var list = object[head] as? [Any], let i = path[1] as? Int {
        if path.count == 2 { list[i] = value as Any } else {
            var child = list[i] as! [String: Any]
            editJSON(&child, Array(path.dropFirst(2)), value)
            list[i] = child
        }
        object[head] = list
    }
}

extension BadInputCatalogueTests {
    /// A tiny recipe with one edit, written into the temp directory.
    func recipeVariant(_ name: String, _ path: [Any], _ value: Any?) throws -> String {
        var recipe = try tinyRecipeObject()
        editJSON(&recipe, path, value)
        return try write(name, try JSONSerialization.data(withJSONObject: recipe, options: [.prettyPrinted, .sortedKeys]))
    }

    func pipelineCases() throws -> [BadInputCase] {
        var cases: [BadInputCase] = []
        let out = outPath("run")
        func run(_ name: String, _ recipe: String, _ needles: [String], extra: [String] = []) {
            cases.append(BadInputCase(name: "run: \(name)", args: ["run", recipe, "--out", out] + extra, contains: needles))
        }
        var distill = (try tinyRecipeObject()["stages"] as! [String: Any])["distill"] as! [[String: Any]]
        distill[0]["tempreature"] = 3
        run("unknown key, by key path", try recipeVariant("typo.json", ["stages", "distill"], distill),
            ["typo.json", "stages.distill[0].tempreature", "unknown key", "did you mean 'temperature'?"])
        var stages = try tinyRecipeObject()["stages"] as! [String: Any]
        stages["distil"] = stages.removeValue(forKey: "distill")
        run("unknown stage", try recipeVariant("stage.json", ["stages"], stages), ["stages.distil", "did you mean 'distill'?"])
        run("wrong kind", try recipeVariant("kind.json", ["stages", "teacher", "epochs"], "2"), ["stages.teacher.epochs", "is a string, expected an integer"])
        run("malformed JSON", try write("broken.json", "{\"format\": \"distillery-recipe\",\n \"version\": 1\n \"name\": \"x\"}"),
            ["broken.json", "not valid JSON", "line 3, column 2"])
        run("duplicate key", try write("twice.json", "{\"name\": \"a\", \"name\": \"b\"}"), ["twice.json", "'name' appears twice"])
        run("student spec missing", try recipeVariant("nospec.json", ["stages", "distill", 0, "student"], temp.appendingPathComponent("none.json").path),
            ["stages.distill[0].student", "none.json", "no such file"])
        run("teacher base missing", try recipeVariant("nobase.json", ["stages", "teacher", "base"], temp.appendingPathComponent("gone").path),
            ["stages.teacher.base", "gone"])
        run("CSV missing", try recipeVariant("nocsv.json", ["stages", "prepare", "csv"], temp.appendingPathComponent("none.csv").path),
            ["stages.prepare.csv", "none.csv"])
        run("quantize of an unknown model", try recipeVariant("model.json", ["stages", "quantize", 0, "models"], ["teacher", "l9"]),
            ["stages.quantize[0].models[1]", "'l9'"])
        run("unknown scheme", try recipeVariant("scheme.json", ["stages", "quantize", 0, "schemes"], ["int3"]), ["stages.quantize[0].schemes[0]", "int3"])
        run("empty sweep grid", try recipeVariant("grid.json", ["stages", "distill", 0, "learning_rate"], ["grid": [Any]()]),
            ["stages.distill[0].learning_rate.grid", "empty grid"])
        run("grid of pruning ratios without max_drop", try recipeVariant("prunegrid.json", ["stages", "prune", 0, "heads"], ["grid": [0.25, 0.5]]),
            ["stages.prune[0].max_drop", "is missing", "most compressed"])
        run("empty grid of pruning ratios", try recipeVariant("emptyprune.json", ["stages", "prune", 0, "ffn"], ["grid": [Any]()]),
            ["stages.prune[0].ffn.grid", "empty grid"])
        run("max_drop on a prune without a grid", try recipeVariant("prunedrop.json", ["stages", "prune", 0, "max_drop"], 1.0),
            ["stages.prune[0].max_drop", "only goes with a grid"])
        run("a pruning grid with a candidate that prunes nothing", try recipeVariant("prunezero.json", ["stages", "prune", 0],
                                                                                   ["name": "p50", "model": "teacher", "heads": ["grid": [0, 0.5]], "max_drop": 1]),
            ["stages.prune[0]", "prunes nothing"])
        run("unknown key in a pruning sweep", try recipeVariant("prunesweep.json", ["stages", "prune", 0],
                                                                ["name": "p50", "model": "teacher", "heads": ["grid": [0.25, 0.5]], "max_drop": 1,
                                                                 "sweep": ["trial_steps": 3]]),
            ["stages.prune[0].sweep.trial_steps", "unknown key", "trial_limit"])
        run("grid of schemes without max_drop", try recipeVariant("schemegrid.json", ["stages", "quantize", 0],
                                                                  ["models": ["teacher"], "schemes": ["grid": ["int8-dynamic", "int4-g32"]], "name": "tq"]),
            ["stages.quantize[0].max_drop", "is missing", "smallest file"])
        run("empty grid of schemes", try recipeVariant("emptyschemes.json", ["stages", "quantize", 0, "schemes"], ["grid": [Any]()]),
            ["stages.quantize[0].schemes.grid", "empty grid"])
        run("grid of schemes without a name", try recipeVariant("schemename.json", ["stages", "quantize", 0],
                                                                ["models": ["teacher"], "schemes": ["grid": ["int8-dynamic", "int4-g32"]], "max_drop": 1]),
            ["stages.quantize[0].name", "is missing"])
        run("grid of schemes over two models", try recipeVariant("schememodels.json", ["stages", "quantize", 0],
                                                                 ["models": ["teacher", "s1"], "schemes": ["grid": ["int8-dynamic", "int4-g32"]], "max_drop": 1, "name": "tq"]),
            ["stages.quantize[0].models", "one entry per model"])
        run("two names alike", try recipeVariant("dup.json", ["stages", "prune", 0, "name"], "s1"), ["stages.prune[0].name", "'s1'"])
        run("teacher without file or base", try recipeVariant("noteacher.json", ["stages", "teacher"], ["epochs": 1]), ["stages.teacher", "\"base\""])
        run("wrong format", try recipeVariant("format.json", ["format"], "distillery-student"), ["format.json", "format", "distillery-recipe"])
        run("no such recipe", temp.appendingPathComponent("absent.json").path, ["absent.json", "no such recipe file"])
        let good = try recipeVariant("good.json", ["description"], "a good recipe")
        run("unknown --from stage", good, ["--from", "distil"], extra: ["--from", "distil"])
        run("--from and --only together", good, ["--from", "--only"], extra: ["--from", "label", "--only", "bench"])
        // A run folder made by another recipe is refused before anything is written.
        let other = temp.appendingPathComponent("other-run")
        try FileManager.default.createDirectory(at: other, withIntermediateDirectories: true)
        try write("other-run/run.json", #"{"format": "distillery-run", "version": 1, "recipe": "someone-else", "recipeFile": "x.json", "recipeSHA256": "00"}"#)
        cases.append(BadInputCase(name: "run: folder of another recipe", args: ["run", good, "--out", other.path],
                                  contains: ["other-run", "made by recipe 'someone-else'", "--force"]))
        return cases
    }

    func testRun() throws { check(try pipelineCases()) }
}
