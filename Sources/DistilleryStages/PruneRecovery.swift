// PruneRecovery: iterative prune-and-distill (`kd prune --schedule 0.5,1`) — each step
// prunes the previous step's model a little further and distils it back against the
// unpruned teacher (soft cross-entropy on the label cache's logits + hidden-state MSE at
// every layer, the teacher run online), through the ordinary distillation engine: the same
// plan checks, checkpoints and exact resume as `kd distill`. Each kept layer is matched with
// the teacher layer its original layer maps to: itself when the teacher is the model (or
// has as many layers), else `--recover-teacher-layers` (a 3-layer student of a 6-layer
// teacher: 2,4,6).
//
// The schedule lists fractions of the requested amounts, ascending, ending at 1: with
// `--heads 0.4 --schedule 0.5,1` step 1 removes 20% of the original heads and step 2 reaches
// 40%. Step k writes OUT.stepK.pruned.h5 (right after pruning), OUT.stepK.student.json (the
// student spec of its shapes, usable with `kd distill --init`), and OUT.stepK.h5 (after
// recovery; its checkpoint OUT.stepK.ckpt.h5 while it trains). Re-running the same command
// skips finished steps and resumes an interrupted one from its checkpoint. Vocabulary
// pruning, if asked for, comes last (the label cache's ids are the teacher's): OUT is the
// last recovered model with its vocabulary trimmed, or a copy of it.
// Left out on purpose: a recipe file, per-step loss weights.
import Compression
import DistilleryJSON
import Foundation

/// How the pruned models are distilled back.
public struct RecoveryConfig: Sendable {
    /// Fractions of the requested amounts reached by each step (ascending, the last 1).
    public var schedule: [Double]
    /// Distillation epochs per step.
    public var epochs = 1
    /// Train on the first N cached examples per step (a budget; nil: all).
    public var trainLimit: Int?
    public var learningRate: Double?
    public var batchSize: Int?
    /// The teacher layer (1-based) each layer of the unpruned model is distilled against
    /// (hidden MSE); nil: layer k against layer k, which needs a teacher of as many layers.
    public var teacherLayers: [Int]?

    public init(schedule: [Double]) { self.schedule = schedule }
}

/// One step of an iterative run: what was pruned and how distillation went.
public struct RecoveryStep: Codable, Sendable {
    public var step: Int
    /// Fraction of the requested amounts reached.
    public var fraction: Double
    public var pruned: String
    public var spec: String
    public var recovered: String
    public var shape: ModelShape?
    /// Nil when the step was finished by an earlier run and reused.
    public var distill: DistillReport?
}

/// What an iterative prune-and-distill run did.
public struct RecoveryReport: Codable, Sendable {
    public var steps: [RecoveryStep]
    public var out: String
    /// The final vocabulary pruning, when asked for.
    public var final: PruneReport?

    /// One line per step and the output.
    public var text: String {
        var lines = steps.map { s in
            "step \(s.step) (\(s.fraction) of the amounts): \(s.pruned) → \(s.recovered)"
                + (s.distill.map { String(format: ", best dev macro-F1 %.4f at step %d", $0.best.macroF1, $0.best.step) } ?? " (reused)")
        }
        if let final { lines.append(final.text) }
        lines.append("→ \(out)")
        return lines.joined(separator: "\n")
    }
}

