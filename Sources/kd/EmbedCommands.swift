// kd tokenize / embed / predict: run a model over lines of text.
import ArgumentParser
import DistilleryData
import DistilleryModel
import DistilleryTensor
import DistilleryJSON
import Foundation
import Tokenization

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print token ids, one line of space-separated ids per input line.")

    @Option(help: "Distillery model file (.h5) whose vocabulary to use.") var model: String
    @Flag(name: .customLong("no-special"), help: "Leave out [CLS] and [SEP].") var noSpecial = false
    @Option(name: .customLong("max-length"), help: "Truncate to this many tokens.") var maxLength: Int?
    @Option(help: "Input file, one text per line (default: stdin).") var input: String?

    func run() throws {
        let model = try LoadedModel(path: model)
        if let maxLength { try checkMaxLength(maxLength, model: model) }
        let lines = try readInputLines(input)
        var sink = OutputSink(path: nil)
        for line in lines {
            let ids = model.tokenizer.encode(line, addSpecialTokens: !noSpecial, maxLength: maxLength).ids
            sink.write(ids.map(String.init).joined(separator: " "))
        }
    }
}

struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sentence embeddings as JSON lines: {\"text\", \"embedding\"}.")

    @OptionGroup var options: LineRunOptions
    @Option(help: "Pooling: mean or cls (default: the model's own).") var pooling: String?
    @Flag(help: "L2-normalize the embeddings (default: the model's own setting).") var normalize = false

    func run() throws {
        var mode: PoolingMode? = nil
        if let pooling {
            guard let m = PoolingMode(rawValue: pooling) else {
                throw CLIError("--pooling '\(pooling)' is not one of: mean, cls")
            }
            mode = m
        }
        let (model, lines, sequences) = try options.load()
        let poolMode = mode ?? model.pooling
        let doNormalize = normalize || model.normalize
        var rows = [String](repeating: "", count: lines.count)
        try runBatched(model, sequences: sequences, batchSize: options.batchSize) { i, out, row, batch in
            let pooled = pool(out.lastHidden, mask: batch.mask, mode: poolMode, normalize: doNormalize)
            let H = pooled.shape[1]
            rows[i] = "{\"text\":\(JSONLine.quoted(lines[i])),\"embedding\":\(jsonFloats(pooled.data[(row * H)..<((row + 1) * H)]))}"
        }
        try options.write(rows)
    }
}

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify lines with a model that has a classifier: {\"text\", \"label\", \"probs\", \"logits\"}.")

    @OptionGroup var options: LineRunOptions

    func run() throws {
        let (model, lines, sequences) = try options.load { model in
            guard model.encoder.heads.classifierLabels > 0 else {
                throw CLIError("\(model.path): the model has no classifier head — fine-tune it first (kd finetune) or use 'kd embed'")
            }
        }
        let labelCount = model.encoder.heads.classifierLabels
        let names = model.encoder.config.labels.count == labelCount
            ? model.encoder.config.labels : (0..<labelCount).map { "LABEL_\($0)" }
        var rows = [String](repeating: "", count: lines.count)
        try runBatched(model, sequences: sequences, batchSize: options.batchSize) { i, out, row, _ in
            let logits = out.logits!
            let L = logits.shape[1]
            let rowLogits = Tensor(shape: [1, L], data: Array(logits.data[(row * L)..<((row + 1) * L)]))
            let probs = softmaxRows(rowLogits).data
            let best = probs.indices.max { probs[$0] < probs[$1] }!
            rows[i] = "{\"text\":\(JSONLine.quoted(lines[i])),\"label\":\(JSONLine.quoted(names[best])),\"probs\":\(jsonFloats(probs)),\"logits\":\(jsonFloats(rowLogits.data))}"
        }
        try options.write(rows)
    }
}

/// Options and steps shared by the commands that run a model over lines of input.
struct LineRunOptions: ParsableArguments {
    @Option(help: "Distillery model file (.h5).") var model: String
    @Option(help: "Input file, one text per line.") var input: String
    @Option(help: "Output JSONL file (default: stdout).") var output: String?
    @Option(name: .customLong("max-length"), help: "Truncate to this many tokens (default: 128, or the model's positions if fewer).") var maxLength: Int?
    @Option(name: .customLong("batch-size"), help: "Sequences per forward pass.") var batchSize = 32
    @Flag(help: "Input lines are space-separated token ids, special tokens included.") var pretokenized = false
    @OptionGroup var threads: ThreadOptions

    /// Checks the flags, loads the model (then `check` on it), reads and encodes the input,
    /// all before anything is written.
    func load(check: (LoadedModel) throws -> Void = { _ in }) throws -> (LoadedModel, [String], [[Int32]]) {
        try threads.apply()
        guard batchSize >= 1 else { throw CLIError("--batch-size \(batchSize) must be at least 1") }
        if let output { try checkOutputPath(output, flag: "--output") }
        let model = try LoadedModel(path: model)
        try check(model)
        let maxLength = self.maxLength ?? min(128, model.encoder.config.maxPositions)
        try checkMaxLength(maxLength, model: model)
        let lines = try readInputLines(input)
        let sequences = try model.encodeLines(lines, maxLength: maxLength, pretokenized: pretokenized, source: input)
        return (model, lines, sequences)
    }

    /// Writes one line per row to --output (atomically) or stdout.
    func write(_ rows: [String]) throws {
        var sink = OutputSink(path: output)
        for r in rows { sink.write(r) }
        try sink.finish()
    }
}
