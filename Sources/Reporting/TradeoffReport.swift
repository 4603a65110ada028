// TradeoffReport: what a variant benchmark measured — for every model variant (teacher,
// students, pruned, quantized) its size, speed, memory and scores, with the machine it ran
// on — as one Codable value with a file format of its own (`distillery-tradeoff-report`,
// version 1), read back strictly and written atomically.
//
// The values are stored as measured; what follows from them (the teacher's row, % of the
// teacher's macro-F1, speed-ups, the Pareto front) is computed when a report is rendered,
// so a report file never disagrees with itself. Keys are snake_case like every Distillery
// JSON file; a file of another format or version, a missing or mistyped key, a duplicate
// variant name or a non-finite number is refused naming the key. Left out on purpose: any
// model code — this module only reads and renders numbers (DistilleryStages measures them).
import DistilleryJSON
import Foundation

/// The format name every trade-off report file carries.
public let tradeoffReportFormat = "distillery-tradeoff-report"
/// The newest report version this build reads and the one it writes.
public let tradeoffReportVersion = 1

/// One model variant to measure: a name for tables and plots, its file and how it was made.
public struct VariantSpec: Codable, Sendable, Equatable {
    /// Short unique name ("teacher", "l3", "l3-int8").
    public var name: String
    /// The Distillery model file.
    public var path: String
    /// How it was made: teacher, student, pruned, quantized, …
    public var kind: String
    /// The variant it was made from, when known.
    public var parent: String?
    /// A remark on how it was made ("int8 dynamic, block 32").
    public var note: String?

    /// A variant; see the properties.
    public init(name: String, path: String, kind: String, parent: String? = nil, note: String? = nil) {
        (self.name, self.path, self.kind, self.parent, self.note) = (name, path, kind, parent, note)
    }
}

/// Forward-pass latency at one batch size.
public struct LatencyStats: Codable, Sendable, Equatable {
    /// Sequences per forward pass.
    public var batch: Int
    public var medianMs: Double
    public var p90Ms: Double
    public var p99Ms: Double
    /// `batch` over the median time.
    public var sequencesPerSecond: Double

    enum CodingKeys: String, CodingKey {
        case batch, medianMs = "median_ms", p90Ms = "p90_ms", p99Ms = "p99_ms", sequencesPerSecond = "sequences_per_second"
    }

    /// Latency figures; see the properties.
    public init(batch: Int, medianMs: Double, p90Ms: Double, p99Ms: Double, sequencesPerSecond: Double) {
        (self.batch, self.medianMs, self.p90Ms, self.p99Ms, self.sequencesPerSecond) = (batch, medianMs, p90Ms, p99Ms, sequencesPerSecond)
    }
}

/// Everything measured about one variant.
public struct VariantMeasurement: Codable, Sendable, Equatable {
    public var spec: VariantSpec
    /// Parameters stored in the file (quantized ones counted as weights, not bytes).
    public var parameters: Int
    /// Size of the model file in bytes.
    public var fileBytes: Int
    /// Median time to load the file and build the encoder (file in the page cache).
    public var loadMs: Double
    /// Peak resident memory of a fresh process that loaded the model and ran the
    /// throughput batch (nil when it was not measured).
    public var peakMemoryBytes: Int?
    /// Batch-1 latency.
    public var latency: LatencyStats
    /// Latency at the throughput batch.
    public var throughput: LatencyStats
    public var accuracy: Double
    public var macroF1: Double
    /// Top-1 agreement with the teacher (nil for the teacher itself or without one).
    public var agreement: Double?
    /// Mean KL(teacher ‖ variant) at T = 1 in nats (nil for the teacher itself or without one).
    public var meanKL: Double?
    /// Examples scored.
    public var examples: Int

    enum CodingKeys: String, CodingKey {
        case spec, parameters, fileBytes = "file_bytes", loadMs = "load_ms", peakMemoryBytes = "peak_memory_bytes", latency, throughput
        case accuracy, macroF1 = "macro_f1", agreement, meanKL = "mean_kl", examples
    }

    /// A measurement; see the properties.
    public init(spec: VariantSpec, parameters: Int, fileBytes: Int, loadMs: Double, peakMemoryBytes: Int?, latency: LatencyStats,
                throughput: LatencyStats, accuracy: Double, macroF1: Double, agreement: Double?, meanKL: Double?, examples: Int) {
        self.spec = spec
        (self.parameters, self.fileBytes, self.loadMs, self.peakMemoryBytes) = (parameters, fileBytes, loadMs, peakMemoryBytes)
        (self.latency, self.throughput) = (latency, throughput)
        (self.accuracy, self.macroF1, self.agreement, self.meanKL, self.examples) = (accuracy, macroF1, agreement, meanKL, examples)
    }

