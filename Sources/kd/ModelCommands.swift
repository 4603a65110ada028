// kd import / info / tokenize / embed / predict: models in, and models run over lines of text.
import ArgumentParser
import DistilleryModel
import DistilleryStages
import Foundation

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
