// JSONValue: a typed JSON tree decoded with Foundation's JSONDecoder.
//
// Safetensors headers and HF `config.json` files must be validated key by key with
// exact types (an integer is not a bool, 1.5 is not an integer), which
// `JSONSerialization`'s NSNumber bridging blurs on Linux. Decoding into this enum keeps
// the distinction. Object key order is not preserved; callers sort what they need.

import Foundation

/// A JSON value with its exact kind: integers, non-integral numbers and bools kept apart.
enum JSONValue: Decodable, Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let v = try? container.decode(Bool.self) { self = .bool(v) }
        else if let v = try? container.decode(Int.self) { self = .int(v) }
        else if let v = try? container.decode(Double.self) { self = .double(v) }
        else if let v = try? container.decode(String.self) { self = .string(v) }
        else if let v = try? container.decode([JSONValue].self) { self = .array(v) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    /// Parses UTF-8 JSON text; throws Foundation's decoding error when it is not JSON.
    static func parse(_ data: Data) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: data)
    }

    /// The kind's name, for error messages ("string", "integer", "array", …).
    var kindName: String {
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

    /// Compact JSON text of this value (keys sorted), e.g. for error messages.
    var jsonText: String {
        switch self {
        case .null: return "null"
        case .bool(let v): return v ? "true" : "false"
        case .int(let v): return String(v)
        case .double(let v): return String(v)
        case .string(let v):
            let data = (try? JSONEncoder().encode(v)) ?? Data()
            return String(decoding: data, as: UTF8.self)
        case .array(let items): return "[" + items.map(\.jsonText).joined(separator: ", ") + "]"
        case .object(let members):
            return "{" + members.keys.sorted().map { "\(JSONValue.string($0).jsonText): \(members[$0]!.jsonText)" }
                .joined(separator: ", ") + "}"
        }
    }
}
