// LabelCache: a teacher's soft labels for a training set, computed once and read by many
// students (format "distillery-labels", version 1; written by LabelCacheWriter).
//
// One HDF5 file per cache (or per shard of one). Example i is the i-th sequence the teacher
// saw: a training row (copy 0) or one of its augmented copies (copy ≥ 1), in the order
// (source row, copy). Every dataset is a chunked, shuffle+deflate row dataset
// (HDF5RowDatasets.swift), so any example range is read without loading the file.
//
//   token_ids            int32  [S]            ids fed to the teacher, [CLS] … [SEP], all examples
//   token_offsets        int64  [N+1]          example i's tokens are token_ids[off[i]..<off[i+1]]
//   source_row           int32  [N]            line index in train.jsonl (0-based)
//   copy                 int32  [N]            0 = the original text, k ≥ 1 = augmented copy k
//   label                int32  [N]            gold label index; −1 for augmented copies (never gold)
//   logits               f32    [N, C]         full logits at temperature 1        (top_k = 0)
//   topk_indices         int32  [N, K]         the K largest logits' classes, largest first (top_k = K)
//   topk_logits          f32    [N, K]         their logits
//   topk_rest_mass       f32    [N]            softmax probability (T = 1) of all other classes
//   hidden/layer_<l>     f32    [S, H]         hidden state l (0 = embeddings, l = layer l's output),
//                                              rows aligned with token_ids
//   attention/layer_<l>  f32    [heads_l·Q]    layer l's (1-based) attention probabilities, per
//                                              example one [heads_l, T_i, T_i] block, starting at
//                                              heads_l · attention_offsets[i]
//   attention_offsets    int64  [N+1]          prefix sums of T_i² (present with attention layers)
//
// Root attributes: format, format_version, teacher_sha256 (of the teacher file's bytes),
// teacher_file, data_sha256 (see `LabelCache.dataSHA256`), data_name, labels_json, classes,
// max_length, hidden_size, teacher_layers, hidden_layers / attention_layers / attention_heads
// (JSON int arrays), top_k, augment_copies, augment_probability, augment_neighbours,
// augment_seed (decimal string: a UInt64), source_rows, shard_index, shard_count,
// shard_row_start, shard_row_end, examples, tokens, augment_dropped_copies.
// Opening checks everything the reading methods index with once (LabelCacheChecks.swift):
// settings and shard ranges, offsets, per-example values, dataset shapes, top-k classes.
// Temperature is not stored: it is applied at training time, so one cache serves students
// trained at any temperature. Left out on purpose: labels for dev/test (students are
// evaluated against gold labels), pair inputs, and float16 storage.

import DistilleryJSON
import Foundation

/// Root attribute naming the file format.
let labelCacheFormatAttribute = "format"
/// Value of the `format` attribute in a label cache.
let labelCacheFormatName = "distillery-labels"
/// Root attribute holding the format version.
let labelCacheVersionAttribute = "format_version"
/// The label-cache format version this build reads and writes.
let labelCacheFormatVersion = 1

/// Dataset names of the label-cache format.
enum LabelCachePaths {
    static let tokenIDs = "token_ids", tokenOffsets = "token_offsets", sourceRow = "source_row", copy = "copy",
               label = "label", logits = "logits", topKIndices = "topk_indices", topKLogits = "topk_logits",
               topKRestMass = "topk_rest_mass", attentionOffsets = "attention_offsets"
    static func hidden(_ layer: Int) -> String { "hidden/layer_\(layer)" }
    static func attention(_ layer: Int) -> String { "attention/layer_\(layer)" }
}

/// Below this remaining probability mass, rebuilt logits use this floor instead, so the
/// rebuilt vector stays finite (log 0 = −∞ would poison a log-softmax at any temperature);
/// 1e-30 is far below anything float32 softmax can resolve next to a top class (≥ 1/C).
public let minimumRestMass: Float = 1e-30

/// Augmentation settings recorded with a cache (copies = 0: no augmentation).
public struct LabelAugmentationSettings: Sendable, Equatable {
    /// Copies generated per training row (identical ones are dropped and counted).
    public var copies: Int
    /// Probability that an eligible word is replaced.
    public var probability: Double
    /// Nearest neighbours a replacement is drawn from.
    public var neighbours: Int
    /// Seed; row r's copies come from a generator seeded by (seed, r).
    public var seed: UInt64

