// Appending: a new version of a prepared dataset — the old rows exactly where they were,
// new rows cleaned, deduplicated and split by the same rule after them.
//
// The retraining loop of a deployed model needs a dataset that grows without moving rows
// between splits: a row that was in test must never become training data, or the "old test
// split" stops measuring forgetting. So every old row keeps its split and its position
// (each split file of the new version starts with the old file's bytes), and only the new
// rows are split: cleaned and grouped by DatasetPreparer.clean, then dropped when an earlier
// version holds the same duplicate key (same label: a duplicate; another label: a conflict,
// the earlier row stays), then cut per class into train/dev/test by the dataset's fractions
// with a SplitMix64 seeded from the dataset seed and the version number, as
// `stratifiedSplit` does — except that a class with fewer than three new rows may leave a
// split empty (a small batch of new data is normal; the minimum of one per split applies to
// a whole dataset, which version 1 already satisfies).
// Left out on purpose: new labels (a label outside the dataset's is an error: the heads of
// its models have a fixed class count) and removing rows.
import Foundation

/// A row of the version being appended whose label the dataset does not have.
public struct AppendError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// Appends new labelled texts to a prepared dataset as a new version.
public enum DatasetAppender {
    /// The next version of `base` (its manifest and its split files as read) with `raw` added.
    ///
    /// - Parameters:
    ///   - base: the prepared dataset the rows are appended to.
    ///   - raw: the new rows (ids should be unique against the old ones; `kd` uses `NAME@vN:line`).
    ///   - source: where `raw` came from (recorded in the version).
    ///   - baseManifestSHA256: sha256 of the base's manifest.json bytes.
    /// - Throws: ``AppendError`` for a label outside the dataset's labels or no new usable row.
    public static func append(to base: PreparedDataset, raw: [RawExample], source: DatasetSource,
                              baseManifestSHA256: String) throws -> PreparedDataset {
        let old = base.manifest
        if let bad = raw.first(where: { row in
            let label = row.label.trimmingCharacters(in: .whitespacesAndNewlines)
            return !label.isEmpty && !old.labels.contains(label)
        }) {
            let label = bad.label.trimmingCharacters(in: .whitespacesAndNewlines)
            throw AppendError(description: "row \(bad.id): label '\(label)' is not one of the dataset's labels (\(old.labels.joined(separator: ", "))) — an appended version keeps the label set; map or drop those rows, or prepare a new dataset")
        }
        let cleaned = DatasetPreparer.clean(raw, options: PreparationOptions(seed: old.seed, labels: old.labels))
        var dropped = cleaned.dropped

        // Old rows by duplicate key: a new row with an old key never enters.
        var earlier: [String: (text: String, label: String)] = [:]
        for split in Split.allCases {
            for e in base.splits[split] ?? [] { earlier[TextNormalizer.duplicateKey(e.text)] = (e.text, e.label) }
        }
        var fresh: [Example] = []
        var duplicates = 0, conflicts = 0
        for e in cleaned.kept {
            guard let match = earlier[TextNormalizer.duplicateKey(e.text)] else { fresh.append(e); continue }
            if match.label != e.label {
                conflicts += 1
                dropped.conflictingLabels += 1
                dropped.conflictingLabelGroups += 1
            } else {
                duplicates += 1
                if match.text == e.text { dropped.exactDuplicates += 1 } else { dropped.normalizedDuplicates += 1 }
            }
        }
        guard !fresh.isEmpty else {
            throw AppendError(description: "none of the \(raw.count) rows is new (duplicates of earlier versions \(duplicates), conflicts with earlier versions \(conflicts), empty text \(dropped.emptyText), empty label \(dropped.emptyLabel), duplicates within the file \(cleaned.dropped.exactDuplicates + cleaned.dropped.normalizedDuplicates)) — nothing to append; check the text and label columns")
        }

        let previous = old.versions ?? [firstVersion(of: old)]
        let number = (previous.last?.version ?? 1) + 1
        let seed = versionSeed(old.seed, version: number)
        var rng = SplitMix64(seed: seed)
        let added = split(fresh, labels: old.labels, fractions: old.fractions, rng: &rng)

        var splits = base.splits
        for s in Split.allCases { splits[s, default: []] += added[s]! }
        var manifest = old
        manifest.rowsRead += raw.count
        manifest.rowsKept += fresh.count
        manifest.dropped = sum(old.dropped, dropped)
        manifest.text.mojibakeRepaired += cleaned.repairs.mojibakeRepaired
        manifest.text.mojibakeUnrepairable += cleaned.repairs.mojibakeUnrepairable
        manifest.text.controlCharactersRemoved += cleaned.repairs.controlCharactersRemoved
        manifest.conflicts = Array((old.conflicts + cleaned.conflicts).prefix(DatasetManifest.maximumConflictsListed))
        for s in Split.allCases {
            for e in added[s]! { manifest.counts[s.rawValue, default: [:]][e.label, default: 0] += 1 }
            manifest.totals[s.rawValue, default: 0] += added[s]!.count
        }
        manifest.versions = previous + [DatasetVersion(
            version: number, source: source, seed: seed, rowsRead: raw.count, rowsKept: fresh.count, dropped: dropped,
            duplicatesOfEarlier: duplicates, conflictsWithEarlier: conflicts,
            totals: Dictionary(uniqueKeysWithValues: Split.allCases.map { ($0.rawValue, added[$0]!.count) }),
            previousManifestSHA256: baseManifestSHA256)]
        return PreparedDataset(splits: splits, manifest: manifest)
    }

