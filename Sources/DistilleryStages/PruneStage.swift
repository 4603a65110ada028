// PruneStage: structured pruning of a model file — score heads, FFN neurons and layers on
// data, remove the least important ones physically, optionally trim the vocabulary to the
// task's tokens, and write a smaller Distillery file that every command loads.
//
// Importance (Compression/DataImportance.swift) is measured on the first `samples` original
// training examples of a label cache, against the teacher's soft labels (temperature 1);
// the texts are re-tokenized with the pruned model's own tokenizer, so a model whose
// vocabulary was already trimmed is scored on its own ids. What to remove is decided by
// Compression's `pruneRequest` (global or uniform) and carried out by `sliceBertParameters`.
// Vocabulary pruning keeps the token ids the train and dev texts produce (at least
// `vocabMinCount` times), the special tokens, and the first `vocabKeep` ids of the
// vocabulary (BERT's vocab.txt lists word pieces roughly by frequency); the file stores the
// trimmed vocabulary plus the original one for segmentation (see WordPieceTokenizer), and
// the report counts the test tokens that became [UNK]. The output is written through a
// temporary file renamed into place.
// Recovery by distillation is in PruneRecovery.swift. Left out on purpose: pruning hidden
// dimensions.
import Compression
import DistilleryData
import DistilleryJSON
import DistilleryModel
import DistilleryTensor
import Foundation
import Tokenization
import WeightIO

/// What `prune` scores, removes and writes.
public struct PruneConfig: Sendable {
    /// The model file to prune.
    public var model: String
    /// The pruned model file (nil with `importanceOnly`).
    public var out: String?
    /// How much to remove (ratios of heads and FFN neurons, a number of layers, uniform or not).
    public var amounts = PruneAmounts()
    /// Prepared dataset folder and the label cache made on it (importance).
    public var data: String?
    public var labels: String?
    /// The model the label cache was made with (default: `model`).
    public var teacher: String?
    /// Training examples importance is measured on.
    public var samples = 1024
    public var batchSize = 32
    /// Only score and report; write nothing.
    public var importanceOnly = false
    /// Dataset folder whose train and dev texts decide the kept vocabulary.
    public var vocab: String?
    /// Extra ids kept from the start of the vocabulary.
    public var vocabKeep = 0
    /// Keep a data token only when it occurs at least this often in train (+ dev).
    public var vocabMinCount = 1
    public var threads = 1

    public init(model: String, out: String?) {
        self.model = model
        self.out = out
    }

    /// True when heads, neurons or layers are ranked (needs data and labels).
    var needsImportance: Bool { importanceOnly || !amounts.isNothing }
}

/// The shape and size of a model file.
public struct ModelShape: Codable, Sendable, Equatable {
    public var layers: Int
    public var heads: [Int]
    public var ffn: [Int]
    public var vocabulary: Int
    /// All parameters, and those of the encoder layers alone.
    public var parameters: Int
    public var encoderParameters: Int
    public var fileBytes: Int?

    enum CodingKeys: String, CodingKey {
        case layers, heads, ffn, vocabulary, parameters, encoderParameters = "encoder_parameters", fileBytes = "file_bytes"
    }

    init(_ config: BertConfig, tensors: [String: Tensor], file: String?) {
        layers = config.layerCount
        heads = config.layerHeads
        ffn = config.layerIntermediateSizes
        vocabulary = config.vocabSize
        parameters = tensors.values.reduce(0) { $0 + $1.count }
        encoderParameters = tensors.filter { $0.key.hasPrefix("encoder.") }.values.reduce(0) { $0 + $1.count }
        fileBytes = file.flatMap { fileByteCount(atPath: $0) }
    }

