// kd: Distillery's command line — argument declarations over DistilleryStages.
//
// Each subcommand parses its flags, builds the stage's configuration, calls one library
// function and prints the report it returns (as text, or as JSON with --json). One
// vocabulary across subcommands: --out for every output, --batch-size for sequences per
// step or pass, --threads N|auto (default auto: every core), --input FILE or - (stdin);
// old spellings (--output, --batch, distill's --max-steps) are hidden aliases for one
// release and conflict with the new ones. Exit codes: 0 ok; 1 bad input or a failed run
// (`StageError`); 2 usage — an unknown, missing, malformed, out-of-range or conflicting
// flag (ArgumentParser's own errors, whose code 64 is mapped to 2, and a StageError about
// a flag) — `kd monitor` exits 3 and 4 instead, its 1 and 2 being warn and drift verdicts.
// Errors are one `kd: error: ...` line; progress goes to stderr. This file: the
// entry point, shared helpers, and the commands that bring a model in (import, info) and
// run it over lines of text (tokenize, embed, predict), and the benches (latency,
// tokenizer, train-step, distill-step; their peers are benchmarks/*.py);
// TrainingCommands.swift has the pipeline (data prepare, finetune, eval, label, distill).
import ArgumentParser
import DistilleryJSON
import DistilleryModel
import DistilleryStages
import Foundation
import Reporting

@main
struct KD: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kd",
        abstract: "Distillery: fine-tune, distil and measure BERT models on CPU.",
        discussion: """
        Your own CSV (a text and a label column) and a teacher, in four commands:

          kd data prepare --csv mine.csv --text-column text --label-column label \\
             --name mine
          kd finetune --model teacher.h5 --data data/mine --out mine.h5
          kd eval --model mine.h5 --data data/mine
          echo "great product" | kd predict --model mine.h5

        Exit codes: 0 ok; 1 bad input or a failed run (a file, the data, the \
        model); 2 usage (an unknown, missing, malformed, out-of-range or \
        conflicting flag). kd monitor: 0 no drift, 1 warn, 2 drift; its errors \
        exit 3 (bad input) and 4 (usage).

        Shell completion: kd --generate-completion-script bash|zsh|fish \
        (README.md says where to put it).
        """,
        version: BuildInfo.line,
        subcommands: [Import.self, Info.self, ExportCommand.self, Tokenize.self, Embed.self, Predict.self, Bench.self, DataCommand.self,
                      Finetune.self, Quantize.self, Prune.self, Evaluate.self, Label.self, Distill.self, Report.self, Pick.self,
                      RunCommand.self, MonitorCommand.self])

    /// Runs the command; an error becomes one `kd: error:` line and exit code 1 (bad input,
    /// failed run) or 2 (usage).
    static func main() {
        kdExecutable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as StageError {
            fail(error.description, code: error.isUsage ? 2 : 1)
        } catch let error as UsageError {
            fail(error.description, code: 2)
        } catch let error as ReportError {   // a report file that cannot be read or written
            fail(error.description, code: 1)
        } catch {
            if exitCode(for: error) == .validationFailure {   // ArgumentParser's usage errors (64)
                fail(usageLine(fullMessage(for: error)), code: 2)
            }
            exit(withError: error)
        }
    }

    private static func fail(_ message: String, code: Int32) -> Never {
        FileHandle.standardError.write(Data("kd: error: \(message)\n".utf8))
        // kd monitor's 1 and 2 are verdicts (warn, drift): its errors exit 3 and 4 instead.
        let monitoring = CommandLine.arguments.dropFirst().first == "monitor"
        Foundation.exit(monitoring ? code + 2 : code)
    }
}

/// ArgumentParser's multi-line usage error as one line: its first line, why a negative
/// number was not taken as a value (it reads `-1` as a flag), and where the help is.
func usageLine(_ full: String, arguments: [String] = CommandLine.arguments) -> String {
    let lines = full.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    var first = lines.first ?? "bad command line"
    if first.hasPrefix("Error: ") { first.removeFirst("Error: ".count) }
    if first.hasPrefix("Missing value for '"), let flag = first.dropFirst("Missing value for '".count).split(separator: " ").first,
       let i = arguments.firstIndex(of: String(flag)), i + 1 < arguments.count, Double(arguments[i + 1]) != nil {
        return "\(flag) \(arguments[i + 1]): a value starting with '-' is read as a flag — write \(flag)=\(arguments[i + 1])"
    }
    let help = lines.first { $0.hasPrefix("See '") }.map { " — s" + $0.dropFirst() } ?? ""
    return first + help
}

/// A command-line error kd finds itself (conflicting spellings): exit code 2.
struct UsageError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Writes "kd: <text>" to stderr.
func note(_ text: String) { FileHandle.standardError.write(Data("kd: \(text)\n".utf8)) }

