// DistillStage: train a student (students/*.json) from a fine-tuned teacher and its
// soft-label cache, in two calls: `prepareDistillation` checks everything before training —
// the student spec and its plan against the teacher, the cache's teacher and data hashes,
// the labels of teacher, cache and data, where the teacher's hidden states come from (the
// cache when it holds every layer the plan needs, else the teacher online on each batch) —
// and returns a run whose plan can be shown; `DistillationRun.train` then runs the shared
// training loop (DistilleryTraining.Trainer) with a `DistillationObjective`: the same
// progress, periodic checkpoints and exact resume as fine-tuning.
//
// The student is trained on the token ids the teacher saw (augmented copies included,
// without gold labels); the best student by dev macro-F1 is written as a Distillery model
// file (projections dropped). Left out on purpose: distilling a bare encoder (no classes).
import Distillation
import DistilleryData
import DistilleryModel
import DistilleryTensor
import DistilleryTraining
import Foundation
import Tokenization
import WeightIO

/// Where the teacher's hidden states come from during distillation.
public enum TeacherStatesMode: String, Sendable, CaseIterable {
    /// The cache when it holds every layer the plan needs, else online.
    case auto
    case cache
    /// The teacher runs on each batch.
    case online
}

/// What `prepareDistillation` checks and `DistillationRun.train` trains.
public struct DistillConfig: Sendable {
    /// The fine-tuned teacher the label cache was made with.
    public var teacher: String
    /// The student spec (students/*.json).
    public var student: String
    /// The label cache (`label`) of `teacher` on `data`.
    public var labels: String
    /// The prepared dataset folder (its dev split selects the best student).
    public var data: String
    /// The student model file to write.
    public var out: String
    /// Overrides of the spec's training values (nil: the spec's, else the defaults).
    public var learningRate: Double?
    public var batchSize: Int?
    public var warmup: Double?
    public var seed: UInt64?
    public var weightDecay = 0.01
    /// Global gradient-norm clip (0 = off).
    public var clip = 1.0
    public var evalEvery: Int?
    public var checkpointEvery: Int?
    /// Checkpoint file (nil: OUT with .ckpt.h5).
    public var checkpoint: String?
    /// Epochs replacing the spec's schedule: "N" (one-stage) or "intermediate,prediction".
    public var epochs: String?
    /// Stop after this many steps; the learning-rate schedule stays the full run's
    /// (`kd distill --stop-after`; a quick look, not a shorter run).
    public var stopAfter: Int?
    /// Keep the checkpoint after a successful run (otherwise it is removed).
    public var keepCheckpoint = false
    public var teacherStates: TeacherStatesMode = .auto
    /// Loss weights replacing the spec's (ablations).
    public var losses: LossWeights?
    /// A model file the student starts from instead of the spec's `init` (e.g. a pruned
    /// model); its tensors must have the student's shapes.
    public var initWeights: String?
    /// Train on the first N cached examples only (a budget; nil: all of them).
    public var trainLimit: Int?
    /// On a dataset with versions (`kd data prepare --append`): train on the last version's
    /// rows plus this fraction of the earlier versions' rows (0: new rows only; nil: every row).
    public var replayFraction: Double?
    public var resume: String?
    /// Only the plan and the checks: output paths are not checked and `train` refuses.
    public var planOnly = false
    /// Test hook: stop the process after this step (so a test can kill it there).
    public var pauseAfterStep: Int?
    public var threads = 1
    /// Let `out` replace an input model (it is written whole, then renamed over it).
    public var force = false

    /// A configuration with the defaults of `kd distill`.
    public init(teacher: String, student: String, labels: String, data: String, out: String) {
        self.teacher = teacher
        self.student = student
        self.labels = labels
        self.data = data
        self.out = out
    }

    /// The checkpoint path: `checkpoint`, or `out` with `.h5` replaced by `.ckpt.h5`.
    public var checkpointPath: String { defaultCheckpointPath(out: out, checkpoint: checkpoint) }

