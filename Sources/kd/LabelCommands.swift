// kd label / kd label merge / kd label check: the teacher's soft-label cache.
//
// `kd label` runs a fine-tuned classifier teacher once over a prepared training split (and
// TinyBERT-style augmented copies, DistilleryData.Augmenter) and writes a LabelCache
// (WeightIO/LabelCache.swift): the ids fed to the teacher, logits (full or top-k), and on
// request hidden states and attention maps of chosen layers. Before any work it checks
// every input, then prints what the cache will cost and refuses when the on-disk estimate
// exceeds --max-disk. The teacher sees unpadded batches of equal-length sequences: the
// encoder's GEMM and kernels compute every row with the same operations whatever the batch
// (see CKernels/gemm.c), so each example's outputs depend on its ids alone — which is why
// shards merged by `kd label merge` equal a single run byte for byte.
// `kd label check` verifies a cache against a teacher and a data folder (what a student
// run does before training). Left out on purpose: labeling dev/test splits (students are
// evaluated on gold labels) and pair inputs.
import ArgumentParser
import DistilleryData
import DistilleryModel
import DistilleryTensor
import Foundation
import Tokenization
import WeightIO

struct Label: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Cache a classifier teacher's soft labels (and hidden states / attention) for distillation.",
        subcommands: [LabelRun.self, LabelMerge.self, LabelCheck.self],
        defaultSubcommand: LabelRun.self)
}

/// Default ceiling of the on-disk estimate.
let defaultMaxDisk = "8G"
/// Upper bound of the labeled examples kept in memory at once (their stored tensors):
/// bounds memory while leaving enough examples to form equal-length batches.
let labelWindowBytes = 256 << 20
/// At most this many batches' worth of examples per window, so progress is reported regularly.
let labelWindowBatches = 64

