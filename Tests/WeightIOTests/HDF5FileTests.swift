// HDF5File: listing, typed reads, string and numeric attributes, writes, and error messages.

import DistilleryTensor
import Foundation
import WeightIO
import XCTest

final class HDF5FileTests: XCTestCase {
    func testOpenErrorsNameTheFile() {
        assertWeightIOError(["absent.h5", "no such file"], kind: .fileNotFound) {
            _ = try HDF5File.open(URL(fileURLWithPath: "/nonexistent/absent.h5"))
        }
        assertWeightIOError(["not_hdf5.h5", "not an HDF5 file (signature missing)", "safetensors"], kind: .notThisFormat) {
            _ = try HDF5File.open(weightioFixture("not_hdf5.h5"))
        }
    }

    func testDatasetPathsAreRecursiveNameOrderedWithColonsAndDots() throws {
        let strings = try HDF5File.open(weightioFixture("strings.h5"))
        XCTAssertEqual(try strings.datasetPaths(), ["fixed", "group/bytes", "group/f64", "group/kernel:0", "vlen"])
        let flat = try HDF5File.open(weightioFixture("flat.h5")).datasetPaths()
        XCTAssertEqual(flat.count, 42)
        XCTAssertTrue(flat.contains("bert.encoder.layer.1.attention.self.query.weight"))
        let tf = try HDF5File.open(weightioFixture("tf_model.h5")).datasetPaths()
        XCTAssertTrue(tf.contains("bert/tf_bert_for_sequence_classification/bert/encoder/layer_._1/output/LayerNorm/gamma:0"))
        XCTAssertTrue(tf.contains("classifier/tf_bert_for_sequence_classification/classifier/kernel:0"))
    }

    func testShapesDtypesAndTypedReads() throws {
        let file = try HDF5File.open(weightioFixture("strings.h5"))
        XCTAssertEqual(try file.shape(of: "group/kernel:0"), [2, 3])
        XCTAssertEqual(try file.dtypeDescription(of: "group/kernel:0"), "int32")
        XCTAssertEqual(try file.dtypeDescription(of: "group/f64"), "float64")
        XCTAssertEqual(try file.dtypeDescription(of: "group/bytes"), "uint8")
        XCTAssertEqual(try file.dtypeDescription(of: "vlen"), "string")
        XCTAssertEqual(try file.dtypeDescription(of: "fixed"), "string")
        XCTAssertEqual(try file.readTensor("group/kernel:0"), Tensor(shape: [2, 3], data: [0, 1, 2, 3, 4, 5]))
        XCTAssertEqual(try file.readTensor("group/f64"), Tensor(shape: [1, 2], data: [0.5, -1.25]))
        let ints = try file.readInt64s("group/kernel:0")
        XCTAssertEqual(ints.shape, [2, 3])
        XCTAssertEqual(ints.values, [0, 1, 2, 3, 4, 5])
        XCTAssertEqual(try file.readBytes("group/bytes"), Array("vocab\n".utf8))
        XCTAssertEqual(try file.readStrings("vlen"), ["alpha", "béta", ""])
        XCTAssertEqual(try file.readStrings("fixed"), ["ab", "abcd", ""])
        XCTAssertEqual(try HDF5File.open(weightioFixture("flat_f16.h5")).dtypeDescription(of: "bert.pooler.dense.bias"), "float16")
    }

    func testReadErrorsNameFileAndObject() throws {
        let file = try HDF5File.open(weightioFixture("strings.h5"))
        assertWeightIOError(["strings.h5", "no dataset 'group/missing'"], kind: .missingObject) {
            _ = try file.readTensor("group/missing")
        }
        assertWeightIOError(["strings.h5", "'group' is not a dataset"]) { _ = try file.readTensor("group") }
        assertWeightIOError(["strings.h5", "dataset 'vlen' is string, expected a float or integer tensor"], kind: .unsupported) {
            _ = try file.readTensor("vlen")
        }
        assertWeightIOError(["strings.h5", "'group/f64' is float64, expected uint8"]) { _ = try file.readBytes("group/f64") }
        assertWeightIOError(["strings.h5", "dataset 'group/f64' is float64, expected strings"]) { _ = try file.readStrings("group/f64") }
        assertWeightIOError(["strings.h5", "no attribute 'nope' on '/'"], kind: .missingObject) {
            _ = try file.stringAttribute("nope")
        }
        assertWeightIOError(["strings.h5", "attribute 'int_scalar' on '/' is int64", "expected strings"]) {
            _ = try file.stringAttribute("int_scalar")
        }
        assertWeightIOError(["strings.h5", "attribute 'int_array' on '/' is int32 with 2 elements, expected an integer"]) {
            _ = try file.intAttribute("int_array")
        }
    }

