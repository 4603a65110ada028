// BertBackward: the backward of `BertModel.forward` and the gradient seeds that
// distillation losses plug into.
//
// Walks the layers of BertTraining.swift in reverse (llm.c style), accumulating into a
// `Gradients` block laid out like the parameters. The pass is seeded by any combination of
// the label cross-entropy (with a weight), an external dLoss/dLogits (soft-label losses),
// extra gradients at HF-indexed hidden states (0 = embedding output after dropout,
// l = output of layer l) and at the pre-softmax attention scores of a layer — the
// hooks hidden-state, attention-map and logit distillation need. Temporaries come from the
// activations' arena, after the forward's buffers. Left out on purpose: seeds at other
// activations (values, FFN internals), gradients w.r.t. the inputs.
import DistilleryTensor
import Foundation

/// What `backward` differentiates: a weighted label loss plus external gradient seeds.
public struct BackwardSeeds: Sendable {
    /// Weight of the label cross-entropy (0 leaves it out; non-zero needs labels in the forward).
    public var labelWeight: Float
    /// dLoss/dLogits [B, classes], added to the label loss's (e.g. a soft-label KL term).
    public var logits: Tensor?
    /// dLoss/d(hidden state l) [B·T, H] by HF hidden-state index l in 0...layerCount.
    public var hiddenStates: [Int: Tensor]
    /// dLoss/d(pre-softmax scores q·kᵀ/√D, before the mask) [B, heads, T, T] by layer 0..<layerCount.
    public var attentionScores: [Int: Tensor]

    public init(labelWeight: Float = 1, logits: Tensor? = nil, hiddenStates: [Int: Tensor] = [:],
                attentionScores: [Int: Tensor] = [:]) {
        self.labelWeight = labelWeight
        self.logits = logits
        self.hiddenStates = hiddenStates
        self.attentionScores = attentionScores
    }

    /// The label cross-entropy alone (what `lossAndGradients` differentiates).
    public static let labelLoss = BackwardSeeds()
}

extension BertModel {
    /// Checks `seeds` against the activations' shapes; stops with a message naming the seed.
    private func validate(_ seeds: BackwardSeeds, _ acts: BertActivations) {
        let B = acts.batch.batchSize, T = acts.batch.sequenceLength, H = config.hiddenSize
        if seeds.labelWeight != 0 {
            precondition(acts.labels != nil, "BertModel.backward: the forward ran without labels, there is no label loss to differentiate (pass labelWeight: 0)")
        }
        if let g = seeds.logits {
            precondition(g.shape == [B, classCount], "BertModel.backward: logits seed \(g.shapeDescription), expected [\(B), \(classCount)]")
        }
        for (l, g) in seeds.hiddenStates {
            precondition((0...config.layerCount).contains(l), "BertModel.backward: hidden-state seed index \(l) outside 0...\(config.layerCount)")
            precondition(g.shape == [B * T, H], "BertModel.backward: hidden-state seed \(l) is \(g.shapeDescription), expected [\(B * T), \(H)]")
        }
        for (l, g) in seeds.attentionScores {
            precondition((0..<config.layerCount).contains(l), "BertModel.backward: attention-score seed layer \(l) outside 0..<\(config.layerCount)")
            let heads = layerSlots[l].heads
            precondition(g.shape == [B, heads, T, T], "BertModel.backward: attention-score seed \(l) is \(g.shapeDescription), expected [\(B), \(heads), \(T), \(T)]")
        }
    }

