// LabelStage: the teacher's soft-label cache — `label` runs a fine-tuned classifier teacher
// once over a prepared training split (and TinyBERT-style augmented copies,
// DistilleryData.Augmenter) and writes a LabelCache (WeightIO/LabelCache.swift): the ids
// fed to the teacher, logits (full or top-k), and on request hidden states and attention
// maps of chosen layers; `mergeLabelShards` joins the shards of one sharded run;
// `checkLabelCache` checks a cache against a teacher and data (what a student run does).
//
// Before any work every input is checked; then what the cache will cost is reported, and
// the stage refuses when the on-disk estimate exceeds the limit. The teacher sees unpadded
// batches of equal-length sequences: the encoder's GEMM and kernels compute every row with
// the same operations whatever the batch (see CKernels/gemm.c), so each example's outputs
// depend on its ids alone — which is why merged shards equal a single run byte for byte.
// Merging refuses parts of different runs (settings compared field by field), another
// split, a shard given twice or missing, and an input that is also the output. Left out
// on purpose: labeling dev/test splits (students are evaluated on gold labels), pair inputs.
import Distillation
import DistilleryData
import DistilleryModel
import DistilleryTensor
import Foundation
import Tokenization
import WeightIO

/// Upper bound of the labeled examples kept in memory at once (their stored tensors):
/// bounds memory while leaving enough examples to form equal-length batches.
let labelWindowBytes = 256 << 20
/// At most this many batches' worth of examples per window, so progress is reported regularly.
let labelWindowBatches = 64

/// Layers to store: all of them or a list.
public enum LayerSelection: Sendable, Equatable {
    case all
    case layers([Int])

    /// "0,2,4" or "all"; `flag` names the setting in errors.
    public init(parsing text: String, flag: String) throws {
        if text == "all" { self = .all; return }
        var layers: [Int] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let l = Int(part.trimmingCharacters(in: .whitespaces)) else {
                throw StageError.usage("\(flag) '\(text)': '\(part)' is not a layer number — give a comma list like 0,2,4 or 'all'")
            }
            layers.append(l)
        }
        self = .layers(layers)
    }

    /// Sorted distinct layers within `range` (hidden states 0 … L, attention 1 … L).
    func resolve(flag: String, range: ClosedRange<Int>, teacher: String) throws -> [Int] {
        guard case .layers(let layers) = self else { return Array(range) }
        let what = range.lowerBound == 0 ? "hidden states \(range.lowerBound) (embeddings) … \(range.upperBound)" : "attention layers \(range.lowerBound) … \(range.upperBound)"
        for l in layers where !range.contains(l) {
            throw StageError.usage("\(flag) layer \(l) is out of range — \(teacher) has \(range.upperBound) layers: \(what), or 'all'")
        }
        return Array(Set(layers)).sorted()
    }
}

/// A byte count given as text: "123", "64K", "500M", "1.5G", "2T" (optionally with "B";
/// decimal units). Keeps the text for messages.
public struct ByteSize: Sendable {
    public let bytes: Int
    public let text: String

    /// Parses `text`; `flag` names the setting in errors.
    public init(parsing text: String, flag: String) throws {
        var s = text.uppercased()
        if s.hasSuffix("B") { s.removeLast() }
        let units: [Character: Double] = ["K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12]
        var scale = 1.0
        if let last = s.last, let u = units[last] { scale = u; s.removeLast() }
        guard let value = Double(s), value >= 0, value.isFinite else {
            throw StageError.usage("\(flag) '\(text)' is not a size — use bytes or a number with K, M, G or T (e.g. 500M, 8G)")
        }
        guard value * scale <= 1e18 else {   // an exabyte: beyond any disk, and still an Int
            throw StageError.usage("\(flag) '\(text)' is out of range — use at most 1000000T")
        }
        self.init(bytes: Int(value * scale), text: text)
    }

    /// A size of `bytes`, shown as `text`.
    public init(bytes: Int, text: String) {
        self.bytes = bytes
        self.text = text
    }
}

/// Which part of the training rows a `label` run covers: shard `index` of `count`.
public struct ShardSelection: Sendable {
    public let index: Int
    public let count: Int
    /// The whole split.
    public static let whole = ShardSelection(checkedIndex: 0, count: 1)

