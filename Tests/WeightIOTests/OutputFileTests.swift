// OutputFile: content appears under the final name only whole, a failed or abandoned write
// leaves nothing, and partial files of dead writers are swept by the next write of that
// name while a live writer's partial file and other names' files are left alone.
import Foundation
import WeightIO
import XCTest

final class OutputFileTests: XCTestCase {
    func names(_ dir: URL) throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() }

    func testWriteReplacesWholeAndLeavesNoPartial() throws {
        let dir = try temporaryDirectory(self)
        let url = dir.appendingPathComponent("out.jsonl")
        try OutputFile.write(Data("old\n".utf8), to: url)
        try OutputFile.write(Data("new\n".utf8), to: url)
        XCTAssertEqual(try String(contentsOf: url, encoding: .utf8), "new\n")
        XCTAssertEqual(try names(dir), ["out.jsonl"])
    }

    func testAbandonedOutputLeavesTheOldFile() throws {
        let dir = try temporaryDirectory(self)
        let url = dir.appendingPathComponent("m.h5")
        try Data("keep".utf8).write(to: url)
        do {
            let output = OutputFile(url)
            try Data("half".utf8).write(to: output.temporaryURL)
            XCTAssertTrue(output.temporaryURL.lastPathComponent.hasPrefix(".m.h5.partial-\(getpid())-"))
            output.abandon()
        }
        XCTAssertEqual(try String(contentsOf: url, encoding: .utf8), "keep")
        XCTAssertEqual(try names(dir), ["m.h5"])
    }

    func testStalePartialsOfDeadWritersAreRemovedLiveOnesKept() throws {
        let dir = try temporaryDirectory(self)
        // A process that has exited: its pid is free (reaped), like a SIGKILLed kd's.
        let dead = Process()
        dead.executableURL = URL(fileURLWithPath: "/bin/true")
        try dead.run()
        dead.waitUntilExit()
        let stale = [".m.h5.partial-\(dead.processIdentifier)-abc", ".m.h5.partial-0A1B-uuid", ".m.h5.tmp-\(dead.processIdentifier)"]
        let kept = [".m.h5.partial-1-live",                   // pid 1 is alive
                    ".other.h5.partial-\(dead.processIdentifier)-abc", "m.h5.partial-x"]   // other names
        for name in stale + kept { try Data("x".utf8).write(to: dir.appendingPathComponent(name)) }
        try OutputFile.write(Data("done".utf8), to: dir.appendingPathComponent("m.h5"))
        XCTAssertEqual(try names(dir), (kept + ["m.h5"]).sorted())
    }

    func testCommitIntoADirectoryPathFailsAndCleansUp() throws {
        let dir = try temporaryDirectory(self)
        let target = dir.appendingPathComponent("taken")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: false)
        try FileManager.default.createDirectory(at: target.appendingPathComponent("inside"), withIntermediateDirectories: false)
        XCTAssertThrowsError(try OutputFile.write(Data("x".utf8), to: target)) { error in
            XCTAssertTrue(String(describing: error).contains("taken: cannot move the finished file into place"), "\(error)")
        }
        XCTAssertEqual(try names(dir), ["taken"])
    }
}
