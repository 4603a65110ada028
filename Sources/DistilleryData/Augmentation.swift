// Augmentation: TinyBERT-style word replacement by nearest neighbours in the teacher's
// own word-embedding space, without a model hub.
//
// Follows TinyBERT's data augmentation (Jiao et al. 2020, Algorithm 1) with the GloVe
// lookup replaced by the teacher's word embeddings: for each whole word of an input, with
// probability p (default 0.4) replace it by one of its K (default 15) nearest neighbours by
// cosine similarity; N copies per example. Words are those of BERT basic tokenization,
// recovered from WordPiece ids (a word is a piece not starting with "##" followed by its
// "##" pieces), so this module needs no tokenizer and the caller passes ids. Only words
// that are a single WordPiece token and a whole-word vocabulary entry (not "##…", not a
// special or [unusedN] token, not punctuation) are replaced, and only by such entries;
// multi-piece words stay as they are, so a copy has the original's length. The generator
// for row r is SplitMix64 seeded by (seed, r), so a row gets the same copies wherever it
// is processed (any shard, any order). Copies equal to the original or to an earlier copy
// are dropped (and counted by the caller); their copy numbers are skipped, not reused.
// Neighbours are searched only for words that occur in the data, as blocks of one matrix
// product (queries × candidates); the product is injectable so the CLI can use BLAS while
// this module stays free of the model and tensor modules.
// Left out on purpose: TinyBERT's masked-LM candidates for single-piece words (that needs
// a masked-LM head the classifier teacher lacks) and replacement of multi-piece words.

import Foundation

/// Settings of TinyBERT-style augmentation.
public struct AugmentationOptions: Sendable, Equatable {
    /// Copies generated per example (before identical ones are dropped).
    public var copies: Int
    /// Probability that an eligible word is replaced (TinyBERT: 0.4).
    public var probability: Double
    /// Nearest neighbours a replacement is drawn from (TinyBERT: 15).
    public var neighbours: Int
    /// Seed of the per-row generators.
    public var seed: UInt64

    /// TinyBERT's replacement probability.
    public static let defaultProbability = 0.4
    /// TinyBERT's candidate-set size.
    public static let defaultNeighbours = 15

    /// Creates augmentation settings.
    public init(copies: Int, probability: Double = defaultProbability, neighbours: Int = defaultNeighbours, seed: UInt64 = 13) {
        self.copies = copies
        self.probability = probability
        self.neighbours = neighbours
        self.seed = seed
    }
}

/// Which vocabulary entries are whole words that augmentation may replace and insert.
public struct WordVocabulary: Sendable {
    /// Tokens by id.
    public let tokens: [String]
    /// Per id: a whole-word entry (not "##…", special, [unused…] or punctuation).
    public let isWholeWord: [Bool]
    /// Per id: a "##" continuation piece.
    public let isContinuation: [Bool]

    /// Classifies every entry of a WordPiece vocabulary.
    public init(tokens: [String]) {
        self.tokens = tokens
        isContinuation = tokens.map { $0.hasPrefix("##") }
        isWholeWord = tokens.map { token in
            guard !token.isEmpty, !token.hasPrefix("##") else { return false }
            if token.hasPrefix("[") && token.hasSuffix("]") { return false }   // [CLS], [PAD], [unused12], …
            return !token.unicodeScalars.allSatisfy(WordVocabulary.isPunctuation)
        }
    }

    /// Ids of all whole-word entries, ascending.
    public var wholeWordIDs: [Int32] { isWholeWord.indices.filter { isWholeWord[$0] }.map { Int32($0) } }

    /// BERT's `_is_punctuation`: ASCII non-alphanumeric printable characters, or Unicode category P*.
    public static func isPunctuation(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) { return true }
        switch scalar.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation: return true
        default: return false
        }
    }

    /// The words of a WordPiece id sequence as index ranges: a piece not starting with "##"
    /// opens a word and the "##" pieces after it continue it (BERT basic-tokenizer words).
    public func words(of ids: [Int32]) -> [Range<Int>] {
        var words: [Range<Int>] = []
        var start = 0
        for i in ids.indices where i > 0 {
            let id = Int(ids[i])
            if !(id >= 0 && id < isContinuation.count && isContinuation[id]) {
                words.append(start..<i)
                start = i
            }
        }
        if !ids.isEmpty { words.append(start..<ids.count) }
        return words
    }

    /// Ids of the single-piece, whole-word words of `ids` (the ones augmentation may replace).
    public func replaceableWords(of ids: [Int32]) -> [Int] {
        words(of: ids).compactMap { word in
            guard word.count == 1 else { return nil }
            let id = Int(ids[word.lowerBound])
            return id >= 0 && id < isWholeWord.count && isWholeWord[id] ? word.lowerBound : nil
        }
    }
}

/// C[m, n] = A[m, k] · B[n, k]ᵀ, all row-major and dense (BLAS `sgemm` with B transposed).
public typealias MatrixProductABt = @Sendable (_ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<Float>,
                                     _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>) -> Void

/// The nearest whole-word neighbours of words, by cosine similarity of their embeddings.
public struct NeighbourTable: Sendable {
    /// Word id → up to K neighbour ids, most similar first (ties to the lower id); never the word itself.
    public let neighbours: [Int32: [Int32]]

    /// Query rows per matrix product: bounds the similarity block to 256 × candidates floats.
    public static let queryBlock = 256

    /// A plain-Swift product for small tables and tests (the CLI passes BLAS).
    public static let plainProduct: MatrixProductABt = { m, n, k, a, b, c in
        for i in 0..<m {
            for j in 0..<n {
                var sum: Float = 0
                for p in 0..<k { sum += a[i * k + p] * b[j * k + p] }
                c[i * n + j] = sum
            }
        }
    }

