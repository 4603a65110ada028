// MultiTaskStage: `kd distill --task NAME …` — one student with a shared encoder and one head
// per task, distilled from several fine-tuned teachers' label caches at once
// (Distillation's MultiTask.swift has the sampler and the loss; WeightIO's TaskHeads.swift
// the file layout).
//
// `prepareMultiTaskDistillation` checks everything before any training, as the single-task
// stage does, task by task: names (valid, no two alike — they become tensor names), each
// teacher, its dataset's labels, its label cache (made from that teacher and data, merged),
// and that every teacher has the first one's tokenizer, vocabulary, hidden size and
// classifier pooling (the student has one embedding table, one encoder). The student
// starts as the spec says from the first task's teacher, with each head sliced from its
// own teacher's classifier (the union teacher's classifier is their concatenation). Only
// the prediction losses (soft and hard CE) apply; the spec's intermediate losses are
// turned off with a note. Dev selection: the mean of the tasks' dev macro-F1s.
// The output is written once, at the end, through TeacherFile's temp+rename; a refused
// run writes nothing. Left out on purpose: BiGRU multi-task students, teacher hidden
// states, per-task loss weights.
import Distillation
import DistilleryData
import DistilleryModel
import DistilleryTensor
import DistilleryTraining
import Foundation
import WeightIO

/// One task of a multi-task run: its head's name, teacher, label cache and dataset.
public struct DistillTask: Sendable, Equatable {
    public var name: String
    public var teacher: String
    public var labels: String
    public var data: String

    public init(name: String, teacher: String, labels: String, data: String) {
        (self.name, self.teacher, self.labels, self.data) = (name, teacher, labels, data)
    }
}

/// What `prepareMultiTaskDistillation` checks: the tasks, the sampling, and the student,
/// output and training settings of a single-task run (`base`; its teacher/labels/data are ignored).
public struct MultiTaskDistillConfig: Sendable {
    public var tasks: [DistillTask]
    public var sampling: TaskSampling = .sqrt
    /// Student spec, output, training overrides (`trainLimit` applies per task).
    public var base: DistillConfig

    public init(tasks: [DistillTask], student: String, out: String) {
        self.tasks = tasks
        base = DistillConfig(teacher: tasks.first?.teacher ?? "", student: student, labels: tasks.first?.labels ?? "",
                             data: tasks.first?.data ?? "", out: out)
    }
}

/// One task's best-student dev score.
public struct TaskScore: Codable, Sendable {
    public var task: String
    public var macroF1: Double
    public var accuracy: Double
    enum CodingKeys: String, CodingKey { case task, macroF1 = "macro_f1", accuracy }
}

/// What a multi-task run wrote and how it went.
public struct MultiTaskDistillReport: Codable, Sendable {
    public var out: String
    /// The best step by mean dev macro-F1, and that mean.
    public var best: BestScore
    public var tasks: [TaskScore]
    public var parameters: Int
    public var time: TrainingTime?
    public var metrics: String

    /// Training time, the best step and each task's dev scores there.
    public var text: String {
        (time.map { $0.text + "\n" } ?? "")
            + String(format: "best mean dev macro-F1 %.4f at step %d → %@ (%d parameters)\n", best.macroF1, best.step, out, parameters)
            + tasks.map { String(format: "  %@: dev macro-F1 %.4f, accuracy %.4f", $0.task, $0.macroF1, $0.accuracy) }.joined(separator: "\n")
            + "\ntraining log → \(metrics)"
    }
}

/// The checks a multi-task run makes before anything else: names and paths.
func checkTaskList(_ tasks: [DistillTask]) throws {
    guard tasks.count >= 2 else {
        throw StageError.usage("a multi-task run needs at least two --task (each with its --teacher, --labels and --data); got \(tasks.count) — distil one task without --task")
    }
    for (i, t) in tasks.enumerated() {
        if let problem = taskNameProblem(t.name) { throw StageError.usage("--task '\(t.name)' (task \(i + 1)) \(problem) — it names the head's tensors") }
    }
    if let (a, b) = duplicateTaskNames(tasks.map(\.name)) {
        throw StageError.usage("--task '\(tasks[b].name)' names tasks \(a + 1) and \(b + 1) alike (names ignore case): each head needs its own name — nothing was written")
    }
}

