// CheckpointFile: the on-disk record of a training checkpoint — one HDF5 file (format
// "distillery-checkpoint", version 1) holding everything a run needs to continue bit for
// bit, as plain tensors, arrays and attributes. DistilleryTraining converts it to and from
// its training state (`TrainingCheckpoint`); this file only knows the format.
//
// Layout:
//   /<HF PyTorch key>       float32, the current parameters, one dataset per tensor (so the
//                           weights load like any flat HF-named HDF5 file; `kd import` skips
//                           the `__…__` datasets below)
//   /__adam_m__, /__adam_v__  float32 [N]: AdamW's moments as the contiguous parameter block
//   /__best__               float32 [N]: the best parameters so far (by dev macro-F1), if any
//   /__data_order__         int64: the current epoch's example order (batches back to back)
//   /__batch_offsets__      int64: where each batch of that order starts (+ the end)
//   root attributes         format, format_version, training_config_json (the run's full
//                           config), schedule_json, step, adam_step, rng_seed (decimal
//                           string), order_epoch, best_step, best_macro_f1, best_accuracy
// Written to a temporary sibling and renamed, so a crash or SIGKILL never leaves a partial
// file under the checkpoint's name. Left out on purpose: keeping several checkpoints (one
// file, replaced) and compression (weights and moments do not compress).
import DistilleryTensor
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A training checkpoint as stored: parameters, optimizer moments, position and best model.
public struct CheckpointFile {
    /// Value of the `format` attribute.
    public static let formatName = "distillery-checkpoint"
    /// The version this build reads and writes.
    public static let formatVersion = 1

    /// One epoch's batches: example indices back to back, and where each batch starts.
    public struct Order: Sendable {
        public var epoch: Int
        public var indices: [Int]
        public var offsets: [Int]
        /// An order of `indices` cut into batches at `offsets`, for `epoch`.
        public init(epoch: Int, indices: [Int], offsets: [Int]) {
            self.epoch = epoch
            self.indices = indices
            self.offsets = offsets
        }
    }

    /// The best parameters so far and their dev scores.
    public struct Best: Sendable {
        public var step: Int
        public var macroF1: Double
        public var accuracy: Double
        /// The parameter block at that step.
        public var storage: [Float]
        /// The best parameters `storage`, reached at `step` with these dev scores.
        public init(step: Int, macroF1: Double, accuracy: Double, storage: [Float]) {
            self.step = step
            self.macroF1 = macroF1
            self.accuracy = accuracy
            self.storage = storage
        }
    }

    /// The run's full training configuration as JSON.
    public var trainingConfigJSON: String
    /// The learning-rate schedule as JSON (informational).
    public var scheduleJSON: String
    /// Optimizer steps completed.
    public var step: Int
    /// AdamW's own step count (bias correction).
    public var adamStep: Int
    /// Seed of the counter-based dropout RNG ((seed, step) is its whole state).
    public var rngSeed: UInt64
    /// The current parameters by HF PyTorch name, in parameter-block order.
    public var parameters: [(name: String, tensor: Tensor)]
    /// AdamW's first and second moments as contiguous blocks.
    public var firstMoment: [Float]
    public var secondMoment: [Float]
    public var order: Order?
    public var best: Best?

    /// A record of these values.
    public init(trainingConfigJSON: String, scheduleJSON: String, step: Int, adamStep: Int, rngSeed: UInt64,
                parameters: [(name: String, tensor: Tensor)], firstMoment: [Float], secondMoment: [Float],
                order: Order?, best: Best?) {
        self.trainingConfigJSON = trainingConfigJSON
        self.scheduleJSON = scheduleJSON
        self.step = step
        self.adamStep = adamStep
        self.rngSeed = rngSeed
        self.parameters = parameters
        self.firstMoment = firstMoment
        self.secondMoment = secondMoment
        self.order = order
        self.best = best
    }

