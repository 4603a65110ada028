// Compute.parallelRanges on its worker pool: every index runs exactly once, at the same
// chunk boundaries, however calls follow each other (back to back, after the workers
// fell asleep, nested inside a chunk, from two threads at once).
import DistilleryTensor
import Foundation
import XCTest

final class WorkerPoolTests: XCTestCase {
    private var savedThreads = 1
    override func setUp() { savedThreads = Compute.threads }
    override func tearDown() { Compute.setThreads(savedThreads) }

    /// Runs parallelRanges over `count` and returns how often each index ran and, per
    /// index, the lower bound of the chunk that ran it.
    private static func cover(_ count: Int) -> (runs: [Int], chunkStart: [Int]) {
        var runs = [Int](repeating: 0, count: count), start = [Int](repeating: -1, count: count)
        runs.withUnsafeMutableBufferPointer { r in
            start.withUnsafeMutableBufferPointer { s in
                let shared = UnsafeSendable((r.baseAddress!, s.baseAddress!))
                Compute.parallelRanges(count) { range in
                    for i in range { shared.value.0[i] += 1; shared.value.1[i] = range.lowerBound }
                }
            }
        }
        return (runs, start)
    }

    /// The chunk boundaries parallelRanges documents: `workers` equal shares.
    private static func expectedStarts(_ count: Int, threads: Int) -> [Int] {
        let workers = min(threads, count)
        return (0..<count).map { i in (0..<workers).map { count * $0 / workers }.last { $0 <= i }! }
    }

    func testEveryIndexRunsOnceAtTheDocumentedBoundaries() {
        for threads in [2, 3, 4, 7] {
            Compute.setThreads(threads)
            for call in 0..<3000 {
                let count = call % 41
                let (runs, starts) = Self.cover(count)
                XCTAssertEqual(runs, [Int](repeating: 1, count: count), "threads \(threads), count \(count)")
                XCTAssertEqual(starts, Self.expectedStarts(count, threads: threads), "threads \(threads), count \(count)")
                if runs != [Int](repeating: 1, count: count) { return }
            }
        }
    }

    func testCallsAfterTheWorkersFellAsleepAndChunksThatOutlastTheSpin() {
        Compute.setThreads(2)
        for pause in [0, 300, 2000] {   // µs between calls; the workers spin for 100
            usleep(useconds_t(pause))
            XCTAssertEqual(Self.cover(64).runs, [Int](repeating: 1, count: 64), "after \(pause) µs")
        }
        // A chunk of 3 ms: the caller stops spinning and sleeps until the last one ends.
        let done = UnsafeMutablePointer<Int>.allocate(capacity: 2)
        defer { done.deallocate() }
        done.initialize(repeating: 0, count: 2)
        let shared = UnsafeSendable(done)
        Compute.parallelRanges(2) { r in
            if r.lowerBound == 1 { usleep(3000) }
            shared.value[r.lowerBound] = 1
        }
        XCTAssertEqual([done[0], done[1]], [1, 1])
    }

    func testMoreChunksThanThePoolCountsRunOnTheCallingThread() {
        // 70 000 threads (a library caller; kd allows 64): one index per chunk, more chunks
        // than the pool's 16-bit count, so they run in turn on this thread.
        Compute.setThreads(70_000)
        let (runs, starts) = Self.cover(70_000)
        XCTAssertEqual(runs, [Int](repeating: 1, count: 70_000))
        XCTAssertEqual(starts, Array(0..<70_000))
    }

    func testANestedCallRunsOnItsThreadAndEveryIndexStillRunsOnce() {
        Compute.setThreads(3)
        let outer = 6, inner = 50
        var runs = [Int](repeating: 0, count: outer * inner)
        runs.withUnsafeMutableBufferPointer { r in
            let shared = UnsafeSendable(r.baseAddress!)
            Compute.parallelRanges(outer) { o in
                for i in o {
                    Compute.parallelRanges(inner) { range in
                        for j in range { shared.value[i * inner + j] += 1 }
                    }
                }
            }
        }
        XCTAssertEqual(runs, [Int](repeating: 1, count: outer * inner))
    }

    func testCallsFromTwoThreadsAtOnce() {
        Compute.setThreads(2)
        let group = DispatchGroup()
        let failures = UnsafeMutablePointer<Int>.allocate(capacity: 2)
        defer { failures.deallocate() }
        failures.initialize(repeating: 0, count: 2)
        let shared = UnsafeSendable(failures)
        for t in 0..<2 {
            let thread = Thread {
                for call in 0..<500 where Self.cover(1 + call % 30).runs != [Int](repeating: 1, count: 1 + call % 30) {
                    shared.value[t] += 1
                }
                group.leave()
            }
            group.enter()
            thread.start()
        }
        XCTAssertEqual(group.wait(timeout: .now() + 60), .success, "both threads finished")
        XCTAssertEqual([failures[0], failures[1]], [0, 0])
    }
}
