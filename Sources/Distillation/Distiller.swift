// Distiller: one distillation step as a `TrainingObjective` — the student's forward, the
// teacher's signals, the plan's weighted losses, and one backward seeded by their gradients.
//
// Follows TinyBERT's `task_distill.py` and DistilBERT's `distiller.py`: soft cross-entropy
// at temperature T (×T²) on the teacher's cached logits, hard cross-entropy on gold labels
// (augmented copies have none and are left out of it), per-pair hidden-state MSE / cosine
// through learned projections, embedding MSE, attention-score MSE. Stages (TinyBERT's
// intermediate-then-prediction) switch losses on and off by epoch; each stage has its own
// warm-up and linear decay, as TinyBERT's two separate runs do, while AdamW's moments carry
// over (one run, one checkpoint). Teacher hidden states and scores come from a
// `TeacherStates` source: the label cache when it holds them, else the teacher run online
// (dropout off) on the same batch. Everything random is a function of (seed, step), so
// resume and same-seed runs are exact like fine-tuning's.
// Left out on purpose: relation-based attention losses, gradient accumulation, loss
// weights that change within a stage.
import DistilleryModel
import DistilleryTensor
import DistilleryTraining
import Foundation

/// Teacher hidden states and attention scores for one batch, laid out like the student's.
public protocol TeacherStates {
    /// For the examples `rows` (batch `batch`, padded to its length T): hidden states by HF
    /// index (0 = embeddings) as [B·T, H_t], and pre-softmax attention scores by 0-based
    /// teacher layer as [B, heads, T, T]; padding positions may hold anything.
    func states(rows: ArraySlice<Int>, batch: EncoderBatch, hidden: [Int], scores: [Int]) throws
        -> (hidden: [Int: [Float]], scores: [Int: [Float]])
}

/// The teacher run on each batch (dropout off): any hidden state or attention score.
public final class OnlineTeacher: TeacherStates {
    public let model: BertModel
    public let parameters: ParameterBlock
    /// The teacher is frozen: its Linear weights are packed once, not on every batch.
    let matrices: ModelMatrices

    /// The teacher as a model over its parameter block (`classes` as its head).
    public init(config: BertConfig, classes: Int, tensors: [String: Tensor]) throws {
        model = try BertModel(config: config, classes: classes)
        let wanted = Set(model.layout.entries.map(\.name))
        parameters = try ParameterBlock(layout: model.layout, tensors: tensors.filter { wanted.contains($0.key) })
        matrices = model.packedMatrices(parameters)
    }

    public func states(rows: ArraySlice<Int>, batch: EncoderBatch, hidden: [Int], scores: [Int]) throws
        -> (hidden: [Int: [Float]], scores: [Int: [Float]]) {
        let options = ForwardOptions(keepScores: !scores.isEmpty, matrices: matrices)
        let acts = try model.forward(batch, parameters: parameters, options: options)
        var h: [Int: [Float]] = [:], s: [Int: [Float]] = [:]
        for i in hidden { h[i] = acts.hiddenStates[i].array }
        if let all = acts.attentionScores { for l in scores { s[l] = all[l].array } }
        return (h, s)
    }
}

/// Which stage a step is in, and its learning rate (each stage: warm-up, then linear decay).
public struct StagedSchedule: Sendable {
    /// Stages with their first step and step count.
    public let stages: [(stage: DistillationStage, start: Int, steps: Int)]
    public let peakRate: Double
    public let warmupRatio: Double
    /// Optimizer steps of the whole run.
    public var totalSteps: Int { stages.last.map { $0.start + $0.steps } ?? 0 }

    public init(stages: [DistillationStage], stepsPerEpoch: Int, peakRate: Double, warmupRatio: Double) {
        var start = 0
        self.stages = stages.map { s in
            defer { start += s.epochs * stepsPerEpoch }
            return (s, start, s.epochs * stepsPerEpoch)
        }
        self.peakRate = peakRate
        self.warmupRatio = warmupRatio
    }

    /// Index of the stage step `step` belongs to.
    public func stageIndex(at step: Int) -> Int {
        stages.lastIndex { $0.start <= step } ?? 0
    }

    /// The learning rate of step `step`.
    public func rate(at step: Int) -> Double {
        let s = stages[stageIndex(at: step)]
        let warmup = Int((Double(s.steps) * warmupRatio).rounded(.up))
        return LearningRateSchedule(peakRate: peakRate, warmupSteps: warmup, totalSteps: s.steps).rate(at: step - s.start)
    }

    /// The first step of the first stage with a prediction loss (dev evaluation starts after it).
    public var firstPredictionStep: Int {
        stages.first { $0.stage.losses.contains(where: \.isPrediction) }?.start ?? 0
    }
}

