// BertTraining: the training forward (with cached activations) and backward of a BERT
// sequence classifier — encoder, tanh pooler over [CLS], linear classifier, cross-entropy.
//
// Follows HF `BertForSequenceClassification` in train mode: dropout after the embedding
// LayerNorm, on the attention probabilities, after each attention-output and FFN-output
// dense (before the residual add and LayerNorm), and on the pooled vector before the
// classifier; loss = mean cross-entropy over the batch. Structure follows llm.c: the model
// is a stateless description (config + offsets into the parameter block); `forward`
// returns every activation the backward needs in a `BertActivations` value, and
// `backward` walks the same layers in reverse, accumulating into a `Gradients` block laid
// out like the parameters. Per-layer head counts and FFN widths come from the config.
// Left out on purpose: gradient checkpointing, fused QKV, regression/multi-label losses.
import DistilleryModel
import DistilleryTensor
import Foundation

/// A heap float array whose address is stable for the life of the object (activations).
public final class FloatBuffer: @unchecked Sendable {
    /// First element.
    public let pointer: UnsafeMutablePointer<Float>
    /// Number of elements.
    public let count: Int

    /// A zero-filled buffer.
    public init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    /// A buffer holding a copy of `values`.
    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    /// The elements as an array (a copy).
    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

    deinit { pointer.deallocate() }
}

/// Owns the temporary buffers of one pass. Swift may release an object right after the
/// last read of its `pointer`, before the callee uses that pointer; buffers made here
/// live until the workspace does, and the pass keeps the workspace alive explicitly.
final class Workspace {
    private var buffers: [FloatBuffer] = []
    /// A zero-filled buffer that lives as long as the workspace.
    func buffer(_ count: Int) -> FloatBuffer {
        let b = FloatBuffer(count: count)
        buffers.append(b)
        return b
    }
}

/// Dropout probabilities of the four dropout sites of `BertForSequenceClassification`.
public struct DropoutRates: Sendable, Equatable {
    /// After the embedding LayerNorm and after each attention-output / FFN-output dense
    /// (`hidden_dropout_prob`).
    public var hidden: Float
    /// On the attention probabilities (`attention_probs_dropout_prob`).
    public var attention: Float
    /// On the pooled vector before the classifier (`classifier_dropout`, HF falls back to
    /// `hidden_dropout_prob`).
    public var classifier: Float

    public init(hidden: Float, attention: Float, classifier: Float? = nil) {
        self.hidden = hidden
        self.attention = attention
        self.classifier = classifier ?? hidden
    }

    /// No dropout (evaluation, and the parity tests).
    public static let off = DropoutRates(hidden: 0, attention: 0, classifier: 0)
    /// HF BERT's defaults: 0.1 everywhere.
    public static let bertDefault = DropoutRates(hidden: 0.1, attention: 0.1)
}

/// Activations of one encoder layer kept for the backward. Shapes: rows = B·T,
/// A = heads·headSize, F = FFN width.
public struct LayerActivations {
    /// Layer input x [rows, H] (the previous layer's output).
    public let input: FloatBuffer
    /// Query, key, value projections [rows, A].
    public let query, key, value: FloatBuffer
    /// Attention probabilities [B, heads, T, T] before dropout, and the dropout mask.
    public let probabilities: FloatBuffer
    public let probabilityMask: FloatBuffer?
    /// Attention context [rows, A] (input of the attention-output dense).
    public let context: FloatBuffer
    /// Dropout mask after the attention-output dense [rows, H].
    public let attentionOutputMask: FloatBuffer?
    /// LayerNorm 1 input (dense + residual) [rows, H], its row mean and 1/std [rows], output [rows, H].
    public let norm1Input, norm1Mean, norm1Rstd, norm1Output: FloatBuffer
    /// FFN pre-activation and GELU output [rows, F].
    public let ffnPre, ffnActivation: FloatBuffer
    /// Dropout mask after the FFN-output dense [rows, H].
    public let ffnOutputMask: FloatBuffer?
    /// LayerNorm 2 input [rows, H], statistics [rows], output = layer output [rows, H].
    public let norm2Input, norm2Mean, norm2Rstd, output: FloatBuffer
}

