// ModelBundle: a Distillery model file (format `distillery-teacher`) loaded as one value —
// weights, parsed config, tokenizer, pooling and head — and what the stages build from it:
// an encoder for inference (`InferenceModel`, with batched runs over token sequences), the
// start of fine-tuning (the encoder plus a fresh seeded classification head), and the HF
// config.json of a model with a new head or a student's sizes.
//
// Errors name the file and say what to do (re-import, fine-tune first). Left out on
// purpose: loading anything but a Distillery file here (`importModel` converts HF sources).
import DistilleryJSON
import DistilleryModel
import DistilleryTensor
import DistilleryTraining
import Foundation
import Tokenization
import WeightIO

/// Tokenizer settings stored with a model (HF `tokenizer_config.json` keys).
public struct TokenizerOptions: Codable, Sendable {
    public var lowercase: Bool = true
    public var stripAccents: Bool? = nil
    public var tokenizeChineseChars: Bool = true

    enum CodingKeys: String, CodingKey {
        case lowercase = "do_lower_case", stripAccents = "strip_accents", tokenizeChineseChars = "tokenize_chinese_chars"
    }

    /// HF BertTokenizer's defaults.
    public init() {}

    /// Reads the keys that are present, HF's defaults for the others.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        lowercase = try c.decodeIfPresent(Bool.self, forKey: .lowercase) ?? true
        stripAccents = try c.decodeIfPresent(Bool.self, forKey: .stripAccents)
        tokenizeChineseChars = try c.decodeIfPresent(Bool.self, forKey: .tokenizeChineseChars) ?? true
    }

    /// JSON with sorted keys, so the same options always give the same file bytes.
    public var json: String { (try? JSONCoding.string(self)) ?? "{}" }

    /// Parses stored or HF tokenizer options; `source` names the file in errors.
    public static func parse(_ text: String, source: String) throws -> TokenizerOptions {
        do { return try JSONCoding.decode(TokenizerOptions.self, from: text) } catch {
            throw StageError("\(source): tokenizer options are not valid JSON (\(error)) — re-import the model")
        }
    }

    /// A WordPiece tokenizer over `vocabulary` with these options.
    /// `segmentation` is the original vocabulary of a pruned one (see `WordPieceTokenizer`).
    public func makeTokenizer(vocabulary: [String], segmentation: [String]? = nil, source: String) throws -> WordPieceTokenizer {
        do {
            return try WordPieceTokenizer(vocabulary: vocabulary, segmentationVocabulary: segmentation, source: source,
                                          lowercase: lowercase, stripAccents: stripAccents, tokenizeChineseChars: tokenizeChineseChars)
        } catch { throw StageError(file: source, error) }
    }
}

/// A Distillery model file with its parsed config and tokenizer.
public struct ModelBundle {
    /// Where the file was read from (as given, for messages).
    public let path: String
    /// The file's contents: tensors, config text, vocabulary, settings.
    public let file: TeacherFile
    public let config: BertConfig
    public let tokenizer: WordPieceTokenizer

    /// Reads and checks a model file; errors say how to make one (`kd import`).
    ///
    /// A multi-task model (task heads, TaskHeads.swift) loads as the single-head model of
    /// `task`; without `task` it is refused with its task list, unless `keepTasks` (then the
    /// bundle holds the shared encoder and every head, for `kd info`). `weights` says where
    /// the weights go (`TeacherFile.WeightLoading`; an inference load, `InferenceModel`,
    /// keeps quantized weights quantized and reads fp32 ones into place).
    public init(path: String, task: String? = nil, keepTasks: Bool = false,
                weights: TeacherFile.WeightLoading = .dequantized) throws {
        self.path = path
        guard FileManager.default.fileExists(atPath: path) else {
            throw StageError("\(path): no such file — import a model first with 'kd import SRC --out \(path)'")
        }
        var file: TeacherFile
        do { file = try TeacherFile.read(URL(fileURLWithPath: path), weights: weights) } catch {
            let message = StageError(file: path, error).description
            throw StageError(message.contains("kd import") ? message
                             : "\(message) (--model takes a Distillery model file; convert weights with 'kd import SRC --out model.h5')")
        }
        if let task {
            do { file = try Self.taskModel(file, task: task, path: path) } catch let error as StageError { throw error } catch {
                throw StageError(file: path, error)
            }
        } else if !file.tasks.isEmpty && !keepTasks {
            throw StageError("\(path): is a multi-task model with \(file.tasks.count) heads (\(file.tasks.map(\.name).joined(separator: ", "))) — pass --task NAME to pick one")
        }
        self.file = file
        if BiGRUConfig.matches(json: file.configJSON) {
            throw StageError("\(path): is a BiGRU student — this command takes a BERT model (kd info, embed, predict, eval and bench latency run BiGRU students)")
        }
        do { config = try BertConfig(json: file.configJSON, source: "\(path) (config_json)") } catch {
            throw StageError(file: path, error)
        }
        tokenizer = try TokenizerOptions.parse(file.tokenizerOptionsJSON, source: path)
            .makeTokenizer(vocabulary: file.vocabulary, segmentation: file.segmentationVocabulary, source: path)
    }