    /// "6 layers, heads 12/12/…, FFN 1536/…, vocab 30522, 22.6 M parameters (10.6 M in layers)".
    public var text: String {
        String(format: "%d layers, heads %@, FFN %@, vocab %d, %.2f M parameters (%.2f M in the layers)%@", layers,
               heads.map(String.init).joined(separator: "/"), ffn.map(String.init).joined(separator: "/"), vocabulary,
               Double(parameters) / 1e6, Double(encoderParameters) / 1e6,
               fileBytes.map { String(format: ", file %.1f MiB", Double($0) / 1_048_576) } ?? "")
    }
}

/// Per-layer importance measured on data (normalised per layer: each layer's scores have L2 norm 1).
public struct ImportanceTables: Codable, Sendable {
    /// Examples and the loss they were scored with.
    public var examples: Int
    /// The unpruned model's fit to the targets.
    public var baseline: TargetFit
    /// Per layer, per head: |∂L/∂mask| normalised per layer.
    public var heads: [[Double]]
    /// Per layer, per FFN neuron: |Σ w·∂L/∂w| normalised per layer.
    public var neurons: [[Double]]
    /// Per layer: the model without it (empty when layers were not scored).
    public var layerDrop: [TargetFit]

    enum CodingKeys: String, CodingKey { case examples, baseline, heads, neurons, layerDrop = "layer_drop" }

    /// The tables as text: heads per layer, neuron score quartiles, the cost of dropping each layer.
    public var text: String {
        var lines = [String(format: "importance on %d training examples vs the teacher's soft labels (loss %.4f, agreement %.4f)",
                            examples, baseline.loss, baseline.agreement)]
        lines.append("head importance |dL/dmask| (per layer, L2-normalised):")
        for (l, row) in heads.enumerated() { lines.append("  layer \(l): " + row.map { String(format: "%.2f", $0) }.joined(separator: " ")) }
        lines.append("FFN neuron importance |w·dL/dw| (per layer, L2-normalised; min / 25% / median / 75% / max):")
        for (l, row) in neurons.enumerated() {
            let s = row.sorted(), q = { (f: Double) in s[min(s.count - 1, Int(Double(s.count - 1) * f))] }
            lines.append("  layer \(l): " + [0, 0.25, 0.5, 0.75, 1].map { String(format: "%.4f", q($0)) }.joined(separator: " "))
        }
        if !layerDrop.isEmpty {
            lines.append("without layer: loss (Δ) / agreement")
            for (l, f) in layerDrop.enumerated() {
                lines.append(String(format: "  layer %d: %.4f (%+.4f) / %.4f", l, f.loss, f.loss - baseline.loss, f.agreement))
            }
        }
        return lines.joined(separator: "\n")
    }
}

/// What vocabulary pruning kept, and what it costs on the test split.
public struct VocabularyReport: Codable, Sendable {
    public var kept: Int
    public var of: Int
    /// Splits whose texts decided the kept tokens.
    public var splits: [String]
    /// Test tokens, and how many of them became [UNK] (they were kept tokens before).
    public var testTokens: Int
    public var testTokensNowUnknown: Int

    enum CodingKeys: String, CodingKey { case kept, of, splits, testTokens = "test_tokens", testTokensNowUnknown = "test_tokens_now_unknown" }
}

/// What `prune` measured and wrote.
public struct PruneReport: Codable, Sendable {
    public var model: String
    public var out: String?
    public var importance: ImportanceTables?
    public var before: ModelShape
    public var after: ModelShape?
    /// Per pruned layer: the source layer and its kept heads.
    public var keptLayers: [Int]?
    public var keptHeads: [[Int]]?
    public var vocabulary: VocabularyReport?

    enum CodingKeys: String, CodingKey {
        case model, out, importance, before, after, keptLayers = "kept_layers", keptHeads = "kept_heads", vocabulary
    }

