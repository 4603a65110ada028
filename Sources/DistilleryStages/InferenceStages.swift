// InferenceStages: running a model over text — token ids (`tokenize`), sentence embeddings
// (`embed`), classifier predictions (`predict`) and a classifier's scores on a dataset
// split (`evaluate`: accuracy, macro-F1, per-class precision/recall/F1, confusion matrix,
// and with a teacher its agreement and KL).
//
// Every stage checks its inputs (threads, batch size, output path, model, lengths, input
// lines) before running anything; sequences run in length-sorted batches and results come
// back in input order, one per input line (a blank line is a text too; `-` or no input
// reads stdin). The maximum length is the one stored in the model unless a flag overrides
// it (and a note says so). Embeddings and predictions are JSON lines (one record per input
// line, `DistilleryJSON.JSONLine`: text first; predictions as HF's text-classification
// pipeline names them), written atomically to `output` when one is given. Left out on
// purpose: sentence pairs and regression heads.
import Distillation
import DistilleryData
import DistilleryJSON
import DistilleryModel
import DistilleryTensor
import DistilleryTraining
import Foundation

// MARK: - tokenize

/// What `tokenize` reads.
public struct TokenizeConfig: Sendable {
    public var model: String
    /// Lines of text (stdin when nil or "-").
    public var input: String?
    public var addSpecialTokens = true
    public var maxLength: Int?

    /// A configuration; see the properties.
    public init(model: String, input: String? = nil, addSpecialTokens: Bool = true, maxLength: Int? = nil) {
        self.model = model
        self.input = input
        self.addSpecialTokens = addSpecialTokens
        self.maxLength = maxLength
    }
}

/// Token ids per input line.
public struct TokenizeReport: Codable, Sendable {
    public var ids: [[Int32]]
    /// One line of space-separated ids per input line.
    public var text: String { ids.map { $0.map(String.init).joined(separator: " ") }.joined(separator: "\n") }
}

/// The token ids of each input line, as the model's tokenizer makes them (a blank line
/// gives [CLS] [SEP], or an empty line without special tokens).
public func tokenize(_ config: TokenizeConfig) throws -> TokenizeReport {
    let model = try InferenceModel(path: config.model)
    if let maxLength = config.maxLength { try model.checkMaxLength(maxLength) }
    let maxLength = config.maxLength ?? model.storedMaxLength   // the stored length truncates too
    let lines = try readInputLines(config.input, allowEmpty: true)
    return TokenizeReport(ids: lines.map {
        model.tokenizer.encode($0, addSpecialTokens: config.addSpecialTokens, maxLength: maxLength).ids
    })
}

// MARK: - embed / predict

/// What `embed` and `predict` read and where they write.
public struct LineRunConfig: Sendable {
    public var model: String
    /// One text per line (or space-separated ids with `pretokenized`); stdin when nil or "-".
    public var input: String?
    /// JSON lines file written atomically (nil: only returned).
    public var output: String?
    /// Truncation length (default: the model's stored one, else 128 or its positions if fewer).
    public var maxLength: Int?
    public var batchSize = 32
    public var pretokenized = false
    public var threads = 1
    /// The head of a multi-task model to run (`--task`).
    public var task: String?

    /// A configuration; see the properties.
    public init(model: String, input: String? = nil, output: String? = nil, maxLength: Int? = nil, batchSize: Int = 32,
                pretokenized: Bool = false, threads: Int = 1) {
        self.model = model
        self.input = input
        self.output = output
        self.maxLength = maxLength
        self.batchSize = batchSize
        self.pretokenized = pretokenized
        self.threads = threads
    }

