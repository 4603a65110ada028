// Benches: measurements, not tests — forward-pass latency of one or more models
// (`benchLatency`), tokenizer throughput (`benchTokenizer`), and the time of one
// fine-tuning step (`benchTrainStep`, a fresh seeded classifier head) or one distillation
// step (`benchDistillStep`, teacher signals computed once, as a label cache holds them).
//
// Latency: fixed random token ids (seeded), every position real, warm-up runs first, then
// timed forward passes; median, p90, p99 and sequences/s per (batch, seq, threads). With
// several models they take turns per configuration, so a machine whose speed drifts over
// minutes affects every model alike. A step runs exactly as the trainer does it (fixed
// batch, constant learning rate): forward with dropout, (the plan's losses,) backward,
// clipping at 1.0 and an AdamW update (lr 5e-5, weight decay 0.01) on [CLS] + random ids +
// [SEP]; untimed warm-up steps, then timed ones; a non-finite loss is an error. Peers
// (PyTorch, ONNX Runtime) are run by benchmarks/*.py; these functions measure only
// Distillery. Not measured on purpose: batching and padding, the schedule, evaluation,
// checkpoints.
import CKernels
import Distillation
import DistilleryModel
import DistilleryTensor
import DistilleryTraining
import Foundation
import Tokenization

/// Which kernel build runs here.
public func kernelISA() -> String {
    (dk_has_avx512() != 0 ? "AVX-512" : kernelsUseAVX2() ? "AVX2+FMA" : "portable")
        + (dk_kernel_path_forced() != 0 ? " (forced by DISTILLERY_KERNELS)" : "")
        + quantizedRouteNote
}

/// The `p`-quantile of sorted values (nearest rank).
private func percentile(_ sorted: [Double], _ p: Double) -> Double {
    sorted[min(sorted.count - 1, Int((p * Double(sorted.count - 1)).rounded()))]
}

// MARK: - latency

/// What `benchLatency` measures.
public struct LatencyConfig: Sendable {
    /// Model files; several take turns.
    public var models: [String]
    public var batchSizes = [1, 32]
    public var lengths = [128]
    public var threadCounts = [1]
    /// Warm-up passes per configuration.
    public var warmup = 3
    /// Timed passes per configuration and model (0: as many as fit in `seconds`, at least 10).
    public var iterations = 0
    /// Time budget per configuration and model when `iterations` is 0.
    public var seconds = 5.0
    /// Turns the models take per configuration (nil: 1 for one model, 5 for several).
    public var rounds: Int?

    /// A configuration with the defaults of `kd bench latency`.
    public init(models: [String]) { self.models = models }
}

/// One model's latency in one configuration.
public struct LatencyRow: Codable, Sendable {
    public var model: String
    public var batch: Int
    public var seq: Int
    public var threads: Int
    public var medianMs: Double
    public var p90Ms: Double
    public var p99Ms: Double
    public var seqPerS: Double
    public var iters: Int
    /// The first model's median over this one's (several models only).
    public var speedupVsFirst: Double?

    enum CodingKeys: String, CodingKey {
        case model, batch, seq, threads, medianMs = "median_ms", p90Ms = "p90_ms", p99Ms = "p99_ms", seqPerS = "seq_per_s", iters
        case speedupVsFirst = "speedup_vs_first"
    }
}

/// The latency table: a description of each model and one row per model and configuration.
public struct LatencyReport: Codable, Sendable {
    /// "model PATH: N layers, hidden H; kernels: …" per model.
    public var models: [String]
    public var rounds: Int
    public var rows: [LatencyRow]

    /// The table as `kd bench latency` prints it.
    public var text: String {
        var lines = models
        if rounds > 1 { lines.append("\(models.count) model(s) taking turns, \(rounds) rounds per configuration") }
        lines.append("batch  seq  threads   median ms     p90 ms     p99 ms     seq/s" + (models.count > 1 ? "  speed-up  model" : ""))
        for r in rows {
            let line = String(format: "%5d %4d %8d %11.2f %10.2f %10.2f %9.1f", r.batch, r.seq, r.threads, r.medianMs, r.p90Ms, r.p99Ms, r.seqPerS)
            lines.append(r.speedupVsFirst.map { line + String(format: "  %7.2f×  ", $0) + r.model } ?? line)
        }
        return lines.joined(separator: "\n")
    }
}

