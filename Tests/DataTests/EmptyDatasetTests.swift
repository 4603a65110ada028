// A dataset in which no row survives cleaning is an error naming why every row went —
// not three empty split files and a model that trains on nothing.
import DistilleryData
import Foundation
import XCTest

final class EmptyDatasetTests: XCTestCase {
    func prepare(_ raw: [RawExample], labels: [String]? = nil) throws -> PreparedDataset {
        try DatasetPreparer.prepare(raw, name: "empty", source: DatasetSource(), options: PreparationOptions(labels: labels))
    }

    func assertRefused(_ raw: [RawExample], labels: [String]? = nil, _ words: [String], line: UInt = #line) {
        XCTAssertThrowsError(try prepare(raw, labels: labels), line: line) { error in
            for word in words { XCTAssertTrue("\(error)".contains(word), "'\(word)' in: \(error)", line: line) }
        }
    }

    func testNoUsableRowIsAnError() {
        assertRefused([], ["empty: none of the 0 rows is usable"])
        let blank = (0..<4).map { RawExample(id: "x:\($0)", text: $0 % 2 == 0 ? "  " : "text \($0)", label: $0 % 2 == 0 ? "a" : "") }
        assertRefused(blank, ["none of the 4 rows is usable", "empty text 2", "empty label 2", "text and label columns"])
        let unknown = (0..<3).map { RawExample(id: "x:\($0)", text: "text \($0)", label: "z") }
        assertRefused(unknown, labels: ["a", "b"], ["unknown label 3", "label list"])
        let conflicting = [RawExample(id: "1", text: "same", label: "a"), RawExample(id: "2", text: "Same", label: "b")]
        assertRefused(conflicting, ["conflicting labels 2"])
    }
}
