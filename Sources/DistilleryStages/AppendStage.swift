// AppendStage: `kd data prepare --append NEW.csv --base data/OLD` — the next version of a
// prepared dataset, written as a new folder (the old one is never touched).
//
// Each split file of the new folder is the old file's bytes followed by the new rows' lines
// (DatasetAppender decides which rows are new and where they go), so the old splits stay
// byte-identical prefixes and a model's score on the old test file stays comparable across
// versions. Everything is read, checked and split in memory before anything is written; the
// folder appears whole through OutputFolder. Left out on purpose: appending in place (a
// label cache or a run fingerprint made from the old folder would silently go stale).
import DistilleryData
import Foundation
import WeightIO

/// What `appendDataset` reads and where it writes.
public struct AppendConfig: Sendable {
    /// The prepared dataset folder the rows are appended to (read only).
    public var base: String
    /// The CSV file with the new rows (a header line naming the columns).
    public var csv: String
    public var textColumn: String
    public var labelColumn: String
    public var delimiter: Character
    public var encoding: SourceEncoding
    /// Output folder (default: BASE-vN, N the new version).
    public var out: String?
    /// Replace an existing --out folder (never the base).
    public var force = false

    /// An append of `csv` to `base`; see the properties.
    public init(base: String, csv: String, textColumn: String = "text", labelColumn: String = "label", delimiter: Character = ",",
                encoding: SourceEncoding = .utf8, out: String? = nil, force: Bool = false) {
        self.base = base
        self.csv = csv
        self.textColumn = textColumn
        self.labelColumn = labelColumn
        self.delimiter = delimiter
        self.encoding = encoding
        self.out = out
        self.force = force
    }
}

/// Writes the next version of the prepared dataset `config.base` with the rows of `config.csv` added.
public func appendDataset(_ config: AppendConfig) throws -> PrepareReport {
    let folder = try PreparedFolder(path: config.base)
    var base = PreparedDataset(splits: [:], manifest: folder.manifest)
    var oldBytes: [Split: Data] = [:]
    for split in Split.allCases {
        var data = try folder.bytes(split)
        if let last = data.last, last != UInt8(ascii: "\n") { data.append(UInt8(ascii: "\n")) }
        oldBytes[split] = data
        base.splits[split] = try folder.read(split).map { Example(id: $0.id, text: $0.text, label: $0.label) }
    }
    let number = (folder.manifest.versions?.last?.version ?? 1) + 1
    let outDir = config.out ?? defaultVersionFolder(config.base, version: number)
    guard !outDir.isEmpty else { throw StageError.usage("--out is empty — give an output folder") }
    let baseReal = URL(fileURLWithPath: config.base).resolvingSymlinksInPath().path
    let outReal = URL(fileURLWithPath: outDir).resolvingSymlinksInPath().path
    guard outReal != baseReal else {
        throw StageError.usage("--out \(outDir) is the --base folder — an appended version is a new folder (the old one stays as it is for comparing against); choose another --out")
    }
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: outDir, isDirectory: &isDirectory), !isDirectory.boolValue {
        throw StageError("\(outDir): is a file — --out takes a folder (it will hold train.jsonl, dev.jsonl, test.jsonl, manifest.json)")
    }
    for input in [config.csv, config.base] where URL(fileURLWithPath: input).resolvingSymlinksInPath().path.hasPrefix(outReal + "/") {
        throw StageError.usage("--out \(outDir) holds the input \(input) — replacing the folder would delete it; give another output folder")
    }
    if !config.force, let names = try? FileManager.default.contentsOfDirectory(atPath: outDir), !names.isEmpty {
        throw StageError.usage("\(outDir): already exists — pass --force to replace it, or choose another --out")
    }

    let loaded: LoadedSource
    do {
        loaded = try SourceLoader.loadDelimited(path: config.csv, format: CSVFormat(delimiter: config.delimiter, hasHeader: true),
                                                encoding: config.encoding, textColumn: .name(config.textColumn),
                                                labelColumn: .name(config.labelColumn), name: "\(folder.manifest.name)@v\(number)")
    } catch { throw StageError(file: config.csv, error) }
    let appended: PreparedDataset
    do {
        appended = try DatasetAppender.append(to: base, raw: loaded.examples, source: loaded.source,
                                              baseManifestSHA256: SHA256.hex(folder.manifestData))
    } catch { throw StageError(file: config.csv, error) }

    let out: OutputFolder
    do { out = try OutputFolder(URL(fileURLWithPath: outDir)) } catch { throw StageError(file: outDir, error) }
    let added = appended.manifest.versions!.last!.totals
    do {
        for split in Split.allCases {
            let newRows = PreparedDataset(splits: [split: Array(appended.splits[split]!.suffix(added[split.rawValue] ?? 0))],
                                          manifest: appended.manifest)
            try out.write(oldBytes[split]! + newRows.jsonLines(split), named: appended.manifest.files[split.rawValue]!)
        }
        try out.write(try appended.manifest.jsonData(), named: "manifest.json")
        try out.commit(replacing: config.force)
    } catch {
        throw StageError(file: outDir, error)
    }
    return PrepareReport(out: outDir, manifest: appended.manifest)
}

/// BASE-vN beside the base: `data/x` → `data/x-v2`, `data/x-v2` → `data/x-v3`.
func defaultVersionFolder(_ base: String, version: Int) -> String {
    var stem = base
    while stem.count > 1 && stem.hasSuffix("/") { stem.removeLast() }
    if let dash = stem.range(of: "-v", options: .backwards), !stem[dash.upperBound...].isEmpty,
       stem[dash.upperBound...].allSatisfy(\.isASCII), stem[dash.upperBound...].allSatisfy(\.isNumber) {
        stem = String(stem[..<dash.lowerBound])
    }
    return "\(stem)-v\(version)"
}
