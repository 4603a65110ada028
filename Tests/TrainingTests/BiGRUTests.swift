// BiGRU student tests: parity with PyTorch (nn.Embedding → nn.GRU bidirectional over packed
// sequences → max+mean pooling → nn.Linear) on the committed fixture of
// scripts/make_gru_golden.py — logits, pooled vector and the gradient of every parameter
// and of the embedded input — and the backward against central differences of a Double
// reference written from the GRU equations, for every parameter and the input.
import CKernels
import DistilleryModel
import DistilleryTensor
import Foundation
import TestSupport
import XCTest

/// Float forward vs PyTorch float forward, relative to the largest value: two float
/// evaluations of the same ~40 chained operations with different exp/tanh approximations
/// (a few ulp each) and summation orders; 1e-5 leaves room for that, a wrong gate is O(1).
let biGRUParityTolerance: Float = 1e-5
/// Gradients vs PyTorch: the backward chains twice as many roundings over the same steps.
let biGRUGradientParityTolerance: Float = 5e-5

/// The PyTorch fixture, decoded.
private struct GRUGolden {
    let sizes: [String: Int]
    let lengths: [Int32]
    let ids: [Int32]
    let parameters: [String: Tensor]
    let outputs, pooled, logits, seed, embeddedGradient: [Float]
    let gradients: [String: [Float]]

    init() throws {
        let url = Fixtures.url("bigru/golden.json")
        let root = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        func floats(_ v: Any?) -> [Float] { (v as! [NSNumber]).map { $0.floatValue } }
        sizes = root["sizes"] as! [String: Int]
        lengths = (root["lengths"] as! [Int]).map(Int32.init)
        ids = (root["ids"] as! [Int]).map(Int32.init)
        parameters = (root["parameters"] as! [String: [String: Any]]).mapValues {
            Tensor(shape: $0["shape"] as! [Int], data: floats($0["data"]))
        }
        (outputs, pooled, logits, seed) = (floats(root["outputs"]), floats(root["pooled"]), floats(root["logits"]), floats(root["seed"]))
        embeddedGradient = floats(root["embedded_gradient"])
        gradients = (root["gradients"] as! [String: Any]).mapValues(floats)
    }

    var config: BiGRUConfig {
        BiGRUConfig(vocabSize: sizes["vocab"]!, embeddingSize: sizes["embedding"]!, hiddenSize: sizes["hidden"]!,
                    layers: sizes["layers"]!, labels: (0..<sizes["classes"]!).map { "c\($0)" }, maxPositions: 512)
    }

    var batch: EncoderBatch {
        let (B, T) = (sizes["batch"]!, sizes["length"]!)
        let mask = (0..<(B * T)).map { Int32($0 % T < Int(lengths[$0 / T]) ? 1 : 0) }
        return EncoderBatch(ids: ids, mask: mask, batchSize: B, sequenceLength: T)
    }
}

private func relativeGap(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "sizes \(a.count) vs \(b.count)")
    let scale = max(b.map(abs).max() ?? 0, 1e-20)
    return zip(a, b).map { abs($0 - $1) }.max().map { $0 / scale } ?? 0
}

// MARK: - Double reference

/// The BiGRU classifier in Double from its equations: logits for `embedded` [B, T, E].
private func referenceLogits(_ p: [String: [Double]], embedded: [Double], lengths: [Int], T: Int, config c: BiGRUConfig) -> [Double] {
    let (B, H) = (lengths.count, c.hiddenSize)
    func sigmoid(_ x: Double) -> Double { 1 / (1 + exp(-x)) }
    var input = embedded, width = c.embeddingSize
    for l in 0..<c.layers {
        var out = [Double](repeating: 0, count: B * T * 2 * H)
        for (d, suffix) in ["", "_reverse"].enumerated() {
            let wih = p["gru.weight_ih_l\(l)\(suffix)"]!, whh = p["gru.weight_hh_l\(l)\(suffix)"]!
            let bih = p["gru.bias_ih_l\(l)\(suffix)"]!, bhh = p["gru.bias_hh_l\(l)\(suffix)"]!
            for b in 0..<B {
                var h = [Double](repeating: 0, count: H)
                let steps = d == 0 ? Array(0..<lengths[b]) : Array((0..<lengths[b]).reversed())
                for t in steps {
                    let x = Array(input[((b * T + t) * width)..<((b * T + t + 1) * width)])
                    func lin(_ w: [Double], _ bias: [Double], _ v: [Double], _ row: Int) -> Double {
                        var s = bias[row]
                        for k in 0..<v.count { s += w[row * v.count + k] * v[k] }
                        return s
                    }
                    var next = h
                    for j in 0..<H {
                        let r = sigmoid(lin(wih, bih, x, j) + lin(whh, bhh, h, j))
                        let z = sigmoid(lin(wih, bih, x, H + j) + lin(whh, bhh, h, H + j))
                        let n = tanh(lin(wih, bih, x, 2 * H + j) + r * lin(whh, bhh, h, 2 * H + j))
                        next[j] = (1 - z) * n + z * h[j]
                    }
                    h = next
                    for j in 0..<H { out[(b * T + t) * 2 * H + d * H + j] = h[j] }
                }
            }
        }
        input = out
        width = 2 * H
    }
    let C = c.labels.count, W = 2 * H
    var logits = [Double](repeating: 0, count: B * C)
    for b in 0..<B {
        var pooled = [Double](repeating: 0, count: 2 * W)
        for k in 0..<W {
            let values = (0..<lengths[b]).map { input[(b * T + $0) * W + k] }
            pooled[k] = values.max()!
            pooled[W + k] = values.reduce(0, +) / Double(lengths[b])
        }
        let w = p["classifier.weight"]!, bias = p["classifier.bias"]!
        for k in 0..<C { logits[b * C + k] = bias[k] + (0..<(2 * W)).reduce(0) { $0 + w[k * 2 * W + $1] * pooled[$1] } }
    }
    return logits
}

