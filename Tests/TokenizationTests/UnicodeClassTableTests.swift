// Every code point against the Rust tokenizer's treatment of it (unicode-classes.txt).
//
// scripts/make_tokenizer_golden.py runs each of the 1,112,064 scalars alone through
// `tokenizers`' BertNormalizer stages and BertPreTokenizer and records the classes: removed
// by cleanup, whitespace, CJK, punctuation, removed or changed by accent stripping, changed
// by lowercasing. This test asks ``UnicodeRules`` and ``BasicTokenizer``'s stages the same
// questions for every scalar, so a Unicode-version difference (a category that changed
// since Unicode 8.0, a decomposition newer than the Rust NFD tables, a new lowercase
// mapping) fails here by name, whether or not a golden sentence happens to contain it.
import Foundation
import XCTest
@testable import Tokenization

final class UnicodeClassTableTests: XCTestCase {
    func testEveryCodePointMatchesTheRustTokenizer() throws {
        let url = try TokenizerFixtures.url("unicode-classes.txt")
        let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n")
        guard let first = lines.first, first.contains("\"distillery-tokenizer-golden\""), first.contains("\"version\": 2") else {
            throw GoldenError("\(url.path): missing header — regenerate with scripts/make_tokenizer_golden.py")
        }
        var sets: [String: Set<UInt32>] = [:]
        var strip: [UInt32: [UInt32]] = [:]
        var lower: [UInt32: [UInt32]] = [:]
        for line in lines.dropFirst() {
            let fields = line.split(separator: " ")
            guard let kind = fields.first.map(String.init) else { continue }
            switch kind {
            case "strip", "lower":
                let values = fields.dropFirst().compactMap { UInt32($0, radix: 16) }
                guard values.count >= 2 else { throw GoldenError("bad line '\(line)'") }
                if kind == "strip" { strip[values[0]] = Array(values.dropFirst()) } else { lower[values[0]] = Array(values.dropFirst()) }
            default:
                var set = Set<UInt32>()
                for range in fields.dropFirst() {
                    let ends = range.split(separator: "-").compactMap { UInt32($0, radix: 16) }
                    guard let lo = ends.first, let hi = ends.last else { throw GoldenError("bad range '\(range)'") }
                    for v in lo...hi { set.insert(v) }
                }
                sets[kind] = set
            }
        }
        for kind in ["removed", "whitespace", "chinese", "punctuation", "strip_removed"] where sets[kind] == nil {
            throw GoldenError("\(url.path): no '\(kind)' line")
        }
        XCTAssertGreaterThan(strip.count, 10_000)  // Hangul alone decomposes 11,172 syllables
        XCTAssertGreaterThan(lower.count, 1_000)

        var mismatches: [String: [String]] = [:]
        func note(_ kind: String, _ v: UInt32, _ detail: String = "") {
            mismatches[kind, default: []].append(String(format: "U+%04X", v) + detail)
        }
        for v in UInt32(0)..<0x110000 {
            guard let s = Unicode.Scalar(v) else { continue }
            let removed = v == 0 || v == 0xFFFD || UnicodeRules.isControl(s)
            if removed != sets["removed"]!.contains(v) { note("removed", v) }
            if (!removed && v != 0x20 && UnicodeRules.isWhitespace(s)) != sets["whitespace"]!.contains(v) { note("whitespace", v) }
            if UnicodeRules.isChineseCharacter(s) != sets["chinese"]!.contains(v) { note("chinese", v) }
            if (UnicodeRules.isPunctuation(s) && !UnicodeRules.isWhitespace(s)) != sets["punctuation"]!.contains(v) { note("punctuation", v) }

            var scalars = [s], origins = [0]
            // Unassigned and private-use scalars (most of the code space) have no decomposition
            // and are no marks: skipping the (slow, Foundation) NFD for them keeps this test
            // short; the comparison below still checks the table agrees with that.
            let inert = s.properties.age == nil || s.properties.generalCategory == .privateUse
            if !inert { BasicTokenizer.stripMarks(&scalars, &origins) }
            let stripped = scalars.map(\.value)
            let wantStrip: [UInt32] = sets["strip_removed"]!.contains(v) ? [] : (strip[v] ?? [v])
            if stripped != wantStrip { note("strip", v, " got \(stripped.map { String($0, radix: 16) }) want \(wantStrip.map { String($0, radix: 16) })") }

            scalars = [s]; origins = [0]
            BasicTokenizer.lowercase(&scalars, &origins)
            if scalars.map(\.value) != (lower[v] ?? [v]) { note("lower", v) }
        }
        for (kind, list) in mismatches.sorted(by: { $0.key < $1.key }) {
            XCTFail("\(kind): \(list.count) code points differ from the Rust tokenizer, e.g. \(list.prefix(12).joined(separator: ", "))")
        }
    }
}
