// RecipeReader: the strict reading behind `Recipe` — a JSON object read key by key with its
// key path (`stages.distill[0].temperature`), unknown keys refused with the nearest known
// key offered ("did you mean 'temperature'?"), wrong kinds named ("is a string, expected a
// number"), and malformed JSON located by line and column.
//
// It follows the student-spec reader in Distillation (ObjectReader): the tree comes from
// `JSONValue.parse`, which keeps integers, numbers and bools apart and refuses duplicate
// keys. The "did you mean" suggestion is the known key at the smallest edit distance
// (Levenshtein), offered only when that distance is small next to the key's length.
// Left out on purpose: comments and trailing commas in JSON (recipes are plain JSON).
import DistilleryJSON
import Foundation

/// A recipe that cannot be used: the file, the key path inside it, what is wrong.
public struct RecipeError: Error, CustomStringConvertible, Sendable {
    /// The recipe file as given.
    public var file: String
    /// The key path (`stages.distill[0].temperature`), or nil for the file as a whole.
    public var keyPath: String?
    /// What is wrong, with a hint.
    public var message: String

    /// `FILE: KEY.PATH: message`.
    public var description: String { [file, keyPath].compactMap { $0 }.joined(separator: ": ") + ": " + message }

    public init(file: String, keyPath: String?, _ message: String) {
        self.file = file
        self.keyPath = keyPath
        self.message = message
    }
}

/// Parses recipe text: a `RecipeError` with the line and column when it is not JSON.
func parseRecipeJSON(_ data: Data, file: String) throws -> JSONValue {
    do { return try JSONValue.parse(data) } catch let error as JSONDuplicateKey {
        throw RecipeError(file: file, keyPath: nil, "\(error.description) — give each key once")
    } catch {
        throw RecipeError(file: file, keyPath: nil, "not valid JSON (\(jsonErrorLocation(data, error))) — check the brackets, quotes and commas there")
    }
}

/// "line L, column C" of a JSON syntax error: Foundation's own position when its message
/// carries one, else where a small scan of the text finds the first problem.
func jsonErrorLocation(_ data: Data, _ error: any Error) -> String {
    let text = String(describing: (error as NSError).userInfo[NSDebugDescriptionErrorKey] ?? error)
    if let range = text.range(of: #"line \d+, column \d+"#, options: .regularExpression) { return String(text[range]) }
    var scan = JSONSyntaxScan(Array(data))
    let offset = scan.firstErrorOffset() ?? data.count
    var line = 1, column = 1
    for byte in data.prefix(offset) {
        if byte == UInt8(ascii: "\n") { line += 1; column = 1 } else if byte & 0xC0 != 0x80 { column += 1 }
    }
    return "line \(line), column \(column)"
}

/// A minimal JSON syntax scan that finds the byte offset of the first error.
struct JSONSyntaxScan {
    let bytes: [UInt8]
    var i = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    struct Failure: Error {}

    mutating func firstErrorOffset() -> Int? {
        do {
            skipSpace()
            try value()
            skipSpace()
            return i == bytes.count ? nil : i
        } catch { return i }
    }

    mutating func skipSpace() { while i < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { i += 1 } }

    mutating func expect(_ c: UInt8) throws { guard i < bytes.count, bytes[i] == c else { throw Failure() }; i += 1 }

    mutating func value() throws {
        guard i < bytes.count else { throw Failure() }
        switch bytes[i] {
        case UInt8(ascii: "{"):
            i += 1; skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return }
            while true {
                skipSpace(); try string(); skipSpace(); try expect(UInt8(ascii: ":")); skipSpace(); try value(); skipSpace()
                guard i < bytes.count else { throw Failure() }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                try expect(UInt8(ascii: "}")); return
            }
        case UInt8(ascii: "["):
            i += 1; skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return }
            while true {
                skipSpace(); try value(); skipSpace()
                guard i < bytes.count else { throw Failure() }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                try expect(UInt8(ascii: "]")); return
            }
        case UInt8(ascii: "\""): try string()
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        default: try number()
        }
    }

    mutating func literal(_ word: String) throws { for c in word.utf8 { try expect(c) } }

    mutating func string() throws {
        try expect(UInt8(ascii: "\""))
        while i < bytes.count {
            let c = bytes[i]
            if c == UInt8(ascii: "\"") { i += 1; return }
            if c < 0x20 { throw Failure() }
            i += c == UInt8(ascii: "\\") ? 2 : 1
        }
        throw Failure()
    }

    mutating func number() throws {
        let start = i
        if i < bytes.count, bytes[i] == UInt8(ascii: "-") { i += 1 }
        let allowed: Set<UInt8> = Set("0123456789.eE+-".utf8)
        while i < bytes.count, allowed.contains(bytes[i]) { i += 1 }
        if i == start || (i == start + 1 && bytes[start] == UInt8(ascii: "-")) { i = start; throw Failure() }
    }
}

/// The known key nearest to `key` when it is a plausible typo of it.
func nearestKey(_ key: String, in known: [String]) -> String? {
    func distance(_ a: [Character], _ b: [Character]) -> Int {
        var row = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var previous = row[0]
            row[0] = i + 1
            for (j, y) in b.enumerated() {
                let next = min(row[j + 1] + 1, row[j] + 1, previous + (x == y ? 0 : 1))
                previous = row[j + 1]
                row[j + 1] = next
            }
        }
        return row[b.count]
    }
    let lowered = Array(key.lowercased())
    var best: (key: String, distance: Int)?
    for candidate in known.sorted() {
        let d = distance(lowered, Array(candidate.lowercased()))
        if best == nil || d < best!.distance { best = (candidate, d) }
    }
    guard let best, best.distance <= max(1, min(3, key.count / 3)) else { return nil }
    return best.key
}

