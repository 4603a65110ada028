// kd data prepare / finetune / eval / label (run, merge, check) / distill: the pipeline
// from a dataset to a distilled student, each command one call into DistilleryStages
// (prepareDataset, finetune, evaluate, label, mergeLabelShards, checkLabelCache,
// prepareDistillation + DistillationRun.train). Every command that reports has --json
// (the report value on stdout; progress stays on stderr); old spellings (--batch,
// distill's --max-steps) are hidden aliases for one release.
import ArgumentParser
import Distillation
import DistilleryData
import DistilleryModel
import DistilleryStages
import DistilleryTraining
import Foundation

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Prepare datasets: clean, deduplicate and split into JSON lines.",
        subcommands: [Prepare.self])
}

extension DataCommand {
    struct Prepare: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Clean, deduplicate and split a dataset into train/dev/test JSONL.",
            usage: """
            kd data prepare <dataset> [<options>]
            kd data prepare --csv <csv> --text-column <column> \\
               --label-column <column> --name <name> [<options>]
            kd data prepare --append <csv> --base <folder> [--out <folder>]
            """,
            discussion: """
            Writes OUT/train.jsonl, dev.jsonl, test.jsonl (a seeded, stratified \
            80/10/10 split) and OUT/manifest.json (counts, rows dropped and why). \
            Built-in datasets (fetched by scripts/setup.sh): \
            \(BuiltinDataset.all.map(\.name).joined(separator: ", ")).

            --append writes the next version of a prepared dataset as a new folder \
            (default BASE-vN): every old row keeps its split (each file starts with \
            the old file's bytes), new rows are deduplicated against the old ones \
            and split per class by the same fractions; the manifest lists the versions.

            Examples:
              kd data prepare sms-spam
              kd data prepare --csv mine.csv --text-column text \\
                 --label-column label --name mine
              kd data prepare --append new.csv --base data/mine --out data/mine-v2
            """)

        @Argument(help: "Built-in dataset name.") var dataset: String?
        @Option(help: "Output folder (default: data/NAME).") var out: String?
        @Option(help: "Seed of the stratified split.") var seed: UInt64 = 13
        @Option(help: "Where scripts/fetch-datasets.sh put the built-in datasets.") var cache = ".cache/datasets"
        @Option(help: "Your own CSV file (with a header line).") var csv: String?
        @Option(name: .customLong("text-column"), help: "Header name of the text column (with --csv).") var textColumn: String?
        @Option(name: .customLong("label-column"), help: "Header name of the label column (with --csv).") var labelColumn: String?
        @Option(help: "Dataset name for ids and the default output folder (with --csv).") var name: String?
        @Option(help: "Field delimiter of --csv: ',' or 'tab'.") var delimiter = ","
        @Option(help: "Encoding of --csv: \(SourceEncoding.allCases.map(\.rawValue).joined(separator: ", ")).") var encoding = "utf-8"
        @Option(help: "Comma-separated label names in order (with --csv); rows with other labels are dropped as unknown.") var labels: String?
        @Option(help: "A model (.h5) whose vocabulary the manifest records as the one this data is for (kd monitor checks it).") var tokenizer: String?
        @Option(help: "A CSV of new rows to append to --base as its next version (columns --text-column/--label-column, default text/label).") var append: String?
        @Option(help: "The prepared dataset folder --append adds to (left unchanged).") var base: String?
        @Flag(help: "Print the report (manifest included) as JSON.") var json = false
        @Flag(help: "Replace an existing --out folder (swapped in whole once the new one is complete).") var force = false

        func run() throws {
            let report: PrepareReport
            if append != nil || base != nil {
                report = try appendDataset(try appendConfig())
            } else {
                report = try prepareDataset(PrepareConfig(input: try input(), out: out, seed: seed, tokenizer: tokenizer, force: force))
            }
            if json { try printJSON(report, pretty: true) } else { print(report.text) }
        }

        /// The --append run, with every flag that does not go with it refused.
        func appendConfig() throws -> AppendConfig {
            guard let append else { throw StageError.usage("--base \(base!) needs --append NEW.csv (the rows to add)") }
            guard let base else { throw StageError.usage("--append \(append) needs --base FOLDER (the prepared dataset to add to)") }
            if let dataset { throw StageError.usage("--append adds to --base \(base); drop the dataset name '\(dataset)'") }
            let refused = [("--csv", csv != nil), ("--name", name != nil), ("--labels", labels != nil), ("--tokenizer", tokenizer != nil),
                           ("--seed", seed != 13)]
            if let flag = refused.first(where: \.1) {
                throw StageError.usage("\(flag.0) does not go with --append — the name, labels, seed and tokenizer record come from --base's manifest")
            }
            return AppendConfig(base: base, csv: append, textColumn: textColumn ?? "text", labelColumn: labelColumn ?? "label",
                                delimiter: try parseDelimiter(), encoding: try parseChoice(encoding, flag: "--encoding", as: SourceEncoding.self),
                                out: out, force: force)
        }

        /// The built-in dataset or the --csv file, with every flag checked.
        func input() throws -> DatasetInput {
            let csvFlags = [("--text-column", textColumn), ("--label-column", labelColumn), ("--name", name)]
            guard let csv else {
                if let flag = csvFlags.first(where: { $0.1 != nil }) { throw StageError("\(flag.0) only goes with --csv FILE") }
                if labels != nil { throw StageError.usage("--labels only goes with --csv FILE") }
                if delimiter != "," { throw StageError.usage("--delimiter only goes with --csv FILE") }
                if encoding != "utf-8" { throw StageError.usage("--encoding only goes with --csv FILE (built-in datasets know their encoding)") }
                guard let dataset else {
                    throw StageError("name a dataset (\(BuiltinDataset.all.map(\.name).joined(separator: ", "))) or give --csv FILE --text-column C --label-column L --name NAME")
                }
                return .builtin(name: dataset, cache: cache)
            }
            if let dataset { throw StageError("give either a dataset name ('\(dataset)') or --csv \(csv), not both") }
            let missing = csvFlags.filter { $0.1 == nil }.map(\.0)
            guard missing.isEmpty, let name, let textColumn, let labelColumn else {
                throw StageError.usage("--csv needs \(missing.joined(separator: ", ")) as well")
            }
            guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }),
                  name != ".", name != ".." else {
                throw StageError.usage("--name '\(name)' must be letters, digits, '-', '_' or '.' (it names the output folder)")
            }
            let separator = try parseDelimiter()
            let sourceEncoding = try parseChoice(encoding, flag: "--encoding", as: SourceEncoding.self)
            return .csv(CSVInput(path: csv, textColumn: textColumn, labelColumn: labelColumn, name: name,
                                 delimiter: separator, encoding: sourceEncoding, labels: try labelList()))
        }

        func parseDelimiter() throws -> Character {
            switch delimiter {
            case "tab", "\\t", "\t": return "\t"
            case _ where delimiter.count == 1 && delimiter != "\"" && delimiter.first!.isASCII: return delimiter.first!
            default: throw StageError.usage("--delimiter '\(delimiter)' must be one ASCII character (e.g. ',', ';', '|') or 'tab'")
            }
        }

        func labelList() throws -> [String]? {
            guard let labels else { return nil }
            let list = labels.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard !list.isEmpty, Set(list).count == list.count else {
                throw StageError.usage("--labels '\(labels)' must be distinct, comma-separated label names")
            }
            return list
        }
    }
}

