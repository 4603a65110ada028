// Checkpoint: the state of a training run and its configuration, and their conversion to
// and from the checkpoint file (WeightIO.CheckpointFile, format "distillery-checkpoint").
//
// A checkpoint holds everything a run needs to continue bit for bit: weights, AdamW
// moments, step, the current epoch's data order and the best model so far. The dropout RNG
// is counter-based (`DropoutRNG`): (seed, step) is its whole state. Reading checks that
// the stored parameters are this model's, tensor by tensor; resuming compares the run's
// configuration field by field (`TrainingConfig.checkResumable`).
import DistilleryJSON
import DistilleryModel
import DistilleryTensor
import Foundation
import WeightIO

/// An error of the training engine: what was wrong, and what to do.
public struct TrainingError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public let hint: String
    public init(_ message: String, hint: String) {
        self.message = message
        self.hint = hint
    }
    public var description: String { "\(message) — \(hint)" }
}

/// The full configuration of a fine-tuning run. A checkpoint records it; resuming compares
/// every field except the ones that cannot change the weights (`ignoredOnResume`).
public struct TrainingConfig: Codable, Sendable, Equatable {
    /// Fingerprint of the starting weights and their config (see `modelFingerprint`).
    public var modelFingerprint: String
    /// sha256 of the dataset's manifest, train and dev files, concatenated digests hashed.
    public var dataSHA256: String
    /// Class names, index = classifier row.
    public var labels: [String]
    public var trainExamples: Int
    public var devExamples: Int
    public var epochs: Int
    /// Optimizer steps of the whole run (epochs × batches per epoch, or --max-steps).
    public var totalSteps: Int
    public var batchSize: Int
    public var maxLength: Int
    public var learningRate: Double
    public var warmupSteps: Int
    public var schedule: String
    public var weightDecay: Double
    /// Maximum global gradient norm (0 = no clipping).
    public var clipNorm: Double
    /// Evaluate on dev every this many steps (and at the last step).
    public var evalEvery: Int
    public var seed: UInt64
    public var hiddenDropout: Float
    public var attentionDropout: Float
    public var classifierDropout: Float
    /// How the classifier head started: nil for a fresh random head, "probe" for a head
    /// fitted on the frozen encoder's features first (LP-FT). Optional so that checkpoints
    /// written before the field existed read as random.
    public var headInit: String?
    /// Informational: where the model and data came from, and the thread count.
    public var modelPath: String
    public var dataPath: String
    public var threads: Int

    /// Fields that may differ on resume: paths (files move) and threads (bits may then differ, a warning).
    public static let ignoredOnResume: Set<String> = ["model_path", "data_path", "threads"]

    enum CodingKeys: String, CodingKey {
        case modelFingerprint = "model_fingerprint", dataSHA256 = "data_sha256", labels
        case trainExamples = "train_examples", devExamples = "dev_examples", epochs
        case totalSteps = "total_steps", batchSize = "batch_size", maxLength = "max_length"
        case learningRate = "learning_rate", warmupSteps = "warmup_steps", schedule
        case weightDecay = "weight_decay", clipNorm = "clip_norm", evalEvery = "eval_every", seed
        case hiddenDropout = "hidden_dropout", attentionDropout = "attention_dropout"
        case classifierDropout = "classifier_dropout", modelPath = "model_path", dataPath = "data_path", threads
        case headInit = "head_init"
    }

