// Slicing a tiny random BERT (3 layers with 4/3/4 heads of 2 and FFN 6/5/6, hidden 8,
// pooler and 3-class classifier): keeping everything is bit-identical; each axis gives the
// config's shapes and exactly the kept entries (checked against a reference written from
// the HF layout, not from the axis table); removing a head or an FFN neuron that cannot
// reach the output leaves the logits unchanged; removed layers renumber; vocabulary
// slicing maps ids and leaves the logits of kept ids bit-identical.
import Compression
import DistilleryModel
import DistilleryTensor
import TestSupport
import XCTest

/// Removing a unit whose outgoing weights are exactly zero drops exact-zero terms from one
/// GEMM; only the blocking of the shorter reduction changes, i.e. float rounding of ~1e-7
/// relative per op, compounded over 3 layers with LayerNorms (on these logits of magnitude
/// ~1 the measured difference is 0; a kernel that blocks K differently could make it ~1e-6).
/// Removing a unit that does write moves them by 1e-2 or more. Hence 1e-5.
let slicedLogitTolerance: Float = 1e-5

final class SlicingTests: XCTestCase {
    /// The tiny model's config: per-layer heads and widths, a 3-class [CLS] classifier.
    static func tinyConfig() -> BertConfig {
        var c = BertConfig(vocabSize: 13, hiddenSize: 8, layerCount: 3, headCount: 4, intermediateSize: 6,
                           maxPositions: 8, typeVocabSize: 2, layerNormEps: 1e-12, padTokenId: 0)
        c.layerHeads = [4, 3, 4]
        c.layerIntermediateSizes = [6, 5, 6]
        return c
    }

    /// Seeded random weights for `config` with pooler and classifier (`TestRNG.modelValues`).
    static func tinyWeights(_ config: BertConfig, seed: UInt64 = 7) -> [String: Tensor] {
        var rng = TestRNG(seed: seed)
        var out: [String: Tensor] = [:]
        for (name, shape) in bertParameterShapes(config, heads: BertHeads(pooler: true, classifierLabels: 3)) {
            out[name] = Tensor(shape: shape, data: rng.modelValues(for: name, count: shape.reduce(1, *)))
        }
        return out
    }

