// Monitoring statistics against values worked out by hand (the arithmetic is in the
// comments) and against numpy/scipy on a small fixture (scripts/monitor_reference.py),
// plus the properties every divergence must have: zero for equal inputs, symmetric where
// it should be, finite with empty bins, p-values that cannot be 0.
import Foundation
import Monitoring
import XCTest

/// Hand-computed values carry ~7 significant digits of the logarithms written out.
let handTolerance = 1e-6
/// numpy and this code sum in different orders over doubles: agreement to ~1e-12.
let referenceTolerance = 1e-10

final class DivergenceTests: XCTestCase {
    func testPSIByHand() {
        // (0.25 − 0.5)·ln(0.5) + (0.75 − 0.5)·ln(1.5) = 0.1732868 + 0.1013663
        XCTAssertEqual(populationStabilityIndex(expected: [0.5, 0.5], actual: [0.25, 0.75]), 0.2746531, accuracy: handTolerance)
        // counts are normalised first: the same histogram as above
        XCTAssertEqual(populationStabilityIndex(expected: [10, 10], actual: [1, 3]), 0.2746531, accuracy: handTolerance)
        XCTAssertEqual(populationStabilityIndex(expected: [3, 1, 6], actual: [3, 1, 6]), 0, accuracy: 1e-15)
    }

    func testPSIEmptyBinUsesEpsilon() {
        // expected [1, 0] → [1, 1e-4]; actual [0.5, 0.5]:
        // (0.5 − 1)·ln(0.5) + (0.5 − 1e-4)·ln(0.5 / 1e-4) = 0.3465736 + 0.4999·8.5171932 = 0.3465736 + 4.2577449 = 4.6043185
        XCTAssertEqual(psiEpsilon, 1e-4)
        let v = populationStabilityIndex(expected: [1, 0], actual: [0.5, 0.5])
        XCTAssertTrue(v.isFinite)
        XCTAssertEqual(v, 4.6043185, accuracy: handTolerance)
    }

    func testPSIIsSymmetric() {
        let a: [Double] = [5, 1, 7, 2], b: [Double] = [2, 6, 3, 3]
        XCTAssertEqual(populationStabilityIndex(expected: a, actual: b), populationStabilityIndex(expected: b, actual: a), accuracy: 1e-12)
    }

    func testJensenShannonByHand() {
        XCTAssertEqual(jensenShannon([1, 0], [0, 1]), 1, accuracy: 1e-15)   // disjoint: the maximum, 1 bit
        XCTAssertEqual(jensenShannon([2, 3], [4, 6]), 0, accuracy: 1e-15)
        // p = [.5,.5], q = [1,0], m = [.75,.25]: KL(p‖m) = .5·log2(2/3) + .5·log2(2) = 0.2075187,
        // KL(q‖m) = log2(4/3) = 0.4150375; JS = (0.2075187 + 0.4150375)/2 = 0.3112781
        XCTAssertEqual(jensenShannon([0.5, 0.5], [1, 0]), 0.3112781, accuracy: handTolerance)
        XCTAssertEqual(jensenShannon([1, 0], [0.5, 0.5]), 0.3112781, accuracy: handTolerance)
    }

    func testKLByHand() {
        // 0.5·ln(0.5/0.25) + 0.5·ln(0.5/0.75) = 0.3465736 − 0.2027326
        XCTAssertEqual(kullbackLeibler([0.5, 0.5], [0.25, 0.75]), 0.1438410, accuracy: handTolerance)
        XCTAssertEqual(kullbackLeibler([0.5, 0.5], [1, 0]), .infinity)
    }

    func testAgainstNumpyAndScipy() {
        // scripts/monitor_reference.py: psi 1.08128705291313, js_bits 0.118226398830014 (scipy agrees)
        let e: [Double] = [30, 25, 20, 15, 10, 0], a: [Double] = [10, 15, 20, 25, 20, 10]
        XCTAssertEqual(populationStabilityIndex(expected: e, actual: a), 1.08128705291313, accuracy: referenceTolerance)
        XCTAssertEqual(jensenShannon(e, a), 0.118226398830014, accuracy: referenceTolerance)
    }

    func testQuantileBinning() {
        let deciles = Binning.quantiles(of: (1...10).map(Double.init))
        XCTAssertEqual(deciles.edges, (1...9).map(Double.init))   // rank ⌈k·10/10⌉ = k; the maximum is no edge
        XCTAssertEqual(deciles.counts((1...10).map(Double.init)), [Double](repeating: 1, count: 10))
        // Ties merge bins: 90% of the values are 3.
        let tied = Binning.quantiles(of: [Double](repeating: 3, count: 9) + [7])
        XCTAssertEqual(tied.edges, [3])
        XCTAssertEqual(tied.counts([1, 3, 4, 100]), [2, 2])
        XCTAssertEqual(Binning.quantiles(of: [5, 5, 5]).edges, [])
        XCTAssertEqual(Binning.quantiles(of: [5, 5, 5]).count, 1)
        // Upper edges are inclusive.
        let b = Binning(edges: [2, 1, 2])
        XCTAssertEqual(b.edges, [1, 2])
        XCTAssertEqual([0.5, 1, 1.5, 2, 2.5].map(b.bin(of:)), [0, 0, 1, 1, 2])
        XCTAssertEqual(b.labels(integer: true), ["≤ 1", "2", "> 2"])
        XCTAssertEqual(Binning.uniform(from: 0, to: 1, bins: 4).edges, [0.25, 0.5, 0.75])
    }

