// Runner: executes a planned recipe in a run folder — for each step, its key from its
// settings, input files and upstream outputs; skipped (and said so) when a finished step
// with that key is there; otherwise its folder is made ready (an interrupted step keeps
// only its checkpoint), the stage function runs (StepExecutors.swift), the outputs are
// hashed and the done-marker is written last (RunFolder.swift).
//
// `--from STAGE` redoes that stage and every later one; `--only STAGE` redoes that stage
// alone, and needs every step it reads to be finished already; `--dry-run` prints the plan
// with each step's state and cost and touches nothing. The summary (`--json`) lists every
// step with what happened, its folder, seconds and outputs.
// Left out on purpose: running independent steps in parallel (two cores; each stage
// already uses every thread it is given).
import DistilleryJSON
import DistilleryStages
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How `kd run` was asked to run.
public struct RunOptions: Sendable {
    /// The run folder.
    public var out: String
    public var from: StageKind?
    public var only: StageKind?
    public var dryRun = false
    /// Reuse a run folder made by another recipe.
    public var force = false

    public init(out: String) { self.out = out }
}

/// What happened to one step.
public struct StepOutcome: Codable, Sendable {
    public var step: String
    public var stage: StageKind
    /// "ran", "skipped" (finished earlier with the same key), "external" (an existing file),
    /// "not run" (outside --only), or in a dry run "will run" / "will redo" / "done".
    public var status: String
    public var folder: String?
    /// The file or folder downstream steps read.
    public var output: String?
    public var key: String?
    public var seconds: Double?
    public var cost: StepCost?
}

/// `kd run --json`: the whole run.
public struct RunSummary: Codable, Sendable {
    public var recipe: String
    public var recipeFile: String
    public var recipeSHA256: String
    public var runFolder: String
    public var dryRun: Bool
    public var steps: [StepOutcome]
    public var seconds: Double
    /// The report folder, when the report step ran or was up to date.
    public var report: String?
    /// The trade-off table (Markdown), when there is a report.
    public var table: String?

    /// The plan (dry run) or what happened, one line per step.
    public var text: String {
        var lines = ["\(dryRun ? "plan of" : "ran") recipe '\(recipe)' (\(recipeFile)) in \(runFolder)"]
        let width = steps.map(\.step.count).max() ?? 0
        for s in steps {
            var line = "  \(s.step.padding(toLength: width, withPad: " ", startingAt: 0)) \(s.status.padding(toLength: 9, withPad: " ", startingAt: 0))"
            if let c = s.cost {
                var parts: [String] = []
                if let e = c.examples { parts.append("\(e) examples") }
                if let n = c.steps { parts.append("\(n) steps") }
                if let b = c.bytes { parts.append("≈ \(formatSize(b)) on disk") }
                if let note = c.note { parts.append(note) }
                line += " " + parts.joined(separator: ", ")
            } else if let seconds = s.seconds, s.status == "ran" {
                line += String(format: " %.1f s", seconds)
            }
            if !dryRun, let output = s.output { line += "  → \(output)" }
            lines.append(line)
        }
        if !dryRun { lines.append(String(format: "%d steps ran, %d up to date, %.1f s", steps.filter { $0.status == "ran" }.count,
                                         steps.filter { $0.status == "skipped" }.count, seconds)) }
        if let report { lines.append("report: \(report)/report.md (and report.html)") }
        return lines.joined(separator: "\n")
    }
}

