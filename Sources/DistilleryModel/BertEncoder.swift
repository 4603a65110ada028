// BertEncoder: the fp32 BERT forward pass (post-LN, exact-erf GELU), batched with padding.
//
// Follows HF transformers' `BertModel` in eval mode (dropout off): embeddings (word +
// position + token type, LayerNorm), then per layer self-attention -> dense -> add & norm
// -> FFN (GELU) -> dense -> add & norm; then optional pooler (tanh) and classifier (on the
// pooler output, or on the masked mean of the last states when the config mean-pools).
// Matrix products go through the packed-weight AVX2 GEMM of CKernels (weights packed once
// at load; query, key and value fused into one GEMM per layer); bias+GELU, bias+residual+LayerNorm and each attention head are C kernels run
// row-parallel. Activations live in per-model scratch buffers reused across calls, so
// `forward` is not reentrant: use one encoder per thread.
// Left out on purpose: training (see the backward pass), relative positions, cross-attention.
import CKernels
import DistilleryTensor
import Foundation

/// A padded batch of token ids, row-major `[batchSize, sequenceLength]`.
public struct EncoderBatch: Sendable {
    public var ids: [Int32]
    public var typeIds: [Int32]
    /// 1 for a real token, 0 for padding.
    public var mask: [Int32]
    public var batchSize: Int
    public var sequenceLength: Int
    public init(ids: [Int32], typeIds: [Int32]? = nil, mask: [Int32]? = nil, batchSize: Int, sequenceLength: Int) {
        self.ids = ids
        self.typeIds = typeIds ?? [Int32](repeating: 0, count: ids.count)
        self.mask = mask ?? [Int32](repeating: 1, count: ids.count)
        self.batchSize = batchSize
        self.sequenceLength = sequenceLength
    }
}

/// What a forward pass returns; optional parts are present when asked for or when the
/// model has the head.
public struct EncoderOutput: Sendable {
    /// `[B, T, H]` states after the last layer.
    public var lastHidden: Tensor
    /// `[B, H]` pooler output (tanh(W·h_CLS + b)) when the model has a pooler.
    public var pooled: Tensor?
    /// `[B, labels]` classifier logits when the model has a classifier.
    public var logits: Tensor?
    /// `L + 1` tensors `[B, T, H]`: embeddings output then each layer's, when requested.
    public var hiddenStates: [Tensor] = []
    /// `L` tensors `[B, heads, T, T]` of attention probabilities, when requested.
    public var attentions: [Tensor] = []
}

/// A weight matrix of a linear layer. Dense fp32 (as loaded, or packed for the CKernels
/// GEMM); packed int8/int4 blocks will be further cases, so layers never depend on one
/// storage format.
public enum WeightMatrix: Sendable {
    /// Row-major `[out, in]`, PyTorch layout, multiplied through OpenBLAS.
    case float32(Tensor)
    /// fp32 packed once into 16-column micro-panels for the AVX2 GEMM.
    case packedFloat32(PackedMatrix)

    /// Output features.
    public var outFeatures: Int {
        switch self {
        case .float32(let t): return t.shape[0]
        case .packedFloat32(let p): return p.outFeatures
        }
    }
    /// Input features.
    public var inFeatures: Int {
        switch self {
        case .float32(let t): return t.shape[1]
        case .packedFloat32(let p): return p.inFeatures
        }
    }

    /// y[M, out] = x[M, in] · Wᵀ (+ y when `accumulate`).
    @inline(__always)
    func apply(rows: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
        switch self {
        case .float32(let w):
            w.data.withUnsafeBufferPointer { wp in
                gemmABt(m: rows, n: outFeatures, k: inFeatures, a: x, lda: inFeatures,
                        b: wp.baseAddress!, ldb: inFeatures, c: y, ldc: outFeatures, accumulate: accumulate)
            }
        case .packedFloat32(let p):
            p.multiply(rows: rows, x: x, lda: inFeatures, y: y, ldc: outFeatures, accumulate: accumulate)
        }
    }
}

