// The training model's distillation hooks and memory reuse: hidden states and attention
// maps as HF exposes them (checked against the inference encoder, itself checked against
// HF), pre-softmax scores, parameter blocks with extra trailing tensors, and activations
// that stay intact while the model's arenas are reused. The gradients of the backward
// seeds are checked by finite differences in ModelGradientTests.
import DistilleryModel
import DistilleryTensor
import DistilleryTraining
import Foundation
import TestSupport
import XCTest

/// Training forward (dropout off) vs the inference encoder: two fp32 implementations of
/// the same math with different kernels and summation orders on activations of size ~1;
/// the inference parity tests use the same bound against HF.
private let hookParityTolerance: Float = 1e-5

final class DistillationHookTests: XCTestCase {
    static func tinyModel() throws -> (BertModel, ParameterBlock, EncoderBatch, [Int32]) {
        var config = BertConfig(vocabSize: 13, hiddenSize: 8, layerCount: 2, headCount: 2, intermediateSize: 6,
                                maxPositions: 8, typeVocabSize: 2, layerNormEps: 1e-12)
        config.layerHeads = [2, 1]
        config.layerIntermediateSizes = [6, 3]
        let model = try BertModel(config: config, classes: 3)
        let parameters = seededParameters(model.layout, seed: 91)
        let batch = EncoderBatch(ids: [2, 5, 6, 3, 1, 2, 7, 9, 4, 0], typeIds: [0, 0, 1, 1, 1, 0, 0, 0, 0, 0],
                                 mask: [1, 1, 1, 1, 1, 1, 1, 1, 0, 0], batchSize: 2, sequenceLength: 5)
        return (model, parameters, batch, [0, 2])
    }

    func testHiddenStatesAndAttentionsMatchTheInferenceEncoder() throws {
        let (model, parameters, batch, labels) = try Self.tinyModel()
        let encoder = try BertEncoder(config: model.config, tensors: parameters.tensorDictionary)
        let reference = try encoder.forward(batch, hiddenStates: true, attentions: true)
        for threads in [1, 2] {
            Compute.setThreads(threads)
            let acts = try model.forward(batch, labels: labels, parameters: parameters)
            XCTAssertEqual(acts.hiddenStates.count, model.config.layerCount + 1)
            XCTAssertEqual(reference.hiddenStates.count, acts.hiddenStates.count)
            for (l, (ours, theirs)) in zip(acts.hiddenStates, reference.hiddenStates).enumerated() {
                XCTAssertEqual(ours.count, theirs.count, "hidden state \(l) is [B·T, H]")
                XCTAssertLessThanOrEqual(maxDifference(ours.array, theirs.data), hookParityTolerance, "hidden state \(l), \(threads) thread(s)")
            }
            XCTAssertEqual(acts.attentionProbabilities.count, model.config.layerCount)
            for (l, (ours, theirs)) in zip(acts.attentionProbabilities, reference.attentions).enumerated() {
                XCTAssertEqual(theirs.shape, [2, model.config.layerHeads[l], 5, 5])
                XCTAssertLessThanOrEqual(maxDifference(ours.array, theirs.data), hookParityTolerance, "attention \(l), \(threads) thread(s)")
            }
            XCTAssertNil(acts.attentionScores, "scores are kept only on request")
        }
        Compute.setThreads(1)
    }

    func testScoresAreThePreMaskLogitsOfTheProbabilities() throws {
        let (model, parameters, batch, labels) = try Self.tinyModel()
        let acts = try model.forward(batch, labels: labels, parameters: parameters, keepScores: true)
        let plain = try model.forward(batch, labels: labels, parameters: parameters)
        XCTAssertEqual(acts.loss, plain.loss, "keeping scores changes nothing else")
        let scores = try XCTUnwrap(acts.attentionScores)
        let T = batch.sequenceLength
        for (l, (s, p)) in zip(scores, acts.attentionProbabilities).enumerated() {
            let sv = s.array, pv = p.array
            XCTAssertTrue(sv.allSatisfy(\.isFinite), "layer \(l): masked keys keep their raw score")
            for row in 0..<(sv.count / T) {
                let b = row / (model.config.layerHeads[l] * T)
                let keep = (0..<T).map { batch.mask[b * T + $0] != 0 }
                let m = (0..<T).filter { keep[$0] }.map { Double(sv[row * T + $0]) }.max()!
                let e = (0..<T).map { keep[$0] ? exp(Double(sv[row * T + $0]) - m) : 0 }
                let z = e.reduce(0, +)
                for j in 0..<T { XCTAssertEqual(Double(pv[row * T + j]), e[j] / z, accuracy: 1e-6, "layer \(l) row \(row)") }
            }
        }
    }

