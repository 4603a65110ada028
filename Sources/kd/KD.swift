// kd: Distillery's command line — argument declarations over DistilleryStages.
//
// Each subcommand parses its flags, builds the stage's configuration, calls one library
// function and prints the report it returns (as text, or as JSON with --json). Errors
// come back as `StageError` and are printed as one `kd: error: ...` line with exit code 1;
// progress goes to stderr (a bar on a terminal, plain lines otherwise). This file: the
// entry point, shared helpers, and the commands that bring a model in (import, info) and
// run it over lines of text (tokenize, embed, predict), and the benches (latency, tokenizer,
// train-step, distill-step; their peers are benchmarks/*.py); TrainingCommands.swift has
// the pipeline (data prepare, finetune, eval, label, distill).
import ArgumentParser
import DistilleryJSON
import DistilleryModel
import DistilleryStages
import Foundation

@main
struct KD: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kd",
        abstract: "Distillery: shrink a pretrained BERT and know exactly what you traded.",
        subcommands: [Import.self, Info.self, Tokenize.self, Embed.self, Predict.self, Bench.self, DataCommand.self, Finetune.self,
                      Evaluate.self, Label.self, Distill.self])

    /// Runs the command, turning any error into one clear line and exit code 1.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as StageError {
            FileHandle.standardError.write(Data("kd: error: \(error.description)\n".utf8))
            Foundation.exit(1)
        } catch {
            exit(withError: error)
        }
    }
}

/// Options shared by commands that run the model.
struct ThreadOptions: ParsableArguments {
    @Option(name: .long, help: "Worker threads for BLAS and kernels.")
    var threads: Int = 1
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
        throw StageError("\(flag) '\(text)' must be a comma-separated list of positive integers, e.g. 1,32")
    }
    return values
}

/// Parses a flag's value into an enum case, or an error listing the choices.
func parseChoice<T: RawRepresentable & CaseIterable>(_ text: String, flag: String, as type: T.Type) throws -> T where T.RawValue == String {
    guard let value = T(rawValue: text) else {
        throw StageError("\(flag) '\(text)' is not one of: \(T.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    return value
}

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import a BERT model (HF directory, .safetensors, or HDF5 in flat, nested or tf_model.h5 layout) into one Distillery .h5 file.")

    @Argument(help: "HF model directory (config.json + model.safetensors|tf_model.h5 + vocab.txt), a .safetensors file, or an .h5 file.")
    var source: String
    @Option(help: "Output Distillery model file (.h5).") var out: String
    @Option(help: "vocab.txt (default: beside the weights).") var vocab: String?
    @Option(help: "HF config.json (default: beside the weights).") var config: String?

    func run() throws {
        print(try importModel(ImportConfig(source: source, out: out, vocabulary: vocab, config: config)).text)
    }
}

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe a model file: architecture, parameter count, tensors, size.")

    @Argument(help: "A Distillery .h5 model, or any source kd import reads.") var file: String

    func run() throws { print(try describeModel(file).text) }
}

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print token ids, one line of space-separated ids per input line.")

    @Option(help: "Distillery model file (.h5) whose vocabulary to use.") var model: String
    @Flag(name: .customLong("no-special"), help: "Leave out [CLS] and [SEP].") var noSpecial = false
    @Option(name: .customLong("max-length"), help: "Truncate to this many tokens.") var maxLength: Int?
    @Option(help: "Input file, one text per line (default: stdin).") var input: String?

    func run() throws {
        print(try tokenize(TokenizeConfig(model: model, input: input, addSpecialTokens: !noSpecial, maxLength: maxLength)).text)
    }
}

struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sentence embeddings as JSON lines: {\"text\", \"embedding\"}.")

    @OptionGroup var options: LineRunOptions
    @Option(help: "Pooling: mean or cls (default: the model's own).") var pooling: String?
    @Flag(help: "L2-normalize the embeddings (default: the model's own setting).") var normalize = false

    func run() throws {
        let mode = try pooling.map { try parseChoice($0, flag: "--pooling", as: PoolingMode.self) }
        options.show(try embed(options.config, pooling: mode, normalize: normalize))
    }
}

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify lines with a model that has a classifier: {\"text\", \"label\", \"probs\", \"logits\"}.")

    @OptionGroup var options: LineRunOptions

    func run() throws { options.show(try predict(options.config)) }
}

/// Options shared by the commands that run a model over lines of input.
struct LineRunOptions: ParsableArguments {
    @Option(help: "Distillery model file (.h5).") var model: String
    @Option(help: "Input file, one text per line.") var input: String
    @Option(help: "Output JSONL file (default: stdout).") var output: String?
    @Option(name: .customLong("max-length"), help: "Truncate to this many tokens (default: 128, or the model's positions if fewer).") var maxLength: Int?
    @Option(name: .customLong("batch-size"), help: "Sequences per forward pass.") var batchSize = 32
    @Flag(help: "Input lines are space-separated token ids, special tokens included.") var pretokenized = false
    @OptionGroup var threads: ThreadOptions