    private init(checkedIndex index: Int, count: Int) {
        self.index = index
        self.count = count
    }

    /// "i/n" with 0 ≤ i < n.
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]) else {
            throw StageError.usage("--shard '\(text)' is not i/n — give the 0-based shard number and the shard count, e.g. 0/4")
        }
        guard n >= 1, i >= 0, i < n else {
            throw StageError.usage("--shard \(text): shard number must be in 0..<\(max(n, 1)) and the count at least 1 — e.g. 0/\(max(n, 2)) … \(max(n, 2) - 1)/\(max(n, 2))")
        }
        self.init(checkedIndex: i, count: n)
    }

    /// Shard `index` of `count` (checked as "index/count").
    public init(index: Int, count: Int) throws { try self.init(parsing: "\(index)/\(count)") }
}

/// Most augmented copies per example, and most neighbours a replacement is drawn from
/// (TinyBERT uses 20 copies; far more only multiplies the cache).
let maximumAugmentCopies = 1000

/// What `label` reads, stores and writes.
public struct LabelConfig: Sendable {
    /// A fine-tuned classifier teacher (.h5).
    public var teacher: String
    /// A prepared dataset folder (its training split is labeled).
    public var data: String
    /// The label cache to write (.h5).
    public var out: String
    /// Keep only the K largest logits and the remaining mass (nil: all).
    public var topK: Int?
    public var hidden: LayerSelection?
    public var attention: LayerSelection?
    /// Augmented copies per training example.
    public var augment = 0
    public var augmentProbability = AugmentationOptions.defaultProbability
    public var neighbours = AugmentationOptions.defaultNeighbours
    public var seed: UInt64 = 13
    /// Truncation length (default: the teacher's stored one, else 128 or its positions if fewer).
    public var maxLength: Int?
    public var batchSize = 32
    /// Label only shard `index` of `count`.
    public var shard = ShardSelection.whole
    /// Refuse when the on-disk estimate is larger.
    public var maxDisk = ByteSize(bytes: 8_000_000_000, text: "8G")
    /// Report the cost, write nothing.
    public var dryRun = false
    public var threads = 1

    /// A configuration with the defaults of `kd label` (at most 8 GB on disk).
    public init(teacher: String, data: String, out: String) {
        self.teacher = teacher
        self.data = data
        self.out = out
    }

    func validate() throws {
        if let topK, topK < 1 { throw StageError.usage("--top-k \(topK) must be at least 1 (omit it to keep every logit)") }
        try checkFlag(batchSize, in: 1...maximumBatchSize, flag: "--batch-size")
        try checkFlag(augment, in: 0...maximumAugmentCopies, flag: "--augment")
        guard augmentProbability >= 0, augmentProbability <= 1 else { throw StageError.usage("--augment-prob \(augmentProbability) must be a probability in [0, 1]") }
        try checkFlag(neighbours, in: 1...maximumAugmentCopies, flag: "--neighbours")
        if let maxLength, maxLength < 2 {
            throw StageError.usage("--max-length \(maxLength) is too small — it must leave room for [CLS] and [SEP]")
        }
    }
}

/// What `label` estimated and (unless a dry run) wrote.
public struct LabelReport: Codable, Sendable {
    /// The cost estimate as printed before labeling.
    public var cost: String
    public var dryRun: Bool
    public var examples: Int
    public var tokens: Int
    public var seconds: Double
    public var out: String
    /// Size of the written cache in bytes (0 for a dry run).
    public var bytes: Int

    /// The cost estimate for a dry run, else "labeled N examples … → OUT (size)".
    public var text: String {
        dryRun ? cost : String(format: "labeled %d examples (%d tokens) in %.1f s → %@ (%@)", examples, tokens, seconds, out, formatSize(bytes))
    }
}

