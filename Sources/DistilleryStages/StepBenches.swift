// StepBenches: the time of one training step — a fine-tuning step of a model with a fresh
// seeded classifier head (`benchTrainStep`, peer benchmarks/peer_train_step.py) and a
// distillation step of a student spec against teacher signals computed once, as a label
// cache would hold them (`benchDistillStep`, peer benchmarks/peer_distill_step.py).
//
// Both run the step exactly as the trainer does (fixed batch, constant learning rate):
// forward, backward, global-norm clipping, AdamW; untimed warm-up steps first, then timed
// steps; the report has median and p90 ms per step and the first and last step's loss
// (a non-finite loss is an error: the step is broken).
import Distillation
import DistilleryModel
import DistilleryTensor
import DistilleryTraining
import Foundation

/// What the step benchmarks use (the defaults of `finetune`: learning rate, weight decay, clip).
let benchLearningRate = 5e-5, benchWeightDecay = 0.01, benchClipNorm: Float = 1.0

/// The shape and length of a step benchmark.
public struct StepBenchConfig: Sendable {
    /// Sequences per step.
    public var batchSize = 32
    /// Sequence length (every position real).
    public var length = 128
    public var threads = 2
    /// Classes of the fresh head (when the model has no classifier).
    public var labels = 3
    /// Untimed steps first.
    public var warmup = 2
    /// Timed steps.
    public var iterations = 5
    /// Seed of inputs, labels, initialisation and dropout.
    public var seed: UInt64 = 13

    /// The defaults of `kd bench train-step`.
    public init() {}

    func validate() throws {
        guard batchSize >= 1, length >= 2 else { throw StageError("--batch must be at least 1 and --seq at least 2 ([CLS] and [SEP])") }
    }

    func validateRuns() throws {
        guard warmup >= 0, iterations >= 1 else { throw StageError("--warmup must be ≥ 0 and --iters ≥ 1") }
    }
}

/// The timing of one step benchmark (one row of `--json` output).
public struct StepTiming: Codable, Sendable {
    public var batch: Int
    public var seq: Int
    public var threads: Int
    public var medianMs: Double
    public var p90Ms: Double
    public var seqPerS: Double
    public var iters: Int
    public var warmup: Int
    public var lossFirst: Double
    public var lossLast: Double
    /// Trainable parameters (student with projections, for a distillation step).
    public var parameters: Int
    /// Classes of the fresh head (fine-tuning step).
    public var labels: Int?
    /// The student's name (distillation step).
    public var student: String?

    enum CodingKeys: String, CodingKey {
        case batch, seq, threads, medianMs = "median_ms", p90Ms = "p90_ms", seqPerS = "seq_per_s", iters, warmup
        case lossFirst = "loss_first", lossLast = "loss_last", parameters, labels, student
    }
}

/// A step benchmark: what was measured, and the timing.
public struct StepBenchReport: Codable, Sendable {
    /// One line describing the model or student.
    public var description: String
    public var timing: StepTiming

    /// The description, the table row and the losses.
    public var text: String {
        let t = timing
        return [description, "batch  seq  threads   median ms     p90 ms     seq/s  iters",
                String(format: "%5d %4d %8d %11.1f %10.1f %9.1f %6d", t.batch, t.seq, t.threads, t.medianMs, t.p90Ms, t.seqPerS, t.iters),
                String(format: "loss %.4f (first step) -> %.4f (last step)", t.lossFirst, t.lossLast)].joined(separator: "\n")
    }
}

/// Runs `step(0..<warmup)` untimed, then `iterations` timed steps; the report's timing
/// (the times sorted) with the losses `step` returned.
private func timeSteps(_ config: StepBenchConfig, parameters: Int, _ step: (Int) throws -> Double) throws -> StepTiming {
    var losses: [Double] = []
    for s in 0..<config.warmup { losses.append(try step(s)) }
    var times: [Double] = []
    for s in config.warmup..<(config.warmup + config.iterations) {
        let t0 = now()
        losses.append(try step(s))
        times.append((now() - t0) * 1000)
    }
    guard losses.allSatisfy(\.isFinite) else { throw StageError("the loss became \(losses) — the step is broken") }
    times.sort()
    let median = percentile(times, 0.5)
    return StepTiming(batch: config.batchSize, seq: config.length, threads: config.threads, medianMs: median,
                      p90Ms: percentile(times, 0.9), seqPerS: Double(config.batchSize) / (median / 1000), iters: times.count,
                      warmup: config.warmup, lossFirst: losses.first!, lossLast: losses.last!, parameters: parameters)
}

