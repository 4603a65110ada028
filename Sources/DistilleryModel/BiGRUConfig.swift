// BiGRUConfig: the sizes of a bidirectional-GRU classifier student (Tang et al. 2019,
// "Distilling task-specific knowledge from BERT into simple neural networks", with a GRU in
// place of their LSTM) and the one encoder protocol inference runs models through.
//
// The model: word embeddings [V, E] → `layers` bidirectional GRU layers (PyTorch nn.GRU,
// batch_first, hidden H per direction) → max and mean pooling over each sequence's own
// tokens, concatenated [max(2H), mean(2H)] → a linear classifier. Its config is stored as the
// `config_json` of a Distillery model file with `"distillery_architecture": "bigru"`, and
// its tensors carry PyTorch's names (`gru.weight_ih_l0_reverse`), so a state dict of
// `nn.GRU` maps one to one. Left out on purpose: dropout, a hidden layer before the
// classifier, character inputs.
import DistilleryJSON
import DistilleryTensor

/// A model inference can run on a padded batch of token ids: BERT encoders and BiGRU students.
public protocol SequenceEncoder: AnyObject, Sendable {
    /// Runs the model on a batch: last-layer token states, pooled vector, logits.
    func encode(_ batch: EncoderBatch) throws -> EncoderOutput
    /// Classes of the classifier head (0 when there is none).
    var classifierLabels: Int { get }
    /// Number of scalar parameters.
    var parameterCount: Int { get }
}

extension BertEncoder: SequenceEncoder {
    public func encode(_ batch: EncoderBatch) throws -> EncoderOutput { try forward(batch, hiddenStates: false, attentions: false) }
    public var classifierLabels: Int { heads.classifierLabels }
}

/// Sizes and labels of a BiGRU classifier.
public struct BiGRUConfig: Sendable, Equatable {
    /// The `distillery_architecture` value of the stored config.
    public static let architecture = "bigru"
    /// Upper bounds on the sizes (memory of one batch stays bounded).
    public static let maximumHidden = 4096, maximumLayers = 8, maximumVocabulary = 1 << 22

    /// Rows of the embedding table (the teacher's wordpiece vocabulary).
    public var vocabSize: Int
    /// Width of a word embedding, the first GRU layer's input.
    public var embeddingSize: Int
    /// GRU units per direction.
    public var hiddenSize: Int
    /// Bidirectional GRU layers.
    public var layers: Int
    /// Class names, in class order.
    public var labels: [String]
    /// Longest input accepted (the teacher's positions: the tokenizer and label cache share them).
    public var maxPositions: Int

    /// A config; see the properties.
    public init(vocabSize: Int, embeddingSize: Int, hiddenSize: Int, layers: Int, labels: [String], maxPositions: Int) {
        (self.vocabSize, self.embeddingSize, self.hiddenSize, self.layers, self.labels, self.maxPositions)
            = (vocabSize, embeddingSize, hiddenSize, layers, labels, maxPositions)
    }

    /// Width of the pooled vector: max and mean of both directions, 4H.
    public var pooledSize: Int { 4 * hiddenSize }

    /// True when a stored config_json names this architecture.
    public static func matches(json: String) -> Bool {
        (try? JSONValue.parse(json))?.objectValue?["distillery_architecture"]?.stringValue == architecture
    }

    /// Checks the sizes; `source` names the file in errors.
    public func validate(source: String = "config") throws(ModelError) {
        let checks: [(String, Int, ClosedRange<Int>)] = [
            ("vocab_size", vocabSize, 1...Self.maximumVocabulary), ("embedding_size", embeddingSize, 1...Self.maximumHidden),
            ("hidden_size", hiddenSize, 1...Self.maximumHidden), ("num_layers", layers, 1...Self.maximumLayers),
            ("max_position_embeddings", maxPositions, 2...(1 << 20)),
        ]
        for (key, value, range) in checks where !range.contains(value) {
            throw ModelError.badConfig(source, "\(key) is \(value), outside \(range.lowerBound)...\(range.upperBound)",
                                       hint: "the BiGRU config is damaged; distil the student again")
        }
        guard labels.count >= 2 else {
            throw ModelError.badConfig(source, "a BiGRU classifier needs at least 2 labels, got \(labels.count)",
                                       hint: "the model file is incomplete; distil the student again")
        }
    }

