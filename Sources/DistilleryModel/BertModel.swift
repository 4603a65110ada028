// BertModel: the one BERT forward — inference, fine-tuning, labeling and distillation all
// run it; the backward is in BertBackward.swift.
//
// Follows HF `BertForSequenceClassification` (post-LN, exact-erf GELU): embeddings (word +
// type, + position, LayerNorm, dropout), then per layer fused Q/K/V projection →
// self-attention (padding mask, dropout on the probabilities, optional head mask) →
// dense → dropout → add & LayerNorm → FFN (GELU) → dense → dropout → add & LayerNorm;
// then the tanh pooler over [CLS] (or the masked mean of the last states when the config
// says `classifierPooling: .mean`), dropout and the classifier; cross-entropy when labels
// are given. Without a classifier (a bare encoder, a sentence embedder) the pass stops
// after the pooler.
// Structure follows llm.c: the model is a stateless description (config + offsets into
// the parameter block); `forward` writes its activations into a leased arena and returns
// them; with `cacheForBackward` off (inference) the per-layer buffers are reused from
// layer to layer instead of kept. Linear layers read their weights through `WeightMatrix`
// (a view of the block packed per call, or copies packed once — `BertEncoder` passes
// those), so the layers never know the storage. Every kernel is shared: the GEMM with its
// bias epilogue, dk_attention_head, dk_bias_gelu, dk_residual_layernorm. Per-layer head
// counts and FFN widths come from the config. Parameter blocks may carry extra trailing
// tensors after the model's own (e.g. distillation projections).
// Left out on purpose: gradient checkpointing, regression/multi-label losses.
import DistilleryTensor
import Foundation

/// How a forward runs beyond its inputs: dropout, what to keep, an optional head mask.
public struct ForwardOptions: Sendable {
    /// Dropout probabilities (`.off` for evaluation).
    public var dropout: DropoutRates
    /// The dropout stream, and the training step it is drawn for.
    public var rng: DropoutRNG
    public var step: Int
    /// Keep every activation the backward reads. Off (inference): per-layer buffers are reused.
    public var cacheForBackward: Bool
    /// Keep each layer's pre-softmax attention scores (`attentionScores`); they are part of
    /// the cached activations, so this needs `cacheForBackward`.
    public var keepScores: Bool
    /// Without caching: keep the hidden states / attention probabilities anyway.
    public var hiddenStates: Bool, attentions: Bool
    /// HF's `head_mask`: one weight per head of each layer, multiplying its attention
    /// probabilities (nil: all ones). The backward returns its gradient.
    public var headMask: [[Float]]?
    /// The Linear weights to use; nil reads them from the parameter block (packed per call).
    public var matrices: ModelMatrices?

    public init(dropout: DropoutRates = .off, rng: DropoutRNG = DropoutRNG(seed: 0), step: Int = 0,
                cacheForBackward: Bool = true, keepScores: Bool = false, hiddenStates: Bool = false,
                attentions: Bool = false, headMask: [[Float]]? = nil, matrices: ModelMatrices? = nil) {
        self.dropout = dropout
        self.rng = rng
        self.step = step
        self.cacheForBackward = cacheForBackward
        self.keepScores = keepScores
        self.hiddenStates = hiddenStates
        self.attentions = attentions
        self.headMask = headMask
        self.matrices = matrices
    }
}

/// A BERT encoder with its optional pooler and classifier: a stateless description of where
/// each parameter lives; parameters, activations and gradients are passed explicitly.
public struct BertModel: Sendable {
    /// The architecture (per-layer heads and FFN widths included).
    public let config: BertConfig
    /// Which heads the model has.
    public let heads: BertHeads
    /// Number of classes of the classifier (0 without one).
    public var classCount: Int { heads.classifierLabels }
    /// Canonical parameter layout (encoder, pooler, classifier).
    public let layout: ParameterLayout

