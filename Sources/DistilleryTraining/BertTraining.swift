// BertTraining: the training forward (with cached activations) of a BERT sequence
// classifier — encoder, tanh pooler over [CLS] (or the masked mean of the last hidden
// states when the config says `classifierPooling: .mean`), linear classifier,
// cross-entropy; the backward is in BertBackward.swift.
//
// Follows HF `BertForSequenceClassification` in train mode: dropout after the embedding
// LayerNorm, on the attention probabilities, after each attention-output and FFN-output
// dense (before the residual add and LayerNorm), and on the pooled vector before the
// classifier; loss = mean cross-entropy over the batch. Structure follows llm.c: the model
// is a stateless description (config + offsets into the parameter block); `forward`
// returns every activation the backward needs in a `BertActivations` value, and
// `backward` walks the same layers in reverse, accumulating into a `Gradients` block laid
// out like the parameters. Per-layer head counts and FFN widths come from the config.
// For distillation the activations expose what HF's `output_hidden_states` /
// `output_attentions` give (and, on request, the pre-softmax attention scores), and the
// backward can be seeded at those. Activation memory comes from a per-model pool of
// arenas reused across steps (ActivationArena.swift). Parameter blocks may carry extra
// trailing tensors after the model's own (e.g. distillation projections).
// Left out on purpose: gradient checkpointing, fused QKV, regression/multi-label losses.
import DistilleryModel
import DistilleryTensor
import Foundation

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
    /// Pre-softmax scores q·kᵀ/√D before the mask [B, heads, T, T], when the forward kept them.
    public let scores: FloatBuffer?
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

    /// Hidden states as HF's `output_hidden_states` in train mode, each [B·T, H]: index 0
    /// is the embedding output after dropout, index l (1...layers) the output of layer l.
    /// Valid while this value (or the buffer itself) is alive.
    public let hiddenStates: [FloatBuffer]
    /// Per layer: the attention probabilities [B, heads, T, T] (softmax, before dropout).
    public var attentionProbabilities: [FloatBuffer] { layers.map(\.probabilities) }
    /// Per layer: the pre-softmax scores q·kᵀ/√D before the mask [B, heads, T, T], when
    /// the forward ran with `keepScores`; nil otherwise.
    public var attentionScores: [FloatBuffer]? {
        layers.allSatisfy { $0.scores != nil } ? layers.map { $0.scores! } : nil
    }
    /// Per layer: everything the backward reads.
    public let layers: [LayerActivations]

    let embeddingSum, embeddingMean, embeddingRstd, embeddingNorm: FloatBuffer
    let embeddingMask: FloatBuffer?
    /// [CLS] states [B, H] (nil when mean-pooling), the pooled vector [B, H] (tanh output
    /// or masked mean), its dropout mask.
    let cls: FloatBuffer?
    let pooled: FloatBuffer
    let pooledMask: FloatBuffer?
    /// Classifier input (pooled after dropout) [B, H], logits and softmax probabilities [B, classes].
    let classifierInput, logitsBuffer, softmax: FloatBuffer
    /// The arena these buffers live in, and where the backward's temporaries start.
    let lease: ArenaLease
    let backwardSlot: Int
}

/// A BERT sequence classifier's training passes: a stateless description of where each
/// parameter lives; parameters, activations and gradients are passed explicitly.
public struct BertTrainingModel: Sendable {
    /// The architecture (per-layer heads and FFN widths included).
    public let config: BertConfig
    /// Number of classes of the classifier.
    public let classCount: Int
    /// Canonical parameter layout (encoder, pooler unless mean-pooling, classifier).
    public let layout: ParameterLayout

    struct LayerSlots: Sendable {
        var heads: Int, width: Int
        var qW, qB, kW, kB, vW, vB, oW, oB, n1G, n1B, iW, iB, fW, fB, n2G, n2B: Int
    }
    let word, position, type, embGamma, embBeta, classifierW, classifierB: Int
    /// The pooler's weight and bias offsets; nil when the classifier reads the masked mean.
    let pooler: (weight: Int, bias: Int)?
    let layerSlots: [LayerSlots]
    /// Reusable activation memory (see ActivationArena.swift).
    let arenas = ArenaPool()

