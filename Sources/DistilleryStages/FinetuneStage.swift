// FinetuneStage: fine-tune a model end to end with a new classification head on a prepared
// dataset (HF BertForSequenceClassification; the head random or, LP-FT, first fitted alone
// as a logistic regression on the frozen encoder's features).
//
// Defaults are the measured best on the shipped teacher (teachers/README.md): the head
// starts as a linear probe (LP-FT) and reads the sequence the way the encoder was trained
// to pool (mean for sentence-transformers teachers, else HF's pooler over [CLS]).
// Every input is checked before training (settings, model file — one that already has a
// classifier needs `replaceHead` —, dataset folder and its labels, the maximum length, the
// checkpoint to resume and its config); checkpoints are written periodically and
// atomically (DistilleryTraining.TrainingCheckpoint) and removed after a successful run
// unless kept; every step and evaluation goes to OUT.metrics.jsonl as it happens; the best
// model by dev macro-F1 is written as a Distillery model file only at the end, through
// temp + rename, with its maximum length, labels, pooling and head start in its config.
// Left out on purpose: sentence-pair inputs, regression heads.
import Distillation
import DistilleryData
import DistilleryModel
import DistilleryTensor
import DistilleryTraining
import Foundation
import WeightIO

/// How the new classifier starts.
public enum HeadInit: String, Sendable, CaseIterable {
    /// HF: N(0, 0.02) weights, zero bias.
    case random
    /// LP-FT: fitted alone on the frozen encoder's train features first.
    case probe
}

/// What `finetune` trains and how.
public struct FinetuneConfig: Sendable {
    /// The model to start from (.h5).
    public var model: String
    /// A prepared dataset folder.
    public var data: String
    /// The fine-tuned model file to write.
    public var out: String
    public var epochs = 3
    public var learningRate = 5e-5
    public var batchSize = 32
    /// Truncation length (nil: the model's stored one, else 128 or its positions if fewer).
    public var maxLength: Int?
    /// A fraction of all steps (< 1) or a step count (≥ 1).
    public var warmup = 0.1
    public var schedule: LearningRateSchedule.Decay = .linear
    public var weightDecay = 0.01
    /// Global gradient-norm clip (0 = off).
    public var clip = 1.0
    /// Evaluate on dev every N steps (nil: once per epoch).
    public var evalEvery: Int?
    /// Checkpoint every N steps (nil: at each evaluation; 0: only at the end).
    public var checkpointEvery: Int?
    /// Checkpoint file (nil: OUT with .ckpt.h5).
    public var checkpoint: String?
    public var maxSteps: Int?
    public var seed: UInt64 = 13
    /// What the classifier reads (nil: `ModelBundle.defaultClassifierPooling`).
    public var pooling: PoolingMode?
    /// How the head starts (nil: probe, LP-FT — the measured best).
    public var headInit: HeadInit?
    /// Train a new head over a model that already has a classifier (otherwise refused).
    public var replaceHead = false
    /// Keep the checkpoint after a successful run (otherwise it is removed).
    public var keepCheckpoint = false
    /// A checkpoint of this run to continue from.
    public var resume: String?
    /// Test hook: stop the process after this step (so a test can kill it there).
    public var pauseAfterStep: Int?
    public var threads = 1
    /// Let `out` replace an input model (it is written whole, then renamed over it).
    public var force = false

    /// A configuration with the defaults of `kd finetune`.
    public init(model: String, data: String, out: String) {
        self.model = model
        self.data = data
        self.out = out
    }

    /// The checkpoint path: `checkpoint`, or `out` with `.h5` replaced by `.ckpt.h5`.
    public var checkpointPath: String { defaultCheckpointPath(out: out, checkpoint: checkpoint) }

