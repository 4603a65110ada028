// BiGRUModel: forward and backward of the bidirectional-GRU classifier over one parameter
// block, and BiGRUEncoder, the same model packed once for inference.
//
// Follows the llm.c habit of the BERT model: the forward keeps what the backward reads
// (embedded inputs, each layer's [B, T, 2H] outputs, each direction's gate cache, the
// position of every pooled maximum) in a `BiGRUActivations` value, and the backward walks
// it in reverse. Per layer and direction the input projections of every step are one
// packed GEMM (`PackedMatrix`, threaded), the recurrence is `dk_gru_forward`/`backward`
// (CKernels, gru.c); the weight gradients are `dk_gemm` products over all steps at once.
// Sequences are the mask's real tokens, left-aligned (as every batch here is built).
// Left out on purpose: dropout, and gradients for padded embedding rows (they get none).
import CKernels
import DistilleryTensor

/// What a BiGRU forward keeps for its backward.
public struct BiGRUActivations {
    public let batchSize: Int
    public let sequenceLength: Int
    /// Real tokens per sequence.
    public let lengths: [Int32]
    public let ids: [Int32]
    /// [B·T, E] embedded tokens (zero at padding).
    public var embedded: [Float]
    /// Per layer: [B·T, 2H] outputs, forward direction in the first H columns.
    public var outputs: [[Float]]
    /// Per layer, per direction: [B·T, 4H] gate caches (empty at inference).
    public var caches: [[[Float]]]
    /// [B, 4H]: max over tokens (2H) then mean over tokens (2H).
    public var pooled: [Float]
    /// [B, 2H]: the token each maximum came from.
    public var maxPositions: [Int32]
    /// [B, classes].
    public var logits: Tensor
}

/// Packed recurrent and input weights of one direction of one layer.
final class GRUDirectionWeights: @unchecked Sendable {
    let inputProjection: PackedMatrix
    /// W_hh packed for h·W_hhᵀ (forward).
    let recurrent: [Float]
    init(wih: UnsafePointer<Float>, whh: UnsafePointer<Float>, hidden H: Int, input: Int) {
        inputProjection = PackedMatrix(rows: 3 * H, columns: input, rowMajor: wih)
        var packed = [Float](repeating: 0, count: dk_packed_floats(3 * H, H))
        packed.withUnsafeMutableBufferPointer { dk_pack_weight(whh, 3 * H, H, $0.baseAddress!) }
        recurrent = packed
    }
}

/// A bidirectional-GRU classifier over a parameter block with `layout`.
public final class BiGRUModel: Sendable {
    public let config: BiGRUConfig
    public let layout: ParameterLayout

    public init(config: BiGRUConfig) throws(ModelError) {
        try config.validate()
        self.config = config
        layout = ParameterLayout(biGRUParameterShapes(config))
    }

    public var classCount: Int { config.labels.count }

    /// Name of a GRU tensor: `kind` is weight_ih, weight_hh, bias_ih or bias_hh.
    static func name(_ kind: String, layer: Int, reverse: Bool) -> String { "gru.\(kind)_l\(layer)\(reverse ? "_reverse" : "")" }

    /// Checks ids and mask of a batch.
    public func check(_ batch: EncoderBatch) throws(ModelError) {
        let n = batch.batchSize * batch.sequenceLength
        guard batch.batchSize >= 1, batch.sequenceLength >= 1, batch.ids.count == n, batch.mask.count == n else {
            throw ModelError.badInput("batch of \(batch.batchSize)×\(batch.sequenceLength) with \(batch.ids.count) ids and \(batch.mask.count) mask values",
                                      hint: "ids and mask hold batch × length values")
        }
        if let bad = batch.ids.firstIndex(where: { $0 < 0 || Int($0) >= config.vocabSize }) {
            throw ModelError.badInput("token id \(batch.ids[bad]) at index \(bad) is outside 0..<\(config.vocabSize)",
                                      hint: "the ids do not come from this model's tokenizer")
        }
    }

