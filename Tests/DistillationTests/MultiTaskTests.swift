// Multi-task distillation: the per-task loss on each row's slice of the union's logits
// (forward against a Double reference, backward against central differences, zero outside
// the slice), task-balanced batch counts and orders (sizes, homogeneity, coverage,
// determinism). Task names and the file layout: WeightIOTests/TaskHeadsTests.swift.
import Distillation
import DistilleryModel
import DistilleryTraining
import Foundation
import TestSupport
import XCTest

final class MultiTaskTests: XCTestCase {
    /// Double reference: Σ_t (B_t/B)·(w_s·softCE_t + w_h·mean hard CE over gold rows of t).
    private func reference(_ z: [Double], B: Int, C: Int, tasks: [Int], offsets: [Int], classes: [Int], teacher: [[Float]],
                           labels: [Int32], T: Double, ws: Double, wh: Double) -> Double {
        var total = 0.0
        for t in Set(tasks) {
            let rows = (0..<B).filter { tasks[$0] == t }
            let L = classes[t], o = offsets[t], share = Double(rows.count) / Double(B)
            let zs = rows.flatMap { z[($0 * C + o)..<($0 * C + o + L)] }
            let zt = rows.flatMap { teacher[$0].map(Double.init) }
            total += share * ws * LossReference.softCrossEntropy(zs, zt, B: rows.count, L: L, T: T)
            let gold = rows.indices.filter { labels[rows[$0]] >= 0 }
            guard !gold.isEmpty else { continue }
            var ce = 0.0
            for g in gold {
                let row = Array(zs[(g * L)..<((g + 1) * L)])
                let m = row.max()!
                let lse = m + Foundation.log(row.reduce(0) { $0 + Foundation.exp($1 - m) })
                ce += lse - row[Int(labels[rows[g]])]
            }
            total += share * wh * ce / Double(gold.count)
        }
        return total
    }

    func testLossOnEachRowsSliceMatchesReferenceAndGradient() {
        var rng = TestRNG(seed: 41)
        let classes = [2, 3, 5], offsets = [0, 2, 5], C = 10
        let tasks = [0, 1, 1, 2, 0, 2, 1], B = tasks.count
        let labels: [Int32] = [1, 0, -1, 4, 0, 2, 2]   // row 2: an augmented copy, no gold label
        let logits = rng.floats(B * C, -3, 3)
        let teacher = tasks.map { rng.floats(classes[$0], -4, 4) }
        for (T, ws, wh) in [(1.0, 1.0, 0.5), (2.0, 1.0, 0.0), (4.0, 0.0, 1.0)] {
            let loss = multiTaskPredictionLoss(logits: logits, batch: B, tasks: tasks, offsets: offsets, classes: classes, teacher: teacher,
                                               labels: labels, temperature: T, softWeight: ws, hardWeight: wh)
            let ref = reference(logits.map(Double.init), B: B, C: C, tasks: tasks, offsets: offsets, classes: classes, teacher: teacher,
                                labels: labels, T: T, ws: ws, wh: wh)
            XCTAssertEqual(loss.total, ref, accuracy: 1e-6 * max(1, abs(ref)), "T=\(T)")
            checkGradient("multi-task loss T=\(T) soft \(ws) hard \(wh)", analytic: loss.dLogits,
                          numeric: numericGradient(at: logits) {
                              self.reference($0, B: B, C: C, tasks: tasks, offsets: offsets, classes: classes, teacher: teacher,
                                             labels: labels, T: T, ws: ws, wh: wh)
                          })
            // Another task's logits get exactly no gradient: the heads are separate.
            for b in 0..<B {
                let own = offsets[tasks[b]]..<(offsets[tasks[b]] + classes[tasks[b]])
                for j in 0..<C where !own.contains(j) { XCTAssertEqual(loss.dLogits[b * C + j], 0, "row \(b) logit \(j)") }
            }
        }
    }

    func testOneTaskBatchIsTheSingleTaskLoss() {
        var rng = TestRNG(seed: 42)
        let classes = [2, 3], offsets = [0, 2], B = 4, C = 5
        let logits = rng.floats(B * C, -2, 2)
        let teacher = (0..<B).map { _ in rng.floats(3, -2, 2) }
        let labels: [Int32] = [0, 2, 1, 1]
        let multi = multiTaskPredictionLoss(logits: logits, batch: B, tasks: [1, 1, 1, 1], offsets: offsets, classes: classes,
                                            teacher: teacher, labels: labels, temperature: 2, softWeight: 1, hardWeight: 0.5)
        let slice = (0..<B).flatMap { logits[($0 * C + 2)..<($0 * C + 5)] }
        let zt = teacher.flatMap { $0 }
        let soft = slice.withUnsafeBufferPointer { s in zt.withUnsafeBufferPointer { t in
            softCrossEntropyForward(studentLogits: s.baseAddress!, teacherLogits: t.baseAddress!, batch: B, classes: 3, temperature: 2)
        } }
        var probs = [Float](repeating: 0, count: B * 3)
        let hard = probs.withUnsafeMutableBufferPointer { p in slice.withUnsafeBufferPointer { z in labels.withUnsafeBufferPointer { y in
            crossEntropyForward(probs: p.baseAddress!, logits: z.baseAddress!, labels: y.baseAddress!, batch: B, classes: 3)
        } } }
        XCTAssertEqual(multi.total, soft.loss + 0.5 * hard, accuracy: 1e-12)
    }

