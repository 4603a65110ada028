// QuantizedMatrix: a Linear-layer weight in int8, int4 or bf16, packed once for the
// quantized GEMMs of CKernels (dk_quant.h), the counterpart of `PackedMatrix`.
//
// Built from a validated `QuantizedTensor` (the stored form): the kernels' packed panels
// live in a 64-byte aligned allocation owned by a final class; int8 keeps its per-row
// scales beside them. `multiply` computes y = bias + x · Wᵀ with x quantized at run time
// — int8-dynamic: per block of 32 consecutive inputs (dk_q8b, llama.cpp Q8_0 style: an
// outlier channel only coarsens its own block) when the input width is a multiple of 32,
// else per row; int8-static: its fixed scale; int4: per block of 32 for groups of 32
// (dk_q4b: the activation blocks coincide with the weight groups), else per row — or
// rounded to bf16 — or, on the dequantized route (`Route`: int8/int4 on CPUs whose integer
// multiply is no faster than their FMA, bf16 on the AVX2 kernel path), with the
// weights dequantized slice by slice into the fp32 GEMM and x left in fp32; and
// splits the work over `Compute.threads` like `PackedMatrix`: whole 6-row blocks when
// there are enough rows, else 16-column panels. The kernels compute every output the same
// way whatever the split, so results do not depend on the thread count. Left out on
// purpose: accumulation into y (no quantized layer needs it) and the fused GELU epilogue
// (the forward runs GELU as its own pass for every storage).
import CKernels

/// A weight `[out, in]` in a quantized storage, packed for `y = bias + x · Wᵀ`.
public struct QuantizedMatrix: Sendable {
    /// Output features (rows of the weight).
    public let outFeatures: Int
    /// Input features (columns of the weight).
    public let inFeatures: Int
    /// The storage format.
    public let format: QuantizedTensor.Format
    /// int8-static's activation scale (0: dynamic).
    let activationScale: Float
    /// Activation scales per block of 32 inputs: int8 dynamic (dk_q8b packing) and int4
    /// with groups of 32 (dk_q4b, the int4 packing).
    public let blockActivations: Bool
    /// How the product is computed (`Route.default` unless the caller chose).
    public let route: Route
    private let packed: QuantizedStorage
    /// int8: the per-row weight scales; empty otherwise.
    private let rowScales: [Float]

    /// The format's own GEMMs (int8/int4 activations quantized at run time, bf16 ones
    /// rounded), or the weights dequantized slice by slice into the fp32 GEMM (dk_dq,
    /// activations fp32).
    public enum Route: String, Sendable {
        case integer, dequantized

        /// This machine's choice for weight-only int8/int4 (int8-dynamic, int4 without a
        /// static activation scale): `dequantized` where the integer multiply is no faster
        /// than fp32 (dk_quant_dequant_route), else `integer`.
        public static var `default`: Route { dk_quant_dequant_route() != 0 ? .dequantized : .integer }
        /// This machine's choice for bf16: `dequantized` on the AVX2 path, where there is no
        /// vdpbf16ps (dk_bf16_dequant_route), else `integer` (the bf16 kernels).
        public static var bf16: Route { dk_bf16_dequant_route() != 0 ? .dequantized : .integer }
    }

