// ONNXExport: a BERT model as an ONNX graph (opset 17; fp32, int8 or int4 Linear layers),
// protobuf written by hand.
//
// Field numbers from onnx/onnx.proto: ModelProto {ir_version 1, graph 7, opset_import 8,
// producer_name 2}, GraphProto {node 1, name 2, initializer 5, input 11, output 12},
// NodeProto {input 1, output 2, name 3, op_type 4, attribute 5}, AttributeProto {name 1,
// f 2, i 3, type 20}, TensorProto {dims 1, data_type 2, name 8, raw_data 9},
// ValueInfoProto {name 1, type 2}, TypeProto.tensor_type 1 {elem_type 1, shape 2},
// TensorShapeProto.dim 1 {dim_value 1, dim_param 2}.
// The graph is HF's BertModel written with standard ops: Gather embeddings (positions from
// Range over the sequence length), LayerNormalization, MatMul + Add projections with
// weights stored transposed [in, out], attention as Reshape/Transpose/MatMul/Softmax with
// an additive mask bias, exact-erf GELU; then the model's pooling (+ L2 normalize) and
// heads. Inputs `input_ids`, `attention_mask`, `token_type_ids` (int64 [batch, sequence]);
// outputs `last_hidden_state`, `sentence_embedding` when the model pools, `logits` with a
// classifier. Per-layer head counts and FFN widths are taken as they are (no padding).
// int8: DynamicQuantizeLinear + MatMulInteger with per-channel int8 weights (ORT's dynamic
// form; measured 1.7–2.4× faster than QDQ and than fp32 on ORT 1.32 here, but one uint8
// scale per activation tensor costs accuracy on MiniLM — see the Intel export results);
// int4: com.microsoft MatMulNBits. NodeProto.domain is field 7. Left out on purpose: QDQ
// (slower here), fused attention contrib ops (ORT fuses the standard pattern itself).
import DistilleryModel
import DistilleryTensor
import Foundation

/// ONNX IR version written (opset 17 needs IR ≥ 8).
let onnxIRVersion = 8
/// The ONNX opset written.
public let onnxOpset = 17
/// Additive bias on the scores of padding positions: exp underflows to exactly 0 after
/// the row max is subtracted, as with HF's dtype-min mask.
let onnxMaskBias: Float = -1e9

/// ONNX tensor element types used here.
private enum ONNXType { static let float = 1, uint8 = 2, int8 = 3, int64 = 7 }
/// MatMulNBits `accuracy_level` 4: activations quantized to int8 per block for the int8 dot
/// products (ORT's fast CPU path; kd's int4 kernels also run int8 activations).
let onnxNBitsAccuracyLevel = 4

/// The weights of an ONNX export.
public enum ONNXWeights: Sendable {
    /// fp32 everywhere.
    case fp32
    /// int8 per-output-channel Linear weights as ORT's dynamic form (DynamicQuantizeLinear +
    /// MatMulInteger), int8 row-wise embedding tables.
    case int8
    /// int4 Linear weights as com.microsoft MatMulNBits (groups of 32 unless the file's own);
    /// embedding tables as int8 codes with the int4 groups' scales.
    case int4
}

/// An embedding table's int8 codes, scales [rows, groups] and group count: int8 as stored,
/// int4 as the signed codes q − zero (−15…15), exact with the groups' scales.
private func embeddingCodes(_ q: QuantizedTensor) -> (codes: [UInt8], scales: [Float], groups: Int) {
    switch q.format {
    case .int8: return (q.values, q.scales, 1)
    case .int4(let g, _):
        let groups = q.columns / g
        var codes = [UInt8](repeating: 0, count: q.rows * q.columns)
        for r in 0..<q.rows {
            for c in 0..<q.columns {
                let byte = q.values[r * q.columns / 2 + c / 2]
                let code = Int(c % 2 == 0 ? byte & 15 : byte >> 4) - Int(q.zeros[r * groups + c / g])
                codes[r * q.columns + c] = UInt8(bitPattern: Int8(code))
            }
        }
        return (codes, q.scales, groups)
    case .bf16: preconditionFailure("embeddingCodes: bf16 is dequantized before the graph is built")
    }
}

