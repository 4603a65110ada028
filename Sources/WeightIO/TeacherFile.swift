// TeacherFile: Distillery's own self-contained HDF5 teacher file (format "distillery-teacher", version 1).
//
// Layout — it is itself a flat HF-named HDF5 file (`WeightLayout.hdf5Flat`):
//   /<HF PyTorch key>          float32 dataset per tensor, e.g. `encoder.layer.0.attention.self.query.weight`
//   /__vocab__                 uint8 dataset: the bytes of vocab.txt (one token per line)
//   root attributes            format = "distillery-teacher", format_version = 1,
//                              config_json (HF config.json text), every top-level scalar config
//                              key as its own attribute (int/double/string; bools as int 0/1),
//                              pooling ("mean" | "cls" | "none"), normalize (int 0/1),
//                              tokenizer_json (e.g. {"lowercase": true}), labels_json (optional)
// `write` goes to a temporary file in the destination directory and renames it into place,
// so a failed export never leaves a partial file. Reading goes straight into Float buffers.
// Left out on purpose: compression (weights do not compress; reading stays fast) and
// nested config keys as attributes (they live in config_json).

import DistilleryTensor
import DistilleryJSON
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Root attribute naming the file format.
let teacherFormatAttribute = "format"
/// Value of the `format` attribute in a teacher file.
let teacherFormatName = "distillery-teacher"
/// Root attribute holding the format version.
let teacherVersionAttribute = "format_version"
/// The newest teacher format version this build reads and the one it writes.
let teacherFormatVersion = 1
/// Dataset holding vocab.txt bytes.
let teacherVocabularyDataset = "__vocab__"

/// Root attributes with a fixed meaning; config keys of the same name are not copied over them.
private let reservedTeacherAttributes: Set<String> = [
    teacherFormatAttribute, teacherVersionAttribute, "config_json", "pooling", "normalize",
    "tokenizer_json", "labels_json",
]

/// A complete teacher: weights, HF config, vocabulary and sentence-embedding options in one HDF5 file.
public struct TeacherFile {
    /// Weights by HF PyTorch key (no `bert.` prefix), in file order.
    public var tensors: [(name: String, tensor: Tensor)]
    /// The HF `config.json` text, verbatim.
    public var configJSON: String
    /// WordPiece vocabulary, one entry per vocab.txt line (index = token id).
    public var vocabulary: [String]
    /// Sentence pooling: "mean", "cls" or "none".
    public var pooling: String
    /// Whether sentence embeddings are L2-normalized.
    public var normalize: Bool
    /// Tokenizer options as JSON, e.g. `{"lowercase": true}`.
    public var tokenizerOptionsJSON: String
    /// Classifier label names as a JSON array, when the teacher has a classification head.
    public var labelsJSON: String?

    /// Creates a teacher from its parts.
    public init(tensors: [(name: String, tensor: Tensor)], configJSON: String, vocabulary: [String],
                pooling: String, normalize: Bool, tokenizerOptionsJSON: String, labelsJSON: String? = nil) {
        self.tensors = tensors
        self.configJSON = configJSON
        self.vocabulary = vocabulary
        self.pooling = pooling
        self.normalize = normalize
        self.tokenizerOptionsJSON = tokenizerOptionsJSON
        self.labelsJSON = labelsJSON
    }

    /// True when `url` is an HDF5 file whose `format` attribute says "distillery-teacher".
    public static func isTeacherFile(_ url: URL) -> Bool {
        guard let file = try? HDF5File.open(url) else { return false }
        return (try? file.stringAttribute(teacherFormatAttribute)) == teacherFormatName
    }

    // MARK: Reading

