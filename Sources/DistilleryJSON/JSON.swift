// DistilleryJSON: the one JSON mechanism of the code base — Codable for typed data, the
// `JSONValue` tree for files read key by key (HF config.json, safetensors headers, student
// specs) and for config surgery, one encoder configuration (`JSONCoding`) for every JSON
// text Distillery writes, and `JSONLine` for the JSON Lines records whose key order is part
// of their format.
//
// Why a tree beside Codable: HF `config.json` files and safetensors headers must be
// validated with exact kinds (an integer is not a bool, and neither 1.5 nor 2.0 is an
// integer). `JSONDecoder` reads 2.0 as an Int and NSNumber bridging reads true as 1, so
// `parse` reads the text with `JSONSerialization` and sorts each number by the encoding
// type it was stored with; the Codable conformance (for a tree inside a Codable type)
// cannot see the text and takes an integral 2.0 as an integer. Why one encoder: keys sorted and slashes unescaped everywhere, so the same
// value always gives the same bytes (checkpoints and label caches record hashes and texts).
// Why `JSONLine`: `kd embed` / `kd predict` rows put "text" first, so a reader sees which
// line a row belongs to, and prepared splits ({"id","text","label"}) are hashed into label
// caches and checkpoints — their bytes must not change. Its strings escape what JSON
// requires plus DEL (control characters and U+007F as `\u00xx`, non-ASCII as UTF-8); its
// floats use Swift's shortest round-trip text, a non-finite float being `null`.
// Left out on purpose: preserving object key order on reading (callers sort what they need).
import Foundation

/// A JSON value with its exact kind: integers, non-integral numbers and bools kept apart.
public enum JSONValue: Codable, Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Decodes whatever JSON value is next, keeping its exact kind.
    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let v = try? container.decode(Bool.self) { self = .bool(v) }
        else if let v = try? container.decode(Int.self) { self = .int(v) }
        else if let v = try? container.decode(Double.self) { self = .double(v) }
        else if let v = try? container.decode(String.self) { self = .string(v) }
        else if let v = try? container.decode([JSONValue].self) { self = .array(v) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    /// Encodes the value as the JSON kind it holds.
    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let v): try container.encode(v)
        case .int(let v): try container.encode(v)
        case .double(let v): try container.encode(v)
        case .string(let v): try container.encode(v)
        case .array(let v): try container.encode(v)
        case .object(let v): try container.encode(v)
        }
    }

    /// Parses UTF-8 JSON text with exact kinds; throws Foundation's error when it is not
    /// JSON and `JSONDuplicateKey` when an object names a key twice (Foundation would keep
    /// one of them silently; the safetensors reference library and HF refuse or warn).
    public static func parse(_ data: Data) throws -> JSONValue {
        // Foundation on Linux stops reading at a NUL byte and may accept what precedes it;
        // JSON text never holds one.
        guard !data.contains(0) else { throw notJSON("a NUL byte") }
        let value = try JSONValue(foundation: JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]))
        try JSONDuplicateKey.check(data)
        return value
    }

    /// The tree of a `JSONSerialization` result: numbers sorted by their stored encoding
    /// type — `c`/`B` bools, the integer codes integers (when they fit an Int), anything
    /// else (`d`, `f`) a non-integral number, even when it holds 2.0.
    init(foundation value: Any) throws {
        switch value {
        case is NSNull: self = .null
        case let s as String: self = .string(s)
        case let n as NSNumber:
            let code = String(cString: n.objCType)
            if code == "c" || code == "B" { self = .bool(n.boolValue) }
            else if ["i", "s", "l", "q", "I", "S", "L", "Q"].contains(code), let i = value as? Int { self = .int(i) }
            else { self = .double(n.doubleValue) }
        case let items as [Any]: self = .array(try items.map(JSONValue.init(foundation:)))
        case let members as [String: Any]: self = .object(try members.mapValues(JSONValue.init(foundation:)))
        default:
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "unexpected JSON value \(type(of: value))"))
        }
    }

    /// Parses JSON text (see `parse(_:)`).
    public static func parse(_ text: String) throws -> JSONValue { try parse(Data(text.utf8)) }

    /// The kind's name, for error messages ("string", "integer", "array", …).
    public var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "bool"
        case .int: return "integer"
        case .double: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }

    /// The members of an object, nil for any other kind.
    public var objectValue: [String: JSONValue]? { if case .object(let v) = self { return v } else { return nil } }
    /// The items of an array, nil for any other kind.
    public var arrayValue: [JSONValue]? { if case .array(let v) = self { return v } else { return nil } }
    /// The text of a string, nil for any other kind.
    public var stringValue: String? { if case .string(let v) = self { return v } else { return nil } }
    /// The value of an integer, nil for any other kind (1.5 and true are not integers).
    public var intValue: Int? { if case .int(let v) = self { return v } else { return nil } }
    /// The value of a bool, nil for any other kind.
    public var boolValue: Bool? { if case .bool(let v) = self { return v } else { return nil } }
    /// The value of any number (integer or not), nil for any other kind.
    public var numberValue: Double? {
        switch self {
        case .int(let v): return Double(v)
        case .double(let v): return v
        default: return nil
        }
    }

    /// Compact JSON text of this value with ", " and ": " separators and sorted keys — the
    /// safetensors header style, also used to quote values in error messages.
    public var jsonText: String {
        switch self {
        case .null: return "null"
        case .bool(let v): return v ? "true" : "false"
        case .int(let v): return String(v)
        case .double(let v): return String(v)
        case .string: return (try? JSONCoding.string(self)) ?? "\"\""
        case .array(let items): return "[" + items.map(\.jsonText).joined(separator: ", ") + "]"
        case .object(let members):
            return "{" + members.keys.sorted().map { "\(JSONValue.string($0).jsonText): \(members[$0]!.jsonText)" }
                .joined(separator: ", ") + "}"
        }
    }
}

