// Preparation: raw labelled texts in, a cleaned, deduplicated, stratified split out.
//
// The steps, each counted in the manifest: clean every text (TextNormalizer); drop rows
// with empty text, an empty label or a label outside the dataset's label set; group the
// rest by duplicate key (case-folded, whitespace-collapsed, NFC) — a group carrying more
// than one label is a conflict and every copy is dropped, otherwise the first row is kept
// and the others count as exact duplicates (same cleaned text) or normalized duplicates
// (same only after case folding). Because every key survives at most once, no text can
// land in two splits. Then a stratified 80/10/10 split: each class is shuffled with a
// seeded SplitMix64 and cut into test, dev and train, so every class appears in every
// split; finally each split is shuffled. Same input + same seed → byte-identical files.
// The RNG and the shuffle are implemented here (not the standard library's), so the
// split does not change with the Swift version. A dataset with no usable row is an error,
// not three empty files.
import DistilleryJSON
import Foundation

/// One labelled text as read from a source, before cleaning.
public struct RawExample: Sendable, Equatable {
    /// Stable identifier naming where the row came from (`sms-spam:42`, `bbc-news:tech/001`).
    public var id: String
    public var text: String
    public var label: String

    public init(id: String, text: String, label: String) {
        self.id = id
        self.text = text
        self.label = label
    }
}

/// One cleaned example as written to a split file.
public struct Example: Sendable, Equatable {
    public var id: String
    public var text: String
    /// The label's name (never an index).
    public var label: String

    /// An example as written to a split file.
    public init(id: String, text: String, label: String) {
        self.id = id
        self.text = text
        self.label = label
    }
}

/// The three splits, in file order.
public enum Split: String, Sendable, CaseIterable, Codable {
    case train, dev, test
}

/// How a dataset is prepared.
public struct PreparationOptions: Sendable {
    /// Seed of the split RNG.
    public var seed: UInt64
    /// The label names in order, or nil to take the distinct labels found, sorted.
    /// Rows with a label outside this list are dropped as unknown.
    public var labels: [String]?
    /// Raw label → label name (applied before the `labels` check); unmapped labels pass through.
    public var labelNames: [String: String]
    /// Fractions of each class that go to train, dev and test.
    public var fractions: SplitFractions

    public init(seed: UInt64 = 13, labels: [String]? = nil, labelNames: [String: String] = [:],
                fractions: SplitFractions = .standard) {
        self.seed = seed
        self.labels = labels
        self.labelNames = labelNames
        self.fractions = fractions
    }
}

/// Fractions of each class per split.
public struct SplitFractions: Sendable, Codable, Equatable {
    public var train: Double
    public var dev: Double
    public var test: Double
    /// 80/10/10.
    public static let standard = SplitFractions(train: 0.8, dev: 0.1, test: 0.1)
}

/// A dataset that cannot be prepared as asked.
public struct PreparationError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// The prepared splits and the manifest describing them.
public struct PreparedDataset: Sendable {
    public var splits: [Split: [Example]]
    public var manifest: DatasetManifest

    /// Splits and their manifest.
    public init(splits: [Split: [Example]], manifest: DatasetManifest) {
        self.splits = splits
        self.manifest = manifest
    }

    /// The JSON Lines file of `split`: one `{"id","text","label"}` object per line.
    public func jsonLines(_ split: Split) -> Data {
        var out = ""
        for e in splits[split] ?? [] {
            out += JSONLine().adding("id", e.id).adding("text", e.text).adding("label", e.label).text + "\n"
        }
        return Data(out.utf8)
    }
}

/// Rows that survived cleaning and deduplication, and the counts of what did not.
public struct CleanedRows: Sendable {
    /// One example per distinct duplicate key, in first-appearance order.
    public var kept: [Example]
    public var dropped: DropCounts
    public var repairs: TextRepairCounts
    /// The first few conflicting texts (all are counted in `dropped`).
    public var conflicts: [ConflictReport]
}

/// Cleans, deduplicates and splits labelled texts.
public enum DatasetPreparer {
    /// Prepares `raw` from `source` into train/dev/test and a manifest.
    public static func prepare(_ raw: [RawExample], name: String, source: DatasetSource,
                               options: PreparationOptions = PreparationOptions()) throws -> PreparedDataset {
        let cleaned = clean(raw, options: options)
        let (kept, dropped, repairs, conflicts) = (cleaned.kept, cleaned.dropped, cleaned.repairs, cleaned.conflicts)
        guard !kept.isEmpty else {
            throw PreparationError(description: "\(name): none of the \(raw.count) rows is usable (empty text \(dropped.emptyText), empty label \(dropped.emptyLabel), unknown label \(dropped.unknownLabel), conflicting labels \(dropped.conflictingLabels)) — check the text and label columns\(options.labels == nil ? "" : " and the label list") and the file's encoding")
        }
        let labels = options.labels ?? Array(Set(kept.map(\.label))).sorted()
        var rng = SplitMix64(seed: options.seed)
        let splits = try stratifiedSplit(kept, labels: labels, fractions: options.fractions, rng: &rng)

        var counts: [String: [String: Int]] = [:]
        for split in Split.allCases {
            var perLabel = Dictionary(uniqueKeysWithValues: labels.map { ($0, 0) })
            for e in splits[split]! { perLabel[e.label, default: 0] += 1 }
            counts[split.rawValue] = perLabel
        }
        let manifest = DatasetManifest(
            name: name, source: source, seed: options.seed, fractions: options.fractions, labels: labels,
            rowsRead: raw.count, rowsKept: kept.count, dropped: dropped, text: repairs, conflicts: conflicts,
            counts: counts, totals: Dictionary(uniqueKeysWithValues: Split.allCases.map { ($0.rawValue, splits[$0]!.count) }))
        return PreparedDataset(splits: splits, manifest: manifest)
    }