/// Runs the teacher over the training split (and augmented copies) and writes its soft
/// labels to `config.out`; the cost estimate goes to `progress` as a warning first.
public func label(_ config: LabelConfig, progress: StageProgress) throws -> LabelReport {
    try setComputeThreads(config.threads)
    try config.validate()
    try checkOutputPath(config.out, flag: "--out")
    try refuseInputsAsOutputs([(config.out, "--out")], inputs: [config.teacher, config.data])
    let teacher = config.teacher

    // Teacher: a classifier whose labels are the data's. It only runs forward passes, so its
    // quantized weights stay quantized.
    let source = try ModelBundle(path: teacher, weights: .quantizedKept)
    guard source.hasClassifier, !source.config.labels.isEmpty else {
        throw StageError("\(teacher): the teacher has no classifier head — kd label caches a classifier's soft labels; fine-tune it first (kd finetune --model \(teacher) --data \(config.data) --out tuned.h5)")
    }
    let bert = source.config
    let maxLength = try source.resolveMaxLength(config.maxLength, progress: progress)
    let folder = try PreparedFolder(path: config.data)
    guard folder.manifest.labels == bert.labels else {
        throw StageError("\(folder.path)/manifest.json: labels [\(folder.manifest.labels.joined(separator: ", "))] differ from the teacher's [\(bert.labels.joined(separator: ", "))] (\(teacher)) — label with a teacher fine-tuned on this dataset")
    }
    let hiddenLayers = try config.hidden?.resolve(flag: "--hidden", range: 0...bert.layerCount, teacher: teacher) ?? []
    let attentionLayers = try config.attention?.resolve(flag: "--attention", range: 1...bert.layerCount, teacher: teacher) ?? []
    if let topK = config.topK, topK >= bert.labels.count {
        throw StageError.usage("--top-k \(topK) keeps every one of the teacher's \(bert.labels.count) classes — use a K below \(bert.labels.count), or omit --top-k for full logits")
    }

    // Data: every training row (augmentation neighbours come from all of them, so every shard agrees).
    let rows = try folder.read(.train)
    guard !rows.isEmpty else { throw StageError("\(folder.filePath(.train)): no examples — nothing to label") }
    guard config.shard.count <= rows.count else {
        throw StageError.usage("--shard \(config.shard.index)/\(config.shard.count): more shards than the \(rows.count) training rows — use at most \(rows.count) shards")
    }
    let gold = try labelIndices(rows, labels: bert.labels, file: folder.filePath(.train), known: "the teacher \(teacher)")
    let pieces = rows.map { source.tokenizer.tokenIds($0.text) }
    let shard = LabelCacheShard.split(sourceRows: rows.count, index: config.shard.index, count: config.shard.count)

    let started = Date()
    let (plan, dropped) = labelPlan(config, source: source, pieces: pieces, gold: gold, rows: shard.rows, maxLength: maxLength)

    let settings = LabelCacheSettings(
        teacherSHA256: try fileSHA256(teacher), teacherFile: URL(fileURLWithPath: teacher).lastPathComponent,
        dataSHA256: try folder.labelDataSHA256(), dataName: folder.manifest.name, labels: bert.labels,
        maxLength: maxLength, hiddenSize: bert.hiddenSize, teacherLayers: bert.layerCount,
        hiddenLayers: hiddenLayers, attentionLayers: attentionLayers,
        attentionHeads: attentionLayers.map { bert.layerHeads[$0 - 1] }, topK: config.topK ?? 0,
        augmentation: LabelAugmentationSettings(copies: config.augment, probability: config.augmentProbability,
                                                neighbours: config.neighbours, seed: config.seed),
        sourceRows: rows.count)
    let tokens = plan.reduce(0) { $0 + $1.tokenIDs.count }
    let squares = plan.reduce(0) { $0 + $1.tokenIDs.count * $1.tokenIDs.count }
    let cost = LabelCacheCost(settings: settings, examples: plan.count, tokens: tokens, squaredTokens: squares)
    let shardText = shard.count > 1 ? " (shard \(shard.index)/\(shard.count): rows \(shard.rows.lowerBound)..<\(shard.rows.upperBound))" : ""
    let costText = costReport(cost, settings: settings, originals: shard.rows.count, dropped: dropped, shardText: shardText)
    var report = LabelReport(cost: costText, dryRun: config.dryRun, examples: plan.count, tokens: tokens, seconds: 0,
                             out: config.out, bytes: 0)
    if config.dryRun { return report }
    guard cost.estimatedDiskBytes <= config.maxDisk.bytes else {
        throw StageError("the cache would take ≈ \(formatSize(cost.estimatedDiskBytes)) on disk (\(formatSize(cost.uncompressedBytes)) uncompressed: hidden states \(formatSize(cost.hiddenBytes)), attention \(formatSize(cost.attentionBytes))), over --max-disk \(config.maxDisk.text) — store fewer layers (e.g. --hidden 0,\(bert.layerCount)), or drop --hidden/--attention and let the student run the teacher online for those losses (it reuses the cached logits), or raise --max-disk; --dry-run shows the full estimate")
    }
    progress.warning(costText)

    let encoder = try source.makeEncoder(inferenceOnly: true)
    let writer: LabelCacheWriter
    do { writer = try LabelCacheWriter(url: URL(fileURLWithPath: config.out), settings: settings, shard: shard) } catch {
        throw StageError(file: config.out, error)
    }
    do {
        try runTeacher(plan, encoder: encoder, teacher: teacher, settings: settings, batchSize: config.batchSize, writer: writer,
                       started: started, progress: progress)
        try writer.finish(droppedCopies: dropped)
    } catch {
        writer.abandon()
        if let error = error as? StageError { throw error }
        throw StageError(file: config.out, error)
    }
    report.seconds = Date().timeIntervalSince(started)
    report.bytes = fileSize(config.out)
    return report
}

