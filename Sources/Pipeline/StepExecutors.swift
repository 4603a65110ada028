// StepExecutors: each kind of step as one call into DistilleryStages — prepareDataset,
// importModel + finetune, label, prepareDistillation + train, prune / pruneAndRecover,
// quantize, exportModel — and the bench and report steps (ReportSteps.swift), with the
// step folder as every output's directory.
//
// The stage functions already check their inputs, write through temporary files and, for
// training, checkpoint and resume exactly; this file only maps recipe settings onto their
// Config structs. A training step whose folder still holds a checkpoint from a killed run
// resumes from it (`resumableFiles` names what the runner keeps), so the result has the
// same bytes as an uninterrupted run. Sweeps (Sweep.swift) choose a step's settings first;
// a prune or quantize step with a grid is a sweep itself (CompressionSweep.swift).
// Left out on purpose: anything a stage function does itself (validation, file formats).
import Compression
import DistilleryJSON
import DistilleryModel
import DistilleryStages
import Foundation

/// What a step wrote: its outputs (relative to its folder; deterministic files only — the
/// training logs beside them carry times and are not hashed) and its report.
struct StepResult {
    var outputs: [String]
    var report: JSONValue?
}

/// Runs steps of one recipe.
struct StepExecutor {
    let recipe: Recipe
    let folder: RunFolder
    let progress: StageProgress
    let log: (String) -> Void

    /// The file or folder of a step that downstream steps read.
    func mainOutput(_ step: PlannedStep) -> String {
        switch step.work {
        case .prepare(let p): return datasetFolderName(p)
        case .teacher: return "teacher.h5"
        case .label: return "labels.h5"
        case .distill, .prune, .quantize, .quantizeGrid: return "model.h5"
        case .export(_, let format, _): return exportName(format)
        case .bench: return "bench.json"
        case .report: return "report.json"
        }
    }

    /// The prepared folder's name: the dataset's (reports name the dataset after it).
    func datasetFolderName(_ p: PrepareSettings) -> String {
        switch p.source {
        case .packaged(let name, _), .csv(_, _, _, let name, _, _): return name
        case .folder(let path): return URL(fileURLWithPath: path).lastPathComponent
        }
    }

    func exportName(_ format: String) -> String { format == "safetensors" ? "hf" : "model.\(format)" }

    /// Files an interrupted step keeps so the next run resumes it.
    func resumableFiles(_ step: PlannedStep) -> Set<String> {
        switch step.work {
        case .teacher: return ["base.h5", "teacher.ckpt.h5", "teacher.metrics.jsonl"]
        case .distill: return ["model.ckpt.h5", "model.metrics.jsonl", "student.json", "sweep"]
        case .prune(let p) where p.isSweep: return ["sweep"]
        case .quantizeGrid: return ["sweep"]
        case .prune(let p) where p.recover != nil:
            // pruneAndRecover skips finished steps and resumes the interrupted one from its files
            let names = (1...p.recover!.schedule.count).flatMap { k in ["pruned.h5", "student.json", "h5", "ckpt.h5", "metrics.jsonl"].map { "model.step\(k).\($0)" } }
            return Set(names)
        default: return []
        }
    }

