// LabelMaintenance: what is done with label caches after `label` — joining the shards of
// one sharded run into one cache identical to an unsharded run (`mergeLabelShards`), and
// checking that a cache was made from a given teacher and data (`checkLabelCache`, what a
// student run does before training).
//
// Merging refuses parts of different runs (settings compared field by field), another
// split, a shard given twice or missing, and an input that is also the output; it streams
// examples in blocks and writes through the cache writer's temporary file.
import DistilleryData
import Foundation
import WeightIO

/// Examples read from a shard at a time while merging.
let mergeBlock = 256

/// What `mergeLabelShards` joined.
public struct MergeReport: Codable, Sendable {
    public var shards: Int
    public var examples: Int
    public var out: String
    /// "merged N shards (M examples) → OUT".
    public var text: String { "merged \(shards) shards (\(examples) examples) → \(out)" }
}

/// Joins every shard 0..<n of one `label --shard i/n` run (any order) into `out`.
public func mergeLabelShards(_ parts: [String], out: String) throws -> MergeReport {
    try checkOutputPath(out, flag: "--out")
    guard !parts.isEmpty else { throw StageError("no shard files given — pass every part: kd label merge --out labels.h5 part-0.h5 part-1.h5 …") }
    let outURL = URL(fileURLWithPath: out).standardizedFileURL
    var caches: [(path: String, cache: LabelCache)] = []
    for p in parts {
        guard URL(fileURLWithPath: p).standardizedFileURL != outURL else {
            throw StageError("\(p) is both an input and --out — write the merged cache to a new file")
        }
        guard FileManager.default.fileExists(atPath: p) else { throw StageError("\(p): no such file — pass the shard files kd label --shard wrote") }
        caches.append((p, try openLabelCache(p)))
    }
    let (firstPath, first) = caches[0]
    let n = first.shard.count
    for (p, c) in caches.dropFirst() {
        let differences = c.settings.differences(from: first.settings)
        guard differences.isEmpty else {
            throw StageError("\(p) and \(firstPath) are not shards of one run — \(differences.joined(separator: "; ")) (\(p) vs \(firstPath)); label every shard with the same teacher, data and flags")
        }
        guard c.shard.count == n else {
            throw StageError("\(p) is shard \(c.shard.index)/\(c.shard.count) but \(firstPath) is shard \(first.shard.index)/\(n) — every part must come from the same --shard i/n split")
        }
    }
    var byIndex: [Int: String] = [:]
    for (p, c) in caches {
        if let other = byIndex[c.shard.index] {
            throw StageError("shard \(c.shard.index)/\(n) is given twice (\(other), \(p)) — pass each shard once")
        }
        byIndex[c.shard.index] = p
        guard c.shard.rows == LabelCacheShard.split(sourceRows: c.settings.sourceRows, index: c.shard.index, count: n).rows else {
            throw StageError("\(p): shard \(c.shard.index)/\(n) covers rows \(c.shard.rows) instead of its split — the file was not written by kd label --shard")
        }
    }
    let missing = (0..<n).filter { byIndex[$0] == nil }
    guard missing.isEmpty else {
        throw StageError("shard\(missing.count > 1 ? "s" : "") \(missing.map { "\($0)/\(n)" }.joined(separator: ", ")) missing — pass every part 0..<\(n) (got \(caches.count))")
    }
    let ordered = caches.sorted { $0.cache.shard.index < $1.cache.shard.index }
    let writer: LabelCacheWriter
    do {
        writer = try LabelCacheWriter(url: URL(fileURLWithPath: out), settings: first.settings,
                                      shard: LabelCacheShard(index: 0, count: 1, rows: 0..<first.settings.sourceRows))
    } catch { throw StageError(file: out, error) }
    do {
        for (_, c) in ordered {
            for s in stride(from: 0, to: c.exampleCount, by: mergeBlock) {
                for record in try c.records(s..<min(s + mergeBlock, c.exampleCount)) { try writer.append(record) }
            }
        }
        try writer.finish(droppedCopies: ordered.reduce(0) { $0 + $1.cache.droppedCopies })
    } catch {
        writer.abandon()
        throw StageError(file: out, error)
    }
    return MergeReport(shards: n, examples: ordered.reduce(0) { $0 + $1.cache.exampleCount }, out: out)
}

/// Opens the label cache `labels`, with errors naming it.
func openLabelCache(_ labels: String) throws -> LabelCache {
    do { return try LabelCache.open(URL(fileURLWithPath: labels)) } catch { throw StageError(file: labels, error) }
}

/// Verifies a label cache against a teacher file and a prepared dataset folder (their sha256).
func verifyLabelCache(_ cache: LabelCache, labels: String, teacher: String, folder: PreparedFolder, data: String) throws {
    do {
        try cache.verify(teacherSHA256: try fileSHA256(teacher), teacherFile: teacher,
                         dataSHA256: try folder.labelDataSHA256(), dataFile: "\(data) (train.jsonl + manifest.json)")
    } catch let error as StageError { throw error } catch { throw StageError(file: labels, error) }
}

/// What `checkLabelCache` found: the cache's contents, which match the teacher and data.
public struct LabelCheckReport: Codable, Sendable {
    public var labels: String
    public var teacher: String
    public var data: String
    public var examples: Int
    public var tokens: Int
    public var teacherFile: String
    public var dataName: String
    /// Stored logits: 0 = all, else top-k.
    public var topK: Int
    public var hiddenLayers: [Int]
    public var attentionLayers: [Int]
    public var shardIndex: Int
    public var shardCount: Int

    /// One line: contents and "— matches TEACHER and DATA".
    public var text: String {
        "\(labels): \(examples) examples, \(tokens) tokens from \(teacherFile) on \(dataName); "
            + "logits \(topK == 0 ? "full" : "top \(topK)"), hidden [\(hiddenLayers.map(String.init).joined(separator: ","))], "
            + "attention [\(attentionLayers.map(String.init).joined(separator: ","))], shard \(shardIndex)/\(shardCount) — matches \(teacher) and \(data)"
    }
}

/// Checks that the cache `labels` was made from `teacher` and the data folder `data`.
public func checkLabelCache(_ labels: String, teacher: String, data: String) throws -> LabelCheckReport {
    guard FileManager.default.fileExists(atPath: labels) else { throw StageError("\(labels): no such file — make it with 'kd label'") }
    let cache = try openLabelCache(labels)
    guard FileManager.default.fileExists(atPath: teacher) else { throw StageError("\(teacher): no such file — check --teacher") }
    let folder = try PreparedFolder(path: data)
    try verifyLabelCache(cache, labels: labels, teacher: teacher, folder: folder, data: data)
    let s = cache.settings
    return LabelCheckReport(labels: labels, teacher: teacher, data: data, examples: cache.exampleCount, tokens: cache.tokenCount,
                            teacherFile: s.teacherFile, dataName: s.dataName, topK: s.topK, hiddenLayers: s.hiddenLayers,
                            attentionLayers: s.attentionLayers, shardIndex: cache.shard.index, shardCount: cache.shard.count)
}
