// ExportStage: a Distillery model file out to a file other runtimes load (`exportModel`):
// an HF / sentence-transformers directory (safetensors, F32), a GGUF file for llama.cpp
// (F32, F16, Q8_0, Q4_0) or an fp32 ONNX model (opset 17).
//
// Everything is built in memory and checked before the first byte is written; the output
// goes to a temporary sibling that is renamed into place, so a failed export leaves
// nothing. An existing output is replaced only with `force`. What a format cannot
// represent (a mean-pooled classifier, per-layer shapes, rows that are not whole blocks)
// is said in the report's notes. A kd-quantized file exports its stored weights where the
// target layout matches (GGUF Q8_0/Q4_0 blocks, ONNX int8 MatMulInteger / int4 MatMulNBits);
// safetensors and f32/f16 exports carry its dequantized values. Pruned models are padded
// for GGUF and HF and exported as they are to ONNX. A vocabulary-pruned model goes to HF
// and GGUF with its original vocabulary, dropped pieces sharing [UNK]'s row, so their
// tokenizers split words as kd does (VocabularyRestore.swift); ONNX keeps the pruned ids.
import DistilleryJSON
import DistilleryModel
import Export
import Foundation
import WeightIO
#if canImport(Glibc)
import Glibc
#endif

/// The formats `kd export` writes.
public enum ExportFormat: String, Sendable, CaseIterable, Codable {
    case safetensors, gguf, onnx
}

/// The weight types of an export: GGUF f32, f16, q8_0, q4_0; ONNX f32, int8, int4;
/// safetensors f32.
public enum ExportType: String, Sendable, CaseIterable, Codable {
    case f32, f16, q8_0, q4_0, int8, int4

    /// The types `format` writes.
    public static func allowed(for format: ExportFormat) -> [ExportType] {
        switch format {
        case .gguf: return [.f32, .f16, .q8_0, .q4_0]
        case .onnx: return [.f32, .int8, .int4]
        case .safetensors: return [.f32]
        }
    }

    var ggml: GGMLType? {
        switch self {
        case .f32: return .f32
        case .f16: return .f16
        case .q8_0: return .q8_0
        case .q4_0: return .q4_0
        case .int8, .int4: return nil
        }
    }

    var onnx: ONNXWeights? {
        switch self {
        case .f32: return .fp32
        case .int8: return .int8
        case .int4: return .int4
        default: return nil
        }
    }
}

/// What `exportModel` writes.
public struct ExportConfig: Sendable {
    /// The Distillery model file to export.
    public var model: String
    public var format: ExportFormat
    /// Output: a directory (safetensors) or a file (gguf).
    public var out: String
    public var type: ExportType
    /// Replace an existing output.
    public var force: Bool
    /// GGUF Q8_0 / Q4_0: the matrix kinds stored as F16 instead (`Export.ggufMatrixKinds`);
    /// nil: the Q8_0 default for an fp32 model (`Export.ggufQ8DefaultF16Kinds`), none otherwise.
    public var keepF16: [String]?

    /// The matrix kinds `keepF16` may name.
    public static var matrixKinds: [String] { ggufMatrixKinds }
    /// The kinds a Q8_0 export of an fp32 model keeps at F16 when `keepF16` is nil.
    public static var q8DefaultF16Kinds: [String] { ggufMatrixKinds.filter(ggufQ8DefaultF16Kinds.contains) }

    /// A configuration; see the properties.
    public init(model: String, format: ExportFormat, out: String, type: ExportType = .f32, force: Bool = false, keepF16: [String]? = nil) {
        self.model = model
        self.format = format
        self.out = out
        self.type = type
        self.force = force
        self.keepF16 = keepF16
    }
}

/// What `exportModel` wrote.
public struct ExportReport: Codable, Sendable {
    public var model: String
    public var format: ExportFormat
    public var type: ExportType
    public var out: String
    /// Bytes written (all files of a directory).
    public var bytes: Int
    public var tensors: Int
    /// What the format could not represent and what the export did.
    public var notes: [String]
    public var seconds: Double

    /// The lines `kd export` prints.
    public var text: String {
        (["exported \(model) -> \(out) (\(format.rawValue)\(format != .safetensors ? " " + type.rawValue.uppercased() : ""), \(tensors) tensors, \(formatBytes(bytes)), \(String(format: "%.2f", seconds)) s)"]
         + notes.map { "  note: \($0)" }).joined(separator: "\n")
    }
}

