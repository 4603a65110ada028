// DriftReport: what a drift check found — every statistic with its value, thresholds and
// level, the histograms behind them, the MMD test and teacher fidelity, and the overall
// level an alerting job turns into an exit code (0 ok, 1 warn, 2 drift).
//
// Format `distillery-drift-report`, version 1 (the `--json` output). The text form is the
// terminal summary; HTMLReport.swift renders the same value as a page. Left out on
// purpose: per-example scores (which inputs drifted) — the report describes populations.
import Foundation

/// One statistic's value judged against its thresholds.
public struct StatisticResult: Codable, Sendable, Equatable {
    public var statistic: DriftStatistic
    public var group: String
    public var value: Double
    public var warn: Double
    public var drift: Double
    /// "above" (large values alarm) or "below" (small values alarm: a p-value).
    public var alarms: String
    public var level: DriftLevel
    /// The numbers behind the value, e.g. "reference 0.0003, new 0.0410".
    public var detail: String

    /// The result of `statistic` at `value` under `thresholds`.
    public init(_ statistic: DriftStatistic, value: Double, thresholds: DriftThresholds, detail: String) {
        let pair = thresholds[statistic]
        self.statistic = statistic
        group = statistic.group
        self.value = value
        warn = pair.warn
        drift = pair.drift
        alarms = statistic.alarmsBelow ? "below" : "above"
        level = statistic.level(value, pair)
        self.detail = detail
    }
}

/// Two histograms over the same bins, as proportions.
public struct HistogramComparison: Codable, Sendable, Equatable {
    /// Short key, e.g. "length".
    public var name: String
    public var title: String
    public var bins: [String]
    public var reference: [Double]
    public var current: [Double]

    /// A comparison of two count (or proportion) vectors; both are normalised.
    public init(name: String, title: String, bins: [String], reference: [Double], current: [Double]) {
        precondition(bins.count == reference.count && bins.count == current.count, "histogram \(name): bins and counts differ")
        (self.name, self.title, self.bins) = (name, title, bins)
        self.reference = proportions(reference)
        self.current = proportions(current)
    }
}

/// Token statistics of one side.
public struct TokenSummary: Codable, Sendable, Equatable {
    /// Texts.
    public var lines: Int
    /// Word pieces (without [CLS]/[SEP], before truncation).
    public var pieces: Int
    /// Share of pieces that are [UNK].
    public var unknownRate: Double
    public var meanLength: Double
    /// Share of texts longer than the model's maximum length (cut before the model sees them).
    public var truncatedShare: Double

    /// A summary; see the properties.
    public init(lines: Int, pieces: Int, unknownRate: Double, meanLength: Double, truncatedShare: Double) {
        (self.lines, self.pieces, self.unknownRate, self.meanLength, self.truncatedShare) = (lines, pieces, unknownRate, meanLength, truncatedShare)
    }

    enum CodingKeys: String, CodingKey {
        case lines, pieces, unknownRate = "unk_rate", meanLength = "mean_length", truncatedShare = "truncated_share"
    }
}

/// Student–teacher fidelity on the reference sample and on the new inputs.
public struct TeacherFidelity: Codable, Sendable, Equatable {
    public var teacher: String
    public var referenceAgreement: Double
    public var currentAgreement: Double
    /// Mean KL(teacher ‖ student) at T = 1, nats.
    public var referenceMeanKL: Double
    public var currentMeanKL: Double

    /// A fidelity record; see the properties.
    public init(teacher: String, referenceAgreement: Double, currentAgreement: Double, referenceMeanKL: Double, currentMeanKL: Double) {
        (self.teacher, self.referenceAgreement, self.currentAgreement) = (teacher, referenceAgreement, currentAgreement)
        (self.referenceMeanKL, self.currentMeanKL) = (referenceMeanKL, currentMeanKL)
    }

    enum CodingKeys: String, CodingKey {
        case teacher, referenceAgreement = "reference_agreement", currentAgreement = "current_agreement"
        case referenceMeanKL = "reference_mean_kl", currentMeanKL = "current_mean_kl"
    }
}

/// The result of one drift check.
public struct DriftReport: Codable, Sendable {
    public static let formatName = "distillery-drift-report"
    public static let formatVersion = 1

