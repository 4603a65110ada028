// Weight layouts: load any supported BERT checkpoint as canonical HF PyTorch names.
//
// Canonical names are the keys of HF `BertModel.state_dict()`
// (`embeddings.word_embeddings.weight`, `encoder.layer.0.attention.self.query.weight`
// with Linear weights [out, in]), plus task heads as they are (`classifier.weight`).
// Sources: a safetensors file; HDF5 with those keys as root datasets (flat — also a
// Distillery teacher file) or as nested groups; and HF TensorFlow `tf_model.h5`, the
// Keras 2 `save_weights` format: root attributes `layer_names`, `backend`,
// `keras_version`; one group per top-level Keras layer with attribute `weight_names`;
// each weight a dataset at `<layer>/<weight name>`, weight names starting with the model
// name (`tf_bert_for_sequence_classification/bert/encoder/layer_._0/attention/self/query/kernel:0`).
// The TF → PyTorch renaming follows HF `convert_tf_weight_name_to_pt_weight_name`
// (modeling_tf_pytorch_utils.py) as name tables applied per path segment, never as
// chained string replacements. Dense kernels are stored [in, out] and are transposed.
// Unknown names are kept (the model's strict loader reports them as unexpected);
// integer buffers such as `embeddings.position_ids` are listed in `skipped`.
// Left out on purpose: sharded checkpoints (`*.index.json`), PyTorch pickles (`.bin`),
// and Keras 3 `.weights.h5` (a different layout: `layers/<name>/vars/0`).

import DistilleryTensor
import Foundation

/// Where a set of weights came from, as detected from the file's content.
public enum WeightLayout: String, Sendable, CaseIterable {
    /// A safetensors file with HF PyTorch keys.
    case safetensors
    /// HDF5 with HF PyTorch keys as root-level datasets (Distillery teacher files too).
    case hdf5Flat
    /// HDF5 with HF PyTorch keys as nested groups (`encoder/layer/0/…/weight`).
    case hdf5Nested
    /// HF TensorFlow `tf_model.h5` (Keras 2 `save_weights` HDF5 format).
    case kerasH5
}

/// Weights renamed to canonical HF PyTorch keys, with what was left out and where they came from.
public struct CanonicalWeights {
    /// Tensors by canonical name, in natural name order (`layer.2` before `layer.10`).
    public var tensors: [(name: String, tensor: Tensor)]
    /// The detected source layout.
    public var layout: WeightLayout
    /// Source names not returned: integer buffers (`position_ids`) and Distillery-internal datasets.
    public var skipped: [String]
    /// One line for logs: file name, layout, tensor count.
    public var sourceDescription: String
}

// MARK: Name tables

/// Leading key prefixes removed from HF PyTorch names: task models (`BertForSequenceClassification`) wrap the encoder in `bert.`.
private let wrapperPrefixes = ["bert"]

/// Canonical names of non-parameter buffers HF saves (integer index tables), skipped on load.
private let bufferNames: Set<String> = ["embeddings.position_ids", "embeddings.token_type_ids"]

/// Leaf renames for old PyTorch checkpoints (pytorch-pretrained-bert LayerNorm), as HF `_fix_key`.
private let legacyPyTorchLeaves: [String: String] = ["gamma": "weight", "beta": "bias"]

/// TF variable leaf → PyTorch leaf and whether the value is a Dense kernel stored [in, out].
private let kerasLeaves: [String: (name: String, isKernel: Bool)] = [
    "kernel": ("weight", true),
    "embeddings": ("weight", false),    // position/token-type embeddings (Keras Embedding)
    "weight": ("weight", false),        // word embeddings (add_weight "weight")
    "gamma": ("weight", false),         // LayerNormalization scale
    "beta": ("bias", false),            // LayerNormalization shift
    "bias": ("bias", false),
]

