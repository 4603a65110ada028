// LabelCacheChecks: what `LabelCache.open` proves about a cache before anything reads it.
//
// A label cache is input — a file on disk, possibly truncated, edited or hostile — and the
// reading methods index arrays and datasets with values from it: offsets become ranges,
// top-k indices become class indices, head counts multiply offsets. Each such value is
// checked here once, at open, so the reads stay plain array indexing:
//   settings      sizes positive, stored layers inside the teacher, one head count per
//                 attention layer, top_k < classes, shard index < count, rows in order;
//   offsets       token_offsets start at 0, grow by 1…max_length per example; attention
//                 offsets grow by exactly T_i², and heads × the last one fits an Int;
//   examples      source rows inside the shard, copies in 0…augment_copies, gold labels in
//                 −1..<classes (−1 for every augmented copy);
//   datasets      each holds one row per example (or per token, or per attention value)
//                 of the width the settings say; every top-k class index is in 0..<classes.
// Left out on purpose: token ids against a vocabulary (the cache does not know the
// student's; training checks every batch against its model) and values of floats.
import DistilleryTensor
import Foundation

extension LabelCache {
    /// A corrupt-cache error about `object`.
    static func corrupt(_ url: URL, _ object: String, _ message: String) -> WeightIOError {
        WeightIOError(.corrupt, file: url, object: object, message,
                      hint: "the file is incomplete, was edited or written by another tool; re-create it with kd label")
    }

    /// The shard record, after checking the settings it belongs to and its own ranges.
    static func checkedShard(index: Int, count: Int, start: Int, end: Int, settings s: LabelCacheSettings,
                             url: URL) throws -> LabelCacheShard {
        let sizes = [("max_length", s.maxLength, 2), ("hidden_size", s.hiddenSize, 1), ("teacher_layers", s.teacherLayers, 1),
                     ("classes", s.classes, 1), ("top_k", s.topK, 0), ("source_rows", s.sourceRows, 0),
                     ("augment_copies", s.augmentation.copies, 0)]
        for (name, value, minimum) in sizes where value < minimum {
            throw corrupt(url, name, "attribute '\(name)' is \(value), expected at least \(minimum)")
        }
        guard s.topK < s.classes else {
            throw corrupt(url, "top_k", "top_k \(s.topK) is not below the \(s.classes) classes")
        }
        if let bad = s.hiddenLayers.first(where: { $0 < 0 || $0 > s.teacherLayers }) {
            throw corrupt(url, "hidden_layers", "stored hidden state \(bad) is outside 0…\(s.teacherLayers) (the teacher's layers)")
        }
        if let bad = s.attentionLayers.first(where: { $0 < 1 || $0 > s.teacherLayers }) {
            throw corrupt(url, "attention_layers", "stored attention layer \(bad) is outside 1…\(s.teacherLayers)")
        }
        guard s.attentionHeads.count == s.attentionLayers.count, s.attentionHeads.allSatisfy({ $0 >= 1 }) else {
            throw corrupt(url, "attention_heads", "attention_heads \(s.attentionHeads) is not one positive head count per attention layer \(s.attentionLayers)")
        }
        guard count >= 1, index >= 0, index < count else {
            throw corrupt(url, "shard_index", "shard \(index) of \(count) is not a shard (0 ≤ index < count)")
        }
        guard start >= 0, start <= end, end <= s.sourceRows else {
            throw corrupt(url, "shard_row_start", "shard rows \(start)..<\(end) are not inside the \(s.sourceRows) source rows")
        }
        return LabelCacheShard(index: index, count: count, rows: start..<end)
    }

    /// The `examples` attribute must leave room for its N+1 offsets in token_offsets.
    static func checkExampleCount(_ examples: Int, file: HDF5File) throws {
        let offsets = try file.rowCount(LabelCachePaths.tokenOffsets)
        guard examples >= 0, examples < offsets else {
            throw corrupt(file.url, "examples", "attribute 'examples' is \(examples) but token_offsets holds \(offsets) offsets (examples + 1 expected)")
        }
    }

