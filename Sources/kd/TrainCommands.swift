// kd finetune / kd eval: fine-tune a teacher with a classification head on a prepared
// dataset, and measure a classifier on one split.
//
// `finetune` checks every input (flags, model file, dataset folder and its labels,
// --max-length, the checkpoint to resume and its config) before training, writes periodic
// checkpoints atomically (DistilleryTraining.TrainingCheckpoint), and writes the best model
// (dev macro-F1) as a Distillery teacher file only at the end, through temp + rename.
// Progress goes to stderr: a bar on a terminal, plain log lines otherwise.
// `eval` prints accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix
// as a table or JSON. Left out on purpose: sentence-pair inputs, regression heads.
import ArgumentParser
import DistilleryData
import DistilleryModel
import DistilleryTensor
import DistilleryTraining
import DistilleryJSON
import Foundation
import Tokenization
import WeightIO

// MARK: - Shared loading

/// One `{"id","text","label"}` line of a prepared split.
struct LabeledText {
    let id: String
    let text: String
    let label: String
    /// 1-based line number in its file (for error messages).
    let line: Int
}

/// A prepared dataset folder: manifest plus split files (read lazily).
struct PreparedFolder {
    let path: String
    let manifest: DatasetManifest
    let manifestData: Data

    init(path: String) throws {
        self.path = path
        var isDirectory: ObjCBool = false
        let names = BuiltinDataset.all.map(\.name).joined(separator: ", ")
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CLIError("\(path): no such dataset folder — prepare it first with 'kd data prepare NAME --out \(path)' (built-in: \(names)) or 'kd data prepare --csv FILE ...'")
        }
        guard isDirectory.boolValue else {
            throw CLIError("\(path): is a file — --data takes a prepared dataset folder (train.jsonl, dev.jsonl, test.jsonl, manifest.json)")
        }
        let manifestPath = path + "/manifest.json"
        guard let data = FileManager.default.contents(atPath: manifestPath) else {
            throw CLIError("\(manifestPath): missing — \(path) is not a prepared dataset; run 'kd data prepare' to make one")
        }
        do { manifest = try DatasetManifest.read(data, source: manifestPath) } catch { throw CLIError(String(describing: error)) }
        manifestData = data
    }

    func filePath(_ split: Split) -> String { path + "/" + (manifest.files[split.rawValue] ?? "\(split.rawValue).jsonl") }

    /// The raw bytes of a split file.
    func bytes(_ split: Split) throws -> Data {
        let p = filePath(split)
        guard let data = FileManager.default.contents(atPath: p) else {
            throw CLIError("\(p): missing — the dataset folder is incomplete; re-run 'kd data prepare'")
        }
        return data
    }

    /// The examples of a split.
    func read(_ split: Split) throws -> [LabeledText] {
        let p = filePath(split)
        let data = try bytes(split)
        var out: [LabeledText] = []
        for (i, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                  let text = object["text"] as? String, let label = object["label"] as? String else {
                throw CLIError("\(p):\(i + 1): not a {\"id\",\"text\",\"label\"} JSON line — re-run 'kd data prepare'")
            }
            out.append(LabeledText(id: object["id"] as? String ?? "\(i + 1)", text: text, label: label, line: i + 1))
        }
        return out
    }
}

/// Label indices of `examples`, failing on the first label outside `labels`.
func labelIndices(_ examples: [LabeledText], labels: [String], file: String, known: String) throws -> [Int32] {
    let index = Dictionary(uniqueKeysWithValues: labels.enumerated().map { ($1, Int32($0)) })
    return try examples.map { e in
        guard let i = index[e.label] else {
            throw CLIError("\(file):\(e.line): label '\(e.label)' is unknown to \(known) (\(labels.joined(separator: ", "))) — re-prepare the dataset so every split shares the training labels")
        }
        return i
    }
}

