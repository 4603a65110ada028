// BiGRUStudent: a recurrent student spec (`"architecture": {"kind": "bigru", …}` in a
// students/*.json file), its initial weights, and the distillation objective that trains it
// on the teacher's cached logits — Tang et al. 2019 ("Distilling task-specific knowledge
// from BERT into simple neural networks"): a small bidirectional RNN over the teacher's
// wordpieces, trained on the teacher's logits (MSE, their choice) or its soft labels (soft
// cross-entropy at a temperature), optionally plus cross-entropy on gold labels, over the
// original and augmented copies of the training set.
//
// A BiGRU has no hidden states or attention maps that line up with the teacher's, so a spec
// that asks for a layer map or an intermediate loss is refused with the reason. Word
// embeddings start from the teacher's table, multiplied by a seeded Gaussian projection
// (variance 1/E, norms kept in expectation) when `embedding_size` is smaller than the
// teacher's width; GRU and classifier weights start as PyTorch's, uniform(±1/√fan).
// Left out on purpose: dropout, two-stage schedules, PCA for the projection.
import DistilleryJSON
import DistilleryModel
import DistilleryTensor
import DistilleryTraining
import Foundation

/// The losses a BiGRU student trains on, by their JSON key.
public enum BiGRULoss: String, CaseIterable, Sendable {
    /// Soft cross-entropy at the spec's temperature (×T²), as the BERT students use.
    case softCE = "soft_ce"
    /// Mean over the batch of Σ_c (z_s − z_t)², Tang et al.'s logit regression.
    case logitMSE = "logit_mse"
    /// Cross-entropy on gold labels (augmented copies have none and are left out).
    case hardCE = "hard_ce"
}

/// A BiGRU student and its recipe.
public struct BiGRUStudentSpec: Sendable, Equatable {
    public var name: String
    public var description: String
    /// Word-embedding width; nil: the teacher's hidden size (its table copied unprojected).
    public var embeddingSize: Int?
    public var hiddenSize: Int
    public var layers: Int
    /// Start the embeddings from the teacher's table (else uniform ±0.1, seeded).
    public var embeddingsFromTeacher: Bool
    /// Weight of each loss (0 or missing = off).
    public var losses: [BiGRULoss: Double]
    public var temperature: Double
    public var epochs: Int
    public var training: TrainingDefaults
    public var source: String

    /// True when student JSON declares `"architecture": {"kind": "bigru", …}`.
    public static func declares(json data: Data) -> Bool {
        (try? JSONValue.parse(data))?.objectValue?["architecture"]?.objectValue?["kind"]?.stringValue == BiGRUConfig.architecture
    }

