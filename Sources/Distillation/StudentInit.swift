// StudentInit: the student's first weights, built from the teacher's named tensors as the
// plan says — whole layers copied (DistilBERT), a narrower slice of the teacher, or random.
//
// Copy ("teacher-layers", DistilBERT's `extract_distilbert.py`): student layer i gets teacher
// layer initLayers[i] bit for bit, plus the embeddings and pooler (and the classifier when
// the teacher has one with the task's class count).
// Slice ("teacher-slice"): keep, by squared L2 norm of the weights that touch them —
//   hidden dimension c: every teacher tensor's entries with index c along a hidden-size axis
//     (embedding columns, LayerNorm γ/β, Q/K/V/intermediate input columns, attention-output
//     and FFN-output rows and biases, the pooler's rows and columns, classifier columns),
//     one set of H_s dimensions for the whole model, so the residual stream stays aligned;
//   head h of teacher layer l: its Q/K/V rows and biases and its attention-output columns;
//   FFN neuron j of teacher layer l: its intermediate row and bias and its output column —
// the largest H_s / heads / FFN of each, ties to the lower index, kept in their original
// order. Every student tensor is the teacher tensor restricted to the kept indices along
// each axis (the Compression module's axis table drives both the scores, `ImportanceScores`,
// and the slicing, `sliceBertParameters`; this file only decides what to keep). A sliced
// student is a starting point, not the teacher's function: LayerNorm statistics change
// with fewer dimensions. Student heads must have the teacher's head size (whole heads).
// Random: HF `BertPreTrainedModel._init_weights` — Linear and embedding weights
// N(0, std²), the padding row of the word embeddings zero, biases 0, LayerNorm γ = 1, β = 0.
// Heads the teacher lacks (pooler, classifier) are created the same way.
// Projections (`distill.projection.<m>.*`, [H_t, H_s]): after a slice, the selection matrix
// W[K_j, j] = 1 (student dimension j goes back to the teacher dimension K_j it came from,
// bias 0), so at step 0 the projected student state is the teacher state on the kept
// dimensions; otherwise N(0, 0.02²) and bias 0, as TinyBERT's `fit_dense`.
// Random draws are a pure function of (seed, tensor name), so adding a tensor changes no
// other tensor's values. Left out on purpose: SVD/PCA-based width reduction, importance
// scores from gradients (those belong to pruning).
import Compression
import DistilleryModel
import DistilleryTensor
import DistilleryTraining

/// A student's initial tensors and what was kept from the teacher.
public struct InitializedStudent: Sendable {
    /// The student's tensors by HF name, exactly `plan.studentShapes`.
    public var student: [String: Tensor]
    /// The projections' tensors (`distill.projection.<m>.weight/bias`).
    public var projections: [String: Tensor]
    /// For a slice: the teacher hidden dimensions kept (ascending).
    public var keptHiddenDimensions: [Int]?
    /// For a slice: the teacher heads kept in each student layer (ascending).
    public var keptHeads: [[Int]]?
    /// For a slice: the teacher FFN neurons kept in each student layer (ascending).
    public var keptNeurons: [[Int]]?
    /// What came from where, one line per decision (printed by the CLI).
    public var notes: [String]

    /// Student and projection tensors together (what the parameter block is built from).
    public var allTensors: [String: Tensor] { student.merging(projections) { a, _ in a } }
}

