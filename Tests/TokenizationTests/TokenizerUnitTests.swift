// Unit tests of WordPieceTokenizer: construction errors, special tokens, truncation,
// padding, attention masks, type ids, and the code-point rules the golden set relies on.
//
// These use a tiny in-memory vocabulary (or the committed small-vocab.txt), so they run
// without the fetched teacher. Expected truncation results were checked against HF's slow
// tokenizer (`truncate_sequences`, 'longest_first').
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
        // Cased text is NFC-normalized first, so both spellings of é reach the precomposed token.
        XCTAssertEqual(tokenizer.encode("e\u{301} \u{E9} \u{212B}", addSpecialTokens: false).ids, [5, 5, 7])
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

    func testPythonLowercaseRules() {
        func lower(_ text: String) -> String {
            var out: [Unicode.Scalar] = []
            UnicodeRules.appendPythonLowercase(of: Array(text.unicodeScalars), to: &out)
            var view = String.UnicodeScalarView()
            view.append(contentsOf: out)
            return String(view)
        }
        XCTAssertTrue(lower("ΟΔΟΣ").unicodeScalars.elementsEqual("οδος".unicodeScalars))
        XCTAssertTrue(lower("Σ").unicodeScalars.elementsEqual("σ".unicodeScalars))       // no cased letter before
        XCTAssertTrue(lower("ΑΣΑ").unicodeScalars.elementsEqual("ασα".unicodeScalars))   // cased letter after
        XCTAssertTrue(lower("ΑΣ'").unicodeScalars.elementsEqual("ας'".unicodeScalars))   // apostrophe is case-ignorable
        XCTAssertTrue(lower("İ").unicodeScalars.elementsEqual("i\u{307}".unicodeScalars))  // one-to-many mapping
    }

    func testCharactersNewerThanTheReferenceUnicodeAreDropped() throws {
        // U+1FAE8 SHAKING FACE is Unicode 15: unassigned (hence "control") for Python 3.11's unicodedata.
        let tokenizer = try tiny()
        XCTAssertEqual(tokenizer.tokenize("a \u{1FAE8} b"), ["a", "b"])
        XCTAssertEqual(tokenizer.tokenize("a \u{1F600} b"), ["a", "[UNK]", "b"])  // Unicode 6.1: kept
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
        // Equal lengths 3 + 3, limit 8: remove 1, from the second (the odd token goes to the pair).
        XCTAssertEqual(tokenizer.encode("a b c", pair: "d e f", maxLength: 8).ids, [2, 5, 6, 7, 3, 8, 9, 3])
        // Shorter first, 2 + 5, limit 7: remove 3 from the pair down to 2.
        XCTAssertEqual(tokenizer.encode("a b", pair: "c d e f g", maxLength: 7).ids, [2, 5, 6, 3, 7, 8, 3])
    }

    func testPairTypeIds() throws {
        let tokenizer = try tiny()
        let full = tokenizer.encode("a b", pair: "c")
        XCTAssertEqual(full.ids, [2, 5, 6, 3, 7, 3])
        XCTAssertEqual(full.typeIds, [0, 0, 0, 0, 1, 1])
        // Without special tokens HF's slow tokenizer gives all-zero type ids.
        let bare = tokenizer.encode("a b", pair: "c", addSpecialTokens: false)
        XCTAssertEqual(bare, Encoding(ids: [5, 6, 7], typeIds: [0, 0, 0], attentionMask: [1, 1, 1]))
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