    func testBatchCountsFollowTheSamplingExponent() {
        let sizes = [3627, 1700, 29_700]
        for sampling in TaskSampling.allCases {
            let counts = taskBatchCounts(sizes: sizes, batches: 1098, exponent: sampling.exponent)
            XCTAssertEqual(counts.reduce(0, +), 1098, "\(sampling)")
            XCTAssertTrue(counts.allSatisfy { $0 >= 1 })
            let weights = sizes.map { pow(Double($0), sampling.exponent) }, sum = weights.reduce(0, +)
            for (k, w) in zip(counts, weights) {
                XCTAssertEqual(Double(k), 1 + 1095 * w / sum, accuracy: 1, "\(sampling): \(counts)")   // one each, the rest ∝ w
            }
        }
        XCTAssertEqual(taskBatchCounts(sizes: [10, 10, 10], batches: 10, exponent: 0.5), [4, 3, 3])   // remainder to the lower task
        XCTAssertEqual(taskBatchCounts(sizes: [100_000, 1], batches: 2, exponent: 1), [1, 1])        // every task at least one batch
    }

    func testOrdersAreTaskHomogeneousBalancedAndCoverEachTask() throws {
        let sizes = [70, 23, 41], B = 8
        var ranges: [Range<Int>] = [], start = 0
        for n in sizes { ranges.append(start..<(start + n)); start += n }
        var rng = TestRNG(seed: 43)
        let lengths = (0..<start).map { _ in 2 + Int(rng.floats(1, 0, 30)[0]) }
        let task = { (i: Int) in ranges.firstIndex { $0.contains(i) }! }
        let perEpoch = Trainer.stepsPerEpoch(examples: start, batchSize: B)
        for sampling in TaskSampling.allCases {
            let counts = taskBatchCounts(sizes: sizes, batches: perEpoch, exponent: sampling.exponent)
            var seen = [[Int]](repeating: [], count: sizes.count)
            for epoch in 0..<3 {
                let order = taskBalancedOrder(ranges: ranges, lengths: lengths, counts: counts, batchSize: B, seed: 7, epoch: epoch)
                XCTAssertEqual(order.batchCount, perEpoch)
                try order.validate(examples: start, batches: perEpoch, eachOnce: false)
                XCTAssertEqual(order, taskBalancedOrder(ranges: ranges, lengths: lengths, counts: counts, batchSize: B, seed: 7, epoch: epoch))
                var perTask = [Int](repeating: 0, count: sizes.count)
                for b in 0..<order.batchCount {
                    let rows = order.indices[order.offsets[b]..<order.offsets[b + 1]]
                    let tasks = Set(rows.map(task))
                    XCTAssertEqual(tasks.count, 1, "\(sampling) epoch \(epoch) batch \(b) mixes tasks \(tasks)")
                    perTask[tasks.first!] += 1
                    seen[tasks.first!] += rows
                }
                XCTAssertEqual(perTask, counts, "\(sampling) epoch \(epoch)")
            }
            // Each task reads its own epochs in turn: over 18 epochs (a multiple of every task's
            // ⌈n/B⌉ = 9, 3, 6) task t draws 18·k_t batches, 18·k_t / ⌈n_t/B⌉ whole passes — every
            // example exactly that many times.
            var drawn = [Int](repeating: 0, count: start)
            for epoch in 0..<18 {
                let order = taskBalancedOrder(ranges: ranges, lengths: lengths, counts: counts, batchSize: B, seed: 7, epoch: epoch)
                for i in order.indices { drawn[i] += 1 }
            }
            for t in sizes.indices {
                let passes = 18 * counts[t] / Trainer.stepsPerEpoch(examples: sizes[t], batchSize: B)
                XCTAssertEqual(Set(ranges[t].map { drawn[$0] }), [passes], "\(sampling) task \(t)")
            }
            _ = seen
        }
        let a = taskBalancedOrder(ranges: ranges, lengths: lengths, counts: [9, 4, 5], batchSize: B, seed: 7, epoch: 0)
        let b = taskBalancedOrder(ranges: ranges, lengths: lengths, counts: [9, 4, 5], batchSize: B, seed: 7, epoch: 1)
        XCTAssertNotEqual(a.indices, b.indices)
    }
}