    /// Checks the settings, loads the model (then `check` on it), reads and encodes the
    /// input, all before anything is written.
    func load(progress: StageProgress, check: (InferenceModel) throws -> Void = { _ in }) throws -> (InferenceModel, [String], [[Int32]]) {
        try setComputeThreads(threads)
        try checkFlag(batchSize, in: 1...maximumBatchSize, flag: "--batch-size")
        if let output {
            try checkOutputPath(output, flag: "--out")
            try refuseInputsAsOutputs([(output, "--out")], inputs: [model, input == "-" ? nil : input])
        }
        let model = try InferenceModel(path: model, task: task)
        try check(model)
        let maxLength = try model.resolveMaxLength(self.maxLength, progress: progress)
        let lines = try readInputLines(input, allowEmpty: !pretokenized)
        let sequences = try model.encodeLines(lines, maxLength: maxLength, pretokenized: pretokenized,
                                              source: input == nil || input == "-" ? "<stdin>" : input!)
        return (model, lines, sequences)
    }
}

/// A record written as one line of a JSON Lines file (keys in a fixed order).
public protocol JSONLineRecord {
    /// The record as one compact JSON object.
    var jsonLine: JSONLine { get }
}

/// Records written one JSON object per line.
public protocol JSONLinesReport: Codable {
    associatedtype Record: JSONLineRecord
    var records: [Record] { get }
}

extension JSONLinesReport {
    /// One JSON object per record, each ended by a newline.
    public func jsonLines() -> Data {
        Data(records.map { $0.jsonLine.text + "\n" }.joined().utf8)
    }
}

/// One sentence embedding.
public struct EmbeddingRecord: Codable, Sendable, JSONLineRecord {
    public var text: String
    public var embedding: [Float]
    /// `{"text":…,"embedding":[…]}`.
    public var jsonLine: JSONLine { JSONLine().adding("text", text).adding("embedding", floats: embedding) }
}

/// The embeddings of the input lines, in input order.
public struct EmbedReport: JSONLinesReport, Sendable {
    public var records: [EmbeddingRecord]
}

/// Sentence embeddings: the model's pooling (or `pooling`), L2-normalized as the model says
/// unless `normalize` says otherwise (nil: the model's own setting); written to
/// `config.output` when given.
public func embed(_ config: LineRunConfig, pooling: PoolingMode? = nil, normalize: Bool? = nil,
                  progress: StageProgress = SilentProgress()) throws -> EmbedReport {
    let (model, lines, sequences) = try config.load(progress: progress)
    if let pooling, pooling != model.pooling {
        progress.warning("--pooling \(pooling.rawValue) overrides the \(model.pooling.rawValue) pooling stored in \(model.path)")
    }
    let mode = pooling ?? model.pooling
    let doNormalize = normalize ?? model.normalize
    var records = lines.map { EmbeddingRecord(text: $0, embedding: []) }
    try model.runBatched(sequences, batchSize: config.batchSize) { i, out, row, batch in
        let pooled = pool(out.lastHidden, mask: batch.mask, mode: mode, normalize: doNormalize)
        let H = pooled.shape[1]
        records[i].embedding = Array(pooled.data[(row * H)..<((row + 1) * H)])
    }
    let report = EmbedReport(records: records)
    if let output = config.output { try writeAtomically(report.jsonLines(), to: output) }
    return report
}

/// One classified line, as HF's text-classification pipeline reports it (plus every class).
public struct PredictionRecord: Codable, Sendable, JSONLineRecord {
    public var text: String
    /// The most probable class.
    public var label: String
    /// Its probability.
    public var score: Float
    /// Every class's probability, by label name, in class order.
    public var probs: [(label: String, probability: Float)]

    enum CodingKeys: String, CodingKey { case text, label, score, probs }

    /// A record; see the properties.
    public init(text: String, label: String, score: Float, probs: [(label: String, probability: Float)]) {
        (self.text, self.label, self.score, self.probs) = (text, label, score, probs)
    }

    /// Decodes `probs` as an object of label → probability (class order is not kept).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        text = try c.decode(String.self, forKey: .text)
        label = try c.decode(String.self, forKey: .label)
        score = try c.decode(Float.self, forKey: .score)
        probs = try c.decode([String: Float].self, forKey: .probs).sorted { $0.key < $1.key }.map { (label: $0.key, probability: $0.value) }
    }

    /// Encodes `probs` as an object of label → probability.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(text, forKey: .text)
        try c.encode(label, forKey: .label)
        try c.encode(score, forKey: .score)
        try c.encode(Dictionary(probs.map { ($0.label, $0.probability) }, uniquingKeysWith: { a, _ in a }), forKey: .probs)
    }

    /// `{"text":…,"label":…,"score":p,"probs":{"name":p,…}}`, classes in class order.
    public var jsonLine: JSONLine {
        JSONLine().adding("text", text).adding("label", label).adding("score", float: score)
            .adding("probs", floatsByKey: probs.map { ($0.label, $0.probability) })
    }
}

