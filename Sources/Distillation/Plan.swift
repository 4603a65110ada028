// DistillationPlan: a student spec checked against a teacher — which student layer learns
// from which teacher layer, through which projection, with which losses — before any
// training starts.
//
// Conventions (TinyBERT's, `task_distill.py`): hidden-state index 0 is the embedding
// output, index m ≥ 1 the output of encoder layer m (weights `encoder.layer.<m−1>`). The
// embeddings map 0 → 0 implicitly; student layers m = 1…M map to teacher layers g(m) ∈ 1…N,
// strictly increasing. Uniform: g(m) = ⌈m·N/M⌉ — exact when M divides N; otherwise rounded
// up, so g(M) = N (the last student layer always learns from the teacher's last layer) and
// the map stays strictly increasing for every M ≤ N. TinyBERT's code uses m·⌊N/M⌋ instead,
// which for N = 6, M = 4 gives 1, 2, 3, 4 and leaves the teacher's top layers unused; ours
// gives 2, 3, 5, 6.
// Where losses apply: embedding MSE at pair 0; hidden MSE and attention-score MSE at every
// pair m = 1…M (summed over pairs, as TinyBERT); DistilBERT's cosine loss at the last pair
// only (DistilBERT applies it to the final hidden states); soft/hard CE on the logits.
// Hidden-size mismatches get a learned Linear H_s → H_t per pair that needs one (named
// `distill.projection.<m>.weight/bias`, appended after the student's parameters); cosine
// goes through the same projection as MSE at that pair. TinyBERT shares one `fit_dense`
// across all layers; we give each pair its own (a few hundred thousand parameters more,
// and no layer's scale has to match another's).
// Attention-score MSE compares heads one to one, so it needs equal head counts per pair;
// otherwise the plan refuses with the layer and both counts. Left out on purpose:
// relation-based attention losses (MiniLM's value-relation), which would lift that limit.
import DistilleryModel
import DistilleryTraining
import Foundation

/// A learned Linear map from a student hidden state (H_s) to the teacher's (H_t).
public struct ProjectionSpec: Sendable, Equatable {
    /// The student hidden-state index it applies to (0 = embeddings).
    public var studentLayer: Int
    /// H_s.
    public var inFeatures: Int
    /// H_t.
    public var outFeatures: Int
    /// `distill.projection.<m>.weight`, shape [H_t, H_s] (PyTorch Linear layout).
    public var weightName: String { "distill.projection.\(studentLayer).weight" }
    /// `distill.projection.<m>.bias`, shape [H_t].
    public var biasName: String { "distill.projection.\(studentLayer).bias" }
    /// Its two tensors as (name, shape).
    public var shapes: [(name: String, shape: [Int])] {
        [(weightName, [outFeatures, inFeatures]), (biasName, [outFeatures])]
    }
    /// H_t·H_s + H_t.
    public var parameterCount: Int { outFeatures * inFeatures + outFeatures }
}

/// One student hidden state and the teacher hidden state it learns from.
public struct LayerPair: Sendable, Equatable {
    /// Student hidden-state index (0 = embeddings, m = output of encoder layer m).
    public var studentLayer: Int
    /// Teacher hidden-state index g(m).
    public var teacherLayer: Int
    /// The projection applied to the student state first, when hidden sizes differ and a
    /// hidden-state loss applies here.
    public var projection: ProjectionSpec?
    /// Losses at this pair, in `LossKind` order (may be empty: the pair is only the map).
    public var losses: [LossKind]
}

/// One training stage: which losses are on and for how many epochs.
public struct DistillationStage: Sendable, Equatable {
    /// "all losses", "intermediate" or "prediction".
    public var name: String
    public var epochs: Int
    public var losses: [LossKind]

    public init(name: String, epochs: Int, losses: [LossKind]) {
        self.name = name
        self.epochs = epochs
        self.losses = losses
    }
}

