// MonitorStage: `kd monitor` as a library call — new texts against the prepared data a
// model was trained on, judged for input, representation and prediction drift (and, with
// a teacher, for whether the student still follows it), returned as a `DriftReport`.
//
// Input drift uses the model's own tokenizer on every reference text and every new text:
// token lengths (before truncation), the [UNK] rate, the share of pieces the reference
// never contains, and word-piece frequencies. The model itself runs (through
// `InferenceModel.runBatched`, the one inference loop) on a seeded subsample of at most
// `modelSample` texts per side: pooled embeddings (the model's pooling and normalisation)
// for the MMD test on at most `mmdSample` of them per side, and the classifier's
// probabilities for the label and confidence distributions. A reference prepared for
// another vocabulary (the manifest's `tokenizer` record) is refused. The statistics
// themselves live in the pure `Monitoring` module. Left out on purpose: sentence pairs,
// regression heads, and streaming inputs larger than memory.
import Distillation
import DistilleryData
import DistilleryModel
import DistilleryTensor
import DistilleryTraining
import Foundation
import Monitoring
import Tokenization

/// What `monitor` compares and how.
public struct MonitorConfig: Sendable {
    /// The deployed model (.h5).
    public var model: String
    /// The prepared dataset folder it was trained on.
    public var reference: String
    public var split: Split = .train
    /// New texts: .txt, .jsonl or .csv (or `-` for stdin).
    public var input: String
    /// nil: from the extension.
    public var format: MonitorInputFormat?
    /// JSON key or CSV column of the text.
    public var textField = "text"
    /// A teacher with the same labels: adds student–teacher agreement and KL.
    public var teacher: String?
    /// A self-contained HTML page written atomically (nil: none).
    public var report: String?
    public var thresholds = DriftThresholds()
    /// Texts per side run through the model (seeded subsample).
    public var modelSample = 2000
    /// Embeddings per side in the MMD test (seeded subsample of the model's).
    public var mmdSample = 500
    public var permutations = 500
    /// Word pieces with their own bin in the frequency divergences (the rest: "other").
    public var topPieces = 100
    public var seed: UInt64 = 13
    public var maxLength: Int?
    public var batchSize = 32
    public var threads = 1

    /// A configuration; see the properties.
    public init(model: String, reference: String, input: String) {
        (self.model, self.reference, self.input) = (model, reference, input)
    }
}

/// Fewer new texts than this get a note that the statistics are noisy.
let monitorSmallInput = 100

/// Token statistics of one side: lengths, [UNK]s, piece counts.
struct TokenProfile {
    var lengths: [Double] = []
    var pieces = 0
    var unknown = 0
    var truncated = 0
    var counts: [Int32: Int] = [:]

    init(texts: [String], tokenizer: WordPieceTokenizer, maxLength: Int) {
        for text in texts {
            let ids = tokenizer.tokenIds(text)
            lengths.append(Double(ids.count))
            pieces += ids.count
            if ids.count + 2 > maxLength { truncated += 1 }
            for id in ids {
                if id == tokenizer.unknownId { unknown += 1 }
                counts[id, default: 0] += 1
            }
        }
    }

    var unknownRate: Double { pieces > 0 ? Double(unknown) / Double(pieces) : 0 }
    var summary: TokenSummary {
        TokenSummary(lines: lengths.count, pieces: pieces, unknownRate: unknownRate,
                     meanLength: lengths.isEmpty ? 0 : lengths.reduce(0, +) / Double(lengths.count),
                     truncatedShare: lengths.isEmpty ? 0 : Double(truncated) / Double(lengths.count))
    }
}

/// What the model gives for a set of texts: pooled embeddings and (with a head) logits.
struct ModelOutputs {
    var embeddings: [[Float]]
    var logits: [[Float]]?
}

