// Parity of the fp32 encoder with HF transformers on the real teacher
// (sentence-transformers/all-MiniLM-L6-v2) over the committed sentences: our tokenizer
// gives HF's ids, last hidden states agree, and pooled sentence embeddings agree.
import DistilleryModel
import DistilleryTensor
import Foundation
import TestSupport
import Tokenization
import WeightIO
import XCTest

/// Six real layers of fp32 with different summation orders than PyTorch's: the bound.
let teacherHiddenTolerance: Float = 1e-4
/// Cosine between our normalized mean-pooled embedding and sentence-transformers'.
let teacherEmbeddingMinimumCosine: Float = 0.99999

final class TeacherParityTests: XCTestCase {
    func testMiniLMMatchesHuggingFace() throws {
        let dir = try teacherDirectory()
        let encoder = try loadEncoder(directory: dir)
        let tokenizer = try WordPieceTokenizer(vocabFile: dir.appendingPathComponent("vocab.txt"))
        let golden = try HDF5File.open(Fixtures.url("minilm-l6/golden.h5"))
        let c = try GoldenCase(file: golden, group: "")
        let sentences = try String(contentsOf: Fixtures.url("minilm-l6/sentences.txt"), encoding: .utf8)
            .split(separator: "\n").map(String.init)
        let (N, T) = (c.batch.batchSize, c.batch.sequenceLength)
        XCTAssertEqual(sentences.count, N)
        XCTAssertGreaterThanOrEqual(N, 50)
        // Tokenization: the golden ids are HF's.
        for (i, s) in sentences.enumerated() {
            let ids = tokenizer.encode(s, maxLength: 128).ids
            let n = c.batch.mask[(i * T)..<((i + 1) * T)].reduce(0) { $0 + Int($1) }
            XCTAssertEqual(ids, Array(c.batch.ids[(i * T)..<(i * T + n)]), "token ids of sentence \(i): \(s)")
        }
        Compute.setThreads(2)
        defer { Compute.setThreads(1) }
        let out = try encoder.forward(c.batch)
        let reference = try c.tensor("last_hidden_state")
        let H = encoder.config.hiddenSize
        var worst: Float = 0
        for i in 0..<(N * T) where c.batch.mask[i] != 0 {
            worst = max(worst, maxAbsDiff(Array(out.lastHidden.data[(i * H)..<((i + 1) * H)]),
                                          Array(reference.data[(i * H)..<((i + 1) * H)])))
        }
        XCTAssertLessThanOrEqual(worst, teacherHiddenTolerance, "last hidden state max abs diff")
        var minCosine: Float = 1
        let ours = pool(out.lastHidden, mask: c.batch.mask, mode: .mean, normalize: true)
        let theirs = try c.tensor("sentence_embedding")
        for i in 0..<N {
            var dot: Float = 0
            for j in 0..<H { dot += ours.data[i * H + j] * theirs.data[i * H + j] }
            XCTAssertGreaterThanOrEqual(dot, teacherEmbeddingMinimumCosine, "embedding cosine of sentence \(i)")
            minCosine = min(minCosine, dot)
        }
        print("MiniLM parity over \(N) sentences: last hidden max abs diff \(worst), min embedding cosine \(minCosine)")
        XCTAssertLessThanOrEqual(maxAbsDiff(out.pooled!.data, try c.tensor("pooler_output").data),
                                 teacherHiddenTolerance, "pooler output")
    }
}
