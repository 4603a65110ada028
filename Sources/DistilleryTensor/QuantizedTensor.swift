// QuantizedTensor: a 2-D weight [rows, columns] stored in fewer bits — the plain data a
// file holds and the kernels pack from — with its quantize / dequantize reference.
//
// Three storage formats, each a fixed layout independent of any kernel's packing:
// - int8: one signed byte per weight, row-major, one fp32 scale per row (symmetric,
//   w = q · scale[r], q in −127…127). The Linear layers' per-output-channel format and
//   the embedding tables' row-wise one. `inputScale`, when set, is int8-static's fixed
//   activation scale (from calibration); nil means activations are quantized per row at
//   run time (int8-dynamic).
// - int4: two weights per byte, low nibble first (even column), per group of `group`
//   consecutive columns of a row a scale and a zero point: w = (q − zero) · scale, q and
//   zero in 0…15. Symmetric groups have zero 8. Each group's range is searched for the
//   clipping with the least squared error. Scales are rounded to fp16 before the codes are
//   chosen, so the file stores them in 16 bits and nothing rounds twice.
// - bf16: the upper 16 bits of each fp32 weight, rounded to nearest even.
// `validate` is the boundary check a loader runs (sizes, finite positive scales, zero
// points in range); after it, dequantizing and packing cannot fail. Left out on purpose:
// per-tensor int8 scales (per-row costs nothing and is what ORT's per-channel mode does)
// and k-quant super-blocks (rows here are 128…1536 wide, multiples of 32, not of 256).

/// A 2-D weight [rows, columns] in a quantized storage format.
public struct QuantizedTensor: Sendable, Equatable {
    /// How the weights are stored.
    public enum Format: Sendable, Equatable, Hashable, CustomStringConvertible {
        /// Signed bytes, one fp32 scale per row.
        case int8
        /// Nibbles in groups of `group` columns, each with a scale and zero point.
        case int4(group: Int, symmetric: Bool)
        /// bfloat16.
        case bf16

        /// Bits one weight takes, scales and zero points included (fp32 scale per int8
        /// row of `columns`; fp16 scale and, asymmetric, one zero byte per int4 group).
        public func bitsPerWeight(columns: Int) -> Double {
            switch self {
            case .int8: return 8 + 32 / Double(columns)
            case .int4(let g, let symmetric): return 4 + (symmetric ? 16 : 24) / Double(g)
            case .bf16: return 16
            }
        }

        /// The name stored in files: `int8`, `int4-g32-sym`, `int4-g64-asym`, `bf16`.
        public var description: String {
            switch self {
            case .int8: return "int8"
            case .int4(let g, let symmetric): return "int4-g\(g)-\(symmetric ? "sym" : "asym")"
            case .bf16: return "bf16"
            }
        }

        /// Parses a stored name (the inverse of `description`); nil when unknown.
        public init?(stored text: String) {
            switch text {
            case "int8": self = .int8
            case "bf16": self = .bf16
            default:
                let parts = text.split(separator: "-")
                guard parts.count == 3, parts[0] == "int4", parts[1].hasPrefix("g"), let g = Int(parts[1].dropFirst()),
                      quantizationGroupSizes.contains(g), parts[2] == "sym" || parts[2] == "asym" else { return nil }
                self = .int4(group: g, symmetric: parts[2] == "sym")
            }
        }
    }

    public let format: Format
    public let rows: Int, columns: Int
    /// int8: rows·columns signed bytes (as their bit patterns); int4: rows·columns/2 bytes;
    /// bf16: rows·columns·2 bytes (little-endian 16-bit values).
    public let values: [UInt8]
    /// int8: [rows]; int4: [rows, columns/group] (each exactly an fp16 value); bf16: empty.
    public let scales: [Float]
    /// int4: [rows, columns/group] zero points in 0…15; otherwise empty.
    public let zeros: [UInt8]
    /// int8-static: the fixed activation scale of the layer's input; nil: dynamic.
    public let inputScale: Float?