    /// How the model embeds a sentence (sentence-transformers pooling; mean when unknown).
    public var pooling: PoolingMode { PoolingMode(rawValue: file.pooling) ?? .mean }
    /// Whether embeddings are L2-normalized.
    public var normalize: Bool { file.normalize }
    /// The encoder's (and classifier's) tensors by name — a masked-LM head's are left out (``maskedLMHead()``).
    public var tensors: [String: Tensor] {
        Dictionary(file.tensors.filter { !$0.name.hasPrefix(MaskedLMHead.prefix) }.map { ($0.name, $0.tensor) },
                   uniquingKeysWith: { _, last in last })
    }
    /// Whether the file carries a masked-LM head (`cls.predictions.*`, from a `BertForMaskedLM` import).
    public var hasMaskedLMHead: Bool { file.tensors.contains { $0.name.hasPrefix(MaskedLMHead.prefix) } }

    /// The masked-LM head; errors say which models have one.
    public func maskedLMHead() throws -> MaskedLMHead {
        guard hasMaskedLMHead else {
            throw StageError("\(path): has no masked-LM head (cls.predictions.*) — pseudo-perplexity needs a model imported from a BertForMaskedLM checkpoint (kd import DIR with model.safetensors holding cls.predictions.*); sentence encoders such as all-MiniLM-L6-v2 and fine-tuned classifiers have none")
        }
        let head = Dictionary(file.tensors.filter { $0.name.hasPrefix(MaskedLMHead.prefix) }.map { ($0.name, $0.tensor) },
                              uniquingKeysWith: { _, last in last })
        let wordTable = "embeddings.word_embeddings.weight"
        guard let words = tensors[wordTable] ?? file.quantized[wordTable]?.dequantized() else {
            throw StageError("\(path): no tensor 'embeddings.word_embeddings.weight' for the masked-LM decoder — re-import the model")
        }
        do { return try MaskedLMHead(config: config, tensors: head, wordEmbeddings: words) } catch { throw StageError(file: path, error) }
    }
    /// Whether the file carries a classifier head.
    public var hasClassifier: Bool { file.tensors.contains { $0.name == "classifier.weight" } }
    /// The tensors of the shared encoder (without a multi-task model's `tasks.*` heads).
    public var encoderTensors: [String: Tensor] { tensors.filter { !$0.key.hasPrefix("tasks.") } }

    /// The encoder (with its heads) built from the file's tensors; quantized weights run
    /// their quantized kernels. `inferenceOnly`: the encoder's block lets go of the weights
    /// its matrices hold (`BertEncoder(config:consuming:quantized:inferenceOnly:)`).
    public func makeEncoder(inferenceOnly: Bool = false) throws -> BertEncoder {
        do { return try BertEncoder(config: config, consuming: tensors, quantized: file.quantized, inferenceOnly: inferenceOnly) } catch {
            throw StageError(file: path, error)
        }
    }

    /// `file` as the single-head model of `task`: that head as `classifier.*`, its labels in
    /// config_json (`id2label`) and its maximum length as the stored one.
    static func taskModel(_ file: TeacherFile, task: String, path: String) throws -> TeacherFile {
        var out = try file.selectingTask(task, url: URL(fileURLWithPath: path))
        let head = file.task(named: task)
        guard var object = (try? JSONValue.parse(out.configJSON))?.objectValue else {
            throw StageError("\(path): config_json is not a JSON object — re-import the model")
        }
        if let n = head?.maxLength { object[StoredSettingKey.maxLength] = .int(n) }
        out.configJSON = try withClassifier(object, labels: head?.labels ?? [])
        return out
    }

