// BiGRUStage: the BiGRU student inside the stages — reading its model file (`BiGRUBundle`:
// a Distillery model file whose config_json says `"distillery_architecture": "bigru"`),
// describing it for `kd info`, and distilling it (`kd distill --student students/bigru-….json`):
// the same checks of teacher, label cache and data as a BERT student, the cache's original
// and augmented copies with the teacher's logits, the shared training loop with dev
// evaluation, periodic checkpoints and exact resume (`Trainer` with a BiGRU objective and
// evaluator), and the best student by dev macro-F1 written whole, then renamed into place.
// Left out on purpose: --init (no pruned BiGRU exists), --teacher-states (no hidden-state
// losses), --losses (the spec's BiGRU losses are the ablation knob).
import Distillation
import DistilleryData
import DistilleryJSON
import DistilleryModel
import DistilleryTensor
import DistilleryTraining
import Foundation
import Tokenization
import WeightIO

/// A BiGRU student's model file: contents, config and tokenizer.
struct BiGRUBundle {
    let file: TeacherFile
    let config: BiGRUConfig
    let tokenizer: WordPieceTokenizer
    var tensors: [String: Tensor] { Dictionary(file.tensors.map { ($0.name, $0.tensor) }, uniquingKeysWith: { _, last in last }) }

    /// The file at `path` when it is a BiGRU student, nil when it is another model (or no
    /// readable Distillery file: ModelBundle then says what is wrong).
    init?(loading path: String) throws {
        let url = URL(fileURLWithPath: path)
        guard FileManager.default.fileExists(atPath: path), let json = TeacherFile.storedConfigJSON(url),
              BiGRUConfig.matches(json: json) else { return nil }   // not read in full just to find out
        let file: TeacherFile
        do { file = try TeacherFile.read(url) } catch { return nil }
        self.file = file
        do { config = try BiGRUConfig(json: file.configJSON, source: "\(path) (config_json)") } catch { throw StageError(file: path, error) }
        tokenizer = try TokenizerOptions.parse(file.tokenizerOptionsJSON, source: path)
            .makeTokenizer(vocabulary: file.vocabulary, segmentation: file.segmentationVocabulary, source: path)
    }
}

/// `kd info` of a BiGRU student.
func describeBiGRU(_ student: BiGRUBundle, path: String, bytes: Int, listTensors: Bool) throws -> ModelDescription {
    let (t, c) = (student.file, student.config)
    do { _ = try BiGRUEncoder(config: c, tensors: student.tensors) } catch { throw StageError(file: path, error) }
    let stored = (try? JSONValue.parse(t.configJSON))?.objectValue?[StoredSettingKey.maxLength]?.intValue
    let details = [
        "architecture: BiGRU student, \(c.layers) bidirectional layer\(c.layers == 1 ? "" : "s") of \(c.hiddenSize) units per direction, embeddings \(c.embeddingSize), vocab \(c.vocabSize), max+mean pooling",
        "labels: \(c.labels.joined(separator: ", "))",
        "classifier: on [max, mean] of the last layer's outputs (\(c.pooledSize) features)",
        "max length: \(stored.map { "\($0) (stored; eval, predict, embed use it)" } ?? "not stored (128 is used)")",
        "pooling (kd embed): \(t.pooling) of the last layer's outputs; tokenizer: \(t.tokenizerOptionsJSON)",
    ]
    let settings = StoredSettings(labels: c.labels, classifierPooling: nil, headInit: nil, maxLength: stored, pooling: t.pooling, normalize: t.normalize)
    let entries = listTensors ? t.tensors.map { ModelDescription.TensorEntry(name: $0.name, dtype: "float32", shape: $0.tensor.shape) } : nil
    return ModelDescription(file: path, format: "distillery-teacher (bigru)", bytes: bytes, parameters: t.tensors.reduce(0) { $0 + $1.tensor.count },
                            tensorCount: t.tensors.count, details: details, settings: settings, tensors: entries, skipped: [])
}

/// The BiGRU spec at `path`, or nil when the file is not a BiGRU student (or unreadable:
/// the BERT path reports that).
func biGRUSpec(_ path: String) throws -> BiGRUStudentSpec? {
    guard let data = FileManager.default.contents(atPath: path), BiGRUStudentSpec.declares(json: data) else { return nil }
    do { return try BiGRUStudentSpec(json: data, source: path) } catch { throw StageError(error.description) }
}