/// A graph under construction: nodes, initializers and fresh value names.
private struct GraphBuilder {
    var nodes: [ProtoMessage] = []
    var initializers: [ProtoMessage] = []
    var counter = 0
    /// Quantized storage of weights by HF name (Linear weights and embedding tables).
    var quantized: [String: QuantizedTensor] = [:]
    /// DynamicQuantizeLinear outputs (codes, scale, zero point) per quantized input.
    var dynamicQuantized: [String: [String]] = [:]

    /// Adds a node and returns its (first) output name.
    @discardableResult
    mutating func node(_ op: String, _ inputs: [String], ints: [String: Int] = [:], floats: [String: Float] = [:],
                       intLists: [String: [Int]] = [:], name: String? = nil, domain: String? = nil) -> String {
        nodeOutputs(op, inputs, count: 1, ints: ints, floats: floats, intLists: intLists, name: name, domain: domain)[0]
    }

    /// Adds a node with `count` outputs and returns their names.
    mutating func nodeOutputs(_ op: String, _ inputs: [String], count: Int, ints: [String: Int] = [:], floats: [String: Float] = [:],
                              intLists: [String: [Int]] = [:], name: String? = nil, domain: String? = nil) -> [String] {
        counter += 1
        let first = name ?? "\(op.lowercased())_\(counter)"
        let outs = [first] + (1..<max(1, count)).map { "\(first)_\($0)" }
        var n = ProtoMessage()
        for i in inputs { n.string(1, i) }
        for o in outs { n.string(2, o) }
        n.string(3, "\(op)_\(counter)")
        n.string(4, op)
        if let domain { n.string(7, domain) }
        for (key, value) in ints.sorted(by: { $0.key < $1.key }) {
            var a = ProtoMessage(); a.string(1, key); a.int(3, value); a.int(20, 2); n.message(5, a)
        }
        for (key, value) in floats.sorted(by: { $0.key < $1.key }) {
            var a = ProtoMessage(); a.string(1, key); a.float(2, value); a.int(20, 1); n.message(5, a)
        }
        for (key, value) in intLists.sorted(by: { $0.key < $1.key }) {
            var a = ProtoMessage(); a.string(1, key); a.packedInts(8, value); a.int(20, 7); n.message(5, a)
        }
        nodes.append(n)
        return outs
    }

    /// Adds an initializer of `shape` from little-endian `raw` bytes; returns its name.
    @discardableResult
    mutating func initializer(_ name: String, shape: [Int], type: Int, raw: [UInt8]) -> String {
        var t = ProtoMessage()
        t.packedInts(1, shape)
        t.int(2, type)
        t.string(8, name)
        t.data(9, raw)
        initializers.append(t)
        return name
    }

    mutating func floats(_ name: String, shape: [Int], _ values: [Float]) -> String {
        initializer(name, shape: shape, type: ONNXType.float, raw: values.withUnsafeBytes { Array($0) })
    }

    mutating func int64s(_ name: String, shape: [Int], _ values: [Int]) -> String {
        initializer(name, shape: shape, type: ONNXType.int64, raw: values.map { Int64($0).littleEndian }.withUnsafeBytes { Array($0) })
    }

