// TeacherFile: Distillery's own self-contained HDF5 teacher file (format "distillery-teacher",
// version 1; version 2 when it holds quantized tensors or the segmentation vocabulary of a
// pruned vocabulary).
//
// Layout — it is itself a flat HF-named HDF5 file (`WeightLayout.hdf5Flat`):
//   /<HF PyTorch key>          float32 dataset per tensor, e.g. `encoder.layer.0.attention.self.query.weight`
//   /__vocab__                 uint8 dataset: the bytes of vocab.txt (one token per line)
//   /__vocab_segmentation__    optional uint8 dataset, after vocabulary pruning: the original
//                              vocab.txt that words are segmented with (kept pieces map to
//                              their __vocab__ id, dropped ones to [UNK])
//   root attributes            format = "distillery-teacher", format_version = 1,
//                              config_json (HF config.json text), every top-level scalar config
//                              key as its own attribute (int/double/string; bools as int 0/1),
//                              pooling ("mean" | "cls" | "none"), normalize (int 0/1),
//                              tokenizer_json (e.g. {"lowercase": true}), labels_json (optional)
// Version 2 adds quantized weights (`kd quantize`; QuantizedTensor.swift has the formats):
//   /<HF key>                  uint8 [rows, bytes per row] (int8, int4 nibbles) or uint16 [rows, columns]
//                              (bf16), attributes quantization ("int8", "int4-g32-sym", "bf16", …),
//                              columns (the weight's), input_scale (int8-static only)
//   /<HF key>.scales           int8: float32 [rows]; int4: uint16 fp16 bits [rows, columns/group]
//   /<HF key>.zeros            asymmetric int4: uint8 [rows, columns/group]
// Quantized tensors are checked when read (shapes, scales finite and positive, zero points)
// and dequantized into `tensors`, so every fp32 consumer (fine-tuning, a distillation
// teacher) reads any file; `quantized` keeps the stored form for the kernels. A file without
// quantized tensors is still written as version 1, which older builds read.
// Version 3 adds multi-task heads (`kd distill --task`; TaskHeads.swift has the layout):
//   /tasks.<name>.classifier.weight|bias   one classifier per task, no /classifier.*
//   root attribute tasks_json              [{"name", "labels", "max_length"}] in head order
// Only files with task heads are written as version 3; older builds refuse them by version.
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
/// The newest teacher format version this build reads; written when a file holds task heads,
/// so older builds refuse it clearly.
let teacherFormatVersion = 3
/// The version written when a file holds quantized tensors or a segmentation vocabulary
/// (and no task heads).
let teacherQuantizedFormatVersion = 2
/// The version written otherwise.
let teacherFloatFormatVersion = 1
/// Attribute of a quantized weight's dataset naming its format.
let quantizationAttribute = "quantization"
/// Suffixes of a quantized weight's scale and zero-point datasets.
let quantizedScalesSuffix = ".scales", quantizedZerosSuffix = ".zeros"
/// Dataset holding vocab.txt bytes.
let teacherVocabularyDataset = "__vocab__"
/// Dataset holding the original vocab.txt of a pruned vocabulary.
let teacherSegmentationDataset = "__vocab_segmentation__"