struct Finetune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fine-tune a model with a new classification head on a prepared dataset.",
        discussion: """
        Adds a BertForSequenceClassification head over the dataset's labels and trains \
        end to end with AdamW, warm-up and linear or cosine decay; evaluates on dev \
        every --eval-every steps and writes the best model (dev macro-F1) to --out, \
        with its labels, pooling, head start and maximum length stored for eval, \
        predict, embed and label.

        Defaults that work on the shipped teacher: the head starts as a linear probe \
        (LP-FT; --head-init random for HF's) and reads the sequence the way the \
        encoder was trained to pool (mean for sentence-transformers teachers; \
        --pooling cls for HF's pooler over [CLS]).

        Files: OUT (the model) and, for OUT = NAME.h5, NAME.metrics.jsonl (one JSON line per step and dev \
        evaluation). The checkpoint (default: OUT with .ckpt.h5) is removed after a \
        successful run unless --keep-checkpoint; --resume CKPT continues a run \
        exactly where it stopped.

        Examples:
          kd finetune --model teacher.h5 --data data/mine --out mine.h5
          kd finetune --model teacher.h5 --data data/sms-spam --out sms.h5 \\
             --epochs 1 --max-length 64 --json
        """)

    @Option(help: "Distillery model file (.h5) to start from.") var model: String
    @Option(help: "Prepared dataset folder (kd data prepare), e.g. data/sms-spam.") var data: String
    @Option(help: "Output model file (.h5).") var out: String
    @Option(help: "Passes over the training split.") var epochs = 3
    @Option(help: "Peak learning rate.") var lr = 5e-5
    @Option(name: .customLong("batch-size"), help: "Examples per optimizer step (default: 32).") var batchSize: Int?
    @Option(name: .customLong("batch"), help: .hidden) var oldBatch: Int?
    @Option(name: .customLong("max-length"), help: "Truncate texts to this many tokens (default: the model's stored length, else 128).")
    var maxLength: Int?
    @Option(help: "Warm-up: a fraction of all steps (< 1) or a step count (≥ 1).") var warmup = "0.1"
    @Option(help: "Decay after warm-up: linear or cosine.") var schedule = "linear"
    @Option(name: .customLong("weight-decay"), help: "AdamW decoupled weight decay (not on biases and LayerNorm).") var weightDecay = 0.01
    @Option(help: "Clip the global gradient norm to this (0 = off).") var clip = 1.0
    @Option(name: .customLong("eval-every"), help: "Evaluate on dev every N steps (default: once per epoch).") var evalEvery: Int?
    @Option(name: .customLong("checkpoint-every"), help: "Write a checkpoint every N steps (default: at each evaluation; 0 = only at the end).") var checkpointEvery: Int?
    @Option(help: "Checkpoint file (default: OUT with .ckpt.h5).") var checkpoint: String?
    @Flag(name: .customLong("keep-checkpoint"), help: "Keep the checkpoint after a successful run.") var keepCheckpoint = false
    @Option(name: .customLong("max-steps"), help: "Train this many optimizer steps at most; the schedule ends there.") var maxSteps: Int?
    @Option(help: "Seed of data order, dropout and head initialization.") var seed: UInt64 = 13
    @Option(help: "What the classifier reads: mean (the masked mean of the last hidden states) or cls (HF's tanh pooler over [CLS]). Default: the teacher's own pooling — mean for sentence-transformers teachers, else cls.") var pooling: String?
    @Option(name: .customLong("head-init"), help: "How the new head starts: probe (LP-FT: fitted alone on the frozen encoder's features first, the default) or random (HF: N(0, 0.02)).") var headInit: String?
    @Flag(name: .customLong("replace-head"), help: "Train a new head over a model that already has a classifier.") var replaceHead = false
    @Option(help: "Continue from this checkpoint (same model, data and flags).") var resume: String?
    @Flag(help: "Print the report as JSON.") var json = false
    @Flag(help: "Let --out replace --model (written whole, then renamed over it).") var force = false
    @Option(name: .customLong("debug-pause-after-step"), help: .hidden) var pauseAfterStep: Int?
    @OptionGroup var threads: ThreadOptions

    func run() throws {
        var config = FinetuneConfig(model: model, data: data, out: out)
        config.force = force
        guard let w = Double(warmup) else { throw StageError.usage("--warmup '\(warmup)' must be a fraction in [0, 1) or a whole number of steps") }
        let batch = try aliased(batchSize, oldBatch, new: "--batch-size", old: "--batch") ?? 32
        (config.epochs, config.learningRate, config.batchSize, config.maxLength, config.warmup) = (epochs, lr, batch, maxLength, w)
        config.schedule = try parseChoice(schedule, flag: "--schedule", as: LearningRateSchedule.Decay.self)
        config.pooling = try pooling.map { try parseChoice($0, flag: "--pooling", as: PoolingMode.self) }
        config.headInit = try headInit.map { try parseChoice($0, flag: "--head-init", as: HeadInit.self) }
        (config.weightDecay, config.clip, config.evalEvery, config.checkpointEvery) = (weightDecay, clip, evalEvery, checkpointEvery)
        (config.checkpoint, config.maxSteps, config.seed, config.resume) = (checkpoint, maxSteps, seed, resume)
        (config.replaceHead, config.keepCheckpoint) = (replaceHead, keepCheckpoint)
        (config.pauseAfterStep, config.threads) = (pauseAfterStep, try threads.count())
        let report = try finetune(config, progress: stderrProgress())
        if json { try printJSON(report, pretty: true) } else { print(report.text) }
    }
}

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Score a classifier on a dataset split: accuracy, macro-F1, confusion.",
        usage: "kd eval --model <model> --data <data> [--split <split>] [<options>]",
        discussion: """
        Prints accuracy, macro-F1, per-class precision/recall/F1 and the confusion \
        matrix at the model's stored maximum length. With --teacher, also how closely \
        the model follows that teacher on the same split: top-1 agreement and mean \
        KL(teacher ‖ model) at temperature 1 (the teacher must have the same labels).

        Examples:
          kd eval --model mine.h5 --data data/mine
          kd eval --model student.h5 --data data/sms-spam --teacher sms.h5 --json
          kd eval --model mlm.h5 --data data/sms-spam --pseudo-perplexity
        """)

    @Option(help: "Distillery model file (.h5) with a classification head.") var model: String
    @Option(help: "Prepared dataset folder (kd data prepare).") var data: String
    @Option(help: "Split to evaluate: train, dev or test.") var split = "test"
    @Option(name: .customLong("max-length"), help: "Truncate to this many tokens (default: the model's stored length, else 128).") var maxLength: Int?
    @Option(name: .customLong("batch-size"), help: "Sequences per forward pass.") var batchSize = 32
    @Option(help: "A teacher model (.h5) with the same labels: adds agreement and KL(teacher ‖ model).") var teacher: String?
    @Option(help: "The head of a multi-task model to score (kd info lists them).") var task: String?
    @Flag(name: .customLong("pseudo-perplexity"), help: "Score the split's text with the model's masked-LM head instead (Salazar et al. 2020; needs a BertForMaskedLM import).") var pseudoPerplexity = false
    @Option(name: .customLong("eval-limit"), help: "Score only the split's first N texts.") var evalLimit: Int?
    @Flag(help: "Print JSON instead of a table.") var json = false
    @OptionGroup var threads: ThreadOptions

    func run() throws {
        if pseudoPerplexity {
            if let teacher { throw StageError.usage("--teacher \(teacher) does not go with --pseudo-perplexity (it compares classifiers)") }
            if let task { throw StageError.usage("--task \(task) does not go with --pseudo-perplexity (it scores the masked-LM head)") }
            let config = PseudoPerplexityConfig(model: model, data: data, split: try parseChoice(split, flag: "--split", as: Split.self),
                                                maxLength: maxLength, batchSize: batchSize, limit: evalLimit, threads: try threads.count())
            let report = try DistilleryStages.pseudoPerplexity(config, progress: stderrProgress())
            if json { try printJSON(report) } else { print(report.text) }
            return
        }
        var config = EvalConfig(model: model, data: data, split: try parseChoice(split, flag: "--split", as: Split.self),
                                maxLength: maxLength, batchSize: batchSize, teacher: teacher, threads: try threads.count())
        config.task = task
        config.limit = evalLimit
        let report = try evaluate(config, progress: stderrProgress())
        if json { try printJSON(report) } else { print(report.text) }
    }
}