    func validate() throws {
        if let learningRate, !(learningRate > 0 && learningRate.isFinite) { throw StageError.usage("--lr \(learningRate) must be a positive number") }
        if let batchSize { try checkFlag(batchSize, in: 1...maximumBatchSize, flag: "--batch-size") }
        if let warmup, !(warmup >= 0 && warmup < 1) { throw StageError.usage("--warmup \(warmup) must be a fraction in [0, 1)") }
        guard weightDecay >= 0, weightDecay.isFinite else { throw StageError.usage("--weight-decay \(weightDecay) must be ≥ 0") }
        guard clip >= 0, clip.isFinite else { throw StageError.usage("--clip \(clip) must be ≥ 0 (0 turns clipping off)") }
        if let evalEvery { try checkFlag(evalEvery, in: 1...maximumSteps, flag: "--eval-every") }
        if let checkpointEvery { try checkFlag(checkpointEvery, in: 0...maximumSteps, flag: "--checkpoint-every") }
        if let stopAfter { try checkFlag(stopAfter, in: 1...maximumSteps, flag: "--stop-after") }
        if let trainLimit { try checkFlag(trainLimit, in: 1...Int(Int32.max), flag: "--train-limit") }
        if let replayFraction {
            guard replayFraction >= 0, replayFraction <= 1 else { throw StageError.usage("--replay-fraction \(replayFraction) must be a fraction in [0, 1]") }
            if trainLimit != nil { throw StageError.usage("--replay-fraction and --train-limit do not go together — the replay fraction already chooses the rows") }
        }
    }
}

/// The checked plan of a distillation run, as shown before training.
public struct DistillPlanReport: Codable, Sendable {
    /// Which student layer learns from which teacher layer, through what, with which losses.
    public var plan: String
    /// "training data: N cached examples (…), max length …; dev …".
    public var trainingData: String
    /// Where the teacher's hidden states come from.
    public var teacherStates: String

    enum CodingKeys: String, CodingKey { case plan, trainingData = "training_data", teacherStates = "teacher_states" }

    /// The three parts, one after the other.
    public var text: String { [plan, trainingData, teacherStates].joined(separator: "\n") }
}

/// What distillation wrote and how training went.
public struct DistillReport: Codable, Sendable {
    public var out: String
    public var best: BestScore
    /// Parameters of the written student (projections dropped).
    public var parameters: Int
    public var time: TrainingTime?
    /// The maximum length stored in the student (the label cache's).
    public var maxLength: Int
    /// The training log (`OUT.metrics.jsonl`).
    public var metrics: String
    /// The checkpoint, when kept (`--keep-checkpoint`).
    public var checkpoint: String?

    enum CodingKeys: String, CodingKey { case out, best, parameters, time, maxLength = "max_length", metrics, checkpoint }

    /// "trained … steps in …", "best dev macro-F1 … → OUT (N parameters)" and the log.
    public var text: String {
        (time.map { $0.text + "\n" } ?? "")
            + String(format: "best dev macro-F1 %.4f (accuracy %.4f) at step %d → %@ (%d parameters)", best.macroF1, best.accuracy,
                     best.step, out, parameters)
            + "\ntraining log → \(metrics)"
    }
}

/// Teacher hidden states read from a label cache, padded to each batch.
final class CachedTeacherStates: TeacherStates {
    let cache: LabelCache
    let hiddenSize: Int
    /// Training example i is cache example cacheRows[i].
    let cacheRows: [Int]
    init(cache: LabelCache, cacheRows: [Int]) {
        self.cache = cache
        self.cacheRows = cacheRows
        hiddenSize = cache.settings.hiddenSize
    }

