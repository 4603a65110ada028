// MultiTask: one student, one shared encoder, one classifier head per task, distilled from
// several tasks' teachers at once — the task-balanced batch order and the per-task loss.
//
// Heads: the student is trained as one BERT classifier over the union of the tasks' classes
// (C = Σ L_t), task t owning logits [o_t, o_t + L_t). A row of task t is scored on its own
// slice only: softmax, soft CE against its teacher's L_t logits and hard CE on its gold
// label never see another task's logits, so d(loss)/d(logit) is zero outside the slice and
// the other heads' rows of the classifier get no gradient — the same function and gradient
// as separate Linear heads (MT-DNN, Liu et al. 2019), with no new forward or backward in
// the model. The file stores the slices as separate heads (WeightIO's TaskHeads.swift).
// Batches are task-homogeneous (each from one task, as MT-DNN's), length-grouped inside
// the task like single-task training (`epochOrder`). Task sampling: an epoch has as many
// batches as the union would (⌈Σ n_t / B⌉); task t gets k_t ∝ n_t^α of them (largest
// remainder, at least one each): α = 1 proportional (each task's own epoch, as a
// single-task run), α = ½ the square-root/temperature sampling of multilingual and
// multi-task training (smaller tasks oversampled, larger ones undersampled), α = 0 uniform.
// Each task reads its batches from its own endless stream of seeded epochs, continued from
// epoch to epoch; the epoch's batches are then shuffled across tasks. Everything is a pure
// function of (seed, epoch), so resume is exact.
// The loss of a batch with rows of several tasks (never made by the sampler, accepted for
// generality) is Σ_t (B_t / B) · loss_t, which for one task is exactly the single-task loss.
// Left out on purpose: intermediate-layer losses (each task has its own teacher, so "the
// teacher's hidden states" has no single meaning), gradient surgery / loss weighting per
// task, and an annealed sampling schedule.
import DistilleryModel
import DistilleryTensor
import DistilleryTraining
import Foundation

/// How batches are shared among tasks: k_t ∝ n_t^α.
public enum TaskSampling: String, Sendable, CaseIterable, Codable {
    /// α = 1: each task in proportion to its size (one pass over each per epoch).
    case proportional
    /// α = ½: square-root sampling — small tasks more often than their size says.
    case sqrt
    /// α = 0: every task the same number of batches.
    case uniform

    /// The exponent α.
    public var exponent: Double {
        switch self {
        case .proportional: 1
        case .sqrt: 0.5
        case .uniform: 0
        }
    }
}

/// Batches per task in an epoch of `batches`: proportional to sizes[t]^exponent, at least
/// one each, rounded by largest remainder (ties to the lower task) so they sum to `batches`.
public func taskBatchCounts(sizes: [Int], batches: Int, exponent: Double) -> [Int] {
    precondition(!sizes.isEmpty && sizes.allSatisfy { $0 > 0 } && batches >= sizes.count, "taskBatchCounts: \(sizes) in \(batches) batches")
    let weights = sizes.map { Foundation.pow(Double($0), exponent) }
    let total = weights.reduce(0, +)
    let spare = batches - sizes.count   // one batch each is given first
    let exact = weights.map { Double(spare) * $0 / total }
    var counts = exact.map { 1 + Int($0.rounded(.down)) }
    let remainders = exact.enumerated().map { ($0.offset, $0.element - $0.element.rounded(.down)) }
        .sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
    for (t, _) in remainders.prefix(batches - counts.reduce(0, +)) { counts[t] += 1 }
    return counts
}

