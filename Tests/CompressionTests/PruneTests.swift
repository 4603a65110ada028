// Pruning decisions and data importance on the tiny random BERT of SlicingTests: pruning
// nothing is the identity (bit for bit); removing a head whose mask is zero changes no
// logit; a head or neuron that cannot reach the output scores exactly 0; the global and
// uniform rankings remove the lowest-scored units and refuse to empty a layer; the layer
// whose removal costs least is the one dropped.
import Compression
import DistilleryModel
import DistilleryTensor
import TestSupport
import XCTest

final class PruneTests: XCTestCase {
    let config = SlicingTests.tinyConfig()
    /// Two sequences of 6 tokens (the second padded after 4), as in SlicingTests.
    let batch = EncoderBatch(ids: [2, 5, 7, 11, 4, 3, 2, 9, 12, 3, 0, 0], typeIds: [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0],
                             mask: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0], batchSize: 2, sequenceLength: 6)

    /// Soft targets for the tiny batch: two rows over 3 classes.
    var targets: [TargetBatch] { [TargetBatch(batch: batch, targets: [0.7, 0.2, 0.1, 0.1, 0.3, 0.6])] }

    func model(_ c: BertConfig, _ tensors: [String: Tensor]) throws -> (BertModel, ParameterBlock) {
        let m = try BertModel(config: c, heads: BertHeads(pooler: true, classifierLabels: 3))
        return (m, try ParameterBlock(layout: m.layout, tensors: tensors))
    }

    func testPruningNothingIsBitIdentical() throws {
        let tensors = SlicingTests.tinyWeights(config)
        let scores = config.layerHeads.map { [Double](repeating: 1, count: $0) }
        let widths = config.layerIntermediateSizes.map { [Double](repeating: 1, count: $0) }
        let request = try pruneRequest(config, heads: scores, neurons: widths, layerLoss: [], amounts: PruneAmounts())
        XCTAssertEqual(request, SliceRequest())
        let sliced = try sliceBertParameters(config, tensors: tensors, keeping: request)
        XCTAssertEqual(sliced.config, config)
        for (name, t) in tensors { XCTAssertEqual(sliced.tensors[name]?.data.map(\.bitPattern), t.data.map(\.bitPattern), name) }
    }

    func testRemovingAHeadWhoseMaskIsZeroChangesNoLogit() throws {
        let tensors = SlicingTests.tinyWeights(config)
        let (m, p) = try model(config, tensors)
        var mask = config.layerHeads.map { [Float](repeating: 1, count: $0) }
        mask[1][2] = 0
        let masked = try m.forward(batch, parameters: p, options: ForwardOptions(cacheForBackward: false, headMask: mask)).logits.data
        let sliced = try sliceBertParameters(config, tensors: tensors, keeping: SliceRequest(heads: [1: [0, 1]]))
        XCTAssertEqual(sliced.config.layerHeads, [4, 2, 4])
        let (m2, p2) = try model(sliced.config, sliced.tensors)
        let pruned = try m2.forward(batch, parameters: p2, options: ForwardOptions(cacheForBackward: false)).logits.data
        XCTAssertEqual(masked.count, pruned.count)
        for (a, b) in zip(masked, pruned) { XCTAssertEqual(a, b, accuracy: slicedLogitTolerance) }
        // The mask matters: with the head on, the logits move (so the comparison above can fail).
        let full = try m.forward(batch, parameters: p, options: ForwardOptions(cacheForBackward: false)).logits.data
        XCTAssertGreaterThan(zip(full, pruned).map { abs($0 - $1) }.max()!, 100 * slicedLogitTolerance)
    }

    func testUnitsThatCannotReachTheOutputScoreZero() throws {
        var tensors = SlicingTests.tinyWeights(config)
        let D = config.headSize, H = config.hiddenSize
        // Head 1 of layer 0: its attention-output columns are zero. Neuron 3 of layer 2: its output column is zero.
        var o = tensors["encoder.layer.0.attention.output.dense.weight"]!
        for r in 0..<H { for c in D..<(2 * D) { o.data[r * (4 * D) + c] = 0 } }
        tensors["encoder.layer.0.attention.output.dense.weight"] = o
        var f = tensors["encoder.layer.2.output.dense.weight"]!
        for r in 0..<H { f.data[r * 6 + 3] = 0 }
        tensors["encoder.layer.2.output.dense.weight"] = f
        var w = tensors["encoder.layer.2.intermediate.dense.weight"]!
        for c in 0..<H { w.data[3 * H + c] = 0 }
        tensors["encoder.layer.2.intermediate.dense.weight"] = w
        var b = tensors["encoder.layer.2.intermediate.dense.bias"]!
        b.data[3] = 0
        tensors["encoder.layer.2.intermediate.dense.bias"] = b
        let (m, p) = try model(config, tensors)
        let scores = try gradientImportance(model: m, parameters: p, batches: targets)
        XCTAssertEqual(scores.heads[0][1], 0)
        XCTAssertEqual(scores.neurons[2][3], 0)
        XCTAssertTrue(scores.heads.joined().filter { $0 > 0 }.count >= 10, "live heads score above 0: \(scores.heads)")
        XCTAssertGreaterThan(scores.neurons[2][2], 0)
        let drop = try layerDropFits(config: config, tensors: tensors, batches: targets)
        XCTAssertEqual(drop.count, 3)
        XCTAssertTrue(drop.allSatisfy { $0.loss.isFinite && $0.loss > 0 })
    }

    func testGlobalAndUniformRankings() throws {
        let heads: [[Double]] = [[4, 3, 2, 1], [1, 1, 5], [9, 8, 7, 0.5]]
        let neurons: [[Double]] = config.layerIntermediateSizes.map { (0..<$0).map { Double($0 + 1) } }
        // Global: 3 of 11 heads go — the lowest normalised scores: layer 2 head 3, layer 0 head 3, then layer 1 (0.19 each, higher index first).
        let global = try pruneRequest(config, heads: heads, neurons: neurons, layerLoss: [], amounts: PruneAmounts(heads: 0.3))
        XCTAssertEqual(global.heads, [0: [0, 1, 2], 1: [0, 2], 2: [0, 1, 2]])
        XCTAssertTrue(global.neurons.isEmpty)
        // Uniform: every layer keeps round(3 · 0.5) = 2 heads (the smallest layer has 3).
        let uniform = try pruneRequest(config, heads: heads, neurons: neurons, layerLoss: [], amounts: PruneAmounts(heads: 0.5, uniform: true))
        XCTAssertEqual(uniform.heads, [0: [0, 1], 1: [0, 2], 2: [0, 1]])
        // Layers: the cheapest to drop goes first.
        let layers = try pruneRequest(config, heads: heads, neurons: neurons, layerLoss: [0.9, 0.2, 0.5], amounts: PruneAmounts(layers: 1))
        XCTAssertEqual(layers.layers, [0, 2])
    }

    func testRefusesToEmptyALayerOrTheModel() throws {
        let heads: [[Double]] = [[1, 1, 1, 1], [0, 0, 0], [1, 1, 1, 1]]
        let neurons = config.layerIntermediateSizes.map { [Double](repeating: 1, count: $0) }
        XCTAssertThrowsError(try pruneRequest(config, heads: heads, neurons: neurons, layerLoss: [], amounts: PruneAmounts(heads: 0.3))) {
            XCTAssertTrue("\($0)".contains("removes all 3 heads of layer 1"), "\($0)")
        }
        XCTAssertThrowsError(try pruneRequest(config, heads: heads, neurons: neurons, layerLoss: [], amounts: PruneAmounts(ffn: 0.5, uniform: true))) {
            XCTAssertTrue("\($0)".contains("multiple of 32"), "\($0)")
        }
        XCTAssertThrowsError(try pruneRequest(config, heads: heads, neurons: neurons, layerLoss: [1, 2, 3], amounts: PruneAmounts(layers: 3)))
        XCTAssertThrowsError(try pruneRequest(config, heads: heads, neurons: neurons, layerLoss: [], amounts: PruneAmounts(heads: 1)))
    }
}
