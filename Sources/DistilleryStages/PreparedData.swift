// PreparedData: the prepared dataset folder every training stage reads (manifest.json plus
// train/dev/test JSON lines, made by `prepareDataset`), and the prepare stage itself —
// a built-in dataset or a user's CSV in, cleaned, deduplicated, stratified splits out.
//
// Everything is read, cleaned and split in memory before the output folder is touched;
// each file is then written through a temporary sibling and renamed, and a folder this
// stage created is removed again if writing fails. Left out on purpose: pair inputs and
// regression targets.
import DistilleryData
import DistilleryJSON
import Foundation
import WeightIO

/// One `{"id","text","label"}` line of a prepared split.
public struct LabeledText: Sendable {
    public let id: String
    public let text: String
    public let label: String
    /// 1-based line number in its file (for error messages).
    public let line: Int
}

/// A prepared dataset folder: manifest plus split files (read lazily).
public struct PreparedFolder {
    public let path: String
    public let manifest: DatasetManifest
    /// The manifest's bytes (hashed into label caches and run fingerprints).
    public let manifestData: Data

    /// Opens a folder made by `prepareDataset`; errors say how to make one.
    public init(path: String) throws {
        self.path = path
        var isDirectory: ObjCBool = false
        let names = BuiltinDataset.all.map(\.name).joined(separator: ", ")
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw StageError("\(path): no such dataset folder — prepare it first with 'kd data prepare NAME --out \(path)' (built-in: \(names)) or 'kd data prepare --csv FILE ...'")
        }
        guard isDirectory.boolValue else {
            throw StageError("\(path): is a file — --data takes a prepared dataset folder (train.jsonl, dev.jsonl, test.jsonl, manifest.json)")
        }
        let manifestPath = path + "/manifest.json"
        guard let data = FileManager.default.contents(atPath: manifestPath) else {
            throw StageError("\(manifestPath): missing — \(path) is not a prepared dataset; run 'kd data prepare' to make one")
        }
        do { manifest = try DatasetManifest.read(data, source: manifestPath) } catch { throw StageError(String(describing: error)) }
        manifestData = data
    }

    /// The path of a split's file.
    public func filePath(_ split: Split) -> String { path + "/" + (manifest.files[split.rawValue] ?? "\(split.rawValue).jsonl") }

    /// The raw bytes of a split file.
    public func bytes(_ split: Split) throws -> Data {
        let p = filePath(split)
        guard let data = FileManager.default.contents(atPath: p) else {
            throw StageError("\(p): missing — the dataset folder is incomplete; re-run 'kd data prepare'")
        }
        return data
    }

    /// One line as stored: the id is optional (line number otherwise).
    private struct Line: Decodable {
        var id: String?
        var text: String
        var label: String
        enum CodingKeys: String, CodingKey { case id, text, label }
        init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            id = try? c.decode(String.self, forKey: .id)
            text = try c.decode(String.self, forKey: .text)
            label = try c.decode(String.self, forKey: .label)
        }
    }

    /// The examples of a split.
    public func read(_ split: Split) throws -> [LabeledText] {
        let p = filePath(split)
        let data = try bytes(split)
        var out: [LabeledText] = []
        for (i, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
            guard let row = try? JSONCoding.decode(Line.self, from: Data(line)) else {
                throw StageError("\(p):\(i + 1): not a {\"id\",\"text\",\"label\"} JSON line — re-run 'kd data prepare'")
            }
            out.append(LabeledText(id: row.id ?? "\(i + 1)", text: row.text, label: row.label, line: i + 1))
        }
        return out
    }

    /// The data sha256 a label cache records: train.jsonl and manifest.json.
    public func labelDataSHA256() throws -> String {
        LabelCache.dataSHA256(trainSHA256: SHA256.hex(try bytes(.train)), manifestSHA256: SHA256.hex(manifestData), hash: SHA256.hex)
    }
}