    /// A tensor from its stored parts; call `validate` before trusting parts read from a file.
    public init(format: Format, rows: Int, columns: Int, values: [UInt8], scales: [Float], zeros: [UInt8],
                inputScale: Float? = nil) {
        (self.format, self.rows, self.columns, self.values, self.scales, self.zeros, self.inputScale) =
            (format, rows, columns, values, scales, zeros, inputScale)
    }

    /// Groups per row (int4), else 1.
    public var groupsPerRow: Int {
        if case .int4(let g, _) = format { return columns / g }
        return 1
    }

    /// Bytes of `values` per row.
    public var bytesPerRow: Int {
        switch format {
        case .int8: return columns
        case .int4: return columns / 2
        case .bf16: return columns * 2
        }
    }

    /// Bytes the quantized parts take (values, scales at their stored width, zero points).
    public var storedBytes: Int {
        switch format {
        case .int8: return values.count + 4 * scales.count
        case .int4: return values.count + 2 * scales.count + zeros.count
        case .bf16: return values.count
        }
    }

    /// The rows of `parts` stacked into one tensor (fused Q, K, V); the parts share format,
    /// column count and activation scale.
    public init(stacking parts: [QuantizedTensor]) {
        let first = parts[0]
        precondition(parts.allSatisfy { $0.format == first.format && $0.columns == first.columns && $0.inputScale == first.inputScale },
                     "QuantizedTensor(stacking:): the parts differ in format, columns or activation scale")
        self.init(format: first.format, rows: parts.reduce(0) { $0 + $1.rows }, columns: first.columns,
                  values: parts.flatMap(\.values), scales: parts.flatMap(\.scales), zeros: parts.flatMap(\.zeros),
                  inputScale: first.inputScale)
    }

    /// The same tensor with a fixed activation scale (int8-static) or none.
    public func withInputScale(_ scale: Float?) -> QuantizedTensor {
        QuantizedTensor(format: format, rows: rows, columns: columns, values: values, scales: scales, zeros: zeros, inputScale: scale)
    }
}

/// Group sizes int4 supports.
public let quantizationGroupSizes = [32, 64, 128]

/// What is wrong with a quantized tensor's parts (from `validate`).
public struct QuantizationProblem: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension QuantizedTensor {
    /// Checks that the parts fit together: sizes, group divisibility, finite positive
    /// scales (fp16-exact for int4), zero points in 0…15, finite bf16 values and input scale.
    public func validate() throws(QuantizationProblem) {
        guard rows > 0, columns > 0 else { throw QuantizationProblem("shape [\(rows), \(columns)] is empty") }
        if case .int4(let g, let symmetric) = format {
            guard columns % g == 0 else {
                throw QuantizationProblem("group size \(g) does not divide the row of \(columns) columns")
            }
            guard columns % 2 == 0 else { throw QuantizationProblem("int4 needs an even column count, got \(columns)") }
            if symmetric, let z = zeros.first(where: { $0 != 8 }) {
                throw QuantizationProblem("symmetric int4 has zero point \(z), expected 8 everywhere")
            }
        }
        let (r, n) = rows.multipliedReportingOverflow(by: bytesPerRow)
        guard !n, values.count == r else {
            throw QuantizationProblem("\(values.count) value bytes for \(format) [\(rows), \(columns)], expected \(rows) × \(bytesPerRow)")
        }
        let expectedScales = format == .bf16 ? 0 : rows * groupsPerRow
        guard scales.count == expectedScales else {
            throw QuantizationProblem("\(scales.count) scales for \(format) [\(rows), \(columns)], expected \(expectedScales)")
        }
        if let i = scales.firstIndex(where: { !($0.isFinite && $0 > 0) }) {
            throw QuantizationProblem("scale \(scales[i]) at index \(i) is not a finite positive number")
        }
        if case .int4 = format {
            if let i = scales.firstIndex(where: { Float(Float16($0)) != $0 }) {
                throw QuantizationProblem("scale \(scales[i]) at index \(i) is not an fp16 value")
            }
            guard zeros.count == scales.count else {
                throw QuantizationProblem("\(zeros.count) zero points for \(scales.count) groups")
            }
            if let z = zeros.first(where: { $0 > 15 }) { throw QuantizationProblem("zero point \(z) is outside 0…15") }
        } else if !zeros.isEmpty {
            throw QuantizationProblem("\(format) has no zero points, found \(zeros.count)")
        }
        if format == .bf16 {
            for i in 0..<(rows * columns) where !bf16ToFloat(values[2 * i], values[2 * i + 1]).isFinite {
                throw QuantizationProblem("bf16 value at row \(i / columns), column \(i % columns) is not finite")
            }
        }
        if let s = inputScale {
            guard format == .int8 else { throw QuantizationProblem("an activation scale is only meaningful for int8, not \(format)") }
            guard s.isFinite && s > 0 else { throw QuantizationProblem("activation scale \(s) is not a finite positive number") }
        }
    }

