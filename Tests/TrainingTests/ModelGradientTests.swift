// Whole-model finite-difference check of the training backward on a small random model
// with per-layer head counts and FFN widths and dropout ON at every site — the part the
// PyTorch parity (dropout off) cannot cover.
import DistilleryModel
import DistilleryTensor
import DistilleryTraining
import Foundation
import TestSupport
import XCTest

/// Float model, central differences with step `modelFiniteDifferenceStep`: the loss is a
/// chain of ~20 fp32 ops, so each loss value carries ~1e-7 relative noise, i.e. ~1e-5
/// error on a difference quotient with h = 1e-2, plus truncation h²·f''' ~ 1e-5. Measured
/// worst 5.6e-5 of the model's largest gradient; wiring errors (a missing dropout mask, a
/// wrong residual) are O(1e-1) or more. Hence 1e-3.
let modelGradientTolerance = 1e-3
let modelFiniteDifferenceStep: Float = 1e-2

/// A 2-layer model of hidden 8 whose second layer is pruned (1 head, FFN 3), 3 classes,
/// with seeded random weights (LayerNorm scales near 1).
func prunedTinyModel(pooling: PoolingMode = .cls, seed: UInt64) throws -> (BertModel, ParameterBlock) {
    var config = BertConfig(vocabSize: 11, hiddenSize: 8, layerCount: 2, headCount: 2, intermediateSize: 6,
                            maxPositions: 8, typeVocabSize: 2, layerNormEps: 1e-12)
    config.layerHeads = [2, 1]
    config.layerIntermediateSizes = [6, 3]
    config.classifierPooling = pooling
    let model = try BertModel(config: config, classes: 3)
    let parameters = seededParameters(model.layout, seed: seed)
    return (model, parameters)
}

final class ModelGradientTests: XCTestCase {
    func testWholeModelGradientWithDropoutAndPrunedLayers() throws {
        try checkWholeModelGradient(pooling: .cls)
    }

    /// The mean-pooling head (no pooler; the classifier reads the masked mean, so every real
    /// token's state gets a gradient from the head and padded ones none).
    func testWholeModelGradientWithMeanPoolingHead() throws {
        try checkWholeModelGradient(pooling: .mean)
    }

    func checkWholeModelGradient(pooling: PoolingMode) throws {
        let (model, parameters) = try prunedTinyModel(pooling: pooling, seed: 77)
        let config = model.config
        XCTAssertEqual(model.layout.entries.contains { $0.name.hasPrefix("pooler.") }, pooling == .cls)
        let batch = EncoderBatch(ids: [2, 5, 0, 3, 2, 7, 9, 0], typeIds: [0, 0, 1, 1, 0, 0, 0, 0],
                                 mask: [1, 1, 1, 1, 1, 1, 0, 0], batchSize: 2, sequenceLength: 4)
        let labels: [Int32] = [1, 2]
        let dropout = DropoutRates(hidden: 0.2, attention: 0.2, classifier: 0.2)
        let seed = DropoutRNG(seed: 123)
        for threads in [1, 2] {
            Compute.setThreads(threads)
            let (_, _, grads) = try model.lossAndGradients(batch, labels: labels, parameters: parameters,
                                                           dropout: dropout, rng: seed, step: 4)
            var numeric = [Double](repeating: 0, count: parameters.storage.count)
            var p = parameters
            for i in 0..<p.storage.count {
                let saved = p.storage[i]
                let h = modelFiniteDifferenceStep * max(1, abs(saved))
                p.storage[i] = saved + h
                let up = try model.forward(batch, labels: labels, parameters: p, dropout: dropout, rng: seed, step: 4).loss!
                p.storage[i] = saved - h
                let down = try model.forward(batch, labels: labels, parameters: p, dropout: dropout, rng: seed, step: 4).loss!
                p.storage[i] = saved
                numeric[i] = (up - down) / (2 * Double(h))
            }
            // [PAD] (id 0) rows of the word table get no gradient by design (padding_idx);
            // compare them with zero, not with the true derivative.
            for c in 0..<config.hiddenSize { numeric[model.layout.offset("embeddings.word_embeddings.weight") + c] = 0 }
            let err = relativeError(grads.storage, numeric)
            var worstTensor = ("", 0.0)
            let scale = numeric.map(abs).max()!
            for e in model.layout.entries {
                let d = zip(grads.storage[e.range], numeric[e.range]).map { abs(Double($0) - $1) }.max()! / scale
                if d > worstTensor.1 { worstTensor = (e.name, d) }
            }
            print("model gradient check (\(pooling) pooling), \(threads) thread(s): relative error \(err), worst tensor \(worstTensor.0)")
            XCTAssertLessThanOrEqual(err, modelGradientTolerance, "\(threads) thread(s), worst \(worstTensor.0)")
        }
        Compute.setThreads(1)
        // Dropout is on: a different step draws different masks and changes the loss.
        let a = try model.forward(batch, labels: labels, parameters: parameters, dropout: dropout, rng: seed, step: 4).loss!
        let b = try model.forward(batch, labels: labels, parameters: parameters, dropout: dropout, rng: seed, step: 5).loss!
        XCTAssertNotEqual(a, b)
    }

