// AxisTable: what each axis of each BERT parameter indexes — the one table that importance
// scoring (Importance.swift) and slicing (Slicing.swift) both read, so what "touches" a
// head, a neuron or a hidden dimension is written down once.
//
// Names are HF PyTorch keys (DistilleryModel/BertParameters.swift). An axis indexes the
// vocabulary (word-embedding rows), the hidden size (the residual stream: one set of
// dimensions for the whole model, so every residual add stays aligned), attention
// heads·headSize (Q/K/V rows and biases, attention-output columns; sliced by whole heads),
// FFN neurons (intermediate rows and bias, output columns), or nothing prunable (positions,
// token types, labels). Layers are not an axis of any tensor: a layer is kept or dropped
// whole, by its name. Also here: the error type of the module and `KeptIndices`, a checked,
// ascending subset of 0..<n with its old → new map.
// Left out on purpose: tensors that are not part of a BERT encoder with pooler/classifier
// heads (a distillation run's projections are the caller's business).
import DistilleryModel
import DistilleryTensor

// MARK: - Errors

/// A compression request that cannot be carried out: what was wrong, where, what to do.
public struct CompressionError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The part of the model the problem is about, e.g. "heads of layer 3".
    public var location: String
    /// What is wrong.
    public var message: String
    /// What to do about it.
    public var hint: String

    /// Creates an error about `location`.
    public init(_ location: String, _ message: String, hint: String) {
        self.location = location
        self.message = message
        self.hint = hint
    }

    public var description: String { "\(location): \(message) — \(hint)" }
}

// MARK: - The axis table

/// What one axis (dimension) of a BERT parameter indexes.
public enum ParameterAxis: String, Sendable, CaseIterable {
    /// Positions, token types, labels: never sliced.
    case full
    /// Word-embedding rows (token ids).
    case vocabulary
    /// The hidden size (residual stream), shared by every tensor of the model.
    case hidden
    /// heads·headSize rows (or columns) of the attention projections, sliced by whole heads.
    case heads
    /// FFN neurons of one layer.
    case neurons
}

/// Where a BERT parameter sits and what each of its axes indexes.
public struct ParameterAxes: Sendable, Equatable {
    /// Encoder layer of `encoder.layer.<l>.…` tensors; nil outside the layers.
    public var layer: Int?
    /// The name after `encoder.layer.<l>.` for layer tensors, the whole name otherwise.
    public var localName: String
    /// One entry per tensor dimension, outermost first.
    public var axes: [ParameterAxis]

    /// The tensor's name when its layer is renumbered to `newLayer` (unchanged outside the layers).
    public func name(inLayer newLayer: Int) -> String {
        layer == nil ? localName : "encoder.layer.\(newLayer).\(localName)"
    }
}

/// Axes of each per-layer tensor, by name after `encoder.layer.<l>.`.
private let layerTensorAxes: [String: [ParameterAxis]] = [
    "attention.self.query.weight": [.heads, .hidden], "attention.self.query.bias": [.heads],
    "attention.self.key.weight": [.heads, .hidden], "attention.self.key.bias": [.heads],
    "attention.self.value.weight": [.heads, .hidden], "attention.self.value.bias": [.heads],
    "attention.output.dense.weight": [.hidden, .heads], "attention.output.dense.bias": [.hidden],
    "attention.output.LayerNorm.weight": [.hidden], "attention.output.LayerNorm.bias": [.hidden],
    "intermediate.dense.weight": [.neurons, .hidden], "intermediate.dense.bias": [.neurons],
    "output.dense.weight": [.hidden, .neurons], "output.dense.bias": [.hidden],
    "output.LayerNorm.weight": [.hidden], "output.LayerNorm.bias": [.hidden],
]

/// Axes of the tensors outside the encoder layers.
private let globalTensorAxes: [String: [ParameterAxis]] = [
    "embeddings.word_embeddings.weight": [.vocabulary, .hidden],
    "embeddings.position_embeddings.weight": [.full, .hidden],
    "embeddings.token_type_embeddings.weight": [.full, .hidden],
    "embeddings.LayerNorm.weight": [.hidden], "embeddings.LayerNorm.bias": [.hidden],
    "pooler.dense.weight": [.hidden, .hidden], "pooler.dense.bias": [.hidden],
    "classifier.weight": [.full, .hidden], "classifier.bias": [.full],
]

