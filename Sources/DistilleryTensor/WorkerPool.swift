// WorkerPool: the threads behind `Compute.parallelRanges`, kept awake between calls.
//
// `DispatchQueue.concurrentPerform` wakes its threads on every call: on Zen 2 a call of
// two 19 µs chunks took 28 µs, the second thread starting ~9 µs late, and a MiniLM
// forward at batch 1 makes some fifty calls. Like ONNX Runtime's pool, these workers spin
// (x86 `pause`) for a short while after each call before they sleep on a condition
// variable, and the calling thread runs chunks too. Which thread runs a chunk never
// changes what it computes: results depend on the chunk boundaries only, as before.
//
// One call at a time: a call made while another is in flight (from inside a chunk, or
// from a second thread) runs its chunks on its own thread, one after another.
//
// The shared word `state` holds the call's generation (high bits), its chunk count
// and the next chunk to hand out (16 bits each); a worker claims a chunk by compare-and-
// swap, so a worker that wakes late can never take a chunk of a later call by mistake.
import CKernels
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool()

    /// Largest chunk count of one call (16 bits of `state`).
    static let maxChunks = 0xFFFF
    /// How long an idle worker, or a caller waiting for the last chunk, spins before it
    /// sleeps: longer than the serial stretches between the parallel layers of a forward.
    private static let spinNanoseconds: UInt64 = 100_000
    /// Threads that run chunks at most, the caller included: more chunks than cores
    /// (`--threads 8` on 2) are claimed in turn by as many threads as there are cores, as
    /// concurrentPerform did; eight threads time-slicing two cores took 24.4 ms for a
    /// forward it ran in 20.7.
    private let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)

    private let state = Atomic<Int>(0)
    private let finished = Atomic<Int>(0)
    private let sleepingWorkers = Atomic<Int>(0)
    private let callerSleeping = Atomic<Bool>(false)
    /// The running call's body; written only while no chunk is in flight.
    private var job: ((Int) -> Void)?
    private var workers = 0
    private let callLock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let sleepLock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let workPosted = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let callDone = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    private init() {
        pthread_mutex_init(callLock, nil)
        pthread_mutex_init(sleepLock, nil)
        pthread_cond_init(workPosted, nil)
        pthread_cond_init(callDone, nil)
    }

    /// Runs `body(0)` … `body(chunks - 1)`, each once, on this thread and the workers;
    /// returns when all have returned. More chunks than `state` can count (a library
    /// caller's thread count past 65535) run on this thread, like a nested call.
    func run(chunks: Int, _ body: (Int) -> Void) {
        precondition(chunks >= 0, "WorkerPool: \(chunks) chunks")
        guard chunks > 1, chunks <= WorkerPool.maxChunks, pthread_mutex_trylock(callLock) == 0 else {
            for i in 0..<chunks { body(i) }
            return
        }
        defer { pthread_mutex_unlock(callLock) }
        startWorkers(upTo: min(chunks, cores) - 1)
        withoutActuallyEscaping(body) { body in
            job = body
            finished.store(0, ordering: .relaxed)
            // 31 bits, wrapping: the word stays non-negative, so `>> 32` reads it back.
            let generation = ((state.load(ordering: .relaxed) >> 32) + 1) & 0x7FFF_FFFF
            state.store(generation << 32 | chunks << 16, ordering: .sequentiallyConsistent)
            if sleepingWorkers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(sleepLock)
                pthread_cond_broadcast(workPosted)
                pthread_mutex_unlock(sleepLock)
            }
            work(generation: generation)
            waitForChunks(chunks)
            job = nil
        }
    }

    /// Claims and runs chunks of call `generation` until none is left.
    private func work(generation: Int) {
        var s = state.load(ordering: .acquiring)
        while s >> 32 == generation {
            let count = (s >> 16) & 0xFFFF, next = s & 0xFFFF
            if next >= count { return }
            let (claimed, current) = state.compareExchange(expected: s, desired: s + 1, ordering: .acquiringAndReleasing)
            guard claimed else { s = current; continue }
            runChunk(next)
            if finished.add(1, ordering: .sequentiallyConsistent).newValue == count,
               callerSleeping.load(ordering: .sequentiallyConsistent) {
                pthread_mutex_lock(sleepLock)
                pthread_cond_broadcast(callDone)
                pthread_mutex_unlock(sleepLock)
            }
            s = state.load(ordering: .acquiring)
        }
    }

    /// One chunk, in its own frame: the worker's reference to the body is gone when it
    /// returns, before the chunk is counted as finished.
    @inline(never)
    private func runChunk(_ i: Int) {
        job.unsafelyUnwrapped(i)
    }

    private func waitForChunks(_ chunks: Int) {
        let start = now()
        while finished.load(ordering: .acquiring) < chunks {
            if now() - start < WorkerPool.spinNanoseconds { dk_cpu_pause(); continue }
            pthread_mutex_lock(sleepLock)
            callerSleeping.store(true, ordering: .sequentiallyConsistent)
            while finished.load(ordering: .sequentiallyConsistent) < chunks { pthread_cond_wait(callDone, sleepLock) }
            callerSleeping.store(false, ordering: .sequentiallyConsistent)
            pthread_mutex_unlock(sleepLock)
        }
    }

    private func startWorkers(upTo count: Int) {
        while workers < count {
            workers += 1
            let thread = Thread { [self] in workerLoop() }
            thread.name = "distillery-worker-\(workers)"
            thread.start()
        }
    }

    private func workerLoop() {
        var seen = 0
        while true {
            var start = now()
            while state.load(ordering: .acquiring) >> 32 == seen {
                if now() - start < WorkerPool.spinNanoseconds {
                    for _ in 0..<8 { dk_cpu_pause() }
                    continue
                }
                pthread_mutex_lock(sleepLock)
                sleepingWorkers.add(1, ordering: .sequentiallyConsistent)
                while state.load(ordering: .sequentiallyConsistent) >> 32 == seen { pthread_cond_wait(workPosted, sleepLock) }
                sleepingWorkers.subtract(1, ordering: .sequentiallyConsistent)
                pthread_mutex_unlock(sleepLock)
                start = now()
            }
            seen = state.load(ordering: .acquiring) >> 32
            work(generation: seen)
        }
    }

    private func now() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return UInt64(t.tv_sec) &* 1_000_000_000 &+ UInt64(t.tv_nsec)
    }
}
