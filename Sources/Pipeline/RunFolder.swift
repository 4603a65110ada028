// RunFolder: the directory `kd run --out RUN_DIR` works in — which recipe it belongs to,
// who is using it, and the folder and done-marker of every step.
//
// Layout: RUN_DIR/run.json (format "distillery-run": the recipe's name, file and sha256),
// RUN_DIR/recipe.json (a copy of the recipe last run), RUN_DIR/.lock (flock: one `kd run`
// per folder), RUN_DIR/hashes.json (sha256 of input files by path, size and mtime, so a
// teacher is hashed once), RUN_DIR/stages/ID.KEY12/ (one folder per step, KEY12 the first
// 12 hex digits of the step key: sha256 of its settings, the hashes of its input files and
// the output hashes of the steps it reads), and RUN_DIR/report → the report step's folder.
//
// The crash discipline: a step writes its outputs into its folder (every stage function
// writes through a temporary sibling renamed into place), then the runner hashes them and
// writes `done.json` last, atomically (WeightIO's OutputFile: write, fsync, rename, fsync
// of the directory). A folder without `done.json` is unfinished: the next run clears it,
// keeping only a training checkpoint to resume from. So SIGKILL at any moment loses at
// most the step in progress, and no file under its final name is ever half written.
// Left out on purpose: garbage collection of folders whose keys are no longer current
// (they are kept, so switching a setting back reuses the earlier result).
import DistilleryJSON
import DistilleryStages
import Foundation
import WeightIO
#if canImport(Glibc)
import Glibc
#endif

/// What `done.json` records about a finished step.
public struct StepMarker: Codable, Sendable {
    public var format = "distillery-run-step"
    public var version = 1
    public var step: String
    public var key: String
    /// Output file (relative to the step folder) → sha256.
    public var outputs: [String: String]
    /// sha256 over the sorted outputs: what downstream keys include.
    public var outputHash: String
    public var seconds: Double
    /// The stage function's report.
    public var report: JSONValue?
}

/// `run.json`: which recipe a run folder belongs to.
struct RunIdentity: Codable {
    var format = "distillery-run"
    var version = 1
    var recipe: String
    var recipeFile: String
    var recipeSHA256: String
}

/// An open run folder (locked for this process).
public final class RunFolder {
    public let path: String
    private let lockDescriptor: Int32
    private var hashCache: [String: CachedHash]
    private var hashCacheChanged = false

    struct CachedHash: Codable, Equatable {
        var size: Int
        var modified: Double
        var sha256: String
    }

