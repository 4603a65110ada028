// QuantizedMatrices: the builder beside `BertModel.packedMatrices` that gives a model's
// Linear layers in their quantized storage (`WeightMatrix.quantized`), fp32 packed once
// for the others.
//
// A weight named in `quantized` (by its HF key) runs its quantized kernel; every other
// weight is packed fp32 as `packedMatrices` packs it. Q, K and V stay one fused matrix
// per layer when they share a storage (all fp32, or all the same quantized format — rows
// and their scales simply stack); a layer whose three differ in storage (mixed precision,
// or one of them alone in a sensitivity run) runs three matrices. The embedding tables are
// not Linear layers: their quantized rows are dequantized into the parameter block by the
// loader. Left out on purpose: attention in anything but fp32.
import DistilleryTensor

extension BertModel {
    /// The Linear weights with the ones named in `quantized` in their quantized storage
    /// (each must match its layout entry's shape) and the rest packed fp32.
    public func quantizedMatrices(_ parameters: ParameterBlock, quantized: [String: QuantizedTensor]) -> ModelMatrices {
        var matrices = packedMatrices(parameters)
        if quantized.isEmpty { return matrices }
        func find(_ name: String) -> QuantizedTensor? {
            guard let q = quantized[name] else { return nil }
            let shape = layout.entry(name)!.shape
            precondition(shape == [q.rows, q.columns], "quantizedMatrices: '\(name)' is [\(q.rows), \(q.columns)], the model's \(shape)")
            return q
        }
        func fp32(_ name: String) -> WeightMatrix {
            let shape = layout.entry(name)!.shape
            return parameters.storage.withUnsafeBufferPointer { p in
                .packedFloat32(PackedMatrix(rows: shape[0], columns: shape[1], rowMajor: p.baseAddress! + layout.offset(name)))
            }
        }
        for l in 0..<config.layerCount {
            let p = "encoder.layer.\(l)."
            let qkvNames = ["query", "key", "value"].map { p + "attention.self.\($0).weight" }
            let parts = qkvNames.map(find)
            if parts.allSatisfy({ $0 == nil }) {
                // fp32: the fused matrix packedMatrices made.
            } else if let first = parts[0], parts.allSatisfy({ $0?.format == first.format && $0?.inputScale == first.inputScale }) {
                matrices.qkv[l] = [.quantized(QuantizedMatrix(QuantizedTensor(stacking: parts.map { $0! })))]
            } else {
                matrices.qkv[l] = zip(qkvNames, parts).map { name, q in q.map { .quantized(QuantizedMatrix($0)) } ?? fp32(name) }
                matrices.qkvBias[l] = nil
            }
            if let q = find(p + "attention.output.dense.weight") { matrices.attentionOutput[l] = .quantized(QuantizedMatrix(q)) }
            if let q = find(p + "intermediate.dense.weight") { matrices.ffnIn[l] = .quantized(QuantizedMatrix(q)) }
            if let q = find(p + "output.dense.weight") { matrices.ffnOut[l] = .quantized(QuantizedMatrix(q)) }
        }
        if heads.pooler, let q = find("pooler.dense.weight") { matrices.pooler = .quantized(QuantizedMatrix(q)) }
        if heads.classifierLabels > 0, let q = find("classifier.weight") { matrices.classifier = .quantized(QuantizedMatrix(q)) }
        return matrices
    }
}
