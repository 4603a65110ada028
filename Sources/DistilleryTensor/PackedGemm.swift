// PackedGemm: BLAS-like C = op(A) · op(B) on the packed AVX2 GEMM of CKernels, for training.
//
// Training multiplies activations by weights that change every step and by other
// activations (dW += dYᵀ·X), so nothing can be packed once at load as PackedMatrix does.
// Here op(B) is packed per call into the packed-weight panel format (a contiguous
// transposed pack when op(B) = B, a strided pack when op(B) = Bᵀ), then `dk_gemm_packed`
// or its transposed-A twin runs. `multiply` packs once on the caller's threads (panels in
// parallel) into the calling thread's reusable buffer and splits whole 6-row panels of C
// over `Compute.threads` workers, or whole 16-column panels when C has few rows
// (`Compute.gemmSplit`); `single`
// runs one product on the calling thread (inside a parallel job, e.g. one attention head).
// Every C element is the same operations whatever the split (see dk_gemm.h), so results
// are bitwise identical for any thread count. Left out on purpose: alpha/beta (callers
// pre-fill C and accumulate), mixed precision.
import CKernels

/// Matrix products on the packed AVX2 GEMM with transposes, BLAS-style but row-major.
public enum PackedGemm {
    /// C[m, n] = op(A) · op(B), or C += op(A) · op(B) when `accumulate`, on `Compute.threads`.
    ///
    /// op(A) is A [m, k] (rows `lda` apart) or, with `transA`, Aᵀ of an A stored [k, m];
    /// op(B) is B [k, n] or, with `transB`, Bᵀ of a B stored [n, k]. Must not be called from
    /// inside a parallel region (use `single` there). Bitwise the same for any thread count.
    /// With a `bias` [n] (and `transA` false), C = bias + op(A) · op(B), bit for bit a C
    /// pre-filled with the bias and accumulated.
    public static func multiply(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                                a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                                c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool,
                                bias: UnsafePointer<Float>? = nil) {
        guard m > 0, n > 0 else { return }
        precondition(bias == nil || (!accumulate && !transA), "PackedGemm.multiply: a bias needs A untransposed and no accumulation")
        let floats = dk_packed_floats(n, k)
        guard let packed = dk_thread_buffer(DK_SLOT_GEMM_PACKED, floats) else {
            fatalError("PackedGemm.multiply: could not allocate \(floats) floats for the packed operand")
        }
        let colPanels = (n + 15) / 16
        let shared = UnsafeSendable((b, packed))
        // Pack op(B) panel by panel; panels are independent.
        Compute.parallelRanges(colPanels) { panels in
            let (b, packed) = shared.value
            let lo = panels.lowerBound * 16, hi = min(n, panels.upperBound * 16)
            if transB { dk_pack_weight_ld(b + lo * ldb, ldb, hi - lo, k, packed + lo * k) }
            else { dk_pack_weight_transposed(b + lo, ldb, hi - lo, k, packed + lo * k) }
        }
        Compute.splitProduct(rows: m, columns: n) { rs, cs in
            let a = transA ? a + rs.lowerBound : a + rs.lowerBound * lda
            run(transA, rs.count, cs.count, k, a, lda, packed + cs.lowerBound * k, bias.map { $0 + cs.lowerBound },
                c + rs.lowerBound * ldc + cs.lowerBound, ldc, accumulate)
        }
    }

    /// The same product on the calling thread only (for use inside a parallel job).
    @inline(__always)
    public static func single(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                              a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                              c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
        if dk_gemm(transA ? 1 : 0, transB ? 1 : 0, m, n, k, a, lda, b, ldb, c, ldc, accumulate ? 1 : 0) != 0 {
            fatalError("PackedGemm.single: could not allocate the per-thread GEMM buffers for \(m)×\(n)×\(k)")
        }
    }

    /// One single-threaded packed GEMM with this thread's reusable workspace.
    private static func run(_ transA: Bool, _ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<Float>, _ lda: Int,
                            _ packed: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                            _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ accumulate: Bool) {
        let floats = dk_gemm_workspace_floats(m, k)
        guard let workspace = dk_gemm_thread_workspace(floats) else {
            fatalError("PackedGemm: could not allocate a \(floats)-float GEMM workspace")
        }
        if let bias { dk_gemm_packed_bias(m, n, k, a, lda, packed, bias, c, ldc, workspace) }
        else if transA { dk_gemm_packed_at(m, n, k, a, lda, packed, c, ldc, accumulate ? 1 : 0, workspace) }
        else { dk_gemm_packed(m, n, k, a, lda, packed, c, ldc, accumulate ? 1 : 0, workspace) }
    }
}