/// Where fine-tuning starts: the teacher's encoder (and pooler, when it has one and the
/// classifier reads [CLS]) plus a fresh seeded classification head, as one parameter block
/// (kd finetune, kd bench train-step).
struct ClassifierStart {
    /// The teacher's config with `labels` (and the classifier pooling) set.
    let config: BertConfig
    /// The teacher's tensors without any old classifier (what the run fingerprint covers).
    let encoderTensors: [(name: String, tensor: Tensor)]
    let model: BertTrainingModel
    let parameters: ParameterBlock
}

extension TeacherSource {
    /// The teacher with a new `labels.count`-way head initialized from `seed`; `pooling`
    /// overrides what the classifier reads (default: the teacher config's choice). A mean-
    /// pooling head drops the teacher's pooler.
    func classifierStart(labels: [String], seed: UInt64, pooling: PoolingMode? = nil) throws -> ClassifierStart {
        var config = self.config
        config.labels = labels
        if let pooling { config.classifierPooling = pooling }
        let usesPooler = config.classifierPooling == .cls
        let encoderTensors = file.tensors.filter { !$0.name.hasPrefix("classifier.") && (usesPooler || !$0.name.hasPrefix("pooler.")) }
        var tensors = Dictionary(uniqueKeysWithValues: encoderTensors.map { ($0.name, $0.tensor) })
        let needsPooler = usesPooler && tensors["pooler.dense.weight"] == nil
        for (name, t) in freshHeadTensors(hiddenSize: config.hiddenSize, classes: labels.count, seed: seed, pooler: needsPooler) {
            tensors[name] = t
        }
        do {
            let model = try BertTrainingModel(config: config, classes: labels.count)
            let parameters = try ParameterBlock(layout: model.layout, tensors: tensors)
            return ClassifierStart(config: config, encoderTensors: encoderTensors, model: model, parameters: parameters)
        } catch { throw CLIError(file: path, error) }
    }
}

// MARK: - kd finetune