/// The predictions for the input lines, in input order.
public struct PredictReport: JSONLinesReport, Sendable {
    public var records: [PredictionRecord]
}

/// Classifies each line with the model's classifier head, naming classes by the stored
/// label names (or `labels`); written to `config.output` when given.
public func predict(_ config: LineRunConfig, labels: [String]? = nil, progress: StageProgress = SilentProgress()) throws -> PredictReport {
    var names: [String] = []
    let (model, lines, sequences) = try config.load(progress: progress) { model in
        names = try model.predictionLabels(given: labels, progress: progress)
    }
    var records = lines.map { PredictionRecord(text: $0, label: "", score: 0, probs: []) }
    try model.runBatched(sequences, batchSize: config.batchSize) { i, out, row, _ in
        let logits = out.logits!
        let L = logits.shape[1]
        let rowLogits = Tensor(shape: [1, L], data: Array(logits.data[(row * L)..<((row + 1) * L)]))
        let probs = softmaxRows(rowLogits).data
        let best = probs.indices.max { probs[$0] < probs[$1] }!
        records[i] = PredictionRecord(text: lines[i], label: names[best], score: probs[best],
                                      probs: zip(names, probs).map { (label: $0, probability: $1) })
    }
    let report = PredictReport(records: records)
    if let output = config.output { try writeAtomically(report.jsonLines(), to: output) }
    return report
}

// MARK: - evaluate

/// What `evaluate` scores.
public struct EvalConfig: Sendable {
    /// A model with a classification head.
    public var model: String
    /// A prepared dataset folder.
    public var data: String
    public var split: Split = .test
    /// Truncation length (default: the model's stored one, else 128 or its positions if fewer).
    public var maxLength: Int?
    public var batchSize = 32
    /// A teacher with the same labels: adds agreement and KL(teacher ‖ model).
    public var teacher: String?
    public var threads = 1
    /// Score only the split's first this many examples (nil: all).
    public var limit: Int?
    /// The head of a multi-task model to score (`--task`).
    public var task: String?

    /// A configuration; see the properties.
    public init(model: String, data: String, split: Split = .test, maxLength: Int? = nil, batchSize: Int = 32,
                teacher: String? = nil, threads: Int = 1) {
        self.model = model
        self.data = data
        self.split = split
        self.maxLength = maxLength
        self.batchSize = batchSize
        self.teacher = teacher
        self.threads = threads
    }
}

/// Precision, recall and F1 of one class.
public struct ClassScore: Codable, Sendable {
    public var label: String
    public var precision: Double
    public var recall: Double
    public var f1: Double
    public var support: Int
}

/// A classifier's scores on one split (and its fidelity to a teacher).
public struct EvalReport: Codable, Sendable {
    public var model: String
    public var data: String
    public var split: String
    public var examples: Int
    /// The truncation length used (the model's stored one unless --max-length overrode it).
    public var maxLength: Int
    public var accuracy: Double
    public var macroF1: Double
    public var labels: [String]
    public var perClass: [ClassScore]
    /// Rows: true label, columns: predicted.
    public var confusion: [[Int]]
    public var teacher: String?
    /// Top-1 agreement with the teacher.
    public var agreement: Double?
    /// Mean KL(teacher ‖ model) at T = 1, in nats.
    public var meanKL: Double?

    enum CodingKeys: String, CodingKey {
        case model, data, split, examples, maxLength = "max_length", accuracy, macroF1 = "macro_f1", labels, perClass = "per_class", confusion
        case teacher, agreement, meanKL = "mean_kl"
    }