/// Exports a Distillery model to safetensors (HF directory) or GGUF.
public func exportModel(_ config: ExportConfig) throws -> ExportReport {
    let start = now()
    let allowed = ExportType.allowed(for: config.format)
    guard allowed.contains(config.type) else {
        throw StageError.usage("--type \(config.type.rawValue) does not apply to --format \(config.format.rawValue) — use \(allowed.map(\.rawValue).joined(separator: ", "))")
    }
    if config.keepF16 != nil && !(config.format == .gguf && (config.type == .q8_0 || config.type == .q4_0)) {
        throw StageError.usage("--keep-f16 applies to --format gguf --type q8_0 or q4_0 only")
    }
    if let unknown = config.keepF16?.first(where: { !ggufMatrixKinds.contains($0) }) {
        throw StageError.usage("--keep-f16: unknown tensor kind '\(unknown)' — use a comma list of \(ggufMatrixKinds.joined(separator: ", ")), or none")
    }
    guard !config.out.isEmpty else { throw StageError.usage("--out is empty — give an output path") }
    let outURL = URL(fileURLWithPath: config.out)
    if FileManager.default.fileExists(atPath: config.out) && !config.force {
        throw StageError("\(config.out): already exists — pass --force to replace it, or choose another --out")
    }
    var isDirectory: ObjCBool = false
    let parent = outURL.deletingLastPathComponent()
    guard FileManager.default.fileExists(atPath: parent.path, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw StageError("\(config.out): directory \(parent.path) does not exist — create it first")
    }
    let bundle = try ModelBundle(path: config.model)
    var model = try exportModelValue(bundle)
    var vocabularyNotes: [String] = []
    if let original = bundle.file.segmentationVocabulary {
        let (kept, dropped) = (model.vocabulary.count, original.count - Set(model.vocabulary).count)
        if config.format == .onnx {
            vocabularyNotes.append("vocabulary pruned to \(kept) of \(original.count) tokens: input_ids are the pruned ids (`kd tokenize --model \(config.model)` gives them), not the original tokenizer's")
        } else {
            do { model = try model.restoringVocabulary(original) } catch let error as ExportError {
                throw StageError("\(config.model): \(error.description)")
            }
            vocabularyNotes.append("vocabulary pruned to \(kept) of \(original.count) tokens: exported as the original \(original.count), the \(dropped) dropped pieces sharing [UNK]'s embedding row, so other runtimes segment words as kd does (the embedding table is full size again)")
        }
    }
    var notes: [String] = []
    var tensors = 0
    // Everything is built in memory first; then written to a temporary sibling (files
    // fsynced, the directory too), renamed into place, and the parent directory fsynced.
    let tmp = parent.appendingPathComponent(".\(outURL.lastPathComponent).tmp-\(getpid())")
    try? FileManager.default.removeItem(at: tmp)
    do {
        switch config.format {
        case .safetensors:
            let export = try hfDirectoryExport(model)
            (notes, tensors) = (export.notes, model.tensors.count)
            try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: false)
            for dir in export.directories {
                try FileManager.default.createDirectory(at: tmp.appendingPathComponent(dir), withIntermediateDirectories: true)
            }
            var written: Set<String> = [tmp.path]
            for (path, data) in export.files {
                let url = tmp.appendingPathComponent(path)
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try OutputFile.write(data, to: url)   // fsyncs the file and the directory it lands in
                written.insert(url.deletingLastPathComponent().path)
            }
            for dir in export.directories { try OutputFile.syncPath(tmp.appendingPathComponent(dir)) }
            for dir in written { try OutputFile.syncPath(URL(fileURLWithPath: dir)) }
        case .gguf:
            let export = try ggufExport(model, type: config.type.ggml!, name: outURL.deletingPathExtension().lastPathComponent,
                                     keepF16: config.keepF16.map(Set.init))
            (notes, tensors) = (export.notes, export.file.tensors.count)
            try OutputFile.write(parts: export.file.serializedParts(), to: tmp)
        case .onnx:
            let weights = config.type.onnx!
            let export = try onnxExport(model, weights: weights)
            (notes, tensors) = (export.notes + ["outputs: \(export.outputs.joined(separator: ", ")); opset \(onnxOpset), \(config.type.rawValue)"], model.tensors.count)
            try OutputFile.write(export.data, to: tmp)
        }
        try replace(config.out, with: tmp)
        try OutputFile.syncPath(parent)
    } catch {
        try? FileManager.default.removeItem(at: tmp)
        if let error = error as? StageError { throw error }
        if let error = error as? ExportError { throw StageError("\(config.model): \(error.description)") }
        if let error = error as? WeightIOError { throw StageError(error.description) }
        throw StageError("\(config.out): cannot write (\(error.localizedDescription))")
    }
    return ExportReport(model: config.model, format: config.format, type: config.type, out: config.out,
                        bytes: totalBytes(config.out), tensors: tensors, notes: vocabularyNotes + notes, seconds: now() - start)
}

/// The exporters' view of a loaded model file.
func exportModelValue(_ bundle: ModelBundle) throws -> ExportModel {
    let options = try TokenizerOptions.parse(bundle.file.tokenizerOptionsJSON, source: bundle.path)
    return ExportModel(tensors: bundle.file.tensors, config: bundle.config, configJSON: bundle.file.configJSON,
                       vocabulary: bundle.file.vocabulary, lowercase: options.lowercase, stripAccents: options.stripAccents,
                       tokenizeChineseChars: options.tokenizeChineseChars, pooling: bundle.file.pooling,
                       normalize: bundle.file.normalize, maxLength: min(bundle.storedMaxLength ?? 128, bundle.config.maxPositions),
                       quantized: bundle.file.quantized)
}

/// Moves `tmp` to `path`; an existing output (file or directory) is moved aside first and
/// removed only after the new one is in place.
private func replace(_ path: String, with tmp: URL) throws {
    let url = URL(fileURLWithPath: path)
    let old = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).old-\(getpid())")
    let existed = FileManager.default.fileExists(atPath: path)
    if existed {
        guard rename(path, old.path) == 0 else { throw StageError("\(path): cannot replace (\(String(cString: strerror(errno))))") }
    }
    guard rename(tmp.path, path) == 0 else {
        let reason = String(cString: strerror(errno))
        if existed { _ = rename(old.path, path) }
        throw StageError("\(path): cannot write (\(reason))")
    }
    if existed { try? FileManager.default.removeItem(at: old) }
}

/// Bytes of a file, or of every file under a directory.
private func totalBytes(_ path: String) -> Int {
    guard let items = FileManager.default.enumerator(atPath: path) else { return fileSize(path) }
    var total = 0
    for case let item as String in items { total += fileSize(URL(fileURLWithPath: path).appendingPathComponent(item).path) }
    return total == 0 ? fileSize(path) : total
}
