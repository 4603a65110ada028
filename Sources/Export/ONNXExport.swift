// ONNXExport: a BERT model as an fp32 ONNX graph (opset 17), protobuf written by hand.
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
// Left out on purpose: int8/int4 (QDQ, MatMulInteger, MatMulNBits) — they come with the
// quantized formats; fused contrib ops (ORT fuses the standard pattern itself).
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
private enum ONNXType { static let float = 1, int64 = 7 }

/// A graph under construction: nodes, initializers and fresh value names.
private struct GraphBuilder {
    var nodes: [ProtoMessage] = []
    var initializers: [ProtoMessage] = []
    var counter = 0

    /// Adds a node and returns its (first) output name.
    @discardableResult
    mutating func node(_ op: String, _ inputs: [String], ints: [String: Int] = [:], floats: [String: Float] = [:],
                       intLists: [String: [Int]] = [:], name: String? = nil) -> String {
        counter += 1
        let out = name ?? "\(op.lowercased())_\(counter)"
        var n = ProtoMessage()
        for i in inputs { n.string(1, i) }
        n.string(2, out)
        n.string(3, "\(op)_\(counter)")
        n.string(4, op)
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
        return out
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

    /// A Linear layer: x · Wᵀ + b with W stored transposed as [in, out].
    mutating func linear(_ x: String, weight: Tensor, bias: Tensor, name: String) -> String {
        let w = floats(name + ".weight_t", shape: [weight.shape[1], weight.shape[0]], weight.transposed2D().data)
        let b = floats(name + ".bias", shape: bias.shape, bias.data)
        return node("Add", [node("MatMul", [x, w]), b])
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

/// Builds the fp32 ONNX model of `model`.
public func onnxExport(_ model: ExportModel) throws -> ONNXExport {
    let c = model.config
    let t = Dictionary(uniqueKeysWithValues: model.tensors.map { ($0.name, $0.tensor) })
    func w(_ name: String) throws -> Tensor { guard let v = t[name] else { throw ExportError("the model has no tensor '\(name)'") }; return v }
    var g = GraphBuilder()
    let ids = "input_ids", mask = "attention_mask", types = "token_type_ids"
    // Embeddings.
    let word = g.floats("embeddings.word_embeddings.weight", shape: try w("embeddings.word_embeddings.weight").shape, try w("embeddings.word_embeddings.weight").data)
    let pos = g.floats("embeddings.position_embeddings.weight", shape: try w("embeddings.position_embeddings.weight").shape, try w("embeddings.position_embeddings.weight").data)
    let typ = g.floats("embeddings.token_type_embeddings.weight", shape: try w("embeddings.token_type_embeddings.weight").shape, try w("embeddings.token_type_embeddings.weight").data)
    let zero = g.int64s("const.zero", shape: [], [0]), one = g.int64s("const.one", shape: [], [1])
    let length = g.node("Gather", [g.node("Shape", [ids]), one], ints: ["axis": 0])
    let positions = g.node("Range", [zero, length, one])
    var x = g.node("Add", [g.node("Add", [g.node("Gather", [word, ids]), g.node("Gather", [pos, positions])]), g.node("Gather", [typ, types])])
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
    for input in [ids, mask, types] { graph.message(11, valueInfo(input, type: ONNXType.int64, dims: ["batch", "sequence"])) }
    for o in outputs { graph.message(12, o) }
    var opset = ProtoMessage()
    opset.string(1, "")
    opset.int(2, onnxOpset)
    var modelProto = ProtoMessage()
    modelProto.int(1, onnxIRVersion)
    modelProto.string(2, "distillery")
    modelProto.message(7, graph)
    modelProto.message(8, opset)
    return ONNXExport(data: Data(modelProto.bytes), outputs: names, notes: [])
}
