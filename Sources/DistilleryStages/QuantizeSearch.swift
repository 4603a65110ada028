// QuantizeSearch: scoring quantization plans on a dev split — the sensitivity table (each
// unit quantized alone) and the accuracy-aware mixed-precision search of `kd quantize
// --max-drop`.
//
// A plan is scored against the fp32 model on the same dev examples: macro-F1 and its drop
// in points (a classifier), mean KL(fp32 ‖ quantized) of the class probabilities, and the
// mean cosine between the fp32 and quantized sentence embeddings (the model's pooling of
// the last hidden states; every model has one). The search starts from every unit in the
// scheme and, while the drop exceeds the target, moves the next most sensitive unit (by
// its drop alone, then its KL, then its cosine) one step up in precision — int4 → int8 →
// bf16 → fp32 — scoring each step. It stops at the first plan within the
// target; when none is, the plan with the smallest drop is kept and the report says so.
// Left out on purpose: searching over subsets (the greedy order is what Intel Neural
// Compressor and ORT's tools do, and costs one dev pass per step).
import DistilleryModel
import DistilleryTensor
import DistilleryTraining
import Foundation
import Quantization

/// A plan's scores on the dev examples against the fp32 model.
public struct PlanScore: Codable, Sendable {
    /// Macro-F1 and its drop from fp32 in points (nil without a classifier).
    public var macroF1: Double?
    public var drop: Double?
    /// Mean KL(fp32 ‖ plan) of the class probabilities, nats (nil without a classifier).
    public var meanKL: Double?
    /// Mean cosine of the sentence embeddings with fp32's.
    public var meanCosine: Double
    public var minCosine: Double
}

/// One unit quantized alone.
public struct SensitivityRow: Codable, Sendable {
    public var unit: String
    public var format: String
    public var score: PlanScore
}

/// One plan the search scored.
public struct SearchTrial: Codable, Sendable {
    public var step: Int
    /// Units moved up in precision so far, with their storage ("int8", "bf16", "fp32").
    public var promoted: [String: String]
    /// The unit this step moved (nil for the first plan).
    public var moved: String?
    public var score: PlanScore
    /// Bytes of the quantized tensors' stored parts plus 4 per fp32 weight of the units.
    public var weightBytes: Int

    /// "all int4-g32" or "int4-g32, layer.0.ffn.out → int8, …".
    public var description: String {
        promoted.isEmpty ? "every unit quantized" : "\(promoted.count) unit(s) in higher precision: " + promoted.keys.sorted().map { "\($0) → \(promoted[$0]!)" }.joined(separator: ", ")
    }
}

/// The dev examples, the fp32 model's outputs on them, and the scoring of a plan.
struct PlanEvaluator {
    let bundle: ModelBundle
    let sequences: [[Int32]]
    let truth: [Int32]?
    let classes: Int
    let reference: (logits: [[Float]], embeddings: [[Float]])
    let referenceF1: Double?
    let batchSize: Int

    init(bundle: ModelBundle, encoder: BertEncoder, data: String, size: Int, batchSize: Int, needsClassifier: Bool) throws {
        self.bundle = bundle
        self.batchSize = batchSize
        classes = encoder.heads.classifierLabels
        if needsClassifier && classes == 0 {
            throw StageError("\(bundle.path): --max-drop keeps a classifier's dev macro-F1, and the model has no classifier head — fine-tune it first (kd finetune), or use --sensitivity alone (embedding cosine)")
        }
        let folder = try PreparedFolder(path: data)
        let rows = try folder.read(.dev)
        guard !rows.isEmpty else { throw StageError("\(folder.filePath(.dev)): no examples — the sensitivity table and --max-drop score on the dev split") }
        let chosen = evenlySpaced(rows.count, size).map { rows[$0] }
        let maxLength = bundle.storedMaxLength ?? min(128, bundle.config.maxPositions)
        sequences = chosen.map { bundle.tokenizer.encode($0.text, maxLength: maxLength).ids }
        if classes > 0 {
            guard folder.manifest.labels == bundle.config.labels else {
                throw StageError("\(folder.path)/manifest.json: labels [\(folder.manifest.labels.joined(separator: ", "))] differ from the model's [\(bundle.config.labels.joined(separator: ", "))] (\(bundle.path)) — score on the data the model was fine-tuned on")
            }
            truth = try labelIndices(chosen, labels: bundle.config.labels, file: folder.filePath(.dev), known: "the model \(bundle.path)")
        } else {
            truth = nil
        }
        let reference = try Self.outputs(encoder, sequences: sequences, bundle: bundle, batchSize: batchSize)
        let classes = self.classes
        referenceF1 = truth.map { t in
            ClassificationMetrics(truth: t.map(Int.init), predicted: reference.logits.map(argmax), classCount: classes).macroF1
        }
        self.reference = reference
    }

