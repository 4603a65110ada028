// ImportStage: HF checkpoints in, one Distillery model file out (`importModel`), and what a
// model file holds (`describeModel`, for `kd info`).
//
// A source is an HF model directory (config.json + model.safetensors or tf_model.h5 +
// vocab.txt, plus sentence-transformers' modules.json / 1_Pooling if present), a
// .safetensors file, an HDF5 file in flat, nested or tf_model.h5 layout, or a llama.cpp
// BERT GGUF (F32/F16/Q8_0/Q4_0, dequantized; `kd export --format gguf` or llama.cpp's
// converter); a Distillery file or our GGUF carries its own config, vocabulary and settings.
// A Distillery file keeps what it holds beyond the weights: the vocabulary a pruned one was
// pruned from (words are still segmented with it), its labels and its quantized weights.
// Loading is strict through the encoder itself (missing, unexpected or mis-shaped tensors
// are errors); a `BertForMaskedLM` checkpoint's `cls.predictions.*` head is checked by
// MaskedLMHead and stored with it. Left out on purpose: PyTorch .bin pickles (convert them
// to safetensors).
import DistilleryJSON
import DistilleryModel
import DistilleryTensor
import Export
import Foundation
import Tokenization
import WeightIO

/// What `importModel` converts.
public struct ImportConfig: Sendable {
    /// HF model directory, .safetensors or .h5 file.
    public var source: String
    /// The Distillery model file to write.
    public var out: String
    /// vocab.txt (nil: beside the weights, or the Distillery file's own).
    public var vocabulary: String?
    /// config.json (nil: beside the weights, or the Distillery file's own).
    public var config: String?
    /// Replace an input (the source .h5) with the output.
    public var force = false

    /// A configuration; see the properties.
    public init(source: String, out: String, vocabulary: String? = nil, config: String? = nil, force: Bool = false) {
        self.source = source
        self.out = out
        self.vocabulary = vocabulary
        self.config = config
        self.force = force
    }
}

/// What `importModel` read and wrote.
public struct ImportReport: Codable, Sendable {
    public var weights: String
    /// The weights' layout ("distillery", "flat", "nested", "keras", …).
    public var layout: String
    public var out: String
    public var layers: Int
    public var hiddenSize: Int
    public var heads: Int
    public var intermediateSize: Int
    public var vocabulary: Int
    public var tensors: Int
    public var parameters: Int
    /// "pooler", "classifier(N: a,b)".
    public var modelHeads: [String]
    public var pooling: String
    public var normalize: Bool
    /// Buffers in the source that are not weights.
    public var skipped: [String]

    /// The lines `kd import` prints.
    public var text: String {
        var lines = ["imported \(weights) [\(layout)] -> \(out)",
                     "  \(layers) layers, hidden \(hiddenSize), \(heads) heads, FFN \(intermediateSize), vocab \(vocabulary)",
                     "  \(tensors) tensors, \(parameters) parameters; heads: \(modelHeads.isEmpty ? "none" : modelHeads.joined(separator: ", ")); pooling \(pooling)\(normalize ? " + normalize" : "")"]
        if !skipped.isEmpty { lines.append("  skipped buffers: \(skipped.joined(separator: ", "))") }
        return lines.joined(separator: "\n")
    }
}

/// The files of an import: where the weights are, and the Distillery file they may be.
private struct ImportSources {
    let directory: URL
    let isDirectory: Bool
    let weightsPath: String

    init(_ source: String) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: source, isDirectory: &isDir) else {
            throw StageError("\(source): no such file or directory — give an HF model directory, a .safetensors or an .h5 file")
        }
        isDirectory = isDir.boolValue
        directory = isDirectory ? URL(fileURLWithPath: source) : URL(fileURLWithPath: source).deletingLastPathComponent()
        if isDirectory {
            let found = ["model.safetensors", "tf_model.h5", "model.h5"].lazy.compactMap { [directory] name -> String? in
                let p = directory.appendingPathComponent(name).path
                return FileManager.default.fileExists(atPath: p) ? p : nil
            }.first
            guard let found else {
                throw StageError("\(source): no model.safetensors, tf_model.h5 or model.h5 in the directory — PyTorch .bin checkpoints are not read; convert them to safetensors")
            }
            weightsPath = found
        } else {
            weightsPath = source
        }
    }

    /// A file beside the weights, if it exists.
    func sibling(_ name: String) -> String? {
        let p = directory.appendingPathComponent(name).path
        return FileManager.default.fileExists(atPath: p) ? p : nil
    }
}

