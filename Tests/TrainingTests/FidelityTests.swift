// FidelityMetrics (kd eval --teacher): top-1 agreement and mean KL(teacher ‖ student),
// checked against values worked out by hand.
import DistilleryModel
import DistilleryTraining
import Foundation
import XCTest

/// KL values here are sums of a few Double terms; agreement must be exact.
private let klTolerance = 1e-12
/// ln 3 stored as a Float logit is off by ~2e-8, which moves the hand-computed KL by less.
private let floatLogitTolerance = 1e-7

final class FidelityTests: XCTestCase {
    func testIdenticalLogitsAgreeWithZeroKL() {
        let logits: [[Float]] = [[1, 2, 3], [-40, 0, 40], [5, 5, 5]]
        let m = FidelityMetrics(teacher: logits, student: logits)
        XCTAssertEqual(m.agreement, 1)
        XCTAssertEqual(m.meanKL, 0, accuracy: klTolerance)
        XCTAssertEqual(m.total, 3)
    }

    func testKLAndAgreementByHand() {
        // Example 1: teacher (0.5, 0.5) as logits (0, 0); student logits (0, ln 3) → (0.25, 0.75).
        // KL = 0.5·ln(0.5/0.25) + 0.5·ln(0.5/0.75) = 0.5·ln 2 + 0.5·ln(2/3). Arg-max: teacher 0 (tie → first), student 1.
        // Example 2: same distribution shifted by a constant: KL 0, both pick class 1.
        let teacher: [[Float]] = [[0, 0], [1, 3]]
        let student: [[Float]] = [[0, Float(Foundation.log(3.0))], [101, 103]]
        let m = FidelityMetrics(teacher: teacher, student: student)
        let kl1 = 0.5 * Foundation.log(2.0) + 0.5 * Foundation.log(2.0 / 3.0)
        XCTAssertEqual(m.agreement, 0.5)
        XCTAssertEqual(m.meanKL, kl1 / 2, accuracy: floatLogitTolerance)
    }

    func testExtremeLogitsStayFinite() {
        let m = FidelityMetrics(teacher: [[1e30, -1e30]], student: [[-1e30, 1e30]])
        XCTAssertEqual(m.agreement, 0)
        XCTAssertTrue(m.meanKL.isFinite && m.meanKL > 1e29, "\(m.meanKL)")
    }
}