/// One task's data, checked: teacher, dev examples and cached training examples.
private struct LoadedTask {
    let task: DistillTask
    let source: ModelBundle
    let cache: LabelCache
    let folder: PreparedFolder
    let dev: [TrainingExample]
    let examples: [TrainingExample]
    let logits: [[Float]]
}

private func loadTask(_ task: DistillTask, index: Int, first: ModelBundle?, trainLimit: Int?) throws -> LoadedTask {
    let source = try ModelBundle(path: task.teacher)
    let labels = source.config.labels
    guard labels.count >= 2 else {
        throw StageError("\(task.teacher): task '\(task.name)''s teacher has no classifier head — fine-tune it first (kd finetune), then label with it (kd label)")
    }
    if let first {
        guard source.file.vocabulary == first.file.vocabulary, source.file.tokenizerOptionsJSON == first.file.tokenizerOptionsJSON,
              source.file.segmentationVocabulary == first.file.segmentationVocabulary else {
            throw StageError("\(task.teacher): task '\(task.name)''s teacher tokenizes differently from the first task's (\(first.path)) — the student has one embedding table, so every task's teacher and label cache must use one tokenizer")
        }
        guard source.config.hiddenSize == first.config.hiddenSize, source.config.classifierPooling == first.config.classifierPooling else {
            throw StageError("\(task.teacher): task '\(task.name)''s teacher (hidden \(source.config.hiddenSize), classifier on \(source.config.classifierPooling.rawValue)) differs from the first task's (hidden \(first.config.hiddenSize), \(first.config.classifierPooling.rawValue)) — fine-tune every task's teacher from one base model")
        }
    }
    let inputs = try DistillationInputs(data: task.data, labels: task.labels, teacher: task.teacher, teacherLabels: labels,
                                        tokenizer: source.tokenizer, task: task.name)
    let (folder, cache, dev) = (inputs.folder, inputs.cache, inputs.dev)
    let used = 0..<min(cache.exampleCount, trainLimit ?? Int.max)
    let examples = try cacheTokenIDs(cache, labels: task.labels, vocabularySize: source.config.vocabSize, examples: Array(used)).enumerated().map {
        TrainingExample(ids: $1, label: cache.labels[$0])
    }
    let logits = try used.chunked(8192).flatMap { try cache.fullLogits(examples: $0) }
    return LoadedTask(task: task, source: source, cache: cache, folder: folder, dev: dev, examples: examples, logits: logits)
}

