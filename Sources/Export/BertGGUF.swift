// BertGGUF: a BERT model as a GGUF file for llama.cpp's `bert` architecture, and back.
//
// Follows llama.cpp's converter (conversion/bert.py, gguf-py constants) and loader
// (src/models/bert.cpp, llama-vocab.cpp, as vendored by llama-cpp-python 0.3.36):
// - tensors `token_embd`, `position_embd`, `token_types`, `token_embd_norm`, and per layer
//   `blk.N.attn_q/k/v`, `attn_output`, `attn_output_norm`, `ffn_up`, `ffn_down`,
//   `layer_output_norm` (`.weight`/`.bias`); PyTorch [out, in] is ggml ne [in, out];
// - metadata `general.architecture = bert`, `bert.context_length`, `.embedding_length`,
//   `.feed_forward_length`, `.block_count`, `.attention.head_count`,
//   `.attention.layer_norm_epsilon`, `.attention.causal = false`, `.pooling_type`
//   (0 none, 1 mean, 2 cls);
// - the WordPiece vocabulary as `tokenizer.ggml.model = bert` with llama.cpp's phantom-space
//   form (a word-initial token gets "▁", a "##" continuation loses it, control tokens stay),
//   token types (1 normal, 3 control), `token_type_count`, and explicit special-token ids
//   (cls/bos, sep, unk, pad, mask) read from the vocabulary, so a pruned vocabulary keeps
//   pointing at the right tokens.
// Types: `--type` applies to the Linear weights and the word embeddings; rows (ne[0], the
// input width) not divisible by 32 fall back to F16 for Q8_0/Q4_0, and the export lists them.
// GGUF types each tensor on its own: `keepF16` kinds are stored F16 in a Q8_0/Q4_0 file, and a
// Q8_0 export of an fp32 model keeps Q/K/V and FFN-up at F16 by default (measured below).
// A kd-quantized file's weights go into Q8_0 (int8) / Q4_0 (int4-g32 symmetric) blocks as
// stored (QuantizedBlocks.swift); a weight whose storage does not match `--type` is refused.
// Position and token-type embeddings, LayerNorms and biases stay F32 (as llama.cpp's
// converter keeps 1-D tensors). Distillery's own keys (`distillery.*`: config.json,
// tokenizer options, pooling, normalize) make the import exact; files without them (llama.cpp's
// converter) import from the bert.* keys. A classifier goes where llama.cpp's BERT runs one:
// `bert.pooling_type = 4` (LLAMA_POOLING_TYPE_RANK) pools, applies `cls` (dense + tanh: HF's
// pooler) when present, then `cls.output`; `bert.classifier.pooling_type = 1` makes it pool
// the mean first (kd's probe head, no `cls`); labels in `bert.classifier.output_labels`.
// Heads stay F32. Per-layer shapes are padded (said).
import DistilleryJSON
import DistilleryModel
import DistilleryTensor
import Foundation
import WeightIO

/// HF layer sub-module → llama.cpp tensor stem (per layer, `.weight` / `.bias` appended).
let ggufLayerNames: [(hf: String, gguf: String)] = [
    ("attention.self.query", "attn_q"), ("attention.self.key", "attn_k"), ("attention.self.value", "attn_v"),
    ("attention.output.dense", "attn_output"), ("attention.output.LayerNorm", "attn_output_norm"),
    ("intermediate.dense", "ffn_up"), ("output.dense", "ffn_down"), ("output.LayerNorm", "layer_output_norm"),
]

/// HF embedding module → llama.cpp tensor stem.
let ggufEmbeddingNames: [(hf: String, gguf: String)] = [
    ("embeddings.word_embeddings", "token_embd"), ("embeddings.position_embeddings", "position_embd"),
    ("embeddings.token_type_embeddings", "token_types"), ("embeddings.LayerNorm", "token_embd_norm"),
]

