// BertConfig: the architecture of a BERT-family encoder, read from HF `config.json`.
//
// Follows the keys of HF transformers' `BertConfig`. Per-layer head counts and FFN
// widths (after structured pruning) are Distillery's own optional keys
// `distillery_layer_heads` and `distillery_layer_intermediate_sizes`; without them every
// layer has `num_attention_heads` heads and `intermediate_size` FFN neurons. How the
// classifier reads the sequence is `distillery_classifier_pooling`: "cls" (default, HF's
// tanh pooler over [CLS]) or "mean" (the classifier on the masked mean of the last hidden
// states, no pooler — the recipe for encoders trained for mean pooling, e.g. all-MiniLM).
// Reading is strict, because config.json is input: a key of the wrong JSON type is an
// error, never a default (true is not 1, 2.0 is not an integer), and every size is checked
// against `BertConfigLimits` before any array is sized from it, so a hostile or corrupt
// file fails with a message instead of an allocation trap in a release build.
// Left out on purpose: relative position embeddings, decoder/cross-attention options,
// activations other than exact-erf GELU.
import DistilleryJSON
import Foundation

/// The largest sizes a config may state. Far above any BERT-family encoder (BERT-large:
/// 24 layers, hidden 1024, 16 heads, FFN 4096, 512 positions; the largest multilingual
/// vocabularies hold ~250k tokens), and small enough that the biggest tensor they imply,
/// vocabulary × hidden = 2^38 elements, and any parameter count (< 2^50) cannot overflow
/// an Int — so code sized from a validated config needs no overflow checks.
public enum BertConfigLimits {
    /// Encoder layers.
    public static let layers = 1024
    /// Hidden size.
    public static let hiddenSize = 1 << 16
    /// Attention heads of a layer.
    public static let heads = 1024
    /// FFN width of a layer.
    public static let intermediateSize = 1 << 18
    /// Vocabulary entries.
    public static let vocabulary = 1 << 22
    /// Position embeddings.
    public static let positions = 1 << 20
    /// Token types.
    public static let tokenTypes = 1 << 16
}

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
        let parsed: JSONValue
        do { parsed = try JSONValue.parse(json) } catch let error as JSONDuplicateKey {
            throw ModelError.badConfig(source, "\(error)", hint: "keep one value per key; which one was meant is not knowable")
        } catch {
            throw ModelError.badConfig(source, "is not valid JSON", hint: "expected HF config.json text")
        }
        guard let dict = parsed.objectValue else {
            throw ModelError.badConfig(source, "is not a JSON object",
                                       hint: "expected HF config.json text")
        }
        /// The value of `key` (nil when absent), or an error naming what it should have been.
        func typed<T>(_ key: String, _ kind: String, _ read: (JSONValue) -> T?) throws(ModelError) -> T? {
            guard let value = dict[key] else { return nil }
            guard let typed = read(value) else {
                throw ModelError.badConfig(source, "key '\(key)' is \(shown(value)), expected \(kind)",
                                           hint: "HF config.json states it as \(kind); fix the file")
            }
            return typed
        }
        func int(_ key: String, default value: Int? = nil) throws(ModelError) -> Int {
            if let n = try typed(key, "an integer", \.intValue) { return n }
            if let value { return value }
            throw ModelError.badConfig(source, "key '\(key)' is missing", hint: "every BERT config.json has '\(key)'")
        }
        func string(_ key: String, default value: String) throws(ModelError) -> String {
            try typed(key, "a string", \.stringValue) ?? value
        }
        let modelType = try string("model_type", default: "bert")
        guard ["bert", "distilbert-like", "minilm"].contains(modelType) || modelType.hasPrefix("bert") else {
            throw ModelError.badConfig(source, "model_type '\(modelType)' is not supported",
                                       hint: "Distillery reads BERT-family encoders (model_type \"bert\")")
        }
        let act = try string("hidden_act", default: "gelu")
        guard act == "gelu" else {
            throw ModelError.badConfig(source, "hidden_act '\(act)' is not supported",
                                       hint: "only exact-erf GELU (\"gelu\") is implemented")
        }
        let positionType = try string("position_embedding_type", default: "absolute")
        guard positionType == "absolute" else {
            throw ModelError.badConfig(source, "position_embedding_type '\(positionType)' is not supported",
                                       hint: "only absolute position embeddings are implemented")
        }
        let eps = try typed("layer_norm_eps", "a number", \.numberValue) ?? 1e-12
        guard eps > 0, eps.isFinite, Float(eps) > 0, Float(eps).isFinite else {
            throw ModelError.badConfig(source, "'layer_norm_eps' is \(eps)",
                                       hint: "LayerNorm's epsilon must be a finite float32 number > 0 (BERT uses 1e-12)")
        }
        // Sizes are checked before anything is sized from them (the per-layer lists below).
        let layerCount = try int("num_hidden_layers")
        guard layerCount >= 1, layerCount <= BertConfigLimits.layers else {
            throw ModelError.badConfig(source, "'num_hidden_layers' is \(layerCount)",
                                       hint: "an encoder has 1...\(BertConfigLimits.layers) layers")
        }
        self.init(vocabSize: try int("vocab_size"), hiddenSize: try int("hidden_size"),
                  layerCount: layerCount, headCount: try int("num_attention_heads"),
                  intermediateSize: try int("intermediate_size"),
                  maxPositions: try int("max_position_embeddings", default: 512),
                  typeVocabSize: try int("type_vocab_size", default: 2),
                  layerNormEps: Float(eps),
                  padTokenId: try int("pad_token_id", default: 0))
        if let id2label = try typed("id2label", "an object of label names", \.objectValue), !id2label.isEmpty {
            var names = [String](repeating: "", count: id2label.count)
            for (key, value) in id2label {
                guard let i = Int(key), i >= 0, i < names.count, let name = value.stringValue else {
                    throw ModelError.badConfig(source, "id2label has a bad entry '\(key)': \(shown(value))",
                                               hint: "id2label maps \"0\"...\"N-1\" to label names")
                }
                names[i] = name
            }
            labels = names
        }
        func probability(_ key: String) throws(ModelError) -> Float? {
            guard let value = dict[key], value != .null else { return nil }
            guard let p = value.numberValue, p >= 0, p < 1 else {
                throw ModelError.badConfig(source, "'\(key)' is \(shown(value))", hint: "dropout probabilities are numbers in [0, 1)")
            }
            return Float(p)
        }
        hiddenDropout = try probability("hidden_dropout_prob") ?? 0.1
        attentionDropout = try probability("attention_probs_dropout_prob") ?? 0.1
        classifierDropout = try probability("classifier_dropout") ?? hiddenDropout
        let integers: (JSONValue) -> [Int]? = { value in
            guard let items = value.arrayValue, items.count == layerCount else { return nil }
            let numbers = items.compactMap(\.intValue)
            return numbers.count == items.count ? numbers : nil
        }
        let perLayer = "an array of \(layerCount) integers (one per layer)"
        if let heads = try typed("distillery_layer_heads", perLayer, integers) { layerHeads = heads }
        if let widths = try typed("distillery_layer_intermediate_sizes", perLayer, integers) { layerIntermediateSizes = widths }
        if let value = dict["distillery_classifier_pooling"] {
            guard let name = value.stringValue, let mode = PoolingMode(rawValue: name) else {
                throw ModelError.badConfig(source, "'distillery_classifier_pooling' is \(shown(value))",
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
        let limits: [(String, Int, Int)] = [
            ("vocab_size", vocabSize, BertConfigLimits.vocabulary), ("hidden_size", hiddenSize, BertConfigLimits.hiddenSize),
            ("num_hidden_layers", layerCount, BertConfigLimits.layers), ("num_attention_heads", headCount, BertConfigLimits.heads),
            ("intermediate_size", intermediateSize, BertConfigLimits.intermediateSize),
            ("max_position_embeddings", maxPositions, BertConfigLimits.positions), ("type_vocab_size", typeVocabSize, BertConfigLimits.tokenTypes),
        ]
        for (key, value, limit) in limits where value > limit {
            throw ModelError.badConfig(source, "'\(key)' is \(value), above the limit \(limit)",
                                       hint: "no BERT-family encoder is that large; the file is corrupt or not a BERT config")
        }
        guard layerNormEps > 0, layerNormEps.isFinite else {
            throw ModelError.badConfig(source, "'layer_norm_eps' is \(layerNormEps)", hint: "LayerNorm's epsilon must be finite and > 0 (BERT uses 1e-12)")
        }
        guard padTokenId >= 0, padTokenId < vocabSize else {
            throw ModelError.badConfig(source, "'pad_token_id' is \(padTokenId), outside the vocabulary 0..<\(vocabSize)",
                                       hint: "BERT's padding token is usually id 0 ([PAD])")
        }
        guard hiddenSize % headCount == 0 else {
            throw ModelError.badConfig(source, "hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(headCount)",
                                       hint: "each head has hidden_size / num_attention_heads dimensions")
        }
        guard layerHeads.count == layerCount, layerIntermediateSizes.count == layerCount else {
            throw ModelError.badConfig(source, "per-layer heads/widths list \(layerHeads.count)/\(layerIntermediateSizes.count) entries for \(layerCount) layers",
                                       hint: "distillery_layer_heads and distillery_layer_intermediate_sizes need one entry per layer")
        }
        guard layerHeads.allSatisfy({ $0 >= 1 && $0 <= headCount }),
              layerIntermediateSizes.allSatisfy({ $0 >= 1 && $0 <= BertConfigLimits.intermediateSize }) else {
            throw ModelError.badConfig(source, "per-layer heads \(layerHeads) or widths \(layerIntermediateSizes) out of range",
                                       hint: "each layer keeps 1...\(headCount) heads and 1...\(BertConfigLimits.intermediateSize) FFN neurons")
        }
    }
}

/// A JSON value as an error message quotes it: scalars as written, containers by kind.
private func shown(_ value: JSONValue) -> String {
    switch value {
    case .array: return "an array"
    case .object: return "an object"
    default: return value.jsonText
    }
}