struct Finetune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fine-tune a model end to end with a new classification head on a prepared dataset.",
        discussion: """
        Adds a BertForSequenceClassification head (labels from the dataset manifest), trains with
        AdamW, warm-up and linear/cosine decay, evaluates on dev every --eval-every steps and writes
        the best model (dev macro-F1) to --out. Checkpoints go to --checkpoint (default: OUT with
        .ckpt.h5); --resume CKPT continues a run exactly where the checkpoint left it.
        """)

    @Option(help: "Distillery model file (.h5) to start from.") var model: String
    @Option(help: "Prepared dataset folder (kd data prepare), e.g. data/sms-spam.") var data: String
    @Option(help: "Output model file (.h5).") var out: String
    @Option(help: "Passes over the training split.") var epochs = 3
    @Option(help: "Peak learning rate.") var lr = 5e-5
    @Option(help: "Examples per optimizer step.") var batch = 32
    @Option(name: .customLong("max-length"), help: "Truncate texts to this many tokens.") var maxLength = 128
    @Option(help: "Warm-up: a fraction of all steps (< 1) or a step count (≥ 1).") var warmup = "0.1"
    @Option(help: "Decay after warm-up: linear or cosine.") var schedule = "linear"
    @Option(name: .customLong("weight-decay"), help: "AdamW decoupled weight decay (not on biases and LayerNorm).") var weightDecay = 0.01
    @Option(help: "Clip the global gradient norm to this (0 = off).") var clip = 1.0
    @Option(name: .customLong("eval-every"), help: "Evaluate on dev every N steps (default: once per epoch).") var evalEvery: Int?
    @Option(name: .customLong("checkpoint-every"), help: "Write a checkpoint every N steps (default: at each evaluation; 0 = only at the end).") var checkpointEvery: Int?
    @Option(help: "Checkpoint file (default: OUT with .ckpt.h5).") var checkpoint: String?
    @Option(name: .customLong("max-steps"), help: "Stop after this many optimizer steps (the schedule ends there).") var maxSteps: Int?
    @Option(help: "Seed of data order, dropout and head initialization.") var seed: UInt64 = 13
    @Option(help: "What the classifier reads: cls (HF BertForSequenceClassification: tanh pooler over [CLS]) or mean (the masked mean of the last hidden states, no pooler; for encoders trained for mean pooling). Default: the model's own, cls for a plain BERT.") var pooling: String?
    @Option(name: .customLong("head-init"), help: "How the new classifier starts: random (HF: N(0, 0.02) weights, zero bias) or probe (LP-FT: first fitted alone on the frozen encoder's features of the train split as a logistic regression, L2 as scikit-learn's C = 1, then everything is fine-tuned from there).") var headInit = "random"
    @Option(help: "Continue from this checkpoint (same model, data and flags).") var resume: String?
    @Option(name: .customLong("debug-pause-after-step"), help: .hidden) var pauseAfterStep: Int?
    @OptionGroup var threads: ThreadOptions

    /// The checkpoint path: --checkpoint, or --out with `.h5` replaced by `.ckpt.h5`.
    var checkpointPath: String {
        if let checkpoint { return checkpoint }
        return (out.hasSuffix(".h5") ? String(out.dropLast(3)) : out) + ".ckpt.h5"
    }

    func validateFlags() throws -> LearningRateSchedule.Decay {
        guard epochs >= 1 else { throw CLIError("--epochs \(epochs) must be at least 1") }
        guard lr > 0, lr.isFinite else { throw CLIError("--lr \(lr) must be a positive number") }
        guard batch >= 1 else { throw CLIError("--batch \(batch) must be at least 1") }
        guard weightDecay >= 0, weightDecay.isFinite else { throw CLIError("--weight-decay \(weightDecay) must be ≥ 0") }
        guard clip >= 0, clip.isFinite else { throw CLIError("--clip \(clip) must be ≥ 0 (0 turns clipping off)") }
        if let evalEvery, evalEvery < 1 { throw CLIError("--eval-every \(evalEvery) must be at least 1") }
        if let checkpointEvery, checkpointEvery < 0 { throw CLIError("--checkpoint-every \(checkpointEvery) must be ≥ 0") }
        if let maxSteps, maxSteps < 1 { throw CLIError("--max-steps \(maxSteps) must be at least 1") }
        guard let w = Double(warmup), w >= 0, w.isFinite, w < 1 || w == w.rounded() else {
            throw CLIError("--warmup '\(warmup)' must be a fraction in [0, 1) or a whole number of steps")
        }
        guard let decay = LearningRateSchedule.Decay(rawValue: schedule) else {
            throw CLIError("--schedule '\(schedule)' is not one of: linear, cosine")
        }
        if let pooling, PoolingMode(rawValue: pooling) == nil {
            throw CLIError("--pooling '\(pooling)' is not one of: cls, mean")
        }
        guard ["random", "probe"].contains(headInit) else {
            throw CLIError("--head-init '\(headInit)' is not one of: random, probe")
        }
        return decay
    }

    func warmupSteps(total: Int) -> Int {
        let w = Double(warmup)!
        return w < 1 ? Int((Double(total) * w).rounded(.up)) : min(Int(w), total)
    }

    func run() throws {
        try threads.apply()
        let decay = try validateFlags()
        try checkOutputPath(out, flag: "--out")
        try checkOutputPath(checkpointPath, flag: "--checkpoint")
        guard URL(fileURLWithPath: checkpointPath).standardizedFileURL != URL(fileURLWithPath: out).standardizedFileURL else {
            throw CLIError("--checkpoint and --out are the same file (\(out)) — give them different paths")
        }
        if let resume, !FileManager.default.fileExists(atPath: resume) {
            throw CLIError("\(resume): no such checkpoint — --resume takes the .ckpt.h5 file of an earlier run")
        }
        let teacher = try TeacherSource(path: model)
        guard maxLength >= 2 else { throw CLIError("--max-length \(maxLength) is too small — it must leave room for [CLS] and [SEP]") }
        guard maxLength <= teacher.config.maxPositions else {
            throw CLIError("--max-length \(maxLength) exceeds the model's \(teacher.config.maxPositions) positions (\(model)) — use at most \(teacher.config.maxPositions)")
        }

        // Data: labels from the manifest; every split's labels must be known to train.
        let folder = try PreparedFolder(path: data)
        let trainRows = try folder.read(.train), devRows = try folder.read(.dev)
        guard !trainRows.isEmpty else { throw CLIError("\(folder.filePath(.train)): no examples — nothing to train on") }
        guard !devRows.isEmpty else { throw CLIError("\(folder.filePath(.dev)): no examples — fine-tuning keeps the best model by dev macro-F1 and needs a dev split") }
        let trainLabelIndex = try labelIndices(trainRows, labels: folder.manifest.labels, file: folder.filePath(.train), known: "the manifest")
        let trainLabels = folder.manifest.labels.enumerated().filter { i, _ in trainLabelIndex.contains(Int32(i)) }.map(\.element)
        guard trainLabels.count >= 2 else {
            throw CLIError("\(folder.filePath(.train)): only \(trainLabels.count) label (\(trainLabels.joined())) — classification needs at least 2")
        }
        let labels = folder.manifest.labels
        for split in [Split.dev, .test] {
            let rows = split == .dev ? devRows : try folder.read(.test)
            _ = try labelIndices(rows, labels: trainLabels, file: folder.filePath(split), known: "train.jsonl")
        }
        let devLabelIndex = try labelIndices(devRows, labels: labels, file: folder.filePath(.dev), known: "the manifest")
        let limit = maxLength
        let train = zip(trainRows, trainLabelIndex).map { TrainingExample(ids: teacher.tokenizer.encode($0.text, maxLength: limit).ids, label: $1) }
        let dev = zip(devRows, devLabelIndex).map { TrainingExample(ids: teacher.tokenizer.encode($0.text, maxLength: limit).ids, label: $1) }

        // The model: the teacher's encoder (+ pooler), a fresh seeded head.
        let start = try teacher.classifierStart(labels: labels, seed: seed, pooling: pooling.flatMap(PoolingMode.init(rawValue:)))
        let (config, encoderTensors, trainingModel) = (start.config, start.encoderTensors, start.model)
        var initial = start.parameters

        let perEpoch = Trainer.stepsPerEpoch(examples: train.count, batchSize: batch)
        let total = min(maxSteps ?? Int.max, epochs * perEpoch)
        let evalEvery = self.evalEvery ?? perEpoch
        let trainingConfig = TrainingConfig(
            modelFingerprint: modelFingerprint(tensors: encoderTensors, configText: teacher.file.configJSON),
            dataSHA256: SHA256.hex(Data((try [SHA256.hex(folder.manifestData), SHA256.hex(folder.bytes(.train)),
                                              SHA256.hex(folder.bytes(.dev))].joined()).utf8)),
            labels: labels, trainExamples: train.count, devExamples: dev.count, epochs: epochs, totalSteps: total,
            batchSize: batch, maxLength: maxLength, learningRate: lr, warmupSteps: warmupSteps(total: total), schedule: decay,
            weightDecay: weightDecay, clipNorm: clip, evalEvery: evalEvery, seed: seed,
            dropout: DropoutRates(hidden: config.hiddenDropout, attention: config.attentionDropout, classifier: config.classifierDropout),
            modelPath: model, dataPath: data, threads: threads.threads, headInit: headInit == "probe" ? "probe" : nil)

        let progress = ProgressReporter(total: total, epochs: (total + perEpoch - 1) / perEpoch)
        if headInit == "probe", resume == nil {
            try probeHead(&initial, config: config, train: train, classes: labels.count, paddingId: teacher.tokenizer.paddingId,
                          progress: progress)
        }
        var state = try startingState(resume: resume, layout: trainingModel.layout, config: trainingConfig,
                                      initial: initial, threads: threads.threads)

        let trainer = Trainer(model: trainingModel, config: trainingConfig, train: train, dev: dev,
                              paddingId: teacher.tokenizer.paddingId, checkpointURL: URL(fileURLWithPath: checkpointPath),
                              checkpointEvery: checkpointEvery ?? evalEvery)
        progress.line("fine-tuning \(model) on \(data): \(train.count) train / \(dev.count) dev examples, \(labels.count) labels, \(total) steps of \(batch) (\(perEpoch) per epoch), \(threads.threads) thread(s)")
        let last = try runTraining(trainer, state: &state, progress: progress, pauseAfterStep: pauseAfterStep)

        guard let best = state.best else { throw CLIError("no dev evaluation was made — nothing to write") }
        var bestBlock = ParameterBlock(zeros: trainingModel.layout)
        bestBlock.storage = best.storage
        let output = TeacherFile(tensors: bestBlock.tensors, configJSON: try classifierConfigJSON(teacher.file.configJSON, labels: labels, pooling: config.classifierPooling),
                                 vocabulary: teacher.file.vocabulary, pooling: teacher.file.pooling, normalize: teacher.file.normalize,
                                 tokenizerOptionsJSON: teacher.file.tokenizerOptionsJSON, labelsJSON: jsonArray(labels))
        do { try output.write(to: URL(fileURLWithPath: out)) } catch { throw CLIError(file: out, error) }
        printTrainingTime(last)
        print(String(format: "best dev macro-F1 %.4f (accuracy %.4f) at step %d → %@", best.macroF1, best.accuracy, best.step, out))
    }
}