/// Imports a BERT model into one Distillery .h5 file, validated through the encoder.
public func importModel(_ config: ImportConfig) throws -> ImportReport {
    try checkOutputPath(config.out, flag: "--out")
    let sources = try ImportSources(config.source)
    let weightsPath = sources.weightsPath
    try refuseInputsAsOutputs([(config.out, "--out")], inputs: [config.source, weightsPath, config.vocabulary, config.config],
                              force: config.force)
    // A Distillery file carries its config, vocabulary and settings; other sources
    // take them from files beside the weights or from the configuration.
    var stored: TeacherFile? = nil
    var tensorList: [(name: String, tensor: Tensor)]
    var layoutName: String
    var skipped: [String] = []
    let weightsURL = URL(fileURLWithPath: weightsPath)
    if !sources.isDirectory && (weightsURL.pathExtension.lowercased() == "gguf" || GGUFFile.hasMagic(weightsURL)) {
        let file = try importGGUF(weightsPath)
        (stored, tensorList, layoutName) = (file, file.tensors, "gguf")
    } else if !sources.isDirectory && TeacherFile.isTeacherFile(weightsURL) {
        let file: TeacherFile
        do { file = try TeacherFile.read(URL(fileURLWithPath: weightsPath)) } catch { throw StageError(file: weightsPath, error) }
        (stored, tensorList, layoutName) = (file, file.tensors, "distillery")
    } else {
        let weights: CanonicalWeights
        do { weights = try loadCanonicalWeights(from: URL(fileURLWithPath: weightsPath)) } catch {
            throw StageError(file: weightsPath, error)
        }
        (tensorList, layoutName, skipped) = (weights.tensors, weights.layout.rawValue, weights.skipped)
    }
    let (configText, bertConfig) = try importConfig(config, sources: sources, stored: stored)
    let (vocabulary, vocabSource) = try importVocabulary(config, sources: sources, stored: stored)
    guard vocabulary.count == bertConfig.vocabSize else {
        throw StageError("\(vocabSource): \(vocabulary.count) tokens but config vocab_size is \(bertConfig.vocabSize) — the vocabulary does not belong to this model")
    }
    var tokenizer = TokenizerOptions()
    if let stored {
        tokenizer = try TokenizerOptions.parse(stored.tokenizerOptionsJSON, source: weightsPath)
    } else if let path = sources.sibling("tokenizer_config.json"), let text = try? String(contentsOfFile: path, encoding: .utf8) {
        tokenizer = try TokenizerOptions.parse(text, source: path)
    }
    // A vocabulary-pruned Distillery file segments words with the vocabulary it was pruned
    // from; that vocabulary (and the stored labels and quantized weights) travels with the
    // weights unless `--vocab` replaces the vocabulary.
    let segmentation = config.vocabulary == nil ? stored?.segmentationVocabulary : nil
    _ = try tokenizer.makeTokenizer(vocabulary: vocabulary, segmentation: segmentation, source: vocabSource)
    var (pooling, normalize) = sentenceTransformersPooling(directory: sources.directory)
    if let stored { (pooling, normalize) = (PoolingMode(rawValue: stored.pooling) ?? .cls, stored.normalize) }
    // Strict validation through the model itself.
    var tensors: [String: Tensor] = [:]
    for (name, t) in tensorList {
        guard tensors[name] == nil else { throw StageError("\(weightsPath): tensor '\(name)' appears twice — the file is corrupt") }
        tensors[name] = t
    }
    // A BertForMaskedLM checkpoint: the head's tensors are checked by MaskedLMHead and stored beside the encoder's.
    let headTensors = tensors.filter { $0.key.hasPrefix(MaskedLMHead.prefix) }
    for name in headTensors.keys { tensors[name] = nil }
    let encoder: BertEncoder
    do { encoder = try BertEncoder(config: bertConfig, tensors: tensors) } catch { throw StageError(file: weightsPath, error) }
    var maskedLM: MaskedLMHead? = nil
    if !headTensors.isEmpty {
        guard let words = tensors["embeddings.word_embeddings.weight"] else { throw StageError("\(weightsPath): no word embeddings for the masked-LM head") }
        do { maskedLM = try MaskedLMHead(config: bertConfig, tensors: headTensors, wordEmbeddings: words) } catch {
            throw StageError(file: weightsPath, error)
        }
    }
    var file = TeacherFile(tensors: encoder.parameters + (maskedLM?.tensors ?? []), configJSON: configText, vocabulary: vocabulary,
                           pooling: pooling.rawValue, normalize: normalize, tokenizerOptionsJSON: tokenizer.json,
                           labelsJSON: config.config == nil ? stored?.labelsJSON : nil, segmentationVocabulary: segmentation)
    file.quantized = stored?.quantized ?? [:]
    do { try file.write(to: URL(fileURLWithPath: config.out)) } catch { throw StageError(file: config.out, error) }
    var heads: [String] = []
    if encoder.heads.pooler { heads.append("pooler") }
    if encoder.heads.classifierLabels > 0 { heads.append("classifier(\(encoder.heads.classifierLabels): \(bertConfig.labels.joined(separator: ",")))") }
    if let maskedLM { heads.append("masked-lm(\(maskedLM.tied ? "tied" : "untied") decoder)") }
    return ImportReport(weights: weightsPath, layout: layoutName, out: config.out, layers: bertConfig.layerCount,
                        hiddenSize: bertConfig.hiddenSize, heads: bertConfig.headCount, intermediateSize: bertConfig.intermediateSize,
                        vocabulary: vocabulary.count, tensors: encoder.parameters.count, parameters: encoder.parameterCount,
                        modelHeads: heads, pooling: pooling.rawValue, normalize: normalize, skipped: skipped)
}

