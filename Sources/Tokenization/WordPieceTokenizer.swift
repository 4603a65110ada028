// BERT WordPiece tokenizer producing exactly HuggingFace `BertTokenizer`'s ids and offsets.
//
// Reference: the Rust `tokenizers` backend that transformers 5 calls `BertTokenizer` (and
// sentence-transformers runs) — checked against `Tests/Fixtures/tokenizer/golden*.jsonl`
// and, code point by code point, `unicode-classes.txt` (scripts/make_tokenizer_golden.py).
// Pipeline: split out special tokens written in the text ("[SEP]", "[MASK]", …), run the
// ``BasicTokenizer`` (normalizer + pre-tokenizer) on the rest, then greedy
// longest-match-first WordPiece with "##" continuations; a word of more than 100 code
// points, or one that cannot be covered by vocabulary pieces, becomes a single [UNK].
// Offsets (``tokenSpans(_:)``) count Unicode scalars, as Python string indices do.
// Where the slow Python class (`BertTokenizerLegacy`) differs is listed in README
// ("Tokenizer"). Left out: added (non-special) tokens.
// A pruned vocabulary (kd prune --vocab) keeps a subset of the original tokens: words are
// still segmented with the original vocabulary (`segmentationVocabulary`) and each piece
// is looked up in the kept one, so every kept piece comes out as before and a dropped
// piece becomes [UNK] — instead of a different segmentation of the same word.
import Foundation

/// A BERT tokenizer (basic tokenization + WordPiece) over a fixed vocabulary.
public struct WordPieceTokenizer: Sendable {
    /// HF's `max_input_chars_per_word`: longer words (in code points) become one [UNK].
    public static let maximumWordLength = 100
    /// Special tokens split out of the text before tokenization, as HF's added-tokens trie does.
    static let specialTokens = ["[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"]

    /// Tokens by id, in vocabulary-file order.
    public let vocabulary: [String]
    /// Id of `[UNK]`, used for every word that cannot be tokenized.
    public let unknownId: Int32
    /// Id of `[CLS]`, the first token of an encoded sequence.
    public let classId: Int32
    /// Id of `[SEP]`, which ends each segment.
    public let separatorId: Int32
    /// Id of `[PAD]`, used to pad batches.
    public let paddingId: Int32

    let table: VocabularyTable
    /// For a pruned vocabulary: the original vocabulary words are segmented with, and each
    /// original id's id in `vocabulary` (``unknownId`` for a dropped piece).
    let segmentation: (table: VocabularyTable, ids: [Int32])?
    let basic: BasicTokenizer
    /// Ids of ``specialTokens`` (unknownId for a special token the vocabulary lacks, as HF).
    let specialIds: [Int32]
    private let specialUTF8: [[UInt8]]

    /// Creates a tokenizer over `vocabulary` (token i has id i).
    ///
    /// - Parameters:
    ///   - vocabulary: tokens in id order; for duplicates the last index wins, as in HF.
    ///   - lowercase: HF `do_lower_case`.
    ///   - stripAccents: HF `strip_accents`; `nil` strips exactly when `lowercase` is true.
    ///   - tokenizeChineseChars: put spaces around CJK ideographs (HF `tokenize_chinese_chars`).
    /// - Throws: ``TokenizerError`` when the vocabulary is empty or lacks [UNK], [CLS], [SEP] or [PAD].
    public init(vocabulary: [String], lowercase: Bool = true, stripAccents: Bool? = nil,
                tokenizeChineseChars: Bool = true) throws {
        try self.init(vocabulary: vocabulary, source: "(in memory)", lowercase: lowercase,
                      stripAccents: stripAccents, tokenizeChineseChars: tokenizeChineseChars)
    }

    /// Creates a tokenizer from a BERT `vocab.txt` (one token per line, id = line number).
    ///
    /// Lines end at "\n", "\r\n" or "\r" (Python's universal newlines); a final newline does
    /// not add an empty token.
    /// - Throws: ``TokenizerError`` naming `vocabFile` when it cannot be read or is not a BERT vocabulary.
    public init(vocabFile: URL, lowercase: Bool = true, stripAccents: Bool? = nil,
                tokenizeChineseChars: Bool = true) throws {
        try self.init(vocabulary: Self.readVocabulary(vocabFile), source: "'\(vocabFile.path)'", lowercase: lowercase,
                      stripAccents: stripAccents, tokenizeChineseChars: tokenizeChineseChars)
    }

    /// Reads a BERT `vocab.txt` into its tokens (id = line number), splitting lines the way
    /// HF does: "\n", "\r\n" or "\r" end a line; a final newline adds no empty token.
    /// - Throws: ``TokenizerError`` naming the file when it cannot be read or is not UTF-8.
    public static func readVocabulary(_ vocabFile: URL) throws -> [String] {
        let data: Data
        do {
            data = try Data(contentsOf: vocabFile)
        } catch {
            let reason = FileManager.default.fileExists(atPath: vocabFile.path) ? "\(error.localizedDescription)" : "no such file"
            throw TokenizerError.unreadableVocabulary(path: vocabFile.path, reason: reason)
        }
        let text = String(decoding: data, as: UTF8.self)  // repairs invalid bytes with U+FFFD …
        guard text.utf8.elementsEqual(data) else {          // … so any byte difference means invalid UTF-8
            throw TokenizerError.unreadableVocabulary(path: vocabFile.path, reason: "not valid UTF-8")
        }
        return splitLines(text)
    }

