// Model inputs from text: [CLS] A [SEP] (B [SEP]), truncation, token types, batch padding.
//
// Follows HF `tokenizers` (the Rust backend of transformers 5's `BertTokenizer`): with
// `maxLength`, truncation is 'longest_first' as `truncate_encodings` does it (one
// sequence: cut from the end; a pair: the shorter keeps its length if the longer can take
// the rest, else each gets half the budget, an odd token going to the longer — the second
// on a tie). This is not the slow class's rule, which removes one token at a time from
// whichever is longer: the two differ when both must be cut. Token type ids are 0 for [CLS] A [SEP] and 1 for
// B [SEP] — and 1 for B without special tokens too (the slow Python class gives 0s there).
// Batches pad on the right to the longest row with [PAD], type 0 and attention mask 0.
// Left out: stride/overflow windows, left-side truncation or padding.

/// The model inputs for one text (or text pair).
public struct Encoding: Sendable, Equatable {
    /// Token ids, including [CLS]/[SEP] when special tokens were added.
    public var ids: [Int32]
    /// Segment of each token: 0 for the first text, 1 for the pair.
    public var typeIds: [Int32]
    /// 1 for every real token (an unpadded encoding has no 0s).
    public var attentionMask: [Int32]

    public init(ids: [Int32], typeIds: [Int32], attentionMask: [Int32]) {
        self.ids = ids
        self.typeIds = typeIds
        self.attentionMask = attentionMask
    }
}

/// Several encodings padded to one length, stored row-major as `[batchSize, sequenceLength]`.
public struct Batch: Sendable {
    /// Token ids, padded with the tokenizer's ``WordPieceTokenizer/paddingId``.
    public var ids: [Int32]
    /// Segment ids (0 in padding).
    public var typeIds: [Int32]
    /// 1 for real tokens, 0 for padding.
    public var attentionMask: [Int32]
    /// Number of rows (texts).
    public var batchSize: Int
    /// Length of every row: the longest encoding in the batch.
    public var sequenceLength: Int

    public init(ids: [Int32], typeIds: [Int32], attentionMask: [Int32], batchSize: Int, sequenceLength: Int) {
        self.ids = ids
        self.typeIds = typeIds
        self.attentionMask = attentionMask
        self.batchSize = batchSize
        self.sequenceLength = sequenceLength
    }
}

extension WordPieceTokenizer {
    /// Encodes `text` (and optionally `pair`) as HF `tokenizer(text, pair, truncation=True, max_length=…)` does.
    ///
    /// - Parameters:
    ///   - addSpecialTokens: wrap as `[CLS] text [SEP]` / `[CLS] text [SEP] pair [SEP]`.
    ///   - maxLength: total length limit including special tokens, applied with HF's
    ///     'longest_first' strategy; `nil` keeps everything. Special tokens are never cut, so
    ///     a limit below their count yields just the special tokens.
    public func encode(_ text: String, pair: String? = nil, addSpecialTokens: Bool = true,
                       maxLength: Int? = nil) -> Encoding {
        var first = tokenIds(text)
        var second = pair.map { tokenIds($0) }
        if let maxLength {
            let specials = addSpecialTokens ? (second == nil ? 2 : 3) : 0
            Self.truncateLongestFirst(&first, &second, toRemove: first.count + (second?.count ?? 0) + specials - maxLength)
        }
        var ids: [Int32] = []
        var typeIds: [Int32] = []
        let total = first.count + (second?.count ?? 0) + 3
        ids.reserveCapacity(total)
        typeIds.reserveCapacity(total)
        if addSpecialTokens { ids.append(classId) }
        ids.append(contentsOf: first)
        if addSpecialTokens { ids.append(separatorId) }
        typeIds.append(contentsOf: repeatElement(0, count: ids.count))
        if let second {
            ids.append(contentsOf: second)
            if addSpecialTokens { ids.append(separatorId) }
            typeIds.append(contentsOf: repeatElement(1, count: ids.count - typeIds.count))
        }
        return Encoding(ids: ids, typeIds: typeIds, attentionMask: [Int32](repeating: 1, count: ids.count))
    }

    /// Encodes each text on its own and pads all rows on the right to the longest one.
    public func encodeBatch(_ texts: [String], addSpecialTokens: Bool = true, maxLength: Int? = nil) -> Batch {
        let rows = texts.map { encode($0, addSpecialTokens: addSpecialTokens, maxLength: maxLength) }
        let length = rows.map(\.ids.count).max() ?? 0
        var batch = Batch(ids: [], typeIds: [], attentionMask: [], batchSize: rows.count, sequenceLength: length)
        batch.ids.reserveCapacity(rows.count * length)
        batch.typeIds.reserveCapacity(rows.count * length)
        batch.attentionMask.reserveCapacity(rows.count * length)
        for row in rows {
            let padding = length - row.ids.count
            batch.ids.append(contentsOf: row.ids)
            batch.ids.append(contentsOf: repeatElement(paddingId, count: padding))
            batch.typeIds.append(contentsOf: row.typeIds)
            batch.typeIds.append(contentsOf: repeatElement(0, count: padding))
            batch.attentionMask.append(contentsOf: row.attentionMask)
            batch.attentionMask.append(contentsOf: repeatElement(0, count: padding))
        }
        return batch
    }

    /// HF `tokenizers`' `truncate_encodings(..., LongestFirst)`, cutting on the right;
    /// `toRemove` is how many ids must go (their budget is the current total minus it).
    static func truncateLongestFirst(_ first: inout [Int32], _ second: inout [Int32]?, toRemove: Int) {
        guard toRemove > 0 else { return }
        guard var pair = second else {
            first.removeLast(min(toRemove, first.count))
            return
        }
        let budget = max(0, first.count + pair.count - toRemove)
        let swapped = first.count > pair.count
        var short = min(first.count, pair.count)
        var long: Int
        long = short > budget ? short : max(short, budget - short)
        if short + long > budget {
            short = budget / 2
            long = short + budget % 2
        }
        let keepFirst = swapped ? long : short
        let keepPair = swapped ? short : long
        if first.count > keepFirst { first.removeLast(first.count - keepFirst) }
        if pair.count > keepPair { pair.removeLast(pair.count - keepPair) }
        second = pair
    }
}
