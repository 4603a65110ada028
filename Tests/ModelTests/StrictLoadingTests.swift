// Strict weight loading: missing, unexpected, mis-shaped and non-finite tensors, configs
// that contradict the weights, and bad input batches all give errors naming the culprit.
import DistilleryModel
import DistilleryTensor
import Foundation
import TestSupport
import WeightIO
import XCTest

final class StrictLoadingTests: XCTestCase {
    func tinyParts() throws -> (BertConfig, [String: Tensor]) {
        let dir = Fixtures.url("tiny-bert")
        let config = try BertConfig(json: String(contentsOf: dir.appendingPathComponent("config.json"), encoding: .utf8))
        let weights = try loadCanonicalWeights(from: dir.appendingPathComponent("model.safetensors"))
        return (config, Dictionary(uniqueKeysWithValues: weights.tensors.map { ($0.name, $0.tensor) }))
    }

    func expectError(_ config: BertConfig, _ tensors: [String: Tensor], contains parts: [String],
                     file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try BertEncoder(config: config, tensors: tensors)
            XCTFail("expected an error", file: file, line: line)
        } catch {
            for p in parts { XCTAssertTrue(error.description.contains(p), "'\(error)' lacks '\(p)'", file: file, line: line) }
        }
    }

    func testMissingTensorIsNamedWithItsShape() throws {
        var (config, tensors) = try tinyParts()
        tensors["encoder.layer.1.attention.self.query.bias"] = nil
        expectError(config, tensors, contains: ["missing tensor 'encoder.layer.1.attention.self.query.bias'", "[32]"])
        _ = config
    }

    func testWrongShapeNamesBothShapes() throws {
        var (config, tensors) = try tinyParts()
        tensors["encoder.layer.0.intermediate.dense.weight"] = Tensor(zeros: [65, 32])
        expectError(config, tensors, contains: ["encoder.layer.0.intermediate.dense.weight", "[65, 32]", "[64, 32]"])
        config.hiddenSize = 64
        (_, tensors) = try tinyParts()
        expectError(config, tensors, contains: ["embeddings.word_embeddings.weight", "[95, 32]", "[95, 64]"])
    }

    func testUnexpectedTensorIsRefused() throws {
        var (config, tensors) = try tinyParts()
        tensors["encoder.layer.2.output.dense.weight"] = Tensor(zeros: [32, 64])
        expectError(config, tensors, contains: ["unexpected tensor 'encoder.layer.2.output.dense.weight'"])
        _ = config
    }

    func testNaNAndInfAreRefused() throws {
        var (config, tensors) = try tinyParts()
        var t = tensors["encoder.layer.0.output.LayerNorm.weight"]!
        t.data[5] = .nan
        tensors["encoder.layer.0.output.LayerNorm.weight"] = t
        expectError(config, tensors, contains: ["encoder.layer.0.output.LayerNorm.weight", "nan", "index 5"])
        (config, tensors) = try tinyParts()
        t = tensors["classifier.bias"]!
        t.data[0] = -.infinity
        tensors["classifier.bias"] = t
        expectError(config, tensors, contains: ["classifier.bias", "-inf"])
    }

    func testLabelCountMustMatchClassifier() throws {
        var (config, tensors) = try tinyParts()
        config.labels = ["a", "b"]
        expectError(config, tensors, contains: ["id2label", "2 labels", "3 rows"])
        _ = tensors
    }

    func testConfigErrors() {
        XCTAssertThrowsError(try BertConfig(json: "[1, 2]")) { XCTAssertTrue("\($0)".contains("not a JSON object")) }
        XCTAssertThrowsError(try BertConfig(json: #"{"hidden_size": 30, "num_attention_heads": 4, "vocab_size": 10, "num_hidden_layers": 1, "intermediate_size": 8}"#)) {
            XCTAssertTrue("\($0)".contains("not a multiple"))
        }
        XCTAssertThrowsError(try BertConfig(json: #"{"hidden_size": 32, "num_attention_heads": 4, "num_hidden_layers": 1, "intermediate_size": 8}"#)) {
            XCTAssertTrue("\($0)".contains("'vocab_size' is missing"))
        }
        XCTAssertThrowsError(try BertConfig(json: #"{"hidden_size": 32, "num_attention_heads": 4, "vocab_size": 10, "num_hidden_layers": 1, "intermediate_size": 8, "hidden_act": "relu"}"#)) {
            XCTAssertTrue("\($0)".contains("hidden_act 'relu'"))
        }
    }

    func testBadBatchesAreRefused() throws {
        let encoder = try tinyEncoder()
        let cases: [(EncoderBatch, String)] = [
            (EncoderBatch(ids: [2, 95, 3], batchSize: 1, sequenceLength: 3), "token id 95"),
            (EncoderBatch(ids: [2, -1, 3], batchSize: 1, sequenceLength: 3), "token id -1"),
            (EncoderBatch(ids: [Int32](repeating: 5, count: 65), batchSize: 1, sequenceLength: 65), "exceeds the model's 64 positions"),
            (EncoderBatch(ids: [2, 5, 3], typeIds: [0, 2, 0], batchSize: 1, sequenceLength: 3), "token type id 2"),
            (EncoderBatch(ids: [2, 5, 3], mask: [1, 7, 1], batchSize: 1, sequenceLength: 3), "mask value 7"),
            (EncoderBatch(ids: [2, 5, 3], batchSize: 2, sequenceLength: 3), "batch of 2×3"),
        ]
        for (batch, message) in cases {
            XCTAssertThrowsError(try encoder.forward(batch)) { XCTAssertTrue("\($0)".contains(message), "'\($0)' lacks '\(message)'") }
        }
    }

    func testPerLayerHeadsAndWidthsShapeTheParameterTable() {
        var config = BertConfig(vocabSize: 10, hiddenSize: 8, layerCount: 2, headCount: 4, intermediateSize: 16)
        config.layerHeads = [4, 2]
        config.layerIntermediateSizes = [16, 5]
        let shapes = Dictionary(uniqueKeysWithValues: bertParameterShapes(config, heads: BertHeads(pooler: false, classifierLabels: 0)).map { ($0.name, $0.shape) })
        XCTAssertEqual(shapes["encoder.layer.1.attention.self.query.weight"], [4, 8])
        XCTAssertEqual(shapes["encoder.layer.1.attention.output.dense.weight"], [8, 4])
        XCTAssertEqual(shapes["encoder.layer.1.intermediate.dense.weight"], [5, 8])
        XCTAssertEqual(shapes["encoder.layer.0.output.dense.weight"], [8, 16])
    }
}