/// A student spec checked against a teacher config: the student's config, the layer pairs,
/// projections, losses per pair, stages, and the parameter layout to train.
public struct DistillationPlan: Sendable {
    /// The recipe.
    public let spec: StudentSpec
    /// The teacher's architecture.
    public let teacher: BertConfig
    /// The student's architecture (vocabulary, positions, eps and dropout from the teacher).
    public let student: BertConfig
    /// Classes of the classifier head (0: no classifier; soft/hard CE need one).
    public let classes: Int
    /// g(m) for m = 1…M (teacher hidden-state indices).
    public let layerMap: [Int]
    /// For teacher-layers / teacher-slice: the 0-based teacher layer each student layer's
    /// weights come from; nil for random initialisation.
    public let initLayers: [Int]?
    /// Layer pairs: the embeddings (when embedding MSE is on), then m = 1…M.
    public let pairs: [LayerPair]
    /// Stages in order.
    public let stages: [DistillationStage]
    /// Remarks printed with the plan (losses that are off and why it matters).
    public let notes: [String]

    /// The student's tensors in canonical order (encoder, pooler, classifier).
    public var studentShapes: [(name: String, shape: [Int])] {
        bertParameterShapes(student, heads: student.classifierHeads(classes: classes))
    }
    /// The projections, in pair order.
    public var projections: [ProjectionSpec] { pairs.compactMap(\.projection) }
    /// Everything that trains: the student's tensors, then the projections' tensors.
    public var parameterShapes: [(name: String, shape: [Int])] {
        studentShapes + projections.flatMap(\.shapes)
    }
    /// The parameter layout of `parameterShapes`.
    public var layout: ParameterLayout { ParameterLayout(parameterShapes) }

    /// Parameters of the teacher with its classifier heads (a pooler unless it mean-pools).
    public var teacherParameterCount: Int {
        bertParameterShapes(teacher, heads: teacher.classifierHeads(classes: classes)).reduce(0) { $0 + $1.shape.reduce(1, *) }
    }
    /// Parameters of the student (what is kept after distillation).
    public var studentParameterCount: Int { studentShapes.reduce(0) { $0 + $1.shape.reduce(1, *) } }
    /// Parameters of the projections (trained, then dropped).
    public var projectionParameterCount: Int { projections.reduce(0) { $0 + $1.parameterCount } }