    /// Importance tables (when scored), before → after, and the vocabulary's cost.
    public var text: String {
        var lines: [String] = []
        if let importance { lines.append(importance.text) }
        lines.append("before: \(before.text)")
        if let after, let out {
            lines.append("after:  \(after.text) → \(out)")
            if let keptLayers, let keptHeads {
                for (i, (l, h)) in zip(keptLayers, keptHeads).enumerated() { lines.append("  layer \(i) ← layer \(l): heads \(h)") }
            }
        }
        if let v = vocabulary {
            lines.append(String(format: "vocabulary: kept %d of %d tokens (from %@); %d of %d test tokens became [UNK] (%.3f%%)", v.kept, v.of,
                                v.splits.joined(separator: "+"), v.testTokensNowUnknown, v.testTokens,
                                100 * Double(v.testTokensNowUnknown) / Double(max(v.testTokens, 1))))
        }
        return lines.joined(separator: "\n")
    }
}

/// Scores, prunes and writes a model as `config` says (see the file header).
public func prune(_ config: PruneConfig, progress: StageProgress) throws -> PruneReport {
    try setComputeThreads(config.threads)
    for (flag, ratio) in [("--heads", config.amounts.heads), ("--ffn", config.amounts.ffn)] where !(ratio >= 0 && ratio < 1) {
        throw StageError.usage("\(flag) \(ratio) must be a fraction in [0, 1) — the share of \(flag == "--heads" ? "attention heads" : "FFN neurons") to remove")
    }
    guard config.amounts.layers >= 0 else { throw StageError.usage("--layers \(config.amounts.layers) must be ≥ 0 (layers to remove)") }
    guard config.samples >= 1 else { throw StageError.usage("--samples \(config.samples) must be at least 1") }
    guard config.batchSize >= 1 else { throw StageError.usage("--batch-size \(config.batchSize) must be at least 1") }
    guard config.vocabKeep >= 0 else { throw StageError.usage("--vocab-keep \(config.vocabKeep) must be ≥ 0") }
    guard config.vocabMinCount >= 1 else { throw StageError.usage("--vocab-min-count \(config.vocabMinCount) must be at least 1") }
    if !config.importanceOnly {
        guard let out = config.out else { throw StageError.usage("--out is missing — give the pruned model file (or use --importance to only score)") }
        try checkOutputPath(out, flag: "--out")
        guard !config.amounts.isNothing || config.vocab != nil else {
            throw StageError.usage("nothing to prune — give --heads, --ffn, --layers or --vocab (or --importance to only score)")
        }
    }
    if config.needsImportance && (config.data == nil || config.labels == nil) {
        throw StageError.usage("\(config.importanceOnly ? "--importance" : "--heads/--ffn/--layers") ranks units by their importance on data — give --data data/NAME and --labels L.h5 (the teacher's soft labels: kd label --teacher T --data data/NAME --out L.h5)")
    }
    let bundle = try ModelBundle(path: config.model)
    let model = bundle.config
    guard config.amounts.layers < model.layerCount else {
        throw StageError.usage("--layers \(config.amounts.layers): \(config.model) has \(model.layerCount) layers — remove at most \(model.layerCount - 1)")
    }
    let tensors = bundle.tensors
    let before = ModelShape(model, tensors: tensors, file: config.model)
    var report = PruneReport(model: config.model, out: config.out, before: before)

    var request = SliceRequest()
    if config.needsImportance {
        let batches = try importanceBatches(config, bundle: bundle)
        let importance: GradientImportance
        let layerDrop: [TargetFit]
        let classes = tensors["classifier.weight"]?.shape.first ?? 0
        guard classes >= 2 else {
            throw StageError("\(config.model): has no classifier head — importance is measured on the classifier's loss; fine-tune it first (kd finetune)")
        }
        do {
            let bert = try BertModel(config: model, classes: classes)
            let parameters = try ParameterBlock(layout: bert.layout, tensors: tensors)
            importance = try gradientImportance(model: bert, parameters: parameters, batches: batches)
            layerDrop = config.importanceOnly || config.amounts.layers > 0
                ? try layerDropFits(config: model, tensors: tensors, batches: batches) : []
        } catch { throw StageError(file: config.model, error) }
        report.importance = ImportanceTables(examples: batches.reduce(0) { $0 + $1.batch.batchSize }, baseline: importance.fit,
                                             heads: normalizedPerLayer(importance.heads), neurons: normalizedPerLayer(importance.neurons),
                                             layerDrop: layerDrop)
        if config.importanceOnly { return report }
        do {
            request = try pruneRequest(model, heads: importance.heads, neurons: importance.neurons, layerLoss: layerDrop.map(\.loss),
                                       amounts: config.amounts)
        } catch { throw StageError.usage("\(config.model): \(error)") }
    }
    var segmentation: [String]? = bundle.file.segmentationVocabulary
    var vocabulary = bundle.file.vocabulary
    var vocabReport: VocabularyReport?
    if let data = config.vocab {
        let (ids, splits) = try usedTokenIds(data, bundle: bundle, extra: config.vocabKeep, minCount: config.vocabMinCount)
        let t = bundle.tokenizer
        request.vocabulary = ids
        request.requiredTokenIds = [t.unknownId, t.classId, t.separatorId, t.paddingId].map(Int.init)
            + (t.ids(for: ["[MASK]"]).first.map { $0 == t.unknownId ? [] : [Int($0)] } ?? [])
        segmentation = segmentation ?? vocabulary
        vocabulary = ids.map { vocabulary[$0] }
        vocabReport = VocabularyReport(kept: ids.count, of: model.vocabSize, splits: splits, testTokens: 0, testTokensNowUnknown: 0)
    }
    let sliced: SlicedModel
    do { sliced = try sliceBertParameters(model, tensors: tensors, keeping: request) } catch {
        throw StageError("\(config.model): \(error)")
    }
    let out = config.out!
    let ordered: [(name: String, tensor: Tensor)]
    do { ordered = try validateBertParameters(sliced.config, tensors: sliced.tensors).parameters } catch { throw StageError(file: out, error) }
    let file = TeacherFile(tensors: ordered, configJSON: try prunedConfigJSON(bundle, sliced.config), vocabulary: vocabulary,
                           pooling: bundle.file.pooling, normalize: bundle.file.normalize,
                           tokenizerOptionsJSON: bundle.file.tokenizerOptionsJSON, labelsJSON: bundle.file.labelsJSON,
                           segmentationVocabulary: segmentation)
    do { try file.write(to: URL(fileURLWithPath: out)) } catch { throw StageError(file: out, error) }
    if var v = vocabReport, let data = config.vocab {
        let pruned = try ModelBundle(path: out)
        let test = try PreparedFolder(path: data).read(.test)
        for row in test {
            let old = bundle.tokenizer.tokenIds(row.text), new = pruned.tokenizer.tokenIds(row.text)
            v.testTokens += old.count
            v.testTokensNowUnknown += zip(old, new).filter { $0 != bundle.tokenizer.unknownId && $1 == pruned.tokenizer.unknownId }.count
        }
        vocabReport = v
    }
    report.after = ModelShape(sliced.config, tensors: sliced.tensors, file: out)
    report.keptLayers = sliced.layers.indices
    report.keptHeads = sliced.heads.map(\.indices)
    report.vocabulary = vocabReport
    return report
}

