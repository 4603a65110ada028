// GPTQ: error-compensating rounding of a Linear weight from the calibration Hessian, as in
// Frantar et al., "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained
// Transformers" (2022), which builds on Optimal Brain Quantization.
//
// The goal is the layer's output on calibration inputs X [tokens, in], not the weight
// itself: minimise ‖X·Wᵀ − X·Qᵀ‖² for Q on the quantization grid. With H = XᵀX (+ a small
// damping on the diagonal, 1% of its mean), the columns are rounded one at a time, left to
// right; the rounding error of column i, divided by U[i, i], is subtracted from the columns
// still to come in proportion to row i of U, the upper Cholesky factor of H⁻¹ (H⁻¹ = UᵀU).
// The later columns absorb the error in the directions the inputs actually use. Groups: an
// int4 group's scale and zero point are chosen (with the same clipping search as
// round-to-nearest) from the already-updated weights when the rounding reaches the
// group's first column; int8 keeps its per-row scale from the original row. Rows are
// independent given U, so they are split over threads.
//
// `HessianAccumulator` sums XᵀX over calibration rows (BLAS, fp32 sums); the factorisation
// runs in Double. A column no input ever reaches (H[i, i] = 0) gets weight 0 and H[i, i] = 1,
// as the paper's code does. Left out on purpose: the activation-order heuristic (it
// permutes columns, which with groups needs a permuted group map the kernels do not have),
// the lazy block updates (a speed-up for large matrices; ours take seconds), and feeding
// each layer the already-quantized model's activations (the Hessians come from one fp32
// pass over the calibration texts).
import DistilleryTensor

/// XᵀX over the calibration inputs of one Linear layer.
public struct HessianAccumulator: Sendable {
    /// Input features.
    public let width: Int
    /// [width, width], row-major, fp32 sums.
    public private(set) var sums: [Float]
    /// Rows added so far.
    public private(set) var rowCount = 0

    /// An empty accumulator for inputs `width` wide.
    public init(width: Int) {
        self.width = width
        sums = [Float](repeating: 0, count: width * width)
    }

    /// Adds `rows` input rows of `width` floats, `stride` floats apart.
    public mutating func add(_ x: UnsafePointer<Float>, rows: Int, stride: Int) {
        guard rows > 0 else { return }
        let K = width
        sums.withUnsafeMutableBufferPointer { h in
            gemm(transA: true, transB: false, m: K, n: K, k: rows, a: x, lda: stride, b: x, ldb: stride,
                 beta: 1, c: h.baseAddress!, ldc: K)
        }
        rowCount += rows
    }
}

/// Why GPTQ could not run.
public struct GPTQError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// Fraction of the mean diagonal of H added to its diagonal before the factorisation (the
/// paper's default: enough to make H positive definite when calibration tokens are fewer
/// than inputs or inputs are collinear, small enough not to blur the curvature).
public let gptqDamping = 0.01

/// Quantizes `weight` [rows, columns] into `format` (int8 or int4; bf16 is rounded to nearest)
/// with GPTQ's error compensation for the inputs summarised by `hessian` (XᵀX, columns ×
/// columns). The caller checks the weight (finite, 2-D, group divides the rows).
public func gptqQuantize(_ weight: Tensor, hessian: HessianAccumulator, format: QuantizedTensor.Format) throws(GPTQError) -> QuantizedTensor {
    let (N, K) = (weight.shape[0], weight.shape[1])
    precondition(hessian.width == K, "gptqQuantize: a Hessian of width \(hessian.width) for \(K) columns")
    if format == .bf16 { return QuantizedTensor(quantizing: weight, as: format) }
    var H = hessian.sums.map(Double.init)
    var W = weight.data
    // Inputs that never fire: their weights do not matter; zero them and keep H invertible.
    for i in 0..<K where H[i * K + i] <= 0 {
        H[i * K + i] = 1
        for r in 0..<N { W[r * K + i] = 0 }
    }
    let meanDiagonal = (0..<K).reduce(0.0) { $0 + H[$1 * K + $1] } / Double(K)
    var U: [Double]? = nil
    var damping = gptqDamping
    for _ in 0..<4 {   // more damping when rounding makes H numerically indefinite
        var Hd = H
        for i in 0..<K { Hd[i * K + i] += damping * meanDiagonal }
        if let u = upperCholeskyOfInverse(Hd, K) { U = u; break }
        damping *= 10
    }
    guard let U else { throw GPTQError(description: "the calibration Hessian is not positive definite even with \(damping / 10) damping") }

    // Each row independently: codes (int8 values or int4 nibbles) and its scales.
    var codes = [UInt8](repeating: 0, count: N * K)
    let groups: Int
    switch format {
    case .int8: groups = 1
    case .int4(let g, _): groups = K / g
    case .bf16: groups = 0
    }
    var scales = [Float](repeating: 0, count: N * groups), zeros = [UInt8](repeating: 0, count: N * groups)
    let shared = UnsafeSendable((W, U))
    codes.withUnsafeMutableBufferPointer { c in
        scales.withUnsafeMutableBufferPointer { s in
            zeros.withUnsafeMutableBufferPointer { z in
                let out = UnsafeSendable((c.baseAddress!, s.baseAddress!, z.baseAddress!))
                Compute.parallelRanges(N) { rows in
                    let (W, U) = shared.value
                    let (c, s, z) = out.value
                    var row = [Double](repeating: 0, count: K)
                    for r in rows {
                        for k in 0..<K { row[k] = Double(W[r * K + k]) }
                        gptqRow(&row, U: U, format: format, codes: c + r * K, scales: s + r * groups, zeros: z + r * groups)
                    }
                }
            }
        }
    }
    switch format {
    case .int8:
        return QuantizedTensor(format: format, rows: N, columns: K, values: codes, scales: scales, zeros: [])
    case .int4:
        let values = (0..<(N * K / 2)).map { codes[2 * $0] | (codes[2 * $0 + 1] << 4) }
        return QuantizedTensor(format: format, rows: N, columns: K, values: values, scales: scales, zeros: zeros)
    case .bf16:
        fatalError("unreachable: bf16 returned above")
    }
}