/// The BERT encoder with its optional pooler and classifier, ready to run.
public final class BertEncoder: @unchecked Sendable {
    /// The architecture.
    public let config: BertConfig
    /// Which heads are present.
    public let heads: BertHeads
    /// Every parameter in canonical order (the single source of truth for IO).
    public let parameters: [(name: String, tensor: Tensor)]

    struct Layer {
        var heads: Int
        var qkv: WeightMatrix          // [3·heads·d, H]: query, key, value rows stacked
        var qkvBias: [Float]
        var attentionOut: WeightMatrix // [H, heads·d]
        var attentionOutBias: [Float]
        var norm1Gamma: [Float], norm1Beta: [Float]
        var ffnIn: WeightMatrix        // [F, H]
        var ffnInBias: [Float]
        var ffnOut: WeightMatrix       // [H, F]
        var ffnOutBias: [Float]
        var norm2Gamma: [Float], norm2Beta: [Float]
    }

    let wordEmbeddings: [Float], positionEmbeddings: [Float], typeEmbeddings: [Float]
    let embeddingGamma: [Float], embeddingBeta: [Float]
    let layers: [Layer]
    let pooler: (weight: WeightMatrix, bias: [Float])?
    let classifier: (weight: WeightMatrix, bias: [Float])?

    /// Builds an encoder from named tensors (HF PyTorch keys), checking them strictly.
    public init(config: BertConfig, tensors: [String: Tensor]) throws(ModelError) {
        try config.validate()
        let (heads, ordered) = try validateBertParameters(config, tensors: tensors)
        self.config = config
        self.heads = heads
        self.parameters = ordered
        func t(_ name: String) -> Tensor { tensors[name]! }
        wordEmbeddings = t("embeddings.word_embeddings.weight").data
        positionEmbeddings = t("embeddings.position_embeddings.weight").data
        typeEmbeddings = t("embeddings.token_type_embeddings.weight").data
        embeddingGamma = t("embeddings.LayerNorm.weight").data
        embeddingBeta = t("embeddings.LayerNorm.bias").data
        layers = (0..<config.layerCount).map { l in
            let p = "encoder.layer.\(l)."
            let q = t(p + "attention.self.query.weight"), k = t(p + "attention.self.key.weight"),
                v = t(p + "attention.self.value.weight")
            let qkv = Tensor(shape: [q.shape[0] * 3, q.shape[1]], data: q.data + k.data + v.data)
            return Layer(
                heads: config.layerHeads[l],
                qkv: .packedFloat32(PackedMatrix(qkv)),
                qkvBias: t(p + "attention.self.query.bias").data + t(p + "attention.self.key.bias").data
                    + t(p + "attention.self.value.bias").data,
                attentionOut: .packedFloat32(PackedMatrix(t(p + "attention.output.dense.weight"))),
                attentionOutBias: t(p + "attention.output.dense.bias").data,
                norm1Gamma: t(p + "attention.output.LayerNorm.weight").data,
                norm1Beta: t(p + "attention.output.LayerNorm.bias").data,
                ffnIn: .packedFloat32(PackedMatrix(t(p + "intermediate.dense.weight"))),
                ffnInBias: t(p + "intermediate.dense.bias").data,
                ffnOut: .packedFloat32(PackedMatrix(t(p + "output.dense.weight"))),
                ffnOutBias: t(p + "output.dense.bias").data,
                norm2Gamma: t(p + "output.LayerNorm.weight").data,
                norm2Beta: t(p + "output.LayerNorm.bias").data)
        }
        pooler = heads.pooler ? (.packedFloat32(PackedMatrix(t("pooler.dense.weight"))), t("pooler.dense.bias").data) : nil
        classifier = heads.classifierLabels > 0 ? (.packedFloat32(PackedMatrix(t("classifier.weight"))), t("classifier.bias").data) : nil
    }

