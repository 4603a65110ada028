// JSONLine: one JSON object on one line with its keys in the order they are added — for the
// JSON Lines records whose bytes are part of the format: `kd embed` / `kd predict` output
// ({"text", …} first, so a reader sees which line a row belongs to) and the prepared
// dataset splits ({"id","text","label"}, hashed into label caches and checkpoints).
//
// Strings are escaped as JSON requires, plus DEL: `"` `\` newline, carriage return and
// tab by their short escapes, other control characters and U+007F as `\u00xx`; everything
// else, non-ASCII included, is written as UTF-8. Floats use Swift's shortest round-trip
// text; a non-finite float is `null`. Everything else Distillery writes goes through
// `JSONCoding` (keys sorted).
import Foundation

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
