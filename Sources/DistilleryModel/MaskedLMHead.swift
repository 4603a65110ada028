// MaskedLMHead: BERT's masked-language-model head, for teachers imported from a
// `BertForMaskedLM` checkpoint — logits over the vocabulary from the encoder's last states.
//
// Follows HF `BertLMPredictionHead`: transform = dense [H, H] → the config's activation
// (GELU, exact erf) → LayerNorm (the config's eps); then the decoder x · Eᵀ + b with E the
// word-embedding matrix [V, H] (HF ties them; an untied checkpoint's own
// `cls.predictions.decoder.weight` is used when present) and b = `cls.predictions.bias` [V].
// It runs on the rows the caller picks (the masked positions), not the whole batch, since
// the decoder is the widest matrix of the model. Inference only: no backward, so no MLM
// training here. Left out on purpose: the next-sentence head of `BertForPreTraining`
// (`cls.seq_relationship.*`).
import DistilleryTensor
import Foundation

/// The masked-LM head of a BERT model (`cls.predictions.*`).
public struct MaskedLMHead: Sendable {
    /// The prefix every tensor of the head carries.
    public static let prefix = "cls.predictions."
    /// The tensors a checkpoint must hold (the decoder weight is optional: tied by default).
    public static let requiredNames = ["transform.dense.weight", "transform.dense.bias", "transform.LayerNorm.weight",
                                       "transform.LayerNorm.bias", "bias"].map { prefix + $0 }
    /// The untied decoder's weight, when a checkpoint has one.
    public static let decoderName = prefix + "decoder.weight"

    public let hiddenSize: Int
    public let vocabularySize: Int
    let dense: [Float], denseBias: [Float], gamma: [Float], beta: [Float], decoder: [Float], bias: [Float]
    let eps: Float
    /// Whether the decoder is the word-embedding matrix (HF's tying) rather than its own weight.
    public let tied: Bool

    /// The head from its tensors (`cls.predictions.*`) and the encoder's word embeddings.
    /// - Throws: ``ModelError`` naming a missing, unexpected or mis-shaped tensor.
    public init(config: BertConfig, tensors: [String: Tensor], wordEmbeddings: Tensor) throws(ModelError) {
        let H = config.hiddenSize, V = config.vocabSize
        let unexpected = tensors.keys.sorted().filter {
            $0.hasPrefix(MaskedLMHead.prefix) && !MaskedLMHead.requiredNames.contains($0) && $0 != MaskedLMHead.decoderName
        }
        guard unexpected.isEmpty else {
            throw ModelError.unexpectedTensors(unexpected, hint: "a BertForMaskedLM head has cls.predictions.transform.{dense,LayerNorm}.*, cls.predictions.bias and optionally cls.predictions.decoder.weight")
        }
        func take(_ name: String, _ shape: [Int]) throws(ModelError) -> [Float] {
            guard let t = tensors[name] else {
                throw ModelError.missingTensor(name: name, expected: shape, hint: "the masked-LM head is incomplete — was the checkpoint saved from BertForMaskedLM?")
            }
            guard t.shape == shape else {
                throw ModelError.wrongShape(name: name, expected: shape, found: t.shape, hint: "the head does not belong to this config (hidden \(H), vocab \(V))")
            }
            return t.data
        }
        let p = MaskedLMHead.prefix
        dense = try take(p + "transform.dense.weight", [H, H])
        denseBias = try take(p + "transform.dense.bias", [H])
        gamma = try take(p + "transform.LayerNorm.weight", [H])
        beta = try take(p + "transform.LayerNorm.bias", [H])
        bias = try take(p + "bias", [V])
        guard wordEmbeddings.shape == [V, H] else {
            throw ModelError.wrongShape(name: "embeddings.word_embeddings.weight", expected: [V, H], found: wordEmbeddings.shape,
                                        hint: "the tied decoder needs the [vocab, hidden] word embeddings")
        }
        if tensors[MaskedLMHead.decoderName] != nil {
            decoder = try take(MaskedLMHead.decoderName, [V, H])
            tied = decoder == wordEmbeddings.data
        } else {
            decoder = wordEmbeddings.data
            tied = true
        }
        (hiddenSize, vocabularySize, eps) = (H, V, config.layerNormEps)
    }

    /// The head's own tensors by canonical name (what a model file stores; the tied decoder is not repeated).
    public var tensors: [(name: String, tensor: Tensor)] {
        let p = MaskedLMHead.prefix, H = hiddenSize
        var list: [(String, Tensor)] = [
            (p + "bias", Tensor(shape: [vocabularySize], data: bias)),
            (p + "transform.LayerNorm.bias", Tensor(shape: [H], data: beta)),
            (p + "transform.LayerNorm.weight", Tensor(shape: [H], data: gamma)),
            (p + "transform.dense.bias", Tensor(shape: [H], data: denseBias)),
            (p + "transform.dense.weight", Tensor(shape: [H, H], data: dense)),
        ]
        if !tied { list.append((MaskedLMHead.decoderName, Tensor(shape: [vocabularySize, H], data: decoder))) }
        return list
    }

    /// Vocabulary logits `[rows, V]` of hidden states `[rows, H]` (row-major).
    public func logits(_ hidden: [Float], rows: Int) -> [Float] {
        precondition(hidden.count == rows * hiddenSize, "MaskedLMHead.logits: \(hidden.count) values for \(rows) rows of \(hiddenSize)")
        guard rows > 0 else { return [] }
        let H = hiddenSize, V = vocabularySize
        var transformed = [Float](repeating: 0, count: rows * H)
        var activated = [Float](repeating: 0, count: rows * H)
        var out = [Float](repeating: 0, count: rows * V)
        hidden.withUnsafeBufferPointer { x in
            transformed.withUnsafeMutableBufferPointer { t in
                linearForward(y: t.baseAddress!, x: x.baseAddress!, weight: dense, bias: denseBias,
                              rows: rows, inFeatures: H, outFeatures: H)
                activated.withUnsafeMutableBufferPointer { a in
                    geluForward(y: a.baseAddress!, x: t.baseAddress!, count: rows * H)
                    layerNormForward(y: t.baseAddress!, mean: nil, rstd: nil, x: a.baseAddress!, gamma: gamma, beta: beta,
                                     rows: rows, cols: H, eps: eps)
                }
                out.withUnsafeMutableBufferPointer { o in
                    linearForward(y: o.baseAddress!, x: t.baseAddress!, weight: decoder, bias: bias,
                                  rows: rows, inFeatures: H, outFeatures: V)
                }
            }
        }
        return out
    }
}