/// Builds the student's initial tensors (and projections) from the teacher's, as `plan` says.
/// `teacherTensors` must be the teacher's full weight set (checked strictly).
public func initializeStudent(plan: DistillationPlan, teacherTensors: [String: Tensor], seed: UInt64) throws(DistillationError)
    -> InitializedStudent {
    let src = plan.spec.source
    let teacherHeads: BertHeads
    do {
        teacherHeads = try validateBertParameters(plan.teacher, tensors: teacherTensors).heads
    } catch {
        throw DistillationError(src, "the teacher's weights do not match its config: \(error)",
                                hint: "pass the teacher's full weight set (kd info shows what the file holds)")
    }
    if plan.spec.losses[.softCE] > 0, teacherHeads.classifierLabels != plan.classes {
        throw DistillationError(src, keyPath: "losses.soft_ce",
                                "needs the teacher's logits over \(plan.classes) classes but the teacher has \(teacherHeads.classifierLabels == 0 ? "no classifier" : "a \(teacherHeads.classifierLabels)-class classifier")",
                                hint: "fine-tune the teacher on this dataset first (kd finetune), or set soft_ce to 0")
    }
    let s = plan.student, t = plan.teacher
    var notes: [String] = []
    var student: [String: Tensor] = [:]
    var keptHidden: [Int]?, keptHeads: [[Int]]?, keptNeurons: [[Int]]?

    switch plan.spec.initialization {
    case .random(let std):
        for (name, shape) in plan.studentShapes { student[name] = freshTensor(name, shape, std: std, seed: seed, padRow: s.padTokenId) }
        notes.append("all \(plan.studentShapes.count) tensors random: N(0, \(std)²) weights, zero biases, LayerNorm 1/0, padding row 0")
    case .teacherLayers, .teacherSlice:
        let layers = plan.initLayers!
        let slicing: Bool
        if case .teacherSlice = plan.spec.initialization { slicing = true } else { slicing = false }
        // What to keep of the teacher: its picked layers, and for a slice the strongest
        // hidden dimensions, heads and FFN neurons (by source layer).
        var request = SliceRequest(layers: layers)
        if slicing {
            let scores: ImportanceScores
            do { scores = try ImportanceScores(squaredNormsOf: teacherTensors, config: t) } catch {
                throw DistillationError(src, "cannot score the teacher's weights: \(error)", hint: "pass the teacher's full weight set")
            }
            do {
                request.hiddenDimensions = try topIndices(scores.hiddenDimensions, keeping: s.hiddenSize)
                for (i, p) in layers.enumerated() {
                    request.heads[p] = try topIndices(scores.heads[p], keeping: s.layerHeads[i])
                    request.neurons[p] = try topIndices(scores.neurons[p], keeping: s.layerIntermediateSizes[i])
                }
            } catch {
                throw DistillationError(src, keyPath: "architecture", "cannot be sliced from the teacher: \(error)", hint: "the plan should have refused this; check the student's widths")
            }
        }
        let sliced: SlicedModel
        do { sliced = try sliceBertParameters(t, tensors: teacherTensors, keeping: request) } catch {
            throw DistillationError(src, keyPath: "init", "cannot take the student from the teacher: \(error)", hint: "check init.layers and the student's widths against the teacher")
        }
        if slicing {
            keptHidden = sliced.hiddenDimensions.indices
            keptHeads = sliced.heads.map(\.indices)
            keptNeurons = sliced.neurons.map(\.indices)
            for (i, p) in layers.enumerated() {
                notes.append("student layer \(i) ← teacher layer \(p): heads \(sliced.heads[i].indices), \(sliced.neurons[i].count) of \(sliced.neurons[i].sourceCount) FFN neurons")
            }
            notes.insert("hidden dimensions: kept \(sliced.hiddenDimensions.count) of \(t.hiddenSize) by weight norm", at: 0)
        } else {
            for (i, p) in layers.enumerated() { notes.append("student layer \(i) ← teacher layer \(p) (copied)") }
        }
        var fromTeacher: [String] = []   // non-layer groups taken from the teacher, for the notes
        for (name, shape) in plan.studentShapes {
            // The sliced teacher has the student's names (layers renumbered) and, where the
            // student has the tensor at all, its shapes — except a classifier over another
            // class count, or heads the teacher lacks: those start fresh.
            if let source = sliced.tensors[name], source.shape == shape {
                student[name] = source
                let group = String(name.split(separator: ".")[0])
                if !name.hasPrefix("encoder."), !fromTeacher.contains(group) { fromTeacher.append(group) }
            } else {
                guard name.hasPrefix("classifier.") || name.hasPrefix("pooler.") else {
                    throw DistillationError(src, "the teacher slice gives '\(name)' shape \(sliced.tensors[name].map { describeShape($0.shape) } ?? "none"), the student needs \(describeShape(shape))",
                                            hint: "this is a bug in the plan's shape checks; please report it with the student file")
                }
                student[name] = freshTensor(name, shape, std: 0.02, seed: seed, padRow: s.padTokenId)
                if name.hasSuffix(".weight") {
                    notes.append("\(name.dropLast(".weight".count)): new (the teacher has \(teacherTensors[name] == nil ? "none" : "one of another shape")), N(0, 0.02²) weights, zero bias")
                }
            }
        }
        notes.append("\(fromTeacher.joined(separator: ", ")): \(slicing ? "sliced" : "copied") from the teacher")
    }

    // Projections.
    var projections: [String: Tensor] = [:]
    for p in plan.projections {
        if let K = keptHidden {
            var w = [Float](repeating: 0, count: p.outFeatures * p.inFeatures)
            for (j, k) in K.enumerated() { w[k * p.inFeatures + j] = 1 }
            projections[p.weightName] = Tensor(shape: [p.outFeatures, p.inFeatures], data: w)
        } else {
            projections[p.weightName] = freshTensor(p.weightName, [p.outFeatures, p.inFeatures], std: 0.02, seed: seed, padRow: nil)
        }
        projections[p.biasName] = Tensor(zeros: [p.outFeatures])
    }
    if !plan.projections.isEmpty {
        notes.append("projections \(plan.projections.map { String($0.studentLayer) }.joined(separator: ", ")): "
                     + (keptHidden != nil ? "selection matrices (student dim j → its teacher dim), bias 0" : "N(0, 0.02²), bias 0"))
    }
    return InitializedStudent(student: student, projections: projections, keptHiddenDimensions: keptHidden,
                              keptHeads: keptHeads, keptNeurons: keptNeurons, notes: notes)
}

// MARK: - Fresh tensors

/// FNV-1a of a tensor name: the per-tensor random stream.
private func nameHash(_ name: String) -> UInt64 {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in name.utf8 { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
    return h
}

/// A fresh tensor as HF `_init_weights`: LayerNorm γ 1 / β 0, biases 0, other weights
/// N(0, std²) from a stream of (seed, name); `padRow` zeroes that word-embedding row.
func freshTensor(_ name: String, _ shape: [Int], std: Double, seed: UInt64, padRow: Int?) -> Tensor {
    let count = shape.reduce(1, *)
    if name.hasSuffix("LayerNorm.weight") { return Tensor(shape: shape, data: [Float](repeating: 1, count: count)) }
    if name.hasSuffix(".bias") { return Tensor(zeros: shape) }
    var rng = SplitMix64(seed: seed ^ nameHash(name))
    var data = (0..<count).map { _ in Float(rng.normal() * std) }
    if name == "embeddings.word_embeddings.weight", let pad = padRow, pad >= 0, pad < shape[0] {
        for c in 0..<shape[1] { data[pad * shape[1] + c] = 0 }
    }
    return Tensor(shape: shape, data: data)
}