    public init(modelFingerprint: String, dataSHA256: String, labels: [String], trainExamples: Int, devExamples: Int,
                epochs: Int, totalSteps: Int, batchSize: Int, maxLength: Int, learningRate: Double, warmupSteps: Int,
                schedule: LearningRateSchedule.Decay, weightDecay: Double, clipNorm: Double, evalEvery: Int,
                seed: UInt64, dropout: DropoutRates, modelPath: String, dataPath: String, threads: Int,
                headInit: String? = nil) {
        self.modelFingerprint = modelFingerprint
        self.dataSHA256 = dataSHA256
        self.labels = labels
        self.trainExamples = trainExamples
        self.devExamples = devExamples
        self.epochs = epochs
        self.totalSteps = totalSteps
        self.batchSize = batchSize
        self.maxLength = maxLength
        self.learningRate = learningRate
        self.warmupSteps = warmupSteps
        self.schedule = schedule.rawValue
        self.weightDecay = weightDecay
        self.clipNorm = clipNorm
        self.evalEvery = evalEvery
        self.seed = seed
        hiddenDropout = dropout.hidden
        attentionDropout = dropout.attention
        classifierDropout = dropout.classifier
        self.modelPath = modelPath
        self.dataPath = dataPath
        self.threads = threads
        self.headInit = headInit
    }

    public var dropout: DropoutRates { DropoutRates(hidden: hiddenDropout, attention: attentionDropout, classifier: classifierDropout) }
    public var learningRateSchedule: LearningRateSchedule {
        LearningRateSchedule(peakRate: learningRate, warmupSteps: warmupSteps, totalSteps: totalSteps,
                             decay: LearningRateSchedule.Decay(rawValue: schedule) ?? .linear)
    }
    public var adamSettings: AdamWSettings { AdamWSettings(weightDecay: weightDecay) }

    /// Compact JSON with sorted keys (the same config always gives the same text).
    public var json: String { (try? JSONCoding.string(self)) ?? "" }

    /// Each field as its JSON text, by key.
    var fieldTexts: [String: String] {
        guard let object = (try? JSONValue.parse(json))?.objectValue else { return [:] }
        return object.mapValues { (try? JSONCoding.string($0)) ?? "" }
    }

    /// Fields (other than `ignoredOnResume`) whose values differ: (key, this value, other value), sorted by key.
    public func differences(from other: TrainingConfig) -> [(field: String, mine: String, theirs: String)] {
        let a = fieldTexts, b = other.fieldTexts
        return Set(a.keys).union(b.keys).subtracting(Self.ignoredOnResume).sorted().compactMap { key in
            let x = a[key] ?? "(absent)", y = b[key] ?? "(absent)"
            return x == y ? nil : (key, x, y)
        }
    }

    /// Throws a clear error when a checkpoint's config (`self`) cannot be resumed with `current`.
    public func checkResumable(with current: TrainingConfig, checkpoint path: String) throws(TrainingError) {
        if modelFingerprint != current.modelFingerprint {
            throw TrainingError("\(path): the checkpoint comes from another model (model_fingerprint \(modelFingerprint), --model \(current.modelPath) has \(current.modelFingerprint); the checkpoint was started from \(modelPath))",
                                hint: "resume with the --model the run was started from, or start a new run without --resume")
        }
        let diffs = differences(from: current)
        guard let first = diffs.first else { return }
        let list = diffs.map { "\($0.field): \($0.mine) in the checkpoint, \($0.theirs) now" }.joined(separator: "; ")
        throw TrainingError("\(path): cannot resume with a different training config (\(first.field) differs) — \(list)",
                            hint: "resume with the same flags and data as the original run, or start a new run without --resume")
    }
}

/// A 64-bit fingerprint (hex) of named tensors and a config text: names, shapes and every
/// float's bits. Not cryptographic; it tells models apart quickly (a MiniLM in ~30 ms).
public func modelFingerprint(tensors: [(name: String, tensor: Tensor)], configText: String) -> String {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    @inline(__always) func add(_ x: UInt64) { h = DropoutRNG.mix(h ^ x) &* 0x1000_0000_01B3 }
    for byte in configText.utf8 { add(UInt64(byte)) }
    for (name, tensor) in tensors.sorted(by: { $0.name < $1.name }) {
        for byte in name.utf8 { add(UInt64(byte) | 0x100) }
        for d in tensor.shape { add(UInt64(d) | 0x1_0000_0000) }
        tensor.data.withUnsafeBufferPointer { p in
            var i = 0
            while i + 1 < p.count {
                add(UInt64(p[i].bitPattern) | (UInt64(p[i + 1].bitPattern) << 32))
                i += 2
            }
            if i < p.count { add(UInt64(p[i].bitPattern)) }
        }
    }
    return String(h, radix: 16)
}

