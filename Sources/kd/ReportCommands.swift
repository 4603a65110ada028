// The trade-off report commands: `kd bench variants` (measure named model files into a
// report JSON, optionally rendered at once), `kd report` (render a saved report: Markdown,
// JSON, CSV, two SVG plots, one HTML page), `kd pick` (the smallest variant within limits;
// exit code 3 when none qualifies) and the hidden `kd bench peak-memory` that
// `bench variants` starts in a fresh process per variant. Arguments only: the measuring is
// DistilleryStages' `benchVariants`, the rendering the Reporting module's (whose
// `ReportError`s KD.main prints as `kd: error:` lines, exit 1).
import ArgumentParser
import DistilleryData
import DistilleryStages
import Foundation
import Reporting

/// Parses `NAME=VALUE` for `flag`; the message shows the expected `form` and an example.
func parseNamed(_ text: String, flag: String, form: String, example: String) throws -> (name: String, value: String) {
    guard let eq = text.firstIndex(of: "="), eq != text.startIndex, text.index(after: eq) != text.endIndex else {
        throw StageError.usage("\(flag) '\(text)' must be \(form) — e.g. \(flag) \(example)")
    }
    let name = String(text[..<eq]).trimmingCharacters(in: .whitespaces)
    guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "._-+".contains($0) }) else {
        throw StageError.usage("\(flag) '\(text)': the name '\(name)' may hold only letters, digits and . _ - + — e.g. \(flag) \(example)")
    }
    return (name, String(text[text.index(after: eq)...]))
}

struct BenchVariants: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "variants",
        abstract: "Measure model variants for a trade-off report: size, speed, memory, scores.",
        usage: "kd bench variants --model NAME=PATH [--model NAME=PATH ...] --data <data> --out <out> [<options>]",
        discussion: """
        For every variant: parameters, file size, load time, peak memory (a fresh kd \
        process loads it and runs one throughput batch; VmHWM), latency median/p90/p99 \
        at batch 1 and --throughput-batch with sequences/s (the variants take turns, \
        --rounds rounds of --seconds each), and accuracy, macro-F1, agreement and KL \
        against --teacher on the split. Writes the report JSON to --out; \
        'kd report --bench' renders it, 'kd pick' chooses from it.

        Example:
          kd bench variants --model teacher=sms-teacher.h5 --model l3=sms-l3.h5 \\
             --teacher teacher --data data/sms-spam --out bench.json --report-dir report/
        """)

    @Option(help: "A variant as NAME=PATH (a Distillery model file); repeat for each.") var model: [String] = []
    @Option(help: "The variant agreement and KL are measured against (a NAME of --model).") var teacher: String?
    @Option(help: "How a variant was made, as NAME=KIND (teacher, student, pruned, quantized, …); repeatable.") var kind: [String] = []
    @Option(help: "A prepared dataset folder (kd data prepare).") var data: String
    @Option(help: "Split to score: train, dev or test.") var split = "test"
    @Option(help: "Output report JSON.") var out: String
    @Option(name: .customLong("report-dir"), help: "Also render the report into this directory.") var reportDir: String?
    @Option(help: "Worker threads for every measurement (a number, or auto for every core).") var threads = "1"
    @Option(name: .customLong("throughput-batch"), help: "Batch of the throughput and peak-memory runs.") var throughputBatch = 32
    @Option(name: .customLong("max-length"), help: "Tokens per timed sequence and scoring length (default: the teacher's stored length).")
    var maxLength: Int?
    @Option(help: "Seconds each variant runs per turn and batch size.") var seconds = 2.0
    @Option(help: "Turns the variants take.") var rounds = 3
    @Option(name: .customLong("eval-limit"), help: "Score only the split's first N examples.") var evalLimit: Int?

    func run() throws {
        guard !model.isEmpty else { throw StageError.usage("--model: give at least one variant as NAME=PATH, e.g. --model teacher=teacher.h5") }
        let kinds = try Dictionary(kind.map { try parseNamed($0, flag: "--kind", form: "NAME=KIND", example: "l3=student") }, uniquingKeysWith: { $1 })
        var specs = try model.map { text -> VariantSpec in
            let (name, path) = try parseNamed(text, flag: "--model", form: "NAME=PATH", example: "teacher=teacher.h5")
            return VariantSpec(name: name, path: path, kind: kinds[name] ?? (name == teacher ? "teacher" : "model"))
        }
        for name in kinds.keys where !specs.contains(where: { $0.name == name }) {
            throw StageError.usage("--kind \(name)=…: no --model is named \(name)")
        }
        for i in specs.indices where specs[i].kind == "model" && describesQuantized(specs[i].path) { specs[i].kind = "quantized" }
        try checkOutputPath(out, flag: "--out")
        var config = VariantBenchConfig(variants: specs, data: data)
        config.teacher = teacher
        config.split = try parseChoice(split, flag: "--split", as: Split.self)
        config.threads = try parseThreads(threads)
        (config.throughputBatch, config.maxLength, config.secondsPerTurn, config.rounds, config.evalLimit) =
            (throughputBatch, maxLength, seconds, rounds, evalLimit)
        let progress = stderrProgress()
        let report = try benchVariants(config, progress: progress)
        if report.teacher == nil { progress.warning("no --teacher: agreement, KL, % of teacher F1 and speed-up are left out") }
        try writeAtomically(try tradeoffReportJSON(report), to: out)
        if let reportDir { for path in try writeTradeoffReport(report, directory: reportDir) { note("wrote \(path)") } }
        print(markdownTable(report))
    }

    /// Whether the file at `path` holds quantized weights (a guess for the kind column).
    private func describesQuantized(_ path: String) -> Bool {
        (try? ModelBundle(path: path))?.file.quantized.isEmpty == false
    }
}