    public var format = DriftReport.formatName
    public var formatVersion = DriftReport.formatVersion
    public var model: String
    public var reference: String
    public var split: String
    public var input: String
    /// The model's truncation length.
    public var maxLength: Int
    public var referenceTokens: TokenSummary
    public var inputTokens: TokenSummary
    /// Input lines skipped as blank.
    public var skippedLines: Int
    /// Reference texts run through the model (a seeded subsample of the split).
    public var referenceModelLines: Int
    public var mmd: MMDResult?
    public var fidelity: TeacherFidelity?
    public var statistics: [StatisticResult]
    /// Statistics not computed, and why.
    public var notes: [String]
    public var histograms: [HistogramComparison]
    public var thresholds: DriftThresholds
    /// The highest level of any statistic.
    public var level: DriftLevel

    enum CodingKeys: String, CodingKey {
        case format, formatVersion = "format_version", model, reference, split, input, maxLength = "max_length"
        case referenceTokens = "reference_tokens", inputTokens = "input_tokens", skippedLines = "skipped_lines"
        case referenceModelLines = "reference_model_lines", mmd, fidelity, statistics, notes, histograms, thresholds, level
    }

    /// A report; the level is the highest of `statistics`.
    public init(model: String, reference: String, split: String, input: String, maxLength: Int, referenceTokens: TokenSummary,
                inputTokens: TokenSummary, skippedLines: Int, referenceModelLines: Int, mmd: MMDResult?, fidelity: TeacherFidelity?,
                statistics: [StatisticResult], notes: [String], histograms: [HistogramComparison], thresholds: DriftThresholds) {
        (self.model, self.reference, self.split, self.input, self.maxLength) = (model, reference, split, input, maxLength)
        (self.referenceTokens, self.inputTokens, self.skippedLines, self.referenceModelLines) = (referenceTokens, inputTokens, skippedLines, referenceModelLines)
        (self.mmd, self.fidelity, self.statistics, self.notes, self.histograms, self.thresholds) = (mmd, fidelity, statistics, notes, histograms, thresholds)
        level = statistics.map(\.level).max() ?? .ok
    }

    /// 0 no drift, 1 warn, 2 drift.
    public var exitCode: Int32 { level.exitCode }

    /// The statistics at `level`.
    public func firing(_ level: DriftLevel) -> [DriftStatistic] { statistics.filter { $0.level == level }.map(\.statistic) }

    /// The terminal summary: what was compared, one line per statistic, the verdict.
    public var text: String {
        func number(_ x: Double) -> String { x == 0 || (abs(x) >= 0.001 && abs(x) < 1000) ? String(format: "%.4f", x) : String(format: "%.3e", x) }
        var lines = ["\(input) (\(inputTokens.lines) texts) vs \(reference) \(split) (\(referenceTokens.lines) texts; \(referenceModelLines) through the model) — \(model), max length \(maxLength)"]
        let width = DriftStatistic.allCases.map(\.rawValue.count).max() ?? 0
        var group = ""
        for s in statistics {
            if s.group != group { group = s.group; lines.append("\(group) drift") }
            let name = s.statistic.rawValue.padding(toLength: width, withPad: " ", startingAt: 0)
            let mark = s.level == .ok ? "ok   " : s.level == .warn ? "WARN " : "DRIFT"
            let bounds = "\(s.alarms == "below" ? "<" : "≥") \(number(s.warn)) warn, \(s.alarms == "below" ? "<" : "≥") \(number(s.drift)) drift"
            lines.append("  \(mark) \(name) \(number(s.value).padding(toLength: 10, withPad: " ", startingAt: 0)) (\(bounds); \(s.detail))")
        }
        for note in notes { lines.append("note: \(note)") }
        let warned = firing(.warn).map(\.rawValue), drifted = firing(.drift).map(\.rawValue)
        switch level {
        case .ok: lines.append("verdict: no drift (exit 0)")
        case .warn: lines.append("verdict: WARN — \(warned.joined(separator: ", ")) (exit 1)")
        case .drift: lines.append("verdict: DRIFT — \(drifted.joined(separator: ", "))\(warned.isEmpty ? "" : "; warn: " + warned.joined(separator: ", ")) (exit 2)")
        }
        return lines.joined(separator: "\n")
    }
}
