// TeacherFile: round trip, format checks, and atomic writes that never leave partial files.

import DistilleryTensor
import Foundation
import WeightIO
import XCTest

final class TeacherFileTests: XCTestCase {
    private let config = """
    {"architectures": ["BertModel"], "hidden_size": 8, "layer_norm_eps": 1e-12, "model_type": "bert",
     "num_hidden_layers": 2, "use_cache": true, "id2label": {"0": "neg"}, "format": "ignored"}
    """

    private func sampleTeacher() throws -> TeacherFile {
        let weights = try loadCanonicalWeights(from: weightioFixture("model.safetensors"))
        return TeacherFile(tensors: weights.tensors, configJSON: config,
                           vocabulary: ["[PAD]", "[UNK]", "", "héllo", "##s"], pooling: "mean", normalize: true,
                           tokenizerOptionsJSON: #"{"lowercase": true}"#, labelsJSON: #"["neg", "neu", "pos"]"#)
    }

    func testRoundTripKeepsTensorsConfigVocabularyAndOptions() throws {
        let url = try temporaryDirectory(self).appendingPathComponent("teacher.h5")
        let teacher = try sampleTeacher()
        try teacher.write(to: url)
        XCTAssertTrue(TeacherFile.isTeacherFile(url))
        let back = try TeacherFile.read(url)
        XCTAssertEqual(back.tensors.map(\.name), teacher.tensors.map(\.name))   // creation order kept
        for (a, b) in zip(back.tensors, teacher.tensors) {
            XCTAssertEqual(a.tensor.shape, b.tensor.shape)
            XCTAssertEqual(a.tensor.data.map(\.bitPattern), b.tensor.data.map(\.bitPattern), a.name)
        }
        XCTAssertEqual(back.configJSON, config)
        XCTAssertEqual(back.vocabulary, teacher.vocabulary)
        XCTAssertEqual(back.pooling, "mean")
        XCTAssertTrue(back.normalize)
        XCTAssertEqual(back.tokenizerOptionsJSON, #"{"lowercase": true}"#)
        XCTAssertEqual(back.labelsJSON, #"["neg", "neu", "pos"]"#)

        let file = try HDF5File.open(url)
        XCTAssertEqual(try file.stringAttribute("format"), "distillery-teacher")   // config's "format" key not copied over
        XCTAssertEqual(try file.intAttribute("format_version"), 1)
        XCTAssertEqual(try file.intAttribute("hidden_size"), 8)
        XCTAssertEqual(try file.doubleAttribute("layer_norm_eps"), 1e-12)
        XCTAssertEqual(try file.stringAttribute("model_type"), "bert")
        XCTAssertEqual(try file.intAttribute("use_cache"), 1)
        XCTAssertFalse(file.hasAttribute("architectures"))
        XCTAssertEqual(try file.dtypeDescription(of: "encoder.layer.0.attention.self.query.weight"), "float32")
    }

    /// `.inPlace` leaves the fp32 tensors in the file: the source reads each into the caller's
    /// buffer with the bits `.dequantized` reads, and refuses one holding a NaN, naming it.
    /// `.settingsOnly` reads no tensor at all.
    func testInPlaceReadsGiveTheSameBitsAndRefuseNonFiniteValues() throws {
        let url = try temporaryDirectory(self).appendingPathComponent("teacher.h5")
        var teacher = try sampleTeacher()
        try teacher.write(to: url)
        let full = try TeacherFile.read(url)
        let lazy = try TeacherFile.read(url, weights: .inPlace)
        XCTAssertTrue(lazy.tensors.isEmpty)
        let source = try XCTUnwrap(lazy.floatSource)
        XCTAssertEqual(source.shapes, Dictionary(uniqueKeysWithValues: full.tensors.map { ($0.name, $0.tensor.shape) }))
        XCTAssertEqual(lazy.configJSON, full.configJSON)
        XCTAssertEqual(lazy.vocabulary, full.vocabulary)
        for (name, tensor) in full.tensors {
            var read = [Float](repeating: .nan, count: tensor.count)
            try read.withUnsafeMutableBufferPointer { try source.read(name, into: $0) }
            XCTAssertEqual(read.map(\.bitPattern), tensor.data.map(\.bitPattern), name)
        }
        XCTAssertNil(try TeacherFile.read(url, weights: .quantizedKept).floatSource)
        let settings = try TeacherFile.read(url, weights: .settingsOnly)
        XCTAssertTrue(settings.tensors.isEmpty && settings.quantized.isEmpty && settings.floatSource == nil)
        XCTAssertEqual(settings.configJSON, full.configJSON)
        XCTAssertEqual(settings.vocabulary, full.vocabulary)

        let name = "encoder.layer.1.attention.output.dense.weight"
        let i = try XCTUnwrap(teacher.tensors.firstIndex { $0.name == name })
        teacher.tensors[i].tensor.data[5] = -.infinity
        try teacher.write(to: url)
        let bad = try XCTUnwrap(TeacherFile.read(url, weights: .inPlace).floatSource)
        var buffer = [Float](repeating: 0, count: teacher.tensors[i].tensor.count)
        XCTAssertThrowsError(try buffer.withUnsafeMutableBufferPointer { try bad.read(name, into: $0) }) {
            XCTAssertTrue(["teacher.h5", name, "-inf", "flat index 5"].allSatisfy("\($0)".contains), "\($0)")
        }
    }

    func testASymlinkedTeacherPassesTheSizeChecks() throws {
        // The size checks compare declared tensor bytes with the file size: through a symbolic
        // link that must be the target's size, not the link's (a setup with linked teachers).
        let dir = try temporaryDirectory(self)
        let url = dir.appendingPathComponent("real/teacher.h5")
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try sampleTeacher().write(to: url)
        let link = dir.appendingPathComponent("linked.h5")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: url)
        XCTAssertEqual(try TeacherFile.read(link).tensors.map(\.name), try TeacherFile.read(url).tensors.map(\.name))
        XCTAssertEqual(fileByteCount(atPath: link.path), fileByteCount(atPath: url.path))
    }

    func testASegmentationVocabularyRoundTripsAsVersion2() throws {
        let url = try temporaryDirectory(self).appendingPathComponent("pruned.h5")
        var teacher = try sampleTeacher()
        XCTAssertNil(teacher.segmentationVocabulary)
        teacher.segmentationVocabulary = ["[PAD]", "[UNK]", "", "héllo", "##s", "dropped"]
        try teacher.write(to: url)
        let back = try TeacherFile.read(url)
        XCTAssertEqual(back.segmentationVocabulary, teacher.segmentationVocabulary)
        XCTAssertEqual(back.vocabulary, teacher.vocabulary)
        XCTAssertEqual(back.tensors.map(\.name), teacher.tensors.map(\.name))   // the dataset is not a tensor
        XCTAssertEqual(try HDF5File.open(url).intAttribute("format_version"), 2)
    }

    func testTeacherFileIsItselfAFlatLayout() throws {
        let url = try temporaryDirectory(self).appendingPathComponent("teacher.h5")
        try sampleTeacher().write(to: url)
        let weights = try loadCanonicalWeights(from: url)
        XCTAssertEqual(weights.layout, .hdf5Flat)
        XCTAssertEqual(weights.skipped, ["__vocab__"])
        XCTAssertEqual(weights.tensors.map(\.name), try loadCanonicalWeights(from: weightioFixture("model.safetensors")).tensors.map(\.name))
        XCTAssertTrue(weights.sourceDescription.contains("Distillery teacher file"))
    }

    func testFailedWriteLeavesNoFileAndKeepsAnExistingTarget() throws {
        let directory = try temporaryDirectory(self)
        let url = directory.appendingPathComponent("teacher.h5")
        var broken = try sampleTeacher()
        broken.tensors.append(broken.tensors[0])   // duplicate dataset: fails after the temp file exists
        assertWeightIOError(["teacher.h5", "cannot create dataset '\(broken.tensors[0].name)'"]) { try broken.write(to: url) }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), [])

        try sampleTeacher().write(to: url)
        let before = try Data(contentsOf: url)
        assertWeightIOError(["teacher.h5"]) { try broken.write(to: url) }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), ["teacher.h5"])
        XCTAssertEqual(try Data(contentsOf: url), before)

        let nowhere = URL(fileURLWithPath: "/nonexistent/dir/teacher.h5")
        assertWeightIOError(["teacher.h5", "does not exist"], kind: .fileNotFound) { try sampleTeacher().write(to: nowhere) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: nowhere.path))

        var badConfig = try sampleTeacher()
        badConfig.configJSON = "[1, 2]"
        assertWeightIOError(["teacher.h5", "config_json is not a JSON object"]) { try badConfig.write(to: url) }
    }

    func testReadRejectsNonTeacherAndNewerVersionsWithKdImportHint() throws {
        assertWeightIOError(["flat.h5", "not a Distillery teacher file", "kd import"], kind: .notThisFormat) {
            _ = try TeacherFile.read(weightioFixture("flat.h5"))
        }
        XCTAssertFalse(TeacherFile.isTeacherFile(weightioFixture("flat.h5")))
        XCTAssertFalse(TeacherFile.isTeacherFile(weightioFixture("not_hdf5.h5")))
        XCTAssertFalse(TeacherFile.isTeacherFile(URL(fileURLWithPath: "/nonexistent.h5")))

        let directory = try temporaryDirectory(self)
        let other = directory.appendingPathComponent("other.h5")
        do {
            let file = try HDF5File.create(other)
            try file.setAttribute("format", string: "something-else")
            try file.close()
        }
        assertWeightIOError(["other.h5", "format is 'something-else'", "kd import"]) { _ = try TeacherFile.read(other) }

        let newer = directory.appendingPathComponent("newer.h5")
        do {
            let file = try HDF5File.create(newer)
            try file.setAttribute("format", string: "distillery-teacher")
            try file.setAttribute("format_version", int: 4)   // 3 (task heads) is the newest this build reads
            try file.close()
        }
        assertWeightIOError(["newer.h5", "format_version 4 is newer", "kd import"], kind: .unsupported) {
            _ = try TeacherFile.read(newer)
        }
    }
}