    /// A Linear layer: x · Wᵀ + b, in the storage `quantized` gives for `name.weight` (fp32:
    /// W stored transposed as [in, out]).
    mutating func linear(_ x: String, weight: Tensor, bias: Tensor, name: String) -> String {
        let b = floats(name + ".bias", shape: bias.shape, bias.data)
        guard let q = quantized[name + ".weight"] else {
            let w = floats(name + ".weight_t", shape: [weight.shape[1], weight.shape[0]], weight.transposed2D().data)
            return node("Add", [node("MatMul", [x, w]), b])
        }
        switch q.format {
        case .int8:
            // ORT's dynamic form: x → uint8 (per-tensor scale, zero point) shared by the
            // layers reading x; int8 W [in, out] with per-column scales; ORT fuses it into
            // DynamicQuantizeMatMul.
            let dq = dynamicQuantized[x] ?? nodeOutputs("DynamicQuantizeLinear", [x], count: 3)
            dynamicQuantized[x] = dq
            let (N, K) = (q.rows, q.columns)
            var wt = [UInt8](repeating: 0, count: K * N)
            for r in 0..<N { for c in 0..<K { wt[c * N + r] = q.values[r * K + c] } }
            let w = initializer(name + ".weight_t_quantized", shape: [K, N], type: ONNXType.int8, raw: wt)
            let wz = initializer(name + ".weight_t_zero_point", shape: [N], type: ONNXType.int8, raw: [UInt8](repeating: 0, count: N))
            let ws = floats(name + ".weight_t_scale", shape: [N], q.scales)
            let product = node("Cast", [node("MatMulInteger", [dq[0], w, dq[2], wz])], ints: ["to": ONNXType.float])
            return node("Add", [node("Mul", [product, node("Mul", [dq[1], ws])]), b])
        case .int4(let group, _):
            let (N, K) = (q.rows, q.columns)
            let parts = matMulNBitsParts(q)
            var inputs = [x, initializer(name + ".weight_nbits", shape: [N, K / group, group / 2], type: ONNXType.uint8, raw: parts.b),
                          floats(name + ".weight_scales", shape: [N * K / group], parts.scales)]
            if let z = parts.zeros { inputs.append(initializer(name + ".weight_zero_points", shape: [z.count], type: ONNXType.uint8, raw: z)) }
            let y = node("MatMulNBits", inputs, ints: ["K": K, "N": N, "bits": 4, "block_size": group, "accuracy_level": onnxNBitsAccuracyLevel],
                         domain: "com.microsoft")
            return node("Add", [y, b])
        case .bf16:
            preconditionFailure("ONNX export: bf16 weights are dequantized before the graph is built")
        }
    }

    /// Rows `indices` of an embedding table: fp32 Gather, or int8 codes gathered with their
    /// per-group scales and multiplied out (only the rows used are dequantized).
    mutating func embedding(_ table: Tensor, name: String, indices: String) -> String {
        guard let q = quantized[name] else { return node("Gather", [floats(name, shape: table.shape, table.data), indices]) }
        let (codes, scales, groups) = embeddingCodes(q)
        let t = initializer(name + "_quantized", shape: [q.rows, q.columns], type: ONNXType.int8, raw: codes)
        let s = floats(name + "_scales", shape: [q.rows, groups], scales)
        let rows = node("Cast", [node("Gather", [t, indices])], ints: ["to": ONNXType.float])
        let grouped = node("Reshape", [rows, int64s(name + "_group_shape", shape: [3], [-1, groups, q.columns / groups])])
        let groupScales = node("Reshape", [node("Gather", [s, indices]), int64s(name + "_scale_shape", shape: [3], [-1, groups, 1])])
        return node("Reshape", [node("Mul", [grouped, groupScales]), node("Shape", [rows])])
    }

    mutating func layerNorm(_ x: String, _ tensors: [String: Tensor], _ prefix: String, eps: Float) -> String {
        let g = floats(prefix + ".weight", shape: tensors[prefix + ".weight"]!.shape, tensors[prefix + ".weight"]!.data)
        let b = floats(prefix + ".bias", shape: tensors[prefix + ".bias"]!.shape, tensors[prefix + ".bias"]!.data)
        return node("LayerNormalization", [x, g, b], ints: ["axis": -1], floats: ["epsilon": eps])
    }
}