    func validate() throws {
        try checkFlag(epochs, in: 1...maximumEpochs, flag: "--epochs")
        guard learningRate > 0, learningRate.isFinite else { throw StageError.usage("--lr \(learningRate) must be a positive number") }
        try checkFlag(batchSize, in: 1...maximumBatchSize, flag: "--batch-size")
        guard weightDecay >= 0, weightDecay.isFinite else { throw StageError.usage("--weight-decay \(weightDecay) must be ≥ 0") }
        guard clip >= 0, clip.isFinite else { throw StageError.usage("--clip \(clip) must be ≥ 0 (0 turns clipping off)") }
        if let evalEvery { try checkFlag(evalEvery, in: 1...maximumSteps, flag: "--eval-every") }
        if let checkpointEvery { try checkFlag(checkpointEvery, in: 0...maximumSteps, flag: "--checkpoint-every") }
        if let maxSteps { try checkFlag(maxSteps, in: 1...maximumSteps, flag: "--max-steps") }
        guard warmup >= 0, warmup.isFinite, warmup < 1 || (warmup == warmup.rounded() && warmup <= Double(maximumSteps)) else {
            throw StageError.usage("--warmup '\(warmup)' must be a fraction in [0, 1) or a whole number of steps")
        }
    }

    func warmupSteps(total: Int) -> Int {
        warmup < 1 ? Int((Double(total) * warmup).rounded(.up)) : min(Int(warmup), total)
    }
}

/// What `finetune` wrote and how training went.
public struct FinetuneReport: Codable, Sendable {
    public var out: String
    public var best: BestScore
    /// This process's training time (nil when a resumed run had no step left).
    public var time: TrainingTime?
    /// Label names in class order, as stored in the model.
    public var labels: [String]
    /// What the classifier reads: "mean" or "cls".
    public var pooling: String
    /// How the head started: "probe" or "random".
    public var headInit: String
    /// The maximum length trained at, stored in the model for inference.
    public var maxLength: Int
    /// The training log (`OUT.metrics.jsonl`).
    public var metrics: String
    /// The checkpoint, when kept (`--keep-checkpoint`).
    public var checkpoint: String?

    enum CodingKeys: String, CodingKey {
        case out, best, time, labels, pooling, headInit = "head_init", maxLength = "max_length", metrics, checkpoint
    }

    /// "trained … steps in …", "best dev macro-F1 … → OUT" and where the log went.
    public var text: String {
        (time.map { [$0.text] } ?? []).joined()
            + (time == nil ? "" : "\n")
            + String(format: "best dev macro-F1 %.4f (accuracy %.4f) at step %d → %@", best.macroF1, best.accuracy, best.step, out)
            + "\ntraining log → \(metrics)"
    }
}

/// The training and dev examples of a fine-tuning run, checked against the manifest's labels.
private struct FinetuneData {
    let folder: PreparedFolder
    let labels: [String]
    let train: [TrainingExample]
    let dev: [TrainingExample]

    init(_ config: FinetuneConfig, tokenizer: (String) -> [Int32]) throws {
        folder = try PreparedFolder(path: config.data)
        let trainRows = try folder.read(.train), devRows = try folder.read(.dev)
        guard !trainRows.isEmpty else { throw StageError("\(folder.filePath(.train)): no examples — nothing to train on") }
        guard !devRows.isEmpty else { throw StageError("\(folder.filePath(.dev)): no examples — fine-tuning keeps the best model by dev macro-F1 and needs a dev split") }
        let trainIndex = try labelIndices(trainRows, labels: folder.manifest.labels, file: folder.filePath(.train), known: "the manifest")
        let trainLabels = folder.manifest.labels.enumerated().filter { i, _ in trainIndex.contains(Int32(i)) }.map(\.element)
        guard trainLabels.count >= 2 else {
            throw StageError("\(folder.filePath(.train)): only \(trainLabels.count) label (\(trainLabels.joined())) — classification needs at least 2")
        }
        labels = folder.manifest.labels
        for split in [Split.dev, .test] {
            let rows = split == .dev ? devRows : try folder.read(.test)
            _ = try labelIndices(rows, labels: trainLabels, file: folder.filePath(split), known: "train.jsonl")
        }
        let devIndex = try labelIndices(devRows, labels: labels, file: folder.filePath(.dev), known: "the manifest")
        train = zip(trainRows, trainIndex).map { TrainingExample(ids: tokenizer($0.text), label: $1) }
        dev = zip(devRows, devIndex).map { TrainingExample(ids: tokenizer($0.text), label: $1) }
    }