    /// A model for `config` with a `classes`-way classifier (and a pooler unless the config
    /// mean-pools).
    public init(config: BertConfig, classes: Int) throws(ModelError) {
        try config.validate()
        guard classes >= 2 else {
            throw ModelError.badConfig("config", "a classifier needs at least 2 classes, got \(classes)",
                                       hint: "cross-entropy training is for single-label classification")
        }
        self.config = config
        classCount = classes
        let heads = config.classifierHeads(classes: classes)
        let layout = ParameterLayout(config: config, heads: heads)
        self.layout = layout
        func o(_ name: String) -> Int { layout.offset(name) }
        word = o("embeddings.word_embeddings.weight")
        position = o("embeddings.position_embeddings.weight")
        type = o("embeddings.token_type_embeddings.weight")
        embGamma = o("embeddings.LayerNorm.weight")
        embBeta = o("embeddings.LayerNorm.bias")
        pooler = heads.pooler ? (o("pooler.dense.weight"), o("pooler.dense.bias")) : nil
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
    /// `keepScores` also keeps each layer's pre-softmax attention scores (`attentionScores`).
    /// `parameters` must start with this model's layout (extra trailing tensors are ignored).
    public func forward(_ batch: EncoderBatch, labels: [Int32]?, parameters: ParameterBlock,
                        dropout: DropoutRates = .off, rng: DropoutRNG = DropoutRNG(seed: 0),
                        step: Int = 0, keepScores: Bool = false) throws(ModelError) -> BertActivations {
        precondition(parameters.layout.starts(with: layout),
                     "BertTrainingModel.forward: the parameter block does not start with the model's layout")
        try check(batch, labels: labels)
        let B = batch.batchSize, T = batch.sequenceLength, H = config.hiddenSize, D = config.headSize
        let rows = B * T, L = classCount, eps = config.layerNormEps
        let lease = arenas.lease()
        let arena = lease.arena
        func buffer(_ count: Int) -> FloatBuffer { arena.take(count) }
        func dropoutMask(_ count: Int, _ p: Float, _ site: Int) -> FloatBuffer? {
            guard p > 0 else { return nil }
            let m = arena.take(count)
            rng.fillMask(m.pointer, count: count, probability: p, stream: DropoutRNG.stream(step: step, site: site))
            return m
        }
        return parameters.storage.withUnsafeBufferPointer { pp in
            let P = pp.baseAddress!
            // Embeddings: (word + type) + position, LayerNorm, dropout.
            let embSum = buffer(rows * H), embMean = buffer(rows), embRstd = buffer(rows), embNorm = buffer(rows * H)
            batch.ids.withUnsafeBufferPointer { ids in batch.typeIds.withUnsafeBufferPointer { tids in
                embeddingForward(out: embSum.pointer, ids: ids.baseAddress!, typeIds: tids.baseAddress!, rows: rows,
                                 sequenceLength: T, hidden: H, word: P + word, position: P + position, type: P + type)
            } }
            layerNormForward(y: embNorm.pointer, mean: embMean.pointer, rstd: embRstd.pointer, x: embSum.pointer,
                             gamma: P + embGamma, beta: P + embBeta, rows: rows, cols: H, eps: eps)
            let embMask = dropoutMask(rows * H, dropout.hidden, 0)
            var x = embNorm
            if let embMask {
                x = buffer(rows * H)
                dropoutForward(y: x.pointer, x: embNorm.pointer, mask: embMask.pointer, count: rows * H)
            }
            var hidden = [x]
            // Encoder layers.
            var layers: [LayerActivations] = []
            batch.mask.withUnsafeBufferPointer { maskp in
                for (l, s) in layerSlots.enumerated() {
                    let A = s.heads * D, F = s.width
                    let q = buffer(rows * A), k = buffer(rows * A), v = buffer(rows * A)
                    linearForward(y: q.pointer, x: x.pointer, weight: P + s.qW, bias: P + s.qB, rows: rows, inFeatures: H, outFeatures: A)
                    linearForward(y: k.pointer, x: x.pointer, weight: P + s.kW, bias: P + s.kB, rows: rows, inFeatures: H, outFeatures: A)
                    linearForward(y: v.pointer, x: x.pointer, weight: P + s.vW, bias: P + s.vB, rows: rows, inFeatures: H, outFeatures: A)
                    let probs = buffer(B * s.heads * T * T), ctx = buffer(rows * A)
                    let scores = keepScores ? buffer(B * s.heads * T * T) : nil
                    let probMask = dropoutMask(B * s.heads * T * T, dropout.attention, site(layer: l, 0))
                    attentionForward(ctx: ctx.pointer, probs: probs.pointer, scores: scores?.pointer,
                                     q: q.pointer, k: k.pointer, v: v.pointer,
                                     mask: maskp.baseAddress!, dropoutMask: probMask.map { UnsafePointer($0.pointer) },
                                     batch: B, sequenceLength: T, heads: s.heads, headSize: D)
                    // norm1 = LayerNorm(dropout(ctx·Woᵀ + bo) + x)
                    let n1In = buffer(rows * H)
                    linearForward(y: n1In.pointer, x: ctx.pointer, weight: P + s.oW, bias: P + s.oB, rows: rows, inFeatures: A, outFeatures: H)
                    let aoMask = dropoutMask(rows * H, dropout.hidden, site(layer: l, 1))
                    if let aoMask { dropoutForward(y: n1In.pointer, x: n1In.pointer, mask: aoMask.pointer, count: rows * H) }
                    residualAdd(n1In.pointer, x.pointer, count: rows * H)
                    let n1Mean = buffer(rows), n1Rstd = buffer(rows), n1Out = buffer(rows * H)
                    layerNormForward(y: n1Out.pointer, mean: n1Mean.pointer, rstd: n1Rstd.pointer, x: n1In.pointer,
                                     gamma: P + s.n1G, beta: P + s.n1B, rows: rows, cols: H, eps: eps)
                    // out = LayerNorm(dropout(GELU(norm1·W1ᵀ + b1)·W2ᵀ + b2) + norm1)
                    let pre = buffer(rows * F), act = buffer(rows * F)
                    linearForward(y: pre.pointer, x: n1Out.pointer, weight: P + s.iW, bias: P + s.iB, rows: rows, inFeatures: H, outFeatures: F)
                    geluForward(y: act.pointer, x: pre.pointer, count: rows * F)
                    let n2In = buffer(rows * H)
                    linearForward(y: n2In.pointer, x: act.pointer, weight: P + s.fW, bias: P + s.fB, rows: rows, inFeatures: F, outFeatures: H)
                    let ffMask = dropoutMask(rows * H, dropout.hidden, site(layer: l, 2))
                    if let ffMask { dropoutForward(y: n2In.pointer, x: n2In.pointer, mask: ffMask.pointer, count: rows * H) }
                    residualAdd(n2In.pointer, n1Out.pointer, count: rows * H)
                    let n2Mean = buffer(rows), n2Rstd = buffer(rows), out = buffer(rows * H)
                    layerNormForward(y: out.pointer, mean: n2Mean.pointer, rstd: n2Rstd.pointer, x: n2In.pointer,
                                     gamma: P + s.n2G, beta: P + s.n2B, rows: rows, cols: H, eps: eps)
                    layers.append(LayerActivations(
                        input: x, query: q, key: k, value: v, probabilities: probs, probabilityMask: probMask, scores: scores,
                        context: ctx, attentionOutputMask: aoMask, norm1Input: n1In, norm1Mean: n1Mean,
                        norm1Rstd: n1Rstd, norm1Output: n1Out, ffnPre: pre, ffnActivation: act, ffnOutputMask: ffMask,
                        norm2Input: n2In, norm2Mean: n2Mean, norm2Rstd: n2Rstd, output: out))
                    x = out
                    hidden.append(out)
                }
            }
            // Pooler over [CLS] (or the masked mean), dropout, classifier, loss.
            let pooled = buffer(B * H)
            var cls: FloatBuffer?
            if let pooler {
                let c = buffer(B * H), pre = buffer(B * H)
                for b in 0..<B { (c.pointer + b * H).update(from: x.pointer + b * T * H, count: H) }
                linearForward(y: pre.pointer, x: c.pointer, weight: P + pooler.weight, bias: P + pooler.bias, rows: B, inFeatures: H, outFeatures: H)
                tanhForward(y: pooled.pointer, x: pre.pointer, count: B * H)
                cls = c
            } else {
                batch.mask.withUnsafeBufferPointer { m in
                    maskedMeanForward(out: pooled.pointer, x: x.pointer, mask: m.baseAddress!, batch: B, sequenceLength: T, hidden: H)
                }
            }
            let poolMask = dropoutMask(B * H, dropout.classifier, classifierSite)
            var clsIn = pooled
            if let poolMask {
                clsIn = buffer(B * H)
                dropoutForward(y: clsIn.pointer, x: pooled.pointer, mask: poolMask.pointer, count: B * H)
            }
            let logits = buffer(B * L), softmax = buffer(B * L)
            linearForward(y: logits.pointer, x: clsIn.pointer, weight: P + classifierW, bias: P + classifierB, rows: B, inFeatures: H, outFeatures: L)
            var loss: Double?
            if let labels {
                loss = labels.withUnsafeBufferPointer { lp in
                    crossEntropyForward(probs: softmax.pointer, logits: logits.pointer, labels: lp.baseAddress!, batch: B, classes: L)
                }
            }
            return BertActivations(batch: batch, labels: labels, loss: loss, logits: Tensor(shape: [B, L], data: logits.array),
                                   hiddenStates: hidden, layers: layers,
                                   embeddingSum: embSum, embeddingMean: embMean, embeddingRstd: embRstd, embeddingNorm: embNorm,
                                   embeddingMask: embMask, cls: cls, pooled: pooled,
                                   pooledMask: poolMask, classifierInput: clsIn, logitsBuffer: logits, softmax: softmax,
                                   lease: lease, backwardSlot: arena.position)
        }
    }
}