struct Label: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Cache a classifier teacher's soft labels for distillation.",
        discussion: """
        'kd label --teacher …' is 'kd label run --teacher …' (run is the default); \
        'kd label merge' joins shards, 'kd label check' checks a cache.
        """,
        subcommands: [LabelRun.self, LabelMerge.self, LabelCheck.self],
        defaultSubcommand: LabelRun.self)
}

struct LabelRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the teacher over the training split and write the label cache.",
        discussion: """
        The default of 'kd label'. --hidden and --attention take a comma list or \
        'all': hidden states 0 (embeddings) … L, attention maps 1 … L. The cache \
        records the teacher's and the data's sha256; students refuse a cache made from \
        another teacher or data. Temperature is applied at training time.

        Examples:
          kd label --teacher sms.h5 --data data/sms-spam --out sms-labels.h5
          kd label --teacher sms.h5 --data data/sms-spam --out l.h5 --dry-run
        """)

    @Option(help: "Fine-tuned classifier teacher (.h5, from kd finetune).") var teacher: String
    @Option(help: "Prepared dataset folder (kd data prepare), e.g. data/sms-spam.") var data: String
    @Option(help: "Output label cache (.h5).") var out: String
    @Option(name: .customLong("top-k"), help: "Keep only the K largest logits and the remaining mass (default: all).") var topK: Int?
    @Option(help: "Hidden states to store: e.g. 0,2,4,6 or all.") var hidden: String?
    @Option(help: "Attention maps to store: e.g. 2,4,6 or all.") var attention: String?
    @Option(help: "Augmented copies per training example (TinyBERT uses 20).") var augment = 0
    @Option(name: .customLong("augment-prob"), help: "Probability of replacing each eligible word.") var augmentProb = AugmentationOptions.defaultProbability
    @Option(help: "Nearest neighbours a replacement is drawn from.") var neighbours = AugmentationOptions.defaultNeighbours
    @Option(help: "Seed of the augmentation.") var seed: UInt64 = 13
    @Option(name: .customLong("max-length"), help: "Truncate texts to this many tokens (default: the teacher's stored length, else 128).") var maxLength: Int?
    @Option(name: .customLong("batch-size"), help: "Sequences per forward pass (default: 32).") var batchSize: Int?
    @Option(name: .customLong("batch"), help: .hidden) var oldBatch: Int?
    @Option(help: "Label only shard i of n (0-based), e.g. 0/4; join the parts with 'kd label merge'.") var shard: String?
    @Option(name: .customLong("max-disk"), help: "Refuse when the cache would take more than this on disk (e.g. 500M, 8G).") var maxDisk = "8G"
    @Flag(name: .customLong("dry-run"), help: "Print what the cache would cost, write nothing.") var dryRun = false
    @Flag(help: "Print the report as JSON.") var json = false
    @OptionGroup var threads: ThreadOptions

    func run() throws {
        var config = LabelConfig(teacher: teacher, data: data, out: out)
        let batch = try aliased(batchSize, oldBatch, new: "--batch-size", old: "--batch") ?? 32
        (config.topK, config.augment, config.augmentProbability, config.neighbours) = (topK, augment, augmentProb, neighbours)
        (config.seed, config.maxLength, config.batchSize, config.dryRun, config.threads) = (seed, maxLength, batch, dryRun, try threads.count())
        config.hidden = try hidden.map { try LayerSelection(parsing: $0, flag: "--hidden") }
        config.attention = try attention.map { try LayerSelection(parsing: $0, flag: "--attention") }
        config.shard = try shard.map(ShardSelection.init(parsing:)) ?? .whole
        config.maxDisk = try ByteSize(parsing: maxDisk, flag: "--max-disk")
        let report = try label(config, progress: stderrProgress())
        if json { try printJSON(report, pretty: true) } else { print(report.text) }
    }
}

