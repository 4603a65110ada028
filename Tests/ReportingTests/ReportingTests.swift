// Reporting without a model: the Pareto front, `pick` (each limit failing alone, all
// together, none), CSV escaping, the SVG plots on degenerate inputs (one variant, identical
// latencies: finite coordinates, circles and a front line), the report files round-trip,
// and a report file of another format or version, with a missing key, a duplicate name or
// an out-of-range score refused naming the file and key.
import Foundation
import Reporting
import TestSupport
import XCTest

/// A measurement with the figures a test cares about; the rest plausible.
func variant(_ name: String, kind: String = "student", f1: Double, ms: Double, mb: Double, note: String? = nil) -> VariantMeasurement {
    VariantMeasurement(spec: VariantSpec(name: name, path: "/models/\(name).h5", kind: kind, note: note),
                       parameters: Int(mb * 250_000), fileBytes: Int(mb * 1e6), loadMs: 10 * mb, peakMemoryBytes: Int(mb * 3e6) + 40_000_000,
                       latency: LatencyStats(batch: 1, medianMs: ms, p90Ms: ms * 1.1, p99Ms: ms * 1.3, sequencesPerSecond: 1000 / ms),
                       throughput: LatencyStats(batch: 32, medianMs: ms * 20, p90Ms: ms * 21, p99Ms: ms * 23, sequencesPerSecond: 32_000 / (ms * 20)),
                       accuracy: min(1, f1 + 0.02), macroF1: f1, agreement: kind == "teacher" ? nil : 0.97, meanKL: kind == "teacher" ? nil : 0.02,
                       examples: 557)
}

/// A report over `variants`; the teacher is the one of kind "teacher".
func report(_ variants: [VariantMeasurement]) -> TradeoffReport {
    TradeoffReport(created: "2026-12-02T12:00:00Z", recipeHash: "abc123", dataset: "sms-spam", split: "test", sequenceLength: 128,
                   machine: MachineInfo(cpuModel: "Test CPU @ 2.60GHz", cores: 2, threads: 1, kernelPath: "AVX2+FMA",
                                        kdVersion: "kd 0.6.0 (commit test)", os: "Linux"),
                   teacher: variants.first { $0.spec.kind == "teacher" }?.spec.name, variants: variants)
}

/// The demo-shaped set: a teacher, two students, a pruned and two quantized variants.
let sample = report([
    variant("teacher", kind: "teacher", f1: 0.960, ms: 40, mb: 90),
    variant("l3", f1: 0.955, ms: 12, mb: 70),
    variant("l3-int8", kind: "quantized", f1: 0.952, ms: 6, mb: 20, note: "int8 dynamic"),
    variant("l3-int4", kind: "quantized", f1: 0.930, ms: 5, mb: 11),
    variant("l2-pruned", kind: "pruned", f1: 0.940, ms: 8, mb: 30),   // dominated by l3-int8
    variant("l1", f1: 0.900, ms: 2.5, mb: 9),
])

final class ParetoTests: XCTestCase {
    func testFrontDropsDominatedVariantsAndOrdersByLatency() {
        XCTAssertEqual(paretoFront(sample), ["l1", "l3-int4", "l3-int8", "l3", "teacher"])
        let r = report([variant("a", kind: "teacher", f1: 0.9, ms: 10, mb: 5), variant("b", f1: 0.8, ms: 20, mb: 5),
                        variant("c", f1: 0.9, ms: 10, mb: 5)])
        XCTAssertEqual(paretoFront(r), ["a", "c"], "identical points are both on the front; b is worse on both axes")
        XCTAssertEqual(paretoFront(report([variant("only", f1: 0.5, ms: 1, mb: 1)])), ["only"])
    }

    func testSizeFront() {
        // l2-pruned (30 MB, 0.940) is beaten by l3-int8 (20 MB, 0.952).
        XCTAssertEqual(sizeFront(sample), ["l1", "l3-int4", "l3-int8", "l3", "teacher"])
    }
}

