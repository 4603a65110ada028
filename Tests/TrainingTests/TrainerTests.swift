// Unit tests of the fine-tuning machinery below the CLI: metrics on a hand-checked
// confusion matrix, the seeded length-bucketed epoch order, checkpoint round trips and
// the resume config comparison.
import DistilleryModel
import DistilleryTensor
@testable import DistilleryTraining
import Foundation
import TestSupport
import XCTest

/// Metrics are ratios of small integers: compare to 1e-12 (Double rounding only).
private let metricTolerance = 1e-12

final class MetricsTests: XCTestCase {
    /// rows = true, columns = predicted:
    ///   [5 1 0]   class 0: tp 5, support 6, predicted 7 → P 5/7, R 5/6, F1 10/13
    ///   [2 3 1]   class 1: tp 3, support 6, predicted 4 → P 3/4, R 1/2, F1 6/10
    ///   [0 0 4]   class 2: tp 4, support 4, predicted 5 → P 4/5, R 1,   F1 8/9
    /// accuracy 12/16; macro-F1 (10/13 + 6/10 + 8/9) / 3.
    func testHandCheckedConfusionMatrix() {
        let m = ClassificationMetrics(confusion: [[5, 1, 0], [2, 3, 1], [0, 0, 4]])
        XCTAssertEqual(m.accuracy, 0.75, accuracy: metricTolerance)
        XCTAssertEqual(m.macroF1, (10.0 / 13 + 0.6 + 8.0 / 9) / 3, accuracy: metricTolerance)
        let expected: [(Double, Double, Double, Int)] = [(5.0 / 7, 5.0 / 6, 10.0 / 13, 6), (0.75, 0.5, 0.6, 6), (0.8, 1, 8.0 / 9, 4)]
        for (c, e) in zip(m.perClass, expected) {
            XCTAssertEqual(c.precision, e.0, accuracy: metricTolerance)
            XCTAssertEqual(c.recall, e.1, accuracy: metricTolerance)
            XCTAssertEqual(c.f1, e.2, accuracy: metricTolerance)
            XCTAssertEqual(c.support, e.3)
        }
        XCTAssertEqual(m.total, 16)
        // The same from label lists.
        let truth = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2]
        let predicted = [0, 0, 0, 0, 0, 1, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2]
        XCTAssertEqual(ClassificationMetrics(truth: truth, predicted: predicted, classCount: 3), m)
    }

    /// sklearn conventions: absent classes (no examples, no predictions) are left out of the
    /// macro average; a class predicted but never true counts with F1 0.
    func testAbsentAndNeverTrueClasses() {
        let absent = ClassificationMetrics(confusion: [[2, 0, 0], [0, 1, 0], [0, 0, 0]])
        XCTAssertEqual(absent.macroF1, 1, accuracy: metricTolerance)
        let neverTrue = ClassificationMetrics(confusion: [[1, 1], [0, 0]])
        XCTAssertEqual(neverTrue.perClass[1].precision, 0)
        XCTAssertEqual(neverTrue.perClass[1].f1, 0)
        XCTAssertEqual(neverTrue.macroF1, (2.0 / 3 + 0) / 2, accuracy: metricTolerance)
    }
}

final class EpochOrderTests: XCTestCase {
    func testOrderIsASeededBucketedPermutation() {
        var g = SplitMix64(seed: 5)
        let lengths = (0..<237).map { _ in 3 + g.next(below: 60) }
        let a = epochOrder(lengths: lengths, batchSize: 4, seed: 13, epoch: 0)
        XCTAssertEqual(a.indices.sorted(), Array(0..<237))
        XCTAssertEqual(a.batchCount, 60)                                   // ⌈237 / 4⌉
        XCTAssertEqual(a.offsets.first, 0)
        XCTAssertEqual(a.offsets.last, 237)
        XCTAssertEqual(zip(a.offsets.dropFirst(), a.offsets).filter { $0 - $1 != 4 }.count, 1)   // one partial batch
        XCTAssertEqual(epochOrder(lengths: lengths, batchSize: 4, seed: 13, epoch: 0), a)
        XCTAssertNotEqual(epochOrder(lengths: lengths, batchSize: 4, seed: 13, epoch: 1).indices, a.indices)
        XCTAssertNotEqual(epochOrder(lengths: lengths, batchSize: 4, seed: 14, epoch: 0).indices, a.indices)
        // Bucketing: within a batch lengths are sorted (longest first) and close together.
        var padding = 0, unbucketed = 0
        for b in 0..<a.batchCount {
            let rows = a.indices[a.offsets[b]..<a.offsets[b + 1]].map { lengths[$0] }
            XCTAssertEqual(rows, rows.sorted(by: >))
            padding += rows.map { rows.max()! - $0 }.reduce(0, +)
            let plain = (a.offsets[b]..<a.offsets[b + 1]).map { lengths[$0] }
            unbucketed += plain.map { plain.max()! - $0 }.reduce(0, +)
        }
        XCTAssertLessThan(padding * 4, unbucketed, "bucketing should cut padding several-fold")
    }
}