/// Runs `model` over `texts` in length-sorted batches: the pooled embedding (the model's
/// pooling and normalisation) and the classifier's logits of each text, in input order.
func modelOutputs(_ model: InferenceModel, texts: [String], maxLength: Int, batchSize: Int, source: String) throws -> ModelOutputs {
    let sequences = try model.encodeLines(texts, maxLength: maxLength, pretokenized: false, source: source)
    var embeddings = [[Float]](repeating: [], count: texts.count)
    var logits: [[Float]]? = model.encoder.classifierLabels > 0 ? [[Float]](repeating: [], count: texts.count) : nil
    let mode = model.pooling, normalize = model.normalize
    var pooledBatch: (first: Int, tensor: Tensor)?   // pool a batch once, not once per row
    try model.runBatched(sequences, batchSize: batchSize) { i, out, row, batch in
        if row == 0 || pooledBatch == nil { pooledBatch = (i, pool(out.lastHidden, mask: batch.mask, mode: mode, normalize: normalize)) }
        let pooled = pooledBatch!.tensor, H = pooled.shape[1]
        embeddings[i] = Array(pooled.data[(row * H)..<((row + 1) * H)])
        if let l = out.logits, logits != nil {
            let C = l.shape[1]
            logits![i] = Array(l.data[(row * C)..<((row + 1) * C)])
        }
    }
    return ModelOutputs(embeddings: embeddings, logits: logits)
}

/// Softmax probabilities of one logit row (in Double, max-shifted).
func probabilities(_ logits: [Float]) -> [Double] {
    let top = Double(logits.max() ?? 0)
    let e = logits.map { Foundation.exp(Double($0) - top) }
    let sum = e.reduce(0, +)
    return e.map { $0 / sum }
}