/// [CLS] + random ids + [SEP]: one row, seeded.
private func randomRow(_ config: StepBenchConfig, bundle: ModelBundle, rng: inout SplitMix64) -> [Int32] {
    (0..<config.length).map { t -> Int32 in
        t == 0 ? bundle.tokenizer.classId : t == config.length - 1 ? bundle.tokenizer.separatorId
            : Int32(rng.next(below: bundle.config.vocabSize))
    }
}

/// The time of one fine-tuning step (forward + backward + clip + AdamW) of `model` with a
/// fresh `config.labels`-way classifier head.
public func benchTrainStep(model: String, _ config: StepBenchConfig) throws -> StepBenchReport {
    try config.validate()
    guard config.labels >= 2 else { throw StageError("--labels \(config.labels) must be at least 2") }
    try config.validateRuns()
    try setComputeThreads(config.threads)
    let teacher = try ModelBundle(path: model)
    let bert = teacher.config
    guard config.length <= bert.maxPositions else { throw StageError("--seq \(config.length) exceeds the model's \(bert.maxPositions) positions") }
    let start = try teacher.classifierStart(labels: (0..<config.labels).map { "LABEL_\($0)" }, seed: config.seed)
    let trainingModel = start.model
    var parameters = start.parameters

    var rng = SplitMix64(seed: config.seed)
    let ids = (0..<config.batchSize).flatMap { _ in randomRow(config, bundle: teacher, rng: &rng) }
    let targets = (0..<config.batchSize).map { _ in Int32(rng.next(below: config.labels)) }
    let input = EncoderBatch(ids: ids, batchSize: config.batchSize, sequenceLength: config.length)
    let dropout = DropoutRates(hidden: bert.hiddenDropout, attention: bert.attentionDropout, classifier: bert.classifierDropout)
    let dropoutRNG = DropoutRNG(seed: config.seed)
    var optimizer = AdamW(layout: trainingModel.layout, settings: AdamWSettings(weightDecay: benchWeightDecay))
    var gradients = Gradients(zeros: trainingModel.layout)
    // One step exactly as Trainer.run does it (fixed batch, constant learning rate).
    var timing = try timeSteps(config, parameters: trainingModel.layout.totalCount) { s in
        let acts: BertActivations
        do {
            acts = try trainingModel.forward(input, labels: targets, parameters: parameters, dropout: dropout, rng: dropoutRNG, step: s)
        } catch { throw StageError(file: model, error) }
        gradients.zero()
        trainingModel.backward(acts, parameters: parameters, gradients: &gradients)
        clipGradientNorm(&gradients, maxNorm: benchClipNorm)
        optimizer.update(&parameters, gradients: gradients, learningRate: benchLearningRate)
        return acts.loss ?? .nan
    }
    timing.labels = config.labels
    return StepBenchReport(
        description: "model \(model): \(bert.layerCount) layers, hidden \(bert.hiddenSize), \(trainingModel.layout.totalCount) parameters; "
            + "dropout \(dropout.hidden)/\(dropout.attention)/\(dropout.classifier); kernels: \(kernelISA())",
        timing: timing)
}

/// Teacher states computed once and served for every step (the benchmark's "cache").
final class FixedTeacherStates: TeacherStates {
    let hidden: [Int: [Float]], scores: [Int: [Float]]
    init(hidden: [Int: [Float]], scores: [Int: [Float]]) {
        self.hidden = hidden
        self.scores = scores
    }
    func states(rows: ArraySlice<Int>, batch: EncoderBatch, hidden wanted: [Int], scores wantedScores: [Int]) throws
        -> (hidden: [Int: [Float]], scores: [Int: [Float]]) {
        (hidden.filter { wanted.contains($0.key) }, scores.filter { wantedScores.contains($0.key) })
    }
}