    /// Number of scalar parameters.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.tensor.count } }

    /// Checks a batch against the model: shapes, id ranges, positions, mask values.
    public func check(_ batch: EncoderBatch) throws(ModelError) {
        let n = batch.batchSize * batch.sequenceLength
        guard batch.batchSize > 0, batch.sequenceLength > 0, batch.ids.count == n,
              batch.typeIds.count == n, batch.mask.count == n else {
            throw ModelError.badInput("batch of \(batch.batchSize)×\(batch.sequenceLength) has \(batch.ids.count) ids, \(batch.typeIds.count) type ids, \(batch.mask.count) mask values",
                                      hint: "ids, type ids and mask must all be [batch, sequence]")
        }
        guard batch.sequenceLength <= config.maxPositions else {
            throw ModelError.badInput("sequence length \(batch.sequenceLength) exceeds the model's \(config.maxPositions) positions",
                                      hint: "truncate with --max-length \(config.maxPositions) or less")
        }
        for (i, id) in batch.ids.enumerated() where id < 0 || Int(id) >= config.vocabSize {
            throw ModelError.badInput("token id \(id) at sequence \(i / batch.sequenceLength), position \(i % batch.sequenceLength) is outside the vocabulary (0..<\(config.vocabSize))",
                                      hint: "the ids were made with another vocabulary")
        }
        for (i, tt) in batch.typeIds.enumerated() where tt < 0 || Int(tt) >= config.typeVocabSize {
            throw ModelError.badInput("token type id \(tt) at sequence \(i / batch.sequenceLength) is outside 0..<\(config.typeVocabSize)",
                                      hint: "token types are 0 (first segment) or 1 (second)")
        }
        for m in batch.mask where m != 0 && m != 1 {
            throw ModelError.badInput("attention mask value \(m)", hint: "the mask holds 1 for tokens and 0 for padding")
        }
    }