struct LabelRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the teacher over the training split and write the label cache (the default of 'kd label').",
        discussion: """
        LAYERS is a comma list or 'all': hidden states 0 (embeddings) … L, attention maps 1 … L.
        The cache records the teacher's and the data's sha256; students refuse a cache made
        from another teacher or data. Temperature is applied at training time.
        """)

    @Option(help: "Fine-tuned classifier teacher (.h5, from kd finetune).") var teacher: String
    @Option(help: "Prepared dataset folder (kd data prepare), e.g. data/sms-spam.") var data: String
    @Option(help: "Output label cache (.h5).") var out: String
    @Option(name: .customLong("top-k"), help: "Keep only the K largest logits and the remaining mass (default: all).") var topK: Int?
    @Option(help: "Hidden states to store: e.g. 0,2,4,6 or all.") var hidden: String?
    @Option(help: "Attention maps to store: e.g. 2,4,6 or all.") var attention: String?
    @Option(help: "Augmented copies per training example (TinyBERT uses 20).") var augment = 0
    @Option(name: .customLong("augment-prob"), help: "Probability of replacing each eligible word.") var augmentProb = AugmentationOptions.defaultProbability
    @Option(help: "Nearest neighbours a replacement is drawn from.") var neighbours = AugmentationOptions.defaultNeighbours
    @Option(help: "Seed of the augmentation.") var seed: UInt64 = 13
    @Option(name: .customLong("max-length"), help: "Truncate texts to this many tokens (default: 128, or the teacher's positions if fewer).") var maxLengthOption: Int?
    @Option(help: "Sequences per forward pass.") var batch = 32
    @Option(help: "Label only shard i of n (0-based), e.g. 0/4; join the parts with 'kd label merge'.") var shard: String?
    @Option(name: .customLong("max-disk"), help: "Refuse when the cache would take more than this on disk (e.g. 500M, 8G).") var maxDisk = defaultMaxDisk
    @Flag(name: .customLong("dry-run"), help: "Print what the cache would cost, write nothing.") var dryRun = false
    @OptionGroup var threads: ThreadOptions

    func run() throws {
        try threads.apply()
        if let topK, topK < 1 { throw CLIError("--top-k \(topK) must be at least 1 (omit it to keep every logit)") }
        guard batch >= 1 else { throw CLIError("--batch \(batch) must be at least 1") }
        guard augment >= 0 else { throw CLIError("--augment \(augment) must be ≥ 0 (0 = no augmentation)") }
        guard augmentProb >= 0, augmentProb <= 1 else { throw CLIError("--augment-prob \(augmentProb) must be a probability in [0, 1]") }
        guard neighbours >= 1 else { throw CLIError("--neighbours \(neighbours) must be at least 1") }
        if let maxLengthOption, maxLengthOption < 2 {
            throw CLIError("--max-length \(maxLengthOption) is too small — it must leave room for [CLS] and [SEP]")
        }
        let shardSpec = try shard.map(parseShard) ?? (0, 1)
        let diskLimit = try parseByteSize(maxDisk, flag: "--max-disk")
        try checkOutputPath(out, flag: "--out")

        // Teacher: a classifier whose labels are the data's.
        let source = try TeacherSource(path: teacher)
        guard source.file.tensors.contains(where: { $0.name == "classifier.weight" }), !source.config.labels.isEmpty else {
            throw CLIError("\(teacher): the teacher has no classifier head — kd label caches a classifier's soft labels; fine-tune it first (kd finetune --model \(teacher) --data \(data) --out tuned.h5)")
        }
        let config = source.config
        let maxLength = maxLengthOption ?? min(128, config.maxPositions)
        guard maxLength <= config.maxPositions else {
            throw CLIError("--max-length \(maxLength) exceeds the teacher's \(config.maxPositions) positions (\(teacher)) — use at most \(config.maxPositions)")
        }
        let folder = try PreparedFolder(path: data)
        guard folder.manifest.labels == config.labels else {
            throw CLIError("\(folder.path)/manifest.json: labels [\(folder.manifest.labels.joined(separator: ", "))] differ from the teacher's [\(config.labels.joined(separator: ", "))] (\(teacher)) — label with a teacher fine-tuned on this dataset")
        }
        let hiddenLayers = try hidden.map { try parseLayers($0, flag: "--hidden", range: 0...config.layerCount, teacher: teacher) } ?? []
        let attentionLayers = try attention.map { try parseLayers($0, flag: "--attention", range: 1...config.layerCount, teacher: teacher) } ?? []
        if let topK, topK >= config.labels.count {
            throw CLIError("--top-k \(topK) keeps every one of the teacher's \(config.labels.count) classes — use a K below \(config.labels.count), or omit --top-k for full logits")
        }

        // Data: every training row (augmentation neighbours come from all of them, so every shard agrees).
        let rows = try folder.read(.train)
        guard !rows.isEmpty else { throw CLIError("\(folder.filePath(.train)): no examples — nothing to label") }
        guard shardSpec.1 <= rows.count else {
            throw CLIError("--shard \(shardSpec.0)/\(shardSpec.1): more shards than the \(rows.count) training rows — use at most \(rows.count) shards")
        }
        let gold = try labelIndices(rows, labels: config.labels, file: folder.filePath(.train), known: "the teacher \(teacher)")
        let pieces = rows.map { source.tokenizer.tokenIds($0.text) }
        let shard = LabelCacheShard.split(sourceRows: rows.count, index: shardSpec.0, count: shardSpec.1)

        let started = Date()
        let augmentation = AugmentationOptions(copies: augment, probability: augmentProb, neighbours: neighbours, seed: seed)
        let augmenter = augment > 0 ? makeAugmenter(source, pieces: pieces, options: augmentation) : nil
        var plan: [LabelRecord] = []   // records without teacher outputs yet
        var dropped = 0
        let limit = maxLength - 2
        func fed(_ p: [Int32]) -> [Int32] { [source.tokenizer.classId] + p.prefix(limit) + [source.tokenizer.separatorId] }
        for r in shard.rows {
            plan.append(LabelRecord(tokenIDs: fed(pieces[r]), sourceRow: r, copy: 0, label: gold[r], logits: .full([])))
            if let augmenter {
                let copies = augmenter.copies(of: pieces[r], row: r, compareLength: limit)
                dropped += augment - copies.count
                for c in copies { plan.append(LabelRecord(tokenIDs: fed(c.ids), sourceRow: r, copy: c.copy, label: -1, logits: .full([]))) }
            }
        }

        let settings = LabelCacheSettings(
            teacherSHA256: try fileSHA256(teacher), teacherFile: URL(fileURLWithPath: teacher).lastPathComponent,
            dataSHA256: try labelDataSHA256(folder), dataName: folder.manifest.name, labels: config.labels,
            maxLength: maxLength, hiddenSize: config.hiddenSize, teacherLayers: config.layerCount,
            hiddenLayers: hiddenLayers, attentionLayers: attentionLayers,
            attentionHeads: attentionLayers.map { config.layerHeads[$0 - 1] }, topK: topK ?? 0,
            augmentation: LabelAugmentationSettings(copies: augment, probability: augmentProb, neighbours: neighbours, seed: seed),
            sourceRows: rows.count)
        let tokens = plan.reduce(0) { $0 + $1.tokenIDs.count }
        let squares = plan.reduce(0) { $0 + $1.tokenIDs.count * $1.tokenIDs.count }
        let cost = LabelCacheCost(settings: settings, examples: plan.count, tokens: tokens, squaredTokens: squares)
        let shardText = shardSpec.1 > 1 ? " (shard \(shard.index)/\(shard.count): rows \(shard.rows.lowerBound)..<\(shard.rows.upperBound))" : ""
        let report = costReport(cost, settings: settings, originals: shard.rows.count, dropped: dropped, shardText: shardText)
        if dryRun {
            print(report)
            return
        }
        guard cost.estimatedDiskBytes <= diskLimit else {
            throw CLIError("the cache would take ≈ \(formatSize(cost.estimatedDiskBytes)) on disk (\(formatSize(cost.uncompressedBytes)) uncompressed: hidden states \(formatSize(cost.hiddenBytes)), attention \(formatSize(cost.attentionBytes))), over --max-disk \(maxDisk) — store fewer layers (e.g. --hidden 0,\(config.layerCount)), or drop --hidden/--attention and let the student run the teacher online for those losses (it reuses the cached logits), or raise --max-disk; --dry-run shows the full estimate")
        }
        warn(report.replacingOccurrences(of: "\n", with: "\nkd: "))

        var tensors: [String: Tensor] = [:]
        for (name, t) in source.file.tensors { tensors[name] = t }
        let encoder: BertEncoder
        do { encoder = try BertEncoder(config: config, tensors: tensors) } catch { throw CLIError(file: teacher, error) }
        let writer: LabelCacheWriter
        do { writer = try LabelCacheWriter(url: URL(fileURLWithPath: out), settings: settings, shard: shard) } catch {
            throw CLIError(file: out, error)
        }
        do {
            try label(plan, encoder: encoder, settings: settings, writer: writer, started: started)
            try writer.finish(droppedCopies: dropped)
        } catch {
            writer.abandon()
            if let error = error as? CLIError { throw error }
            throw CLIError(file: out, error)
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: out)[.size] as? Int) ?? 0
        print(String(format: "labeled %d examples (%d tokens) in %.1f s → %@ (%@)", plan.count, tokens,
                     Date().timeIntervalSince(started), out, formatSize(size)))
    }

    /// Runs the teacher over `plan` in windows; inside a window, equal-length sequences share a batch.
    func label(_ plan: [LabelRecord], encoder: BertEncoder, settings: LabelCacheSettings,
               writer: LabelCacheWriter, started: Date) throws {
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
                    } catch { throw CLIError(file: teacher, error) }
                    guard let logits = output.logits else { throw CLIError("\(teacher): the forward pass gave no logits — is the classifier head complete?") }
                    let C = settings.classes
                    for (b, i) in chunk.enumerated() {
                        let row = Array(logits.data[(b * C)..<((b + 1) * C)])
                        guard row.allSatisfy(\.isFinite) else {
                            throw CLIError("\(teacher): non-finite logits for training row \(window[i].sourceRow) — the teacher's weights are broken; re-run kd finetune")
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
                warn(String(format: "labeled %d/%d examples (%.1f examples/s), ETA %dm%02ds", start, plan.count, rate, eta / 60, eta % 60))
                nextLog = start + logEvery
            }
        }
    }
}

