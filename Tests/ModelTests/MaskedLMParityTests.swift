// Parity of the masked-LM head (MaskedLMHead over BertEncoder's last states) with HF
// `BertForMaskedLM` on the tiny random fixture Tests/Fixtures/tiny-mlm
// (scripts/make_mlm_golden.py): vocabulary logits at every position of a padded batch
// holding [MASK] tokens, and the strict checks on the head's tensors.
import DistilleryModel
import DistilleryTensor
import Foundation
import TestSupport
import WeightIO
import XCTest

/// fp32 encoder + head vs PyTorch: the encoder alone agrees to ~1e-6 (tinyParityTolerance
/// 1e-5); the head adds a 32-wide dense, GELU, LayerNorm and a 32-wide dot per logit with
/// logits of magnitude ~10, so a few 1e-6 more; 1e-4 is the bound for this head.
let maskedLMParityTolerance: Float = 1e-4

final class MaskedLMParityTests: XCTestCase {
    /// The fixture's encoder and head, split by name as `kd import` does.
    func load() throws -> (BertEncoder, MaskedLMHead, [String: Tensor]) {
        let dir = Fixtures.url("tiny-mlm")
        let config = try BertConfig(json: String(contentsOf: dir.appendingPathComponent("config.json"), encoding: .utf8))
        let weights = try loadCanonicalWeights(from: dir.appendingPathComponent("model.safetensors"))
        let all = Dictionary(uniqueKeysWithValues: weights.tensors.map { ($0.name, $0.tensor) })
        let head = all.filter { $0.key.hasPrefix(MaskedLMHead.prefix) }
        let encoder = try BertEncoder(config: config, tensors: all.filter { !$0.key.hasPrefix(MaskedLMHead.prefix) })
        let mlm = try MaskedLMHead(config: config, tensors: head, wordEmbeddings: all["embeddings.word_embeddings.weight"]!)
        return (encoder, mlm, head)
    }

    func testLogitsMatchHuggingFaceAtEveryPosition() throws {
        let (encoder, head, _) = try load()
        XCTAssertFalse(encoder.heads.pooler, "BertForMaskedLM has no pooler")
        XCTAssertTrue(head.tied, "the fixture ties the decoder to the word embeddings")
        let golden = try HDF5File.open(Fixtures.url("tiny-mlm/golden.h5"))
        let ids = try golden.readInt64s("logits/input_ids"), mask = try golden.readInt64s("logits/attention_mask")
        let (B, T) = (ids.shape[0], ids.shape[1])
        XCTAssertTrue(ids.values.contains(4), "the batch holds [MASK] tokens")
        let expected = try golden.readTensor("logits/logits")
        for threads in [1, 2] {
            Compute.setThreads(threads)
            let batch = EncoderBatch(ids: ids.values.map { Int32($0) }, mask: mask.values.map { Int32($0) }, batchSize: B, sequenceLength: T)
            let states = try encoder.forward(batch).lastHidden
            let logits = head.logits(states.data, rows: B * T)
            XCTAssertEqual(logits.count, expected.data.count)
            // Padded positions included: their states match HF's too (see TinyParityTests).
            let diff = maxAbsDiff(logits, expected.data)
            print("masked-LM parity, \(threads) thread(s): max |Δ logits| \(diff)")
            XCTAssertLessThanOrEqual(diff, maskedLMParityTolerance)
        }
        Compute.setThreads(1)
    }

    func testHeadRefusesMissingUnexpectedAndMisShapedTensors() throws {
        let (encoder, _, head) = try load()
        let config = encoder.config
        let words = Tensor(zeros: [config.vocabSize, config.hiddenSize])
        var missing = head
        missing["cls.predictions.bias"] = nil
        XCTAssertThrowsError(try MaskedLMHead(config: config, tensors: missing, wordEmbeddings: words)) {
            XCTAssertTrue("\($0)".contains("missing tensor 'cls.predictions.bias'"), "\($0)")
        }
        var extra = head
        extra["cls.seq_relationship.weight"] = Tensor(zeros: [2, config.hiddenSize])
        extra["cls.predictions.extra"] = Tensor(zeros: [1])
        XCTAssertThrowsError(try MaskedLMHead(config: config, tensors: extra, wordEmbeddings: words)) {
            XCTAssertTrue("\($0)".contains("cls.predictions.extra"), "\($0)")
        }
        var wrong = head
        wrong["cls.predictions.transform.dense.weight"] = Tensor(zeros: [config.hiddenSize, config.hiddenSize + 1])
        XCTAssertThrowsError(try MaskedLMHead(config: config, tensors: wrong, wordEmbeddings: words)) {
            XCTAssertTrue("\($0)".contains("cls.predictions.transform.dense.weight"), "\($0)")
        }
    }

    func testUntiedDecoderIsUsedAndKept() throws {
        let (encoder, tiedHead, head) = try load()
        let config = encoder.config
        var untied = head
        let decoder = Tensor(shape: [config.vocabSize, config.hiddenSize],
                             data: (0..<(config.vocabSize * config.hiddenSize)).map { Float(($0 * 7919) % 13) * 0.1 - 0.6 })
        untied[MaskedLMHead.decoderName] = decoder
        let words = Tensor(zeros: [config.vocabSize, config.hiddenSize])
        let mlm = try MaskedLMHead(config: config, tensors: untied, wordEmbeddings: words)
        XCTAssertFalse(mlm.tied)
        XCTAssertTrue(mlm.tensors.contains { $0.name == MaskedLMHead.decoderName })
        XCTAssertFalse(tiedHead.tensors.contains { $0.name == MaskedLMHead.decoderName }, "a tied decoder is not stored twice")
        let x = (0..<(2 * config.hiddenSize)).map { Float($0 % 5) - 2 }
        XCTAssertNotEqual(mlm.logits(x, rows: 2), tiedHead.logits(x, rows: 2), "the untied decoder changes the logits")
    }
}