    /// Reads a teacher file; fails with a hint to run `kd import` when it is not one.
    public static func read(_ url: URL) throws -> TeacherFile {
        let file = try HDF5File.open(url)
        let importHint = "convert the checkpoint with 'kd import' to get a Distillery teacher file"
        guard file.hasAttribute(teacherFormatAttribute) else {
            throw WeightIOError(.notThisFormat, file: url, object: teacherFormatAttribute,
                                "not a Distillery teacher file (no '\(teacherFormatAttribute)' attribute)", hint: importHint)
        }
        let format = try file.stringAttribute(teacherFormatAttribute)
        guard format == teacherFormatName else {
            throw WeightIOError(.notThisFormat, file: url, object: teacherFormatAttribute,
                                "format is '\(format)', expected '\(teacherFormatName)'", hint: importHint)
        }
        let version = try file.intAttribute(teacherVersionAttribute)
        guard version <= teacherFormatVersion else {
            throw WeightIOError(.unsupported, file: url, object: teacherVersionAttribute,
                                "format_version \(version) is newer than this build reads (≤ \(teacherFormatVersion))",
                                hint: "update kd, or re-run 'kd import' with this version")
        }
        var tensors: [(name: String, tensor: Tensor)] = []
        for path in try file.datasetPaths() where path != teacherVocabularyDataset {
            tensors.append((path, try file.readTensor(path)))
        }
        guard let vocabularyText = String(validating: try file.readBytes(teacherVocabularyDataset), as: UTF8.self) else {
            throw WeightIOError(.corrupt, file: url, object: teacherVocabularyDataset, "the stored vocabulary '\(teacherVocabularyDataset)' is not valid UTF-8",
                                hint: "the file is damaged; import the model again")
        }
        let configJSON = try file.stringAttribute("config_json")
        let vocabulary = vocabularyLines(vocabularyText)
        if case .int(let size)? = (try? JSONValue.parse(configJSON))?.objectValue?["vocab_size"], size != vocabulary.count {
            throw WeightIOError(.corrupt, file: url, object: teacherVocabularyDataset,
                                "the stored vocabulary has \(vocabulary.count) tokens but config_json's vocab_size is \(size)",
                                hint: "the file is damaged or was edited; import the model again")
        }
        return TeacherFile(
            tensors: tensors,
            configJSON: configJSON,
            vocabulary: vocabulary,
            pooling: try file.stringAttribute("pooling"),
            normalize: try file.intAttribute("normalize") != 0,
            tokenizerOptionsJSON: try file.stringAttribute("tokenizer_json"),
            labelsJSON: file.hasAttribute("labels_json") ? try file.stringAttribute("labels_json") : nil)
    }

    /// Splits vocab.txt like HF `load_vocab`: one token per "\n"-terminated line, empty lines kept.
    static func vocabularyLines(_ text: String) -> [String] {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        return lines
    }

    // MARK: Writing

    /// Writes the teacher through a partial sibling, fsynced and renamed on success (OutputFile).
    public func write(to url: URL) throws {
        let config = try parsedConfig(url)
        let output = OutputFile(url)
        do {
            let file = try HDF5File.create(output.temporaryURL)
            try file.setAttribute(teacherFormatAttribute, string: teacherFormatName)
            try file.setAttribute(teacherVersionAttribute, int: teacherFormatVersion)
            try file.setAttribute("config_json", string: configJSON)
            for key in config.keys.sorted() where !reservedTeacherAttributes.contains(key) {
                switch config[key]! {
                case .int(let v): try file.setAttribute(key, int: v)
                case .double(let v): try file.setAttribute(key, double: v)
                case .bool(let v): try file.setAttribute(key, int: v ? 1 : 0)
                case .string(let v): try file.setAttribute(key, string: v)
                case .null, .array, .object: continue   // nested values stay in config_json
                }
            }
            try file.setAttribute("pooling", string: pooling)
            try file.setAttribute("normalize", int: normalize ? 1 : 0)
            try file.setAttribute("tokenizer_json", string: tokenizerOptionsJSON)
            if let labelsJSON { try file.setAttribute("labels_json", string: labelsJSON) }
            try file.writeBytes(Array((vocabulary.map { $0 + "\n" }.joined()).utf8), at: teacherVocabularyDataset)
            for (name, tensor) in tensors { try file.writeTensor(tensor, at: name) }
            try file.close()
            try output.commit()
        } catch {
            output.abandon()
            if var error = error as? WeightIOError {
                error.path = url.path   // report the destination, not the temporary name
                throw error
            }
            throw error
        }
    }

    private func parsedConfig(_ url: URL) throws -> [String: JSONValue] {
        guard let value = try? JSONValue.parse(Data(configJSON.utf8)), case .object(let members) = value else {
            throw WeightIOError(.unsupported, file: url, object: "config_json",
                                "config_json is not a JSON object", hint: "pass the text of the model's HF config.json")
        }
        return members
    }
}