    /// Creates augmentation settings.
    public init(copies: Int, probability: Double, neighbours: Int, seed: UInt64) {
        self.copies = copies
        self.probability = probability
        self.neighbours = neighbours
        self.seed = seed
    }
}

/// What a cache was made from and what it holds; equal settings mean interchangeable shards.
public struct LabelCacheSettings: Sendable, Equatable {
    /// sha256 (hex) of the teacher file's bytes.
    public var teacherSHA256: String
    /// The teacher's file name, for messages.
    public var teacherFile: String
    /// sha256 (hex) of the data, see ``LabelCache/dataSHA256(trainSHA256:manifestSHA256:)``.
    public var dataSHA256: String
    /// The data set's name (its manifest name), for messages.
    public var dataName: String
    /// Class names in logit order.
    public var labels: [String]
    /// Truncation length the token ids were made with ([CLS] and [SEP] included).
    public var maxLength: Int
    /// Teacher hidden size H.
    public var hiddenSize: Int
    /// Teacher encoder layers L.
    public var teacherLayers: Int
    /// Stored hidden states: 0 = embeddings output, l = output of layer l (1…L).
    public var hiddenLayers: [Int]
    /// Stored attention maps: layer l (1…L).
    public var attentionLayers: [Int]
    /// Heads of each stored attention layer (same order as `attentionLayers`).
    public var attentionHeads: [Int]
    /// Logits kept per example: 0 = all, K = the K largest plus the remaining mass.
    public var topK: Int
    /// How augmented copies were made.
    public var augmentation: LabelAugmentationSettings
    /// Training rows in the whole data set (every shard's rows together).
    public var sourceRows: Int

    /// Number of classes.
    public var classes: Int { labels.count }

    /// Creates settings.
    public init(teacherSHA256: String, teacherFile: String, dataSHA256: String, dataName: String, labels: [String],
                maxLength: Int, hiddenSize: Int, teacherLayers: Int, hiddenLayers: [Int], attentionLayers: [Int],
                attentionHeads: [Int], topK: Int, augmentation: LabelAugmentationSettings, sourceRows: Int) {
        self.teacherSHA256 = teacherSHA256
        self.teacherFile = teacherFile
        self.dataSHA256 = dataSHA256
        self.dataName = dataName
        self.labels = labels
        self.maxLength = maxLength
        self.hiddenSize = hiddenSize
        self.teacherLayers = teacherLayers
        self.hiddenLayers = hiddenLayers
        self.attentionLayers = attentionLayers
        self.attentionHeads = attentionHeads
        self.topK = topK
        self.augmentation = augmentation
        self.sourceRows = sourceRows
    }

    /// Every setting as (attribute name, value text), in file order.
    var fields: [(String, String)] {
        [("teacher_sha256", teacherSHA256), ("teacher_file", teacherFile), ("data_sha256", dataSHA256),
         ("data_name", dataName), ("labels_json", jsonText(labels)), ("max_length", "\(maxLength)"),
         ("hidden_size", "\(hiddenSize)"), ("teacher_layers", "\(teacherLayers)"), ("hidden_layers", jsonText(hiddenLayers)),
         ("attention_layers", jsonText(attentionLayers)), ("attention_heads", jsonText(attentionHeads)), ("top_k", "\(topK)"),
         ("augment_copies", "\(augmentation.copies)"), ("augment_probability", "\(augmentation.probability)"),
         ("augment_neighbours", "\(augmentation.neighbours)"), ("augment_seed", "\(augmentation.seed)"),
         ("source_rows", "\(sourceRows)")]
    }

    /// The settings that differ from `other`, each as "name: A vs B".
    public func differences(from other: LabelCacheSettings) -> [String] {
        zip(fields, other.fields).compactMap { a, b in a.1 == b.1 ? nil : "\(a.0): \(a.1) vs \(b.1)" }
    }
}

/// Which part of the source rows a cache file covers (0/1 for a whole cache).
public struct LabelCacheShard: Sendable, Equatable {
    /// Shard number, 0-based.
    public var index: Int
    /// Number of shards.
    public var count: Int
    /// Source rows of this shard.
    public var rows: Range<Int>

