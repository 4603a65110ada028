// DataImportance: how much the loss depends on each head, FFN neuron and layer, measured on
// data — the scores structured pruning ranks by.
//
// The loss is the soft cross-entropy against target distributions (the teacher's soft
// labels from a label cache), averaged over each batch. Per batch:
//   head h of layer l:  |∂L/∂ξ_{l,h}|, the gradient of HF's per-head mask ξ at ξ = 1
//                       (Michel et al. 2019, "Are Sixteen Heads Really Better than One?");
//   FFN neuron j of l:  |Σ w·∂L/∂w| over the weights that touch it — its intermediate row
//                       and bias and its output column (first-order Taylor, Molchanov et al.
//                       2017, TextPruner's neuron score): the loss change when it is removed;
// summed over batches (the gradient is of the batch mean, so the absolute value is taken
// per batch, not per example — TextPruner does the same). Layer l is scored by running the
// model without it: the loss and the top-1 agreement with the targets' argmax.
// `normalizedPerLayer` divides each layer's scores by their L2 norm (Michel et al. §4.2),
// so scores of different layers can be ranked together.
// Left out on purpose: hidden-dimension and vocabulary scores from data (vocabulary
// pruning keeps the tokens the data uses), second-order (Hessian) estimates.
import DistilleryModel
import DistilleryTensor
import Foundation

/// A batch and the distribution the model should predict for each of its sequences.
public struct TargetBatch: Sendable {
    public var batch: EncoderBatch
    /// Target probabilities [B, classes], each row summing to 1.
    public var targets: [Float]

    public init(batch: EncoderBatch, targets: [Float]) {
        self.batch = batch
        self.targets = targets
    }
}

/// Loss and top-1 agreement of a model on target batches.
public struct TargetFit: Sendable, Equatable, Codable {
    /// Mean soft cross-entropy −Σ q log p over the examples.
    public var loss: Double
    /// Fraction of examples whose argmax equals the target's argmax.
    public var agreement: Double
}

/// Data-driven importance of a model's heads and FFN neurons (unnormalised).
public struct GradientImportance: Sendable {
    /// Per layer, per head: Σ over batches of |∂L/∂(head mask)|.
    public var heads: [[Double]]
    /// Per layer, per neuron: Σ over batches of |Σ w·∂L/∂w| over the neuron's weights.
    public var neurons: [[Double]]
    /// The model's own loss and agreement on the batches.
    public var fit: TargetFit
}

/// Soft cross-entropy of logits [B, C] against targets [B, C]: the mean loss, the number of
/// rows whose argmax agrees, and dLoss/dLogits of the mean.
func softCrossEntropy(logits: [Float], targets: [Float], classes C: Int) -> (loss: Double, agreeing: Int, gradient: [Float]) {
    let B = logits.count / C
    var loss = 0.0, agreeing = 0
    var gradient = [Float](repeating: 0, count: logits.count)
    for b in 0..<B {
        let z = logits[(b * C)..<((b + 1) * C)].map(Double.init), q = targets[(b * C)..<((b + 1) * C)].map(Double.init)
        let m = z.max()!
        let logSum = m + log(z.reduce(0) { $0 + exp($1 - m) })
        for c in 0..<C {
            let logP = z[c] - logSum
            loss -= q[c] * logP
            gradient[b * C + c] = Float((exp(logP) - q[c]) / Double(B))
        }
        if z.firstIndex(of: m) == q.firstIndex(of: q.max()!) { agreeing += 1 }
    }
    return (loss / Double(B), agreeing, gradient)
}