/// Label indices of `examples`, failing on the first label outside `labels` (`known` names
/// where the labels come from).
func labelIndices(_ examples: [LabeledText], labels: [String], file: String, known: String) throws -> [Int32] {
    let index = Dictionary(uniqueKeysWithValues: labels.enumerated().map { ($1, Int32($0)) })
    return try examples.map { e in
        guard let i = index[e.label] else {
            throw StageError("\(file):\(e.line): label '\(e.label)' is unknown to \(known) (\(labels.joined(separator: ", "))) — re-prepare the dataset so every split shares the training labels")
        }
        return i
    }
}

// MARK: - Prepare

/// Where a dataset comes from.
public enum DatasetInput: Sendable {
    /// A packaged dataset by name, read from `cache/NAME` (scripts/fetch-datasets.sh).
    case builtin(name: String, cache: String)
    /// A user's CSV file with a header line.
    case csv(CSVInput)
}

/// A user's CSV file and how to read it.
public struct CSVInput: Sendable {
    public var path: String
    public var textColumn: String
    public var labelColumn: String
    /// Names the dataset (ids, default output folder).
    public var name: String
    public var delimiter: Character
    public var encoding: SourceEncoding
    /// Label names in order; rows with other labels are dropped as unknown (nil: all seen).
    public var labels: [String]?

    /// A CSV input; see the properties.
    public init(path: String, textColumn: String, labelColumn: String, name: String, delimiter: Character = ",",
                encoding: SourceEncoding = .utf8, labels: [String]? = nil) {
        self.path = path
        self.textColumn = textColumn
        self.labelColumn = labelColumn
        self.name = name
        self.delimiter = delimiter
        self.encoding = encoding
        self.labels = labels
    }
}

/// What `prepareDataset` reads and where it writes.
public struct PrepareConfig: Sendable {
    public var input: DatasetInput
    /// Output folder (default: data/NAME).
    public var out: String?
    /// Seed of the stratified split.
    public var seed: UInt64 = 13
    /// A model whose vocabulary the manifest records as the one the data is prepared for.
    public var tokenizer: String?
    /// Replace an existing, non-empty output folder (it stays whole until the new one is complete).
    public var force = false

    /// A configuration with the default seed.
    public init(input: DatasetInput, out: String? = nil, seed: UInt64 = 13, tokenizer: String? = nil, force: Bool = false) {
        self.input = input
        self.out = out
        self.seed = seed
        self.tokenizer = tokenizer
        self.force = force
    }
}

/// What `prepareDataset` wrote: the manifest and the folder.
public struct PrepareReport: Codable, Sendable {
    public var out: String
    public var manifest: DatasetManifest

    /// One line per fact: rows, drops by reason, repairs, and per-split class counts.
    public var text: String {
        let m = manifest, d = m.dropped
        var lines = ["\(m.name): \(m.rowsRead) rows read, \(m.rowsKept) kept, \(d.total) dropped → \(out)"]
        lines.append("  dropped: empty text \(d.emptyText), empty label \(d.emptyLabel), unknown label \(d.unknownLabel), exact duplicates \(d.exactDuplicates), normalized duplicates \(d.normalizedDuplicates), conflicting labels \(d.conflictingLabels) (\(d.conflictingLabelGroups) texts)")
        lines.append("  text: mojibake repaired \(m.text.mojibakeRepaired), unrepairable (kept) \(m.text.mojibakeUnrepairable), control characters removed \(m.text.controlCharactersRemoved)")
        for split in Split.allCases {
            let counts = m.labels.map { "\($0) \(m.counts[split.rawValue]?[$0] ?? 0)" }.joined(separator: ", ")
            lines.append("  \(split.rawValue): \(m.totals[split.rawValue] ?? 0) (\(counts))")
        }
        if let v = m.versions?.last, v.version > 1 {
            let added = Split.allCases.map { "\($0.rawValue) +\(v.totals[$0.rawValue] ?? 0)" }.joined(separator: ", ")
            lines.append("  version \(v.version): \(v.rowsRead) rows read, \(v.rowsKept) added (\(added)), duplicates of earlier versions \(v.duplicatesOfEarlier), conflicts with earlier versions \(v.conflictsWithEarlier) (earlier rows kept); earlier rows keep their splits")
        }
        return lines.joined(separator: "\n")
    }
}