    /// Reads a stored config_json (`distillery_architecture` "bigru").
    public init(json: String, source: String) throws(ModelError) {
        guard let object = (try? JSONValue.parse(json))?.objectValue else {
            throw ModelError.badConfig(source, "config_json is not a JSON object", hint: "the model file is damaged; distil the student again")
        }
        func int(_ key: String) throws(ModelError) -> Int {
            guard let v = object[key]?.intValue else {
                throw ModelError.badConfig(source, "'\(key)' is missing or not an integer", hint: "a BiGRU config states every size; distil the student again")
            }
            return v
        }
        var names: [String] = []
        if let id2label = object["id2label"]?.objectValue {
            names = [String](repeating: "", count: id2label.count)
            for (key, value) in id2label {
                guard let i = Int(key), names.indices.contains(i), let name = value.stringValue else {
                    throw ModelError.badConfig(source, "id2label has a bad entry '\(key)'", hint: "labels are numbered 0..<count")
                }
                names[i] = name
            }
        }
        self.init(vocabSize: try int("vocab_size"), embeddingSize: try int("embedding_size"), hiddenSize: try int("hidden_size"),
                  layers: try int("num_layers"), labels: names, maxPositions: try int("max_position_embeddings"))
        try validate(source: source)
    }

    /// The config as stored: these sizes, the labels as HF names them, and `extra` keys
    /// (the maximum length trained at, …), as pretty JSON with sorted keys.
    public func json(extra: [String: JSONValue] = [:]) throws -> String {
        var object = extra
        object["distillery_architecture"] = .string(Self.architecture)
        object["architectures"] = .array([.string("DistilleryBiGRUForSequenceClassification")])
        object["vocab_size"] = .int(vocabSize)
        object["embedding_size"] = .int(embeddingSize)
        object["hidden_size"] = .int(hiddenSize)
        object["num_layers"] = .int(layers)
        object["max_position_embeddings"] = .int(maxPositions)
        object["id2label"] = .object(Dictionary(uniqueKeysWithValues: labels.enumerated().map { (String($0), .string($1)) }))
        object["label2id"] = .object(Dictionary(uniqueKeysWithValues: labels.enumerated().map { ($1, .int($0)) }))
        return try JSONCoding.string(JSONValue.object(object), pretty: true)
    }
}

/// The tensors of a BiGRU classifier in canonical order, PyTorch names: the embedding
/// table, per layer and direction `gru.{weight_ih,weight_hh,bias_ih,bias_hh}_l{k}[_reverse]`
/// (gate rows r, z, n), then the classifier over the pooled [max, mean] vector.
public func biGRUParameterShapes(_ c: BiGRUConfig) -> [(name: String, shape: [Int])] {
    let H = c.hiddenSize
    var shapes: [(name: String, shape: [Int])] = [("embeddings.word_embeddings.weight", [c.vocabSize, c.embeddingSize])]
    for l in 0..<c.layers {
        let input = l == 0 ? c.embeddingSize : 2 * H
        for suffix in ["", "_reverse"] {
            shapes += [("gru.weight_ih_l\(l)\(suffix)", [3 * H, input]), ("gru.weight_hh_l\(l)\(suffix)", [3 * H, H]),
                       ("gru.bias_ih_l\(l)\(suffix)", [3 * H]), ("gru.bias_hh_l\(l)\(suffix)", [3 * H])]
        }
    }
    shapes += [("classifier.weight", [c.labels.count, c.pooledSize]), ("classifier.bias", [c.labels.count])]
    return shapes
}