    /// Packs every direction's weights (once per parameter update).
    func pack(_ p: UnsafePointer<Float>) -> [[GRUDirectionWeights]] {
        let H = config.hiddenSize
        return (0..<config.layers).map { l in
            [false, true].map { rev in
                GRUDirectionWeights(wih: p + layout.offset(Self.name("weight_ih", layer: l, reverse: rev)),
                                    whh: p + layout.offset(Self.name("weight_hh", layer: l, reverse: rev)),
                                    hidden: H, input: l == 0 ? config.embeddingSize : 2 * H)
            }
        }
    }

    /// Runs the model; `keepCaches` keeps the gate caches the backward needs.
    public func forward(_ batch: EncoderBatch, parameters: ParameterBlock, keepCaches: Bool) throws(ModelError) -> BiGRUActivations {
        try check(batch)
        return parameters.storage.withUnsafeBufferPointer { P in
            forward(batch, parameters: P.baseAddress!, weights: pack(P.baseAddress!), keepCaches: keepCaches)
        }
    }

    func forward(_ batch: EncoderBatch, parameters P: UnsafePointer<Float>, weights: [[GRUDirectionWeights]],
                 keepCaches: Bool) -> BiGRUActivations {
        let (B, T, E, H, C) = (batch.batchSize, batch.sequenceLength, config.embeddingSize, config.hiddenSize, classCount)
        let lengths = (0..<B).map { b in Int32(batch.mask[(b * T)..<((b + 1) * T)].reduce(0) { $0 + ($1 != 0 ? 1 : 0) }) }
        var embedded = [Float](repeating: 0, count: B * T * E)
        let table = P + layout.offset("embeddings.word_embeddings.weight")
        for b in 0..<B { for t in 0..<Int(lengths[b]) {
            let src = table + Int(batch.ids[b * T + t]) * E
            for c in 0..<E { embedded[(b * T + t) * E + c] = src[c] }
        } }
        var outputs: [[Float]] = [], caches: [[[Float]]] = []
        var xp = [Float](repeating: 0, count: B * T * 3 * H)
        for l in 0..<config.layers {
            let input = l == 0 ? embedded : outputs[l - 1], width = l == 0 ? E : 2 * H
            var out = [Float](repeating: 0, count: B * T * 2 * H)
            var layerCaches: [[Float]] = []
            for (d, reverse) in [false, true].enumerated() {
                let w = weights[l][d]
                let bih = P + layout.offset(Self.name("bias_ih", layer: l, reverse: reverse))
                let bhh = P + layout.offset(Self.name("bias_hh", layer: l, reverse: reverse))
                input.withUnsafeBufferPointer { x in xp.withUnsafeMutableBufferPointer { y in
                    w.inputProjection.multiply(rows: B * T, x: x.baseAddress!, lda: width, y: y.baseAddress!, ldc: 3 * H, accumulate: false, bias: bih)
                } }
                var cache = keepCaches ? [Float](repeating: 0, count: B * T * Int(DK_GRU_CACHE_PER_STEP) * H) : []
                let status = out.withUnsafeMutableBufferPointer { o in cache.withUnsafeMutableBufferPointer { c in
                    dk_gru_forward(B, T, H, xp, w.recurrent, bhh, lengths, reverse ? 1 : 0, o.baseAddress! + d * H, 2 * H,
                                   keepCaches ? c.baseAddress : nil)
                } }
                precondition(status == 0, "BiGRUModel: could not allocate the GRU scratch buffers")
                layerCaches.append(cache)
            }
            outputs.append(out)
            caches.append(layerCaches)
        }
        // Pooling over each sequence's own tokens: [max (2H), mean (2H)].
        let last = outputs[config.layers - 1], W = 2 * H
        var pooled = [Float](repeating: 0, count: B * 4 * H), maxAt = [Int32](repeating: -1, count: B * W)
        for b in 0..<B where lengths[b] > 0 {
            let n = Int(lengths[b])
            for c in 0..<W {
                var best = last[(b * T) * W + c], at = 0
                var sum = Double(best)
                for t in 1..<max(n, 1) {
                    let v = last[(b * T + t) * W + c]
                    sum += Double(v)
                    if v > best { best = v; at = t }
                }
                pooled[b * 2 * W + c] = best
                pooled[b * 2 * W + W + c] = Float(sum / Double(n))
                maxAt[b * W + c] = Int32(at)
            }
        }
        var logits = [Float](repeating: 0, count: B * C)
        let cw = P + layout.offset("classifier.weight"), cb = P + layout.offset("classifier.bias")
        for b in 0..<B { for k in 0..<C {
            var acc: Float = 0
            for i in 0..<(2 * W) { acc += pooled[b * 2 * W + i] * cw[k * 2 * W + i] }
            logits[b * C + k] = acc + cb[k]
        } }
        return BiGRUActivations(batchSize: B, sequenceLength: T, lengths: lengths, ids: batch.ids, embedded: embedded,
                                outputs: outputs, caches: caches, pooled: pooled, maxPositions: maxAt,
                                logits: Tensor(shape: [B, C], data: logits))
    }

