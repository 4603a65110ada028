// Every supported layout loads the fixture model to the same canonical HF PyTorch tensors.

import DistilleryTensor
import Foundation
import WeightIO
import XCTest

final class LayoutTests: XCTestCase {
    func testSafetensorsMatchesReferenceNamesShapesAndValues() throws {
        let reference = try FixtureReference.load()
        let weights = try loadCanonicalWeights(from: weightioFixture("model.safetensors"))
        XCTAssertEqual(weights.layout, .safetensors)
        XCTAssertEqual(weights.skipped, reference.skipped)
        XCTAssertEqual(Set(weights.tensors.map(\.name)), Set(reference.tensors.keys))
        XCTAssertEqual(weights.tensors.count, reference.tensors.count)
        for (name, tensor) in weights.tensors {
            let expected = try XCTUnwrap(reference.tensors[name])
            XCTAssertEqual(tensor.shape, expected.shape, name)
            XCTAssertEqual(Double(tensor.data.first!), expected.first, name)
            XCTAssertEqual(Double(tensor.data.last!), expected.last, name)
            XCTAssertEqual(tensor.data.reduce(0.0) { $0 + Double($1) }, expected.sum, accuracy: 1e-9, name)
        }
        let query = try XCTUnwrap(weights.tensors.first { $0.name == "encoder.layer.0.attention.self.query.weight" })
        XCTAssertEqual(Array(query.tensor.data[0..<8]).map(Double.init), reference.query0_weight_row0)
        XCTAssertTrue(weights.sourceDescription.contains("model.safetensors"))
    }

    func testNaturalOrderPutsEmbeddingsThenLayersInNumericOrder() throws {
        let names = try loadCanonicalWeights(from: weightioFixture("model.safetensors")).tensors.map(\.name)
        XCTAssertEqual(names.first, "classifier.bias")
        let layer0 = try XCTUnwrap(names.firstIndex(of: "encoder.layer.0.attention.self.query.weight"))
        let layer1 = try XCTUnwrap(names.firstIndex(of: "encoder.layer.1.attention.self.query.weight"))
        XCTAssertLessThan(layer0, layer1)
    }

    func testEveryFloat32LayoutIsBitwiseIdenticalToSafetensors() throws {
        let reference = try loadCanonicalWeights(from: weightioFixture("model.safetensors"))
        let expected: [(String, WeightLayout, [String])] = [
            ("flat.h5", .hdf5Flat, ["bert.embeddings.position_ids"]),
            ("nested.h5", .hdf5Nested, ["bert/embeddings/position_ids"]),
            ("tf_model.h5", .kerasH5, []),
        ]
        for (file, layout, skipped) in expected {
            let weights = try loadCanonicalWeights(from: weightioFixture(file))
            XCTAssertEqual(weights.layout, layout, file)
            XCTAssertEqual(weights.skipped, skipped, file)
            XCTAssertEqual(weights.tensors.map(\.name), reference.tensors.map(\.name), file)
            for (a, b) in zip(weights.tensors, reference.tensors) {
                XCTAssertEqual(a.tensor.shape, b.tensor.shape, "\(file): \(a.name)")
                XCTAssertEqual(a.tensor.data.map(\.bitPattern), b.tensor.data.map(\.bitPattern), "\(file): \(a.name)")
            }
        }
    }

    func testKerasKernelsAreStoredInOutAndTransposedToOutIn() throws {
        let file = try HDF5File.open(weightioFixture("tf_model.h5"))
        let path = "bert/tf_bert_for_sequence_classification/bert/encoder/layer_._0/intermediate/dense/kernel:0"
        let stored = try file.readTensor(path)
        XCTAssertEqual(stored.shape, [8, 16])   // [in, out]
        let weights = try loadCanonicalWeights(from: weightioFixture("tf_model.h5"))
        let canonical = try XCTUnwrap(weights.tensors.first { $0.name == "encoder.layer.0.intermediate.dense.weight" })
        XCTAssertEqual(canonical.tensor.shape, [16, 8])   // [out, in]
        XCTAssertEqual(canonical.tensor.data[3 * 8 + 5], stored.data[5 * 16 + 3])
        XCTAssertTrue(weights.sourceDescription.contains("Keras h5 (tensorflow 2.15.0)"), weights.sourceDescription)
    }