/// The records to label — each training row of the shard, then its augmented copies —
/// without teacher outputs yet, and how many identical copies were dropped.
private func labelPlan(_ config: LabelConfig, source: ModelBundle, pieces: [[Int32]], gold: [Int32], rows: Range<Int>,
                       maxLength: Int) -> ([LabelRecord], Int) {
    let augmentation = AugmentationOptions(copies: config.augment, probability: config.augmentProbability,
                                           neighbours: config.neighbours, seed: config.seed)
    let augmenter = config.augment > 0 ? makeAugmenter(source, pieces: pieces, options: augmentation) : nil
    var plan: [LabelRecord] = []
    var dropped = 0
    let limit = maxLength - 2
    func fed(_ p: [Int32]) -> [Int32] { [source.tokenizer.classId] + p.prefix(limit) + [source.tokenizer.separatorId] }
    for r in rows {
        plan.append(LabelRecord(tokenIDs: fed(pieces[r]), sourceRow: r, copy: 0, label: gold[r], logits: .full([])))
        if let augmenter {
            let copies = augmenter.copies(of: pieces[r], row: r, compareLength: limit)
            dropped += config.augment - copies.count
            for c in copies { plan.append(LabelRecord(tokenIDs: fed(c.ids), sourceRow: r, copy: c.copy, label: -1, logits: .full([]))) }
        }
    }
    return (plan, dropped)
}

