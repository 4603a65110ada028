// Fixture lookup and tolerances shared by the WeightIO tests.
//
// Fixtures come from `scripts/make_layout_fixtures.py` (Tests/Fixtures/weightio/). The
// repository root is found by walking up from this file (symlinks resolved) to the first
// directory with both Package.swift and Tests/Fixtures, so the tests also run from an
// isolated package that links these sources.

import DistilleryTensor
import Foundation
import WeightIO
import XCTest

/// Largest relative error of rounding a float32 to float16 (10 stored mantissa bits, round to nearest).
let float16RelativeTolerance: Float = 1.0 / 2048
/// Largest relative error of truncating a float32 to bfloat16 (7 stored mantissa bits, truncation).
let bfloat16RelativeTolerance: Float = 1.0 / 128
/// Absolute floor for the relative tolerances, for values near zero (far below any fixture value's rounding).
let toleranceFloor: Float = 1e-6

/// `Tests/Fixtures/weightio/<name>`.
func weightioFixture(_ name: String, file: String = #filePath) -> URL {
    var directory = URL(fileURLWithPath: file).resolvingSymlinksInPath().deletingLastPathComponent()
    let manager = FileManager.default
    while directory.path != "/" {
        if manager.fileExists(atPath: directory.appendingPathComponent("Package.swift").path),
           manager.fileExists(atPath: directory.appendingPathComponent("Tests/Fixtures").path) {
            return directory.appendingPathComponent("Tests/Fixtures/weightio/\(name)")
        }
        directory.deleteLastPathComponent()
    }
    fatalError("cannot find Tests/Fixtures above \(file)")
}

/// The `reference.json` the fixture script writes: canonical names, shapes, sums, a few values.
struct FixtureReference: Decodable {
    struct Entry: Decodable { var shape: [Int]; var sum: Double; var first: Double; var last: Double }
    var tensors: [String: Entry]
    var query0_weight_row0: [Double]
    var skipped: [String]

    static func load() throws -> FixtureReference {
        try JSONDecoder().decode(FixtureReference.self, from: Data(contentsOf: weightioFixture("reference.json")))
    }
}

/// Asserts that `body` throws a `WeightIOError` whose description contains every fragment.
func assertWeightIOError(_ fragments: [String], kind: WeightIOError.Kind? = nil,
                         file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) {
    do {
        try body()
        XCTFail("expected a WeightIOError containing \(fragments)", file: file, line: line)
    } catch let error as WeightIOError {
        for fragment in fragments {
            XCTAssertTrue(error.description.contains(fragment),
                          "'\(error.description)' lacks '\(fragment)'", file: file, line: line)
        }
        if let kind { XCTAssertEqual(error.kind, kind, "\(error.description)", file: file, line: line) }
        XCTAssertTrue(error.description.contains(" — "), "no hint in '\(error.description)'", file: file, line: line)
    } catch {
        XCTFail("expected a WeightIOError, got \(error)", file: file, line: line)
    }
}

/// Temporary directory removed at the end of the test.
func temporaryDirectory(_ test: XCTestCase) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("weightio-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}

/// Tiny random-ish tensor with distinct values.
func sampleTensor(_ shape: [Int], offset: Float = 0) -> Tensor {
    let count = shape.reduce(1, *)
    return Tensor(shape: shape, data: (0..<count).map { Float($0) * 0.25 - 1 + offset })
}