    /// Two sequences of 6 tokens (the second padded after 4), ids within 0..<13.
    let batch = EncoderBatch(ids: [2, 5, 7, 11, 4, 3, 2, 9, 12, 3, 0, 0], typeIds: [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0],
                             mask: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0], batchSize: 2, sequenceLength: 6)

    func logits(_ config: BertConfig, _ tensors: [String: Tensor], _ batch: EncoderBatch? = nil) throws -> [Float] {
        try XCTUnwrap(try BertEncoder(config: config, tensors: tensors).forward(batch ?? self.batch).logits).data
    }

    /// `t` restricted to `rows` (and `cols` for 2-D), nil keeping the axis: the reference.
    func restrict(_ t: Tensor, _ rows: [Int]?, _ cols: [Int]? = nil) -> Tensor {
        if t.shape.count == 1 { let r = rows ?? Array(0..<t.shape[0]); return Tensor(shape: [r.count], data: r.map { t.data[$0] }) }
        let r = rows ?? Array(0..<t.shape[0]), c = cols ?? Array(0..<t.shape[1])
        return Tensor(shape: [r.count, c.count], data: r.flatMap { i in c.map { t.data[i * t.shape[1] + $0] } })
    }

    func bits(_ t: Tensor?) -> [UInt32] { t?.data.map(\.bitPattern) ?? [] }

    /// The sliced tensors are exactly the new config's parameter list and load into the encoder.
    func assertConsistent(_ s: SlicedModel, file: StaticString = #filePath, line: UInt = #line) {
        let expected = bertParameterShapes(s.config, heads: BertHeads(pooler: true, classifierLabels: 3))
        XCTAssertEqual(Set(s.tensors.keys), Set(expected.map(\.name)), file: file, line: line)
        for (name, shape) in expected { XCTAssertEqual(s.tensors[name]?.shape, shape, name, file: file, line: line) }
        XCTAssertNoThrow(try BertEncoder(config: s.config, tensors: s.tensors), file: file, line: line)
    }

    func testKeepingEverythingIsBitIdentical() throws {
        let c = Self.tinyConfig(), w = Self.tinyWeights(c)
        let explicit = SliceRequest(layers: [2, 0, 1], hiddenDimensions: Array(0..<8), heads: [0: [3, 2, 1, 0], 1: [0, 1, 2]],
                                    neurons: [2: Array(0..<6)], vocabulary: Array(0..<13), requiredTokenIds: [1, 2, 3])
        for request in [SliceRequest(), explicit] {
            let s = try sliceBertParameters(c, tensors: w, keeping: request)
            XCTAssertEqual(s.config, c)
            XCTAssertEqual(Set(s.tensors.keys), Set(w.keys))
            for (name, t) in w { XCTAssertEqual(bits(s.tensors[name]), bits(t), name) }
            XCTAssertTrue(s.vocabulary.isEverything && s.hiddenDimensions.isEverything && s.layers.isEverything)
        }
    }

    func testHeadsNeuronsAndHiddenDimensions() throws {
        let c = Self.tinyConfig(), w = Self.tinyWeights(c)
        // 4 hidden dimensions hold 2 heads of 2: every layer keeps at most 2.
        let K = [1, 2, 5, 6], heads = [0: [1, 3], 1: [2], 2: [0, 3]], neurons = [0: [0, 5], 1: [4, 1, 2], 2: [3]]
        let s = try sliceBertParameters(c, tensors: w, keeping: SliceRequest(hiddenDimensions: K, heads: heads, neurons: neurons))
        assertConsistent(s)
        XCTAssertEqual(s.config.hiddenSize, 4)
        XCTAssertEqual(s.config.headCount, 2)
        XCTAssertEqual(s.config.headSize, 2)
        XCTAssertEqual(s.config.layerHeads, [2, 1, 2])
        XCTAssertEqual(s.config.layerIntermediateSizes, [2, 3, 1])
        XCTAssertEqual(s.neurons[1].indices, [1, 2, 4], "kept in original order")
        for l in 0..<3 {
            let p = "encoder.layer.\(l).", rows = heads[l]!.flatMap { [2 * $0, 2 * $0 + 1] }, J = neurons[l]!.sorted()
            func expect(_ local: String, _ r: [Int]?, _ c: [Int]? = nil) {
                XCTAssertEqual(s.tensors[p + local], restrict(w[p + local]!, r, c), p + local)
            }
            for qkv in ["query", "key", "value"] {
                expect("attention.self.\(qkv).weight", rows, K)
                expect("attention.self.\(qkv).bias", rows)
            }
            expect("attention.output.dense.weight", K, rows)
            expect("attention.output.dense.bias", K)
            expect("attention.output.LayerNorm.bias", K)
            expect("intermediate.dense.weight", J, K)
            expect("intermediate.dense.bias", J)
            expect("output.dense.weight", K, J)
            expect("output.LayerNorm.weight", K)
        }
        XCTAssertEqual(s.tensors["embeddings.word_embeddings.weight"], restrict(w["embeddings.word_embeddings.weight"]!, nil, K))
        XCTAssertEqual(s.tensors["embeddings.position_embeddings.weight"], restrict(w["embeddings.position_embeddings.weight"]!, nil, K))
        XCTAssertEqual(s.tensors["pooler.dense.weight"], restrict(w["pooler.dense.weight"]!, K, K))
        XCTAssertEqual(s.tensors["classifier.weight"], restrict(w["classifier.weight"]!, nil, K))
        XCTAssertEqual(s.tensors["classifier.bias"], w["classifier.bias"])
    }

    func testRemovingAHeadThatWritesNothingKeepsTheLogits() throws {
        let c = Self.tinyConfig()
        var w = Self.tinyWeights(c)
        // Head 1 of layer 2: its attention-output columns 2, 3 are zero.
        var out = w["encoder.layer.2.attention.output.dense.weight"]!
        for r in 0..<8 { for col in 2..<4 { out.data[r * 8 + col] = 0 } }
        w["encoder.layer.2.attention.output.dense.weight"] = out
        let before = try logits(c, w)
        let s = try sliceBertParameters(c, tensors: w, keeping: SliceRequest(heads: [2: [0, 2, 3]]))
        XCTAssertEqual(s.config.layerHeads, [4, 3, 3])
        XCTAssertLessThanOrEqual(maxAbsDiff(try logits(s.config, s.tensors), before), slicedLogitTolerance)
        // A head that does write to the output changes them: the check can fail.
        let wrong = try sliceBertParameters(c, tensors: w, keeping: SliceRequest(heads: [2: [1, 2, 3]]))
        XCTAssertGreaterThan(maxAbsDiff(try logits(wrong.config, wrong.tensors), before), 100 * slicedLogitTolerance)
    }

    func testRemovingAnFFNNeuronThatWritesNothingKeepsTheLogits() throws {
        let c = Self.tinyConfig()
        var w = Self.tinyWeights(c)
        // Neuron 3 of layer 0: its output column is zero.
        var out = w["encoder.layer.0.output.dense.weight"]!
        for r in 0..<8 { out.data[r * 6 + 3] = 0 }
        w["encoder.layer.0.output.dense.weight"] = out
        let before = try logits(c, w)
        let s = try sliceBertParameters(c, tensors: w, keeping: SliceRequest(neurons: [0: [0, 1, 2, 4, 5]]))
        XCTAssertEqual(s.config.layerIntermediateSizes, [5, 5, 6])
        XCTAssertLessThanOrEqual(maxAbsDiff(try logits(s.config, s.tensors), before), slicedLogitTolerance)
        let wrong = try sliceBertParameters(c, tensors: w, keeping: SliceRequest(neurons: [0: [0, 1, 2, 3, 5]]))
        XCTAssertGreaterThan(maxAbsDiff(try logits(wrong.config, wrong.tensors), before), 100 * slicedLogitTolerance)
    }

    func testRemovedLayersRenumber() throws {
        let c = Self.tinyConfig(), w = Self.tinyWeights(c)
        let s = try sliceBertParameters(c, tensors: w, keeping: SliceRequest(layers: [2, 0], neurons: [2: [1, 2, 3]]))
        assertConsistent(s)
        XCTAssertEqual(s.layers.indices, [0, 2])
        XCTAssertEqual(s.layers.oldToNew, [0, -1, 1])
        XCTAssertEqual(s.config.layerCount, 2)
        XCTAssertEqual(s.config.layerHeads, [4, 4])
        XCTAssertEqual(s.config.layerIntermediateSizes, [6, 3])
        XCTAssertNil(s.tensors["encoder.layer.2.output.dense.bias"])
        for (name, _) in bertParameterShapes(s.config, heads: BertHeads(pooler: true, classifierLabels: 3)) where name.hasPrefix("encoder.layer.0.") {
            XCTAssertEqual(bits(s.tensors[name]), bits(w[name]), "layer 0 stays layer 0: \(name)")
        }
        XCTAssertEqual(bits(s.tensors["encoder.layer.1.attention.self.query.weight"]), bits(w["encoder.layer.2.attention.self.query.weight"]))
        XCTAssertEqual(s.tensors["encoder.layer.1.intermediate.dense.weight"], restrict(w["encoder.layer.2.intermediate.dense.weight"]!, [1, 2, 3]))
        XCTAssertEqual(s.tensors["encoder.layer.1.output.dense.weight"], restrict(w["encoder.layer.2.output.dense.weight"]!, nil, [1, 2, 3]))
    }

    func testVocabularySlicingMapsIds() throws {
        let c = Self.tinyConfig(), w = Self.tinyWeights(c)
        // Keep the ids the batch uses, in any order; the padding id 0 is required anyway.
        let keep = [12, 0, 2, 3, 4, 5, 7, 9, 11]
        let s = try sliceBertParameters(c, tensors: w, keeping: SliceRequest(vocabulary: keep, requiredTokenIds: [2, 3]))
        assertConsistent(s)
        XCTAssertEqual(s.config.vocabSize, 9)
        XCTAssertEqual(s.config.padTokenId, 0)
        XCTAssertEqual(s.vocabulary.oldToNew, [0, -1, 1, 2, 3, 4, -1, 5, -1, 6, -1, 7, 8])
        XCTAssertEqual(s.vocabulary.newIndex(of: 11), 7)
        XCTAssertNil(s.vocabulary.newIndex(of: 10))
        XCTAssertEqual(s.tensors["embeddings.word_embeddings.weight"], restrict(w["embeddings.word_embeddings.weight"]!, keep.sorted()))
        var mapped = batch
        mapped.ids = batch.ids.map { Int32(s.vocabulary.oldToNew[Int($0)]) }
        XCTAssertEqual(try logits(s.config, s.tensors, mapped).map(\.bitPattern), try logits(c, w).map(\.bitPattern),
                       "same rows gathered, same arithmetic: bit-identical")
        // A padding id that moves is re-mapped in the config.
        var shifted = c
        shifted.padTokenId = 4
        let moved = try sliceBertParameters(shifted, tensors: w, keeping: SliceRequest(vocabulary: [1, 4, 6]))
        XCTAssertEqual(moved.config.padTokenId, 1)
    }

    func testBadRequestsAreRefused() throws {
        let c = Self.tinyConfig(), w = Self.tinyWeights(c)
        func refuses(_ request: SliceRequest, _ location: String, _ words: [String], line: UInt = #line) {
            XCTAssertThrowsError(try sliceBertParameters(c, tensors: w, keeping: request), line: line) { error in
                guard let e = error as? CompressionError else { return XCTFail("\(error)", line: line) }
                XCTAssertEqual(e.location, location, "\(e)", line: line)
                for word in words { XCTAssertTrue(e.description.contains(word), "'\(word)' in: \(e)", line: line) }
            }
        }
        refuses(SliceRequest(heads: [1: [0, 3]]), "heads of layer 1", ["head 3", "outside 0..<3"])
        refuses(SliceRequest(heads: [0: [1, 1]]), "heads of layer 0", ["head 1 more than once"])
        refuses(SliceRequest(heads: [2: []]), "heads of layer 2", ["none of its 4 heads", "remove the layer instead"])
        refuses(SliceRequest(neurons: [1: []]), "FFN neurons of layer 1", ["remove the layer instead"])
        refuses(SliceRequest(neurons: [0: [6]]), "FFN neurons of layer 0", ["neuron 6", "outside 0..<6"])
        refuses(SliceRequest(layers: []), "layers", ["none of the 3", "at least one"])
        refuses(SliceRequest(layers: [0, 3]), "layers", ["layer 3", "outside 0..<3"])
        refuses(SliceRequest(layers: [0, 2], heads: [1: [0]]), "heads of layer 1", ["layer 1 is removed"])
        refuses(SliceRequest(neurons: [5: [0]]), "neurons of layer 5", ["outside 0..<3"])
        refuses(SliceRequest(hiddenDimensions: [0, 1, 2]), "hidden dimensions", ["multiple of the head size 2"])
        refuses(SliceRequest(hiddenDimensions: [0, 1, 2, 3]), "heads of layer 0", ["only 2 heads"])
        refuses(SliceRequest(hiddenDimensions: [-1, 1]), "hidden dimensions", ["dimension -1"])
        refuses(SliceRequest(vocabulary: [1, 2, 3]), "vocabulary", ["token id 0", "padding id", "[PAD]"])
        refuses(SliceRequest(vocabulary: [0, 1, 2], requiredTokenIds: [0, 5]), "vocabulary", ["drops token id 5"])
        refuses(SliceRequest(vocabulary: [0, 13]), "vocabulary", ["token id 13", "outside 0..<13"])
        refuses(SliceRequest(requiredTokenIds: [40]), "vocabulary", ["token id 40"])
        // Weights that do not belong to the config.
        var missing = w
        missing["encoder.layer.1.output.dense.bias"] = nil
        XCTAssertThrowsError(try sliceBertParameters(c, tensors: missing, keeping: SliceRequest())) { error in
            XCTAssertTrue("\(error)".contains("encoder.layer.1.output.dense.bias") && "\(error)".contains("kd info"), "\(error)")
        }
    }
}