/// LP-FT's first stage: replaces the classifier in `parameters` by the logistic regression
/// fitted on the frozen encoder's features of `train` (scikit-learn's C = 1: l2 = 1 / n).
func probeHead(_ parameters: inout ParameterBlock, config: BertConfig, train: [TrainingExample], classes: Int,
               paddingId: Int32, progress: ProgressReporter) throws {
    let started = Date()
    let features: [[Float]]
    do {
        features = try classifierFeatures(config: config, tensors: parameters.tensorDictionary, sequences: train.map(\.ids),
                                          batchSize: 32, paddingId: paddingId)
    } catch { throw CLIError("linear probe: \(error)") }
    let fit = fitSoftmaxRegression(features: features, labels: train.map(\.label), classes: classes, l2: 1 / Double(train.count))
    let w = parameters.layout.entry("classifier.weight")!.range, b = parameters.layout.entry("classifier.bias")!.range
    parameters.storage.replaceSubrange(w, with: fit.weight)
    parameters.storage.replaceSubrange(b, with: fit.bias)
    progress.line(String(format: "linear probe (--head-init probe): train accuracy %.4f, objective %.4f, %d L-BFGS iterations (max |gradient| %.1e), %.1f s",
                         fit.accuracy, fit.objective, fit.iterations, fit.gradientMax, Date().timeIntervalSince(started)))
}

