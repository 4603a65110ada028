// GGUFFile: a validating reader and a writer of the GGUF container (ggml's model file).
//
// Format (ggml docs/gguf.md, version 3; version 2 reads the same): "GGUF" magic, uint32
// version, uint64 tensor count, uint64 metadata count; metadata as (string key, uint32
// value type, value) with strings as uint64 length + UTF-8 bytes and arrays as uint32
// element type + uint64 count + elements; tensor infos as (name, uint32 n_dims, uint64
// ne[n_dims] innermost first, uint32 ggml type, uint64 offset into the data section); the
// data section starts at the next multiple of `general.alignment` (default 32) and every
// tensor offset is a multiple of it. All little-endian.
// Reading checks every count, length and offset against the bytes that remain before it
// allocates or indexes anything — magic, version, truncated metadata, counts that cannot
// fit, unknown value or ggml types, misaligned, overlapping or out-of-file tensor data —
// and throws a `WeightIOError` naming the field. Left out on purpose: big-endian GGUF and
// tensor types other than `GGMLType` (named in the error).
import Foundation

/// GGUF's file magic, "GGUF".
let ggufMagic: [UInt8] = Array("GGUF".utf8)
/// The GGUF version this writer produces.
public let ggufVersion: UInt32 = 3
/// Data alignment when `general.alignment` is absent.
public let ggufDefaultAlignment = 32
/// Most dimensions a ggml tensor has.
let ggufMaxDimensions = 4

/// A GGUF metadata value.
public indirect enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32), float32(Float)
    case bool(Bool), string(String), uint64(UInt64), int64(Int64), float64(Double)
    /// An array: its element type code and elements.
    case array(UInt32, [GGUFValue])

    /// The GGUF value-type code.
    var typeCode: UInt32 {
        switch self {
        case .uint8: return 0
        case .int8: return 1
        case .uint16: return 2
        case .int16: return 3
        case .uint32: return 4
        case .int32: return 5
        case .float32: return 6
        case .bool: return 7
        case .string: return 8
        case .array: return 9
        case .uint64: return 10
        case .int64: return 11
        case .float64: return 12
        }
    }

    /// The value as an integer, for any integer type.
    public var intValue: Int? {
        switch self {
        case .uint8(let v): return Int(v)
        case .int8(let v): return Int(v)
        case .uint16(let v): return Int(v)
        case .int16(let v): return Int(v)
        case .uint32(let v): return Int(v)
        case .int32(let v): return Int(v)
        case .uint64(let v): return v <= UInt64(Int.max) ? Int(v) : nil
        case .int64(let v): return Int(v)
        default: return nil
        }
    }

    /// The value as a Double, for float types.
    public var doubleValue: Double? {
        switch self {
        case .float32(let v): return Double(v)
        case .float64(let v): return v
        default: return nil
        }
    }

    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    public var boolValue: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var arrayValue: [GGUFValue]? { if case .array(_, let a) = self { return a }; return nil }

    /// An array of strings.
    public static func strings(_ values: [String]) -> GGUFValue { .array(8, values.map { .string($0) }) }
    /// An array of int32.
    public static func int32s(_ values: [Int32]) -> GGUFValue { .array(5, values.map { .int32($0) }) }
}

/// One tensor of a GGUF file: name, ggml dimensions (innermost first), type and bytes.
public struct GGUFTensor: Sendable {
    public var name: String
    /// ggml `ne`: the innermost (row) length first — a PyTorch [out, in] matrix is [in, out].
    public var dimensions: [Int]
    public var type: GGMLType
    /// The encoded elements (`type.byteCount(elements:)` bytes).
    public var data: Data

    /// Creates a tensor from encoded bytes.
    public init(name: String, dimensions: [Int], type: GGMLType, data: Data) {
        self.name = name
        self.dimensions = dimensions
        self.type = type
        self.data = data
    }

    /// Elements in the tensor.
    public var count: Int { dimensions.reduce(1, *) }
    /// The PyTorch (outermost-first) shape.
    public var shape: [Int] { dimensions.reversed() }

    /// The elements as Float (dequantized).
    public func floats() -> [Float] { data.withUnsafeBytes { ggmlDecode($0, as: type, count: count) } }
}

/// A GGUF file: ordered metadata and tensors.
public struct GGUFFile: Sendable {
    /// Metadata in file order.
    public var metadata: [(key: String, value: GGUFValue)]
    public var tensors: [GGUFTensor]
    /// The version read (`ggufVersion` when written).
    public var version: UInt32 = ggufVersion