    /// The distillation seeds: φ = ½·CE + Σ c·logits + Σ_l Σ c_l·hidden_l + Σ_l Σ c'_l·scores_l
    /// (hidden states 0, 1, 2 — embedding output after dropout and both layer outputs —
    /// and the pre-softmax scores of both layers), dropout on, against central differences.
    func testBackwardSeedsAtLogitsHiddenStatesAndScores() throws {
        let (model, parameters) = try prunedTinyModel(seed: 78)
        let config = model.config
        var rng = TestRNG(seed: 79)   // the seed coefficients
        let (B, T, H) = (2, 4, 8)
        let batch = EncoderBatch(ids: [2, 5, 0, 3, 2, 7, 9, 0], typeIds: [0, 0, 1, 1, 0, 0, 0, 0],
                                 mask: [1, 1, 1, 1, 1, 1, 0, 0], batchSize: B, sequenceLength: T)
        let labels: [Int32] = [1, 2]
        let dropout = DropoutRates(hidden: 0.2, attention: 0.2, classifier: 0.2)
        let seed = DropoutRNG(seed: 124)
        let labelWeight: Float = 0.5
        let cLogits = rng.floats(B * 3)
        let cHidden = (0...2).map { _ in rng.floats(B * T * H) }
        let cScores = config.layerHeads.map { rng.floats(B * $0 * T * T) }
        func phi(_ p: ParameterBlock) throws -> Double {
            let a = try model.forward(batch, labels: labels, parameters: p, dropout: dropout, rng: seed, step: 2, keepScores: true)
            var total = Double(labelWeight) * a.loss!
            func dot(_ c: [Float], _ x: [Float]) -> Double { zip(c, x).reduce(0) { $0 + Double($1.0) * Double($1.1) } }
            total += dot(cLogits, a.logits.data)
            for l in 0...2 { total += dot(cHidden[l], a.hiddenStates[l].array) }
            for l in 0..<2 { total += dot(cScores[l], a.attentionScores![l].array) }
            return total
        }
        let seeds = BackwardSeeds(labelWeight: labelWeight, logits: Tensor(shape: [B, 3], data: cLogits),
                                  hiddenStates: Dictionary(uniqueKeysWithValues: (0...2).map { ($0, Tensor(shape: [B * T, H], data: cHidden[$0])) }),
                                  attentionScores: Dictionary(uniqueKeysWithValues: (0..<2).map {
                                      ($0, Tensor(shape: [B, config.layerHeads[$0], T, T], data: cScores[$0])) }))
        for threads in [1, 2] {
            Compute.setThreads(threads)
            let acts = try model.forward(batch, labels: labels, parameters: parameters, dropout: dropout, rng: seed, step: 2)
            var grads = Gradients(zeros: model.layout)
            model.backward(acts, parameters: parameters, gradients: &grads, seeds: seeds)
            var numeric = [Double](repeating: 0, count: parameters.storage.count)
            var p = parameters
            for i in 0..<p.storage.count {
                let saved = p.storage[i]
                let h = modelFiniteDifferenceStep * max(1, abs(saved))
                p.storage[i] = saved + h
                let up = try phi(p)
                p.storage[i] = saved - h
                let down = try phi(p)
                p.storage[i] = saved
                numeric[i] = (up - down) / (2 * Double(h))
            }
            for c in 0..<H { numeric[model.layout.offset("embeddings.word_embeddings.weight") + c] = 0 }   // padding_idx row
            let err = relativeError(grads.storage, numeric)
            print("seeded model gradient check, \(threads) thread(s): relative error \(err)")
            XCTAssertLessThanOrEqual(err, modelGradientTolerance, "\(threads) thread(s)")
            // Without the label term the forward needs no labels, and gives the same gradients.
            var noLabels = seeds
            noLabels.labelWeight = 0
            var withLabels = Gradients(zeros: model.layout), without = Gradients(zeros: model.layout)
            model.backward(acts, parameters: parameters, gradients: &withLabels, seeds: noLabels)
            let unlabeled = try model.forward(batch, labels: nil, parameters: parameters, dropout: dropout, rng: seed, step: 2)
            model.backward(unlabeled, parameters: parameters, gradients: &without, seeds: noLabels)
            XCTAssertEqual(withLabels.storage, without.storage)
            XCTAssertNotEqual(withLabels.storage, grads.storage, "the label weight changes the gradients")
        }
        Compute.setThreads(1)
    }

    func testBadBatchesAreRejected() throws {
        let config = BertConfig(vocabSize: 11, hiddenSize: 8, layerCount: 1, headCount: 2, intermediateSize: 6, maxPositions: 8)
        let model = try BertModel(config: config, classes: 2)
        let p = ParameterBlock(zeros: model.layout)
        let ok = EncoderBatch(ids: [1, 2, 3, 4], batchSize: 2, sequenceLength: 2)
        XCTAssertThrowsError(try model.forward(ok, labels: [0, 2], parameters: p)) { error in
            XCTAssertTrue("\(error)".contains("label 2 of sequence 1 is outside 0..<2"), "\(error)")
        }
        XCTAssertThrowsError(try model.forward(ok, labels: [0], parameters: p)) { error in
            XCTAssertTrue("\(error)".contains("1 labels for a batch of 2"), "\(error)")
        }
        XCTAssertThrowsError(try model.forward(EncoderBatch(ids: [1, 20], batchSize: 1, sequenceLength: 2), labels: nil, parameters: p)) { error in
            XCTAssertTrue("\(error)".contains("token id 20"), "\(error)")
        }
        XCTAssertThrowsError(try BertModel(config: config, classes: 1))
    }
}
