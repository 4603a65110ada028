// Shared test helpers: fixture paths, tolerance comparisons, running `kd`.
import Foundation
#if canImport(Glibc)
import Glibc
#endif


/// Paths of the repository and its committed fixtures, found from this source file.
public enum Fixtures {
    /// Repository root (two levels above Tests/TestSupport).
    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    /// `Tests/Fixtures/<name>`.
    public static func url(_ name: String) -> URL { root.appendingPathComponent("Tests/Fixtures/\(name)") }
}

/// Maximum absolute difference between two equal-length float sequences.
public func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "maxAbsDiff: lengths \(a.count) vs \(b.count)")
    var m: Float = 0
    for i in 0..<a.count { m = max(m, abs(a[i] - b[i])) }
    return m
}

/// A fresh temporary directory, removed by the caller when done.
public func makeTemporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("distillery-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

// MARK: - Running the kd binary

/// Result of one `kd` run: exit status, captured output, and whether a signal ended it.
public struct KDResult: Sendable {
    /// Exit code, or the signal number when `signaled`.
    public var status: Int32
    public var stdout: String
    public var stderr: String
    /// True when the process died from a signal (a trap or crash), never a clean exit.
    public var signaled: Bool
}

/// Locates the built `kd` executable: walks up from the test bundle (which sits in the
/// same build directory, `<scratch>/debug/`) until a sibling `kd` exists.
public enum KDBinary {
    /// The `kd` executable, or nil with the places searched in `searchDescription`.
    public static let url: URL? = {
        var starts = [URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL, Bundle.main.bundleURL]
        starts += Bundle.allBundles.map(\.bundleURL)
        for start in starts {
            var dir = start
            for _ in 0..<8 {
                let candidate = dir.appendingPathComponent("kd")
                var isDir: ObjCBool = false
                if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDir), !isDir.boolValue,
                   FileManager.default.isExecutableFile(atPath: candidate.path) {
                    return candidate
                }
                let parent = dir.deletingLastPathComponent()
                if parent.path == dir.path { break }
                dir = parent
            }
        }
        return nil
    }()

    /// Where the search started, for the failure message.
    public static var searchDescription: String {
        "no 'kd' executable found walking up from \(CommandLine.arguments[0]) or \(Bundle.main.bundleURL.path) — build it first (swift build --build-tests)"
    }
}

/// Collects a pipe's bytes on a background thread so full pipes never deadlock the child.
private final class PipeDrain: @unchecked Sendable {
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)
    init(_ handle: FileHandle) {
        Thread.detachNewThread { [self] in
            self.data = handle.readDataToEndOfFile()
            self.done.signal()
        }
    }
    /// Waits for end of file and returns everything read.
    func wait() -> Data { done.wait(); return data }
}

/// Writing stdin to a child that already exited must fail with EPIPE, not kill the test run.
private let ignoreSIGPIPE: Void = { signal(SIGPIPE, SIG_IGN) }()

/// Runs the built `kd` with `args` (and optional `stdin` bytes), waits, and returns its
/// status and output. Fails loudly (status -1, message in stderr) when `kd` is not built.
public func runKD(_ args: [String], stdin: Data? = nil, currentDirectory: URL? = nil) -> KDResult {
    guard let kd = KDBinary.url else {
        return KDResult(status: -1, stdout: "", stderr: KDBinary.searchDescription, signaled: false)
    }
    _ = ignoreSIGPIPE
    let process = Process()
    process.executableURL = kd
    process.arguments = args
    if let currentDirectory { process.currentDirectoryURL = currentDirectory }
    let outPipe = Pipe(), errPipe = Pipe(), inPipe = Pipe()
    process.standardOutput = outPipe
    process.standardError = errPipe
    process.standardInput = inPipe
    do { try process.run() } catch {
        return KDResult(status: -1, stdout: "", stderr: "cannot start \(kd.path): \(error)", signaled: false)
    }
    let out = PipeDrain(outPipe.fileHandleForReading)
    let err = PipeDrain(errPipe.fileHandleForReading)
    let writer = inPipe.fileHandleForWriting
    let input = stdin ?? Data()
    let stdinDone = DispatchSemaphore(value: 0)
    Thread.detachNewThread {
        if !input.isEmpty { try? writer.write(contentsOf: input) }  // the child may exit early: ignore EPIPE
        try? writer.close()
        stdinDone.signal()
    }
    process.waitUntilExit()
    stdinDone.wait()
    let stdoutData = out.wait(), stderrData = err.wait()
    return KDResult(status: process.terminationStatus,
                    stdout: String(decoding: stdoutData, as: UTF8.self),
                    stderr: String(decoding: stderrData, as: UTF8.self),
                    signaled: process.terminationReason == .uncaughtSignal)
}
