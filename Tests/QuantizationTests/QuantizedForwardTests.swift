// The quantized forward against the fp32 forward of the same model, per scheme, within
// named budgets; mixed plans (Q alone, a unit in another format); a pruned-shape model
// (per-layer FFN widths) quantizing like any other; scheme parsing.
import DistilleryModel
import DistilleryTensor
import Foundation
import Quantization
import TestSupport
import WeightIO
import XCTest

/// Smallest per-token cosine of the last hidden states with fp32's, per scheme, on random
/// small models with trained-BERT-like weight magnitudes. Measured minima (two seeds' worth
/// of shapes): int8 0.99999, int4-g32 0.9975 (asym 0.9983), bf16 0.999999; each budget
/// is the measured value with its error (1 − cos) about doubled.
private let minimumCosine: [QuantizationScheme: Double] = [
    .int8Dynamic: 0.99997, .int4(group: 32, symmetric: true): 0.995, .int4(group: 32, symmetric: false): 0.995, .bf16: 0.999997,
]

final class QuantizedForwardTests: XCTestCase {
    /// A random model: `widths` FFN sizes per layer (pruned shapes when they differ), hidden 64.
    private func randomModel(widths: [Int], seed: UInt64) throws -> (BertConfig, [String: Tensor]) {
        let json = """
        {"hidden_size": 64, "num_hidden_layers": \(widths.count), "num_attention_heads": 4, "intermediate_size": \(widths.max()!),
         "distillery_layer_intermediate_sizes": [\(widths.map(String.init).joined(separator: ","))],
         "vocab_size": 50, "max_position_embeddings": 32, "type_vocab_size": 2, "layer_norm_eps": 1e-12,
         "id2label": {"0": "a", "1": "b", "2": "c"}}
        """
        let config = try BertConfig(json: json)
        var rng = TestRNG(seed: seed)
        let shapes = bertParameterShapes(config, heads: BertHeads(pooler: true, classifierLabels: 3))
        let tensors = Dictionary(uniqueKeysWithValues: shapes.map { s in
            // Trained-BERT-like magnitudes: Linear weights in ±0.1 (std ≈ 0.06), the rest as modelValues.
            let n = s.shape.reduce(1, *)
            return (s.name, Tensor(shape: s.shape, data: s.name.hasSuffix("dense.weight") || s.name.contains("attention.self")
                                   ? rng.floats(n, -0.1, 0.1) : rng.modelValues(for: s.name, count: n)))
        })
        return (config, tensors)
    }

    private func batch(seed: UInt64) -> EncoderBatch {
        var rng = TestRNG(seed: seed)
        let (B, T) = (3, 12)
        let ids = (0..<(B * T)).map { _ in Int32(rng.next() % 50) }
        var mask = [Int32](repeating: 1, count: B * T)
        for t in 9..<T { mask[2 * T + t] = 0 }   // the last sequence is padded
        return EncoderBatch(ids: ids, mask: mask, batchSize: B, sequenceLength: T)
    }

    /// Quantizes every unit of the model with `scheme` and returns the quantized encoder.
    private func quantizedEncoder(_ config: BertConfig, _ tensors: [String: Tensor], plan: QuantizationPlan) throws -> BertEncoder {
        let q = try quantizeWeights(tensors, plan: plan, source: "test")
        var fp = tensors
        for (name, t) in q { fp[name] = t.dequantized() }
        return try BertEncoder(config: config, tensors: fp, quantized: q)
    }

    private func minimumTokenCosine(_ a: Tensor, _ b: Tensor, hidden H: Int, mask: [Int32]) -> Double {
        var worst = 1.0
        for r in 0..<(a.count / H) where mask[r] == 1 {
            var ab = 0.0, aa = 0.0, bb = 0.0
            for c in 0..<H {
                let (x, y) = (Double(a.data[r * H + c]), Double(b.data[r * H + c]))
                ab += x * y; aa += x * x; bb += y * y
            }
            worst = min(worst, ab / (aa * bb).squareRoot())
        }
        return worst
    }

    func testEachSchemeStaysWithinItsCosineBudget() throws {
        for widths in [[128, 128], [96, 32]] {   // the second is a pruned shape
            let (config, tensors) = try randomModel(widths: widths, seed: 7)
            let reference = try BertEncoder(config: config, tensors: tensors)
            let units = quantizationUnits(config: config, heads: reference.heads)
            let input = batch(seed: 11)
            let expected = try reference.forward(input)
            for (scheme, budget) in minimumCosine {
                let encoder = try quantizedEncoder(config, tensors, plan: quantizationPlan(units, scheme: scheme))
                let out = try encoder.forward(input)
                let cos = minimumTokenCosine(out.lastHidden, expected.lastHidden, hidden: 64, mask: input.mask)
                XCTAssertGreaterThanOrEqual(cos, budget, "\(scheme) widths \(widths)")
                XCTAssertLessThan(cos, 1, "\(scheme) widths \(widths): identical to fp32, so the quantized kernels did not run")
            }
        }
    }

