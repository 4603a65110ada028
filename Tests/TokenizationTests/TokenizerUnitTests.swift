// Unit tests of WordPieceTokenizer: construction errors, special tokens, truncation,
// padding, attention masks, type ids, and the code-point rules the golden set relies on.
//
// These use a tiny in-memory vocabulary (or the committed small-vocab.txt), so they run
// without the fetched teacher. Expected truncation results were checked against
// transformers 5's BertTokenizer (Rust `truncate_encodings`, 'longest_first').
import Foundation
import XCTest
@testable import Tokenization
import TestSupport

final class TokenizerUnitTests: XCTestCase {
    /// [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4, then a…h = 5…12, "##s" = 13, "un" 14, "##aff" 15, "##able" 16.
    private static let tinyVocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
                                         "a", "b", "c", "d", "e", "f", "g", "h", "##s", "un", "##aff", "##able"]

    private func tiny(lowercase: Bool = true) throws -> WordPieceTokenizer {
        try WordPieceTokenizer(vocabulary: Self.tinyVocabulary, lowercase: lowercase)
    }

    // MARK: construction

    func testMissingUnknownTokenIsAnError() {
        XCTAssertThrowsError(try WordPieceTokenizer(vocabulary: ["[PAD]", "[CLS]", "[SEP]", "a"])) { error in
            XCTAssertEqual(error as? TokenizerError, .missingSpecialToken(token: "[UNK]", source: "(in memory)"))
            XCTAssertTrue("\(error)".contains("[UNK]"), "\(error)")
        }
        for missing in ["[CLS]", "[SEP]", "[PAD]"] {
            let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"].filter { $0 != missing }
            XCTAssertThrowsError(try WordPieceTokenizer(vocabulary: vocab)) { error in
                XCTAssertEqual(error as? TokenizerError, .missingSpecialToken(token: missing, source: "(in memory)"))
            }
        }
    }

    func testEmptyVocabularyIsAnError() {
        XCTAssertThrowsError(try WordPieceTokenizer(vocabulary: [])) { error in
            XCTAssertEqual(error as? TokenizerError, .emptyVocabulary(source: "(in memory)"))
        }
    }

    func testMissingVocabularyFileNamesThePath() {
        let path = "/nonexistent/distillery/vocab.txt"
        XCTAssertThrowsError(try WordPieceTokenizer(vocabFile: URL(fileURLWithPath: path))) { error in
            guard case .unreadableVocabulary(let where_, _)? = error as? TokenizerError else {
                return XCTFail("unexpected error \(error)")
            }
            XCTAssertEqual(where_, path)
            XCTAssertTrue("\(error)".contains(path), "\(error)")
            XCTAssertTrue("\(error)".contains("fetch-teacher"), "message should give a hint: \(error)")
        }
    }

    func testVocabularyFileErrorsNameTheFile() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let bad = dir.appendingPathComponent("bpe-vocab.txt")
        try "hello\nworld\n".write(to: bad, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try WordPieceTokenizer(vocabFile: bad)) { error in
            XCTAssertTrue("\(error)".contains(bad.path), "\(error)")
        }
        let empty = dir.appendingPathComponent("empty.txt")
        try Data().write(to: empty)
        XCTAssertThrowsError(try WordPieceTokenizer(vocabFile: empty)) { error in
            XCTAssertEqual(error as? TokenizerError, .emptyVocabulary(source: "'\(empty.path)'"))
        }
        let latin1 = dir.appendingPathComponent("latin1.txt")
        try Data([0x5B, 0x55, 0x4E, 0x4B, 0x5D, 0x0A, 0xE9, 0x0A]).write(to: latin1)
        XCTAssertThrowsError(try WordPieceTokenizer(vocabFile: latin1)) { error in
            XCTAssertTrue("\(error)".contains("UTF-8"), "\(error)")
        }
    }

    func testVocabularyFileLinesLikePython() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("vocab.txt")
        // CRLF and CR both end lines (universal newlines); the final newline adds no token.
        try Data("[PAD]\r\n[UNK]\r[CLS]\n[SEP]\nx\n".utf8).write(to: url)
        let tokenizer = try WordPieceTokenizer(vocabFile: url)
        XCTAssertEqual(tokenizer.vocabulary, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "x"])
        XCTAssertEqual([tokenizer.paddingId, tokenizer.unknownId, tokenizer.classId, tokenizer.separatorId], [0, 1, 2, 3])
    }

    func testDuplicateTokensKeepTheLastIndexLikeHF() throws {
        // HF load_vocab fills an OrderedDict line by line: a repeated token ends up with its last line number.
        let tokenizer = try WordPieceTokenizer(vocabulary: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "a", "b"])
        XCTAssertEqual(tokenizer.encode("a b").ids, [2, 5, 6, 3])
        XCTAssertEqual(tokenizer.ids(for: ["a", "b", "zzz"]), [5, 6, 1])
    }

    func testLookupIsByCodePointsNotCanonicalEquivalence() throws {
        // Swift String equality would merge these; Python (and HF) keep them apart.
        let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "e\u{301}", "\u{E9}", "\u{212B}", "\u{C5}"]
        let tokenizer = try WordPieceTokenizer(vocabulary: vocab, lowercase: false)
        XCTAssertEqual(tokenizer.ids(for: ["e\u{301}", "\u{E9}", "\u{212B}", "\u{C5}"]), [4, 5, 6, 7])
        // Cased text is not normalized (no NFC in the Rust normalizer): each spelling finds its own token.
        XCTAssertEqual(tokenizer.encode("e\u{301} \u{E9} \u{212B}", addSpecialTokens: false).ids, [4, 5, 6])
    }

    func testEveryTokenOfTheCommittedVocabularyMapsToItsOwnId() throws {
        let tokenizer = try WordPieceTokenizer(vocabFile: try TokenizerFixtures.url("small-vocab.txt"))
        XCTAssertEqual(tokenizer.ids(for: tokenizer.vocabulary), (0..<Int32(tokenizer.vocabulary.count)).map { $0 })
    }

    // MARK: tokenizing

    func testEmptyAndBlankTextsGiveOnlySpecialTokens() throws {
        let tokenizer = try tiny()
        for text in ["", "   ", "\t\n\r", "\u{A0}\u{3000}", "\u{200B}\u{FEFF}", "\u{1}\u{7F}", "\u{301}"] {
            XCTAssertEqual(tokenizer.tokenize(text), [], codePoints(text))
            XCTAssertEqual(tokenizer.encode(text), Encoding(ids: [2, 3], typeIds: [0, 0], attentionMask: [1, 1]))
        }
    }

    func testWordPieceGreedyLongestMatch() throws {
        let tokenizer = try tiny()
        XCTAssertEqual(tokenizer.tokenize("Unaffable unaffables"), ["un", "##aff", "##able", "un", "##aff", "##able", "##s"])
        XCTAssertEqual(tokenizer.tokenize("unx a,b"), ["[UNK]", "a", "[UNK]", "b"])  // "," is not in the vocabulary
        XCTAssertEqual(tokenizer.tokenize("x[MASK]a [SEP]"), ["[UNK]", "[MASK]", "a", "[SEP]"])
    }

    func testWordLengthLimitIsInCodePoints() throws {
        let vocab = Self.tinyVocabulary + ["##a"]
        let tokenizer = try WordPieceTokenizer(vocabulary: vocab)
        let limit = WordPieceTokenizer.maximumWordLength
        XCTAssertEqual(tokenizer.tokenIds(String(repeating: "a", count: limit)).count, limit)
        XCTAssertEqual(tokenizer.tokenIds(String(repeating: "a", count: limit + 1)), [tokenizer.unknownId])
    }

    func testLowercaseIsPerScalarLikeRust() throws {
        // No final-sigma context; one-to-many mappings kept; Unicode 15/16 scalars kept (as [UNK]).
        let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "\u{3BF}\u{3B4}\u{3BF}\u{3C3}", "i\u{307}", "i", "a", "b"]
        let keepAccents = try WordPieceTokenizer(vocabulary: vocab, lowercase: true, stripAccents: false)
        XCTAssertEqual(keepAccents.tokenIds("ΟΔΟΣ İ"), [4, 5])
        let tokenizer = try WordPieceTokenizer(vocabulary: vocab)
        XCTAssertEqual(tokenizer.tokenIds("İ"), [6])  // stripped before lowercasing: I + U+0307 → I → i
        XCTAssertEqual(tokenizer.tokenIds("a \u{1FAE8} \u{31350} b"), [7, 1, 1, 8])
    }

    func testOffsetsCountScalarsOfTheInput() throws {
        let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "e", "##e", "i", "x", "\u{4E2D}", "!"]
        let tokenizer = try WordPieceTokenizer(vocabulary: vocab)
        let spans = tokenizer.tokenSpans("\u{E9}e\u{301} \u{1}İ[MASK]x\u{4E2D}!\u{1F600}")
        XCTAssertEqual(spans.map(\.id), [5, 6, 7, 4, 8, 9, 10, 1])
        XCTAssertEqual(spans.map { [$0.start, $0.end] }, [[0, 1], [1, 2], [5, 6], [6, 12], [12, 13], [13, 14], [14, 15], [15, 16]])
    }

    // MARK: encoding, truncation, batches

    func testSingleSequenceTruncation() throws {
        let tokenizer = try tiny()
        XCTAssertEqual(tokenizer.encode("a b c d e", maxLength: 5).ids, [2, 5, 6, 7, 3])
        XCTAssertEqual(tokenizer.encode("a b c", maxLength: 5).ids, [2, 5, 6, 7, 3])
        XCTAssertEqual(tokenizer.encode("a b c", maxLength: 1).ids, [2, 3])  // specials are never cut
        XCTAssertEqual(tokenizer.encode("a b c d e", addSpecialTokens: false, maxLength: 2).ids, [5, 6])
    }

    func testPairTruncationLongestFirst() throws {
        let tokenizer = try tiny()
        // 6 + 2 tokens + 3 specials, limit 7: four come off the longer first text.
        let cut = tokenizer.encode("a b c d e f", pair: "g h", maxLength: 7)
        XCTAssertEqual(cut.ids, [2, 5, 6, 3, 11, 12, 3])
        XCTAssertEqual(cut.typeIds, [0, 0, 0, 0, 1, 1, 1])
        XCTAssertEqual(cut.attentionMask, [1, 1, 1, 1, 1, 1, 1])
        // Equal lengths 3 + 3, limit 7: remove 2, one from each.
        XCTAssertEqual(tokenizer.encode("a b c", pair: "d e f", maxLength: 7).ids, [2, 5, 6, 3, 8, 9, 3])
        // Equal lengths 3 + 3, limit 8 (5 ids): both are cut to half, the odd id going to the pair —
        // the Rust rule; the slow class removes just one id, from the pair ([a b c][d e]).
        XCTAssertEqual(tokenizer.encode("a b c", pair: "d e f", maxLength: 8).ids, [2, 5, 6, 3, 8, 9, 10, 3])
        // Longer first, 5 + 2, limit 6 (3 ids): halves again, the odd id going to the longer first.
        XCTAssertEqual(tokenizer.encode("a b c d e", pair: "f g", maxLength: 6).ids, [2, 5, 6, 3, 10, 3])
        // Shorter first, 2 + 5, limit 7: remove 3 from the pair down to 2.
        XCTAssertEqual(tokenizer.encode("a b", pair: "c d e f g", maxLength: 7).ids, [2, 5, 6, 3, 7, 8, 3])
    }

    func testPairTypeIds() throws {
        let tokenizer = try tiny()
        let full = tokenizer.encode("a b", pair: "c")
        XCTAssertEqual(full.ids, [2, 5, 6, 3, 7, 3])
        XCTAssertEqual(full.typeIds, [0, 0, 0, 0, 1, 1])
        // Without special tokens the Rust tokenizer still marks the pair with 1s (the slow class gives 0s).
        let bare = tokenizer.encode("a b", pair: "c", addSpecialTokens: false)
        XCTAssertEqual(bare, Encoding(ids: [5, 6, 7], typeIds: [0, 0, 1], attentionMask: [1, 1, 1]))
    }

    func testBatchPadsToLongestRow() throws {
        let tokenizer = try tiny()
        let batch = tokenizer.encodeBatch(["a b c", "", "d"])
        XCTAssertEqual(batch.batchSize, 3)
        XCTAssertEqual(batch.sequenceLength, 5)
        XCTAssertEqual(batch.ids, [2, 5, 6, 7, 3,
                                   2, 3, 0, 0, 0,
                                   2, 8, 3, 0, 0])
        XCTAssertEqual(batch.attentionMask, [1, 1, 1, 1, 1,
                                             1, 1, 0, 0, 0,
                                             1, 1, 1, 0, 0])
        XCTAssertEqual(batch.typeIds, [Int32](repeating: 0, count: 15))
        let capped = tokenizer.encodeBatch(["a b c d e f", "a"], maxLength: 4)
        XCTAssertEqual(capped.sequenceLength, 4)
        XCTAssertEqual(capped.ids, [2, 5, 6, 3, 2, 5, 3, 0])
        let none = tokenizer.encodeBatch([])
        XCTAssertEqual([none.batchSize, none.sequenceLength, none.ids.count], [0, 0, 0])
    }

    func testThroughputCountsPiecesWithoutSpecials() throws {
        let tokenizer = try tiny()
        let result = measureTokenizerThroughput(tokenizer, lines: ["a b", "unaffable"], repeats: 3)
        XCTAssertEqual(result.tokens, 3 * (2 + 3))
        XCTAssertGreaterThanOrEqual(result.seconds, 0)
    }
}
