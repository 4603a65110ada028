// Sweep: choosing a distill step's settings from grids by successive halving (Jamieson &
// Talwalkar 2016; Li et al.'s Hyperband uses it as its inner loop) — every combination of
// the grids trains for a short budget and is scored on dev (macro-F1); the better
// fraction `keep` survives and trains again with twice the budget, until one is left. The
// winner is then trained fully by the step itself, and is what later stages read.
//
// Every trial is recorded in the step folder (`sweep.json`, rewritten atomically after
// each trial, so a killed sweep resumes without redoing finished trials); trial models are
// deleted once scored. "Which settings mattered": for each swept setting, the mean first-
// round score at each of its values and the spread between the best and worst value.
// Trials train with the step's seed, so the comparison is between settings, not seeds.
// The halving loop (`successiveHalving`) is shared with the pruning sweeps of
// CompressionSweep.swift, which rank by a different objective (the most compressed
// candidate within a dev macro-F1 drop). Left out on purpose: Hyperband's brackets (one
// bracket is enough for the grids recipes give).
import DistilleryJSON
import DistilleryStages
import Foundation

/// One trial of a sweep.
public struct SweepTrial: Codable, Sendable, Equatable {
    /// Setting name → value ("learning_rate" → 1e-4, "losses.soft_ce" → 5, "heads" → 0.5).
    public var settings: [String: Double]
    public var round: Int
    /// Optimizer steps (distill sweeps).
    public var steps: Int?
    public var devMacroF1: Double
    /// Compression sweeps: the quantization scheme tried.
    public var scheme: String?
    /// Compression sweeps: "one-shot" (pruned, no training), "short" (recovered on
    /// `trainLimit` examples), "full" (the recipe's recovery), "scored" (a quantized scheme).
    public var rung: String?
    public var trainLimit: Int?
    /// Compression sweeps: the candidate's size (parameters, file bytes) and its dev drop
    /// from the uncompressed model in macro-F1 points.
    public var parameters: Int?
    public var fileBytes: Int?
    public var drop: Double?
}

/// What a sweep tried and chose (`sweep.json` in the step folder).
public struct SweepRecord: Codable, Sendable {
    public var format = "distillery-sweep"
    public var version = 1
    public var trials: [SweepTrial] = []
    public var winner: [String: Double]?
    /// Setting → (value → mean first-round dev macro-F1), and the spread.
    public var mattered: [SettingEffect]?
    /// Compression sweeps: what was chosen for ("fewest parameters within max_drop" …),
    /// the uncompressed model's dev macro-F1, the limit, the winning scheme and why it won.
    public var objective: String?
    public var referenceMacroF1: Double?
    public var maxDrop: Double?
    public var winnerScheme: String?
    public var why: String?
}

/// How much one swept setting moved the first-round score.
public struct SettingEffect: Codable, Sendable {
    public var setting: String
    public var meanByValue: [String: Double]
    public var spread: Double
    /// Compression sweeps: the mean size (parameters or file bytes) at each value.
    public var meanSizeByValue: [String: Double]?
}

/// Every combination of `grids` (the last grid varying fastest), as setting → value.
func combinations(_ grids: [(String, [Double])]) -> [[String: Double]] {
    var combos: [[String: Double]] = [[:]]
    for (name, values) in grids { combos = combos.flatMap { c in values.map { c.merging([name: $0]) { $1 } } } }
    return combos
}

/// Successive halving: every candidate of `alive` is tried at round 0, the best fraction
/// `keep` (at least `survivors`) is tried again at round 1, and so on until `survivors` or
/// fewer are left; `ranksBefore(a, b)` orders two scores (ties keep the earlier candidate,
/// so the choice is deterministic). `trial(candidate, round)` runs or looks up one trial.
func successiveHalving<Candidate, Score>(_ candidates: [Candidate], keep: Double, survivors: Int = 1,
                                          trial: (Candidate, Int) throws -> Score,
                                          ranksBefore: (Score, Score) -> Bool) rethrows -> [Candidate] {
    var alive = candidates
    var round = 0
    while alive.count > survivors {
        var scored: [(candidate: Candidate, score: Score)] = []
        for candidate in alive { scored.append((candidate, try trial(candidate, round))) }
        let order = scored.indices.sorted {
            ranksBefore(scored[$0].score, scored[$1].score) || (!ranksBefore(scored[$1].score, scored[$0].score) && $0 < $1)
        }
        let kept = max(survivors, Int((Double(alive.count) * keep).rounded(.down)))
        alive = order.prefix(kept).map { scored[$0].candidate }
        round += 1
    }
    return alive
}