/// Most warm-up or timed passes a bench flag may ask for (a bench, not a soak test).
let benchMaximumPasses = 1_000_000
/// Longest time budget per configuration, in seconds (a day).
let benchMaximumSeconds = 86_400.0

/// Forward-pass latency per batch size, length and thread count.
public func benchLatency(_ config: LatencyConfig) throws -> LatencyReport {
    try checkFlag(config.warmup, in: 0...benchMaximumPasses, flag: "--warmup")
    try checkFlag(config.iterations, in: 0...benchMaximumPasses, flag: "--iters")
    try checkFlag(config.seconds, in: 0.001...benchMaximumSeconds, flag: "--seconds")
    for b in config.batchSizes { try checkFlag(b, in: 1...maximumBatchSize, flag: "--batch-size") }
    guard !config.models.isEmpty else { throw StageError.usage("--model: give at least one model file") }
    let turns = config.rounds ?? (config.models.count > 1 ? 5 : 1)
    guard turns >= 1 else { throw StageError.usage("--rounds \(turns) must be at least 1") }
    let loaded = try config.models.map { try InferenceModel(path: $0) }
    for m in loaded {
        for T in config.lengths where T > m.maxPositions {
            throw StageError.usage("--seq \(T) exceeds the model's \(m.maxPositions) positions (\(m.path))")
        }
    }
    var rows: [LatencyRow] = []
    for th in config.threadCounts {
        try setComputeThreads(th)
        for B in config.batchSizes { for T in config.lengths {
            let times = try timeForwardPasses(loaded, batch: B, length: T, turns: turns, config: config)
            var firstMedian = 0.0
            for (i, m) in loaded.enumerated() {
                let sorted = times[i].sorted()
                let median = percentile(sorted, 0.5)
                if i == 0 { firstMedian = median }
                rows.append(LatencyRow(model: m.path, batch: B, seq: T, threads: th, medianMs: median, p90Ms: percentile(sorted, 0.9),
                                       p99Ms: percentile(sorted, 0.99), seqPerS: Double(B) / (median / 1000), iters: sorted.count,
                                       speedupVsFirst: loaded.count > 1 ? firstMedian / median : nil))
            }
        } }
    }
    return LatencyReport(models: loaded.map { "model \($0.path): \($0.summary); kernels: \(kernelISA())" },
                         rounds: turns, rows: rows)
}

/// Each model's pass times (ms) in one configuration, the models taking `turns` turns.
private func timeForwardPasses(_ models: [InferenceModel], batch B: Int, length T: Int, turns: Int,
                               config: LatencyConfig) throws -> [[Double]] {
    let inputs = models.map { m -> EncoderBatch in
        var rng = SplitMix64(seed: 42)
        let ids = (0..<(B * T)).map { i -> Int32 in
            i % T == 0 ? Int32(m.tokenizer.classId) : Int32(rng.next() % UInt64(m.vocabSize))
        }
        return EncoderBatch(ids: ids, batchSize: B, sequenceLength: T)
    }
    var times = [[Double]](repeating: [], count: models.count)
    for round in 0..<turns {
        for (i, m) in models.enumerated() {
            if round == 0 { for _ in 0..<config.warmup { _ = try m.encoder.encode(inputs[i]) } }
            // This round's share of the passes (or of the time), at least 10 over all rounds.
            let target = config.iterations > 0 ? config.iterations * (round + 1) / turns : 10 * (round + 1) / turns
            let budget = config.seconds / Double(turns)
            let start = now()
            while times[i].count < target || (config.iterations == 0 && now() - start < budget) {
                let t0 = now()
                _ = try m.encoder.encode(inputs[i])
                times[i].append((now() - t0) * 1000)
            }
        }
    }
    return times
}

// MARK: - tokenizer

/// Tokenizer throughput over the lines of a file.
public struct TokenizerThroughputReport: Codable, Sendable {
    public var lines: Int
    public var tokens: Int
    public var seconds: Double
    public var tokensPerS: Double
    /// Passes over the input.
    public var repeats: Int