/// Checks a multi-task run end to end (names, paths, every task's teacher, data and cache,
/// the student plan) before any training; `showPlan` gets the plan once it is checked.
public func prepareMultiTaskDistillation(_ config: MultiTaskDistillConfig, showPlan: (String) -> Void = { _ in })
    throws -> MultiTaskDistillationRun {
    let base = config.base
    try setComputeThreads(base.threads)
    try base.validate()
    try checkTaskList(config.tasks)
    if !base.planOnly {
        try checkTrainingPaths(out: base.out, checkpoint: base.checkpointPath, resume: base.resume)
        try checkOutputPath(metricsLogPath(out: base.out), flag: "--out (its training log)")
        let inputs = config.tasks.flatMap { [$0.teacher, $0.labels, $0.data] } + [base.student]
        try refuseInputsAsOutputs([(base.out, "--out")], inputs: inputs + [base.resume, base.initWeights], force: base.force)
        try refuseInputsAsOutputs([(base.checkpointPath, "--checkpoint"), (metricsLogPath(out: base.out), "--out (its training log)")], inputs: inputs)
    }
    if try biGRUSpec(base.student) != nil {
        throw StageError("\(base.student): a BiGRU student has one classifier — multi-task distillation (--task) trains BERT students")
    }
    var loaded: [LoadedTask] = []
    for (i, task) in config.tasks.enumerated() {
        loaded.append(try loadTask(task, index: i, first: loaded.first?.source, trainLimit: base.trainLimit))
    }
    let first = loaded[0].source
    let classes = loaded.map { $0.source.config.labels.count }
    var union = first.config
    union.labels = loaded.flatMap { t in t.source.config.labels.map { "\(t.task.name)/\($0)" } }

    // The plan over the union's classes, prediction losses only.
    let probe = try loadStudentPlan(base.student, teacher: union, classes: union.labels.count, losses: base.losses, epochs: base.epochs)
    let w = probe.spec.losses
    let dropped = w.active.filter { !$0.isPrediction }
    guard w[.softCE] > 0 || w[.hardCE] > 0 else {
        throw StageError.usage("\(base.student): no prediction loss is on (soft_ce, hard_ce) — multi-task distillation trains the heads on them; pass e.g. --losses soft_ce=1,hard_ce=0.5")
    }
    let plan = dropped.isEmpty ? probe
        : try loadStudentPlan(base.student, teacher: union, classes: union.labels.count,
                              losses: LossWeights([.softCE: w[.softCE], .hardCE: w[.hardCE]]), epochs: probe.stages.count == 1 ? base.epochs : nil)
    guard plan.stages.count == 1 else {
        throw StageError.usage("\(base.student): a two-stage schedule needs intermediate losses, which a multi-task run cannot use (every task has its own teacher) — use a one-stage student, or --epochs N with a one-stage spec")
    }
    var planText = plan.description
    planText += "\nmulti-task: \(loaded.count) heads on one encoder — " + zip(loaded, classes).map { "\($0.task.name) (\($1) classes, teacher \($0.task.teacher))" }.joined(separator: ", ")
    if !dropped.isEmpty {
        planText += "\nnote: \(dropped.map(\.title).joined(separator: ", ")) off — each task has its own teacher, so a multi-task run trains on the prediction losses only"
    }
    showPlan(planText)

    // The start: the first teacher's encoder, each head sliced from its own teacher's classifier.
    var teacherTensors = first.tensors.filter { !$0.key.hasPrefix("classifier.") }
    let heads = loaded.map { ($0.source.tensors["classifier.weight"], $0.source.tensors["classifier.bias"]) }
    guard heads.allSatisfy({ $0.0 != nil && $0.1 != nil }) else { throw StageError("a task's teacher has no classifier.weight/bias — fine-tune it first") }
    teacherTensors["classifier.weight"] = Tensor(shape: [union.labels.count, union.hiddenSize], data: heads.flatMap { $0.0!.data })
    teacherTensors["classifier.bias"] = Tensor(shape: [union.labels.count], data: heads.flatMap { $0.1!.data })
    let runSeed = base.seed ?? plan.spec.training.seed ?? 13
    var initial: InitializedStudent
    do { initial = try initializeStudent(plan: plan, teacherTensors: teacherTensors, seed: runSeed) } catch {
        throw StageError("\(base.student): \(error.description)")
    }
    if base.initWeights != nil { throw StageError.usage("--init is not supported with --task (the heads start from each task's teacher)") }

    let examples = loaded.flatMap(\.examples)
    var ranges: [Range<Int>] = [], start = 0
    for t in loaded { ranges.append(start..<(start + t.examples.count)); start += t.examples.count }
    let batchSize = base.batchSize ?? plan.spec.training.batchSize ?? 32
    let perEpoch = Trainer.stepsPerEpoch(examples: examples.count, batchSize: batchSize)
    guard perEpoch >= loaded.count else {
        throw StageError.usage("\(examples.count) training examples make \(perEpoch) batches of \(batchSize) per epoch, fewer than the \(loaded.count) tasks — lower --batch-size")
    }
    let counts = taskBatchCounts(sizes: loaded.map(\.examples.count), batches: perEpoch, exponent: config.sampling.exponent)
    let schedule = StagedSchedule(stages: plan.stages, stepsPerEpoch: perEpoch, peakRate: base.learningRate ?? plan.spec.training.learningRate ?? 5e-5,
                                  warmupRatio: base.warmup ?? plan.spec.training.warmupRatio ?? 0.1)
    let objective = try MultiTaskDistillationObjective(
        config: plan.student, examples: examples, taskOf: loaded.indices.flatMap { [Int](repeating: $0, count: loaded[$0].examples.count) },
        teacherLogits: loaded.flatMap(\.logits), classes: classes, temperature: plan.spec.temperature,
        softWeight: plan.spec.losses[.softCE], hardWeight: plan.spec.losses[.hardCE], paddingId: first.tokenizer.paddingId, seed: runSeed)
    let data = "training data: " + zip(loaded, counts).map { t, k in
        "\(t.task.name) \(t.examples.count) cached examples (max length \(t.cache.settings.maxLength), dev \(t.dev.count)), \(k) batches per epoch"
    }.joined(separator: "; ") + " — \(config.sampling.rawValue) task sampling, \(perEpoch) task-homogeneous batches of \(batchSize) per epoch"
    let report = DistillPlanReport(plan: planText, trainingData: data, teacherStates: "teacher hidden states: none needed (prediction losses only)")
    return MultiTaskDistillationRun(config: config, report: report, loaded: loaded, plan: plan, objective: objective, schedule: schedule,
                                    ranges: ranges, counts: counts, initial: initial, runSeed: runSeed, batchSize: batchSize)
}