/// A llama.cpp BERT GGUF (ours or llama.cpp's converter's) as the Distillery file it
/// imports to: dequantized tensors, config, vocabulary, tokenizer options and pooling.
private func importGGUF(_ path: String) throws -> TeacherFile {
    let model: GGUFBertModel
    do { model = try readGGUFBert(try GGUFFile.read(URL(fileURLWithPath: path)), source: path) } catch let error as ExportError {
        throw StageError(error.description)
    } catch { throw StageError(file: path, error) }
    let tokenizer = try TokenizerOptions.parse(model.tokenizerJSON, source: "\(path) (distillery.tokenizer_json)")
    return TeacherFile(tensors: model.tensors, configJSON: model.configJSON, vocabulary: model.vocabulary,
                       pooling: model.pooling, normalize: model.normalize, tokenizerOptionsJSON: tokenizer.json)
}

/// The config text and its parse: `config.config`, config.json beside the weights, or the
/// one stored in a Distillery file.
private func importConfig(_ config: ImportConfig, sources: ImportSources, stored: TeacherFile?) throws -> (String, BertConfig) {
    let configText: String, configSource: String
    if let path = config.config ?? (stored == nil ? sources.sibling("config.json") : nil) {
        try requireInputFile(path, what: "config file", flag: "--config")
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw StageError("\(path): cannot read config.json as UTF-8 text")
        }
        (configText, configSource) = (text, path)
    } else if let stored {
        (configText, configSource) = (stored.configJSON, "\(sources.weightsPath) (config_json)")
    } else if let text = try hdf5AttributeConfig(sources.weightsPath) {
        (configText, configSource) = (text, "\(sources.weightsPath) (root attributes)")
    } else {
        throw StageError("\(config.source): no config.json found beside the weights — pass --config path/to/config.json")
    }
    do { return (configText, try BertConfig(json: configText, source: configSource)) } catch { throw StageError(file: configSource, error) }
}

/// The HF config an HDF5 weight file carries as root attributes — a `config_json` string, or
/// one attribute per config key (as Distillery writes them beside it and some exporters do) —
/// as config.json text; nil for a file that is not HDF5 or has no `hidden_size` attribute.
func hdf5AttributeConfig(_ path: String) throws -> String? {
    guard let file = try? HDF5File.open(URL(fileURLWithPath: path)), file.hasAttribute("hidden_size") || file.hasAttribute("config_json") else {
        return nil
    }
    if file.hasAttribute("config_json") { return try? file.stringAttribute("config_json") }
    var members: [String: JSONValue] = [:]
    for name in try file.attributeNames() where !["format", "format_version"].contains(name) {
        if let v = try? file.intAttribute(name) { members[name] = .int(v) }
        else if let v = try? file.doubleAttribute(name) { members[name] = .double(v) }
        else if let v = try? file.stringAttribute(name) { members[name] = .string(v) }
        else if let v = try? file.stringArrayAttribute(name) { members[name] = .array(v.map { .string($0) }) }
    }
    return JSONValue.object(members).jsonText
}

