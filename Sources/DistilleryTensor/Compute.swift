// Compute: matrix products through OpenBLAS and the one thread-count knob.
//
// Distillery runs one parallel layer at a time: a BLAS GEMM uses OpenBLAS's own threads;
// our kernels (packed GEMMs included) split rows over `Compute.threads` workers: the
// calling thread and a pool kept awake between calls (WorkerPool.swift). No BLAS call is
// ever made from inside a parallel region, so the two never oversubscribe the cores.
// Results depend only on the thread count. BLAS remains for tests and the odd small
// product; the hot paths run on `PackedMatrix` and `PackedGemm`.
import CBLAS
import CKernels

/// Process-wide compute settings: thread count for BLAS and the row-parallel kernels.
public enum Compute {
    nonisolated(unsafe) private static var threadCount = 1

    /// Number of worker threads used by GEMM and the row-parallel kernels.
    public static var threads: Int { threadCount }

    /// Sets the worker thread count (clamped to at least 1) for BLAS and our kernels.
    public static func setThreads(_ n: Int) {
        threadCount = max(1, n)
        openblas_set_num_threads(Int32(threadCount))
    }

    /// Runs `body` over `0..<count` split into contiguous chunks, one per worker thread.
    /// Chunk boundaries depend only on `count` and the thread count, so results are
    /// deterministic for a given thread count.
    public static func parallelRanges(_ count: Int, _ body: (Range<Int>) -> Void) {
        let workers = min(threadCount, count)
        if workers <= 1 {
            if count > 0 { body(0..<count) }
            return
        }
        WorkerPool.shared.run(chunks: workers) { w in
            let lo = count * w / workers, hi = count * (w + 1) / workers
            if lo < hi { body(lo..<hi) }
        }
    }
}

/// How the outputs of one matrix product are shared among the workers.
public enum GemmSplit: Equatable {
    /// One worker: one thread, or too little work to share.
    case none
    /// Runs of whole 6-row panels; each worker packs only its own rows of A.
    case rowPanels(Int)
    /// Runs of whole 16-column panels; each worker reads only its own part of the weight.
    case columnPanels(Int)
}

extension Compute {
    /// The split of a product with `rows` × `columns` outputs over `workers`. Columns
    /// when the rows fit one M block of the GEMM (`DK_GEMM_M_BLOCK`): a row split would
    /// then stream the whole weight through every worker, a column split streams each
    /// part once. Otherwise rows, given at least 4 panels per worker (the column split
    /// packs all of A on every worker); columns when the rows are too few for that.
    /// Measured on Zen 2, 2 threads, MiniLM: the column split takes 3–8% less time per
    /// forward at 32–128 rows than the row split (2026-12-02-quantization-zen2.md in
    /// benchmarks/results); on Zen 3 the two were within noise at 128 rows.
    public static func gemmSplit(rows: Int, columns: Int, workers: Int = threads) -> GemmSplit {
        let rowPanels = (rows + 5) / 6, colPanels = (columns + Int(DK_GEMM_PANEL) - 1) / Int(DK_GEMM_PANEL)
        if workers <= 1 { return .none }
        if rows <= Int(DK_GEMM_M_BLOCK) && colPanels >= workers { return .columnPanels(colPanels) }
        if rowPanels >= workers * 4 { return .rowPanels(rowPanels) }
        return colPanels >= workers ? .columnPanels(colPanels) : .none
    }
}

extension Compute {
    /// Runs `body(rows, columns)` over the parts of a product that `gemmSplit` gives: the
    /// whole on the calling thread, or one run of 6-row or 16-column panels per worker.
    public static func splitProduct(rows: Int, columns: Int, _ body: (Range<Int>, Range<Int>) -> Void) {
        switch gemmSplit(rows: rows, columns: columns) {
        case .none:
            body(0..<rows, 0..<columns)
        case .rowPanels(let panels):
            parallelRanges(panels) { p in body(p.lowerBound * 6..<min(rows, p.upperBound * 6), 0..<columns) }
        case .columnPanels(let panels):
            parallelRanges(panels) { p in body(0..<rows, p.lowerBound * 16..<min(columns, p.upperBound * 16)) }
        }
    }
}

extension Compute {
    /// `parallelRanges` over `0..<count` with chunk boundaries at multiples of `granularity`
    /// (element-wise kernels: a vector body never meets a tail in mid-array).
    public static func parallelRanges(_ count: Int, granularity: Int, _ body: (Range<Int>) -> Void) {
        let chunks = (count + granularity - 1) / granularity
        parallelRanges(chunks) { r in
            let lo = r.lowerBound * granularity, hi = min(count, r.upperBound * granularity)
            if lo < hi { body(lo..<hi) }
        }
    }
}

/// Wraps a value the caller promises is safe to share across the workers of one
/// `parallelRanges` call (raw buffers written at disjoint rows, read-only closures).
public struct UnsafeSendable<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}

/// C[M, N] = A[M, K] · B[N, K]ᵀ (+ C when `accumulate`), all row-major with leading
/// dimensions `lda`, `ldb`, `ldc`. This is `x · Wᵀ` for a PyTorch-layout weight W [out, in].
@inline(__always)
public func gemmABt(m: Int, n: Int, k: Int,
                    a: UnsafePointer<Float>, lda: Int,
                    b: UnsafePointer<Float>, ldb: Int,
                    c: UnsafeMutablePointer<Float>, ldc: Int,
                    accumulate: Bool = false) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k),
                1, a, Int32(lda), b, Int32(ldb), accumulate ? 1 : 0, c, Int32(ldc))
}

/// C[M, N] = op(A) · op(B) (+ beta·C) with explicit transposes, row-major.
public func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                 a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                 beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}
