// StageFiles: the error every stage throws, and the file discipline every stage follows —
// input lines read strictly, output paths checked before any work, outputs written through
// a temporary sibling renamed on success, sizes and hashes of files.
//
// Input is UTF-8 text, one item per line, from a file or stdin (`-`); a trailing newline is
// optional, a CRLF ending is accepted. Invalid UTF-8 is an error naming the line; so is an
// empty line where a command needs a text on every line (blank lines are texts for
// tokenize, embed and predict); empty stdin is an error. Messages name the
// file (and line or flag) and say what to do; the `kd` CLI prints them as
// `kd: error: <message>`. Left out on purpose: streaming input (inputs fit in memory).
import DistilleryData
import DistilleryTensor
import Foundation
import WeightIO
#if canImport(Glibc)
import Glibc
#endif

/// An error of a stage: one line naming the file, line or flag, what was wrong and a hint.
public struct StageError: Error, CustomStringConvertible, Sendable {
    /// The whole message, e.g. `data/x/train.jsonl:3: label 'y' is unknown … — re-prepare …`.
    public let description: String
    /// Whether the error is about the command line (a flag's value: `kd` exits 2) rather than
    /// an input or a failed run (exit 1).
    public let isUsage: Bool

    /// An error about an input or a run, with this exact message.
    public init(_ description: String) {
        self.description = description
        isUsage = false
    }

    private init(usage description: String) {
        self.description = description
        isUsage = true
    }

    /// An error about a flag's value; the message starts with the flag
    /// (`--threads 0 is out of range …`).
    public static func usage(_ description: String) -> StageError { StageError(usage: description) }

    /// Wraps any error raised while handling `file`, prefixing the file name when the
    /// message does not already carry it.
    public init(file: String, _ error: any Error) {
        isUsage = (error as? StageError)?.isUsage ?? false
        let text = String(describing: error)
        let name = URL(fileURLWithPath: file).lastPathComponent
        if text.contains(file) {
            description = text
        } else if text.hasPrefix(name + ": ") {
            description = file + text.dropFirst(name.count)   // WeightIO names only the last component
        } else {
            description = "\(file): \(text)"
        }
    }
}

/// OpenBLAS here is built with MAX_THREADS=64.
public let maximumThreads = 64

/// Checks a thread count and sets it for BLAS and the kernels.
public func setComputeThreads(_ threads: Int) throws {
    guard threads >= 1 && threads <= maximumThreads else {
        throw StageError.usage("--threads \(threads) is out of range — use 1...\(maximumThreads) (this machine has \(ProcessInfo.processInfo.activeProcessorCount) cores)")
    }
    Compute.setThreads(threads)
}

/// Reads the lines of `path` (stdin when nil or "-"), rejecting invalid UTF-8 and (unless
/// `allowEmpty`) empty lines. Nothing on stdin is an error naming `--input`.
public func readInputLines(_ path: String?, allowEmpty: Bool = false) throws -> [String] {
    let fromStdin = path == nil || path == "-"
    let name = fromStdin ? "<stdin>" : path!
    let data: Data
    if let path, !fromStdin {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw StageError("\(path): no such file — check the --input path (or pass --input - to read stdin)")
        }
        guard !isDirectory.boolValue else { throw StageError("\(path): is a directory — --input takes a text file") }
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw StageError("\(path): cannot read (\(error.localizedDescription))")
        }
    } else {
        if isatty(0) != 0 { FileHandle.standardError.write(Data("kd: reading texts from stdin, one per line (end with Ctrl-D)\n".utf8)) }
        data = FileHandle.standardInput.readDataToEndOfFile()
        if data.isEmpty {
            throw StageError("<stdin>: empty — pipe text in, one per line (echo \"great product\" | kd predict --model m.h5), or pass --input FILE")
        }
    }
    var lines: [String] = []
    var start = data.startIndex
    var lineNumber = 0
    func take(_ end: Data.Index) throws {
        lineNumber += 1
        var slice = data[start..<end]
        if slice.last == UInt8(ascii: "\r") { slice = slice.dropLast() }
        guard let text = String(validating: slice, as: UTF8.self) else {
            throw StageError("\(name):\(lineNumber): invalid UTF-8 — re-encode the input as UTF-8 (e.g. iconv -f latin1 -t utf-8)")
        }
        if !allowEmpty && text.trimmingCharacters(in: .whitespaces).isEmpty {
            throw StageError("\(name):\(lineNumber): empty line — this command needs a text on every line")
        }
        lines.append(text)
    }
    while let nl = data[start...].firstIndex(of: UInt8(ascii: "\n")) {
        try take(nl)
        start = data.index(after: nl)
    }
    if start < data.endIndex { try take(data.endIndex) }
    if lines.isEmpty {
        throw StageError("\(name): no input lines — give one text per line")
    }
    return lines
}