    /// Creates a shard record.
    public init(index: Int, count: Int, rows: Range<Int>) {
        self.index = index
        self.count = count
        self.rows = rows
    }

    /// Shard `index` of `count` over `sourceRows` rows: the contiguous rows
    /// ⌊index·R/count⌋ ..< ⌊(index+1)·R/count⌋, so the shards tile the rows in order.
    /// Computed in double width, so any counts (also ones read from a file) are safe; an
    /// index outside 0..<count gets an empty range at the nearest end.
    public static func split(sourceRows: Int, index: Int, count: Int) -> LabelCacheShard {
        func boundary(_ i: Int) -> Int {   // 0 ≤ i ≤ count
            guard count > 0, sourceRows > 0 else { return 0 }
            return count.dividingFullWidth(sourceRows.multipliedFullWidth(by: i)).quotient   // ≤ sourceRows: no overflow
        }
        let i = max(0, min(index, count))
        return LabelCacheShard(index: index, count: count, rows: boundary(i)..<boundary(i < count ? i + 1 : i))
    }
}

/// One example's logits as cached: all of them, or the top K with the remaining mass.
public enum CachedLogits: Sendable, Equatable {
    /// Every class's logit at temperature 1.
    case full([Float])
    /// The K largest logits (largest first, ties to the lower class) and the softmax
    /// probability at temperature 1 of all other classes together.
    case topK(indices: [Int32], logits: [Float], restMass: Float)
}

/// One cached example: what the teacher saw and what it said.
public struct LabelRecord: Sendable, Equatable {
    /// Token ids fed to the teacher ([CLS] … [SEP]); a student must train on these.
    public var tokenIDs: [Int32]
    /// Line index of the source text in train.jsonl.
    public var sourceRow: Int
    /// 0 = the original text, k ≥ 1 = augmented copy k.
    public var copy: Int
    /// Gold label index, −1 for augmented copies.
    public var label: Int32
    /// The teacher's logits.
    public var logits: CachedLogits
    /// Per stored hidden layer (settings order): `[T, H]` row-major.
    public var hidden: [[Float]]
    /// Per stored attention layer (settings order): `[heads, T, T]` row-major.
    public var attention: [[Float]]

    /// Creates a record.
    public init(tokenIDs: [Int32], sourceRow: Int, copy: Int, label: Int32, logits: CachedLogits,
                hidden: [[Float]] = [], attention: [[Float]] = []) {
        self.tokenIDs = tokenIDs
        self.sourceRow = sourceRow
        self.copy = copy
        self.label = label
        self.logits = logits
        self.hidden = hidden
        self.attention = attention
    }
}

/// An open label cache: settings, per-example metadata in memory, tensors read on demand.
public final class LabelCache {
    /// The file.
    public let url: URL
    /// What the cache was made from.
    public let settings: LabelCacheSettings
    /// The source rows this file covers.
    public let shard: LabelCacheShard
    /// Augmented copies dropped because they equalled their original (or an earlier copy).
    public let droppedCopies: Int
    /// `exampleCount + 1` offsets into token_ids (and the rows of every hidden dataset).
    public let tokenOffsets: [Int64]
    /// Source row of each example.
    public let sourceRows: [Int32]
    /// Copy number of each example (0 = original).
    public let copies: [Int32]
    /// Gold label of each example (−1 for augmented copies).
    public let labels: [Int32]
    let file: HDF5File
    let attentionOffsets: [Int64]

    /// Number of examples (originals and augmented copies).
    public var exampleCount: Int { sourceRows.count }
    /// Tokens over all examples.
    public var tokenCount: Int { Int(tokenOffsets.last ?? 0) }
    /// Token count of example `i`.
    public func length(of i: Int) -> Int { Int(tokenOffsets[i + 1] - tokenOffsets[i]) }

    /// Opens a label cache, checking its format, version and internal consistency.
    public static func open(_ url: URL) throws -> LabelCache { try LabelCache(url: url) }

