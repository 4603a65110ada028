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
// Left out on purpose: sweeps of pruning ratios and quantization schemes (their "best"
// needs a size or latency constraint — `kd quantize --max-drop` and `kd pick` hold those).
import DistilleryJSON
import DistilleryStages
import Foundation

/// One trial of a sweep.
public struct SweepTrial: Codable, Sendable, Equatable {
    /// Setting name → value ("learning_rate" → 1e-4, "losses.soft_ce" → 5).
    public var settings: [String: Double]
    public var round: Int
    public var steps: Int
    public var devMacroF1: Double
}

/// What a sweep tried and chose (`sweep.json` in the step folder).
public struct SweepRecord: Codable, Sendable {
    public var format = "distillery-sweep"
    public var version = 1
    public var trials: [SweepTrial] = []
    public var winner: [String: Double]?
    /// Setting → (value → mean first-round dev macro-F1), and the spread.
    public var mattered: [SettingEffect]?
}

/// How much one swept setting moved the first-round score.
public struct SettingEffect: Codable, Sendable {
    public var setting: String
    public var meanByValue: [String: Double]
    public var spread: Double
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
        var combos: [[String: Double]] = [[:]]
        for (name, values) in grids { combos = combos.flatMap { c in values.map { c.merging([name: $0]) { $1 } } } }
        let recordPath = dir + "/sweep/sweep.json"
        try FileManager.default.createDirectory(atPath: dir + "/sweep", withIntermediateDirectories: true)
        var record = FileManager.default.contents(atPath: recordPath).flatMap { try? JSONCoding.decode(SweepRecord.self, from: $0) } ?? SweepRecord()
        progress.line("sweep of \(d.name): \(combos.count) combinations of \(grids.map(\.0).joined(separator: ", ")), successive halving from \(budget.trialSteps) steps, keeping \(Int(budget.keep * 100))% each round")
        var alive = combos
        var round = 0
        while alive.count > 1 {
            let steps = budget.trialSteps << round
            var scored: [(combo: [String: Double], score: Double)] = []
            for (i, combo) in alive.enumerated() {
                if let done = record.trials.first(where: { $0.settings == combo && $0.round == round }) {
                    scored.append((combo, done.devMacroF1))
                    continue
                }
                let trial = applying(combo, to: d)
                let out = dir + "/sweep/trial.h5"
                progress.line("sweep round \(round + 1), trial \(i + 1)/\(alive.count): \(describe(combo)), \(steps) steps")
                var c = trial
                c.evalEvery = steps
                let r = try distill(c, dir: dir + "/sweep", out: out, inputs: inputs, threads: step.threads, resume: false, stopAfter: steps)
                for name in [out, metricsLogPath(out: out), dir + "/sweep/student.json"] { try? FileManager.default.removeItem(atPath: name) }
                record.trials.append(SweepTrial(settings: combo, round: round, steps: steps, devMacroF1: r.best.macroF1))
                try writeAtomically(try JSONCoding.data(record, pretty: true), to: recordPath)
                scored.append((combo, r.best.macroF1))
            }
            // Ties keep the earlier combination (grid order), so the choice is deterministic.
            let order = scored.indices.sorted { scored[$0].score > scored[$1].score || (scored[$0].score == scored[$1].score && $0 < $1) }
            let keep = max(1, Int((Double(alive.count) * budget.keep).rounded(.down)))
            alive = order.prefix(keep).map { scored[$0].combo }
            round += 1
        }
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