/// Everything one training forward computed: outputs plus the activations the backward reads.
public struct BertActivations {
    public let batch: EncoderBatch
    /// Class labels [B], when a loss was asked for.
    public let labels: [Int32]?
    /// Mean cross-entropy over the batch (nil without labels).
    public let loss: Double?
    /// Classifier logits [B, classes].
    public let logits: Tensor

    let embeddingSum, embeddingMean, embeddingRstd, embeddingNorm: FloatBuffer
    let embeddingMask: FloatBuffer?
    let layers: [LayerActivations]
    /// [CLS] states [B, H], pooler pre-activation and tanh output [B, H], dropout mask.
    let cls, poolerPre, pooled: FloatBuffer
    let pooledMask: FloatBuffer?
    /// Classifier input (pooled after dropout) [B, H], logits and softmax probabilities [B, classes].
    let classifierInput, logitsBuffer, softmax: FloatBuffer
}

/// A BERT sequence classifier's training passes: a stateless description of where each
/// parameter lives; parameters, activations and gradients are passed explicitly.
public struct BertTrainingModel: Sendable {
    /// The architecture (per-layer heads and FFN widths included).
    public let config: BertConfig
    /// Number of classes of the classifier.
    public let classCount: Int
    /// Canonical parameter layout (encoder, pooler, classifier).
    public let layout: ParameterLayout

    struct LayerSlots: Sendable {
        var heads: Int, width: Int
        var qW, qB, kW, kB, vW, vB, oW, oB, n1G, n1B, iW, iB, fW, fB, n2G, n2B: Int
    }
    let word, position, type, embGamma, embBeta, poolerW, poolerB, classifierW, classifierB: Int
    let layerSlots: [LayerSlots]

    /// A model for `config` with a pooler and a `classes`-way classifier.
    public init(config: BertConfig, classes: Int) throws(ModelError) {
        try config.validate()
        guard classes >= 2 else {
            throw ModelError.badConfig("config", "a classifier needs at least 2 classes, got \(classes)",
                                       hint: "cross-entropy training is for single-label classification")
        }
        self.config = config
        classCount = classes
        let layout = ParameterLayout(config: config, heads: BertHeads(pooler: true, classifierLabels: classes))
        self.layout = layout
        func o(_ name: String) -> Int { layout.offset(name) }
        word = o("embeddings.word_embeddings.weight")
        position = o("embeddings.position_embeddings.weight")
        type = o("embeddings.token_type_embeddings.weight")
        embGamma = o("embeddings.LayerNorm.weight")
        embBeta = o("embeddings.LayerNorm.bias")
        poolerW = o("pooler.dense.weight")
        poolerB = o("pooler.dense.bias")
        classifierW = o("classifier.weight")
        classifierB = o("classifier.bias")
        layerSlots = (0..<config.layerCount).map { l in
            let p = "encoder.layer.\(l)."
            return LayerSlots(
                heads: config.layerHeads[l], width: config.layerIntermediateSizes[l],
                qW: o(p + "attention.self.query.weight"), qB: o(p + "attention.self.query.bias"),
                kW: o(p + "attention.self.key.weight"), kB: o(p + "attention.self.key.bias"),
                vW: o(p + "attention.self.value.weight"), vB: o(p + "attention.self.value.bias"),
                oW: o(p + "attention.output.dense.weight"), oB: o(p + "attention.output.dense.bias"),
                n1G: o(p + "attention.output.LayerNorm.weight"), n1B: o(p + "attention.output.LayerNorm.bias"),
                iW: o(p + "intermediate.dense.weight"), iB: o(p + "intermediate.dense.bias"),
                fW: o(p + "output.dense.weight"), fB: o(p + "output.dense.bias"),
                n2G: o(p + "output.LayerNorm.weight"), n2B: o(p + "output.LayerNorm.bias"))
        }
    }

