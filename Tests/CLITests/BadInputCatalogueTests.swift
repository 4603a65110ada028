// The bad-input catalogue (issue 15): a table of hostile inputs across every command, each
// run through the real `kd` binary. Every case must exit non-zero without a signal, print
// one `kd: error:` line naming the file, field or flag (and the fact that is wrong), leave
// no output and no partial file anywhere in the test's directory, and leave its inputs as
// they were. Hostile files are made here from the tiny fixtures (a few KB each), by
// editing JSON, bytes, or writing HDF5 through WeightIO's own writers, which do not police
// what readers must check.
//
// Classes covered: sizes from headers (config.json, safetensors, HDF5 dims, student specs),
// indices from files (label caches, checkpoint data order, pretokenized ids), numeric flags
// that overflow or are not finite, values accepted wrongly (negative layer_norm_eps, wrong
// JSON types, duplicate keys, invalid UTF-8 vocabularies, vocabularies longer than
// vocab_size, an output that is an input, a dataset with no usable rows), and paths of the
// wrong kind (a directory for a file and back).
import Foundation
import TestSupport
import WeightIO
import XCTest

/// `flag value`, or `flag=value` when the value starts with '-' (else it is read as a flag).
func flagArgs(_ flag: String, _ value: String) -> [String] { value.hasPrefix("-") ? ["\(flag)=\(value)"] : [flag, value] }

/// One catalogue entry: the arguments, what the message must contain, optional stdin.
struct BadInputCase {
    let name: String
    let args: [String]
    let contains: [String]
    var stdin: Data? = nil
}

final class BadInputCatalogueTests: CLITestCase {
    // MARK: - running

    /// Runs every case: a clean `kd: error:` naming what `contains` lists, no output, no
    /// partial file anywhere under the temp directory, and every file there unchanged.
    func check(_ cases: [BadInputCase], file: StaticString = #filePath, line: UInt = #line) {
        for c in cases {
            let before = snapshot()
            let r = runKD(c.args, stdin: c.stdin)
            let what = "[\(c.name)] kd \(c.args.joined(separator: " "))"
            XCTAssertFalse(r.signaled, "\(what) died from signal \(r.status):\n\(r.stderr)", file: file, line: line)
            XCTAssertNotEqual(r.status, 0, "\(what) succeeded but must fail:\n\(r.stdout)", file: file, line: line)
            XCTAssertTrue(r.stderr.hasPrefix("kd: error: "), "\(what): not a kd error line:\n\(r.stderr)", file: file, line: line)
            XCTAssertEqual(r.stderr.filter { $0 == "\n" }.count, 1, "\(what): more than one line on stderr:\n\(r.stderr)", file: file, line: line)
            for needle in c.contains where !r.stderr.contains(needle) {
                XCTFail("\(what): the message lacks '\(needle)':\n\(r.stderr)", file: file, line: line)
            }
            let after = snapshot()
            let changed = Set(before.keys).union(after.keys).filter { before[$0] != after[$0] }.sorted()
            XCTAssertEqual(changed, [], "\(what) changed, added or removed these files", file: file, line: line)
        }
    }

    /// Every file under the temp directory with its size and modification time.
    func snapshot() -> [String: String] {
        var files: [String: String] = [:]
        guard let walker = FileManager.default.enumerator(at: temp, includingPropertiesForKeys: [.fileSizeKey, .contentModificationDateKey]) else { return files }
        for case let url as URL in walker {
            let values = try? url.resourceValues(forKeys: [.fileSizeKey, .contentModificationDateKey])
            files[url.path] = "\(values?.fileSize ?? -1) \(values?.contentModificationDate?.timeIntervalSince1970 ?? 0)"
        }
        return files
    }

    // MARK: - hostile files

    /// A copy of tiny-bert in `temp/name` whose config.json is `edit`ed as text.
    func configVariant(_ name: String, _ edit: (String) -> String) throws -> (dir: String, config: String) {
        let dir = try copyTinyBert(name)
        let config = dir.appendingPathComponent("config.json")
        let text = try String(contentsOf: config, encoding: .utf8)
        let edited = edit(text)
        XCTAssertNotEqual(edited, text, "\(name): the edit changed nothing")
        try edited.write(to: config, atomically: true, encoding: .utf8)
        return (dir.path, config.path)
    }