    /// The fp32 weights these stand for, [rows, columns].
    public func dequantized() -> Tensor {
        var out = [Float](repeating: 0, count: rows * columns)
        out.withUnsafeMutableBufferPointer { o in
            for r in 0..<rows { dequantizeRow(r, into: o.baseAddress! + r * columns) }
        }
        return Tensor(shape: [rows, columns], data: out)
    }

    /// Writes the `columns` fp32 values that row `r` stands for to `out` (what an embedding
    /// lookup reads from a quantized table).
    public func dequantizeRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        precondition(r >= 0 && r < rows, "QuantizedTensor.dequantizeRow: row \(r) outside 0..<\(rows)")
        values.withUnsafeBufferPointer { vp in
            let v = vp.baseAddress! + r * bytesPerRow
            switch format {
            case .int8:
                let s = scales[r]
                for c in 0..<columns { out[c] = Float(Int8(bitPattern: v[c])) * s }
            case .int4(let g, _):
                let k0 = r * (columns / g)
                for c in 0..<columns {
                    let byte = v[c / 2]
                    let q = c % 2 == 0 ? byte & 15 : byte >> 4
                    let k = k0 + c / g
                    out[c] = Float(Int(q) - Int(zeros[k])) * scales[k]
                }
            case .bf16:
                for c in 0..<columns { out[c] = bf16ToFloat(v[2 * c], v[2 * c + 1]) }
            }
        }
    }
}

// MARK: - Quantizing

extension QuantizedTensor {
    /// Quantizes a finite 2-D weight [rows, columns] into `format` (the caller checks
    /// finiteness and that an int4 group divides the row).
    public init(quantizing weight: Tensor, as format: Format) {
        precondition(weight.shape.count == 2 && weight.allFinite, "QuantizedTensor: expected a finite 2-D weight")
        let (rows, columns) = (weight.shape[0], weight.shape[1])
        var values: [UInt8] = [], scales: [Float] = [], zeros: [UInt8] = []
        let w = weight.data
        switch format {
        case .int8:
            values.reserveCapacity(rows * columns)
            for r in 0..<rows {
                let row = w[(r * columns)..<((r + 1) * columns)]
                let amax = row.reduce(0) { max($0, abs($1)) }
                let s = amax > 0 ? amax / 127 : 1
                scales.append(s)
                for x in row { values.append(UInt8(bitPattern: Int8(max(-127, min(127, (x / s).rounded(.toNearestOrEven)))))) }
            }
        case .int4(let g, let symmetric):
            precondition(columns % g == 0 && g % 2 == 0, "QuantizedTensor: group \(g) must divide \(columns)")
            // Groups in parallel (the scale search is ~17 passes over each); group k's results
            // land at index k, so the output does not depend on the split.
            let groups = rows * columns / g
            var codes = [UInt8](repeating: 0, count: rows * columns)
            scales = [Float](repeating: 0, count: groups)
            zeros = [UInt8](repeating: 0, count: groups)
            codes.withUnsafeMutableBufferPointer { codeBuffer in
                scales.withUnsafeMutableBufferPointer { scaleBuffer in
                    zeros.withUnsafeMutableBufferPointer { zeroBuffer in
                        let out = UnsafeSendable((codeBuffer, scaleBuffer, zeroBuffer))
                        Compute.parallelRanges(groups) { range in
                            let (codes, scales, zeros) = out.value
                            for k in range {
                                let start = k * g, group = w[start..<(start + g)]
                                let (s, z) = int4GroupScale(group, symmetric: symmetric)
                                (scales[k], zeros[k]) = (s, z)
                                for (i, x) in group.enumerated() {
                                    codes[start + i] = UInt8(max(0, min(15, Int((x / s).rounded(.toNearestOrEven)) + Int(z))))
                                }
                            }
                        }
                    }
                }
            }
            values = (0..<(rows * columns / 2)).map { codes[2 * $0] | (codes[2 * $0 + 1] << 4) }
        case .bf16:
            values.reserveCapacity(rows * columns * 2)
            for x in w {
                let b = floatToBF16(x)
                values.append(UInt8(b & 0xFF))
                values.append(UInt8(b >> 8))
            }
        }
        self.init(format: format, rows: rows, columns: columns, values: values, scales: scales, zeros: zeros)
    }
}

