// Checkpoint: everything a fine-tuning run needs to continue bit for bit, in one HDF5 file
// (format "distillery-checkpoint", version 1).
//
// Layout:
//   /<HF PyTorch key>       float32, the current parameters, one dataset per tensor (so the
//                           weights load like any flat HF-named HDF5 file; `kd import` skips
//                           the `__…__` datasets below)
//   /__adam_m__, /__adam_v__  float32 [N]: AdamW's moments as the contiguous parameter block
//   /__best__               float32 [N]: the best parameters so far (by dev macro-F1), if any
//   /__data_order__         int64: the current epoch's example order (batches back to back)
//   /__batch_offsets__      int64: where each batch of that order starts (+ the end)
//   root attributes         format, format_version, training_config_json (the full
//                           `TrainingConfig`: model fingerprint, data sha256, hyper-parameters),
//                           schedule_json, step, adam_step, rng_seed (decimal string),
//                           order_epoch, best_step, best_macro_f1, best_accuracy
// The dropout RNG is counter-based (`DropoutRNG`): (seed, step) is its whole state. Written
// to a temporary sibling and renamed, so a crash or SIGKILL never leaves a partial file
// under the checkpoint's name. Left out on purpose: keeping several checkpoints (one file,
// replaced) and compression (weights and moments do not compress).
import DistilleryJSON
import DistilleryModel
import DistilleryTensor
import Foundation
import WeightIO
#if canImport(Glibc)
import Glibc
#endif

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
    /// Value of the `format` attribute.
    public static let formatName = "distillery-checkpoint"
    /// The version this build reads and writes.
    public static let formatVersion = 1

    public var config: TrainingConfig
    public var state: TrainingState

    public init(config: TrainingConfig, state: TrainingState) {
        self.config = config
        self.state = state
    }

    /// Writes the checkpoint through a temporary sibling renamed on success.
    public func write(to url: URL) throws {
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).partial-\(getpid())")
        do {
            let file = try HDF5File.create(temporary)
            try file.setAttribute("format", string: Self.formatName)
            try file.setAttribute("format_version", int: Self.formatVersion)
            try file.setAttribute("training_config_json", string: config.json)
            let schedule = config.learningRateSchedule
            try file.setAttribute("schedule_json", string: "{\"decay\":\"\(schedule.decay.rawValue)\",\"peak_rate\":\(schedule.peakRate),\"total_steps\":\(schedule.totalSteps),\"warmup_steps\":\(schedule.warmupSteps)}")
            try file.setAttribute("step", int: state.step)
            try file.setAttribute("adam_step", int: state.optimizer.step)
            try file.setAttribute("rng_seed", string: String(config.seed))
            for (name, tensor) in state.parameters.tensors { try file.writeTensor(tensor, at: name) }
            let n = state.parameters.layout.totalCount
            try file.writeTensor(Tensor(shape: [n], data: state.optimizer.firstMoment.storage), at: "__adam_m__")
            try file.writeTensor(Tensor(shape: [n], data: state.optimizer.secondMoment.storage), at: "__adam_v__")
            if let order = state.order {
                try file.setAttribute("order_epoch", int: order.epoch)
                try file.writeInt64s(order.indices.map(Int64.init), shape: [order.indices.count], at: "__data_order__")
                try file.writeInt64s(order.offsets.map(Int64.init), shape: [order.offsets.count], at: "__batch_offsets__")
            }
            if let best = state.best {
                try file.setAttribute("best_step", int: best.step)
                try file.setAttribute("best_macro_f1", double: best.macroF1)
                try file.setAttribute("best_accuracy", double: best.accuracy)
                try file.writeTensor(Tensor(shape: [n], data: best.storage), at: "__best__")
            }
            try file.close()
            guard rename(temporary.path, url.path) == 0 else {
                throw TrainingError("\(url.path): cannot move the checkpoint into place (\(String(cString: strerror(errno))))",
                                    hint: "check that the destination is writable and not a directory")
            }
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
    }

    /// True when `url` is an HDF5 file whose `format` says it is a checkpoint.
    public static func isCheckpoint(_ url: URL) -> Bool {
        guard let file = try? HDF5File.open(url) else { return false }
        return (try? file.stringAttribute("format")) == formatName
    }

    /// Reads a checkpoint whose parameters must have `layout` (else: "another model").
    public static func read(_ url: URL, layout: ParameterLayout) throws -> TrainingCheckpoint {
        let path = url.relativePath
        let file = try HDF5File.open(url)
        let format = file.hasAttribute("format") ? try file.stringAttribute("format") : "(none)"
        guard format == formatName else {
            throw TrainingError("\(path): not a Distillery checkpoint (format \(format == "(none)" ? "attribute missing" : "'\(format)'"), expected '\(formatName)')",
                                hint: "--resume takes the .ckpt.h5 file a 'kd finetune' run wrote (see --checkpoint)")
        }
        let version = try file.intAttribute("format_version")
        guard version <= formatVersion else {
            throw TrainingError("\(path): checkpoint format_version \(version) is newer than this build reads (≤ \(formatVersion))",
                                hint: "resume with the kd version that wrote it")
        }
        let configText = try file.stringAttribute("training_config_json")
        let config: TrainingConfig
        do { config = try JSONCoding.decode(TrainingConfig.self, from: configText) } catch {
            throw TrainingError("\(path): training_config_json is unreadable (\(error))", hint: "the checkpoint is damaged; start a new run")
        }
        // The parameters must match the model being resumed, tensor by tensor.
        let stored = Set(try file.datasetPaths().filter { !$0.hasPrefix("__") })
        let expected = Set(layout.entries.map(\.name))
        if stored != expected {
            let missing = expected.subtracting(stored).sorted(), extra = stored.subtracting(expected).sorted()
            throw TrainingError("\(path): the checkpoint comes from another model (its tensors differ: \(missing.count) missing, e.g. \(missing.first ?? "-"); \(extra.count) unexpected, e.g. \(extra.first ?? "-"))",
                                hint: "resume with the --model and --data the run was started from")
        }
        var parameters = ParameterBlock(zeros: layout)
        for e in layout.entries {
            let t = try file.readTensor(e.name)
            guard t.shape == e.shape else {
                throw TrainingError("\(path): the checkpoint comes from another model ('\(e.name)' is \(t.shape), this model's is \(e.shape))",
                                    hint: "resume with the --model and --data the run was started from")
            }
            parameters.storage.replaceSubrange(e.range, with: t.data)
        }
        func block(_ name: String) throws -> [Float] {
            let t = try file.readTensor(name)
            guard t.count == layout.totalCount else {
                throw TrainingError("\(path): '\(name)' has \(t.count) values, expected \(layout.totalCount)", hint: "the checkpoint is damaged; start a new run")
            }
            return t.data
        }
        var state = TrainingState(parameters: parameters, adam: config.adamSettings)
        state.optimizer.firstMoment.storage = try block("__adam_m__")
        state.optimizer.secondMoment.storage = try block("__adam_v__")
        state.optimizer.step = try file.intAttribute("adam_step")
        state.step = try file.intAttribute("step")
        if file.hasAttribute("order_epoch") {
            state.order = EpochOrder(epoch: try file.intAttribute("order_epoch"),
                                     indices: try file.readInt64s("__data_order__").values.map { Int($0) },
                                     offsets: try file.readInt64s("__batch_offsets__").values.map { Int($0) })
        }
        if file.hasAttribute("best_step") {
            state.best = BestModel(step: try file.intAttribute("best_step"), macroF1: try file.doubleAttribute("best_macro_f1"),
                                   accuracy: try file.doubleAttribute("best_accuracy"), storage: try block("__best__"))
        }
        guard state.step >= 0, state.step <= config.totalSteps else {
            throw TrainingError("\(path): step \(state.step) is outside the run's \(config.totalSteps) steps", hint: "the checkpoint is damaged; start a new run")
        }
        return TrainingCheckpoint(config: config, state: state)
    }
}
