// OutputFolder: a folder of outputs that appears all at once — never half a folder under its name.
//
// The folder's sibling of OutputFile. A folder NAME is built as `.NAME.partial-<pid>-<random>`
// beside it (same file system), every file written there and fsynced, the staging folder
// fsynced, then renamed to NAME and the parent fsynced. Replacing an existing NAME (only
// when the caller allows it) swaps the two folders in one step with Linux's
// `renameat2(RENAME_EXCHANGE)`, so NAME always holds either the old folder or the new one,
// both complete; the old one is then deleted. Where the swap is unavailable (another OS, a
// file system without it) the old folder is first renamed aside to `.NAME.old-<pid>-…`,
// leaving NAME briefly absent, never partial. The next run writing NAME removes the
// `.NAME.partial-*` / `.NAME.old-*` folders of dead writers.
// Left out on purpose: nested folders inside the output (no stage writes any) and locking
// against two live runs writing the same NAME (the last rename wins, each folder whole).

import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A folder being filled under a temporary sibling name, put in place by `commit(replacing:)`.
public final class OutputFolder {
    /// Final destination.
    public let url: URL
    /// The staging folder files go into until `commit(replacing:)`.
    public let temporaryURL: URL
    private var settled = false

    /// Removes stale staging folders of `url`, then creates a fresh empty staging folder.
    /// - Throws: ``WeightIOError`` when the parent cannot be created or written.
    public init(_ url: URL) throws {
        self.url = url
        let parent = url.deletingLastPathComponent()
        do { try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true) } catch {
            throw WeightIOError(.ioFailure, file: url, "cannot create the parent folder (\(error.localizedDescription))",
                                hint: "check that the path is writable")
        }
        OutputFolder.removeStaleFolders(of: url)
        let suffix = "\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        temporaryURL = parent.appendingPathComponent(".\(url.lastPathComponent).partial-\(suffix)")
        guard mkdir(temporaryURL.path, 0o755) == 0 else {
            throw WeightIOError(.ioFailure, file: url, "cannot create a folder in \(parent.path) (\(String(cString: strerror(errno))))",
                                hint: "check that the folder is writable")
        }
    }

    deinit { if !settled { abandon() } }

    /// Writes `data` as `name` inside the staging folder and fsyncs it.
    public func write(_ data: Data, named name: String) throws {
        let path = temporaryURL.appendingPathComponent(name).path
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw WeightIOError(.ioFailure, file: url.appendingPathComponent(name), "cannot create (\(String(cString: strerror(errno))))",
                                hint: "check that the folder is writable")
        }
        defer { close(fd) }
        var failure = writeFully(fd, data)
        if failure == 0, fsync(fd) != 0 { failure = errno }
        guard failure == 0 else {
            throw WeightIOError(.ioFailure, file: url.appendingPathComponent(name), "cannot write (\(String(cString: strerror(failure))))",
                                hint: "the disk may be full; nothing was put under the final name")
        }
    }

    /// Puts the staging folder in place as `url`.
    ///
    /// - Parameter replacing: whether an existing non-empty `url` may be replaced; it stays
    ///   whole until the new folder is in place. An empty folder is always replaced.
    /// - Throws: ``WeightIOError`` when `url` exists and may not be replaced, is a file, or a
    ///   rename or flush fails; the staging folder is removed then and `url` left as it was.
    public func commit(replacing: Bool) throws {
        guard !settled else {
            throw WeightIOError(.ioFailure, file: url, "the output was already committed or abandoned",
                                hint: "this is a caller bug: commit an output once")
        }
        do {
            try OutputFile.sync(temporaryURL.path, what: "the folder", reporting: url)
            let parent = url.deletingLastPathComponent().path
            var isDirectory: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory)
            if exists && !isDirectory.boolValue {
                throw WeightIOError(.ioFailure, file: url, "is a file, not a folder", hint: "choose another --out, or remove the file")
            }
            let empty = exists && ((try? FileManager.default.contentsOfDirectory(atPath: url.path))?.isEmpty ?? false)
            if exists && !empty && !replacing {
                throw WeightIOError(.ioFailure, file: url, "already exists",
                                    hint: "pass --force to replace it (the old folder stays whole until the new one is complete), or choose another --out")
            }
            if exists && !empty {
                try swapIntoPlace()
            } else {
                if empty { rmdir(url.path) }
                guard rename(temporaryURL.path, url.path) == 0 else {
                    throw WeightIOError(.ioFailure, file: url, "cannot move the finished folder into place (\(String(cString: strerror(errno))))",
                                        hint: "check that the parent folder is writable")
                }
            }
            settled = true
            try OutputFile.sync(parent, what: "the folder", reporting: url)
        } catch {
            abandon()
            throw error
        }
    }

    /// Exchanges the staging folder with the existing `url`, then deletes the old one.
    private func swapIntoPlace() throws {
        if let exchange = OutputFolder.renameat2, exchange(AT_FDCWD, temporaryURL.path, AT_FDCWD, url.path, 2 /* RENAME_EXCHANGE */) == 0 {
            try? FileManager.default.removeItem(at: temporaryURL)   // now the old folder
            return
        }
        let suffix = "\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        let aside = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).old-\(suffix)")
        guard rename(url.path, aside.path) == 0 else {
            throw WeightIOError(.ioFailure, file: url, "cannot move the old folder aside (\(String(cString: strerror(errno))))",
                                hint: "check that the parent folder is writable")
        }
        guard rename(temporaryURL.path, url.path) == 0 else {
            let reason = String(cString: strerror(errno))
            rename(aside.path, url.path)   // put the old folder back
            throw WeightIOError(.ioFailure, file: url, "cannot move the finished folder into place (\(reason))",
                                hint: "check that the parent folder is writable")
        }
        try? FileManager.default.removeItem(at: aside)
    }

    /// Deletes the staging folder; the destination is never touched.
    public func abandon() {
        settled = true
        try? FileManager.default.removeItem(at: temporaryURL)
    }

    /// Removes `.NAME.partial-*` and `.NAME.old-*` folders beside `url` whose writer is gone
    /// (a live process's folders are left alone).
    public static func removeStaleFolders(of url: URL) {
        let directory = url.deletingLastPathComponent()
        let prefixes = [".\(url.lastPathComponent).partial-", ".\(url.lastPathComponent).old-"]
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else { return }
        for name in names {
            guard let prefix = prefixes.first(where: { name.hasPrefix($0) }) else { continue }
            if let pid = pid_t(name.dropFirst(prefix.count).prefix { $0.isNumber }), pid > 0,
               pid == getpid() || kill(pid, 0) == 0 || errno == EPERM { continue }   // its writer is alive
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(name))
        }
    }

    /// glibc's `renameat2` (2.28+), looked up at run time: Swift's Glibc module does not export it.
    private typealias RenameAt2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32
    private static let renameat2: RenameAt2? = {
        #if os(Linux)
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "renameat2") else { return nil }
        return unsafeBitCast(symbol, to: RenameAt2.self)
        #else
        return nil
        #endif
    }()
}