    /// Creates a tokenizer from vocabulary entries; `source` names where they came from in errors.
    /// With `segmentationVocabulary` (the vocabulary `vocabulary` was pruned from), words are
    /// split into pieces of that vocabulary and each piece gets its id in `vocabulary`, or
    /// [UNK] when it was dropped.
    public init(vocabulary: [String], segmentationVocabulary: [String]? = nil, source: String, lowercase: Bool = true,
                stripAccents: Bool? = nil, tokenizeChineseChars: Bool = true) throws {
        guard !vocabulary.isEmpty else { throw TokenizerError.emptyVocabulary(source: source) }
        guard vocabulary.count < Int(Int32.max), (segmentationVocabulary?.count ?? 0) < Int(Int32.max) else {
            throw TokenizerError.vocabularyTooLarge(count: max(vocabulary.count, segmentationVocabulary?.count ?? 0), source: source)
        }
        let table = VocabularyTable(tokens: vocabulary)
        func required(_ token: String) throws -> Int32 {
            guard let id = table.id(of: token) else { throw TokenizerError.missingSpecialToken(token: token, source: source) }
            return id
        }
        self.vocabulary = vocabulary
        self.table = table
        self.unknownId = try required("[UNK]")
        self.classId = try required("[CLS]")
        self.separatorId = try required("[SEP]")
        self.paddingId = try required("[PAD]")
        let unknownId = self.unknownId
        self.specialIds = Self.specialTokens.map { table.id(of: $0) ?? unknownId }
        self.segmentation = segmentationVocabulary.map { original in
            (VocabularyTable(tokens: original), original.map { table.id(of: $0) ?? unknownId })
        }
        self.specialUTF8 = Self.specialTokens.map { Array($0.utf8) }
        self.basic = BasicTokenizer(lowercase: lowercase, stripAccents: stripAccents,
                                    tokenizeChineseChars: tokenizeChineseChars)
    }

    /// Python `readlines()` + `rstrip("\n")` with universal newlines.
    private static func splitLines(_ text: String) -> [String] {
        var lines: [String] = []
        var current = String.UnicodeScalarView()
        var afterCR = false
        for scalar in text.unicodeScalars {
            if afterCR && scalar == "\n" { afterCR = false; continue }
            afterCR = false
            if scalar == "\n" || scalar == "\r" {
                lines.append(String(current))
                current = String.UnicodeScalarView()
                afterCR = scalar == "\r"
            } else {
                current.append(scalar)
            }
        }
        if !current.isEmpty { lines.append(String(current)) }
        return lines
    }

    // MARK: - Tokenizing

    /// Word pieces of `text`, without [CLS]/[SEP] (HF `tokenizer.tokenize(text)`).
    public func tokenize(_ text: String) -> [String] {
        tokenIds(text).map { vocabulary[Int($0)] }
    }

    /// Ids of already-split tokens; a token not in the vocabulary maps to ``unknownId``.
    public func ids(for tokens: [String]) -> [Int32] {
        tokens.map { table.id(of: $0) ?? unknownId }
    }

    /// Token ids of `text` without special tokens (HF `encode(text, add_special_tokens=False)`).
    public func tokenIds(_ text: String) -> [Int32] {
        var ids: [Int32] = []
        ids.reserveCapacity(text.utf8.count / 3 + 4)
        appendTokenIds(of: text, to: &ids)
        return ids
    }

    /// Tokens of `text` (no [CLS]/[SEP]) with where each came from: HF's `offset_mapping`.
    ///
    /// Offsets count Unicode scalars of `text` (Python string indices). A piece covers the
    /// input scalars its first and last normalized scalars came from; an [UNK] word covers
    /// the whole word.
    public func tokenSpans(_ text: String) -> [TokenSpan] {
        var ids: [Int32] = []
        var offsets: [Int]? = []
        forEachSegment(of: text) { segment, firstOrigin, special in
            if let special {
                ids.append(specialIds[special])
                offsets!.append(contentsOf: [firstOrigin, firstOrigin + Self.specialTokens[special].unicodeScalars.count])
            } else {
                appendIds(ofPlain: segment, firstOrigin: firstOrigin, to: &ids, offsets: &offsets)
            }
        }
        return ids.indices.map { TokenSpan(id: ids[$0], start: offsets![2 * $0], end: offsets![2 * $0 + 1]) }
    }