/// The value of a flag given under its new spelling or its old one (a hidden alias kept for
/// one release, which says so); both at once is a usage error.
func aliased<T>(_ new: T?, _ old: T?, new newName: String, old oldName: String) throws -> T? {
    if new != nil && old != nil {
        throw UsageError("\(oldName) is the old spelling of \(newName) — give only \(newName)")
    }
    if old != nil { note("\(oldName) is now \(newName); the old spelling goes in the next release") }
    return new ?? old
}

/// Options shared by commands that run the model.
struct ThreadOptions: ParsableArguments {
    @Option(help: "Worker threads: a number, or auto for every core.")
    var threads = "auto"

    /// The thread count (`auto`: every core).
    func count() throws -> Int { try parseThreads(threads) }
}

/// Progress on stderr, warnings prefixed with "kd: ".
func stderrProgress() -> StageProgress { TextProgress(warningPrefix: "kd: ") }

/// Prints a report as JSON (the shared encoder: sorted keys).
func printJSON(_ value: some Encodable, pretty: Bool = false) throws {
    print(try JSONCoding.string(value, pretty: pretty))
}

/// Parses a comma-separated list of positive integers for `flag`.
func parseIntList(_ text: String, flag: String) throws -> [Int] {
    let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    let values = parts.compactMap { Int($0) }
    guard !parts.isEmpty, values.count == parts.count, values.allSatisfy({ $0 >= 1 }) else {
        throw StageError.usage("\(flag) '\(text)' must be a comma-separated list of positive integers, e.g. 1,32")
    }
    return values
}

/// Parses a flag's value into an enum case, or an error listing the choices.
func parseChoice<T: RawRepresentable & CaseIterable>(_ text: String, flag: String, as type: T.Type) throws -> T where T.RawValue == String {
    guard let value = T(rawValue: text) else {
        throw StageError.usage("\(flag) '\(text)' is not one of: \(T.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    return value
}

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import a BERT model (HF directory, .safetensors or .h5) into one .h5 file.",
        usage: "kd import <source> --out <out> [<options>]",
        discussion: """
        Reads an HF model directory (config.json + model.safetensors or tf_model.h5 + \
        vocab.txt, plus sentence-transformers' modules.json and 1_Pooling when present), \
        a .safetensors file, or an HDF5 file in flat, nested or tf_model.h5 layout.

        Example:
          kd import .cache/minilm-l6 --out teacher.h5
        """)

    @Argument(help: "HF model directory, a .safetensors file, or an .h5 file.")
    var source: String
    @Option(help: "Output Distillery model file (.h5).") var out: String
    @Option(help: "vocab.txt (default: beside the weights).") var vocab: String?
    @Option(help: "HF config.json (default: beside the weights).") var config: String?
    @Flag(help: "Let --out replace the source file (written whole, then renamed over it).") var force = false

    func run() throws {
        print(try importModel(ImportConfig(source: source, out: out, vocabulary: vocab, config: config, force: force)).text)
    }
}

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe a model: architecture, labels, stored settings, size.",
        discussion: """
        Shows what the file carries for inference: label names, what the classifier \
        reads (mean or [CLS] pooler), how its head started, the maximum length it was \
        trained at, and the sentence pooling. --tensors lists every tensor.

        Examples:
          kd info teacher.h5
          kd info mine.h5 --json | python3 -m json.tool
        """)

    @Argument(help: "A Distillery .h5 model, or any source kd import reads.") var file: String
    @Flag(help: "List every tensor with its shape.") var tensors = false
    @Flag(help: "Print JSON instead of text.") var json = false

    func run() throws {
        let description = try describeModel(file, listTensors: tensors)
        if json { try printJSON(description, pretty: true) } else { print(description.text) }
    }
}

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print token ids, one line of space-separated ids per input line.",
        usage: "kd tokenize --model <model> [--input <input>] [<options>]",
        discussion: """
        Example:
          echo "Distillation makes models smaller." | kd tokenize --model teacher.h5
        """)

    @Option(help: "Distillery model file (.h5) whose vocabulary to use.") var model: String
    @Flag(name: .customLong("no-special"), help: "Leave out [CLS] and [SEP].") var noSpecial = false
    @Option(name: .customLong("max-length"), help: "Truncate to this many tokens (default: the model's stored length, else none).")
    var maxLength: Int?
    @Option(help: "Input file, one text per line (- or none: stdin).") var input: String?

    func run() throws {
        print(try tokenize(TokenizeConfig(model: model, input: input, addSpecialTokens: !noSpecial, maxLength: maxLength)).text)
    }
}

struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sentence embeddings as JSON lines: {\"text\", \"embedding\"}.",
        usage: "kd embed --model <model> [--input <input>] [--out <out>] [<options>]",
        discussion: """
        One line out per line in, in order; a blank line is a text too. Pooling, \
        normalization and maximum length are the model's own unless a flag overrides \
        them.

        Examples:
          kd embed --model teacher.h5 --input sentences.txt --out emb.jsonl
          echo "a sentence" | kd embed --model teacher.h5
        """)

    @OptionGroup var options: LineRunOptions
    @Option(help: "Pooling: mean or cls (default: the model's own).") var pooling: String?
    @Flag(inversion: .prefixedNo, help: "L2-normalize the embeddings, or not (default: the model's own setting).") var normalize: Bool?

    func run() throws {
        let mode = try pooling.map { try parseChoice($0, flag: "--pooling", as: PoolingMode.self) }
        let config = try options.config()
        options.show(try embed(config, pooling: mode, normalize: normalize, progress: stderrProgress()), config)
    }
}

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify lines: {\"text\", \"label\", \"score\", \"probs\": {name: p}}.",
        usage: "kd predict --model <model> [--input <input>] [--out <out>] [<options>]",
        discussion: """
        One JSON line out per line in, in order (a blank line is a text too), as HF's \
        text-classification pipeline reports it plus every class's probability. \
        Label names and maximum length come from the model file.

        Examples:
          echo "great product" | kd predict --model mine.h5
          kd predict --model mine.h5 --input reviews.txt --out predictions.jsonl
        """)

    @OptionGroup var options: LineRunOptions
    @Option(help: "Class names in class order, for a model that stores none (e.g. neg,pos).") var labels: String?

    func run() throws {
        let names = labels.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        if let names, names.contains(""), let labels { throw StageError.usage("--labels '\(labels)' has an empty name — give NAME,NAME,…") }
        let config = try options.config()
        options.show(try predict(config, labels: names, progress: stderrProgress()), config)
    }
}

/// Options shared by the commands that run a model over lines of input.
struct LineRunOptions: ParsableArguments {
    @Option(help: "Distillery model file (.h5).") var model: String
    @Option(help: "Input file, one text per line (- or none: stdin).") var input: String?
    @Option(help: "Output JSONL file (default: stdout).") var out: String?
    @Option(name: .customLong("output"), help: .hidden) var oldOutput: String?
    @Option(name: .customLong("max-length"), help: "Truncate to this many tokens (default: the model's stored length, else 128).")
    var maxLength: Int?
    @Option(name: .customLong("batch-size"), help: "Sequences per forward pass.") var batchSize = 32
    @Flag(help: "Input lines are space-separated token ids, special tokens included.") var pretokenized = false
    @Option(help: "The head of a multi-task model to run (kd info lists them).") var task: String?
    @OptionGroup var threads: ThreadOptions

    func config() throws -> LineRunConfig {
        var config = LineRunConfig(model: model, input: input, output: try aliased(out, oldOutput, new: "--out", old: "--output"),
                                   maxLength: maxLength, batchSize: batchSize, pretokenized: pretokenized, threads: try threads.count())
        config.task = task
        return config
    }

    /// Prints the records as JSON lines unless they went to --out.
    func show(_ report: some JSONLinesReport, _ config: LineRunConfig) {
        if config.output == nil { FileHandle.standardOutput.write(report.jsonLines()) }
    }
}

// MARK: - kd bench

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks (not tests): latency, tokenizer throughput, step times.",
        subcommands: [Latency.self, TokenizerThroughput.self, TrainStepBench.self, DistillStepBench.self, BenchVariants.self, PeakMemory.self])
}

struct Latency: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Forward-pass latency per batch size, length and thread count.",
        usage: "kd bench latency --model <model> [--model <model> ...] [<options>]",
        discussion: """
        Several --model flags compare models in one run: for each configuration the \
        models take turns (--rounds rounds, each a slice of the time budget), so a \
        machine whose speed drifts over minutes (a shared host, turbo) affects every \
        model alike. The table and JSON then also give each model's speed-up over the \
        first (median against median).

        Examples:
          kd bench latency --model teacher.h5 --batch-size 1,32 --threads 1,2
          kd bench latency --model teacher.h5 --model student.h5 --batch-size 1
        """)

    @Option(help: "Distillery model file (.h5); repeat to compare models.") var model: [String]
    @Option(name: .customLong("batch-size"), help: "Batch sizes, comma-separated (default: 1,32).") var batchSize: String?
    @Option(name: .customLong("batch"), help: .hidden) var oldBatch: String?
    @Option(help: "Sequence lengths, comma-separated.") var seq = "128"
    @Option(help: "Thread counts, comma-separated; auto is every core.") var threads = "auto"
    @Option(help: "Warm-up passes per configuration.") var warmup = 3
    @Option(help: "Timed passes per configuration and model (0: as many as fit in --seconds, at least 10).") var iters = 0
    @Option(help: "Time budget per configuration and model when --iters is 0.") var seconds = 5.0
    @Option(help: "Turns the models take per configuration (default: 1 for one model, 5 for several).") var rounds: Int?
    @Flag(help: "Print JSON instead of a table.") var json = false

    func run() throws {
        var config = LatencyConfig(models: model)
        let batches = try aliased(batchSize, oldBatch, new: "--batch-size", old: "--batch") ?? "1,32"
        config.batchSizes = try parseIntList(batches, flag: batchSize == nil && oldBatch != nil ? "--batch" : "--batch-size")
        config.lengths = try parseIntList(seq, flag: "--seq")
        config.threadCounts = try parseThreadList(threads)
        (config.warmup, config.iterations, config.seconds, config.rounds) = (warmup, iters, seconds, rounds)
        let report = try benchLatency(config)
        if json { try printJSON(report.rows, pretty: true) } else { print(report.text) }
    }
}

