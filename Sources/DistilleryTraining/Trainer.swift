// Trainer: the fine-tuning loop of a BERT sequence classifier — seeded, length-bucketed
// batches with padding masks, dropout, AdamW with warm-up and linear/cosine decay, gradient
// clipping, dev evaluation every N steps keeping the best weights, periodic checkpoints,
// and an exact resume.
//
// Everything random is a pure function of the seed: an epoch's order is a seeded shuffle
// (`epochOrder`), dropout masks depend on (seed, step, site, index) only (`DropoutRNG`), and
// the new head is initialized from its own seeded stream. The state a step reads is
// therefore (parameters, AdamW moments and step, current epoch order, position, best model),
// all of which a `TrainingCheckpoint` holds; resuming from step s runs exactly the steps an
// uninterrupted run would, bit for bit at the same thread count.
// Batching follows HF's `LengthGroupedSampler`: the shuffled examples are cut into
// mega-batches of 50 batches, each sorted by length (longest first) and cut into batches,
// and the batch order is shuffled again — batches of similar length, little padding.
// Left out on purpose: gradient accumulation, mixed precision, early stopping.
import DistilleryModel
import DistilleryTensor
import Foundation

/// One tokenized training example.
public struct TrainingExample: Sendable, Equatable {
    /// Token ids with [CLS]/[SEP], already truncated to the maximum length.
    public var ids: [Int32]
    /// Class index.
    public var label: Int32
    public init(ids: [Int32], label: Int32) {
        self.ids = ids
        self.label = label
    }
}

/// A sequential SplitMix64 generator (shuffles, head initialization).
public struct SplitMix64: Sendable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return DropoutRNG.mix(state)
    }
    /// Uniform in [0, bound) (multiply-shift; bias < 2⁻³² for the sizes used here).
    public mutating func next(below bound: Int) -> Int {
        Int(((next() >> 32) &* UInt64(bound)) >> 32)
    }
    /// Uniform double in [0, 1).
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }
    /// Standard normal (Box–Muller, one value per call).
    public mutating func normal() -> Double {
        let u1 = max(uniform(), 0x1p-53), u2 = uniform()
        return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
    }
}

/// A new classification head (and pooler, when `pooler`): weights N(0, std²) from a stream
/// seeded by `seed`, biases zero — HF's `_init_weights` for Linear layers.
public func freshHeadTensors(hiddenSize: Int, classes: Int, seed: UInt64, pooler: Bool,
                             std: Double = 0.02) -> [(name: String, tensor: Tensor)] {
    var rng = SplitMix64(seed: DropoutRNG.mix(seed ^ 0x4845_4144))   // "HEAD"
    func normal(_ count: Int) -> [Float] { (0..<count).map { _ in Float(rng.normal() * std) } }
    var out: [(name: String, tensor: Tensor)] = [
        ("classifier.weight", Tensor(shape: [classes, hiddenSize], data: normal(classes * hiddenSize))),
        ("classifier.bias", Tensor(shape: [classes], data: [Float](repeating: 0, count: classes))),
    ]
    if pooler {
        out += [("pooler.dense.weight", Tensor(shape: [hiddenSize, hiddenSize], data: normal(hiddenSize * hiddenSize))),
                ("pooler.dense.bias", Tensor(shape: [hiddenSize], data: [Float](repeating: 0, count: hiddenSize)))]
    }
    return out
}

/// The batches of epoch `epoch`: a seeded shuffle, mega-batches of 50 batches sorted by
/// length (longest first, ties by index), cut into batches, batch order shuffled.
public func epochOrder(lengths: [Int], batchSize: Int, seed: UInt64, epoch: Int) -> EpochOrder {
    let n = lengths.count
    var rng = SplitMix64(seed: DropoutRNG.mix(seed &+ DropoutRNG.mix(UInt64(epoch) &+ 0x4F52_4445_52)))  // "ORDER"
    var permutation = Array(0..<n)
    for i in stride(from: n - 1, to: 0, by: -1) { permutation.swapAt(i, rng.next(below: i + 1)) }
    let mega = batchSize * 50
    var batches: [ArraySlice<Int>] = []
    for start in stride(from: 0, to: n, by: mega) {
        let chunk = permutation[start..<min(start + mega, n)].sorted {
            lengths[$0] != lengths[$1] ? lengths[$0] > lengths[$1] : $0 < $1
        }
        for b in stride(from: 0, to: chunk.count, by: batchSize) { batches.append(chunk[b..<min(b + batchSize, chunk.count)]) }
    }
    for i in stride(from: batches.count - 1, to: 0, by: -1) { batches.swapAt(i, rng.next(below: i + 1)) }
    var indices: [Int] = [], offsets = [0]
    indices.reserveCapacity(n)
    for b in batches {
        indices += b
        offsets.append(indices.count)
    }
    return EpochOrder(epoch: epoch, indices: indices, offsets: offsets)
}

