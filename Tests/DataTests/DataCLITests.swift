// `kd data prepare` end to end on the committed fixture Tests/Fixtures/data/reviews.csv
// (36 distinct reviews in three classes plus duplicates, a conflict, empty and control-only
// texts, mojibake, a quoted multi-line field, odd whitespace and a decomposed accent), and
// its bad inputs: each a `kd: error:` line, a non-zero exit and no output left behind.
import DistilleryData
import Foundation
import TestSupport
import XCTest

final class DataCLITests: XCTestCase {
    var temp: URL!
    let reviews = Fixtures.url("data/reviews.csv").path

    override func setUpWithError() throws {
        guard KDBinary.url != nil else { throw XCTSkip(KDBinary.searchDescription) }
        temp = try makeTemporaryDirectory()
    }

    override func tearDownWithError() throws {
        if let temp { try? FileManager.default.removeItem(at: temp) }
    }

    func prepareArgs(_ out: String, _ extra: [String] = []) -> [String] {
        ["data", "prepare", "--csv", reviews, "--text-column", "review", "--label-column", "sentiment",
         "--name", "reviews", "--out", out] + extra
    }

    @discardableResult
    func runOK(_ args: [String], file: StaticString = #filePath, line: UInt = #line) -> KDResult {
        let r = runKD(args)
        XCTAssertFalse(r.signaled, "kd died: \(r.stderr)", file: file, line: line)
        XCTAssertEqual(r.status, 0, "kd \(args.joined(separator: " ")) failed:\n\(r.stderr)", file: file, line: line)
        return r
    }