    /// Checks `spec` against `teacher` and builds the plan. `classes` is the label count of
    /// the task (the teacher's classifier, for soft CE); 0 distils a bare encoder.
    public init(spec: StudentSpec, teacher: BertConfig, classes: Int) throws(DistillationError) {
        let src = spec.source
        let a = spec.architecture
        let M = a.layers, N = teacher.layerCount, Hs = a.hiddenSize, Ht = teacher.hiddenSize

        // Prediction losses need a classifier over the teacher's classes.
        guard classes >= 0 else {
            throw DistillationError(src, "has \(classes) classes", hint: "the class count is 0 (bare encoder) or more")
        }
        for kind in [LossKind.softCE, .hardCE] where spec.losses[kind] > 0 && classes == 0 {
            throw DistillationError(src, keyPath: "losses.\(kind.rawValue)", "is on but the task has no classes",
                                    hint: "\(kind.title) needs a classifier; distil on a labelled dataset with a fine-tuned teacher, or set it to 0")
        }
        if spec.losses[.softCE] > 0, !teacher.labels.isEmpty, teacher.labels.count != classes {
            throw DistillationError(src, keyPath: "losses.soft_ce", "needs the teacher's logits over \(classes) classes but the teacher's classifier has \(teacher.labels.count) labels",
                                    hint: "use a teacher fine-tuned on this dataset (kd finetune)")
        }
        // Widths against the teacher.
        guard Hs <= Ht else {
            throw DistillationError(src, keyPath: "architecture.hidden_size", "is \(Hs), wider than the teacher's \(Ht)",
                                    hint: "a student is smaller than its teacher; projections map a narrower student (H_s ≤ H_t) up to the teacher's hidden size")
        }
        guard M <= N else {
            throw DistillationError(src, keyPath: "architecture.layers", "is \(M) but the teacher has only \(N) layers",
                                    hint: "a strictly increasing layer map needs at most \(N) student layers")
        }
        // The layer map.
        let layerMap: [Int]
        switch spec.layerMap {
        case .uniform: layerMap = (1...M).map { m in (m * N + M - 1) / M }
        case .last: layerMap = (1...M).map { N - M + $0 }
        case .explicit(let list):
            if let i = list.firstIndex(where: { $0 < 1 || $0 > N }) {
                throw DistillationError(src, keyPath: "layer_map.teacher_layers", "maps student layer \(i + 1) to teacher layer \(list[i]), outside 1…\(N)",
                                        hint: "teacher layers are hidden-state indices 1…\(N) (0 is the embeddings, mapped 0 → 0 implicitly)")
            }
            layerMap = list
        }
        assert(zip(layerMap, layerMap.dropFirst()).allSatisfy { $0 < $1 }, "layer map must be strictly increasing")

        // Initialisation: which teacher layers, and whether their shapes allow it.
        func picked(_ pick: LayerPick) throws(DistillationError) -> [Int] {
            switch pick {
            case .explicit(let list):
                if let i = list.firstIndex(where: { $0 >= N }) {
                    throw DistillationError(src, keyPath: "init.layers", "names teacher layer \(list[i]) for student layer \(i), outside 0…\(N - 1)",
                                            hint: "init layers are 0-based teacher weight indices (encoder.layer.<i>)")
                }
                return list
            case .everyOther:
                guard 2 * M - 1 <= N else {
                    throw DistillationError(src, keyPath: "init.pick", "\"every-other\" needs 2·\(M)−1 = \(2 * M - 1) teacher layers, the teacher has \(N)",
                                            hint: "use \"first\", \"last\", \"mapped\" or an explicit list")
                }
                return (0..<M).map { N - 1 - 2 * (M - 1 - $0) }
            case .first: return Array(0..<M)
            case .last: return Array((N - M)..<N)
            case .mapped: return layerMap.map { $0 - 1 }
            }
        }
        let initLayers: [Int]?
        switch spec.initialization {
        case .random: initLayers = nil
        case .teacherLayers(let pick):
            let layers = try picked(pick)
            guard Hs == Ht else {
                throw DistillationError(src, keyPath: "init.from", "\"teacher-layers\" copies whole layers but hidden_size \(Hs) differs from the teacher's \(Ht)",
                                        hint: "use \"teacher-slice\" for a narrower student, or \"random\"")
            }
            for (i, p) in layers.enumerated() where a.layerHeads[i] != teacher.layerHeads[p] || a.layerIntermediateSizes[i] != teacher.layerIntermediateSizes[p] || a.headSize != teacher.headSize {
                throw DistillationError(src, keyPath: "init.from", "\"teacher-layers\" copies teacher layer \(p) (\(teacher.layerHeads[p]) heads of \(teacher.headSize), FFN \(teacher.layerIntermediateSizes[p])) into student layer \(i) (\(a.layerHeads[i]) heads of \(a.headSize), FFN \(a.layerIntermediateSizes[i])): shapes differ",
                                        hint: "give the student the teacher's widths, or use \"teacher-slice\"")
            }
            initLayers = layers
        case .teacherSlice(let pick):
            let layers = try picked(pick)
            guard a.headSize == teacher.headSize else {
                throw DistillationError(src, keyPath: "architecture.heads", "gives heads of \(a.headSize) dimensions (hidden \(Hs) / \(a.heads) heads) but the teacher's heads have \(teacher.headSize)",
                                        hint: "\"teacher-slice\" keeps whole teacher heads; choose heads = hidden_size / \(teacher.headSize)")
            }
            for (i, p) in layers.enumerated() {
                guard a.layerHeads[i] <= teacher.layerHeads[p] else {
                    throw DistillationError(src, keyPath: "architecture.heads", "student layer \(i) has \(a.layerHeads[i]) heads, more than teacher layer \(p)'s \(teacher.layerHeads[p])",
                                            hint: "\"teacher-slice\" keeps a subset of the teacher's heads; use at most \(teacher.layerHeads[p]) or \"random\"")
                }
                guard a.layerIntermediateSizes[i] <= teacher.layerIntermediateSizes[p] else {
                    throw DistillationError(src, keyPath: "architecture.intermediate_size", "student layer \(i) has FFN \(a.layerIntermediateSizes[i]), wider than teacher layer \(p)'s \(teacher.layerIntermediateSizes[p])",
                                            hint: "\"teacher-slice\" keeps a subset of the teacher's FFN neurons; use at most \(teacher.layerIntermediateSizes[p]) or \"random\"")
                }
            }
            initLayers = layers
        }

        // The student's config.
        var s = BertConfig(vocabSize: teacher.vocabSize, hiddenSize: Hs, layerCount: M, headCount: a.heads,
                           intermediateSize: a.intermediateSize, maxPositions: teacher.maxPositions,
                           typeVocabSize: teacher.typeVocabSize, layerNormEps: teacher.layerNormEps,
                           padTokenId: teacher.padTokenId, labels: teacher.labels.count == classes ? teacher.labels : [])
        s.layerHeads = a.layerHeads
        s.layerIntermediateSizes = a.layerIntermediateSizes
        s.hiddenDropout = teacher.hiddenDropout
        s.attentionDropout = teacher.attentionDropout
        s.classifierDropout = teacher.classifierDropout
        s.classifierPooling = teacher.classifierPooling   // the student reads the sequence as its teacher does
        do { try s.validate(source: src) } catch {
            throw DistillationError(src, keyPath: "architecture", "does not make a valid BERT config: \(error)", hint: "fix the sizes")
        }

        // Attention-score MSE needs equal head counts per pair.
        var notes: [String] = []
        let headMismatch = (1...M).first { s.layerHeads[$0 - 1] != teacher.layerHeads[layerMap[$0 - 1] - 1] }
        if let m = headMismatch {
            let sh = s.layerHeads[m - 1], th = teacher.layerHeads[layerMap[m - 1] - 1]
            if spec.losses[.attentionMSE] > 0 {
                throw DistillationError(src, keyPath: "losses.attention_mse",
                                        "is on but student layer \(m) has \(sh) heads and teacher layer \(layerMap[m - 1]) has \(th): per-head attention-score MSE needs equal head counts",
                                        hint: "set \"attention_mse\": 0, or give the student \(th) heads in that layer (a relation-based loss such as MiniLM's is not implemented yet)")
            }
            notes.append("attention MSE: off (weight 0) — and it could not be on: student layer \(m) has \(sh) heads, teacher layer \(layerMap[m - 1]) has \(th)")
        } else if spec.losses[.attentionMSE] == 0 {
            notes.append("attention MSE: off (weight 0); head counts match at every pair, so it could be turned on")
        }

        // Pairs, losses and projections.
        func pair(_ m: Int, _ t: Int, _ losses: [LossKind]) -> LayerPair {
            let needsProjection = Hs != Ht && losses.contains { $0 == .embeddingMSE || $0 == .hiddenMSE || $0 == .hiddenCosine }
            return LayerPair(studentLayer: m, teacherLayer: t,
                             projection: needsProjection ? ProjectionSpec(studentLayer: m, inFeatures: Hs, outFeatures: Ht) : nil,
                             losses: losses)
        }
        let w = spec.losses
        var pairs: [LayerPair] = []
        if w[.embeddingMSE] > 0 { pairs.append(pair(0, 0, [.embeddingMSE])) }
        for m in 1...M {
            var losses: [LossKind] = []
            if w[.hiddenMSE] > 0 { losses.append(.hiddenMSE) }
            if w[.hiddenCosine] > 0 && m == M { losses.append(.hiddenCosine) }
            if w[.attentionMSE] > 0 { losses.append(.attentionMSE) }
            pairs.append(pair(m, layerMap[m - 1], losses))
        }
        let stages: [DistillationStage]
        switch spec.schedule {
        case .oneStage(let epochs):
            stages = [DistillationStage(name: "all losses", epochs: epochs, losses: w.active)]
        case .twoStage(let e1, let e2):
            stages = [DistillationStage(name: "intermediate", epochs: e1, losses: w.active.filter { !$0.isPrediction }),
                      DistillationStage(name: "prediction", epochs: e2, losses: w.active.filter(\.isPrediction))]
        }
        self.spec = spec
        self.teacher = teacher
        self.classes = classes
        self.layerMap = layerMap
        self.initLayers = initLayers
        self.student = s
        self.pairs = pairs
        self.stages = stages
        self.notes = notes
    }
}