    func states(rows: ArraySlice<Int>, batch: EncoderBatch, hidden: [Int], scores: [Int]) throws
        -> (hidden: [Int: [Float]], scores: [Int: [Float]]) {
        precondition(scores.isEmpty, "CachedTeacherStates: attention scores are not cached")
        let T = batch.sequenceLength, H = hiddenSize, examples = rows.map { cacheRows[$0] }
        var out: [Int: [Float]] = [:]
        for layer in hidden {
            let perExample = try cache.hidden(layer: layer, examples: examples)
            var padded = [Float](repeating: 0, count: examples.count * T * H)
            for (b, values) in perExample.enumerated() {
                padded.replaceSubrange((b * T * H)..<(b * T * H + values.count), with: values)
            }
            out[layer] = padded
        }
        return (out, [:])
    }
}

/// A checked distillation run, ready to train: a BERT student (`BertDistillationRun`) or a
/// BiGRU one (BiGRUStage.swift).
public protocol DistillationRun {
    var config: DistillConfig { get }
    /// The plan and checks, to show before training.
    var report: DistillPlanReport { get }
    /// Trains the student and writes the best one by dev macro-F1 to `config.out`.
    func train(progress: StageProgress) throws -> DistillReport
}

/// A checked BERT-student distillation run, ready to train.
public struct BertDistillationRun: DistillationRun {
    public let config: DistillConfig
    /// The plan and checks, to show before training.
    public let report: DistillPlanReport
    let source: ModelBundle
    let plan: DistillationPlan
    let cache: LabelCache
    let folder: PreparedFolder
    let objective: DistillationObjective
    let schedule: StagedSchedule
    let examples: [TrainingExample]
    let dev: [TrainingExample]
    let initial: InitializedStudent
    let runSeed: UInt64
    let perEpoch: Int

    /// Trains the student and writes the best one by dev macro-F1 to `config.out`.
    public func train(progress: StageProgress) throws -> DistillReport {
        guard !config.planOnly else { throw StageError("the run was prepared with planOnly — prepare it again to train") }
        // The run's identity for checkpoints: the initial student and the recipe, the cache and the data.
        let total = min(config.stopAfter ?? Int.max, schedule.totalSteps)
        let evalEvery = config.evalEvery ?? perEpoch
        let initialBlock: ParameterBlock
        do { initialBlock = try ParameterBlock(layout: plan.layout, tensors: initial.allTensors) } catch { throw StageError("\(config.student): \(error)") }
        let identity = [cache.settings.teacherSHA256, cache.settings.dataSHA256, String(cache.exampleCount),
                        SHA256.hex(try folder.bytes(.dev)), plan.description].joined(separator: "\n")
        let batchSize = config.batchSize ?? plan.spec.training.batchSize ?? 32
        let trainingConfig = TrainingConfig(
            modelFingerprint: modelFingerprint(tensors: initialBlock.tensors, configText: plan.description),
            dataSHA256: SHA256.hex(Data(identity.utf8)), labels: source.config.labels, trainExamples: examples.count,
            devExamples: dev.count, epochs: plan.stages.reduce(0) { $0 + $1.epochs }, totalSteps: total,
            batchSize: batchSize, maxLength: cache.settings.maxLength, learningRate: schedule.peakRate,
            warmupSteps: Int((Double(schedule.stages[0].steps) * schedule.warmupRatio).rounded(.up)), schedule: .linear,
            weightDecay: config.weightDecay, clipNorm: config.clip, evalEvery: evalEvery, seed: runSeed, dropout: objective.dropout,
            modelPath: config.student, dataPath: config.labels, threads: config.threads)
        progress.begin(totalSteps: total, epochs: (total + perEpoch - 1) / perEpoch)
        var state = try startingState(resume: config.resume, layout: plan.layout, config: trainingConfig, initial: initialBlock,
                                      threads: config.threads, progress: progress)

        var trainer = Trainer(model: objective.student, config: trainingConfig, train: examples, dev: dev,
                              paddingId: source.tokenizer.paddingId, checkpointURL: URL(fileURLWithPath: config.checkpointPath),
                              checkpointEvery: config.checkpointEvery ?? evalEvery)
        trainer.objective = objective
        trainer.learningRate = { [schedule] in schedule.rate(at: $0) }
        trainer.evaluateFromStep = min(schedule.firstPredictionStep, total - 1)
        progress.line("distilling \(config.teacher) into \(plan.spec.name) (\(plan.studentParameterCount) parameters): \(examples.count) examples, \(total) steps of \(batchSize) (\(perEpoch) per epoch), \(config.threads) thread(s)")
        var stageShown = -1
        let log = try MetricsLog(path: metricsLogPath(out: config.out), resumingAt: config.resume != nil ? state.step : nil)
        let last = try runTraining(trainer, state: &state, progress: progress, pauseAfterStep: config.pauseAfterStep, log: log) { report in
            let stage = schedule.stageIndex(at: report.step - 1)
            if stage != stageShown, schedule.stages.count > 1 {
                stageShown = stage
                let s = schedule.stages[stage].stage
                progress.line("stage \(stage + 1)/\(schedule.stages.count) (\(s.name)): \(s.losses.map(\.rawValue).joined(separator: ", "))")
            }
        }

        guard let best = state.best else { throw StageError("no dev evaluation was made — nothing to write") }
        let studentCount = objective.student.layout.totalCount
        var bestBlock = ParameterBlock(zeros: objective.student.layout)
        bestBlock.storage = Array(best.storage.prefix(studentCount))
        let labels = source.config.labels
        let output = try source.derived(tensors: bestBlock.tensors,
                                        configJSON: try source.studentConfigJSON(student: plan.student, labels: labels,
                                                                                  maxLength: cache.settings.maxLength), labels: labels)
        do { try output.write(to: URL(fileURLWithPath: config.out)) } catch { throw StageError(file: config.out, error) }
        finishCheckpoint(config.checkpointPath, keep: config.keepCheckpoint, progress: progress)
        return DistillReport(out: config.out, best: BestScore(step: best.step, macroF1: best.macroF1, accuracy: best.accuracy),
                             parameters: studentCount, time: TrainingTime(last), maxLength: cache.settings.maxLength,
                             metrics: metricsLogPath(out: config.out), checkpoint: config.keepCheckpoint ? config.checkpointPath : nil)
    }
}