    /// sha256 of the manifest, train and dev files (digests concatenated, hashed).
    func sha256() throws -> String {
        SHA256.hex(Data((try [SHA256.hex(folder.manifestData), SHA256.hex(folder.bytes(.train)),
                              SHA256.hex(folder.bytes(.dev))].joined()).utf8))
    }
}

/// Fine-tunes `config.model` with a new classification head on `config.data` and writes
/// the best model by dev macro-F1 to `config.out`.
public func finetune(_ config: FinetuneConfig, progress: StageProgress) throws -> FinetuneReport {
    try setComputeThreads(config.threads)
    try config.validate()
    try checkTrainingPaths(out: config.out, checkpoint: config.checkpointPath, resume: config.resume)
    let metricsPath = metricsLogPath(out: config.out)
    try checkOutputPath(metricsPath, flag: "--out (its training log)")
    try refuseInputsAsOutputs([(config.out, "--out")], inputs: [config.model, config.data, config.resume], force: config.force)
    try refuseInputsAsOutputs([(config.checkpointPath, "--checkpoint"), (metricsPath, "--out (its training log)")],
                              inputs: [config.model, config.data])
    let teacher = try ModelBundle(path: config.model)
    if teacher.hasClassifier && !config.replaceHead {
        let names = teacher.config.labels.isEmpty ? "" : " (\(teacher.config.labels.joined(separator: ", ")))"
        throw StageError("\(config.model): already has a classifier\(names) — pass --replace-head to train a new head over its encoder, or fine-tune the model it came from")
    }
    let maxLength = try teacher.resolveMaxLength(config.maxLength, progress: progress)
    let data = try FinetuneData(config) { teacher.tokenizer.encode($0, maxLength: maxLength).ids }
    let labels = data.labels
    let headInit = config.headInit ?? .probe

    // The model: the teacher's encoder (+ pooler), a fresh seeded head.
    let start = try teacher.classifierStart(labels: labels, seed: config.seed, pooling: config.pooling)
    var initial = start.parameters
    let perEpoch = Trainer.stepsPerEpoch(examples: data.train.count, batchSize: config.batchSize)
    let total = min(config.maxSteps ?? Int.max, config.epochs * perEpoch)
    let evalEvery = config.evalEvery ?? perEpoch
    let trainingConfig = TrainingConfig(
        modelFingerprint: modelFingerprint(tensors: start.encoderTensors, configText: teacher.file.configJSON),
        dataSHA256: try data.sha256(), labels: labels, trainExamples: data.train.count, devExamples: data.dev.count,
        epochs: config.epochs, totalSteps: total, batchSize: config.batchSize, maxLength: maxLength,
        learningRate: config.learningRate, warmupSteps: config.warmupSteps(total: total), schedule: config.schedule,
        weightDecay: config.weightDecay, clipNorm: config.clip, evalEvery: evalEvery, seed: config.seed,
        dropout: DropoutRates(hidden: start.config.hiddenDropout, attention: start.config.attentionDropout,
                              classifier: start.config.classifierDropout),
        modelPath: config.model, dataPath: config.data, threads: config.threads,
        headInit: headInit == .probe ? "probe" : nil)

    let pooling = start.config.classifierPooling
    let poolingWhy = config.pooling != nil ? "--pooling" : teacher.hasClassifier ? "the old head's" : pooling == .mean ? "the teacher's sentence pooling" : "default for a plain BERT"
    let settingsLine = "classifier: \(pooling == .mean ? "mean of the last hidden states" : "pooler over [CLS]") (\(poolingWhy)), head start \(headInit.rawValue)\(config.headInit == nil ? " (default, LP-FT)" : ""), max length \(maxLength)"
    progress.begin(totalSteps: total, epochs: (total + perEpoch - 1) / perEpoch)
    if headInit == .probe, config.resume == nil {
        progress.line(settingsLine)
        try probeHead(&initial, config: start.config, train: data.train, classes: labels.count,
                      paddingId: teacher.tokenizer.paddingId, progress: progress)
    }
    var state = try startingState(resume: config.resume, layout: start.model.layout, config: trainingConfig,
                                  initial: initial, threads: config.threads, progress: progress)
    if headInit != .probe || config.resume != nil { progress.line(settingsLine) }   // after the resume checks
    let trainer = Trainer(model: start.model, config: trainingConfig, train: data.train, dev: data.dev,
                          paddingId: teacher.tokenizer.paddingId, checkpointURL: URL(fileURLWithPath: config.checkpointPath),
                          checkpointEvery: config.checkpointEvery ?? evalEvery)
    progress.line("fine-tuning \(config.model) on \(config.data): \(data.train.count) train / \(data.dev.count) dev examples, \(labels.count) labels, \(total) steps of \(config.batchSize) (\(perEpoch) per epoch), \(config.threads) thread(s)")
    let log = try MetricsLog(path: metricsPath, resumingAt: config.resume != nil ? state.step : nil)
    let last = try runTraining(trainer, state: &state, progress: progress, pauseAfterStep: config.pauseAfterStep, log: log)

    guard let best = state.best else { throw StageError("no dev evaluation was made — nothing to write") }
    var bestBlock = ParameterBlock(zeros: start.model.layout)
    bestBlock.storage = best.storage
    let output = try teacher.derived(tensors: bestBlock.tensors,
                                     configJSON: try teacher.classifierConfigJSON(labels: labels, pooling: pooling, maxLength: maxLength,
                                                                                  headInit: headInit),
                                     labels: labels)
    do { try output.write(to: URL(fileURLWithPath: config.out)) } catch { throw StageError(file: config.out, error) }
    finishCheckpoint(config.checkpointPath, keep: config.keepCheckpoint, progress: progress)
    return FinetuneReport(out: config.out, best: BestScore(step: best.step, macroF1: best.macroF1, accuracy: best.accuracy),
                          time: TrainingTime(last), labels: labels, pooling: pooling.rawValue, headInit: headInit.rawValue,
                          maxLength: maxLength, metrics: metricsPath, checkpoint: config.keepCheckpoint ? config.checkpointPath : nil)
}