    private init(url: URL) throws {
        self.url = url
        file = try HDF5File.open(url)
        let hint = "make it with 'kd label --teacher T.h5 --data data/NAME --out \(url.lastPathComponent)'"
        guard file.hasAttribute(labelCacheFormatAttribute),
              let format = try? file.stringAttribute(labelCacheFormatAttribute) else {
            throw WeightIOError(.notThisFormat, file: url, object: labelCacheFormatAttribute,
                                "not a Distillery label cache (no '\(labelCacheFormatAttribute)' attribute)", hint: hint)
        }
        guard format == labelCacheFormatName else {
            throw WeightIOError(.notThisFormat, file: url, object: labelCacheFormatAttribute,
                                "not a Distillery label cache (format '\(format)', expected '\(labelCacheFormatName)')", hint: hint)
        }
        let version = try file.intAttribute(labelCacheVersionAttribute)
        guard version == labelCacheFormatVersion else {
            throw WeightIOError(.unsupported, file: url, object: labelCacheVersionAttribute,
                                "format_version \(version) is not the one this build reads (\(labelCacheFormatVersion))",
                                hint: "re-create the cache with this kd")
        }
        let f = file
        func int(_ name: String) throws -> Int { try f.intAttribute(name) }
        func string(_ name: String) throws -> String { try f.stringAttribute(name) }
        func decode<T: Decodable>(_ name: String, _ type: T.Type) throws -> T {
            guard let value = try? JSONCoding.decode(T.self, from: try string(name)) else {
                throw WeightIOError(.corrupt, file: url, object: name, "attribute '\(name)' is not the JSON array it should be",
                                    hint: "the file was edited or written by another tool; re-create it")
            }
            return value
        }
        guard let seed = UInt64(try string("augment_seed")) else {
            throw WeightIOError(.corrupt, file: url, object: "augment_seed", "attribute 'augment_seed' is not a UInt64",
                                hint: "the file was edited or written by another tool; re-create it")
        }
        settings = LabelCacheSettings(
            teacherSHA256: try string("teacher_sha256"), teacherFile: try string("teacher_file"),
            dataSHA256: try string("data_sha256"), dataName: try string("data_name"),
            labels: try decode("labels_json", [String].self), maxLength: try int("max_length"),
            hiddenSize: try int("hidden_size"), teacherLayers: try int("teacher_layers"),
            hiddenLayers: try decode("hidden_layers", [Int].self), attentionLayers: try decode("attention_layers", [Int].self),
            attentionHeads: try decode("attention_heads", [Int].self), topK: try int("top_k"),
            augmentation: LabelAugmentationSettings(copies: try int("augment_copies"),
                                                    probability: try file.doubleAttribute("augment_probability"),
                                                    neighbours: try int("augment_neighbours"), seed: seed),
            sourceRows: try int("source_rows"))
        shard = try LabelCache.checkedShard(index: try int("shard_index"), count: try int("shard_count"),
                                            start: try int("shard_row_start"), end: try int("shard_row_end"),
                                            settings: settings, url: url)
        droppedCopies = try int("augment_dropped_copies")
        let examples = try int("examples")
        try LabelCache.checkExampleCount(examples, file: file)
        tokenOffsets = try file.readRows(LabelCachePaths.tokenOffsets, rows: 0..<(examples + 1))
        sourceRows = try file.readRows(LabelCachePaths.sourceRow, rows: 0..<examples)
        copies = try file.readRows(LabelCachePaths.copy, rows: 0..<examples)
        labels = try file.readRows(LabelCachePaths.label, rows: 0..<examples)
        attentionOffsets = settings.attentionLayers.isEmpty ? []
            : try file.readRows(LabelCachePaths.attentionOffsets, rows: 0..<(examples + 1))
        try checkOffsets()
        guard tokenCount == (try int("tokens")), try file.rowCount(LabelCachePaths.tokenIDs) == tokenCount else {
            throw WeightIOError(.corrupt, file: url, object: LabelCachePaths.tokenIDs,
                                "token counts disagree (attribute 'tokens', token_offsets, token_ids)",
                                hint: "the file is incomplete or was edited; re-create it")
        }
        try checkExamples()
        try checkDatasetShapes()
    }

    // MARK: Checking

