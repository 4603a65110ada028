// kd bench: benchmarks (not tests) — latency of models, throughput of a tokenizer, and the
// time of one fine-tuning or distillation step (DistilleryStages' bench functions). The
// peers (PyTorch, ONNX Runtime) are run by benchmarks/*.py.
import ArgumentParser
import DistilleryStages
import Foundation

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