/// The one JSON configuration of Distillery: keys sorted, slashes not escaped; compact or
/// pretty-printed (two-space indent).
public enum JSONCoding {
    /// A new encoder with the shared settings.
    public static func encoder(pretty: Bool = false) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
                                          : [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// The JSON bytes of `value`.
    public static func data(_ value: some Encodable, pretty: Bool = false) throws -> Data {
        try encoder(pretty: pretty).encode(value)
    }

    /// The JSON text of `value`.
    public static func string(_ value: some Encodable, pretty: Bool = false) throws -> String {
        String(decoding: try data(value, pretty: pretty), as: UTF8.self)
    }

    /// Decodes `type` from JSON bytes.
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        try JSONDecoder().decode(type, from: data)
    }

    /// Decodes `type` from JSON text.
    public static func decode<T: Decodable>(_ type: T.Type, from text: String) throws -> T {
        try decode(type, from: Data(text.utf8))
    }
}

/// A JSON object built field by field, keys in insertion order, rendered compactly.
public struct JSONLine: Sendable {
    private var fields: [String] = []

    /// An empty object.
    public init() {}

    /// Adds a string field.
    public func adding(_ key: String, _ value: String) -> JSONLine {
        var line = self
        line.fields.append(JSONLine.quoted(key) + ":" + JSONLine.quoted(value))
        return line
    }

    /// Adds an array of floats (non-finite values as null).
    public func adding(_ key: String, floats values: some Sequence<Float>) -> JSONLine {
        var line = self
        line.fields.append(JSONLine.quoted(key) + ":[" + values.map { $0.isFinite ? "\($0)" : "null" }.joined(separator: ",") + "]")
        return line
    }

    /// Adds one float (non-finite as null).
    public func adding(_ key: String, float value: Float) -> JSONLine {
        var line = self
        line.fields.append(JSONLine.quoted(key) + ":" + (value.isFinite ? "\(value)" : "null"))
        return line
    }

    /// Adds an object of floats by key, in the order given (non-finite values as null).
    public func adding(_ key: String, floatsByKey pairs: [(String, Float)]) -> JSONLine {
        var line = self
        let members = pairs.map { JSONLine.quoted($0.0) + ":" + ($0.1.isFinite ? "\($0.1)" : "null") }
        line.fields.append(JSONLine.quoted(key) + ":{" + members.joined(separator: ",") + "}")
        return line
    }

    /// The object's text, without a newline.
    public var text: String { "{" + fields.joined(separator: ",") + "}" }

    /// A JSON string literal of `s` with the escapes JSON requires (and DEL escaped).
    public static func quoted(_ s: String) -> String {
        var out = "\""
        out.reserveCapacity(s.utf8.count + 2)
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20 || u.value == 0x7F:
                out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}

/// A JSON object that names the same key twice.
public struct JSONDuplicateKey: Error, CustomStringConvertible, Sendable {
    /// The repeated key.
    public let key: String

    /// "key 'x' appears twice in one object".
    public var description: String { "key '\(key)' appears twice in one object" }

    /// Throws for the first object of `data` (already known to be valid JSON) that repeats a key.
    static func check(_ data: Data) throws {
        var keysByDepth: [Set<String>?] = []   // per open container: the keys seen (nil for an array)
        var expectKey = false
        var i = data.startIndex
        while i < data.endIndex {
            let byte = data[i]
            switch byte {
            case UInt8(ascii: "{"): keysByDepth.append([]); expectKey = true
            case UInt8(ascii: "["): keysByDepth.append(nil); expectKey = false
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                guard keysByDepth.popLast() != nil else { throw notJSON("a '\(Character(UnicodeScalar(byte)))' that closes nothing") }
                expectKey = false
            case UInt8(ascii: ","): expectKey = keysByDepth.last.map { $0 != nil } ?? false
            case UInt8(ascii: "\""):
                var end = data.index(after: i)
                while end < data.endIndex && data[end] != UInt8(ascii: "\"") {
                    end = data.index(end, offsetBy: data[end] == UInt8(ascii: "\\") ? 2 : 1)
                }
                guard end < data.endIndex else { throw notJSON("a string that does not end") }
                if expectKey, let key = (try? JSONSerialization.jsonObject(with: data[i...end], options: [.fragmentsAllowed])) as? String {
                    guard keysByDepth[keysByDepth.count - 1]!.insert(key).inserted else { throw JSONDuplicateKey(key: key) }
                    expectKey = false
                }
                i = end
            default: break
            }
            i = data.index(after: i)
        }
    }
}

/// The error for text that Foundation's parser let through but is not JSON.
func notJSON(_ what: String) -> DecodingError {
    DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "not valid JSON: it holds \(what)"))
}

/// A Codable decoding failure in words, naming the key path: "key 'labels' is a string,
/// expected an array", "key 'name' is missing", "not valid JSON".
public func decodingProblem(_ error: any Error) -> String {
    func path(_ codingPath: [any CodingKey]) -> String {
        codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }
    switch error {
    case DecodingError.keyNotFound(let key, let context):
        return "key '\(path(context.codingPath + [key]))' is missing"
    case DecodingError.typeMismatch(let type, let context), DecodingError.valueNotFound(let type, let context):
        return "key '\(path(context.codingPath))' has the wrong kind (expected \(type))"
    case DecodingError.dataCorrupted(let context) where !context.codingPath.isEmpty:
        return "key '\(path(context.codingPath))': \(context.debugDescription)"
    case let error as JSONDuplicateKey:
        return error.description
    default:
        return "not valid JSON"
    }
}