/// Head (mask-gradient) and FFN-neuron (Taylor) importance of `model` with `parameters`
/// on `batches`, dropout off.
public func gradientImportance(model: BertModel, parameters: ParameterBlock, batches: [TargetBatch]) throws(ModelError)
    -> GradientImportance {
    let c = model.config, C = model.classCount
    var heads = c.layerHeads.map { [Double](repeating: 0, count: $0) }
    var neurons = c.layerIntermediateSizes.map { [Double](repeating: 0, count: $0) }
    var gradients = Gradients(zeros: model.layout)
    var lossSum = 0.0, agreeing = 0, examples = 0
    let ones = c.layerHeads.map { [Float](repeating: 1, count: $0) }
    for t in batches {
        let acts = try model.forward(t.batch, parameters: parameters, options: ForwardOptions(headMask: ones))
        let fit = softCrossEntropy(logits: acts.logits.data, targets: t.targets, classes: C)
        lossSum += fit.loss * Double(t.batch.batchSize)
        agreeing += fit.agreeing
        examples += t.batch.batchSize
        gradients.zero()
        let headGradients = model.backward(acts, parameters: parameters, gradients: &gradients,
                                           seeds: BackwardSeeds(labelWeight: 0, logits: Tensor(shape: [t.batch.batchSize, C], data: fit.gradient)))!
        for l in heads.indices {
            for h in heads[l].indices { heads[l][h] += abs(headGradients[l][h]) }
            let taylor = neuronTaylor(layer: l, width: neurons[l].count, hidden: c.hiddenSize, parameters: parameters, gradients: gradients)
            for j in neurons[l].indices { neurons[l][j] += abs(taylor[j]) }
        }
    }
    return GradientImportance(heads: heads, neurons: neurons,
                              fit: TargetFit(loss: lossSum / Double(max(examples, 1)), agreement: Double(agreeing) / Double(max(examples, 1))))
}

/// Σ w·∂L/∂w per FFN neuron of layer `l`: its intermediate row and bias, its output column.
private func neuronTaylor(layer l: Int, width F: Int, hidden H: Int, parameters: ParameterBlock, gradients: Gradients) -> [Double] {
    let p = "encoder.layer.\(l)."
    let w1 = parameters.layout.offset(p + "intermediate.dense.weight"), b1 = parameters.layout.offset(p + "intermediate.dense.bias")
    let w2 = parameters.layout.offset(p + "output.dense.weight")
    var s = [Double](repeating: 0, count: F)
    parameters.storage.withUnsafeBufferPointer { w in
        gradients.storage.withUnsafeBufferPointer { g in
            for j in 0..<F {
                var sum = Double(w[b1 + j]) * Double(g[b1 + j])
                for k in 0..<H { sum += Double(w[w1 + j * H + k]) * Double(g[w1 + j * H + k]) }
                s[j] = sum
            }
            for r in 0..<H {
                for j in 0..<F { s[j] += Double(w[w2 + r * F + j]) * Double(g[w2 + r * F + j]) }
            }
        }
    }
    return s
}

/// Loss and agreement of the model `config`/`tensors` on `batches` (dropout off).
public func targetFit(config: BertConfig, tensors: [String: Tensor], batches: [TargetBatch]) throws -> TargetFit {
    let classes = tensors["classifier.weight"]?.shape.first ?? 0
    let model = try BertModel(config: config, classes: classes)
    let parameters = try ParameterBlock(layout: model.layout, tensors: tensors)
    let options = ForwardOptions(cacheForBackward: false, matrices: model.packedMatrices(parameters))
    var lossSum = 0.0, agreeing = 0, examples = 0
    for t in batches {
        let acts = try model.forward(t.batch, parameters: parameters, options: options)
        let fit = softCrossEntropy(logits: acts.logits.data, targets: t.targets, classes: classes)
        lossSum += fit.loss * Double(t.batch.batchSize)
        agreeing += fit.agreeing
        examples += t.batch.batchSize
    }
    return TargetFit(loss: lossSum / Double(max(examples, 1)), agreement: Double(agreeing) / Double(max(examples, 1)))
}

/// For each layer, the loss and agreement of the model without it (empty for a 1-layer model).
public func layerDropFits(config: BertConfig, tensors: [String: Tensor], batches: [TargetBatch]) throws -> [TargetFit] {
    guard config.layerCount > 1 else { return [] }
    return try (0..<config.layerCount).map { l in
        let sliced = try sliceBertParameters(config, tensors: tensors,
                                             keeping: SliceRequest(layers: (0..<config.layerCount).filter { $0 != l }))
        return try targetFit(config: sliced.config, tensors: sliced.tensors, batches: batches)
    }
}

/// Each row divided by its L2 norm (a zero row stays zero).
public func normalizedPerLayer(_ scores: [[Double]]) -> [[Double]] {
    scores.map { row in
        let norm = row.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return norm > 0 ? row.map { $0 / norm } : row
    }
}