    /// Packs a quantized weight (it must pass `QuantizedTensor.validate`). `route` (default:
    /// this machine's choice for the format) applies to bf16 and to int8 and int4 weights
    /// without a static activation scale; int8-static always takes its own kernels.
    public init(_ q: QuantizedTensor, route: Route? = nil) {
        outFeatures = q.rows
        inFeatures = q.columns
        format = q.format
        activationScale = q.inputScale ?? 0
        self.route = activationScale != 0 ? .integer : route ?? (q.format == .bf16 ? .bf16 : .default)
        let (N, K) = (q.rows, q.columns)
        blockActivations = activationScale == 0 && K % Int(DK_Q8B_BLOCK) == 0
            && (q.format == .int8 || q.format == .int4(group: Int(DK_Q8B_BLOCK), symmetric: true) || q.format == .int4(group: Int(DK_Q8B_BLOCK), symmetric: false))
        switch q.format {
        case .int8 where blockActivations:
            let storage = QuantizedStorage(bytes: dk_q8b_packed_bytes(N, K))
            let status = q.values.withUnsafeBytes { dk_q8b_pack($0.bindMemory(to: Int8.self).baseAddress!, N, K, storage.pointer) }
            precondition(status == 0, "QuantizedMatrix: \(K) columns are not a multiple of \(DK_Q8B_BLOCK)")
            (packed, rowScales) = (storage, q.scales)
        case .int8:
            let storage = QuantizedStorage(bytes: dk_q8_packed_bytes(N, K))
            q.values.withUnsafeBytes { dk_q8_pack($0.bindMemory(to: Int8.self).baseAddress!, N, K, storage.pointer) }
            (packed, rowScales) = (storage, q.scales)
        case .int4(let g, _):
            let storage = QuantizedStorage(bytes: dk_q4_packed_bytes(N, K, g))
            let status = dk_q4_pack(q.values, q.scales, q.zeros, N, K, g, storage.pointer)
            precondition(status == 0, "QuantizedMatrix: int4 group \(g) does not fit \(K) columns (validate first)")
            (packed, rowScales) = (storage, [])
        case .bf16:
            let storage = QuantizedStorage(bytes: dk_bf16_packed_bytes(N, K))
            q.values.withUnsafeBytes { dk_bf16_pack($0.bindMemory(to: UInt16.self).baseAddress!, N, K, storage.pointer) }
            (packed, rowScales) = (storage, [])
        }
    }

    /// y[rows, out] = bias + x[rows, in] · Wᵀ (bias may be nil); `x` rows `lda` ≥ in floats
    /// apart, `y` rows `ldc` ≥ out. Runs on `Compute.threads` workers; results do not
    /// depend on their number.
    public func multiply(rows: Int, x: UnsafePointer<Float>, lda: Int, y: UnsafeMutablePointer<Float>, ldc: Int,
                         bias: UnsafePointer<Float>?) {
        precondition(rows >= 0 && lda >= inFeatures && ldc >= outFeatures,
                     "QuantizedMatrix.multiply: rows \(rows), lda \(lda), ldc \(ldc) for a [\(outFeatures), \(inFeatures)] weight")
        guard rows > 0 else { return }
        Compute.splitProduct(rows: rows, columns: outFeatures) { r, c in
            run(rows: r.count, columns: c, x: x + r.lowerBound * lda, lda: lda, y: y + r.lowerBound * ldc, ldc: ldc, bias: bias)
        }
    }