    func testMixedPlansRunAndFp32UnitsAreUntouched() throws {
        let (config, tensors) = try randomModel(widths: [128, 64], seed: 3)
        let reference = try BertEncoder(config: config, tensors: tensors)
        let input = batch(seed: 5)
        let expected = try reference.forward(input)
        // An empty plan is the fp32 model, bit for bit.
        XCTAssertEqual(try quantizedEncoder(config, tensors, plan: [:]).forward(input).lastHidden, expected.lastHidden)
        // Q alone (K, V fp32: three matrices), layer 1's FFN in int4, the rest fp32.
        let plan: QuantizationPlan = ["encoder.layer.0.attention.self.query.weight": .int8,
                                      "encoder.layer.1.intermediate.dense.weight": .int4(group: 32, symmetric: true)]
        let out = try quantizedEncoder(config, tensors, plan: plan).forward(input)
        let cos = minimumTokenCosine(out.lastHidden, expected.lastHidden, hidden: 64, mask: input.mask)
        XCTAssertGreaterThanOrEqual(cos, minimumCosine[.int4(group: 32, symmetric: true)]!)
        XCTAssertLessThan(cos, 1)
    }

    /// An inference load keeps quantized weights only in their quantized storage: the encoder
    /// built without their fp32 copies (embedding tables included) gives the same bits as the
    /// one built with them, and its block holds zeros there; an inference-only encoder also
    /// drops the fp32 weights it packed. A quantized tensor the forward would not run
    /// quantized is refused rather than read as zeros.
    func testQuantizedOnlyWeightsGiveTheSameBitsAsTheirDequantizedCopies() throws {
        let (config, tensors) = try randomModel(widths: [128, 96], seed: 13)
        let units = quantizationUnits(config: config, heads: BertHeads(pooler: true, classifierLabels: 3))
        let input = batch(seed: 17)
        for scheme in [QuantizationScheme.int8Dynamic, .int4(group: 32, symmetric: false), .bf16] {
            let q = try quantizeWeights(tensors, plan: quantizationPlan(units, scheme: scheme), source: "test")
            XCTAssertNotNil(q["embeddings.word_embeddings.weight"], "\(scheme)")
            XCTAssertNotNil(q["embeddings.position_embeddings.weight"], "\(scheme)")
            let expected = try quantizedEncoder(config, tensors, plan: quantizationPlan(units, scheme: scheme))
                .forward(input, hiddenStates: true)
            let lean = try BertEncoder(config: config, tensors: tensors.filter { q[$0.key] == nil }, quantized: q)
            let out = try lean.forward(input, hiddenStates: true)
            XCTAssertEqual(out.hiddenStates, expected.hiddenStates, "\(scheme)")
            XCTAssertEqual(out.pooled, expected.pooled, "\(scheme)")
            XCTAssertEqual(out.logits, expected.logits, "\(scheme)")
            for name in q.keys { XCTAssertTrue(lean.block.tensor(name).data.allSatisfy { $0 == 0 }, "\(scheme) \(name)") }
        }
        // Inference-only: the block also lets go of the fp32 weights it packed, with the same
        // bits out, fp32 and mixed (Q alone int8: three matrices in layer 0).
        let plans: [QuantizationPlan] = [[:], ["encoder.layer.0.attention.self.query.weight": .int8,
                                              "embeddings.word_embeddings.weight": .int4(group: 32, symmetric: true)]]
        for plan in plans {
            let q = try quantizeWeights(tensors, plan: plan, source: "test")
            let lean = tensors.filter { q[$0.key] == nil }
            let expected = try BertEncoder(config: config, tensors: lean, quantized: q).forward(input, hiddenStates: true)
            let encoder = try BertEncoder(config: config, consuming: lean, quantized: q, inferenceOnly: true)
            let out = try encoder.forward(input, hiddenStates: true)
            XCTAssertEqual(out.hiddenStates, expected.hiddenStates, "\(plan)")
            XCTAssertEqual(out.logits, expected.logits, "\(plan)")
            // The same from a model file whose fp32 tensors are read straight into the block.
            let dir = try makeTemporaryDirectory()
            defer { try? FileManager.default.removeItem(at: dir) }
            let url = dir.appendingPathComponent("model.h5")
            var file = TeacherFile(tensors: tensors.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, configJSON: "{}",
                                   vocabulary: ["[PAD]"], pooling: "mean", normalize: false, tokenizerOptionsJSON: "{}")
            file.quantized = q
            try file.write(to: url)
            let read = try TeacherFile.read(url, weights: .inPlace)
            let fromFile = try BertEncoder(config: config, source: XCTUnwrap(read.floatSource), quantized: read.quantized)
            let outFromFile = try fromFile.forward(input, hiddenStates: true)
            XCTAssertEqual(outFromFile.hiddenStates, expected.hiddenStates, "\(plan), in place")
            XCTAssertEqual(outFromFile.logits, expected.logits, "\(plan), in place")
            XCTAssertEqual(fromFile.block, encoder.block, "\(plan), in place")
            for name in encoder.model.quantizableWeights {   // fp32 embedding tables stay: the forward reads them
                let released = !name.hasPrefix("embeddings.") || q[name] != nil
                XCTAssertEqual(encoder.block.tensor(name).data.allSatisfy { $0 == 0 }, released, "\(plan): '\(name)'")
            }
            XCTAssertTrue(encoder.block.tensor("encoder.layer.1.output.dense.bias").data.contains { $0 != 0 }, "biases stay")
        }
        let typeTable = "embeddings.token_type_embeddings.weight"
        let q = try quantizeWeights(tensors, plan: [typeTable: .int8], source: "test")
        XCTAssertThrowsError(try BertEncoder(config: config, tensors: tensors.filter { $0.key != typeTable }, quantized: q)) {
            XCTAssertTrue("\($0)".contains(typeTable), "\($0)")
        }
        let misshapen = try quantizeWeights(["encoder.layer.0.output.dense.weight": Tensor(zeros: [64, 96])],
                                            plan: ["encoder.layer.0.output.dense.weight": .int8], source: "test")
        XCTAssertThrowsError(try BertEncoder(config: config, tensors: tensors.filter { $0.key != "encoder.layer.0.output.dense.weight" },
                                             quantized: misshapen)) {
            XCTAssertTrue("\($0)".contains("encoder.layer.0.output.dense.weight"), "\($0)")
        }
    }

