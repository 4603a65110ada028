// LP-FT's linear probe: `fitSoftmaxRegression` reaches the optimum of its stated objective
// (checked with a gradient and objective written here, independently of the solver), and
// `classifierFeatures` returns exactly what the classifier reads, for both heads.
import DistilleryModel
import DistilleryTensor
import DistilleryTraining
import Foundation
import TestSupport
import XCTest

final class LinearProbeTests: XCTestCase {
    /// Mean cross-entropy + (l2 / 2)·‖W‖² and its gradient, textbook form in Double.
    func reference(_ w: [Double], _ b: [Double], x: [[Double]], y: [Int32], classes: Int, l2: Double) -> (Double, [Double]) {
        let n = x.count, dim = x[0].count
        var value = 0.0
        var grad = [Double](repeating: 0, count: w.count + b.count)
        for i in 0..<n {
            let z = (0..<classes).map { c in b[c] + (0..<dim).map { w[c * dim + $0] * x[i][$0] }.reduce(0, +) }
            let logSum = Foundation.log(z.map { Foundation.exp($0) }.reduce(0, +))
            value += logSum - z[Int(y[i])]
            for c in 0..<classes {
                let d = (Foundation.exp(z[c] - logSum) - (c == Int(y[i]) ? 1 : 0)) / Double(n)
                for k in 0..<dim { grad[c * dim + k] += d * x[i][k] }
                grad[w.count + c] += d
            }
        }
        value /= Double(n)
        for j in w.indices { value += 0.5 * l2 * w[j] * w[j]; grad[j] += l2 * w[j] }
        return (value, grad)
    }

    func testFitReachesTheOptimumOfItsObjective() {
        // 3 overlapping classes in 5 dimensions (not separable, so the optimum is finite even
        // with tiny l2), labels from a noisy linear rule.
        var rng = TestRNG(seed: 31)
        let (n, dim, classes) = (90, 5, 3)
        let truth = rng.doubles(classes * dim, -2, 2)
        var x: [[Float]] = [], y: [Int32] = []
        for _ in 0..<n {
            let row = rng.floats(dim, -1, 1)
            let z = (0..<classes).map { c in (0..<dim).map { truth[c * dim + $0] * Double(row[$0]) }.reduce(0, +) + rng.uniform(-1.5, 1.5) }
            x.append(row)
            y.append(Int32(z.indices.max { z[$0] < z[$1] }!))
        }
        for l2 in [1e-1, 1 / Double(n)] {
            let fit = fitSoftmaxRegression(features: x, labels: y, classes: classes, l2: l2)
            let xd = x.map { $0.map(Double.init) }
            let (value, grad) = reference(fit.weight.map(Double.init), fit.bias.map(Double.init), x: xd, y: y, classes: classes, l2: l2)
            // Float rounding of the solution moves the gradient by ~1e-7; a wrong solver leaves O(1e-2).
            XCTAssertLessThan(grad.map(abs).max()!, 1e-5, "l2 \(l2): not at the optimum (\(fit.iterations) iterations)")
            XCTAssertEqual(value, fit.objective, accuracy: 1e-6)
            XCTAssertLessThan(value, Foundation.log(Double(classes)), "must beat the all-zero head")
            // Convex: any nearby head is no better.
            for trial in 0..<5 {
                var r = TestRNG(seed: UInt64(100 + trial))
                let dw = r.doubles(fit.weight.count, -1e-2, 1e-2), db = r.doubles(fit.bias.count, -1e-2, 1e-2)
                let (moved, _) = reference(zip(fit.weight, dw).map { Double($0) + $1 }, zip(fit.bias, db).map { Double($0) + $1 },
                                           x: xd, y: y, classes: classes, l2: l2)
                XCTAssertGreaterThanOrEqual(moved, value - 1e-12)
            }
            let correct = (0..<n).filter { i in
                let z = (0..<classes).map { c in Double(fit.bias[c]) + (0..<dim).map { Double(fit.weight[c * dim + $0]) * xd[i][$0] }.reduce(0, +) }
                return z.indices.max { z[$0] < z[$1] }! == Int(y[i])
            }.count
            XCTAssertEqual(fit.accuracy, Double(correct) / Double(n), accuracy: 1e-12)
        }
    }

    /// For the [CLS]-pooler head and the mean head: a real classifier's logits are W·f + b of
    /// the features.
    func testFeaturesAreWhatTheClassifierReads() throws {
        for pooling in [PoolingMode.cls, .mean] {
            var config = BertConfig(vocabSize: 13, hiddenSize: 8, layerCount: 2, headCount: 2, intermediateSize: 6,
                                    maxPositions: 8, typeVocabSize: 2, layerNormEps: 1e-12)
            config.classifierPooling = pooling
            let model = try BertModel(config: config, classes: 3)
            let tensors = seededParameters(model.layout, seed: 9).tensorDictionary
            let sequences: [[Int32]] = [[2, 5, 6, 3], [1, 2, 7, 9, 4, 3], [2, 3]]
            let features = try classifierFeatures(config: config, tensors: tensors, sequences: sequences, batchSize: 2, paddingId: 0)
            let encoder = try BertEncoder(config: config, tensors: tensors)
            let logits = try classifierLogits(encoder: encoder, sequences: sequences, batchSize: 2, paddingId: 0)
            let w = tensors["classifier.weight"]!.data, b = tensors["classifier.bias"]!.data
            XCTAssertEqual(features.map(\.count), [8, 8, 8])
            for (f, z) in zip(features, logits) {
                let expected = (0..<3).map { j in Double(b[j]) + (0..<8).map { Double(w[j * 8 + $0]) * Double(f[$0]) }.reduce(0, +) }
                XCTAssertLessThanOrEqual(relativeError(z, expected), 1e-5, "\(pooling)")
            }
            if pooling == .cls {   // tanh output
                XCTAssertTrue(features.joined().allSatisfy { abs($0) <= 1 })
            }
        }
    }
}
