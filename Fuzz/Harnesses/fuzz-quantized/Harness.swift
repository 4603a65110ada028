// Fuzzes the quantized weights of a model file (`kd quantize`'s layout, TeacherFile.swift)
// and the loads that run them. The bytes become a tiny BERT whose quantized tensors have
// hostile formats, shapes, `columns` attributes, values, scales, zero points and input
// scales, sometimes on tensors that are never quantized (LayerNorm, token types) or with
// a part missing. The harness writes them as a well-formed HDF5 file with the library's
// own writers (which check nothing the reader relies on); then the file is read each way
// — dequantized (fine-tuning, export), as an inference load that keeps only the quantized
// storage, and as one that also reads the fp32 tensors straight into the encoder's block —
// and whatever is accepted is built into an encoder and run.
// As fuzz-hdf5: libhdf5's own parser is not the target.
import DistilleryModel
import DistilleryTensor
import FuzzSupport
import Foundation
import WeightIO

let configJSON = """
{"hidden_size": 128, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 256, "vocab_size": 12,
 "max_position_embeddings": 8, "type_vocab_size": 2, "layer_norm_eps": 1e-12}
"""
let config = try! BertConfig(json: configJSON)
let shapes = bertParameterShapes(config, heads: BertHeads(pooler: true, classifierLabels: 0))
let vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + (0..<8).map { "w\($0)" }
/// Mostly the weights `kd quantize` quantizes (2-D), sometimes any tensor.
let weights = shapes.filter { $0.shape.count == 2 && !$0.name.contains("token_type") }.map(\.name)
let formats = ["int8", "int4-g32-sym", "int4-g32-asym", "int4-g64-asym", "int4-g128-sym", "bf16"]

/// Writes tensor `name` of `shape` in quantized form, with whatever the bytes say is wrong.
/// A zero byte (also what the reader yields past the end) always takes the benign branch.
func writeQuantized(_ name: String, _ shape: [Int], _ r: inout FuzzReader, _ file: HDF5File) throws {
    let hostile = r.byte() % 4 == 3
    func odd(_ m: UInt8) -> Bool { hostile && r.byte() % m == m - 1 }
    let format = odd(4) ? r.string(12) : formats[r.count(formats.count - 1)]
    let rows = odd(2) ? r.count(40) : shape[0]
    let columns = odd(2) ? r.int() : shape.count > 1 ? shape[1] : 1
    let group = format.hasPrefix("int4-g") ? Int(format.dropFirst(6).prefix { $0.isNumber }) ?? 32 : 1
    let natural = format == "int8" || format == "bf16" ? columns : columns / 2
    let width = odd(2) ? r.count(300) : min(max(natural, 0), 512)
    // The values: a little generator seeded by one byte, so big tensors cost few fuzz bytes.
    var state = UInt32(r.byte()) &* 2654435761 &+ 1
    func next() -> UInt8 { state = state &* 1664525 &+ 1013904223; return UInt8(truncatingIfNeeded: state >> 24) }
    let bytes = (0..<(rows * width)).map { _ in next() }
    if format == "bf16" {   // small positive values unless hostile (random bit patterns: NaN and Inf among them)
        try file.writeUInt16s(bytes.map { (hostile ? UInt16($0) : UInt16(0x3C + $0 % 4)) << 8 | UInt16(next()) },
                              shape: [rows, width], at: name)
    } else {
        try file.writeUInt8s(bytes, shape: [rows, width], at: name)
    }
    try file.setAttribute("quantization", string: format, at: name)
    if !odd(4) { try file.setAttribute("columns", int: columns, at: name) }
    if r.byte() % 8 == 7 { try file.setAttribute("input_scale", double: Double(hostile ? r.float() : Float(1 + r.count(100)) / 64), at: name) }
    func scale() -> Float { odd(2) ? r.float() : Float(Float16(Float(1 + r.count(200)) / 4096)) }
    let groups = max(0, min(columns, 512)) / max(group, 1)
    let scaleCount = odd(2) ? r.count(50) : format == "int8" ? rows : rows * groups
    if format == "int8" {
        try file.writeTensor(Tensor(shape: [scaleCount], data: (0..<scaleCount).map { _ in scale() }), at: name + ".scales")
    } else if format.hasPrefix("int4") || hostile {
        let halves = (0..<scaleCount).map { _ in odd(4) ? UInt16(r.byte()) << 8 | UInt16(r.byte()) : Float16(scale()).bitPattern }
        try file.writeUInt16s(halves, shape: [scaleCount], at: name + ".scales")
        if format.hasSuffix("asym") || odd(8) {
            try file.writeUInt8s((0..<scaleCount).map { _ in hostile ? r.byte() : next() % 16 }, shape: [scaleCount], at: name + ".zeros")
        }
    }
}

/// The model file from the fuzz bytes: every tensor of the tiny BERT, some quantized.
func writeModel(_ r: inout FuzzReader, to url: URL) throws {
    let file = try HDF5File.create(url)
    try file.setAttribute("format", string: "distillery-teacher")
    try file.setAttribute("format_version", int: 2)
    try file.setAttribute("config_json", string: configJSON)
    try file.setAttribute("pooling", string: "mean")
    try file.setAttribute("normalize", int: 0)
    try file.setAttribute("tokenizer_json", string: "{}")
    try file.writeBytes(Array(vocabulary.map { $0 + "\n" }.joined().utf8), at: "__vocab__")
    var chosen = Set<String>()
    for _ in 0..<r.count(6) {
        chosen.insert(r.byte() % 4 == 3 ? shapes[r.count(shapes.count - 1)].name : weights[r.count(weights.count - 1)])
    }
    for (i, (name, shape)) in shapes.enumerated() {
        if chosen.contains(name) {
            try writeQuantized(name, shape, &r, file)
        } else {   // fp32; now and then with a hostile value (NaN, Inf), a wrong shape, or left out
            let fault = r.byte() % 16
            if fault == 13 { continue }
            let stored = fault == 14 ? [shape[0] + 1] + shape.dropFirst() : shape
            let n = stored.reduce(1, *)
            var values = (0..<n).map { Float(($0 * 7 + i) % 13) / 64 - 0.1 }
            if fault == 15, n > 0 { values[r.count(n - 1)] = r.float() }
            try file.writeTensor(Tensor(shape: stored, data: values), at: name)
        }
    }
    try file.close()
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    var r = FuzzReader(fuzzData(start, count))
    let url = Scratch.directory.appendingPathComponent("model.h5")
    guard (try? writeModel(&r, to: url)) != nil else { return 0 }
    let length = 2 + r.count(6)
    let ids: [Int32] = [2] + (0..<(length - 2)).map { _ in Int32(4 + r.count(7)) } + [3]
    let batch = EncoderBatch(ids: ids, batchSize: 1, sequenceLength: length)
    for weights in [TeacherFile.WeightLoading.dequantized, .quantizedKept, .inPlace] {
        guard let model = try? TeacherFile.read(url, weights: weights) else { continue }
        let tensors = Dictionary(model.tensors.map { ($0.name, $0.tensor) }, uniquingKeysWith: { _, last in last })
        let built = weights == .inPlace
            ? try? BertEncoder(config: config, source: model.floatSource ?? .draining(tensors), quantized: model.quantized)
            : try? BertEncoder(config: config, tensors: tensors, quantized: model.quantized)
        guard let encoder = built else { continue }
        guard let out = try? encoder.forward(batch) else { continue }
        precondition(out.lastHidden.shape == [1, length, 128])
    }
    return 0
}
