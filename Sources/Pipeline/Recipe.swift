// Recipe: the JSON file `kd run` reads (format "distillery-recipe", version 1) — which
// dataset, which teacher, which students, pruned and quantized variants, exports, and how
// they are measured and reported. docs/recipes.md documents the schema with an example.
//
// Reading is strict (RecipeReader.swift): every key is known or refused by key path with
// the nearest known key offered, kinds are exact, values are range-checked, and names
// referenced across stages (a prune of "l3", a quantize of "teacher") must exist. Each
// step's settings are a Codable value: its canonical JSON (sorted keys) is what the run
// folder hashes, so a recipe edit reruns exactly the steps whose settings changed.
// Paths in a recipe are relative to the working directory, like kd's flags.
// Left out on purpose: includes of other recipes, environment variables in values.
import Distillation
import DistilleryData
import DistilleryJSON
import DistilleryStages
import Export
import Foundation
import Quantization

/// The stages of a run, in the order they run.
public enum StageKind: String, Sendable, CaseIterable, Codable, Comparable {
    case prepare, teacher, label, distill, prune, quantize, export, bench, report

    public static func < (a: StageKind, b: StageKind) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// Where the dataset comes from.
public enum DatasetOrigin: Codable, Sendable, Equatable {
    /// A packaged dataset (`kd data prepare NAME`), read from `cache`.
    case packaged(name: String, cache: String)
    /// A CSV file with a header line.
    case csv(path: String, textColumn: String, labelColumn: String, name: String, delimiter: String, labels: [String]?)
    /// A folder `kd data prepare` already wrote.
    case folder(path: String)
}

/// `stages.prepare`.
public struct PrepareSettings: Codable, Sendable {
    public var source: DatasetOrigin
    public var seed: UInt64
}

/// `stages.teacher`: an existing classifier file, or a base model fine-tuned here.
public struct TeacherSettings: Codable, Sendable {
    /// A fine-tuned classifier (.h5) used as it is.
    public var file: String?
    /// A model (.h5, or any source `kd import` reads) fine-tuned on the dataset.
    public var base: String?
    public var epochs = 3
    public var learningRate = 5e-5
    public var batchSize = 32
    public var maxLength: Int?
    public var maxSteps: Int?
    public var warmup = 0.1
    public var pooling: String?
    public var headInit: String?
    public var replaceHead = false
    public var evalEvery: Int?
    public var checkpointEvery: Int?
    public var seed: UInt64 = 13
}

/// `stages.label`: the teacher's soft-label cache.
public struct LabelSettings: Codable, Sendable {
    public var topK: Int?
    /// "all" or a comma list of hidden-state layers to store.
    public var hidden: String?
    public var attention: String?
    public var augment = 0
    public var batchSize = 32
    public var maxLength: Int?
    public var seed: UInt64 = 13
}

/// One entry of `stages.distill`: a named student.
public struct DistillSettings: Codable, Sendable {
    public var name: String
    /// The student spec (students/*.json).
    public var student: String
    /// "N" or "intermediate,prediction" (nil: the spec's schedule).
    public var epochs: String?
    public var learningRate: Sweepable<Double>?
    public var batchSize: Sweepable<Double>?
    public var temperature: Sweepable<Double>?
    /// Loss weights replacing the spec's (kind → weight or grid).
    public var losses: [String: Sweepable<Double>]?
    public var warmup: Double?
    public var trainLimit: Int?
    public var evalEvery: Int?
    public var checkpointEvery: Int?
    public var seed: UInt64?
    public var sweep: SweepBudget?
}

/// One entry of `stages.prune`: a pruned variant of a named model.
public struct PruneSettings: Codable, Sendable {
    public var name: String
    /// The model pruned: "teacher" or a student's name.
    public var model: String
    public var heads: Sweepable<Double>?
    public var ffn: Sweepable<Double>?
    /// Layers removed (with a grid: its first value; the grid is `layersGrid`).
    public var layers = 0
    /// A grid of layer counts to sweep (two or more), nil otherwise.
    public var layersGrid: [Int]?
    /// With a grid: the largest dev macro-F1 drop (points) from the unpruned model that the
    /// chosen candidate may have (CompressionSweep.swift).
    public var maxDrop: Double?
    public var uniform = false
    public var samples = 1024
    public var batchSize = 32
    /// Prune in steps, each distilled back (nil: one shot, no recovery).
    public var recover: RecoverySettings?
    public var sweep: SweepBudget?