    /// One worker's share: `rows` rows against the output columns `columns` (a range
    /// starting at a multiple of 16), with its own workspace.
    private func run(rows M: Int, columns: Range<Int>, x: UnsafePointer<Float>, lda: Int, y: UnsafeMutablePointer<Float>,
                     ldc: Int, bias: UnsafePointer<Float>?) {
        let (n0, N, K) = (columns.lowerBound, columns.count, inFeatures)
        let panel = n0 / 16
        let base = UnsafeRawPointer(packed.pointer)
        let bias = bias.map { $0 + n0 }
        if route == .dequantized {
            let (layout, g): (Int32, Int) = switch format {
            case .int4(let g, _): (Int32(DK_DQ_Q4), g)
            case .bf16: (Int32(DK_DQ_BF16), 0)
            case .int8: (Int32(blockActivations ? DK_DQ_Q8B : DK_DQ_Q8), 0)
            }
            withWorkspace(dk_dq_workspace_bytes(M, K)) { ws in
                rowScales.withUnsafeBufferPointer { s in
                    dk_dq_gemm(layout, M, N, K, g, x, lda, base + panel * dk_dq_panel_bytes(layout, K, g), s.baseAddress.map { $0 + n0 }, bias,
                               y + n0, ldc, ws)
                }
            }
            return
        }
        switch format {
        case .int8 where blockActivations:
            withWorkspace(dk_q8b_workspace_bytes(M, K)) { ws in
                rowScales.withUnsafeBufferPointer { s in
                    dk_q8b_gemm(M, N, K, x, lda, base + panel * dk_q8b_panel_bytes(K), s.baseAddress! + n0, bias, y + n0, ldc,
                                Int32(DK_EPILOGUE_NONE), ws)
                }
            }
        case .int8:
            withWorkspace(dk_q8_workspace_bytes(M, K)) { ws in
                rowScales.withUnsafeBufferPointer { s in
                    dk_q8_gemm(M, N, K, x, lda, base + panel * dk_q8_panel_bytes(K), s.baseAddress! + n0, bias, y + n0, ldc,
                               activationScale, Int32(DK_EPILOGUE_NONE), ws)
                }
            }
        case .int4 where blockActivations:
            withWorkspace(dk_q4b_workspace_bytes(M, K)) { ws in
                dk_q4b_gemm(M, N, K, x, lda, base + panel * dk_q4_panel_bytes(K, Int(DK_Q8B_BLOCK)), bias, y + n0, ldc,
                            Int32(DK_EPILOGUE_NONE), ws)
            }
        case .int4(let g, _):
            withWorkspace(dk_q8_workspace_bytes(M, K)) { ws in
                dk_q4_gemm(M, N, K, g, x, lda, base + panel * dk_q4_panel_bytes(K, g), bias, y + n0, ldc,
                           activationScale, Int32(DK_EPILOGUE_NONE), ws)
            }
        case .bf16:
            withWorkspace(dk_bf16_workspace_bytes(M, K)) { ws in
                dk_bf16_gemm(M, N, K, x, lda, base + panel * dk_bf16_panel_bytes(K), bias, y + n0, ldc,
                             Int32(DK_EPILOGUE_NONE), ws)
            }
        }
    }
}

/// The formats that run dequantized through the fp32 GEMM on this machine:
/// "int8-dynamic/int4", "bf16", both or none (empty). int8-static keeps its kernels.
private var fp32RouteFormats: String {
    [QuantizedMatrix.Route.default == .dequantized ? "int8-dynamic/int4" : nil, QuantizedMatrix.Route.bf16 == .dequantized ? "bf16" : nil]
        .compactMap { $0 }.joined(separator: "/")
}

/// The path the quantized kernels take on this machine: "ref", "avx2" or "avx512", and
/// e.g. "+ fp32 route for bf16" when some formats run dequantized through the fp32 GEMM.
public var quantizedKernelPath: String {
    String(cString: dk_quant_path()) + (fp32RouteFormats.isEmpty ? "" : " + fp32 route for \(fp32RouteFormats)")
}

/// E.g. ", int8-dynamic/int4/bf16 weights through the fp32 GEMM" when this machine takes the
/// dequantized route for some formats, else empty: the suffix of the kernel lines of
/// `kd --version` and `kd bench`.
public var quantizedRouteNote: String {
    fp32RouteFormats.isEmpty ? "" : ", \(fp32RouteFormats) weights through the fp32 GEMM"
}

/// Calls `body` with a 64-byte aligned scratch buffer of `bytes` bytes.
private func withWorkspace(_ bytes: Int, _ body: (UnsafeMutableRawPointer) -> Void) {
    let p = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 64), alignment: 64)
    defer { p.deallocate() }
    body(p)
}

/// A 64-byte aligned allocation of packed weights, freed with the last matrix using it.
private final class QuantizedStorage: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer

    init(bytes: Int) { pointer = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 64), alignment: 64) }

    deinit { pointer.deallocate() }
}
