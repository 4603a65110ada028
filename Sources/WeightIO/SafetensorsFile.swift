// SafetensorsFile: a native reader (and a float32 writer) of the safetensors format.
//
// Format (huggingface/safetensors, docs "Format"): 8-byte little-endian header length N,
// N bytes of UTF-8 JSON mapping tensor name → {dtype, shape, data_offsets: [begin, end]}
// (offsets relative to the data section that follows the header), an optional
// `__metadata__` string map, then the raw little-endian tensor bytes.
// The whole header is validated before any tensor byte is touched — sizes, types, dtype
// names, byte counts, bounds, overlaps — so a corrupt file fails with a precise message
// instead of garbage weights. The file is memory-mapped and read once.
// Left out on purpose: gaps between tensors and trailing bytes are tolerated (the Rust
// reference rejects them, but they are harmless here); big-endian hosts are not supported.

import DistilleryTensor
import DistilleryJSON
import Foundation

/// Largest header accepted, as in the reference implementation (100 MB).
private let maximumHeaderLength: UInt64 = 100_000_000

/// Hint for a safetensors file whose header contradicts itself.
private let corruptHint = "the file is corrupt or not safetensors; re-export it with safetensors.torch.save_file"

/// Byte size of each safetensors dtype this reader converts to Float.
private let safetensorsDtypeSizes: [String: Int] = [
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2,
    "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
]

/// A safetensors file read into memory: tensors (converted to Float) and header metadata.
public struct SafetensorsFile {
    /// Every tensor in data order (sorted by offset) with its stored dtype ("F32", "I64", …).
    public var tensors: [(name: String, dtype: String, tensor: Tensor)]
    /// The `__metadata__` string map (empty when absent).
    public var metadata: [String: String]