    /// Parses and checks a BiGRU student file; `source` names it in errors.
    public init(json data: Data, source: String) throws(DistillationError) {
        let root: JSONValue
        do { root = try JSONValue.parse(data) } catch {
            throw DistillationError(source, "is not valid JSON (\(error))", hint: "fix the syntax; see students/README.md for the schema")
        }
        if let object = root.objectValue, object["layer_map"] != nil {
            throw DistillationError(source, keyPath: "layer_map", "is given for a BiGRU student",
                                    hint: "a BiGRU has no transformer layers whose hidden states could match the teacher's; remove 'layer_map' and train on the logits (soft_ce, logit_mse, hard_ce)")
        }
        let top = try ObjectReader(root, path: "", source: source, allowed: [
            "format", "version", "name", "description", "architecture", "init", "losses", "temperature", "schedule", "training",
        ])
        guard try top.string("format") == StudentSpec.formatName, try top.int("version") == StudentSpec.formatVersion else {
            throw top.error("format", "is not \"\(StudentSpec.formatName)\" version \(StudentSpec.formatVersion)", hint: "is this a student file? see students/README.md")
        }
        name = try top.string("name")
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw top.error("name", "\"\(name)\" is empty or has characters other than letters, digits, '-', '_', '.'", hint: "use a short identifier such as \"bigru-h256\"")
        }
        description = try top.optionalString("description") ?? ""
        let arch = try top.object("architecture", allowed: ["kind", "embedding_size", "hidden_size", "layers"])
        embeddingSize = try arch.optionalInt("embedding_size")
        hiddenSize = try arch.int("hidden_size")
        layers = try arch.int("layers")
        for (key, value, limit) in [("embedding_size", embeddingSize ?? 1, BiGRUConfig.maximumHidden),
                                    ("hidden_size", hiddenSize, BiGRUConfig.maximumHidden), ("layers", layers, BiGRUConfig.maximumLayers)]
            where value < 1 || value > limit {
            throw arch.error(key, "is \(value)", hint: "it lies in 1...\(limit) (Tang et al. used one layer of 300 units)")
        }
        let initObject = try top.object("init", allowed: ["from"])
        let from = try initObject.string("from")
        guard from == "teacher-embeddings" || from == "random" else {
            throw initObject.error("from", "is \"\(from)\"", hint: "a BiGRU student starts from \"teacher-embeddings\" (the teacher's word embeddings, projected to embedding_size) or \"random\"")
        }
        embeddingsFromTeacher = from == "teacher-embeddings"
        let intermediate = ["embedding_mse", "hidden_mse", "hidden_cosine", "attention_mse"]
        let lossObject = try top.object("losses", allowed: BiGRULoss.allCases.map(\.rawValue) + intermediate)
        if let bad = intermediate.first(where: lossObject.has) {
            throw lossObject.error(bad, "is an intermediate loss, and a BiGRU student has no hidden states or attention scores to match the teacher's",
                                   hint: "remove it; train a BiGRU on the logits: soft_ce, logit_mse (Tang et al. 2019) and optionally hard_ce")
        }
        var weights: [BiGRULoss: Double] = [:]
        for kind in BiGRULoss.allCases {
            let w = try lossObject.optionalDouble(kind.rawValue) ?? 0
            guard w >= 0, w.isFinite else { throw lossObject.error(kind.rawValue, "is \(w)", hint: "loss weights are finite and ≥ 0 (0 turns the loss off)") }
            if w > 0 { weights[kind] = w }
        }
        guard !weights.isEmpty else {
            throw lossObject.error(nil, "gives every loss weight 0", hint: "turn on at least one of soft_ce, logit_mse, hard_ce")
        }
        losses = weights
        temperature = try top.optionalDouble("temperature") ?? 1
        guard temperature > 0, temperature.isFinite else {
            throw top.error("temperature", "is \(temperature)", hint: "the softmax temperature of soft_ce must be a finite number > 0")
        }
        // The BERT schedule's keys are known here so that a two-stage schedule is refused for what it is.
        let schedule = try top.object("schedule", allowed: ["kind", "epochs", "intermediate_epochs", "prediction_epochs"])
        guard try schedule.string("kind") == "one-stage" else {
            throw schedule.error("kind", "is not \"one-stage\"", hint: "a BiGRU student has no intermediate stage; use {\"kind\": \"one-stage\", \"epochs\": N}")
        }
        for key in ["intermediate_epochs", "prediction_epochs"] where schedule.has(key) {
            throw schedule.error(key, "only applies to a two-stage schedule", hint: "a BiGRU student runs one stage; give 'epochs'")
        }
        epochs = try schedule.int("epochs")
        guard epochs >= 1, epochs <= maximumEpochs else { throw schedule.error("epochs", "is \(epochs)", hint: "a run has 1...\(maximumEpochs) epochs") }
        training = top.has("training")
            ? try TrainingDefaults(try top.object("training", allowed: ["learning_rate", "batch_size", "max_length", "warmup_ratio", "seed"]))
            : TrainingDefaults()
        self.source = source
    }

    /// The model config against a teacher: its vocabulary, positions and labels.
    public func config(teacher: BertConfig, labels: [String]) -> BiGRUConfig {
        BiGRUConfig(vocabSize: teacher.vocabSize, embeddingSize: embeddingSize ?? teacher.hiddenSize, hiddenSize: hiddenSize,
                    layers: layers, labels: labels, maxPositions: teacher.maxPositions)
    }

    /// The plan as shown before training.
    public func planText(_ config: BiGRUConfig, parameters: Int) -> String {
        let lossText = BiGRULoss.allCases.compactMap { k in losses[k].map { "\(k.rawValue) \($0)" } }.joined(separator: ", ")
        return """
        student \(name) (\(source)): BiGRU, \(layers) bidirectional layer\(layers == 1 ? "" : "s") of \(hiddenSize) units per direction, \
        embeddings \(config.embeddingSize) over \(config.vocabSize) wordpieces, max+mean pooling, \(config.labels.count) classes — \(parameters) parameters
        init: \(embeddingsFromTeacher ? "teacher word embeddings\(embeddingSize.map { " projected to \($0)" } ?? "")" : "random embeddings"), GRU and classifier uniform(±1/√fan)
        losses: \(lossText)\(losses[.softCE] != nil ? ", temperature \(temperature)" : ""); one stage of \(epochs) epoch\(epochs == 1 ? "" : "s")
        """
    }
}