    enum CodingKeys: String, CodingKey { case lines, tokens, seconds, tokensPerS = "tokens_per_s", repeats }

    /// "N lines x R passes: T tokens in S s = … tokens/s".
    public var text: String {
        String(format: "%d lines x %d passes: %d tokens in %.3f s = %.0f tokens/s", lines, repeats, tokens, seconds, tokensPerS)
    }
}

/// The shortest timed run of `kd bench tokenizer`: below this a small input is timed as
/// noise ("0.000 s = 4636990 tokens/s"), so passes are added until the run lasts this long.
let tokenizerBenchMinimumSeconds = 0.5

/// Tokens per second of `model`'s tokenizer over `input` (stdin when nil or "-"): one
/// thread, at least `repeats` passes after one warm-up, and at least
/// `tokenizerBenchMinimumSeconds` of timed work.
public func benchTokenizer(model: String, input: String?, repeats: Int = 5) throws -> TokenizerThroughputReport {
    try checkFlag(repeats, in: 1...benchMaximumPasses, flag: "--repeats")
    let bundle = try ModelBundle(path: model, weights: .settingsOnly)
    let lines = try readInputLines(input, allowEmpty: true)
    _ = measureTokenizerThroughput(bundle.tokenizer, lines: lines, repeats: 1)  // warm-up
    var (tokens, seconds) = measureTokenizerThroughput(bundle.tokenizer, lines: lines, repeats: repeats)
    var passes = repeats
    while seconds < tokenizerBenchMinimumSeconds && tokens > 0 {
        let more = measureTokenizerThroughput(bundle.tokenizer, lines: lines, repeats: passes)
        (tokens, seconds, passes) = (tokens + more.tokens, seconds + more.seconds, passes * 2)
    }
    return TokenizerThroughputReport(lines: lines.count, tokens: tokens, seconds: seconds,
                                     tokensPerS: Double(tokens) / max(seconds, 1e-9), repeats: passes)
}

/// What the step benchmarks use (the defaults of `finetune`: learning rate, weight decay, clip).
let benchLearningRate = 5e-5, benchWeightDecay = 0.01, benchClipNorm: Float = 1.0

/// The shape and length of a step benchmark.
public struct StepBenchConfig: Sendable {
    /// Sequences per step.
    public var batchSize = 32
    /// Sequence length (every position real).
    public var length = 128
    /// Worker threads (`kd` passes its `--threads`, by default every core).
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
        try checkFlag(batchSize, in: 1...maximumBatchSize, flag: "--batch-size")
        guard length >= 2 else { throw StageError.usage("--seq \(length) must be at least 2 ([CLS] and [SEP])") }
    }

    func validateRuns() throws {
        try checkFlag(warmup, in: 0...benchMaximumPasses, flag: "--warmup")
        try checkFlag(iterations, in: 1...benchMaximumPasses, flag: "--iters")
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
    guard config.labels >= 2 else { throw StageError.usage("--labels \(config.labels) must be at least 2") }
    try config.validateRuns()
    try setComputeThreads(config.threads)
    let teacher = try ModelBundle(path: model)
    let bert = teacher.config
    guard config.length <= bert.maxPositions else { throw StageError.usage("--seq \(config.length) exceeds the model's \(bert.maxPositions) positions") }
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
    guard temperature > 0, temperature.isFinite else { throw StageError.usage("--temperature \(temperature) must be > 0") }
    try setComputeThreads(config.threads)
    // The teacher with a classifier: its own, or a fresh seeded one.
    let source = try ModelBundle(path: teacher)
    let own = source.config.labels.count >= 2
    let classes = own ? source.config.labels.count : config.labels
    let start = try source.classifierStart(labels: own ? source.config.labels : (0..<classes).map { "LABEL_\($0)" }, seed: config.seed)
    let teacherTensors = start.parameters.tensorDictionary
    guard config.length <= source.config.maxPositions else { throw StageError.usage("--seq \(config.length) exceeds the teacher's \(source.config.maxPositions) positions") }
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