    /// The file size in MB (10^6 bytes).
    public var fileMB: Double { Double(fileBytes) / 1e6 }
}

/// The machine a report was measured on.
public struct MachineInfo: Codable, Sendable, Equatable {
    /// `model name` of /proc/cpuinfo.
    public var cpuModel: String
    /// Logical CPUs this process could use.
    public var cores: Int
    /// Compute threads the measurement used.
    public var threads: Int
    /// Which kernel build ran (AVX-512, AVX2+FMA, portable; forced or not).
    public var kernelPath: String
    /// "kd 0.6.0 (commit …)".
    public var kdVersion: String
    /// Operating system and kernel release.
    public var os: String

    enum CodingKeys: String, CodingKey {
        case cpuModel = "cpu_model", cores, threads, kernelPath = "kernel_path", kdVersion = "kd_version", os
    }

    /// Machine facts; see the properties.
    public init(cpuModel: String, cores: Int, threads: Int, kernelPath: String, kdVersion: String, os: String) {
        (self.cpuModel, self.cores, self.threads, self.kernelPath, self.kdVersion, self.os) = (cpuModel, cores, threads, kernelPath, kdVersion, os)
    }
}

/// A trade-off report: every variant measured on one machine, one dataset split.
public struct TradeoffReport: Codable, Sendable, Equatable {
    /// Always `tradeoffReportFormat`.
    public var format = tradeoffReportFormat
    /// Always `tradeoffReportVersion` when written by this build.
    public var version = tradeoffReportVersion
    /// When the measurement finished (ISO 8601, UTC).
    public var created: String
    /// The hash of the recipe whose run this is (nil outside a recipe).
    public var recipeHash: String?
    /// The run folder's id (nil outside a recipe).
    public var runID: String?
    /// The prepared dataset scored.
    public var dataset: String
    /// Its split ("test").
    public var split: String
    /// Tokens per sequence in the latency runs (every position real).
    public var sequenceLength: Int
    public var machine: MachineInfo
    /// The name of the variant agreement, KL and the relative columns are measured against.
    public var teacher: String?
    public var variants: [VariantMeasurement]

    enum CodingKeys: String, CodingKey {
        case format, version, created, recipeHash = "recipe_hash", runID = "run_id", dataset, split, sequenceLength = "sequence_length"
        case machine, teacher, variants
    }

    /// A report; `format` and `version` are this build's.
    public init(created: String, recipeHash: String? = nil, runID: String? = nil, dataset: String, split: String, sequenceLength: Int,
                machine: MachineInfo, teacher: String?, variants: [VariantMeasurement]) {
        (self.created, self.recipeHash, self.runID, self.dataset, self.split) = (created, recipeHash, runID, dataset, split)
        (self.sequenceLength, self.machine, self.teacher, self.variants) = (sequenceLength, machine, teacher, variants)
    }

    /// The teacher's measurement, when the report names one.
    public var teacherMeasurement: VariantMeasurement? { teacher.flatMap { t in variants.first { $0.spec.name == t } } }

    /// The variant's macro-F1 as a percentage of the teacher's (nil without a teacher or
    /// when the teacher scores 0).
    public func percentOfTeacherF1(_ v: VariantMeasurement) -> Double? {
        guard let t = teacherMeasurement, t.macroF1 > 0 else { return nil }
        return 100 * v.macroF1 / t.macroF1
    }

    /// The teacher's batch-1 median over the variant's (nil without a teacher).
    public func speedupVsTeacher(_ v: VariantMeasurement) -> Double? {
        guard let t = teacherMeasurement, v.latency.medianMs > 0 else { return nil }
        return t.latency.medianMs / v.latency.medianMs
    }

    /// The variants as tables list them: the teacher first, then by batch-1 median latency
    /// (fastest first; ties by name).
    public var tableOrder: [VariantMeasurement] {
        let rest = variants.filter { $0.spec.name != teacher }.sorted {
            ($0.latency.medianMs, $0.spec.name) < ($1.latency.medianMs, $1.spec.name)
        }
        return (teacherMeasurement.map { [$0] } ?? []) + rest
    }

