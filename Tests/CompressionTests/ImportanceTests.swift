// Importance scores and the top-k rule: each score is the squared L2 norm of the weights
// the HF layout says touch the unit (recomputed here tensor by tensor, independently of
// the axis table), and ranking keeps the largest, ties to the lower index, ascending.
import Compression
import DistilleryModel
import DistilleryTensor
import TestSupport
import XCTest

/// Scores are Double sums of at most a few hundred squared Floats, summed in another order
/// here than in the library: the difference is a few ulps of the sum (~1e-15 relative).
let scoreTolerance = 1e-12

final class ImportanceTests: XCTestCase {
    func squares(_ t: Tensor, rows: [Int]? = nil, cols: [Int]? = nil) -> Double {
        var total = 0.0
        if t.shape.count == 1 {
            for i in rows ?? Array(0..<t.shape[0]) { total += Double(t.data[i]) * Double(t.data[i]) }
            return total
        }
        for r in rows ?? Array(0..<t.shape[0]) {
            for c in cols ?? Array(0..<t.shape[1]) { total += Double(t.data[r * t.shape[1] + c]) * Double(t.data[r * t.shape[1] + c]) }
        }
        return total
    }

    func testScoresAreTheSquaredNormsOfTheWeightsTouchingEachUnit() throws {
        let c = SlicingTests.tinyConfig(), w = SlicingTests.tinyWeights(c)
        let scores = try ImportanceScores(squaredNormsOf: w, config: c)
        XCTAssertEqual(scores.heads.map(\.count), [4, 3, 4])
        XCTAssertEqual(scores.neurons.map(\.count), [6, 5, 6])
        XCTAssertEqual(scores.hiddenDimensions.count, 8)
        XCTAssertEqual(scores.vocabulary.count, 13)
        // Head 2 of layer 1: Q/K/V rows 4, 5 and biases, attention-output columns 4, 5.
        let p = "encoder.layer.1.", rows = [4, 5]
        var head = squares(w[p + "attention.output.dense.weight"]!, cols: rows)
        for qkv in ["query", "key", "value"] {
            head += squares(w[p + "attention.self.\(qkv).weight"]!, rows: rows) + squares(w[p + "attention.self.\(qkv).bias"]!, rows: rows)
        }
        XCTAssertEqual(scores.heads[1][2], head, accuracy: head * scoreTolerance)
        // FFN neuron 4 of layer 2.
        let q = "encoder.layer.2."
        let neuron = squares(w[q + "intermediate.dense.weight"]!, rows: [4]) + squares(w[q + "intermediate.dense.bias"]!, rows: [4])
            + squares(w[q + "output.dense.weight"]!, cols: [4])
        XCTAssertEqual(scores.neurons[2][4], neuron, accuracy: neuron * scoreTolerance)
        // Token id 7: its word-embedding row.
        let token = squares(w["embeddings.word_embeddings.weight"]!, rows: [7])
        XCTAssertEqual(scores.vocabulary[7], token, accuracy: token * scoreTolerance)
        // Hidden dimension 3: every hidden-size axis of every tensor.
        var dimension = 0.0
        for (name, t) in w {
            let hiddenRows = name.hasSuffix("attention.output.dense.weight") || name.hasSuffix("output.dense.weight") || name == "pooler.dense.weight"
            let hiddenCols = t.shape.count == 2 && !name.hasSuffix("output.dense.weight")
            if t.shape.count == 1 {
                let touches = name.hasSuffix("LayerNorm.weight") || name.hasSuffix("LayerNorm.bias") || name.hasSuffix("output.dense.bias") || name == "pooler.dense.bias"
                if touches { dimension += squares(t, rows: [3]) }
                continue
            }
            if hiddenRows { dimension += squares(t, rows: [3]) }
            if hiddenCols { dimension += squares(t, cols: [3]) }   // the pooler's entry (3, 3) counts once per axis
        }
        XCTAssertEqual(scores.hiddenDimensions[3], dimension, accuracy: dimension * scoreTolerance)
    }

    func testTopIndicesKeepsTheLargestTiesToTheLowerIndexAscending() throws {
        XCTAssertEqual(try topIndices([1, 3, 3, 2], keeping: 2), [1, 2])
        XCTAssertEqual(try topIndices([1, 3, 3, 2], keeping: 3), [1, 2, 3])
        XCTAssertEqual(try topIndices([5, 5, 5], keeping: 2), [0, 1], "ties go to the lower index")
        XCTAssertEqual(try topIndices([0.5, 9, -1, 9, 2], keeping: 2), [1, 3])
        XCTAssertEqual(try topIndices([4, 1], keeping: 0), [])
        XCTAssertEqual(try topIndices([4, 1], keeping: 2), [0, 1])
        for (scores, k) in [([1.0, 2.0], 3), ([1.0], -1)] {
            XCTAssertThrowsError(try topIndices(scores, keeping: k)) { XCTAssertTrue("\($0)".contains("cannot keep"), "\($0)") }
        }
        XCTAssertThrowsError(try topIndices([1, .nan], keeping: 1)) { XCTAssertTrue("\($0)".contains("NaN"), "\($0)") }
    }

    func testScoresDriveASliceThatKeepsTheStrongestUnits() throws {
        // Boost head 2 and neuron 1 of layer 0 by 10×: they rank first.
        let c = SlicingTests.tinyConfig()
        var w = SlicingTests.tinyWeights(c)
        let p = "encoder.layer.0."
        for name in ["query", "key", "value"] {
            var t = w[p + "attention.self.\(name).weight"]!
            for r in 4..<6 { for col in 0..<8 { t.data[r * 8 + col] *= 10 } }
            w[p + "attention.self.\(name).weight"] = t
        }
        var up = w[p + "intermediate.dense.weight"]!
        for col in 0..<8 { up.data[1 * 8 + col] *= 10 }
        w[p + "intermediate.dense.weight"] = up
        let scores = try ImportanceScores(squaredNormsOf: w, config: c)
        XCTAssertEqual(try topIndices(scores.heads[0], keeping: 1), [2])
        XCTAssertEqual(try topIndices(scores.neurons[0], keeping: 1), [1])
    }
}