/// Separator inside a TF segment that marks a list index: `layer_._3` → `layer`, `3`.
private let kerasListSeparator = "_._"
/// Separator of HF's `$1___$2` scopes: only `$2` is kept.
private let kerasScopeSeparator = "___"
/// Keras modules whose 3-D EinsumDense kernels are [in, heads, headSize] (HF 4.2–4.3); others are [heads, headSize, out].
private let kerasHeadProjections: Set<String> = ["query", "key", "value"]

// MARK: Loading

/// Loads a BERT checkpoint in any supported layout and renames it to canonical HF PyTorch keys.
public func loadCanonicalWeights(from url: URL) throws -> CanonicalWeights {
    try requireRegularFile(url, expected: "a weight file", hint: "pass model.safetensors or tf_model.h5 inside it")
    switch url.pathExtension.lowercased() {
    case "safetensors": return try loadSafetensors(url)
    case "h5", "hdf5", "he5": return try loadHDF5(url)
    case "bin", "pt", "pth", "ckpt":
        throw WeightIOError(.unsupported, file: url, "PyTorch pickle checkpoints are not read (arbitrary code on load)",
                            hint: "convert it once with safetensors.torch.save_file(torch.load(path), 'model.safetensors')")
    default: return hasHDF5Signature(url) ? try loadHDF5(url) : try loadSafetensors(url)
    }
}

/// True when the file starts with the HDF5 signature (superblock at offset 0, the common case).
private func hasHDF5Signature(_ url: URL) -> Bool {
    guard let handle = try? FileHandle(forReadingFrom: url) else { return false }
    defer { try? handle.close() }
    let head = (try? handle.read(upToCount: 8)) ?? Data()
    return head == Data([0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A])
}

private func loadSafetensors(_ url: URL) throws -> CanonicalWeights {
    let file = try SafetensorsFile.read(url)
    var builder = CanonicalBuilder(url: url)
    for (name, dtype, tensor) in file.tensors {
        let canonical = canonicalPyTorchName(name)
        if !SafetensorsFile.isFloatingPoint(dtype) || bufferNames.contains(canonical) {
            builder.skipped.append(name)
            continue
        }
        try builder.add(canonical, tensor, source: name)
    }
    let dtypes = Set(file.tensors.map(\.dtype)).sorted().joined(separator: "/")
    return try builder.finish(layout: .safetensors, description: "safetensors, \(dtypes)")
}

private func loadHDF5(_ url: URL) throws -> CanonicalWeights {
    let file = try HDF5File.open(url)
    let paths = try file.datasetPaths()
    if file.hasAttribute("layer_names") || file.hasAttribute("layer_names0")
        || paths.contains(where: { $0.split(separator: "/").last?.contains(":") == true }) {
        return try loadKeras(file, paths: paths)
    }
    guard !paths.isEmpty else {
        throw WeightIOError(.missingObject, file: url, "the HDF5 file has no datasets",
                            hint: "it holds no weights; check that the export finished")
    }
    var builder = CanonicalBuilder(url: url)
    for path in paths {
        let canonical = canonicalPyTorchName(path.split(separator: "/").joined(separator: "."))
        let dtype = try file.dtypeDescription(of: path)
        if path.hasPrefix("__") || !dtype.hasPrefix("float") || bufferNames.contains(canonical) {
            builder.skipped.append(path)
            continue
        }
        try builder.add(canonical, try file.readTensor(path), source: path)
    }
    let nested = paths.contains { $0.contains("/") && !$0.hasPrefix("__") }
    let isTeacher = (try? file.stringAttribute(teacherFormatAttribute)) == teacherFormatName
    return try builder.finish(layout: nested ? .hdf5Nested : .hdf5Flat,
                              description: isTeacher ? "Distillery teacher file" : "HDF5, HF names as \(nested ? "groups" : "root datasets")")
}

