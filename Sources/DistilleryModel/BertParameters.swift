// BertParameters: the one named, ordered parameter list of a BERT encoder and its heads.
//
// Names are HF PyTorch state-dict keys of `BertModel` (no `bert.` prefix) plus
// `classifier.*` of `BertForSequenceClassification`. The order is fixed — embeddings,
// layers in order, pooler, classifier — and drives loading, checkpoints, the optimizer,
// pruning and quantization. Shapes follow the config, including per-layer head counts
// and FFN widths, so a pruned model is the same encoder with smaller tensors.
import DistilleryTensor

/// Which optional heads a weight set carries.
public struct BertHeads: Sendable, Equatable {
    /// `pooler.dense.*` (tanh over the [CLS] state).
    public var pooler: Bool
    /// `classifier.*` with this many labels (0 when absent).
    public var classifierLabels: Int
    public init(pooler: Bool, classifierLabels: Int) {
        self.pooler = pooler
        self.classifierLabels = classifierLabels
    }
}

/// The expected (name, shape) list of a BERT encoder with the given heads, in order.
public func bertParameterShapes(_ c: BertConfig, heads: BertHeads) -> [(name: String, shape: [Int])] {
    let h = c.hiddenSize
    var list: [(String, [Int])] = [
        ("embeddings.word_embeddings.weight", [c.vocabSize, h]),
        ("embeddings.position_embeddings.weight", [c.maxPositions, h]),
        ("embeddings.token_type_embeddings.weight", [c.typeVocabSize, h]),
        ("embeddings.LayerNorm.weight", [h]),
        ("embeddings.LayerNorm.bias", [h]),
    ]
    for l in 0..<c.layerCount {
        let p = "encoder.layer.\(l)."
        let a = c.layerHeads[l] * c.headSize, f = c.layerIntermediateSizes[l]
        list += [
            (p + "attention.self.query.weight", [a, h]), (p + "attention.self.query.bias", [a]),
            (p + "attention.self.key.weight", [a, h]), (p + "attention.self.key.bias", [a]),
            (p + "attention.self.value.weight", [a, h]), (p + "attention.self.value.bias", [a]),
            (p + "attention.output.dense.weight", [h, a]), (p + "attention.output.dense.bias", [h]),
            (p + "attention.output.LayerNorm.weight", [h]), (p + "attention.output.LayerNorm.bias", [h]),
            (p + "intermediate.dense.weight", [f, h]), (p + "intermediate.dense.bias", [f]),
            (p + "output.dense.weight", [h, f]), (p + "output.dense.bias", [h]),
            (p + "output.LayerNorm.weight", [h]), (p + "output.LayerNorm.bias", [h]),
        ]
    }
    if heads.pooler {
        list += [("pooler.dense.weight", [h, h]), ("pooler.dense.bias", [h])]
    }
    if heads.classifierLabels > 0 {
        list += [("classifier.weight", [heads.classifierLabels, h]), ("classifier.bias", [heads.classifierLabels])]
    }
    return list
}

/// Checks a named weight set against the config strictly — every expected tensor present
/// with the right shape, nothing unexpected, all values finite — and returns it in the
/// canonical order. Which heads exist is read from the names present; a classifier must
/// come with a pooler exactly when the config's classifier reads [CLS] through one.
/// A weight held only in another storage (a quantized weight that an inference load does
/// not dequantize) is named in `storedElsewhere` with its shape: it counts as present, its
/// shape is checked, and it is left out of the returned list (the list holds the fp32 tensors).
public func validateBertParameters(_ config: BertConfig, tensors: [String: Tensor],
                                   storedElsewhere: [String: [Int]] = [:]) throws(ModelError)
    -> (heads: BertHeads, parameters: [(name: String, tensor: Tensor)]) {
    let heads = try validateBertShapes(config, shapes: tensors.mapValues(\.shape), storedElsewhere: storedElsewhere)
    var ordered: [(name: String, tensor: Tensor)] = []
    for (name, _) in bertParameterShapes(config, heads: heads) {
        guard let t = tensors[name] else { continue }
        if let i = t.firstNonFiniteIndex {
            throw ModelError.nonFinite(name: name, index: i, value: "\(t.data[i])")
        }
        ordered.append((name, t))
    }
    return (heads, ordered)
}

/// `validateBertParameters` on shapes alone (the values are checked where they are read):
/// the heads the names imply, every expected tensor present (in `shapes` or in
/// `storedElsewhere`) with its shape, and nothing unexpected.
public func validateBertShapes(_ config: BertConfig, shapes: [String: [Int]],
                               storedElsewhere: [String: [Int]] = [:]) throws(ModelError) -> BertHeads {
    func shape(_ name: String) -> [Int]? { shapes[name] ?? storedElsewhere[name] }
    let classifierLabels = shape("classifier.weight")?.first ?? 0
    let heads = BertHeads(pooler: shape("pooler.dense.weight") != nil, classifierLabels: classifierLabels)
    if classifierLabels > 0, !config.labels.isEmpty, config.labels.count != classifierLabels {
        throw ModelError.badConfig("config", "id2label names \(config.labels.count) labels but 'classifier.weight' has \(classifierLabels) rows",
                                   hint: "the config does not belong to these weights; fix id2label")
    }
    if classifierLabels > 0 {
        let h = config.hiddenSize
        switch config.classifierPooling {
        case .cls where !heads.pooler:
            throw ModelError.missingTensor(name: "pooler.dense.weight", expected: [h, h],
                                           hint: "a [CLS] classifier reads the pooler; if this classifier was trained on mean pooling, the config needs \"distillery_classifier_pooling\": \"mean\"")
        case .mean where heads.pooler:
            throw ModelError.unexpectedTensors(["pooler.dense.bias", "pooler.dense.weight"],
                                               hint: "the config says distillery_classifier_pooling \"mean\": the classifier reads the mean of the last hidden states and has no pooler")
        default: break
        }
    }
    let expected = bertParameterShapes(config, heads: heads)
    for (name, expectedShape) in expected {
        guard let found = shape(name) else {
            throw ModelError.missingTensor(name: name, expected: expectedShape,
                                           hint: "was it exported with a different naming? try 'kd info' on the source")
        }
        guard found == expectedShape else {
            throw ModelError.wrongShape(name: name, expected: expectedShape, found: found, hint: layerShapeHint(config, name))
        }
    }
    let known = Set(expected.map(\.name))
    let extra = Set(shapes.keys).union(storedElsewhere.keys).filter { !known.contains($0) }.sorted()
    if !extra.isEmpty {
        throw ModelError.unexpectedTensors(extra, hint: "they are not part of a BERT encoder with pooler/classifier; is this another architecture?")
    }
    return heads
}

/// What the config records about the layer of tensor `name` (a pruned model's per-layer
/// shapes), for a shape mismatch; the generic hint outside the layers.
private func layerShapeHint(_ c: BertConfig, _ name: String) -> String {
    let parts = name.split(separator: ".")
    guard parts.count > 3, parts[0] == "encoder", let l = Int(parts[2]), l < c.layerCount else {
        return "config.json may not belong to these weights"
    }
    return "the config records layer \(l) with \(c.layerHeads[l]) heads of \(c.headSize) (distillery_layer_heads, else num_attention_heads) and FFN width \(c.layerIntermediateSizes[l]) (distillery_layer_intermediate_sizes, else intermediate_size); the file's config and tensors disagree — it is corrupt or its config was edited, re-create it (kd prune)"
}