    /// Adds dL/dθ into `gradients` for dL/dlogits `dLogits` [B, classes]; returns dL/d(embedded) [B·T, E].
    @discardableResult
    public func backward(_ a: BiGRUActivations, dLogits: [Float], parameters: ParameterBlock, gradients: inout Gradients) -> [Float] {
        precondition(!a.caches.isEmpty && !a.caches[0][0].isEmpty, "BiGRUModel.backward: the forward ran without keepCaches")
        return parameters.storage.withUnsafeBufferPointer { Pb in gradients.storage.withUnsafeMutableBufferPointer { Gb in
            backward(a, dLogits: dLogits, P: Pb.baseAddress!, G: Gb.baseAddress!)
        } }
    }

    private func backward(_ a: BiGRUActivations, dLogits: [Float], P: UnsafePointer<Float>, G: UnsafeMutablePointer<Float>) -> [Float] {
        let (B, T, E, H, C) = (a.batchSize, a.sequenceLength, config.embeddingSize, config.hiddenSize, classCount)
        let W = 2 * H, BT = B * T
        // Classifier.
        let cwOff = layout.offset("classifier.weight"), cbOff = layout.offset("classifier.bias")
        var dPooled = [Float](repeating: 0, count: B * 2 * W)
        for b in 0..<B { for k in 0..<C {
            let g = dLogits[b * C + k]
            G[cbOff + k] += g
            for i in 0..<(2 * W) {
                G[cwOff + k * 2 * W + i] += g * a.pooled[b * 2 * W + i]
                dPooled[b * 2 * W + i] += g * P[cwOff + k * 2 * W + i]
            }
        } }
        // Pooling.
        var dOut = [Float](repeating: 0, count: BT * W)
        for b in 0..<B where a.lengths[b] > 0 {
            let n = Int(a.lengths[b])
            for c in 0..<W {
                dOut[(b * T + Int(a.maxPositions[b * W + c])) * W + c] += dPooled[b * 2 * W + c]
                let share = dPooled[b * 2 * W + W + c] / Float(n)
                for t in 0..<n { dOut[(b * T + t) * W + c] += share }
            }
        }
        // Layers, last first.
        var dxg = [Float](repeating: 0, count: BT * 3 * H), dhg = dxg, hprev = [Float](repeating: 0, count: BT * H)
        for l in stride(from: config.layers - 1, through: 0, by: -1) {
            let input = l == 0 ? a.embedded : a.outputs[l - 1], width = l == 0 ? E : W
            var dInput = [Float](repeating: 0, count: BT * width)
            for (d, reverse) in [false, true].enumerated() {
                let wih = layout.offset(Self.name("weight_ih", layer: l, reverse: reverse))
                let whh = layout.offset(Self.name("weight_hh", layer: l, reverse: reverse))
                let bih = layout.offset(Self.name("bias_ih", layer: l, reverse: reverse))
                let bhh = layout.offset(Self.name("bias_hh", layer: l, reverse: reverse))
                var whhT = [Float](repeating: 0, count: dk_packed_floats(H, 3 * H))
                whhT.withUnsafeMutableBufferPointer { dk_pack_weight_transposed(P + whh, H, H, 3 * H, $0.baseAddress!) }
                let out = a.outputs[l]
                let status = dOut.withUnsafeBufferPointer { dO in out.withUnsafeBufferPointer { o in
                    dk_gru_backward(B, T, H, dO.baseAddress! + d * H, W, o.baseAddress! + d * H, W, a.caches[l][d], whhT,
                                    a.lengths, reverse ? 1 : 0, &dxg, &dhg)
                } }
                precondition(status == 0, "BiGRUModel: could not allocate the GRU scratch buffers")
                // h before each step: the neighbouring step's output, zero at the sequence's start.
                for b in 0..<B {
                    let n = Int(a.lengths[b])
                    for t in 0..<T {
                        let prev = reverse ? t + 1 : t - 1
                        for j in 0..<H {
                            hprev[(b * T + t) * H + j] = t < n && prev >= 0 && prev < n ? out[(b * T + prev) * W + d * H + j] : 0
                        }
                    }
                }
                var ok: Int32 = 0
                ok |= dk_gemm(1, 0, 3 * H, width, BT, dxg, 3 * H, input, width, G + wih, width, 1)
                ok |= dk_gemm(1, 0, 3 * H, H, BT, dhg, 3 * H, hprev, H, G + whh, H, 1)
                ok |= dk_gemm(0, 0, BT, width, 3 * H, dxg, 3 * H, P + wih, width, &dInput, width, 1)
                precondition(ok == 0, "BiGRUModel: could not allocate the GEMM buffers")
                dk_column_sums(G + bih, dxg, BT, 3 * H, 3 * H)
                dk_column_sums(G + bhh, dhg, BT, 3 * H, 3 * H)
            }
            dOut = dInput
        }
        // Embedding rows of the real tokens.
        let emb = layout.offset("embeddings.word_embeddings.weight")
        for b in 0..<B { for t in 0..<Int(a.lengths[b]) {
            let row = G + emb + Int(a.ids[b * T + t]) * E
            for c in 0..<E { row[c] += dOut[(b * T + t) * E + c] }
        } }
        return dOut
    }
}

