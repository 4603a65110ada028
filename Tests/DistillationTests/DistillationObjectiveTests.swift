// The whole distillation step (`DistillationObjective`) against central differences on a
// tiny random teacher and student: every loss of the plan on at once (soft and hard CE with
// an augmented, label-less row, embedding MSE, hidden MSE and cosine through projections,
// or attention-score MSE at equal widths), dropout on, online teacher. This checks the
// wiring the per-loss tests cannot: seeds at the right hidden state / layer, projection
// gradients at the right offsets, weights applied once.
import Distillation
import DistilleryModel
import DistilleryTensor
import DistilleryTraining
import Foundation
import TestSupport
import XCTest

/// Float model, central differences with step 1e-2 (relative to |θ|): as the training
/// engine's whole-model check (ModelGradientTests: worst measured 5.6e-5 there); wiring
/// errors are O(1e-1). Hence 1e-3 of the largest gradient.
private let objectiveGradientTolerance = 1e-3
private let objectiveFiniteDifferenceStep: Float = 1e-2

final class DistillationObjectiveTests: XCTestCase {
    /// Teacher: hidden 8, 2 layers of 2 heads (head size 4), FFN 6, 3 classes.
    func tinyTeacher() -> BertConfig {
        var c = BertConfig(vocabSize: 11, hiddenSize: 8, layerCount: 2, headCount: 2, intermediateSize: 6,
                           maxPositions: 8, typeVocabSize: 2, layerNormEps: 1e-12)
        c.labels = ["a", "b", "c"]
        return c
    }

    func spec(hidden: Int, heads: Int, losses: [String: Double]) throws -> StudentSpec {
        let object: [String: Any] = [
            "format": "distillery-student", "version": 1, "name": "objective-test",
            "architecture": ["layers": 1, "hidden_size": hidden, "heads": heads, "intermediate_size": 5],
            "init": ["from": "random"], "layer_map": ["kind": "last"], "losses": losses,
            "temperature": 2.0, "schedule": ["kind": "one-stage", "epochs": 1],
        ]
        return try StudentSpec(json: JSONSerialization.data(withJSONObject: object), source: "objective-test.json")
    }

    func randomBlock(_ layout: ParameterLayout, seed: UInt64) -> ParameterBlock {
        var rng = TestRNG(seed: seed)
        var block = ParameterBlock(zeros: layout)
        for e in layout.entries { block.storage.replaceSubrange(e.range, with: rng.modelValues(for: e.name, count: e.count)) }
        return block
    }

    func check(_ spec: StudentSpec, file: StaticString = #filePath, line: UInt = #line) throws {
        let teacherConfig = tinyTeacher()
        let plan = try DistillationPlan(spec: spec, teacher: teacherConfig, classes: 3)
        let teacherModel = try BertModel(config: teacherConfig, classes: 3)
        let teacher = try OnlineTeacher(config: teacherConfig, classes: 3,
                                        tensors: randomBlock(teacherModel.layout, seed: 5).tensorDictionary)
        let examples = [TrainingExample(ids: [1, 4, 6, 2], label: 2), TrainingExample(ids: [1, 9, 2], label: -1),
                        TrainingExample(ids: [1, 3, 5, 7, 2], label: 0)]
        var rng = TestRNG(seed: 9)
        let logits = (0..<3).map { _ in rng.floats(3, -3, 3) }
        let schedule = StagedSchedule(stages: plan.stages, stepsPerEpoch: 1, peakRate: 1e-3, warmupRatio: 0)
        let objective = try DistillationObjective(plan: plan, examples: examples, teacherLogits: logits, teacherStates: teacher,
                                                  schedule: schedule, paddingId: 0, seed: 31)
        let parameters = randomBlock(plan.layout, seed: 17)
        let rows = ArraySlice([0, 1, 2])
        var grads = Gradients(zeros: plan.layout)
        _ = try objective.lossAndGradients(rows: rows, step: 0, parameters: parameters, gradients: &grads)
        XCTAssertEqual(Set(objective.lastParts.values.keys), Set(spec.losses.active), "every loss of the plan ran", file: file, line: line)
        var numeric = [Double](repeating: 0, count: parameters.storage.count)
        var p = parameters
        var scratch = Gradients(zeros: plan.layout)
        func loss() throws -> Double { try objective.lossAndGradients(rows: rows, step: 0, parameters: p, gradients: &scratch) }
        for i in 0..<p.storage.count {
            let saved = p.storage[i], h = objectiveFiniteDifferenceStep * max(1, abs(saved))
            p.storage[i] = saved + h
            let up = try loss()
            p.storage[i] = saved - h
            let down = try loss()
            p.storage[i] = saved
            numeric[i] = (up - down) / (2 * Double(h))
        }
        // The [PAD] row of the word table gets no gradient by design (padding_idx).
        for c in 0..<plan.student.hiddenSize { numeric[plan.layout.offset("embeddings.word_embeddings.weight") + c] = 0 }
        let scale = numeric.map(abs).max()!
        var worst = ("", 0.0)
        for e in plan.layout.entries {
            let d = zip(grads.storage[e.range], numeric[e.range]).map { abs(Double($0) - $1) }.max()! / scale
            if d > worst.1 { worst = (e.name, d) }
        }
        print("distillation objective gradient check (\(spec.losses.active.map(\.rawValue).joined(separator: ", "))): worst \(worst.1) in \(worst.0)")
        XCTAssertLessThanOrEqual(worst.1, objectiveGradientTolerance, "worst tensor \(worst.0)", file: file, line: line)
        if let projection = plan.projections.first {
            let r = plan.layout.entry(projection.weightName)!.range
            XCTAssertGreaterThan(grads.storage[r].map(abs).max()!, 0, "the projection learns", file: file, line: line)
        }
    }

    func testNarrowStudentWithProjectionsAllHiddenAndPredictionLosses() throws {
        try check(spec(hidden: 4, heads: 1, losses: ["soft_ce": 1.5, "hard_ce": 0.5, "embedding_mse": 0.7,
                                                     "hidden_mse": 1.0, "hidden_cosine": 2.0]))
    }

    func testSameWidthStudentWithAttentionScoreLoss() throws {
        try check(spec(hidden: 8, heads: 2, losses: ["soft_ce": 1.0, "attention_mse": 0.3, "hidden_mse": 0.5]))
    }

    func testStagedScheduleSwitchesLossesAndRestartsWarmup() throws {
        let s = StagedSchedule(stages: [DistillationStage(name: "intermediate", epochs: 2, losses: [.hiddenMSE]),
                                        DistillationStage(name: "prediction", epochs: 1, losses: [.softCE])],
                               stepsPerEpoch: 10, peakRate: 1e-3, warmupRatio: 0.1)
        XCTAssertEqual(s.totalSteps, 30)
        XCTAssertEqual(s.stageIndex(at: 19), 0)
        XCTAssertEqual(s.stageIndex(at: 20), 1)
        XCTAssertEqual(s.firstPredictionStep, 20)
        // Warm-up of 2 steps in stage 1 and 1 step in stage 2, each from 0.
        XCTAssertLessThan(s.rate(at: 0), s.rate(at: 2))
        XCTAssertEqual(s.rate(at: 2), 1e-3, accuracy: 1e-12)
        XCTAssertLessThan(s.rate(at: 20), s.rate(at: 19) + 1e-3)
        XCTAssertEqual(s.rate(at: 21), 1e-3, accuracy: 1e-12)
    }
}
