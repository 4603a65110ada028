// Activations: what one BERT forward computed — outputs, and for training everything the
// backward reads.
//
// Buffers are arena views (ActivationArena.swift) valid while the `BertActivations` value
// (or the buffer itself) is alive. When the forward ran without caching (inference), the
// per-layer list is empty and only the outputs and what was asked for are kept.
import DistilleryTensor

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
    /// Query, key and value projections side by side, [rows, 3·A]: row r holds q_r, k_r, v_r.
    public let qkv: FloatBuffer
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

/// Everything one forward computed: outputs plus, when cached, the activations the backward reads.
public struct BertActivations {
    public let batch: EncoderBatch
    /// Class labels [B], when a loss was asked for.
    public let labels: [Int32]?
    /// Mean cross-entropy over the batch (nil without labels).
    public let loss: Double?
    /// Classifier logits [B, classes] ([B, 0] for a model without a classifier).
    public let logits: Tensor

    /// Hidden states as HF's `output_hidden_states`, each [B·T, H]: index 0 is the
    /// embedding output (after dropout), index l (1...layers) the output of layer l. Always
    /// kept when caching for the backward; otherwise only when asked for.
    public let hiddenStates: [FloatBuffer]
    /// The last layer's output [B·T, H].
    public let lastHidden: FloatBuffer
    /// Per layer: the attention probabilities [B, heads, T, T] (softmax, before dropout);
    /// kept when caching, or when asked for.
    public let attentionProbabilities: [FloatBuffer]
    /// Per layer: the pre-softmax scores q·kᵀ/√D before the mask [B, heads, T, T], when
    /// the forward ran with `keepScores`; nil otherwise.
    public var attentionScores: [FloatBuffer]? {
        !layers.isEmpty && layers.allSatisfy { $0.scores != nil } ? layers.map { $0.scores! } : nil
    }
    /// Per layer: everything the backward reads (empty when the forward did not cache).
    public let layers: [LayerActivations]
    /// The head mask the forward ran with ([layer][head]), if any.
    public let headMask: [[Float]]?

    let embeddingSum, embeddingMean, embeddingRstd, embeddingNorm: FloatBuffer
    let embeddingMask: FloatBuffer?
    /// [CLS] states [B, H] (nil when mean-pooling or without a pooler), the pooled vector
    /// [B, H] (tanh output or masked mean; nil without pooler and classifier), its dropout mask.
    let cls: FloatBuffer?
    public let pooled: FloatBuffer?
    let pooledMask: FloatBuffer?
    /// Classifier input (pooled after dropout) [B, H], logits and softmax probabilities [B, classes].
    let classifierInput, logitsBuffer, softmax: FloatBuffer?
    /// The arena these buffers live in, and where the backward's temporaries start.
    let lease: ArenaLease
    let backwardSlot: Int
}