/// What one optimizer step did, for progress display.
public struct StepReport: Sendable {
    /// Steps completed (1-based number of the step just done) and of the run.
    public var step: Int
    public var totalSteps: Int
    /// Epoch of the step (0-based) and batches per epoch.
    public var epoch: Int
    public var stepsPerEpoch: Int
    public var loss: Double
    public var learningRate: Double
    /// Global gradient norm before clipping.
    public var gradientNorm: Float
    /// Examples in this step's batch.
    public var examples: Int
    /// Examples and seconds since this process started training (resumed steps excluded).
    public var examplesThisRun: Int
    public var secondsThisRun: Double
    public var stepsThisRun: Int
    /// Of `secondsThisRun`, the time spent in forward, backward, clipping and the update
    /// (evaluation and checkpoint writing excluded).
    public var stepSecondsThisRun: Double
}

/// Events the loop reports, in order within a step: evaluation, checkpoint, step.
public enum TrainingEvent: Sendable {
    case evaluation(step: Int, metrics: ClassificationMetrics, best: Bool)
    case checkpoint(step: Int, url: URL)
    case step(StepReport)
}

/// What an optimizer step minimises: the loss of one batch and its gradients. Fine-tuning
/// uses `ClassificationObjective`; distillation brings its own (teacher signals, projections).
public protocol TrainingObjective {
    /// Adds d(loss)/dθ of the examples `rows` (indices into the trainer's training set) into
    /// `gradients` (zeroed by the caller) and returns the loss. `step` (0-based) seeds dropout.
    func lossAndGradients(rows: ArraySlice<Int>, step: Int, parameters: ParameterBlock,
                          gradients: inout Gradients) throws -> Double
}

/// A padded batch (ids, mask) of `examples[rows]`: length = the longest row, padding `paddingId`.
public func paddedBatch(_ rows: ArraySlice<Int>, from examples: [TrainingExample], paddingId: Int32) -> (EncoderBatch, [Int32]) {
    let T = rows.map { examples[$0].ids.count }.max() ?? 1
    var ids = [Int32](repeating: paddingId, count: rows.count * T)
    var mask = [Int32](repeating: 0, count: rows.count * T)
    for (r, i) in rows.enumerated() {
        for (t, id) in examples[i].ids.enumerated() { ids[r * T + t] = id; mask[r * T + t] = 1 }
    }
    return (EncoderBatch(ids: ids, mask: mask, batchSize: rows.count, sequenceLength: T), rows.map { examples[$0].label })
}

/// Mean cross-entropy of the classifier against the gold labels, with dropout (fine-tuning).
public struct ClassificationObjective: TrainingObjective {
    public let model: BertModel
    public let examples: [TrainingExample]
    public let paddingId: Int32
    public let dropout: DropoutRates
    public let rng: DropoutRNG

    public init(model: BertModel, examples: [TrainingExample], paddingId: Int32, dropout: DropoutRates, seed: UInt64) {
        self.model = model
        self.examples = examples
        self.paddingId = paddingId
        self.dropout = dropout
        rng = DropoutRNG(seed: seed)
    }

    public func lossAndGradients(rows: ArraySlice<Int>, step: Int, parameters: ParameterBlock,
                                 gradients: inout Gradients) throws -> Double {
        let (batch, labels) = paddedBatch(rows, from: examples, paddingId: paddingId)
        let acts = try model.forward(batch, labels: labels, parameters: parameters, dropout: dropout, rng: rng, step: step)
        guard let loss = acts.loss, loss.isFinite else { return acts.loss ?? .nan }
        model.backward(acts, parameters: parameters, gradients: &gradients)
        return loss
    }
}

