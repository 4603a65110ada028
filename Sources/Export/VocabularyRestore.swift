// VocabularyRestore: a vocabulary-pruned model with its original vocabulary put back, for
// the exports that ship a tokenizer (an HF directory's vocab.txt, GGUF's token list).
//
// kd segments a word of a pruned model with the vocabulary it was pruned from and reads each
// dropped piece as [UNK] (WordPieceTokenizer's `segmentationVocabulary`). HF's and
// llama.cpp's WordPiece know one vocabulary: given the pruned one they would match the
// longest *kept* prefix instead, and split a word with a dropped piece differently (or
// read all of it as [UNK] where kd reads one piece so). Exporting the original vocabulary
// with every dropped token's embedding row a copy of [UNK]'s gives other runtimes the same
// pieces and the same vectors as kd; the price is the full-size embedding table. Left out
// on purpose: the quantized form of the word embeddings (the restored table is exported
// from its fp32 values; the exporter quantizes it again where its type asks).
import DistilleryJSON
import DistilleryTensor
import Foundation

extension ExportModel {
    /// The model over `original`, the vocabulary its own was pruned from: every token keeps
    /// its embedding row, and a token the pruning dropped gets a copy of [UNK]'s row.
    ///
    /// Throws when a kept token is missing from `original`, or the model has no [UNK].
    public func restoringVocabulary(_ original: [String]) throws -> ExportModel {
        var prunedIds: [String: Int] = [:]
        for (id, token) in vocabulary.enumerated() where prunedIds[token] == nil { prunedIds[token] = id }
        guard let unknown = prunedIds["[UNK]"] else {
            throw ExportError("the pruned vocabulary has no [UNK] token, which dropped pieces read as")
        }
        let originalTokens = Set(original)
        if let stray = vocabulary.first(where: { !originalTokens.contains($0) }) {
            throw ExportError("the pruned vocabulary's token '\(stray)' is not in the vocabulary it was pruned from — the file is inconsistent; prune it again from the unpruned model")
        }
        let name = "embeddings.word_embeddings.weight"
        let table = try tensor(name)
        guard table.shape.count == 2, table.shape[0] == vocabulary.count else {
            throw ExportError("\(name) has shape \(table.shape) but the vocabulary has \(vocabulary.count) tokens")
        }
        let width = table.shape[1]
        var rows = [Float](repeating: 0, count: original.count * width)
        table.data.withUnsafeBufferPointer { source in
            for (newId, token) in original.enumerated() {
                let from = (prunedIds[token] ?? unknown) * width
                for c in 0..<width { rows[newId * width + c] = source[from + c] }
            }
        }
        var copy = self
        copy.tensors = tensors.map { $0.name == name ? (name, Tensor(shape: [original.count, width], data: rows)) : $0 }
        copy.quantized[name] = nil
        copy.vocabulary = original
        copy.config.vocabSize = original.count
        let pad = vocabulary.indices.contains(config.padTokenId) ? vocabulary[config.padTokenId] : "[PAD]"
        copy.config.padTokenId = original.firstIndex(of: pad) ?? 0
        guard var object = (try? JSONValue.parse(configJSON))?.objectValue else { throw ExportError("config.json is not a JSON object") }
        object["vocab_size"] = .int(original.count)
        object["pad_token_id"] = .int(copy.config.padTokenId)
        copy.configJSON = try JSONCoding.string(JSONValue.object(object), pretty: true)
        return copy
    }
}
