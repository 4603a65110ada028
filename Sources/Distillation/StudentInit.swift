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
// each axis (one axis table, `sliceAxes`, drives both the scores and the slicing). A sliced
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
        // Kept indices (nil = everything, i.e. a copy).
        var hidden: [Int]? = nil
        var headRows: [[Int]?] = Array(repeating: nil, count: s.layerCount)
        var neurons: [[Int]?] = Array(repeating: nil, count: s.layerCount)
        if slicing {
            var hiddenScore = [Double](repeating: 0, count: t.hiddenSize)
            for (name, tensor) in teacherTensors {
                guard let axes = sliceAxes(name)?.axes else { continue }
                for (a, kind) in axes.enumerated() where kind == .hidden { addSquaredSums(tensor, axis: a, into: &hiddenScore) }
            }
            let K = topIndices(hiddenScore, s.hiddenSize)
            hidden = K
            keptHidden = K
            var allHeads: [[Int]] = [], allNeurons: [[Int]] = []
            let D = t.headSize
            for (i, p) in layers.enumerated() {
                var rowScore = [Double](repeating: 0, count: t.layerHeads[p] * D)
                var ffnScore = [Double](repeating: 0, count: t.layerIntermediateSizes[p])
                for (name, tensor) in teacherTensors {
                    guard let (layer, axes) = sliceAxes(name), layer == p else { continue }
                    for (a, kind) in axes.enumerated() {
                        if kind == .heads { addSquaredSums(tensor, axis: a, into: &rowScore) }
                        if kind == .ffn { addSquaredSums(tensor, axis: a, into: &ffnScore) }
                    }
                }
                let headScore = (0..<t.layerHeads[p]).map { h in rowScore[(h * D)..<((h + 1) * D)].reduce(0, +) }
                let heads = topIndices(headScore, s.layerHeads[i])
                allHeads.append(heads)
                headRows[i] = heads.flatMap { h in (h * D)..<((h + 1) * D) }
                let J = topIndices(ffnScore, s.layerIntermediateSizes[i])
                allNeurons.append(J)
                neurons[i] = J
                notes.append("student layer \(i) ← teacher layer \(p): heads \(heads), \(J.count) of \(ffnScore.count) FFN neurons")
            }
            keptHeads = allHeads
            keptNeurons = allNeurons
            notes.insert("hidden dimensions: kept \(K.count) of \(t.hiddenSize) by weight norm", at: 0)
        } else {
            for (i, p) in layers.enumerated() { notes.append("student layer \(i) ← teacher layer \(p) (copied)") }
        }
        var fromTeacher: [String] = []   // non-layer groups taken from the teacher, for the notes
        for (name, shape) in plan.studentShapes {
            guard let (layer, axes) = sliceAxes(name) else {
                preconditionFailure("StudentInit: no axis table entry for '\(name)'")
            }
            // Student layer i reads teacher layer layers[i]; everything else keeps its name.
            let teacherName = layer.map { "encoder.layer.\(layers[$0]).\(name.split(separator: ".", maxSplits: 3)[3])" } ?? name
            let lists: [[Int]?] = axes.map { kind in
                switch kind {
                case .full: return nil
                case .hidden: return hidden
                case .heads: return headRows[layer!]
                case .ffn: return neurons[layer!]
                }
            }
            if let source = teacherTensors[teacherName], name.hasPrefix("classifier.") ? source.shape[0] == plan.classes : true {
                let sliced = sliceTensor(source, lists)
                precondition(sliced.shape == shape, "StudentInit: '\(name)' sliced to \(sliced.shape), expected \(shape)")
                student[name] = sliced
                let group = String(name.split(separator: ".")[0])
                if layer == nil, !fromTeacher.contains(group) { fromTeacher.append(group) }
            } else {
                student[name] = freshTensor(name, shape, std: 0.02, seed: seed, padRow: s.padTokenId)
                if name.hasSuffix(".weight") {
                    notes.append("\(name.dropLast(".weight".count)): new (the teacher has \(teacherTensors[teacherName] == nil ? "none" : "one of another shape")), N(0, 0.02²) weights, zero bias")
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

// MARK: - The axis table

/// What an axis of a BERT tensor indexes.
enum SliceAxis: Equatable {
    /// Vocabulary, positions, token types, labels: never sliced.
    case full
    /// The hidden size (residual stream).
    case hidden
    /// heads·headSize rows/columns of the attention projections.
    case heads
    /// FFN neurons.
    case ffn
}

/// Axes of each per-layer tensor, by name after `encoder.layer.<l>.`.
private let layerTensorAxes: [String: [SliceAxis]] = [
    "attention.self.query.weight": [.heads, .hidden], "attention.self.query.bias": [.heads],
    "attention.self.key.weight": [.heads, .hidden], "attention.self.key.bias": [.heads],
    "attention.self.value.weight": [.heads, .hidden], "attention.self.value.bias": [.heads],
    "attention.output.dense.weight": [.hidden, .heads], "attention.output.dense.bias": [.hidden],
    "attention.output.LayerNorm.weight": [.hidden], "attention.output.LayerNorm.bias": [.hidden],
    "intermediate.dense.weight": [.ffn, .hidden], "intermediate.dense.bias": [.ffn],
    "output.dense.weight": [.hidden, .ffn], "output.dense.bias": [.hidden],
    "output.LayerNorm.weight": [.hidden], "output.LayerNorm.bias": [.hidden],
]

/// Axes of the tensors outside the encoder layers.
private let globalTensorAxes: [String: [SliceAxis]] = [
    "embeddings.word_embeddings.weight": [.full, .hidden],
    "embeddings.position_embeddings.weight": [.full, .hidden],
    "embeddings.token_type_embeddings.weight": [.full, .hidden],
    "embeddings.LayerNorm.weight": [.hidden], "embeddings.LayerNorm.bias": [.hidden],
    "pooler.dense.weight": [.hidden, .hidden], "pooler.dense.bias": [.hidden],
    "classifier.weight": [.full, .hidden], "classifier.bias": [.full],
]

/// The encoder layer (nil outside the layers) and the axes of the BERT tensor `name`.
func sliceAxes(_ name: String) -> (layer: Int?, axes: [SliceAxis])? {
    if let axes = globalTensorAxes[name] { return (nil, axes) }
    let parts = name.split(separator: ".", maxSplits: 3)
    guard parts.count == 4, parts[0] == "encoder", parts[1] == "layer", let l = Int(parts[2]),
          let axes = layerTensorAxes[String(parts[3])] else { return nil }
    return (l, axes)
}

// MARK: - Helpers

/// Adds Σ of squared entries per index along `axis` of a 1-D or 2-D tensor to `scores`.
func addSquaredSums(_ t: Tensor, axis: Int, into scores: inout [Double]) {
    precondition(t.shape[axis] == scores.count, "score length \(scores.count) vs axis size \(t.shape[axis])")
    if t.shape.count == 1 {
        for i in 0..<t.count { scores[i] += Double(t.data[i]) * Double(t.data[i]) }
        return
    }
    let cols = t.shape[1]
    for r in 0..<t.shape[0] {
        for c in 0..<cols {
            let v = Double(t.data[r * cols + c])
            scores[axis == 0 ? r : c] += v * v
        }
    }
}

/// The indices of the `k` largest scores (ties to the lower index), in ascending order.
func topIndices(_ scores: [Double], _ k: Int) -> [Int] {
    let ranked = scores.indices.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
    return ranked.prefix(k).sorted()
}

/// `t` restricted to `lists[a]` along each axis a (nil keeps the whole axis); 1-D or 2-D.
func sliceTensor(_ t: Tensor, _ lists: [[Int]?]) -> Tensor {
    precondition(lists.count == t.shape.count && t.shape.count <= 2, "sliceTensor: rank \(t.shape.count)")
    if lists.allSatisfy({ $0 == nil }) { return t }
    if t.shape.count == 1 {
        let keep = lists[0]!
        return Tensor(shape: [keep.count], data: keep.map { t.data[$0] })
    }
    let rows = lists[0] ?? Array(0..<t.shape[0]), cols = lists[1] ?? Array(0..<t.shape[1])
    let n = t.shape[1]
    var out = [Float]()
    out.reserveCapacity(rows.count * cols.count)
    for r in rows { for c in cols { out.append(t.data[r * n + c]) } }
    return Tensor(shape: [rows.count, cols.count], data: out)
}

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