/// LP-FT's first stage: replaces the classifier in `parameters` by the logistic regression
/// fitted on the frozen encoder's features of `train` (scikit-learn's C = 1: l2 = 1 / n).
private func probeHead(_ parameters: inout ParameterBlock, config: BertConfig, train: [TrainingExample], classes: Int,
                       paddingId: Int32, progress: StageProgress) throws {
    let started = Date()
    let features: [[Float]]
    do {
        features = try classifierFeatures(config: config, tensors: parameters.tensorDictionary, sequences: train.map(\.ids),
                                          batchSize: 32, paddingId: paddingId)
    } catch { throw StageError("linear probe: \(error)") }
    let fit = fitSoftmaxRegression(features: features, labels: train.map(\.label), classes: classes, l2: 1 / Double(train.count))
    let w = parameters.layout.entry("classifier.weight")!.range, b = parameters.layout.entry("classifier.bias")!.range
    parameters.storage.replaceSubrange(w, with: fit.weight)
    parameters.storage.replaceSubrange(b, with: fit.bias)
    progress.line(String(format: "linear probe (--head-init probe): train accuracy %.4f, objective %.4f, %d L-BFGS iterations (max |gradient| %.1e), %.1f s",
                         fit.accuracy, fit.objective, fit.iterations, fit.gradientMax, Date().timeIntervalSince(started)))
}
