// CompressionSweep: choosing a pruned or quantized variant from a grid under a stated
// accuracy limit — the most compressed candidate (fewest parameters for pruning, smallest
// file for quantization) whose dev macro-F1 stays within `max_drop` points of the
// uncompressed model's; when none does, the one that drops least, and the record says so.
// This is the constraint form of the choice `kd pick --max-drop` makes on test after the
// fact, made here on dev so that downstream stages (quantize, bench, report) use the winner
// under the stage's name.
//
// Pruning with recovery runs successive halving (Sweep.swift's loop): every candidate is
// pruned and recovered briefly on `sweep.trial_limit` training examples (doubled each
// round), ranked by the objective, and the best `sweep.keep` go on until
// `sweep.survivors` are left; those are recovered fully with the recipe's `recover`
// settings and the winner is chosen among them. Pruning without recovery and quantization
// have nothing to train: every candidate is made and scored on dev once. Every trial is
// recorded in `sweep/sweep.json` (rewritten atomically after each), so a killed sweep
// resumes without redoing finished trials; the trial models are deleted once scored, the
// full survivors once the winner is copied to `model.h5`.
// Left out on purpose: latency limits (they need the bench's machine; `kd pick` has them),
// choosing with a different objective per grid.
import Compression
import DistilleryJSON
import DistilleryStages
import Foundation

/// Drops (points) this close above `max_drop` still count as within it: the drop is a
/// difference of two F1 values printed to 4 decimals, so 1e-9 only absorbs rounding.
let maxDropTolerance = 1e-9

/// One compression candidate's score: dev macro-F1 and its size.
struct CompressionScore {
    var macroF1: Double
    var size: Int
}

/// Orders candidates for "the most compressed within `maxDrop` points of `reference`":
/// those within the limit first, smallest first (then higher F1); then the others, least
/// drop first (then smaller).
func compressionRanksBefore(_ a: CompressionScore, _ b: CompressionScore, reference: Double, maxDrop: Double) -> Bool {
    func within(_ s: CompressionScore) -> Bool { (reference - s.macroF1) * 100 <= maxDrop + maxDropTolerance }
    if within(a) != within(b) { return within(a) }
    if within(a) { return a.size < b.size || (a.size == b.size && a.macroF1 > b.macroF1) }
    return a.macroF1 > b.macroF1 || (a.macroF1 == b.macroF1 && a.size < b.size)
}

/// Every combination of a prune entry's amounts (grid order), as "heads", "ffn", "layers".
func pruneCandidates(_ p: PruneSettings) -> [[String: Double]] {
    combinations([("heads", p.heads?.values ?? [0]), ("ffn", p.ffn?.values ?? [0]), ("layers", (p.layersGrid ?? [p.layers]).map(Double.init))])
}

/// The names of a prune entry's swept settings.
func sweptPruneSettings(_ p: PruneSettings) -> [String] {
    [p.heads?.isSweep == true ? "heads" : nil, p.ffn?.isSweep == true ? "ffn" : nil, (p.layersGrid?.count ?? 0) > 1 ? "layers" : nil].compactMap { $0 }
}

extension StepExecutor {
    /// The sweep record of a step folder (empty when none is there yet).
    func loadSweepRecord(_ dir: String) throws -> (record: SweepRecord, path: String) {
        try FileManager.default.createDirectory(atPath: dir + "/sweep", withIntermediateDirectories: true)
        let path = dir + "/sweep/sweep.json"
        return (FileManager.default.contents(atPath: path).flatMap { try? JSONCoding.decode(SweepRecord.self, from: $0) } ?? SweepRecord(), path)
    }

    /// Dev macro-F1 of a model file.
    func devMacroF1(_ model: String, inputs: [String: String], threads: Int) throws -> Double {
        try evaluate(EvalConfig(model: model, data: inputs["prepare"]!, split: .dev, threads: threads)).macroF1
    }