final class CheckpointTests: XCTestCase {
    static let config = BertConfig(vocabSize: 20, hiddenSize: 8, layerCount: 1, headCount: 2, intermediateSize: 16,
                                   maxPositions: 16, labels: ["a", "b"])

    func trainingConfig(lr: Double = 1e-3, fingerprint: String = "abc") -> TrainingConfig {
        TrainingConfig(modelFingerprint: fingerprint, dataSHA256: "d", labels: ["a", "b"], trainExamples: 10, devExamples: 2,
                       epochs: 2, totalSteps: 6, batchSize: 4, maxLength: 16, learningRate: lr, warmupSteps: 1,
                       schedule: .cosine, weightDecay: 0.01, clipNorm: 1, evalEvery: 3, seed: 7,
                       dropout: .bertDefault, modelPath: "m.h5", dataPath: "data/x", threads: 1)
    }

    func testRoundTripIsExact() throws {
        let model = try BertModel(config: Self.config, classes: 2)
        var g = SplitMix64(seed: 1)
        var state = TrainingState(parameters: ParameterBlock(zeros: model.layout), adam: AdamWSettings())
        state.parameters.storage = (0..<model.layout.totalCount).map { _ in Float(g.normal()) }
        state.optimizer.firstMoment.storage = (0..<model.layout.totalCount).map { _ in Float(g.normal()) }
        state.optimizer.secondMoment.storage = (0..<model.layout.totalCount).map { _ in Float(g.uniform()) }
        state.optimizer.step = 4
        state.step = 4
        state.order = EpochOrder(epoch: 1, indices: [3, 1, 0, 2, 9, 8, 7, 6, 5, 4], offsets: [0, 4, 8, 10])
        state.best = BestModel(step: 3, macroF1: 0.123456789012345, accuracy: 0.5, storage: state.optimizer.firstMoment.storage)
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("c.ckpt.h5")
        try TrainingCheckpoint(config: trainingConfig(), state: state).write(to: url)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["c.ckpt.h5"], "temporary file left behind")
        let back = try TrainingCheckpoint.read(url, layout: model.layout)
        XCTAssertEqual(back.config, trainingConfig())
        XCTAssertEqual(back.state.parameters.storage.map(\.bitPattern), state.parameters.storage.map(\.bitPattern))
        XCTAssertEqual(back.state.optimizer, state.optimizer)
        XCTAssertEqual(back.state.step, 4)
        XCTAssertEqual(back.state.order, state.order)
        XCTAssertEqual(back.state.best, state.best)
        // Another layout (3 classes) is "another model".
        let other = try BertModel(config: Self.config, classes: 3)
        XCTAssertThrowsError(try TrainingCheckpoint.read(url, layout: other.layout)) { error in
            XCTAssertTrue("\(error)".contains("another model"), "\(error)")
        }
    }

    func testResumeComparisonNamesTheField() {
        let a = trainingConfig()
        XCTAssertNoThrow(try a.checkResumable(with: a, checkpoint: "c"))
        var moved = a
        moved.modelPath = "elsewhere/m.h5"
        moved.threads = 2
        XCTAssertNoThrow(try a.checkResumable(with: moved, checkpoint: "c"), "paths and threads may change")
        XCTAssertThrowsError(try a.checkResumable(with: trainingConfig(lr: 2e-3), checkpoint: "c")) { error in
            XCTAssertTrue("\(error)".contains("learning_rate differs"), "\(error)")
        }
        XCTAssertThrowsError(try a.checkResumable(with: trainingConfig(fingerprint: "xyz"), checkpoint: "c")) { error in
            XCTAssertTrue("\(error)".contains("another model"), "\(error)")
        }
    }
}
