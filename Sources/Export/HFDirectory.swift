// HFDirectory: a model as an HF transformers / sentence-transformers directory —
// model.safetensors (F32, HF names), config.json, vocab.txt, tokenizer_config.json,
// special_tokens_map.json, and when the model pools, sentence-transformers' modules.json,
// sentence_bert_config.json, 1_Pooling/config.json and 2_Normalize/.
//
// Heads: a classifier that reads the tanh pooler over [CLS] is HF's
// BertForSequenceClassification (tensors under `bert.`, `classifier.*` at the root), which
// AutoModelForSequenceClassification loads. A classifier on the mean of the last hidden
// states (kd's probe head) has no HF class: the directory is a BertModel (AutoModel and
// sentence-transformers load the encoder) that keeps `classifier.*` and
// `distillery_classifier_pooling: "mean"` for `kd import`; logits are
// mean(last_hidden_state) · Wᵀ + b, and the export says so. Per-layer shapes are padded.
// Left out on purpose: tokenizer.json (transformers builds the fast tokenizer from vocab.txt).
import DistilleryJSON
import DistilleryTensor
import Foundation
import WeightIO

/// The files of an HF export, by relative path, and what the export had to say.
public struct HFDirectoryExport {
    /// Relative path → bytes.
    public var files: [(path: String, data: Data)]
    /// Empty directories to create (sentence-transformers' 2_Normalize).
    public var directories: [String]
    /// What a runtime cannot represent and what the export did about it.
    public var notes: [String]
}

/// BERT special tokens and the HF tokenizer keys naming them.
let bertSpecialTokens: [(key: String, token: String)] = [
    ("unk_token", "[UNK]"), ("sep_token", "[SEP]"), ("pad_token", "[PAD]"), ("cls_token", "[CLS]"), ("mask_token", "[MASK]"),
]

/// Builds the files of an HF directory export of `model`.
public func hfDirectoryExport(_ model: ExportModel) throws -> HFDirectoryExport {
    var notes: [String] = []
    var model = model
    if model.hasPerLayerShapes {
        model = try model.paddedToUniformShapes()
        notes.append("per-layer head counts / FFN widths padded with zeros to \(model.config.headCount) heads and FFN \(model.config.intermediateSize) (outputs unchanged, no speed-up)")
    }
    guard let original = (try? JSONValue.parse(model.configJSON))?.objectValue else { throw ExportError("config.json is not a JSON object") }
    var config = original
    let clsClassifier = model.hasClassifier && model.config.classifierPooling == .cls
    var tensors = model.tensors
    if clsClassifier {
        tensors = tensors.map { ($0.name.hasPrefix("classifier.") ? $0.name : "bert." + $0.name, $0.tensor) }
        config["architectures"] = .array([.string("BertForSequenceClassification")])
    } else {
        config["architectures"] = .array([.string("BertModel")])
        if model.hasClassifier {
            notes.append("the classifier reads the mean of the last hidden states, which BertForSequenceClassification cannot express: exported as a BertModel (AutoModel / sentence-transformers) with classifier.weight/bias kept for kd import; logits = mean-pooled last_hidden_state · classifier.weightᵀ + classifier.bias")
        }
    }
    config["model_type"] = .string("bert")
    if config["torch_dtype"] != nil { config["torch_dtype"] = .string("float32") }
    if config["dtype"] != nil { config["dtype"] = .string("float32") }
    var files: [(path: String, data: Data)] = []
    let safetensors = SafetensorsFile(tensors: tensors.map { ($0.name, "F32", $0.tensor) }, metadata: ["format": "pt"])
    files.append(("model.safetensors", safetensors.serialized()))
    // The config text as it was when nothing changed, so an import gets it back verbatim.
    let configText = config == original ? model.configJSON : try JSONCoding.string(JSONValue.object(config), pretty: true) + "\n"
    files.append(("config.json", Data(configText.utf8)))
    files.append(("vocab.txt", Data((model.vocabulary.joined(separator: "\n") + "\n").utf8)))
    var tokenizerConfig: [String: JSONValue] = [
        "tokenizer_class": .string("BertTokenizer"), "do_lower_case": .bool(model.lowercase),
        "tokenize_chinese_chars": .bool(model.tokenizeChineseChars), "strip_accents": model.stripAccents.map(JSONValue.bool) ?? .null,
        "model_max_length": .int(model.config.maxPositions), "clean_up_tokenization_spaces": .bool(false),
    ]
    var specialMap: [String: JSONValue] = [:]
    for (key, token) in bertSpecialTokens where model.vocabulary.contains(token) {
        tokenizerConfig[key] = .string(token)
        specialMap[key] = .string(token)
    }
    files.append(("tokenizer_config.json", Data(try JSONCoding.string(JSONValue.object(tokenizerConfig), pretty: true).utf8)))
    files.append(("special_tokens_map.json", Data(try JSONCoding.string(JSONValue.object(specialMap), pretty: true).utf8)))
    var directories: [String] = []
    if model.pooling == "mean" || model.pooling == "cls" {
        var modules: [JSONValue] = [
            .object(["idx": .int(0), "name": .string("0"), "path": .string(""), "type": .string("sentence_transformers.models.Transformer")]),
            .object(["idx": .int(1), "name": .string("1"), "path": .string("1_Pooling"), "type": .string("sentence_transformers.models.Pooling")]),
        ]
        if model.normalize {
            modules.append(.object(["idx": .int(2), "name": .string("2"), "path": .string("2_Normalize"), "type": .string("sentence_transformers.models.Normalize")]))
            directories.append("2_Normalize")
        }
        files.append(("modules.json", Data(try JSONCoding.string(JSONValue.array(modules), pretty: true).utf8)))
        let poolingConfig: [String: JSONValue] = [
            "word_embedding_dimension": .int(model.config.hiddenSize),
            "pooling_mode_cls_token": .bool(model.pooling == "cls"), "pooling_mode_mean_tokens": .bool(model.pooling == "mean"),
            "pooling_mode_max_tokens": .bool(false), "pooling_mode_mean_sqrt_len_tokens": .bool(false),
            "pooling_mode_weightedmean_tokens": .bool(false), "pooling_mode_lasttoken": .bool(false), "include_prompt": .bool(true),
        ]
        files.append(("1_Pooling/config.json", Data(try JSONCoding.string(JSONValue.object(poolingConfig), pretty: true).utf8)))
        let stConfig: [String: JSONValue] = ["max_seq_length": .int(model.maxLength), "do_lower_case": .bool(false)]
        files.append(("sentence_bert_config.json", Data(try JSONCoding.string(JSONValue.object(stConfig), pretty: true).utf8)))
    }
    return HFDirectoryExport(files: files, directories: directories, notes: notes)
}
