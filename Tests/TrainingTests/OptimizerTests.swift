// AdamW, clipping and schedules against hand-computed values of the PyTorch/HF formulas
// (the 5-step parity test checks them against PyTorch itself).
import DistilleryModel
import DistilleryTraining
import Foundation
import XCTest

final class OptimizerTests: XCTestCase {
    func testLinearScheduleMatchesHF() {
        let s = LearningRateSchedule(peakRate: 1e-3, warmupSteps: 2, totalSteps: 5, decay: .linear)
        // get_linear_schedule_with_warmup(2, 5): 0, 1/2, 1, 2/3, 1/3, 0, 0
        let expected = [0, 0.5, 1, 2.0 / 3, 1.0 / 3, 0, 0]
        for (step, m) in expected.enumerated() { XCTAssertEqual(s.multiplier(at: step), m, accuracy: 1e-15, "step \(step)") }
        XCTAssertEqual(s.rate(at: 2), 1e-3, accuracy: 1e-18)
        // No warm-up: the first step runs at the peak.
        XCTAssertEqual(LearningRateSchedule(peakRate: 1, warmupSteps: 0, totalSteps: 4).multiplier(at: 0), 1)
    }

    func testCosineScheduleMatchesHF() {
        let s = LearningRateSchedule(peakRate: 1, warmupSteps: 1, totalSteps: 5, decay: .cosine)
        // progress = (step − 1)/4: 0.5·(1 + cos(π·progress))
        XCTAssertEqual(s.multiplier(at: 0), 0)
        XCTAssertEqual(s.multiplier(at: 1), 1, accuracy: 1e-15)
        XCTAssertEqual(s.multiplier(at: 3), 0.5, accuracy: 1e-15)
        XCTAssertEqual(s.multiplier(at: 2), 0.5 * (1 + cos(Double.pi / 4)), accuracy: 1e-15)
        XCTAssertEqual(s.multiplier(at: 5), 0, accuracy: 1e-15)
    }

    func testWeightDecayIsChosenByName() {
        XCTAssertTrue(AdamW.decays("encoder.layer.0.attention.self.query.weight"))
        XCTAssertTrue(AdamW.decays("embeddings.word_embeddings.weight"))
        XCTAssertTrue(AdamW.decays("classifier.weight"))
        XCTAssertFalse(AdamW.decays("encoder.layer.0.attention.self.query.bias"))
        XCTAssertFalse(AdamW.decays("embeddings.LayerNorm.weight"))
        XCTAssertFalse(AdamW.decays("encoder.layer.3.output.LayerNorm.weight"))
        XCTAssertFalse(AdamW.decays("encoder.layer.3.output.LayerNorm.bias"))
    }

    func testFirstAdamWStepByHand() {
        let layout = ParameterLayout([("dense.weight", [3]), ("dense.bias", [2])])
        var p = ParameterBlock(zeros: layout), g = Gradients(zeros: layout)
        p.storage = [1, -2, 0.5, 3, -1]
        g.storage = [0.1, -0.3, 0, 2, 1e-9]
        var opt = AdamW(layout: layout, settings: AdamWSettings(weightDecay: 0.1))
        let lr = 0.01
        opt.update(&p, gradients: g, learningRate: lr)
        // Step 1: m̂ = g, v̂ = g², update = lr·g/(|g| + eps); decay p·(1 − lr·λ) on the weight only.
        let start: [Double] = [1, -2, 0.5, 3, -1], grad: [Double] = [0.1, -0.3, 0, 2, 1e-9]
        for i in 0..<5 {
            let decayed = i < 3 ? start[i] * (1 - lr * 0.1) : start[i]
            let expected = decayed - lr * grad[i] / (abs(grad[i]) + 1e-8)
            XCTAssertEqual(Double(p.storage[i]), expected, accuracy: 1e-6, "element \(i)")
        }
        XCTAssertEqual(opt.firstMoment.storage[3], Float(0.1 * 2), accuracy: 1e-7)
        XCTAssertEqual(opt.secondMoment.storage[3], Float(0.001 * 4), accuracy: 1e-8)
        XCTAssertEqual(opt.step, 1)
    }

    func testClipping() {
        let layout = ParameterLayout([("a.weight", [2]), ("b.bias", [2])])
        var g = Gradients(zeros: layout)
        g.storage = [3, 0, 0, 4]
        let norm = clipGradientNorm(&g, maxNorm: 1)
        XCTAssertEqual(norm, 5)
        XCTAssertEqual(Double(gradientNorm(g)), 1, accuracy: 1e-6)
        XCTAssertEqual(g.storage[0] / g.storage[3], 0.75, accuracy: 1e-7)
        // Under the limit: untouched.
        var small = Gradients(zeros: layout)
        small.storage = [0.1, 0.2, 0, 0]
        let before = small.storage
        clipGradientNorm(&small, maxNorm: 1)
        XCTAssertEqual(small.storage, before)
    }

    func testParameterBlockRoundTripsNamedTensors() throws {
        let config = BertConfig(vocabSize: 5, hiddenSize: 4, layerCount: 1, headCount: 2, intermediateSize: 3, maxPositions: 6)
        let layout = ParameterLayout(config: config, heads: BertHeads(pooler: true, classifierLabels: 2))
        var p = ParameterBlock(zeros: layout)
        for i in p.storage.indices { p.storage[i] = Float(i) }
        XCTAssertEqual(layout.entries.map(\.name), bertParameterShapes(config, heads: BertHeads(pooler: true, classifierLabels: 2)).map(\.name))
        let back = try ParameterBlock(layout: layout, tensors: p.tensorDictionary)
        XCTAssertEqual(back, p)
        var extra = p.tensorDictionary
        extra["lm_head.weight"] = p.tensor("classifier.weight")
        XCTAssertThrowsError(try ParameterBlock(layout: layout, tensors: extra))
        var missing = p.tensorDictionary
        missing["pooler.dense.bias"] = nil
        XCTAssertThrowsError(try ParameterBlock(layout: layout, tensors: missing)) { error in
            XCTAssertTrue("\(error)".contains("pooler.dense.bias"), "\(error)")
        }
    }
}
