// Shared helpers for the kd end-to-end tests: a tiny model imported once per run, temp
// directories, failure assertions, and a small safetensors rewriter for making bad files.
//
// The tests run the built `kd` binary (found by TestSupport.runKD) on the committed
// fixtures in Tests/Fixtures/{tiny-bert,weightio,cli}; bad inputs are generated into a
// temporary directory by the tests themselves rather than committed.
import Foundation
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Paths of the fixtures the CLI tests use.
enum CLIFixtures {
    static let tinyBert = Fixtures.url("tiny-bert")
    static let weightio = Fixtures.url("weightio")
    /// config.json matching the weightio state dict (vocab 50, hidden 8, 2 layers, 10 positions).
    static let weightioConfig = Fixtures.url("cli/weightio-config.json")
    /// A 50-token vocab.txt matching `weightioConfig`.
    static let weightioVocab = Fixtures.url("cli/weightio-vocab.txt")
    /// A few lines of text checked against HF BertTokenizer with the tiny-bert vocab.
    static let sentences = Fixtures.url("cli/sentences.txt")
    /// HF BertTokenizer ids of `sentences` (with [CLS]/[SEP]).
    static let sentencesIds = Fixtures.url("cli/sentences.ids")
}

/// The tiny-bert model imported once per test process into a temp directory (removed at exit).
enum SharedModel {
    /// Directory holding `tiny.h5`; created on first use.
    static let directory: URL = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distillery-cli-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(at: FileManager.default.temporaryDirectory.appendingPathComponent("distillery-cli-\(getpid())")) }
        return dir
    }()

    /// `kd import Tests/Fixtures/tiny-bert` output, or the failed run's stderr.
    static let tiny: Result<URL, ImportFailure> = {
        let out = directory.appendingPathComponent("tiny.h5")
        let r = runKD(["import", CLIFixtures.tinyBert.path, "--out", out.path])
        return r.status == 0 && !r.signaled ? .success(out) : .failure(ImportFailure(message: r.stderr))
    }()

    struct ImportFailure: Error { let message: String }

    /// Path of the imported tiny model, failing the test when the import did not work.
    static func tinyPath(file: StaticString = #filePath, line: UInt = #line) throws -> String {
        switch tiny {
        case .success(let url): return url.path
        case .failure(let f):
            XCTFail("kd import of tiny-bert failed: \(f.message)", file: file, line: line)
            throw f
        }
    }
}

/// Base class: a fresh temp directory per test with an empty `out/` folder for outputs.
class CLITestCase: XCTestCase {
    /// Scratch directory for inputs, removed after each test.
    var temp: URL!
    /// Empty directory that outputs go to; failed runs must leave it empty.
    var outDir: URL!

    override func setUpWithError() throws {
        // The kd binary is a dependency of this test target: not finding it is a failure.
        guard KDBinary.url != nil else { throw CLIHarnessError(message: KDBinary.searchDescription) }
        temp = try makeTemporaryDirectory()
        outDir = temp.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: outDir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let temp { try? FileManager.default.removeItem(at: temp) }
    }

    /// Writes `text` (or raw bytes) to a file in the temp directory and returns its path.
    @discardableResult
    func write(_ name: String, _ text: String) throws -> String { try write(name, Data(text.utf8)) }