    /// Creates a value from tensors and metadata (e.g. to `write` it).
    public init(tensors: [(name: String, dtype: String, tensor: Tensor)], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// True for the floating-point dtypes (weights); false for integer/bool buffers like `position_ids`.
    public static func isFloatingPoint(_ dtype: String) -> Bool {
        ["F64", "F32", "F16", "BF16"].contains(dtype)
    }

    /// The dtypes this reader understands.
    public static var supportedDtypes: [String] { safetensorsDtypeSizes.keys.sorted() }

    private struct Entry {
        var name: String
        var dtype: String
        var shape: [Int]
        var begin: Int
        var end: Int
    }

    // MARK: Reading

    /// Reads and validates a safetensors file; tensor data is converted to Float.
    public static func read(_ url: URL) throws -> SafetensorsFile {
        func corrupt(_ message: String, object: String? = nil, hint: String = corruptHint) -> WeightIOError {
            WeightIOError(.corrupt, file: url, object: object, message, hint: hint)
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw WeightIOError(.fileNotFound, file: url, "no such file (\(url.path))",
                                hint: "check the path; relative paths are resolved from the current directory")
        }
        let file: Data
        do {
            file = try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw WeightIOError(.ioFailure, file: url, "cannot read the file (\(error.localizedDescription))",
                                hint: "check that it is readable")
        }
        guard file.count >= 8 else {
            throw corrupt("file is \(file.count) bytes, shorter than the 8-byte header length",
                          hint: "the file is truncated or not safetensors; download or export it again")
        }
        let headerLength = file.prefix(8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard headerLength <= maximumHeaderLength else {
            throw corrupt("header length \(headerLength) is absurdly large (limit \(maximumHeaderLength) bytes)",
                          hint: "this is not a safetensors file (wrong format or byte order)")
        }
        guard 8 + headerLength <= UInt64(file.count) else {
            throw corrupt("header length \(headerLength) runs past the end of the file (\(file.count) bytes)",
                          hint: "the file is truncated; download or export it again")
        }
        let dataStart = 8 + Int(headerLength)
        let dataSize = file.count - dataStart
        let headerBytes = file.subdata(in: 8..<dataStart)
        guard String(data: headerBytes, encoding: .utf8) != nil else {
            throw corrupt("header (\(headerLength) bytes) is not valid UTF-8")
        }
        let header: JSONValue
        do {
            header = try JSONValue.parse(headerBytes)
        } catch let error as JSONDuplicateKey {
            throw corrupt("header names tensor \(error.key == "__metadata__" ? "__metadata__" : "'\(error.key)'") twice (\(error))")
        } catch {
            throw corrupt("header is not valid JSON")
        }
        guard case .object(let members) = header else {
            throw corrupt("header is a JSON \(header.kindName), expected an object of tensors")
        }

        var metadata: [String: String] = [:]
        var entries: [Entry] = []
        for name in members.keys.sorted() {
            let value = members[name]!
            if name == "__metadata__" {
                guard case .object(let map) = value else {
                    throw corrupt("'__metadata__' is a \(value.kindName), expected a string map", object: name)
                }
                for (key, item) in map {
                    guard case .string(let text) = item else {
                        throw corrupt("'__metadata__' value for '\(key)' is a \(item.kindName), expected a string", object: name)
                    }
                    metadata[key] = text
                }
                continue
            }
            entries.append(try validatedEntry(name, value, dataSize: dataSize, url: url))
        }

        entries.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        for (previous, next) in zip(entries, entries.dropFirst()) where next.begin < previous.end {
            throw corrupt("tensors '\(previous.name)' [\(previous.begin), \(previous.end)] and "
                          + "'\(next.name)' [\(next.begin), \(next.end)] overlap", object: next.name)
        }

        let tensors = file.withUnsafeBytes { raw in
            entries.map { entry in
                let bytes = UnsafeRawBufferPointer(rebasing: raw[(dataStart + entry.begin)..<(dataStart + entry.end)])
                return (name: entry.name, dtype: entry.dtype,
                        tensor: Tensor(shape: entry.shape, data: convertToFloat(bytes, dtype: entry.dtype)))
            }
        }
        return SafetensorsFile(tensors: tensors, metadata: metadata)
    }

    private static func validatedEntry(_ name: String, _ value: JSONValue, dataSize: Int, url: URL) throws -> Entry {
        let hint = corruptHint
        func corrupt(_ object: String, _ message: String, _ hint: String) -> WeightIOError {
            WeightIOError(.corrupt, file: url, object: object, message, hint: hint)
        }
        guard case .object(let fields) = value else {
            throw corrupt(name, "tensor '\(name)' entry is a \(value.kindName), expected an object", hint)
        }
        guard case .string(let dtype)? = fields["dtype"] else {
            throw corrupt(name, "tensor '\(name)' has \(fields["dtype"].map { "a \($0.kindName)" } ?? "no") 'dtype', expected a string", hint)
        }
        guard let elementSize = safetensorsDtypeSizes[dtype] else {
            throw WeightIOError(.unsupported, file: url, object: name, "unknown dtype '\(dtype)' for tensor '\(name)'",
                                hint: "supported: \(supportedDtypes.joined(separator: ", ")); convert the checkpoint to F32 or F16")
        }
        guard case .array(let shapeValues)? = fields["shape"],
              let shape = shapeValues.integers(), shape.allSatisfy({ $0 >= 0 }) else {
            throw corrupt(name, "tensor '\(name)' has \(fields["shape"]?.jsonText ?? "no") 'shape', expected an array of non-negative integers", hint)
        }
        guard case .array(let offsetValues)? = fields["data_offsets"],
              let offsets = offsetValues.integers(), offsets.count == 2, offsets.allSatisfy({ $0 >= 0 }) else {
            throw corrupt(name, "tensor '\(name)' has \(fields["data_offsets"]?.jsonText ?? "no") 'data_offsets', expected [begin, end] non-negative integers", hint)
        }
        let (begin, end) = (offsets[0], offsets[1])
        guard begin <= end else {
            throw corrupt(name, "tensor '\(name)' data_offsets [\(begin), \(end)] are reversed", hint)
        }
        guard end <= dataSize else {
            throw corrupt(name, "tensor '\(name)' data_offsets [\(begin), \(end)] are out of bounds of the \(dataSize)-byte data section",
                          "the file is truncated or corrupt; download or export it again")
        }
        var needed = elementSize
        var overflow = false
        for dimension in shape where !overflow {
            (needed, overflow) = needed.multipliedReportingOverflow(by: dimension)
        }
        guard !overflow, needed == end - begin else {
            throw corrupt(name, "tensor '\(name)' shape \(describeShape(shape)) × \(dtype) (\(elementSize) bytes) needs "
                          + "\(overflow ? "more than Int.max" : String(needed)) bytes but data_offsets [\(begin), \(end)] span \(end - begin)", hint)
        }
        return Entry(name: name, dtype: dtype, shape: shape, begin: begin, end: end)
    }

    /// Converts little-endian elements of `dtype` to Float (dtype already validated).
    private static func convertToFloat(_ bytes: UnsafeRawBufferPointer, dtype: String) -> [Float] {
        let count = bytes.count / safetensorsDtypeSizes[dtype]!
        return [Float](unsafeUninitializedCapacity: count) { out, initialized in
            func each<T>(_ type: T.Type, _ convert: (T) -> Float) {
                for i in 0..<count {
                    out[i] = convert(bytes.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self))
                }
            }
            switch dtype {
            case "F32":
                if count > 0 { out.baseAddress!.withMemoryRebound(to: UInt8.self, capacity: bytes.count) {
                    $0.update(from: bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), count: bytes.count)
                } }
            case "F16": each(UInt16.self) { Float(Float16(bitPattern: $0)) }
            case "BF16": each(UInt16.self) { Float(bitPattern: UInt32($0) << 16) }
            case "F64": each(Double.self) { Float($0) }
            case "I64": each(Int64.self) { Float($0) }
            case "I32": each(Int32.self) { Float($0) }
            case "I16": each(Int16.self) { Float($0) }
            case "I8": each(Int8.self) { Float($0) }
            case "U8": each(UInt8.self) { Float($0) }
            case "BOOL": each(UInt8.self) { $0 != 0 ? 1 : 0 }
            default: preconditionFailure("dtype \(dtype) passed validation but has no conversion")
            }
            initialized = count
        }
    }

