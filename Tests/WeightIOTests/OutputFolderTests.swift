// OutputFolder: a folder appears under its final name only whole; an existing folder is
// replaced only when allowed, and stays whole until the new one is in place; abandoned or
// failed writes leave nothing; staging folders of dead writers are swept by the next run.
import Foundation
import WeightIO
import XCTest

final class OutputFolderTests: XCTestCase {
    private func names(_ dir: URL) throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() }
    private func text(_ url: URL) throws -> String { try String(contentsOf: url, encoding: .utf8) }

    func testNewFolderAppearsWithEveryFile() throws {
        let dir = try temporaryDirectory(self)
        let out = dir.appendingPathComponent("data/toy")   // the parent is created too
        let folder = try OutputFolder(out)
        try folder.write(Data("a\n".utf8), named: "train.jsonl")
        try folder.write(Data("{}".utf8), named: "manifest.json")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "nothing under the final name before commit")
        try folder.commit(replacing: false)
        XCTAssertEqual(try names(out), ["manifest.json", "train.jsonl"])
        XCTAssertEqual(try names(out.deletingLastPathComponent()), ["toy"])
    }

    func testExistingFolderIsRefusedWithoutReplacingAndKept() throws {
        let dir = try temporaryDirectory(self)
        let out = dir.appendingPathComponent("toy")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try Data("old".utf8).write(to: out.appendingPathComponent("train.jsonl"))
        let folder = try OutputFolder(out)
        try folder.write(Data("new".utf8), named: "train.jsonl")
        XCTAssertThrowsError(try folder.commit(replacing: false)) { error in
            XCTAssertTrue("\(error)".contains("already exists") && "\(error)".contains("--force"), "\(error)")
        }
        XCTAssertEqual(try text(out.appendingPathComponent("train.jsonl")), "old")
        XCTAssertEqual(try names(dir), ["toy"], "the staging folder is removed")
    }

    func testReplacingSwapsTheWholeFolder() throws {
        let dir = try temporaryDirectory(self)
        let out = dir.appendingPathComponent("toy")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try Data("old".utf8).write(to: out.appendingPathComponent("train.jsonl"))
        try Data("old".utf8).write(to: out.appendingPathComponent("stale-extra.txt"))
        let folder = try OutputFolder(out)
        try folder.write(Data("new".utf8), named: "train.jsonl")
        try folder.commit(replacing: true)
        XCTAssertEqual(try names(out), ["train.jsonl"], "no file of the old folder survives")
        XCTAssertEqual(try text(out.appendingPathComponent("train.jsonl")), "new")
        XCTAssertEqual(try names(dir), ["toy"], "the old folder is deleted")
    }

    func testEmptyFolderIsReplacedAndAFileIsRefused() throws {
        let dir = try temporaryDirectory(self)
        let empty = dir.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        let folder = try OutputFolder(empty)
        try folder.write(Data("x".utf8), named: "f")
        try folder.commit(replacing: false)
        XCTAssertEqual(try names(empty), ["f"])
        let file = dir.appendingPathComponent("file")
        try Data("keep".utf8).write(to: file)
        let other = try OutputFolder(file)
        XCTAssertThrowsError(try other.commit(replacing: true)) { XCTAssertTrue("\($0)".contains("is a file"), "\($0)") }
        XCTAssertEqual(try text(file), "keep")
    }

    func testAbandonAndStaleFoldersOfDeadWriters() throws {
        let dir = try temporaryDirectory(self)
        let out = dir.appendingPathComponent("toy")
        do {
            let folder = try OutputFolder(out)
            try folder.write(Data("half".utf8), named: "train.jsonl")
            XCTAssertTrue(folder.temporaryURL.lastPathComponent.hasPrefix(".toy.partial-\(getpid())-"))
        }   // dropped without commit: abandoned
        XCTAssertEqual(try names(dir), [])
        let dead = Process()   // an exited, reaped process: its pid is free, like a SIGKILLed kd's
        dead.executableURL = URL(fileURLWithPath: "/bin/true")
        try dead.run()
        dead.waitUntilExit()
        for name in [".toy.partial-\(dead.processIdentifier)-1", ".toy.old-\(dead.processIdentifier)-2", ".other.partial-\(dead.processIdentifier)-3"] {
            try FileManager.default.createDirectory(at: dir.appendingPathComponent(name + "/x"), withIntermediateDirectories: true)
        }
        let live = ".toy.partial-1-4"   // pid 1 is alive
        try FileManager.default.createDirectory(at: dir.appendingPathComponent(live), withIntermediateDirectories: true)
        let folder = try OutputFolder(out)
        try folder.commit(replacing: false)
        XCTAssertEqual(try names(dir), [".other.partial-\(dead.processIdentifier)-3", live, "toy"])
    }
}