    /// A Distillery file with new tensors and config, keeping this model's vocabulary,
    /// tokenizer and pooling settings (what fine-tuning and distillation write).
    func derived(tensors: [(name: String, tensor: Tensor)], configJSON: String, labels: [String]) throws -> TeacherFile {
        TeacherFile(tensors: tensors, configJSON: configJSON, vocabulary: file.vocabulary, pooling: file.pooling,
                    normalize: file.normalize, tokenizerOptionsJSON: file.tokenizerOptionsJSON,
                    labelsJSON: try JSONCoding.string(labels), segmentationVocabulary: file.segmentationVocabulary)
    }
}

/// A model ready for inference: a BERT encoder or a BiGRU student, behind one
/// `SequenceEncoder`, with what the inference stages read from the file.
///
/// Only the encoder keeps weights, so a loaded model is not resident twice or three times
/// over: a BERT file's fp32 tensors are read from the file straight into the encoder's
/// parameter block (`TeacherFile.floatSource`; a BiGRU student's are dropped once the
/// encoder holds them), quantized weights are never dequantized (the encoder runs them,
/// embedding tables included, from their quantized storage), and the parameter block keeps
/// no copy of the weights its matrices hold.
public struct InferenceModel {
    /// The file's settings and vocabulary; its `tensors` and `quantized` are empty.
    public let file: TeacherFile
    /// Scalar parameters of the encoder and its heads (quantized weights counted as their fp32 shapes).
    public let parameterCount: Int
    public let path: String
    public let tokenizer: WordPieceTokenizer
    public let encoder: any SequenceEncoder
    /// Longest input the model takes.
    public let maxPositions: Int
    public let vocabSize: Int
    /// Stored class names (empty when none).
    public let labels: [String]
    /// One line on the architecture, e.g. "6 layers, hidden 384" or "BiGRU 1 layer, hidden 256".
    public let summary: String

    /// Loads `path` and builds its encoder: a BiGRU student when its config says
    /// `"distillery_architecture": "bigru"`, else a BERT encoder — for a multi-task model,
    /// the head of `task` (required there, refused elsewhere).
    public init(path: String, task: String? = nil) throws {
        if let student = try BiGRUBundle(loading: path) {
            if let task { throw StageError("\(path): --task '\(task)': a BiGRU student has one classifier, not task heads — leave out --task") }
            (file, self.path, tokenizer) = (student.file.withoutWeights, path, student.tokenizer)
            parameterCount = student.file.tensors.reduce(0) { $0 + $1.tensor.count }
            let config = student.config
            do { encoder = try BiGRUEncoder(config: config, tensors: student.tensors) } catch { throw StageError(file: path, error) }
            (maxPositions, vocabSize, labels) = (config.maxPositions, config.vocabSize, config.labels)
            summary = "BiGRU \(config.layers) layer\(config.layers == 1 ? "" : "s"), hidden \(config.hiddenSize) per direction, embeddings \(config.embeddingSize)"
            return
        }
        var bundle: ModelBundle? = try ModelBundle(path: path, task: task, weights: .inPlace)
        let config = bundle!.config, quantized = bundle!.file.quantized
        // fp32 tensors are read from the file into the encoder's block (a multi-task file's
        // are loaded already: the source drains them, freeing each once copied).
        let source = bundle!.file.floatSource?.filter { !$0.hasPrefix(MaskedLMHead.prefix) } ?? .draining(bundle!.tensors)
        (file, self.path, tokenizer) = (bundle!.file.withoutWeights, path, bundle!.tokenizer)
        parameterCount = source.shapes.values.reduce(0) { $0 + $1.reduce(1, *) } + quantized.values.reduce(0) { $0 + $1.rows * $1.columns }
        bundle = nil   // the source now holds the only references to loaded tensors
        do { encoder = try BertEncoder(config: config, source: source, quantized: quantized) } catch { throw StageError(file: path, error) }
        (maxPositions, vocabSize, labels) = (config.maxPositions, config.vocabSize, config.labels)
        summary = "\(config.layerCount) layers, hidden \(config.hiddenSize)"
    }

