// ExportModel: what every exporter reads — a BERT model's tensors (HF names), config,
// vocabulary, tokenizer options and pooling — and the one shape change exports make:
// padding per-layer head counts and FFN widths back to the config's uniform sizes.
//
// HF's BertModel and llama.cpp's BERT take one head count and one FFN width for all
// layers. A pruned layer is padded with zero rows of Q/K/V and zero columns of the output
// projection (a padded head scores 0 everywhere, so its softmax is uniform over zero
// values, and its output columns are zero), and with zero FFN rows whose GELU(0) = 0 meets
// zero columns of the down projection: outputs are unchanged, there is no speed-up.
// Left out on purpose: which heads were removed is not recorded, so padding goes at the end.
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

    /// Creates a model from its parts.
    public init(tensors: [(name: String, tensor: Tensor)], config: BertConfig, configJSON: String, vocabulary: [String],
                lowercase: Bool, stripAccents: Bool?, tokenizeChineseChars: Bool, pooling: String, normalize: Bool, maxLength: Int) {
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
        for (name, t) in tensors {
            let parts = name.split(separator: ".")
            guard parts.count >= 4, parts[0] == "encoder", Int(parts[2]) != nil else { padded.append((name, t)); continue }
            let rest = parts.dropFirst(3).joined(separator: ".")
            let f = c.intermediateSize
            switch rest {
            case "attention.self.query.weight", "attention.self.key.weight", "attention.self.value.weight":
                padded.append((name, padRows(t, to: full)))
            case "attention.self.query.bias", "attention.self.key.bias", "attention.self.value.bias":
                padded.append((name, padRows(t, to: full)))
            case "attention.output.dense.weight": padded.append((name, padColumns(t, to: full)))
            case "intermediate.dense.weight", "intermediate.dense.bias": padded.append((name, padRows(t, to: f)))
            case "output.dense.weight": padded.append((name, padColumns(t, to: f)))
            default: padded.append((name, t))
            }
        }
        var copy = self
        copy.tensors = padded
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