    /// The prune configuration of one candidate.
    func pruneConfig(_ p: PruneSettings, amounts combo: [String: Double], inputs: [String: String], out: String, threads: Int) -> PruneConfig {
        var c = PruneConfig(model: inputs[modelStep(p.model, recipe)]!, out: out)
        c.amounts = PruneAmounts(heads: combo["heads"] ?? 0, ffn: combo["ffn"] ?? 0, layers: Int(combo["layers"] ?? 0), uniform: p.uniform)
        (c.data, c.labels, c.teacher) = (inputs["prepare"]!, inputs["label"]!, inputs["teacher"]!)
        (c.samples, c.batchSize, c.threads) = (p.samples, p.batchSize, threads)
        return c
    }

    /// The recovery configuration of `r`, with the training examples capped at `limit`.
    func recoveryConfig(_ r: RecoverySettings, limit: Int? = nil) -> RecoveryConfig {
        var recovery = RecoveryConfig(schedule: limit == nil ? r.schedule : [1])
        (recovery.epochs, recovery.trainLimit, recovery.learningRate) = (limit == nil ? r.epochs : 1, limit ?? r.trainLimit, r.learningRate)
        return recovery
    }

    /// A prune step with a grid: the winner written to `dir/model.h5` (see the file header).
    func runPruneSweep(_ p: PruneSettings, step: PlannedStep, dir: String, inputs: [String: String]) throws -> StepResult {
        let (loaded, recordPath) = try loadSweepRecord(dir)
        var record = loaded
        func save() throws { try writeAtomically(try JSONCoding.data(record, pretty: true), to: recordPath) }
        let maxDrop = p.maxDrop!
        let candidates = pruneCandidates(p)
        let index = { (combo: [String: Double]) in candidates.firstIndex(of: combo)! }
        if record.referenceMacroF1 == nil {
            record.referenceMacroF1 = try devMacroF1(inputs[modelStep(p.model, recipe)]!, inputs: inputs, threads: step.threads)
            (record.objective, record.maxDrop) = ("fewest parameters with dev macro-F1 within max_drop points of the unpruned model", maxDrop)
            try save()
        }
        let reference = record.referenceMacroF1!
        progress.line(String(format: "prune sweep of %@: %d candidates of %@; the unpruned %@ scores dev macro-F1 %.4f; limit: a drop of %.2f points",
                             p.name, candidates.count, sweptPruneSettings(p).joined(separator: ", "), p.model, reference, maxDrop))
        let rank = { (a: CompressionScore, b: CompressionScore) in compressionRanksBefore(a, b, reference: reference, maxDrop: maxDrop) }

        /// Runs (or finds) one trial; the model it made is at `out` unless `keepModel` is false.
        func trial(_ combo: [String: Double], round: Int, rung: String, limit: Int?, out: String, keepModel: Bool) throws -> CompressionScore {
            if let done = record.trials.first(where: { $0.settings == combo && $0.round == round && $0.rung == rung }) {
                return CompressionScore(macroF1: done.devMacroF1, size: done.parameters ?? 0)
            }
            try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: out).deletingLastPathComponent().path, withIntermediateDirectories: true)
            progress.line("prune sweep, \(rung)\(limit.map { " (\($0) training examples)" } ?? ""): \(describe(combo))")
            let c = pruneConfig(p, amounts: combo, inputs: inputs, out: out, threads: step.threads)
            if rung == "one-shot" { _ = try prune(c, progress: progress) } else {
                _ = try pruneAndRecover(c, recoveryConfig(p.recover!, limit: rung == "short" ? limit : nil), progress: progress)
            }
            let described = try describeModel(out)
            let f1 = try devMacroF1(out, inputs: inputs, threads: step.threads)
            record.trials.append(SweepTrial(settings: combo, round: round, devMacroF1: f1, rung: rung, trainLimit: limit,
                                            parameters: described.parameters, fileBytes: described.bytes, drop: (reference - f1) * 100))
            try save()
            progress.line(String(format: "  dev macro-F1 %.4f (drop %.2f points), %d parameters", f1, (reference - f1) * 100, described.parameters))
            if !keepModel { try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: out).deletingLastPathComponent().path) }
            return CompressionScore(macroF1: f1, size: described.parameters)
        }

        let finalists: [[String: Double]], finalRung = p.recover == nil ? "one-shot" : "full"
        func finalOut(_ combo: [String: Double]) -> String { dir + "/sweep/\(finalRung)-\(index(combo))/model.h5" }
        if let recover = p.recover {
            let budget = p.sweep ?? SweepBudget()
            let firstLimit = budget.trialLimit ?? 256
            finalists = try successiveHalving(candidates, keep: budget.keep, survivors: budget.survivors ?? 2, trial: { combo, round in
                var limit = firstLimit << round
                if let full = recover.trainLimit { limit = min(limit, full) }
                return try trial(combo, round: round, rung: "short", limit: limit, out: dir + "/sweep/short-\(index(combo))-\(round)/model.h5", keepModel: false)
            }, ranksBefore: rank)
        } else {
            finalists = candidates
        }
        let finalRound = record.trials.filter { $0.rung == "short" }.map(\.round).max().map { $0 + 1 } ?? 0
        var scores: [CompressionScore] = []
        for combo in finalists {
            scores.append(try trial(combo, round: finalRound, rung: finalRung, limit: nil, out: finalOut(combo), keepModel: true))
        }
        let best = scores.indices.min { rank(scores[$0], scores[$1]) || (!rank(scores[$1], scores[$0]) && $0 < $1) }!
        let winner = finalists[best]
        let drop = (reference - scores[best].macroF1) * 100
        let met = drop <= maxDrop + maxDropTolerance
        record.winner = winner
        record.why = met
            ? String(format: "the fewest parameters (%d) of the %d finalists within %.2f points of the unpruned model's dev macro-F1 (drop %.2f)",
                     scores[best].size, finalists.count, maxDrop, drop)
            : String(format: "no finalist stayed within %.2f points of the unpruned model's dev macro-F1: the least-dropping one (drop %.2f), %d parameters",
                     maxDrop, drop, scores[best].size)
        record.mattered = compressionEffects(record.trials, settings: sweptPruneSettings(p), round: 0)
        // The winner's model: the kept file, or made again (pruning and recovery are deterministic).
        let kept = finalOut(winner)
        if !FileManager.default.fileExists(atPath: kept) {
            _ = try trialModel(p, winner, rung: finalRung, out: kept, inputs: inputs, threads: step.threads)
        }
        try writeAtomically(try Data(contentsOf: URL(fileURLWithPath: kept)), to: dir + "/model.h5")
        try save()
        for combo in finalists { try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: finalOut(combo)).deletingLastPathComponent().path) }
        progress.line("prune sweep winner: \(describe(winner)) — \(record.why!)")
        return StepResult(outputs: ["model.h5"], report: (try? JSONCoding.data(record)).flatMap { try? JSONValue.parse($0) })
    }

    /// Makes one candidate's model again at `out` (a finalist whose file is gone).
    func trialModel(_ p: PruneSettings, _ combo: [String: Double], rung: String, out: String, inputs: [String: String], threads: Int) throws -> String {
        try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: out).deletingLastPathComponent().path, withIntermediateDirectories: true)
        let c = pruneConfig(p, amounts: combo, inputs: inputs, out: out, threads: threads)
        if rung == "one-shot" { _ = try prune(c, progress: progress) } else { _ = try pruneAndRecover(c, recoveryConfig(p.recover!), progress: progress) }
        return out
    }

    /// A quantize entry with a grid of schemes: every scheme scored on dev once, the
    /// smallest file within `maxDrop` written to `dir/model.h5`.
    func runQuantizeSweep(model: String, schemes: [String], maxDrop: Double, calibrationSize: Int, evalSize: Int,
                          step: PlannedStep, dir: String, inputs: [String: String]) throws -> StepResult {
        let (loaded, recordPath) = try loadSweepRecord(dir)
        var record = loaded
        func save() throws { try writeAtomically(try JSONCoding.data(record, pretty: true), to: recordPath) }
        (record.objective, record.maxDrop) = ("smallest file with dev macro-F1 within max_drop points of the unquantized model", maxDrop)
        func config(_ scheme: String, out: String) -> QuantizeConfig {
            var c = QuantizeConfig(model: inputs[modelStep(model, recipe)]!, scheme: scheme, out: out)
            if scheme == "int8-static" { c.calibration = inputs["prepare"] }
            (c.data, c.calibrationSize, c.evalSize, c.threads) = (inputs["prepare"], calibrationSize, evalSize, step.threads)
            return c
        }
        progress.line(String(format: "quantize sweep of %@: %d schemes, limit: a dev macro-F1 drop of %.2f points", model, schemes.count, maxDrop))
        var scores: [CompressionScore] = []
        for scheme in schemes {
            if let done = record.trials.first(where: { $0.scheme == scheme }) {
                scores.append(CompressionScore(macroF1: done.devMacroF1, size: done.fileBytes ?? 0))
                continue
            }
            let r = try quantize(config(scheme, out: dir + "/sweep/\(scheme).h5"), progress: progress)
            guard let f1 = r.written?.macroF1, let drop = r.written?.drop else {
                throw StageError("\(r.model): a grid of schemes keeps a classifier's dev macro-F1, and the model has no classifier head — list the schemes instead of a grid")
            }
            record.referenceMacroF1 = f1 + drop / 100
            record.trials.append(SweepTrial(settings: [:], round: 0, devMacroF1: f1, scheme: scheme, rung: "scored", fileBytes: r.bytesAfter, drop: drop))
            try save()
            progress.line(String(format: "  %@: dev macro-F1 %.4f (drop %.2f points), %@", scheme, f1, drop, formatBytes(r.bytesAfter)))
            scores.append(CompressionScore(macroF1: f1, size: r.bytesAfter))
        }
        let reference = record.referenceMacroF1!
        let rank = { (a: CompressionScore, b: CompressionScore) in compressionRanksBefore(a, b, reference: reference, maxDrop: maxDrop) }
        let best = scores.indices.min { rank(scores[$0], scores[$1]) || (!rank(scores[$1], scores[$0]) && $0 < $1) }!
        let drop = (reference - scores[best].macroF1) * 100
        record.winnerScheme = schemes[best]
        record.why = drop <= maxDrop + maxDropTolerance
            ? String(format: "the smallest file (%@) of the %d schemes within %.2f points of the unquantized model's dev macro-F1 (drop %.2f)",
                     formatBytes(scores[best].size), schemes.count, maxDrop, drop)
            : String(format: "no scheme stayed within %.2f points of the unquantized model's dev macro-F1: the least-dropping one (drop %.2f), %@",
                     maxDrop, drop, formatBytes(scores[best].size))
        record.mattered = [SettingEffect(setting: "scheme", meanByValue: Dictionary(uniqueKeysWithValues: zip(schemes, scores.map(\.macroF1))),
                                         spread: (scores.map(\.macroF1).max() ?? 0) - (scores.map(\.macroF1).min() ?? 0),
                                         meanSizeByValue: Dictionary(uniqueKeysWithValues: zip(schemes, scores.map { Double($0.size) })))]
        let kept = dir + "/sweep/\(schemes[best]).h5"
        if !FileManager.default.fileExists(atPath: kept) { _ = try quantize(config(schemes[best], out: kept), progress: progress) }
        try writeAtomically(try Data(contentsOf: URL(fileURLWithPath: kept)), to: dir + "/model.h5")
        try save()
        for scheme in schemes { try? FileManager.default.removeItem(atPath: dir + "/sweep/\(scheme).h5") }
        progress.line("quantize sweep winner: \(schemes[best]) — \(record.why!)")
        return StepResult(outputs: ["model.h5"], report: (try? JSONCoding.data(record)).flatMap { try? JSONValue.parse($0) })
    }
}

/// Per swept setting, the mean dev macro-F1 and the mean size (parameters) of the trials
/// of `round` at each of its values, and the F1 spread between the best and worst value.
func compressionEffects(_ trials: [SweepTrial], settings: [String], round: Int) -> [SettingEffect] {
    let rung = trials.filter { $0.round == round }
    return settings.map { name in
        var f1: [String: Double] = [:], size: [String: Double] = [:]
        for v in Set(rung.compactMap { $0.settings[name] }).sorted() {
            let at = rung.filter { $0.settings[name] == v }
            f1[String(v)] = at.map(\.devMacroF1).reduce(0, +) / Double(at.count)
            size[String(v)] = at.map { Double($0.parameters ?? 0) }.reduce(0, +) / Double(at.count)
        }
        return SettingEffect(setting: name, meanByValue: f1, spread: (f1.values.max() ?? 0) - (f1.values.min() ?? 0), meanSizeByValue: size)
    }.sorted { $0.spread > $1.spread }
}