/// A value info: a tensor of `type` with named (dynamic) or fixed dimensions.
private func valueInfo(_ name: String, type: Int, dims: [Any]) -> ProtoMessage {
    var shape = ProtoMessage()
    for d in dims {
        var dim = ProtoMessage()
        if let v = d as? Int { dim.int(1, v) } else { dim.string(2, "\(d)") }
        shape.message(1, dim)
    }
    var tensor = ProtoMessage()
    tensor.int(1, type)
    tensor.message(2, shape)
    var typeProto = ProtoMessage()
    typeProto.message(1, tensor)
    var info = ProtoMessage()
    info.string(1, name)
    info.message(2, typeProto)
    return info
}

/// An ONNX export: the file's bytes, its outputs and notes.
public struct ONNXExport {
    public var data: Data
    public var outputs: [String]
    public var notes: [String]
}

/// Builds the ONNX model of `model` with `weights` (fp32, int8 or int4 Linear layers).
public func onnxExport(_ model: ExportModel, weights: ONNXWeights = .fp32) throws -> ONNXExport {
    let c = model.config
    let t = Dictionary(uniqueKeysWithValues: model.tensors.map { ($0.name, $0.tensor) })
    func w(_ name: String) throws -> Tensor { guard let v = t[name] else { throw ExportError("the model has no tensor '\(name)'") }; return v }
    var g = GraphBuilder()
    var notes: [String] = []
    if weights != .fp32 { (g.quantized, notes) = try onnxQuantizedWeights(model, weights) }
    let ids = "input_ids", mask = "attention_mask", types = "token_type_ids"
    // Embeddings.
    let typ = g.floats("embeddings.token_type_embeddings.weight", shape: try w("embeddings.token_type_embeddings.weight").shape, try w("embeddings.token_type_embeddings.weight").data)
    let zero = g.int64s("const.zero", shape: [], [0]), one = g.int64s("const.one", shape: [], [1])
    let length = g.node("Gather", [g.node("Shape", [ids]), one], ints: ["axis": 0])
    let positions = g.node("Range", [zero, length, one])
    let wordRows = g.embedding(try w("embeddings.word_embeddings.weight"), name: "embeddings.word_embeddings.weight", indices: ids)
    let positionRows = g.embedding(try w("embeddings.position_embeddings.weight"), name: "embeddings.position_embeddings.weight", indices: positions)
    var x = g.node("Add", [g.node("Add", [wordRows, positionRows]), g.node("Gather", [typ, types])])
    x = g.layerNorm(x, t, "embeddings.LayerNorm", eps: c.layerNormEps)
    // Mask bias [B, 1, 1, T]: 0 for tokens, onnxMaskBias for padding.
    let maskFloat = g.node("Cast", [mask], ints: ["to": ONNXType.float])
    let oneF = g.floats("const.one_f", shape: [], [1]), biasScale = g.floats("const.mask_bias", shape: [], [-onnxMaskBias])
    let maskBias = g.node("Unsqueeze", [g.node("Mul", [g.node("Sub", [maskFloat, oneF]), biasScale]), g.int64s("const.axes12", shape: [2], [1, 2])])
    let d = c.headSize
    let scale = g.floats("const.attention_scale", shape: [], [1 / Float(d).squareRoot()])
    let half = g.floats("const.half", shape: [], [0.5]), sqrt2 = g.floats("const.sqrt2", shape: [], [Float(2).squareRoot()])
    for l in 0..<c.layerCount {
        let p = "encoder.layer.\(l)."
        let heads = c.layerHeads[l], width = heads * d
        let split = g.int64s(p + "split_heads", shape: [4], [0, 0, heads, d])
        let merge = g.int64s(p + "merge_heads", shape: [3], [0, 0, width])
        func project(_ m: String) throws -> String {
            g.node("Reshape", [g.linear(x, weight: try w(p + "attention.self.\(m).weight"), bias: try w(p + "attention.self.\(m).bias"), name: p + "attention.self.\(m)"), split])
        }
        let q = g.node("Transpose", [try project("query")], intLists: ["perm": [0, 2, 1, 3]])   // [B, heads, T, d]
        let k = g.node("Transpose", [try project("key")], intLists: ["perm": [0, 2, 3, 1]])     // [B, heads, d, T]
        let v = g.node("Transpose", [try project("value")], intLists: ["perm": [0, 2, 1, 3]])
        let scores = g.node("Add", [g.node("Mul", [g.node("MatMul", [q, k]), scale]), maskBias])
        let probs = g.node("Softmax", [scores], ints: ["axis": -1])
        let context = g.node("Reshape", [g.node("Transpose", [g.node("MatMul", [probs, v])], intLists: ["perm": [0, 2, 1, 3]]), merge])
        let attention = g.linear(context, weight: try w(p + "attention.output.dense.weight"), bias: try w(p + "attention.output.dense.bias"), name: p + "attention.output.dense")
        x = g.layerNorm(g.node("Add", [attention, x]), t, p + "attention.output.LayerNorm", eps: c.layerNormEps)
        let up = g.linear(x, weight: try w(p + "intermediate.dense.weight"), bias: try w(p + "intermediate.dense.bias"), name: p + "intermediate.dense")
        let gelu = g.node("Mul", [g.node("Mul", [up, half]), g.node("Add", [g.node("Erf", [g.node("Div", [up, sqrt2])]), oneF])])
        let down = g.linear(gelu, weight: try w(p + "output.dense.weight"), bias: try w(p + "output.dense.bias"), name: p + "output.dense")
        x = g.layerNorm(g.node("Add", [down, x]), t, p + "output.LayerNorm", eps: c.layerNormEps)
    }
    let hidden = g.node("Identity", [x], name: "last_hidden_state")
    var outputs = [valueInfo(hidden, type: ONNXType.float, dims: ["batch", "sequence", c.hiddenSize])]
    var names = [hidden]
    // Pooling: masked mean (sentence-transformers) or the [CLS] state.
    let axis1 = g.int64s("const.axis1", shape: [1], [1])
    let maskColumn = g.node("Unsqueeze", [maskFloat, g.int64s("const.axis2", shape: [1], [2])])
    let counts = g.node("Max", [g.node("ReduceSum", [maskColumn, axis1], ints: ["keepdims": 0]), g.floats("const.min_count", shape: [], [1e-9])])
    let mean = g.node("Div", [g.node("ReduceSum", [g.node("Mul", [hidden, maskColumn]), axis1], ints: ["keepdims": 0]), counts])
    let cls = g.node("Gather", [hidden, zero], ints: ["axis": 1])
    if model.pooling == "mean" || model.pooling == "cls" {
        var e = model.pooling == "mean" ? mean : cls
        if model.normalize {
            let norm = g.node("Sqrt", [g.node("ReduceSum", [g.node("Mul", [e, e]), axis1], ints: ["keepdims": 1])])
            e = g.node("Div", [e, g.node("Max", [norm, g.floats("const.min_norm", shape: [], [1e-12])])])
        }
        let out = g.node("Identity", [e], name: "sentence_embedding")
        outputs.append(valueInfo(out, type: ONNXType.float, dims: ["batch", c.hiddenSize]))
        names.append(out)
    }
    if let classifier = t["classifier.weight"] {
        var features = mean
        if c.classifierPooling == .cls {
            features = g.node("Tanh", [g.linear(cls, weight: try w("pooler.dense.weight"), bias: try w("pooler.dense.bias"), name: "pooler.dense")])
        }
        let logits = g.node("Identity", [g.linear(features, weight: classifier, bias: try w("classifier.bias"), name: "classifier")], name: "logits")
        outputs.append(valueInfo(logits, type: ONNXType.float, dims: ["batch", classifier.shape[0]]))
        names.append(logits)
    }
    var graph = ProtoMessage()
    for n in g.nodes { graph.message(1, n) }
    graph.string(2, "distillery_bert")
    for i in g.initializers { graph.message(5, i) }
    // The weights are in `graph` now: each copy is let go of as soon as the next one holds
    // them (initializers, graph, model), so at most two are resident at once.
    g.initializers = []
    for input in [ids, mask, types] { graph.message(11, valueInfo(input, type: ONNXType.int64, dims: ["batch", "sequence"])) }
    for o in outputs { graph.message(12, o) }
    var opset = ProtoMessage()
    opset.string(1, "")
    opset.int(2, onnxOpset)
    var modelProto = ProtoMessage()
    modelProto.int(1, onnxIRVersion)
    modelProto.string(2, "distillery")
    modelProto.message(7, graph)
    graph = ProtoMessage()
    modelProto.message(8, opset)
    if g.nodes.isEmpty == false && weights == .int4 {
        var contrib = ProtoMessage()
        contrib.string(1, "com.microsoft")
        contrib.int(2, 1)
        modelProto.message(8, contrib)
    }
    let data = Data(modelProto.bytes)
    modelProto = ProtoMessage()
    return ONNXExport(data: data, outputs: names, notes: notes)
}