/// The teacher's config.json with the new head's labels (`id2label`, `label2id`) and architecture.
func classifierConfigJSON(_ text: String, labels: [String], pooling: PoolingMode? = nil) throws -> String {
    guard var object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
        throw CLIError("the model's config_json is not a JSON object — re-import the model")
    }
    if let pooling { object["distillery_classifier_pooling"] = pooling == .cls ? nil : pooling.rawValue }
    object["id2label"] = Dictionary(uniqueKeysWithValues: labels.enumerated().map { (String($0), $1) })
    object["label2id"] = Dictionary(uniqueKeysWithValues: labels.enumerated().map { ($1, $0) })
    object["architectures"] = ["BertForSequenceClassification"]
    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
    return String(decoding: data, as: UTF8.self)
}

/// A JSON array of strings.
func jsonArray(_ items: [String]) -> String { "[" + items.map(JSONLine.quoted).joined(separator: ",") + "]" }

/// A warning line on stderr.
func warn(_ message: String) { FileHandle.standardError.write(Data("kd: \(message)\n".utf8)) }

/// A fresh state from `initial`, or the state of checkpoint `resume` after checking that it
/// belongs to this run (same model, data and flags; another thread count only warns).
func startingState(resume: String?, layout: ParameterLayout, config: TrainingConfig, initial: ParameterBlock,
                   threads: Int) throws -> TrainingState {
    guard let resume else { return TrainingState(parameters: initial, adam: config.adamSettings) }
    let checkpoint: TrainingCheckpoint
    do { checkpoint = try TrainingCheckpoint.read(URL(fileURLWithPath: resume), layout: layout) } catch {
        throw CLIError(file: resume, error)
    }
    do { try checkpoint.config.checkResumable(with: config, checkpoint: resume) } catch { throw CLIError(error.description) }
    if checkpoint.config.threads != threads {
        warn("\(resume) was written with --threads \(checkpoint.config.threads), this run uses \(threads): results will not be bit-identical to an uninterrupted run")
    }
    warn("resuming from \(resume) at step \(checkpoint.state.step)/\(config.totalSteps)")
    return checkpoint.state
}