final class BiGRUTests: XCTestCase {
    func testForwardAndGradientsMatchPyTorch() throws {
        let golden = try GRUGolden()
        let model = try BiGRUModel(config: golden.config)
        let block = try ParameterBlock(layout: model.layout, tensors: golden.parameters)
        let acts = try model.forward(golden.batch, parameters: block, keepCaches: true)
        XCTAssertLessThanOrEqual(relativeGap(acts.outputs.last!, golden.outputs), biGRUParityTolerance, "last-layer outputs")
        XCTAssertLessThanOrEqual(relativeGap(acts.pooled, golden.pooled), biGRUParityTolerance, "pooled")
        XCTAssertLessThanOrEqual(relativeGap(acts.logits.data, golden.logits), biGRUParityTolerance, "logits")
        var gradients = Gradients(zeros: model.layout)
        let dEmbedded = model.backward(acts, dLogits: golden.seed, parameters: block, gradients: &gradients)
        for entry in model.layout.entries {
            let gap = relativeGap(Array(gradients.storage[entry.range]), golden.gradients[entry.name]!)
            print("BiGRU parity \(entry.name): \(gap)")
            XCTAssertLessThanOrEqual(gap, biGRUGradientParityTolerance, "gradient \(entry.name)")
        }
        // PyTorch's embedded gradient holds padding rows as zeros, as ours does.
        XCTAssertLessThanOrEqual(relativeGap(dEmbedded, golden.embeddedGradient), biGRUGradientParityTolerance, "embedded input")
        // The inference encoder gives the training forward's logits.
        let encoder = try BiGRUEncoder(config: golden.config, tensors: golden.parameters)
        XCTAssertEqual(try encoder.encode(golden.batch).logits?.data, acts.logits.data)
    }

    func testBackwardAgainstDoubleFiniteDifferences() throws {
        let config = BiGRUConfig(vocabSize: 7, embeddingSize: 3, hiddenSize: 3, layers: 2, labels: ["a", "b"], maxPositions: 16)
        let model = try BiGRUModel(config: config)
        var rng = TestRNG(seed: 7)
        var tensors: [String: Tensor] = [:]
        for e in model.layout.entries { tensors[e.name] = Tensor(shape: e.shape, data: rng.floats(e.count, -0.8, 0.8)) }
        let block = try ParameterBlock(layout: model.layout, tensors: tensors)
        let lengths = [4, 2, 3], T = 4, B = 3
        let ids: [Int32] = [1, 5, 2, 6, 3, 4, 0, 0, 6, 1, 2, 0]
        let mask = (0..<(B * T)).map { Int32($0 % T < lengths[$0 / T] ? 1 : 0) }
        let batch = EncoderBatch(ids: ids, mask: mask, batchSize: B, sequenceLength: T)
        let seed = rng.floats(B * 2)
        let acts = try model.forward(batch, parameters: block, keepCaches: true)
        var gradients = Gradients(zeros: model.layout)
        let dEmbedded = model.backward(acts, dLogits: seed, parameters: block, gradients: &gradients)

        let doubles = tensors.mapValues { $0.data.map(Double.init) }
        func loss(_ p: [String: [Double]], embedded: [Double]) -> Double {
            zip(referenceLogits(p, embedded: embedded, lengths: lengths, T: T, config: config), seed).reduce(0) { $0 + $1.0 * Double($1.1) }
        }
        func embed(_ table: [Double]) -> [Double] {
            (0..<(B * T)).flatMap { i -> [Double] in
                mask[i] != 0 ? Array(table[(Int(ids[i]) * 3)..<(Int(ids[i]) * 3 + 3)]) : [0, 0, 0]
            }
        }
        let embedded = embed(doubles["embeddings.word_embeddings.weight"]!)
        for e in model.layout.entries {
            let numeric = numericGradient(at: tensors[e.name]!.data) { v in
                var p = doubles
                p[e.name] = v
                return loss(p, embedded: e.name.hasPrefix("embeddings.") ? embed(v) : embedded)
            }
            checkGradient(e.name, analytic: Array(gradients.storage[e.range]), numeric: numeric)
        }
        let numericInput = numericGradient(at: embedded.map(Float.init)) { loss(doubles, embedded: $0) }
        checkGradient("embedded input", analytic: dEmbedded, numeric: numericInput)
    }
}
