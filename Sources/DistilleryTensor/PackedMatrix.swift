// PackedMatrix: a Linear-layer weight packed once for the AVX2 GEMM of CKernels.
//
// The weight W [out, in] (PyTorch layout) is repacked at load time into the 16-column
// micro-panels `dk_gemm_packed` reads (see CKernels/include/dk_gemm.h), so a forward pass
// only packs its activations. The packed floats live in a 64-byte aligned allocation owned
// by a final class (a Swift array only guarantees 16 bytes, and a 64-byte row of a panel
// would then straddle two cache lines). `multiply` splits the work over
// `Compute.threads` workers with `Compute.parallelRanges`: whole 16-column panels of the
// output when its rows fit one GEMM M block, whole 6-row panels when there are more
// (`Compute.gemmSplit`). Either way every
// output element is computed by the same sequence of operations, so results are bitwise
// identical for any thread count. Left out on purpose: alpha/beta scaling, transposed
// activations, and quantized weights (those will be further formats beside this one).
import CKernels

/// A weight matrix `[out, in]` packed for `y = x · Wᵀ (+ y)` with the CKernels GEMM.
public struct PackedMatrix: Sendable {
    /// Output features (rows of the original weight).
    public let outFeatures: Int
    /// Input features (columns of the original weight).
    public let inFeatures: Int
    private let storage: PackedStorage

    /// Packs a 2-D weight `[out, in]` (row-major, PyTorch layout).
    public init(_ weight: Tensor) {
        precondition(weight.shape.count == 2 && weight.shape[0] > 0 && weight.shape[1] > 0,
                     "PackedMatrix: expected a non-empty 2-D weight [out, in], got \(weight.shapeDescription)")
        self = weight.data.withUnsafeBufferPointer { w in
            PackedMatrix(rows: weight.shape[0], columns: weight.shape[1], rowMajor: w.baseAddress!)
        }
    }

    /// Packs `rows` × `columns` floats read row-major from `rowMajor` (a weight [out, in]).
    public init(rows: Int, columns: Int, rowMajor: UnsafePointer<Float>) {
        precondition(rows > 0 && columns > 0, "PackedMatrix: expected a non-empty weight, got \(rows)×\(columns)")
        outFeatures = rows
        inFeatures = columns
        storage = PackedStorage(count: dk_packed_floats(rows, columns))
        dk_pack_weight(rowMajor, rows, columns, storage.pointer)
    }

    /// y[M, out] = x[M, in] · Wᵀ, y += x · Wᵀ when `accumulate`, or y = bias + x · Wᵀ
    /// when a `bias` [out] is given (bit for bit a y pre-filled with the bias, accumulated).
    ///
    /// `x` holds `rows` rows of `lda` ≥ `inFeatures` floats, `y` rows of `ldc` ≥
    /// `outFeatures` floats; only the first `outFeatures` columns of each `y` row are
    /// written. With `gelu` (and a bias, no accumulation), y = GELU(bias + x · Wᵀ), bit for
    /// bit the separate GELU pass, fused into the GEMM's store where the CPU path has it.
    /// Runs on `Compute.threads` workers; results do not depend on their number.
    public func multiply(rows: Int, x: UnsafePointer<Float>, lda: Int,
                         y: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool,
                         bias: UnsafePointer<Float>? = nil, gelu: Bool = false) {
        precondition(rows >= 0 && lda >= inFeatures && ldc >= outFeatures,
                     "PackedMatrix.multiply: rows \(rows), lda \(lda), ldc \(ldc) for a [\(outFeatures), \(inFeatures)] weight (need lda >= in, ldc >= out)")
        precondition(bias == nil || !accumulate, "PackedMatrix.multiply: a bias replaces accumulation, not both")
        precondition(!gelu || bias != nil, "PackedMatrix.multiply: the fused GELU needs a bias")
        guard rows > 0 else { return }
        let (n, k, packed) = (outFeatures, inFeatures, UnsafePointer(storage.pointer))
        Compute.splitProduct(rows: rows, columns: n) { r, c in
            Self.run(r.count, c.count, k, x + r.lowerBound * lda, lda, packed + c.lowerBound * k,
                     bias.map { $0 + c.lowerBound }, y + r.lowerBound * ldc + c.lowerBound, ldc, accumulate, gelu)
        }
    }

    /// One single-threaded dk_gemm_packed call with this thread's reusable workspace.
    private static func run(_ m: Int, _ n: Int, _ k: Int, _ x: UnsafePointer<Float>, _ lda: Int,
                            _ packed: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                            _ y: UnsafeMutablePointer<Float>, _ ldc: Int, _ accumulate: Bool, _ gelu: Bool) {
        let floats = dk_gemm_workspace_floats(m, k)
        guard let workspace = dk_gemm_thread_workspace(floats) else {
            fatalError("PackedMatrix.multiply: could not allocate a \(floats)-float GEMM workspace")
        }
        if let bias, gelu { dk_gemm_packed_bias_gelu(m, n, k, x, lda, packed, bias, y, ldc, workspace) }
        else if let bias { dk_gemm_packed_bias(m, n, k, x, lda, packed, bias, y, ldc, workspace) }
        else { dk_gemm_packed(m, n, k, x, lda, packed, y, ldc, accumulate ? 1 : 0, workspace) }
    }
}

/// The packed floats, 64-byte aligned, immutable after packing (hence Sendable).
private final class PackedStorage: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>

    init(count: Int) {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride,
                                                   alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }
}