/// Epoch `epoch` of a multi-task run: `counts[t]` task-homogeneous batches of each task
/// (examples `ranges[t]` of the union, whose token counts are `lengths`), taken from the
/// task's own stream of length-grouped epochs, then shuffled across tasks.
public func taskBalancedOrder(ranges: [Range<Int>], lengths: [Int], counts: [Int], batchSize: Int,
                              seed: UInt64, epoch: Int) -> EpochOrder {
    precondition(ranges.count == counts.count, "taskBalancedOrder: \(ranges.count) tasks, \(counts.count) counts")
    var batches: [ArraySlice<Int>] = []
    for (t, range) in ranges.enumerated() {
        let local = Array(lengths[range])
        let perTaskEpoch = Trainer.stepsPerEpoch(examples: local.count, batchSize: batchSize)
        let taskSeed = DropoutRNG.mix(seed &+ DropoutRNG.mix(UInt64(t) &+ 0x5441_534B))   // "TASK"
        var cached: EpochOrder?
        for position in (epoch * counts[t])..<((epoch + 1) * counts[t]) {
            let taskEpoch = position / perTaskEpoch, b = position % perTaskEpoch
            if cached?.epoch != taskEpoch {
                cached = epochOrder(lengths: local, batchSize: batchSize, seed: taskSeed, epoch: taskEpoch)
            }
            let order = cached!
            batches.append(ArraySlice(order.indices[order.offsets[b]..<order.offsets[b + 1]].map { $0 + range.lowerBound }))
        }
    }
    var rng = SplitMix64(seed: DropoutRNG.mix(seed &+ DropoutRNG.mix(UInt64(epoch) &+ 0x4D49_5845)))   // "MIXE"
    for i in stride(from: batches.count - 1, to: 0, by: -1) { batches.swapAt(i, rng.next(below: i + 1)) }
    var indices: [Int] = [], offsets = [0]
    for b in batches {
        indices += b
        offsets.append(indices.count)
    }
    return EpochOrder(epoch: epoch, indices: indices, offsets: offsets)
}

/// What the multi-task prediction loss measured on one batch.
public struct MultiTaskLoss: Sendable {
    /// w_soft · soft CE + w_hard · hard CE, each Σ_t (B_t / B) · the task's batch mean.
    public var total: Double
    public var soft: Double
    public var hard: Double
    /// d(total)/d(logits), [B, C]; zero outside each row's task slice.
    public var dLogits: [Float]
}

/// The prediction loss of student logits [B, C] whose row b belongs to task `tasks[b]`
/// (its logits `offsets[t]..<offsets[t] + classes[t]`): soft CE at temperature T against
/// `teacher[b]` (that task's logits) and hard CE on `labels[b]` (−1: no gold label), on
/// each row's slice only, and the gradient.
public func multiTaskPredictionLoss(logits: [Float], batch B: Int, tasks: [Int], offsets: [Int], classes: [Int],
                                    teacher: [[Float]], labels: [Int32], temperature T: Double,
                                    softWeight: Double, hardWeight: Double) -> MultiTaskLoss {
    let C = B > 0 ? logits.count / B : 0
    precondition(logits.count == B * C && tasks.count == B && teacher.count == B && labels.count == B, "multiTaskPredictionLoss: sizes")
    var out = MultiTaskLoss(total: 0, soft: 0, hard: 0, dLogits: [Float](repeating: 0, count: B * C))
    for t in Set(tasks).sorted() {
        let rows = (0..<B).filter { tasks[$0] == t }
        let L = classes[t], o = offsets[t], share = Double(rows.count) / Double(B)
        let zs = rows.flatMap { logits[($0 * C + o)..<($0 * C + o + L)] }
        let zt = rows.flatMap { teacher[$0] }
        precondition(zt.count == rows.count * L, "multiTaskPredictionLoss: teacher rows of task \(t) are not \(L) wide")
        var d = [Float](repeating: 0, count: rows.count * L)
        if softWeight > 0 {
            zs.withUnsafeBufferPointer { s in zt.withUnsafeBufferPointer { z in d.withUnsafeMutableBufferPointer { dp in
                let soft = softCrossEntropyForward(studentLogits: s.baseAddress!, teacherLogits: z.baseAddress!, batch: rows.count,
                                                   classes: L, temperature: T)
                out.soft += share * soft.loss
                softCrossEntropyBackward(dStudentLogits: dp.baseAddress!, studentLogits: s.baseAddress!, teacherLogits: z.baseAddress!,
                                         batch: rows.count, classes: L, temperature: T, dLoss: Float(softWeight * share), accumulate: true)
            } } }
        }
        let gold = rows.indices.filter { labels[rows[$0]] >= 0 }
        if hardWeight > 0 && !gold.isEmpty {
            let z = gold.flatMap { zs[($0 * L)..<(($0 + 1) * L)] }
            let y = gold.map { labels[rows[$0]] }
            var probs = [Float](repeating: 0, count: gold.count * L), dz = [Float](repeating: 0, count: gold.count * L)
            let ce = crossEntropyForward(probs: &probs, logits: z, labels: y, batch: gold.count, classes: L)
            crossEntropyBackward(dLogits: &dz, logits: z, labels: y, batch: gold.count, classes: L, dLoss: Float(hardWeight * share))
            out.hard += share * ce
            for (r, g) in gold.enumerated() { for j in 0..<L { d[g * L + j] += dz[r * L + j] } }
        }
        for (r, b) in rows.enumerated() { for j in 0..<L { out.dLogits[b * C + o + j] = d[r * L + j] } }
    }
    out.total = softWeight * out.soft + hardWeight * out.hard
    return out
}