    /// Logits (when there is a classifier) and sentence embeddings of every sequence, in order.
    static func outputs(_ encoder: BertEncoder, sequences: [[Int32]], bundle: ModelBundle, batchSize: Int) throws -> (logits: [[Float]], embeddings: [[Float]]) {
        var logits = [[Float]](repeating: [], count: sequences.count), embeddings = logits
        let order = sequences.indices.sorted { sequences[$0].count < sequences[$1].count }
        for start in stride(from: 0, to: order.count, by: batchSize) {
            let chunk = Array(order[start..<min(start + batchSize, order.count)])
            let T = chunk.map { sequences[$0].count }.max()!
            var ids = [Int32](repeating: bundle.tokenizer.paddingId, count: chunk.count * T), mask = [Int32](repeating: 0, count: chunk.count * T)
            for (r, i) in chunk.enumerated() { for (t, id) in sequences[i].enumerated() { ids[r * T + t] = id; mask[r * T + t] = 1 } }
            let batch = EncoderBatch(ids: ids, mask: mask, batchSize: chunk.count, sequenceLength: T)
            let out: EncoderOutput
            do { out = try encoder.forward(batch) } catch { throw StageError(file: bundle.path, error) }
            let pooled = pool(out.lastHidden, mask: mask, mode: bundle.pooling, normalize: false)
            let H = pooled.shape[1]
            for (r, i) in chunk.enumerated() {
                embeddings[i] = Array(pooled.data[(r * H)..<((r + 1) * H)])
                if let z = out.logits { let L = z.shape[1]; logits[i] = Array(z.data[(r * L)..<((r + 1) * L)]) }
            }
        }
        return (logits, embeddings)
    }

    /// Scores the model with `quantized` in place of its fp32 tensors.
    func score(_ quantized: [String: QuantizedTensor]) throws -> PlanScore {
        var tensors = bundle.tensors
        for (name, q) in quantized { tensors[name] = q.dequantized() }
        let encoder: BertEncoder
        do { encoder = try BertEncoder(config: bundle.config, tensors: tensors, quantized: quantized) } catch {
            throw StageError(file: bundle.path, error)
        }
        let (logits, embeddings) = try Self.outputs(encoder, sequences: sequences, bundle: bundle, batchSize: batchSize)
        let cosines = zip(reference.embeddings, embeddings).map { cosine($0, $1) }
        var score = PlanScore(meanCosine: cosines.reduce(0, +) / Double(max(1, cosines.count)), minCosine: cosines.min() ?? 1)
        if let truth, let referenceF1 {
            let f1 = ClassificationMetrics(truth: truth.map(Int.init), predicted: logits.map(argmax), classCount: classes).macroF1
            (score.macroF1, score.drop) = (f1, (referenceF1 - f1) * 100)
            score.meanKL = FidelityMetrics(teacher: reference.logits, student: logits).meanKL
        }
        return score
    }
}

/// cos(a, b) in double (1 when both are zero).
func cosine(_ a: [Float], _ b: [Float]) -> Double {
    var ab = 0.0, aa = 0.0, bb = 0.0
    for (x, y) in zip(a, b) { ab += Double(x) * Double(y); aa += Double(x) * Double(x); bb += Double(y) * Double(y) }
    return aa == 0 && bb == 0 ? 1 : ab / max(1e-300, (aa * bb).squareRoot())
}

/// The sensitivity table and the search over one model.
struct MixedPrecisionRun {
    let evaluator: PlanEvaluator
    let tensors: [String: Tensor]
    let units: [QuantizationUnit]
    let scheme: QuantizationScheme
    /// Every unit in the scheme's storage.
    let quantized: [String: QuantizedTensor]
    let source: String
    let progress: StageProgress

    init(evaluator: PlanEvaluator, tensors: [String: Tensor], units: [QuantizationUnit], scheme: QuantizationScheme,
         quantized: [String: QuantizedTensor], source: String, progress: StageProgress) throws {
        (self.evaluator, self.tensors, self.units, self.scheme, self.quantized, self.source, self.progress) =
            (evaluator, tensors, units, scheme, quantized, source, progress)
    }

    /// Each unit quantized alone, every other weight fp32.
    func sensitivity() throws -> [SensitivityRow] {
        try units.enumerated().map { i, unit in
            let alone = Dictionary(uniqueKeysWithValues: unit.tensors.map { ($0, quantized[$0]!) })
            let row = SensitivityRow(unit: unit.name, format: quantized[unit.tensors[0]]!.format.description, score: try evaluator.score(alone))
            progress.line("sensitivity \(i + 1)/\(units.count): \(unit.name) \(describe(row.score))")
            return row
        }
    }