/// A BiGRU classifier ready for inference: the parameter block and its packed weights.
public final class BiGRUEncoder: SequenceEncoder, @unchecked Sendable {
    public let model: BiGRUModel
    public let block: ParameterBlock
    let weights: [[GRUDirectionWeights]]

    /// Builds the model from named tensors, strictly (every tensor, no extra ones).
    public init(config: BiGRUConfig, tensors: [String: Tensor]) throws(ModelError) {
        model = try BiGRUModel(config: config)
        block = try ParameterBlock(layout: model.layout, tensors: tensors)
        weights = block.storage.withUnsafeBufferPointer { [model] in model.pack($0.baseAddress!) }
    }

    public var config: BiGRUConfig { model.config }
    public var classifierLabels: Int { model.classCount }
    public var parameterCount: Int { block.layout.totalCount }

    /// Last-layer states [B, T, 2H], the pooled [max, mean] vector [B, 4H] and the logits.
    public func encode(_ batch: EncoderBatch) throws -> EncoderOutput {
        try model.check(batch)
        let a = block.storage.withUnsafeBufferPointer { model.forward(batch, parameters: $0.baseAddress!, weights: weights, keepCaches: false) }
        let (B, T, H) = (batch.batchSize, batch.sequenceLength, config.hiddenSize)
        var out = EncoderOutput(lastHidden: Tensor(shape: [B, T, 2 * H], data: a.outputs[config.layers - 1]))
        out.pooled = Tensor(shape: [B, 4 * H], data: a.pooled)
        out.logits = a.logits
        return out
    }
}