    /// Creates a table from explicit neighbour lists.
    public init(neighbours: [Int32: [Int32]]) { self.neighbours = neighbours }

    /// Finds the `k` nearest `candidates` of every id in `queries` by cosine similarity.
    ///
    /// - Parameters:
    ///   - embeddings: the word-embedding matrix `[vocabulary, dimension]` row-major.
    ///   - candidates: ids a replacement may be (whole-word entries).
    ///   - multiply: the matrix product; the similarity block is computed `queryBlock` rows at a time.
    public init(queries: [Int32], candidates: [Int32], embeddings: [Float], dimension: Int, k: Int,
                multiply: MatrixProductABt = NeighbourTable.plainProduct) {
        let queries = Array(Set(queries)).sorted()
        func normalizedRows(_ ids: [Int32]) -> [Float] {
            var out = [Float](repeating: 0, count: ids.count * dimension)
            for (r, id) in ids.enumerated() {
                let base = Int(id) * dimension
                var norm: Double = 0
                for c in 0..<dimension { norm += Double(embeddings[base + c]) * Double(embeddings[base + c]) }
                let scale = norm > 0 ? Float(1 / norm.squareRoot()) : 0
                for c in 0..<dimension { out[r * dimension + c] = embeddings[base + c] * scale }
            }
            return out
        }
        let b = normalizedRows(candidates)
        var table: [Int32: [Int32]] = [:]
        var similarity = [Float](repeating: 0, count: min(NeighbourTable.queryBlock, max(queries.count, 1)) * candidates.count)
        var start = 0
        while start < queries.count && !candidates.isEmpty {
            let block = Array(queries[start..<min(start + NeighbourTable.queryBlock, queries.count)])
            let a = normalizedRows(block)
            a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in similarity.withUnsafeMutableBufferPointer { cp in
                multiply(block.count, candidates.count, dimension, ap.baseAddress!, bp.baseAddress!, cp.baseAddress!)
            } } }
            for (r, query) in block.enumerated() {
                table[query] = NeighbourTable.best(k, of: similarity, row: r, width: candidates.count, ids: candidates, excluding: query)
            }
            start += block.count
        }
        neighbours = table
    }

    /// The `k` highest-scoring ids of one similarity row, best first, ties to the lower id.
    static func best(_ k: Int, of scores: [Float], row: Int, width: Int, ids: [Int32], excluding: Int32) -> [Int32] {
        var top: [(score: Float, id: Int32)] = []
        top.reserveCapacity(k + 1)
        func before(_ x: (score: Float, id: Int32), _ y: (score: Float, id: Int32)) -> Bool {
            x.score != y.score ? x.score > y.score : x.id < y.id
        }
        for j in 0..<width where ids[j] != excluding {
            let entry = (score: scores[row * width + j], id: ids[j])
            guard entry.score.isFinite else { continue }
            if top.count == k, let last = top.last, !before(entry, last) { continue }
            let at = top.firstIndex { before(entry, $0) } ?? top.count
            top.insert(entry, at: at)
            if top.count > k { top.removeLast() }
        }
        return top.map(\.id)
    }
}

/// Makes TinyBERT-style augmented copies of WordPiece id sequences.
public struct Augmenter: Sendable {
    /// Which entries are words.
    public let vocabulary: WordVocabulary
    /// Neighbours of every replaceable word that occurs in the data.
    public let table: NeighbourTable
    /// Copies, probability, neighbours, seed.
    public let options: AugmentationOptions

    /// Creates an augmenter.
    public init(vocabulary: WordVocabulary, table: NeighbourTable, options: AugmentationOptions) {
        self.vocabulary = vocabulary
        self.table = table
        self.options = options
    }

    /// The generator of source row `row`: SplitMix64 seeded by mixing (seed, row), so each
    /// row's copies are independent of every other row and of processing order.
    public static func generator(seed: UInt64, row: Int) -> SplitMix64 {
        var mixer = SplitMix64(seed: seed ^ (UInt64(truncatingIfNeeded: row) &* 0xD1B5_4A32_D192_ED03))
        return SplitMix64(seed: mixer.next())
    }

    /// The augmented copies of `ids` (word pieces of one text, no [CLS]/[SEP]) for source
    /// row `row`: `(copy number 1…N, ids)` for each copy that differs from the original and
    /// from every earlier copy once truncated by `compareLength`.
    ///
    /// - Parameter compareLength: pieces that count for "differs" (what the teacher will see);
    ///   nil compares whole sequences.
    public func copies(of ids: [Int32], row: Int, compareLength: Int? = nil) -> [(copy: Int, ids: [Int32])] {
        var rng = Augmenter.generator(seed: options.seed, row: row)
        let positions = vocabulary.replaceableWords(of: ids)
        let limit = compareLength ?? ids.count
        var seen: Set<ArraySlice<Int32>> = [ids.prefix(limit)]
        var result: [(copy: Int, ids: [Int32])] = []
        guard options.copies > 0 else { return [] }
        for copy in 1...options.copies {
            var out = ids
            for position in positions {
                // One draw decides replacement, a second picks the neighbour, whatever p is.
                let u = Double(rng.next() >> 11) * 0x1p-53
                let pick = rng.next()
                guard u < options.probability, let candidates = table.neighbours[ids[position]], !candidates.isEmpty else { continue }
                let k = min(options.neighbours, candidates.count)
                out[position] = candidates[Int(pick % UInt64(k))]   // modulo bias ≤ k / 2⁶⁴: negligible
            }
            if seen.insert(out.prefix(limit)).inserted { result.append((copy, out)) }
        }
        return result
    }
}