/// One epoch's batches: example indices back to back, and where each batch starts.
public struct EpochOrder: Sendable, Equatable {
    /// The epoch this order belongs to (0-based).
    public var epoch: Int
    /// Example indices in batch order.
    public var indices: [Int]
    /// Batch b is `indices[offsets[b]..<offsets[b + 1]]`; `offsets.count` = batches + 1.
    public var offsets: [Int]
    public var batchCount: Int { offsets.count - 1 }
    public init(epoch: Int, indices: [Int], offsets: [Int]) {
        self.epoch = epoch
        self.indices = indices
        self.offsets = offsets
    }

    /// Checks an order read from a file before anything is indexed with it: every example
    /// of the epoch exactly once (`eachOnce`; else any indices in range, as multi-task
    /// sampling repeats and skips examples), `batches` batches whose offsets run from 0 to
    /// the end without going back.
    public func validate(examples: Int, batches: Int, eachOnce: Bool = true) throws(TrainingError) {
        let hint = "the checkpoint does not match this dataset or is damaged; start a new run"
        guard epoch >= 0, !eachOnce || indices.count == examples, offsets.count == batches + 1 else {
            throw TrainingError("the saved data order of epoch \(epoch) has \(indices.count) examples in \(offsets.count - 1) batches, this run has \(examples) in \(batches)", hint: hint)
        }
        guard offsets.first == 0, offsets.last == indices.count, zip(offsets, offsets.dropFirst()).allSatisfy({ $0 <= $1 }) else {
            throw TrainingError("the saved data order's batch offsets do not run from 0 to \(indices.count) in order", hint: hint)
        }
        var seen = [Bool](repeating: false, count: examples)
        for i in indices {
            guard i >= 0, i < examples, !eachOnce || !seen[i] else {
                throw TrainingError("the saved data order names example \(i) \(i >= 0 && i < examples ? "twice" : "outside 0..<\(examples)")", hint: hint)
            }
            seen[i] = true
        }
    }
}

/// The best model seen so far (by dev macro-F1).
public struct BestModel: Sendable, Equatable {
    public var step: Int
    public var macroF1: Double
    public var accuracy: Double
    /// The parameter block at that step.
    public var storage: [Float]
}

/// Everything that changes while training: weights, optimizer, position, best model.
public struct TrainingState: Sendable {
    public var parameters: ParameterBlock
    public var optimizer: AdamW
    /// Optimizer steps completed.
    public var step: Int
    /// The current epoch's batches (nil before the first step of a fresh run).
    public var order: EpochOrder?
    public var best: BestModel?

    /// A fresh state: step 0, zero moments.
    public init(parameters: ParameterBlock, adam: AdamWSettings) {
        self.parameters = parameters
        optimizer = AdamW(layout: parameters.layout, settings: adam)
        step = 0
    }
}

/// A training checkpoint: the run's config and its state.
public struct TrainingCheckpoint {
    public var config: TrainingConfig
    public var state: TrainingState

    public init(config: TrainingConfig, state: TrainingState) {
        self.config = config
        self.state = state
    }

    /// The learning-rate schedule as stored beside the config (informational).
    private struct ScheduleRecord: Encodable {
        var decay: String
        var peakRate: Double
        var totalSteps: Int
        var warmupSteps: Int
        enum CodingKeys: String, CodingKey {
            case decay, peakRate = "peak_rate", totalSteps = "total_steps", warmupSteps = "warmup_steps"
        }
    }