/// Runs `trainer` to the end, reporting evaluations, checkpoints and steps on `progress`
/// (`onStep` sees each step first); returns the last step's report. `pauseAfterStep` (a
/// hidden test flag) stops the process there so a test can SIGKILL it at a known step.
func runTraining(_ trainer: Trainer, state: inout TrainingState, progress: ProgressReporter, pauseAfterStep: Int?,
                 onStep: (StepReport) -> Void = { _ in }) throws -> StepReport? {
    var last: StepReport?
    do {
        try trainer.run(&state) { event in
            switch event {
            case .evaluation(let step, let m, let best):
                progress.line(String(format: "step %d: dev accuracy %.4f, macro-F1 %.4f%@", step, m.accuracy, m.macroF1, best ? " (best)" : ""))
            case .checkpoint(let step, let url):
                progress.line("step \(step): checkpoint → \(url.path)")
            case .step(let report):
                onStep(report)
                last = report
                progress.step(report)
                if report.step == pauseAfterStep {
                    progress.line("paused after step \(report.step) (--debug-pause-after-step)")
                    while true { sleep(3600) }
                }
            }
        }
    } catch let error as TrainingError { throw CLIError(error.description) }
    progress.finish()
    return last
}

/// "trained N steps in …" for the steps this process ran (nothing when it ran none).
func printTrainingTime(_ last: StepReport?) {
    guard let last, last.stepsThisRun > 0 else { return }
    let perStep = last.stepSecondsThisRun / Double(last.stepsThisRun)
    print(String(format: "trained %d steps in %.1f s (%.1f ms/step, %.1f examples/s; evaluation and checkpoints %.1f s)",
                 last.stepsThisRun, last.secondsThisRun, perStep * 1000,
                 Double(last.examplesThisRun) / max(last.stepSecondsThisRun, 1e-9), last.secondsThisRun - last.stepSecondsThisRun))
}

/// Training progress on stderr: a redrawn bar on a terminal, periodic plain lines otherwise.
final class ProgressReporter {
    let total: Int
    let epochs: Int
    let isTerminal = isatty(2) != 0
    /// Plain mode: one line every this many steps (about 20 per run).
    let logEvery: Int
    private var lossSum = 0.0, lossCount = 0
    private var barShown = false

    init(total: Int, epochs: Int) {
        self.total = total
        self.epochs = epochs
        logEvery = max(1, total / 20)
    }

    private func write(_ s: String) { FileHandle.standardError.write(Data(s.utf8)) }

    /// A message line (clears the bar first on a terminal).
    func line(_ s: String) {
        if barShown { write("\r\u{1B}[2K"); barShown = false }
        write(s + "\n")
    }

