// WeightMatrix: how a Linear layer's weight is stored, behind one `apply`.
//
// The forward never looks at a weight's storage: it asks its `WeightMatrix` for
// y = bias + x · Wᵀ. Today there are two fp32 forms: a view of the parameter block,
// packed into the GEMM's panel layout on every call (training, where the weights change
// every step), and a copy packed once (inference, and the frozen teacher of a
// distillation). Quantized weights (int8, int4, bf16: `QuantizedMatrix`, built by
// `BertModel.quantizedMatrices`) are the third case; the layers never see the difference. Left out on purpose: transposed weights (every layer is [out, in], PyTorch's
// layout).
import DistilleryTensor

/// The weight of one Linear layer, [out, in] in PyTorch's layout, in some storage.
public enum WeightMatrix: Sendable {
    /// Row-major fp32 at `offset` in the parameter block the forward runs on, packed per call.
    case parameterBlock(offset: Int, outFeatures: Int, inFeatures: Int)
    /// fp32 packed once into the 16-column micro-panels of the CKernels GEMM.
    case packedFloat32(PackedMatrix)
    /// int8, int4 or bf16, packed once for the CKernels quantized GEMMs.
    case quantized(QuantizedMatrix)

    /// Output features.
    public var outFeatures: Int {
        switch self {
        case .parameterBlock(_, let out, _): return out
        case .packedFloat32(let p): return p.outFeatures
        case .quantized(let q): return q.outFeatures
        }
    }

    /// Input features.
    public var inFeatures: Int {
        switch self {
        case .parameterBlock(_, _, let n): return n
        case .packedFloat32(let p): return p.inFeatures
        case .quantized(let q): return q.inFeatures
        }
    }

    /// y[rows, out] = bias + x[rows, in] · Wᵀ (bias may be nil), rows of x `lda` floats
    /// apart and of y `ldc`; `block` is the first float of the parameter block (read by
    /// `.parameterBlock`). With `gelu`, y = GELU(bias + x · Wᵀ) (exact erf), the same bits as
    /// a separate `geluForward` pass; packed fp32 weights fuse it into the GEMM's store.
    /// Threads: `Compute.threads`, results independent of their number.
    @inline(__always)
    public func apply(rows: Int, x: UnsafePointer<Float>, lda: Int, y: UnsafeMutablePointer<Float>, ldc: Int,
                      bias: UnsafePointer<Float>?, block: UnsafePointer<Float>, gelu: Bool = false) {
        switch self {
        case .parameterBlock(let offset, let out, let n):
            PackedGemm.multiply(transA: false, transB: true, m: rows, n: out, k: n, a: x, lda: lda,
                                b: block + offset, ldb: n, c: y, ldc: ldc, accumulate: false, bias: bias)
        case .packedFloat32(let p):
            let fused = gelu && bias != nil
            p.multiply(rows: rows, x: x, lda: lda, y: y, ldc: ldc, accumulate: false, bias: bias, gelu: fused)
            if fused { return }
        case .quantized(let q):
            q.multiply(rows: rows, x: x, lda: lda, y: y, ldc: ldc, bias: bias)
        }
        guard gelu else { return }
        if ldc == outFeatures { geluForward(y: y, x: y, count: rows * ldc) }
        else { for r in 0..<rows { geluForward(y: y + r * ldc, x: y + r * ldc, count: outFeatures) } }
    }
}

/// The Linear weights of a whole model, layer by layer, in one storage choice.
public struct ModelMatrices: Sendable {
    /// Per layer: query, key and value as one [3·A, H] matrix (rows stacked) or as three [A, H].
    public var qkv: [[WeightMatrix]]
    /// Per layer, for a fused `qkv`: its [3·A] bias (the three biases stacked); unused otherwise.
    public var qkvBias: [FloatBuffer?]
    /// Per layer: attention output [H, A], FFN input [F, H], FFN output [H, F].
    public var attentionOutput: [WeightMatrix], ffnIn: [WeightMatrix], ffnOut: [WeightMatrix]
    /// The pooler [H, H] and classifier [labels, H], when the model has them.
    public var pooler: WeightMatrix?, classifier: WeightMatrix?
    /// The word and position embedding tables in quantized storage, read row by row by the
    /// forward (nil: it reads the parameter block's fp32 rows).
    public var wordEmbeddings: QuantizedTensor? = nil, positionEmbeddings: QuantizedTensor? = nil
}
