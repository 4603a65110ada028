// SafetensorsFile: header validation messages on malformed files, dtypes, and write/read round trip.

import DistilleryTensor
import Foundation
import WeightIO
import XCTest

final class SafetensorsTests: XCTestCase {
    func testReadsTensorsInOffsetOrderWithDtypesAndMetadata() throws {
        let file = try SafetensorsFile.read(weightioFixture("model.safetensors"))
        XCTAssertEqual(file.metadata, ["format": "pt"])
        XCTAssertEqual(file.tensors.count, 42)
        let positions = try XCTUnwrap(file.tensors.first { $0.name == "bert.embeddings.position_ids" })
        XCTAssertEqual(positions.dtype, "I64")
        XCTAssertEqual(positions.tensor.shape, [1, 10])
        XCTAssertEqual(positions.tensor.data, (0..<10).map(Float.init))
        XCTAssertFalse(SafetensorsFile.isFloatingPoint(positions.dtype))
        XCTAssertTrue(file.tensors.filter { $0.dtype != "I64" }.allSatisfy { $0.dtype == "F32" })
    }

    func testMalformedFilesFailBeforeTouchingDataWithPreciseMessages() {
        let cases: [(String, [String], WeightIOError.Kind)] = [
            ("bad_truncated.safetensors", ["3 bytes", "shorter than the 8-byte header length"], .corrupt),
            ("bad_header_past_end.safetensors", ["header length 1000", "past the end of the file (16 bytes)"], .corrupt),
            ("bad_not_json.safetensors", ["header is not valid JSON"], .corrupt),
            ("bad_overlap.safetensors", ["'w1' [0, 24]", "'w2' [16, 32]", "overlap"], .corrupt),
            ("bad_out_of_bounds.safetensors", ["'w'", "[100, 124]", "out of bounds", "24-byte data section"], .corrupt),
            ("bad_unknown_dtype.safetensors", ["unknown dtype 'Q3' for tensor 'w'", "BF16"], .unsupported),
            ("bad_shape_mismatch.safetensors", ["'w'", "[2, 3]", "needs 24 bytes", "[0, 20] span 20"], .corrupt),
            ("bad_reversed.safetensors", ["tensor 'w' data_offsets [24, 0] are reversed", "safetensors.torch.save_file"], .corrupt),
            ("bad_shape_type.safetensors", ["tensor 'w'", "'shape'", "non-negative integers"], .corrupt),
        ]
        for (name, fragments, kind) in cases {
            assertWeightIOError([name] + fragments, kind: kind) {
                _ = try SafetensorsFile.read(weightioFixture(name))
            }
        }
    }

    func testHeaderLimitAndNonObjectHeader() throws {
        let directory = try temporaryDirectory(self)
        let huge = directory.appendingPathComponent("huge.safetensors")
        try Data(withUnsafeBytes(of: UInt64(1) << 40) { Array($0) } + Array("{}".utf8)).write(to: huge)
        assertWeightIOError(["huge.safetensors", "absurdly large"]) { _ = try SafetensorsFile.read(huge) }

        let array = directory.appendingPathComponent("array.safetensors")
        try Data(withUnsafeBytes(of: UInt64(2).littleEndian) { Array($0) } + Array("[]".utf8)).write(to: array)
        assertWeightIOError(["array.safetensors", "JSON array, expected an object"]) { _ = try SafetensorsFile.read(array) }

        let badUTF8 = directory.appendingPathComponent("utf8.safetensors")
        try Data(withUnsafeBytes(of: UInt64(2).littleEndian) { Array($0) } + [0xFF, 0xFE]).write(to: badUTF8)
        assertWeightIOError(["utf8.safetensors", "not valid UTF-8"]) { _ = try SafetensorsFile.read(badUTF8) }
    }

    func testNonexistentPath() {
        assertWeightIOError(["missing.safetensors", "no such file"], kind: .fileNotFound) {
            _ = try SafetensorsFile.read(URL(fileURLWithPath: "/nonexistent/dir/missing.safetensors"))
        }
    }

    func testWriteReadRoundTripIsBitwiseWithMetadataAndEmptyTensors() throws {
        let url = try temporaryDirectory(self).appendingPathComponent("round.safetensors")
        let tensors: [(name: String, dtype: String, tensor: Tensor)] = [
            ("a.weight", "F32", sampleTensor([3, 2])),
            ("scalar \"quoted\"", "F32", Tensor(shape: [], data: [Float.pi])),
            ("empty", "F32", Tensor(zeros: [0, 4])),
            ("b.bias", "F32", Tensor(shape: [2], data: [-.infinity, .leastNonzeroMagnitude])),
        ]
        try SafetensorsFile(tensors: tensors, metadata: ["format": "pt", "note": "ünïcode"]).write(to: url)
        let back = try SafetensorsFile.read(url)
        XCTAssertEqual(back.metadata, ["format": "pt", "note": "ünïcode"])
        XCTAssertEqual(back.tensors.map(\.name), tensors.map(\.name))
        for (a, b) in zip(back.tensors, tensors) {
            XCTAssertEqual(a.tensor.shape, b.tensor.shape)
            XCTAssertEqual(a.tensor.data.map(\.bitPattern), b.tensor.data.map(\.bitPattern))
        }
    }

    func testPythonReaderAgreesWithSwiftWriterLayout() throws {
        // The header must be 8-byte aligned and padded with spaces, as safetensors itself writes.
        let url = try temporaryDirectory(self).appendingPathComponent("aligned.safetensors")
        try SafetensorsFile(tensors: [("x", "F32", sampleTensor([3]))]).write(to: url)
        let bytes = try Data(contentsOf: url)
        let headerLength = bytes.prefix(8).reversed().reduce(0) { $0 << 8 | Int($1) }
        XCTAssertEqual(headerLength % 8, 0)
        XCTAssertEqual(bytes.count, 8 + headerLength + 12)
    }
}
