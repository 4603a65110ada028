// ExportModel: what every exporter reads — a BERT model's tensors (HF names), config,
// vocabulary, tokenizer options and pooling — and the one shape change exports make:
// padding per-layer head counts and FFN widths back to the config's uniform sizes.
//
// HF's BertModel and llama.cpp's BERT take one head count and one FFN width for all
// layers. A pruned layer is padded with zero rows of Q/K/V and zero columns of the output
// projection (a padded head scores 0 everywhere, so its softmax is uniform over zero
// values, and its output columns are zero), and with zero FFN rows whose GELU(0) = 0 meets
// zero columns of the down projection: outputs are unchanged, there is no speed-up.
// Quantized weights (a `kd quantize` file) ride along in their stored form and are padded
// the same way: zero int8 rows / columns, zero int4 groups (code = zero point). Left out on
// purpose: which heads were removed is not recorded, so padding goes at the end.
import DistilleryJSON
import DistilleryModel
import DistilleryTensor
import Foundation

/// An error of an exporter or of reading a GGUF model: the message names the field.
public struct ExportError: Error, CustomStringConvertible, Sendable {
    public let description: String
    /// An error with this message.
    public init(_ description: String) { self.description = description }
}

/// A model as the exporters take it.
public struct ExportModel {
    /// Tensors by canonical HF name (no `bert.` prefix), in canonical order.
    public var tensors: [(name: String, tensor: Tensor)]
    public var config: BertConfig
    /// The HF config.json text (Distillery keys included).
    public var configJSON: String
    /// WordPiece tokens in id order.
    public var vocabulary: [String]
    /// HF `do_lower_case`, `strip_accents`, `tokenize_chinese_chars`.
    public var lowercase: Bool
    public var stripAccents: Bool?
    public var tokenizeChineseChars: Bool
    /// Sentence pooling: "mean", "cls" or "none".
    public var pooling: String
    public var normalize: Bool
    /// The maximum length the model runs at (sentence-transformers' `max_seq_length`).
    public var maxLength: Int
    /// The stored form of quantized weights by HF name (their dequantized values are in
    /// `tensors`); empty for an fp32 model.
    public var quantized: [String: QuantizedTensor] = [:]

    /// Creates a model from its parts.
    public init(tensors: [(name: String, tensor: Tensor)], config: BertConfig, configJSON: String, vocabulary: [String],
                lowercase: Bool, stripAccents: Bool?, tokenizeChineseChars: Bool, pooling: String, normalize: Bool, maxLength: Int,
                quantized: [String: QuantizedTensor] = [:]) {
        self.quantized = quantized
        self.tensors = tensors
        self.config = config
        self.configJSON = configJSON
        self.vocabulary = vocabulary
        self.lowercase = lowercase
        self.stripAccents = stripAccents
        self.tokenizeChineseChars = tokenizeChineseChars
        self.pooling = pooling
        self.normalize = normalize
        self.maxLength = maxLength
    }

    /// Whether some layer has fewer heads or a narrower FFN than the config's uniform sizes.
    public var hasPerLayerShapes: Bool {
        Set(config.layerHeads) != [config.headCount] || Set(config.layerIntermediateSizes) != [config.intermediateSize]
    }

    /// Whether the model carries a classifier head.
    public var hasClassifier: Bool { tensors.contains { $0.name == "classifier.weight" } }

    /// The tensor called `name`.
    public func tensor(_ name: String) throws -> Tensor {
        guard let t = tensors.first(where: { $0.name == name })?.tensor else { throw ExportError("the model has no tensor '\(name)'") }
        return t
    }