/// The vocabulary and where it came from: `config.vocabulary`, vocab.txt beside the
/// weights, or the stored one.
private func importVocabulary(_ config: ImportConfig, sources: ImportSources, stored: TeacherFile?) throws -> ([String], String) {
    if let path = config.vocabulary ?? (stored == nil ? sources.sibling("vocab.txt") : nil) {
        try requireInputFile(path, what: "vocabulary file", flag: "--vocab")
        do { return (try WordPieceTokenizer.readVocabulary(URL(fileURLWithPath: path)), path) } catch { throw StageError(file: path, error) }
    } else if let stored {
        return (stored.vocabulary, sources.weightsPath)
    }
    throw StageError("\(config.source): no vocab.txt found beside the weights — pass --vocab path/to/vocab.txt")
}

/// Pooling from sentence-transformers' modules.json (+ 1_Pooling/config.json), if present.
/// Without sentence-transformers files a plain BERT embeds by its [CLS] state.
private func sentenceTransformersPooling(directory: URL) -> (PoolingMode, Bool) {
    guard let data = try? Data(contentsOf: directory.appendingPathComponent("modules.json")),
          let modules = (try? JSONValue.parse(data))?.arrayValue else {
        return (.cls, false)
    }
    var mode = PoolingMode.mean, normalize = false
    for module in modules {
        let m = module.objectValue ?? [:]
        let type = m["type"]?.stringValue ?? ""
        if type.hasSuffix("Normalize") { normalize = true }
        if type.hasSuffix("Pooling"), let path = m["path"]?.stringValue,
           let d = try? Data(contentsOf: directory.appendingPathComponent(path).appendingPathComponent("config.json")),
           let cfg = (try? JSONValue.parse(d))?.objectValue {
            mode = (cfg["pooling_mode_cls_token"]?.boolValue ?? false) ? .cls : .mean
        }
    }
    return (mode, normalize)
}

// MARK: - info

/// The inference settings a Distillery model carries (`kd info`, `kd info --json`).
public struct StoredSettings: Codable, Sendable {
    /// Classifier label names in class order (empty without a classifier).
    public var labels: [String]
    /// What the classifier reads: "mean" or "cls" (nil without a classifier).
    public var classifierPooling: String?
    /// How the classifier started ("probe", "random"; nil when not recorded).
    public var headInit: String?
    /// The maximum length it was trained at (nil when not recorded: 128 is used).
    public var maxLength: Int?
    /// Sentence-embedding pooling: "mean", "cls" or "none".
    public var pooling: String
    /// Whether sentence embeddings are L2-normalized.
    public var normalize: Bool
    /// A multi-task model's heads (nil for a single-head model).
    public var tasks: [TaskHead]? = nil

    enum CodingKeys: String, CodingKey {
        case labels, classifierPooling = "classifier_pooling", headInit = "head_init", maxLength = "max_length", pooling, normalize, tasks
    }
}

/// What a model file holds (`kd info`).
public struct ModelDescription: Codable, Sendable {
    /// One tensor: name, dtype, shape.
    public struct TensorEntry: Codable, Sendable {
        public var name: String
        public var dtype: String
        public var shape: [Int]
    }
    public var file: String
    /// "distillery-teacher" or the weights' layout.
    public var format: String
    /// File size in bytes.
    public var bytes: Int
    /// Parameters over all tensors.
    public var parameters: Int
    /// How many tensors the file holds.
    public var tensorCount: Int
    /// Architecture, labels, classifier, pooling lines (Distillery files only).
    public var details: [String]
    /// The stored inference settings (Distillery files only).
    public var settings: StoredSettings?
    /// Every tensor, when asked for (`kd info --tensors`).
    public var tensors: [TensorEntry]?
    public var skipped: [String]

    enum CodingKeys: String, CodingKey {
        case file, format, bytes, parameters, tensorCount = "tensor_count", details, settings, tensors, skipped
    }

