// The hand-written protobuf encoder against the wire format's documented examples, and the
// ONNX model's top-level fields.
@testable import Export
import XCTest

final class ProtobufTests: XCTestCase {
    func testWireFormatExamples() {
        var m = ProtoMessage()
        m.int(1, 150)                       // the encoding guide's example: 08 96 01
        XCTAssertEqual(m.bytes, [0x08, 0x96, 0x01])
        m = ProtoMessage()
        m.int(2, -1)                        // negative int64: ten bytes
        XCTAssertEqual(m.bytes, [0x10] + [UInt8](repeating: 0xFF, count: 9) + [0x01])
        m = ProtoMessage()
        m.string(2, "testing")              // 12 07 74 65 73 74 69 6e 67
        XCTAssertEqual(m.bytes, [0x12, 0x07] + Array("testing".utf8))
        m = ProtoMessage()
        m.float(2, 1)                       // wire type 5, little-endian 0x3f800000
        XCTAssertEqual(m.bytes, [0x15, 0x00, 0x00, 0x80, 0x3F])
        m = ProtoMessage()
        m.packedInts(8, [3, 270])           // 42 03 03 8e 02
        XCTAssertEqual(m.bytes, [0x42, 0x03, 0x03, 0x8E, 0x02])
        var outer = ProtoMessage()
        outer.message(3, m)
        XCTAssertEqual(outer.bytes, [0x1A, 0x05] + m.bytes)
    }
}