struct PeakMemory: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "peak-memory", abstract: "Load a model, run one batch, print the peak resident memory (VmHWM).",
        shouldDisplay: false)

    @Option(help: "Distillery model file (.h5).") var model: String
    @Option(name: .customLong("batch-size")) var batchSize = 32
    @Option var seq = 128
    @Option var threads = "1"
    @Flag var json = false

    func run() throws {
        let r = try measurePeakMemory(model: model, batch: batchSize, length: seq, threads: try parseThreads(threads))
        if json { try printJSON(r) } else { print("peak resident memory \(formatSize(r.peakBytes)) (runtime alone \(formatSize(r.baselineBytes)))") }
    }
}

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Render a trade-off report: Markdown, JSON, CSV, SVG plots, one HTML page.",
        usage: "kd report --bench <bench> --out <out>",
        discussion: """
        Reads a report JSON written by 'kd bench variants' (or an earlier 'kd report') \
        and writes report.md, report.json, report.csv, f1-vs-latency.svg, f1-vs-size.svg \
        and report.html (self-contained) into --out, then prints the table.

        Example:
          kd report --bench bench.json --out report/
        """)

    @Option(help: "A report JSON (kd bench variants --out).") var bench: String
    @Option(help: "Directory for the report files (created when missing).") var out: String

    func run() throws {
        let report = try readTradeoffReport(bench)
        for path in try writeTradeoffReport(report, directory: out) { note("wrote \(path)") }
        print(markdownTable(report))
    }
}

struct Pick: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Name the smallest variant within a macro-F1 drop, a latency and a size.",
        usage: "kd pick --report <report> [--max-drop <points>] [--max-latency-ms <ms>] [--max-mb <mb>]",
        discussion: """
        The drop is in macro-F1 points below the teacher (0.950 → 0.941 is 0.9); the \
        latency is the batch-1 median; MB are 10^6 bytes of the file. Exit code 3 when \
        no variant qualifies: the output then says which limit nothing met and which \
        variant came closest.

        Example:
          kd pick --report report/report.json --max-drop 1.0 --max-latency-ms 5 --max-mb 10
        """)

    @Option(help: "A report JSON (kd bench variants --out, or report.json of kd report).") var report: String
    @Option(name: .customLong("max-drop"), help: "Largest macro-F1 drop below the teacher, in points.") var maxDrop = 1.0
    @Option(name: .customLong("max-latency-ms"), help: "Largest batch-1 median latency, ms.") var maxLatencyMs: Double?
    @Option(name: .customLong("max-mb"), help: "Largest file size, MB.") var maxMB: Double?
    @Flag(help: "Print JSON instead of a sentence.") var json = false

    func run() throws {
        guard maxDrop.isFinite, maxDrop >= 0 else { throw StageError.usage("--max-drop \(maxDrop) must be a number of macro-F1 points ≥ 0, e.g. --max-drop 1.0") }
        if let maxLatencyMs, !(maxLatencyMs.isFinite && maxLatencyMs > 0) {
            throw StageError.usage("--max-latency-ms \(maxLatencyMs) must be a number of milliseconds > 0, e.g. --max-latency-ms 5")
        }
        if let maxMB, !(maxMB.isFinite && maxMB > 0) { throw StageError.usage("--max-mb \(maxMB) must be a number of megabytes > 0, e.g. --max-mb 10") }
        let r = try readTradeoffReport(report)
        let result = pick(r, maxDrop: maxDrop, maxLatencyMs: maxLatencyMs, maxMB: maxMB)
        if json { try printJSON(result, pretty: true) } else { print(result.text) }
        if !result.found { throw ExitCode(3) }
    }
}