// MARK: - Printing

extension DistillationPlan: CustomStringConvertible {
    /// The plan as a readable table: pairs, projections, losses, stages, parameter counts.
    public var description: String {
        func arch(_ c: BertConfig) -> String {
            let heads = Set(c.layerHeads).count == 1 ? "\(c.layerHeads[0])" : c.layerHeads.map(String.init).joined(separator: "/")
            let ffn = Set(c.layerIntermediateSizes).count == 1 ? "\(c.layerIntermediateSizes[0])" : c.layerIntermediateSizes.map(String.init).joined(separator: "/")
            return "\(c.layerCount) layers, hidden \(c.hiddenSize), \(heads) heads of \(c.headSize), FFN \(ffn)"
        }
        func weighted(_ k: LossKind) -> String {
            let v = spec.losses[k]
            return "\(k.title) ×\(v == v.rounded() ? String(Int(v)) : String(v))"
        }
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        func layerName(_ i: Int) -> String { i == 0 ? "0 (embeddings)" : String(i) }
        var lines: [String] = []
        lines.append("distillation plan: \(spec.name)" + (spec.description.isEmpty ? "" : " — \(spec.description)"))
        lines.append("teacher: \(arch(teacher))")
        lines.append("student: \(arch(student))")
        switch spec.initialization {
        case .random(let std): lines.append("init:    random, normal(0, \(std)²) weights, zero biases, LayerNorm 1/0")
        case .teacherLayers(let pick):
            lines.append("init:    copy teacher layers \(initLayers!.map(String.init).joined(separator: ", ")) (0-based, \(pick.rule)) + embeddings, pooler, classifier when the teacher has one")
        case .teacherSlice(let pick):
            lines.append("init:    slice teacher layers \(initLayers!.map(String.init).joined(separator: ", ")) (0-based, \(pick.rule)): strongest heads, FFN neurons, hidden dims")
        }
        lines.append("layer map (\(spec.layerMap.kind)): student hidden state m ← teacher hidden state g(m); 0 = embeddings")
        let header = [pad("student", 16), pad("teacher", 16), pad("projection", 20), "losses"]
        lines.append("  " + header.joined(separator: " "))
        for p in pairs {
            let proj = p.projection.map { "\($0.inFeatures)→\($0.outFeatures), learned" } ?? (p.losses.isEmpty ? "—" : "none (\(student.hiddenSize) = \(teacher.hiddenSize))")
            let losses = p.losses.isEmpty ? "— (map only)" : p.losses.map(weighted).joined(separator: ", ")
            lines.append("  " + [pad(layerName(p.studentLayer), 16), pad(layerName(p.teacherLayer), 16), pad(proj, 20), losses].joined(separator: " "))
        }
        let prediction = [LossKind.softCE, .hardCE].filter { spec.losses[$0] > 0 }
        if !prediction.isEmpty {
            var text = prediction.map(weighted).joined(separator: ", ")
            if spec.losses[.softCE] > 0 { text += "; temperature \(spec.temperature) (soft CE scaled by T²)" }
            lines.append("  " + [pad("logits", 16), pad("logits", 16), pad("—", 20), text].joined(separator: " "))
        }
        lines += notes.map { "note: " + $0 }
        for (i, stage) in stages.enumerated() {
            let label = stages.count == 1 ? "schedule: one stage" : "stage \(i + 1) (\(stage.name))"
            lines.append("\(label), \(stage.epochs) epoch\(stage.epochs == 1 ? "" : "s"): \(stage.losses.map(\.title).joined(separator: ", "))")
        }
        func count(_ n: Int) -> String {
            let digits = String(n)
            var out = ""
            for (i, ch) in digits.reversed().enumerated() { if i > 0 && i % 3 == 0 { out.append(",") }; out.append(ch) }
            return String(out.reversed())
        }
        let ratio = Double(studentParameterCount) / Double(teacherParameterCount)
        let pooler = student.classifierPooling == .cls ? "pooler" : "mean pooling"
        let head = classes > 0 ? "with \(pooler) and \(classes)-class classifier" : "with \(pooler)"
        lines.append("parameters (\(head)): teacher \(count(teacherParameterCount)), student \(count(studentParameterCount)) (\(String(format: "%.1f", 100 * ratio))% of the teacher), projections \(count(projectionParameterCount))" + (projections.isEmpty ? "" : " (\(projections.count) × \(count(projections[0].parameterCount)), dropped after training)"))
        return lines.joined(separator: "\n")
    }
}