struct TokenizerThroughput: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer", abstract: "Tokenizer throughput (tokens/s, one thread).",
        usage: "kd bench tokenizer --model <model> [--input <input>] [<options>]",
        discussion: """
        Runs at least --repeats passes over the input and at least half a second of \
        timed work, so a small file still gives a meaningful rate.

        Example:
          kd bench tokenizer --model teacher.h5 --input examples/sentences.txt
        """)

    @Option(help: "Distillery model file (.h5) whose tokenizer to use.") var model: String
    @Option(help: "Input file, one text per line (- or none: stdin).") var input: String?
    @Option(help: "Passes over the input (at least).") var repeats = 5
    @Flag(help: "Print JSON instead of text.") var json = false

    func run() throws {
        let report = try benchTokenizer(model: model, input: input, repeats: repeats)
        if json { try printJSON(report) } else { print(report.text) }
    }
}

/// Flags shared by the step benchmarks.
struct StepBenchOptions: ParsableArguments {
    @Option(name: .customLong("batch-size"), help: "Sequences per step (default: 32).") var batchSize: Int?
    @Option(name: .customLong("batch"), help: .hidden) var oldBatch: Int?
    @Option(help: "Sequence length (every position real).") var seq = 128
    @OptionGroup var threads: ThreadOptions
    @Option(help: "Classes of a fresh classifier head.") var labels = 3
    @Option(help: "Untimed steps first.") var warmup = 2
    @Option(help: "Timed steps.") var iters = 5
    @Option(help: "Seed of inputs, labels, initialisation and dropout.") var seed: UInt64 = 13
    @Flag(help: "Print JSON instead of a table.") var json = false

    func config() throws -> StepBenchConfig {
        var config = StepBenchConfig()
        config.batchSize = try aliased(batchSize, oldBatch, new: "--batch-size", old: "--batch") ?? 32
        (config.length, config.threads, config.labels) = (seq, try threads.count(), labels)
        (config.warmup, config.iterations, config.seed) = (warmup, iters, seed)
        return config
    }

    /// Prints the timing as a one-row JSON array, or the table.
    func show(_ report: StepBenchReport) throws {
        if json { try printJSON([report.timing], pretty: true) } else { print(report.text) }
    }
}

struct TrainStepBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-step",
        abstract: "Time one fine-tuning step (forward, backward, clip, AdamW).",
        usage: "kd bench train-step --model <model> [<options>]",
        discussion: """
        The model gets a fresh classifier head; its peer is \
        benchmarks/peer_train_step.py.

        Example:
          kd bench train-step --model teacher.h5 --batch-size 32 --seq 128 --threads 2
        """)

    @Option(help: "Distillery model file (.h5).") var model: String
    @OptionGroup var options: StepBenchOptions

    func run() throws { try options.show(try benchTrainStep(model: model, try options.config())) }
}

struct DistillStepBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distill-step",
        abstract: "Time one distillation step on cached teacher signals.",
        usage: "kd bench distill-step --teacher <teacher> --student <student> [<options>]",
        discussion: """
        Student forward, losses, backward, clip and AdamW; its peer is \
        benchmarks/peer_distill_step.py.

        Example:
          kd bench distill-step --teacher teacher.h5 \\
             --student students/distil-l3-h384.json --threads 2
        """)

    @Option(help: "Teacher model file (.h5); a fresh seeded head is added when it has none.") var teacher: String
    @Option(help: "Student spec (students/*.json).") var student: String
    @Option(help: "Loss weights replacing the spec's, as kind=weight pairs.") var losses = "soft_ce=1,hidden_mse=1"
    @Option(help: "Temperature of the soft loss.") var temperature = 2.0
    @OptionGroup var options: StepBenchOptions

    func run() throws {
        let weights = try parseLossWeights(losses)
        try options.show(try benchDistillStep(teacher: teacher, student: student, losses: weights, temperature: temperature,
                                              try options.config()))
    }
}
