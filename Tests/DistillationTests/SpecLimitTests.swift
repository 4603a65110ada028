// Student files are input: sizes are bounded before any per-layer list is built from them
// (a layer count of 2^40 used to allocate `layer_heads` before the plan compared it with the
// teacher), and the training hints a recipe carries are bounded too.
import Distillation
import Foundation
import XCTest

final class SpecLimitTests: XCTestCase {
    /// Asserts `data` is refused at `keyPath` with every one of `words` in the message.
    private func refuses(_ data: Data, _ keyPath: String, _ words: [String], line: UInt = #line) {
        XCTAssertThrowsError(try StudentSpec(json: data, source: "students/big.json"), line: line) { error in
            guard let e = error as? DistillationError else { return XCTFail("\(error)", line: line) }
            XCTAssertEqual(e.keyPath, keyPath, "\(e)", line: line)
            for word in words { XCTAssertTrue(e.description.contains(word), "'\(word)' in: \(e)", line: line) }
        }
    }

    private func architecture(_ changes: [String: Any]) -> Data {
        studentJSON(["architecture": merged("architecture", changes)])
    }

    func testAbsurdSizesAreRefusedBeforeAnythingIsSized() {
        let huge = 1 << 40
        refuses(architecture(["layers": huge]), "architecture.layers", ["is 1099511627776", "1...1024"])
        refuses(architecture(["layers": -3]), "architecture.layers", ["is -3", "at least one"])
        refuses(architecture(["hidden_size": huge, "heads": 1]), "architecture.hidden_size", ["above the limit 65536"])
        refuses(architecture(["heads": huge]), "architecture.heads", ["above the limit 1024"])
        refuses(architecture(["intermediate_size": huge]), "architecture.intermediate_size", ["above the limit"])
        refuses(architecture(["layer_intermediate_sizes": [6, huge]]), "architecture.layer_intermediate_sizes", ["entry 1 is 1099511627776"])
    }

    func testTrainingHintsAreBounded() {
        refuses(studentJSON(["training": ["batch_size": 1 << 40]]), "training.batch_size", ["1...65536"])
        refuses(studentJSON(["training": ["max_length": 1 << 40]]), "training.max_length", ["2...1048576"])
        XCTAssertNoThrow(try StudentSpec(json: studentJSON(["training": ["batch_size": 32, "max_length": 128]]), source: "ok.json"))
    }
}