/// Checks a distillation run end to end (teacher, student plan, data, cache, states) before
/// any training; the returned run's `report` is the plan to show. `showPlan` gets the plan
/// as soon as it is checked against the teacher, before the data and cache checks (so a
/// caller can show it even when a later check fails).
public func prepareDistillation(_ config: DistillConfig, showPlan: (String) -> Void = { _ in }) throws -> any DistillationRun {
    try setComputeThreads(config.threads)
    try config.validate()
    if !config.planOnly {
        try checkTrainingPaths(out: config.out, checkpoint: config.checkpointPath, resume: config.resume)
        try checkOutputPath(metricsLogPath(out: config.out), flag: "--out (its training log)")
        let inputs = [config.teacher, config.student, config.labels, config.data]
        try refuseInputsAsOutputs([(config.out, "--out")], inputs: inputs + [config.resume, config.initWeights], force: config.force)
        try refuseInputsAsOutputs([(config.checkpointPath, "--checkpoint"), (metricsLogPath(out: config.out), "--out (its training log)")],
                                  inputs: inputs)
    } else {
        try checkResumePath(config.resume)
    }
    if let spec = try biGRUSpec(config.student) { return try prepareBiGRUDistillation(config, spec: spec, showPlan: showPlan) }
    let (teacher, labels, data) = (config.teacher, config.labels, config.data)
    let source = try ModelBundle(path: teacher)
    let teacherLabels = source.config.labels
    guard teacherLabels.count >= 2 else {
        throw StageError("\(teacher): the teacher has no classifier head — fine-tune it first (kd finetune), then label with it (kd label)")
    }
    let plan = try loadStudentPlan(config.student, teacher: source.config, classes: teacherLabels.count,
                                   losses: config.losses, epochs: config.epochs)
    showPlan(plan.description)
    let inputs = try DistillationInputs(data: data, labels: labels, teacher: teacher, teacherLabels: teacherLabels,
                                        tokenizer: source.tokenizer)
    let (folder, cache, dev) = (inputs.folder, inputs.cache, inputs.dev)
    let maxLength = cache.settings.maxLength

    var initial: InitializedStudent
    let teacherTensors = source.tensors
    let runSeed = config.seed ?? plan.spec.training.seed ?? 13
    do { initial = try initializeStudent(plan: plan, teacherTensors: teacherTensors, seed: runSeed) } catch {
        throw StageError("\(config.student): \(error.description)")
    }
    if let path = config.initWeights { initial.student = try initialWeights(path, plan: plan) }
    let (used, replayNote) = try trainingSelection(config, cache: cache, folder: folder)
    let examples = try cacheTokenIDs(cache, labels: labels, vocabularySize: source.config.vocabSize, examples: used).enumerated().map {
        TrainingExample(ids: $1, label: cache.labels[used[$0]])
    }
    let teacherLogits = try used.chunked(8192).flatMap { try cache.fullLogits(examples: $0) }
    let perEpoch = Trainer.stepsPerEpoch(examples: examples.count, batchSize: config.batchSize ?? plan.spec.training.batchSize ?? 32)
    let schedule = StagedSchedule(stages: plan.stages, stepsPerEpoch: perEpoch,
                                  peakRate: config.learningRate ?? plan.spec.training.learningRate ?? 5e-5,
                                  warmupRatio: config.warmup ?? plan.spec.training.warmupRatio ?? 0.1)
    let (states, statesNote) = try teacherStates(config, plan: plan, cache: cache, source: source, cacheRows: used)
    let objective = try DistillationObjective(plan: plan, examples: examples, teacherLogits: teacherLogits, teacherStates: states,
                                              schedule: schedule, paddingId: source.tokenizer.paddingId, seed: runSeed)
    let augmented = used.filter { cache.copies[$0] > 0 }.count
    let report = DistillPlanReport(
        plan: plan.description,
        trainingData: "training data: \(examples.count) cached examples (\(examples.count - augmented) original, \(augmented) augmented, soft labels only), max length \(maxLength); dev \(dev.count)\(replayNote)",
        teacherStates: statesNote)
    return BertDistillationRun(config: config, report: report, source: source, plan: plan, cache: cache, folder: folder,
                           objective: objective, schedule: schedule, examples: examples, dev: dev, initial: initial,
                           runSeed: runSeed, perEpoch: perEpoch)
}