/// Prunes `config.model` step by step as `recovery.schedule` says, distilling after each
/// step against `config.teacher` (default: the model) on `config.labels`.
public func pruneAndRecover(_ config: PruneConfig, _ recovery: RecoveryConfig, progress: StageProgress) throws -> RecoveryReport {
    let s = recovery.schedule
    guard !s.isEmpty, s.allSatisfy({ $0 > 0 && $0 <= 1 }), zip(s, s.dropFirst()).allSatisfy({ $0 < $1 }), s.last == 1 else {
        throw StageError.usage("--schedule \(s.map { String($0) }.joined(separator: ",")) must be increasing fractions in (0, 1] ending at 1 (of --heads/--ffn/--layers), e.g. 0.5,1")
    }
    guard recovery.epochs >= 1 else { throw StageError.usage("--recover-epochs \(recovery.epochs) must be at least 1") }
    guard let out = config.out, let data = config.data, let labels = config.labels, !config.importanceOnly else {
        throw StageError.usage("--schedule distils after each step: give --out, --data and --labels (the teacher's label cache), without --importance")
    }
    guard !config.amounts.isNothing else { throw StageError.usage("--schedule needs something to prune: --heads, --ffn or --layers") }
    try checkOutputPath(out, flag: "--out")
    let teacher = config.teacher ?? config.model
    let layerMap = try recoveryLayerMap(model: config.model, teacher: teacher, given: recovery.teacherLayers)
    let base = out.hasSuffix(".h5") ? String(out.dropLast(3)) : out
    var current = config.model
    var sourceLayers: [Int]? = nil   // original layer of each current layer
    var done = (heads: 0.0, ffn: 0.0, layers: 0)
    var steps: [RecoveryStep] = []
    for (k, fraction) in s.enumerated() {
        let n = k + 1
        let paths = (pruned: "\(base).step\(n).pruned.h5", spec: "\(base).step\(n).student.json",
                     recovered: "\(base).step\(n).h5", checkpoint: "\(base).step\(n).ckpt.h5")
        let target = (heads: config.amounts.heads * fraction, ffn: config.amounts.ffn * fraction,
                      layers: Int((Double(config.amounts.layers) * fraction).rounded()))
        defer { done = target }
        var step = RecoveryStep(step: n, fraction: fraction, pruned: paths.pruned, spec: paths.spec, recovered: paths.recovered)
        let fm = FileManager.default
        if fm.fileExists(atPath: paths.recovered) {
            progress.line("step \(n): \(paths.recovered) exists — reusing it")
            sourceLayers = try sourceLayersOfSpec(paths.spec, layerMap: layerMap)
            current = paths.recovered
            steps.append(step)
            continue
        }
        let resuming = fm.fileExists(atPath: paths.checkpoint) && fm.fileExists(atPath: paths.pruned)
        if !resuming {
            var stepConfig = config
            stepConfig.model = current
            stepConfig.out = paths.pruned
            stepConfig.teacher = teacher
            stepConfig.vocab = nil
            stepConfig.amounts.heads = (target.heads - done.heads) / (1 - done.heads)
            stepConfig.amounts.ffn = (target.ffn - done.ffn) / (1 - done.ffn)
            stepConfig.amounts.layers = target.layers - done.layers
            progress.line(String(format: "step %d: pruning %@ (heads %.3f, FFN %.3f of what is left, %d layers)", n, current,
                                 stepConfig.amounts.heads, stepConfig.amounts.ffn, stepConfig.amounts.layers))
            let pruned = try prune(stepConfig, progress: progress)
            let previous = sourceLayers ?? Array(0..<pruned.before.layers)
            sourceLayers = (pruned.keptLayers ?? Array(0..<pruned.before.layers)).map { previous[$0] }
            try writeAtomically(Data(try recoverySpec(step: n, path: paths.pruned, teacherLayers: sourceLayers!.map { layerMap[$0] },
                                                      recovery: recovery).utf8), to: paths.spec)
        } else {
            progress.line("step \(n): resuming from \(paths.checkpoint)")
            sourceLayers = try sourceLayersOfSpec(paths.spec, layerMap: layerMap)
        }
        var distill = DistillConfig(teacher: teacher, student: paths.spec, labels: labels, data: data, out: paths.recovered)
        distill.initWeights = paths.pruned
        distill.checkpoint = paths.checkpoint
        distill.resume = resuming ? paths.checkpoint : nil
        distill.trainLimit = recovery.trainLimit
        distill.learningRate = recovery.learningRate
        distill.batchSize = recovery.batchSize
        distill.threads = config.threads
        let run = try prepareDistillation(distill)
        step.distill = try run.train(progress: progress)
        let bundle = try ModelBundle(path: paths.recovered)
        step.shape = ModelShape(bundle.config, tensors: bundle.tensors, file: paths.recovered)
        current = paths.recovered
        steps.append(step)
    }
    var report = RecoveryReport(steps: steps, out: out, final: nil)
    if config.vocab != nil {
        var last = config
        (last.model, last.amounts, last.teacher) = (current, PruneAmounts(), nil)
        report.final = try prune(last, progress: progress)
    } else {
        try writeAtomically(try Data(contentsOf: URL(fileURLWithPath: current)), to: out)
    }
    return report
}

