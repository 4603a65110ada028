// The parameter block built from named tensors: every element written once, and entries
// whose weights are stored elsewhere (an inference load's quantized weights) reading as
// zeros without their whole pages becoming resident, whether the allocation is fresh or
// recycled heap memory.
import DistilleryModel
import DistilleryTensor
import Foundation
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class ParameterBlockTests: XCTestCase {
    private let page = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// How many of the whole pages inside `range` (floats of `storage`) are resident.
    private func residentPages(_ storage: [Float], _ range: Range<Int>) -> (resident: Int, pages: Int) {
        storage.withUnsafeBufferPointer { p in
            let start = UInt(bitPattern: p.baseAddress! + range.lowerBound), end = UInt(bitPattern: p.baseAddress! + range.upperBound)
            let first = (start + UInt(page) - 1) / UInt(page) * UInt(page), last = end / UInt(page) * UInt(page)
            guard last > first else { return (0, 0) }
            let pages = Int(last - first) / page
            var status = [UInt8](repeating: 0, count: pages)
            XCTAssertEqual(mincore(UnsafeMutableRawPointer(bitPattern: first), Int(last - first), &status), 0)
            return (status.filter { $0 & 1 != 0 }.count, pages)
        }
    }

    /// The kernel's transparent-huge-page mode, e.g. "[always] madvise never" (for messages).
    private var transparentHugePages: String {
        ((try? String(contentsOfFile: "/sys/kernel/mm/transparent_hugepage/enabled", encoding: .utf8)) ?? "unknown")
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func layout(bigCount: Int) -> ParameterLayout {
        ParameterLayout([("a", [3]), ("big", [bigCount]), ("b", [5, 7]), ("tail", [1])])
    }

    private func tensors(bigCount: Int, withBig: Bool) -> [String: Tensor] {
        var t: [String: Tensor] = ["a": Tensor(shape: [3], data: [1, 2, 3]),
                                   "b": Tensor(shape: [5, 7], data: (0..<35).map { Float($0) + 0.5 }),
                                   "tail": Tensor(shape: [1], data: [-4])]
        if withBig { t["big"] = Tensor(shape: [bigCount], data: (0..<bigCount).map { Float($0 % 97) + 1 }) }
        return t
    }

    func testEntriesStoredElsewhereReadAsZerosAndStayOutOfMemory() throws {
        // 4 MiB: a fresh mapping from the allocator; 24 KiB: heap memory, recycled below.
        for bigCount in [1 << 20, 6 * 1024 + 3] {
            do {   // non-zero garbage freed where the block may be allocated next
                let garbage = [Float](repeating: 7, count: bigCount + 64)
                XCTAssertEqual(garbage.last, 7)
            }
            let l = layout(bigCount: bigCount)
            let block = try ParameterBlock(layout: l, consuming: tensors(bigCount: bigCount, withBig: false), storedElsewhere: ["big"])
            let full = try ParameterBlock(layout: l, tensors: tensors(bigCount: bigCount, withBig: true))
            for name in ["a", "b", "tail"] { XCTAssertEqual(block.tensor(name), full.tensor(name), name) }
            let big = l.entry("big")!.range
            let (resident, pages) = residentPages(block.storage, big)
            XCTAssertGreaterThan(pages, 3, "bigCount \(bigCount)")
            // Also where transparent huge pages are 'always': the range is marked MADV_NOHUGEPAGE,
            // so a write beside it cannot fault a 2 MB page in over it.
            XCTAssertEqual(resident, 0, "\(resident) of \(pages) pages under 'big' are resident (bigCount \(bigCount), THP \(transparentHugePages))")
            XCTAssertTrue(block.storage[big].allSatisfy { $0 == 0 }, "bigCount \(bigCount)")
            XCTAssertEqual(residentPages(full.storage, big).resident, residentPages(full.storage, big).pages)
        }
    }

    /// A block filled from a `TensorSource` equals the one filled from the same tensors, reads
    /// each tensor once (none that is stored elsewhere), and passes the source's error on.
    func testASourceFillsTheSameBlockReadingEachTensorOnce() throws {
        struct Refused: Error {}
        let l = layout(bigCount: 4099)
        for withBig in [true, false] {
            let named = tensors(bigCount: 4099, withBig: withBig)
            var reads: [String] = []
            let source = TensorSource(shapes: named.mapValues(\.shape)) { name, destination in
                reads.append(name)
                _ = destination.initialize(fromContentsOf: named[name]!.data)
            }
            let stored: Set<String> = withBig ? [] : ["big"]
            let block = try ParameterBlock(layout: l, source: source, storedElsewhere: stored)
            XCTAssertEqual(block, try ParameterBlock(layout: l, consuming: named, storedElsewhere: stored))
            XCTAssertEqual(reads.sorted(), named.keys.sorted())
        }
        let failing = TensorSource(shapes: tensors(bigCount: 4099, withBig: true).mapValues(\.shape)) { name, destination in
            if name == "b" { throw Refused() }
            destination.update(repeating: 1)
        }
        XCTAssertThrowsError(try ParameterBlock(layout: l, source: failing)) { XCTAssertTrue($0 is Refused, "\($0)") }
        let misshapen = TensorSource(shapes: ["a": [3], "big": [4099], "b": [7, 5], "tail": [1]]) { _, _ in XCTFail("read before the shapes were checked") }
        XCTAssertThrowsError(try ParameterBlock(layout: l, source: misshapen)) { XCTAssertTrue("\($0)".contains("'b'"), "\($0)") }
        let drained = TensorSource.draining(tensors(bigCount: 4099, withBig: true))
        XCTAssertEqual(try ParameterBlock(layout: l, source: drained), try ParameterBlock(layout: l, tensors: tensors(bigCount: 4099, withBig: true)))
    }

    /// The VmFlags of the mapping holding `address` (/proc/self/smaps), nil where there is none.
    private func mappingFlags(_ address: UInt) -> [String]? {
        // Read to the end: /proc files report size 0, which whole-file readers may trust.
        guard let handle = FileHandle(forReadingAtPath: "/proc/self/smaps"),
              let smaps = String(data: handle.readDataToEndOfFile(), encoding: .utf8) else { return nil }
        var inside = false
        for line in smaps.split(separator: "\n") {
            if let dash = line.firstIndex(of: "-"), let space = line.firstIndex(of: " "), dash < space,
               let lo = UInt(line[..<dash], radix: 16), let hi = UInt(line[line.index(after: dash)..<space], radix: 16) {
                inside = lo <= address && address < hi
            } else if inside, line.hasPrefix("VmFlags:") {
                return line.dropFirst("VmFlags:".count).split(separator: " ").map(String.init)
            }
        }
        return nil
    }

    /// A released range is marked MADV_NOHUGEPAGE: where transparent huge pages are 'always',
    /// a write to a small entry between two released ones would otherwise fault a 2 MB page
    /// in over them (int8 MiniLM: 74.5 -> 78.6 MB peak with THP 'always', measured).
    func testReleasedRangesTakeNoHugePages() throws {
        guard FileManager.default.fileExists(atPath: "/sys/kernel/mm/transparent_hugepage/enabled") else {
            throw XCTSkip("this kernel has no transparent huge pages: nothing to mark")
        }
        let l = ParameterLayout([("a", [3]), ("big", [1 << 20]), ("mid", [5]), ("big2", [1 << 20]), ("tail", [1])])
        let named: [String: Tensor] = ["a": Tensor(zeros: [3]), "mid": Tensor(shape: [5], data: [1, 2, 3, 4, 5]), "tail": Tensor(zeros: [1])]
        let block = try ParameterBlock(layout: l, consuming: named, storedElsewhere: ["big", "big2"])
        XCTAssertEqual(block.tensor("mid").data, [1, 2, 3, 4, 5])
        for name in ["big", "big2"] {
            let range = l.entry(name)!.range
            let inside = block.storage.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress! + range.lowerBound) + UInt(page) }
            guard let flags = mappingFlags(inside) else { throw XCTSkip("no /proc/self/smaps here") }
            XCTAssertTrue(flags.contains("nh"), "'\(name)': VmFlags \(flags) (THP \(transparentHugePages))")
            XCTAssertEqual(residentPages(block.storage, range).resident, 0, "'\(name)'")
        }
    }

    func testOnlyNamedEntriesMayBeMissing() throws {
        let l = layout(bigCount: 10)
        var t = tensors(bigCount: 10, withBig: false)
        XCTAssertThrowsError(try ParameterBlock(layout: l, consuming: t)) { XCTAssertTrue("\($0)".contains("big"), "\($0)") }
        t["a"] = nil
        XCTAssertThrowsError(try ParameterBlock(layout: l, consuming: t, storedElsewhere: ["big"])) {
            XCTAssertTrue("\($0)".contains("'a'"), "\($0)")
        }
        t = tensors(bigCount: 10, withBig: true)
        t["extra"] = Tensor(shape: [1], data: [0])
        XCTAssertThrowsError(try ParameterBlock(layout: l, consuming: t)) { XCTAssertTrue("\($0)".contains("extra"), "\($0)") }
    }
}