private func loadKeras(_ file: HDF5File, paths: [String]) throws -> CanonicalWeights {
    var weights: [(path: String, weightName: String)] = []
    if file.hasAttribute("layer_names") || file.hasAttribute("layer_names0") {
        for layer in try kerasNameList(file, "layer_names", at: "") {
            for weightName in try kerasNameList(file, "weight_names", at: layer) {
                weights.append((layer + "/" + weightName, weightName))
            }
        }
    } else {
        // No Keras attributes, but TF `:0` names: the first group level is the layer.
        weights = paths.map { path in (path, path.split(separator: "/").dropFirst().joined(separator: "/")) }
    }
    var builder = CanonicalBuilder(url: file.url)
    for (path, weightName) in weights {
        guard file.hasDataset(path) else {
            throw WeightIOError(.corrupt, file: file.url, object: path,
                                "weight '\(weightName)' is listed in 'weight_names' but dataset '\(path)' is missing",
                                hint: "the Keras file is incomplete; save it again with model.save_weights")
        }
        let (name, transform) = try kerasToPyTorch(weightName, file: file.url)
        let canonical = canonicalPyTorchName(name)
        if !(try file.dtypeDescription(of: path)).hasPrefix("float") || bufferNames.contains(canonical) {
            builder.skipped.append(path)
            continue
        }
        try builder.add(canonical, try transform(try file.readTensor(path)), source: path)
    }
    let backend = (try? file.stringAttribute("backend")) ?? "unknown backend"
    let version = (try? file.stringAttribute("keras_version")).map { " \($0)" } ?? ""
    return try builder.finish(layout: .kerasH5,
                              description: "Keras h5 (\(backend)\(version)), TF names mapped to PyTorch, kernels transposed")
}

/// Reads a Keras name-list attribute, also when Keras split it into `name0`, `name1`, … (over 64 KB).
private func kerasNameList(_ file: HDF5File, _ name: String, at group: String) throws -> [String] {
    if file.hasAttribute(name, at: group) {
        // Layers without weights (Dropout) get `np.asarray([])`: an empty float64 array.
        if try file.attributeElementCount(name, at: group) == 0 { return [] }
        return try file.stringArrayAttribute(name, at: group)
    }
    var result: [String] = []
    var chunk = 0
    while file.hasAttribute("\(name)\(chunk)", at: group) {
        result += try file.stringArrayAttribute("\(name)\(chunk)", at: group)
        chunk += 1
    }
    if chunk == 0 {
        throw WeightIOError(.corrupt, file: file.url, object: group.isEmpty ? "/" : group,
                            "Keras attribute '\(name)' is missing on '\(group.isEmpty ? "/" : group)'",
                            hint: "this is not a complete Keras save_weights file; save it again with model.save_weights")
    }
    return result
}

/// Maps a TF weight name to a PyTorch name (before prefix stripping) and the value transform it needs.
private func kerasToPyTorch(_ weightName: String, file: URL) throws -> (String, (Tensor) throws -> Tensor) {
    var segments = weightName.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
    if segments.count > 1 { segments.removeFirst() }     // level zero is the Keras model name
    guard let last = segments.popLast() else {
        throw WeightIOError(.mapping, file: file, object: weightName, "weight name '\(weightName)' is empty",
                            hint: "the Keras file is corrupt; save it again")
    }
    var modules: [String] = []
    for segment in segments {
        let scoped = segment.components(separatedBy: kerasScopeSeparator).last!
        modules += scoped.components(separatedBy: kerasListSeparator).filter { !$0.isEmpty }
    }
    let leafName = String(last.split(separator: ":", maxSplits: 1).first ?? "")   // drop the `:0` device suffix
    let leaf = kerasLeaves[leafName] ?? (name: leafName, isKernel: false)
    let name = (modules + [leaf.name]).joined(separator: ".")
    let module = modules.last ?? ""
    let transform: (Tensor) throws -> Tensor = { tensor in
        switch (leaf.isKernel, leafName == "bias", tensor.shape.count) {
        case (true, _, 2):
            return tensor.transposed2D()
        case (true, _, 3):
            let s = tensor.shape
            let merged = kerasHeadProjections.contains(module) ? [s[0], s[1] * s[2]] : [s[0] * s[1], s[2]]
            return Tensor(shape: merged, data: tensor.data).transposed2D()
        case (true, _, _):
            throw WeightIOError(.mapping, file: file, object: weightName,
                                "kernel '\(weightName)' has shape \(tensor.shapeDescription), expected a 2-D Dense kernel [in, out]",
                                hint: "convolutional or other exotic kernels are not BERT weights; export the model with HF transformers")
        case (false, true, let rank) where rank > 1:
            return Tensor(shape: [tensor.count], data: tensor.data)   // EinsumDense bias [heads, headSize]
        default:
            return tensor
        }
    }
    return (name, transform)
}