/// Clipping factors int4 tries per group: the range [min, max] (symmetric: ±max|w|) times
/// each factor; the one with the least squared error wins. 1 (no clipping) is among them,
/// so a group's error never exceeds the plain min-max choice's (at most half a step per
/// weight); shrinking trades a clipped outlier for finer steps on the other 31 weights
/// (the search llama.cpp's and ONNX Runtime's int4 quantizers also make, in some form).
private let int4ClippingFactors: [Float] = (0...16).map { 1 - Float($0) * 0.025 }

/// The (scale, zero point) of one int4 group: symmetric (zero 8, scale = factor · max|w| / 7)
/// or asymmetric (over [min, max] widened to include 0, scale = factor · (max − min) / 15,
/// zero = round(−factor · min / scale)); scales fp16-rounded; an all-zero group gets (1, 8)
/// or (1, 0). Public for the calibrated roundings (GPTQ), which choose a group's scale the
/// same way before rounding its weights one column at a time.
public func int4GroupScale(_ group: ArraySlice<Float>, symmetric: Bool) -> (Float, UInt8) {
    let lo = min(0, group.min() ?? 0), hi = max(0, group.max() ?? 0)
    guard hi > lo else { return (1, symmetric ? 8 : 0) }
    var best: (error: Float, scale: Float, zero: UInt8) = (.infinity, 1, 8)
    for f in int4ClippingFactors {
        let s = fp16Scale(symmetric ? f * max(-lo, hi) / 7 : f * (hi - lo) / 15)
        let z: UInt8 = symmetric ? 8 : UInt8(max(0, min(15, (-f * lo / s).rounded(.toNearestOrEven))))
        var error: Float = 0
        for x in group {
            let q = max(0, min(15, (x / s).rounded(.toNearestOrEven) + Float(z)))
            let d = (q - Float(z)) * s - x
            error += d * d
        }
        if error < best.error { best = (error, s, z) }
    }
    return (best.scale, best.zero)
}

/// `x` rounded to fp16 and kept positive (a scale below fp16's smallest subnormal becomes it).
private func fp16Scale(_ x: Float) -> Float {
    max(Float(Float16(x)), Float(Float16.leastNonzeroMagnitude))
}

/// bfloat16 bits of `x`, rounded to nearest even (x finite).
public func floatToBF16(_ x: Float) -> UInt16 {
    let bits = x.bitPattern
    return UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
}

/// The fp32 value of bfloat16 bits given as a little-endian byte pair.
@inline(__always)
func bf16ToFloat(_ low: UInt8, _ high: UInt8) -> Float {
    Float(bitPattern: (UInt32(high) << 24) | (UInt32(low) << 16))
}