/// The tensors of the model file `path` as the student's start: exactly the student's
/// parameters with the student's shapes (a pruned model and the spec made for it).
private func initialWeights(_ path: String, plan: DistillationPlan) throws -> [String: Tensor] {
    let bundle = try ModelBundle(path: path)
    let tensors = bundle.tensors
    for (name, shape) in plan.studentShapes {
        guard let t = tensors[name] else {
            throw StageError("\(path): --init has no tensor '\(name)' (the student needs \(describeShape(shape))) — give a model file with the student's architecture")
        }
        guard t.shape == shape else {
            throw StageError("\(path): --init tensor '\(name)' is \(describeShape(t.shape)), the student needs \(describeShape(shape)) — the spec's architecture must match the model (kd info shows its per-layer shapes)")
        }
    }
    guard bundle.file.vocabulary.count == plan.student.vocabSize else {
        throw StageError("\(path): --init has a vocabulary of \(bundle.file.vocabulary.count) tokens, the teacher's has \(plan.student.vocabSize) — the label cache's token ids are the teacher's; prune the vocabulary after distilling")
    }
    let wanted = Set(plan.studentShapes.map(\.name))
    return tensors.filter { wanted.contains($0.key) }
}

/// The teacher's hidden states for the plan's losses — from the cache when it holds every
/// layer needed (and the mode allows), else the teacher online — and a note saying which.
private func teacherStates(_ config: DistillConfig, plan: DistillationPlan, cache: LabelCache,
                           source: ModelBundle, cacheRows: [Int]) throws -> (TeacherStates?, String) {
    let needs = plan.teacherNeeds(Set(plan.stages.flatMap(\.losses)))
    guard !needs.hidden.isEmpty || !needs.scores.isEmpty else { return (nil, "teacher hidden states: none needed") }
    let cached = Set(cache.settings.hiddenLayers)
    let cacheHasAll = needs.scores.isEmpty && needs.hidden.allSatisfy(cached.contains)
    if config.teacherStates == .cache && !cacheHasAll {
        throw StageError("\(config.labels): --teacher-states cache, but the plan needs teacher hidden states \(needs.hidden)\(needs.scores.isEmpty ? "" : " and attention scores of layers \(needs.scores.map { $0 + 1 })") and the cache holds hidden states \(cache.settings.hiddenLayers.sorted()) — re-label with --hidden \(needs.hidden.map(String.init).joined(separator: ",")), or use --teacher-states online")
    }
    if config.teacherStates != .online && cacheHasAll {
        return (CachedTeacherStates(cache: cache, cacheRows: cacheRows), "teacher hidden states \(needs.hidden): read from \(config.labels)")
    }
    let online: OnlineTeacher
    do { online = try OnlineTeacher(config: source.config, classes: source.config.labels.count, tensors: source.tensors) } catch {
        throw StageError(file: config.teacher, error)
    }
    return (online, "teacher hidden states \(needs.hidden)\(needs.scores.isEmpty ? "" : ", attention scores of layers \(needs.scores.map { $0 + 1 })"): teacher run online on each batch (the cache holds \(cache.settings.hiddenLayers.isEmpty ? "logits only" : "hidden states \(cache.settings.hiddenLayers.sorted())"))")
}