/// Runs the teacher over `plan` in windows; inside a window, equal-length sequences share a batch.
private func runTeacher(_ plan: [LabelRecord], encoder: BertEncoder, teacher: String, settings: LabelCacheSettings,
                        batchSize batch: Int, writer: LabelCacheWriter, started: Date, progress: StageProgress) throws {
    let H = settings.hiddenSize
    let heads = settings.attentionHeads.reduce(0, +)
    let logEvery = max(1, plan.count / 20)
    var nextLog = 0
    var start = 0
    while start < plan.count {
        // A window: as many examples as fit labelWindowBytes of stored tensors (at least one batch).
        var end = start, bytes = 0
        while end < plan.count && (end - start < batch || (bytes < labelWindowBytes && end - start < labelWindowBatches * batch)) {
            let t = plan[end].tokenIDs.count
            bytes += 4 * (t * H * settings.hiddenLayers.count + t * t * heads)
            end += 1
        }
        var window = Array(plan[start..<end])
        var byLength: [Int: [Int]] = [:]
        for (i, r) in window.enumerated() { byLength[r.tokenIDs.count, default: []].append(i) }
        for T in byLength.keys.sorted() {
            let members = byLength[T]!
            for chunkStart in stride(from: 0, to: members.count, by: batch) {
                let chunk = Array(members[chunkStart..<min(chunkStart + batch, members.count)])
                let ids = chunk.flatMap { window[$0].tokenIDs }
                let output: EncoderOutput
                do {
                    output = try encoder.forward(EncoderBatch(ids: ids, batchSize: chunk.count, sequenceLength: T),
                                                 hiddenStates: !settings.hiddenLayers.isEmpty,
                                                 attentions: !settings.attentionLayers.isEmpty)
                } catch { throw StageError(file: teacher, error) }
                guard let logits = output.logits else { throw StageError("\(teacher): the forward pass gave no logits — is the classifier head complete?") }
                let C = settings.classes
                for (b, i) in chunk.enumerated() {
                    let row = Array(logits.data[(b * C)..<((b + 1) * C)])
                    guard row.allSatisfy(\.isFinite) else {
                        throw StageError("\(teacher): non-finite logits for training row \(window[i].sourceRow) — the teacher's weights are broken; re-run kd finetune")
                    }
                    window[i].logits = settings.topK == 0 ? .full(row) : LabelCache.topK(row, k: settings.topK)
                    window[i].hidden = settings.hiddenLayers.map { l in
                        Array(output.hiddenStates[l].data[(b * T * H)..<((b + 1) * T * H)])
                    }
                    window[i].attention = zip(settings.attentionLayers, settings.attentionHeads).map { l, h in
                        Array(output.attentions[l - 1].data[(b * h * T * T)..<((b + 1) * h * T * T)])
                    }
                }
            }
        }
        for record in window { try writer.append(record) }
        start = end
        if start >= nextLog || start == plan.count {
            let elapsed = Date().timeIntervalSince(started)
            let rate = Double(start) / max(elapsed, 1e-9)
            let eta = Int((Double(plan.count - start) / max(rate, 1e-9)).rounded())
            progress.warning(String(format: "labeled %d/%d examples (%.1f examples/s), ETA %dm%02ds", start, plan.count, rate, eta / 60, eta % 60))
            nextLog = start + logEvery
        }
    }
}

/// The augmenter for `pieces`: neighbours of every replaceable word of the data in the
/// teacher's word-embedding matrix, found with BLAS.
private func makeAugmenter(_ source: ModelBundle, pieces: [[Int32]], options: AugmentationOptions) -> Augmenter {
    let vocabulary = WordVocabulary(tokens: source.file.vocabulary)
    var queries = Set<Int32>()
    for p in pieces { for i in vocabulary.replaceableWords(of: p) { queries.insert(p[i]) } }
    let embeddings = source.file.tensors.first { $0.name == "embeddings.word_embeddings.weight" }!.tensor
    let table = NeighbourTable(queries: Array(queries), candidates: vocabulary.wholeWordIDs, embeddings: embeddings.data,
                               dimension: embeddings.shape[1], k: options.neighbours) { m, n, k, a, b, c in
        gemmABt(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: k, c: c, ldc: n)
    }
    return Augmenter(vocabulary: vocabulary, table: table, options: options)
}

/// The cost report printed before labeling (and by a dry run).
private func costReport(_ cost: LabelCacheCost, settings: LabelCacheSettings, originals: Int, dropped: Int, shardText: String) -> String {
    let copies = cost.examples - originals
    var lines = ["label cache for \(settings.dataName)\(shardText): \(originals) training examples"
                 + (settings.augmentation.copies > 0 ? " + \(copies) augmented copies (\(dropped) identical copies dropped)" : "")
                 + " = \(cost.examples) examples, \(cost.tokens) tokens"]
    func line(_ name: String, _ bytes: Int) -> String { "  " + name.padding(toLength: max(44, name.count + 2), withPad: " ", startingAt: 0) + formatSize(bytes) }
    lines.append(line("token ids + metadata", cost.metadataBytes))
    lines.append(line("logits (" + (settings.topK == 0 ? "all \(settings.classes)" : "top \(settings.topK) of \(settings.classes)") + ")", cost.logitBytes))
    if !settings.hiddenLayers.isEmpty {
        lines.append(line("hidden states \(settings.hiddenLayers.count) × \(settings.hiddenSize) (layers \(settings.hiddenLayers.map(String.init).joined(separator: ",")))", cost.hiddenBytes))
    }
    if !settings.attentionLayers.isEmpty {
        lines.append(line("attention \(settings.attentionHeads.reduce(0, +)) maps (layers \(settings.attentionLayers.map(String.init).joined(separator: ",")))", cost.attentionBytes))
    }
    lines.append("  total \(formatSize(cost.uncompressedBytes)) uncompressed, ≈ \(formatSize(cost.estimatedDiskBytes)) on disk (shuffle + deflate)")
    return lines.joined(separator: "\n")
}

