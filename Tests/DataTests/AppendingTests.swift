// DatasetAppender: old rows stay where they were, new rows are deduplicated against every
// earlier version and split per class by the same fractions, a label outside the dataset
// is refused, and the manifest's counts and versions add up.
import DistilleryData
import Foundation
import XCTest

final class AppendingTests: XCTestCase {
    func rows(_ labels: [String], perClass: Int, tag: String) -> [RawExample] {
        var out: [RawExample] = []
        for i in 0..<perClass {
            for label in labels { out.append(RawExample(id: "\(tag)\(out.count)", text: "\(tag) \(label) text \(i)", label: label)) }
        }
        return out
    }

    func base() throws -> PreparedDataset {
        try DatasetPreparer.prepare(rows(["a", "b"], perClass: 20, tag: "old"), name: "t", source: DatasetSource())
    }

    func testOldRowsKeepTheirSplitsAndNewRowsAreSplitByTheFractions() throws {
        let old = try base()
        let next = try DatasetAppender.append(to: old, raw: rows(["a", "b"], perClass: 30, tag: "new"), source: DatasetSource(),
                                              baseManifestSHA256: "x")
        for split in Split.allCases {
            XCTAssertEqual(Array(next.splits[split]!.prefix(old.splits[split]!.count)), old.splits[split]!, "\(split)")
        }
        let version = try XCTUnwrap(next.manifest.versions?.last)
        XCTAssertEqual(version.version, 2)
        XCTAssertEqual(version.totals, ["train": 48, "dev": 6, "test": 6], "30 per class: 3 test, 3 dev, 24 train each")
        XCTAssertEqual(next.manifest.versions?.first?.totals, old.manifest.totals)
        XCTAssertEqual(next.manifest.rowsBeforeLastVersion(.train), old.splits[.train]!.count)
        XCTAssertEqual(next.manifest.counts["test"], ["a": 2 + 3, "b": 2 + 3])
        XCTAssertEqual(next.manifest.rowsKept, 100)
        XCTAssertEqual(next.manifest.rowsRead - next.manifest.rowsKept, next.manifest.dropped.total)
        // Same input, same output; another version number, another shuffle.
        let again = try DatasetAppender.append(to: old, raw: rows(["a", "b"], perClass: 30, tag: "new"), source: DatasetSource(),
                                               baseManifestSHA256: "x")
        XCTAssertEqual(again.splits, next.splits)
        XCTAssertNotEqual(DatasetAppender.versionSeed(13, version: 2), DatasetAppender.versionSeed(13, version: 3))
    }

    func testSmallBatchesMayLeaveASplitEmpty() throws {
        let next = try DatasetAppender.append(to: try base(), raw: [RawExample(id: "n", text: "just one new text", label: "b")],
                                              source: DatasetSource(), baseManifestSHA256: "x")
        XCTAssertEqual(next.manifest.versions?.last?.totals, ["train": 1, "dev": 0, "test": 0])
    }

    func testDuplicatesAndConflictsWithEarlierVersionsAreDropped() throws {
        let old = try base()
        let raw = [RawExample(id: "d", text: "OLD a text 3", label: "a"),      // normalized duplicate of an old row
                   RawExample(id: "c", text: "old b text 4", label: "a"),      // an old text with the other label
                   RawExample(id: "n", text: "brand new", label: "a")]
        let next = try DatasetAppender.append(to: old, raw: raw, source: DatasetSource(), baseManifestSHA256: "x")
        let v = try XCTUnwrap(next.manifest.versions?.last)
        XCTAssertEqual([v.duplicatesOfEarlier, v.conflictsWithEarlier, v.rowsKept], [1, 1, 1])
        XCTAssertEqual(next.manifest.dropped.normalizedDuplicates, old.manifest.dropped.normalizedDuplicates + 1)
        let all = Split.allCases.flatMap { next.splits[$0]! }
        XCTAssertEqual(all.filter { $0.text.lowercased() == "old b text 4" }.map(\.label), ["b"], "the earlier row stays")
    }

    func testLabelOutsideTheDatasetAndNothingNewAreErrors() throws {
        let old = try base()
        XCTAssertThrowsError(try DatasetAppender.append(to: old, raw: [RawExample(id: "t:3", text: "x", label: "c")],
                                                        source: DatasetSource(), baseManifestSHA256: "x")) {
            XCTAssertTrue("\($0)".contains("row t:3: label 'c' is not one of the dataset's labels (a, b)"), "\($0)")
        }
        XCTAssertThrowsError(try DatasetAppender.append(to: old, raw: [RawExample(id: "t:2", text: "old a text 0", label: "a")],
                                                        source: DatasetSource(), baseManifestSHA256: "x")) {
            XCTAssertTrue("\($0)".contains("none of the 1 rows is new"), "\($0)")
        }
    }
}