    struct LayerSlots: Sendable {
        var heads: Int, width: Int
        var qW, qB, kW, kB, vW, vB, oW, oB, n1G, n1B, iW, iB, fW, fB, n2G, n2B: Int
    }
    let word, position, type, embGamma, embBeta: Int
    /// The pooler's and classifier's weight and bias offsets, when present.
    let pooler: (weight: Int, bias: Int)?
    let classifier: (weight: Int, bias: Int)?
    let layerSlots: [LayerSlots]
    /// The Linear weights as views of the parameter block (packed per call).
    public let blockMatrices: ModelMatrices
    /// Reusable activation memory (see ActivationArena.swift).
    let arenas = ArenaPool()

    /// A model for `config` with the given heads.
    public init(config: BertConfig, heads: BertHeads) throws(ModelError) {
        try config.validate()
        if heads.classifierLabels == 1 || heads.classifierLabels < 0 {
            throw ModelError.badConfig("config", "a classifier needs at least 2 classes, got \(heads.classifierLabels)",
                                       hint: "cross-entropy training is for single-label classification")
        }
        self.config = config
        self.heads = heads
        let layout = ParameterLayout(config: config, heads: heads)
        self.layout = layout
        func o(_ name: String) -> Int { layout.offset(name) }
        word = o("embeddings.word_embeddings.weight")
        position = o("embeddings.position_embeddings.weight")
        type = o("embeddings.token_type_embeddings.weight")
        embGamma = o("embeddings.LayerNorm.weight")
        embBeta = o("embeddings.LayerNorm.bias")
        pooler = heads.pooler ? (o("pooler.dense.weight"), o("pooler.dense.bias")) : nil
        classifier = heads.classifierLabels > 0 ? (o("classifier.weight"), o("classifier.bias")) : nil
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
        let H = config.hiddenSize, D = config.headSize
        func view(_ offset: Int, _ out: Int, _ n: Int) -> WeightMatrix { .parameterBlock(offset: offset, outFeatures: out, inFeatures: n) }
        blockMatrices = ModelMatrices(
            qkv: layerSlots.map { s in [s.qW, s.kW, s.vW].map { view($0, s.heads * D, H) } },
            qkvBias: layerSlots.map { _ in nil },
            attentionOutput: layerSlots.map { view($0.oW, H, $0.heads * D) },
            ffnIn: layerSlots.map { view($0.iW, $0.width, H) },
            ffnOut: layerSlots.map { view($0.fW, H, $0.width) },
            pooler: pooler.map { view($0.weight, H, H) },
            classifier: classifier.map { view($0.weight, heads.classifierLabels, H) })
    }

    /// A sequence classifier: `classes`-way classifier, with a pooler unless the config mean-pools.
    public init(config: BertConfig, classes: Int) throws(ModelError) {
        guard classes >= 2 else {
            throw ModelError.badConfig("config", "a classifier needs at least 2 classes, got \(classes)",
                                       hint: "cross-entropy training is for single-label classification")
        }
        try self.init(config: config, heads: config.classifierHeads(classes: classes))
    }

    /// The Linear weights packed once from `parameters` (Q, K and V fused into one matrix
    /// per layer): what inference and a frozen teacher run on.
    public func packedMatrices(_ parameters: ParameterBlock) -> ModelMatrices {
        let H = config.hiddenSize, D = config.headSize
        return parameters.storage.withUnsafeBufferPointer { pp -> ModelMatrices in
            let P = pp.baseAddress!
            func pack(_ offset: Int, _ out: Int, _ n: Int) -> WeightMatrix {
                .packedFloat32(PackedMatrix(rows: out, columns: n, rowMajor: P + offset))
            }
            return ModelMatrices(
                qkv: layerSlots.map { [fusedQKV(P, $0)] }, qkvBias: layerSlots.map { fusedQKVBias(P, $0) },
                attentionOutput: layerSlots.map { pack($0.oW, H, $0.heads * D) },
                ffnIn: layerSlots.map { pack($0.iW, $0.width, H) },
                ffnOut: layerSlots.map { pack($0.fW, H, $0.width) },
                pooler: pooler.map { pack($0.weight, H, H) },
                classifier: classifier.map { pack($0.weight, classCount, H) })
        }
    }