    /// Creates a file from metadata and tensors.
    public init(metadata: [(key: String, value: GGUFValue)], tensors: [GGUFTensor]) {
        self.metadata = metadata
        self.tensors = tensors
    }

    /// The value of a metadata key.
    public subscript(key: String) -> GGUFValue? { metadata.first { $0.key == key }?.value }

    /// The data alignment: `general.alignment` or 32.
    public var alignment: Int { self["general.alignment"]?.intValue ?? ggufDefaultAlignment }

    // MARK: Writing

    /// The file's bytes: header, metadata, tensor infos, padding, aligned tensor data.
    public func serialized() -> Data { serializedParts().reduce(into: Data()) { $0.append($1) } }

    /// `serialized()` as consecutive parts: the header (through the padding after the
    /// tensor infos), then each tensor's own data and its padding — written one after another
    /// (`OutputFile.write(parts:to:)`) the weights are never copied into one buffer.
    public func serializedParts() -> [Data] {
        var out = Data()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func string(_ s: String) { u64(UInt64(s.utf8.count)); out.append(contentsOf: Array(s.utf8)) }
        func value(_ v: GGUFValue) {
            switch v {
            case .uint8(let x): out.append(x)
            case .int8(let x): out.append(UInt8(bitPattern: x))
            case .uint16(let x): withUnsafeBytes(of: x.littleEndian) { out.append(contentsOf: $0) }
            case .int16(let x): withUnsafeBytes(of: x.littleEndian) { out.append(contentsOf: $0) }
            case .uint32(let x): u32(x)
            case .int32(let x): u32(UInt32(bitPattern: x))
            case .float32(let x): u32(x.bitPattern)
            case .bool(let x): out.append(x ? 1 : 0)
            case .string(let s): string(s)
            case .uint64(let x): u64(x)
            case .int64(let x): u64(UInt64(bitPattern: x))
            case .float64(let x): u64(x.bitPattern)
            case .array(let type, let items):
                u32(type)
                u64(UInt64(items.count))
                for item in items { value(item) }
            }
        }
        let align = alignment
        func pad() { while out.count % align != 0 { out.append(0) } }
        out.append(contentsOf: ggufMagic)
        u32(ggufVersion)
        u64(UInt64(tensors.count))
        u64(UInt64(metadata.count))
        for (key, v) in metadata { string(key); u32(v.typeCode); value(v) }
        var offset = 0
        for t in tensors {
            string(t.name)
            u32(UInt32(t.dimensions.count))
            for d in t.dimensions { u64(UInt64(d)) }
            u32(t.type.rawValue)
            u64(UInt64(offset))
            offset += (t.data.count + align - 1) / align * align
        }
        pad()
        var parts = [out]
        for t in tensors {
            parts.append(t.data)
            let padding = (align - t.data.count % align) % align
            if padding > 0 { parts.append(Data(count: padding)) }
        }
        return parts
    }

    // MARK: Reading

    /// Reads and validates a GGUF file.
    public static func read(_ url: URL) throws -> GGUFFile {
        try requireRegularFile(url, expected: "a GGUF file", hint: "pass the .gguf file itself")
        let data: Data
        do { data = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw WeightIOError(.ioFailure, file: url, "cannot read the file (\(error.localizedDescription))", hint: "check that it is readable")
        }
        return try data.withUnsafeBytes { raw in
            var parser = GGUFParser(bytes: raw, url: url)
            return try parser.parse()
        }
    }

    /// True when the file starts with the GGUF magic.
    public static func hasMagic(_ url: URL) -> Bool {
        guard let handle = try? FileHandle(forReadingFrom: url) else { return false }
        defer { try? handle.close() }
        return Array((try? handle.read(upToCount: 4)) ?? Data()) == ggufMagic
    }
}

/// A cursor over a GGUF file's bytes that checks every read against the end.
private struct GGUFParser {
    let bytes: UnsafeRawBufferPointer
    let url: URL
    var position = 0

    init(bytes: UnsafeRawBufferPointer, url: URL) {
        self.bytes = bytes
        self.url = url
    }

    func corrupt(_ message: String, object: String? = nil) -> WeightIOError {
        WeightIOError(.corrupt, file: url, object: object, message,
                      hint: "the file is truncated or corrupt; export or download it again")
    }

    var remaining: Int { bytes.count - position }