    /// Checks a batch (and labels) against the model before any work is done.
    public func check(_ batch: EncoderBatch, labels: [Int32]?) throws(ModelError) {
        let (B, T) = (batch.batchSize, batch.sequenceLength)
        guard B > 0, T > 0, batch.ids.count == B * T, batch.typeIds.count == B * T, batch.mask.count == B * T else {
            throw ModelError.badInput("batch of \(B)×\(T) has \(batch.ids.count) ids, \(batch.typeIds.count) type ids, \(batch.mask.count) mask values",
                                      hint: "ids, type ids and mask must all be [batch, sequence]")
        }
        guard T <= config.maxPositions else {
            throw ModelError.badInput("sequence length \(T) exceeds the model's \(config.maxPositions) positions",
                                      hint: "truncate with --max-length \(config.maxPositions) or less")
        }
        if let i = batch.ids.firstIndex(where: { $0 < 0 || Int($0) >= config.vocabSize }) {
            throw ModelError.badInput("token id \(batch.ids[i]) at sequence \(i / T), position \(i % T) is outside the vocabulary (0..<\(config.vocabSize))",
                                      hint: "the ids were made with another vocabulary")
        }
        if let i = batch.typeIds.firstIndex(where: { $0 < 0 || Int($0) >= config.typeVocabSize }) {
            throw ModelError.badInput("token type id \(batch.typeIds[i]) at sequence \(i / T) is outside 0..<\(config.typeVocabSize)",
                                      hint: "token types are 0 (first segment) or 1 (second)")
        }
        if let m = batch.mask.first(where: { $0 != 0 && $0 != 1 }) {
            throw ModelError.badInput("attention mask value \(m)", hint: "the mask holds 1 for tokens and 0 for padding")
        }
        if let labels {
            guard labels.count == B else {
                throw ModelError.badInput("\(labels.count) labels for a batch of \(B)", hint: "give one label per sequence")
            }
            if let i = labels.firstIndex(where: { $0 < 0 || Int($0) >= classCount }) {
                throw ModelError.badInput("label \(labels[i]) of sequence \(i) is outside 0..<\(classCount)",
                                          hint: "labels are class indices of the classifier")
            }
        }
    }

    /// Dropout site numbers, one stream per (step, site).
    private func site(layer l: Int, _ k: Int) -> Int { 1 + 3 * l + k }
    private var classifierSite: Int { 1 + 3 * config.layerCount }