/// The first `samples` original training examples of the label cache, re-tokenized with the
/// model's tokenizer at the cache's length, with the teacher's probabilities as targets.
private func importanceBatches(_ config: PruneConfig, bundle: ModelBundle) throws -> [TargetBatch] {
    let data = config.data!, labels = config.labels!, teacher = config.teacher ?? config.model
    let folder = try PreparedFolder(path: data)
    guard FileManager.default.fileExists(atPath: labels) else {
        throw StageError("\(labels): no such label cache — make it with 'kd label --teacher \(teacher) --data \(data) --out \(labels)'")
    }
    let cache = try openLabelCache(labels)
    do { try verifyLabelCache(cache, labels: labels, teacher: teacher, folder: folder, data: data) } catch let error as StageError {
        throw StageError(error.description + (config.teacher == nil
            ? " (importance is measured against the soft labels of the model the cache was made with; if that was another model, name it with --teacher)" : ""))
    }
    guard cache.settings.labels == bundle.config.labels else {
        throw StageError("\(labels): the cache's labels (\(cache.settings.labels.joined(separator: ", "))) differ from \(config.model)'s (\(bundle.config.labels.joined(separator: ", "))) — label with a teacher of the same task")
    }
    let train = try folder.read(.train)
    let chosen = Array((0..<cache.exampleCount).filter { cache.copies[$0] == 0 }.prefix(config.samples))
    let logits = try cache.fullLogits(examples: chosen)
    let tokenizer = bundle.tokenizer, maxLength = cache.settings.maxLength
    var batches: [TargetBatch] = []
    for start in stride(from: 0, to: chosen.count, by: config.batchSize) {
        let rows = start..<min(start + config.batchSize, chosen.count)
        let sequences = rows.map { tokenizer.encode(train[Int(cache.sourceRows[chosen[$0]])].text, maxLength: maxLength).ids }
        let T = sequences.map(\.count).max()!
        var ids = [Int32](repeating: Int32(tokenizer.paddingId), count: rows.count * T), mask = [Int32](repeating: 0, count: rows.count * T)
        for (b, s) in sequences.enumerated() { for (t, id) in s.enumerated() { ids[b * T + t] = id; mask[b * T + t] = 1 } }
        let targets = rows.flatMap { i -> [Float] in
            let z = logits[i], m = z.max()!
            let e = z.map { exp(Double($0 - m)) }, sum = e.reduce(0, +)
            return e.map { Float($0 / sum) }
        }
        batches.append(TargetBatch(batch: EncoderBatch(ids: ids, mask: mask, batchSize: rows.count, sequenceLength: T), targets: targets))
    }
    return batches
}