/// Rounds one row left to right, pushing each column's error onto the later columns.
private func gptqRow(_ w: inout [Double], U: [Double], format: QuantizedTensor.Format,
                     codes: UnsafeMutablePointer<UInt8>, scales: UnsafeMutablePointer<Float>, zeros: UnsafeMutablePointer<UInt8>) {
    let K = w.count
    var scale: Float = 1, zero: UInt8 = 0
    if format == .int8 {   // per-row scale from the original row (it must hold every value)
        let amax = w.reduce(0) { max($0, abs($1)) }
        scale = amax > 0 ? Float(amax / 127) : 1
        scales[0] = scale
    }
    w.withUnsafeMutableBufferPointer { w in
        U.withUnsafeBufferPointer { U in
            for i in 0..<K {
                let dequantized: Double
                switch format {
                case .int8:
                    let q = max(-127, min(127, (Float(w[i]) / scale).rounded(.toNearestOrEven)))
                    codes[i] = UInt8(bitPattern: Int8(q))
                    dequantized = Double(q * scale)
                case .int4(let g, let symmetric):
                    if i % g == 0 {
                        let group = (i..<(i + g)).map { Float(w[$0]) }
                        (scale, zero) = int4GroupScale(group[...], symmetric: symmetric)
                        scales[i / g] = scale
                        zeros[i / g] = zero
                    }
                    let q = max(0, min(15, (Float(w[i]) / scale).rounded(.toNearestOrEven) + Float(zero)))
                    codes[i] = UInt8(q)
                    dequantized = Double((q - Float(zero)) * scale)
                case .bf16:
                    fatalError("unreachable: bf16 is rounded to nearest")
                }
                let error = (w[i] - dequantized) / U[i * K + i]
                w[i] = dequantized
                if error != 0 {
                    for j in (i + 1)..<K { w[j] -= error * U[i * K + j] }
                }
            }
        }
    }
}

/// The upper triangular U with UᵀU = H⁻¹ for a symmetric positive definite H [n, n]
/// (row-major), or nil when H is not positive definite. With J the order reversal, the
/// lower Cholesky factor M of J·H·J gives H⁻¹ = (J·M⁻¹·J)ᵀ(J·M⁻¹·J), and J·M⁻¹·J is upper
/// triangular — one factorisation and one triangular inverse.
func upperCholeskyOfInverse(_ H: [Double], _ n: Int) -> [Double]? {
    // M: lower Cholesky factor of the reversed matrix R[i][j] = H[n-1-i][n-1-j].
    var M = [Double](repeating: 0, count: n * n)
    let ok = M.withUnsafeMutableBufferPointer { M -> Bool in
        H.withUnsafeBufferPointer { H in
            for i in 0..<n {
                for j in 0...i {
                    var s = H[(n - 1 - i) * n + (n - 1 - j)]
                    for k in 0..<j { s -= M[i * n + k] * M[j * n + k] }
                    if i == j {
                        guard s > 0, s.isFinite else { return false }
                        M[i * n + i] = s.squareRoot()
                    } else {
                        M[i * n + j] = s / M[j * n + j]
                    }
                }
            }
            return true
        }
    }
    guard ok else { return nil }
    // X = M⁻¹ (lower), row by row: X[i, :] = (eᵢ − Σ_{k<i} M[i, k]·X[k, :]) / M[i, i].
    var X = [Double](repeating: 0, count: n * n)
    X.withUnsafeMutableBufferPointer { X in
        M.withUnsafeBufferPointer { M in
            for i in 0..<n {
                let row = X.baseAddress! + i * n
                for k in 0..<i {
                    let m = M[i * n + k]
                    if m == 0 { continue }
                    let other = X.baseAddress! + k * n
                    for j in 0...k { row[j] -= m * other[j] }
                }
                row[i] += 1
                let inverse = 1 / M[i * n + i]
                for j in 0...i { row[j] *= inverse }
            }
        }
    }
    // U = J·X·J: U[i][j] = X[n-1-i][n-1-j].
    var U = [Double](repeating: 0, count: n * n)
    for i in 0..<n { for j in i..<n { U[i * n + j] = X[(n - 1 - i) * n + (n - 1 - j)] } }
    return U
}
