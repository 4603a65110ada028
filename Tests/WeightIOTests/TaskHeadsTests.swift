// Task heads (teacher format version 3): round trip, selecting one head, the checks a
// reader and a writer make (sizes, stray or missing heads, a single classifier beside task
// heads, names), and that a refused write leaves no file.
import DistilleryTensor
import Foundation
import WeightIO
import XCTest

final class TaskHeadsTests: XCTestCase {
    private let config = #"{"architectures": ["BertForSequenceClassification"], "hidden_size": 4, "num_hidden_layers": 1}"#
    private let heads = [TaskHead(name: "sms-spam", labels: ["ham", "spam"], maxLength: 64),
                         TaskHead(name: "bbc_news", labels: ["a", "b", "c"], maxLength: 128)]

    private func model(_ heads: [TaskHead], extra: [(name: String, tensor: Tensor)] = [], skip: String? = nil) -> TeacherFile {
        var tensors: [(name: String, tensor: Tensor)] = [("embeddings.word_embeddings.weight", Tensor(shape: [3, 4], data: (0..<12).map(Float.init)))]
        for (i, h) in heads.enumerated() {
            let L = h.labels.count
            tensors.append((h.weightName, Tensor(shape: [L, 4], data: (0..<(L * 4)).map { Float($0 + 100 * i) })))
            tensors.append((h.biasName, Tensor(shape: [L], data: (0..<L).map { Float(-$0 - 10 * i) })))
        }
        var file = TeacherFile(tensors: tensors.filter { $0.name != skip } + extra, configJSON: config, vocabulary: ["[PAD]", "a", "b"],
                               pooling: "mean", normalize: false, tokenizerOptionsJSON: "{}")
        file.tasks = heads
        return file
    }

    func testRoundTripAndSelectingAHead() throws {
        let url = try temporaryDirectory(self).appendingPathComponent("multi.h5")
        try model(heads).write(to: url)
        XCTAssertEqual(try HDF5File.open(url).intAttribute("format_version"), 3)   // older builds refuse it by version
        let back = try TeacherFile.read(url)
        XCTAssertEqual(back.tasks, heads)
        XCTAssertEqual(back.tensors.map(\.name), model(heads).tensors.map(\.name))
        let news = try back.selectingTask("BBC_NEWS", url: url)   // names match ignoring case
        XCTAssertEqual(news.tasks, [])
        XCTAssertEqual(news.labelsJSON, #"["a","b","c"]"#)
        XCTAssertEqual(news.tensors.map(\.name), ["embeddings.word_embeddings.weight", "classifier.weight", "classifier.bias"])
        let w = news.tensors.first { $0.name == "classifier.weight" }!.tensor
        XCTAssertEqual(w.shape, [3, 4])
        XCTAssertEqual(w.data, (0..<12).map { Float($0 + 100) })
        XCTAssertThrowsError(try back.selectingTask("tweets", url: url)) { XCTAssertTrue("\($0)".contains("sms-spam, bbc_news"), "\($0)") }
        // An inference load reads a multi-task file's tensors (selecting a head renames them);
        // a settings-only one reads the heads without any tensor.
        let inPlace = try TeacherFile.read(url, weights: .inPlace)
        XCTAssertNil(inPlace.floatSource)
        XCTAssertEqual(inPlace.tensors.map(\.name), back.tensors.map(\.name))
        let settings = try TeacherFile.read(url, weights: .settingsOnly)
        XCTAssertEqual(settings.tasks, heads)
        XCTAssertTrue(settings.tensors.isEmpty)

        // A single-head file is written as before (version 1) and has no tasks.
        var single = model([])
        single.tensors.append(("classifier.weight", Tensor(shape: [2, 4], data: [Float](repeating: 1, count: 8))))
        let singleURL = url.deletingLastPathComponent().appendingPathComponent("single.h5")
        try single.write(to: singleURL)
        XCTAssertEqual(try HDF5File.open(singleURL).intAttribute("format_version"), 1)
        XCTAssertEqual(try TeacherFile.read(singleURL).tasks, [])
        XCTAssertThrowsError(try TeacherFile.read(singleURL).selectingTask("sms-spam", url: singleURL)) {
            XCTAssertTrue("\($0)".contains("one classifier"), "\($0)")
        }
    }

    func testWriterRefusesInconsistentHeadsAndLeavesNoFile() throws {
        let dir = try temporaryDirectory(self)
        let cases: [(String, TeacherFile, String)] = [
            ("missing bias", model(heads, skip: heads[1].biasName), "has no 'tasks.bbc_news.classifier.bias'"),
            ("stray head", model(heads, extra: [("tasks.tweets.classifier.weight", Tensor(shape: [2, 4], data: [Float](repeating: 0, count: 8)))]),
             "belongs to no task"),
            ("classifier beside heads", model(heads, extra: [("classifier.weight", Tensor(shape: [2, 4], data: [Float](repeating: 0, count: 8)))]),
             "one or the other"),
            ("wrong label count", { var m = model(heads); m.tasks[0].labels = ["x", "y", "z"]; return m }(), "has 3 labels but its head is [2, 4]"),
        ]
        for (name, file, message) in cases {
            let url = dir.appendingPathComponent("\(name).h5")
            XCTAssertThrowsError(try file.write(to: url), name) { XCTAssertTrue("\($0)".contains(message), "\(name): \($0)") }
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(name) }, [], "\(name): nothing left behind")
        }
    }

    func testReaderRefusesABadTaskList() throws {
        // The writer checks tensors against the list; names and label counts are the reader's to refuse.
        let dir = try temporaryDirectory(self)
        let cases: [([TaskHead], String)] = [
            ([TaskHead(name: "a.b", labels: ["x", "y"]), heads[1]], "'a.b' has characters"),
            ([TaskHead(name: "one", labels: ["x"]), heads[1]], "has 1 labels"),
            ([heads[0], TaskHead(name: "SMS-SPAM", labels: ["a", "b", "c"])], "twice"),
            ([TaskHead(name: "short", labels: ["x", "y"], maxLength: 1), heads[1]], "max_length 1"),
        ]
        for (i, (list, message)) in cases.enumerated() {
            let url = dir.appendingPathComponent("bad\(i).h5")
            try model(list).write(to: url)
            XCTAssertThrowsError(try TeacherFile.read(url), message) { XCTAssertTrue("\($0)".contains(message), "\(message): \($0)") }
        }
    }

    func testTaskNames() {
        XCTAssertNil(taskNameProblem("sms-spam"))
        XCTAssertNil(taskNameProblem("bbc_news2"))
        for bad in ["", "a.b", "a/b", "é", String(repeating: "a", count: maximumTaskNameLength + 1)] {
            XCTAssertNotNil(taskNameProblem(bad), bad)
        }
        XCTAssertNil(duplicateTaskNames(["a", "b", "c"]).map { [$0.first, $0.second] })
        XCTAssertEqual(duplicateTaskNames(["sms", "news", "SMS"]).map { [$0.first, $0.second] }, [0, 2])
    }
}