    /// Writes the checkpoint through a temporary sibling renamed on success.
    public func write(to url: URL) throws {
        let schedule = config.learningRateSchedule
        let scheduleJSON = try JSONCoding.string(ScheduleRecord(decay: schedule.decay.rawValue, peakRate: schedule.peakRate,
                                                                totalSteps: schedule.totalSteps, warmupSteps: schedule.warmupSteps))
        try CheckpointFile(
            trainingConfigJSON: config.json, scheduleJSON: scheduleJSON, step: state.step, adamStep: state.optimizer.step,
            rngSeed: config.seed, parameters: state.parameters.tensors,
            firstMoment: state.optimizer.firstMoment.storage, secondMoment: state.optimizer.secondMoment.storage,
            order: state.order.map { CheckpointFile.Order(epoch: $0.epoch, indices: $0.indices, offsets: $0.offsets) },
            best: state.best.map { CheckpointFile.Best(step: $0.step, macroF1: $0.macroF1, accuracy: $0.accuracy, storage: $0.storage) }
        ).write(to: url)
    }

    /// Reads a checkpoint whose parameters must have `layout` (else: "another model").
    public static func read(_ url: URL, layout: ParameterLayout) throws -> TrainingCheckpoint {
        let path = url.relativePath
        let anotherModel = "resume with the --model and --data the run was started from"
        let file = try CheckpointFile.read(url) { stored in
            let expected = Set(layout.entries.map(\.name))
            if stored != expected {
                let missing = expected.subtracting(stored).sorted(), extra = stored.subtracting(expected).sorted()
                throw TrainingError("\(path): the checkpoint comes from another model (its tensors differ: \(missing.count) missing, e.g. \(missing.first ?? "-"); \(extra.count) unexpected, e.g. \(extra.first ?? "-"))",
                                    hint: anotherModel)
            }
            return layout.entries.map(\.name)
        }
        let config: TrainingConfig
        do { config = try JSONCoding.decode(TrainingConfig.self, from: file.trainingConfigJSON) } catch {
            throw TrainingError("\(path): training_config_json is unreadable (\(error))", hint: "the checkpoint is damaged; start a new run")
        }
        // The parameters must match the model being resumed, tensor by tensor.
        var parameters = ParameterBlock(zeros: layout)
        for (e, (_, t)) in zip(layout.entries, file.parameters) {
            guard t.shape == e.shape else {
                throw TrainingError("\(path): the checkpoint comes from another model ('\(e.name)' is \(t.shape), this model's is \(e.shape))",
                                    hint: anotherModel)
            }
            parameters.storage.replaceSubrange(e.range, with: t.data)
        }
        func block(_ name: String, _ values: [Float]) throws -> [Float] {
            guard values.count == layout.totalCount else {
                throw TrainingError("\(path): '\(name)' has \(values.count) values, expected \(layout.totalCount)", hint: "the checkpoint is damaged; start a new run")
            }
            return values
        }
        var state = TrainingState(parameters: parameters, adam: config.adamSettings)
        state.optimizer.firstMoment.storage = try block("__adam_m__", file.firstMoment)
        state.optimizer.secondMoment.storage = try block("__adam_v__", file.secondMoment)
        state.optimizer.step = file.adamStep
        state.step = file.step
        state.order = file.order.map { EpochOrder(epoch: $0.epoch, indices: $0.indices, offsets: $0.offsets) }
        if let best = file.best {
            state.best = BestModel(step: best.step, macroF1: best.macroF1, accuracy: best.accuracy, storage: try block("__best__", best.storage))
        }
        guard state.step >= 0, state.step <= config.totalSteps else {
            throw TrainingError("\(path): step \(state.step) is outside the run's \(config.totalSteps) steps", hint: "the checkpoint is damaged; start a new run")
        }
        return TrainingCheckpoint(config: config, state: state)
    }
}