extension StepExecutor {
    /// The settings to train a distill step with: `d` itself, or the sweep's winner.
    func chooseDistillSettings(_ d: DistillSettings, step: PlannedStep, dir: String, inputs: [String: String]) throws -> DistillSettings {
        var grids: [(String, [Double])] = []
        if let g = d.learningRate, g.isSweep { grids.append(("learning_rate", g.values)) }
        if let g = d.batchSize, g.isSweep { grids.append(("batch_size", g.values)) }
        if let g = d.temperature, g.isSweep { grids.append(("temperature", g.values)) }
        for (kind, g) in (d.losses ?? [:]).sorted(by: { $0.key < $1.key }) where g.isSweep { grids.append(("losses.\(kind)", g.values)) }
        guard !grids.isEmpty else { return d }
        let budget = d.sweep ?? SweepBudget()
        let combos = combinations(grids)
        let recordPath = dir + "/sweep/sweep.json"
        try FileManager.default.createDirectory(atPath: dir + "/sweep", withIntermediateDirectories: true)
        var record = FileManager.default.contents(atPath: recordPath).flatMap { try? JSONCoding.decode(SweepRecord.self, from: $0) } ?? SweepRecord()
        progress.line("sweep of \(d.name): \(combos.count) combinations of \(grids.map(\.0).joined(separator: ", ")), successive halving from \(budget.trialSteps) steps, keeping \(Int(budget.keep * 100))% each round")
        let alive = try successiveHalving(combos, keep: budget.keep, trial: { combo, round in
            if let done = record.trials.first(where: { $0.settings == combo && $0.round == round }) { return done.devMacroF1 }
            let steps = budget.trialSteps << round
            let out = dir + "/sweep/trial.h5"
            progress.line("sweep round \(round + 1): \(describe(combo)), \(steps) steps")
            var c = applying(combo, to: d)
            c.evalEvery = steps
            let r = try distill(c, dir: dir + "/sweep", out: out, inputs: inputs, threads: step.threads, resume: false, stopAfter: steps)
            for name in [out, metricsLogPath(out: out), dir + "/sweep/student.json"] { try? FileManager.default.removeItem(atPath: name) }
            record.trials.append(SweepTrial(settings: combo, round: round, steps: steps, devMacroF1: r.best.macroF1))
            try writeAtomically(try JSONCoding.data(record, pretty: true), to: recordPath)
            return r.best.macroF1
        }, ranksBefore: >)
        record.winner = alive[0]
        record.mattered = grids.map { name, values in
            let first = record.trials.filter { $0.round == 0 }
            var means: [String: Double] = [:]
            for v in values {
                let scores = first.filter { $0.settings[name] == v }.map(\.devMacroF1)
                if !scores.isEmpty { means[String(v)] = scores.reduce(0, +) / Double(scores.count) }
            }
            return SettingEffect(setting: name, meanByValue: means, spread: (means.values.max() ?? 0) - (means.values.min() ?? 0))
        }.sorted { $0.spread > $1.spread }
        try writeAtomically(try JSONCoding.data(record, pretty: true), to: recordPath)
        progress.line("sweep winner: \(describe(alive[0])); what mattered (spread of mean first-round dev macro-F1): "
                      + record.mattered!.map { String(format: "%@ %.4f", $0.setting, $0.spread) }.joined(separator: ", "))
        return applying(alive[0], to: d)
    }

    /// `d` with the swept settings set to one combination's values.
    func applying(_ combo: [String: Double], to d: DistillSettings) -> DistillSettings {
        var c = d
        for (name, value) in combo {
            switch name {
            case "learning_rate": c.learningRate = .value(value)
            case "batch_size": c.batchSize = .value(value)
            case "temperature": c.temperature = .value(value)
            default: c.losses?[String(name.dropFirst("losses.".count))] = .value(value)
            }
        }
        return c
    }

    func describe(_ combo: [String: Double]) -> String {
        combo.keys.sorted().map { "\($0)=\(combo[$0]!)" }.joined(separator: ", ")
    }
}