    /// True when a ratio or the layer count is a grid of two or more values.
    public var isSweep: Bool { heads?.isSweep == true || ffn?.isSweep == true || (layersGrid?.count ?? 0) > 1 }
}

/// `stages.prune[i].recover`.
public struct RecoverySettings: Codable, Sendable {
    public var schedule: [Double]
    public var epochs = 1
    public var trainLimit: Int?
    public var learningRate: Double?
}

/// One entry of `stages.quantize`: every scheme applied to every named model.
public struct QuantizeSettings: Codable, Sendable {
    public var models: [String]
    public var schemes: [String]
    /// Without a grid: each scheme's mixed-precision search target. With a grid: the
    /// largest dev macro-F1 drop (points) the chosen scheme may have.
    public var maxDrop: Double?
    /// `"schemes": {"grid": […]}`: one variant named `name`, the most compressed scheme
    /// within `maxDrop` (CompressionSweep.swift), instead of one variant per scheme.
    public var grid = false
    /// The variant's name (grids only).
    public var name: String?
    public var calibrationSize = 128
    public var evalSize = 1000
}

/// One entry of `stages.export`: every format written for every named model.
public struct ExportSettings: Codable, Sendable {
    public var models: [String]
    public var formats: [String]
    /// GGUF matrix type.
    public var type = "f32"
}

/// `stages.bench`: how the variants are measured (they take turns).
public struct BenchSettings: Codable, Sendable {
    public var threads = 1
    public var throughputBatch = 32
    public var maxLength: Int?
    public var secondsPerTurn = 2.0
    public var rounds = 3
    public var evalLimit: Int?
    public var split = "test"
}

/// A sweep's budget: successive halving over short trials scored on dev.
public struct SweepBudget: Codable, Sendable, Equatable {
    /// Optimizer steps of a trial in the first round (doubled each round).
    public var trialSteps = 40
    /// Fraction of the trials kept after each round.
    public var keep = 0.5
    /// Pruning sweeps: training examples of a first-round recovery (doubled each round;
    /// nil: 256).
    public var trialLimit: Int?
    /// Pruning sweeps: candidates recovered fully after the short rounds (nil: 2).
    public var survivors: Int?
}

/// A checked recipe.
public struct Recipe: Sendable {
    /// The file it was read from, as given.
    public var file: String
    public var name: String
    public var description: String?
    /// Threads of every stage but bench (nil: every core).
    public var threads: Int?
    public var prepare: PrepareSettings
    public var teacher: TeacherSettings
    public var label: LabelSettings?
    public var distill: [DistillSettings] = []
    public var prune: [PruneSettings] = []
    public var quantize: [QuantizeSettings] = []
    public var export: [ExportSettings] = []
    public var bench: BenchSettings?
    public var report: Bool = false
    /// sha256 of the file's bytes (recorded in the report).
    public var sha256: String

    public static let formatName = "distillery-recipe"
    public static let formatVersion = 1

    /// The fp32 model names (teacher, students, pruned): what prune, quantize and export take.
    public var floatModels: [String] { ["teacher"] + distill.map(\.name) + prune.map(\.name) }