/// A checked BiGRU distillation run.
struct BiGRUDistillationRun: DistillationRun {
    let config: DistillConfig
    let report: DistillPlanReport
    let source: ModelBundle
    let spec: BiGRUStudentSpec
    let model: BiGRUModel
    let cache: LabelCache
    let folder: PreparedFolder
    let examples: [TrainingExample]
    let dev: [TrainingExample]
    let teacherLogits: [[Float]]
    let initial: ParameterBlock
    let runSeed: UInt64
    let batchSize: Int
    let learningRate: Double
    let warmup: Double

    func train(progress: StageProgress) throws -> DistillReport {
        guard !config.planOnly else { throw StageError("the run was prepared with planOnly — prepare it again to train") }
        let perEpoch = Trainer.stepsPerEpoch(examples: examples.count, batchSize: batchSize)
        let planned = spec.epochs * perEpoch
        let total = min(config.stopAfter ?? Int.max, planned)
        let evalEvery = config.evalEvery ?? perEpoch
        let identity = [cache.settings.teacherSHA256, cache.settings.dataSHA256, String(cache.exampleCount),
                        SHA256.hex(try folder.bytes(.dev)), report.plan].joined(separator: "\n")
        let trainingConfig = TrainingConfig(
            modelFingerprint: modelFingerprint(tensors: initial.tensors, configText: report.plan),
            dataSHA256: SHA256.hex(Data(identity.utf8)), labels: source.config.labels, trainExamples: examples.count,
            devExamples: dev.count, epochs: spec.epochs, totalSteps: total, batchSize: batchSize, maxLength: cache.settings.maxLength,
            learningRate: learningRate, warmupSteps: Int((Double(planned) * warmup).rounded(.up)), schedule: .linear,
            weightDecay: config.weightDecay, clipNorm: config.clip, evalEvery: evalEvery, seed: runSeed,
            dropout: DropoutRates(hidden: 0, attention: 0, classifier: 0),
            modelPath: config.student, dataPath: config.labels, threads: config.threads)
        progress.begin(totalSteps: total, epochs: (total + perEpoch - 1) / perEpoch)
        var state = try startingState(resume: config.resume, layout: model.layout, config: trainingConfig, initial: initial,
                                      threads: config.threads, progress: progress)
        let paddingId = source.tokenizer.paddingId
        let objective = BiGRUDistillationObjective(model: model, spec: spec, examples: examples, teacherLogits: teacherLogits, paddingId: paddingId)
        let (model, dev) = (self.model, self.dev)
        var trainer = Trainer(objective: objective, evaluator: { storage in
            var block = ParameterBlock(zeros: model.layout)
            block.storage = storage
            let encoder = try BiGRUEncoder(config: model.config, tensors: block.tensorDictionary)
            let predicted = try classify(encoder: encoder, sequences: dev.map(\.ids), batchSize: 64, paddingId: paddingId)
            return ClassificationMetrics(truth: dev.map { Int($0.label) }, predicted: predicted, classCount: model.classCount)
        }, config: trainingConfig, train: examples, dev: dev, paddingId: paddingId,
           checkpointURL: URL(fileURLWithPath: config.checkpointPath), checkpointEvery: config.checkpointEvery ?? evalEvery)
        // The full run's warm-up and decay, also when --stop-after ends it early.
        let schedule = LearningRateSchedule(peakRate: learningRate, warmupSteps: trainingConfig.warmupSteps, totalSteps: planned)
        trainer.learningRate = { schedule.rate(at: $0) }
        progress.line("distilling \(config.teacher) into \(spec.name) (\(model.layout.totalCount) parameters): \(examples.count) examples, \(total) steps of \(batchSize) (\(perEpoch) per epoch), \(config.threads) thread(s)")
        let log = try MetricsLog(path: metricsLogPath(out: config.out), resumingAt: config.resume != nil ? state.step : nil)
        let last = try runTraining(trainer, state: &state, progress: progress, pauseAfterStep: config.pauseAfterStep, log: log)
        guard let best = state.best else { throw StageError("no dev evaluation was made — nothing to write") }
        var bestBlock = ParameterBlock(zeros: model.layout)
        bestBlock.storage = best.storage
        let configJSON = try model.config.json(extra: [StoredSettingKey.maxLength: .int(cache.settings.maxLength)])
        let output = TeacherFile(tensors: bestBlock.tensors, configJSON: configJSON, vocabulary: source.file.vocabulary, pooling: PoolingMode.mean.rawValue,
                                 normalize: false, tokenizerOptionsJSON: source.file.tokenizerOptionsJSON,
                                 labelsJSON: try JSONCoding.string(model.config.labels), segmentationVocabulary: source.file.segmentationVocabulary)
        do { try output.write(to: URL(fileURLWithPath: config.out)) } catch { throw StageError(file: config.out, error) }
        finishCheckpoint(config.checkpointPath, keep: config.keepCheckpoint, progress: progress)
        return DistillReport(out: config.out, best: BestScore(step: best.step, macroF1: best.macroF1, accuracy: best.accuracy),
                             parameters: model.layout.totalCount, time: TrainingTime(last), maxLength: cache.settings.maxLength,
                             metrics: metricsLogPath(out: config.out), checkpoint: config.keepCheckpoint ? config.checkpointPath : nil)
    }
}