extension DistillationPlan {
    /// Teacher hidden-state indices and 0-based teacher layers (for attention scores) that
    /// the losses in `active` read at this plan's pairs.
    public func teacherNeeds(_ active: Set<LossKind>) -> (hidden: [Int], scores: [Int]) {
        var hidden: Set<Int> = [], scores: Set<Int> = []
        for p in pairs {
            for k in p.losses where active.contains(k) {
                switch k {
                case .embeddingMSE, .hiddenMSE, .hiddenCosine: hidden.insert(p.teacherLayer)
                case .attentionMSE: scores.insert(p.teacherLayer - 1)
                case .softCE, .hardCE: break
                }
            }
        }
        return (hidden.sorted(), scores.sorted())
    }
}

/// Loss values of the last step, by loss (for logs).
public struct DistillationLossParts: Sendable {
    public var values: [LossKind: Double] = [:]
}

/// One distillation step: student forward, teacher signals, weighted losses, backward.
public final class DistillationObjective: TrainingObjective {
    public let plan: DistillationPlan
    public let student: BertModel
    /// Training examples: the ids the teacher saw; label −1 for augmented copies (no gold).
    public let examples: [TrainingExample]
    /// The teacher's logits per example (full vectors; temperature applied here).
    public let teacherLogits: [[Float]]
    public let teacherStates: TeacherStates?
    public let schedule: StagedSchedule
    public let paddingId: Int32
    public let dropout: DropoutRates
    public let rng: DropoutRNG
    /// The last step's loss values, weighted, by loss.
    public private(set) var lastParts = DistillationLossParts()

    public init(plan: DistillationPlan, examples: [TrainingExample], teacherLogits: [[Float]], teacherStates: TeacherStates?,
                schedule: StagedSchedule, paddingId: Int32, seed: UInt64) throws {
        precondition(examples.count == teacherLogits.count, "DistillationObjective: \(examples.count) examples, \(teacherLogits.count) teacher rows")
        self.plan = plan
        student = try BertModel(config: plan.student, classes: max(plan.classes, 2))
        self.examples = examples
        self.teacherLogits = teacherLogits
        self.teacherStates = teacherStates
        self.schedule = schedule
        self.paddingId = paddingId
        dropout = DropoutRates(hidden: plan.student.hiddenDropout, attention: plan.student.attentionDropout,
                               classifier: plan.student.classifierDropout)
        rng = DropoutRNG(seed: seed)
    }