/// One multi-task distillation step: the student's forward over the union's classifier,
/// each row's loss on its task's slice, one backward.
public final class MultiTaskDistillationObjective: TrainingObjective {
    public let student: BertModel
    /// The union's training examples (label −1 for augmented copies).
    public let examples: [TrainingExample]
    /// The task of each example.
    public let taskOf: [Int]
    /// Each example's teacher logits (its task's width).
    public let teacherLogits: [[Float]]
    /// First logit and class count of each task's head.
    public let offsets: [Int]
    public let classes: [Int]
    public let temperature: Double
    public let softWeight: Double
    public let hardWeight: Double
    public let paddingId: Int32
    public let dropout: DropoutRates
    public let rng: DropoutRNG

    /// `config` is the student with the union's C = Σ classes labels.
    public init(config: BertConfig, examples: [TrainingExample], taskOf: [Int], teacherLogits: [[Float]], classes: [Int],
                temperature: Double, softWeight: Double, hardWeight: Double, paddingId: Int32, seed: UInt64) throws {
        precondition(examples.count == taskOf.count && examples.count == teacherLogits.count, "MultiTaskDistillationObjective: sizes")
        student = try BertModel(config: config, classes: classes.reduce(0, +))
        (self.examples, self.taskOf, self.teacherLogits, self.classes) = (examples, taskOf, teacherLogits, classes)
        offsets = classes.indices.map { classes[..<$0].reduce(0, +) }
        (self.temperature, self.softWeight, self.hardWeight, self.paddingId) = (temperature, softWeight, hardWeight, paddingId)
        dropout = DropoutRates(hidden: config.hiddenDropout, attention: config.attentionDropout, classifier: config.classifierDropout)
        rng = DropoutRNG(seed: seed)
    }

    public func lossAndGradients(rows: ArraySlice<Int>, step: Int, parameters: ParameterBlock,
                                 gradients: inout Gradients) throws -> Double {
        let (batch, labels) = paddedBatch(rows, from: examples, paddingId: paddingId)
        let acts = try student.forward(batch, labels: nil, parameters: parameters, dropout: dropout, rng: rng, step: step)
        let loss = multiTaskPredictionLoss(logits: acts.logits.data, batch: batch.batchSize, tasks: rows.map { taskOf[$0] },
                                           offsets: offsets, classes: classes, teacher: rows.map { teacherLogits[$0] },
                                           labels: labels, temperature: temperature, softWeight: softWeight, hardWeight: hardWeight)
        student.backward(acts, parameters: parameters, gradients: &gradients,
                         seeds: BackwardSeeds(labelWeight: 0, logits: Tensor(shape: [batch.batchSize, student.classCount], data: loss.dLogits)))
        return loss.total
    }
}
