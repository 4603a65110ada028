// OutputFile: the one way Distillery writes a file — never half a file under its final name.
//
// A file NAME is written as `.NAME.partial-<pid>-<random>` in the same directory (so the
// rename stays on one file system), fsynced, renamed over NAME, and the directory fsynced so
// the rename itself survives a crash. A run killed mid-write leaves only its partial file;
// the next run writing NAME removes every `.NAME.partial-*` (and the older `.NAME.tmp-*`)
// whose writer is no longer alive. Writers that need a path (libhdf5 creates files by
// name) write to `temporaryURL`; others call `OutputFile.write(_:to:)`.
// Left out on purpose: locking against two live runs writing the same NAME (the last
// rename wins, each file whole).

import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file being written under a temporary sibling name, put in place by `commit()`.
public final class OutputFile {
    /// Final destination.
    public let url: URL
    /// Where the content is written until `commit()`.
    public let temporaryURL: URL
    private var settled = false

    /// Removes stale partial files of `url` left by killed runs and picks a fresh temporary name.
    public init(_ url: URL) {
        self.url = url
        OutputFile.removeStalePartials(of: url)
        let name = ".\(url.lastPathComponent).partial-\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        temporaryURL = url.deletingLastPathComponent().appendingPathComponent(name)
    }

    deinit { if !settled { abandon() } }

    /// Flushes the temporary file to disk, renames it over the destination and flushes the directory.
    public func commit() throws {
        guard !settled else {
            throw WeightIOError(.ioFailure, file: url, "the output was already committed or abandoned",
                                hint: "this is a caller bug: commit an output once")
        }
        do {
            try OutputFile.sync(temporaryURL.path, what: "the file", reporting: url)
            guard rename(temporaryURL.path, url.path) == 0 else {
                throw WeightIOError(.ioFailure, file: url, "cannot move the finished file into place (\(String(cString: strerror(errno))))",
                                    hint: "check that the destination is writable and not a directory")
            }
            settled = true
            try OutputFile.sync(url.deletingLastPathComponent().path, what: "its directory", reporting: url)
        } catch {
            abandon()
            throw error
        }
    }

    /// Deletes the temporary file; the destination is never touched.
    public func abandon() {
        settled = true
        unlink(temporaryURL.path)
    }

    /// Writes `data` to `url` through a partial sibling: fsync, rename, fsync of the directory.
    public static func write(_ data: Data, to url: URL) throws { try write(parts: [data], to: url) }

    /// `write(_:to:)` of the parts one after another (a large file need not be joined in
    /// memory first).
    public static func write(parts: [Data], to url: URL) throws {
        let output = OutputFile(url)
        let fd = open(output.temporaryURL.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw WeightIOError(.ioFailure, file: url, "cannot create a file in \(url.deletingLastPathComponent().path) (\(String(cString: strerror(errno))))",
                                hint: "check that the directory exists and is writable")
        }
        var failure: Int32 = 0
        for part in parts where failure == 0 { failure = writeFully(fd, part) }
        close(fd)
        guard failure == 0 else {
            output.abandon()
            throw WeightIOError(.ioFailure, file: url, "cannot write (\(String(cString: strerror(failure))))",
                                hint: "the disk may be full; nothing was written under this name")
        }
        try output.commit()
    }

    /// Removes `.NAME.partial-*` and `.NAME.tmp-*` beside `url` whose writing process is gone
    /// (a live process's partial file is left alone; a name without a pid counts as gone).
    public static func removeStalePartials(of url: URL) {
        let directory = url.deletingLastPathComponent()
        let prefixes = [".\(url.lastPathComponent).partial-", ".\(url.lastPathComponent).tmp-"]
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else { return }
        for name in names {
            guard let prefix = prefixes.first(where: { name.hasPrefix($0) }) else { continue }
            if let pid = pid_t(name.dropFirst(prefix.count).prefix { $0.isNumber }), pid > 0,
               pid == getpid() || kill(pid, 0) == 0 || errno == EPERM { continue }   // its writer is alive
            unlink(directory.appendingPathComponent(name).path)
        }
    }

    /// Flushes a directory (or file) to disk: what a writer calls after renaming a finished
    /// directory into place, so the rename survives a crash.
    public static func syncPath(_ url: URL) throws {
        try sync(url.path, what: "the directory", reporting: url)
    }

    /// fsync(2) of a file or directory opened read-only (OutputFolder flushes through it too).
    static func sync(_ path: String, what: String, reporting url: URL) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw WeightIOError(.ioFailure, file: url, "cannot open \(what) to flush it (\(String(cString: strerror(errno))))",
                                hint: "check that the directory is writable")
        }
        defer { close(fd) }
        guard fsync(fd) == 0 || errno == EINVAL else {   // EINVAL: a file system without fsync for directories
            throw WeightIOError(.ioFailure, file: url, "cannot flush \(what) to disk (\(String(cString: strerror(errno))))",
                                hint: "the disk may be full or failing; nothing was put under the final name")
        }
    }
}

/// Writes all of `data` to `fd` (retrying short writes and EINTR); 0, or the errno that stopped it.
func writeFully(_ fd: Int32, _ data: Data) -> Int32 {
    data.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) -> Int32 in
        var done = 0
        while done < buffer.count {
            #if canImport(Glibc)
            let n = Glibc.write(fd, buffer.baseAddress! + done, buffer.count - done)
            #else
            let n = Darwin.write(fd, buffer.baseAddress! + done, buffer.count - done)
            #endif
            if n < 0 { if errno == EINTR { continue }; return errno }
            done += n
        }
        return 0
    }
}