/// The student's initial tensors: the teacher's word embeddings (projected when narrower),
/// GRU and classifier weights uniform(±1/√fan) as PyTorch initialises them, all from `seed`.
public func initializeBiGRU(_ config: BiGRUConfig, teacherEmbeddings: Tensor?, seed: UInt64) -> [String: Tensor] {
    var rng = SplitMix64(seed: seed ^ 0x4247_5255)   // "BGRU"
    func uniform(_ count: Int, _ bound: Double) -> [Float] { (0..<count).map { _ in Float((rng.uniform() * 2 - 1) * bound) } }
    var tensors: [String: Tensor] = [:]
    let (V, E) = (config.vocabSize, config.embeddingSize)
    for (name, shape) in biGRUParameterShapes(config) {
        let count = shape.reduce(1, *)
        if name == "embeddings.word_embeddings.weight" {
            guard let table = teacherEmbeddings else {
                tensors[name] = Tensor(shape: shape, data: uniform(count, 0.1))
                continue
            }
            let Et = table.shape[1]
            if Et == E { tensors[name] = table; continue }
            let projection = (0..<(Et * E)).map { _ in Float(rng.normal() / Double(E).squareRoot()) }
            var out = [Float](repeating: 0, count: V * E)
            table.data.withUnsafeBufferPointer { t in projection.withUnsafeBufferPointer { p in out.withUnsafeMutableBufferPointer { o in
                gemm(transA: false, transB: false, m: V, n: E, k: Et, a: t.baseAddress!, lda: Et, b: p.baseAddress!, ldb: E,
                     c: o.baseAddress!, ldc: E)
            } } }
            tensors[name] = Tensor(shape: shape, data: out)
        } else {
            let fan = name.hasPrefix("classifier.") ? config.pooledSize : config.hiddenSize
            tensors[name] = Tensor(shape: shape, data: uniform(count, 1 / Double(fan).squareRoot()))
        }
    }
    return tensors
}

/// One step of BiGRU distillation: forward, the spec's weighted losses on the logits, backward.
public final class BiGRUDistillationObjective: TrainingObjective {
    public let model: BiGRUModel
    public let spec: BiGRUStudentSpec
    /// Training examples (label −1 for augmented copies) and the teacher's logits for each.
    public let examples: [TrainingExample]
    public let teacherLogits: [[Float]]
    public let paddingId: Int32

    public init(model: BiGRUModel, spec: BiGRUStudentSpec, examples: [TrainingExample], teacherLogits: [[Float]], paddingId: Int32) {
        precondition(examples.count == teacherLogits.count, "BiGRUDistillationObjective: \(examples.count) examples, \(teacherLogits.count) teacher rows")
        (self.model, self.spec, self.examples, self.teacherLogits, self.paddingId) = (model, spec, examples, teacherLogits, paddingId)
    }

    public func lossAndGradients(rows: ArraySlice<Int>, step: Int, parameters: ParameterBlock, gradients: inout Gradients) throws -> Double {
        let (batch, labels) = paddedBatch(rows, from: examples, paddingId: paddingId)
        let acts = try model.forward(batch, parameters: parameters, keepCaches: true)
        let (B, L) = (batch.batchSize, model.classCount)
        let zs = acts.logits.data, zt = rows.flatMap { teacherLogits[$0] }
        var dLogits = [Float](repeating: 0, count: B * L)
        var loss = 0.0
        if let w = spec.losses[.softCE] {
            zs.withUnsafeBufferPointer { s in zt.withUnsafeBufferPointer { t in dLogits.withUnsafeMutableBufferPointer { d in
                loss += w * softCrossEntropyForward(studentLogits: s.baseAddress!, teacherLogits: t.baseAddress!, batch: B, classes: L,
                                                    temperature: spec.temperature).loss
                softCrossEntropyBackward(dStudentLogits: d.baseAddress!, studentLogits: s.baseAddress!, teacherLogits: t.baseAddress!,
                                         batch: B, classes: L, temperature: spec.temperature, dLoss: Float(w), accumulate: true)
            } } }
        }
        if let w = spec.losses[.logitMSE] {
            var sum = 0.0
            for i in 0..<(B * L) {
                let diff = Double(zs[i]) - Double(zt[i])
                sum += diff * diff
                dLogits[i] += Float(w * 2 * diff / Double(B))
            }
            loss += w * sum / Double(B)
        }
        if let w = spec.losses[.hardCE] {
            let gold = labels.indices.filter { labels[$0] >= 0 }
            if !gold.isEmpty {
                let z = gold.flatMap { Array(zs[($0 * L)..<(($0 + 1) * L)]) }, y = gold.map { labels[$0] }
                var probs = [Float](repeating: 0, count: gold.count * L), dz = probs
                loss += w * crossEntropyForward(probs: &probs, logits: z, labels: y, batch: gold.count, classes: L)
                crossEntropyBackward(dLogits: &dz, logits: z, labels: y, batch: gold.count, classes: L, dLoss: Float(w))
                for (r, b) in gold.enumerated() { for j in 0..<L { dLogits[b * L + j] += dz[r * L + j] } }
            }
        }
        model.backward(acts, dLogits: dLogits, parameters: parameters, gradients: &gradients)
        return loss
    }
}
