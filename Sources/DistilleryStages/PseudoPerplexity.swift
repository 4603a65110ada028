// PseudoPerplexity: `kd eval --pseudo-perplexity` — how well a masked-LM teacher predicts
// a dataset's text, after Salazar, Liang, Nguyen & Kirchhoff 2020 ("Masked Language Model
// Scoring", ACL).
//
// Each sentence W = [CLS] w₁ … wₙ [SEP] is copied n times with wᵢ replaced by [MASK] in copy
// i; its pseudo-log-likelihood is PLL(W) = Σᵢ log P(wᵢ | W∖i), read from the MLM head at the
// masked position. Over a corpus, PPPL = exp(−Σ_W PLL(W) / N) with N the number of scored
// pieces ([CLS] and [SEP] are never scored). The masked copies of several sentences share
// a batch (padded on the right, attention mask 0 on the padding); only the masked rows go
// through the head, so the n × V decoder runs once per scored piece. Log-softmax in
// double. Texts are cut at the model's maximum length first (counted as truncated).
// Left out on purpose: whole-word masking and the paper's PLL rescoring of ASR/NMT lists.
import DistilleryData
import Distillation
import DistilleryModel
import DistilleryTensor
import Foundation

/// What `pseudoPerplexity` scores.
public struct PseudoPerplexityConfig: Sendable {
    /// A model file with a masked-LM head (imported from a BertForMaskedLM checkpoint).
    public var model: String
    /// A prepared dataset folder.
    public var data: String
    public var split: Split = .test
    /// Truncation length ([CLS] and [SEP] included; default min(128, the model's positions)).
    public var maxLength: Int?
    /// Masked copies per forward pass.
    public var batchSize = 32
    /// Score only the split's first this many texts (nil: all).
    public var limit: Int?
    public var threads = 1

    /// A configuration; see the properties.
    public init(model: String, data: String, split: Split = .test, maxLength: Int? = nil, batchSize: Int = 32,
                limit: Int? = nil, threads: Int = 1) {
        (self.model, self.data, self.split, self.maxLength) = (model, data, split, maxLength)
        (self.batchSize, self.limit, self.threads) = (batchSize, limit, threads)
    }
}

/// A dataset split's pseudo-perplexity under a masked LM.
public struct PseudoPerplexityReport: Codable, Sendable {
    public var model: String
    public var data: String
    public var split: String
    public var sentences: Int
    /// Pieces scored (every piece but [CLS] and [SEP]).
    public var scoredPieces: Int
    /// Texts cut at `maxLength`.
    public var truncated: Int
    public var maxLength: Int
    /// Σ over sentences of PLL (natural log).
    public var pseudoLogLikelihood: Double
    /// exp(−PLL / scoredPieces).
    public var pseudoPerplexity: Double
    public var seconds: Double

    /// The lines `kd eval --pseudo-perplexity` prints.
    public var text: String {
        """
        pseudo-perplexity \(String(format: "%.4f", pseudoPerplexity)) on \(data) \(split): \(sentences) texts, \(scoredPieces) pieces scored (each masked in turn), \(truncated) cut at \(maxLength) tokens
          pseudo-log-likelihood \(String(format: "%.4f", pseudoLogLikelihood)) nats (\(String(format: "%.4f", -pseudoLogLikelihood / Double(max(scoredPieces, 1)))) per piece); \(String(format: "%.1f", seconds)) s
        """
    }
}