    /// Writes the checkpoint through a partial sibling, fsynced and renamed on success (OutputFile).
    public func write(to url: URL) throws {
        let output = OutputFile(url)
        do {
            let file = try HDF5File.create(output.temporaryURL)
            try file.setAttribute("format", string: Self.formatName)
            try file.setAttribute("format_version", int: Self.formatVersion)
            try file.setAttribute("training_config_json", string: trainingConfigJSON)
            try file.setAttribute("schedule_json", string: scheduleJSON)
            try file.setAttribute("step", int: step)
            try file.setAttribute("adam_step", int: adamStep)
            try file.setAttribute("rng_seed", string: String(rngSeed))
            for (name, tensor) in parameters { try file.writeTensor(tensor, at: name) }
            try file.writeTensor(Tensor(shape: [firstMoment.count], data: firstMoment), at: "__adam_m__")
            try file.writeTensor(Tensor(shape: [secondMoment.count], data: secondMoment), at: "__adam_v__")
            if let order {
                try file.setAttribute("order_epoch", int: order.epoch)
                try file.writeInt64s(order.indices.map(Int64.init), shape: [order.indices.count], at: "__data_order__")
                try file.writeInt64s(order.offsets.map(Int64.init), shape: [order.offsets.count], at: "__batch_offsets__")
            }
            if let best {
                try file.setAttribute("best_step", int: best.step)
                try file.setAttribute("best_macro_f1", double: best.macroF1)
                try file.setAttribute("best_accuracy", double: best.accuracy)
                try file.writeTensor(Tensor(shape: [best.storage.count], data: best.storage), at: "__best__")
            }
            try file.close()
            try output.commit()
        } catch {
            output.abandon()
            if var error = error as? WeightIOError {
                error.path = url.path   // report the destination, not the partial name
                throw error
            }
            throw error
        }
    }

    /// True when `url` is an HDF5 file whose `format` says it is a checkpoint.
    public static func isCheckpoint(_ url: URL) -> Bool {
        guard let file = try? HDF5File.open(url) else { return false }
        return (try? file.stringAttribute("format")) == formatName
    }

    /// Reads a checkpoint, checking its format and version. Before any parameter is read,
    /// `validate` gets the stored parameter names (the datasets not named `__…__`), throws
    /// when they are not the model's, and returns them in the order to read them.
    public static func read(_ url: URL, validate: (Set<String>) throws -> [String]) throws -> CheckpointFile {
        let file = try HDF5File.open(url)
        let format = file.hasAttribute("format") ? try file.stringAttribute("format") : "(none)"
        guard format == formatName else {
            throw WeightIOError(.notThisFormat, file: url, "not a Distillery checkpoint (format \(format == "(none)" ? "attribute missing" : "'\(format)'"), expected '\(formatName)')",
                                hint: "--resume takes the .ckpt.h5 file a 'kd finetune' run wrote (see --checkpoint)")
        }
        let version = try file.intAttribute("format_version")
        guard version <= formatVersion else {
            throw WeightIOError(.unsupported, file: url, object: "format_version",
                                "checkpoint format_version \(version) is newer than this build reads (≤ \(formatVersion))",
                                hint: "resume with the kd version that wrote it")
        }
        let configJSON = try file.stringAttribute("training_config_json")
        let names = try validate(Set(try file.datasetPaths().filter { !$0.hasPrefix("__") }))
        var order: Order?
        if file.hasAttribute("order_epoch") {
            order = Order(epoch: try file.intAttribute("order_epoch"),
                          indices: try file.readInt64s("__data_order__").values.map { Int($0) },
                          offsets: try file.readInt64s("__batch_offsets__").values.map { Int($0) })
        }
        var best: Best?
        if file.hasAttribute("best_step") {
            best = Best(step: try file.intAttribute("best_step"), macroF1: try file.doubleAttribute("best_macro_f1"),
                        accuracy: try file.doubleAttribute("best_accuracy"), storage: try file.readTensor("__best__").data)
        }
        return CheckpointFile(
            trainingConfigJSON: configJSON,
            scheduleJSON: file.hasAttribute("schedule_json") ? try file.stringAttribute("schedule_json") : "",
            step: try file.intAttribute("step"), adamStep: try file.intAttribute("adam_step"),
            rngSeed: UInt64(try file.stringAttribute("rng_seed")) ?? 0,
            parameters: try names.map { ($0, try file.readTensor($0)) },
            firstMoment: try file.readTensor("__adam_m__").data, secondMoment: try file.readTensor("__adam_v__").data,
            order: order, best: best)
    }
}