/// A checked multi-task run, ready to train.
public struct MultiTaskDistillationRun {
    public let config: MultiTaskDistillConfig
    public let report: DistillPlanReport
    fileprivate let loaded: [LoadedTask]
    let plan: DistillationPlan
    let objective: MultiTaskDistillationObjective
    let schedule: StagedSchedule
    let ranges: [Range<Int>]
    let counts: [Int]
    let initial: InitializedStudent
    let runSeed: UInt64
    let batchSize: Int

    /// Each task's dev metrics of the student `storage` (dropout off), head by head.
    func taskMetrics(_ storage: [Float]) throws -> [ClassificationMetrics] {
        let model = objective.student
        var block = ParameterBlock(zeros: model.layout)
        block.storage = Array(storage.prefix(model.layout.totalCount))
        let encoder = try BertEncoder(config: model.config, tensors: block.tensorDictionary)
        return try loaded.indices.map { t in
            let dev = loaded[t].dev, o = objective.offsets[t], L = objective.classes[t]
            let logits = try classifierLogits(encoder: encoder, sequences: dev.map(\.ids), batchSize: 64, paddingId: loaded[0].source.tokenizer.paddingId)
            return ClassificationMetrics(truth: dev.map { Int($0.label) }, predicted: logits.map { argmax(Array($0[o..<(o + L)])) }, classCount: L)
        }
    }

