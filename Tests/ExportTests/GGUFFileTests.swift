// GGUF container: write → read round trip, and the reader's errors on hand-made bad files.
import Export
import Foundation
import TestSupport
import WeightIO
import XCTest

/// Builds GGUF bytes field by field, including ones the writer would never produce.
struct GGUFBytes {
    var data = Data()
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
    mutating func string(_ s: String) { u64(UInt64(s.utf8.count)); data.append(contentsOf: Array(s.utf8)) }
    mutating func header(magic: String = "GGUF", version: UInt32 = 3, tensors: UInt64, kvs: UInt64) {
        data.append(contentsOf: Array(magic.utf8)); u32(version); u64(tensors); u64(kvs)
    }
    mutating func tensorInfo(_ name: String, ne: [UInt64], type: UInt32, offset: UInt64) {
        string(name); u32(UInt32(ne.count)); for d in ne { u64(d) }; u32(type); u64(offset)
    }
    mutating func pad(_ alignment: Int = 32) { while data.count % alignment != 0 { data.append(0) } }
}

final class GGUFFileTests: XCTestCase {
    var temp: URL!
    override func setUpWithError() throws { temp = try makeTemporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: temp) }

    func write(_ data: Data, _ name: String = "x.gguf") throws -> URL {
        let url = temp.appendingPathComponent(name)
        try data.write(to: url)
        return url
    }

    /// Asserts that reading `data` fails with a message containing every needle.
    func assertReadFails(_ data: Data, _ needles: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let url = try write(data)
        do {
            _ = try GGUFFile.read(url)
            XCTFail("read succeeded", file: file, line: line)
        } catch {
            let text = "\(error)"
            for n in needles { XCTAssertTrue(text.contains(n), "'\(n)' not in: \(text)", file: file, line: line) }
        }
    }

    /// Two F32 tensors [4] at offsets 0 and 32, plus one metadata key.
    func twoTensors(secondOffset: UInt64 = 32, secondType: UInt32 = 0, version: UInt32 = 3, magic: String = "GGUF") -> Data {
        var b = GGUFBytes()
        b.header(magic: magic, version: version, tensors: 2, kvs: 1)
        b.string("general.architecture"); b.u32(8); b.string("bert")
        b.tensorInfo("a", ne: [4], type: 0, offset: 0)
        b.tensorInfo("b", ne: [4], type: secondType, offset: secondOffset)
        b.pad()
        b.data.append(Data(count: 64))
        return b.data
    }

    func testWriteReadRoundTrip() throws {
        let x = (0..<64).map { Float($0) / 7 - 3 }
        var file = GGUFFile(metadata: [("general.architecture", .string("bert")), ("n", .uint32(7)), ("f", .float32(1e-12)),
                                       ("flag", .bool(false)), ("words", .strings(["▁a", "b", ""])), ("types", .int32s([1, 3, 1]))],
                            tensors: [])
        for type in GGMLType.allCases {
            file.tensors.append(GGUFTensor(name: "t.\(type.name)", dimensions: [32, 2], type: type, data: ggmlEncode(x, as: type)))
        }
        let back = try GGUFFile.read(try write(file.serialized()))
        XCTAssertEqual(back.version, 3)
        XCTAssertEqual(back.metadata.map(\.key), file.metadata.map(\.key))
        for (a, b) in zip(back.metadata, file.metadata) { XCTAssertEqual(a.value, b.value, a.key) }
        XCTAssertEqual(back.tensors.map(\.name), file.tensors.map(\.name))
        for (a, b) in zip(back.tensors, file.tensors) {
            XCTAssertEqual(a.dimensions, [32, 2]); XCTAssertEqual(a.shape, [2, 32])
            XCTAssertEqual(a.type, b.type); XCTAssertEqual(a.data, b.data)
        }
        XCTAssertEqual(back.tensors[0].floats(), x)
        XCTAssertNoThrow(try GGUFFile.read(try write(twoTensors())))
    }

    func testBadFilesNameTheField() throws {
        try assertReadFails(twoTensors(magic: "GGUX"), ["magic", "GGUF"])
        try assertReadFails(twoTensors(version: 1), ["GGUF version 1"])
        try assertReadFails(twoTensors(version: 4), ["GGUF version 4"])
        try assertReadFails(Data(twoTensors().dropLast(20)), ["tensor 'b' data", "runs past"])
        try assertReadFails(Data(twoTensors().prefix(40)), ["tensor count is 2", "remaining bytes"])
        var cut = GGUFBytes()
        cut.header(tensors: 0, kvs: 1)
        cut.string("general.architecture"); cut.u32(8); cut.string("bert")
        try assertReadFails(Data(cut.data.dropLast(2)), ["metadata 'general.architecture'", "remaining bytes"])
        try assertReadFails(twoTensors(secondOffset: 0), ["overlap", "'a'", "'b'"])
        try assertReadFails(twoTensors(secondOffset: 8), ["offset 8", "alignment 32"])
        try assertReadFails(twoTensors(secondOffset: 1 << 40), ["tensor 'b' offset", "past the end"])
        try assertReadFails(twoTensors(secondType: 12), ["ggml type 12 (q4_K)", "'b'"])
        try assertReadFails(twoTensors(secondType: 8), ["rows of 4", "q8_0"])
        var huge = GGUFBytes()
        huge.header(tensors: 1 << 60, kvs: 0)
        try assertReadFails(huge.data, ["tensor count", "remaining bytes"])
        var badArray = GGUFBytes()
        badArray.header(tensors: 0, kvs: 1)
        badArray.string("tokenizer.ggml.tokens"); badArray.u32(9); badArray.u32(8); badArray.u64(1 << 50)
        try assertReadFails(badArray.data, ["tokenizer.ggml.tokens", "array count"])
        var badType = GGUFBytes()
        badType.header(tensors: 0, kvs: 1)
        badType.string("k"); badType.u32(42)
        try assertReadFails(badType.data, ["metadata 'k'", "unknown value type 42"])
        var alignment = GGUFBytes()
        alignment.header(tensors: 0, kvs: 1)
        alignment.string("general.alignment"); alignment.u32(4); alignment.u32(24)
        try assertReadFails(alignment.data, ["general.alignment", "power of two"])
    }
}
