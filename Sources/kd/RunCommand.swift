// kd run: a recipe end to end — argument declarations over Pipeline.runRecipe.
import ArgumentParser
import DistilleryStages
import Foundation
import Pipeline

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a recipe: prepare, teacher, label, distill, prune, quantize, export, bench, report.",
        usage: "kd run <recipe> [--out <run-dir>] [--from <stage>] [--only <stage>] [--dry-run] [--json] [--force]",
        discussion: """
        Each step writes into its own folder of the run folder, keyed by a hash of its \
        settings and inputs; a rerun skips the steps whose inputs did not change and says \
        so, and a run killed at any moment resumes where it stopped (a training step from \
        its checkpoint). --from redoes a stage and every later one, --only redoes one \
        stage (its inputs must be finished). docs/recipes.md describes the recipe format.

        Examples:
          kd run benchmarks/recipes/quickstart.json --out out/quickstart
          kd run benchmarks/recipes/quickstart.json --out out/quickstart --dry-run
          kd run benchmarks/recipes/quickstart.json --out out/quickstart --only bench
        """)

    @Argument(help: "Recipe file (JSON), e.g. benchmarks/recipes/quickstart.json.") var recipe: String
    @Option(help: "Run folder (default: out/NAME, NAME the recipe's name).") var out: String?
    @Option(help: "Redo this stage and every later one.") var from: String?
    @Option(help: "Redo only this stage (the steps it reads must be finished).") var only: String?
    @Flag(name: .customLong("dry-run"), help: "Print the plan with each step's state and cost; run nothing.") var dryRun = false
    @Flag(help: "Print a JSON summary instead of text.") var json = false
    @Flag(help: "Use a run folder made by another recipe.") var force = false

    func run() throws {
        let parsed: Recipe
        do { parsed = try Recipe.read(recipe) } catch let error as RecipeError { throw StageError(error.description) }
        var options = RunOptions(out: out ?? "out/\(parsed.name)")
        (options.from, options.only) = (try stage(from, flag: "--from"), try stage(only, flag: "--only"))
        (options.dryRun, options.force) = (dryRun, force)
        let summary: RunSummary
        do {
            summary = try runRecipe(parsed, options, progress: stderrProgress()) { note("run: \($0)") }
        } catch let error as RecipeError { throw StageError(error.description) }
        if json {
            try printJSON(summary, pretty: true)
        } else {
            print(summary.text)
            if let table = summary.table { print("\n" + table) }
        }
    }

    func stage(_ text: String?, flag: String) throws -> StageKind? {
        guard let text else { return nil }
        return try parseChoice(text, flag: flag, as: StageKind.self)
    }
}