/// Checks that the input `path` given with `flag` is an existing file, not a directory.
func requireInputFile(_ path: String, what: String, flag: String) throws {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw StageError("\(path): no such \(what) — check \(flag)")
    }
    guard !isDirectory.boolValue else { throw StageError("\(path): is a directory — \(flag) takes a \(what), e.g. \(path)/\(what == "config file" ? "config.json" : "vocab.txt")") }
}

/// Checks that `path` can be an output file for `flag`: not empty, not a directory, in an
/// existing directory. Stages call it before doing any work.
public func checkOutputPath(_ path: String, flag: String) throws {
    guard !path.isEmpty else { throw StageError.usage("\(flag) is empty — give an output file path") }
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
        throw StageError("\(path): is a directory — \(flag) takes a file path, e.g. \(path)/out")
    }
    let dir = URL(fileURLWithPath: path).deletingLastPathComponent()
    guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw StageError("\(path): directory \(dir.path) does not exist — create it first")
    }
}

/// Writes `data` to `path` through a partial sibling, fsynced and renamed on success
/// (WeightIO's OutputFile). rename(2) replaces an existing file atomically and refuses to
/// replace a directory.
public func writeAtomically(_ data: Data, to path: String) throws {
    try checkOutputPath(path, flag: "output")
    do { try OutputFile.write(data, to: URL(fileURLWithPath: path)) } catch { throw StageError(file: path, error) }
}

/// The (device, inode) of an existing path, or nil.
private func fileIdentity(_ path: String) -> [UInt64]? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    return [UInt64(info.st_dev), UInt64(info.st_ino)]
}

/// Refuses an output that is one of the inputs — the same file (device and inode, so links
/// and other spellings count), or a file directly inside an input folder — before any work.
/// `force` is nil for commands where replacing an input never makes sense; when false the
/// message offers `--force`, when true the check is skipped (the output is written to a
/// partial file and renamed, so the input is read whole before it is replaced).
func refuseInputsAsOutputs(_ outputs: [(path: String, flag: String)], inputs: [String?], force: Bool? = nil) throws {
    if force == true { return }
    var known: [[UInt64]: String] = [:]
    for case let input? in inputs {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: input, isDirectory: &isDirectory) else { continue }
        if let id = fileIdentity(input) { known[id] = input }
        if isDirectory.boolValue, let names = try? FileManager.default.contentsOfDirectory(atPath: input) {
            for name in names { if let id = fileIdentity(input + "/" + name) { known[id] = input + "/" + name } }
        }
    }
    for (path, flag) in outputs {
        guard let id = fileIdentity(path), let input = known[id] else { continue }
        let same = input == path ? "" : " (the same file as \(input))"
        throw StageError.usage("\(flag) \(path) is an input of this run\(same) — writing it would replace the input; "
                               + (force == nil ? "give another output path" : "give another output path, or --force to replace it"))
    }
}

/// `--checkpoint`, or `out` with `.h5` replaced by `.ckpt.h5`.
func defaultCheckpointPath(out: String, checkpoint: String?) -> String {
    checkpoint ?? (out.hasSuffix(".h5") ? String(out.dropLast(3)) : out) + ".ckpt.h5"
}

/// Checks the output and checkpoint paths of a training stage (they must differ) and that
/// the checkpoint to resume exists.
func checkTrainingPaths(out: String, checkpoint: String, resume: String?) throws {
    try checkOutputPath(out, flag: "--out")
    try checkOutputPath(checkpoint, flag: "--checkpoint")
    guard URL(fileURLWithPath: checkpoint).standardizedFileURL != URL(fileURLWithPath: out).standardizedFileURL else {
        throw StageError.usage("--checkpoint and --out are the same file (\(out)) — give them different paths")
    }
    try checkResumePath(resume)
}

/// The checkpoint given to resume from must exist.
func checkResumePath(_ resume: String?) throws {
    if let resume, !FileManager.default.fileExists(atPath: resume) {
        throw StageError("\(resume): no such checkpoint — --resume takes the .ckpt.h5 file of an earlier run")
    }
}

/// sha256 of a file's bytes.
public func fileSHA256(_ path: String) throws -> String {
    do { return try SHA256.hex(fileAt: URL(fileURLWithPath: path)) } catch {
        throw StageError("\(path): cannot read (\(error.localizedDescription))")
    }
}

/// The size of a file in bytes, through symbolic links (0 when it cannot be read).
func fileSize(_ path: String) -> Int {
    fileByteCount(atPath: path) ?? 0
}

/// "1.9 GB": decimal units, three significant digits.
public func formatSize(_ bytes: Int) -> String {
    let b = Double(bytes)
    for (unit, scale) in [("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)] where b >= scale {
        return String(format: b / scale >= 100 ? "%.0f %@" : "%.3g %@", b / scale, unit)
    }
    return "\(bytes) B"
}

/// "1.5 MiB": binary units, one decimal (model file sizes in `kd info`).
public func formatBytes(_ n: Int) -> String {
    n >= 1 << 20 ? String(format: "%.1f MiB", Double(n) / 1048576) : n >= 1024 ? String(format: "%.1f KiB", Double(n) / 1024) : "\(n) B"
}

/// Monotonic clock in seconds.
func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
