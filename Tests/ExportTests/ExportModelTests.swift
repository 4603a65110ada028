// The exporters' model transformations: per-layer shapes padded back to uniform ones leave
// every output unchanged; HF ↔ llama.cpp tensor names invert each other; the GGUF of a
// model reads back to the same tensors, vocabulary and settings.
import DistilleryModel
import DistilleryTensor
@testable import Export
import Foundation
import WeightIO
import XCTest

final class ExportModelTests: XCTestCase {
    /// Padding only appends exact zeros; what changes is the summation order of the
    /// attention-output and FFN-down GEMMs over the padded width, which adds zeros —
    /// outputs agree to float rounding of reordered sums.
    static let paddingTolerance: Float = 1e-5

    /// A random two-layer model with per-layer heads (4, 2) and FFN widths (64, 40).
    func prunedModel() throws -> ExportModel {
        var config = BertConfig(vocabSize: 40, hiddenSize: 32, layerCount: 2, headCount: 4, intermediateSize: 64, maxPositions: 16)
        config.layerHeads = [4, 2]
        config.layerIntermediateSizes = [64, 40]
        var rng = SystemRandomNumberGenerator()
        let tensors = bertParameterShapes(config, heads: BertHeads(pooler: false, classifierLabels: 0)).map { name, shape in
            (name, Tensor(shape: shape, data: (0..<shape.reduce(1, *)).map { _ in
                name.hasSuffix("LayerNorm.weight") ? 1 : Float.random(in: -0.2...0.2, using: &rng) }))
        }
        let json = """
        {"vocab_size": 40, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
         "max_position_embeddings": 16, "distillery_layer_heads": [4, 2], "distillery_layer_intermediate_sizes": [64, 40]}
        """
        let vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "##s", "▁odd"] + (7..<40).map { "w\($0)" }
        return ExportModel(tensors: tensors, config: try BertConfig(json: json), configJSON: json, vocabulary: vocabulary,
                           lowercase: true, stripAccents: nil, tokenizeChineseChars: true, pooling: "mean", normalize: true, maxLength: 16)
    }

    func forward(_ model: ExportModel) throws -> [Float] {
        let encoder = try BertEncoder(config: model.config, tensors: Dictionary(uniqueKeysWithValues: model.tensors.map { ($0.name, $0.tensor) }))
        let batch = EncoderBatch(ids: [2, 9, 17, 5, 3, 0, 2, 30, 3, 0, 0, 0], mask: [1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0], batchSize: 2, sequenceLength: 6)
        return try encoder.forward(batch).lastHidden.data
    }

    func testPaddingPerLayerShapesKeepsOutputs() throws {
        let model = try prunedModel()
        XCTAssertTrue(model.hasPerLayerShapes)
        let padded = try model.paddedToUniformShapes()
        XCTAssertFalse(padded.hasPerLayerShapes)
        XCTAssertEqual(try padded.tensor("encoder.layer.1.attention.self.key.weight").shape, [32, 32])
        XCTAssertEqual(try padded.tensor("encoder.layer.1.attention.output.dense.weight").shape, [32, 32])
        XCTAssertEqual(try padded.tensor("encoder.layer.1.intermediate.dense.bias").shape, [64])
        XCTAssertEqual(try padded.tensor("encoder.layer.1.output.dense.weight").shape, [32, 64])
        XCTAssertFalse(padded.configJSON.contains("distillery_layer_heads"))
        let (a, b) = (try forward(model), try forward(padded))
        XCTAssertLessThanOrEqual(zip(a, b).map { abs($0 - $1) }.max()!, Self.paddingTolerance)
    }

    func testNameTablesInvert() throws {
        let model = try prunedModel()
        for (name, _) in model.tensors {
            let g = try XCTUnwrap(ggufName(name), name)
            XCTAssertEqual(hfName(g), name)
        }
        XCTAssertEqual(ggufName("encoder.layer.1.intermediate.dense.weight"), "blk.1.ffn_up.weight")
        XCTAssertEqual(ggufName("embeddings.LayerNorm.bias"), "token_embd_norm.bias")
        XCTAssertNil(ggufName("pooler.dense.weight"))
        XCTAssertNil(hfName("cls.output.weight"))
    }

    func testGGUFReadsBackTheModel() throws {
        let model = try prunedModel()
        let export = try ggufExport(model, type: .f32, name: "t")
        XCTAssertTrue(export.notes.contains { $0.contains("padded") })
        XCTAssertEqual(export.file["tokenizer.ggml.tokens"]?.arrayValue?[5], .string("s"))
        XCTAssertEqual(export.file["tokenizer.ggml.tokens"]?.arrayValue?[6], .string("▁▁odd"))
        XCTAssertEqual(export.file["tokenizer.ggml.tokens"]?.arrayValue?[2], .string("[CLS]"))
        XCTAssertEqual(export.file["tokenizer.ggml.cls_token_id"], .uint32(2))
        XCTAssertEqual(export.file["tokenizer.ggml.seperator_token_id"], .uint32(3))
        XCTAssertEqual(export.file["bert.pooling_type"], .uint32(1))
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("export-test-\(UUID().uuidString).gguf")
        defer { try? FileManager.default.removeItem(at: url) }
        try export.file.serialized().write(to: url)
        let back = try readGGUFBert(try GGUFFile.read(url), source: "t.gguf")
        XCTAssertEqual(back.vocabulary, model.vocabulary)
        let padded = try model.paddedToUniformShapes()
        XCTAssertEqual(back.tensors.map(\.name), padded.tensors.map(\.name))
        for (a, b) in zip(back.tensors, padded.tensors) { XCTAssertEqual(a.tensor.shape, b.tensor.shape); XCTAssertEqual(a.tensor.data, b.tensor.data) }
        XCTAssertEqual(back.pooling, "mean")
        XCTAssertTrue(back.normalize)
    }

    func testKeepF16StoresTheNamedKindsAsF16() throws {
        let model = try prunedModel().paddedToUniformShapes()
        func types(_ e: GGUFExport) -> [String: GGMLType] { Dictionary(uniqueKeysWithValues: e.file.tensors.map { ($0.name, $0.type) }) }
        // Default Q8_0 of an fp32 model: the measured set at F16, every other matrix Q8_0.
        let byDefault = types(try ggufExport(model, type: .q8_0, name: "t"))
        XCTAssertFalse(ggufQ8DefaultF16Kinds.isEmpty)
        for l in 0..<2 {
            for kind in ggufMatrixKinds where kind != "token_embd" {
                XCTAssertEqual(byDefault["blk.\(l).\(kind).weight"], ggufQ8DefaultF16Kinds.contains(kind) ? .f16 : .q8_0, kind)
            }
            XCTAssertEqual(byDefault["blk.\(l).attn_output_norm.weight"], .f32)
        }
        XCTAssertEqual(byDefault["token_embd.weight"], ggufQ8DefaultF16Kinds.contains("token_embd") ? .f16 : .q8_0)
        // None: a plain Q8_0 file (llama.cpp's converter's layout).
        let plain = try ggufExport(model, type: .q8_0, name: "t", keepF16: [])
        XCTAssertEqual(Set(plain.file.tensors.filter { ggufMatrixKind($0.name) != nil }.map(\.type)), [.q8_0])
        XCTAssertFalse(plain.notes.contains { $0.contains("kept at F16") })
        // Named kinds, at Q4_0 too; the F16 values are the model's own (to fp16 rounding).
        let named = try ggufExport(model, type: .q4_0, name: "t", keepF16: ["ffn_down", "token_embd"])
        XCTAssertEqual(types(named)["blk.1.ffn_down.weight"], .f16)
        XCTAssertEqual(types(named)["blk.1.ffn_up.weight"], .q4_0)
        XCTAssertEqual(types(named)["token_embd.weight"], .f16)
        XCTAssertTrue(named.notes.contains { $0.contains("3 matrices kept at F16 (token_embd, ffn_down)") }, "\(named.notes)")
        let down = try XCTUnwrap(named.file.tensors.first { $0.name == "blk.0.ffn_down.weight" })
        let original = try model.tensor("encoder.layer.0.output.dense.weight").data
        XCTAssertEqual(down.floats(), original.map { Float(Float16($0)) })
        XCTAssertThrowsError(try ggufExport(model, type: .q8_0, name: "t", keepF16: ["ffn_gate"])) {
            XCTAssertTrue("\($0)".contains("unknown tensor kind 'ffn_gate'"), "\($0)")
        }
    }

    func testQuantizedRowsNotWholeBlocksFallBackToF16() throws {
        var model = try prunedModel().paddedToUniformShapes()
        model.tensors = model.tensors.map { name, t in
            name == "encoder.layer.0.output.dense.weight" ? (name, Tensor(shape: [32, 40], data: Array(t.data.prefix(32 * 40)))) : (name, t)
        }
        let export = try ggufExport(model, type: .q8_0, name: "t", keepF16: [])
        XCTAssertEqual(export.fallbacks, ["blk.0.ffn_down.weight"])
        XCTAssertEqual(export.file.tensors.first { $0.name == "blk.0.ffn_down.weight" }?.type, .f16)
        XCTAssertEqual(export.file.tensors.first { $0.name == "blk.0.ffn_up.weight" }?.type, .q8_0)
        XCTAssertEqual(export.file.tensors.first { $0.name == "position_embd.weight" }?.type, .f32)
        XCTAssertTrue(export.notes.contains { $0.contains("F16 instead of Q8_0") })
    }
}
