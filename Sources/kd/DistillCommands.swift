// kd distill / kd bench distill-step: train a student (students/*.json) from a fine-tuned
// teacher and its soft-label cache, and time one distillation step.
//
// `distill` checks everything before training — the student spec and its plan against the
// teacher (printed), the cache's teacher and data hashes, the labels of teacher, cache and
// data, where the teacher's hidden states come from (the cache when it holds every layer
// the plan needs, else the teacher online on each batch) — then runs the shared training
// loop (DistilleryTraining.Trainer) with a `DistillationObjective`: the same progress,
// periodic checkpoints and exact `--resume` as `kd finetune`. The student is trained on
// the token ids the teacher saw (augmented copies included, without gold labels); the
// best student by dev macro-F1 is written as a Distillery model file (projections
// dropped). Left out on purpose: distilling a bare encoder without a task (no classes).
import ArgumentParser
import Distillation
import DistilleryData
import DistilleryModel
import DistilleryTensor
import DistilleryTraining
import Foundation
import WeightIO

/// Where the teacher's hidden states come from during distillation.
enum TeacherStatesMode: String, ExpressibleByArgument, CaseIterable {
    case auto, cache, online
}

/// Teacher hidden states read from a label cache, padded to each batch.
final class CachedTeacherStates: TeacherStates {
    let cache: LabelCache
    let hiddenSize: Int
    init(cache: LabelCache) {
        self.cache = cache
        hiddenSize = cache.settings.hiddenSize
    }

