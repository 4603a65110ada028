// Loading helpers for the model tests: the tiny HF fixture, the real teacher, goldens.
import DistilleryModel
import DistilleryTensor
import Foundation
import TestSupport
import WeightIO
import XCTest

/// Loads an HF model directory (config.json + model.safetensors) into an encoder.
func loadEncoder(directory: URL) throws -> BertEncoder {
    let config = try BertConfig(json: String(contentsOf: directory.appendingPathComponent("config.json"), encoding: .utf8))
    let weights = try loadCanonicalWeights(from: directory.appendingPathComponent("model.safetensors"))
    return try BertEncoder(config: config, tensors: Dictionary(uniqueKeysWithValues: weights.tensors.map { ($0.name, $0.tensor) }))
}

/// The tiny random BertForSequenceClassification committed under Tests/Fixtures/tiny-bert.
func tinyEncoder() throws -> BertEncoder { try loadEncoder(directory: Fixtures.url("tiny-bert")) }

/// The real teacher unpacked by scripts/fetch-teacher.sh (run by `make test`).
func teacherDirectory() throws -> URL {
    let dir = Fixtures.root.appendingPathComponent(".cache/minilm-l6")
    guard FileManager.default.fileExists(atPath: dir.appendingPathComponent("model.safetensors").path) else {
        XCTFail("the MiniLM teacher is not in \(dir.path) — run scripts/fetch-teacher.sh (make test does)")
        throw CocoaError(.fileNoSuchFile)
    }
    return dir
}

/// One case of a golden file: inputs as an encoder batch plus the reference outputs.
struct GoldenCase {
    let batch: EncoderBatch
    let file: HDF5File
    let group: String

    init(file: HDF5File, group: String) throws {
        self.file = file
        self.group = group
        let prefix = group.isEmpty ? "" : group + "/"
        let ids = try file.readInt64s(prefix + "input_ids")
        let mask = try file.readInt64s(prefix + "attention_mask").values.map { Int32($0) }
        let types = try file.readInt64s(prefix + "token_type_ids").values.map { Int32($0) }
        batch = EncoderBatch(ids: ids.values.map { Int32($0) }, typeIds: types, mask: mask,
                             batchSize: ids.shape[0], sequenceLength: ids.shape[1])
    }

    func tensor(_ name: String) throws -> Tensor {
        try file.readTensor(group.isEmpty ? name : group + "/" + name)
    }
}