    @discardableResult
    func write(_ name: String, _ data: Data) throws -> String {
        let url = temp.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: url)
        return url.path
    }

    /// Runs kd and asserts a clean success (status 0, no signal).
    @discardableResult
    func runOK(_ args: [String], stdin: Data? = nil, file: StaticString = #filePath, line: UInt = #line) -> KDResult {
        let r = runKD(args, stdin: stdin)
        XCTAssertFalse(r.signaled, "kd \(args.joined(separator: " ")) died from signal \(r.status)\n\(r.stderr)", file: file, line: line)
        XCTAssertEqual(r.status, 0, "kd \(args.joined(separator: " ")) failed:\n\(r.stderr)", file: file, line: line)
        return r
    }

    /// Runs kd expecting a clean failure: non-zero exit (not a signal), one `kd: error:`
    /// message containing every string of `contains`, nothing on stdout, and no file left
    /// in `outDir` (neither the output nor a temporary sibling).
    @discardableResult
    func runFails(_ args: [String], stdin: Data? = nil, contains: [String],
                  file: StaticString = #filePath, line: UInt = #line) -> KDResult {
        let r = runKD(args, stdin: stdin)
        let command = "kd " + args.joined(separator: " ")
        XCTAssertFalse(r.signaled, "\(command) crashed (signal \(r.status)) instead of reporting an error:\n\(r.stderr)",
                       file: file, line: line)
        XCTAssertNotEqual(r.status, 0, "\(command) succeeded but should have failed", file: file, line: line)
        XCTAssertTrue(r.stderr.hasPrefix("kd: error: "), "\(command): stderr is not a kd error line:\n\(r.stderr)",
                      file: file, line: line)
        for needle in contains {
            XCTAssertTrue(r.stderr.contains(needle), "\(command): error message lacks '\(needle)':\n\(r.stderr)",
                          file: file, line: line)
        }
        XCTAssertFalse(r.stderr.contains("Fatal error"), "\(command) trapped:\n\(r.stderr)", file: file, line: line)
        assertOutDirEmpty(command, file: file, line: line)
        return r
    }

    /// Asserts the output directory holds nothing: no output file and no temporary leftovers.
    func assertOutDirEmpty(_ command: String, file: StaticString = #filePath, line: UInt = #line) {
        let left = (try? FileManager.default.contentsOfDirectory(atPath: outDir.path)) ?? []
        XCTAssertEqual(left, [], "\(command) left files behind in the output directory", file: file, line: line)
    }

    /// A path inside `outDir`.
    func outPath(_ name: String) -> String { outDir.appendingPathComponent(name).path }

    /// Starts kd with stderr into `log`; returns the running process.
    func start(_ args: [String], log: URL) throws -> Process {
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let p = Process()
        p.executableURL = KDBinary.url!
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = try FileHandle(forWritingTo: log)
        try p.run()
        return p
    }

    /// Waits (up to `timeout` s) until `condition` holds; false on timeout.
    func waitUntil(timeout: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            usleep(1000)
        }
        return condition()
    }

    /// Copies the tiny-bert HF directory into the temp dir (to edit one of its files).
    func copyTinyBert(_ name: String = "hf") throws -> URL {
        let dir = temp.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for f in ["config.json", "model.safetensors", "vocab.txt"] {
            try FileManager.default.copyItem(at: CLIFixtures.tinyBert.appendingPathComponent(f),
                                             to: dir.appendingPathComponent(f))
        }
        return dir
    }

    /// The tiny-bert HF directory copied without its classifier: a bare encoder (+ pooler).
    func copyTinyBertEncoder(_ name: String = "hf") throws -> URL {
        let dir = try copyTinyBert(name)
        let weights = dir.appendingPathComponent("model.safetensors")
        var editor = try SafetensorsEditor(weights)
        editor.remove("classifier.weight")
        editor.remove("classifier.bias")
        try editor.write(to: weights)
        return dir
    }
}

/// Parses one JSON line into a dictionary, failing the test when it is not one.
func parseJSONLine(_ line: Substring, file: StaticString = #filePath, line lineNumber: UInt = #line) -> [String: Any] {
    guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
        XCTFail("not a JSON object line: \(line)", file: file, line: lineNumber)
        return [:]
    }
    return object
}

/// Non-empty lines of a text output.
func outputLines(_ text: String) -> [Substring] { text.split(separator: "\n") }

/// Floats of a JSON array value.
func floats(_ value: Any?) -> [Double] { (value as? [Any])?.compactMap { ($0 as? NSNumber)?.doubleValue } ?? [] }

// MARK: - Safetensors rewriting

/// A safetensors file held in memory, edited and written back, for generating bad inputs.
struct SafetensorsEditor {
    struct Entry { var dtype: String; var shape: [Int]; var bytes: Data }
    var entries: [(name: String, entry: Entry)] = []
    var metadata: [String: String]?

    init(_ url: URL) throws {
        let data = try Data(contentsOf: url)
        let n = data.prefix(8).enumerated().reduce(0) { $0 | (Int($1.element) << (8 * $1.offset)) }
        let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + n))) as! [String: Any]
        let body = data.subdata(in: (8 + n)..<data.count)
        metadata = header["__metadata__"] as? [String: String]
        var list: [(String, Entry, Int)] = []
        for (name, value) in header where name != "__metadata__" {
            let info = value as! [String: Any]
            let offsets = info["data_offsets"] as! [Int]
            list.append((name, Entry(dtype: info["dtype"] as! String, shape: info["shape"] as! [Int],
                                     bytes: body.subdata(in: offsets[0]..<offsets[1])), offsets[0]))
        }
        entries = list.sorted { $0.2 < $1.2 }.map { ($0.0, $0.1) }
    }

    /// Names in file order.
    var names: [String] { entries.map(\.name) }

    mutating func remove(_ name: String) {
        precondition(names.contains(name), "no tensor \(name) to remove")
        entries.removeAll { $0.name == name }
    }

    /// Overwrites float32 element `index` of tensor `name`.
    mutating func setFloat(_ name: String, index: Int, to value: Float) {
        let i = entries.firstIndex { $0.name == name }!
        precondition(entries[i].entry.dtype == "F32")
        var bits = value.bitPattern.littleEndian
        withUnsafeBytes(of: &bits) { raw in
            entries[i].entry.bytes.replaceSubrange((index * 4)..<(index * 4 + 4), with: raw)
        }
    }

    func write(to url: URL) throws {
        var header: [String: Any] = [:]
        if let metadata { header["__metadata__"] = metadata }
        var body = Data()
        for (name, e) in entries {
            header[name] = ["dtype": e.dtype, "shape": e.shape, "data_offsets": [body.count, body.count + e.bytes.count]]
            body += e.bytes
        }
        var text = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        text += Data(repeating: UInt8(ascii: " "), count: (8 - text.count % 8) % 8)
        var length = UInt64(text.count).littleEndian
        var out = Data(bytes: &length, count: 8)
        out += text
        out += body
        try out.write(to: url)
    }
}

/// The harness could not run kd at all.
struct CLIHarnessError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
