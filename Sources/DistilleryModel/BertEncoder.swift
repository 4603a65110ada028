// BertEncoder: a loaded BERT model ready for inference — its parameter block, its Linear
// weights packed once, and `BertModel`'s one forward run without caching.
//
// Inference is the forward of BertModel.swift with dropout off and `cacheForBackward`
// false (per-layer buffers reused), on weights packed once at load with query, key and
// value fused into one matrix per layer; hidden states and attention maps are copied out
// only when asked for. The encoder keeps its activation arena between calls, so repeated
// batches allocate nothing; it may be called from several threads (each call leases its
// own arena). Left out on purpose: training (see BertModel and its backward), relative
// positions, cross-attention.
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

/// The BERT encoder with its optional pooler and classifier, ready to run.
public final class BertEncoder: @unchecked Sendable {
    /// The architecture.
    public let config: BertConfig
    /// The one model description the forward runs.
    public let model: BertModel
    /// Every parameter, in canonical order, in one block.
    public let block: ParameterBlock
    /// The Linear weights, packed once.
    public let matrices: ModelMatrices

    /// Which heads are present.
    public var heads: BertHeads { model.heads }
    /// Every parameter in canonical order (the single source of truth for IO).
    public var parameters: [(name: String, tensor: Tensor)] { block.tensors }
    /// Number of scalar parameters.
    public var parameterCount: Int { block.layout.totalCount }

    /// Builds an encoder from named tensors (HF PyTorch keys), checking them strictly; the
    /// Linear weights named in `quantized` run in their quantized storage (their fp32
    /// values, in `tensors`, fill the parameter block).
    public convenience init(config: BertConfig, tensors: [String: Tensor], quantized: [String: QuantizedTensor] = [:]) throws(ModelError) {
        try self.init(config: config, consuming: tensors, quantized: quantized)
    }

    /// `init(config:tensors:quantized:)` that lets go of each tensor once it is copied into
    /// the parameter block, before the Linear layers are packed: when the caller holds no
    /// other reference, the loaded arrays are freed then (a lower peak for inference loads).
    /// A weight in `quantized` may be left out of `tensors` (an inference load that does not
    /// dequantize): the forward runs it from its quantized storage and its entry in `block`
    /// reads as zeros, costing no resident memory. With `inferenceOnly`, so do the entries of
    /// every weight the packed matrices hold (released as each is packed, so the block and
    /// the packed copies are never resident together). Either way `block` and `parameters`
    /// then lack those weights: such an encoder is for running, not for saving or training.
    public init(config: BertConfig, consuming tensors: consuming [String: Tensor],
                quantized: [String: QuantizedTensor] = [:], inferenceOnly: Bool = false) throws(ModelError) {
        try config.validate()
        let onlyQuantized = quantized.filter { tensors[$0.key] == nil }
        let (heads, _) = try validateBertParameters(config, tensors: tensors,
                                                    storedElsewhere: onlyQuantized.mapValues { [$0.rows, $0.columns] })
        self.config = config
        model = try BertModel(config: config, heads: heads)
        try Self.checkQuantized(quantized, model: model)
        var block = try ParameterBlock(layout: model.layout, consuming: consume tensors, storedElsewhere: Set(onlyQuantized.keys))
        matrices = inferenceOnly ? model.quantizedMatrices(releasing: &block, quantized: quantized)
                                 : model.quantizedMatrices(block, quantized: quantized)
        self.block = block
    }

    /// An inference encoder (as `inferenceOnly` above) whose fp32 tensors are read from
    /// `source` straight into the parameter block, so a file's weights are never resident
    /// beside it; the weights in `quantized` run from their quantized storage. The source
    /// checks the values it reads; errors are its own or a `ModelError`.
    public init(config: BertConfig, source: TensorSource, quantized: [String: QuantizedTensor]) throws {
        try config.validate()
        let onlyQuantized = quantized.filter { source.shapes[$0.key] == nil }
        let heads = try validateBertShapes(config, shapes: source.shapes, storedElsewhere: onlyQuantized.mapValues { [$0.rows, $0.columns] })
        self.config = config
        model = try BertModel(config: config, heads: heads)
        try Self.checkQuantized(quantized, model: model)
        var block = try ParameterBlock(layout: model.layout, source: source, storedElsewhere: Set(onlyQuantized.keys))
        matrices = model.quantizedMatrices(releasing: &block, quantized: quantized)
        self.block = block
    }

    /// Every quantized tensor is a weight of `model` that runs quantized, with its shape.
    private static func checkQuantized(_ quantized: [String: QuantizedTensor], model: BertModel) throws(ModelError) {
        let runsQuantized = model.quantizableWeights
        for (name, q) in quantized {
            guard let entry = model.layout.entry(name), entry.shape == [q.rows, q.columns], runsQuantized.contains(name) else {
                throw ModelError.badInput("quantized tensor '\(name)' [\(q.rows), \(q.columns)] is not a weight of this model that runs quantized\(model.layout.entry(name).map { " (expected \(describeShape($0.shape)))" } ?? "")",
                                          hint: "quantize the model again with 'kd quantize'")
            }
        }
    }

    /// Checks a batch against the model: shapes, id ranges, positions, mask values.
    public func check(_ batch: EncoderBatch) throws(ModelError) {
        try model.check(batch, labels: nil)
    }

    /// Runs the encoder (and heads) on a batch.
    public func forward(_ batch: EncoderBatch, hiddenStates wantHidden: Bool = false,
                        attentions wantAttentions: Bool = false) throws(ModelError) -> EncoderOutput {
        let options = ForwardOptions(cacheForBackward: false, hiddenStates: wantHidden, attentions: wantAttentions,
                                     matrices: matrices)
        let acts = try model.forward(batch, parameters: block, options: options)
        let B = batch.batchSize, T = batch.sequenceLength, H = config.hiddenSize
        var out = EncoderOutput(lastHidden: Tensor(shape: [B, T, H], data: acts.lastHidden.array))
        if wantHidden { out.hiddenStates = acts.hiddenStates.map { Tensor(shape: [B, T, H], data: $0.array) } }
        if wantAttentions {
            out.attentions = zip(acts.attentionProbabilities, config.layerHeads).map { p, heads in
                Tensor(shape: [B, heads, T, T], data: p.array)
            }
        }
        if heads.pooler, let pooled = acts.pooled { out.pooled = Tensor(shape: [B, H], data: pooled.array) }
        if heads.classifierLabels > 0 { out.logits = acts.logits }
        return out
    }
}
