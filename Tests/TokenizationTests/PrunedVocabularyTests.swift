// A pruned vocabulary (kd prune --vocab): the kept tokens are the ids the first half of the
// golden texts use plus the special tokens; every golden text (both halves) must tokenize to
// the original pieces where they were kept and to [UNK] exactly where a piece was dropped,
// with ids that index the pruned vocabulary. Without the original vocabulary for
// segmentation, a word with a dropped piece would be re-segmented into other pieces — the
// test checks that case exists in this data, so the property is not vacuous.
import Foundation
import TestSupport
import Tokenization
import XCTest

final class PrunedVocabularyTests: XCTestCase {
    func testKeptPiecesStayAndDroppedOnesBecomeUnknown() throws {
        let vocabulary = try WordPieceTokenizer.readVocabulary(try TokenizerFixtures.url("small-vocab.txt"))
        let full = try WordPieceTokenizer(vocabulary: vocabulary)
        let texts = try TokenizerFixtures.goldenRows("golden-small.jsonl").rows.compactMap { $0["text"] as? String }
        var used = Set<Int32>([full.unknownId, full.classId, full.separatorId, full.paddingId])
        for text in texts.prefix(texts.count / 2) { used.formUnion(full.tokenIds(text)) }
        let kept = used.sorted()
        XCTAssertLessThan(kept.count, vocabulary.count, "the first half must not use every token")
        let keptTokens = kept.map { vocabulary[Int($0)] }
        let pruned = try WordPieceTokenizer(vocabulary: keptTokens, segmentationVocabulary: vocabulary, source: "test")
        let naive = try WordPieceTokenizer(vocabulary: keptTokens)
        let newId = Dictionary(uniqueKeysWithValues: kept.enumerated().map { ($1, Int32($0)) })
        var dropped = 0, resegmented = 0
        for text in texts {
            let old = full.tokenIds(text)
            let expected = old.map { newId[$0] ?? pruned.unknownId }
            XCTAssertEqual(pruned.tokenIds(text), expected, text)
            XCTAssertEqual(pruned.tokenize(text), old.map { newId[$0] == nil ? "[UNK]" : vocabulary[Int($0)] }, text)
            dropped += old.filter { newId[$0] == nil }.count
            if naive.tokenIds(text) != expected { resegmented += 1 }
        }
        XCTAssertGreaterThan(dropped, 0, "some test pieces must be dropped")
        XCTAssertGreaterThan(resegmented, 0, "plain WordPiece over the kept tokens alone re-segments some words")
    }
}