    /// The greedy search of the file header; returns the trials, the plan kept and whether it meets `maxDrop`.
    func search(maxDrop: Double, sensitivity: [SensitivityRow]) throws -> (trials: [SearchTrial], best: SearchTrial, met: Bool, quantized: [String: QuantizedTensor]) {
        let order = sensitivity.sorted {
            let (a, b) = ($0.score, $1.score)
            if (a.drop ?? 0) != (b.drop ?? 0) { return (a.drop ?? 0) > (b.drop ?? 0) }
            if (a.meanKL ?? 0) != (b.meanKL ?? 0) { return (a.meanKL ?? 0) > (b.meanKL ?? 0) }
            return a.meanCosine < b.meanCosine
        }.map(\.unit)
        var storage: [String: QuantizedTensor.Format?] = [:]   // unit → promoted storage (nil: fp32)
        var current = quantized
        var trials: [SearchTrial] = [], plans: [[String: QuantizedTensor]] = []
        func record(_ moved: String?) throws {
            let score = try evaluator.score(current)
            let promoted = storage.mapValues { $0?.description ?? "fp32" }
            let bytes = units.flatMap(\.tensors).reduce(0) { $0 + (current[$1]?.storedBytes ?? 4 * tensors[$1]!.count) }
            trials.append(SearchTrial(step: trials.count, promoted: promoted, moved: moved, score: score, weightBytes: bytes))
            plans.append(current)
            progress.line("search step \(trials.count - 1)\(moved.map { ": \($0) → \(promoted[$0]!)" } ?? ": every unit \(scheme)") \(describe(score))")
        }
        try record(nil)
        var queue = order[...]
        while (trials.last!.score.drop ?? 0) > maxDrop, let unit = queue.first {
            let u = units.first { $0.name == unit }!
            let from = storage[unit] ?? (u.isEmbedding ? scheme.embeddingFormat : scheme.linearFormat)
            let to = from.flatMap { QuantizationScheme.higherPrecision(than: $0) }
            storage[unit] = .some(to)
            if to == nil { queue.removeFirst() }   // at fp32: done with this unit; else it may go up once more later
            else { queue.removeFirst(); queue.append(unit) }
            if let to {
                let moved: [String: QuantizedTensor]
                do { moved = try quantizeWeights(tensors, plan: Dictionary(uniqueKeysWithValues: u.tensors.map { ($0, to) }), source: source) } catch {
                    throw StageError(error.description)
                }
                // int8-static keeps its calibrated input scale when a unit goes from int4 to int8.
                for name in u.tensors { current[name] = moved[name]!.withInputScale(to == .int8 ? quantized[name]!.inputScale : nil) }
            } else {
                for name in u.tensors { current[name] = nil }
            }
            try record(unit)
        }
        let met = trials.contains { ($0.score.drop ?? 0) <= maxDrop }
        let bestIndex = met ? trials.firstIndex { ($0.score.drop ?? 0) <= maxDrop }!
            : trials.indices.min { (trials[$0].score.drop ?? 0) < (trials[$1].score.drop ?? 0) }!
        return (trials, trials[bestIndex], met, plans[bestIndex])
    }

    private func describe(_ s: PlanScore) -> String {
        String(format: "F1 drop %.2f pt, KL %.5f, cosine %.5f", s.drop ?? .nan, s.meanKL ?? .nan, s.meanCosine)
    }
}

/// The sensitivity table as text.
func sensitivityTable(_ rows: [SensitivityRow]) -> String {
    var lines = ["sensitivity (each unit quantized alone, vs fp32 on dev)",
                 "unit                          format           macro-F1  drop pt   mean KL   cos mean   cos min"]
    for r in rows {
        lines.append(r.unit.padding(toLength: 30, withPad: " ", startingAt: 0) + r.format.padding(toLength: 15, withPad: " ", startingAt: 0)
                     + String(format: "  %8.4f  %7.2f  %8.5f  %9.6f  %8.5f", r.score.macroF1 ?? .nan, r.score.drop ?? .nan, r.score.meanKL ?? .nan,
                              r.score.meanCosine, r.score.minCosine))
    }
    return lines.joined(separator: "\n")
}

/// The search's trials as text.
func searchTable(_ trials: [SearchTrial]) -> String {
    var lines = ["mixed-precision search (greedy: most sensitive unit up one step at a time)",
                 "step  moved                          weights    macro-F1  drop pt   mean KL   cos mean"]
    for t in trials {
        let moved = t.moved.map { "\($0) → \(t.promoted[$0]!)" } ?? "(all quantized)"
        lines.append(String(format: "%4d  ", t.step) + moved.padding(toLength: 30, withPad: " ", startingAt: 0)
                     + String(format: "  %9@  %8.4f  %7.2f  %8.5f  %9.6f", formatBytes(t.weightBytes), t.score.macroF1 ?? .nan, t.score.drop ?? .nan,
                              t.score.meanKL ?? .nan, t.score.meanCosine))
    }
    return lines.joined(separator: "\n")
}
