// Planner: a recipe turned into the ordered list of steps `kd run` executes — one step per
// model or file it makes (the teacher, each student, each pruned model, each model×scheme
// quantized, each model×format export, the bench, the report) — with what each reads (input
// files, earlier steps) and, for `--dry-run`, what it will cost: examples seen, optimizer
// steps, and the disk its outputs take.
//
// Costs are estimates from the recipe, the prepared dataset's manifest (when prepare has
// run or the dataset is a prepared folder) and the input files' headers: an fp32 model
// takes 4 bytes per parameter, int8 about a quarter of that and int4 about an eighth (plus
// the fp32 tensors they leave alone), a label cache what `kd label --dry-run` says. A
// figure the planner cannot know yet is shown as "?" with the step it waits for.
// Left out on purpose: time estimates (they depend on the machine; the progress ETA gives them).
import Distillation
import DistilleryData
import DistilleryJSON
import DistilleryStages
import Foundation

/// What one step does, with its settings: its canonical JSON is part of the step key.
public enum StepWork: Codable, Sendable {
    case prepare(PrepareSettings)
    case teacher(TeacherSettings)
    case label(LabelSettings)
    case distill(DistillSettings)
    case prune(PruneSettings)
    case quantize(model: String, scheme: String, maxDrop: Double?, calibrationSize: Int, evalSize: Int)
    /// A grid of schemes for one model: the most compressed within `maxDrop`, named `name`.
    case quantizeGrid(name: String, model: String, schemes: [String], maxDrop: Double, calibrationSize: Int, evalSize: Int)
    case export(model: String, format: String, type: String)
    case bench(BenchSettings)
    case report
}

/// One step of a run.
public struct PlannedStep: Sendable {
    /// "teacher", "distill-l3", "quantize-l3-int8-dynamic", "export-l3-onnx".
    public let id: String
    public let stage: StageKind
    /// The model this step makes (the variant name), if it makes one.
    public let model: String?
    public let work: StepWork
    /// Input files or folders named by the recipe (hashed into the key).
    public let files: [String]
    /// Steps whose outputs this one reads.
    public let after: [String]
    /// When the step only points at an existing file or folder (a teacher "file", a
    /// prepared "folder"): that path; nothing runs.
    public let external: String?
    /// Threads of the stage functions (part of the key: results depend on it).
    public let threads: Int
}

/// The ordered steps of `recipe`.
public func planSteps(_ recipe: Recipe) -> [PlannedStep] {
    let threads = recipe.threads ?? max(1, min(ProcessInfo.processInfo.activeProcessorCount, maximumThreads))
    var steps: [PlannedStep] = []
    func add(_ id: String, _ stage: StageKind, model: String? = nil, _ work: StepWork, files: [String] = [], after: [String], external: String? = nil) {
        steps.append(PlannedStep(id: id, stage: stage, model: model, work: work, files: files, after: after, external: external, threads: threads))
    }
    switch recipe.prepare.source {
    case .packaged(let name, let cache): add("prepare", .prepare, .prepare(recipe.prepare), files: [cache + "/" + name], after: [])
    case .csv(let path, _, _, _, _, _): add("prepare", .prepare, .prepare(recipe.prepare), files: [path], after: [])
    case .folder(let path): add("prepare", .prepare, .prepare(recipe.prepare), files: [path], after: [], external: path)
    }
    if let file = recipe.teacher.file {
        add("teacher", .teacher, model: "teacher", .teacher(recipe.teacher), files: [file], after: [], external: file)
    } else {
        add("teacher", .teacher, model: "teacher", .teacher(recipe.teacher), files: [recipe.teacher.base!], after: ["prepare"])
    }
    if let label = recipe.label { add("label", .label, .label(label), after: ["prepare", "teacher"]) }
    for d in recipe.distill {
        add("distill-\(d.name)", .distill, model: d.name, .distill(d), files: [d.student], after: ["prepare", "teacher", "label"])
    }
    for p in recipe.prune {
        let source = p.model == "teacher" ? [] : ["distill-\(p.model)"]
        add("prune-\(p.name)", .prune, model: p.name, .prune(p), after: ["prepare", "teacher", "label"] + source)
    }
    for q in recipe.quantize {
        if q.grid {
            add("quantize-\(q.name!)", .quantize, model: q.name!, .quantizeGrid(name: q.name!, model: q.models[0], schemes: q.schemes, maxDrop: q.maxDrop!,
                                                                             calibrationSize: q.calibrationSize, evalSize: q.evalSize),
                after: [modelStep(q.models[0], recipe), "prepare"])
            continue
        }
        for model in q.models {
            for scheme in q.schemes {
                let name = QuantizedName.of(model, scheme)
                let needsData = q.maxDrop != nil || scheme == "int8-static"
                add("quantize-\(name)", .quantize, model: name,
                    .quantize(model: model, scheme: scheme, maxDrop: q.maxDrop, calibrationSize: q.calibrationSize, evalSize: q.evalSize),
                    after: [modelStep(model, recipe)] + (needsData ? ["prepare"] : []))
            }
        }
    }
    for e in recipe.export {
        for model in e.models {
            for format in e.formats {
                add("export-\(model)-\(format)", .export, .export(model: model, format: format, type: e.type), after: [modelStep(model, recipe)])
            }
        }
    }
    if let bench = recipe.bench {
        let variants = steps.filter { $0.model != nil }.map(\.id)
        add("bench", .bench, .bench(bench), after: ["prepare"] + variants)
    }
    if recipe.report { add("report", .report, .report, after: ["bench"]) }
    return steps
}