    /// Offsets start at 0 and grow as the writer made them; heads × offsets fit an Int.
    func checkOffsets() throws {
        guard tokenOffsets.first == 0 else {
            throw LabelCache.corrupt(url, LabelCachePaths.tokenOffsets, "token_offsets start at \(tokenOffsets.first.map(String.init) ?? "nothing"), not 0")
        }
        let maxLength = Int64(settings.maxLength)
        for i in 0..<exampleCount {
            let t = tokenOffsets[i + 1] &- tokenOffsets[i]   // wrapping: a wrapped value fails the range check
            guard t >= 1, t <= maxLength, tokenOffsets[i + 1] > tokenOffsets[i] else {
                throw LabelCache.corrupt(url, LabelCachePaths.tokenOffsets, "example \(i) spans token offsets \(tokenOffsets[i])..<\(tokenOffsets[i + 1]), not 1…\(maxLength) tokens")
            }
            if !settings.attentionLayers.isEmpty, attentionOffsets[i + 1] &- attentionOffsets[i] != t * t || attentionOffsets[i] < 0 {
                throw LabelCache.corrupt(url, LabelCachePaths.attentionOffsets, "example \(i) spans attention offsets \(attentionOffsets[i])..<\(attentionOffsets[i + 1]), expected \(t)² values")
            }
        }
        if let last = attentionOffsets.last, attentionOffsets.first != 0
            || settings.attentionHeads.contains(where: { Int64($0).multipliedReportingOverflow(by: last).overflow }) {
            throw LabelCache.corrupt(url, LabelCachePaths.attentionOffsets, "attention offsets start at \(attentionOffsets[0]) and end at \(last): not 0, or too large for the head counts \(settings.attentionHeads)")
        }
    }

    /// Per-example values in range: source rows in the shard, copies, gold labels.
    func checkExamples() throws {
        let rows = shard.rows, copiesMax = settings.augmentation.copies, classes = settings.classes
        for i in 0..<exampleCount {
            guard rows.contains(Int(sourceRows[i])) else {
                throw LabelCache.corrupt(url, LabelCachePaths.sourceRow, "example \(i) comes from source row \(sourceRows[i]), outside the shard's rows \(rows.lowerBound)..<\(rows.upperBound)")
            }
            guard copies[i] >= 0, copies[i] <= copiesMax else {
                throw LabelCache.corrupt(url, LabelCachePaths.copy, "example \(i) is copy \(copies[i]), outside 0…\(copiesMax)")
            }
            guard labels[i] >= -1, labels[i] < classes, copies[i] == 0 || labels[i] == -1 else {
                throw LabelCache.corrupt(url, LabelCachePaths.label, "example \(i) (copy \(copies[i])) has gold label \(labels[i]), expected 0..<\(classes) for an original, −1 for an augmented copy")
            }
        }
    }

    /// Every dataset has the rows and row width the settings say; top-k classes are in range.
    func checkDatasetShapes() throws {
        let n = exampleCount, s = settings
        var expected: [(String, [Int])] = [
            (LabelCachePaths.sourceRow, [n]), (LabelCachePaths.copy, [n]), (LabelCachePaths.label, [n]),
        ]
        expected += s.topK == 0 ? [(LabelCachePaths.logits, [n, s.classes])]
            : [(LabelCachePaths.topKIndices, [n, s.topK]), (LabelCachePaths.topKLogits, [n, s.topK]), (LabelCachePaths.topKRestMass, [n])]
        expected += s.hiddenLayers.map { (LabelCachePaths.hidden($0), [tokenCount, s.hiddenSize]) }
        for (layer, heads) in zip(s.attentionLayers, s.attentionHeads) {
            expected.append((LabelCachePaths.attention(layer), [heads * Int(attentionOffsets.last ?? 0)]))
        }
        for (path, shape) in expected {
            let found = try file.shape(of: path)
            guard found == shape else {
                throw LabelCache.corrupt(url, path, "dataset '\(path)' has shape \(describeShape(found)), the settings need \(describeShape(shape))")
            }
        }
        guard s.topK > 0, n > 0 else { return }
        let indices: [Int32] = try file.readRows(LabelCachePaths.topKIndices, rows: 0..<n)
        if let i = indices.firstIndex(where: { $0 < 0 || Int($0) >= s.classes }) {
            throw LabelCache.corrupt(url, LabelCachePaths.topKIndices, "example \(i / s.topK) keeps class \(indices[i]) among its top \(s.topK), outside 0..<\(s.classes)")
        }
    }
}