    /// Trains the student and writes the best one (mean dev macro-F1) with its task heads.
    public func train(progress: StageProgress) throws -> MultiTaskDistillReport {
        let base = config.base
        guard !base.planOnly else { throw StageError("the run was prepared with planOnly — prepare it again to train") }
        let total = min(base.stopAfter ?? Int.max, schedule.totalSteps)
        let perEpoch = schedule.stages[0].steps / max(1, schedule.stages[0].stage.epochs)
        let evalEvery = base.evalEvery ?? perEpoch
        let initialBlock: ParameterBlock
        do { initialBlock = try ParameterBlock(layout: plan.layout, tensors: initial.allTensors) } catch { throw StageError("\(base.student): \(error)") }
        var identity = [plan.description, config.sampling.rawValue]
        for t in loaded {
            identity += [t.task.name, t.cache.settings.teacherSHA256, t.cache.settings.dataSHA256, String(t.examples.count), SHA256.hex(try t.folder.bytes(.dev))]
        }
        let trainingConfig = TrainingConfig(
            modelFingerprint: modelFingerprint(tensors: initialBlock.tensors, configText: plan.description),
            dataSHA256: SHA256.hex(Data(identity.joined(separator: "\n").utf8)), labels: plan.student.labels,
            trainExamples: objective.examples.count, devExamples: loaded.reduce(0) { $0 + $1.dev.count },
            epochs: plan.stages.reduce(0) { $0 + $1.epochs }, totalSteps: total, batchSize: batchSize,
            maxLength: loaded.map(\.cache.settings.maxLength).max()!, learningRate: schedule.peakRate,
            warmupSteps: Int((Double(schedule.stages[0].steps) * schedule.warmupRatio).rounded(.up)), schedule: .linear,
            weightDecay: base.weightDecay, clipNorm: base.clip, evalEvery: evalEvery, seed: runSeed, dropout: objective.dropout,
            modelPath: base.student, dataPath: loaded.map(\.task.labels).joined(separator: ","), threads: base.threads)
        progress.begin(totalSteps: total, epochs: (total + perEpoch - 1) / perEpoch)
        var state = try startingState(resume: base.resume, layout: plan.layout, config: trainingConfig, initial: initialBlock,
                                      threads: base.threads, progress: progress, eachOnce: false)
        let names = loaded.map(\.task.name)
        var trainer = Trainer(objective: objective, evaluator: { storage in
            let perTask = try self.taskMetrics(storage)
            progress.line("dev macro-F1 " + zip(names, perTask).map { String(format: "%@ %.4f", $0, $1.macroF1) }.joined(separator: ", "))
            return ClassificationMetrics(tasks: perTask)
        }, config: trainingConfig, train: objective.examples, dev: loaded.flatMap(\.dev), paddingId: loaded[0].source.tokenizer.paddingId,
           checkpointURL: URL(fileURLWithPath: base.checkpointPath), checkpointEvery: base.checkpointEvery ?? evalEvery)
        trainer.learningRate = { [schedule] in schedule.rate(at: $0) }
        trainer.batchOrder = { [ranges, counts, batchSize, runSeed, lengths = objective.examples.map(\.ids.count)] epoch in
            taskBalancedOrder(ranges: ranges, lengths: lengths, counts: counts, batchSize: batchSize, seed: runSeed, epoch: epoch)
        }
        progress.line("distilling \(loaded.count) tasks (\(names.joined(separator: ", "))) into \(plan.spec.name) (\(plan.studentParameterCount) parameters): \(objective.examples.count) examples, \(total) steps of \(batchSize) (\(perEpoch) per epoch: \(zip(names, counts).map { "\($0) \($1)" }.joined(separator: ", "))), \(base.threads) thread(s)")
        let log = try MetricsLog(path: metricsLogPath(out: base.out), resumingAt: base.resume != nil ? state.step : nil)
        let last = try runTraining(trainer, state: &state, progress: progress, pauseAfterStep: base.pauseAfterStep, log: log)

        guard let best = state.best else { throw StageError("no dev evaluation was made — nothing to write") }
        let scores = try taskMetrics(best.storage)
        let studentCount = objective.student.layout.totalCount
        var bestBlock = ParameterBlock(zeros: objective.student.layout)
        bestBlock.storage = Array(best.storage.prefix(studentCount))
        try writeMultiTaskStudent(bestBlock.tensors, run: self)
        finishCheckpoint(base.checkpointPath, keep: base.keepCheckpoint, progress: progress)
        return MultiTaskDistillReport(
            out: base.out, best: BestScore(step: best.step, macroF1: best.macroF1, accuracy: best.accuracy),
            tasks: zip(names, scores).map { TaskScore(task: $0, macroF1: $1.macroF1, accuracy: $1.accuracy) },
            parameters: studentCount, time: TrainingTime(last),
            metrics: metricsLogPath(out: base.out))
    }
}

/// Writes the student with its union classifier cut into task heads (TaskHeads.swift), whole or not at all.
private func writeMultiTaskStudent(_ tensors: [(name: String, tensor: Tensor)], run: MultiTaskDistillationRun) throws {
    let H = run.plan.student.hiddenSize, C = run.objective.classes.reduce(0, +)
    var out: [(name: String, tensor: Tensor)] = []
    var weight: Tensor?, bias: Tensor?
    for item in tensors {
        switch item.name {
        case "classifier.weight": weight = item.tensor
        case "classifier.bias": bias = item.tensor
        default: out.append(item)
        }
    }
    guard let weight, let bias, weight.shape == [C, H], bias.shape == [C] else {
        throw StageError("the trained student has no [\(C), \(H)] classifier to cut into task heads — this is a bug")
    }
    var heads: [TaskHead] = []
    for (t, task) in run.loaded.enumerated() {
        let o = run.objective.offsets[t], L = run.objective.classes[t]
        let head = TaskHead(name: task.task.name, labels: task.source.config.labels, maxLength: task.cache.settings.maxLength)
        out.append((head.weightName, Tensor(shape: [L, H], data: Array(weight.data[(o * H)..<((o + L) * H)]))))
        out.append((head.biasName, Tensor(shape: [L], data: Array(bias.data[o..<(o + L)]))))
        heads.append(head)
    }
    let source = run.loaded[0].source
    let maxLength = heads.compactMap(\.maxLength).max() ?? 128
    var file = try source.derived(tensors: out, configJSON: try source.studentConfigJSON(student: run.plan.student, labels: [], maxLength: maxLength),
                                  labels: [])
    file.labelsJSON = nil
    file.tasks = heads
    do { try file.write(to: URL(fileURLWithPath: run.config.base.out)) } catch { throw StageError(file: run.config.base.out, error) }
}
