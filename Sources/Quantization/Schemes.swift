// Schemes: what `kd quantize --scheme` names, which tensors of a BERT model each scheme
// quantizes, and the quantization of a whole weight set with errors naming the tensor.
//
// A model's quantizable tensors come in units — the pieces a sensitivity table lists and
// mixed precision keeps in higher precision: per layer Q/K/V (one unit: they share one
// input and one fused GEMM), the attention output, the FFN input and the FFN output; the
// pooler; and the embedding tables (word and position rows, quantized row-wise so the
// whole file shrinks). Left in fp32 on purpose: attention itself, biases, LayerNorms, the
// two-row token-type table, and the classifier ([labels, H]: a few kB, and its errors go
// straight into the logits).
import DistilleryModel
import DistilleryTensor

/// A quantization scheme as `kd quantize --scheme` names it.
public enum QuantizationScheme: Equatable, Hashable, Sendable, CustomStringConvertible {
    /// int8 weights per output channel, activations quantized at run time with one scale per
    /// block of 32 inputs (Q8_0 style; per row when the input width is not a multiple of 32).
    case int8Dynamic
    /// int8 weights per output channel, activation scales fixed from calibration data.
    case int8Static
    /// Weight-only int4 in groups of `group` columns (activations int8 per row at run time).
    case int4(group: Int, symmetric: Bool)
    /// bfloat16 weights (activations rounded to bf16 per call).
    case bf16

    /// The scheme names `--scheme` accepts.
    public static let names = ["int8-dynamic", "int8-static"] + quantizationGroupSizes.flatMap { ["int4-g\($0)", "int4-g\($0)-asym"] } + ["bf16"]

    /// Parses a `--scheme` value; the error lists the known schemes.
    public init(parsing text: String) throws(QuantizationError) {
        switch text {
        case "int8-dynamic", "int8": self = .int8Dynamic
        case "int8-static": self = .int8Static
        case "bf16": self = .bf16
        default:
            let parts = text.split(separator: "-", omittingEmptySubsequences: false)
            if parts.count >= 2, parts.count <= 3, parts[0] == "int4", parts[1].hasPrefix("g"), let g = Int(parts[1].dropFirst()),
               parts.count == 2 || parts[2] == "asym" || parts[2] == "sym" {
                guard quantizationGroupSizes.contains(g) else {
                    throw QuantizationError("--scheme \(text): group size \(g) is not supported — use \(quantizationGroupSizes.map(String.init).joined(separator: ", ")) (int4-g32 is the most accurate)", usage: true)
                }
                self = .int4(group: g, symmetric: parts.count == 2 || parts[2] == "sym")
                return
            }
            throw QuantizationError("--scheme '\(text)' is not a known scheme — use one of: \(Self.names.joined(separator: ", "))", usage: true)
        }
    }

    /// The canonical name (`int8-dynamic`, `int4-g32`, `int4-g64-asym`, `bf16`).
    public var description: String {
        switch self {
        case .int8Dynamic: return "int8-dynamic"
        case .int8Static: return "int8-static"
        case .int4(let g, let symmetric): return "int4-g\(g)\(symmetric ? "" : "-asym")"
        case .bf16: return "bf16"
        }
    }

    /// The storage of its Linear weights.
    public var linearFormat: QuantizedTensor.Format {
        switch self {
        case .int8Dynamic, .int8Static: return .int8
        case .int4(let g, let symmetric): return .int4(group: g, symmetric: symmetric)
        case .bf16: return .bf16
        }
    }

    /// The storage of its embedding rows (the same as the Linear weights: int8 rows, int4
    /// groups along the row, bf16).
    public var embeddingFormat: QuantizedTensor.Format { linearFormat }

    /// The next more precise storage a sensitive unit falls back to (nil: fp32): int4 →
    /// int8 → bf16 → fp32. bf16 sits before fp32 because it is nearly lossless (8
    /// significant bits, fp32 sums) and, with AVX512_BF16, faster than fp32.
    public static func higherPrecision(than format: QuantizedTensor.Format) -> QuantizedTensor.Format? {
        switch format {
        case .int4: return .int8
        case .int8: return .bf16
        case .bf16: return nil
        }
    }
}

/// An error of quantization: what was wrong, naming the tensor or flag, with a hint.
public struct QuantizationError: Error, CustomStringConvertible, Sendable {
    public let description: String
    /// Whether it is about a flag's value (exit code 2) rather than the model or data.
    public let isUsage: Bool
    public init(_ description: String, usage: Bool = false) {
        self.description = description
        isUsage = usage
    }
}

