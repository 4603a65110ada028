// PruneSelection: which heads, FFN neurons and layers to remove, from importance scores and
// the amounts asked for — the decision step between scoring (DataImportance.swift) and
// slicing (Slicing.swift).
//
// Layers go first: the `layers` whose removal costs the least loss are dropped. Heads and
// neurons are then chosen among the kept layers, from per-layer-normalised scores:
//   global ("per-layer" shapes): the round(ratio · total) lowest-scored units of the whole
//     model go, so layers end with different head counts and FFN widths (usually the most
//     accurate for a given size);
//   uniform: every layer keeps the same count — round((1 − ratio) · heads) heads and an FFN
//     width rounded to a multiple of `uniformWidthMultiple` — the shape other runtimes load.
// Ties go to the lower index (kept). A ratio of 0 leaves that axis untouched, so pruning
// nothing is the identity. A choice that would empty a layer is refused with the way out
// (a lower ratio, --uniform, or removing the layer with --layers): a layer without
// attention or without an FFN is not a BERT layer.
// Left out on purpose: hidden-dimension pruning (CoFi's), which changes every tensor.
import DistilleryModel

/// FFN widths of `--uniform` pruning are multiples of this (what SIMD kernels and other
/// runtimes handle without a ragged tail).
public let uniformWidthMultiple = 32

/// How much to remove: fractions of heads and FFN neurons, a number of layers.
public struct PruneAmounts: Sendable, Equatable {
    /// Fraction of the heads to remove, in [0, 1).
    public var heads: Double
    /// Fraction of the FFN neurons to remove, in [0, 1).
    public var ffn: Double
    /// Number of encoder layers to remove.
    public var layers: Int
    /// Same head count and FFN width in every layer (else a global ranking).
    public var uniform: Bool

    public init(heads: Double = 0, ffn: Double = 0, layers: Int = 0, uniform: Bool = false) {
        self.heads = heads
        self.ffn = ffn
        self.layers = layers
        self.uniform = uniform
    }

    /// True when nothing would be removed.
    public var isNothing: Bool { heads == 0 && ffn == 0 && layers == 0 }
}

/// The slice request removing `amounts` from a model of `config`: `heads` and `neurons`
/// are per-layer scores (any scale; normalised here per layer), `layerLoss` the loss of the
/// model without each layer (needed only when layers are removed).
public func pruneRequest(_ config: BertConfig, heads: [[Double]], neurons: [[Double]], layerLoss: [Double],
                         amounts: PruneAmounts) throws(CompressionError) -> SliceRequest {
    let L = config.layerCount
    guard amounts.heads >= 0, amounts.heads < 1, amounts.ffn >= 0, amounts.ffn < 1 else {
        throw CompressionError("amounts", "heads \(amounts.heads), FFN \(amounts.ffn)", hint: "ratios lie in [0, 1)")
    }
    guard amounts.layers >= 0, amounts.layers < L else {
        throw CompressionError("layers", "cannot remove \(amounts.layers) of \(L) layers", hint: "remove 0...\(L - 1) layers; at least one must stay")
    }
    guard heads.map(\.count) == config.layerHeads, neurons.map(\.count) == config.layerIntermediateSizes else {
        throw CompressionError("scores", "do not match the model's heads \(config.layerHeads) and FFN widths",
                               hint: "score the model being pruned")
    }
    var request = SliceRequest()
    var kept = Array(0..<L)
    if amounts.layers > 0 {
        guard layerLoss.count == L, !layerLoss.contains(where: \.isNaN) else {
            throw CompressionError("layers", "need one loss per layer, got \(layerLoss.count)", hint: "score the layers with layerDropFits")
        }
        let cheapest = kept.sorted { layerLoss[$0] != layerLoss[$1] ? layerLoss[$0] < layerLoss[$1] : $0 > $1 }
        let removed = Set(cheapest.prefix(amounts.layers))
        kept = kept.filter { !removed.contains($0) }
        request.layers = kept
    }
    if amounts.heads > 0 {
        let keep = try keptUnits(normalizedPerLayer(heads), layers: kept, ratio: amounts.heads, uniform: amounts.uniform,
                                 multiple: 1, unit: "heads", flag: "--heads")
        for (l, list) in keep { request.heads[l] = list }
    }
    if amounts.ffn > 0 {
        let keep = try keptUnits(normalizedPerLayer(neurons), layers: kept, ratio: amounts.ffn, uniform: amounts.uniform,
                                 multiple: uniformWidthMultiple, unit: "FFN neurons", flag: "--ffn")
        for (l, list) in keep { request.neurons[l] = list }
    }
    return request
}

/// The units kept in each of `layers` when `ratio` of them go, ranked per layer (uniform,
/// counts a multiple of `multiple`) or globally.
private func keptUnits(_ scores: [[Double]], layers: [Int], ratio: Double, uniform: Bool, multiple: Int,
                       unit: String, flag: String) throws(CompressionError) -> [Int: [Int]] {
    var keep: [Int: [Int]] = [:]
    if uniform {
        let smallest = layers.map { scores[$0].count }.min()!
        var count = Int((Double(smallest) * (1 - ratio)).rounded())
        if multiple > 1 {
            count = Int((Double(count) / Double(multiple)).rounded()) * multiple
            if count > smallest { count -= multiple }
        }
        guard count >= 1 else {
            throw CompressionError(flag, "\(ratio) with --uniform keeps no \(unit) of a layer (\(smallest) → \(count)\(multiple > 1 ? ", a multiple of \(multiple)" : ""))",
                                   hint: "use a smaller ratio, or remove whole layers with --layers")
        }
        for l in layers { keep[l] = try topIndices(scores[l], keeping: count) }
        return keep
    }
    var all: [(layer: Int, index: Int, score: Double)] = []
    for l in layers { for (i, s) in scores[l].enumerated() { all.append((l, i, s)) } }
    if let bad = all.first(where: { $0.score.isNaN }) {
        throw CompressionError("\(unit) of layer \(bad.layer)", "score \(bad.index) is NaN", hint: "the model or the data diverged; check them with kd eval")
    }
    let removeCount = Int((Double(all.count) * ratio).rounded())
    let ranked = all.sorted { a, b in
        a.score != b.score ? a.score < b.score : (a.layer != b.layer ? a.layer > b.layer : a.index > b.index)
    }
    let removed = Set(ranked.prefix(removeCount).map { $0.layer * 1_000_000 + $0.index })
    for l in layers {
        let list = scores[l].indices.filter { !removed.contains(l * 1_000_000 + $0) }
        guard !list.isEmpty else {
            throw CompressionError(flag, "\(ratio) removes all \(scores[l].count) \(unit) of layer \(l) (the lowest-scored of the model)",
                                   hint: "use a smaller ratio or --uniform, or remove the layer itself with --layers")
        }
        keep[l] = list
    }
    return keep
}
