// The mean-pooling classifier head (`distillery_classifier_pooling: "mean"`): the training
// forward and the inference encoder give the same logits, those logits are the classifier
// applied to the masked mean of the last hidden states (padding excluded), and configs
// whose weights contradict the pooling are refused with the tensor named. The gradient of
// the head is checked with the whole model in ModelGradientTests.
import DistilleryModel
import DistilleryTensor
import DistilleryTraining
import Foundation
import TestSupport
import XCTest

final class MeanPoolingTests: XCTestCase {
    static func meanModel() throws -> (BertModel, ParameterBlock, EncoderBatch) {
        var config = BertConfig(vocabSize: 13, hiddenSize: 8, layerCount: 2, headCount: 2, intermediateSize: 6,
                                maxPositions: 8, typeVocabSize: 2, layerNormEps: 1e-12)
        config.classifierPooling = .mean
        let model = try BertModel(config: config, classes: 3)
        let parameters = seededParameters(model.layout, seed: 5)
        let batch = EncoderBatch(ids: [2, 5, 6, 3, 1, 2, 7, 9, 4, 0], mask: [1, 1, 1, 1, 1, 1, 1, 1, 0, 0],
                                 batchSize: 2, sequenceLength: 5)
        return (model, parameters, batch)
    }

    func testLogitsAreTheClassifierOnTheMaskedMean() throws {
        let (model, parameters, batch) = try Self.meanModel()
        XCTAssertFalse(model.layout.entries.contains { $0.name.hasPrefix("pooler.") }, "a mean-pooling head has no pooler")
        let encoder = try BertEncoder(config: model.config, tensors: parameters.tensorDictionary)
        let inference = try encoder.forward(batch)
        let training = try model.forward(batch, labels: nil, parameters: parameters)
        let logits = try XCTUnwrap(inference.logits)
        XCTAssertLessThanOrEqual(maxDifference(training.logits.data, logits.data), 1e-5)
        // By hand: mean over the real tokens of the last hidden state, then W·m + b.
        let (T, H) = (batch.sequenceLength, model.config.hiddenSize)
        let w = parameters.tensorDictionary["classifier.weight"]!, bias = parameters.tensorDictionary["classifier.bias"]!
        for b in 0..<2 {
            let real = (0..<T).filter { batch.mask[b * T + $0] != 0 }
            let mean = (0..<H).map { c in real.map { Double(inference.lastHidden.data[(b * T + $0) * H + c]) }.reduce(0, +) / Double(real.count) }
            for j in 0..<3 {
                let expected = Double(bias.data[j]) + (0..<H).map { Double(w.data[j * H + $0]) * mean[$0] }.reduce(0, +)
                XCTAssertEqual(Double(logits.data[b * 3 + j]), expected, accuracy: 1e-5, "sequence \(b), class \(j)")
            }
        }
        // A padded position's token does not change the logits.
        var other = batch
        other.ids[9] = 11
        XCTAssertEqual(try encoder.forward(other).logits?.data, logits.data)
    }

    func testWeightsThatContradictThePoolingAreRefused() throws {
        let (model, parameters, _) = try Self.meanModel()
        var tensors = parameters.tensorDictionary
        let H = model.config.hiddenSize
        tensors["pooler.dense.weight"] = Tensor(shape: [H, H], data: [Float](repeating: 0, count: H * H))
        tensors["pooler.dense.bias"] = Tensor(shape: [H], data: [Float](repeating: 0, count: H))
        XCTAssertThrowsError(try BertEncoder(config: model.config, tensors: tensors)) { error in
            XCTAssertTrue(String(describing: error).contains("pooler.dense.weight"), "\(error)")
            XCTAssertTrue(String(describing: error).contains("mean"), "\(error)")
        }
        var cls = model.config
        cls.classifierPooling = .cls
        XCTAssertThrowsError(try BertEncoder(config: cls, tensors: parameters.tensorDictionary)) { error in
            XCTAssertTrue(String(describing: error).contains("pooler.dense.weight"), "\(error)")
        }
    }

    func testConfigKey() throws {
        let base = #"{"vocab_size": 13, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 6"#
        XCTAssertEqual(try BertConfig(json: base + "}").classifierPooling, .cls)
        XCTAssertEqual(try BertConfig(json: base + #", "distillery_classifier_pooling": "mean"}"#).classifierPooling, .mean)
        XCTAssertThrowsError(try BertConfig(json: base + #", "distillery_classifier_pooling": "max"}"#, source: "c.json")) { error in
            XCTAssertTrue(String(describing: error).contains("c.json"), "\(error)")
            XCTAssertTrue(String(describing: error).contains("distillery_classifier_pooling"), "\(error)")
        }
    }
}