    /// The split seed of version `version` (≥ 2): the dataset seed and the version number
    /// mixed through one SplitMix64 step, so versions never share a shuffle.
    public static func versionSeed(_ seed: UInt64, version: Int) -> UInt64 {
        var rng = SplitMix64(seed: seed ^ (UInt64(version) &* 0x9E37_79B9_7F4A_7C15))
        return rng.next()
    }

    /// Per class: shuffle, cut test and dev by `fractions` (rounded, possibly zero), the
    /// rest to train; then shuffle each split's new rows.
    static func split(_ examples: [Example], labels: [String], fractions: SplitFractions,
                      rng: inout SplitMix64) -> [Split: [Example]] {
        var byLabel: [String: [Example]] = [:]
        for e in examples { byLabel[e.label, default: []].append(e) }
        var out: [Split: [Example]] = [.train: [], .dev: [], .test: []]
        for label in labels {
            guard var members = byLabel[label] else { continue }
            DatasetPreparer.shuffle(&members, rng: &rng)
            let n = members.count
            let test = min(n, Int((Double(n) * fractions.test).rounded()))
            let dev = min(n - test, Int((Double(n) * fractions.dev).rounded()))
            out[.test]! += members[0..<test]
            out[.dev]! += members[test..<(test + dev)]
            out[.train]! += members[(test + dev)...]
        }
        for s in Split.allCases { DatasetPreparer.shuffle(&out[s]!, rng: &rng) }
        return out
    }

    /// The version-1 record of a dataset that has never been appended to.
    static func firstVersion(of manifest: DatasetManifest) -> DatasetVersion {
        DatasetVersion(version: 1, source: manifest.source, seed: manifest.seed, rowsRead: manifest.rowsRead,
                       rowsKept: manifest.rowsKept, dropped: manifest.dropped, duplicatesOfEarlier: 0, conflictsWithEarlier: 0,
                       totals: manifest.totals, previousManifestSHA256: nil)
    }

    static func sum(_ a: DropCounts, _ b: DropCounts) -> DropCounts {
        var s = a
        s.emptyText += b.emptyText
        s.emptyLabel += b.emptyLabel
        s.unknownLabel += b.unknownLabel
        for (k, v) in b.unknownLabelValues { s.unknownLabelValues[k, default: 0] += v }
        s.exactDuplicates += b.exactDuplicates
        s.normalizedDuplicates += b.normalizedDuplicates
        s.conflictingLabels += b.conflictingLabels
        s.conflictingLabelGroups += b.conflictingLabelGroups
        return s
    }
}