    /// sha256 identifying a prepared data set: sha256 of the ASCII text
    /// `"<sha256 hex of train.jsonl><sha256 hex of manifest.json>"`.
    public static func dataSHA256(trainSHA256: String, manifestSHA256: String, hash: (Data) -> String) -> String {
        hash(Data((trainSHA256 + manifestSHA256).utf8))
    }

    /// Throws a `.mismatch` error naming both files unless the cache was made from this
    /// teacher and this data (by sha256). Call it before training on the cache.
    public func verify(teacherSHA256: String, teacherFile: String, dataSHA256: String, dataFile: String) throws {
        let name = url.lastPathComponent
        if teacherSHA256 != settings.teacherSHA256 {
            throw WeightIOError(.mismatch, file: url, object: "teacher_sha256",
                                "made with teacher '\(settings.teacherFile)' (sha256 \(settings.teacherSHA256.prefix(12))…), but this run's teacher \(teacherFile) has sha256 \(teacherSHA256.prefix(12))…",
                                hint: "use the teacher the cache was made with, or re-label: kd label --teacher \(teacherFile) --data … --out \(name)")
        }
        if dataSHA256 != settings.dataSHA256 {
            throw WeightIOError(.mismatch, file: url, object: "data_sha256",
                                "made from data '\(settings.dataName)' (sha256 \(settings.dataSHA256.prefix(12))…), but this run's data \(dataFile) has sha256 \(dataSHA256.prefix(12))…",
                                hint: "use the data the cache was made from, or re-label: kd label --teacher … --data \(dataFile) --out \(name)")
        }
    }

    // MARK: Reading examples

    /// Token ids of each example in `examples`.
    public func tokenIDs(examples: [Int]) throws -> [[Int32]] {
        try readRanges(LabelCachePaths.tokenIDs, examples.map { try tokenRange($0) })
    }

    /// Logits of each example in `examples`, as stored.
    public func logits(examples: [Int]) throws -> [CachedLogits] {
        try examples.forEach { _ = try tokenRange($0) }
        let ranges = examples.map { $0..<($0 + 1) }
        if settings.topK == 0 {
            return try readRanges(LabelCachePaths.logits, ranges, rowSize: settings.classes).map { .full($0) }
        }
        let k = settings.topK
        let indices: [[Int32]] = try readRanges(LabelCachePaths.topKIndices, ranges, rowSize: k)
        let values: [[Float]] = try readRanges(LabelCachePaths.topKLogits, ranges, rowSize: k)
        let rest: [[Float]] = try readRanges(LabelCachePaths.topKRestMass, ranges)
        return (0..<examples.count).map { .topK(indices: indices[$0], logits: values[$0], restMass: rest[$0][0]) }
    }

    /// Full logit vectors of `examples`; top-k entries are rebuilt with ``LabelCache/fullLogits(_:classes:)``.
    public func fullLogits(examples: [Int]) throws -> [[Float]] {
        try logits(examples: examples).map { LabelCache.fullLogits($0, classes: settings.classes) }
    }

    /// Hidden state `layer` (a value of `settings.hiddenLayers`) of each example: `[T_i, H]` row-major.
    public func hidden(layer: Int, examples: [Int]) throws -> [[Float]] {
        guard settings.hiddenLayers.contains(layer) else {
            throw WeightIOError(.missingObject, file: url, object: LabelCachePaths.hidden(layer),
                                "hidden state \(layer) is not stored (stored: \(describeLayers(settings.hiddenLayers)))",
                                hint: "re-label with --hidden including \(layer), or run the teacher online for this loss")
        }
        return try readRanges(LabelCachePaths.hidden(layer), examples.map { try tokenRange($0) }, rowSize: settings.hiddenSize)
    }

    /// Attention probabilities of `layer` (a value of `settings.attentionLayers`) of each example: `[heads, T_i, T_i]`.
    public func attention(layer: Int, examples: [Int]) throws -> [[Float]] {
        guard let position = settings.attentionLayers.firstIndex(of: layer) else {
            throw WeightIOError(.missingObject, file: url, object: LabelCachePaths.attention(layer),
                                "attention of layer \(layer) is not stored (stored: \(describeLayers(settings.attentionLayers)))",
                                hint: "re-label with --attention including \(layer), or run the teacher online for this loss")
        }
        let heads = Int64(settings.attentionHeads[position])
        let ranges = try examples.map { i -> Range<Int> in
            _ = try tokenRange(i)
            return Int(heads * attentionOffsets[i])..<Int(heads * attentionOffsets[i + 1])
        }
        return try readRanges(LabelCachePaths.attention(layer), ranges)
    }

