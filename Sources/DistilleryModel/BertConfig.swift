// BertConfig: the architecture of a BERT-family encoder, read from HF `config.json`.
//
// Follows the keys of HF transformers' `BertConfig`. Per-layer head counts and FFN
// widths (after structured pruning) are Distillery's own optional keys
// `distillery_layer_heads` and `distillery_layer_intermediate_sizes`; without them every
// layer has `num_attention_heads` heads and `intermediate_size` FFN neurons. How the
// classifier reads the sequence is `distillery_classifier_pooling`: "cls" (default, HF's
// tanh pooler over [CLS]) or "mean" (the classifier on the masked mean of the last hidden
// states, no pooler — the recipe for encoders trained for mean pooling, e.g. all-MiniLM).
// Left out on purpose: relative position embeddings, decoder/cross-attention options,
// activations other than exact-erf GELU.
import DistilleryJSON
import Foundation

/// Architecture of a BERT encoder and its heads, as HF's `config.json` states it.
public struct BertConfig: Sendable, Equatable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var intermediateSize: Int
    public var maxPositions: Int
    public var typeVocabSize: Int
    public var layerNormEps: Float
    public var padTokenId: Int
    /// Label names by class index (from `id2label`); empty when the config names none.
    public var labels: [String]
    /// Dropout on embeddings and sub-layer outputs during training (`hidden_dropout_prob`).
    public var hiddenDropout: Float = 0.1
    /// Dropout on attention probabilities during training (`attention_probs_dropout_prob`).
    public var attentionDropout: Float = 0.1
    /// Dropout before the classifier (`classifier_dropout`, or `hidden_dropout_prob` when null).
    public var classifierDropout: Float = 0.1
    /// Attention heads of each layer (all `headCount` unless pruned).
    public var layerHeads: [Int]
    /// FFN width of each layer (all `intermediateSize` unless pruned).
    public var layerIntermediateSizes: [Int]
    /// What the classifier reads: the pooler over [CLS] (`.cls`, HF) or the masked mean of
    /// the last hidden states without a pooler (`.mean`).
    public var classifierPooling: PoolingMode = .cls

    /// Size of one attention head: `hiddenSize / headCount`.
    public var headSize: Int { hiddenSize / headCount }

    /// The heads a `classes`-way classifier of this config carries: a pooler only when the
    /// classifier reads [CLS] through it.
    public func classifierHeads(classes: Int) -> BertHeads {
        BertHeads(pooler: classifierPooling == .cls, classifierLabels: classes)
    }

    /// Creates a config from explicit sizes (used by tests and student definitions).
    public init(vocabSize: Int, hiddenSize: Int, layerCount: Int, headCount: Int,
                intermediateSize: Int, maxPositions: Int = 512, typeVocabSize: Int = 2,
                layerNormEps: Float = 1e-12, padTokenId: Int = 0, labels: [String] = []) {
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.layerCount = layerCount
        self.headCount = headCount
        self.intermediateSize = intermediateSize
        self.maxPositions = maxPositions
        self.typeVocabSize = typeVocabSize
        self.layerNormEps = layerNormEps
        self.padTokenId = padTokenId
        self.labels = labels
        self.layerHeads = Array(repeating: headCount, count: layerCount)
        self.layerIntermediateSizes = Array(repeating: intermediateSize, count: layerCount)
    }

    /// Parses HF `config.json` text. `source` names the file in error messages.
    public init(json: String, source: String = "config.json") throws(ModelError) {
        guard let dict = (try? JSONValue.parse(json))?.objectValue else {
            throw ModelError.badConfig(source, "is not a JSON object",
                                       hint: "expected HF config.json text")
        }
        func int(_ key: String, default value: Int? = nil) throws(ModelError) -> Int {
            if let n = dict[key]?.intValue { return n }
            if dict[key] == nil, let value { return value }
            throw ModelError.badConfig(source, "key '\(key)' is \(dict[key] == nil ? "missing" : "not an integer")",
                                       hint: "every BERT config.json has '\(key)'")
        }
        let modelType = dict["model_type"]?.stringValue ?? "bert"
        guard ["bert", "distilbert-like", "minilm"].contains(modelType) || modelType.hasPrefix("bert") else {
            throw ModelError.badConfig(source, "model_type '\(modelType)' is not supported",
                                       hint: "Distillery reads BERT-family encoders (model_type \"bert\")")
        }
        let act = dict["hidden_act"]?.stringValue ?? "gelu"
        guard act == "gelu" else {
            throw ModelError.badConfig(source, "hidden_act '\(act)' is not supported",
                                       hint: "only exact-erf GELU (\"gelu\") is implemented")
        }
        let positionType = dict["position_embedding_type"]?.stringValue ?? "absolute"
        guard positionType == "absolute" else {
            throw ModelError.badConfig(source, "position_embedding_type '\(positionType)' is not supported",
                                       hint: "only absolute position embeddings are implemented")
        }
        self.init(vocabSize: try int("vocab_size"), hiddenSize: try int("hidden_size"),
                  layerCount: try int("num_hidden_layers"), headCount: try int("num_attention_heads"),
                  intermediateSize: try int("intermediate_size"),
                  maxPositions: try int("max_position_embeddings", default: 512),
                  typeVocabSize: try int("type_vocab_size", default: 2),
                  layerNormEps: Float(dict["layer_norm_eps"]?.numberValue ?? 1e-12),
                  padTokenId: try int("pad_token_id", default: 0))
        if let id2label = dict["id2label"]?.objectValue, !id2label.isEmpty {
            var names = [String](repeating: "", count: id2label.count)
            for (key, value) in id2label {
                guard let i = Int(key), i >= 0, i < names.count, let name = value.stringValue else {
                    throw ModelError.badConfig(source, "id2label has a bad entry '\(key)': \(value.jsonText)",
                                               hint: "id2label maps \"0\"...\"N-1\" to label names")
                }
                names[i] = name
            }
            labels = names
        }
        func probability(_ key: String) throws(ModelError) -> Float? {
            guard let value = dict[key], value != .null else { return nil }
            guard let p = value.numberValue, p >= 0, p < 1 else {
                throw ModelError.badConfig(source, "'\(key)' is \(value.jsonText)", hint: "dropout probabilities lie in [0, 1)")
            }
            return Float(p)
        }
        hiddenDropout = try probability("hidden_dropout_prob") ?? 0.1
        attentionDropout = try probability("attention_probs_dropout_prob") ?? 0.1
        classifierDropout = try probability("classifier_dropout") ?? hiddenDropout
        func integers(_ key: String) -> [Int]? {
            guard let items = dict[key]?.arrayValue else { return nil }
            let values = items.compactMap(\.intValue)
            return values.count == items.count ? values : nil
        }
        if let heads = integers("distillery_layer_heads") { layerHeads = heads }
        if let widths = integers("distillery_layer_intermediate_sizes") { layerIntermediateSizes = widths }
        if let value = dict["distillery_classifier_pooling"] {
            guard let name = value.stringValue, let mode = PoolingMode(rawValue: name) else {
                throw ModelError.badConfig(source, "'distillery_classifier_pooling' is \(value.jsonText)",
                                           hint: "it is \"cls\" (pooler over [CLS]) or \"mean\" (mean of the last hidden states)")
            }
            classifierPooling = mode
        }
        try validate(source: source)
    }

    /// Checks the sizes are positive and consistent with each other.
    public func validate(source: String = "config") throws(ModelError) {
        let sizes: [(String, Int)] = [("vocab_size", vocabSize), ("hidden_size", hiddenSize),
                                      ("num_hidden_layers", layerCount), ("num_attention_heads", headCount),
                                      ("intermediate_size", intermediateSize),
                                      ("max_position_embeddings", maxPositions), ("type_vocab_size", typeVocabSize)]
        for (key, value) in sizes where value <= 0 {
            throw ModelError.badConfig(source, "'\(key)' is \(value)", hint: "sizes must be positive")
        }
        guard hiddenSize % headCount == 0 else {
            throw ModelError.badConfig(source, "hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(headCount)",
                                       hint: "each head has hidden_size / num_attention_heads dimensions")
        }
        guard layerHeads.count == layerCount, layerIntermediateSizes.count == layerCount else {
            throw ModelError.badConfig(source, "per-layer heads/widths list \(layerHeads.count)/\(layerIntermediateSizes.count) entries for \(layerCount) layers",
                                       hint: "distillery_layer_heads and distillery_layer_intermediate_sizes need one entry per layer")
        }
        guard layerHeads.allSatisfy({ $0 >= 1 && $0 <= headCount }), layerIntermediateSizes.allSatisfy({ $0 >= 1 }) else {
            throw ModelError.badConfig(source, "per-layer heads \(layerHeads) or widths \(layerIntermediateSizes) out of range",
                                       hint: "each layer keeps 1...\(headCount) heads and at least one FFN neuron")
        }
    }
}