    /// Runs kd expecting one `kd: error:` line containing every needle, and checks that
    /// `out` was not created.
    func runFails(_ args: [String], out: String, contains needles: [String], status: Int32 = 1,
                  file: StaticString = #filePath, line: UInt = #line) {
        let r = runKD(args)
        XCTAssertFalse(r.signaled, "kd died: \(r.stderr)", file: file, line: line)
        XCTAssertEqual(r.status, status, "expected exit \(status), got \(r.status): \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.hasPrefix("kd: error: "), r.stderr, file: file, line: line)
        for needle in needles { XCTAssertTrue(r.stderr.contains(needle), "lacks '\(needle)': \(r.stderr)", file: file, line: line) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "\(out) was left behind", file: file, line: line)
    }

    func lines(_ path: String) throws -> [[String: String]] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return try text.split(separator: "\n").map {
            try XCTUnwrap(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String])
        }
    }

    func testExistingFolderIsReplacedOnlyWithForceAndWhole() throws {
        let out = temp.appendingPathComponent("reviews").path
        runOK(prepareArgs(out))
        let manifest = out + "/manifest.json"
        try Data("{\"old\": true}".utf8).write(to: URL(fileURLWithPath: manifest))
        try Data("left over".utf8).write(to: URL(fileURLWithPath: out + "/notes.txt"))
        let r = runKD(prepareArgs(out))
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.hasPrefix("kd: error: \(out): already exists") && r.stderr.contains("--force"), r.stderr)
        XCTAssertEqual(try String(contentsOfFile: manifest, encoding: .utf8), "{\"old\": true}", "the old folder is untouched")
        runOK(prepareArgs(out, ["--force"]))
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: out)),
                       ["train.jsonl", "dev.jsonl", "test.jsonl", "manifest.json"], "the new folder replaces the old one whole")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: temp.path), ["reviews"], "no staging or old folder left")
        // An input inside the folder would be deleted by the swap: refused even with --force.
        let inside = out + "/mine.csv"
        try FileManager.default.copyItem(atPath: reviews, toPath: inside)
        let refused = runKD(["data", "prepare", "--csv", inside, "--text-column", "review", "--label-column", "sentiment",
                             "--name", "reviews", "--out", out, "--force"])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("holds the input \(inside)"), refused.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: inside))
    }

    func testPrepareCSVFixture() throws {
        let out = temp.appendingPathComponent("data/reviews").path   // intermediate folder created
        let r = runOK(prepareArgs(out))
        XCTAssertTrue(r.stdout.contains("reviews: 48 rows read, 39 kept, 9 dropped"), r.stdout)
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: out)),
                       ["train.jsonl", "dev.jsonl", "test.jsonl", "manifest.json"])

        let manifest = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/manifest.json"))) as? [String: Any])
        XCTAssertEqual(manifest["format"] as? String, "distillery-dataset")
        XCTAssertEqual(manifest["labels"] as? [String], ["negative", "neutral", "positive"])
        let dropped = try XCTUnwrap(manifest["dropped"] as? [String: Any])
        XCTAssertEqual(dropped["emptyText"] as? Int, 2)
        XCTAssertEqual(dropped["exactDuplicates"] as? Int, 2)
        XCTAssertEqual(dropped["normalizedDuplicates"] as? Int, 1)
        XCTAssertEqual(dropped["conflictingLabels"] as? Int, 4)
        XCTAssertEqual(dropped["conflictingLabelGroups"] as? Int, 2)
        let text = try XCTUnwrap(manifest["text"] as? [String: Int])
        XCTAssertEqual(text["mojibakeRepaired"], 1)
        XCTAssertEqual(text["controlCharactersRemoved"], 1)
        let counts = try XCTUnwrap(manifest["counts"] as? [String: [String: Int]])
        XCTAssertEqual(counts["train"], ["negative": 11, "neutral": 12, "positive": 10])
        XCTAssertEqual(counts["dev"], ["negative": 1, "neutral": 1, "positive": 1])
        XCTAssertEqual(counts["test"], ["negative": 1, "neutral": 1, "positive": 1])
        let source = try XCTUnwrap(manifest["source"] as? [String: Any])
        let files = try XCTUnwrap(source["files"] as? [[String: Any]])
        let fixtureSHA = SHA256.hex(try Data(contentsOf: URL(fileURLWithPath: reviews)))
        XCTAssertEqual(files.first?["sha256"] as? String, fixtureSHA)

        // Every text cleaned, ids unique, labels named, no text in two splits.
        var all: [[String: String]] = []
        var keys: [String: String] = [:]
        for split in ["train", "dev", "test"] {
            for row in try lines(out + "/\(split).jsonl") {
                all.append(row)
                let key = row["text"]!.lowercased()
                XCTAssertNil(keys[key], "'\(row["text"]!)' in \(keys[key] ?? "") and \(split)")
                keys[key] = split
            }
        }
        XCTAssertEqual(all.count, 39)
        XCTAssertEqual(Set(all.map { $0["id"]! }).count, 39)
        let texts = Set(all.map { $0["text"]! })
        XCTAssertTrue(texts.contains("The café it’s next to is nicer"))
        XCTAssertTrue(texts.contains("Line one, line two with \"quotes\""))
        XCTAssertTrue(texts.contains("Tabs and odd spaces"))
        XCTAssertTrue(texts.contains("Caf\u{E9} au lait was cold"))
        XCTAssertFalse(texts.contains { $0.lowercased().contains("it was fine") })
        XCTAssertEqual(all.first { $0["text"] == "Loved every minute of it" }?["id"], "reviews:2")
    }

    func testSameSeedSameBytesAndLabelsOption() throws {
        let a = temp.appendingPathComponent("a").path, b = temp.appendingPathComponent("b").path
        runOK(prepareArgs(a, ["--seed", "5"]))
        runOK(prepareArgs(b, ["--seed", "5"]))
        for file in ["train.jsonl", "dev.jsonl", "test.jsonl", "manifest.json"] {
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: a + "/" + file)),
                           try Data(contentsOf: URL(fileURLWithPath: b + "/" + file)), file)
        }
        // With --labels the 'mixed' row is an unknown label instead of a conflict.
        let c = temp.appendingPathComponent("c").path
        let r = runOK(prepareArgs(c, ["--labels", "negative,neutral,positive"]))
        XCTAssertTrue(r.stdout.contains("48 rows read, 40 kept"), r.stdout)
        XCTAssertTrue(r.stdout.contains("unknown label 1"), r.stdout)
    }

    func testMissingColumnNamesItAndListsHeader() {
        let out = temp.appendingPathComponent("out").path
        runFails(["data", "prepare", "--csv", reviews, "--text-column", "text", "--label-column", "sentiment", "--name", "r", "--out", out],
                 out: out, contains: [reviews, "no text column 'text'", "'id', 'review', 'sentiment'"])
        runFails(["data", "prepare", "--csv", reviews, "--text-column", "review", "--label-column", "label", "--name", "r", "--out", out],
                 out: out, contains: ["no label column 'label'", "'id', 'review', 'sentiment'"])
    }

    func testStratificationImpossible() throws {
        let csv = temp.appendingPathComponent("few.csv")
        try "text,label\none,a\ntwo,a\nthree,a\nfour,b\nFOUR,b\n".write(to: csv, atomically: true, encoding: .utf8)
        let out = temp.appendingPathComponent("out").path
        runFails(["data", "prepare", "--csv", csv.path, "--text-column", "text", "--label-column", "label", "--name", "few", "--out", out],
                 out: out, contains: ["label 'b' has 1 example", "at least 3"])
    }

    func testTabDelimitedAndLegacyEncoding() throws {
        let tsv = temp.appendingPathComponent("sms.tsv")
        var text = "label\tmessage\n"
        for i in 0..<6 { text += "ham\tsee you at \(i), ok\nspam\t\"WIN \(i)\tnow\"\n" }
        try (Data(text.utf8) + Data("ham\tcaf".utf8) + Data([0xE9]) + Data(" later\n".utf8)).write(to: tsv)
        let out = temp.appendingPathComponent("sms").path
        let r = runOK(["data", "prepare", "--csv", tsv.path, "--text-column", "message", "--label-column", "label",
                       "--name", "sms", "--delimiter", "tab", "--encoding", "windows-1252", "--out", out])
        XCTAssertTrue(r.stdout.contains("sms: 13 rows read, 13 kept"), r.stdout)
        let texts = try ["train", "dev", "test"].flatMap { try lines(out + "/\($0).jsonl") }.map { $0["text"]! }
        XCTAssertTrue(texts.contains("café later"))
        XCTAssertTrue(texts.contains("WIN 3 now"))
        XCTAssertTrue(texts.contains("see you at 2, ok"))
        runFails(["data", "prepare", "sms-spam", "--encoding", "mac-roman", "--out", out + "2"], out: out + "2",
                 contains: ["--encoding only goes with --csv"], status: 2)
    }

    func testMalformedCSVAndBadEncoding() throws {
        let out = temp.appendingPathComponent("out").path
        let broken = temp.appendingPathComponent("broken.csv")
        try "text,label\nfine,a\n\"never closed,b\nmore,a\n".write(to: broken, atomically: true, encoding: .utf8)
        runFails(["data", "prepare", "--csv", broken.path, "--text-column", "text", "--label-column", "label", "--name", "x", "--out", out],
                 out: out, contains: [broken.path + ":3:", "never closes"])
        let latin = temp.appendingPathComponent("latin.csv")
        try (Data("text,label\ncaf".utf8) + Data([0xE9]) + Data(",a\n".utf8)).write(to: latin)
        runFails(["data", "prepare", "--csv", latin.path, "--text-column", "text", "--label-column", "label", "--name", "x", "--out", out],
                 out: out, contains: [latin.path + ":2:", "invalid UTF-8", "--encoding"])
    }

    func testUnknownDatasetAndFlagMisuse() {
        let out = temp.appendingPathComponent("out").path
        runFails(["data", "prepare", "imdb", "--out", out], out: out,
                 contains: ["unknown dataset 'imdb'", "tweet-sentiment, bbc-news, sms-spam"])
        runFails(["data", "prepare", "sms-spam", "--cache", temp.appendingPathComponent("nowhere").path, "--out", out], out: out,
                 contains: ["nowhere", "scripts/fetch-datasets.sh"])
        runFails(["data", "prepare", "--csv", reviews, "--out", out], out: out,
                 contains: ["--csv needs --text-column, --label-column, --name"], status: 2)
        runFails(["data", "prepare", "sms-spam", "--csv", reviews, "--text-column", "review", "--label-column", "sentiment", "--name", "r", "--out", out],
                 out: out, contains: ["not both"])
        runFails(["data", "prepare", "--out", out], out: out, contains: ["name a dataset"])
        runFails(prepareArgs(out, ["--name", "../escape"]), out: out, contains: ["--name '../escape'"], status: 2)
    }

    func testOutputIsAFile() throws {
        let file = temp.appendingPathComponent("taken")
        try "x".write(to: file, atomically: true, encoding: .utf8)
        let r = runKD(prepareArgs(file.path))
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("is a file"), r.stderr)
        XCTAssertEqual(try String(contentsOf: file, encoding: .utf8), "x")
    }
}