    /// The forward's masks are exactly `DropoutRNG.mask` of (step, site) (the vectorised
    /// fill must not change a run's masks).
    func testForwardDropoutMasksAreTheRNGsMasks() throws {
        let (model, parameters, batch, labels) = try Self.tinyModel()
        let rng = DropoutRNG(seed: 17), rates = DropoutRates.bertDefault
        Compute.setThreads(2)
        defer { Compute.setThreads(1) }
        let acts = try model.forward(batch, labels: labels, parameters: parameters, dropout: rates, rng: rng, step: 6)
        for (l, layer) in acts.layers.enumerated() {
            let probs = try XCTUnwrap(layer.probabilityMask), output = try XCTUnwrap(layer.attentionOutputMask)
            XCTAssertEqual(probs.array, rng.mask(count: probs.count, probability: 0.1, stream: DropoutRNG.stream(step: 6, site: 1 + 3 * l)))
            XCTAssertEqual(output.array, rng.mask(count: output.count, probability: 0.1, stream: DropoutRNG.stream(step: 6, site: 2 + 3 * l)))
        }
    }

    func testParameterBlocksMayCarryTrailingTensors() throws {
        let (model, parameters, batch, labels) = try Self.tinyModel()
        let extended = ParameterLayout(model.layout.entries.map { ($0.name, $0.shape) } + [("distill.projection.weight", [8, 4])])
        XCTAssertTrue(extended.starts(with: model.layout))
        XCTAssertTrue(model.layout.starts(with: model.layout))
        XCTAssertFalse(model.layout.starts(with: extended))
        XCTAssertFalse(ParameterLayout(Array(model.layout.entries.dropFirst()).map { ($0.name, $0.shape) }).starts(with: model.layout))
        var p = ParameterBlock(zeros: extended)
        p.storage.replaceSubrange(0..<model.layout.totalCount, with: parameters.storage)
        let trailing = extended.entry("distill.projection.weight")!.range
        p.storage.replaceSubrange(trailing, with: [Float](repeating: 3, count: trailing.count))
        var g = Gradients(zeros: extended)
        g.storage.replaceSubrange(trailing, with: [Float](repeating: 7, count: trailing.count))
        let dropout = DropoutRates.bertDefault, rng = DropoutRNG(seed: 3)
        let acts = try model.forward(batch, labels: labels, parameters: p, dropout: dropout, rng: rng, step: 1)
        model.backward(acts, parameters: p, gradients: &g)
        let plain = try model.lossAndGradients(batch, labels: labels, parameters: parameters, dropout: dropout, rng: rng, step: 1)
        XCTAssertEqual(acts.loss, plain.loss)
        XCTAssertEqual(Array(g.storage[0..<model.layout.totalCount]), plain.gradients.storage)
        XCTAssertTrue(g.storage[trailing].allSatisfy { $0 == 7 }, "trailing gradients are left alone")
    }

    func testActivationsSurviveArenaReuse() throws {
        let (model, parameters, batch, labels) = try Self.tinyModel()
        let other = EncoderBatch(ids: [3, 3, 3, 3, 3, 4, 4, 4, 4, 4], batchSize: 2, sequenceLength: 5)
        // Two activations alive at once use two arenas.
        let first = try model.forward(batch, labels: labels, parameters: parameters)
        let snapshot = first.hiddenStates.map(\.array), probs = first.attentionProbabilities.map(\.array)
        let second = try model.forward(other, labels: labels, parameters: parameters)
        XCTAssertNotEqual(second.hiddenStates[2].array, snapshot[2])
        XCTAssertEqual(first.hiddenStates.map(\.array), snapshot)
        XCTAssertEqual(first.attentionProbabilities.map(\.array), probs)
        // A buffer kept beyond its activations is not reused by later passes.
        var kept: FloatBuffer
        do {
            let acts = try model.forward(batch, labels: labels, parameters: parameters)
            kept = acts.hiddenStates[1]
        }
        let keptValues = kept.array
        for _ in 0..<3 { _ = try model.lossAndGradients(other, labels: labels, parameters: parameters) }
        XCTAssertEqual(kept.array, keptValues)
        // Reused arenas give bitwise the same results as fresh ones.
        let again = try model.lossAndGradients(batch, labels: labels, parameters: parameters)
        let fresh = try BertModel(config: model.config, classes: 3).lossAndGradients(batch, labels: labels, parameters: parameters)
        XCTAssertEqual(again.loss, fresh.loss)
        XCTAssertEqual(again.gradients.storage, fresh.gradients.storage)
    }
}
