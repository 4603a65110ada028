// Slicing: a BERT weight set restricted to kept layers, heads, FFN neurons, hidden
// dimensions and vocabulary rows — the physical step of structured pruning and of
// student initialisation by slicing.
//
// Every output tensor is the input tensor restricted to the kept indices along each of its
// axes (AxisTable.swift says which axis is which); kept indices stay in their original
// order, kept layers are renumbered 0, 1, …, and the config follows: per-layer head counts
// and FFN widths (`layerHeads`, `layerIntermediateSizes`), hidden size, vocabulary size,
// the padding id's new index. Keeping everything returns the input bit for bit.
// Whole heads only: a head keeps its headSize rows, so when hidden dimensions are removed
// the config's full head count becomes keptHidden / headSize and must still cover every
// layer's heads. A request is checked completely before any tensor is copied; what it
// refuses (indices out of range or twice, a layer or the model left empty, a special token
// dropped from the vocabulary, per-layer lists for removed layers) is a thrown error that
// says where and what to do.
// Left out on purpose: choosing what to keep (Importance.swift scores; the caller decides),
// quantization, and rewriting the vocabulary file (the caller applies `vocabulary.oldToNew`).
import DistilleryModel
import DistilleryTensor

/// What to keep of a BERT model. Absent entries keep the whole axis; indices refer to the
/// model before slicing, in any order (they are kept in their original order).
public struct SliceRequest: Sendable, Equatable {
    /// Encoder layers kept (renumbered 0, 1, … in their original order); nil keeps all.
    public var layers: [Int]?
    /// Hidden dimensions kept, one set for the whole model; nil keeps all.
    public var hiddenDimensions: [Int]?
    /// Attention heads kept, by source layer; a layer without an entry keeps all its heads.
    public var heads: [Int: [Int]]
    /// FFN neurons kept, by source layer; a layer without an entry keeps all its neurons.
    public var neurons: [Int: [Int]]
    /// Token ids (word-embedding rows) kept; nil keeps the whole vocabulary.
    public var vocabulary: [Int]?
    /// Token ids a vocabulary keep-set must contain ([CLS], [SEP], [UNK], [MASK]…); the
    /// config's padding id is always required.
    public var requiredTokenIds: [Int]

    /// Creates a request; the default keeps everything.
    public init(layers: [Int]? = nil, hiddenDimensions: [Int]? = nil, heads: [Int: [Int]] = [:],
                neurons: [Int: [Int]] = [:], vocabulary: [Int]? = nil, requiredTokenIds: [Int] = []) {
        self.layers = layers
        self.hiddenDimensions = hiddenDimensions
        self.heads = heads
        self.neurons = neurons
        self.vocabulary = vocabulary
        self.requiredTokenIds = requiredTokenIds
    }
}

/// A sliced model: its config, its tensors, and what was kept along each axis.
public struct SlicedModel: Sendable {
    /// The config of the sliced model (valid: `validate()` passes).
    public var config: BertConfig
    /// The sliced tensors by HF name, layers renumbered; exactly `bertParameterShapes(config, …)`.
    public var tensors: [String: Tensor]
    /// Source layers kept; new layer i is source layer `layers.indices[i]`.
    public var layers: KeptIndices
    /// Hidden dimensions kept.
    public var hiddenDimensions: KeptIndices
    /// Per new layer, the source heads kept.
    public var heads: [KeptIndices]
    /// Per new layer, the source FFN neurons kept.
    public var neurons: [KeptIndices]
    /// Token ids kept; `vocabulary.oldToNew` re-maps token ids (−1: removed).
    public var vocabulary: KeptIndices
}

/// Slices `tensors` (the complete weight set of `config`'s model, checked strictly) to what
/// `request` keeps. Throws, before copying anything, when the request cannot be carried out.
public func sliceBertParameters(_ config: BertConfig, tensors: [String: Tensor],
                                keeping request: SliceRequest) throws(CompressionError) -> SlicedModel {
    let parameters = try validatedParameters(config, tensors)
    let kept = try KeptAxes(config, request)

    var out: [String: Tensor] = [:]
    out.reserveCapacity(parameters.count)
    for (name, tensor) in parameters {
        guard let entry = parameterAxes(name) else {
            throw CompressionError(name, "has no entry in the axis table",
                                   hint: "only BERT encoder, pooler and classifier tensors can be sliced")
        }
        var newLayer = 0
        if let l = entry.layer {
            guard let n = kept.layers.newIndex(of: l) else { continue }   // a removed layer
            newLayer = n
        }
        let lists: [KeptIndices?] = entry.axes.map { axis in
            switch axis {
            case .full: return nil
            case .vocabulary: return kept.vocabulary
            case .hidden: return kept.hidden
            case .heads: return kept.headRows[newLayer]
            case .neurons: return kept.neurons[newLayer]
            }
        }
        out[entry.name(inLayer: newLayer)] = sliceTensor(tensor, lists)
    }
    return SlicedModel(config: kept.config, tensors: out, layers: kept.layers, hiddenDimensions: kept.hidden,
                       heads: kept.heads, neurons: kept.neurons, vocabulary: kept.vocabulary)
}