/// The augmenter for `pieces`: neighbours of every replaceable word of the data in the
/// teacher's word-embedding matrix, found with BLAS.
func makeAugmenter(_ source: TeacherSource, pieces: [[Int32]], options: AugmentationOptions) -> Augmenter {
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

/// The cost report printed before labeling (and by --dry-run).
func costReport(_ cost: LabelCacheCost, settings: LabelCacheSettings, originals: Int, dropped: Int, shardText: String) -> String {
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

// MARK: - kd label merge

struct LabelMerge: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Join the shards of one 'kd label --shard i/n' run into one cache, identical to an unsharded run.")

    @Option(help: "Output label cache (.h5).") var out: String
    @Argument(help: "Shard files, every shard 0..<n exactly once (any order).") var parts: [String] = []

    func run() throws {
        try checkOutputPath(out, flag: "--out")
        guard !parts.isEmpty else { throw CLIError("no shard files given — pass every part: kd label merge --out labels.h5 part-0.h5 part-1.h5 …") }
        let outURL = URL(fileURLWithPath: out).standardizedFileURL
        var caches: [(path: String, cache: LabelCache)] = []
        for p in parts {
            guard URL(fileURLWithPath: p).standardizedFileURL != outURL else {
                throw CLIError("\(p) is both an input and --out — write the merged cache to a new file")
            }
            guard FileManager.default.fileExists(atPath: p) else { throw CLIError("\(p): no such file — pass the shard files kd label --shard wrote") }
            do { caches.append((p, try LabelCache.open(URL(fileURLWithPath: p)))) } catch { throw CLIError(file: p, error) }
        }
        let (firstPath, first) = caches[0]
        let n = first.shard.count
        for (p, c) in caches.dropFirst() {
            let differences = c.settings.differences(from: first.settings)
            guard differences.isEmpty else {
                throw CLIError("\(p) and \(firstPath) are not shards of one run — \(differences.joined(separator: "; ")) (\(p) vs \(firstPath)); label every shard with the same teacher, data and flags")
            }
            guard c.shard.count == n else {
                throw CLIError("\(p) is shard \(c.shard.index)/\(c.shard.count) but \(firstPath) is shard \(first.shard.index)/\(n) — every part must come from the same --shard i/n split")
            }
        }
        var byIndex: [Int: String] = [:]
        for (p, c) in caches {
            if let other = byIndex[c.shard.index] {
                throw CLIError("shard \(c.shard.index)/\(n) is given twice (\(other), \(p)) — pass each shard once")
            }
            byIndex[c.shard.index] = p
            guard c.shard.rows == LabelCacheShard.split(sourceRows: c.settings.sourceRows, index: c.shard.index, count: n).rows else {
                throw CLIError("\(p): shard \(c.shard.index)/\(n) covers rows \(c.shard.rows) instead of its split — the file was not written by kd label --shard")
            }
        }
        let missing = (0..<n).filter { byIndex[$0] == nil }
        guard missing.isEmpty else {
            throw CLIError("shard\(missing.count > 1 ? "s" : "") \(missing.map { "\($0)/\(n)" }.joined(separator: ", ")) missing — pass every part 0..<\(n) (got \(caches.count))")
        }
        let ordered = caches.sorted { $0.cache.shard.index < $1.cache.shard.index }
        let writer: LabelCacheWriter
        do {
            writer = try LabelCacheWriter(url: URL(fileURLWithPath: out), settings: first.settings,
                                          shard: LabelCacheShard(index: 0, count: 1, rows: 0..<first.settings.sourceRows))
        } catch { throw CLIError(file: out, error) }
        do {
            for (_, c) in ordered {
                for s in stride(from: 0, to: c.exampleCount, by: mergeBlock) {
                    for record in try c.records(s..<min(s + mergeBlock, c.exampleCount)) { try writer.append(record) }
                }
            }
            try writer.finish(droppedCopies: ordered.reduce(0) { $0 + $1.cache.droppedCopies })
        } catch {
            writer.abandon()
            throw CLIError(file: out, error)
        }
        print("merged \(n) shards (\(ordered.reduce(0) { $0 + $1.cache.exampleCount }) examples) → \(out)")
    }
}

/// Examples read from a shard at a time while merging.
let mergeBlock = 256

// MARK: - kd label check

struct LabelCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check that a label cache was made from this teacher and data (what a student run does first).")

    @Argument(help: "Label cache (.h5).") var labels: String
    @Option(help: "Teacher file (.h5).") var teacher: String
    @Option(help: "Prepared dataset folder.") var data: String

    func run() throws {
        guard FileManager.default.fileExists(atPath: labels) else { throw CLIError("\(labels): no such file — make it with 'kd label'") }
        let cache: LabelCache
        do { cache = try LabelCache.open(URL(fileURLWithPath: labels)) } catch { throw CLIError(file: labels, error) }
        guard FileManager.default.fileExists(atPath: teacher) else { throw CLIError("\(teacher): no such file — check --teacher") }
        let folder = try PreparedFolder(path: data)
        do {
            try cache.verify(teacherSHA256: try fileSHA256(teacher), teacherFile: teacher,
                             dataSHA256: try labelDataSHA256(folder), dataFile: "\(data) (train.jsonl + manifest.json)")
        } catch let error as CLIError { throw error } catch { throw CLIError(file: labels, error) }
        let s = cache.settings
        print("\(labels): \(cache.exampleCount) examples, \(cache.tokenCount) tokens from \(s.teacherFile) on \(s.dataName); "
              + "logits \(s.topK == 0 ? "full" : "top \(s.topK)"), hidden [\(s.hiddenLayers.map(String.init).joined(separator: ","))], "
              + "attention [\(s.attentionLayers.map(String.init).joined(separator: ","))], shard \(cache.shard.index)/\(cache.shard.count) — matches \(teacher) and \(data)")
    }
}