    /// The training forward: logits, loss (when `labels` are given) and cached activations.
    /// Dropout masks are drawn from `rng` at training step `step` (pass `.off` to disable).
    public func forward(_ batch: EncoderBatch, labels: [Int32]?, parameters: ParameterBlock,
                        dropout: DropoutRates = .off, rng: DropoutRNG = DropoutRNG(seed: 0),
                        step: Int = 0) throws(ModelError) -> BertActivations {
        precondition(parameters.layout == layout, "BertTrainingModel.forward: parameter block has another layout")
        try check(batch, labels: labels)
        let B = batch.batchSize, T = batch.sequenceLength, H = config.hiddenSize, D = config.headSize
        let rows = B * T, L = classCount, eps = config.layerNormEps
        func dropoutMask(_ count: Int, _ p: Float, _ site: Int) -> FloatBuffer? {
            p > 0 ? FloatBuffer(rng.mask(count: count, probability: p, stream: DropoutRNG.stream(step: step, site: site))) : nil
        }
        return parameters.storage.withUnsafeBufferPointer { pp in
            let P = pp.baseAddress!
            // Embeddings: (word + type) + position, LayerNorm, dropout.
            let embSum = FloatBuffer(count: rows * H), embMean = FloatBuffer(count: rows),
                embRstd = FloatBuffer(count: rows), embNorm = FloatBuffer(count: rows * H)
            batch.ids.withUnsafeBufferPointer { ids in batch.typeIds.withUnsafeBufferPointer { tids in
                embeddingForward(out: embSum.pointer, ids: ids.baseAddress!, typeIds: tids.baseAddress!, rows: rows,
                                 sequenceLength: T, hidden: H, word: P + word, position: P + position, type: P + type)
            } }
            layerNormForward(y: embNorm.pointer, mean: embMean.pointer, rstd: embRstd.pointer, x: embSum.pointer,
                             gamma: P + embGamma, beta: P + embBeta, rows: rows, cols: H, eps: eps)
            let embMask = dropoutMask(rows * H, dropout.hidden, 0)
            var x = embNorm
            if let embMask {
                x = FloatBuffer(count: rows * H)
                dropoutForward(y: x.pointer, x: embNorm.pointer, mask: embMask.pointer, count: rows * H)
            }
            // Encoder layers.
            var layers: [LayerActivations] = []
            batch.mask.withUnsafeBufferPointer { maskp in
                for (l, s) in layerSlots.enumerated() {
                    let A = s.heads * D, F = s.width
                    let q = FloatBuffer(count: rows * A), k = FloatBuffer(count: rows * A), v = FloatBuffer(count: rows * A)
                    linearForward(y: q.pointer, x: x.pointer, weight: P + s.qW, bias: P + s.qB, rows: rows, inFeatures: H, outFeatures: A)
                    linearForward(y: k.pointer, x: x.pointer, weight: P + s.kW, bias: P + s.kB, rows: rows, inFeatures: H, outFeatures: A)
                    linearForward(y: v.pointer, x: x.pointer, weight: P + s.vW, bias: P + s.vB, rows: rows, inFeatures: H, outFeatures: A)
                    let probs = FloatBuffer(count: B * s.heads * T * T), ctx = FloatBuffer(count: rows * A)
                    let probMask = dropoutMask(B * s.heads * T * T, dropout.attention, site(layer: l, 0))
                    attentionForward(ctx: ctx.pointer, probs: probs.pointer, q: q.pointer, k: k.pointer, v: v.pointer,
                                     mask: maskp.baseAddress!, dropoutMask: probMask.map { UnsafePointer($0.pointer) },
                                     batch: B, sequenceLength: T, heads: s.heads, headSize: D)
                    // norm1 = LayerNorm(dropout(ctx·Woᵀ + bo) + x)
                    let n1In = FloatBuffer(count: rows * H)
                    linearForward(y: n1In.pointer, x: ctx.pointer, weight: P + s.oW, bias: P + s.oB, rows: rows, inFeatures: A, outFeatures: H)
                    let aoMask = dropoutMask(rows * H, dropout.hidden, site(layer: l, 1))
                    if let aoMask { dropoutForward(y: n1In.pointer, x: n1In.pointer, mask: aoMask.pointer, count: rows * H) }
                    for i in 0..<(rows * H) { n1In.pointer[i] += x.pointer[i] }
                    let n1Mean = FloatBuffer(count: rows), n1Rstd = FloatBuffer(count: rows), n1Out = FloatBuffer(count: rows * H)
                    layerNormForward(y: n1Out.pointer, mean: n1Mean.pointer, rstd: n1Rstd.pointer, x: n1In.pointer,
                                     gamma: P + s.n1G, beta: P + s.n1B, rows: rows, cols: H, eps: eps)
                    // out = LayerNorm(dropout(GELU(norm1·W1ᵀ + b1)·W2ᵀ + b2) + norm1)
                    let pre = FloatBuffer(count: rows * F), act = FloatBuffer(count: rows * F)
                    linearForward(y: pre.pointer, x: n1Out.pointer, weight: P + s.iW, bias: P + s.iB, rows: rows, inFeatures: H, outFeatures: F)
                    geluForward(y: act.pointer, x: pre.pointer, count: rows * F)
                    let n2In = FloatBuffer(count: rows * H)
                    linearForward(y: n2In.pointer, x: act.pointer, weight: P + s.fW, bias: P + s.fB, rows: rows, inFeatures: F, outFeatures: H)
                    let ffMask = dropoutMask(rows * H, dropout.hidden, site(layer: l, 2))
                    if let ffMask { dropoutForward(y: n2In.pointer, x: n2In.pointer, mask: ffMask.pointer, count: rows * H) }
                    for i in 0..<(rows * H) { n2In.pointer[i] += n1Out.pointer[i] }
                    let n2Mean = FloatBuffer(count: rows), n2Rstd = FloatBuffer(count: rows), out = FloatBuffer(count: rows * H)
                    layerNormForward(y: out.pointer, mean: n2Mean.pointer, rstd: n2Rstd.pointer, x: n2In.pointer,
                                     gamma: P + s.n2G, beta: P + s.n2B, rows: rows, cols: H, eps: eps)
                    layers.append(LayerActivations(
                        input: x, query: q, key: k, value: v, probabilities: probs, probabilityMask: probMask,
                        context: ctx, attentionOutputMask: aoMask, norm1Input: n1In, norm1Mean: n1Mean,
                        norm1Rstd: n1Rstd, norm1Output: n1Out, ffnPre: pre, ffnActivation: act, ffnOutputMask: ffMask,
                        norm2Input: n2In, norm2Mean: n2Mean, norm2Rstd: n2Rstd, output: out))
                    x = out
                }
            }
            // Pooler over [CLS], dropout, classifier, loss.
            let cls = FloatBuffer(count: B * H), poolPre = FloatBuffer(count: B * H), pooled = FloatBuffer(count: B * H)
            for b in 0..<B { (cls.pointer + b * H).update(from: x.pointer + b * T * H, count: H) }
            linearForward(y: poolPre.pointer, x: cls.pointer, weight: P + poolerW, bias: P + poolerB, rows: B, inFeatures: H, outFeatures: H)
            tanhForward(y: pooled.pointer, x: poolPre.pointer, count: B * H)
            let poolMask = dropoutMask(B * H, dropout.classifier, classifierSite)
            var clsIn = pooled
            if let poolMask {
                clsIn = FloatBuffer(count: B * H)
                dropoutForward(y: clsIn.pointer, x: pooled.pointer, mask: poolMask.pointer, count: B * H)
            }
            let logits = FloatBuffer(count: B * L), softmax = FloatBuffer(count: B * L)
            linearForward(y: logits.pointer, x: clsIn.pointer, weight: P + classifierW, bias: P + classifierB, rows: B, inFeatures: H, outFeatures: L)
            var loss: Double?
            if let labels {
                loss = labels.withUnsafeBufferPointer { lp in
                    crossEntropyForward(probs: softmax.pointer, logits: logits.pointer, labels: lp.baseAddress!, batch: B, classes: L)
                }
            }
            return BertActivations(batch: batch, labels: labels, loss: loss, logits: Tensor(shape: [B, L], data: logits.array),
                                   embeddingSum: embSum, embeddingMean: embMean, embeddingRstd: embRstd, embeddingNorm: embNorm,
                                   embeddingMask: embMask, layers: layers, cls: cls, poolerPre: poolPre, pooled: pooled,
                                   pooledMask: poolMask, classifierInput: clsIn, logitsBuffer: logits, softmax: softmax)
        }
    }