/// The training loop over a fixed train/dev set: fine-tuning by default, any
/// `TrainingObjective` (distillation) when given one.
public struct Trainer {
    /// The BERT model fine-tuned or distilled into; nil when `evaluator` scores another architecture.
    public let model: BertModel?
    /// Dev metrics of a parameter block's storage; nil: the BERT inference encoder of `model`.
    public var evaluator: (([Float]) throws -> ClassificationMetrics)?
    public let config: TrainingConfig
    public let train: [TrainingExample]
    public let dev: [TrainingExample]
    /// Token id of padding.
    public let paddingId: Int32
    /// Where periodic checkpoints go (replaced each time); nil for none.
    public var checkpointURL: URL?
    /// Write a checkpoint every this many steps (0 = only at the end, when `checkpointURL` is set).
    public var checkpointEvery: Int
    /// Sequences per forward pass when evaluating.
    public var evaluationBatchSize = 64
    /// The loss each step minimises (default: cross-entropy on the gold labels).
    public var objective: any TrainingObjective
    /// Learning rate of each step (default: the config's warm-up + decay schedule).
    public var learningRate: @Sendable (Int) -> Double
    /// Dev evaluations (and best-model keeping) start at this step: a distillation stage that
    /// does not train the classifier yet is not judged by it.
    public var evaluateFromStep = 0
    /// The batches of an epoch, when not `epochOrder`'s length-grouped pass over `train`
    /// (multi-task sampling): it must give `stepsPerEpoch` batches; examples may repeat.
    public var batchOrder: (@Sendable (Int) -> EpochOrder)?

    public init(model: BertModel, config: TrainingConfig, train: [TrainingExample], dev: [TrainingExample],
                paddingId: Int32, checkpointURL: URL? = nil, checkpointEvery: Int = 0) {
        precondition(config.batchSize >= 1 && !train.isEmpty, "Trainer: empty training set or batch size < 1")
        self.model = model
        self.config = config
        self.train = train
        self.dev = dev
        self.paddingId = paddingId
        self.checkpointURL = checkpointURL
        self.checkpointEvery = checkpointEvery
        objective = ClassificationObjective(model: model, examples: train, paddingId: paddingId, dropout: config.dropout, seed: config.seed)
        let schedule = config.learningRateSchedule
        learningRate = { schedule.rate(at: $0) }
    }

    /// A loop for any model: `objective` computes losses and gradients over a parameter
    /// block, `evaluator` scores a block's storage on the dev set (a BiGRU student).
    public init(objective: any TrainingObjective, evaluator: @escaping ([Float]) throws -> ClassificationMetrics,
                config: TrainingConfig, train: [TrainingExample], dev: [TrainingExample], paddingId: Int32,
                checkpointURL: URL? = nil, checkpointEvery: Int = 0) {
        precondition(config.batchSize >= 1 && !train.isEmpty, "Trainer: empty training set or batch size < 1")
        (model, self.config, self.train, self.dev, self.paddingId) = (nil, config, train, dev, paddingId)
        (self.checkpointURL, self.checkpointEvery, self.objective, self.evaluator) = (checkpointURL, checkpointEvery, objective, evaluator)
        let schedule = config.learningRateSchedule
        learningRate = { schedule.rate(at: $0) }
    }

    /// Batches per epoch.
    public var stepsPerEpoch: Int { Self.stepsPerEpoch(examples: train.count, batchSize: config.batchSize) }
    public static func stepsPerEpoch(examples: Int, batchSize: Int) -> Int { (examples + batchSize - 1) / batchSize }