/// Token ids the train and dev texts of `data` produce at least `minCount` times, the
/// special tokens and the first `extra` ids, ascending.
private func usedTokenIds(_ data: String, bundle: ModelBundle, extra: Int, minCount: Int) throws -> ([Int], [String]) {
    let folder = try PreparedFolder(path: data)
    var counts: [Int32: Int] = [:]
    let splits: [Split] = [.train, .dev]
    for split in splits {
        for row in try folder.read(split) { for id in bundle.tokenizer.tokenIds(row.text) { counts[id, default: 0] += 1 } }
    }
    var used = Set(counts.filter { $0.value >= minCount }.keys)
    let t = bundle.tokenizer
    used.formUnion([t.unknownId, t.classId, t.separatorId, t.paddingId])
    used.formUnion(t.ids(for: ["[MASK]"]))
    used.formUnion((0..<Int32(min(extra, bundle.config.vocabSize))))
    return (used.map(Int.init).sorted(), splits.map(\.rawValue))
}

/// `bundle`'s config.json with the sizes of `pruned`: layers, per-layer heads and FFN widths,
/// vocabulary size and padding id (everything else, stored settings included, unchanged).
func prunedConfigJSON(_ bundle: ModelBundle, _ pruned: BertConfig) throws -> String {
    guard pruned != bundle.config else { return bundle.file.configJSON }
    guard var object = (try? JSONValue.parse(bundle.file.configJSON))?.objectValue else {
        throw StageError("\(bundle.path): config_json is not a JSON object — re-import the model")
    }
    object["vocab_size"] = .int(pruned.vocabSize)
    object["pad_token_id"] = .int(pruned.padTokenId)
    object["num_hidden_layers"] = .int(pruned.layerCount)
    object["distillery_layer_heads"] = Set(pruned.layerHeads) == [pruned.headCount] ? nil : .array(pruned.layerHeads.map(JSONValue.int))
    object["distillery_layer_intermediate_sizes"] = Set(pruned.layerIntermediateSizes) == [pruned.intermediateSize]
        ? nil : .array(pruned.layerIntermediateSizes.map(JSONValue.int))
    return try JSONCoding.string(JSONValue.object(object), pretty: true)
}