    /// The report as a table: scores, per-class scores, confusion matrix.
    public var text: String {
        let w = max(5, labels.map(\.count).max() ?? 0)
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        func left(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
        var lines = ["\(model) on \(data) (\(split), \(examples) examples, max length \(maxLength))",
                     String(format: "accuracy  %.4f", accuracy), String(format: "macro-F1  %.4f", macroF1)]
        if let agreement, let meanKL, let teacher {
            lines += ["fidelity to \(teacher)", String(format: "agreement %.4f", agreement),
                      String(format: "mean KL   %.6f (teacher ‖ model, nats, T = 1)", meanKL)]
        }
        lines += ["", pad("label", w) + "  precision  recall      f1  support"]
        for c in perClass {
            lines.append(pad(c.label, w) + String(format: "  %9.4f  %6.4f  %6.4f  %7d", c.precision, c.recall, c.f1, c.support))
        }
        lines += ["", "confusion matrix (rows: true label, columns: predicted)"]
        let cw = max(6, labels.map(\.count).max() ?? 0, String(confusion.flatMap { $0 }.max() ?? 0).count)
        lines.append(pad("", w) + labels.map { "  " + left($0, cw) }.joined())
        for (name, row) in zip(labels, confusion) {
            lines.append(pad(name, w) + row.map { "  " + left(String($0), cw) }.joined())
        }
        return lines.joined(separator: "\n")
    }
}

/// Scores a classifier on a split of a prepared dataset (and its fidelity to `teacher`).
public func evaluate(_ config: EvalConfig, progress: StageProgress = SilentProgress()) throws -> EvalReport {
    try setComputeThreads(config.threads)
    try checkFlag(config.batchSize, in: 1...maximumBatchSize, flag: "--batch-size")
    let loaded = try InferenceModel(path: config.model, task: config.task)
    let names = try loaded.labelNames()
    let maxLength = try loaded.resolveMaxLength(config.maxLength, progress: progress)
    var teacherModel: InferenceModel?
    if let teacher = config.teacher {
        let t = try InferenceModel(path: teacher)
        let teacherNames = try t.labelNames()
        guard teacherNames == names else {
            throw StageError("\(teacher): the teacher's labels (\(teacherNames.joined(separator: ", "))) differ from \(config.model)'s (\(names.joined(separator: ", "))) — compare a student with the teacher it was distilled from")
        }
        try t.checkMaxLength(maxLength)
        teacherModel = t
    }
    let folder = try PreparedFolder(path: config.data)
    if let limit = config.limit { try checkFlag(limit, in: 1...Int.max, flag: "--eval-limit") }
    let rows = Array(try folder.read(config.split).prefix(config.limit ?? Int.max))
    guard !rows.isEmpty else { throw StageError("\(folder.filePath(config.split)): no examples to evaluate") }
    let truth = try labelIndices(rows, labels: names, file: folder.filePath(config.split), known: "the model \(config.model)")
    func logits(_ model: InferenceModel) throws -> [[Float]] {
        let sequences = rows.map { model.tokenizer.encode($0.text, maxLength: maxLength).ids }
        do {
            return try classifierLogits(encoder: model.encoder, sequences: sequences, batchSize: config.batchSize,
                                        paddingId: model.tokenizer.paddingId)
        } catch { throw StageError(file: model.path, error) }
    }
    let studentLogits = try logits(loaded)
    let m = ClassificationMetrics(truth: truth.map(Int.init), predicted: studentLogits.map(argmax), classCount: names.count)
    let fidelity = try teacherModel.map { FidelityMetrics(teacher: try logits($0), student: studentLogits) }
    return EvalReport(model: config.model, data: config.data, split: config.split.rawValue, examples: m.total, maxLength: maxLength, accuracy: m.accuracy,
                      macroF1: m.macroF1, labels: names,
                      perClass: zip(names, m.perClass).map {
                          ClassScore(label: $0, precision: $1.precision, recall: $1.recall, f1: $1.f1, support: $1.support)
                      },
                      confusion: m.confusion, teacher: fidelity == nil ? nil : config.teacher,
                      agreement: fidelity?.agreement, meanKL: fidelity?.meanKL)
}