    // Scratch buffers reused across calls; grown on demand.
    private var scratch: [String: UnsafeMutableBufferPointer<Float>] = [:]
    private func buffer(_ key: String, _ count: Int) -> UnsafeMutablePointer<Float> {
        if let b = scratch[key], b.count >= count { return b.baseAddress! }
        scratch[key]?.deallocate()
        let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(count, 1))
        scratch[key] = b
        return b.baseAddress!
    }
    deinit { for b in scratch.values { b.deallocate() } }

    /// Runs the encoder (and heads) on a batch. Not reentrant: one call at a time per encoder.
    public func forward(_ batch: EncoderBatch, hiddenStates wantHidden: Bool = false,
                        attentions wantAttentions: Bool = false) throws(ModelError) -> EncoderOutput {
        try check(batch)
        let B = batch.batchSize, T = batch.sequenceLength, H = config.hiddenSize, D = config.headSize
        let rows = B * T
        let maxA = (layers.map(\.heads).max() ?? 1) * D
        let maxF = config.layerIntermediateSizes.max() ?? 1
        var x = buffer("x", rows * H), y = buffer("y", rows * H)
        let qkv = buffer("qkv", rows * 3 * maxA), ctx = buffer("ctx", rows * maxA)
        let ffn = buffer("ffn", rows * maxF)
        var hidden: [Tensor] = [], attentions: [Tensor] = []

        embed(batch, into: x)
        if wantHidden { hidden.append(Tensor(shape: [B, T, H], data: Array(UnsafeBufferPointer(start: x, count: rows * H)))) }
        let eps = config.layerNormEps
        batch.mask.withUnsafeBufferPointer { maskp in
            let mask = maskp.baseAddress!
            for layer in layers {
                let A = layer.heads * D
                // qkv = x·Wqkvᵀ + b, with the bias broadcast first and the GEMM accumulating.
                layer.qkvBias.withUnsafeBufferPointer { bias in
                    let dst = UnsafeSendable(qkv), src = UnsafeSendable(bias.baseAddress!)
                    Compute.parallelRanges(rows) { r in
                        for i in r { (dst.value + i * 3 * A).update(from: src.value, count: 3 * A) }
                    }
                }
                layer.qkv.apply(rows: rows, x: x, y: qkv, accumulate: true)
                var probs: [Float] = wantAttentions ? [Float](repeating: 0, count: B * layer.heads * T * T) : []
                probs.withUnsafeMutableBufferPointer { pp in
                    attention(qkv: qkv, ctx: ctx, mask: mask, B: B, T: T, heads: layer.heads, D: D,
                              probs: wantAttentions ? pp.baseAddress : nil)
                }
                if wantAttentions { attentions.append(Tensor(shape: [B, layer.heads, T, T], data: probs)) }
                // y = LayerNorm(ctx·Woᵀ + b + x)
                layer.attentionOut.apply(rows: rows, x: ctx, y: y)
                rowParallelLayerNorm(y, bias: layer.attentionOutBias, residual: x, gamma: layer.norm1Gamma,
                                     beta: layer.norm1Beta, rows: rows, cols: H, eps: eps)
                swap(&x, &y)
                // ffn = GELU(x·W1ᵀ + b1); y = LayerNorm(ffn·W2ᵀ + b2 + x)
                let F = layer.ffnIn.outFeatures
                layer.ffnIn.apply(rows: rows, x: x, y: ffn)
                layer.ffnInBias.withUnsafeBufferPointer { bias in
                    let f = UnsafeSendable(ffn), b = UnsafeSendable(bias.baseAddress!)
                    Compute.parallelRanges(rows) { r in
                        dk_bias_gelu(f.value + r.lowerBound * F, b.value, r.count, F)
                    }
                }
                layer.ffnOut.apply(rows: rows, x: ffn, y: y)
                rowParallelLayerNorm(y, bias: layer.ffnOutBias, residual: x, gamma: layer.norm2Gamma,
                                     beta: layer.norm2Beta, rows: rows, cols: H, eps: eps)
                swap(&x, &y)
                if wantHidden { hidden.append(Tensor(shape: [B, T, H], data: Array(UnsafeBufferPointer(start: x, count: rows * H)))) }
            }
        }
        var out = EncoderOutput(lastHidden: Tensor(shape: [B, T, H], data: Array(UnsafeBufferPointer(start: x, count: rows * H))))
        out.hiddenStates = hidden
        out.attentions = attentions
        // The classifier reads the pooler output (tanh(W · h_CLS + b)) or the masked mean.
        var classifierInput: [Float]?
        if let pooler {
            var cls = [Float](repeating: 0, count: B * H)
            for b in 0..<B { for c in 0..<H { cls[b * H + c] = x[b * T * H + c] } }
            var pooled = [Float](repeating: 0, count: B * H)
            for b in 0..<B { for c in 0..<H { pooled[b * H + c] = pooler.bias[c] } }
            cls.withUnsafeBufferPointer { cp in pooled.withUnsafeMutableBufferPointer { pp in
                pooler.weight.apply(rows: B, x: cp.baseAddress!, y: pp.baseAddress!, accumulate: true)
            } }
            for i in 0..<pooled.count { pooled[i] = Float(Foundation.tanh(Double(pooled[i]))) }
            out.pooled = Tensor(shape: [B, H], data: pooled)
            classifierInput = pooled
        } else if config.classifierPooling == .mean, classifier != nil {
            var mean = [Float](repeating: 0, count: B * H)
            batch.mask.withUnsafeBufferPointer { m in mean.withUnsafeMutableBufferPointer { o in
                maskedMeanForward(out: o.baseAddress!, x: x, mask: m.baseAddress!, batch: B, sequenceLength: T, hidden: H)
            } }
            classifierInput = mean
        }
        if let classifier, let classifierInput {
            let L = classifier.bias.count
            var logits = [Float](repeating: 0, count: B * L)
            for b in 0..<B { for j in 0..<L { logits[b * L + j] = classifier.bias[j] } }
            classifierInput.withUnsafeBufferPointer { pp in logits.withUnsafeMutableBufferPointer { lp in
                classifier.weight.apply(rows: B, x: pp.baseAddress!, y: lp.baseAddress!, accumulate: true)
            } }
            out.logits = Tensor(shape: [B, L], data: logits)
        }
        return out
    }

    /// x[b, t] = LayerNorm(word[id] + position[t] + type[tt]).
    private func embed(_ batch: EncoderBatch, into x: UnsafeMutablePointer<Float>) {
        let T = batch.sequenceLength, H = config.hiddenSize
        let out = UnsafeSendable(x)
        wordEmbeddings.withUnsafeBufferPointer { w in positionEmbeddings.withUnsafeBufferPointer { p in
        typeEmbeddings.withUnsafeBufferPointer { ty in embeddingGamma.withUnsafeBufferPointer { g in
        embeddingBeta.withUnsafeBufferPointer { be in batch.ids.withUnsafeBufferPointer { ids in
        batch.typeIds.withUnsafeBufferPointer { tids in
            let ptrs = UnsafeSendable((w.baseAddress!, p.baseAddress!, ty.baseAddress!, g.baseAddress!,
                                       be.baseAddress!, ids.baseAddress!, tids.baseAddress!))
            Compute.parallelRanges(batch.batchSize * T) { r in
                let (w, p, ty, g, be, ids, tids) = ptrs.value
                for i in r {
                    let row = out.value + i * H
                    let wr = w + Int(ids[i]) * H, pr = p + (i % T) * H, tr = ty + Int(tids[i]) * H
                    for c in 0..<H { row[c] = wr[c] + pr[c] + tr[c] }
                }
                dk_bias_residual_layernorm(out.value + r.lowerBound * H, nil, nil, g, be, r.count, H,
                                           self.config.layerNormEps)
            }
        } } } } } } }
    }

    /// Self-attention for every (sequence, head) pair, split over the worker threads.
    private func attention(qkv: UnsafeMutablePointer<Float>, ctx: UnsafeMutablePointer<Float>,
                           mask: UnsafePointer<Int32>, B: Int, T: Int, heads: Int, D: Int,
                           probs: UnsafeMutablePointer<Float>?) {
        let A = heads * D
        let scale = 1 / Float(D).squareRoot()
        let ptrs = UnsafeSendable((qkv, ctx, mask, probs))
        Compute.parallelRanges(B * heads) { r in
            let (qkv, ctx, mask, probs) = ptrs.value
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: dk_attention_scratch_floats(T, D))
            defer { scratch.deallocate() }
            for job in r {
                let b = job / heads, h = job % heads
                let base = qkv + b * T * 3 * A + h * D
                dk_attention_head(base, base + A, base + 2 * A, 3 * A,
                                  ctx + b * T * A + h * D, A, mask + b * T, T, D, scale, scratch,
                                  probs.map { $0 + job * T * T })
            }
        }
    }

    private func rowParallelLayerNorm(_ y: UnsafeMutablePointer<Float>, bias: [Float],
                                      residual: UnsafeMutablePointer<Float>, gamma: [Float], beta: [Float],
                                      rows: Int, cols: Int, eps: Float) {
        bias.withUnsafeBufferPointer { b in gamma.withUnsafeBufferPointer { g in beta.withUnsafeBufferPointer { be in
            let ptrs = UnsafeSendable((y, b.baseAddress!, residual, g.baseAddress!, be.baseAddress!))
            Compute.parallelRanges(rows) { r in
                let (y, b, res, g, be) = ptrs.value
                let o = r.lowerBound * cols
                dk_bias_residual_layernorm(y + o, b, res + o, g, be, r.count, cols, eps)
            }
        } } }
    }
}