/// The layer and axes of the BERT parameter `name`, or nil when it is not one.
public func parameterAxes(_ name: String) -> ParameterAxes? {
    if let axes = globalTensorAxes[name] { return ParameterAxes(layer: nil, localName: name, axes: axes) }
    let parts = name.split(separator: ".", maxSplits: 3)
    guard parts.count == 4, parts[0] == "encoder", parts[1] == "layer", let layer = Int(parts[2]), layer >= 0,
          let axes = layerTensorAxes[String(parts[3])] else { return nil }
    return ParameterAxes(layer: layer, localName: String(parts[3]), axes: axes)
}

/// Checks `tensors` against `config` strictly (every tensor present, shaped and finite,
/// nothing else) and returns them in canonical order, as a compression error.
func validatedParameters(_ config: BertConfig, _ tensors: [String: Tensor]) throws(CompressionError)
    -> [(name: String, tensor: Tensor)] {
    do {
        try config.validate(source: "config")
        return try validateBertParameters(config, tensors: tensors).parameters
    } catch {
        throw CompressionError("model", "the weights do not match the config: \(error)",
                               hint: "compress a complete BERT weight set with the config it was loaded with (kd info shows both)")
    }
}

// MARK: - Kept indices

/// A checked subset of `0..<sourceCount`, ascending, with the map from old to new index.
public struct KeptIndices: Sendable, Equatable {
    /// The kept old indices, ascending; new index i is old index `indices[i]`.
    public let indices: [Int]
    /// Size of the axis before slicing.
    public let sourceCount: Int

    /// Everything of an axis of `count` entries.
    public static func all(_ count: Int) -> KeptIndices { KeptIndices(ascending: Array(0..<count), sourceCount: count) }

    /// Trusted indices: ascending, distinct and in range (built here, never read from input).
    init(ascending indices: [Int], sourceCount: Int) {
        self.indices = indices
        self.sourceCount = sourceCount
    }

    /// Checks `indices` (any order) against an axis of `sourceCount` entries: each in range,
    /// none twice. They are kept in their original (ascending) order. `location` and `unit`
    /// word the error, e.g. "heads of layer 2" and "head".
    public init(_ indices: [Int], sourceCount: Int, location: String, unit: String) throws(CompressionError) {
        if let bad = indices.first(where: { $0 < 0 || $0 >= sourceCount }) {
            throw CompressionError(location, "keeps \(unit) \(bad), outside 0..<\(sourceCount)",
                                   hint: "\(unit) indices are 0-based and refer to the model before compression")
        }
        let sorted = indices.sorted()
        if let i = sorted.indices.dropFirst().first(where: { sorted[$0] == sorted[$0 - 1] }) {
            throw CompressionError(location, "keeps \(unit) \(sorted[i]) more than once",
                                   hint: "list each kept \(unit) once")
        }
        self.init(ascending: sorted, sourceCount: sourceCount)
    }

    /// `list` checked as kept indices of an axis of `sourceCount` entries; nil keeps all of it.
    public static func keeping(_ list: [Int]?, of sourceCount: Int, location: String, unit: String) throws(CompressionError)
        -> KeptIndices {
        guard let list else { return .all(sourceCount) }
        return try KeptIndices(list, sourceCount: sourceCount, location: location, unit: unit)
    }

    /// Number of kept indices.
    public var count: Int { indices.count }
    /// True when nothing is removed.
    public var isEverything: Bool { indices.count == sourceCount }

    /// The new index of old index `old`, or nil when it was removed.
    public func newIndex(of old: Int) -> Int? {
        var lo = 0, hi = indices.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if indices[mid] < old { lo = mid + 1 } else { hi = mid }
        }
        return lo < indices.count && indices[lo] == old ? lo : nil
    }

    /// old index → new index (−1 for removed ones), one entry per source index.
    public var oldToNew: [Int] {
        var map = [Int](repeating: -1, count: sourceCount)
        for (new, old) in indices.enumerated() { map[old] = new }
        return map
    }

    /// The kept heads expanded to their rows: head h owns rows h·headSize ..< (h+1)·headSize.
    func headRows(headSize: Int) -> KeptIndices {
        KeptIndices(ascending: indices.flatMap { h in (h * headSize)..<((h + 1) * headSize) }, sourceCount: sourceCount * headSize)
    }
}
