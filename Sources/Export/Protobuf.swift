// Protobuf: the few wire-format pieces an ONNX file needs, written by hand.
//
// Follows the protobuf encoding guide: a field is a varint key (field number << 3 | wire
// type) then its value — varint (0) for int64/int32/enums, 32-bit little-endian (5) for
// float, length-delimited (2) for strings, bytes, packed repeated scalars and embedded
// messages. Fields are written in the order the caller appends them (any order is valid).
// Left out on purpose: decoding, groups, 64-bit fixed fields, zig-zag (sint) types.
import Foundation

/// An append-only protobuf message encoder.
struct ProtoMessage {
    private(set) var bytes: [UInt8] = []

    private mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 { bytes.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }

    private mutating func key(_ field: Int, _ wireType: UInt64) { varint(UInt64(field) << 3 | wireType) }

    /// An int64 / int32 / enum field (negative values as 10-byte two's complement, as protobuf does).
    mutating func int(_ field: Int, _ value: Int) {
        key(field, 0)
        varint(UInt64(bitPattern: Int64(value)))
    }

    /// A float field.
    mutating func float(_ field: Int, _ value: Float) {
        key(field, 5)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// A bytes field.
    mutating func data(_ field: Int, _ value: [UInt8]) {
        key(field, 2)
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    /// A string field (UTF-8).
    mutating func string(_ field: Int, _ value: String) { data(field, Array(value.utf8)) }

    /// An embedded message field.
    mutating func message(_ field: Int, _ value: ProtoMessage) { data(field, value.bytes) }

    /// A packed repeated int64 field.
    mutating func packedInts(_ field: Int, _ values: [Int]) {
        var inner = ProtoMessage()
        for v in values { inner.varint(UInt64(bitPattern: Int64(v))) }
        data(field, inner.bytes)
    }
}