/// Root attributes with a fixed meaning; config keys of the same name are not copied over them.
private let reservedTeacherAttributes: Set<String> = [
    teacherFormatAttribute, teacherVersionAttribute, "config_json", "pooling", "normalize",
    "tokenizer_json", "labels_json", taskHeadsAttribute,
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
    /// The stored form of quantized weights, by name (their fp32 values are in `tensors`).
    public var quantized: [String: QuantizedTensor] = [:]
    /// After vocabulary pruning: the original vocabulary the tokenizer segments words with.
    public var segmentationVocabulary: [String]?
    /// With `read(_:weights: .inPlace)`, the fp32 tensors still in the file (not in `tensors`):
    /// each is read from the file when the caller asks for it.
    public var floatSource: TensorSource?
    /// A multi-task model's heads (name, labels, maximum length), in head order; empty for a
    /// single-head model. Their tensors are `tasks.<name>.classifier.*` in `tensors`.
    public var tasks: [TaskHead] = []

    /// Creates a teacher from its parts.
    public init(tensors: [(name: String, tensor: Tensor)], configJSON: String, vocabulary: [String],
                pooling: String, normalize: Bool, tokenizerOptionsJSON: String, labelsJSON: String? = nil,
                segmentationVocabulary: [String]? = nil) {
        self.tensors = tensors
        self.configJSON = configJSON
        self.vocabulary = vocabulary
        self.pooling = pooling
        self.normalize = normalize
        self.tokenizerOptionsJSON = tokenizerOptionsJSON
        self.labelsJSON = labelsJSON
        self.segmentationVocabulary = segmentationVocabulary
    }

    /// True when `url` is an HDF5 file whose `format` attribute says "distillery-teacher".
    public static func isTeacherFile(_ url: URL) -> Bool { openedTeacherFile(url) != nil }

    /// `url` opened when it is an HDF5 file marked as a teacher file, else nil.
    private static func openedTeacherFile(_ url: URL) -> HDF5File? {
        guard let file = try? HDF5File.open(url), (try? file.stringAttribute(teacherFormatAttribute)) == teacherFormatName else { return nil }
        return file
    }

    /// The `config_json` of a teacher file, read without its tensors (nil when `url` is not
    /// a teacher file or has none): what a loader checks before reading the weights.
    public static func storedConfigJSON(_ url: URL) -> String? {
        try? openedTeacherFile(url)?.stringAttribute("config_json")
    }

    // MARK: Reading

    /// How `read` loads a file's weights.
    public enum WeightLoading: Sendable {
        /// Every weight in `tensors`; a quantized one also in `quantized`, its stored form
        /// (so every fp32 consumer — fine-tuning, pruning, export — reads any file).
        case dequantized
        /// Quantized weights only in `quantized` (inference runs them quantized).
        case quantizedKept
        /// As `quantizedKept`, and the fp32 tensors left in the file: `floatSource` reads each
        /// straight into the caller's storage. A multi-task file loads as `quantizedKept`
        /// (selecting a task renames its tensors).
        case inPlace
        /// No weights: the config, vocabulary and settings (a stage that needs only those).
        case settingsOnly
    }

    /// Reads a teacher file; fails with a hint to run `kd import` when it is not one.
    /// `weights` says where the weights go (`WeightLoading`).
    public static func read(_ url: URL, weights: WeightLoading = .dequantized) throws -> TeacherFile {
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
        var quantized: [String: QuantizedTensor] = [:]
        var inPlace: [String: [Int]] = [:]
        let leaveFloats = weights == .inPlace && !file.hasAttribute(taskHeadsAttribute)
        let paths = try file.datasetPaths()
        let quantizedNames = Set(paths.filter { file.hasAttribute(quantizationAttribute, at: $0) })
        for path in paths where weights != .settingsOnly && path != teacherVocabularyDataset && path != teacherSegmentationDataset {
            if quantizedNames.contains(path) {
                let q = try readQuantized(file, path)
                quantized[path] = q
                if weights == .dequantized { tensors.append((path, q.dequantized())) }
            } else if !quantizedNames.contains(where: { path == $0 + quantizedScalesSuffix || path == $0 + quantizedZerosSuffix }) {
                if leaveFloats { inPlace[path] = try file.tensorShape(of: path) } else { tensors.append((path, try file.readTensor(path))) }
            }
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
        var segmentation: [String]?
        if paths.contains(teacherSegmentationDataset) {
            guard let text = String(validating: try file.readBytes(teacherSegmentationDataset), as: UTF8.self) else {
                throw WeightIOError(.corrupt, file: url, object: teacherSegmentationDataset,
                                    "the stored segmentation vocabulary '\(teacherSegmentationDataset)' is not valid UTF-8",
                                    hint: "the file is damaged; prune the model again")
            }
            segmentation = vocabularyLines(text)
        }
        var teacher = TeacherFile(
            tensors: tensors,
            configJSON: configJSON,
            vocabulary: vocabulary,
            pooling: try file.stringAttribute("pooling"),
            normalize: try file.intAttribute("normalize") != 0,
            tokenizerOptionsJSON: try file.stringAttribute("tokenizer_json"),
            labelsJSON: file.hasAttribute("labels_json") ? try file.stringAttribute("labels_json") : nil,
            segmentationVocabulary: segmentation)
        teacher.quantized = quantized
        if leaveFloats { teacher.floatSource = floatsInPlace(file, shapes: inPlace) }
        if file.hasAttribute(taskHeadsAttribute) {
            teacher.tasks = try parseTaskHeads(try file.stringAttribute(taskHeadsAttribute), url: url)
            if weights != .settingsOnly { try checkTaskHeadTensors(teacher.tasks, tensors: teacher.tensors, url: url) }
        }
        return teacher
    }

    /// The float datasets of `file` named in `shapes`, each read into the caller's storage
    /// and refused when it holds a NaN or an infinity (as the model loader refuses them).
    private static func floatsInPlace(_ file: HDF5File, shapes: [String: [Int]]) -> TensorSource {
        TensorSource(shapes: shapes) { name, destination in
            try file.readTensor(name, into: destination)
            if let i = destination.firstIndex(where: { !$0.isFinite }) {
                throw WeightIOError(.corrupt, file: file.url, object: name,
                                    "tensor '\(name)' holds \(destination[i]) at flat index \(i)",
                                    hint: "the weights are corrupt or diverged; re-export them")
            }
        }
    }

    /// Reads and checks the quantized weight stored at `name` (see the header for the layout).
    private static func readQuantized(_ file: HDF5File, _ name: String) throws -> QuantizedTensor {
        let hint = "the file is damaged or was not written by 'kd quantize'; quantize the fp32 model again"
        func bad(_ message: String) -> WeightIOError {
            WeightIOError(.corrupt, file: file.url, object: name, "quantized tensor '\(name)': \(message)", hint: hint)
        }
        let formatName = try file.stringAttribute(quantizationAttribute, at: name)
        guard let format = QuantizedTensor.Format(stored: formatName) else {
            throw WeightIOError(.unsupported, file: file.url, object: name,
                                "quantized tensor '\(name)' has unknown format '\(formatName)'",
                                hint: "known: int8, int4-g{32,64,128}-{sym,asym}, bf16; update kd or quantize again")
        }
        let columns = try file.intAttribute("columns", at: name)
        let inputScale = file.hasAttribute("input_scale", at: name) ? Float(try file.doubleAttribute("input_scale", at: name)) : nil
        let shape: [Int], values: [UInt8]
        if format == .bf16 {
            let read = try file.readUInt16s(name)
            shape = read.shape
            values = read.values.map { $0.littleEndian }.withUnsafeBytes { Array($0) }   // low byte first
        } else {
            shape = try file.shape(of: name)
            values = try file.readBytes(name)
        }
        guard shape.count == 2, columns > 0 else {
            throw bad("stored shape \(describeShape(shape)) with \(columns) columns, expected [rows, …] with columns > 0")
        }
        let expectedWidth = format == .bf16 ? columns : format == .int8 ? columns : columns / 2
        guard shape[1] == expectedWidth else {
            throw bad("\(format) values of shape \(describeShape(shape)) for \(columns) columns, expected [\(shape[0]), \(expectedWidth)]")
        }
        var scales: [Float] = [], zeros: [UInt8] = []
        let scalesName = name + quantizedScalesSuffix
        switch format {
        case .int8: scales = try file.readTensor(scalesName).data
        case .int4(_, let symmetric):
            scales = try file.readUInt16s(scalesName).values.map { Float(Float16(bitPattern: $0)) }
            zeros = symmetric ? [UInt8](repeating: 8, count: scales.count) : try file.readBytes(name + quantizedZerosSuffix)
        case .bf16: break
        }
        let q = QuantizedTensor(format: format, rows: shape[0], columns: columns, values: values, scales: scales, zeros: zeros,
                                inputScale: inputScale)
        do { try q.validate() } catch { throw bad(error.description) }
        return q
    }

    /// Writes the stored form of a quantized weight at `name` (see the header).
    private func writeQuantized(_ q: QuantizedTensor, _ file: HDF5File, _ name: String) throws {
        switch q.format {
        case .bf16:
            let halves = (0..<(q.rows * q.columns)).map { UInt16(q.values[2 * $0]) | UInt16(q.values[2 * $0 + 1]) << 8 }
            try file.writeUInt16s(halves, shape: [q.rows, q.columns], at: name)
        case .int8, .int4:
            try file.writeUInt8s(q.values, shape: [q.rows, q.bytesPerRow], at: name)
        }
        try file.setAttribute(quantizationAttribute, string: q.format.description, at: name)
        try file.setAttribute("columns", int: q.columns, at: name)
        if let s = q.inputScale { try file.setAttribute("input_scale", double: Double(s), at: name) }
        switch q.format {
        case .int8: try file.writeTensor(Tensor(shape: [q.scales.count], data: q.scales), at: name + quantizedScalesSuffix)
        case .int4(_, let symmetric):
            try file.writeUInt16s(q.scales.map { Float16($0).bitPattern }, shape: [q.rows, q.groupsPerRow], at: name + quantizedScalesSuffix)
            if !symmetric { try file.writeUInt8s(q.zeros, shape: [q.rows, q.groupsPerRow], at: name + quantizedZerosSuffix) }
        case .bf16: break
        }
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
            try checkTaskHeadTensors(tasks, tensors: tensors, url: url)
            let version = !tasks.isEmpty ? teacherFormatVersion
                : quantized.isEmpty && segmentationVocabulary == nil ? teacherFloatFormatVersion : teacherQuantizedFormatVersion
            try file.setAttribute(teacherVersionAttribute, int: version)
            if !tasks.isEmpty { try file.setAttribute(taskHeadsAttribute, string: try taskHeadsJSON(tasks)) }
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
            if let segmentationVocabulary {
                try file.writeBytes(Array((segmentationVocabulary.map { $0 + "\n" }.joined()).utf8), at: teacherSegmentationDataset)
            }
            for (name, tensor) in tensors {
                if let q = quantized[name] { try writeQuantized(q, file, name) } else { try file.writeTensor(tensor, at: name) }
            }
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

extension TeacherFile {
    /// The file without its weights (no tensors, no quantized forms): its config, vocabulary
    /// and settings, for holders of a built encoder that need only those.
    public var withoutWeights: TeacherFile {
        var f = self
        (f.tensors, f.quantized, f.floatSource) = ([], [:], nil)
        return f
    }
}