    /// Complete records of a contiguous range of examples (every stored tensor).
    public func records(_ range: Range<Int>) throws -> [LabelRecord] {
        let indices = Array(range)
        let ids = try tokenIDs(examples: indices), logits = try logits(examples: indices)
        let hidden = try settings.hiddenLayers.map { try self.hidden(layer: $0, examples: indices) }
        let attention = try settings.attentionLayers.map { try self.attention(layer: $0, examples: indices) }
        return indices.indices.map { j in
            let i = indices[j]
            return LabelRecord(tokenIDs: ids[j], sourceRow: Int(sourceRows[i]), copy: Int(copies[i]), label: labels[i],
                               logits: logits[j], hidden: hidden.map { $0[j] }, attention: attention.map { $0[j] })
        }
    }

    private func tokenRange(_ i: Int) throws -> Range<Int> {
        guard i >= 0 && i < exampleCount else {
            throw WeightIOError(.missingObject, file: url, object: "example \(i)",
                                "example \(i) is outside the cache (\(exampleCount) examples)",
                                hint: "index examples 0..<\(exampleCount)")
        }
        return Int(tokenOffsets[i])..<Int(tokenOffsets[i + 1])
    }

    /// Reads element ranges (in rows of `rowSize` values) of a dataset, one array per range;
    /// ranges that follow each other in the file are read with one hyperslab.
    private func readRanges<T: HDF5Number>(_ path: String, _ ranges: [Range<Int>], rowSize: Int = 1) throws -> [[T]] {
        var result = [[T]](repeating: [], count: ranges.count)
        var j = 0
        while j < ranges.count {
            var end = j + 1
            while end < ranges.count && ranges[end].lowerBound == ranges[end - 1].upperBound { end += 1 }
            let span = ranges[j].lowerBound..<ranges[end - 1].upperBound
            let values: [T] = try file.readRows(path, rows: span)
            for r in j..<end {
                let lo = (ranges[r].lowerBound - span.lowerBound) * rowSize, hi = (ranges[r].upperBound - span.lowerBound) * rowSize
                result[r] = Array(values[lo..<hi])
            }
            j = end
        }
        return result
    }

    // MARK: Logits

    /// Keeps the `k` largest of `logits` (largest first, ties to the lower class) and the
    /// softmax probability at temperature 1 of the others, summed in Double.
    public static func topK(_ logits: [Float], k: Int) -> CachedLogits {
        let order = logits.indices.sorted { logits[$0] != logits[$1] ? logits[$0] > logits[$1] : $0 < $1 }
        let kept = Array(order.prefix(k))
        let top = Double(logits.max() ?? 0)
        let total = logits.reduce(0.0) { $0 + Foundation.exp(Double($1) - top) }
        let rest = order.dropFirst(k).reduce(0.0) { $0 + Foundation.exp(Double(logits[$1]) - top) }
        return .topK(indices: kept.map { Int32($0) }, logits: kept.map { logits[$0] }, restMass: Float(rest / total))
    }