final class PickTests: XCTestCase {
    func testPicksTheSmallestWithinEveryLimit() {
        let r = pick(sample, maxDrop: 1.0, maxLatencyMs: 10, maxMB: nil)
        XCTAssertEqual(r.chosen, "l3-int8", r.text)   // 0.8 points, 6 ms, 20 MB; l3 is bigger, the rest drop more
        XCTAssertEqual(r.qualifying, ["l3-int8"])
        XCTAssertTrue(r.found)
        XCTAssertEqual(pick(sample, maxDrop: 3.5, maxLatencyMs: nil, maxMB: nil).chosen, "l3-int4")
        XCTAssertEqual(pick(sample, maxDrop: 10, maxLatencyMs: nil, maxMB: nil).chosen, "l1")
    }

    func testEachLimitFailingAloneIsNamed() {
        let latency = pick(sample, maxDrop: 1.0, maxLatencyMs: 1, maxMB: nil)
        XCTAssertNil(latency.chosen)
        XCTAssertFalse(latency.found)
        XCTAssertEqual(latency.unmet, ["--max-latency-ms 1"])
        XCTAssertTrue(latency.text.contains("no variant meets --max-latency-ms 1"), latency.text)
        XCTAssertEqual(latency.closest, "l3-int8", latency.text)   // 6 ms within 1 point beats l1's 2.5 ms at 6 points
        let size = pick(sample, maxDrop: 1.0, maxLatencyMs: nil, maxMB: 5)
        XCTAssertEqual(size.unmet, ["--max-mb 5"])
        XCTAssertTrue(size.text.contains("no variant meets --max-mb 5"), size.text)
        // The teacher always meets the drop limit (0 points), so the drop fails only in
        // combination: here every variant fast enough drops too much.
        let drop = pick(sample, maxDrop: 0.1, maxLatencyMs: 10, maxMB: nil)
        XCTAssertNil(drop.chosen)
        XCTAssertEqual(drop.unmet, [])
        XCTAssertTrue(drop.text.contains("together"), drop.text)
        XCTAssertTrue(drop.text.contains("drops"), drop.text)
        let both = pick(sample, maxDrop: 1.0, maxLatencyMs: 1, maxMB: 5)
        XCTAssertEqual(both.unmet, ["--max-latency-ms 1", "--max-mb 5"])
        XCTAssertTrue(both.text.contains("--max-latency-ms 1 or --max-mb 5"), both.text)
    }

    func testDropLimitFailingAloneWithoutATeacher() {
        // Without a teacher the best macro-F1 is the reference, so the best always qualifies on the drop.
        let r = report([variant("a", f1: 0.9, ms: 5, mb: 10), variant("b", f1: 0.8, ms: 1, mb: 1)])
        XCTAssertNil(r.teacher)
        let p = pick(r, maxDrop: 1, maxLatencyMs: 2, maxMB: nil)
        XCTAssertNil(p.chosen)
        XCTAssertTrue(p.reference.contains("best macro-F1"), p.reference)
        XCTAssertEqual(p.unmet, [])
        XCTAssertEqual(pick(r, maxDrop: 20, maxLatencyMs: 2, maxMB: nil).chosen, "b")
    }
}

final class CSVTests: XCTestCase {
    func testCellsAreQuotedOnlyWhenNeeded() {
        XCTAssertEqual(csvCell("plain"), "plain")
        XCTAssertEqual(csvCell("a,b"), "\"a,b\"")
        XCTAssertEqual(csvCell("say \"hi\""), "\"say \"\"hi\"\"\"")
        XCTAssertEqual(csvCell("two\nlines"), "\"two\nlines\"")
        XCTAssertEqual(csvCell("crlf\r\nend"), "\"crlf\r\nend\"", "CR LF is one Character in Swift and must still be seen")
        XCTAssertEqual(csvCell(""), "")
    }

    func testTableHasOneRowPerVariantAndEscapesNotes() {
        var variants = sample.variants
        variants[2].spec.note = "int8, \"dynamic\""
        let csv = csvTable(report(variants))
        let lines = csv.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        XCTAssertEqual(lines.count, 1 + variants.count)
        XCTAssertTrue(lines[0].hasPrefix("variant,kind,parent,note,path,parameters,file_bytes"))
        XCTAssertTrue(lines[1].hasPrefix("teacher,teacher,"), "teacher first")
        XCTAssertTrue(csv.contains("\"int8, \"\"dynamic\"\"\""), csv)
        let columns = lines[0].split(separator: ",").count
        XCTAssertEqual(lines[1].split(separator: ",", omittingEmptySubsequences: false).count, columns)
    }
}
