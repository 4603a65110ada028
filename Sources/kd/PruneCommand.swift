// kd prune: structured pruning — argument declarations over DistilleryStages.prune.
import ArgumentParser
import Compression
import DistilleryStages

struct Prune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove the least important heads, FFN neurons, layers and vocabulary of a model.",
        usage: """
        kd prune --model <model> --out <out> [--heads R] [--ffn R] [--layers N] [--uniform] \\
           [--vocab <data>] --data <data> --labels <labels>
        kd prune --importance --model <model> --data <data> --labels <labels>
        """,
        discussion: """
        Importance is measured on the first --samples training examples of a label cache \
        (kd label), against the teacher's soft labels: heads by the gradient of their \
        mask (Michel et al. 2019), FFN neurons by |w·dL/dw| (first-order Taylor), layers \
        by the loss without them. --heads and --ffn are the fractions to remove, --layers \
        the number of layers to remove. By default (--per-layer) heads and neurons are \
        ranked across the model, so layers keep different counts; --uniform keeps the \
        same head count and FFN width (a multiple of 32) in every layer. --vocab keeps \
        the tokens of the dataset's train and dev texts (plus special tokens and the \
        first --vocab-keep ids); words are still segmented as before and a dropped piece \
        reads as [UNK]. The pruned file is a normal model file: info, eval, predict, \
        embed, label, bench and distill run it.

        Examples:
          kd prune --importance --model tweet.h5 --data data/tweet-sentiment --labels l.h5
          kd prune --model tweet.h5 --out p.h5 --heads 0.4 --ffn 0.5 \\
             --data data/tweet-sentiment --labels l.h5
          kd prune --model tweet.h5 --out v.h5 --vocab data/tweet-sentiment
        """)

    @Option(help: "Distillery model file (.h5) to prune.") var model: String
    @Option(help: "Output model file (.h5).") var out: String?
    @Flag(help: "Only measure and print the importance tables; write nothing.") var importance = false
    @Option(help: "Fraction of attention heads to remove, in [0, 1).") var heads = 0.0
    @Option(help: "Fraction of FFN neurons to remove, in [0, 1).") var ffn = 0.0
    @Option(help: "Number of encoder layers to remove (the least important).") var layers = 0
    @Flag(name: .customLong("per-layer"), help: "Rank heads and neurons across the model: per-layer shapes (default).") var perLayer = false
    @Flag(help: "Same head count and FFN width (a multiple of 32) in every layer.") var uniform = false
    @Option(help: "Prepared dataset folder the label cache was made on.") var data: String?
    @Option(help: "Label cache (kd label) whose soft labels importance is measured against.") var labels: String?
    @Option(help: "The model the label cache was made with (default: --model).") var teacher: String?
    @Option(help: "Training examples to measure importance on.") var samples = 1024
    @Option(name: .customLong("batch-size"), help: "Sequences per forward/backward pass.") var batchSize = 32
    @Option(help: "Prepared dataset folder whose train and dev texts decide the kept vocabulary.") var vocab: String?
    @Option(name: .customLong("vocab-keep"), help: "Also keep the first N ids of the vocabulary.") var vocabKeep = 0
    @Flag(help: "Print the report (importance tables included) as JSON.") var json = false
    @OptionGroup var threads: ThreadOptions

    func run() throws {
        if perLayer && uniform { throw UsageError("--per-layer and --uniform exclude each other — pick one") }
        if importance, let out { throw UsageError("--importance writes no model — drop --out \(out)") }
        var config = PruneConfig(model: model, out: out)
        config.amounts = PruneAmounts(heads: heads, ffn: ffn, layers: layers, uniform: uniform)
        config.importanceOnly = importance
        config.data = data
        config.labels = labels
        config.teacher = teacher
        config.samples = samples
        config.batchSize = batchSize
        config.vocab = vocab
        config.vocabKeep = vocabKeep
        config.threads = try threads.count()
        let report = try prune(config, progress: stderrProgress())
        if json { try printJSON(report, pretty: true) } else { print(report.text) }
    }
}
