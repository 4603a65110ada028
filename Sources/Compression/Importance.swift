// Importance: how much each prunable unit of a BERT model weighs, and which ones to keep.
//
// The score of a unit is the squared L2 norm of every weight that touches it, read from the
// axis table (AxisTable.swift): a hidden dimension c sums the entries with index c along
// every hidden-size axis of every tensor (embedding columns, LayerNorm γ/β, Q/K/V and
// intermediate input columns, attention-output and FFN-output rows and biases, the pooler's
// rows and columns, classifier columns); head h of layer l its Q/K/V rows and biases and its
// attention-output columns; FFN neuron j of layer l its intermediate row and bias and its
// output column; token id v its word-embedding row. Sums are Double, taken over the tensors
// in the canonical parameter order, so a score never depends on dictionary order.
// `topIndices` keeps the k largest, ties to the lower index, returned ascending (units
// keep their original order). This is the rule of student initialisation by slicing
// ("teacher-slice"); pruning by magnitude uses it as is.
// Left out on purpose: gradient- or activation-based importance (Taylor, Michel et al.'s
// head importance), which needs data and a backward pass and belongs to the pruning stage.
import DistilleryModel
import DistilleryTensor

/// Squared-L2 importance of every prunable unit of a BERT model.
public struct ImportanceScores: Sendable, Equatable {
    /// One score per hidden dimension (shared by all layers).
    public var hiddenDimensions: [Double]
    /// Per layer, one score per attention head.
    public var heads: [[Double]]
    /// Per layer, one score per FFN neuron.
    public var neurons: [[Double]]
    /// One score per token id (its word-embedding row).
    public var vocabulary: [Double]

    /// Scores every unit of `config`'s model by the squared L2 norm of the weights that touch
    /// it; `tensors` must be the model's complete weight set (checked strictly).
    public init(squaredNormsOf tensors: [String: Tensor], config: BertConfig) throws(CompressionError) {
        let parameters = try validatedParameters(config, tensors)
        let D = config.headSize
        var hidden = [Double](repeating: 0, count: config.hiddenSize)
        var vocabulary = [Double](repeating: 0, count: config.vocabSize)
        var rows = config.layerHeads.map { [Double](repeating: 0, count: $0 * D) }
        var neurons = config.layerIntermediateSizes.map { [Double](repeating: 0, count: $0) }
        for (name, tensor) in parameters {
            guard let entry = parameterAxes(name) else {
                throw CompressionError(name, "has no entry in the axis table", hint: "only BERT encoder, pooler and classifier tensors can be scored")
            }
            for (a, axis) in entry.axes.enumerated() {
                switch axis {
                case .full: continue
                case .hidden: addSquaredSums(tensor, axis: a, into: &hidden)
                case .vocabulary: addSquaredSums(tensor, axis: a, into: &vocabulary)
                case .heads: addSquaredSums(tensor, axis: a, into: &rows[entry.layer!])
                case .neurons: addSquaredSums(tensor, axis: a, into: &neurons[entry.layer!])
                }
            }
        }
        hiddenDimensions = hidden
        heads = rows.map { r in (0..<(r.count / D)).map { h in r[(h * D)..<((h + 1) * D)].reduce(0, +) } }
        self.neurons = neurons
        self.vocabulary = vocabulary
    }
}

/// Adds Σ of squared entries per index along `axis` of a 1-D or 2-D tensor to `scores`
/// (whose length is that axis's size; the caller has checked the shapes).
func addSquaredSums(_ t: Tensor, axis: Int, into scores: inout [Double]) {
    if t.shape.count == 1 {
        for i in 0..<t.count { scores[i] += Double(t.data[i]) * Double(t.data[i]) }
        return
    }
    let cols = t.shape[1]
    for r in 0..<t.shape[0] {
        for c in 0..<cols {
            let v = Double(t.data[r * cols + c])
            scores[axis == 0 ? r : c] += v * v
        }
    }
}

/// The indices of the `count` largest `scores`, ties to the lower index, in ascending order.
/// Throws when `count` is negative or more than there are scores, or a score is NaN (NaN
/// has no rank).
public func topIndices(_ scores: [Double], keeping count: Int) throws(CompressionError) -> [Int] {
    guard count >= 0, count <= scores.count else {
        throw CompressionError("ranking", "cannot keep \(count) of \(scores.count) units",
                               hint: "keep between 0 and \(scores.count)")
    }
    if let i = scores.firstIndex(where: \.isNaN) {
        throw CompressionError("ranking", "score \(i) is NaN", hint: "the weights are corrupt or diverged; check them with kd info")
    }
    let ranked = scores.indices.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
    return ranked.prefix(count).sorted()
}