/// Examples read from a shard at a time while merging.
let mergeBlock = 256

/// What `mergeLabelShards` joined.
public struct MergeReport: Codable, Sendable {
    public var shards: Int
    public var examples: Int
    public var out: String
    /// "merged N shards (M examples) → OUT".
    public var text: String { "merged \(shards) shards (\(examples) examples) → \(out)" }
}

/// Joins every shard 0..<n of one `label --shard i/n` run (any order) into `out`.
public func mergeLabelShards(_ parts: [String], out: String) throws -> MergeReport {
    try checkOutputPath(out, flag: "--out")
    guard !parts.isEmpty else { throw StageError("no shard files given — pass every part: kd label merge --out labels.h5 part-0.h5 part-1.h5 …") }
    try refuseInputsAsOutputs([(out, "--out")], inputs: parts)
    var caches: [(path: String, cache: LabelCache)] = []
    for p in parts {
        guard FileManager.default.fileExists(atPath: p) else { throw StageError("\(p): no such file — pass the shard files kd label --shard wrote") }
        caches.append((p, try openLabelCache(p)))
    }
    let (firstPath, first) = caches[0]
    let n = first.shard.count
    for (p, c) in caches.dropFirst() {
        let differences = c.settings.differences(from: first.settings)
        guard differences.isEmpty else {
            throw StageError("\(p) and \(firstPath) are not shards of one run — \(differences.joined(separator: "; ")) (\(p) vs \(firstPath)); label every shard with the same teacher, data and flags")
        }
        guard c.shard.count == n else {
            throw StageError("\(p) is shard \(c.shard.index)/\(c.shard.count) but \(firstPath) is shard \(first.shard.index)/\(n) — every part must come from the same --shard i/n split")
        }
    }
    var byIndex: [Int: String] = [:]
    for (p, c) in caches {
        if let other = byIndex[c.shard.index] {
            throw StageError("shard \(c.shard.index)/\(n) is given twice (\(other), \(p)) — pass each shard once")
        }
        byIndex[c.shard.index] = p
        guard c.shard.rows == LabelCacheShard.split(sourceRows: c.settings.sourceRows, index: c.shard.index, count: n).rows else {
            throw StageError("\(p): shard \(c.shard.index)/\(n) covers rows \(c.shard.rows) instead of its split — the file was not written by kd label --shard")
        }
    }
    let missing = (0..<n).filter { byIndex[$0] == nil }
    guard missing.isEmpty else {
        throw StageError("shard\(missing.count > 1 ? "s" : "") \(missing.map { "\($0)/\(n)" }.joined(separator: ", ")) missing — pass every part 0..<\(n) (got \(caches.count))")
    }
    let ordered = caches.sorted { $0.cache.shard.index < $1.cache.shard.index }
    let writer: LabelCacheWriter
    do {
        writer = try LabelCacheWriter(url: URL(fileURLWithPath: out), settings: first.settings,
                                      shard: LabelCacheShard(index: 0, count: 1, rows: 0..<first.settings.sourceRows))
    } catch { throw StageError(file: out, error) }
    do {
        for (_, c) in ordered {
            for s in stride(from: 0, to: c.exampleCount, by: mergeBlock) {
                for record in try c.records(s..<min(s + mergeBlock, c.exampleCount)) { try writer.append(record) }
            }
        }
        try writer.finish(droppedCopies: ordered.reduce(0) { $0 + $1.cache.droppedCopies })
    } catch {
        writer.abandon()
        throw StageError(file: out, error)
    }
    return MergeReport(shards: n, examples: ordered.reduce(0) { $0 + $1.cache.exampleCount }, out: out)
}

/// Opens the label cache `labels`, with errors naming it.
func openLabelCache(_ labels: String) throws -> LabelCache {
    do { return try LabelCache.open(URL(fileURLWithPath: labels)) } catch { throw StageError(file: labels, error) }
}