/// Strips a task wrapper prefix (`bert.`) and renames legacy leaves; other names pass through unchanged.
public func canonicalPyTorchName(_ name: String) -> String {
    var segments = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
    if segments.count > 1, wrapperPrefixes.contains(segments[0]) { segments.removeFirst() }
    if let leaf = segments.last, let renamed = legacyPyTorchLeaves[leaf] { segments[segments.count - 1] = renamed }
    return segments.joined(separator: ".")
}

// MARK: Assembly

private struct CanonicalBuilder {
    let url: URL
    var tensors: [(name: String, tensor: Tensor)] = []
    var sources: [String: String] = [:]
    var skipped: [String] = []

    init(url: URL) { self.url = url }

    mutating func add(_ name: String, _ tensor: Tensor, source: String) throws {
        if let earlier = sources[name] {
            throw WeightIOError(.mapping, file: url, object: name,
                                "both '\(earlier)' and '\(source)' map to tensor '\(name)'",
                                hint: "the checkpoint mixes prefixed and unprefixed names; keep one copy")
        }
        sources[name] = source
        tensors.append((name, tensor))
    }

    func finish(layout: WeightLayout, description: String) throws -> CanonicalWeights {
        guard !tensors.isEmpty else {
            throw WeightIOError(.missingObject, file: url, "no floating-point tensors found (skipped: \(skipped.count))",
                                hint: "the file holds no weights; check that the export finished")
        }
        let ordered = tensors.sorted { naturalOrder($0.name, $1.name) }
        return CanonicalWeights(tensors: ordered, layout: layout, skipped: skipped,
                                sourceDescription: "\(url.lastPathComponent) (\(description); \(tensors.count) tensors)")
    }
}

/// Orders names with embedded numbers numerically: `layer.2` < `layer.10`.
func naturalOrder(_ a: String, _ b: String) -> Bool {
    func runs(_ s: String) -> [(isNumber: Bool, text: Substring)] {
        var result: [(Bool, Substring)] = []
        var start = s.startIndex
        while start < s.endIndex {
            let isNumber = s[start].isASCII && s[start].isNumber
            let end = s[start...].firstIndex { ($0.isASCII && $0.isNumber) != isNumber } ?? s.endIndex
            result.append((isNumber, s[start..<end]))
            start = end
        }
        return result
    }
    for (x, y) in zip(runs(a), runs(b)) where x.text != y.text {
        if x.isNumber && y.isNumber, let i = Int(x.text), let j = Int(y.text), i != j { return i < j }
        return x.text < y.text
    }
    return a.count < b.count
}

/// Throws unless `url` names an existing file that is not a directory; `expected` and
/// `directoryHint` word the error for a directory.
func requireRegularFile(_ url: URL, expected: String, hint directoryHint: String) throws {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
        throw WeightIOError(.fileNotFound, file: url, "no such file (\(url.path))",
                            hint: "check the path; relative paths are resolved from the current directory")
    }
    if isDirectory.boolValue {
        throw WeightIOError(.notThisFormat, file: url, "is a directory, expected \(expected)", hint: directoryHint)
    }
}