/// Checks a BiGRU distillation (teacher, spec, data, cache) and loads what it trains on.
func prepareBiGRUDistillation(_ config: DistillConfig, spec: BiGRUStudentSpec, showPlan: (String) -> Void) throws -> BiGRUDistillationRun {
    for (flag, given) in [("--init", config.initWeights != nil), ("--losses", config.losses != nil),
                          ("--teacher-states", config.teacherStates != .auto)] where given {
        throw StageError.usage("\(flag) does not apply to a BiGRU student (\(config.student)) — it has no hidden states to match and no pruned start; set its losses in the spec")
    }
    let source = try ModelBundle(path: config.teacher)
    let labels = source.config.labels
    guard labels.count >= 2 else {
        throw StageError("\(config.teacher): the teacher has no classifier head — fine-tune it first (kd finetune), then label with it (kd label)")
    }
    var spec = spec
    if let epochs = config.epochs {
        guard let n = Int(epochs), n >= 1, n <= maximumEpochs else {
            throw StageError.usage("--epochs '\(epochs)': \(config.student) has a one-stage schedule — give one whole number of epochs in 1...\(maximumEpochs)")
        }
        spec.epochs = n
    }
    let modelConfig = spec.config(teacher: source.config, labels: labels)
    let model: BiGRUModel
    do { model = try BiGRUModel(config: modelConfig) } catch { throw StageError("\(config.student): \(error)") }
    let plan = spec.planText(modelConfig, parameters: model.layout.totalCount)
    showPlan(plan)
    let inputs = try DistillationInputs(data: config.data, labels: config.labels, teacher: config.teacher, teacherLabels: labels,
                                        tokenizer: source.tokenizer)
    let (folder, cache, dev) = (inputs.folder, inputs.cache, inputs.dev)
    let maxLength = cache.settings.maxLength
    let (used, _) = try trainingSelection(config, cache: cache, folder: folder)
    let examples = try cacheTokenIDs(cache, labels: config.labels, vocabularySize: source.config.vocabSize, examples: used).enumerated().map {
        TrainingExample(ids: $1, label: cache.labels[used[$0]])
    }
    let teacherLogits = try used.chunked(8192).flatMap { try cache.fullLogits(examples: $0) }
    let runSeed = config.seed ?? spec.training.seed ?? 13
    let tensors = initializeBiGRU(modelConfig, teacherEmbeddings: spec.embeddingsFromTeacher ? source.tensors["embeddings.word_embeddings.weight"] : nil,
                                  seed: runSeed)
    let initial: ParameterBlock
    do { initial = try ParameterBlock(layout: model.layout, tensors: tensors) } catch { throw StageError("\(config.student): \(error)") }
    let augmented = used.filter { cache.copies[$0] > 0 }.count
    let report = DistillPlanReport(
        plan: plan,
        trainingData: "training data: \(examples.count) cached examples (\(examples.count - augmented) original, \(augmented) augmented, soft labels only), max length \(maxLength); dev \(dev.count)",
        teacherStates: "teacher hidden states: none needed (a BiGRU student learns from the logits)")
    return BiGRUDistillationRun(config: config, report: report, source: source, spec: spec, model: model, cache: cache, folder: folder,
                                examples: examples, dev: dev, teacherLogits: teacherLogits, initial: initial, runSeed: runSeed,
                                batchSize: config.batchSize ?? spec.training.batchSize ?? 32,
                                learningRate: config.learningRate ?? spec.training.learningRate ?? 1e-3,
                                warmup: config.warmup ?? spec.training.warmupRatio ?? 0.05)
}