// MARK: - Parsing and hashing

/// "i/n" with 0 ≤ i < n.
func parseShard(_ text: String) throws -> (Int, Int) {
    let parts = text.split(separator: "/", omittingEmptySubsequences: false)
    guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]) else {
        throw CLIError("--shard '\(text)' is not i/n — give the 0-based shard number and the shard count, e.g. 0/4")
    }
    guard n >= 1, i >= 0, i < n else {
        throw CLIError("--shard \(text): shard number must be in 0..<\(max(n, 1)) and the count at least 1 — e.g. 0/\(max(n, 2)) … \(max(n, 2) - 1)/\(max(n, 2))")
    }
    return (i, n)
}

/// "0,2,4" or "all" → sorted distinct layers within `range`.
func parseLayers(_ text: String, flag: String, range: ClosedRange<Int>, teacher: String) throws -> [Int] {
    let what = range.lowerBound == 0 ? "hidden states \(range.lowerBound) (embeddings) … \(range.upperBound)" : "attention layers \(range.lowerBound) … \(range.upperBound)"
    if text == "all" { return Array(range) }
    var layers: [Int] = []
    for part in text.split(separator: ",", omittingEmptySubsequences: false) {
        guard let l = Int(part.trimmingCharacters(in: .whitespaces)) else {
            throw CLIError("\(flag) '\(text)': '\(part)' is not a layer number — give a comma list like 0,2,4 or 'all'")
        }
        guard range.contains(l) else {
            throw CLIError("\(flag) layer \(l) is out of range — \(teacher) has \(range.upperBound) layers: \(what), or 'all'")
        }
        layers.append(l)
    }
    return Array(Set(layers)).sorted()
}

