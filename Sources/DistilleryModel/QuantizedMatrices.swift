// QuantizedMatrices: the builder beside `BertModel.packedMatrices` that gives a model's
// Linear layers in their quantized storage (`WeightMatrix.quantized`), fp32 packed once
// for the others.
//
// A weight named in `quantized` (by its HF key) runs its quantized kernel; every other
// weight is packed fp32 as `packedMatrices` packs it. Q, K and V stay one fused matrix
// per layer when they share a storage (all fp32, or all the same quantized format — rows
// and their scales simply stack); a layer whose three differ in storage (mixed precision,
// or one of them alone in a sensitivity run) runs three matrices. Quantized word and
// position tables are handed to the forward as they are: it dequantizes the rows a batch
// looks up, so an inference load needs no fp32 copy of them. An inference-only encoder
// builds its matrices `releasing` the block: each weight's fp32 entry is zeroed (its pages
// handed back) once its matrix is built. Left out on purpose: attention in anything but fp32.
import DistilleryTensor

extension BertModel {
    /// The weights `quantizedMatrices` takes in quantized storage: every Linear weight and
    /// the word and position embedding tables.
    public var quantizableWeights: Set<String> {
        var names: Set<String> = ["embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight"]
        for l in 0..<config.layerCount {
            let p = "encoder.layer.\(l)."
            for n in ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
                      "intermediate.dense", "output.dense"] { names.insert(p + n + ".weight") }
        }
        if heads.pooler { names.insert("pooler.dense.weight") }
        if heads.classifierLabels > 0 { names.insert("classifier.weight") }
        return names
    }

    /// The Linear weights with the ones named in `quantized` in their quantized storage
    /// (each must match its layout entry's shape) and the rest packed fp32. A layer that
    /// runs quantized is never packed in fp32 (no transient fp32 copy of it).
    public func quantizedMatrices(_ parameters: ParameterBlock, quantized: [String: QuantizedTensor]) -> ModelMatrices {
        if quantized.isEmpty { return packedMatrices(parameters) }
        return parameters.storage.withUnsafeBufferPointer { matrices(from: $0.baseAddress!, quantized: quantized, taken: nil) }
    }

    /// `quantizedMatrices` for an inference-only encoder: the entry of every weight the
    /// matrices take over (Linear weights, quantized embedding tables) is zeroed in
    /// `parameters` as soon as its matrix is built, its whole pages handed back, so the block
    /// and the packed copies are never resident together. The block then holds only what
    /// the forward reads from it: biases, LayerNorm, fp32 embedding tables.
    public func quantizedMatrices(releasing parameters: inout ParameterBlock, quantized: [String: QuantizedTensor]) -> ModelMatrices {
        let layout = self.layout
        return parameters.storage.withUnsafeMutableBufferPointer { pp in
            let P = pp.baseAddress!
            return matrices(from: P, quantized: quantized) { name in
                let e = layout.entry(name)!
                zeroWithoutTouching(P + e.offset, count: e.count)
            }
        }
    }

    /// The builder behind both: `P` is the block's storage; `taken` (when given) is told the
    /// name of each weight once its matrix no longer needs the block.
    private func matrices(from P: UnsafePointer<Float>, quantized: [String: QuantizedTensor],
                          taken: ((String) -> Void)?) -> ModelMatrices {
        func find(_ name: String) -> QuantizedTensor? {
            guard let q = quantized[name] else { return nil }
            let shape = layout.entry(name)!.shape
            precondition(shape == [q.rows, q.columns], "quantizedMatrices: '\(name)' is [\(q.rows), \(q.columns)], the model's \(shape)")
            return q
        }
        func matrix(_ name: String) -> WeightMatrix {
            defer { taken?(name) }
            if let q = find(name) { return .quantized(QuantizedMatrix(q)) }
            let shape = layout.entry(name)!.shape
            return .packedFloat32(PackedMatrix(rows: shape[0], columns: shape[1], rowMajor: P + layout.offset(name)))
        }
        var qkv: [[WeightMatrix]] = [], qkvBias: [FloatBuffer?] = []
        var attentionOutput: [WeightMatrix] = [], ffnIn: [WeightMatrix] = [], ffnOut: [WeightMatrix] = []
        for l in 0..<config.layerCount {
            let p = "encoder.layer.\(l)."
            let names = ["query", "key", "value"].map { p + "attention.self.\($0).weight" }
            let parts = names.map(find)
            let slot = layerSlots[l]
            if let first = parts[0], parts.allSatisfy({ $0?.format == first.format && $0?.inputScale == first.inputScale }) {
                qkv.append([.quantized(QuantizedMatrix(QuantizedTensor(stacking: parts.map { $0! })))])
                qkvBias.append(fusedQKVBias(P, slot))
                names.forEach { taken?($0) }
            } else if parts.allSatisfy({ $0 == nil }) {   // fp32: one fused matrix, as packedMatrices packs it
                qkv.append([fusedQKV(P, slot)])
                qkvBias.append(fusedQKVBias(P, slot))
                names.forEach { taken?($0) }
            } else {
                qkv.append(names.map(matrix))   // mixed storage: three matrices, biases added one by one
                qkvBias.append(nil)
            }
            attentionOutput.append(matrix(p + "attention.output.dense.weight"))
            ffnIn.append(matrix(p + "intermediate.dense.weight"))
            ffnOut.append(matrix(p + "output.dense.weight"))
        }
        let tableNames = ["embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight"]
        let tables = tableNames.map(find)
        for (name, table) in zip(tableNames, tables) where table != nil { taken?(name) }
        return ModelMatrices(qkv: qkv, qkvBias: qkvBias, attentionOutput: attentionOutput, ffnIn: ffnIn, ffnOut: ffnOut,
                             pooler: heads.pooler ? matrix("pooler.dense.weight") : nil,
                             classifier: heads.classifierLabels > 0 ? matrix("classifier.weight") : nil,
                             wordEmbeddings: tables[0], positionEmbeddings: tables[1])
    }
}