    func testFloat16AndBFloat16ConvertWithinTolerance() throws {
        let reference = try loadCanonicalWeights(from: weightioFixture("model.safetensors"))
        let cases: [(String, Float)] = [("model_f16.safetensors", float16RelativeTolerance),
                                        ("model_bf16.safetensors", bfloat16RelativeTolerance),
                                        ("flat_f16.h5", float16RelativeTolerance)]
        for (file, tolerance) in cases {
            let weights = try loadCanonicalWeights(from: weightioFixture(file))
            XCTAssertEqual(weights.tensors.map(\.name), reference.tensors.map(\.name), file)
            var exact = true
            for (a, b) in zip(weights.tensors, reference.tensors) {
                XCTAssertEqual(a.tensor.shape, b.tensor.shape)
                for (x, y) in zip(a.tensor.data, b.tensor.data) {
                    XCTAssertLessThanOrEqual(abs(x - y), tolerance * abs(y) + toleranceFloor, "\(file): \(a.name)")
                    exact = exact && x == y
                }
            }
            XCTAssertFalse(exact, "\(file) should differ from float32 by rounding")
        }
    }

    func testHDF5ConvertsFloat16NativelyToTheSameValuesAsSafetensors() throws {
        let viaHDF5 = try HDF5File.open(weightioFixture("flat_f16.h5")).readTensor("bert.pooler.dense.weight")
        let viaSafetensors = try SafetensorsFile.read(weightioFixture("model_f16.safetensors"))
            .tensors.first { $0.name == "bert.pooler.dense.weight" }!
        XCTAssertEqual(viaSafetensors.dtype, "F16")
        XCTAssertEqual(viaHDF5.data, viaSafetensors.tensor.data)
    }

    func testCanonicalNameTable() {
        XCTAssertEqual(canonicalPyTorchName("bert.encoder.layer.0.output.dense.weight"), "encoder.layer.0.output.dense.weight")
        XCTAssertEqual(canonicalPyTorchName("classifier.weight"), "classifier.weight")
        XCTAssertEqual(canonicalPyTorchName("embeddings.LayerNorm.gamma"), "embeddings.LayerNorm.weight")
        XCTAssertEqual(canonicalPyTorchName("bert.embeddings.LayerNorm.beta"), "embeddings.LayerNorm.bias")
        XCTAssertEqual(canonicalPyTorchName("cls.predictions.bias"), "cls.predictions.bias")   // unknown: kept
    }

    func testUnknownNamesAreKeptAndDuplicatesAfterMappingFail() throws {
        let directory = try temporaryDirectory(self)
        let url = directory.appendingPathComponent("mixed.safetensors")
        let t = sampleTensor([2])
        try SafetensorsFile(tensors: [("cls.predictions.bias", "F32", t), ("pooler.dense.bias", "F32", t)]).write(to: url)
        XCTAssertEqual(try loadCanonicalWeights(from: url).tensors.map(\.name), ["cls.predictions.bias", "pooler.dense.bias"])

        try SafetensorsFile(tensors: [("bert.pooler.dense.bias", "F32", t), ("pooler.dense.bias", "F32", t)]).write(to: url)
        assertWeightIOError(["mixed.safetensors", "'bert.pooler.dense.bias'", "'pooler.dense.bias'"], kind: .mapping) {
            _ = try loadCanonicalWeights(from: url)
        }
    }

    func testKerasWeightListedButMissingIsAnError() {
        assertWeightIOError(["bad_tf_missing_weight.h5", "pooler/dense/bias:0", "weight_names", "missing"], kind: .corrupt) {
            _ = try loadCanonicalWeights(from: weightioFixture("bad_tf_missing_weight.h5"))
        }
    }

    func testMissingFileNonHDF5AndPickle() throws {
        assertWeightIOError(["nope.safetensors", "no such file"], kind: .fileNotFound) {
            _ = try loadCanonicalWeights(from: URL(fileURLWithPath: "/nonexistent/nope.safetensors"))
        }
        let pickle = try temporaryDirectory(self).appendingPathComponent("pytorch_model.bin")
        try Data("PK\u{3}\u{4}".utf8).write(to: pickle)
        assertWeightIOError(["pytorch_model.bin", "pickle", "safetensors.torch.save_file"], kind: .unsupported) {
            _ = try loadCanonicalWeights(from: pickle)
        }
        assertWeightIOError(["not_hdf5.h5", "not an HDF5 file (signature missing)"], kind: .notThisFormat) {
            _ = try loadCanonicalWeights(from: weightioFixture("not_hdf5.h5"))
        }
    }
}