/// The time of one distillation step (student forward + `losses` + backward + clip + AdamW)
/// of `student` against teacher signals computed once; `config.labels` classes when the
/// teacher has no classifier (a fresh seeded head is added).
public func benchDistillStep(teacher: String, student: String, losses: LossWeights, temperature: Double,
                             _ config: StepBenchConfig) throws -> StepBenchReport {
    try config.validate()
    try config.validateRuns()
    guard temperature > 0, temperature.isFinite else { throw StageError("--temperature \(temperature) must be > 0") }
    try setComputeThreads(config.threads)
    // The teacher with a classifier: its own, or a fresh seeded one.
    let source = try ModelBundle(path: teacher)
    let own = source.config.labels.count >= 2
    let classes = own ? source.config.labels.count : config.labels
    let start = try source.classifierStart(labels: own ? source.config.labels : (0..<classes).map { "LABEL_\($0)" }, seed: config.seed)
    let teacherTensors = start.parameters.tensorDictionary
    guard config.length <= source.config.maxPositions else { throw StageError("--seq \(config.length) exceeds the teacher's \(source.config.maxPositions) positions") }
    var spec = try loadStudentPlan(student, teacher: source.config, classes: classes).spec
    spec.losses = losses
    spec.temperature = temperature
    spec.schedule = .oneStage(epochs: 1)
    let plan: DistillationPlan
    do { plan = try DistillationPlan(spec: spec, teacher: start.config, classes: classes) } catch { throw StageError(error.description) }

    var rng = SplitMix64(seed: config.seed)
    let examples = (0..<config.batchSize).map { _ in
        TrainingExample(ids: randomRow(config, bundle: source, rng: &rng), label: Int32(rng.next(below: classes)))
    }
    let rows = ArraySlice(0..<config.batchSize)
    let online = try OnlineTeacher(config: start.config, classes: classes, tensors: teacherTensors)
    let (input, _) = paddedBatch(rows, from: examples, paddingId: source.tokenizer.paddingId)
    let schedule = StagedSchedule(stages: plan.stages, stepsPerEpoch: 1, peakRate: benchLearningRate, warmupRatio: 0)
    let needs = plan.teacherNeeds(Set(spec.losses.active))
    let teacherActs = try online.model.forward(input, labels: nil, parameters: online.parameters, keepScores: !needs.scores.isEmpty)
    let teacherLogits = (0..<config.batchSize).map { Array(teacherActs.logits.data[($0 * classes)..<(($0 + 1) * classes)]) }
    let fixed = try online.states(rows: rows, batch: input, hidden: needs.hidden, scores: needs.scores)
    let objective = try DistillationObjective(plan: plan, examples: examples, teacherLogits: teacherLogits,
                                              teacherStates: FixedTeacherStates(hidden: fixed.hidden, scores: fixed.scores),
                                              schedule: schedule, paddingId: source.tokenizer.paddingId, seed: config.seed)
    var parameters: ParameterBlock
    do {
        parameters = try ParameterBlock(layout: plan.layout, tensors: initializeStudent(plan: plan, teacherTensors: teacherTensors, seed: config.seed).allTensors)
    } catch { throw StageError("\(student): \(error)") }
    var optimizer = AdamW(layout: plan.layout, settings: AdamWSettings(weightDecay: benchWeightDecay))
    var gradients = Gradients(zeros: plan.layout)
    var timing = try timeSteps(config, parameters: plan.layout.totalCount) { s in
        gradients.zero()
        let loss = try objective.lossAndGradients(rows: rows, step: s, parameters: parameters, gradients: &gradients)
        clipGradientNorm(&gradients, maxNorm: benchClipNorm)
        optimizer.update(&parameters, gradients: gradients, learningRate: benchLearningRate)
        return loss
    }
    timing.student = spec.name
    return StepBenchReport(
        description: "student \(spec.name): \(plan.student.layerCount) layers, hidden \(plan.student.hiddenSize), \(plan.studentParameterCount) parameters (+\(plan.projectionParameterCount) projection); losses \(spec.losses.active.map { "\($0.rawValue)×\(spec.losses[$0])" }.joined(separator: " + ")), T = \(temperature)",
        timing: timing)
}