/// The step that makes model `name`.
func modelStep(_ name: String, _ recipe: Recipe) -> String {
    if name == "teacher" { return "teacher" }
    if recipe.distill.contains(where: { $0.name == name }) { return "distill-\(name)" }
    if recipe.prune.contains(where: { $0.name == name }) { return "prune-\(name)" }
    return "quantize-\(name)"
}

// MARK: - costs

/// What a step will cost, as `--dry-run` shows it.
public struct StepCost: Codable, Sendable {
    /// Examples the step reads (training: examples × epochs).
    public var examples: Int?
    /// Optimizer steps (training steps only).
    public var steps: Int?
    /// Bytes its outputs take (an estimate).
    public var bytes: Int?
    /// What the figures depend on, when some are unknown.
    public var note: String?
}

/// Figures the planner knows before running anything.
struct CostContext {
    /// Training, dev and test examples of the prepared dataset, when known.
    var splits: [String: Int]?
    /// The teacher's (or its base's) parameters and file size, when the file is there.
    var teacherParameters: Int?
    var teacherBytes: Int?
    var vocabulary: Int?
    var hiddenSize: Int?
    var layers: Int?
    /// Parameters of the fp32 models planned so far, by name.
    var parameters: [String: Int] = [:]
}

/// The estimated cost of every step (`dataFolder`: the prepared folder when it exists).
func estimateCosts(_ steps: [PlannedStep], recipe: Recipe, dataFolder: String?, teacherFile: String?) -> [String: StepCost] {
    var context = CostContext()
    if let dataFolder, let folder = try? PreparedFolder(path: dataFolder) { context.splits = folder.manifest.totals }
    if let teacherFile, let d = try? describeModel(teacherFile, listTensors: true) {
        context.teacherParameters = d.parameters
        context.teacherBytes = d.bytes
        let embedding = d.tensors?.first { $0.name.hasSuffix("word_embeddings.weight") }?.shape
        (context.vocabulary, context.hiddenSize) = (embedding?.first, embedding?.last)
        context.layers = Set((d.tensors ?? []).compactMap { t -> Int? in
            guard let r = t.name.range(of: "layer.") else { return nil }
            return Int(t.name[r.upperBound...].prefix { $0.isNumber })
        }).count
        context.parameters["teacher"] = d.parameters
    }
    let train = context.splits?["train"]
    let unknownData = "? until prepare has run"
    var costs: [String: StepCost] = [:]
    func trainingSteps(examples: Int?, batch: Int, epochs: Int) -> (Int?, Int?) {
        guard let examples else { return (nil, nil) }
        return (examples * epochs, (examples + batch - 1) / batch * epochs)
    }
    for step in steps {
        var cost = StepCost()
        switch step.work {
        case .prepare:
            cost.examples = context.splits.map { $0.values.reduce(0, +) }
            if cost.examples == nil { cost.note = "rows known after reading the source" }
        case .teacher(let t):
            if step.external != nil { cost.note = "used as it is"; break }
            var (examples, optimizerSteps) = trainingSteps(examples: train, batch: t.batchSize, epochs: t.epochs)
            if let maxSteps = t.maxSteps, let s = optimizerSteps, maxSteps < s { optimizerSteps = maxSteps; examples = maxSteps * t.batchSize }
            (cost.examples, cost.steps, cost.bytes) = (examples, optimizerSteps, context.teacherBytes)
            if train == nil { cost.note = unknownData }
        case .label(let l):
            cost.examples = train.map { $0 * (1 + l.augment) }
            if let examples = cost.examples, let width = context.hiddenSize, let teacherLayers = context.layers {
                // logits (a few classes) and the hidden states asked for: tokens × width × 4 bytes each
                let tokens = l.maxLength ?? recipe.teacher.maxLength ?? 128
                let layers = l.hidden == nil ? 0 : (l.hidden == "all" ? teacherLayers + 1 : l.hidden!.split(separator: ",").count)
                cost.bytes = examples * (64 + layers * tokens * width * 4 / 2)
                cost.note = layers > 0 ? "hidden states counted at half the maximum length (texts are shorter)" : nil
            } else if train == nil { cost.note = unknownData }
        case .distill(let d):
            let spec = try? StudentSpec(contentsOf: URL(fileURLWithPath: d.student))
            let batch = Int(d.batchSize?.values.first ?? Double(spec?.training.batchSize ?? 32))
            var epochs = 1
            if let e = d.epochs { epochs = e.split(separator: ",").compactMap { Int($0) }.reduce(0, +) }
            else if let schedule = spec?.schedule {
                switch schedule {
                case .oneStage(let n): epochs = n
                case .twoStage(let a, let b): epochs = a + b
                }
            }
            let examples = train.map { min($0, d.trainLimit ?? $0) }
            (cost.examples, cost.steps) = trainingSteps(examples: examples, batch: batch, epochs: epochs)
            if let a = spec?.architecture, let vocabulary = context.vocabulary {
                let h = a.hiddenSize
                let perLayer = a.layerIntermediateSizes.reduce(0) { $0 + 2 * h * $1 } + a.layers * (4 * h * h)
                let parameters = (vocabulary + 512) * h + perLayer + h * h
                context.parameters[d.name] = parameters
                cost.bytes = parameters * 4
            }
            if train == nil { cost.note = unknownData }
        case .prune(let p):
            // The embeddings stay; of an encoder layer, attention holds about a third of the
            // weights (4h² of 4h² + 8h² with FFN width 4h) and the FFN two thirds.
            // (A grid is counted at its least pruned candidate: the winner is at most that large.)
            if let source = context.parameters[p.model], let vocabulary = context.vocabulary, let h = context.hiddenSize {
                let encoder = Double(max(source - vocabulary * h, 0))
                let removed = encoder * ((p.heads?.values.min() ?? 0) / 3 + (p.ffn?.values.min() ?? 0) * 2 / 3)
                context.parameters[p.name] = source - Int(removed)
                cost.bytes = context.parameters[p.name]! * 4
            }
            cost.examples = min(p.samples, train ?? p.samples)
            if let r = p.recover, let train {
                let examples = min(train, r.trainLimit ?? train)
                (cost.examples, cost.steps) = trainingSteps(examples: examples, batch: 32, epochs: r.epochs * r.schedule.count)
            }
            if p.isSweep { sweepCost(p, train: train, cost: &cost) }
        case .quantize(let model, let scheme, _, _, _):
            if let parameters = context.parameters[model] {
                // int8: a byte per weight; int4: half a byte plus group scales; bf16: two bytes
                cost.bytes = scheme.hasPrefix("int4") ? parameters * 5 / 8 : scheme == "bf16" ? parameters * 2 : parameters
            }
        case .quantizeGrid(_, let model, let schemes, _, _, let evalSize):
            if let parameters = context.parameters[model] {
                cost.bytes = schemes.map { $0.hasPrefix("int4") ? parameters * 5 / 8 : $0 == "bf16" ? parameters * 2 : parameters }.max()
            }
            cost.note = "\(schemes.count) schemes, each scored on \(evalSize == 0 ? "all" : "up to \(evalSize)") dev examples; the smallest within max_drop is kept"
        case .export(let model, _, _):
            cost.bytes = context.parameters[model].map { $0 * 4 }
        case .bench(let b):
            let test = context.splits?[b.split]
            let variants = step.after.count - 1
            cost.examples = test.map { min($0, b.evalLimit ?? $0) * variants }
            cost.note = String(format: "%d variants × %d rounds × %.0f s per turn of timing", variants, b.rounds, b.secondsPerTurn)
        case .report:
            cost.note = "tables, plots and one HTML page"
        }
        costs[step.id] = cost
    }
    return costs
}

/// A pruning sweep's training: every candidate's short recoveries round by round (the
/// halving kept count as the runner computes it), then the survivors' full recoveries.
func sweepCost(_ p: PruneSettings, train: Int?, cost: inout StepCost) {
    let candidates = pruneCandidates(p).count
    guard let r = p.recover else {
        cost.note = "\(candidates) candidates pruned and scored on dev; the most compressed within max_drop is kept"
        return
    }
    let budget = p.sweep ?? SweepBudget()
    let survivors = budget.survivors ?? 2
    var (alive, round, short, trials) = (candidates, 0, 0, 0)
    while alive > survivors {
        short += alive * min((budget.trialLimit ?? 256) << round, r.trainLimit ?? Int.max, train ?? Int.max)
        trials += alive
        alive = max(survivors, Int((Double(alive) * budget.keep).rounded(.down)))
        round += 1
    }
    let full = train.map { min($0, r.trainLimit ?? $0) * r.epochs * r.schedule.count * alive }
    cost.examples = full.map { $0 + short }
    cost.steps = cost.examples.map { ($0 + 31) / 32 }
    cost.note = "sweep of \(candidates) candidates: \(trials) short recoveries in \(round) round(s), \(alive) recovered fully; steps at batch 32"
}