/// The student spec of a pruned model: its per-layer shapes, each layer distilled from the
/// teacher layer it came from (hidden MSE) plus soft cross-entropy; `kd distill --init`
/// supplies the weights.
func recoverySpec(step: Int, path: String, teacherLayers: [Int], recovery: RecoveryConfig) throws -> String {
    let c = try ModelBundle(path: path, weights: .settingsOnly).config
    let spec: JSONValue = .object([
        "format": .string("distillery-student"), "version": .int(1), "name": .string("pruned-step\(step)"),
        "description": .string("recovery of \(URL(fileURLWithPath: path).lastPathComponent) (kd prune --schedule): start from it with kd distill --init"),
        "architecture": .object([
            "layers": .int(c.layerCount), "hidden_size": .int(c.hiddenSize), "heads": .int(c.headCount),
            "intermediate_size": .int(c.intermediateSize),
            "layer_heads": .array(c.layerHeads.map(JSONValue.int)),
            "layer_intermediate_sizes": .array(c.layerIntermediateSizes.map(JSONValue.int)),
        ]),
        "init": .object(["from": .string("random")]),
        "layer_map": .object(["kind": .string("explicit"), "teacher_layers": .array(teacherLayers.map(JSONValue.int))]),
        "losses": .object(["soft_ce": .int(1), "hidden_mse": .int(1)]),
        "temperature": .double(1),
        "schedule": .object(["kind": .string("one-stage"), "epochs": .int(recovery.epochs)]),
    ])
    return try JSONCoding.string(spec, pretty: true)
}

/// The teacher layer (1-based) each layer of the unpruned `model` is distilled against:
/// `given` (`--recover-teacher-layers`, checked), else layer k against layer k — refused
/// when the teacher has another number of layers (a distilled student and its teacher).
func recoveryLayerMap(model: String, teacher: String, given: [Int]?) throws -> [Int] {
    let modelLayers = try ModelBundle(path: model, weights: .settingsOnly).config.layerCount
    if given == nil && teacher == model { return Array(1...max(1, modelLayers)) }
    let teacherLayers = try ModelBundle(path: teacher, weights: .settingsOnly).config.layerCount
    guard let given else {
        guard teacherLayers == modelLayers else {
            throw StageError.usage("--teacher \(teacher) has \(teacherLayers) layers and --model \(model) \(modelLayers): say which teacher layer each model layer is distilled against with --recover-teacher-layers (1-based, e.g. 2,4,6 for a student made of every other layer of a 6-layer teacher)")
        }
        return Array(1...max(1, modelLayers))
    }
    let flag = "--recover-teacher-layers \(given.map(String.init).joined(separator: ","))"
    guard given.count == modelLayers else {
        throw StageError.usage("\(flag) names \(given.count) layers but --model \(model) has \(modelLayers) — give one teacher layer per model layer")
    }
    guard given.allSatisfy({ (1...teacherLayers).contains($0) }), zip(given, given.dropFirst()).allSatisfy({ $0 < $1 }) else {
        throw StageError.usage("\(flag) must be increasing teacher layers in 1...\(teacherLayers) (the teacher \(teacher) has \(teacherLayers))")
    }
    return given
}

/// The original model layer of each layer of a step's model, read back from the
/// `layer_map.teacher_layers` of the spec `recoverySpec` wrote for it.
private func sourceLayersOfSpec(_ path: String, layerMap: [Int]) throws -> [Int] {
    guard let data = FileManager.default.contents(atPath: path),
          let list = (try? JSONValue.parse(data))?.objectValue?["layer_map"]?.objectValue?["teacher_layers"]?.arrayValue else {
        throw StageError("\(path): missing or not a spec written by kd prune --schedule — remove the step's files and run again")
    }
    return try list.map { value in
        guard let layer = value.intValue, let source = layerMap.firstIndex(of: layer) else {
            throw StageError("\(path): teacher layer \(value) is not in this run's layer map \(layerMap) — the step was made with other --recover-teacher-layers; remove the step's files and run again")
        }
        return source
    }
}
