// GGMLBlocks: the ggml tensor element types a GGUF file of ours holds — F32, F16 and the
// block formats Q8_0 and Q4_0 — with their byte layouts, quantizers and dequantizers.
//
// Follows ggml's reference (ggml-quants.c `quantize_row_q8_0_ref` / `_q4_0_ref`):
//   block_q8_0 { fp16 d; int8 qs[32] }   34 bytes per 32 weights, d = max|x| / 127,
//                                         q = round(x / d) (half away from zero)
//   block_q4_0 { fp16 d; uint8 qs[16] }  18 bytes per 32 weights, d = x(max |x|) / -8,
//                                         q = min(15, trunc(x / d + 8.5)); byte j holds
//                                         element j in its low nibble and j+16 in its high
// Dequantizing multiplies by the fp16 scale (rounded), exactly as ggml does. Little-endian
// hosts only. Left out on purpose: every other ggml type (K-quants, IQ, BF16 …): the
// reader names them and refuses.
import Foundation

/// A ggml element type, by its number in ggml.h.
public enum GGMLType: UInt32, Sendable, CaseIterable {
    case f32 = 0
    case f16 = 1
    case q4_0 = 2
    case q8_0 = 8

    /// Weights per block (1 for the plain float types).
    public var blockSize: Int { self == .f32 || self == .f16 ? 1 : 32 }

    /// Bytes per block.
    public var blockBytes: Int {
        switch self {
        case .f32: return 4
        case .f16: return 2
        case .q4_0: return 18
        case .q8_0: return 34
        }
    }

    /// The name ggml and `--type` use ("f32", "q8_0").
    public var name: String {
        switch self {
        case .f32: return "f32"
        case .f16: return "f16"
        case .q4_0: return "q4_0"
        case .q8_0: return "q8_0"
        }
    }

    /// Bytes of `count` elements (`count` a multiple of `blockSize`).
    public func byteCount(elements count: Int) -> Int { count / blockSize * blockBytes }

    /// Names of ggml types this reader does not handle, for messages.
    public static let otherNames: [UInt32: String] = [
        3: "q4_1", 6: "q5_0", 7: "q5_1", 9: "q8_1", 10: "q2_K", 11: "q3_K", 12: "q4_K", 13: "q5_K", 14: "q6_K",
        15: "q8_K", 24: "i8", 25: "i16", 26: "i32", 27: "i64", 28: "f64", 30: "bf16",
    ]
}

/// Encodes `values` (a multiple of `type.blockSize` long) as little-endian bytes of `type`.
public func ggmlEncode(_ values: [Float], as type: GGMLType) -> Data {
    precondition(values.count % type.blockSize == 0, "\(values.count) values are not whole \(type.name) blocks")
    var out = [UInt8](repeating: 0, count: type.byteCount(elements: values.count))
    out.withUnsafeMutableBytes { o in
        switch type {
        case .f32:
            for (i, v) in values.enumerated() { o.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self) }
        case .f16:
            for (i, v) in values.enumerated() { o.storeBytes(of: Float16(v).bitPattern.littleEndian, toByteOffset: i * 2, as: UInt16.self) }
        case .q8_0:
            for b in 0..<(values.count / 32) {
                let x = values[(b * 32)..<(b * 32 + 32)], base = b * 34
                let amax = x.reduce(Float(0)) { max($0, abs($1)) }
                let d = amax / 127, id = d != 0 ? 1 / d : 0
                o.storeBytes(of: Float16(d).bitPattern.littleEndian, toByteOffset: base, as: UInt16.self)
                for (j, v) in x.enumerated() { o[base + 2 + j] = UInt8(bitPattern: Int8((v * id).rounded())) }
            }
        case .q4_0:
            for b in 0..<(values.count / 32) {
                let x = Array(values[(b * 32)..<(b * 32 + 32)]), base = b * 18
                var amax: Float = 0, signedMax: Float = 0
                for v in x where abs(v) > amax { amax = abs(v); signedMax = v }
                let d = signedMax / -8, id = d != 0 ? 1 / d : 0
                o.storeBytes(of: Float16(d).bitPattern.littleEndian, toByteOffset: base, as: UInt16.self)
                for j in 0..<16 {
                    let lo = min(15, Int8(x[j] * id + 8.5)), hi = min(15, Int8(x[j + 16] * id + 8.5))
                    o[base + 2 + j] = UInt8(lo) | UInt8(hi) << 4
                }
            }
        }
    }
    return Data(out)
}

/// Decodes `count` elements of `type` from little-endian `bytes` (already size-checked).
public func ggmlDecode(_ bytes: UnsafeRawBufferPointer, as type: GGMLType, count: Int) -> [Float] {
    precondition(bytes.count == type.byteCount(elements: count), "byte count does not match \(count) \(type.name) elements")
    func half(_ offset: Int) -> Float {
        Float(Float16(bitPattern: UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))))
    }
    return [Float](unsafeUninitializedCapacity: count) { out, initialized in
        switch type {
        case .f32:
            for i in 0..<count { out[i] = Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))) }
        case .f16:
            for i in 0..<count { out[i] = half(i * 2) }
        case .q8_0:
            for b in 0..<(count / 32) {
                let d = half(b * 34)
                for j in 0..<32 { out[b * 32 + j] = Float(Int8(bitPattern: bytes[b * 34 + 2 + j])) * d }
            }
        case .q4_0:
            for b in 0..<(count / 32) {
                let d = half(b * 18)
                for j in 0..<16 {
                    let q = bytes[b * 18 + 2 + j]
                    out[b * 32 + j] = Float(Int(q & 0x0F) - 8) * d
                    out[b * 32 + j + 16] = Float(Int(q >> 4) - 8) * d
                }
            }
        }
        initialized = count
    }
}