    // MARK: Writing

    /// Writes every tensor as F32 (dtype labels are ignored) with the metadata, atomically.
    public func write(to url: URL) throws {
        try OutputFile.write(serialized(), to: url)
    }

    /// The file's bytes: every tensor as F32 (dtype labels are ignored), with the metadata.
    public func serialized() -> Data {
        var entries: [String] = []
        var offset = 0
        for (name, _, tensor) in tensors {
            let size = tensor.count * 4
            entries.append("\(JSONValue.string(name).jsonText): {\"dtype\": \"F32\", \"shape\": \(tensor.shape), "
                           + "\"data_offsets\": [\(offset), \(offset + size)]}")
            offset += size
        }
        if !metadata.isEmpty {
            entries.insert("\"__metadata__\": " + JSONValue.object(metadata.mapValues { .string($0) }).jsonText, at: 0)
        }
        var header = Array(("{" + entries.joined(separator: ", ") + "}").utf8)
        while header.count % 8 != 0 { header.append(0x20) }   // pad with spaces to 8-byte alignment, as the reference does
        var out = Data(capacity: 8 + header.count + offset)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: header)
        for (_, _, tensor) in tensors { tensor.data.withUnsafeBytes { out.append(contentsOf: $0) } }
        return out
    }
}

extension Array where Element == JSONValue {
    /// The elements as Ints when every one is a JSON integer, else nil.
    func integers() -> [Int]? {
        var result: [Int] = []
        for value in self {
            guard case .int(let v) = value else { return nil }
            result.append(v)
        }
        return result
    }
}
