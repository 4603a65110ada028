// Thresholds: which statistics a drift check computes, the warn and drift level of each,
// why the defaults are what they are, and how a user overrides them (a JSON file or
// `name=warn:drift` flags), refusing values outside each statistic's range.
//
// Defaults and their reasoning:
// - PSI (token lengths, word pieces, labels, confidences): 0.1 warn / 0.25 drift, the
//   rule of thumb of credit scoring (Siddiqi 2006: < 0.1 no significant change, 0.1–0.25
//   moderate, > 0.25 significant), which most drift tools adopt.
// - Jensen–Shannon of word pieces (bits): 0.02 / 0.05. For small shifts JS ≈ χ²/(8 ln 2)
//   bits while PSI ≈ χ², so these match PSI 0.1 / 0.25 (0.018 / 0.045, rounded up).
// - [UNK] rate, as the increase over the reference's rate: 0.01 / 0.05 — one word piece in
//   a hundred that the model cannot read is a visible loss; one in twenty is a different
//   script or alphabet.
// - Unseen word-piece rate (share of the new pieces the reference never contains): 0.05 /
//   0.15. The held-out test and dev splits of sms-spam measure 0.032 against its training
//   split (benchmarks/results/2026-12-02-drift.md): rare words alone reach that, so warn
//   sits ~1.5× above it; a smaller or more repetitive reference needs a higher level.
// - MMD permutation p-value of the pooled embeddings: warn below 0.05, drift below 0.01 —
//   the usual significance levels; with no drift, p is uniform, so the warn level fires on
//   one run in twenty by construction.
// - Student–teacher agreement drop (reference agreement minus new agreement): 0.02 /
//   0.05 — on 1000 inputs at 98% agreement the binomial standard deviation is 0.0044, so a
//   2-point drop is beyond noise and a 5-point one is a student that no longer follows.
// Left out on purpose: per-label thresholds and thresholds on the raw MMD² value (its
// scale depends on the embedding dimension and the bandwidth).
import DistilleryJSON
import Foundation

/// How far a statistic says the new data has moved.
public enum DriftLevel: String, Codable, Sendable, Comparable, CaseIterable {
    case ok, warn, drift

    /// The exit code an alerting job reads: 0 ok, 1 warn, 2 drift.
    public var exitCode: Int32 { self == .ok ? 0 : self == .warn ? 1 : 2 }

    public static func < (a: DriftLevel, b: DriftLevel) -> Bool { a.exitCode < b.exitCode }
}

/// The statistics a drift check can gate on.
public enum DriftStatistic: String, Codable, Sendable, CaseIterable {
    case lengthPSI = "length_psi"
    case unknownRateIncrease = "unk_rate_increase"
    case unseenPieceRate = "unseen_piece_rate"
    case pieceJS = "piece_js"
    case piecePSI = "piece_psi"
    case embeddingMMDPValue = "embedding_mmd_p"
    case labelPSI = "label_psi"
    case confidencePSI = "confidence_psi"
    case teacherAgreementDrop = "teacher_agreement_drop"

    /// Which kind of drift it measures: input, representation, prediction or teacher.
    public var group: String {
        switch self {
        case .lengthPSI, .unknownRateIncrease, .unseenPieceRate, .pieceJS, .piecePSI: return "input"
        case .embeddingMMDPValue: return "representation"
        case .labelPSI, .confidencePSI: return "prediction"
        case .teacherAgreementDrop: return "teacher"
        }
    }

    /// True when small values are the alarming ones (a p-value).
    public var alarmsBelow: Bool { self == .embeddingMMDPValue }

    /// What the value is, for reports.
    public var summary: String {
        switch self {
        case .lengthPSI: return "PSI of token lengths over the reference's length deciles"
        case .unknownRateIncrease: return "[UNK] share of word pieces, new minus reference"
        case .unseenPieceRate: return "share of new word pieces that never occur in the reference"
        case .pieceJS: return "Jensen–Shannon divergence (bits) of word-piece frequencies (top reference pieces + other)"
        case .piecePSI: return "PSI of word-piece frequencies (top reference pieces + other)"
        case .embeddingMMDPValue: return "permutation p-value of the RBF-kernel MMD² between pooled embeddings"
        case .labelPSI: return "PSI of the predicted-label distribution"
        case .confidencePSI: return "PSI of the top-class probability over 10 equal bins"
        case .teacherAgreementDrop: return "student–teacher top-1 agreement, reference minus new"
        }
    }

    /// The largest meaningful threshold (nil: unbounded, as PSI is).
    var upperBound: Double? {
        switch self {
        case .lengthPSI, .piecePSI, .labelPSI, .confidencePSI: return nil
        case .unknownRateIncrease, .unseenPieceRate, .pieceJS, .teacherAgreementDrop: return 1
        case .embeddingMMDPValue: return 1
        }
    }

    /// The default warn and drift levels (see the file header for the reasoning).
    public var defaultLevels: ThresholdPair {
        switch self {
        case .lengthPSI, .piecePSI, .labelPSI, .confidencePSI: return ThresholdPair(warn: 0.1, drift: 0.25)
        case .pieceJS: return ThresholdPair(warn: 0.02, drift: 0.05)
        case .unknownRateIncrease: return ThresholdPair(warn: 0.01, drift: 0.05)
        case .unseenPieceRate: return ThresholdPair(warn: 0.05, drift: 0.15)
        case .embeddingMMDPValue: return ThresholdPair(warn: 0.05, drift: 0.01)
        case .teacherAgreementDrop: return ThresholdPair(warn: 0.02, drift: 0.05)
        }
    }