    /// Opens (creating it when needed) and locks `path` for `recipe`; a folder made by
    /// another recipe is refused unless `force`. `dryRun` creates nothing.
    public init(path: String, recipe: Recipe, force: Bool, dryRun: Bool) throws {
        self.path = path
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        let exists = fm.fileExists(atPath: path, isDirectory: &isDirectory)
        if exists, !isDirectory.boolValue { throw StageError("\(path): is a file — --out takes a run folder") }
        if exists, let data = fm.contents(atPath: path + "/run.json") {
            guard let identity = try? JSONCoding.decode(RunIdentity.self, from: data), identity.format == "distillery-run" else {
                throw StageError("\(path)/run.json: not a kd run record — is \(path) a run folder? give another --out")
            }
            if identity.recipe != recipe.name, !force {
                throw StageError("\(path): this run folder was made by recipe '\(identity.recipe)' (\(identity.recipeFile)), not '\(recipe.name)' (\(recipe.file)) — give another --out, or --force to reuse it")
            }
        } else if exists, !dryRun, let items = try? fm.contentsOfDirectory(atPath: path), !items.isEmpty, !force {
            throw StageError("\(path): exists and is not a kd run folder (no run.json) — give a new or empty --out, or --force to use it")
        }
        hashCache = (fm.contents(atPath: path + "/hashes.json")).flatMap { try? JSONCoding.decode([String: CachedHash].self, from: $0) } ?? [:]
        guard !dryRun else { lockDescriptor = -1; return }
        do { try fm.createDirectory(atPath: path + "/stages", withIntermediateDirectories: true) } catch {
            throw StageError("\(path): cannot create the run folder (\(error.localizedDescription))")
        }
        lockDescriptor = open(path + "/.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard lockDescriptor >= 0 else { throw StageError("\(path)/.lock: cannot open (\(String(cString: strerror(errno))))") }
        guard flock(lockDescriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(lockDescriptor)
            throw StageError("\(path): another kd run is using this run folder — wait for it to finish, or give another --out")
        }
        let identity = RunIdentity(recipe: recipe.name, recipeFile: recipe.file, recipeSHA256: recipe.sha256)
        try writeAtomically(try JSONCoding.data(identity, pretty: true), to: path + "/run.json")
        if let text = try? Data(contentsOf: URL(fileURLWithPath: recipe.file)) { try writeAtomically(text, to: path + "/recipe.json") }
    }

    deinit { if lockDescriptor >= 0 { close(lockDescriptor) } }

    /// The folder of step `id` with key `key`.
    public func stepFolder(_ id: String, key: String) -> String { "\(path)/stages/\(id).\(key.prefix(12))" }

    /// The marker of a finished step whose outputs are all still there, or nil.
    public func marker(_ id: String, key: String) -> StepMarker? {
        let folder = stepFolder(id, key: key)
        guard let data = FileManager.default.contents(atPath: folder + "/done.json"),
              let marker = try? JSONCoding.decode(StepMarker.self, from: data), marker.key == key,
              marker.outputs.keys.allSatisfy({ FileManager.default.fileExists(atPath: folder + "/" + $0) }) else { return nil }
        return marker
    }

    /// Makes a step's folder ready to run: created when missing; when an earlier process left
    /// it unfinished, everything but the names in `keep` (a checkpoint to resume) is removed.
    public func prepareStepFolder(_ folder: String, keep: Set<String>) throws {
        let fm = FileManager.default
        if let items = try? fm.contentsOfDirectory(atPath: folder) {
            for item in items where !keep.contains(item) {
                do { try fm.removeItem(atPath: folder + "/" + item) } catch {
                    throw StageError("\(folder)/\(item): cannot remove a leftover of an interrupted run (\(error.localizedDescription))")
                }
            }
        }
        do { try fm.createDirectory(atPath: folder, withIntermediateDirectories: true) } catch {
            throw StageError("\(folder): cannot create (\(error.localizedDescription))")
        }
    }

    /// Removes a step's folder (to redo it from scratch).
    public func removeStepFolder(_ folder: String) throws {
        guard FileManager.default.fileExists(atPath: folder) else { return }
        do { try FileManager.default.removeItem(atPath: folder) } catch {
            throw StageError("\(folder): cannot remove (\(error.localizedDescription))")
        }
    }

    /// Hashes the outputs and writes `done.json` — the last write of a step.
    public func finish(_ id: String, key: String, outputs: [String], seconds: Double, report: JSONValue?) throws -> StepMarker {
        let folder = stepFolder(id, key: key)
        var hashes: [String: String] = [:]
        for name in outputs { hashes[name] = try hashPath(folder + "/" + name, cache: false) }
        let combined = hashes.keys.sorted().map { "\($0) \(hashes[$0]!)" }.joined(separator: "\n")
        let marker = StepMarker(step: id, key: key, outputs: hashes, outputHash: SHA256Hex.of(Data(combined.utf8)), seconds: seconds, report: report)
        try writeAtomically(try JSONCoding.data(marker, pretty: true), to: folder + "/done.json")
        return marker
    }

    /// Points `RUN_DIR/NAME` at `target` (a symlink replaced atomically).
    public func link(_ name: String, to target: String) throws {
        let link = path + "/" + name, temporary = path + "/.\(name).link-\(getpid())"
        unlink(temporary)
        let relative = target.hasPrefix(path + "/") ? String(target.dropFirst(path.count + 1)) : target
        guard symlink(relative, temporary) == 0, rename(temporary, link) == 0 else {
            unlink(temporary)
            throw StageError("\(link): cannot point it at \(target) (\(String(cString: strerror(errno))))")
        }
    }

    /// sha256 of a file, or of a folder (its files' relative paths and hashes, sorted);
    /// input files are cached by path, size and modification time.
    public func hashPath(_ path: String, cache: Bool = true) throws -> String {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else { throw StageError("\(path): no such file or folder") }
        if isDirectory.boolValue {
            let names = (fm.enumerator(atPath: path)?.allObjects as? [String] ?? []).filter { name in
                var d: ObjCBool = false
                return !name.split(separator: "/").contains(where: { $0.hasPrefix(".") }) && fm.fileExists(atPath: path + "/" + name, isDirectory: &d) && !d.boolValue
            }.sorted()
            let lines = try names.map { "\($0) \(try hashPath(path + "/" + $0, cache: cache))" }
            return SHA256Hex.of(Data(lines.joined(separator: "\n").utf8))
        }
        let attributes = try? fm.attributesOfItem(atPath: URL(fileURLWithPath: path).resolvingSymlinksInPath().path)
        let size = (attributes?[.size] as? NSNumber)?.intValue ?? -1
        let modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        if cache, let hit = hashCache[absolute], hit.size == size, hit.modified == modified { return hit.sha256 }
        let sha = try fileSHA256(path)
        if cache {
            hashCache[absolute] = CachedHash(size: size, modified: modified, sha256: sha)
            hashCacheChanged = true
        }
        return sha
    }

    /// Saves the input-hash cache (when this process added to it and holds the lock).
    public func saveHashCache() {
        guard hashCacheChanged, lockDescriptor >= 0, let data = try? JSONCoding.data(hashCache, pretty: true) else { return }
        try? writeAtomically(data, to: path + "/hashes.json")
        hashCacheChanged = false
    }
}