    /// The description as `kd info` prints it.
    public var text: String {
        let kind = format == "distillery-teacher" ? format : "\(format) layout"
        var lines = ["file: \(file) (\(kind), \(formatBytes(bytes)))"] + details
        lines.append("parameters: \(parameters) in \(tensorCount) tensors\(tensors == nil ? " (list them with --tensors)" : "")")
        let width = tensors?.map(\.name.count).max() ?? 10
        for t in tensors ?? [] {
            lines.append("  \(t.name.padding(toLength: width, withPad: " ", startingAt: 0))  \(t.dtype)  \(describeShape(t.shape))")
        }
        if !skipped.isEmpty { lines.append("skipped buffers: \(skipped.joined(separator: ", "))") }
        return lines.joined(separator: "\n")
    }
}

/// Describes a Distillery model file, or any source `importModel` reads; every tensor
/// only when `listTensors`.
public func describeModel(_ path: String, listTensors: Bool = false) throws -> ModelDescription {
    guard FileManager.default.fileExists(atPath: path) else {
        throw StageError("\(path): no such file — check the path")
    }
    let url = URL(fileURLWithPath: path)
    let size = fileSize(path)
    func entries(_ tensors: [(name: String, tensor: Tensor)]) -> [ModelDescription.TensorEntry]? {
        listTensors ? tensors.map { .init(name: $0.name, dtype: "float32", shape: $0.tensor.shape) } : nil
    }
    func count(_ tensors: [(name: String, tensor: Tensor)]) -> Int { tensors.reduce(0) { $0 + $1.tensor.shape.reduce(1, *) } }
    if url.pathExtension.lowercased() == "gguf" || GGUFFile.hasMagic(url) {
        let file: GGUFFile
        do { file = try GGUFFile.read(url) } catch { throw StageError(file: path, error) }
        let details = ["architecture: \(file["general.architecture"]?.stringValue ?? "?"), \(file["bert.block_count"]?.intValue ?? 0) layers, hidden \(file["bert.embedding_length"]?.intValue ?? 0), types \(Set(file.tensors.map(\.type.name)).sorted().joined(separator: "/"))"]
        let entries = listTensors ? file.tensors.map { ModelDescription.TensorEntry(name: $0.name, dtype: $0.type.name, shape: $0.shape) } : nil
        return ModelDescription(file: path, format: "gguf v\(file.version)", bytes: size, parameters: file.tensors.reduce(0) { $0 + $1.count },
                                tensorCount: file.tensors.count, details: details, settings: nil, tensors: entries, skipped: [])
    }
    guard TeacherFile.isTeacherFile(url) else {
        let w: CanonicalWeights
        do { w = try loadCanonicalWeights(from: url) } catch { throw StageError(file: path, error) }
        return ModelDescription(file: path, format: w.layout.rawValue, bytes: size, parameters: count(w.tensors), tensorCount: w.tensors.count,
                                details: [], settings: nil, tensors: entries(w.tensors), skipped: w.skipped)
    }
    if let student = try BiGRUBundle(loading: path) { return try describeBiGRU(student, path: path, bytes: size, listTensors: listTensors) }
    // Quantized weights stay quantized (their fp32 copies are not needed here), except for
    // the tensor list, which names every weight in file order.
    let bundle = try ModelBundle(path: path, keepTasks: true, weights: listTensors ? .dequantized : .quantizedKept)
    let (t, config) = (bundle.file, bundle.config)
    let onlyQuantized = t.quantized.filter { name, _ in !t.tensors.contains { $0.name == name } }
    func storedEntries(_ tensors: [(name: String, tensor: Tensor)]) -> [ModelDescription.TensorEntry]? {
        listTensors ? tensors.map { .init(name: $0.name, dtype: t.quantized[$0.name]?.format.description ?? "float32", shape: $0.tensor.shape) } : nil
    }
    do {
        _ = try validateBertParameters(config, tensors: bundle.encoderTensors,
                                       storedElsewhere: onlyQuantized.mapValues { [$0.rows, $0.columns] })
    } catch { throw StageError(file: path, error) }
    var details = ["architecture: BERT encoder, \(config.layerCount) layers, hidden \(config.hiddenSize), heads \(config.layerHeads.map(String.init).joined(separator: "/")), FFN \(config.layerIntermediateSizes.map(String.init).joined(separator: "/")), positions \(config.maxPositions), vocab \(config.vocabSize)"]
    if !config.labels.isEmpty { details.append("labels: \(config.labels.joined(separator: ", "))") }
    for head in t.tasks {
        details.append("task \(head.name): \(head.labels.count) labels (\(head.labels.joined(separator: ", "))), max length \(head.maxLength.map(String.init) ?? "not stored") — kd eval/predict --task \(head.name)")
    }
    if !t.tasks.isEmpty {
        details.append("classifiers: \(t.tasks.count) task heads on \(config.classifierPooling == .mean ? "the mean of the last hidden states (no pooler)" : "the tanh pooler over [CLS]"), one shared encoder")
    } else if bundle.hasClassifier {
        details.append("classifier: on \(config.classifierPooling == .mean ? "the mean of the last hidden states (no pooler)" : "the tanh pooler over [CLS]")\(bundle.storedHeadInit.map { "; head start \($0)" } ?? "")")
    } else {
        details.append("a new classifier (kd finetune) would read \(bundle.defaultClassifierPooling == .mean ? "the mean of the last hidden states (as this encoder pools)" : "the tanh pooler over [CLS]") and start as a linear probe")
    }
    if bundle.hasMaskedLMHead {
        let head = try bundle.maskedLMHead()
        details.append("masked-LM head: cls.predictions.* (BertForMaskedLM), \(head.tied ? "decoder tied to the word embeddings" : "its own decoder weight") — kd eval --pseudo-perplexity")
    }
    details.append("max length: \(bundle.storedMaxLength.map { "\($0) (stored; eval, predict, embed and label use it)" } ?? "not stored (128 is used)")")
    if !t.quantized.isEmpty { details.append(quantizationSummary(t)) }
    if let original = t.segmentationVocabulary {
        details.append("vocabulary: pruned to \(t.vocabulary.count) of \(original.count) tokens (words are segmented with the original vocabulary; dropped pieces read as [UNK])")
    }
    details.append("pooling: \(t.pooling)\(t.normalize ? " + L2 normalize" : ""); tokenizer: \(t.tokenizerOptionsJSON)")
    var settings = StoredSettings(labels: config.labels, classifierPooling: bundle.hasClassifier || !t.tasks.isEmpty ? config.classifierPooling.rawValue : nil,
                                  headInit: bundle.storedHeadInit, maxLength: bundle.storedMaxLength, pooling: t.pooling, normalize: t.normalize)
    settings.tasks = t.tasks.isEmpty ? nil : t.tasks
    let parameters = count(t.tensors) + onlyQuantized.values.reduce(0) { $0 + $1.rows * $1.columns }
    return ModelDescription(file: path, format: "distillery-teacher", bytes: size, parameters: parameters, tensorCount: t.tensors.count + onlyQuantized.count,
                            details: details, settings: settings, tensors: storedEntries(t.tensors), skipped: [])
}

/// "quantized: 37 tensors (36 × int8, 1 × …), 8.08 bits per quantized weight; 8.2 bits per parameter overall".
func quantizationSummary(_ t: TeacherFile) -> String {
    var byFormat: [String: Int] = [:]
    var quantizedBits = 0.0, quantizedCount = 0
    for q in t.quantized.values {
        byFormat[q.format.description, default: 0] += 1
        quantizedBits += Double(q.storedBytes * 8)
        quantizedCount += q.rows * q.columns
    }
    let total = t.tensors.reduce(0) { $0 + (t.quantized[$1.name] == nil ? $1.tensor.count : 0) } + quantizedCount
    let overall = (quantizedBits + Double((total - quantizedCount) * 32)) / Double(max(1, total))
    let formats = byFormat.keys.sorted().map { "\(byFormat[$0]!) × \($0)" }.joined(separator: ", ")
    let statics = t.quantized.values.contains { $0.inputScale != nil } ? "; int8 activations with static scales" : ""
    return String(format: "quantized: %d tensors (%@), %.2f bits per quantized weight; %.2f bits per parameter overall%@; kernels %@",
                  t.quantized.count, formats, quantizedBits / Double(max(1, quantizedCount)), overall, statics, quantizedKernelPath)
}