    /// The maximum length stored by `kd finetune` / `kd distill`, when there is one.
    public var storedMaxLength: Int? {
        (try? JSONValue.parse(file.configJSON))?.objectValue?[StoredSettingKey.maxLength]?.intValue
    }
    /// How the model embeds a sentence (sentence-transformers pooling; mean when unknown).
    public var pooling: PoolingMode { PoolingMode(rawValue: file.pooling) ?? .mean }
    /// Whether embeddings are L2-normalized.
    public var normalize: Bool { file.normalize }

    /// `maxLength`, else the stored length, else 128 — as `ModelBundle.resolveMaxLength`.
    public func resolveMaxLength(_ maxLength: Int?, progress: StageProgress) throws -> Int {
        try resolvedMaxLength(maxLength, stored: storedMaxLength, positions: maxPositions, path: path, progress: progress)
    }

    /// Label names of the classifier head, or an error naming the file (`hint` says what to do).
    public func labelNames(hint: String = "fine-tune it first (kd finetune)") throws -> [String] {
        let classes = encoder.classifierLabels
        guard classes > 0 else { throw StageError("\(path): the model has no classifier head — \(hint)") }
        return labels.count == classes ? labels : (0..<classes).map { "LABEL_\($0)" }
    }

    /// Checks a maximum length: room for [CLS] and [SEP], within the model's positions.
    public func checkMaxLength(_ maxLength: Int) throws {
        guard maxLength >= 2 else { throw StageError.usage("--max-length \(maxLength) is too small — it must leave room for [CLS] and [SEP]") }
        guard maxLength <= maxPositions else {
            throw StageError.usage("--max-length \(maxLength) exceeds the model's \(maxPositions) positions — use at most \(maxPositions)")
        }
    }

    /// Tokenizes lines (or parses pretokenized id lines) into sequences of at most `maxLength`.
    public func encodeLines(_ lines: [String], maxLength: Int, pretokenized: Bool, source: String) throws -> [[Int32]] {
        let limit = min(maxLength, maxPositions)
        guard pretokenized else { return lines.map { tokenizer.encode($0, maxLength: limit).ids } }
        return try lines.enumerated().map { i, line in
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            let ids = try parts.map { p -> Int32 in
                guard let v = Int32(p), v >= 0, Int(v) < vocabSize else {
                    throw StageError("\(source):\(i + 1): '\(p)' is not a token id in 0..<\(vocabSize) — with --pretokenized each line is space-separated ids")
                }
                return v
            }
            guard ids.count <= limit else {
                throw StageError("\(source):\(i + 1): \(ids.count) ids exceed the maximum length \(limit) — shorten the line or raise --max-length (model limit \(maxPositions))")
            }
            return ids
        }
    }

    /// Runs the encoder over sequences in length-sorted batches and hands each result back
    /// in input order: `body(index, output, rowInBatch, batch)`.
    public func runBatched(_ sequences: [[Int32]], batchSize: Int,
                           _ body: (Int, EncoderOutput, Int, EncoderBatch) throws -> Void) throws {
        let order = sequences.indices.sorted { sequences[$0].count < sequences[$1].count }
        for start in stride(from: 0, to: order.count, by: batchSize) {
            let chunk = Array(order[start..<min(start + batchSize, order.count)])
            let T = chunk.map { sequences[$0].count }.max()!
            var ids = [Int32](repeating: Int32(tokenizer.paddingId), count: chunk.count * T)
            var mask = [Int32](repeating: 0, count: chunk.count * T)
            for (row, i) in chunk.enumerated() {
                for (t, id) in sequences[i].enumerated() { ids[row * T + t] = id; mask[row * T + t] = 1 }
            }
            let batch = EncoderBatch(ids: ids, mask: mask, batchSize: chunk.count, sequenceLength: T)
            let out: EncoderOutput
            do { out = try encoder.encode(batch) } catch { throw StageError(file: path, error) }
            for (row, i) in chunk.enumerated() { try body(i, out, row, batch) }
        }
    }
}

/// Where fine-tuning starts: the teacher's encoder (and pooler, when it has one and the
/// classifier reads [CLS]) plus a fresh seeded classification head, as one parameter block.
public struct ClassifierStart {
    /// The teacher's config with `labels` (and the classifier pooling) set.
    public let config: BertConfig
    /// The teacher's tensors without any old classifier (what the run fingerprint covers).
    public let encoderTensors: [(name: String, tensor: Tensor)]
    public let model: BertModel
    public let parameters: ParameterBlock
}