extension Range where Bound == Int {
    /// The range cut into consecutive arrays of at most `size` elements.
    func chunked(_ size: Int) -> [[Int]] {
        stride(from: lowerBound, to: upperBound, by: size).map { Array($0..<Swift.min($0 + size, upperBound)) }
    }
}

extension Array where Element == Int {
    /// The array cut into consecutive arrays of at most `size` elements.
    func chunked(_ size: Int) -> [[Int]] {
        stride(from: 0, to: count, by: size).map { Array(self[$0..<Swift.min($0 + size, count)]) }
    }
}

/// Loss weights from text: `kind=weight` pairs separated by commas (`--losses`).
public func parseLossWeights(_ text: String) throws -> LossWeights {
    var weights: [LossKind: Double] = [:]
    for item in text.split(separator: ",") {
        let kv = item.split(separator: "=")
        guard kv.count == 2, let kind = LossKind(rawValue: String(kv[0])), let w = Double(kv[1]), w >= 0, w.isFinite else {
            throw StageError.usage("--losses '\(text)': '\(item)' is not kind=weight with a weight ≥ 0 (kinds: \(LossKind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        weights[kind] = w
    }
    guard weights.values.contains(where: { $0 > 0 }) else {
        throw StageError.usage("--losses '\(text)' turns every loss off — give at least one weight > 0")
    }
    return LossWeights(weights)
}

/// A student spec and its plan against `teacher`, with the spec's loss weights replaced by
/// `losses` and its schedule by `epochs` ("N" or "intermediate,prediction") when given.
func loadStudentPlan(_ studentPath: String, teacher: BertConfig, classes: Int, losses: LossWeights? = nil,
                     epochs: String? = nil) throws -> DistillationPlan {
    guard FileManager.default.fileExists(atPath: studentPath) else {
        throw StageError("\(studentPath): no such student spec — see students/*.json (e.g. students/distil-l3-h384.json)")
    }
    do {
        var spec = try StudentSpec(contentsOf: URL(fileURLWithPath: studentPath))
        if let epochs { spec.schedule = try overriddenSchedule(spec.schedule, epochs: epochs, studentPath: studentPath) }
        if let losses {
            spec.losses = losses
            if case .twoStage = spec.schedule,
               !(losses.active.contains(where: \.isPrediction) && losses.active.contains(where: { !$0.isPrediction })) {
                throw StageError.usage("--losses: \(studentPath) has a two-stage schedule, which needs an intermediate loss (stage 1) and a prediction loss (stage 2) — use a one-stage student for this ablation")
            }
        }
        return try DistillationPlan(spec: spec, teacher: teacher, classes: classes)
    } catch let error as DistillationError {
        throw StageError(losses == nil ? error.description : "\(error.description) (with --losses)")
    }
}

/// The spec's schedule with `epochs` ("N" for one stage, "a,b" for two) in place of its own.
private func overriddenSchedule(_ schedule: DistillationSchedule, epochs: String, studentPath: String) throws -> DistillationSchedule {
    let counts = epochs.split(separator: ",").map { Int($0) }
    switch (schedule, counts.count) {
    case (.oneStage, 1):
        guard let n = counts[0], n >= 1, n <= maximumEpochs else { throw StageError.usage("--epochs '\(epochs)' must be a whole number ≥ 1 and ≤ \(maximumEpochs)") }
        return .oneStage(epochs: n)
    case (.twoStage, 2):
        guard let a = counts[0], let b = counts[1], (1...maximumEpochs).contains(a), (1...maximumEpochs).contains(b) else {
            throw StageError.usage("--epochs '\(epochs)' must be two whole numbers ≥ 1 and ≤ \(maximumEpochs) (intermediate,prediction)")
        }
        return .twoStage(intermediateEpochs: a, predictionEpochs: b)
    case (.oneStage, _):
        throw StageError.usage("--epochs '\(epochs)': \(studentPath) has a one-stage schedule — give one number of epochs")
    case (.twoStage, _):
        throw StageError.usage("--epochs '\(epochs)': \(studentPath) has a two-stage schedule — give intermediate,prediction epochs, e.g. 4,3")
    }
}

/// What every distillation stage reads beside its label cache: the prepared folder (its labels
/// must be the teacher's), the verified cache, and the dev split tokenized at the cache's
/// length for model selection. `task` names a multi-task run's head in the messages.
struct DistillationInputs {
    let folder: PreparedFolder
    let cache: LabelCache
    let dev: [TrainingExample]

    init(data: String, labels: String, teacher: String, teacherLabels: [String], tokenizer: WordPieceTokenizer,
         task: String? = nil) throws {
        folder = try PreparedFolder(path: data)
        guard folder.manifest.labels == teacherLabels else {
            let whose = task.map { "task '\($0)''s labels" } ?? "the dataset's labels"
            let hint = task == nil ? "distil on the data the teacher was fine-tuned on" : "give each task the data its teacher was fine-tuned on"
            throw StageError("\(data): \(whose) (\(folder.manifest.labels.joined(separator: ", "))) differ from \(task == nil ? "the teacher's" : "its teacher's") (\(teacherLabels.joined(separator: ", "))) — \(hint)")
        }
        guard FileManager.default.fileExists(atPath: labels) else {
            throw StageError("\(labels): no such label cache\(task.map { " (task '\($0)')" } ?? "") — make it with 'kd label --teacher \(teacher) --data \(data) --out \(labels)'")
        }
        cache = try openVerifiedLabelCache(labels, teacher: teacher, folder: folder, data: data)
        let devRows = try folder.read(.dev)
        guard !devRows.isEmpty else {
            throw StageError("\(folder.filePath(.dev)): no examples — \(task.map { "task '\($0)' is selected" } ?? "distillation keeps the best student") by dev macro-F1")
        }
        let devLabels = try labelIndices(devRows, labels: teacherLabels, file: folder.filePath(.dev), known: "the teacher")
        let maxLength = cache.settings.maxLength
        dev = zip(devRows, devLabels).map { TrainingExample(ids: tokenizer.encode($0.text, maxLength: maxLength).ids, label: $1) }
    }
}