    func step(_ r: StepReport) {
        lossSum += r.loss
        lossCount += 1
        let rate = Double(r.examplesThisRun) / max(r.secondsThisRun, 1e-9)
        let eta = r.secondsThisRun / Double(r.stepsThisRun) * Double(r.totalSteps - r.step)
        let epoch = "epoch \(r.epoch + 1)/\(epochs)"
        if isTerminal {
            let width = 24, filled = width * r.step / max(r.totalSteps, 1)
            let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            write(String(format: "\r\u{1B}[2K%@ %d/%d %@ loss %.4f %.1f ex/s ETA %@", bar, r.step, r.totalSteps, epoch,
                         lossSum / Double(lossCount), rate, duration(eta)))
            barShown = true
            if r.step % logEvery == 0 { lossSum = 0; lossCount = 0 }
        } else if r.step % logEvery == 0 || r.step == r.totalSteps || r.stepsThisRun == 1 {
            line(String(format: "step %d/%d (%@): loss %.4f, lr %.3g, grad norm %.3g, %.1f examples/s, ETA %@", r.step, r.totalSteps,
                        epoch, lossSum / Double(lossCount), r.learningRate, Double(r.gradientNorm), rate, duration(eta)))
            lossSum = 0
            lossCount = 0
        }
    }

    func finish() { if barShown { write("\n"); barShown = false } }

    func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? "\(s / 3600)h\(String(format: "%02d", s / 60 % 60))m" : s >= 60 ? "\(s / 60)m\(String(format: "%02d", s % 60))s" : "\(s)s"
    }
}

