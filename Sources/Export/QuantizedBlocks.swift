// QuantizedBlocks: a kd-quantized weight (`kd quantize`, QuantizedTensor) carried into
// another runtime's quantized layout without quantizing it again — GGUF Q8_0 / Q4_0 blocks
// for llama.cpp, and ONNX Runtime's `MatMulNBits` (com.microsoft, 4-bit) blobs.
//
// Layouts (ggml-common.h `block_q8_0` / `block_q4_0`; ORT contrib_defs MatMulNBits):
// - kd int8 is one fp32 scale per row, q in −127…127. Q8_0 is {fp16 d; int8 qs[32]}: every
//   block of a row takes the row's int8 codes as they are and d = fp16(row scale). The only
//   change is that rounding: each weight moves by at most 2⁻¹¹ of itself (half an fp16 ulp)
//   when the scale is a normal fp16 (≥ 2⁻¹⁴); a row scale below that loses more relative
//   precision and one above 65504 cannot be stored — both are reported/refused.
// - kd int4 with groups of 32, symmetric, is w = (q − 8)·s with s already fp16-exact and q
//   two to a byte, even column in the low nibble. Q4_0 is {fp16 d; uint8 qs[16]} with
//   w = (q − 8)·d and byte j holding elements j (low) and j+16 (high): the same numbers,
//   nibbles re-paired — bit-exact.
// - MatMulNBits (bits 4) takes B as [N, K/block, block/2] bytes with even elements in the
//   low nibble — kd's own packing — float scales [N·K/block] and uint8 zero points two per
//   byte (absent: 8, kd's symmetric groups): bit-exact for every kd group size.
// Left out on purpose: asymmetric int4 or other group sizes to GGUF (Q4_1 and K-quants are
// not written), bf16 weights to any of these layouts — callers say so and refuse.
import DistilleryTensor
import Foundation

/// What carrying kd int8 rows into Q8_0 blocks changed.
public struct ScaleRounding: Sendable {
    /// Rows whose fp32 scale is not an fp16 value (their weights move, by ≤ `maxRelativeChange`).
    public var changedRows = 0
    public var rows = 0
    /// Largest |fp16(s) − s| / s over the rows.
    public var maxRelativeChange: Double = 0
    /// Rows whose scale is below fp16's smallest normal (2⁻¹⁴), where the rounding is coarser.
    public var subnormalRows = 0
}

/// Q8_0 blocks of a kd int8 weight (columns a multiple of 32): its codes as they are and its
/// row scale rounded to fp16 in every block; nil (with the reason) when a scale does not fit fp16.
func q8_0Blocks(_ q: QuantizedTensor, rounding: inout ScaleRounding) -> Result<Data, ExportError> {
    precondition(q.format == .int8 && q.columns % 32 == 0, "q8_0Blocks: int8 rows of whole blocks expected")
    let blocksPerRow = q.columns / 32
    var out = [UInt8](repeating: 0, count: q.rows * blocksPerRow * 34)
    for r in 0..<q.rows {
        let s = q.scales[r], h = Float16(s)
        guard h.isFinite, h > 0 else {
            return .failure(ExportError("row \(r) has scale \(s), which fp16 (Q8_0's block scale) cannot hold"))
        }
        let change = abs(Double(Float(h)) - Double(s)) / Double(s)
        rounding.rows += 1
        if change > 0 { rounding.changedRows += 1 }
        rounding.maxRelativeChange = max(rounding.maxRelativeChange, change)
        if !h.isNormal { rounding.subnormalRows += 1 }
        let bits = h.bitPattern.littleEndian
        for b in 0..<blocksPerRow {
            let base = (r * blocksPerRow + b) * 34
            out[base] = UInt8(bits & 0xFF)
            out[base + 1] = UInt8(bits >> 8)
            for j in 0..<32 { out[base + 2 + j] = q.values[r * q.columns + b * 32 + j] }
        }
    }
    return .success(Data(out))
}

/// Q4_0 blocks of a kd int4 weight with symmetric groups of 32 (bit-exact: same scales, same
/// codes, nibbles re-paired).
func q4_0Blocks(_ q: QuantizedTensor) -> Data {
    precondition(q.format == .int4(group: 32, symmetric: true), "q4_0Blocks: int4-g32-sym expected")
    let blocks = q.rows * q.columns / 32
    var out = [UInt8](repeating: 0, count: blocks * 18)
    for k in 0..<blocks {
        let bits = Float16(q.scales[k]).bitPattern.littleEndian
        let base = k * 18
        out[base] = UInt8(bits & 0xFF)
        out[base + 1] = UInt8(bits >> 8)
        // Block k covers bytes 16k ..< 16k+16 of `values` (rows are whole blocks).
        func code(_ j: Int) -> UInt8 {
            let byte = q.values[k * 16 + j / 2]
            return j % 2 == 0 ? byte & 15 : byte >> 4
        }
        for j in 0..<16 { out[base + 2 + j] = code(j) | code(j + 16) << 4 }
    }
    return Data(out)
}

/// Why a kd-quantized weight cannot go into `type` as it is, or nil when it can.
func ggmlLayoutMismatch(_ q: QuantizedTensor, type: GGMLTypeName) -> String? {
    switch (type, q.format) {
    case (.q8_0, .int8): return q.columns % 32 == 0 ? nil : "its \(q.columns)-column rows are not whole 32-weight blocks"
    case (.q4_0, .int4(32, true)): return nil
    case (.q8_0, _): return "it is \(q.format), and Q8_0 holds int8 (kd quantize --scheme int8-dynamic)"
    case (.q4_0, _): return "it is \(q.format), and Q4_0 holds symmetric int4 in groups of 32 (kd quantize --scheme int4-g32)"
    }
}

/// The two ggml block types kd-quantized weights map onto.
enum GGMLTypeName { case q8_0, q4_0 }

/// ORT MatMulNBits parts of a kd int4 weight [N, K]: B bytes [N, K/g, g/2], scales [N·K/g]
/// (fp32, each an fp16 value), zero points [N, ⌈(K/g)/2⌉] (nil for symmetric groups: ORT's
/// default zero point is 8).
func matMulNBitsParts(_ q: QuantizedTensor) -> (b: [UInt8], scales: [Float], zeros: [UInt8]?) {
    guard case .int4(let g, let symmetric) = q.format else { preconditionFailure("matMulNBitsParts: int4 expected") }
    if symmetric { return (q.values, q.scales, nil) }
    let groups = q.columns / g, perRow = (groups + 1) / 2
    var zeros = [UInt8](repeating: 0, count: q.rows * perRow)
    for r in 0..<q.rows {
        for k in 0..<groups {
            zeros[r * perRow + k / 2] |= q.zeros[r * groups + k] << (k % 2 == 0 ? 0 : 4)
        }
    }
    return (q.values, q.scales, zeros)
}
