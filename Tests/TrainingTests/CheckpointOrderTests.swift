// A data order read back from a checkpoint is checked before it indexes anything: every
// example once, offsets from 0 to the end in order, as many batches as the run has.
import DistilleryTraining
import XCTest

final class CheckpointOrderTests: XCTestCase {
    func testValidOrderPasses() throws {
        try EpochOrder(epoch: 1, indices: [3, 0, 2, 1, 4], offsets: [0, 2, 4, 5]).validate(examples: 5, batches: 3)
    }

    func testDamagedOrdersAreErrors() {
        let bad: [(EpochOrder, String)] = [
            (EpochOrder(epoch: 0, indices: [3, 0, 2, 1, 9], offsets: [0, 2, 4, 5]), "outside 0..<5"),
            (EpochOrder(epoch: 0, indices: [3, 0, 2, 1, -1], offsets: [0, 2, 4, 5]), "outside 0..<5"),
            (EpochOrder(epoch: 0, indices: [3, 3, 2, 1, 4], offsets: [0, 2, 4, 5]), "twice"),
            (EpochOrder(epoch: 0, indices: [3, 0, 2, 1, 4], offsets: [0, 4, 2, 5]), "batch offsets"),
            (EpochOrder(epoch: 0, indices: [3, 0, 2, 1, 4], offsets: [1, 2, 4, 5]), "batch offsets"),
            (EpochOrder(epoch: 0, indices: [3, 0, 2, 1, 4], offsets: [0, 2, 4, 6]), "batch offsets"),
            (EpochOrder(epoch: 0, indices: [3, 0, 2, 1], offsets: [0, 2, 4]), "4 examples"),
            (EpochOrder(epoch: 0, indices: [3, 0, 2, 1, 4], offsets: [0, 5]), "in 1 batches"),
            (EpochOrder(epoch: -1, indices: [3, 0, 2, 1, 4], offsets: [0, 2, 4, 5]), "epoch -1"),
        ]
        for (order, expected) in bad {
            XCTAssertThrowsError(try order.validate(examples: 5, batches: 3)) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(error) should mention \(expected)")
            }
        }
    }
}