/// `t` restricted to `lists[a]` along each axis a (nil, or everything, keeps the axis); 1-D
/// or 2-D, lists already checked against the shape. Returns `t` itself when nothing is cut.
func sliceTensor(_ t: Tensor, _ lists: [KeptIndices?]) -> Tensor {
    let cuts = lists.map { $0.flatMap { $0.isEverything ? nil : $0.indices } }
    if cuts.allSatisfy({ $0 == nil }) { return t }
    if t.shape.count == 1 {
        let keep = cuts[0]!
        return Tensor(shape: [keep.count], data: keep.map { t.data[$0] })
    }
    let rows = cuts[0] ?? Array(0..<t.shape[0]), cols = cuts[1] ?? Array(0..<t.shape[1])
    let n = t.shape[1]
    var out = [Float]()
    out.reserveCapacity(rows.count * cols.count)
    t.data.withUnsafeBufferPointer { src in
        for r in rows { for c in cols { out.append(src[r * n + c]) } }
    }
    return Tensor(shape: [rows.count, cols.count], data: out)
}

/// A request checked against a config: the kept indices of every axis and the new config.
private struct KeptAxes {
    let layers: KeptIndices
    let hidden: KeptIndices
    let vocabulary: KeptIndices
    /// Per new layer.
    let heads: [KeptIndices]
    let headRows: [KeptIndices]
    let neurons: [KeptIndices]
    let config: BertConfig

    init(_ c: BertConfig, _ request: SliceRequest) throws(CompressionError) {
        let D = c.headSize
        let layers = try KeptIndices.keeping(request.layers, of: c.layerCount, location: "layers", unit: "layer")
        guard layers.count > 0 else {
            throw CompressionError("layers", "keeps none of the \(c.layerCount) encoder layers",
                                   hint: "a model needs at least one encoder layer; keep the most important one")
        }
        for (kind, map) in [("heads", request.heads), ("neurons", request.neurons)] {
            if let l = map.keys.sorted().first(where: { layers.newIndex(of: $0) == nil }) {
                throw CompressionError("\(kind) of layer \(l)",
                                       l < 0 || l >= c.layerCount ? "names a layer outside 0..<\(c.layerCount)" : "are given, but layer \(l) is removed",
                                       hint: "give per-layer \(kind) only for kept layers, by their index before compression")
            }
        }
        let hidden = try KeptIndices.keeping(request.hiddenDimensions, of: c.hiddenSize, location: "hidden dimensions", unit: "dimension")
        var headCount = c.headCount
        if !hidden.isEverything {
            guard hidden.count > 0, hidden.count % D == 0 else {
                throw CompressionError("hidden dimensions", "keeps \(hidden.count) of \(c.hiddenSize), not a positive multiple of the head size \(D)",
                                       hint: "heads are kept whole, so the hidden size stays a multiple of \(D); keep \(max(1, hidden.count / D) * D)")
            }
            headCount = hidden.count / D
        }
        var heads: [KeptIndices] = [], neurons: [KeptIndices] = []
        for l in layers.indices {
            let h = try KeptIndices.keeping(request.heads[l], of: c.layerHeads[l], location: "heads of layer \(l)", unit: "head")
            let f = try KeptIndices.keeping(request.neurons[l], of: c.layerIntermediateSizes[l], location: "FFN neurons of layer \(l)", unit: "neuron")
            for (kept, location, unit, why) in [(h, "heads of layer \(l)", "heads", "a layer without attention is not a BERT layer"),
                                                (f, "FFN neurons of layer \(l)", "neurons", "an FFN needs at least one neuron")] where kept.count == 0 {
                throw CompressionError(location, "keeps none of its \(kept.sourceCount) \(unit)",
                                       hint: "\(why); remove the layer instead (SliceRequest.layers)")
            }
            guard h.count <= headCount else {
                throw CompressionError("heads of layer \(l)", "keeps \(h.count) heads but \(hidden.count) hidden dimensions hold only \(headCount) heads of \(D)",
                                       hint: "keep at most \(headCount) heads per layer, or more hidden dimensions")
            }
            heads.append(h)
            neurons.append(f)
        }
        let vocabulary = try KeptIndices.keeping(request.vocabulary, of: c.vocabSize, location: "vocabulary", unit: "token id")
        var required = request.requiredTokenIds
        if c.padTokenId >= 0 && c.padTokenId < c.vocabSize { required.append(c.padTokenId) }
        if let bad = required.first(where: { $0 < 0 || $0 >= c.vocabSize }) {
            throw CompressionError("vocabulary", "requires token id \(bad), outside 0..<\(c.vocabSize)",
                                   hint: "required ids are special tokens of this model's vocabulary")
        }
        if let missing = required.first(where: { vocabulary.newIndex(of: $0) == nil }) {
            throw CompressionError("vocabulary", "drops token id \(missing), a special token\(missing == c.padTokenId ? " (the padding id)" : "")",
                                   hint: "keep every special token ([PAD], [UNK], [CLS], [SEP], [MASK]) in the vocabulary")
        }

        var s = c
        s.vocabSize = vocabulary.count
        s.hiddenSize = hidden.count
        s.headCount = headCount
        s.layerCount = layers.count
        s.layerHeads = heads.map(\.count)
        s.layerIntermediateSizes = neurons.map(\.count)
        s.padTokenId = vocabulary.newIndex(of: c.padTokenId) ?? c.padTokenId
        do { try s.validate(source: "sliced config") } catch {
            throw CompressionError("config", "the sliced model is not a valid BERT config: \(error)",
                                   hint: "keep more of the model")
        }
        self.layers = layers
        self.hidden = hidden
        self.vocabulary = vocabulary
        self.heads = heads
        self.headRows = heads.map { $0.headRows(headSize: D) }
        self.neurons = neurons
        self.config = s
    }
}
