// Parity of the fp32 encoder with HF transformers (PyTorch, eval, eager attention) on the
// tiny random BertForSequenceClassification fixture: every layer's hidden states, every
// attention map, pooler output and logits, with and without padding and segment pairs.
import DistilleryModel
import DistilleryTensor
import Foundation
import TestSupport
import WeightIO
import XCTest

/// fp32 kernels vs PyTorch's on a 2-layer, hidden-32 model: differences come from
/// summation order and our exp/erf approximations (a few ulp); 1e-5 is the issue's bound.
let tinyParityTolerance: Float = 1e-5

final class TinyParityTests: XCTestCase {
    func testEveryOutputMatchesHuggingFace() throws {
        let encoder = try tinyEncoder()
        XCTAssertTrue(encoder.heads.pooler)
        XCTAssertEqual(encoder.heads.classifierLabels, 3)
        XCTAssertEqual(encoder.config.labels, ["negative", "neutral", "positive"])
        let golden = try HDF5File.open(Fixtures.url("tiny-bert/golden.h5"))
        for threads in [1, 2] {
            Compute.setThreads(threads)
            for name in ["single", "padded", "pair", "maxlen"] {
                let c = try GoldenCase(file: golden, group: name)
                let out = try encoder.forward(c.batch, hiddenStates: true, attentions: true)
                let context = "case \(name), \(threads) thread(s)"
                print("tiny parity \(context): last hidden \(maxAbsDiff(out.lastHidden.data, try c.tensor("last_hidden_state").data)), logits \(maxAbsDiff(out.logits!.data, try c.tensor("logits").data))")
                // Padded positions included: HF masks keys with finfo.min, which gives
                // exactly the probabilities our kernel gives, so even pad rows agree.
                XCTAssertLessThanOrEqual(maxAbsDiff(out.lastHidden.data, try c.tensor("last_hidden_state").data),
                                         tinyParityTolerance, "last hidden state, \(context)")
                XCTAssertLessThanOrEqual(maxAbsDiff(out.pooled!.data, try c.tensor("pooler_output").data),
                                         tinyParityTolerance, "pooler, \(context)")
                XCTAssertLessThanOrEqual(maxAbsDiff(out.logits!.data, try c.tensor("logits").data),
                                         tinyParityTolerance, "logits, \(context)")
                let hidden = try c.tensor("hidden_states")
                XCTAssertEqual(out.hiddenStates.count, hidden.shape[0])
                XCTAssertLessThanOrEqual(maxAbsDiff(out.hiddenStates.flatMap(\.data), hidden.data),
                                         tinyParityTolerance, "hidden states, \(context)")
                let attentions = try c.tensor("attentions")
                XCTAssertEqual(out.attentions.count, attentions.shape[0])
                XCTAssertLessThanOrEqual(maxAbsDiff(out.attentions.flatMap(\.data), attentions.data),
                                         tinyParityTolerance, "attention maps, \(context)")
            }
        }
        Compute.setThreads(1)
    }

    func testSameInputSameThreadsIsBitwiseIdentical() throws {
        let encoder = try tinyEncoder()
        let c = try GoldenCase(file: try HDF5File.open(Fixtures.url("tiny-bert/golden.h5")), group: "padded")
        for threads in [1, 2] {
            Compute.setThreads(threads)
            let a = try encoder.forward(c.batch), b = try encoder.forward(c.batch)
            XCTAssertEqual(a.lastHidden.data, b.lastHidden.data)
            XCTAssertEqual(a.logits!.data, b.logits!.data)
        }
        Compute.setThreads(1)
    }

    func testPaddingDoesNotChangeRealTokens() throws {
        // A sequence alone and the same sequence padded inside a batch agree on its tokens.
        let encoder = try tinyEncoder()
        let c = try GoldenCase(file: try HDF5File.open(Fixtures.url("tiny-bert/golden.h5")), group: "padded")
        let T = c.batch.sequenceLength, H = encoder.config.hiddenSize
        let batched = try encoder.forward(c.batch)
        for b in 0..<c.batch.batchSize {
            let n = c.batch.mask[(b * T)..<((b + 1) * T)].reduce(0) { $0 + Int($1) }
            let alone = EncoderBatch(ids: Array(c.batch.ids[(b * T)..<(b * T + n)]),
                                     typeIds: Array(c.batch.typeIds[(b * T)..<(b * T + n)]),
                                     batchSize: 1, sequenceLength: n)
            let single = try encoder.forward(alone)
            XCTAssertLessThanOrEqual(maxAbsDiff(single.lastHidden.data, Array(batched.lastHidden.data[(b * T * H)..<((b * T + n) * H)])),
                                     tinyParityTolerance, "sequence \(b)")
            XCTAssertLessThanOrEqual(maxAbsDiff(single.logits!.data, Array(batched.logits!.data[(b * 3)..<(b * 3 + 3)])),
                                     tinyParityTolerance, "logits of sequence \(b)")
        }
    }
}