    func testAttributesOnRootGroupsAndDatasets() throws {
        let file = try HDF5File.open(weightioFixture("strings.h5"))
        XCTAssertEqual(try file.stringAttribute("vlen_scalar"), "hello")
        XCTAssertEqual(try file.stringAttribute("fixed_scalar"), "fixed")
        XCTAssertEqual(try file.intAttribute("int_scalar"), -42)
        XCTAssertEqual(try file.doubleAttribute("double_scalar"), 0.125)
        XCTAssertEqual(try file.doubleAttribute("int_scalar"), -42)
        XCTAssertEqual(try file.stringArrayAttribute("fixed_array", at: "group/inner"), ["x", "yz"])
        XCTAssertEqual(try file.stringArrayAttribute("vlen_array", at: "group/inner"), ["one", "two", "three"])
        XCTAssertEqual(try file.stringAttribute("note", at: "group/kernel:0"), "dataset attribute")
        XCTAssertTrue(file.hasAttribute("note", at: "group/kernel:0"))
        XCTAssertFalse(file.hasAttribute("note"))
        XCTAssertFalse(file.hasAttribute("note", at: "no/such/object"))
        XCTAssertEqual(try file.attributeNames(), ["double_scalar", "fixed_scalar", "int_array", "int_scalar", "vlen_scalar"])
        XCTAssertEqual(try file.attributeElementCount("int_array"), 2)
        let keras = try HDF5File.open(weightioFixture("tf_model.h5"))
        XCTAssertEqual(try keras.stringArrayAttribute("layer_names"), ["bert", "dropout_37", "classifier"])
        XCTAssertEqual(try keras.attributeElementCount("weight_names", at: "dropout_37"), 0)
    }

    func testWriteReadRoundTripWithGroupsChunkingCompressionAndAttributes() throws {
        let url = try temporaryDirectory(self).appendingPathComponent("written.h5")
        let weight = sampleTensor([4, 3])
        do {
            let file = try HDF5File.create(url)
            try file.writeTensor(weight, at: "encoder/layer/0/dense/kernel:0", chunked: true, compression: 4)
            try file.writeTensor(Tensor(shape: [], data: [7]), at: "scalar")
            try file.writeTensor(Tensor(zeros: [0, 3]), at: "empty", chunked: true)
            try file.writeTensor(sampleTensor([2]), at: "bert.pooler.dense.bias")
            try file.writeBytes(Array("a\nb\n".utf8), at: "__vocab__")
            try file.writeInt64s([1, -2, 3, Int64.max, 5, 6], shape: [2, 3], at: "ids")
            try file.setAttribute("format", string: "test-format")
            try file.setAttribute("format", string: "replaced ✓")
            try file.setAttribute("format_version", int: 3)
            try file.setAttribute("eps", double: 1e-12)
            try file.setAttribute("where", string: "on a group", at: "encoder/layer")
            try file.close()
            try file.close()   // idempotent
            assertWeightIOError(["written.h5", "already closed"]) { _ = try file.datasetPaths() }
        }
        let file = try HDF5File.open(url)
        // Creation order is tracked at the root; intermediate groups fall back to name order.
        XCTAssertEqual(try file.datasetPaths(), ["encoder/layer/0/dense/kernel:0", "scalar", "empty",
                                                 "bert.pooler.dense.bias", "__vocab__", "ids"])
        XCTAssertEqual(try file.readTensor("encoder/layer/0/dense/kernel:0"), weight)
        XCTAssertEqual(try file.readTensor("scalar"), Tensor(shape: [], data: [7]))
        XCTAssertEqual(try file.readTensor("empty").shape, [0, 3])
        XCTAssertEqual(try file.dtypeDescription(of: "bert.pooler.dense.bias"), "float32")
        XCTAssertEqual(try file.readBytes("__vocab__"), Array("a\nb\n".utf8))
        XCTAssertEqual(try file.readInt64s("ids").values, [1, -2, 3, Int64.max, 5, 6])
        XCTAssertEqual(try file.stringAttribute("format"), "replaced ✓")
        XCTAssertEqual(try file.intAttribute("format_version"), 3)
        XCTAssertEqual(try file.doubleAttribute("eps"), 1e-12)
        XCTAssertEqual(try file.stringAttribute("where", at: "encoder/layer"), "on a group")
    }

    func testWriteErrorsNameTheObject() throws {
        let url = try temporaryDirectory(self).appendingPathComponent("dup.h5")
        let file = try HDF5File.create(url)
        try file.writeTensor(sampleTensor([2]), at: "w")
        assertWeightIOError(["dup.h5", "cannot create dataset 'w'", "already exist"]) {
            try file.writeTensor(sampleTensor([2]), at: "w")
        }
        assertWeightIOError(["missing-dir.h5", "does not exist"], kind: .fileNotFound) {
            _ = try HDF5File.create(URL(fileURLWithPath: "/nonexistent/dir/missing-dir.h5"))
        }
    }
}
