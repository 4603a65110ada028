// One forward for inference and training: `BertEncoder` (weights packed once, Q/K/V fused,
// buffers reused layer to layer) gives bit for bit what `BertModel.forward` gives with every
// activation cached and weights read from the parameter block; and the head mask — all
// ones changes nothing, zero silences a head exactly as zeroing its value projection does,
// and its gradient matches central differences with dropout on.
import DistilleryModel
import DistilleryTensor
import Foundation
import TestSupport
import XCTest

final class OneForwardTests: XCTestCase {
    let batch = EncoderBatch(ids: [2, 5, 0, 3, 2, 7, 9, 0], typeIds: [0, 0, 1, 1, 0, 0, 0, 0],
                             mask: [1, 1, 1, 1, 1, 1, 0, 0], batchSize: 2, sequenceLength: 4)
    let labels: [Int32] = [1, 2]

    override func tearDown() { Compute.setThreads(1) }

    func testInferenceAndTrainingPathsAreBitwiseEqual() throws {
        for pooling in [PoolingMode.cls, .mean] {
            let (model, parameters) = try prunedTinyModel(pooling: pooling, seed: 90)
            let encoder = try BertEncoder(config: model.config, tensors: parameters.tensorDictionary)
            for threads in [1, 2] {
                Compute.setThreads(threads)
                let acts = try model.forward(batch, labels: labels, parameters: parameters)
                let out = try encoder.forward(batch, hiddenStates: true, attentions: true)
                XCTAssertEqual(out.logits?.data, acts.logits.data, "\(pooling), \(threads) thread(s)")
                XCTAssertEqual(out.hiddenStates.map(\.data), acts.hiddenStates.map(\.array))
                XCTAssertEqual(out.attentions.map(\.data), acts.attentionProbabilities.map(\.array))
                XCTAssertEqual(out.lastHidden.data, acts.lastHidden.array)
                if pooling == .cls { XCTAssertEqual(out.pooled?.data, acts.pooled?.array) }
                // Repeated calls reuse the arena and give the same bits.
                XCTAssertEqual(try encoder.forward(batch).logits?.data, acts.logits.data)
            }
        }
    }

    func testAllOnesHeadMaskChangesNothing() throws {
        let (model, parameters) = try prunedTinyModel(seed: 91)
        let dropout = DropoutRates(hidden: 0.2, attention: 0.2, classifier: 0.2)
        let plain = ForwardOptions(dropout: dropout, rng: DropoutRNG(seed: 5), step: 3)
        var masked = plain
        masked.headMask = model.config.layerHeads.map { [Float](repeating: 1, count: $0) }
        let a = try model.forward(batch, labels: labels, parameters: parameters, options: plain)
        let b = try model.forward(batch, labels: labels, parameters: parameters, options: masked)
        XCTAssertEqual(a.logits.data, b.logits.data)
        XCTAssertEqual(a.loss, b.loss)
        var ga = Gradients(zeros: model.layout), gb = ga
        XCTAssertNil(model.backward(a, parameters: parameters, gradients: &ga))
        XCTAssertNotNil(model.backward(b, parameters: parameters, gradients: &gb))
        XCTAssertEqual(ga.storage, gb.storage)
    }

    func testZeroHeadWeightSilencesTheHeadLikeZeroValues() throws {
        let (model, parameters) = try prunedTinyModel(seed: 92)
        let D = model.config.headSize
        var options = ForwardOptions()
        options.headMask = [[1, 0], [1]]   // layer 0, head 1 off
        let masked = try model.forward(batch, labels: labels, parameters: parameters, options: options)
        // The same head with its value rows and bias zeroed: its context is exactly 0.
        var zeroed = parameters
        for name in ["encoder.layer.0.attention.self.value.weight", "encoder.layer.0.attention.self.value.bias"] {
            let e = model.layout.entry(name)!
            let perRow = e.shape.count == 2 ? e.shape[1] : 1
            for i in (D * perRow)..<(2 * D * perRow) { zeroed.storage[e.offset + i] = 0 }
        }
        let silenced = try model.forward(batch, labels: labels, parameters: zeroed)
        XCTAssertEqual(masked.logits.data, silenced.logits.data)
        let plain = try model.forward(batch, labels: labels, parameters: parameters)
        XCTAssertNotEqual(plain.logits.data, masked.logits.data, "the head mattered")
    }

    /// dLoss/d(head mask) from the backward against central differences of the loss, with
    /// dropout on and head weights away from 1; the model-level tolerance of ModelGradientTests.
    func testHeadMaskGradientMatchesFiniteDifferences() throws {
        let (model, parameters) = try prunedTinyModel(seed: 93)
        var options = ForwardOptions(dropout: DropoutRates(hidden: 0.2, attention: 0.2, classifier: 0.2),
                                     rng: DropoutRNG(seed: 6), step: 1)
        let mask: [[Float]] = [[0.7, 1.3], [0.9]]
        options.headMask = mask
        for threads in [1, 2] {
            Compute.setThreads(threads)
            let acts = try model.forward(batch, labels: labels, parameters: parameters, options: options)
            var grads = Gradients(zeros: model.layout)
            let analytic = try XCTUnwrap(model.backward(acts, parameters: parameters, gradients: &grads))
            var numeric: [Double] = [], flat: [Float] = []
            for l in mask.indices {
                for h in mask[l].indices {
                    var up = options, down = options
                    up.headMask![l][h] += modelFiniteDifferenceStep
                    down.headMask![l][h] -= modelFiniteDifferenceStep
                    let lu = try model.forward(batch, labels: labels, parameters: parameters, options: up).loss!
                    let ld = try model.forward(batch, labels: labels, parameters: parameters, options: down).loss!
                    numeric.append((lu - ld) / (2 * Double(modelFiniteDifferenceStep)))
                    flat.append(Float(analytic[l][h]))
                }
            }
            let err = relativeError(flat, numeric)
            print("head-mask gradient check, \(threads) thread(s): relative error \(err)")
            XCTAssertLessThanOrEqual(err, modelGradientTolerance)
        }
    }

    func testBadHeadMaskIsAnError() throws {
        let (model, parameters) = try prunedTinyModel(seed: 94)
        for bad: [[Float]] in [[[1, 1]], [[1, 1], [1, 1]], [[1, .nan], [1]]] {
            var options = ForwardOptions()
            options.headMask = bad
            XCTAssertThrowsError(try model.forward(batch, parameters: parameters, options: options))
        }
    }
}