/// Every example's token ids (or those of `examples`), each checked to lie in the teacher's vocabulary (they index
/// embedding rows): a cache is a file, and a file's indices are checked once, at load.
func cacheTokenIDs(_ cache: LabelCache, labels: String, vocabularySize: Int, examples: [Int]? = nil) throws -> [[Int32]] {
    var all: [[Int32]] = []
    for chunk in (examples ?? Array(0..<cache.exampleCount)).chunked(8192) {
        let ids: [[Int32]]
        do { ids = try cache.tokenIDs(examples: chunk) } catch { throw StageError(file: labels, error) }
        for (example, row) in zip(chunk, ids) {
            if let bad = row.first(where: { $0 < 0 || Int($0) >= vocabularySize }) {
                throw StageError("\(labels): example \(example) has token id \(bad), outside the teacher's vocabulary 0..<\(vocabularySize) — the cache is damaged; label again with kd label")
            }
        }
        all += ids
    }
    return all
}

/// Opens a whole (unsharded) label cache and verifies it against its teacher and dataset:
/// what every distillation stage (BERT, BiGRU, multi-task) reads.
func openVerifiedLabelCache(_ labels: String, teacher: String, folder: PreparedFolder, data: String) throws -> LabelCache {
    let cache = try openLabelCache(labels)
    try verifyLabelCache(cache, labels: labels, teacher: teacher, folder: folder, data: data)
    guard cache.shard.count == 1 else {
        throw StageError("\(labels): is shard \(cache.shard.index)/\(cache.shard.count) of a cache — merge the shards first (kd label merge)")
    }
    return cache
}

/// Verifies a label cache against a teacher file and a prepared dataset folder (their sha256).
func verifyLabelCache(_ cache: LabelCache, labels: String, teacher: String, folder: PreparedFolder, data: String) throws {
    do {
        try cache.verify(teacherSHA256: try fileSHA256(teacher), teacherFile: teacher,
                         dataSHA256: try folder.labelDataSHA256(), dataFile: "\(data) (train.jsonl + manifest.json)")
    } catch let error as StageError { throw error } catch { throw StageError(file: labels, error) }
}

/// What `checkLabelCache` found: the cache's contents, which match the teacher and data.
public struct LabelCheckReport: Codable, Sendable {
    public var labels: String
    public var teacher: String
    public var data: String
    public var examples: Int
    public var tokens: Int
    public var teacherFile: String
    public var dataName: String
    /// Stored logits: 0 = all, else top-k.
    public var topK: Int
    public var hiddenLayers: [Int]
    public var attentionLayers: [Int]
    public var shardIndex: Int
    public var shardCount: Int

    /// One line: contents and "— matches TEACHER and DATA".
    public var text: String {
        "\(labels): \(examples) examples, \(tokens) tokens from \(teacherFile) on \(dataName); "
            + "logits \(topK == 0 ? "full" : "top \(topK)"), hidden [\(hiddenLayers.map(String.init).joined(separator: ","))], "
            + "attention [\(attentionLayers.map(String.init).joined(separator: ","))], shard \(shardIndex)/\(shardCount) — matches \(teacher) and \(data)"
    }
}

/// Checks that the cache `labels` was made from `teacher` and the data folder `data`.
public func checkLabelCache(_ labels: String, teacher: String, data: String) throws -> LabelCheckReport {
    guard FileManager.default.fileExists(atPath: labels) else { throw StageError("\(labels): no such file — make it with 'kd label'") }
    let cache = try openLabelCache(labels)
    guard FileManager.default.fileExists(atPath: teacher) else { throw StageError("\(teacher): no such file — check --teacher") }
    let folder = try PreparedFolder(path: data)
    try verifyLabelCache(cache, labels: labels, teacher: teacher, folder: folder, data: data)
    _ = try cacheTokenIDs(cache, labels: labels, vocabularySize: try ModelBundle(path: teacher, weights: .settingsOnly).config.vocabSize)
    let s = cache.settings
    return LabelCheckReport(labels: labels, teacher: teacher, data: data, examples: cache.exampleCount, tokens: cache.tokenCount,
                            teacherFile: s.teacherFile, dataName: s.dataName, topK: s.topK, hiddenLayers: s.hiddenLayers,
                            attentionLayers: s.attentionLayers, shardIndex: cache.shard.index, shardCount: cache.shard.count)
}