    /// The backward of `forward`: adds every parameter's gradient of the loss that `seeds`
    /// describes (by default the label cross-entropy) into `gradients` (zero it first for a
    /// fresh step). Both blocks must start with the model's layout; trailing tensors are
    /// left untouched. When the forward ran with a head mask, returns dLoss/d(head mask)
    /// [layer][head] (summed over the batch in a fixed order, in Double).
    @discardableResult
    public func backward(_ acts: BertActivations, parameters: ParameterBlock, gradients: inout Gradients,
                         seeds: BackwardSeeds = .labelLoss) -> [[Double]]? {
        precondition(parameters.layout.starts(with: layout) && gradients.layout.starts(with: layout),
                     "BertModel.backward: the parameter or gradient block does not start with the model's layout")
        precondition(classifier != nil && acts.layers.count == layerSlots.count,
                     "BertModel.backward: needs a classifier and a forward run with cacheForBackward")
        validate(seeds, acts)
        let classifier = classifier!
        var headGradients: [[Double]]? = acts.headMask.map { $0.map { [Double](repeating: 0, count: $0.count) } }
        let batch = acts.batch
        let B = batch.batchSize, T = batch.sequenceLength, H = config.hiddenSize, D = config.headSize
        let rows = B * T, L = classCount
        let arena = acts.lease.arena
        arena.rewind(to: acts.backwardSlot)
        func buffer(_ count: Int, zeroed: Bool = false) -> FloatBuffer { arena.take(count, zeroed: zeroed) }
        /// y += seed (a Tensor of y's size).
        func add(_ seed: Tensor?, into y: UnsafeMutablePointer<Float>) {
            guard let seed else { return }
            seed.data.withUnsafeBufferPointer { s in residualAdd(y, s.baseAddress!, count: s.count) }
        }
        parameters.storage.withUnsafeBufferPointer { pp in gradients.storage.withUnsafeMutableBufferPointer { gp in
            let P = pp.baseAddress!, G = gp.baseAddress!
            // Loss → classifier → dropout → tanh → pooler (or → masked mean).
            let dLogits = buffer(B * L, zeroed: true)
            if let labels = acts.labels, seeds.labelWeight != 0 {
                labels.withUnsafeBufferPointer { lp in
                    crossEntropyBackward(dLogits: dLogits.pointer, logits: acts.logitsBuffer!.pointer, labels: lp.baseAddress!,
                                         batch: B, classes: L, dLoss: seeds.labelWeight)
                }
            }
            add(seeds.logits, into: dLogits.pointer)
            let dPooled = buffer(B * H)
            linearBackward(dx: dPooled.pointer, dWeight: G + classifier.weight, dBias: G + classifier.bias, dy: dLogits.pointer,
                           x: acts.classifierInput!.pointer, weight: P + classifier.weight, rows: B, inFeatures: H, outFeatures: L)
            if let m = acts.pooledMask { dropoutBackward(dx: dPooled.pointer, dy: dPooled.pointer, mask: m.pointer, count: B * H) }
            // dX: gradient w.r.t. the current layer output; from the head only [CLS] rows
            // receive one (pooler), or every real token (masked mean).
            var dX = buffer(rows * H, zeroed: true), dNorm1 = buffer(rows * H)
            if let pooler, let cls = acts.cls {
                let dPre = buffer(B * H), dCls = buffer(B * H)
                tanhBackward(dx: dPre.pointer, dy: dPooled.pointer, y: acts.pooled!.pointer, count: B * H)
                linearBackward(dx: dCls.pointer, dWeight: G + pooler.weight, dBias: G + pooler.bias, dy: dPre.pointer,
                               x: cls.pointer, weight: P + pooler.weight, rows: B, inFeatures: H, outFeatures: H)
                for b in 0..<B { (dX.pointer + b * T * H).update(from: dCls.pointer + b * H, count: H) }
            } else {
                batch.mask.withUnsafeBufferPointer { m in
                    maskedMeanBackward(dx: dX.pointer, dy: dPooled.pointer, mask: m.baseAddress!, batch: B, sequenceLength: T, hidden: H)
                }
            }
            add(seeds.hiddenStates[layerSlots.count], into: dX.pointer)
            let dNorm = buffer(rows * H), dBranch = buffer(rows * H)
            // Per-layer temporaries at the widest layer's sizes, reused by every layer.
            let maxA = (layerSlots.map(\.heads).max() ?? 1) * D, maxF = layerSlots.map(\.width).max() ?? 1
            let dAct = buffer(rows * maxF), dCtx = buffer(rows * maxA)
            let dQKV = buffer(rows * 3 * maxA)
            let dHead = acts.headMask == nil ? nil : UnsafeMutablePointer<Double>.allocate(capacity: B * (layerSlots.map(\.heads).max() ?? 1))
            defer { dHead?.deallocate() }
            for (l, s) in layerSlots.enumerated().reversed() {
                let a = acts.layers[l]
                let A = s.heads * D, F = s.width
                /// Backward of a post-LN sub-block out = LN(dropout(input·Wᵀ + b) + residual): from
                /// dOut, writes the gradient at the LayerNorm input into dSum (the residual's
                /// gradient too) and d(input) into dInput; adds the LN, W and b gradients.
                func addNormBackward(dOut: FloatBuffer, dSum: FloatBuffer, sum: FloatBuffer, mean: FloatBuffer,
                                     rstd: FloatBuffer, gamma: Int, beta: Int, mask: FloatBuffer?, input: FloatBuffer,
                                     weight: Int, bias: Int, inFeatures: Int, dInput: FloatBuffer) {
                    layerNormBackward(dx: dSum.pointer, dGamma: G + gamma, dBeta: G + beta, dy: dOut.pointer,
                                      x: sum.pointer, mean: mean.pointer, rstd: rstd.pointer,
                                      gamma: P + gamma, rows: rows, cols: H)
                    var dDense = UnsafePointer(dSum.pointer)
                    if let mask {
                        dropoutBackward(dx: dBranch.pointer, dy: dSum.pointer, mask: mask.pointer, count: rows * H)
                        dDense = UnsafePointer(dBranch.pointer)
                    }
                    linearBackward(dx: dInput.pointer, dWeight: G + weight, dBias: G + bias, dy: dDense,
                                   x: input.pointer, weight: P + weight, rows: rows, inFeatures: inFeatures, outFeatures: H)
                }
                // out = LN2(dropout(act·W2ᵀ + b2) + norm1): dNorm is the gradient at LN2's input.
                addNormBackward(dOut: dX, dSum: dNorm, sum: a.norm2Input, mean: a.norm2Mean, rstd: a.norm2Rstd,
                                gamma: s.n2G, beta: s.n2B, mask: a.ffnOutputMask, input: a.ffnActivation,
                                weight: s.fW, bias: s.fB, inFeatures: F, dInput: dAct)
                geluBackward(dx: dAct.pointer, dy: dAct.pointer, x: a.ffnPre.pointer, count: rows * F)
                // d(norm1) = residual path (dNorm, no longer read as dy) + FFN path, added in place.
                linearBackward(dx: dNorm.pointer, accumulateInput: true, dWeight: G + s.iW, dBias: G + s.iB,
                               dy: dAct.pointer, x: a.norm1Output.pointer, weight: P + s.iW,
                               rows: rows, inFeatures: H, outFeatures: F)
                // norm1 = LN1(dropout(ctx·Woᵀ + bo) + x): dNorm1 is the gradient at LN1's input.
                addNormBackward(dOut: dNorm, dSum: dNorm1, sum: a.norm1Input, mean: a.norm1Mean, rstd: a.norm1Rstd,
                                gamma: s.n1G, beta: s.n1B, mask: a.attentionOutputMask, input: a.context,
                                weight: s.oW, bias: s.oB, inFeatures: A, dInput: dCtx)
                let scoreSeed = seeds.attentionScores[l]
                func attention(_ dScores: UnsafePointer<Float>?, _ headWeights: UnsafePointer<Float>?) {
                    let qkv = a.qkv.pointer, d = dQKV.pointer
                    attentionBackward(dq: d, dk: d + A, dv: d + 2 * A, dCtx: dCtx.pointer,
                                      probs: a.probabilities.pointer, q: qkv, k: qkv + A, v: qkv + 2 * A, ld: 3 * A,
                                      dropoutMask: a.probabilityMask.map { UnsafePointer($0.pointer) }, dScores: dScores,
                                      headWeights: headWeights, dHeadWeights: dHead,
                                      batch: B, sequenceLength: T, heads: s.heads, headSize: D)
                }
                acts.headMask.map { $0[l] }.withOptionalBuffer { w in
                    if let scoreSeed { scoreSeed.data.withUnsafeBufferPointer { attention($0.baseAddress!, w) } } else { attention(nil, w) }
                }
                if let dHead {   // per (sequence, head) job → per head, sequences added in order
                    for h in 0..<s.heads { for b in 0..<B { headGradients![l][h] += dHead[b * s.heads + h] } }
                }
                // d(layer input) = residual path (dNorm1, read above) + the three projections.
                for (i, (w, bias)) in [(s.qW, s.qB), (s.kW, s.kB), (s.vW, s.vB)].enumerated() {
                    linearBackward(dx: dNorm1.pointer, accumulateInput: true, dWeight: G + w, dBias: G + bias,
                                   dy: dQKV.pointer + i * A, ldy: 3 * A, x: a.input.pointer, weight: P + w,
                                   rows: rows, inFeatures: H, outFeatures: A)
                }
                add(seeds.hiddenStates[l], into: dNorm1.pointer)
                swap(&dX, &dNorm1)
            }
            // Embeddings: dropout → LayerNorm → scatter-add into the three tables.
            if let m = acts.embeddingMask { dropoutBackward(dx: dX.pointer, dy: dX.pointer, mask: m.pointer, count: rows * H) }
            layerNormBackward(dx: dNorm.pointer, dGamma: G + embGamma, dBeta: G + embBeta, dy: dX.pointer,
                              x: acts.embeddingSum.pointer, mean: acts.embeddingMean.pointer, rstd: acts.embeddingRstd.pointer,
                              gamma: P + embGamma, rows: rows, cols: H)
            batch.ids.withUnsafeBufferPointer { ids in batch.typeIds.withUnsafeBufferPointer { tids in
                embeddingBackward(dOut: dNorm.pointer, ids: ids.baseAddress!, typeIds: tids.baseAddress!, rows: rows,
                                  sequenceLength: T, hidden: H, paddingId: config.padTokenId,
                                  dWord: G + word, dPosition: G + position, dType: G + type)
            } }
        } }
        withExtendedLifetime(acts) {}
        return headGradients
    }

    /// One forward + backward: the loss and fresh gradients (a convenience for tests and loops).
    public func lossAndGradients(_ batch: EncoderBatch, labels: [Int32], parameters: ParameterBlock,
                                 dropout: DropoutRates = .off, rng: DropoutRNG = DropoutRNG(seed: 0),
                                 step: Int = 0) throws(ModelError) -> (loss: Double, logits: Tensor, gradients: Gradients) {
        let acts = try forward(batch, labels: labels, parameters: parameters, dropout: dropout, rng: rng, step: step)
        var grads = Gradients(zeros: layout)
        backward(acts, parameters: parameters, gradients: &grads)
        return (acts.loss!, acts.logits, grads)
    }
}