    /// The backward of `forward` for d(loss)/d(loss) = 1: adds every parameter's gradient
    /// into `gradients` (zero it first for a fresh step). The forward must have had labels.
    public func backward(_ acts: BertActivations, parameters: ParameterBlock, gradients: inout Gradients) {
        precondition(parameters.layout == layout && gradients.layout == layout,
                     "BertTrainingModel.backward: parameter or gradient block has another layout")
        guard let labels = acts.labels else {
            preconditionFailure("BertTrainingModel.backward: the forward ran without labels, there is no loss to differentiate")
        }
        let batch = acts.batch
        let B = batch.batchSize, T = batch.sequenceLength, H = config.hiddenSize, D = config.headSize
        let rows = B * T, L = classCount
        let ws = Workspace()
        defer { withExtendedLifetime(ws) {} }
        parameters.storage.withUnsafeBufferPointer { pp in gradients.storage.withUnsafeMutableBufferPointer { gp in
            let P = pp.baseAddress!, G = gp.baseAddress!
            // Loss → classifier → dropout → tanh → pooler.
            let dLogits = ws.buffer(B * L)
            labels.withUnsafeBufferPointer { lp in
                crossEntropyBackward(dLogits: dLogits.pointer, logits: acts.logitsBuffer.pointer, labels: lp.baseAddress!, batch: B, classes: L)
            }
            let dPooled = ws.buffer(B * H)
            linearBackward(dx: dPooled.pointer, dWeight: G + classifierW, dBias: G + classifierB, dy: dLogits.pointer,
                           x: acts.classifierInput.pointer, weight: P + classifierW, rows: B, inFeatures: H, outFeatures: L)
            if let m = acts.pooledMask { dropoutBackward(dx: dPooled.pointer, dy: dPooled.pointer, mask: m.pointer, count: B * H) }
            let dPre = ws.buffer(B * H), dCls = ws.buffer(B * H)
            tanhBackward(dx: dPre.pointer, dy: dPooled.pointer, y: acts.pooled.pointer, count: B * H)
            linearBackward(dx: dCls.pointer, dWeight: G + poolerW, dBias: G + poolerB, dy: dPre.pointer,
                           x: acts.cls.pointer, weight: P + poolerW, rows: B, inFeatures: H, outFeatures: H)
            // dX: gradient w.r.t. the current layer output; only [CLS] rows receive one at the top.
            var dX = ws.buffer(rows * H), dIn = ws.buffer(rows * H)
            for b in 0..<B { (dX.pointer + b * T * H).update(from: dCls.pointer + b * H, count: H) }
            let dNorm = ws.buffer(rows * H), dBranch = ws.buffer(rows * H), dNorm1 = ws.buffer(rows * H)
            // Per-layer temporaries at the widest layer's sizes, reused by every layer.
            let maxA = (layerSlots.map(\.heads).max() ?? 1) * D, maxF = layerSlots.map(\.width).max() ?? 1
            let dAct = ws.buffer(rows * maxF), dCtx = ws.buffer(rows * maxA)
            let dq = ws.buffer(rows * maxA), dk = ws.buffer(rows * maxA), dv = ws.buffer(rows * maxA)
            for (l, s) in layerSlots.enumerated().reversed() {
                let a = acts.layers[l]
                let A = s.heads * D, F = s.width
                // out = LN2(dropout(ffnOut) + norm1): dNorm is the gradient at LN2's input.
                layerNormBackward(dx: dNorm.pointer, dGamma: G + s.n2G, dBeta: G + s.n2B, dy: dX.pointer,
                                  x: a.norm2Input.pointer, mean: a.norm2Mean.pointer, rstd: a.norm2Rstd.pointer,
                                  gamma: P + s.n2G, rows: rows, cols: H)
                dNorm1.pointer.update(from: dNorm.pointer, count: rows * H)          // residual path
                var dFfnOut = UnsafePointer(dNorm.pointer)
                if let m = a.ffnOutputMask {
                    dropoutBackward(dx: dBranch.pointer, dy: dNorm.pointer, mask: m.pointer, count: rows * H)
                    dFfnOut = UnsafePointer(dBranch.pointer)
                }
                linearBackward(dx: dAct.pointer, dWeight: G + s.fW, dBias: G + s.fB, dy: dFfnOut,
                               x: a.ffnActivation.pointer, weight: P + s.fW, rows: rows, inFeatures: F, outFeatures: H)
                geluBackward(dx: dAct.pointer, dy: dAct.pointer, x: a.ffnPre.pointer, count: rows * F)
                linearBackward(dx: dNorm1.pointer, accumulateInput: true, dWeight: G + s.iW, dBias: G + s.iB,
                               dy: dAct.pointer, x: a.norm1Output.pointer, weight: P + s.iW,
                               rows: rows, inFeatures: H, outFeatures: F)
                // norm1 = LN1(dropout(ctx·Woᵀ + bo) + x)
                layerNormBackward(dx: dNorm.pointer, dGamma: G + s.n1G, dBeta: G + s.n1B, dy: dNorm1.pointer,
                                  x: a.norm1Input.pointer, mean: a.norm1Mean.pointer, rstd: a.norm1Rstd.pointer,
                                  gamma: P + s.n1G, rows: rows, cols: H)
                dIn.pointer.update(from: dNorm.pointer, count: rows * H)             // residual path
                var dAttnOut = UnsafePointer(dNorm.pointer)
                if let m = a.attentionOutputMask {
                    dropoutBackward(dx: dBranch.pointer, dy: dNorm.pointer, mask: m.pointer, count: rows * H)
                    dAttnOut = UnsafePointer(dBranch.pointer)
                }
                linearBackward(dx: dCtx.pointer, dWeight: G + s.oW, dBias: G + s.oB, dy: dAttnOut,
                               x: a.context.pointer, weight: P + s.oW, rows: rows, inFeatures: A, outFeatures: H)
                attentionBackward(dq: dq.pointer, dk: dk.pointer, dv: dv.pointer, dCtx: dCtx.pointer,
                                  probs: a.probabilities.pointer, q: a.query.pointer, k: a.key.pointer, v: a.value.pointer,
                                  dropoutMask: a.probabilityMask.map { UnsafePointer($0.pointer) },
                                  batch: B, sequenceLength: T, heads: s.heads, headSize: D)
                for (d, w, bias) in [(dq, s.qW, s.qB), (dk, s.kW, s.kB), (dv, s.vW, s.vB)] {
                    linearBackward(dx: dIn.pointer, accumulateInput: true, dWeight: G + w, dBias: G + bias,
                                   dy: d.pointer, x: a.input.pointer, weight: P + w, rows: rows, inFeatures: H, outFeatures: A)
                }
                swap(&dX, &dIn)
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
