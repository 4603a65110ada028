// Locating the tokenizer fixtures and reading the golden JSONL files.
//
// `TestSupport.Fixtures.root` is derived from TestSupport's own `#filePath`, which points at
// the wrong tree when the test sources are symlinked into a scratch package. Here we walk
// up from this file's path — as written, then with symlinks resolved — to the first
// directory holding both `Package.swift` and `Tests/Fixtures`.
import Foundation
import XCTest
import TestSupport

enum TokenizerFixtures {
    /// The repository root, or nil when no ancestor of this file looks like one.
    static let root: URL? = {
        let here = URL(fileURLWithPath: #filePath)
        for start in [here, here.resolvingSymlinksInPath(), TestSupport.Fixtures.root.appendingPathComponent("x")] {
            var dir = start.deletingLastPathComponent()
            while dir.path != "/" && !dir.path.isEmpty {
                let fm = FileManager.default
                if fm.fileExists(atPath: dir.appendingPathComponent("Package.swift").path),
                   fm.fileExists(atPath: dir.appendingPathComponent("Tests/Fixtures").path) {
                    return dir
                }
                dir = dir.deletingLastPathComponent()
            }
        }
        return nil
    }()

    /// `Tests/Fixtures/tokenizer/<name>`.
    static func url(_ name: String) throws -> URL {
        guard let root else {
            throw FixtureMissing(message: "no directory above \(#filePath) holds Package.swift and Tests/Fixtures")
        }
        return root.appendingPathComponent("Tests/Fixtures/tokenizer/\(name)")
    }

    /// The real bert-base-uncased vocabulary fetched at setup (git-ignored).
    static func realVocabulary() throws -> URL {
        guard let root else { throw FixtureMissing(message: "repository root not found") }
        let url = root.appendingPathComponent(".cache/minilm-l6/vocab.txt")
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw FixtureMissing(message: "\(url.path) missing — run scripts/fetch-teacher.sh (make test does) to check the real-vocabulary golden set")
        }
        return url
    }

    /// The JSON objects of a golden file after checking its header line.
    static func goldenRows(_ name: String) throws -> (header: [String: Any], rows: [[String: Any]]) {
        let url = try url(name)
        let text = try String(contentsOf: url, encoding: .utf8)
        var objects: [[String: Any]] = []
        for line in text.split(separator: "\n") where !line.isEmpty {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8))
            guard let dict = object as? [String: Any] else {
                throw GoldenError("\(url.path): a line is not a JSON object")
            }
            objects.append(dict)
        }
        guard let header = objects.first, header["format"] as? String == "distillery-tokenizer-golden",
              header["version"] as? Int == 2 else {
            throw GoldenError("\(url.path): missing header {format: distillery-tokenizer-golden, version: 2} — "
                              + "regenerate with scripts/make_tokenizer_golden.py")
        }
        return (header, Array(objects.dropFirst()))
    }
}

struct GoldenError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// "U+0063 U+0301 …" — how mismatching texts are shown, since many are invisible or normalize away.
func codePoints(_ text: String) -> String {
    text.unicodeScalars.map { String(format: "U+%04X", $0.value) }.joined(separator: " ")
}

/// [[start, end], …] from JSON.
func offsetPairs(_ value: Any?) -> [[Int]]? {
    (value as? [Any])?.compactMap { ($0 as? [Any])?.compactMap { ($0 as? NSNumber)?.intValue } }
}

/// Int arrays from JSON as Int32.
func int32s(_ value: Any?) -> [Int32]? {
    (value as? [Any])?.compactMap { ($0 as? NSNumber)?.int32Value }
}

/// Code-point-exact equality of token lists (Swift `==` on String is canonical equivalence).
func sameScalars(_ a: [String], _ b: [String]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { $0.unicodeScalars.elementsEqual($1.unicodeScalars) }
}

/// A fixture the suite needs is absent: a failure, never a skip.
struct FixtureMissing: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