/// The llama.cpp matrix kinds a Q8_0 / Q4_0 export can keep at F16 (`--keep-f16`): the word
/// embeddings and the six Linear weights of each layer.
public let ggufMatrixKinds = ["token_embd", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_up", "ffn_down"]

/// The matrix kinds a Q8_0 export of an fp32 model stores as F16 unless `--keep-f16` says
/// otherwise. llama.cpp quantizes a Q8_0 weight's input rows to Q8_0 blocks before the
/// product and gives an F16 weight F16 inputs. Measured with llama.cpp on MiniLM-L6 vs HF
/// fp32 (benchmarks/q8_mixed_study.py, results 2026-12-02-export-intel.md §6): plain Q8_0
/// cosine min 0.997603; Q/K/V at F16 0.998648 (+9.8 % bytes); Q/K/V and FFN-up (the
/// LayerNorm-output inputs, where the outlier features are) 0.999435, mean 0.999898
/// (+23 %) — the smallest set measured that clears 0.999. The word embeddings are a row
/// lookup (no activation rounding) and stay Q8_0, as in llama.cpp's converter.
public let ggufQ8DefaultF16Kinds: Set<String> = ["attn_q", "attn_k", "attn_v", "ffn_up"]

/// The matrix kind of a llama.cpp tensor name (`blk.3.attn_q.weight` → `attn_q`), or nil.
func ggufMatrixKind(_ name: String) -> String? {
    if name == "token_embd.weight" { return "token_embd" }
    let parts = name.split(separator: ".")
    guard parts.count == 4, parts[0] == "blk", parts[3] == "weight", ggufMatrixKinds.contains(String(parts[2])) else { return nil }
    return String(parts[2])
}

/// llama.cpp's `general.file_type` for a `--type`.
let ggufFileTypes: [GGMLType: UInt32] = [.f32: 0, .f16: 1, .q4_0: 2, .q8_0: 7]
/// llama.cpp pooling types.
let ggufPoolingTypes: [String: UInt32] = ["none": 0, "mean": 1, "cls": 2]
/// llama.cpp's LLAMA_POOLING_TYPE_RANK: pool, then the classifier head (cls, cls.output).
let ggufRankPooling: UInt32 = 4
/// llama.cpp classifier-head tensor names → HF names.
let ggufHeadNames: [String: String] = ["cls.weight": "pooler.dense.weight", "cls.bias": "pooler.dense.bias",
                                       "cls.output.weight": "classifier.weight", "cls.output.bias": "classifier.bias"]
/// llama.cpp token types used here.
enum GGUFTokenType { static let normal: Int32 = 1, control: Int32 = 3 }
/// Version of the `distillery.*` keys.
let distilleryGGUFVersion: UInt32 = 1

/// The llama.cpp name of an HF tensor name, or nil for heads (pooler, classifier).
func ggufName(_ hf: String) -> String? {
    let leaf = hf.hasSuffix(".weight") ? "weight" : hf.hasSuffix(".bias") ? "bias" : nil
    guard let leaf else { return nil }
    let stem = String(hf.dropLast(leaf.count + 1))
    if let e = ggufEmbeddingNames.first(where: { $0.hf == stem }) { return "\(e.gguf).\(leaf)" }
    let parts = stem.split(separator: ".", maxSplits: 3)
    guard parts.count == 4, parts[0] == "encoder", parts[1] == "layer", let l = Int(parts[2]),
          let m = ggufLayerNames.first(where: { $0.hf == parts[3] }) else { return nil }
    return "blk.\(l).\(m.gguf).\(leaf)"
}

/// The HF name of a llama.cpp BERT tensor name, or nil when it is not one.
func hfName(_ gguf: String) -> String? {
    let leaf = gguf.hasSuffix(".weight") ? "weight" : gguf.hasSuffix(".bias") ? "bias" : nil
    guard let leaf else { return nil }
    let stem = String(gguf.dropLast(leaf.count + 1))
    if let e = ggufEmbeddingNames.first(where: { $0.gguf == stem }) { return "\(e.hf).\(leaf)" }
    let parts = stem.split(separator: ".", maxSplits: 2)
    guard parts.count == 3, parts[0] == "blk", let l = Int(parts[1]),
          let m = ggufLayerNames.first(where: { $0.gguf == parts[2] }) else { return nil }
    return "encoder.layer.\(l).\(m.hf).\(leaf)"
}

/// A GGUF export: the file and what the export had to say.
public struct GGUFExport {
    public var file: GGUFFile
    /// Tensors that fell back to F16 because their rows are not whole blocks.
    public var fallbacks: [String]
    public var notes: [String]
}

/// Builds the GGUF file of `model` with matrices stored as `type`, except the matrix kinds in
/// `keepF16` (see ``ggufMatrixKinds``), which a Q8_0 / Q4_0 file stores as F16; nil takes
/// ``ggufQ8DefaultF16Kinds`` for a Q8_0 export of an fp32 model and none otherwise.
public func ggufExport(_ model: ExportModel, type: GGMLType, name: String, keepF16: Set<String>? = nil) throws -> GGUFExport {
    var notes: [String] = []
    if let unknown = keepF16?.subtracting(ggufMatrixKinds).sorted().first {
        throw ExportError("--keep-f16: unknown tensor kind '\(unknown)' — use \(ggufMatrixKinds.joined(separator: ", ")), or none")
    }
    let keep = type.blockSize == 1 ? [] : keepF16 ?? (type == .q8_0 && model.quantized.isEmpty ? ggufQ8DefaultF16Kinds : [])
    var model = model
    if model.hasPerLayerShapes {
        model = try model.paddedToUniformShapes()
        notes.append("per-layer head counts / FFN widths padded with zeros to \(model.config.headCount) heads and FFN \(model.config.intermediateSize): llama.cpp's BERT takes one of each (outputs unchanged, no speed-up)")
    }
    let c = model.config
    guard model.vocabulary.count == c.vocabSize else {
        throw ExportError("the vocabulary has \(model.vocabulary.count) tokens but vocab_size is \(c.vocabSize)")
    }
    var ids: [String: Int] = [:]
    for (key, token) in bertSpecialTokens {
        guard let i = model.vocabulary.firstIndex(of: token) else {
            if key == "mask_token" { continue }
            throw ExportError("the vocabulary has no \(token) token, which llama.cpp's BERT tokenizer needs (\(key))")
        }
        ids[key] = i
    }
    let control = Set(bertSpecialTokens.map(\.token))
    let tokenTypes = model.vocabulary.map { control.contains($0) ? GGUFTokenType.control : GGUFTokenType.normal }
    let phantom = model.vocabulary.map { t -> String in
        control.contains(t) ? t : t.hasPrefix("##") ? String(t.dropFirst(2)) : "\u{2581}" + t
    }
    var tokenizerOptions: [String: JSONValue] = ["do_lower_case": .bool(model.lowercase), "tokenize_chinese_chars": .bool(model.tokenizeChineseChars)]
    if let s = model.stripAccents { tokenizerOptions["strip_accents"] = .bool(s) }
    var metadata: [(key: String, value: GGUFValue)] = [
        ("general.architecture", .string("bert")),
        ("general.name", .string(name)),
        ("general.file_type", .uint32(ggufFileTypes[type]!)),
        ("general.alignment", .uint32(UInt32(ggufDefaultAlignment))),
        ("bert.context_length", .uint32(UInt32(c.maxPositions))),
        ("bert.embedding_length", .uint32(UInt32(c.hiddenSize))),
        ("bert.feed_forward_length", .uint32(UInt32(c.intermediateSize))),
        ("bert.block_count", .uint32(UInt32(c.layerCount))),
        ("bert.attention.head_count", .uint32(UInt32(c.headCount))),
        ("bert.attention.layer_norm_epsilon", .float32(c.layerNormEps)),
        ("bert.attention.causal", .bool(false)),
        ("bert.pooling_type", .uint32(ggufPoolingTypes[model.pooling] ?? 0)),
        ("tokenizer.ggml.model", .string("bert")),
        ("tokenizer.ggml.pre", .string("default")),
        ("tokenizer.ggml.tokens", .strings(phantom)),
        ("tokenizer.ggml.token_type", .int32s(tokenTypes)),
        ("tokenizer.ggml.token_type_count", .uint32(UInt32(c.typeVocabSize))),
        ("tokenizer.ggml.bos_token_id", .uint32(UInt32(ids["cls_token"]!))),
        ("tokenizer.ggml.cls_token_id", .uint32(UInt32(ids["cls_token"]!))),
        ("tokenizer.ggml.seperator_token_id", .uint32(UInt32(ids["sep_token"]!))),
        ("tokenizer.ggml.unknown_token_id", .uint32(UInt32(ids["unk_token"]!))),
        ("tokenizer.ggml.padding_token_id", .uint32(UInt32(ids["pad_token"]!))),
        ("tokenizer.ggml.add_bos_token", .bool(true)),
        ("tokenizer.ggml.add_sep_token", .bool(true)),
        ("tokenizer.ggml.add_eos_token", .bool(false)),
        ("distillery.format_version", .uint32(distilleryGGUFVersion)),
        ("distillery.config_json", .string(model.configJSON)),
        ("distillery.tokenizer_json", .string(try JSONCoding.string(JSONValue.object(tokenizerOptions)))),
        ("distillery.pooling", .string(model.pooling)),
        ("distillery.normalize", .bool(model.normalize)),
        ("distillery.max_length", .uint32(UInt32(model.maxLength))),
    ]
    if let mask = ids["mask_token"] { metadata.append(("tokenizer.ggml.mask_token_id", .uint32(UInt32(mask)))) }
    var tensors: [GGUFTensor] = []
    var fallbacks: [String] = []
    var keptF16: [String] = []
    var dropped: [String] = []
    // The classifier head, where llama.cpp's BERT has one (rank pooling, see the header).
    var heads: [String: String] = [:]
    if model.hasClassifier {
        heads = ["classifier.weight": "cls.output.weight", "classifier.bias": "cls.output.bias"]
        if c.classifierPooling == .cls { heads["pooler.dense.weight"] = "cls.weight"; heads["pooler.dense.bias"] = "cls.bias" }
        let classes = try model.tensor("classifier.weight").shape[0]
        let labels = c.labels.count == classes ? c.labels : (0..<classes).map { "LABEL_\($0)" }
        metadata.append(("bert.classifier.output_labels", .strings(labels)))
        metadata.append(("bert.classifier.pooling_type", .uint32(ggufPoolingTypes[c.classifierPooling.rawValue] ?? 2)))
        if let i = metadata.firstIndex(where: { $0.key == "bert.pooling_type" }) { metadata[i].value = .uint32(ggufRankPooling) }
        notes.append("classifier head as llama.cpp's rank head (bert.pooling_type = rank: \(c.classifierPooling == .cls ? "[CLS] → cls (dense + tanh, the pooler) → cls.output" : "mean → cls.output, bert.classifier.pooling_type = mean"), F32): llama.cpp returns the \(classes) logits per sequence; create the context with pooling_type \(model.pooling == "cls" ? "cls (2)" : "mean (1)") for embeddings")
    }
    var rounding = ScaleRounding(), reused = 0
    for (hf, t) in model.tensors {
        guard let g = ggufName(hf) ?? heads[hf] else { dropped.append(hf); continue }
        let isMatrix = heads[hf] == nil && t.shape.count == 2 && (hf.hasSuffix("dense.weight") || hf.hasSuffix("query.weight") || hf.hasSuffix("key.weight")
                                              || hf.hasSuffix("value.weight") || hf == "embeddings.word_embeddings.weight")
        var stored: GGMLType = isMatrix ? type : .f32
        if stored.blockSize > 1, let kind = ggufMatrixKind(g), keep.contains(kind) {
            stored = .f16
            keptF16.append(g)
        } else if stored.blockSize > 1 && t.shape[1] % stored.blockSize != 0 {
            stored = .f16
            fallbacks.append(g)
        }
        var data: Data? = nil
        if let q = model.quantized[hf], isMatrix, stored == .q8_0 || stored == .q4_0 {
            let target: GGMLTypeName = stored == .q8_0 ? .q8_0 : .q4_0
            if let reason = ggmlLayoutMismatch(q, type: target) {
                throw ExportError("\(hf) cannot go into \(stored.name.uppercased()) blocks as it is stored: \(reason) — export with --type \(stored == .q8_0 ? "q4_0" : "q8_0") if that matches the file's scheme, --type f16 (its dequantized values), or quantize the fp32 model with the matching scheme")
            }
            switch q8OrQ4(q, target, &rounding) {
            case .success(let d): data = d; reused += 1
            case .failure(let e): throw ExportError("\(hf): \(e.description) — export with --type f16")
            }
        }
        tensors.append(GGUFTensor(name: g, dimensions: t.shape.reversed(), type: stored, data: data ?? ggmlEncode(t.data, as: stored)))
    }
    if reused > 0 {
        var line = "\(reused) kd-quantized weights taken into \(type.name.uppercased()) blocks as stored, not quantized again"
        if type == .q8_0 {
            line += String(format: "; the per-row int8 scale rounded to fp16 changed %d of %d rows (each weight by ≤ %.2g of itself)",
                           rounding.changedRows, rounding.rows, rounding.maxRelativeChange)
            if rounding.subnormalRows > 0 { line += "; \(rounding.subnormalRows) rows have scales below fp16's normal range (coarser rounding)" }
        } else {
            line += " (bit-exact: same fp16 scales and codes)"
        }
        notes.append(line)
    }
    let fp32Matrices = tensors.filter { $0.type == type && model.quantized[hfName($0.name) ?? ""] == nil && $0.name != "token_embd.weight" }.count
    if !model.quantized.isEmpty && type.blockSize > 1 && fp32Matrices > 0 {
        notes.append("\(fp32Matrices) matrices were fp32 in the file and were quantized to \(type.name.uppercased()) here")
    }
    if !keptF16.isEmpty {
        let kinds = ggufMatrixKinds.filter(keep.contains).joined(separator: ", ")
        let extra = keptF16.compactMap { g in tensors.first { $0.name == g } }.reduce(0) { $0 + $1.data.count - type.byteCount(elements: $1.count) }
        notes.append("\(keptF16.count) matrices kept at F16 (\(kinds)\(keepF16 == nil ? ", the Q8_0 default" : "")): llama.cpp multiplies them in F16 instead of quantizing their inputs to Q8_0 (closer to fp32), \(extra) bytes more than all-\(type.name.uppercased()); --keep-f16 none for a plain \(type.name.uppercased()) file")
    }
    if !dropped.isEmpty {
        notes.append("left out \(dropped.joined(separator: ", ")): llama.cpp's BERT runs a pooler only in front of a classifier (rank pooling)")
    }
    if !fallbacks.isEmpty {
        notes.append("\(fallbacks.count) tensors have rows not divisible by 32 and are stored as F16 instead of \(type.name.uppercased()): \(fallbacks.joined(separator: ", "))")
    }
    return GGUFExport(file: GGUFFile(metadata: metadata, tensors: tensors), fallbacks: fallbacks, notes: notes)
}

/// A BERT model read back from a GGUF file (ours or llama.cpp's converter's).
public struct GGUFBertModel {
    public var tensors: [(name: String, tensor: Tensor)]
    public var configJSON: String
    public var vocabulary: [String]
    /// Tokenizer options as HF tokenizer_config.json keys.
    public var tokenizerJSON: String
    public var pooling: String
    public var normalize: Bool
}

/// Reads a llama.cpp BERT GGUF into HF-named tensors (dequantized), config, vocabulary and
/// settings; `source` names the file in errors.
public func readGGUFBert(_ file: GGUFFile, source: String) throws -> GGUFBertModel {
    func fail(_ key: String, _ message: String) -> ExportError { ExportError("\(source): \(key): \(message)") }
    func int(_ key: String) throws -> Int {
        guard let v = file[key]?.intValue, v >= 0 else { throw fail(key, file[key] == nil ? "missing — is this a BERT GGUF?" : "expected a non-negative integer") }
        return v
    }
    guard file["general.architecture"]?.stringValue == "bert" else {
        throw fail("general.architecture", "is \(file["general.architecture"].map { "\($0)" } ?? "missing"), expected \"bert\" — only llama.cpp's BERT architecture is imported")
    }
    guard file["tokenizer.ggml.model"]?.stringValue == "bert" else { throw fail("tokenizer.ggml.model", "expected \"bert\" (WordPiece)") }
    guard let tokens = file["tokenizer.ggml.tokens"]?.arrayValue?.compactMap(\.stringValue), !tokens.isEmpty else {
        throw fail("tokenizer.ggml.tokens", "missing or not an array of strings")
    }
    let types = file["tokenizer.ggml.token_type"]?.arrayValue?.compactMap(\.intValue) ?? []
    guard types.count == tokens.count else {
        throw fail("tokenizer.ggml.token_type", "has \(types.count) entries for \(tokens.count) tokens")
    }
    let vocabulary = zip(tokens, types).map { token, type -> String in
        if type == Int(GGUFTokenType.control) { return token }
        return token.hasPrefix("\u{2581}") ? String(token.dropFirst()) : "##" + token
    }
    var tensors: [(name: String, tensor: Tensor)] = []
    for t in file.tensors {
        guard let hf = hfName(t.name) ?? ggufHeadNames[t.name] else { throw fail(t.name, "is not a tensor of llama.cpp's BERT") }
        tensors.append((hf, Tensor(shape: t.shape, data: t.floats())))
    }
    guard let embedding = tensors.first(where: { $0.name == "embeddings.word_embeddings.weight" })?.tensor else {
        throw fail("token_embd.weight", "missing")
    }
    guard embedding.shape[0] == vocabulary.count else {
        throw fail("tokenizer.ggml.tokens", "has \(vocabulary.count) tokens but token_embd.weight has \(embedding.shape[0]) rows — the vocabulary does not belong to these weights")
    }
    let pooling: String
    if let stored = file["distillery.pooling"]?.stringValue { pooling = stored } else {
        pooling = [0: "none", 1: "mean", 2: "cls", 4: "cls"][file["bert.pooling_type"]?.intValue ?? 0] ?? "none"
    }
    let configJSON: String
    if let stored = file["distillery.config_json"]?.stringValue {
        configJSON = stored
    } else {
        guard let eps = file["bert.attention.layer_norm_epsilon"]?.doubleValue else { throw fail("bert.attention.layer_norm_epsilon", "missing or not a float") }
        let typeRows = try tensors.first { $0.name == "embeddings.token_type_embeddings.weight" }?.tensor.shape[0]
            ?? int("tokenizer.ggml.token_type_count")
        let config: [String: JSONValue] = [
            "model_type": .string("bert"), "architectures": .array([.string("BertModel")]),
            "vocab_size": .int(vocabulary.count), "hidden_size": .int(try int("bert.embedding_length")),
            "num_hidden_layers": .int(try int("bert.block_count")), "num_attention_heads": .int(try int("bert.attention.head_count")),
            "intermediate_size": .int(try int("bert.feed_forward_length")), "max_position_embeddings": .int(try int("bert.context_length")),
            "type_vocab_size": .int(typeRows), "layer_norm_eps": .double(eps),
            "pad_token_id": .int(file["tokenizer.ggml.padding_token_id"]?.intValue ?? 0), "hidden_act": .string("gelu"),
        ]
        configJSON = try JSONCoding.string(JSONValue.object(config), pretty: true)
    }
    return GGUFBertModel(tensors: tensors, configJSON: configJSON, vocabulary: vocabulary,
                         tokenizerJSON: file["distillery.tokenizer_json"]?.stringValue ?? "{\"do_lower_case\": true}",
                         pooling: pooling, normalize: file["distillery.normalize"]?.boolValue ?? (file["distillery.pooling"] == nil && pooling != "none"))
}

/// The ggml blocks of a kd-quantized weight whose layout matches `type`.
private func q8OrQ4(_ q: QuantizedTensor, _ type: GGMLTypeName, _ rounding: inout ScaleRounding) -> Result<Data, ExportError> {
    type == .q8_0 ? q8_0Blocks(q, rounding: &rounding) : .success(q4_0Blocks(q))
}