/// The quantized storage an int8 / int4 ONNX export gives each Linear weight (pooler
/// included, classifier not: kd keeps it fp32) and the word and position tables: a
/// kd-quantized file's own when its layout fits the graph (int8 for int8; int4 in any
/// group size for MatMulNBits and the tables), else quantized here as `kd quantize` would
/// (int8 per row; int4 symmetric groups of 32); with notes saying which.
func onnxQuantizedWeights(_ model: ExportModel, _ weights: ONNXWeights) throws -> ([String: QuantizedTensor], [String]) {
    var names = ["embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight"]
    for l in 0..<model.config.layerCount {
        let p = "encoder.layer.\(l)."
        names += ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
                  "intermediate.dense", "output.dense"].map { p + $0 + ".weight" }
    }
    if model.config.classifierPooling == .cls, model.tensors.contains(where: { $0.name == "pooler.dense.weight" }) { names.append("pooler.dense.weight") }
    var plan: [String: QuantizedTensor] = [:]
    var reused = 0, requantized: [String] = [], quantizedHere = 0, kept: [String] = []
    for name in names {
        let t = try model.tensor(name)
        let stored = model.quantized[name]
        switch (weights, stored?.format) {
        case (.int8, .int8?), (.int4, .int4?):
            plan[name] = stored
            reused += 1
            continue
        case (.fp32, _):
            continue
        default: break
        }
        if stored != nil { requantized.append("\(name) (\(stored!.format))") } else { quantizedHere += 1 }
        let format: QuantizedTensor.Format = weights == .int8 ? .int8 : .int4(group: 32, symmetric: true)
        if weights == .int4 && t.shape[1] % 32 != 0 { kept.append(name); continue }
        guard t.allFinite else { throw ExportError("tensor '\(name)' holds non-finite values and cannot be quantized") }
        plan[name] = QuantizedTensor(quantizing: t, as: format)
    }
    var notes: [String] = []
    let form = weights == .int8 ? "int8 (DynamicQuantizeLinear + MatMulInteger, per-channel weight scales; int8 embedding rows)"
                                : "int4 (com.microsoft MatMulNBits, accuracy_level \(onnxNBitsAccuracyLevel); embedding tables as int8 codes with the int4 group scales)"
    notes.append("weights: \(form); \(reused) taken from the file as stored, \(quantizedHere) quantized here")
    if !requantized.isEmpty {
        notes.append("\(requantized.count) weights stored in another format were quantized again from their dequantized values: \(requantized.joined(separator: ", "))")
    }
    if !kept.isEmpty { notes.append("kept fp32 (rows not whole groups of 32): \(kept.joined(separator: ", "))") }
    return (plan, notes)
}