/// Runs `recipe` as `options` say; `log` gets one line per step (stderr in kd).
public func runRecipe(_ recipe: Recipe, _ options: RunOptions, progress: StageProgress, log: @escaping (String) -> Void) throws -> RunSummary {
    if options.from != nil, options.only != nil { throw StageError.usage("--from and --only exclude each other — give one") }
    let steps = planSteps(recipe)
    for stage in [options.from, options.only].compactMap({ $0 }) where !steps.contains(where: { $0.stage == stage }) {
        throw StageError.usage("this recipe has no \(stage.rawValue) stage — its stages are \(Array(Set(steps.map(\.stage))).sorted().map(\.rawValue).joined(separator: ", "))")
    }
    try checkInputsExist(steps, recipe: recipe)
    let folder = try RunFolder(path: options.out, recipe: recipe, force: options.force, dryRun: options.dryRun)
    defer { folder.saveHashCache() }
    let started = Date()
    var outputs: [String: String] = [:]        // step id → the path downstream steps read
    var outputHashes: [String: String] = [:]   // step id → its output hash
    var outcomes: [StepOutcome] = []
    let executor = StepExecutor(recipe: recipe, folder: folder, progress: progress, log: log)

    for (index, step) in steps.enumerated() {
        let redo = (options.from.map { step.stage >= $0 } ?? false) || options.only == step.stage
        let tag = "[\(index + 1)/\(steps.count)] \(step.id)"
        var outcome = StepOutcome(step: step.id, stage: step.stage, status: "")
        // The key needs every upstream output's hash.
        let missing = step.after.filter { outputHashes[$0] == nil }
        if !missing.isEmpty {
            if options.only == step.stage {
                throw StageError("\(options.out): stage \(step.stage.rawValue) (\(step.id)) needs \(missing.joined(separator: ", ")), which has not finished in this run folder with the recipe's current settings — run without --only, or with --from \(steps.first { missing.contains($0.id) }!.stage.rawValue)")
            }
            guard options.dryRun || options.only != nil else { throw StageError("internal: \(step.id) runs before \(missing.joined(separator: ", "))") }
            outcome.status = options.only != nil ? "not run" : "will run"
            outcomes.append(outcome)
            continue
        }
        let key = try stepKey(step, folder: folder, upstream: step.after.map { outputHashes[$0]! })
        outcome.key = key
        if let external = step.external {
            outputs[step.id] = external
            outputHashes[step.id] = try folder.hashPath(external)
            (outcome.status, outcome.output) = ("external", external)
            if !options.dryRun { log("\(tag): uses \(external) as it is") }
            outcomes.append(outcome)
            continue
        }
        let stepFolder = folder.stepFolder(step.id, key: key)
        outcome.folder = stepFolder
        let marker = folder.marker(step.id, key: key)
        let runsNow = options.only == nil || options.only == step.stage
        if options.dryRun {
            outcome.status = marker == nil ? "will run" : redo ? "will redo" : "done"
            if marker != nil, !redo, !runsNow { outcome.status = "done" }
            if let marker { outputs[step.id] = stepFolder + "/" + executor.mainOutput(step); outputHashes[step.id] = marker.outputHash }
            outcomes.append(outcome)
            continue
        }
        if let marker, !redo {
            outputs[step.id] = stepFolder + "/" + executor.mainOutput(step)
            outputHashes[step.id] = marker.outputHash
            (outcome.status, outcome.output, outcome.seconds) = ("skipped", outputs[step.id], marker.seconds)
            if runsNow { log("\(tag): up to date, skipped (\(stepFolder))") }
            outcomes.append(outcome)
            continue
        }
        guard runsNow else { outcome.status = "not run"; outcomes.append(outcome); continue }
        if redo { try folder.removeStepFolder(stepFolder) }
        log("\(tag): running → \(stepFolder)" + String(format: " (%.0f s into the run)", Date().timeIntervalSince(started)))
        try folder.prepareStepFolder(stepFolder, keep: executor.resumableFiles(step))
        let t0 = Date()
        let result = try executor.run(step, in: stepFolder, inputs: outputs)
        let seconds = Date().timeIntervalSince(t0)
        let done = try folder.finish(step.id, key: key, outputs: result.outputs, seconds: seconds, report: result.report)
        outputs[step.id] = stepFolder + "/" + executor.mainOutput(step)
        outputHashes[step.id] = done.outputHash
        (outcome.status, outcome.output, outcome.seconds) = ("ran", outputs[step.id], seconds)
        log("\(tag): done in \(String(format: "%.1f", seconds)) s")
        outcomes.append(outcome)
    }
    if options.dryRun {
        // Counts need the prepared splits: when prepare has not run, it runs into a temporary
        // folder (seconds), which is removed again.
        var data = outputs["prepare"], scratch: String?
        if data == nil, let prepare = steps.first(where: { $0.stage == .prepare }) {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kd-dry-run-\(getpid())").path
            scratch = dir
            if (try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)) != nil,
               (try? StepExecutor(recipe: recipe, folder: folder, progress: SilentProgress(), log: log).run(prepare, in: dir, inputs: [:])) != nil {
                data = dir + "/" + executor.mainOutput(prepare)
            }
        }
        defer { if let scratch { try? FileManager.default.removeItem(atPath: scratch) } }
        let costs = estimateCosts(steps, recipe: recipe, dataFolder: data, teacherFile: outputs["teacher"] ?? recipe.teacher.base)
        for i in outcomes.indices where outcomes[i].cost == nil { outcomes[i].cost = costs[outcomes[i].step] }
    }
    var summary = RunSummary(recipe: recipe.name, recipeFile: recipe.file, recipeSHA256: recipe.sha256, runFolder: options.out,
                             dryRun: options.dryRun, steps: outcomes, seconds: Date().timeIntervalSince(started))
    if !options.dryRun, let reportJSON = outputs["report"] {
        try folder.link("report", to: URL(fileURLWithPath: reportJSON).deletingLastPathComponent().path)
        summary.report = options.out + "/report"
        summary.table = try executor.table(reportJSON: reportJSON)
    }
    return summary
}

/// The key of a step: sha256 of its work and threads, the hashes of its input files, and
/// its upstream steps' output hashes.
func stepKey(_ step: PlannedStep, folder: RunFolder, upstream: [String]) throws -> String {
    struct Material: Encodable {
        var version = 1
        var step: String
        var work: StepWork
        var threads: Int
        var files: [String]
        var upstream: [String]
    }
    let files = try step.files.map { try folder.hashPath($0) }
    let material = Material(step: step.id, work: step.work, threads: step.threads, files: files, upstream: upstream)
    return SHA256Hex.of(try JSONCoding.data(material))
}

/// Every input file the recipe names must exist before anything runs.
func checkInputsExist(_ steps: [PlannedStep], recipe: Recipe) throws {
    let fm = FileManager.default
    for step in steps {
        for path in step.files where !fm.fileExists(atPath: path) {
            let key: String
            switch step.work {
            case .prepare(let p):
                if case .packaged(let name, _) = p.source {
                    throw RecipeError(file: recipe.file, keyPath: "stages.prepare.dataset", "'\(name)' is not in \(path) — fetch it first (scripts/fetch-datasets.sh), or set \"cache\" to where it is")
                }
                if case .csv = p.source { key = "stages.prepare.csv" } else { key = "stages.prepare.folder" }
            case .teacher: key = recipe.teacher.file != nil ? "stages.teacher.file" : "stages.teacher.base"
            case .distill(let d): key = "stages.distill[\(recipe.distill.firstIndex { $0.name == d.name }!)].student"
            default: key = step.id
            }
            throw RecipeError(file: recipe.file, keyPath: key, "\(path): no such file or folder — check the path (paths are relative to the working directory)")
        }
    }
}
