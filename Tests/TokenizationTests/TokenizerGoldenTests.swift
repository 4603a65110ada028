// Golden parity with transformers 5's BertTokenizer, the Rust `tokenizers` backend
// (scripts/make_tokenizer_golden.py).
//
// Every line of golden.jsonl (real bert-base-uncased vocab), golden-small.jsonl (the
// committed 300-token vocab, uncased and cased) and golden-hostile.jsonl (the hostile-Unicode
// corpus under five settings) must match exactly: word pieces, ids with special tokens,
// offsets, ids truncated to 16, and sentence pairs with and without truncation.
// A failure names the first mismatching line by its code points and counts all mismatches.
// The slow Python class's ids, stored where they differ ("slow_ids"), are *not* checked:
// they document the slow/fast differences listed in the README ("Tokenizer").
import Foundation
import XCTest
@testable import Tokenization

final class TokenizerGoldenTests: XCTestCase {
    /// Lines the generator must have produced; fewer means the golden file is truncated.
    private static let minimumGoldenLines = 400

    func testRealVocabularyGolden() throws {
        let tokenizer = try WordPieceTokenizer(vocabFile: try TokenizerFixtures.realVocabulary())
        XCTAssertEqual(tokenizer.vocabulary.count, 30522)
        let (header, rows) = try TokenizerFixtures.goldenRows("golden.jsonl")
        XCTAssertGreaterThanOrEqual(rows.count, Self.minimumGoldenLines)
        XCTAssertEqual(header["lowercase"] as? Bool, true)
        var checker = GoldenChecker()
        var pairs = 0
        for row in rows {
            guard let text = row["text"] as? String else { throw GoldenError("row without text") }
            checker.check("tokens", text, got: tokenizer.tokenize(text), want: row["tokens"] as? [String])
            checker.check("ids", text, got: tokenizer.encode(text).ids, want: int32s(row["ids"]))
            checker.check("offsets", text, got: tokenizer.tokenSpans(text).map { [$0.start, $0.end] }, want: offsetPairs(row["offsets"]))
            checker.check("ids_max16", text, got: tokenizer.encode(text, maxLength: 16).ids, want: int32s(row["ids_max16"]))
            if let pair = row["pair"] as? String, let maxLength = row["pair_max_length"] as? Int {
                pairs += 1
                let full = tokenizer.encode(text, pair: pair)
                checker.check("pair_ids", text, got: full.ids, want: int32s(row["pair_ids"]))
                checker.check("pair_type_ids", text, got: full.typeIds, want: int32s(row["pair_type_ids"]))
                let cut = tokenizer.encode(text, pair: pair, maxLength: maxLength)
                checker.check("pair_ids_trunc(\(maxLength))", text, got: cut.ids, want: int32s(row["pair_ids_trunc"]))
                checker.check("pair_type_ids_trunc(\(maxLength))", text, got: cut.typeIds, want: int32s(row["pair_type_ids_trunc"]))
                XCTAssertEqual(cut.attentionMask, [Int32](repeating: 1, count: cut.ids.count))
            }
        }
        XCTAssertGreaterThan(pairs, 50)
        checker.report(file: "golden.jsonl", lines: rows.count)
    }

    func testSmallVocabularyGoldenUncasedAndCased() throws {
        let vocab = try TokenizerFixtures.url("small-vocab.txt")
        let uncased = try WordPieceTokenizer(vocabFile: vocab, lowercase: true)
        let cased = try WordPieceTokenizer(vocabFile: vocab, lowercase: false)
        let (_, rows) = try TokenizerFixtures.goldenRows("golden-small.jsonl")
        XCTAssertGreaterThanOrEqual(rows.count, Self.minimumGoldenLines)
        var checker = GoldenChecker()
        for row in rows {
            guard let text = row["text"] as? String else { throw GoldenError("row without text") }
            for (name, tokenizer) in [("uncased", uncased), ("cased", cased)] {
                guard let want = row[name] as? [String: Any] else { throw GoldenError("row without '\(name)'") }
                checker.check("\(name) tokens", text, got: tokenizer.tokenize(text), want: want["tokens"] as? [String])
                checker.check("\(name) ids", text, got: tokenizer.encode(text).ids, want: int32s(want["ids"]))
                checker.check("\(name) offsets", text, got: tokenizer.tokenSpans(text).map { [$0.start, $0.end] },
                              want: offsetPairs(want["offsets"]))
            }
        }
        checker.report(file: "golden-small.jsonl", lines: rows.count)
    }

    func testHostileUnicodeCorpusUnderEverySetting() throws {
        let (header, rows) = try TokenizerFixtures.goldenRows("golden-hostile.jsonl")
        guard let settings = header["settings"] as? [[String: Any]], settings.count >= 5 else {
            throw GoldenError("golden-hostile.jsonl: header lists no settings")
        }
        XCTAssertGreaterThanOrEqual(rows.count, 40)
        let vocabulary = try WordPieceTokenizer.readVocabulary(try TokenizerFixtures.realVocabulary())
        var checker = GoldenChecker()
        for setting in settings {
            guard let name = setting["name"] as? String, let lowercase = setting["lowercase"] as? Bool,
                  let chinese = setting["tokenize_chinese_chars"] as? Bool else { throw GoldenError("bad setting \(setting)") }
            let tokenizer = try WordPieceTokenizer(vocabulary: vocabulary, lowercase: lowercase,
                                                   stripAccents: setting["strip_accents"] as? Bool, tokenizeChineseChars: chinese)
            for row in rows {
                guard let text = row["text"] as? String, let want = row[name] as? [String: Any] else {
                    throw GoldenError("row without text or '\(name)'")
                }
                let label = "\(name) [\(row["case"] as? String ?? "?")]"
                checker.check("\(label) ids", text, got: tokenizer.encode(text).ids, want: int32s(want["ids"]))
                checker.check("\(label) offsets", text, got: tokenizer.tokenSpans(text).map { [$0.start, $0.end] },
                              want: offsetPairs(want["offsets"]))
            }
        }
        checker.report(file: "golden-hostile.jsonl", lines: rows.count * settings.count)
    }
}

/// Collects mismatches and reports the first one in full.
private struct GoldenChecker {
    var mismatches = 0
    var first: String?

    mutating func check(_ field: String, _ text: String, got: [String], want: [String]?) {
        guard let want else { return record("\(field): missing in golden", text) }
        if !sameScalars(got, want) { record("\(field): got \(got), want \(want)", text) }
    }

    mutating func check(_ field: String, _ text: String, got: [Int32], want: [Int32]?) {
        guard let want else { return record("\(field): missing in golden", text) }
        if got != want { record("\(field): got \(got), want \(want)", text) }
    }

    mutating func check(_ field: String, _ text: String, got: [[Int]], want: [[Int]]?) {
        guard let want else { return record("\(field): missing in golden", text) }
        if got != want { record("\(field): got \(got), want \(want)", text) }
    }

    private mutating func record(_ what: String, _ text: String) {
        mismatches += 1
        if first == nil { first = "\(what)\n  text: \(text.debugDescription)\n  code points: \(codePoints(text))" }
    }

    func report(file: String, lines: Int, sourceFile: StaticString = #filePath, line: UInt = #line) {
        if let first {
            XCTFail("\(mismatches) mismatches against \(file) (\(lines) lines); first: \(first)", file: sourceFile, line: line)
        }
    }
}