/// Compares new texts with a model's training data; see `MonitorConfig` and the file header.
public func monitor(_ config: MonitorConfig, progress: StageProgress = SilentProgress()) throws -> DriftReport {
    try setComputeThreads(config.threads)
    try checkFlag(config.batchSize, in: 1...maximumBatchSize, flag: "--batch-size")
    try checkFlag(config.modelSample, in: 2...1_000_000, flag: "--model-sample")
    try checkFlag(config.mmdSample, in: 2...5000, flag: "--mmd-sample")
    try checkFlag(config.permutations, in: 1...100_000, flag: "--permutations")
    try checkFlag(config.topPieces, in: 1...100_000, flag: "--top-pieces")
    let inputPath: String? = config.input == "-" ? nil : config.input
    if let report = config.report {
        try checkOutputPath(report, flag: "--report")
        try refuseInputsAsOutputs([(report, "--report")], inputs: [config.model, inputPath, config.reference, config.teacher])
    }
    let model = try InferenceModel(path: config.model)
    let maxLength = try model.resolveMaxLength(config.maxLength, progress: progress)
    let folder = try PreparedFolder(path: config.reference)
    let own = TokenizerRecord(vocabulary: model.file.vocabulary)
    if let recorded = folder.manifest.tokenizer, recorded != own {
        throw StageError("\(folder.path)/manifest.json: tokenizer: the reference was prepared for a \(recorded.vocabularySize)-token vocabulary (sha256 \(recorded.vocabularySHA256.prefix(12))…), but \(config.model) has a \(own.vocabularySize)-token one (sha256 \(own.vocabularySHA256.prefix(12))…) — monitor with the model trained on this data, or prepare the reference for this model with 'kd data prepare … --tokenizer \(config.model)'")
    }
    var teacher: InferenceModel?
    if let path = config.teacher {
        let names = try model.labelNames(hint: "--teacher compares classifiers; monitor without --teacher")
        let t = try InferenceModel(path: path)
        let teacherNames = try t.labelNames()
        guard teacherNames == names else {
            throw StageError("\(path): the teacher's labels (\(teacherNames.joined(separator: ", "))) differ from \(config.model)'s (\(names.joined(separator: ", "))) — give the teacher the student was distilled from")
        }
        try t.checkMaxLength(maxLength)
        teacher = t
    }
    let referenceRows = try folder.read(config.split)
    guard !referenceRows.isEmpty else {
        throw StageError("\(folder.filePath(config.split)): no texts in the \(config.split.rawValue) split — choose another with --split")
    }
    let input = try readMonitorInput(config.input, format: config.format, field: config.textField)
    let referenceTexts = referenceRows.map(\.text), newTexts = input.texts
    let inputName = inputPath ?? "<stdin>"

    // Input drift: every text on both sides.
    let tokenizer = model.tokenizer
    let ref = TokenProfile(texts: referenceTexts, tokenizer: tokenizer, maxLength: maxLength)
    let new = TokenProfile(texts: newTexts, tokenizer: tokenizer, maxLength: maxLength)
    let thresholds = config.thresholds
    var statistics: [StatisticResult] = [], notes: [String] = [], histograms: [HistogramComparison] = []
    func f(_ x: Double) -> String { String(format: "%.4f", x) }

    let lengthBins = Binning.quantiles(of: ref.lengths)
    let lengthRef = lengthBins.counts(ref.lengths), lengthNew = lengthBins.counts(new.lengths)
    statistics.append(StatisticResult(.lengthPSI, value: populationStabilityIndex(expected: lengthRef, actual: lengthNew), thresholds: thresholds,
                                      detail: "mean pieces reference \(String(format: "%.1f", ref.summary.meanLength)), new \(String(format: "%.1f", new.summary.meanLength)); over \(maxLength) tokens: reference \(f(ref.summary.truncatedShare)), new \(f(new.summary.truncatedShare))"))
    histograms.append(HistogramComparison(name: "length", title: "Token length (word pieces, reference deciles)",
                                          bins: lengthBins.labels(integer: true), reference: lengthRef, current: lengthNew))
    statistics.append(StatisticResult(.unknownRateIncrease, value: new.unknownRate - ref.unknownRate, thresholds: thresholds,
                                      detail: "[UNK] share reference \(f(ref.unknownRate)), new \(f(new.unknownRate))"))
    let unseen = new.counts.filter { ref.counts[$0.key] == nil }
    let unseenRate = new.pieces > 0 ? Double(unseen.values.reduce(0, +)) / Double(new.pieces) : 0
    statistics.append(StatisticResult(.unseenPieceRate, value: unseenRate, thresholds: thresholds,
                                      detail: "\(unseen.count) distinct pieces the reference never has"))
    let bins = PieceBins(reference: ref.counts, top: config.topPieces)
    let pieceRef = bins.counts(ref.counts), pieceNew = bins.counts(new.counts)
    let coverage = "top \(bins.pieces.count) reference pieces cover \(f(1 - proportions(pieceRef).last!)) of the reference, \(f(1 - proportions(pieceNew).last!)) of the new pieces"
    statistics.append(StatisticResult(.pieceJS, value: jensenShannon(pieceRef, pieceNew), thresholds: thresholds, detail: coverage))
    statistics.append(StatisticResult(.piecePSI, value: populationStabilityIndex(expected: pieceRef, actual: pieceNew), thresholds: thresholds, detail: coverage))
    let shown = min(30, bins.pieces.count)
    histograms.append(HistogramComparison(
        name: "pieces", title: "Word-piece frequencies (the \(shown) most frequent reference pieces, then all others)",
        bins: bins.pieces.prefix(shown).map { tokenizer.vocabulary[Int($0)] } + ["(other)"],
        reference: Array(pieceRef.prefix(shown)) + [pieceRef.dropFirst(shown).reduce(0, +)],
        current: Array(pieceNew.prefix(shown)) + [pieceNew.dropFirst(shown).reduce(0, +)]))

    // Representation and prediction drift: the model on a seeded subsample of each side.
    let refPick = subsampleIndices(count: referenceTexts.count, cap: config.modelSample, seed: config.seed)
    let newPick = subsampleIndices(count: newTexts.count, cap: config.modelSample, seed: config.seed &+ 1)
    let refSample = refPick.map { referenceTexts[$0] }, newSample = newPick.map { newTexts[$0] }
    progress.line("running \(config.model) on \(refSample.count) reference and \(newSample.count) new texts")
    let refOut = try modelOutputs(model, texts: refSample, maxLength: maxLength, batchSize: config.batchSize, source: folder.filePath(config.split))
    let newOut = try modelOutputs(model, texts: newSample, maxLength: maxLength, batchSize: config.batchSize, source: inputName)
    var mmd: MMDResult?
    if refOut.embeddings.count >= 2 && newOut.embeddings.count >= 2 {
        let a = subsampleIndices(count: refOut.embeddings.count, cap: config.mmdSample, seed: config.seed &+ 2).map { refOut.embeddings[$0] }
        let b = subsampleIndices(count: newOut.embeddings.count, cap: config.mmdSample, seed: config.seed &+ 3).map { newOut.embeddings[$0] }
        let result = mmdTest(reference: a, current: b, permutations: config.permutations, seed: config.seed)
        mmd = result
        statistics.append(StatisticResult(.embeddingMMDPValue, value: result.pValue, thresholds: thresholds,
                                          detail: String(format: "MMD² %.3e, σ %.4f, %d vs %d embeddings, %d permutations", result.mmd2, result.bandwidth,
                                                         result.referenceCount, result.currentCount, result.permutations)))
    } else {
        notes.append("embedding_mmd_p not computed: the MMD test needs at least two texts on each side")
    }
    var fidelity: TeacherFidelity?
    if let refLogits = refOut.logits, let newLogits = newOut.logits {
        let names = try model.labelNames()
        let refProbs = refLogits.map(probabilities), newProbs = newLogits.map(probabilities)
        func argmax(_ p: [Double]) -> Int { p.indices.max { p[$0] < p[$1] }! }
        let labelRef = categoryCounts(refProbs.map(argmax), categories: names.count)
        let labelNew = categoryCounts(newProbs.map(argmax), categories: names.count)
        func shares(_ c: [Double]) -> String { zip(names, proportions(c)).map { "\($0) \(String(format: "%.3f", $1))" }.joined(separator: " ") }
        statistics.append(StatisticResult(.labelPSI, value: populationStabilityIndex(expected: labelRef, actual: labelNew), thresholds: thresholds,
                                          detail: "reference \(shares(labelRef)); new \(shares(labelNew))"))
        histograms.append(HistogramComparison(name: "labels", title: "Predicted labels", bins: names, reference: labelRef, current: labelNew))
        let confidenceBins = Binning.uniform(from: 0, to: 1, bins: 10)
        let confRef = confidenceBins.counts(refProbs.map { $0.max()! }), confNew = confidenceBins.counts(newProbs.map { $0.max()! })
        let meanConf = { (p: [[Double]]) in p.map { $0.max()! }.reduce(0, +) / Double(max(1, p.count)) }
        statistics.append(StatisticResult(.confidencePSI, value: populationStabilityIndex(expected: confRef, actual: confNew), thresholds: thresholds,
                                          detail: "mean top-class probability reference \(f(meanConf(refProbs))), new \(f(meanConf(newProbs)))"))
        histograms.append(HistogramComparison(name: "confidence", title: "Top-class probability", bins: confidenceBins.labels(integer: false),
                                              reference: confRef, current: confNew))
        if let teacher, let path = config.teacher {
            progress.line("running the teacher \(path) on the same texts")
            let tRef = try modelOutputs(teacher, texts: refSample, maxLength: maxLength, batchSize: config.batchSize, source: folder.filePath(config.split))
            let tNew = try modelOutputs(teacher, texts: newSample, maxLength: maxLength, batchSize: config.batchSize, source: inputName)
            let before = FidelityMetrics(teacher: tRef.logits!, student: refLogits), after = FidelityMetrics(teacher: tNew.logits!, student: newLogits)
            fidelity = TeacherFidelity(teacher: path, referenceAgreement: before.agreement, currentAgreement: after.agreement,
                                       referenceMeanKL: before.meanKL, currentMeanKL: after.meanKL)
            statistics.append(StatisticResult(.teacherAgreementDrop, value: before.agreement - after.agreement, thresholds: thresholds,
                                              detail: "agreement reference \(f(before.agreement)), new \(f(after.agreement)); mean KL(teacher ‖ student) reference \(String(format: "%.5f", before.meanKL)), new \(String(format: "%.5f", after.meanKL))"))
        }
    } else {
        notes.append("label_psi and confidence_psi not computed: \(config.model) has no classifier head")
    }
    if newTexts.count < monitorSmallInput {
        notes.append("only \(newTexts.count) new texts: below ~\(monitorSmallInput) the statistics are noisy and the MMD test has little power")
    }
    let report = DriftReport(model: config.model, reference: config.reference, split: config.split.rawValue, input: inputName, maxLength: maxLength,
                             referenceTokens: ref.summary, inputTokens: new.summary, skippedLines: input.skipped, referenceModelLines: refSample.count,
                             mmd: mmd, fidelity: fidelity, statistics: statistics, notes: notes, histograms: histograms, thresholds: thresholds)
    if let path = config.report { try writeAtomically(Data(report.html.utf8), to: path) }
    return report
}