    /// The level of `value` under `levels`.
    public func level(_ value: Double, _ levels: ThresholdPair) -> DriftLevel {
        if alarmsBelow { return value < levels.drift ? .drift : value < levels.warn ? .warn : .ok }
        return value >= levels.drift ? .drift : value >= levels.warn ? .warn : .ok
    }
}

/// A warn level and a drift level.
public struct ThresholdPair: Codable, Sendable, Equatable {
    public var warn: Double
    public var drift: Double

    /// A pair; see the properties.
    public init(warn: Double, drift: Double) { (self.warn, self.drift) = (warn, drift) }
}

/// A threshold that cannot be used: names the statistic (and the source) and the valid range.
public struct ThresholdError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// The warn and drift levels of every statistic.
public struct DriftThresholds: Codable, Sendable, Equatable {
    /// Levels by statistic; statistics missing here use their defaults.
    public private(set) var levels: [DriftStatistic: ThresholdPair]

    /// The defaults of every statistic.
    public init() { levels = Dictionary(uniqueKeysWithValues: DriftStatistic.allCases.map { ($0, $0.defaultLevels) }) }

    /// The levels of `statistic`.
    public subscript(_ statistic: DriftStatistic) -> ThresholdPair { levels[statistic] ?? statistic.defaultLevels }

    /// Sets the levels of `statistic` after checking them; `source` names where they came
    /// from in the error (a flag or a file).
    public mutating func set(_ statistic: DriftStatistic, _ pair: ThresholdPair, source: String) throws {
        let name = statistic.rawValue
        guard pair.warn.isFinite, pair.drift.isFinite else {
            throw ThresholdError(description: "\(source): \(name) thresholds must be finite numbers (got warn \(pair.warn), drift \(pair.drift))")
        }
        if statistic.alarmsBelow {
            guard pair.drift > 0, pair.drift <= pair.warn, pair.warn < 1 else {
                throw ThresholdError(description: "\(source): \(name) is a p-value: need 0 < drift ≤ warn < 1 (got warn \(pair.warn), drift \(pair.drift)); the default is warn \(statistic.defaultLevels.warn), drift \(statistic.defaultLevels.drift)")
            }
        } else {
            let top = statistic.upperBound
            guard pair.warn > 0, pair.warn <= pair.drift, top.map({ pair.drift <= $0 }) ?? true else {
                let range = top.map { "0 < warn ≤ drift ≤ \($0 == 1 ? "1" : String($0))" } ?? "0 < warn ≤ drift"
                throw ThresholdError(description: "\(source): \(name) needs \(range) (got warn \(pair.warn), drift \(pair.drift)); the default is warn \(statistic.defaultLevels.warn), drift \(statistic.defaultLevels.drift)")
            }
        }
        levels[statistic] = pair
    }

    /// The statistic named `name`, or an error listing the names.
    public static func statistic(named name: String, source: String) throws -> DriftStatistic {
        guard let s = DriftStatistic(rawValue: name) else {
            throw ThresholdError(description: "\(source): unknown statistic '\(name)' — one of: \(DriftStatistic.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return s
    }

    /// Applies one `name=warn:drift` setting (the `--threshold` flag's value).
    public mutating func apply(flag text: String) throws {
        let source = "--threshold \(text)"
        let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
        let values = parts.count == 2 ? parts[1].split(separator: ":", omittingEmptySubsequences: false).map { Double($0) } : []
        guard parts.count == 2, values.count == 2, let warn = values[0], let drift = values[1] else {
            throw ThresholdError(description: "\(source): expected NAME=WARN:DRIFT, e.g. length_psi=0.1:0.25")
        }
        try set(try Self.statistic(named: parts[0], source: source), ThresholdPair(warn: warn, drift: drift), source: source)
    }

    /// Applies a thresholds file: a JSON object of `{"name": {"warn": w, "drift": d}}`;
    /// unknown names and keys, missing values and non-numbers are errors naming the key.
    public mutating func apply(file data: Data, source: String) throws {
        let root: JSONValue
        do { root = try JSONValue.parse(data) } catch {
            throw ThresholdError(description: "\(source): not valid JSON (\(error)) — write {\"length_psi\": {\"warn\": 0.1, \"drift\": 0.25}, …}")
        }
        guard let object = root.objectValue else {
            throw ThresholdError(description: "\(source): expected a JSON object of statistic → {\"warn\", \"drift\"}, got \(root.kindName)")
        }
        for (name, value) in object.sorted(by: { $0.key < $1.key }) {
            let statistic = try Self.statistic(named: name, source: source)
            guard let fields = value.objectValue else {
                throw ThresholdError(description: "\(source): \(name) must be an object {\"warn\": …, \"drift\": …}, got \(value.kindName)")
            }
            if let extra = fields.keys.sorted().first(where: { $0 != "warn" && $0 != "drift" }) {
                throw ThresholdError(description: "\(source): \(name).\(extra) is not a threshold — only warn and drift")
            }
            guard let warn = fields["warn"]?.numberValue, let drift = fields["drift"]?.numberValue else {
                throw ThresholdError(description: "\(source): \(name) needs numbers warn and drift")
            }
            try set(statistic, ThresholdPair(warn: warn, drift: drift), source: source)
        }
    }

    enum CodingKeys: CodingKey {}

    /// Encodes as `{"name": {"warn", "drift"}}` for every statistic.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(Dictionary(uniqueKeysWithValues: DriftStatistic.allCases.map { ($0.rawValue, self[$0]) }))
    }

    /// Decodes what `encode` writes (checked as a file would be).
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        let raw = try c.decode([String: ThresholdPair].self)
        self.init()
        for (name, pair) in raw { try set(try Self.statistic(named: name, source: "thresholds"), pair, source: "thresholds") }
    }
}
