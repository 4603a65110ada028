// Opt-in checks on the real teacher (all-MiniLM-L6-v2, ~90 MB), skipped until scripts/fetch-teacher.sh ran.

import DistilleryTensor
import Foundation
import WeightIO
import XCTest

final class RealTeacherTests: XCTestCase {
    /// Generous wall-clock budget for reading or writing the 90 MB teacher in a debug build on 2 cores.
    private func teacherURL() throws -> URL {
        let url = weightioFixture("x").deletingLastPathComponent()   // Tests/Fixtures/weightio
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".cache/minilm-l6/model.safetensors")
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw MissingTeacher(path: url.path)
        }
        return url
    }

    func testRealTeacherLoadsAndRoundTripsThroughTeacherFileQuickly() throws {
        let url = try teacherURL()
        let weights = try loadCanonicalWeights(from: url)
        XCTAssertEqual(weights.layout, .safetensors)
        XCTAssertEqual(weights.tensors.count, 5 + 6 * 16 + 2)   // embeddings, 6 layers, pooler
        let query = try XCTUnwrap(weights.tensors.first { $0.name == "encoder.layer.5.attention.self.query.weight" })
        XCTAssertEqual(query.tensor.shape, [384, 384])
        XCTAssertTrue(weights.tensors.allSatisfy { $0.tensor.allFinite })

        let out = try temporaryDirectory(self).appendingPathComponent("teacher.h5")
        try TeacherFile(tensors: weights.tensors, configJSON: #"{"hidden_size": 384}"#, vocabulary: ["[PAD]"],
                        pooling: "mean", normalize: true, tokenizerOptionsJSON: #"{"lowercase": true}"#).write(to: out)
        let back = try TeacherFile.read(out)
        XCTAssertEqual(back.tensors.map(\.name), weights.tensors.map(\.name))
        XCTAssertEqual(back.tensors.last?.tensor, weights.tensors.last?.tensor)
    }
}

/// The real teacher is fetched by `make test`; its absence is a failure, not a skip.
struct MissingTeacher: Error, CustomStringConvertible {
    let path: String
    var description: String { "\(path) missing — run scripts/fetch-teacher.sh (make test does)" }
}
