// TinyBERT-style augmentation (Augmentation.swift) on a hand-made vocabulary and a 2-D
// embedding table whose nearest neighbours are known by construction: word classification,
// words recovered from WordPiece ids, neighbour search, determinism per seed and row,
// p = 0 giving originals only, "##" pieces and punctuation never chosen, multi-piece words kept.
import DistilleryData
import Foundation
import XCTest

final class AugmentationTests: XCTestCase {
    //                 0       1       2       3       4       5        6       7      8        9      10     11     12       13
    let tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "good", "great", "fine", "bad", "awful", "##ly", ",", "run", "##ning", "[unused0]"]
    /// 2-D embeddings: good/great/fine point right, bad/awful left; "##ly", "," and [unused0]
    /// sit right next to "good" and must still never be chosen.
    let embeddings: [Float] = [
        0, 0,   0, 0,   0, 0,   0, 0,
        1, 0,          // good
        0.95, 0.1,     // great   (cos to good ≈ 0.995)
        0.7, 0.7,      // fine    (≈ 0.707)
        -1, 0,         // bad
        -0.9, -0.2,    // awful
        1, 0.001,      // ##ly
        1, 0.002,      // ,
        0, 1,          // run
        0.1, 1,        // ##ning
        1, 0.003,      // [unused0]
    ]

    var vocabulary: WordVocabulary { WordVocabulary(tokens: tokens) }

    func table(k: Int = 2) -> NeighbourTable {
        NeighbourTable(queries: [4, 7, 11, 4], candidates: vocabulary.wholeWordIDs, embeddings: embeddings, dimension: 2, k: k)
    }

    func testWordClassificationAndWords() {
        let v = vocabulary
        XCTAssertEqual(v.wholeWordIDs, [4, 5, 6, 7, 8, 11])
        XCTAssertTrue(v.isContinuation[9] && v.isContinuation[12])
        // [CLS] run ##ning good , bad ##ly [SEP]
        let ids: [Int32] = [2, 11, 12, 4, 10, 7, 9, 3]
        XCTAssertEqual(v.words(of: ids), [0..<1, 1..<3, 3..<4, 4..<5, 5..<7, 7..<8])
        XCTAssertEqual(v.replaceableWords(of: ids), [3], "only 'good' is a single-piece whole word")
        XCTAssertEqual(v.words(of: []), [])
    }

    func testNeighboursAreTheNearestWholeWords() {
        let t = table(k: 2)
        XCTAssertEqual(t.neighbours[4], [5, 6], "good → great, fine")
        XCTAssertEqual(t.neighbours[7], [8, 11], "bad → awful, then run (cos 0 beats fine's −0.7)")
        XCTAssertEqual(Set(t.neighbours.keys), [4, 7, 11], "neighbours only for the queried words")
        // A product injected from outside (as the CLI passes BLAS) gives the same table.
        let injected = NeighbourTable(queries: [4, 7, 11], candidates: vocabulary.wholeWordIDs, embeddings: embeddings,
                                      dimension: 2, k: 2) { m, n, k, a, b, c in NeighbourTable.plainProduct(m, n, k, a, b, c) }
        XCTAssertEqual(injected.neighbours, t.neighbours)
        // More neighbours than candidates: all of them, never the word itself, never ##/punctuation/[unused].
        let all = table(k: 50).neighbours[4]!
        XCTAssertEqual(all, [5, 6, 11, 8, 7])
        XCTAssertFalse(all.contains { [9, 10, 12, 13].contains($0) })
        // Blocks of queries: more queries than one block still find the same neighbours.
        let many = (0..<(NeighbourTable.queryBlock + 3)).map { _ in Int32(4) } + [7]
        XCTAssertEqual(NeighbourTable(queries: many, candidates: vocabulary.wholeWordIDs, embeddings: embeddings, dimension: 2, k: 2).neighbours[7], [8, 11])
    }

    /// "good run ##ning bad , good" as pieces.
    let sentence: [Int32] = [4, 11, 12, 7, 10, 4]

    func augmenter(copies: Int, p: Double, k: Int = 2, seed: UInt64 = 7) -> Augmenter {
        Augmenter(vocabulary: vocabulary, table: table(k: k), options: AugmentationOptions(copies: copies, probability: p, neighbours: k, seed: seed))
    }

    func testDeterministicPerSeedAndRow() {
        let a = augmenter(copies: 8, p: 0.5)
        let first = a.copies(of: sentence, row: 3)
        XCTAssertFalse(first.isEmpty)
        // Same seed and row: same copies, whatever was generated before (another row, another order).
        _ = a.copies(of: sentence, row: 0)
        XCTAssertEqual(a.copies(of: sentence, row: 3).map(\.ids), first.map(\.ids))
        XCTAssertEqual(augmenter(copies: 8, p: 0.5).copies(of: sentence, row: 3).map(\.copy), first.map(\.copy))
        // Another row or another seed: different copies.
        XCTAssertNotEqual(a.copies(of: sentence, row: 4).map(\.ids), first.map(\.ids))
        XCTAssertNotEqual(augmenter(copies: 8, p: 0.5, seed: 8).copies(of: sentence, row: 3).map(\.ids), first.map(\.ids))
        // Fewer copies are a prefix of more: copy k does not depend on N.
        let three = augmenter(copies: 3, p: 0.5).copies(of: sentence, row: 3)
        XCTAssertEqual(three.map(\.ids), first.filter { $0.copy <= 3 }.map(\.ids))
    }

    func testProbabilityZeroGivesOriginalsOnly() {
        XCTAssertTrue(augmenter(copies: 20, p: 0).copies(of: sentence, row: 0).isEmpty)
        // Nothing replaceable: every copy equals the original and is dropped.
        XCTAssertTrue(augmenter(copies: 5, p: 1).copies(of: [11, 12, 10], row: 0).isEmpty)
    }

    func testReplacementsAreNeighboursAndKeepMultiPieceWords() {
        let copies = augmenter(copies: 30, p: 1).copies(of: sentence, row: 1)
        XCTAssertFalse(copies.isEmpty)
        var seen = Set<[Int32]>()
        for c in copies {
            XCTAssertEqual(c.ids.count, sentence.count)
            XCTAssertEqual(Array(c.ids[1...2]), [11, 12], "the multi-piece word 'running' must stay")
            XCTAssertEqual(c.ids[4], 10, "punctuation is never replaced")
            XCTAssertTrue([5, 6].contains(c.ids[0]) && [5, 6].contains(c.ids[5]), "good → great|fine, got \(c.ids)")
            XCTAssertTrue([8, 11].contains(c.ids[3]), "bad → awful|run, got \(c.ids)")
            XCTAssertFalse(c.ids.contains { [9, 13].contains($0) }, "## pieces and [unused] never chosen")
            XCTAssertTrue(seen.insert(c.ids).inserted, "duplicate copy \(c.ids) was kept")
            XCTAssertTrue((1...30).contains(c.copy))
        }
        // p = 1 with 2 neighbours: at most 2³ = 8 distinct copies of three replaceable words.
        XCTAssertLessThanOrEqual(copies.count, 8)
        // With compareLength, changes only after the cut count as identical.
        let cut = augmenter(copies: 10, p: 1).copies(of: [11, 12, 4], row: 0, compareLength: 2)
        XCTAssertTrue(cut.isEmpty, "a copy that differs only past the truncation point must be dropped")
    }

    func testReplacementRateFollowsProbability() {
        // 400 rows × 1 copy × 3 replaceable words at p = 0.4; a dropped copy had no replacement, so counting kept copies counts every event.
        let a = augmenter(copies: 1, p: 0.4)
        var replaced = 0, total = 0
        for row in 0..<400 {
            for c in a.copies(of: sentence, row: row) { replaced += [0, 3, 5].filter { c.ids[$0] != sentence[$0] }.count }
            total += 3
        }
        // Binomial(1200, 0.4): mean 480, sd ≈ 17; ±5 sd.
        XCTAssertEqual(Double(replaced), 480, accuracy: 85)
    }
}