/// Scores a split's texts with the model's masked-LM head (Salazar et al. 2020).
public func pseudoPerplexity(_ config: PseudoPerplexityConfig, progress: StageProgress = SilentProgress()) throws -> PseudoPerplexityReport {
    try setComputeThreads(config.threads)
    try checkFlag(config.batchSize, in: 1...maximumBatchSize, flag: "--batch-size")
    if let limit = config.limit { try checkFlag(limit, in: 1...Int.max, flag: "--eval-limit") }
    let bundle = try ModelBundle(path: config.model)
    let head = try bundle.maskedLMHead()
    guard let maskId = bundle.tokenizer.vocabulary.firstIndex(of: "[MASK]") else {
        throw StageError("\(config.model): the vocabulary has no [MASK] token — pseudo-perplexity masks each piece in turn")
    }
    let maxLength = config.maxLength ?? min(128, bundle.config.maxPositions)
    try checkFlag(maxLength, in: 3...bundle.config.maxPositions, flag: "--max-length")
    let folder = try PreparedFolder(path: config.data)
    let rows = Array(try folder.read(config.split).prefix(config.limit ?? Int.max))
    guard !rows.isEmpty else { throw StageError("\(folder.filePath(config.split)): no texts to score") }
    let start = Date()
    var truncated = 0
    let sequences = rows.map { row -> [Int32] in
        let full = bundle.tokenizer.encode(row.text).ids
        if full.count > maxLength { truncated += 1 }
        return bundle.tokenizer.encode(row.text, maxLength: maxLength).ids
    }
    let encoder = try bundle.makeEncoder()
    let logProbs: [[Double]]
    do {
        logProbs = try maskedLogProbabilities(encoder: encoder, head: head, sequences: sequences, maskId: Int32(maskId),
                                              paddingId: bundle.tokenizer.paddingId, batchSize: config.batchSize)
    } catch { throw StageError(file: config.model, error) }
    let pieces = logProbs.reduce(0) { $0 + $1.count }
    guard pieces > 0 else { throw StageError("\(folder.filePath(config.split)): every text is empty after tokenization — nothing to score") }
    let pll = logProbs.reduce(0) { $0 + $1.reduce(0, +) }
    return PseudoPerplexityReport(model: config.model, data: config.data, split: config.split.rawValue, sentences: rows.count,
                                  scoredPieces: pieces, truncated: truncated, maxLength: maxLength, pseudoLogLikelihood: pll,
                                  pseudoPerplexity: exp(-pll / Double(pieces)), seconds: Date().timeIntervalSince(start))
}

/// log P(wᵢ | W∖i) for every piece of every sequence but the first and last ([CLS], [SEP]):
/// one masked copy per piece, `batchSize` copies per forward pass.
public func maskedLogProbabilities(encoder: BertEncoder, head: MaskedLMHead, sequences: [[Int32]], maskId: Int32,
                                   paddingId: Int32, batchSize: Int) throws -> [[Double]] {
    // Every (sequence, position) pair, in order.
    let jobs = sequences.indices.flatMap { s in (sequences[s].count > 2 ? Array(1..<(sequences[s].count - 1)) : []).map { (s, $0) } }
    var out = sequences.map { [Double](repeating: 0, count: max(0, $0.count - 2)) }
    let H = head.hiddenSize, V = head.vocabularySize
    for chunkStart in stride(from: 0, to: jobs.count, by: batchSize) {
        let chunk = jobs[chunkStart..<min(chunkStart + batchSize, jobs.count)]
        let T = chunk.map { sequences[$0.0].count }.max()!
        var ids = [Int32](repeating: paddingId, count: chunk.count * T)
        var mask = [Int32](repeating: 0, count: chunk.count * T)
        for (b, (s, i)) in chunk.enumerated() {
            for (t, id) in sequences[s].enumerated() {
                ids[b * T + t] = t == i ? maskId : id
                mask[b * T + t] = 1
            }
        }
        let states = try encoder.forward(EncoderBatch(ids: ids, mask: mask, batchSize: chunk.count, sequenceLength: T)).lastHidden.data
        var picked = [Float](repeating: 0, count: chunk.count * H)
        for (b, (_, i)) in chunk.enumerated() {
            picked.replaceSubrange((b * H)..<((b + 1) * H), with: states[((b * T + i) * H)..<((b * T + i + 1) * H)])
        }
        let logits = head.logits(picked, rows: chunk.count)
        for (b, (s, i)) in chunk.enumerated() {
            let row = logits[(b * V)..<((b + 1) * V)]
            let top = Double(row.max()!)
            let sum = row.reduce(0.0) { $0 + exp(Double($1) - top) }
            out[s][i - 1] = Double(row[row.startIndex + Int(sequences[s][i])]) - top - log(sum)
        }
    }
    return out
}