/// Cleans, deduplicates and splits a dataset into train/dev/test JSON lines and a manifest.
public func prepareDataset(_ config: PrepareConfig) throws -> PrepareReport {
    let tokenizer = try config.tokenizer.map { TokenizerRecord(vocabulary: try ModelBundle(path: $0, weights: .settingsOnly).file.vocabulary) }
    let name: String, loaded: LoadedSource, options: PreparationOptions
    do {
        switch config.input {
        case .csv(let csv):
            let format = CSVFormat(delimiter: csv.delimiter, hasHeader: true)
            loaded = try SourceLoader.loadDelimited(path: csv.path, format: format, encoding: csv.encoding,
                                                    textColumn: .name(csv.textColumn), labelColumn: .name(csv.labelColumn), name: csv.name)
            (name, options) = (csv.name, PreparationOptions(seed: config.seed, labels: csv.labels))
        case .builtin(let datasetName, let cache):
            let builtin = try BuiltinDataset.named(datasetName)
            loaded = try builtin.load(from: cache + "/" + builtin.name)
            (name, options) = (builtin.name, builtin.options(seed: config.seed))
        }
    } catch { throw StageError(String(describing: error)) }
    let outDir = config.out ?? "data/\(name)"
    guard !outDir.isEmpty else { throw StageError.usage("--out is empty — give an output folder") }
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: outDir, isDirectory: &isDirectory), !isDirectory.boolValue {
        throw StageError("\(outDir): is a file — --out takes a folder (it will hold train.jsonl, dev.jsonl, test.jsonl, manifest.json)")
    }
    let inputs: [String]
    switch config.input {
    case .csv(let csv): inputs = [csv.path]
    case .builtin(let datasetName, let cache): inputs = [cache + "/" + datasetName]
    }
    var prepared: PreparedDataset
    do { prepared = try DatasetPreparer.prepare(loaded.examples, name: name, source: loaded.source, options: options) } catch {
        throw StageError(file: inputs[0], error)
    }
    prepared.manifest.tokenizer = tokenizer
    guard prepared.manifest.labels.count >= 2 else {
        throw StageError("\(inputs[0]): every usable row has the label \(prepared.manifest.labels.map { "'\($0)'" }.joined()) — a classifier needs at least two labels; check --label-column")
    }
    try refuseInputsAsOutputs((Split.allCases.map { prepared.manifest.files[$0.rawValue]! } + ["manifest.json"]).map { (outDir + "/" + $0, "--out") },
                              inputs: inputs)
    let outReal = URL(fileURLWithPath: outDir).resolvingSymlinksInPath().path
    for input in inputs where URL(fileURLWithPath: input).resolvingSymlinksInPath().path.hasPrefix(outReal + "/") {
        throw StageError.usage("--out \(outDir) holds the input \(input) — replacing the folder would delete it; give another output folder")
    }
    if !config.force, let names = try? FileManager.default.contentsOfDirectory(atPath: outDir), !names.isEmpty {
        throw StageError.usage("\(outDir): already exists — pass --force to replace it (the old folder stays whole until the new one is complete), or choose another --out")
    }
    try write(prepared, to: outDir, replacing: config.force)
    return PrepareReport(out: outDir, manifest: prepared.manifest)
}

/// Writes the three splits and the manifest into a staging folder beside `outDir`, then
/// puts the whole folder in place at once (``OutputFolder``): a killed run leaves `outDir`
/// as it was — absent, or the old folder whole — never a mix of old and new files.
private func write(_ prepared: PreparedDataset, to outDir: String, replacing: Bool) throws {
    let folder: OutputFolder
    do { folder = try OutputFolder(URL(fileURLWithPath: outDir)) } catch { throw StageError(file: outDir, error) }
    let manifest: Data
    do { manifest = try prepared.manifest.jsonData() } catch { throw StageError("cannot encode the manifest (\(error))") }
    let files = Split.allCases.map { (prepared.jsonLines($0), prepared.manifest.files[$0.rawValue]!) } + [(manifest, "manifest.json")]
    do {
        for (data, name) in files { try folder.write(data, named: name) }
        try folder.commit(replacing: replacing)
    } catch {
        throw StageError(file: outDir, error)
    }
}