    /// The rows of `raw` that survive cleaning and deduplication, in first-appearance order,
    /// with what was dropped and repaired (the first steps of ``prepare(_:name:source:options:)``).
    public static func clean(_ raw: [RawExample], options: PreparationOptions) -> CleanedRows {
        var dropped = DropCounts()
        var repairs = TextRepairCounts()
        var candidates: [(example: Example, key: String)] = []
        candidates.reserveCapacity(raw.count)
        for row in raw {
            let cleaned = TextNormalizer.clean(row.text)
            switch cleaned.mojibake {
            case .clean: break
            case .repaired: repairs.mojibakeRepaired += 1
            case .unrepairable: repairs.mojibakeUnrepairable += 1
            }
            if cleaned.removedControlCharacters { repairs.controlCharactersRemoved += 1 }
            guard !cleaned.text.isEmpty else { dropped.emptyText += 1; continue }
            let rawLabel = row.label.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !rawLabel.isEmpty else { dropped.emptyLabel += 1; continue }
            let label = options.labelNames[rawLabel] ?? rawLabel
            if let known = options.labels, !known.contains(label) {
                dropped.unknownLabel += 1
                dropped.unknownLabelValues[label, default: 0] += 1
                continue
            }
            candidates.append((Example(id: row.id, text: cleaned.text, label: label), TextNormalizer.duplicateKey(cleaned.text)))
        }

        // Group by duplicate key, keeping first-appearance order.
        var groups: [String: [Int]] = [:]
        var keyOrder: [String] = []
        for (index, candidate) in candidates.enumerated() {
            if groups[candidate.key] == nil { keyOrder.append(candidate.key) }
            groups[candidate.key, default: []].append(index)
        }
        var kept: [Example] = []
        var conflicts: [ConflictReport] = []
        for key in keyOrder {
            let members = groups[key]!
            let first = candidates[members[0]].example
            var labelCounts: [String: Int] = [:]
            for m in members { labelCounts[candidates[m].example.label, default: 0] += 1 }
            if labelCounts.count > 1 {
                dropped.conflictingLabels += members.count
                dropped.conflictingLabelGroups += 1
                if conflicts.count < DatasetManifest.maximumConflictsListed {
                    conflicts.append(ConflictReport(text: first.text, labels: labelCounts,
                                                    ids: members.prefix(5).map { candidates[$0].example.id }))
                }
                continue
            }
            kept.append(first)
            for m in members.dropFirst() {
                if candidates[m].example.text == first.text { dropped.exactDuplicates += 1 } else { dropped.normalizedDuplicates += 1 }
            }
        }
        return CleanedRows(kept: kept, dropped: dropped, repairs: repairs, conflicts: conflicts)
    }

    /// Splits `examples` per class by `fractions`; every class gets at least one example in
    /// each split, so a class needs at least three.
    public static func stratifiedSplit(_ examples: [Example], labels: [String], fractions: SplitFractions,
                                       rng: inout SplitMix64) throws -> [Split: [Example]] {
        var byLabel: [String: [Example]] = [:]
        for e in examples { byLabel[e.label, default: []].append(e) }
        let minimum = Split.allCases.count
        for label in labels {
            let n = byLabel[label]?.count ?? 0
            guard n >= minimum else {
                throw PreparationError(description: "label '\(label)' has \(n) example\(n == 1 ? "" : "s") after cleaning and deduplication — a stratified train/dev/test split needs at least \(minimum) per label; add examples of '\(label)' or remove the label")
            }
        }
        var splits: [Split: [Example]] = [.train: [], .dev: [], .test: []]
        for label in labels {
            var members = byLabel[label]!
            shuffle(&members, rng: &rng)
            let n = members.count
            let test = max(1, Int((Double(n) * fractions.test).rounded()))
            let dev = max(1, Int((Double(n) * fractions.dev).rounded()))
            splits[.test]! += members[0..<test]
            splits[.dev]! += members[test..<(test + dev)]
            splits[.train]! += members[(test + dev)...]
        }
        for split in Split.allCases { shuffle(&splits[split]!, rng: &rng) }
        return splits
    }

    /// Fisher–Yates shuffle driven by `rng` (independent of the standard library's).
    public static func shuffle<T>(_ items: inout [T], rng: inout SplitMix64) {
        guard items.count > 1 else { return }
        for i in stride(from: items.count - 1, to: 0, by: -1) {
            let j = Int(rng.next(below: UInt64(i + 1)))
            if i != j { items.swapAt(i, j) }
        }
    }
}

/// SplitMix64 (Steele, Lea & Flood 2014): a tiny, fast, well-mixed 64-bit generator whose
/// whole state is one integer, so a seed fully determines every split.
public struct SplitMix64: Sendable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform integer in 0..<bound, by rejection (no modulo bias).
    public mutating func next(below bound: UInt64) -> UInt64 {
        precondition(bound > 0, "SplitMix64.next(below:) needs a positive bound")
        let threshold = (0 &- bound) % bound
        while true {
            let r = next()
            if r >= threshold { return r % bound }
        }
    }
}
