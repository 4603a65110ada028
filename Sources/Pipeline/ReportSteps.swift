// ReportSteps: the last two steps of a run — bench (every variant measured by
// `benchVariants`, the variants taking turns) and report (`writeTradeoffReport`: Markdown,
// JSON, CSV, SVG plots and one HTML page) — over the Reporting module's types.
//
// The variants are the recipe's models in plan order: the teacher, the students, the
// pruned models and the quantized ones, each with its kind and the model it came from. The
// bench step stores the TradeoffReport as `bench.json`; the report step reads it back
// (`readTradeoffReport` checks its format and version) and writes the pages beside it.
// Left out on purpose: exports are not benched (they run in other runtimes; the
// benchmarks/ peer scripts measure those).
import DistilleryData
import DistilleryJSON
import DistilleryStages
import Foundation
import Reporting

extension StepExecutor {
    /// The variants of the run, with the files their steps wrote.
    func variants(inputs: [String: String]) -> [VariantSpec] {
        var specs = [VariantSpec(name: "teacher", path: inputs["teacher"]!, kind: "teacher", parent: nil,
                                 note: recipe.teacher.file != nil ? "as given" : "fine-tuned here")]
        for d in recipe.distill {
            specs.append(VariantSpec(name: d.name, path: inputs["distill-\(d.name)"]!, kind: "student", parent: "teacher",
                                     note: URL(fileURLWithPath: d.student).deletingPathExtension().lastPathComponent))
        }
        for p in recipe.prune {
            let path = inputs["prune-\(p.name)"]!
            // A swept entry is noted with the amounts its sweep chose.
            let chosen = p.isSweep ? sweepRecord(beside: path)?.winner : nil
            let heads = chosen?["heads"] ?? p.heads?.values[0], ffn = chosen?["ffn"] ?? p.ffn?.values[0]
            let layers = chosen?["layers"].map { Int($0) } ?? p.layers
            let amounts = [heads.flatMap { $0 > 0 ? "heads \($0)" : nil }, ffn.flatMap { $0 > 0 ? "FFN \($0)" : nil }, layers > 0 ? "\(layers) layers" : nil]
            specs.append(VariantSpec(name: p.name, path: path, kind: "pruned", parent: p.model,
                                     note: amounts.compactMap { $0 }.joined(separator: ", ") + (p.recover != nil ? ", recovered" : "") + (p.isSweep ? " (swept)" : "")))
        }
        for q in recipe.quantize {
            for v in recipe.variantNames(q) {
                let path = inputs["quantize-\(v.name)"]!
                let note = v.scheme ?? (sweepRecord(beside: path)?.winnerScheme).map { "\($0) (swept)" } ?? "scheme grid"
                specs.append(VariantSpec(name: v.name, path: path, kind: "quantized", parent: v.model, note: note))
            }
        }
        return specs
    }

    /// The sweep record of the step whose model is `model` (nil when it has none).
    func sweepRecord(beside model: String) -> SweepRecord? {
        let path = URL(fileURLWithPath: model).deletingLastPathComponent().appendingPathComponent("sweep/sweep.json").path
        return FileManager.default.contents(atPath: path).flatMap { try? JSONCoding.decode(SweepRecord.self, from: $0) }
    }

    /// Measures every variant and stores the report as `bench.json`.
    func runBench(_ b: BenchSettings, step: PlannedStep, dir: String, inputs: [String: String]) throws -> StepResult {
        var c = VariantBenchConfig(variants: variants(inputs: inputs), data: inputs["prepare"]!)
        c.teacher = "teacher"
        c.split = Split(rawValue: b.split) ?? .test
        (c.threads, c.throughputBatch, c.maxLength, c.secondsPerTurn, c.rounds, c.evalLimit) =
            (b.threads, b.throughputBatch, b.maxLength, b.secondsPerTurn, b.rounds, b.evalLimit)
        (c.recipeHash, c.runID) = (recipe.sha256, URL(fileURLWithPath: folder.path).lastPathComponent)
        let report = try benchVariants(c, progress: progress)
        try writeAtomically(try tradeoffReportJSON(report), to: dir + "/bench.json")
        return StepResult(outputs: ["bench.json"], report: nil)
    }

    /// Writes the report pages from the bench step's `bench.json`.
    func runReport(dir: String, inputs: [String: String]) throws -> StepResult {
        let report = try readTradeoffReport(inputs["bench"]!)
        let written = try writeTradeoffReport(report, directory: dir)
        let names = written.map { URL(fileURLWithPath: $0).lastPathComponent }
        progress.line("report: " + names.map { dir + "/" + $0 }.joined(separator: ", "))
        return StepResult(outputs: names, report: nil)
    }

    /// The Markdown trade-off table of a finished report (its `report.json`).
    func table(reportJSON: String) throws -> String? {
        markdownTable(try readTradeoffReport(reportJSON))
    }
}