    var config: LineRunConfig {
        LineRunConfig(model: model, input: input, output: output, maxLength: maxLength, batchSize: batchSize,
                      pretokenized: pretokenized, threads: threads.threads)
    }

    /// Prints the records as JSON lines unless they went to --output.
    func show(_ report: some JSONLinesReport) {
        if output == nil { FileHandle.standardOutput.write(report.jsonLines()) }
    }
}

// MARK: - kd bench

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks (not tests): latency of a model, throughput of a tokenizer.",
        subcommands: [Latency.self, TokenizerThroughput.self, TrainStepBench.self, DistillStepBench.self])
}

struct Latency: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Forward-pass latency per batch size, length and thread count.",
        discussion: """
        Several --model flags compare models in one run: for each configuration the models take
        turns (--rounds rounds, each a slice of the time budget), so a machine whose speed drifts
        over minutes (a shared host, turbo) affects every model alike. The table and JSON then
        also give each model's speed-up over the first (median against median).
        """)

    @Option(help: "Distillery model file (.h5); repeat to compare models.") var model: [String]
    @Option(help: "Batch sizes, comma-separated.") var batch = "1,32"
    @Option(help: "Sequence lengths, comma-separated.") var seq = "128"
    @Option(help: "Thread counts, comma-separated.") var threads = "1"
    @Option(help: "Warm-up passes per configuration.") var warmup = 3
    @Option(help: "Timed passes per configuration and model (0: as many as fit in --seconds, at least 10).") var iters = 0
    @Option(help: "Time budget per configuration and model when --iters is 0.") var seconds = 5.0
    @Option(help: "Turns the models take per configuration (default: 1 for one model, 5 for several).") var rounds: Int?
    @Flag(help: "Print JSON instead of a table.") var json = false

    func run() throws {
        var config = LatencyConfig(models: model)
        config.batchSizes = try parseIntList(batch, flag: "--batch")
        config.lengths = try parseIntList(seq, flag: "--seq")
        config.threadCounts = try parseIntList(threads, flag: "--threads")
        (config.warmup, config.iterations, config.seconds, config.rounds) = (warmup, iters, seconds, rounds)
        let report = try benchLatency(config)
        if json { try printJSON(report.rows, pretty: true) } else { print(report.text) }
    }
}

struct TokenizerThroughput: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tokenizer", abstract: "Tokenizer throughput (tokens/s, one thread).")

    @Option(help: "Distillery model file (.h5) whose tokenizer to use.") var model: String
    @Option(help: "Input file, one text per line.") var input: String
    @Option(help: "Passes over the input.") var repeats = 5
    @Flag(help: "Print JSON instead of text.") var json = false

    func run() throws {
        let report = try benchTokenizer(model: model, input: input, repeats: repeats)
        if json { try printJSON(report) } else { print(report.text) }
    }
}

/// Flags shared by the step benchmarks.
struct StepBenchOptions: ParsableArguments {
    @Option(help: "Sequences per step.") var batch = 32
    @Option(help: "Sequence length (every position real).") var seq = 128
    @Option(help: "Worker threads.") var threads = 2
    @Option(help: "Classes of a fresh classifier head.") var labels = 3
    @Option(help: "Untimed steps first.") var warmup = 2
    @Option(help: "Timed steps.") var iters = 5
    @Option(help: "Seed of inputs, labels, initialisation and dropout.") var seed: UInt64 = 13
    @Flag(help: "Print JSON instead of a table.") var json = false

    var config: StepBenchConfig {
        var config = StepBenchConfig()
        (config.batchSize, config.length, config.threads, config.labels) = (batch, seq, threads, labels)
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
        abstract: "Time of one fine-tuning step (forward + backward + clip + AdamW) with a fresh classifier head.")

    @Option(help: "Distillery model file (.h5).") var model: String
    @OptionGroup var options: StepBenchOptions

    func run() throws { try options.show(try benchTrainStep(model: model, options.config)) }
}

struct DistillStepBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distill-step",
        abstract: "Time of one distillation step (student forward + losses + backward + clip + AdamW) on cached teacher signals.")

    @Option(help: "Teacher model file (.h5); a fresh seeded head is added when it has none.") var teacher: String
    @Option(help: "Student spec (students/*.json).") var student: String
    @Option(help: "Loss weights replacing the spec's, as kind=weight pairs.") var losses = "soft_ce=1,hidden_mse=1"
    @Option(help: "Temperature of the soft loss.") var temperature = 2.0
    @OptionGroup var options: StepBenchOptions

    func run() throws {
        let weights = try parseLossWeights(losses)
        try options.show(try benchDistillStep(teacher: teacher, student: student, losses: weights, temperature: temperature, options.config))
    }
}