    public func lossAndGradients(rows: ArraySlice<Int>, step: Int, parameters: ParameterBlock,
                                 gradients: inout Gradients) throws -> Double {
        let stage = schedule.stages[schedule.stageIndex(at: step)].stage
        let active = Set(stage.losses)
        let w = plan.spec.losses
        let (batch, labels) = paddedBatch(rows, from: examples, paddingId: paddingId)
        let B = batch.batchSize, T = batch.sequenceLength, rows2 = B * T, L = student.classCount
        let needs = plan.teacherNeeds(active)
        let acts = try student.forward(batch, labels: nil, parameters: parameters, dropout: dropout, rng: rng, step: step,
                                       keepScores: !needs.scores.isEmpty)
        var parts = DistillationLossParts()
        var seeds = BackwardSeeds(labelWeight: 0)

        // Prediction losses on the logits.
        if active.contains(.softCE) || active.contains(.hardCE) {
            var dLogits = [Float](repeating: 0, count: B * L)
            let zt = rows.flatMap { teacherLogits[$0] }
            acts.logits.data.withUnsafeBufferPointer { zs in zt.withUnsafeBufferPointer { ztp in dLogits.withUnsafeMutableBufferPointer { d in
                if active.contains(.softCE) {
                    let soft = softCrossEntropyForward(studentLogits: zs.baseAddress!, teacherLogits: ztp.baseAddress!,
                                                       batch: B, classes: L, temperature: plan.spec.temperature)
                    parts.values[.softCE] = w[.softCE] * soft.loss
                    softCrossEntropyBackward(dStudentLogits: d.baseAddress!, studentLogits: zs.baseAddress!, teacherLogits: ztp.baseAddress!,
                                             batch: B, classes: L, temperature: plan.spec.temperature,
                                             dLoss: Float(w[.softCE]), accumulate: true)
                }
            } } }
            if active.contains(.hardCE) {
                // Mean cross-entropy over the gold-labelled rows only (augmented copies have none).
                let gold = labels.indices.filter { labels[$0] >= 0 }
                if !gold.isEmpty {
                    let z = gold.flatMap { Array(acts.logits.data[($0 * L)..<(($0 + 1) * L)]) }
                    let y = gold.map { labels[$0] }
                    var probs = [Float](repeating: 0, count: gold.count * L), dz = [Float](repeating: 0, count: gold.count * L)
                    let ce = crossEntropyForward(probs: &probs, logits: z, labels: y, batch: gold.count, classes: L)
                    crossEntropyBackward(dLogits: &dz, logits: z, labels: y, batch: gold.count, classes: L, dLoss: Float(w[.hardCE]))
                    parts.values[.hardCE] = w[.hardCE] * ce
                    for (r, b) in gold.enumerated() { for j in 0..<L { dLogits[b * L + j] += dz[r * L + j] } }
                }
            }
            seeds.logits = Tensor(shape: [B, L], data: dLogits)
        }

        // Intermediate losses, pair by pair.
        if !needs.hidden.isEmpty || !needs.scores.isEmpty {
            guard let teacherStates else {
                throw TrainingError("the plan needs teacher hidden states or attention scores but no teacher source was given",
                                    hint: "give the teacher model, or a label cache with --hidden for these layers")
            }
            let teacher = try teacherStates.states(rows: rows, batch: batch, hidden: needs.hidden, scores: needs.scores)
            let Hs = plan.student.hiddenSize, Ht = plan.teacher.hiddenSize
            var dHidden: [Int: [Float]] = [:], dScores: [Int: [Float]] = [:]
            try parameters.storage.withUnsafeBufferPointer { P in try gradients.storage.withUnsafeMutableBufferPointer { G in
                try batch.mask.withUnsafeBufferPointer { mask in
                    for pair in plan.pairs {
                        for kind in pair.losses where active.contains(kind) && kind != .softCE && kind != .hardCE {
                            let weight = w[kind]
                            if kind == .attentionMSE {
                                let l = pair.studentLayer - 1, heads = plan.student.layerHeads[l]
                                guard let ts = teacher.scores[pair.teacherLayer - 1], let ss = acts.attentionScores?[l] else {
                                    throw TrainingError("teacher scores of layer \(pair.teacherLayer) are missing", hint: "run the teacher online for attention losses")
                                }
                                var d = dScores[l] ?? [Float](repeating: 0, count: B * heads * T * T)
                                ts.withUnsafeBufferPointer { t in d.withUnsafeMutableBufferPointer { dp in
                                    parts.values[kind, default: 0] += weight * attentionScoreMSEForward(
                                        student: ss.pointer, teacher: t.baseAddress!, mask: mask.baseAddress!, batch: B, sequenceLength: T, heads: heads)
                                    attentionScoreMSEBackward(dStudent: dp.baseAddress!, student: ss.pointer, teacher: t.baseAddress!,
                                                              mask: mask.baseAddress!, batch: B, sequenceLength: T, heads: heads,
                                                              dLoss: Float(weight), accumulate: true)
                                } }
                                dScores[l] = d
                                continue
                            }
                            let hiddenKind: HiddenStateLoss = kind == .hiddenCosine ? .cosine : .mse
                            guard let th = teacher.hidden[pair.teacherLayer] else {
                                throw TrainingError("teacher hidden state \(pair.teacherLayer) is missing", hint: "store it in the label cache (--hidden) or run the teacher online")
                            }
                            let sh = acts.hiddenStates[pair.studentLayer]
                            var d = dHidden[pair.studentLayer] ?? [Float](repeating: 0, count: rows2 * Hs)
                            th.withUnsafeBufferPointer { t in d.withUnsafeMutableBufferPointer { dp in
                                if let proj = pair.projection {
                                    let wOff = parameters.layout.offset(proj.weightName), bOff = parameters.layout.offset(proj.biasName)
                                    var projected = [Float](repeating: 0, count: rows2 * Ht)
                                    projected.withUnsafeMutableBufferPointer { pr in
                                        parts.values[kind, default: 0] += weight * projectedHiddenLossForward(
                                            hiddenKind, projected: pr.baseAddress!, student: sh.pointer, weight: P.baseAddress! + wOff,
                                            bias: P.baseAddress! + bOff, teacher: t.baseAddress!, mask: mask.baseAddress!, rows: rows2,
                                            studentHidden: Hs, teacherHidden: Ht)
                                        projectedHiddenLossBackward(hiddenKind, dStudent: dp.baseAddress!, accumulateStudent: true,
                                                                    dWeight: G.baseAddress! + wOff, dBias: G.baseAddress! + bOff,
                                                                    projected: pr.baseAddress!, student: sh.pointer, weight: P.baseAddress! + wOff,
                                                                    teacher: t.baseAddress!, mask: mask.baseAddress!, rows: rows2,
                                                                    studentHidden: Hs, teacherHidden: Ht, dLoss: Float(weight))
                                    }
                                } else {
                                    parts.values[kind, default: 0] += weight * hiddenLossForward(
                                        hiddenKind, student: sh.pointer, teacher: t.baseAddress!, mask: mask.baseAddress!, rows: rows2, hidden: Hs)
                                    hiddenLossBackward(hiddenKind, dStudent: dp.baseAddress!, student: sh.pointer, teacher: t.baseAddress!,
                                                       mask: mask.baseAddress!, rows: rows2, hidden: Hs, dLoss: Float(weight), accumulate: true)
                                }
                            } }
                            dHidden[pair.studentLayer] = d
                        }
                    }
                }
            } }
            seeds.hiddenStates = dHidden.mapValues { Tensor(shape: [rows2, Hs], data: $0) }
            seeds.attentionScores = Dictionary(uniqueKeysWithValues: dScores.map { l, d in
                (l, Tensor(shape: [B, plan.student.layerHeads[l], T, T], data: d))
            })
        }
        student.backward(acts, parameters: parameters, gradients: &gradients, seeds: seeds)
        lastParts = parts
        return LossKind.allCases.reduce(0) { $0 + (parts.values[$1] ?? 0) }   // a fixed order: same bits every run
    }
}