    /// Checks what a reader relies on: format and version, at least one variant, unique
    /// names, a teacher that is one of them, finite non-negative numbers, scores in [0, 1].
    public func validate(source: String) throws {
        guard format == tradeoffReportFormat else {
            throw ReportError("\(source): format '\(format)' is not a \(tradeoffReportFormat) — give a report written by 'kd bench variants' or 'kd report'")
        }
        guard version == tradeoffReportVersion else {
            throw ReportError("\(source): version \(version) is not one this kd reads (\(tradeoffReportVersion)) — re-run 'kd bench variants' with this kd")
        }
        guard !variants.isEmpty else { throw ReportError("\(source): key 'variants' is empty — the report measured no variant") }
        var seen = Set<String>()
        for (i, v) in variants.enumerated() {
            let at = "\(source): variants[\(i)]"
            guard !v.spec.name.isEmpty else { throw ReportError("\(at).spec.name is empty — every variant needs a name") }
            guard seen.insert(v.spec.name).inserted else { throw ReportError("\(at).spec.name '\(v.spec.name)' appears twice — names must be unique") }
            let numbers: [(String, Double?)] = [
                ("load_ms", v.loadMs), ("latency.median_ms", v.latency.medianMs), ("latency.p90_ms", v.latency.p90Ms),
                ("latency.p99_ms", v.latency.p99Ms), ("latency.sequences_per_second", v.latency.sequencesPerSecond),
                ("throughput.median_ms", v.throughput.medianMs), ("throughput.p90_ms", v.throughput.p90Ms),
                ("throughput.p99_ms", v.throughput.p99Ms), ("throughput.sequences_per_second", v.throughput.sequencesPerSecond),
                ("mean_kl", v.meanKL),
            ]
            for case let (key, value?) in numbers where !(value.isFinite && value >= 0) {
                throw ReportError("\(at).\(key) is \(value) — expected a finite number ≥ 0")
            }
            for case let (key, value?) in [("accuracy", v.accuracy), ("macro_f1", v.macroF1), ("agreement", v.agreement)] as [(String, Double?)]
                where !(value >= 0 && value <= 1) {
                throw ReportError("\(at).\(key) is \(value) — expected a fraction in [0, 1]")
            }
            for (key, value) in [("parameters", v.parameters), ("file_bytes", v.fileBytes), ("examples", v.examples),
                                 ("peak_memory_bytes", v.peakMemoryBytes ?? 0)] where value < 0 {
                throw ReportError("\(at).\(key) is \(value) — expected a count ≥ 0")
            }
            guard v.latency.batch >= 1, v.throughput.batch >= 1 else { throw ReportError("\(at): a latency batch is below 1") }
        }
        if let teacher, !seen.contains(teacher) {
            throw ReportError("\(source): key 'teacher' names '\(teacher)', which is not one of the variants (\(variants.map(\.spec.name).joined(separator: ", ")))")
        }
    }
}

/// A report that could not be read, written or used: one line naming the file and key.
public struct ReportError: Error, CustomStringConvertible, Sendable {
    public let description: String
    /// An error with this exact message.
    public init(_ description: String) { self.description = description }
}

/// Reads a report file (JSON), refusing another format or version, a missing or mistyped
/// key and numbers a renderer cannot draw.
public func readTradeoffReport(_ path: String) throws -> TradeoffReport {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw ReportError("\(path): no such file — give a report.json written by 'kd bench variants --out' or 'kd report'")
    }
    guard !isDirectory.boolValue else { throw ReportError("\(path): is a directory — give its report.json") }
    let data: Data
    do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
        throw ReportError("\(path): cannot read (\(error.localizedDescription))")
    }
    let tree: JSONValue
    do { tree = try JSONValue.parse(data) } catch { throw ReportError("\(path): \(decodingProblem(error)) — is it a report.json?") }
    guard let object = tree.objectValue else { throw ReportError("\(path): a JSON \(tree.kindName), expected an object — is it a report.json?") }
    // Format and version first, so a file of another kind is named as such rather than by
    // the first key it lacks.
    guard let format = object["format"]?.stringValue, format == tradeoffReportFormat else {
        let found = object["format"].map { $0.stringValue.map { "'\($0)'" } ?? "a \($0.kindName)" } ?? "missing"
        throw ReportError("\(path): key 'format' is \(found), expected '\(tradeoffReportFormat)' — give a report written by 'kd bench variants' or 'kd report'")
    }
    guard let version = object["version"]?.intValue, version == tradeoffReportVersion else {
        let found = object["version"].map { $0.intValue.map(String.init) ?? "a \($0.kindName)" } ?? "missing"
        throw ReportError("\(path): key 'version' is \(found); this kd reads version \(tradeoffReportVersion) — re-run 'kd bench variants' with this kd")
    }
    let report: TradeoffReport
    do { report = try JSONCoding.decode(TradeoffReport.self, from: data) } catch {
        throw ReportError("\(path): \(decodingProblem(error)) — the file is not a complete trade-off report")
    }
    try report.validate(source: path)
    return report
}

/// The report as pretty JSON (sorted keys, the shared encoder), after validating it.
public func tradeoffReportJSON(_ r: TradeoffReport) throws -> Data {
    try r.validate(source: "report")
    var data = try JSONCoding.data(r, pretty: true)
    data.append(UInt8(ascii: "\n"))
    return data
}