    func states(rows: ArraySlice<Int>, batch: EncoderBatch, hidden: [Int], scores: [Int]) throws
        -> (hidden: [Int: [Float]], scores: [Int: [Float]]) {
        precondition(scores.isEmpty, "CachedTeacherStates: attention scores are not cached")
        let T = batch.sequenceLength, H = hiddenSize, examples = Array(rows)
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

/// A student's HF config.json: the teacher's, with the student's sizes and the task's labels.
func studentConfigJSON(teacherJSON: String, student: BertConfig, labels: [String]) throws -> String {
    guard var object = try? JSONSerialization.jsonObject(with: Data(teacherJSON.utf8)) as? [String: Any] else {
        throw CLIError("the teacher's config_json is not a JSON object — re-import the teacher")
    }
    object["hidden_size"] = student.hiddenSize
    object["num_hidden_layers"] = student.layerCount
    object["num_attention_heads"] = student.headCount
    object["intermediate_size"] = student.intermediateSize
    object["distillery_layer_heads"] = nil
    object["distillery_layer_intermediate_sizes"] = nil
    if Set(student.layerHeads) != [student.headCount] { object["distillery_layer_heads"] = student.layerHeads }
    if Set(student.layerIntermediateSizes) != [student.intermediateSize] {
        object["distillery_layer_intermediate_sizes"] = student.layerIntermediateSizes
    }
    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    return try classifierConfigJSON(String(decoding: data, as: UTF8.self), labels: labels)
}

/// Loss weights from a `--losses` value: `kind=weight` pairs separated by commas.
func parseLossWeights(_ text: String) throws -> LossWeights {
    var weights: [LossKind: Double] = [:]
    for item in text.split(separator: ",") {
        let kv = item.split(separator: "=")
        guard kv.count == 2, let kind = LossKind(rawValue: String(kv[0])), let w = Double(kv[1]), w >= 0, w.isFinite else {
            throw CLIError("--losses '\(text)': '\(item)' is not kind=weight with a weight ≥ 0 (kinds: \(LossKind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        weights[kind] = w
    }
    guard weights.values.contains(where: { $0 > 0 }) else {
        throw CLIError("--losses '\(text)' turns every loss off — give at least one weight > 0")
    }
    return LossWeights(weights)
}

/// A student spec and its plan against `teacher` (loss weights replaced when `losses` is
/// given), with errors as CLI errors.
func loadPlan(studentPath: String, teacher: TeacherSource, classes: Int, losses: LossWeights? = nil,
              epochs: String? = nil) throws -> DistillationPlan {
    guard FileManager.default.fileExists(atPath: studentPath) else {
        throw CLIError("\(studentPath): no such student spec — see students/*.json (e.g. students/distil-l3-h384.json)")
    }
    do {
        var spec = try StudentSpec(contentsOf: URL(fileURLWithPath: studentPath))
        if let epochs {
            let counts = epochs.split(separator: ",").map { Int($0) }
            switch (spec.schedule, counts.count) {
            case (.oneStage, 1):
                guard let n = counts[0], n >= 1 else { throw CLIError("--epochs '\(epochs)' must be a whole number ≥ 1") }
                spec.schedule = .oneStage(epochs: n)
            case (.twoStage, 2):
                guard let a = counts[0], let b = counts[1], a >= 1, b >= 1 else {
                    throw CLIError("--epochs '\(epochs)' must be two whole numbers ≥ 1 (intermediate,prediction)")
                }
                spec.schedule = .twoStage(intermediateEpochs: a, predictionEpochs: b)
            case (.oneStage, _):
                throw CLIError("--epochs '\(epochs)': \(studentPath) has a one-stage schedule — give one number of epochs")
            case (.twoStage, _):
                throw CLIError("--epochs '\(epochs)': \(studentPath) has a two-stage schedule — give intermediate,prediction epochs, e.g. 4,3")
            }
        }
        if let losses {
            spec.losses = losses
            if case .twoStage = spec.schedule,
               !(losses.active.contains(where: \.isPrediction) && losses.active.contains(where: { !$0.isPrediction })) {
                throw CLIError("--losses: \(studentPath) has a two-stage schedule, which needs an intermediate loss (stage 1) and a prediction loss (stage 2) — use a one-stage student for this ablation")
            }
        }
        return try DistillationPlan(spec: spec, teacher: teacher.config, classes: classes)
    } catch let error as DistillationError {
        throw CLIError(losses == nil ? error.description : "\(error.description) (with --losses)")
    }
}

// MARK: - kd distill

struct Distill: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Distil a fine-tuned teacher into a student described by students/*.json.",
        discussion: """
        Validates and prints the plan (which student layer learns from which teacher layer, through
        which projection, with which losses), checks that --labels was made from --teacher and --data,
        then trains with AdamW (each stage: warm-up, then linear decay), evaluates on dev and writes the
        best student (dev macro-F1) to --out. Checkpoints go to --checkpoint (default: OUT with
        .ckpt.h5); --resume CKPT continues a run exactly. Flags override the spec's "training" values.
        """)

    @Option(help: "Fine-tuned teacher model (.h5) the label cache was made with.") var teacher: String
    @Option(help: "Student spec (students/*.json).") var student: String
    @Option(help: "Soft-label cache made by 'kd label' from --teacher and --data.") var labels: String
    @Option(help: "Prepared dataset folder (dev split for model selection).") var data: String
    @Option(help: "Output student model file (.h5).") var out: String
    @Option(help: "Peak learning rate (default: the spec's, else 5e-5).") var lr: Double?
    @Option(help: "Examples per optimizer step (default: the spec's, else 32).") var batch: Int?
    @Option(help: "Warm-up fraction of each stage's steps (default: the spec's, else 0.1).") var warmup: Double?
    @Option(name: .customLong("weight-decay"), help: "AdamW decoupled weight decay.") var weightDecay = 0.01
    @Option(help: "Clip the global gradient norm to this (0 = off).") var clip = 1.0
    @Option(name: .customLong("eval-every"), help: "Evaluate on dev every N steps (default: once per epoch).") var evalEvery: Int?
    @Option(name: .customLong("checkpoint-every"), help: "Write a checkpoint every N steps (default: at each evaluation).") var checkpointEvery: Int?
    @Option(help: "Checkpoint file (default: OUT with .ckpt.h5).") var checkpoint: String?
    @Option(help: "Epochs replacing the spec's schedule: N (one-stage) or intermediate,prediction (two-stage).") var epochs: String?
    @Option(name: .customLong("max-steps"), help: "Stop after this many optimizer steps (the learning-rate schedule stays the full run's).") var maxSteps: Int?
    @Option(name: .customLong("teacher-states"), help: "Teacher hidden states: auto (cache if it has them), cache, or online.")
    var teacherStates: TeacherStatesMode = .auto
    @Option(help: "Loss weights replacing the spec's, e.g. hard_ce=1 or soft_ce=5,hard_ce=2 (ablations).") var losses: String?
    @Option(help: "Seed of data order, dropout and random initialisation (default: the spec's, else 13).") var seed: UInt64?
    @Option(help: "Continue from this checkpoint (same teacher, student, labels and flags).") var resume: String?
    @Flag(name: .customLong("plan-only"), help: "Print the plan and the checks, then stop.") var planOnly = false
    @Option(name: .customLong("debug-pause-after-step"), help: .hidden) var pauseAfterStep: Int?
    @OptionGroup var threads: ThreadOptions

    var checkpointPath: String {
        checkpoint ?? (out.hasSuffix(".h5") ? String(out.dropLast(3)) : out) + ".ckpt.h5"
    }

    func run() throws {
        try threads.apply()
        if let lr, !(lr > 0 && lr.isFinite) { throw CLIError("--lr \(lr) must be a positive number") }
        if let batch, batch < 1 { throw CLIError("--batch \(batch) must be at least 1") }
        if let warmup, !(warmup >= 0 && warmup < 1) { throw CLIError("--warmup \(warmup) must be a fraction in [0, 1)") }
        guard weightDecay >= 0, weightDecay.isFinite else { throw CLIError("--weight-decay \(weightDecay) must be ≥ 0") }
        guard clip >= 0, clip.isFinite else { throw CLIError("--clip \(clip) must be ≥ 0 (0 turns clipping off)") }
        if let evalEvery, evalEvery < 1 { throw CLIError("--eval-every \(evalEvery) must be at least 1") }
        if let checkpointEvery, checkpointEvery < 0 { throw CLIError("--checkpoint-every \(checkpointEvery) must be ≥ 0") }
        if let maxSteps, maxSteps < 1 { throw CLIError("--max-steps \(maxSteps) must be at least 1") }
        if !planOnly {
            try checkOutputPath(out, flag: "--out")
            try checkOutputPath(checkpointPath, flag: "--checkpoint")
            guard URL(fileURLWithPath: checkpointPath).standardizedFileURL != URL(fileURLWithPath: out).standardizedFileURL else {
                throw CLIError("--checkpoint and --out are the same file (\(out)) — give them different paths")
            }
        }
        if let resume, !FileManager.default.fileExists(atPath: resume) {
            throw CLIError("\(resume): no such checkpoint — --resume takes the .ckpt.h5 file of an earlier run")
        }

        // Teacher, student plan, data, cache: all checked before any training.
        let source = try TeacherSource(path: teacher)
        let teacherLabels = source.config.labels
        guard teacherLabels.count >= 2 else {
            throw CLIError("\(teacher): the teacher has no classifier head — fine-tune it first (kd finetune), then label with it (kd label)")
        }
        let plan = try loadPlan(studentPath: student, teacher: source, classes: teacherLabels.count,
                                losses: try losses.map(parseLossWeights), epochs: epochs)
        print(plan.description)
        let folder = try PreparedFolder(path: data)
        guard folder.manifest.labels == teacherLabels else {
            throw CLIError("\(data): the dataset's labels (\(folder.manifest.labels.joined(separator: ", "))) differ from the teacher's (\(teacherLabels.joined(separator: ", "))) — distil on the data the teacher was fine-tuned on")
        }
        guard FileManager.default.fileExists(atPath: labels) else {
            throw CLIError("\(labels): no such label cache — make it with 'kd label --teacher \(teacher) --data \(data) --out \(labels)'")
        }
        let cache: LabelCache
        do {
            cache = try LabelCache.open(URL(fileURLWithPath: labels))
            try cache.verify(teacherSHA256: try fileSHA256(teacher), teacherFile: teacher,
                             dataSHA256: try labelDataSHA256(folder), dataFile: "\(data) (train.jsonl + manifest.json)")
        } catch let error as CLIError { throw error } catch { throw CLIError(file: labels, error) }
        guard cache.shard.count == 1 else {
            throw CLIError("\(labels): is shard \(cache.shard.index)/\(cache.shard.count) of a cache — merge the shards first (kd label merge)")
        }
        let devRows = try folder.read(.dev)
        guard !devRows.isEmpty else { throw CLIError("\(folder.filePath(.dev)): no examples — distillation keeps the best student by dev macro-F1") }
        let devLabels = try labelIndices(devRows, labels: teacherLabels, file: folder.filePath(.dev), known: "the teacher")
        let maxLength = cache.settings.maxLength
        let dev = zip(devRows, devLabels).map { TrainingExample(ids: source.tokenizer.encode($0.text, maxLength: maxLength).ids, label: $1) }

        let initial: InitializedStudent
        let teacherTensors = Dictionary(uniqueKeysWithValues: source.file.tensors.map { ($0.name, $0.tensor) })
        let runSeed = seed ?? plan.spec.training.seed ?? 13
        do { initial = try initializeStudent(plan: plan, teacherTensors: teacherTensors, seed: runSeed) } catch {
            throw CLIError("\(student): \(error.description)")
        }
        let allLosses = Set(plan.stages.flatMap(\.losses))
        let examples = try (0..<cache.exampleCount).chunked(8192).flatMap { chunk -> [TrainingExample] in
            let ids = try cache.tokenIDs(examples: chunk)
            return zip(ids, chunk).map { TrainingExample(ids: $0, label: cache.labels[$1]) }
        }
        let teacherLogits = try (0..<cache.exampleCount).chunked(8192).flatMap { try cache.fullLogits(examples: $0) }
        let perEpoch = Trainer.stepsPerEpoch(examples: examples.count, batchSize: batch ?? plan.spec.training.batchSize ?? 32)
        let schedule = StagedSchedule(stages: plan.stages, stepsPerEpoch: perEpoch, peakRate: lr ?? plan.spec.training.learningRate ?? 5e-5,
                                      warmupRatio: warmup ?? plan.spec.training.warmupRatio ?? 0.1)
        // Teacher hidden states: from the cache when it holds every layer the plan needs.
        let needs = plan.teacherNeeds(allLosses)
        let cached = Set(cache.settings.hiddenLayers)
        let cacheHasAll = needs.scores.isEmpty && needs.hidden.allSatisfy(cached.contains)
        var statesNote = "teacher hidden states: none needed"
        var states: TeacherStates?
        if !needs.hidden.isEmpty || !needs.scores.isEmpty {
            if teacherStates == .cache && !cacheHasAll {
                throw CLIError("\(labels): --teacher-states cache, but the plan needs teacher hidden states \(needs.hidden)\(needs.scores.isEmpty ? "" : " and attention scores of layers \(needs.scores.map { $0 + 1 })") and the cache holds hidden states \(cache.settings.hiddenLayers.sorted()) — re-label with --hidden \(needs.hidden.map(String.init).joined(separator: ",")), or use --teacher-states online")
            }
            if teacherStates != .online && cacheHasAll {
                states = CachedTeacherStates(cache: cache)
                statesNote = "teacher hidden states \(needs.hidden): read from \(labels)"
            } else {
                do { states = try OnlineTeacher(config: source.config, classes: teacherLabels.count, tensors: teacherTensors) } catch {
                    throw CLIError(file: teacher, error)
                }
                statesNote = "teacher hidden states \(needs.hidden)\(needs.scores.isEmpty ? "" : ", attention scores of layers \(needs.scores.map { $0 + 1 })"): teacher run online on each batch (the cache holds \(cache.settings.hiddenLayers.isEmpty ? "logits only" : "hidden states \(cache.settings.hiddenLayers.sorted())"))"
            }
        }
        let objective = try DistillationObjective(plan: plan, examples: examples, teacherLogits: teacherLogits, teacherStates: states,
                                              schedule: schedule, paddingId: source.tokenizer.paddingId, seed: runSeed)
        let augmented = cache.copies.filter { $0 > 0 }.count
        print("training data: \(examples.count) cached examples (\(examples.count - augmented) original, \(augmented) augmented, soft labels only), max length \(maxLength); dev \(dev.count)")
        print(statesNote)
        fflush(nil)   // the plan (stdout) before the progress lines on stderr
        if planOnly { return }

        // The run's identity for checkpoints: the initial student and the recipe, the cache and the data.
        let total = min(maxSteps ?? Int.max, schedule.totalSteps)
        let evalEvery = self.evalEvery ?? perEpoch
        let initialBlock: ParameterBlock
        do { initialBlock = try ParameterBlock(layout: plan.layout, tensors: initial.allTensors) } catch { throw CLIError("\(student): \(error)") }
        let identity = [cache.settings.teacherSHA256, cache.settings.dataSHA256, String(cache.exampleCount),
                        SHA256.hex(try folder.bytes(.dev)), plan.description].joined(separator: "\n")
        let config = TrainingConfig(
            modelFingerprint: modelFingerprint(tensors: initialBlock.tensors, configText: plan.description),
            dataSHA256: SHA256.hex(Data(identity.utf8)), labels: teacherLabels, trainExamples: examples.count,
            devExamples: dev.count, epochs: plan.stages.reduce(0) { $0 + $1.epochs }, totalSteps: total,
            batchSize: batch ?? plan.spec.training.batchSize ?? 32, maxLength: maxLength, learningRate: schedule.peakRate,
            warmupSteps: Int((Double(schedule.stages[0].steps) * schedule.warmupRatio).rounded(.up)), schedule: .linear,
            weightDecay: weightDecay, clipNorm: clip, evalEvery: evalEvery, seed: runSeed, dropout: objective.dropout,
            modelPath: student, dataPath: labels, threads: threads.threads)
        var state = try startingState(resume: resume, layout: plan.layout, config: config, initial: initialBlock, threads: threads.threads)

        var trainer = Trainer(model: objective.student, config: config, train: examples, dev: dev, paddingId: source.tokenizer.paddingId,
                              checkpointURL: URL(fileURLWithPath: checkpointPath), checkpointEvery: checkpointEvery ?? evalEvery)
        trainer.objective = objective
        trainer.learningRate = { [schedule] in schedule.rate(at: $0) }
        trainer.evaluateFromStep = min(schedule.firstPredictionStep, total - 1)
        let progress = ProgressReporter(total: total, epochs: (total + perEpoch - 1) / perEpoch)
        progress.line("distilling \(teacher) into \(plan.spec.name) (\(plan.studentParameterCount) parameters): \(examples.count) examples, \(total) steps of \(config.batchSize) (\(perEpoch) per epoch), \(threads.threads) thread(s)")
        var stageShown = -1
        let last = try runTraining(trainer, state: &state, progress: progress, pauseAfterStep: pauseAfterStep) { report in
            let stage = schedule.stageIndex(at: report.step - 1)
            if stage != stageShown, schedule.stages.count > 1 {
                stageShown = stage
                let s = schedule.stages[stage].stage
                progress.line("stage \(stage + 1)/\(schedule.stages.count) (\(s.name)): \(s.losses.map(\.rawValue).joined(separator: ", "))")
            }
        }

        guard let best = state.best else { throw CLIError("no dev evaluation was made — nothing to write") }
        let studentCount = objective.student.layout.totalCount
        var bestBlock = ParameterBlock(zeros: objective.student.layout)
        bestBlock.storage = Array(best.storage.prefix(studentCount))
        let output = TeacherFile(tensors: bestBlock.tensors,
                                 configJSON: try studentConfigJSON(teacherJSON: source.file.configJSON, student: plan.student, labels: teacherLabels),
                                 vocabulary: source.file.vocabulary, pooling: source.file.pooling, normalize: source.file.normalize,
                                 tokenizerOptionsJSON: source.file.tokenizerOptionsJSON, labelsJSON: jsonArray(teacherLabels))
        do { try output.write(to: URL(fileURLWithPath: out)) } catch { throw CLIError(file: out, error) }
        printTrainingTime(last)
        print(String(format: "best dev macro-F1 %.4f (accuracy %.4f) at step %d → %@ (%d parameters)", best.macroF1, best.accuracy,
                     best.step, out, studentCount))
    }
}

extension Range where Bound == Int {
    /// The range cut into consecutive arrays of at most `size` elements.
    func chunked(_ size: Int) -> [[Int]] {
        stride(from: lowerBound, to: upperBound, by: size).map { Array($0..<Swift.min($0 + size, upperBound)) }
    }
}