    /// The model with every layer padded to `headCount` heads and `intermediateSize` FFN
    /// neurons by zeros (outputs unchanged), and its config.json without per-layer keys.
    public func paddedToUniformShapes() throws -> ExportModel {
        guard hasPerLayerShapes else { return self }
        let c = config, full = c.headCount * c.headSize
        var padded: [(name: String, tensor: Tensor)] = []
        var quantized = self.quantized
        for (name, t) in tensors {
            let parts = name.split(separator: ".")
            guard parts.count >= 4, parts[0] == "encoder", Int(parts[2]) != nil else { padded.append((name, t)); continue }
            let rest = parts.dropFirst(3).joined(separator: ".")
            let f = c.intermediateSize
            let q = self.quantized[name]
            switch rest {
            case "attention.self.query.weight", "attention.self.key.weight", "attention.self.value.weight":
                padded.append((name, padRows(t, to: full)))
                quantized[name] = q.flatMap { padQuantized($0, rows: full, columns: $0.columns) }
            case "attention.self.query.bias", "attention.self.key.bias", "attention.self.value.bias":
                padded.append((name, padRows(t, to: full)))
            case "attention.output.dense.weight":
                padded.append((name, padColumns(t, to: full)))
                quantized[name] = q.flatMap { padQuantized($0, rows: $0.rows, columns: full) }
            case "intermediate.dense.weight", "intermediate.dense.bias":
                padded.append((name, padRows(t, to: f)))
                quantized[name] = q.flatMap { padQuantized($0, rows: f, columns: $0.columns) }
            case "output.dense.weight":
                padded.append((name, padColumns(t, to: f)))
                quantized[name] = q.flatMap { padQuantized($0, rows: $0.rows, columns: f) }
            default: padded.append((name, t))
            }
        }
        var copy = self
        copy.tensors = padded
        copy.quantized = quantized
        copy.config.layerHeads = Array(repeating: c.headCount, count: c.layerCount)
        copy.config.layerIntermediateSizes = Array(repeating: c.intermediateSize, count: c.layerCount)
        guard var object = (try? JSONValue.parse(configJSON))?.objectValue else { throw ExportError("config.json is not a JSON object") }
        object["distillery_layer_heads"] = nil
        object["distillery_layer_intermediate_sizes"] = nil
        copy.configJSON = try JSONCoding.string(JSONValue.object(object), pretty: true)
        return copy
    }
}

/// `t` ([rows, …] or [rows]) with zero rows appended up to `rows`.
func padRows(_ t: Tensor, to rows: Int) -> Tensor {
    let rowSize = t.shape.dropFirst().reduce(1, *)
    var data = t.data
    data.append(contentsOf: [Float](repeating: 0, count: (rows - t.shape[0]) * rowSize))
    return Tensor(shape: [rows] + t.shape.dropFirst(), data: data)
}

/// A [rows, columns] matrix with zero columns appended up to `columns`.
func padColumns(_ t: Tensor, to columns: Int) -> Tensor {
    let (rows, old) = (t.shape[0], t.shape[1])
    var data = [Float](repeating: 0, count: rows * columns)
    for r in 0..<rows { for c in 0..<old { data[r * columns + c] = t.data[r * old + c] } }
    return Tensor(shape: [rows, columns], data: data)
}

/// `q` padded with zero weights to [rows, columns] in its own storage: int8 zero rows get
/// scale 1 and zero columns code 0; int4 zero groups get scale 1 and code = zero point; nil
/// when the padded columns are not whole int4 groups (the caller keeps the fp32 values).
func padQuantized(_ q: QuantizedTensor, rows: Int, columns: Int) -> QuantizedTensor? {
    if rows == q.rows && columns == q.columns { return q }
    switch q.format {
    case .int8:
        var values = [UInt8](repeating: 0, count: rows * columns)
        for r in 0..<q.rows { for c in 0..<q.columns { values[r * columns + c] = q.values[r * q.columns + c] } }
        let scales = q.scales + [Float](repeating: 1, count: rows - q.rows)
        return QuantizedTensor(format: .int8, rows: rows, columns: columns, values: values, scales: scales, zeros: [], inputScale: q.inputScale)
    case .int4(let g, let symmetric):
        guard columns % g == 0 else { return nil }
        let (oldGroups, groups) = (q.columns / g, columns / g)
        let zeroCode: UInt8 = symmetric ? 8 : 0
        var scales = [Float](repeating: 1, count: rows * groups), zeros = [UInt8](repeating: zeroCode, count: rows * groups)
        var values = [UInt8](repeating: zeroCode | zeroCode << 4, count: rows * columns / 2)
        for r in 0..<q.rows {
            for k in 0..<oldGroups {
                scales[r * groups + k] = q.scales[r * oldGroups + k]
                zeros[r * groups + k] = q.zeros[r * oldGroups + k]
            }
            for b in 0..<(q.columns / 2) { values[r * columns / 2 + b] = q.values[r * q.columns / 2 + b] }
        }
        return QuantizedTensor(format: q.format, rows: rows, columns: columns, values: values, scales: scales, zeros: zeros)
    case .bf16:
        return nil
    }
}