    func testSchemeNamesParseAndUnknownOnesListTheChoices() throws {
        XCTAssertEqual(try QuantizationScheme(parsing: "int8-dynamic"), .int8Dynamic)
        XCTAssertEqual(try QuantizationScheme(parsing: "int4-g64"), .int4(group: 64, symmetric: true))
        XCTAssertEqual(try QuantizationScheme(parsing: "int4-g128-asym"), .int4(group: 128, symmetric: false))
        for name in QuantizationScheme.names { XCTAssertEqual(try QuantizationScheme(parsing: name).description, name) }
        XCTAssertThrowsError(try QuantizationScheme(parsing: "int3")) { XCTAssertTrue("\($0)".contains("int8-dynamic, int8-static")) }
        XCTAssertThrowsError(try QuantizationScheme(parsing: "int4-g48")) { XCTAssertTrue("\($0)".contains("group size 48 is not supported")) }
    }

    func testQuantizingRefusesNonFiniteWeightsAndGroupsThatDoNotDivide() throws {
        let (config, tensors) = try randomModel(widths: [96, 96], seed: 1)
        var bad = tensors
        bad["encoder.layer.1.output.dense.weight"]!.data[70] = .nan
        let units = quantizationUnits(config: config, heads: BertHeads(pooler: true, classifierLabels: 3))
        XCTAssertThrowsError(try quantizeWeights(bad, plan: quantizationPlan(units, scheme: .int8Dynamic), source: "m.h5")) {
            XCTAssertTrue("\($0)".contains("m.h5: tensor 'encoder.layer.1.output.dense.weight' holds nan at row 0, column 70"), "\($0)")
        }
        // Hidden 64 rows divide by 32 and 64, the FFN output's 96 columns not by 64.
        XCTAssertThrowsError(try quantizeWeights(tensors, plan: quantizationPlan(units, scheme: .int4(group: 64, symmetric: true)), source: "m.h5")) {
            XCTAssertTrue("\($0)".contains("group size 64 does not divide the 96-column rows of 'encoder.layer.0.output.dense.weight'"), "\($0)")
            XCTAssertTrue("\($0)".contains("int4-g32"), "\($0)")
        }
    }

    func testPercentileCalibrationIgnoresOutliersAndMinMaxDoesNot() {
        var range = ActivationRange()
        var values = (0..<10_000).map { Float($0 % 100) / 100 }   // |x| in [0, 0.99]
        values[5] = 50   // one outlier
        XCTAssertTrue(values.withUnsafeBufferPointer { range.add($0.baseAddress!, count: $0.count) })
        XCTAssertEqual(range.scale(.minMax), 50 / 127)
        let p = range.scale(.percentile(99.9)) * 127
        XCTAssertGreaterThan(p, 0.98)
        XCTAssertLessThan(p, 0.99 + 50 / 2048 + 1e-4)   // within one bin of the exact percentile
        var bad = [Float](repeating: 1, count: 4)
        bad[2] = .infinity
        XCTAssertFalse(bad.withUnsafeBufferPointer { range.add($0.baseAddress!, count: 4) })
    }
}