/// A set of tensors quantized together: one row of the sensitivity table.
public struct QuantizationUnit: Sendable, Hashable {
    /// Short name: `layer.3.qkv`, `layer.3.attention.output`, `layer.3.ffn.in`,
    /// `layer.3.ffn.out`, `pooler`, `embeddings`.
    public let name: String
    /// The HF keys of its weights.
    public let tensors: [String]
    /// Whether these are embedding tables (quantized row-wise) rather than Linear weights.
    public let isEmbedding: Bool
}

/// The quantizable units of a model with `config` and `heads`, embeddings first.
public func quantizationUnits(config: BertConfig, heads: BertHeads) -> [QuantizationUnit] {
    var units = [QuantizationUnit(name: "embeddings", tensors: ["embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight"],
                                  isEmbedding: true)]
    for l in 0..<config.layerCount {
        let p = "encoder.layer.\(l)."
        units += [
            QuantizationUnit(name: "layer.\(l).qkv", tensors: ["query", "key", "value"].map { p + "attention.self.\($0).weight" }, isEmbedding: false),
            QuantizationUnit(name: "layer.\(l).attention.output", tensors: [p + "attention.output.dense.weight"], isEmbedding: false),
            QuantizationUnit(name: "layer.\(l).ffn.in", tensors: [p + "intermediate.dense.weight"], isEmbedding: false),
            QuantizationUnit(name: "layer.\(l).ffn.out", tensors: [p + "output.dense.weight"], isEmbedding: false),
        ]
    }
    if heads.pooler { units.append(QuantizationUnit(name: "pooler", tensors: ["pooler.dense.weight"], isEmbedding: false)) }
    return units
}

/// Storage per tensor name: what to quantize and how (tensors not named stay fp32).
public typealias QuantizationPlan = [String: QuantizedTensor.Format]

/// The plan that quantizes every unit with `scheme`, except units given a storage in
/// `overrides` (nil there: keep that unit in fp32).
public func quantizationPlan(_ units: [QuantizationUnit], scheme: QuantizationScheme,
                             overrides: [String: QuantizedTensor.Format?] = [:]) -> QuantizationPlan {
    var plan: QuantizationPlan = [:]
    for unit in units {
        let format = overrides[unit.name] ?? (unit.isEmbedding ? scheme.embeddingFormat : scheme.linearFormat)
        if let format { for name in unit.tensors { plan[name] = format } }
    }
    return plan
}

/// Quantizes the tensors `plan` names; errors name the tensor (not 2-D, non-finite values,
/// a group size that does not divide its rows, a tensor the model lacks).
public func quantizeWeights(_ tensors: [String: Tensor], plan: QuantizationPlan, source: String) throws(QuantizationError) -> [String: QuantizedTensor] {
    var out: [String: QuantizedTensor] = [:]
    for name in plan.keys.sorted() {
        let format = plan[name]!
        guard let t = tensors[name] else {
            throw QuantizationError("\(source): no tensor '\(name)' to quantize — is it a BERT model? check with 'kd info \(source) --tensors'")
        }
        guard t.shape.count == 2 else {
            throw QuantizationError("\(source): tensor '\(name)' has shape \(t.shapeDescription), expected a 2-D weight")
        }
        if let i = t.firstNonFiniteIndex {
            throw QuantizationError("\(source): tensor '\(name)' holds \(t.data[i]) at row \(i / t.shape[1]), column \(i % t.shape[1]) — a model with NaN or Inf weights cannot be quantized; fix or re-train the model")
        }
        if case .int4(let g, _) = format, t.shape[1] % g != 0 {
            throw QuantizationError("\(source): group size \(g) does not divide the \(t.shape[1])-column rows of '\(name)' — use a group size that divides \(t.shape[1]) (\(quantizationGroupSizes.filter { t.shape[1] % $0 == 0 }.map { "int4-g\($0)" }.joined(separator: ", ").nilIfEmpty ?? "none fits: use int8-dynamic"))", usage: true)
        }
        let q = QuantizedTensor(quantizing: t, as: format)
        do { try q.validate() } catch {
            throw QuantizationError("\(source): tensor '\(name)' does not quantize to \(format): \(error.description) — its values are out of range for \(format); keep it in fp32")
        }
        out[name] = q
    }
    return out
}

extension String {
    /// nil for the empty string.
    var nilIfEmpty: String? { isEmpty ? nil : self }
}