/// One JSON object of a recipe, read key by key; unknown keys are refused on creation.
struct RecipeObject {
    let members: [String: JSONValue]
    let path: String
    let file: String

    init(_ node: JSONValue, path: String, file: String, allowed: [String]) throws {
        self.path = path
        self.file = file
        guard case .object(let m) = node else {
            throw RecipeError(file: file, keyPath: path.isEmpty ? nil : path, "is \(node.phrase), expected an object")
        }
        members = m
        if let unknown = m.keys.filter({ !allowed.contains($0) }).sorted().first {
            let hint = nearestKey(unknown, in: allowed).map { "did you mean '\($0)'?" }
                ?? "known keys\(path.isEmpty ? "" : " here"): \(allowed.sorted().joined(separator: ", "))"
            throw RecipeError(file: file, keyPath: full(unknown), "unknown key (\(hint))")
        }
    }

    func full(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func fail(_ key: String?, _ message: String) -> RecipeError {
        RecipeError(file: file, keyPath: key.map(full) ?? (path.isEmpty ? nil : path), message)
    }

    func has(_ key: String) -> Bool { members[key] != nil && members[key] != .null }

    private func wrong(_ key: String, _ node: JSONValue, _ expected: String) -> RecipeError {
        fail(key, "is \(node.phrase), expected \(expected)")
    }

    func string(_ key: String) throws -> String {
        guard let v = members[key] else { throw fail(key, "is missing (expected a string)") }
        guard case .string(let s) = v, !s.isEmpty else { throw wrong(key, v, "a non-empty string") }
        return s
    }

    func optionalString(_ key: String) throws -> String? { has(key) ? try string(key) : nil }

    func optionalInt(_ key: String, in range: ClosedRange<Int> = 0...Int(Int32.max)) throws -> Int? {
        guard has(key), let v = members[key] else { return nil }
        guard case .int(let n) = v else { throw wrong(key, v, "an integer") }
        guard range.contains(n) else { throw fail(key, "\(n) is out of range — use \(range.lowerBound)...\(range.upperBound)") }
        return n
    }

    func optionalDouble(_ key: String, in range: ClosedRange<Double> = -1e300...1e300) throws -> Double? {
        guard has(key), let v = members[key] else { return nil }
        return try number(v, at: key, in: range)
    }

    /// `v` as a number in `range`, or an error at `key` (relative to this object).
    func number(_ v: JSONValue, at key: String, in range: ClosedRange<Double>) throws -> Double {
        let d: Double
        switch v {
        case .int(let n): d = Double(n)
        case .double(let x): d = x
        default: throw wrong(key, v, "a number")
        }
        guard range.contains(d) else { throw fail(key, "\(d) is out of range — use a number in \(range.lowerBound)...\(range.upperBound)") }
        return d
    }

    func optionalBool(_ key: String) throws -> Bool? {
        guard has(key), let v = members[key] else { return nil }
        guard case .bool(let b) = v else { throw wrong(key, v, "true or false") }
        return b
    }

    func optionalStringList(_ key: String) throws -> [String]? {
        guard has(key), let v = members[key] else { return nil }
        guard case .array(let items) = v else { throw wrong(key, v, "an array of strings") }
        return try items.enumerated().map { i, item in
            guard case .string(let s) = item, !s.isEmpty else { throw wrong("\(key)[\(i)]", item, "a non-empty string") }
            return s
        }
    }

    func object(_ key: String, allowed: [String]) throws -> RecipeObject? {
        guard has(key), let v = members[key] else { return nil }
        return try RecipeObject(v, path: full(key), file: file, allowed: allowed)
    }

    /// The objects of an array under `key` (a single object counts as a list of one).
    func objects(_ key: String, allowed: [String]) throws -> [RecipeObject] {
        guard has(key), let v = members[key] else { return [] }
        switch v {
        case .array(let items): return try items.enumerated().map { try RecipeObject($1, path: full(key) + "[\($0)]", file: file, allowed: allowed) }
        case .object: return [try RecipeObject(v, path: full(key), file: file, allowed: allowed)]
        default: throw wrong(key, v, "an array of objects")
        }
    }

    /// A number setting that may be a sweep: a plain number, or `{"grid": [n, …]}`.
    func sweepable(_ key: String, in range: ClosedRange<Double>) throws -> Sweepable<Double>? {
        guard has(key), let v = members[key] else { return nil }
        if case .object = v {
            let grid = try RecipeObject(v, path: full(key), file: file, allowed: ["grid"])
            guard let list = grid.members["grid"], case .array(let items) = list else {
                throw grid.fail("grid", "is missing (expected an array of values to try, e.g. {\"grid\": [1e-4, 5e-5]})")
            }
            guard !items.isEmpty else { throw grid.fail("grid", "is an empty grid — list at least one value to try (two or more to sweep)") }
            let values = try items.enumerated().map { try grid.number($1, at: "grid[\($0)]", in: range) }
            return .grid(values)
        }
        return .value(try optionalDouble(key, in: range)!)
    }
}

/// A setting given as one value or as a grid of values to sweep.
public enum Sweepable<T: Sendable & Equatable & Codable>: Sendable, Equatable, Codable {
    case value(T)
    case grid([T])

    /// Every value to try (one for a plain value).
    public var values: [T] {
        switch self {
        case .value(let v): return [v]
        case .grid(let g): return g
        }
    }

    /// True for a grid of two or more values.
    public var isSweep: Bool { values.count > 1 }
}

extension JSONValue {
    /// "a string", "an integer", … for messages.
    var phrase: String {
        switch self {
        case .null: return "null"
        case .bool: return "a bool"
        case .int: return "an integer"
        case .double: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}