    /// The variant names one quantize entry makes: its grid's name, or `MODEL-SCHEME` each.
    public func variantNames(_ q: QuantizeSettings) -> [(model: String, scheme: String?, name: String)] {
        if q.grid { return q.models.map { ($0, nil, q.name!) } }
        return q.models.flatMap { m in q.schemes.map { (m, $0, QuantizedName.of(m, $0)) } }
    }
}

// MARK: - reading

extension Recipe {
    /// Reads and checks `path`.
    public static func read(_ path: String) throws -> Recipe {
        let data: Data
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw RecipeError(file: path, keyPath: nil, isDirectory.boolValue ? "is a directory — give a recipe file (e.g. benchmarks/recipes/quickstart.json)"
                                                                              : "no such recipe file — check the path (recipes live in benchmarks/recipes/)")
        }
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw RecipeError(file: path, keyPath: nil, "cannot read (\(error.localizedDescription))")
        }
        return try parse(data, file: path)
    }

    /// Parses recipe text; `file` names it in errors.
    public static func parse(_ data: Data, file: String) throws -> Recipe {
        let root = try RecipeObject(try parseRecipeJSON(data, file: file), path: "", file: file,
                                    allowed: ["format", "version", "name", "description", "threads", "stages"])
        guard try root.string("format") == formatName else { throw root.fail("format", "must be \"\(formatName)\"") }
        guard let version = try root.optionalInt("version"), version == formatVersion else {
            throw root.fail("version", "must be \(formatVersion) (the recipe format this kd reads)")
        }
        let name = try root.string("name")
        guard name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
            throw root.fail("name", "'\(name)' must be letters, digits, '-', '_' or '.'")
        }
        guard root.has("stages") else { throw root.fail("stages", "is missing (expected an object of stages: prepare, teacher, …)") }
        let stages = try RecipeObject(root.members["stages"]!, path: "stages", file: file, allowed: StageKind.allCases.map(\.rawValue))
        guard let prepareObject = try stages.object("prepare", allowed: ["dataset", "cache", "csv", "text_column", "label_column", "name", "delimiter", "labels", "folder", "seed"]) else {
            throw stages.fail("prepare", "is missing (every recipe names its dataset: {\"dataset\": \"sms-spam\"})")
        }
        guard let teacherObject = try stages.object("teacher", allowed: ["file", "base", "epochs", "learning_rate", "batch_size", "max_length", "max_steps", "warmup",
                                                                         "pooling", "head_init", "replace_head", "eval_every", "checkpoint_every", "seed"]) else {
            throw stages.fail("teacher", "is missing (every recipe names its teacher: {\"file\": \"teacher.h5\"} or {\"base\": …})")
        }
        var recipe = Recipe(file: file, name: name, description: try root.optionalString("description"),
                            threads: try root.optionalInt("threads", in: 1...maximumThreads),
                            prepare: try readPrepare(prepareObject), teacher: try readTeacher(teacherObject), sha256: SHA256Hex.of(data))
        if let o = try stages.object("label", allowed: ["top_k", "hidden", "attention", "augment", "batch_size", "max_length", "seed"]) {
            recipe.label = try readLabel(o)
        }
        recipe.distill = try stages.objects("distill", allowed: ["name", "student", "epochs", "learning_rate", "batch_size", "temperature", "losses",
                                                                 "warmup", "train_limit", "eval_every", "checkpoint_every", "seed", "sweep"]).map(readDistill)
        recipe.prune = try stages.objects("prune", allowed: ["name", "model", "heads", "ffn", "layers", "uniform", "samples", "batch_size", "recover",
                                                             "sweep", "max_drop"]).map(readPrune)
        recipe.quantize = try stages.objects("quantize", allowed: ["models", "schemes", "max_drop", "calibration_size", "eval_size", "name"]).map(readQuantize)
        recipe.export = try stages.objects("export", allowed: ["models", "formats", "type"]).map(readExport)
        if let o = try stages.object("bench", allowed: ["threads", "throughput_batch", "max_length", "seconds_per_turn", "rounds", "eval_limit", "split"]) {
            recipe.bench = try readBench(o)
        }
        if try stages.object("report", allowed: []) != nil { recipe.report = true }
        // What later stages need, with defaults: a label cache for students and pruning, a bench for a report.
        if recipe.label == nil, !recipe.distill.isEmpty || !recipe.prune.isEmpty { recipe.label = LabelSettings() }
        if recipe.report, recipe.bench == nil { recipe.bench = BenchSettings() }
        try recipe.checkNames(stages)
        return recipe
    }

    static func readPrepare(_ o: RecipeObject) throws -> PrepareSettings {
        let given = ["dataset", "csv", "folder"].filter(o.has)
        guard given.count == 1 else {
            throw o.fail(nil, given.isEmpty ? "names no dataset — give one of \"dataset\" (a packaged name), \"csv\" (a file) or \"folder\" (prepared by kd data prepare)"
                                            : "gives \(given.joined(separator: " and ")) — give only one")
        }
        let csvKeys = ["text_column", "label_column", "name", "delimiter", "labels"]
        if given[0] != "csv", let key = csvKeys.first(where: o.has) { throw o.fail(key, "only goes with \"csv\"") }
        if given[0] != "dataset", o.has("cache") { throw o.fail("cache", "only goes with \"dataset\"") }
        let source: DatasetOrigin
        switch given[0] {
        case "dataset": source = .packaged(name: try o.string("dataset"), cache: try o.optionalString("cache") ?? ".cache/datasets")
        case "csv":
            let name = try o.string("name")
            guard name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
                throw o.fail("name", "'\(name)' must be letters, digits, '-', '_' or '.'")
            }
            source = .csv(path: try o.string("csv"), textColumn: try o.string("text_column"), labelColumn: try o.string("label_column"),
                          name: name, delimiter: try o.optionalString("delimiter") ?? ",", labels: try o.optionalStringList("labels"))
        default: source = .folder(path: try o.string("folder"))
        }
        return PrepareSettings(source: source, seed: UInt64(try o.optionalInt("seed") ?? 13))
    }

    static func readTeacher(_ o: RecipeObject) throws -> TeacherSettings {
        var t = TeacherSettings()
        (t.file, t.base) = (try o.optionalString("file"), try o.optionalString("base"))
        guard (t.file == nil) != (t.base == nil) else {
            throw o.fail(nil, t.file == nil ? "names no teacher — give \"file\" (a fine-tuned classifier) or \"base\" (a model to fine-tune)"
                                            : "gives both \"file\" and \"base\" — give \"file\" to use a classifier as it is, \"base\" to fine-tune one")
        }
        if t.file != nil, let key = o.members.keys.sorted().first(where: { $0 != "file" }) {
            throw o.fail(key, "is a fine-tuning setting — it goes with \"base\", not \"file\"")
        }
        t.epochs = try o.optionalInt("epochs", in: 1...10_000) ?? t.epochs
        t.learningRate = try o.optionalDouble("learning_rate", in: 1e-9...1) ?? t.learningRate
        t.batchSize = try o.optionalInt("batch_size", in: 1...65_536) ?? t.batchSize
        t.maxLength = try o.optionalInt("max_length", in: 2...65_536)
        t.maxSteps = try o.optionalInt("max_steps", in: 1...maximumSteps)
        t.warmup = try o.optionalDouble("warmup", in: 0...1e9) ?? t.warmup
        t.pooling = try o.optionalString("pooling")
        if let p = t.pooling, !["mean", "cls"].contains(p) { throw o.fail("pooling", "'\(p)' is not one of: mean, cls") }
        t.headInit = try o.optionalString("head_init")
        if let h = t.headInit, !["probe", "random"].contains(h) { throw o.fail("head_init", "'\(h)' is not one of: probe, random") }
        t.replaceHead = try o.optionalBool("replace_head") ?? false
        t.evalEvery = try o.optionalInt("eval_every", in: 1...maximumSteps)
        t.checkpointEvery = try o.optionalInt("checkpoint_every", in: 0...maximumSteps)
        t.seed = UInt64(try o.optionalInt("seed") ?? 13)
        return t
    }

    static func readLabel(_ o: RecipeObject) throws -> LabelSettings {
        var l = LabelSettings()
        l.topK = try o.optionalInt("top_k", in: 1...1_000_000)
        func layers(_ key: String) throws -> String? {
            guard o.has(key), let v = o.members[key] else { return nil }
            switch v {
            case .string("all"): return "all"
            case .array(let items):
                return try items.enumerated().map { i, item -> String in
                    guard case .int(let n) = item, n >= 0 else { throw o.fail("\(key)[\(i)]", "is \(item.phrase), expected a layer number (0 or more)") }
                    return String(n)
                }.joined(separator: ",")
            default: throw o.fail(key, "is \(v.phrase), expected \"all\" or an array of layer numbers")
            }
        }
        (l.hidden, l.attention) = (try layers("hidden"), try layers("attention"))
        l.augment = try o.optionalInt("augment", in: 0...1000) ?? 0
        l.batchSize = try o.optionalInt("batch_size", in: 1...65_536) ?? l.batchSize
        l.maxLength = try o.optionalInt("max_length", in: 2...65_536)
        l.seed = UInt64(try o.optionalInt("seed") ?? 13)
        return l
    }

    static func readDistill(_ o: RecipeObject) throws -> DistillSettings {
        var d = DistillSettings(name: try o.string("name"), student: try o.string("student"))
        if let v = o.members["epochs"], v != .null {
            switch v {
            case .int(let n) where n >= 1: d.epochs = String(n)
            case .string(let s) where s.split(separator: ",").allSatisfy({ Int($0).map { $0 >= 1 } == true }): d.epochs = s
            default: throw o.fail("epochs", "is \(v.phrase), expected a number of epochs (≥ 1) or \"intermediate,prediction\" such as \"2,1\"")
            }
        }
        d.learningRate = try o.sweepable("learning_rate", in: 1e-9...1)
        d.batchSize = try o.sweepable("batch_size", in: 1...65_536)
        if let b = d.batchSize, b.values.contains(where: { $0 != $0.rounded() }) { throw o.fail("batch_size", "must be whole numbers") }
        d.temperature = try o.sweepable("temperature", in: 0.05...100)
        if let losses = try o.object("losses", allowed: LossKind.allCases.map(\.rawValue)) {
            d.losses = try Dictionary(uniqueKeysWithValues: losses.members.keys.sorted().map { ($0, try losses.sweepable($0, in: 0...1e6)!) })
        }
        d.warmup = try o.optionalDouble("warmup", in: 0...1)
        d.trainLimit = try o.optionalInt("train_limit", in: 1...Int(Int32.max))
        d.evalEvery = try o.optionalInt("eval_every", in: 1...maximumSteps)
        d.checkpointEvery = try o.optionalInt("checkpoint_every", in: 0...maximumSteps)
        d.seed = try o.optionalInt("seed").map(UInt64.init)
        d.sweep = try readSweep(o, allowed: ["trial_steps", "keep"])
        return d
    }

    static func readSweep(_ o: RecipeObject, allowed: [String]) throws -> SweepBudget? {
        guard let s = try o.object("sweep", allowed: allowed) else { return nil }
        var budget = SweepBudget()
        budget.trialSteps = try s.optionalInt("trial_steps", in: 1...maximumSteps) ?? budget.trialSteps
        budget.keep = try s.optionalDouble("keep", in: 0.01...0.99) ?? budget.keep
        budget.trialLimit = try s.optionalInt("trial_limit", in: 1...Int(Int32.max))
        budget.survivors = try s.optionalInt("survivors", in: 1...1000)
        return budget
    }

    static func readPrune(_ o: RecipeObject) throws -> PruneSettings {
        var p = PruneSettings(name: try o.string("name"), model: try o.string("model"))
        p.heads = try o.sweepable("heads", in: 0...0.99)
        p.ffn = try o.sweepable("ffn", in: 0...0.99)
        if let layers = try o.sweepable("layers", in: 0...1000) {
            if let i = layers.values.firstIndex(where: { $0 != $0.rounded() }) {
                throw o.fail(layers.isSweep ? "layers.grid[\(i)]" : "layers", "\(layers.values[i]) is not a whole number of layers")
            }
            p.layers = Int(layers.values[0])
            if layers.isSweep { p.layersGrid = layers.values.map { Int($0) } }
        }
        p.uniform = try o.optionalBool("uniform") ?? false
        p.samples = try o.optionalInt("samples", in: 1...10_000_000) ?? p.samples
        p.batchSize = try o.optionalInt("batch_size", in: 1...65_536) ?? p.batchSize
        p.maxDrop = try o.optionalDouble("max_drop", in: 0...100)
        if p.isSweep, p.maxDrop == nil {
            throw o.fail("max_drop", "is missing — a grid of pruning amounts picks the most compressed candidate (fewest parameters) whose dev macro-F1 stays within max_drop points of the unpruned model's; give one, e.g. \"max_drop\": 1.0")
        }
        if !p.isSweep, p.maxDrop != nil {
            throw o.fail("max_drop", "only goes with a grid of pruning amounts (e.g. \"heads\": {\"grid\": [0.25, 0.5]}) — without one there is nothing to choose")
        }
        if pruneCandidates(p).contains(where: { ($0["heads"] ?? 0) == 0 && ($0["ffn"] ?? 0) == 0 && ($0["layers"] ?? 0) == 0 }) {
            throw o.fail(nil, p.isSweep ? "has a candidate that prunes nothing (heads, ffn and layers all 0) — the unpruned model is what the grid is measured against; leave 0 out of the grids"
                                        : "prunes nothing — give \"heads\" or \"ffn\" (fractions in [0, 1)) or \"layers\" (a count)")
        }
        if let r = try o.object("recover", allowed: ["schedule", "epochs", "train_limit", "learning_rate"]) {
            var schedule: [Double] = [1]
            if let v = r.members["schedule"], v != .null {
                guard case .array(let items) = v, !items.isEmpty else { throw r.fail("schedule", "is \(v.phrase), expected an array of fractions ending at 1, e.g. [0.5, 1]") }
                schedule = try items.enumerated().map { try r.number($1, at: "schedule[\($0)]", in: 0.001...1) }
                guard zip(schedule, schedule.dropFirst()).allSatisfy({ $0 < $1 }), schedule.last == 1 else {
                    throw r.fail("schedule", "must be increasing fractions ending at 1, e.g. [0.5, 1]")
                }
            }
            var recovery = RecoverySettings(schedule: schedule)
            recovery.epochs = try r.optionalInt("epochs", in: 1...1000) ?? 1
            recovery.trainLimit = try r.optionalInt("train_limit", in: 1...Int(Int32.max))
            recovery.learningRate = try r.optionalDouble("learning_rate", in: 1e-9...1)
            p.recover = recovery
        }
        p.sweep = try readSweep(o, allowed: ["trial_limit", "keep", "survivors"])
        if p.sweep != nil, !p.isSweep { throw o.fail("sweep", "only goes with a grid of pruning amounts (\"heads\", \"ffn\" or \"layers\" as {\"grid\": […]})") }
        return p
    }

    static func readQuantize(_ o: RecipeObject) throws -> QuantizeSettings {
        guard let models = try o.optionalStringList("models"), !models.isEmpty else { throw o.fail("models", "is missing or empty (expected names such as [\"teacher\", \"l3\"])") }
        var grid = o, key = "schemes"
        if case .object? = o.members["schemes"] {
            grid = try o.object("schemes", allowed: ["grid"])!
            key = "grid"
            guard grid.has("grid") else { throw grid.fail("grid", "is missing (expected the schemes to try, e.g. {\"grid\": [\"int8-dynamic\", \"int4-g32\"]})") }
            if case .array(let items)? = grid.members["grid"], items.isEmpty {
                throw grid.fail("grid", "is an empty grid — list the schemes to try (two or more), e.g. [\"int8-dynamic\", \"int4-g32\"]")
            }
        }
        guard let schemes = try grid.optionalStringList(key), !schemes.isEmpty else {
            throw o.fail("schemes", "is missing or empty (expected schemes such as [\"int8-dynamic\", \"int4-g32\"], or {\"grid\": […]} to pick one)")
        }
        for (i, s) in schemes.enumerated() {
            do { _ = try QuantizationScheme(parsing: s) } catch { throw grid.fail("\(key)[\(i)]", "\(error)") }
        }
        if let i = schemes.indices.first(where: { schemes.firstIndex(of: schemes[$0]) != $0 }) {
            throw grid.fail("\(key)[\(i)]", "'\(schemes[i])' is listed twice — name each scheme once")
        }
        var q = QuantizeSettings(models: models, schemes: schemes)
        q.maxDrop = try o.optionalDouble("max_drop", in: 0...100)
        q.grid = key == "grid"
        q.name = try o.optionalString("name")
        if q.grid {
            guard q.maxDrop != nil else {
                throw o.fail("max_drop", "is missing — a grid of schemes picks the most compressed one (smallest file) whose dev macro-F1 stays within max_drop points of the unquantized model's; give one, e.g. \"max_drop\": 1.0")
            }
            guard q.name != nil else { throw o.fail("name", "is missing — a grid of schemes makes one variant; name it (e.g. \"l3-q\"), downstream stages use that name") }
            guard models.count == 1 else { throw o.fail("models", "names \(models.count) models — a grid of schemes picks one variant for one model; give one entry per model") }
        } else if q.name != nil {
            throw o.fail("name", "only goes with a grid of schemes (\"schemes\": {\"grid\": […]}); a list of schemes names its variants MODEL-SCHEME")
        }
        q.calibrationSize = try o.optionalInt("calibration_size", in: 1...1_000_000) ?? q.calibrationSize
        q.evalSize = try o.optionalInt("eval_size", in: 0...10_000_000) ?? q.evalSize
        return q
    }

    static func readExport(_ o: RecipeObject) throws -> ExportSettings {
        guard let models = try o.optionalStringList("models"), !models.isEmpty else { throw o.fail("models", "is missing or empty (expected names such as [\"l3\"])") }
        guard let formats = try o.optionalStringList("formats"), !formats.isEmpty else {
            throw o.fail("formats", "is missing or empty (expected some of: \(ExportFormat.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        for (i, f) in formats.enumerated() where ExportFormat(rawValue: f) == nil {
            throw o.fail("formats[\(i)]", "'\(f)' is not one of: \(ExportFormat.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var e = ExportSettings(models: models, formats: formats)
        e.type = try o.optionalString("type") ?? "f32"
        guard ExportType(rawValue: e.type) != nil else { throw o.fail("type", "'\(e.type)' is not one of: \(ExportType.allCases.map(\.rawValue).joined(separator: ", "))") }
        return e
    }

    static func readBench(_ o: RecipeObject) throws -> BenchSettings {
        var b = BenchSettings()
        b.threads = try o.optionalInt("threads", in: 1...maximumThreads) ?? b.threads
        b.throughputBatch = try o.optionalInt("throughput_batch", in: 1...65_536) ?? b.throughputBatch
        b.maxLength = try o.optionalInt("max_length", in: 2...65_536)
        b.secondsPerTurn = try o.optionalDouble("seconds_per_turn", in: 0.01...3600) ?? b.secondsPerTurn
        b.rounds = try o.optionalInt("rounds", in: 1...1000) ?? b.rounds
        b.evalLimit = try o.optionalInt("eval_limit", in: 1...Int(Int32.max))
        b.split = try o.optionalString("split") ?? b.split
        guard ["train", "dev", "test"].contains(b.split) else { throw o.fail("split", "'\(b.split)' is not one of: train, dev, test") }
        return b
    }

    /// Names are unique and well formed; every model a stage names exists and is of a kind it takes.
    func checkNames(_ stages: RecipeObject) throws {
        var seen: [String: String] = ["teacher": "stages.teacher"]
        func claim(_ name: String, at path: String) throws {
            guard name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
                throw RecipeError(file: file, keyPath: path + ".name", "'\(name)' must be letters, digits, '-', '_' or '.' (it names files)")
            }
            if let first = seen[name] { throw RecipeError(file: file, keyPath: path + ".name", "'\(name)' is already the name of \(first) — give each model its own name") }
            seen[name] = path
        }
        for (i, d) in distill.enumerated() { try claim(d.name, at: "stages.distill[\(i)]") }
        for (i, p) in prune.enumerated() {
            try claim(p.name, at: "stages.prune[\(i)]")
            let allowed = ["teacher"] + distill.map(\.name)
            guard allowed.contains(p.model) else {
                throw RecipeError(file: file, keyPath: "stages.prune[\(i)].model", "'\(p.model)' is not a model this stage can prune — name one of: \(allowed.joined(separator: ", "))")
            }
        }
        for (i, q) in quantize.enumerated() {
            for (j, model) in q.models.enumerated() where !floatModels.contains(model) {
                throw RecipeError(file: file, keyPath: "stages.quantize[\(i)].models[\(j)]", "'\(model)' is not a model of this recipe — name one of: \(floatModels.joined(separator: ", "))")
            }
            for v in variantNames(q) { try claim(v.name, at: "stages.quantize[\(i)]") }
        }
        for (i, e) in export.enumerated() {
            for (j, model) in e.models.enumerated() where !floatModels.contains(model) {
                throw RecipeError(file: file, keyPath: "stages.export[\(i)].models[\(j)]", "'\(model)' is not an fp32 model of this recipe (export takes \(floatModels.joined(separator: ", ")))")
            }
        }
    }
}

/// The name of a quantized variant: `MODEL-SCHEME` ("l3-int8-dynamic").
enum QuantizedName {
    static func of(_ model: String, _ scheme: String) -> String { "\(model)-\(scheme)" }
}

/// sha256 as lowercase hex.
enum SHA256Hex {
    static func of(_ data: Data) -> String { DistilleryData.SHA256.hex(data) }
}