    /// Replaces the value of `key` in tiny-bert's config.json with the JSON text `value`.
    func configWith(_ key: String, _ value: String, name: String? = nil) throws -> (dir: String, config: String) {
        try configVariant(name ?? "cfg-\(key)-\(abs(value.hashValue))") { text in
            text.replacingOccurrences(of: #""\#(key)": [^,\n]+"#, with: "\"\(key)\": \(value)", options: .regularExpression)
        }
    }

    /// A safetensors file of raw `header` JSON text and `body` bytes.
    func safetensors(_ name: String, header: String, body: Data = Data(count: 16), length: UInt64? = nil) throws -> String {
        var bytes = Data()
        withUnsafeBytes(of: (length ?? UInt64(header.utf8.count)).littleEndian) { bytes.append(contentsOf: $0) }
        bytes += Data(header.utf8) + body
        return try write(name, bytes)
    }

    /// The tiny model as a TeacherFile, changed by `edit` and written to `temp/name`.
    func teacherVariant(_ name: String, _ edit: (inout TeacherFile) -> Void) throws -> String {
        var file = try TeacherFile.read(URL(fileURLWithPath: try SharedModel.tinyPath()))
        edit(&file)
        let url = temp.appendingPathComponent(name)
        try file.write(to: url)
        return url.path
    }

    /// The tiny model's config_json with `key` set to the JSON text `value`.
    func teacherWithConfig(_ name: String, _ key: String, _ value: String) throws -> String {
        try teacherVariant(name) { file in
            file.configJSON = file.configJSON.replacingOccurrences(of: #""\#(key)"\s*:\s*[^,\n}]+"#, with: "\"\(key)\": \(value)",
                                                                   options: .regularExpression)
        }
    }

    /// A copy of the toy dataset folder in `temp/name` with `file` replaced by `contents`.
    func dataVariant(_ name: String, _ file: String, _ contents: Data) throws -> String {
        let dir = temp.appendingPathComponent(name)
        try FileManager.default.copyItem(at: URL(fileURLWithPath: try ToyData.path()), to: dir)
        try contents.write(to: dir.appendingPathComponent(file))
        return dir.path
    }

    /// A label cache like `cache` (same settings) with the records changed by `edit`.
    func cacheVariant(_ name: String, from cache: String, _ edit: (inout [LabelRecord]) -> Void) throws -> String {
        let source = try LabelCache.open(URL(fileURLWithPath: cache))
        var records = try source.records(0..<source.exampleCount)
        edit(&records)
        let url = temp.appendingPathComponent(name)
        let writer = try LabelCacheWriter(url: url, settings: source.settings,
                                          shard: LabelCacheShard(index: 0, count: 1, rows: 0..<source.settings.sourceRows))
        for r in records { try writer.append(r) }
        try writer.finish(droppedCopies: source.droppedCopies)
        return url.path
    }

    /// A student spec for the tiny teacher with `architecture` values replaced.
    func studentSpec(_ name: String, architecture: [String: Any] = [:], extra: [String: Any] = [:]) throws -> String {
        var arch: [String: Any] = ["layers": 1, "hidden_size": 32, "heads": 4, "intermediate_size": 64]
        for (k, v) in architecture { arch[k] = v }
        var object: [String: Any] = [
            "format": "distillery-student", "version": 1, "name": name, "architecture": arch,
            "init": ["from": "teacher-layers", "pick": "last"], "layer_map": ["kind": "uniform"],
            "losses": ["soft_ce": 1, "hard_ce": 0.5], "temperature": 2.0,
            "schedule": ["kind": "one-stage", "epochs": 1], "training": ["learning_rate": 1e-3, "batch_size": 8],
        ]
        for (k, v) in extra { object[k] = v }
        return try write("\(name).json", JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }

    /// The toy label cache (logits and hidden states) made once per test process.
    static let sharedCache: Result<String, SharedModel.ImportFailure> = {
        guard case .success(let teacher) = LabelTeachers.first, case .success(let data) = ToyData.folder else {
            return .failure(SharedModel.ImportFailure(message: "teacher or toy data missing"))
        }
        let out = SharedModel.directory.appendingPathComponent("catalogue-labels.h5").path
        let r = runKD(["label", "--teacher", teacher, "--data", data, "--out", out, "--hidden", "all", "--max-length", "16", "--threads", "1"])
        return r.status == 0 && !r.signaled ? .success(out) : .failure(SharedModel.ImportFailure(message: r.stderr))
    }()

    func cachePath() throws -> String {
        switch Self.sharedCache {
        case .success(let p): return p
        case .failure(let f): XCTFail("kd label for the catalogue failed: \(f.message)"); throw f
        }
    }
}

extension BadInputCatalogueTests {
    func testImport() throws { check(try importCases()) }
    func testModelFilesAndLineCommands() throws { check(try modelCases()) }
    func testDataPrepare() throws { check(try prepareCases()) }
    func testFinetuneAndEval() throws { check(try finetuneCases()) }
    func testLabel() throws { check(try labelCases()) }
    func testDistill() throws { check(try distillCases()) }
    func testBench() throws { check(try benchCases()) }

    /// The catalogue keeps its breadth: at least 100 cases, every command in it.
    func testCatalogueCoversEveryCommand() throws {
        let all = try importCases() + modelCases() + prepareCases() + finetuneCases() + labelCases() + distillCases() + benchCases()
            + compressionCases() + reportCases() + monitorCases() + pipelineCases() + retrainCases()
        XCTAssertGreaterThanOrEqual(all.count, 100)
        let commands = Set(all.map { $0.args.prefix(2).joined(separator: " ") }.map { $0.hasPrefix("bench") || $0.hasPrefix("label") || $0.hasPrefix("data") ? $0 : String($0.split(separator: " ")[0]) })
        for command in ["import", "info", "tokenize", "embed", "predict", "data prepare", "finetune", "eval", "label --teacher", "label check",
                        "label merge", "distill", "bench latency", "bench train-step", "bench tokenizer", "bench distill-step",
                        "quantize", "prune", "export", "bench variants", "report", "pick", "monitor", "run"] {
            XCTAssertTrue(commands.contains(command), "no catalogue case for kd \(command): \(commands.sorted())")
        }
        print("bad-input catalogue: \(all.count) cases")
    }
}