    func testPieceBins() {
        let bins = PieceBins(reference: [7: 10, 3: 5, 9: 5, 4: 1], top: 2)
        XCTAssertEqual(bins.pieces, [7, 3])   // ties broken by the smaller id
        XCTAssertEqual(bins.counts([7: 1, 9: 2, 42: 4]), [1, 0, 6])   // 9 and the unseen 42 fold into "other"
        XCTAssertEqual(categoryCounts([0, 2, 2, 5, -1], categories: 3), [1, 0, 2])
    }
}

final class MMDTests: XCTestCase {
    func testMMDByHand() {
        // Pooled 0, 1 | 3, 4; pair distances 1,3,4,2,3,1 → sorted 1,1,2,3,3,4, lower median σ = 2,
        // k = exp(−d²/8). Kxx = Kyy = exp(−1/8) = 0.8824969; Kxy sum = exp(−9/8)·2 + exp(−2) + exp(−1/2)
        // = 0.6493049 + 0.1353353 + 0.6065307 = 1.3911709; MMD² = 2·0.8824969 − 2/4·1.3911709 = 1.7649938 − 0.6955855 = 1.0694083
        let r = mmdTest(reference: [[0], [1]], current: [[3], [4]], permutations: 4000, seed: 1)
        XCTAssertEqual(r.bandwidth, 2, accuracy: 1e-12)
        XCTAssertEqual(r.mmd2, 1.0694083, accuracy: handTolerance)
        // Of the 6 splits of 4 points, 2 (the observed one and its mirror) reach the observed value: p → 1/3.
        XCTAssertEqual(r.pValue, 1.0 / 3, accuracy: 0.03)
        XCTAssertEqual(r.referenceCount, 2)
        XCTAssertEqual(r.currentCount, 2)
    }

    /// The points of scripts/monitor_reference.py's fixture.
    static func fixture() -> (reference: [[Float]], current: [[Float]]) {
        let ref = (0..<20).map { i -> [Float] in let x = Double(i); return [Float(sin(x)), Float(cos(2 * x)), Float(0.5 * sin(3 * x))] }
        let cur = (0..<15).map { i -> [Float] in let x = Double(i); return [Float(sin(x) + 0.5), Float(cos(2 * x)), Float(0.5 * sin(3 * x) + 0.2)] }
        return (ref, cur)
    }

    func testMMDAgainstNumpy() {
        // scripts/monitor_reference.py: mmd2 0.0292459724736378, sigma 1.54282546900512
        let (ref, cur) = Self.fixture()
        let r = mmdTest(reference: ref, current: cur, permutations: 200, seed: 5)
        XCTAssertEqual(r.mmd2, 0.0292459724736378, accuracy: referenceTolerance)
        XCTAssertEqual(r.bandwidth, 1.54282546900512, accuracy: referenceTolerance)
    }

    func testPermutationPValue() {
        let (ref, cur) = Self.fixture()
        // A clear shift: every coordinate moved by 3σ-ish → the smallest p the test can give.
        let far = cur.map { $0.map { $0 + 3 } }
        let shifted = mmdTest(reference: ref, current: far, permutations: 199, seed: 5)
        XCTAssertEqual(shifted.pValue, 1.0 / 200, accuracy: 1e-12)
        // The same sample on both sides: not significant; never 0; reproducible with the seed.
        let same = mmdTest(reference: ref, current: ref, permutations: 199, seed: 5)
        XCTAssertGreaterThan(same.pValue, 0.5)
        XCTAssertEqual(same, mmdTest(reference: ref, current: ref, permutations: 199, seed: 5))
        XCTAssertLessThan(same.mmd2, 0)   // the unbiased estimate dips below 0 for equal samples
    }

    func testSubsampleIndices() {
        XCTAssertEqual(subsampleIndices(count: 5, cap: 10, seed: 1), [0, 1, 2, 3, 4])
        let pick = subsampleIndices(count: 1000, cap: 50, seed: 9)
        XCTAssertEqual(pick.count, 50)
        XCTAssertEqual(Set(pick).count, 50)
        XCTAssertEqual(pick, pick.sorted())
        XCTAssertEqual(pick, subsampleIndices(count: 1000, cap: 50, seed: 9))
        XCTAssertNotEqual(pick, subsampleIndices(count: 1000, cap: 50, seed: 10))
    }

    func testMedianHeuristicOfEqualPoints() {
        XCTAssertEqual(mmdTest(reference: [[1, 1], [1, 1]], current: [[1, 1], [1, 1]], permutations: 9, seed: 1).bandwidth, 1)
    }
}