    /// Runs `step` in `dir`; `inputs` maps finished step ids to their main outputs.
    func run(_ step: PlannedStep, in dir: String, inputs: [String: String]) throws -> StepResult {
        let threads = step.threads
        func report(_ value: some Encodable) -> JSONValue? { (try? JSONCoding.data(value)).flatMap { try? JSONValue.parse($0) } }
        switch step.work {
        case .prepare(let p):
            let input: DatasetInput
            switch p.source {
            case .packaged(let name, let cache): input = .builtin(name: name, cache: cache)
            case .csv(let path, let text, let label, let name, let delimiter, let labels):
                guard delimiter.count == 1 || delimiter == "tab" else {
                    throw RecipeError(file: recipe.file, keyPath: "stages.prepare.delimiter", "'\(delimiter)' must be one character or \"tab\"")
                }
                input = .csv(CSVInput(path: path, textColumn: text, labelColumn: label, name: name,
                                      delimiter: delimiter == "tab" ? "\t" : delimiter.first!, labels: labels))
            case .folder: throw StageError("internal: a prepared folder needs no step")
            }
            let name = datasetFolderName(p)
            let r = try prepareDataset(PrepareConfig(input: input, out: dir + "/" + name, seed: p.seed, force: true))
            progress.line(r.text)
            return StepResult(outputs: [name], report: report(r))

        case .teacher(let t):
            var base = t.base!
            if !base.hasSuffix(".h5") {
                if !FileManager.default.fileExists(atPath: dir + "/base.h5") {
                    progress.line(try importModel(ImportConfig(source: base, out: dir + "/base.h5")).text)
                }
                base = dir + "/base.h5"
            }
            var c = FinetuneConfig(model: base, data: inputs["prepare"]!, out: dir + "/teacher.h5")
            (c.epochs, c.learningRate, c.batchSize, c.maxLength, c.maxSteps, c.warmup) = (t.epochs, t.learningRate, t.batchSize, t.maxLength, t.maxSteps, t.warmup)
            c.pooling = t.pooling.flatMap { PoolingModeName.parse($0) }
            c.headInit = t.headInit.flatMap(HeadInit.init(rawValue:))
            (c.replaceHead, c.evalEvery, c.checkpointEvery, c.seed, c.threads) = (t.replaceHead, t.evalEvery, t.checkpointEvery, t.seed, threads)
            c.resume = existing(c.checkpointPath)
            let r = try finetune(c, progress: progress)
            progress.line(r.text)
            return StepResult(outputs: ["teacher.h5"], report: report(r))

        case .label(let l):
            var c = LabelConfig(teacher: inputs["teacher"]!, data: inputs["prepare"]!, out: dir + "/labels.h5")
            (c.topK, c.augment, c.batchSize, c.maxLength, c.seed, c.threads) = (l.topK, l.augment, l.batchSize, l.maxLength, l.seed, threads)
            c.hidden = try l.hidden.map { try LayerSelection(parsing: $0, flag: "stages.label.hidden") }
            c.attention = try l.attention.map { try LayerSelection(parsing: $0, flag: "stages.label.attention") }
            let r = try label(c, progress: progress)
            progress.line(r.text)
            return StepResult(outputs: ["labels.h5"], report: report(r))

        case .distill(let d):
            let chosen = try chooseDistillSettings(d, step: step, dir: dir, inputs: inputs)
            let r = try distill(chosen, dir: dir, out: dir + "/model.h5", inputs: inputs, threads: threads, resume: true)
            progress.line(r.text)
            return StepResult(outputs: ["model.h5", "student.json"], report: report(r))

        case .prune(let p):
            if p.isSweep { return try runPruneSweep(p, step: step, dir: dir, inputs: inputs) }
            let c = pruneConfig(p, amounts: pruneCandidates(p)[0], inputs: inputs, out: dir + "/model.h5", threads: threads)
            if let r = p.recover {
                let result = try pruneAndRecover(c, recoveryConfig(r), progress: progress)
                progress.line(result.text)
                return StepResult(outputs: ["model.h5"], report: report(result))
            }
            let result = try prune(c, progress: progress)
            progress.line(result.text)
            return StepResult(outputs: ["model.h5"], report: report(result))

        case .quantize(let model, let scheme, let maxDrop, let calibrationSize, let evalSize):
            var c = QuantizeConfig(model: inputs[modelStep(model, recipe)]!, scheme: scheme, out: dir + "/model.h5")
            if scheme == "int8-static" { c.calibration = inputs["prepare"] }
            if maxDrop != nil { c.data = inputs["prepare"] }
            (c.maxDrop, c.calibrationSize, c.evalSize, c.threads) = (maxDrop, calibrationSize, evalSize, threads)
            let r = try quantize(c, progress: progress)
            progress.line(r.text)
            return StepResult(outputs: ["model.h5"], report: report(r))

        case .quantizeGrid(_, let model, let schemes, let maxDrop, let calibrationSize, let evalSize):
            return try runQuantizeSweep(model: model, schemes: schemes, maxDrop: maxDrop, calibrationSize: calibrationSize, evalSize: evalSize,
                                        step: step, dir: dir, inputs: inputs)

        case .export(let model, let format, let type):
            let name = exportName(format)
            let r = try exportModel(ExportConfig(model: inputs[modelStep(model, recipe)]!, format: ExportFormat(rawValue: format)!,
                                                 out: dir + "/" + name, type: ExportType(rawValue: type) ?? .f32, force: true))
            progress.line(r.text)
            return StepResult(outputs: [name], report: report(r))

        case .bench(let b):
            return try runBench(b, step: step, dir: dir, inputs: inputs)

        case .report:
            return try runReport(dir: dir, inputs: inputs)
        }
    }

    /// Distils one student with fully chosen settings into `out` (a sweep trial or the step).
    func distill(_ d: DistillSettings, dir: String, out: String, inputs: [String: String], threads: Int, resume: Bool,
                 stopAfter: Int? = nil) throws -> DistillReport {
        let spec = try studentSpec(d, dir: dir)
        var c = DistillConfig(teacher: inputs["teacher"]!, student: spec, labels: inputs["label"]!, data: inputs["prepare"]!, out: out)
        (c.epochs, c.learningRate, c.warmup, c.seed, c.trainLimit) = (d.epochs, d.learningRate?.values.first, d.warmup, d.seed, d.trainLimit)
        c.batchSize = d.batchSize.map { Int($0.values.first!) }
        (c.evalEvery, c.checkpointEvery, c.threads, c.stopAfter) = (d.evalEvery, d.checkpointEvery, threads, stopAfter)
        if let losses = d.losses {
            c.losses = try parseLossWeights(losses.keys.sorted().map { "\($0)=\(losses[$0]!.values.first!)" }.joined(separator: ","))
        }
        if resume { c.resume = existing(c.checkpointPath) }
        let run = try prepareDistillation(c)
        return try run.train(progress: progress)
    }

    /// The student spec a distill step trains: the recipe's file, with the temperature
    /// replaced when the recipe sets one, written into the step folder (`student.json`).
    func studentSpec(_ d: DistillSettings, dir: String) throws -> String {
        let path = dir + "/student.json"
        guard let data = FileManager.default.contents(atPath: d.student) else { throw StageError("\(d.student): cannot read the student spec") }
        var bytes = data
        if let temperature = d.temperature?.values.first {
            guard case .object(var members)? = try? JSONValue.parse(data) else {
                throw StageError("\(d.student): not a JSON object — check the student spec")
            }
            members["temperature"] = .double(temperature)
            bytes = try JSONCoding.data(JSONValue.object(members), pretty: true)
        }
        if FileManager.default.contents(atPath: path) != bytes { try writeAtomically(bytes, to: path) }
        return path
    }

    /// `path` when that file exists (a checkpoint to resume), else nil.
    func existing(_ path: String) -> String? { FileManager.default.fileExists(atPath: path) ? path : nil }
}

/// Pooling names as recipes spell them.
enum PoolingModeName {
    static func parse(_ name: String) -> PoolingMode? { PoolingMode(rawValue: name) }
}
