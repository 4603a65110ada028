// Golden parity with HuggingFace's slow BertTokenizer (scripts/make_tokenizer_golden.py).
//
// Every line of golden.jsonl (real bert-base-uncased vocab) and golden-small.jsonl (the
// committed 300-token vocab, uncased and cased) must match exactly: word pieces, ids with
// special tokens, ids truncated to 16, and sentence pairs with and without truncation.
// A failure names the first mismatching line by its code points and counts all mismatches.
// The fast (Rust) tokenizer's ids, stored where they differ, are *not* checked: those lines
// document the known slow/fast differences listed in WordPieceTokenizer.swift.
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
            }
        }
        checker.report(file: "golden-small.jsonl", lines: rows.count)
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