    /// Q, K and V of one layer stacked into one fp32 matrix [3·heads·D, H], packed; `P` is
    /// the parameter block's storage.
    func fusedQKV(_ P: UnsafePointer<Float>, _ s: LayerSlots) -> WeightMatrix {
        let A = s.heads * config.headSize, H = config.hiddenSize
        let fused = UnsafeMutablePointer<Float>.allocate(capacity: 3 * A * H)
        defer { fused.deallocate() }
        for (i, w) in [s.qW, s.kW, s.vW].enumerated() { (fused + i * A * H).update(from: P + w, count: A * H) }
        return .packedFloat32(PackedMatrix(rows: 3 * A, columns: H, rowMajor: fused))
    }

    /// The biases of Q, K and V of one layer, stacked as `fusedQKV` stacks their weights.
    func fusedQKVBias(_ P: UnsafePointer<Float>, _ s: LayerSlots) -> FloatBuffer {
        let A = s.heads * config.headSize
        let bias = FloatBuffer(count: 3 * A)
        for (i, b) in [s.qB, s.kB, s.vB].enumerated() { (bias.pointer + i * A).update(from: P + b, count: A) }
        return bias
    }

    /// Checks a batch (and labels, and a head mask) against the model before any work is done.
    public func check(_ batch: EncoderBatch, labels: [Int32]?, headMask: [[Float]]? = nil) throws(ModelError) {
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
            guard classCount > 0 else {
                throw ModelError.badInput("labels given to a model without a classifier", hint: "fine-tune a classifier first (kd finetune)")
            }
            guard labels.count == B else {
                throw ModelError.badInput("\(labels.count) labels for a batch of \(B)", hint: "give one label per sequence")
            }
            if let i = labels.firstIndex(where: { $0 < 0 || Int($0) >= classCount }) {
                throw ModelError.badInput("label \(labels[i]) of sequence \(i) is outside 0..<\(classCount)",
                                          hint: "labels are class indices of the classifier")
            }
        }
        if let headMask {
            guard headMask.map(\.count) == layerSlots.map(\.heads) else {
                throw ModelError.badInput("head mask of shape \(headMask.map(\.count)) for a model with \(layerSlots.map(\.heads)) heads per layer",
                                          hint: "give one weight per head of every layer")
            }
            if let w = headMask.joined().first(where: { !$0.isFinite }) {
                throw ModelError.badInput("head mask value \(w)", hint: "head weights must be finite (1 keeps a head, 0 silences it)")
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
        try forward(batch, labels: labels, parameters: parameters,
                    options: ForwardOptions(dropout: dropout, rng: rng, step: step, keepScores: keepScores))
    }

    /// The forward with every option (see `ForwardOptions`).
    public func forward(_ batch: EncoderBatch, labels: [Int32]? = nil, parameters: ParameterBlock,
                        options: ForwardOptions) throws(ModelError) -> BertActivations {
        guard parameters.layout.starts(with: layout) else {
            throw ModelError.badInput("the parameter block (\(parameters.layout.entries.count) tensors) does not start with the model's layout (\(layout.entries.count) tensors)",
                                      hint: "build the block from this model's layout")
        }
        try check(batch, labels: labels, headMask: options.headMask)
        let B = batch.batchSize, T = batch.sequenceLength, H = config.hiddenSize
        let rows = B * T, eps = config.layerNormEps, cache = options.cacheForBackward
        let dropout = options.dropout
        let matrices = options.matrices ?? blockMatrices
        let lease = arenas.lease()
        let arena = lease.arena
        func buffer(_ count: Int) -> FloatBuffer { arena.take(count) }
        func dropoutMask(_ count: Int, _ p: Float, _ site: Int) -> FloatBuffer? {
            guard p > 0 else { return nil }
            let m = arena.take(count)
            options.rng.fillMask(m.pointer, count: count, probability: p, stream: DropoutRNG.stream(step: options.step, site: site))
            return m
        }
        /// A hidden state to hand back: the buffer itself when caching, else a copy (or nothing).
        func keep(_ x: FloatBuffer) -> FloatBuffer? {
            cache ? x : options.hiddenStates ? FloatBuffer(copying: x) : nil
        }
        return parameters.storage.withUnsafeBufferPointer { pp in
            let P = pp.baseAddress!
            // Embeddings: (word + type) + position, LayerNorm, dropout.
            let embSum = buffer(rows * H), embMean = buffer(rows), embRstd = buffer(rows), embNorm = buffer(rows * H)
            batch.ids.withUnsafeBufferPointer { ids in batch.typeIds.withUnsafeBufferPointer { tids in
                embeddingForward(out: embSum.pointer, ids: ids.baseAddress!, typeIds: tids.baseAddress!, rows: rows,
                                 sequenceLength: T, hidden: H, word: P + word, position: P + position, type: P + type,
                                 quantizedWord: matrices.wordEmbeddings, quantizedPosition: matrices.positionEmbeddings)
            } }
            layerNormForward(y: embNorm.pointer, mean: embMean.pointer, rstd: embRstd.pointer, x: embSum.pointer,
                             gamma: P + embGamma, beta: P + embBeta, rows: rows, cols: H, eps: eps)
            let embMask = dropoutMask(rows * H, dropout.hidden, 0)
            var x = embNorm
            if let embMask {
                x = buffer(rows * H)
                dropoutForward(y: x.pointer, x: embNorm.pointer, mask: embMask.pointer, count: rows * H)
            }
            var hidden = [keep(x)].compactMap { $0 }
            var layers: [LayerActivations] = [], probabilities: [FloatBuffer] = []
            // Without caching, every layer reuses one set of arena slots for its temporaries and
            // writes its output into one of two buffers, in turn (the next layer's input must
            // survive it): the working set of one layer, as small as the layers allow.
            let outputs = cache ? [] : [buffer(rows * H), buffer(rows * H)]
            let layerStart = arena.position
            batch.mask.withUnsafeBufferPointer { maskp in
                for l in layerSlots.indices {
                    if !cache { arena.rewind(to: layerStart) }
                    let a = layerForward(l, x: x, output: cache ? nil : outputs[l % 2], mask: maskp.baseAddress!,
                                         batch: B, sequenceLength: T, P: P, matrices: matrices, options: options,
                                         buffer: buffer, dropoutMask: dropoutMask)
                    if cache { layers.append(a) }
                    if cache || options.attentions { probabilities.append(a.probabilities) }
                    x = a.output
                    if let h = keep(x) { hidden.append(h) }
                }
            }
            // Pooler over [CLS] (or the masked mean), dropout, classifier, loss.
            var pooled: FloatBuffer?, cls: FloatBuffer?
            if let pooler {
                let c = buffer(B * H), p = buffer(B * H)
                for b in 0..<B { (c.pointer + b * H).update(from: x.pointer + b * T * H, count: H) }
                matrices.pooler!.apply(rows: B, x: c.pointer, lda: H, y: p.pointer, ldc: H, bias: P + pooler.bias, block: P)
                tanhForward(y: p.pointer, x: p.pointer, count: B * H)
                (cls, pooled) = (c, p)
            } else if classifier != nil {
                let p = buffer(B * H)
                batch.mask.withUnsafeBufferPointer { m in
                    maskedMeanForward(out: p.pointer, x: x.pointer, mask: m.baseAddress!, batch: B, sequenceLength: T, hidden: H)
                }
                pooled = p
            }
            var poolMask: FloatBuffer?, clsIn: FloatBuffer?, logits: FloatBuffer?, softmax: FloatBuffer?
            var loss: Double?
            if let classifier, let pooled {
                let L = classCount
                poolMask = dropoutMask(B * H, dropout.classifier, classifierSite)
                var input = pooled
                if let poolMask {
                    input = buffer(B * H)
                    dropoutForward(y: input.pointer, x: pooled.pointer, mask: poolMask.pointer, count: B * H)
                }
                let z = buffer(B * L), s = buffer(B * L)
                matrices.classifier!.apply(rows: B, x: input.pointer, lda: H, y: z.pointer, ldc: L, bias: P + classifier.bias, block: P)
                if let labels {
                    loss = labels.withUnsafeBufferPointer { lp in
                        crossEntropyForward(probs: s.pointer, logits: z.pointer, labels: lp.baseAddress!, batch: B, classes: L)
                    }
                }
                (clsIn, logits, softmax) = (input, z, s)
            }
            return BertActivations(batch: batch, labels: labels, loss: loss,
                                   logits: Tensor(shape: [B, classCount], data: logits?.array ?? []),
                                   hiddenStates: hidden, lastHidden: x, attentionProbabilities: probabilities,
                                   layers: layers, headMask: options.headMask,
                                   embeddingSum: embSum, embeddingMean: embMean, embeddingRstd: embRstd, embeddingNorm: embNorm,
                                   embeddingMask: embMask, cls: cls, pooled: pooled, pooledMask: poolMask,
                                   classifierInput: clsIn, logitsBuffer: logits, softmax: softmax,
                                   lease: lease, backwardSlot: arena.position)
        }
    }

    /// One encoder layer: x [rows, H] → its activations (output included, written into
    /// `output` when one is given).
    private func layerForward(_ l: Int, x: FloatBuffer, output: FloatBuffer?, mask: UnsafePointer<Int32>, batch B: Int, sequenceLength T: Int,
                              P: UnsafePointer<Float>, matrices: ModelMatrices, options: ForwardOptions,
                              buffer: (Int) -> FloatBuffer,
                              dropoutMask: (Int, Float, Int) -> FloatBuffer?) -> LayerActivations {
        let s = layerSlots[l], H = config.hiddenSize, D = config.headSize
        let rows = B * T, A = s.heads * D, F = s.width, eps = config.layerNormEps
        // Without a backward to feed, LayerNorm and GELU write over their inputs.
        let cache = options.cacheForBackward
        // qkv [rows, 3A] = x · [Wq; Wk; Wv]ᵀ + [bq, bk, bv]: one fused matrix, or three column blocks.
        let qkv = buffer(rows * 3 * A)
        let parts = matrices.qkv[l]
        precondition(parts.count == 3 || (parts.count == 1 && matrices.qkvBias[l] != nil),
                     "ModelMatrices: layer \(l) needs Q, K, V as three matrices, or one fused matrix with its fused bias")
        if parts.count == 1, let bias = matrices.qkvBias[l] {
            parts[0].apply(rows: rows, x: x.pointer, lda: H, y: qkv.pointer, ldc: 3 * A, bias: bias.pointer, block: P)
        } else {
            for (i, (w, b)) in zip(parts, [s.qB, s.kB, s.vB]).enumerated() {
                w.apply(rows: rows, x: x.pointer, lda: H, y: qkv.pointer + i * A, ldc: 3 * A, bias: P + b, block: P)
            }
        }
        // Attention: probabilities kept for the backward (or when asked for), dropout, head mask.
        let TT = B * s.heads * T * T
        let probs = cache ? buffer(TT) : options.attentions ? FloatBuffer(count: TT) : nil
        let scores = cache && options.keepScores ? buffer(TT) : nil   // only the cached activations expose them
        let probMask = dropoutMask(TT, options.dropout.attention, site(layer: l, 0))
        let ctx = buffer(rows * A)
        let weights = options.headMask.map { $0[l] }
        weights.withOptionalBuffer { w in
            attentionForward(ctx: ctx.pointer, probs: probs?.pointer, scores: scores?.pointer,
                             q: qkv.pointer, k: qkv.pointer + A, v: qkv.pointer + 2 * A, ld: 3 * A,
                             mask: mask, dropoutMask: probMask.map { UnsafePointer($0.pointer) }, headWeights: w,
                             batch: B, sequenceLength: T, heads: s.heads, headSize: D)
        }
        /// A post-LN sub-block: out = LayerNorm(dropout(input · Wᵀ + b) + residual). With the
        /// backward to feed, the LayerNorm input (`sum`) and statistics are kept apart from
        /// `out`; without it, LayerNorm writes over the dense output.
        func addNorm(_ w: WeightMatrix, _ input: FloatBuffer, lda: Int, bias: Int, residual: FloatBuffer,
                     gamma: Int, beta: Int, site k: Int, into given: FloatBuffer? = nil)
            -> (sum: FloatBuffer, mean: FloatBuffer, rstd: FloatBuffer, out: FloatBuffer, mask: FloatBuffer?) {
            let sum = given ?? buffer(rows * H)
            w.apply(rows: rows, x: input.pointer, lda: lda, y: sum.pointer, ldc: H, bias: P + bias, block: P)
            let mask = dropoutMask(rows * H, options.dropout.hidden, site(layer: l, k))
            let mean = buffer(rows), rstd = buffer(rows), out = cache ? buffer(rows * H) : sum
            residualLayerNormForward(sum: cache ? sum.pointer : nil, y: out.pointer, mean: mean.pointer, rstd: rstd.pointer,
                                     x: sum.pointer, bias: nil, dropout: mask?.pointer, residual: residual.pointer,
                                     gamma: P + gamma, beta: P + beta, rows: rows, cols: H, eps: eps)
            return (sum, mean, rstd, out, mask)
        }
        // norm1 = LayerNorm(dropout(ctx·Woᵀ + bo) + x)
        let n1 = addNorm(matrices.attentionOutput[l], ctx, lda: A, bias: s.oB, residual: x, gamma: s.n1G, beta: s.n1B, site: 1)
        // out = LayerNorm(dropout(GELU(norm1·W1ᵀ + b1)·W2ᵀ + b2) + norm1)
        let pre = buffer(rows * F), act = cache ? buffer(rows * F) : pre
        if cache {   // the backward reads the pre-activation: two passes
            matrices.ffnIn[l].apply(rows: rows, x: n1.out.pointer, lda: H, y: pre.pointer, ldc: F, bias: P + s.iB, block: P)
            geluForward(y: act.pointer, x: pre.pointer, count: rows * F)
        } else {     // inference: GELU in the GEMM's store where the weight format has it
            matrices.ffnIn[l].apply(rows: rows, x: n1.out.pointer, lda: H, y: act.pointer, ldc: F, bias: P + s.iB,
                                    block: P, gelu: true)
        }
        let n2 = addNorm(matrices.ffnOut[l], act, lda: F, bias: s.fB, residual: n1.out, gamma: s.n2G, beta: s.n2B, site: 2,
                         into: output)
        return LayerActivations(
            input: x, qkv: qkv, probabilities: probs ?? FloatBuffer(count: 0), probabilityMask: probMask, scores: scores,
            context: ctx, attentionOutputMask: n1.mask, norm1Input: n1.sum, norm1Mean: n1.mean,
            norm1Rstd: n1.rstd, norm1Output: n1.out, ffnPre: pre, ffnActivation: act, ffnOutputMask: n2.mask,
            norm2Input: n2.sum, norm2Mean: n2.mean, norm2Rstd: n2.rstd, output: n2.out)
    }
}

extension Optional where Wrapped == [Float] {
    /// Calls `body` with a pointer to the array's elements, or nil.
    func withOptionalBuffer<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
        switch self {
        case .some(let a): return a.withUnsafeBufferPointer { body($0.baseAddress) }
        case .none: return body(nil)
        }
    }
}