    /// Runs from `state.step` to the end of the run, updating `state` in place.
    public func run(_ state: inout TrainingState, events: (TrainingEvent) throws -> Void) throws {
        let total = config.totalSteps, perEpoch = stepsPerEpoch
        let lengths = train.map(\.ids.count)
        var gradients = Gradients(zeros: state.parameters.layout)
        let started = Date()
        var examplesThisRun = 0, stepsThisRun = 0, stepSeconds = 0.0
        // it may come from a checkpoint file
        try state.order?.validate(examples: train.count, batches: perEpoch, eachOnce: batchOrder == nil)
        while state.step < total {
            let step = state.step, epoch = step / perEpoch, position = step % perEpoch
            if state.order?.epoch != epoch {
                state.order = batchOrder?(epoch) ?? epochOrder(lengths: lengths, batchSize: config.batchSize, seed: config.seed, epoch: epoch)
            }
            let order = state.order!
            guard position < order.batchCount else {
                throw TrainingError("the data order of epoch \(epoch) has \(order.batchCount) batches, step \(step) needs batch \(position)",
                                    hint: "the checkpoint does not match this dataset; start a new run")
            }
            let stepStarted = Date()
            let rows = order.indices[order.offsets[position]..<order.offsets[position + 1]]
            gradients.zero()
            let loss = try objective.lossAndGradients(rows: rows, step: step, parameters: state.parameters, gradients: &gradients)
            guard loss.isFinite else {
                throw TrainingError("the loss became \(loss) at step \(step + 1)", hint: "lower --lr or keep --clip on; the run diverged")
            }
            let norm = config.clipNorm > 0 ? clipGradientNorm(&gradients, maxNorm: Float(config.clipNorm)) : gradientNorm(gradients)
            let rate = learningRate(step)
            state.optimizer.update(&state.parameters, gradients: gradients, learningRate: rate)
            state.step = step + 1
            stepSeconds += Date().timeIntervalSince(stepStarted)
            examplesThisRun += rows.count
            stepsThisRun += 1

            if state.step > evaluateFromStep && (state.step % config.evalEvery == 0 || state.step == total) {
                let metrics = try evaluate(state.parameters.storage)
                let improved = state.best.map { metrics.macroF1 > $0.macroF1 } ?? true
                if improved {
                    state.best = BestModel(step: state.step, macroF1: metrics.macroF1, accuracy: metrics.accuracy,
                                           storage: state.parameters.storage)
                }
                try events(.evaluation(step: state.step, metrics: metrics, best: improved))
            }
            if let url = checkpointURL,
               (checkpointEvery > 0 && state.step % checkpointEvery == 0) || state.step == total {
                try TrainingCheckpoint(config: config, state: state).write(to: url)
                try events(.checkpoint(step: state.step, url: url))
            }
            try events(.step(StepReport(step: state.step, totalSteps: total, epoch: epoch, stepsPerEpoch: perEpoch,
                                        loss: loss, learningRate: rate, gradientNorm: norm, examples: rows.count,
                                        examplesThisRun: examplesThisRun, secondsThisRun: Date().timeIntervalSince(started),
                                        stepsThisRun: stepsThisRun, stepSecondsThisRun: stepSeconds)))
        }
    }

    /// Dev metrics of the parameters `storage` (inference encoder, dropout off).
    public func evaluate(_ storage: [Float]) throws -> ClassificationMetrics {
        if let evaluator { return try evaluator(storage) }
        guard let model else { preconditionFailure("Trainer: neither a BERT model nor an evaluator") }
        var block = ParameterBlock(zeros: model.layout)
        block.storage = Array(storage.prefix(model.layout.totalCount))   // without trailing extras (projections)
        let encoder = try BertEncoder(config: model.config, tensors: block.tensorDictionary)
        let predicted = try classify(encoder: encoder, sequences: dev.map(\.ids), batchSize: evaluationBatchSize, paddingId: paddingId)
        return ClassificationMetrics(truth: dev.map { Int($0.label) }, predicted: predicted, classCount: model.classCount)
    }
}

/// The arg-max class of each sequence, run in length-sorted batches; results in input order.
public func classify(encoder: any SequenceEncoder, sequences: [[Int32]], batchSize: Int, paddingId: Int32) throws -> [Int] {
    try classifierLogits(encoder: encoder, sequences: sequences, batchSize: batchSize, paddingId: paddingId).map(argmax)
}

/// Index of the largest value (the first one on ties).
public func argmax(_ values: [Float]) -> Int {
    var best = 0
    for c in values.indices.dropFirst() where values[c] > values[best] { best = c }
    return best
}

/// The classifier logits of each sequence, run in length-sorted batches (little padding);
/// results in input order.
public func classifierLogits(encoder: any SequenceEncoder, sequences: [[Int32]], batchSize: Int, paddingId: Int32) throws -> [[Float]] {
    let order = sequences.indices.sorted { sequences[$0].count != sequences[$1].count ? sequences[$0].count < sequences[$1].count : $0 < $1 }
    var out = [[Float]](repeating: [], count: sequences.count)
    for start in stride(from: 0, to: order.count, by: batchSize) {
        let chunk = order[start..<min(start + batchSize, order.count)]
        let T = chunk.map { sequences[$0].count }.max()!
        var ids = [Int32](repeating: paddingId, count: chunk.count * T), mask = [Int32](repeating: 0, count: chunk.count * T)
        for (r, i) in chunk.enumerated() {
            for (t, id) in sequences[i].enumerated() { ids[r * T + t] = id; mask[r * T + t] = 1 }
        }
        let result = try encoder.encode(EncoderBatch(ids: ids, mask: mask, batchSize: chunk.count, sequenceLength: T))
        guard let logits = result.logits else {
            throw TrainingError("the model has no classifier head", hint: "fine-tune it first with 'kd finetune'")
        }
        let L = logits.shape[1]
        for (r, i) in chunk.enumerated() { out[i] = Array(logits.data[(r * L)..<((r + 1) * L)]) }
    }
    return out
}