/// "123", "64K", "500M", "1.5G", "2T" (optionally with "B"; decimal units) → bytes.
func parseByteSize(_ text: String, flag: String) throws -> Int {
    var s = text.uppercased()
    if s.hasSuffix("B") { s.removeLast() }
    let units: [Character: Double] = ["K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12]
    var scale = 1.0
    if let last = s.last, let u = units[last] { scale = u; s.removeLast() }
    guard let value = Double(s), value >= 0, value.isFinite else {
        throw CLIError("\(flag) '\(text)' is not a size — use bytes or a number with K, M, G or T (e.g. 500M, 8G)")
    }
    return Int(value * scale)
}

/// "1.9 GB": decimal units, three significant digits.
func formatSize(_ bytes: Int) -> String {
    let b = Double(bytes)
    for (unit, scale) in [("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)] where b >= scale {
        return String(format: b / scale >= 100 ? "%.0f %@" : "%.3g %@", b / scale, unit)
    }
    return "\(bytes) B"
}

/// sha256 of a file's bytes.
func fileSHA256(_ path: String) throws -> String {
    do { return SHA256.hex(try Data(contentsOf: URL(fileURLWithPath: path))) } catch {
        throw CLIError("\(path): cannot read (\(error.localizedDescription))")
    }
}

/// The data sha256 a label cache records: train.jsonl and manifest.json.
func labelDataSHA256(_ folder: PreparedFolder) throws -> String {
    LabelCache.dataSHA256(trainSHA256: SHA256.hex(try folder.bytes(.train)), manifestSHA256: SHA256.hex(folder.manifestData),
                          hash: SHA256.hex)
}