struct LabelMerge: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Join the shards of a 'kd label --shard i/n' run into one cache.",
        discussion: """
        The result is byte-identical to an unsharded run.

        Example:
          kd label merge --out labels.h5 part-0.h5 part-1.h5
        """)

    @Option(help: "Output label cache (.h5).") var out: String
    @Argument(help: "Shard files, every shard 0..<n exactly once (any order).") var parts: [String] = []

    func run() throws { print(try mergeLabelShards(parts, out: out).text) }
}

struct LabelCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check that a label cache was made from this teacher and data.",
        discussion: """
        The check a student run does first.

        Example:
          kd label check labels.h5 --teacher sms.h5 --data data/sms-spam
        """)

    @Argument(help: "Label cache (.h5).") var labels: String
    @Option(help: "Teacher file (.h5).") var teacher: String
    @Option(help: "Prepared dataset folder.") var data: String

    func run() throws { print(try checkLabelCache(labels, teacher: teacher, data: data).text) }
}

extension TeacherStatesMode: ExpressibleByArgument {}

/// `kd distill --json`: the checked plan, and the result unless --plan-only.
struct DistillJSON: Encodable {
    let plan: DistillPlanReport
    let result: DistillReport?
}

struct Distill: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Distil a fine-tuned teacher into a student (students/*.json).",
        usage: """
        kd distill --teacher <teacher> --student <student> --labels <labels>
           --data <data> --out <out> [<options>]
        """,
        discussion: """
        Validates and prints the plan (which student layer learns from which teacher \
        layer, through which projection, with which losses), checks that --labels was \
        made from --teacher and --data, then trains with AdamW (each stage: warm-up, \
        then linear decay), evaluates on dev and writes the best student (dev \
        macro-F1) to --out with the cache's maximum length stored. Flags override the \
        spec's "training" values.

        Files: OUT and, for OUT = NAME.h5, NAME.metrics.jsonl (one JSON line per step and dev evaluation). \
        The checkpoint (default: OUT with .ckpt.h5) is removed after a successful run \
        unless --keep-checkpoint; --resume CKPT continues a run exactly.

        Examples:
          kd distill --teacher sms.h5 --student students/distil-l3-h384.json \\
             --labels sms-labels.h5 --data data/sms-spam --out sms-l3.h5
          kd distill … --plan-only
        """)

    @Option(help: "Fine-tuned teacher model (.h5) the label cache was made with (one per --task).") var teacher: [String] = []
    @Option(help: "Student spec (students/*.json).") var student: String
    @Option(help: "Soft-label cache made by 'kd label' from --teacher and --data (one per --task).") var labels: [String] = []
    @Option(help: "Prepared dataset folder (dev split for model selection; one per --task).") var data: [String] = []
    @Option(help: "Multi-task: the name of a head; the n-th --task goes with the n-th --teacher, --labels and --data (repeat for each task).")
    var task: [String] = []
    @Option(name: .customLong("task-sampling"), help: "Multi-task: batches per task ∝ size^α — proportional (α = 1), sqrt (α = ½, the default) or uniform (α = 0).")
    var taskSampling: String = "sqrt"
    @Option(help: "Output student model file (.h5).") var out: String
    @Option(help: "Peak learning rate (default: the spec's, else 5e-5).") var lr: Double?
    @Option(name: .customLong("batch-size"), help: "Examples per optimizer step (default: the spec's, else 32).") var batchSize: Int?
    @Option(name: .customLong("batch"), help: .hidden) var oldBatch: Int?
    @Option(help: "Warm-up fraction of each stage's steps (default: the spec's, else 0.1).") var warmup: Double?
    @Option(name: .customLong("weight-decay"), help: "AdamW decoupled weight decay.") var weightDecay = 0.01
    @Option(help: "Clip the global gradient norm to this (0 = off).") var clip = 1.0
    @Option(name: .customLong("eval-every"), help: "Evaluate on dev every N steps (default: once per epoch).") var evalEvery: Int?
    @Option(name: .customLong("checkpoint-every"), help: "Write a checkpoint every N steps (default: at each evaluation).") var checkpointEvery: Int?
    @Option(help: "Checkpoint file (default: OUT with .ckpt.h5).") var checkpoint: String?
    @Flag(name: .customLong("keep-checkpoint"), help: "Keep the checkpoint after a successful run.") var keepCheckpoint = false
    @Option(help: "Epochs replacing the spec's schedule: N (one-stage) or intermediate,prediction (two-stage).") var epochs: String?
    @Option(name: .customLong("stop-after"), help: "Stop after this many optimizer steps; the learning-rate schedule stays the full run's.") var stopAfter: Int?
    @Option(name: .customLong("max-steps"), help: .hidden) var oldMaxSteps: Int?
    @Option(name: .customLong("teacher-states"), help: "Teacher hidden states: auto (cache if it has them), cache, or online.")
    var teacherStates: TeacherStatesMode = .auto
    @Option(help: "Loss weights replacing the spec's, e.g. hard_ce=1 or soft_ce=5,hard_ce=2 (ablations).") var losses: String?
    @Option(help: "Seed of data order, dropout and random initialisation (default: the spec's, else 13).") var seed: UInt64?
    @Option(name: .customLong("init"), help: "Start the student from this model file (e.g. a pruned model with the spec's shapes) instead of the spec's init.") var initWeights: String?
    @Option(name: .customLong("train-limit"), help: "Train on the first N cached examples only (a budget).") var trainLimit: Int?
    @Option(name: .customLong("replay-fraction"), help: "On an appended dataset (kd data prepare --append): train on the newest version's rows plus this fraction of the earlier rows (0 = new rows only).") var replayFraction: Double?
    @Option(help: "Continue from this checkpoint (same teacher, student, labels and flags).") var resume: String?
    @Flag(name: .customLong("plan-only"), help: "Print the plan and the checks, then stop.") var planOnly = false
    @Flag(help: "Print the plan and the report as JSON (the plan is not printed as text).") var json = false
    @Flag(help: "Let --out replace --teacher (written whole, then renamed over it).") var force = false
    @Option(name: .customLong("debug-pause-after-step"), help: .hidden) var pauseAfterStep: Int?
    @OptionGroup var threads: ThreadOptions

    func run() throws {
        if !task.isEmpty { return try runTasks() }
        for (flag, values) in [("--teacher", teacher), ("--labels", labels), ("--data", data)] where values.count != 1 {
            throw StageError.usage(values.isEmpty ? "missing \(flag) — kd distill needs --teacher, --labels and --data"
                                   : "\(flag) is given \(values.count) times — give it once, or name each task with --task for a multi-task student")
        }
        let config = try settings(DistillConfig(teacher: teacher[0], student: student, labels: labels[0], data: data[0], out: out))
        let run = try prepareDistillation(config) { if !json { print($0) } }
        if !json { print(run.report.trainingData + "\n" + run.report.teacherStates) }
        fflush(nil)   // the plan (stdout) before the progress lines on stderr
        let result = planOnly ? nil : try run.train(progress: stderrProgress())
        if json { try printJSON(DistillJSON(plan: run.report, result: result), pretty: true) } else if let result { print(result.text) }
    }

    /// A multi-task run: the n-th --task with the n-th --teacher, --labels and --data.
    func runTasks() throws {
        for (flag, values) in [("--teacher", teacher), ("--labels", labels), ("--data", data)] where values.count != task.count {
            throw StageError.usage("\(task.count) --task but \(values.count) \(flag) — give one --teacher, --labels and --data per --task, in the same order")
        }
        if replayFraction != nil { throw StageError.usage("--replay-fraction does not go with --task (multi-task runs train on each task's whole training split)") }
        let tasks = task.indices.map { DistillTask(name: task[$0], teacher: teacher[$0], labels: labels[$0], data: data[$0]) }
        var config = MultiTaskDistillConfig(tasks: tasks, student: student, out: out)
        config.sampling = try parseChoice(taskSampling, flag: "--task-sampling", as: TaskSampling.self)
        config.base = try settings(config.base)
        let run = try prepareMultiTaskDistillation(config) { if !json { print($0) } }
        if !json { print(run.report.trainingData) }
        fflush(nil)
        let result = planOnly ? nil : try run.train(progress: stderrProgress())
        if json { try printJSON(MultiTaskDistillJSON(plan: run.report, result: result), pretty: true) } else if let result { print(result.text) }
    }

    /// `config` with the training flags applied.
    func settings(_ start: DistillConfig) throws -> DistillConfig {
        var config = start
        let batch = try aliased(batchSize, oldBatch, new: "--batch-size", old: "--batch")
        // distill's old --max-steps stopped early with the full run's schedule: that is --stop-after
        let stop = try aliased(stopAfter, oldMaxSteps, new: "--stop-after", old: "--max-steps")
        (config.learningRate, config.batchSize, config.warmup, config.seed) = (lr, batch, warmup, seed)
        (config.weightDecay, config.clip, config.evalEvery, config.checkpointEvery) = (weightDecay, clip, evalEvery, checkpointEvery)
        (config.checkpoint, config.epochs, config.stopAfter, config.teacherStates) = (checkpoint, epochs, stop, teacherStates)
        config.losses = try losses.map(parseLossWeights)
        (config.resume, config.planOnly, config.pauseAfterStep, config.threads) = (resume, planOnly, pauseAfterStep, try threads.count())
        (config.keepCheckpoint, config.initWeights, config.trainLimit, config.force) = (keepCheckpoint, initWeights, trainLimit, force)
        config.replayFraction = replayFraction
        return config
    }
}

/// `kd distill --task … --json`: the checked plan and, unless --plan-only, the report.
struct MultiTaskDistillJSON: Encodable {
    var plan: DistillPlanReport
    var result: MultiTaskDistillReport?
}