    /// Appends the token ids of `text` (no [CLS]/[SEP]) to `ids`.
    func appendTokenIds(of text: String, to ids: inout [Int32]) {
        var noOffsets: [Int]? = nil
        forEachSegment(of: text) { segment, firstOrigin, special in
            if let special {
                ids.append(specialIds[special])
            } else {
                appendIds(ofPlain: segment, firstOrigin: firstOrigin, to: &ids, offsets: &noOffsets)
            }
        }
    }

    /// Splits `text` at special tokens: `body(segment, start, nil)` for plain text,
    /// `body(_, start, k)` for `specialTokens[k]`; `start` is the segment's first scalar index.
    private func forEachSegment(of text: String, _ body: (Substring, Int, Int?) -> Void) {
        let utf8 = text.utf8
        guard utf8.contains(0x5B) else { return body(text[...], 0, nil) }  // no '[': nothing special
        var plainStart = utf8.startIndex
        var plainStartScalar = 0
        var scalarIndex = 0
        var index = utf8.startIndex
        while index != utf8.endIndex {
            let byte = utf8[index]
            if byte == 0x5B, let k = specialUTF8.firstIndex(where: { utf8[index...].starts(with: $0) }) {
                if plainStart != index { body(text[plainStart..<index], plainStartScalar, nil) }
                body(text[index..<index], scalarIndex, k)
                index = utf8.index(index, offsetBy: specialUTF8[k].count)
                scalarIndex += specialUTF8[k].count  // special tokens are ASCII
                plainStart = index
                plainStartScalar = scalarIndex
            } else {
                if byte & 0xC0 != 0x80 { scalarIndex += 1 }  // a lead byte starts a scalar
                index = utf8.index(after: index)
            }
        }
        if plainStart != utf8.endIndex { body(text[plainStart..<utf8.endIndex], plainStartScalar, nil) }
    }

    /// Basic tokenization + WordPiece of text known to hold no special tokens; with
    /// `offsets`, appends each token's start and end scalar index there.
    private func appendIds(ofPlain text: Substring, firstOrigin: Int, to ids: inout [Int32], offsets: inout [Int]?) {
        var bytes: [UInt8] = []
        var boundaries: [Int] = []
        bytes.reserveCapacity(64)
        boundaries.reserveCapacity(64)
        basic.forEachWord(in: text, firstOrigin: firstOrigin) { word, origins in
            appendWordPieces(of: word, origins: origins, bytes: &bytes, boundaries: &boundaries, to: &ids, offsets: &offsets)
        }
    }

    /// Greedy longest-match-first WordPiece of one basic word (HF `WordpieceTokenizer.tokenize`).
    @inline(__always)
    private func appendWordPieces(of word: ArraySlice<Unicode.Scalar>, origins: ArraySlice<Int>, bytes: inout [UInt8],
                                  boundaries: inout [Int], to ids: inout [Int32], offsets: inout [Int]?) {
        let count = word.count
        let o = origins.startIndex
        if count > Self.maximumWordLength {
            ids.append(unknownId)
            offsets?.append(contentsOf: [origins[o], origins[o + count - 1] + 1])
            return
        }
        bytes.removeAll(keepingCapacity: true)
        boundaries.removeAll(keepingCapacity: true)
        for scalar in word {  // UTF-8 bytes of the word, and where each scalar starts
            boundaries.append(bytes.count)
            if scalar.value < 0x80 {
                bytes.append(UInt8(scalar.value))
            } else {
                UTF8.encode(scalar) { bytes.append($0) }
            }
        }
        boundaries.append(bytes.count)
        let firstPiece = ids.count
        let firstOffset = offsets?.count ?? 0
        let table = segmentation?.table ?? self.table
        let ok = bytes.withUnsafeBufferPointer { buffer -> Bool in
            var start = 0
            while start < count {
                let continuation = start > 0
                let longest = continuation ? table.longestContinuation : table.longestInitial
                var end = min(count, start + longest)
                var found: Int32? = nil
                while start < end {
                    let piece = UnsafeBufferPointer(rebasing: buffer[boundaries[start]..<boundaries[end]])
                    if let id = table.id(of: piece, continuation: continuation) { found = id; break }
                    end -= 1
                }
                guard let id = found else { return false }
                ids.append(segmentation.map { $0.ids[Int(id)] } ?? id)
                offsets?.append(contentsOf: [origins[o + start], origins[o + end - 1] + 1])
                start = end
            }
            return true
        }
        if !ok {
            ids.removeSubrange(firstPiece...)
            ids.append(unknownId)
            offsets?.removeSubrange(firstOffset...)
            offsets?.append(contentsOf: [origins[o], origins[o + count - 1] + 1])
        }
    }
}

/// One token and the input scalars it came from (HF `offset_mapping`, in Python string indices).
public struct TokenSpan: Sendable, Equatable {
    /// Vocabulary id of the token.
    public var id: Int32
    /// Index of the first input scalar the token covers.
    public var start: Int
    /// One past the last input scalar the token covers.
    public var end: Int

    public init(id: Int32, start: Int, end: Int) {
        self.id = id
        self.start = start
        self.end = end
    }
}