// MARK: - kd eval

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Accuracy, macro-F1, per-class precision/recall/F1 and confusion matrix of a classifier on a dataset split.",
        discussion: """
        With --teacher, also how closely the model follows that teacher on the same split: top-1
        agreement and mean KL(teacher ‖ student) at temperature 1 (the teacher must have the same labels).
        """)

    @Option(help: "Distillery model file (.h5) with a classification head.") var model: String
    @Option(help: "Prepared dataset folder (kd data prepare).") var data: String
    @Option(help: "Split to evaluate: train, dev or test.") var split = "test"
    @Option(name: .customLong("max-length"), help: "Truncate to this many tokens (default: 128, or the model's positions if fewer).") var maxLength: Int?
    @Option(name: .customLong("batch-size"), help: "Sequences per forward pass.") var batchSize = 32
    @Option(help: "A teacher model (.h5) with the same labels: adds agreement and KL(teacher ‖ model).") var teacher: String?
    @Flag(help: "Print JSON instead of a table.") var json = false
    @OptionGroup var threads: ThreadOptions

    /// The logits of `loaded` on `rows`, tokenized with its own tokenizer.
    func logits(_ loaded: LoadedModel, path: String, rows: [LabeledText], maxLength: Int) throws -> [[Float]] {
        let sequences = rows.map { loaded.tokenizer.encode($0.text, maxLength: maxLength).ids }
        do {
            return try classifierLogits(encoder: loaded.encoder, sequences: sequences, batchSize: batchSize, paddingId: loaded.tokenizer.paddingId)
        } catch { throw CLIError(file: path, error) }
    }

    /// Label names of a classifier model, or an error naming the file.
    static func labelNames(_ loaded: LoadedModel, path: String) throws -> [String] {
        let classes = loaded.encoder.heads.classifierLabels
        guard classes > 0 else {
            throw CLIError("\(path): the model has no classifier head — fine-tune it first (kd finetune)")
        }
        return loaded.encoder.config.labels.count == classes ? loaded.encoder.config.labels : (0..<classes).map { "LABEL_\($0)" }
    }

    func run() throws {
        try threads.apply()
        guard let split = Split(rawValue: split) else { throw CLIError("--split '\(self.split)' is not one of: train, dev, test") }
        guard batchSize >= 1 else { throw CLIError("--batch-size \(batchSize) must be at least 1") }
        let loaded = try LoadedModel(path: model)
        let names = try Self.labelNames(loaded, path: model)
        let maxLength = self.maxLength ?? min(128, loaded.encoder.config.maxPositions)
        try checkMaxLength(maxLength, model: loaded)
        var teacherModel: LoadedModel?
        if let teacher {
            let t = try LoadedModel(path: teacher)
            let teacherNames = try Self.labelNames(t, path: teacher)
            guard teacherNames == names else {
                throw CLIError("\(teacher): the teacher's labels (\(teacherNames.joined(separator: ", "))) differ from \(model)'s (\(names.joined(separator: ", "))) — compare a student with the teacher it was distilled from")
            }
            try checkMaxLength(maxLength, model: t)
            teacherModel = t
        }
        let folder = try PreparedFolder(path: data)
        let rows = try folder.read(split)
        guard !rows.isEmpty else { throw CLIError("\(folder.filePath(split)): no examples to evaluate") }
        let truth = try labelIndices(rows, labels: names, file: folder.filePath(split), known: "the model \(model)")
        let studentLogits = try logits(loaded, path: model, rows: rows, maxLength: maxLength)
        let metrics = ClassificationMetrics(truth: truth.map(Int.init), predicted: studentLogits.map(argmax), classCount: names.count)
        var fidelity: FidelityMetrics?
        if let teacherModel, let teacher {
            fidelity = FidelityMetrics(teacher: try logits(teacherModel, path: teacher, rows: rows, maxLength: maxLength), student: studentLogits)
        }
        print(json ? metricsJSON(metrics, fidelity: fidelity, labels: names, split: split.rawValue)
                   : metricsTable(metrics, fidelity: fidelity, labels: names, split: split.rawValue))
    }

    func metricsJSON(_ m: ClassificationMetrics, fidelity: FidelityMetrics?, labels: [String], split: String) -> String {
        func f(_ x: Double) -> String { String(format: "%.6f", x) }
        let perClass = zip(labels, m.perClass).map { name, c in
            "{\"label\":\(JSONLine.quoted(name)),\"precision\":\(f(c.precision)),\"recall\":\(f(c.recall)),\"f1\":\(f(c.f1)),\"support\":\(c.support)}"
        }
        let confusion = "[" + m.confusion.map { "[" + $0.map(String.init).joined(separator: ",") + "]" }.joined(separator: ",") + "]"
        return "{\"model\":\(JSONLine.quoted(model)),\"data\":\(JSONLine.quoted(data)),\"split\":\(JSONLine.quoted(split)),\"examples\":\(m.total),"
            + "\"accuracy\":\(f(m.accuracy)),\"macro_f1\":\(f(m.macroF1)),\"labels\":\(jsonArray(labels)),"
            + "\"per_class\":[\(perClass.joined(separator: ","))],\"confusion\":\(confusion)"
            + (fidelity.map { ",\"teacher\":\(JSONLine.quoted(teacher ?? "")),\"agreement\":\(f($0.agreement)),\"mean_kl\":\(f($0.meanKL))" } ?? "") + "}"
    }

    func metricsTable(_ m: ClassificationMetrics, fidelity: FidelityMetrics?, labels: [String], split: String) -> String {
        let w = max(5, labels.map(\.count).max() ?? 0)
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        func left(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
        var lines = ["\(model) on \(data) (\(split), \(m.total) examples)",
                     String(format: "accuracy  %.4f", m.accuracy), String(format: "macro-F1  %.4f", m.macroF1)]
        if let fidelity, let teacher {
            lines += ["fidelity to \(teacher)", String(format: "agreement %.4f", fidelity.agreement),
                      String(format: "mean KL   %.6f (teacher ‖ model, nats, T = 1)", fidelity.meanKL)]
        }
        lines += ["", pad("label", w) + "  precision  recall      f1  support"]
        for (name, c) in zip(labels, m.perClass) {
            lines.append(pad(name, w) + String(format: "  %9.4f  %6.4f  %6.4f  %7d", c.precision, c.recall, c.f1, c.support))
        }
        lines += ["", "confusion matrix (rows: true label, columns: predicted)"]
        let cw = max(6, labels.map(\.count).max() ?? 0, String(m.confusion.flatMap { $0 }.max() ?? 0).count)
        lines.append(pad("", w) + labels.map { "  " + left($0, cw) }.joined())
        for (name, row) in zip(labels, m.confusion) {
            lines.append(pad(name, w) + row.map { "  " + left(String($0), cw) }.joined())
        }
        return lines.joined(separator: "\n")
    }
}