extension ModelBundle {
    /// The model with a new `labels.count`-way head initialized from `seed`; `pooling`
    /// overrides what the classifier reads (default: `defaultClassifierPooling`, the way the
    /// encoder was trained to pool). A mean-pooling head drops the teacher's pooler.
    public func classifierStart(labels: [String], seed: UInt64, pooling: PoolingMode? = nil) throws -> ClassifierStart {
        var config = self.config
        config.labels = labels
        config.classifierPooling = pooling ?? defaultClassifierPooling
        let usesPooler = config.classifierPooling == .cls
        let encoderTensors = file.tensors.filter { !$0.name.hasPrefix("classifier.") && (usesPooler || !$0.name.hasPrefix("pooler.")) }
        var tensors = Dictionary(uniqueKeysWithValues: encoderTensors.map { ($0.name, $0.tensor) })
        let needsPooler = usesPooler && tensors["pooler.dense.weight"] == nil
        for (name, t) in freshHeadTensors(hiddenSize: config.hiddenSize, classes: labels.count, seed: seed, pooler: needsPooler) {
            tensors[name] = t
        }
        do {
            let model = try BertModel(config: config, classes: labels.count)
            let parameters = try ParameterBlock(layout: model.layout, tensors: tensors)
            return ClassifierStart(config: config, encoderTensors: encoderTensors, model: model, parameters: parameters)
        } catch { throw StageError(file: path, error) }
    }

    /// The model's config.json with a classification head over `labels` (`id2label`,
    /// `label2id`, architecture; `pooling` when given) and the settings inference reads
    /// back: the maximum length trained at and how the head started.
    func classifierConfigJSON(labels: [String], pooling: PoolingMode? = nil, maxLength: Int, headInit: HeadInit) throws -> String {
        guard var object = (try? JSONValue.parse(file.configJSON))?.objectValue else {
            throw StageError("the model's config_json is not a JSON object — re-import the model")
        }
        if let pooling { object["distillery_classifier_pooling"] = pooling == .cls ? nil : .string(pooling.rawValue) }
        object[StoredSettingKey.maxLength] = .int(maxLength)
        object[StoredSettingKey.headInit] = .string(headInit.rawValue)
        return try Self.withClassifier(object, labels: labels)
    }

    /// A student's config.json: this teacher's, with the student's sizes, the task's labels
    /// and the maximum length it was distilled at (the teacher's head start does not apply).
    func studentConfigJSON(student: BertConfig, labels: [String], maxLength: Int) throws -> String {
        guard var object = (try? JSONValue.parse(file.configJSON))?.objectValue else {
            throw StageError("the teacher's config_json is not a JSON object — re-import the teacher")
        }
        object[StoredSettingKey.maxLength] = .int(maxLength)
        object[StoredSettingKey.headInit] = nil
        object["hidden_size"] = .int(student.hiddenSize)
        object["num_hidden_layers"] = .int(student.layerCount)
        object["num_attention_heads"] = .int(student.headCount)
        object["intermediate_size"] = .int(student.intermediateSize)
        object["distillery_layer_heads"] = nil
        object["distillery_layer_intermediate_sizes"] = nil
        if Set(student.layerHeads) != [student.headCount] {
            object["distillery_layer_heads"] = .array(student.layerHeads.map(JSONValue.int))
        }
        if Set(student.layerIntermediateSizes) != [student.intermediateSize] {
            object["distillery_layer_intermediate_sizes"] = .array(student.layerIntermediateSizes.map(JSONValue.int))
        }
        return try Self.withClassifier(object, labels: labels)
    }

    /// `object` with the classifier keys HF's BertForSequenceClassification reads, as pretty JSON.
    static func withClassifier(_ object: [String: JSONValue], labels: [String]) throws -> String {
        var object = object
        object["id2label"] = .object(Dictionary(uniqueKeysWithValues: labels.enumerated().map { (String($0), .string($1)) }))
        object["label2id"] = .object(Dictionary(uniqueKeysWithValues: labels.enumerated().map { ($1, .int($0)) }))
        object["architectures"] = .array([.string("BertForSequenceClassification")])
        return try JSONCoding.string(JSONValue.object(object), pretty: true)
    }
}
