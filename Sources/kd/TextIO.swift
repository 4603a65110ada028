// TextIO: reading input lines strictly and writing JSON lines atomically.
//
// Input is UTF-8 text, one item per line; a trailing newline is optional, a CRLF ending is
// accepted. An empty line or invalid UTF-8 is an error naming the line. Output files are
// written to a temporary sibling and renamed, so a failed run leaves nothing behind.
import DistilleryData
import Foundation

/// Reads the lines of `path` (stdin when nil), rejecting invalid UTF-8 and empty lines.
func readInputLines(_ path: String?, allowEmpty: Bool = false) throws -> [String] {
    let name = path ?? "<stdin>"
    let data: Data
    if let path {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CLIError("\(path): no such file — check the --input path")
        }
        guard !isDirectory.boolValue else { throw CLIError("\(path): is a directory — --input takes a text file") }
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw CLIError("\(path): cannot read (\(error.localizedDescription))")
        }
    } else {
        data = FileHandle.standardInput.readDataToEndOfFile()
    }
    var lines: [String] = []
    var start = data.startIndex
    var lineNumber = 0
    func take(_ end: Data.Index) throws {
        lineNumber += 1
        var slice = data[start..<end]
        if slice.last == UInt8(ascii: "\r") { slice = slice.dropLast() }
        guard let text = String(validating: slice, as: UTF8.self) else {
            throw CLIError("\(name):\(lineNumber): invalid UTF-8 — re-encode the input as UTF-8 (e.g. iconv -f latin1 -t utf-8)")
        }
        if !allowEmpty && text.trimmingCharacters(in: .whitespaces).isEmpty {
            throw CLIError("\(name):\(lineNumber): empty line — remove blank lines from the input")
        }
        lines.append(text)
    }
    while let nl = data[start...].firstIndex(of: UInt8(ascii: "\n")) {
        try take(nl)
        start = data.index(after: nl)
    }
    if start < data.endIndex { try take(data.endIndex) }
    if lines.isEmpty {
        throw CLIError("\(name): no input lines — give one text per line")
    }
    return lines
}

/// Collects output text and writes it to a file atomically (temp + rename), or to stdout.
struct OutputSink {
    let path: String?
    private var buffer = ""
    init(path: String?) { self.path = path }

    mutating func write(_ line: String) {
        if path == nil {
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        } else {
            buffer += line
            buffer += "\n"
        }
    }

    /// Moves the collected text into place.
    func finish() throws {
        guard let path else { return }
        try writeAtomically(Data(buffer.utf8), to: path)
    }
}

/// Checks that `path` can be an output file for `flag`: not empty, not a directory, in an
/// existing directory. Commands call it before doing any work.
func checkOutputPath(_ path: String, flag: String) throws {
    guard !path.isEmpty else { throw CLIError("\(flag) is empty — give an output file path") }
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
        throw CLIError("\(path): is a directory — \(flag) takes a file path, e.g. \(path)/out")
    }
    let dir = URL(fileURLWithPath: path).deletingLastPathComponent()
    guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw CLIError("\(path): directory \(dir.path) does not exist — create it first")
    }
}

/// Writes `data` to `path` through a temporary sibling file renamed on success.
/// rename(2) replaces an existing file atomically and refuses to replace a directory.
func writeAtomically(_ data: Data, to path: String) throws {
    try checkOutputPath(path, flag: "output")
    let url = URL(fileURLWithPath: path)
    let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
    do {
        try data.write(to: tmp)
        guard rename(tmp.path, url.path) == 0 else {
            throw CLIError("\(path): cannot write (\(String(cString: strerror(errno))))")
        }
    } catch {
        try? FileManager.default.removeItem(at: tmp)
        if let error = error as? CLIError { throw error }
        throw CLIError("\(path): cannot write (\(error.localizedDescription))")
    }
}

/// JSON array of floats, each printed with its shortest round-trip representation.
func jsonFloats(_ values: some Sequence<Float>) -> String {
    "[" + values.map { $0.isFinite ? "\($0)" : "null" }.joined(separator: ",") + "]"
}