    mutating func take(_ n: Int, _ field: String) throws -> Int {
        guard n >= 0, n <= remaining else {
            throw corrupt("\(field) needs \(n) bytes at offset \(position) but the file ends after \(remaining) more")
        }
        defer { position += n }
        return position
    }

    mutating func u8(_ field: String) throws -> UInt8 { bytes[try take(1, field)] }
    mutating func u16(_ field: String) throws -> UInt16 { UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(2, field), as: UInt16.self)) }
    mutating func u32(_ field: String) throws -> UInt32 { UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(4, field), as: UInt32.self)) }
    mutating func u64(_ field: String) throws -> UInt64 { UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(8, field), as: UInt64.self)) }

    /// A count that must fit in the remaining bytes at `minimumBytes` each.
    mutating func count(_ field: String, minimumBytes: Int) throws -> Int {
        let n = try u64(field)
        guard n <= UInt64(remaining / max(minimumBytes, 1)) else {
            throw corrupt("\(field) is \(n), more than the \(remaining) remaining bytes can hold")
        }
        return Int(n)
    }

    mutating func string(_ field: String) throws -> String {
        let n = try count("\(field) length", minimumBytes: 1)
        let start = try take(n, field)
        guard let s = String(bytes: UnsafeRawBufferPointer(rebasing: bytes[start..<(start + n)]), encoding: .utf8) else {
            throw corrupt("\(field) is not valid UTF-8")
        }
        return s
    }

    /// Smallest encoded size of a value of a type code (for bounding array counts).
    static func minimumSize(_ type: UInt32) -> Int {
        switch type {
        case 0, 1, 7: return 1
        case 2, 3: return 2
        case 4, 5, 6: return 4
        case 8, 10, 11, 12: return 8
        case 9: return 12
        default: return 1
        }
    }

    mutating func value(type: UInt32, key: String, depth: Int = 0) throws -> GGUFValue {
        switch type {
        case 0: return .uint8(try u8(key))
        case 1: return .int8(Int8(bitPattern: try u8(key)))
        case 2: return .uint16(try u16(key))
        case 3: return .int16(Int16(bitPattern: try u16(key)))
        case 4: return .uint32(try u32(key))
        case 5: return .int32(Int32(bitPattern: try u32(key)))
        case 6: return .float32(Float(bitPattern: try u32(key)))
        case 7:
            let b = try u8(key)
            guard b <= 1 else { throw corrupt("metadata '\(key)' is a bool stored as \(b), expected 0 or 1", object: key) }
            return .bool(b == 1)
        case 8: return .string(try string("metadata '\(key)'"))
        case 9:
            guard depth == 0 else { throw corrupt("metadata '\(key)' nests arrays, which this reader does not accept", object: key) }
            let elementType = try u32("metadata '\(key)' array type")
            guard elementType <= 12 else { throw corrupt("metadata '\(key)' has unknown array element type \(elementType)", object: key) }
            let n = try count("metadata '\(key)' array count", minimumBytes: Self.minimumSize(elementType))
            var items: [GGUFValue] = []
            items.reserveCapacity(n)
            for _ in 0..<n { items.append(try value(type: elementType, key: key, depth: depth + 1)) }
            return .array(elementType, items)
        case 10: return .uint64(try u64(key))
        case 11: return .int64(Int64(bitPattern: try u64(key)))
        case 12: return .float64(Double(bitPattern: try u64(key)))
        default: throw corrupt("metadata '\(key)' has unknown value type \(type) (GGUF knows 0–12)", object: key)
        }
    }

    mutating func parse() throws -> GGUFFile {
        guard bytes.count >= 4, Array(bytes[0..<4]) == ggufMagic else {
            throw WeightIOError(.notThisFormat, file: url, "magic is \(Array(bytes.prefix(4)).map { String(format: "%02x", $0) }.joined()), expected 'GGUF' (47475546)",
                                hint: "this is not a GGUF file")
        }
        position = 4
        let version = try u32("version")
        guard version == 2 || version == 3 else {
            throw WeightIOError(.unsupported, file: url, object: "version", "GGUF version \(version) is not read (versions 2 and 3 are)",
                                hint: "convert it with a current llama.cpp (convert_hf_to_gguf.py)")
        }
        let tensorCount = try count("tensor count", minimumBytes: 8 + 4 + 8 + 4 + 8)
        let kvCount = try count("metadata count", minimumBytes: 8 + 4 + 1)
        var metadata: [(key: String, value: GGUFValue)] = []
        var seenKeys = Set<String>()
        for i in 0..<kvCount {
            let key = try string("metadata key \(i)")
            guard seenKeys.insert(key).inserted else { throw corrupt("metadata key '\(key)' appears twice", object: key) }
            metadata.append((key, try value(type: try u32("metadata '\(key)' type"), key: key)))
        }
        var file = GGUFFile(metadata: metadata, tensors: [])
        file.version = version
        let alignment: Int
        if let a = file["general.alignment"] {
            guard case .uint32(let v) = a, v > 0, v & (v - 1) == 0 else {
                throw corrupt("general.alignment is \(a), expected a uint32 power of two", object: "general.alignment")
            }
            alignment = Int(v)
        } else {
            alignment = ggufDefaultAlignment
        }
        var infos: [(name: String, dimensions: [Int], type: GGMLType, offset: Int, size: Int)] = []
        var seenNames = Set<String>()
        for i in 0..<tensorCount {
            let name = try string("tensor \(i) name")
            guard seenNames.insert(name).inserted else { throw corrupt("tensor '\(name)' appears twice", object: name) }
            let n = Int(try u32("tensor '\(name)' n_dims"))
            guard (1...ggufMaxDimensions).contains(n) else {
                throw corrupt("tensor '\(name)' has \(n) dimensions, expected 1 to \(ggufMaxDimensions)", object: name)
            }
            var dimensions: [Int] = []
            var elements = 1
            for d in 0..<n {
                let v = try u64("tensor '\(name)' ne[\(d)]")
                guard v >= 1, v <= UInt64(bytes.count) else {
                    throw corrupt("tensor '\(name)' ne[\(d)] is \(v), expected 1 to the file size", object: name)
                }
                let (product, overflow) = elements.multipliedReportingOverflow(by: Int(v))
                guard !overflow, product <= bytes.count * 2 else {
                    throw corrupt("tensor '\(name)' has more elements than the file can hold", object: name)
                }
                elements = product
                dimensions.append(Int(v))
            }
            let code = try u32("tensor '\(name)' type")
            guard let type = GGMLType(rawValue: code) else {
                let known = GGMLType.otherNames[code].map { " (\($0))" } ?? ""
                throw WeightIOError(.unsupported, file: url, object: name, "tensor '\(name)' has ggml type \(code)\(known), which this reader does not handle",
                                    hint: "supported: \(GGMLType.allCases.map(\.name).joined(separator: ", ")); requantize to one of them")
            }
            guard dimensions[0] % type.blockSize == 0 else {
                throw corrupt("tensor '\(name)' rows of \(dimensions[0]) are not whole \(type.name) blocks of \(type.blockSize)", object: name)
            }
            let offset = try u64("tensor '\(name)' offset")
            guard offset % UInt64(alignment) == 0 else {
                throw corrupt("tensor '\(name)' offset \(offset) is not a multiple of the alignment \(alignment)", object: name)
            }
            guard offset <= UInt64(bytes.count) else { throw corrupt("tensor '\(name)' offset \(offset) is past the end of the file", object: name) }
            infos.append((name, dimensions, type, Int(offset), type.byteCount(elements: elements)))
        }
        let dataStart = (position + alignment - 1) / alignment * alignment
        guard dataStart <= bytes.count else { throw corrupt("the tensor data section starts at \(dataStart), past the end of the file (\(bytes.count) bytes)") }
        let dataSize = bytes.count - dataStart
        for t in infos where t.offset > dataSize || t.size > dataSize - t.offset {
            throw corrupt("tensor '\(t.name)' data [\(t.offset), \(t.offset + t.size)) runs past the \(dataSize)-byte data section (truncated file?)", object: t.name)
        }
        let sorted = infos.sorted { ($0.offset, $0.size) < ($1.offset, $1.size) }
        for (a, b) in zip(sorted, sorted.dropFirst()) where b.offset < a.offset + a.size {
            throw corrupt("tensors '\(a.name)' [\(a.offset), \(a.offset + a.size)) and '\(b.name)' [\(b.offset), \(b.offset + b.size)) overlap", object: b.name)
        }
        file.tensors = infos.map { t in
            GGUFTensor(name: t.name, dimensions: t.dimensions, type: t.type,
                       data: Data(UnsafeRawBufferPointer(rebasing: bytes[(dataStart + t.offset)..<(dataStart + t.offset + t.size)])))
        }
        return file
    }
}