    /// A full logit vector for temperature scaling from cached logits.
    ///
    /// Full logits are returned as stored. From top-k the kept classes get their logits and
    /// every other class the logit `log Z + log(r / (C − K))`, where r is the remaining mass
    /// (floored at ``minimumRestMass``) and `log Z = logsumexp(top-k logits) − log(1 − r)` is
    /// the full softmax normalizer recovered from the top-k. At temperature 1 the rebuilt
    /// softmax is exact on the kept classes and spreads r evenly over the others. At T ≠ 1
    /// it is an approximation: the kept classes' relative weights stay exact, but the mass
    /// of the others is computed as if they were all equal (uniform spreading gives a
    /// smaller sum of p^(1/T) than the true tail for T > 1, so the tail is slightly
    /// under-weighted, and slightly over-weighted for T < 1); the error is at most r.
    public static func fullLogits(_ cached: CachedLogits, classes: Int) -> [Float] {
        switch cached {
        case .full(let logits):
            return logits
        case .topK(let indices, let logits, let restMass):
            let missing = classes - indices.count
            guard missing > 0 else {
                var out = [Float](repeating: 0, count: classes)
                for (i, v) in zip(indices, logits) { out[Int(i)] = v }
                return out
            }
            let r = Double(max(restMass, minimumRestMass))
            let top = Double(logits.max() ?? 0)
            let logSumTop = top + Foundation.log(logits.reduce(0.0) { $0 + Foundation.exp(Double($1) - top) })
            let logZ = logSumTop - Foundation.log(max(1 - r, Double(minimumRestMass)))
            let fill = Float(logZ + Foundation.log(r / Double(missing)))
            var out = [Float](repeating: fill, count: classes)
            for (i, v) in zip(indices, logits) { out[Int(i)] = v }
            return out
        }
    }
}

// MARK: - Cost

/// Bytes a label cache takes, by part, uncompressed and estimated on disk.
public struct LabelCacheCost: Sendable, Equatable {
    /// Examples, tokens and Σ T_i² the cost was computed for.
    public var examples: Int, tokens: Int, squaredTokens: Int
    /// Token ids, offsets, source rows, copies, labels.
    public var metadataBytes: Int
    /// Logits (full or top-k).
    public var logitBytes: Int
    /// Hidden states of all stored layers.
    public var hiddenBytes: Int
    /// Attention maps of all stored layers (offsets included).
    public var attentionBytes: Int

    /// All parts uncompressed.
    public var uncompressedBytes: Int { metadataBytes + logitBytes + hiddenBytes + attentionBytes }

    /// Estimated file size after shuffle + deflate (see the ratio constants).
    public var estimatedDiskBytes: Int {
        Int(Double(metadataBytes) * metadataDiskRatio + Double(logitBytes) * logitDiskRatio
            + Double(hiddenBytes) * hiddenDiskRatio + Double(attentionBytes) * attentionDiskRatio) + fileOverheadBytes
    }

    /// The cost of storing `examples` examples of `tokens` tokens (Σ T_i² = `squaredTokens`) with `settings`.
    public init(settings: LabelCacheSettings, examples: Int, tokens: Int, squaredTokens: Int) {
        self.examples = examples
        self.tokens = tokens
        self.squaredTokens = squaredTokens
        metadataBytes = tokens * 4 + (examples + 1) * 8 + examples * 3 * 4
        logitBytes = settings.topK == 0 ? examples * settings.classes * 4 : examples * (settings.topK * 8 + 4)
        hiddenBytes = tokens * settings.hiddenSize * 4 * settings.hiddenLayers.count
        attentionBytes = settings.attentionLayers.isEmpty ? 0
            : squaredTokens * 4 * settings.attentionHeads.reduce(0, +) + (examples + 1) * 8
    }
}

/// Disk/uncompressed ratios for the estimate, measured with shuffle + deflate level 4 on
/// the MiniLM-L6 teacher fine-tuned on sms-spam (3627 examples, 89382 tokens): token ids,
/// offsets and per-example integers 0.33; 2-class logits 0.65; hidden states 0.84–0.87 by
/// layer; attention probabilities of layer 6 0.79. Each constant rounds up a little, so
/// the estimate errs towards more disk.
let metadataDiskRatio = 0.35, logitDiskRatio = 0.7, hiddenDiskRatio = 0.87, attentionDiskRatio = 0.8
/// HDF5 superblock, object headers, chunk B-trees and attributes (≈ 22 kB measured on a
/// 3627-example cache; B-trees grow with the chunk count, so this is rounded up).
let fileOverheadBytes = 32 * 1024

/// "0, 2, 4" or "none".
func describeLayers(_ layers: [Int]) -> String { layers.isEmpty ? "none" : layers.map(String.init).joined(separator: ", ") }

/// Compact JSON text of an attribute value (`[0,2,4]`, `["a","b"]`); arrays of numbers
/// and strings always encode.
func jsonText(_ value: some Encodable) -> String { (try? JSONCoding.string(value)) ?? "[]" }
