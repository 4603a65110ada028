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
        the tokens of the dataset's train and dev texts (seen at least --vocab-min-count \
        times), the special tokens and the first --vocab-keep ids; words are still \
        segmented as before and a dropped piece reads as [UNK]. The pruned file is a normal model file: info, eval, predict, \
        embed, label, bench and distill run it.

        Examples:
          kd prune --importance --model tweet.h5 --data data/tweet-sentiment --labels l.h5
          kd prune --model tweet.h5 --out p.h5 --heads 0.4 --ffn 0.5 \\
             --data data/tweet-sentiment --labels l.h5
          kd prune --model tweet.h5 --out v.h5 --vocab data/tweet-sentiment
          kd prune --model tweet.h5 --out p.h5 --heads 0.4 --ffn 0.5 --schedule 0.5,1 \\
             --data data/tweet-sentiment --labels l.h5

        With --schedule, each step prunes a further share and distils the result \
        against the unpruned model (--teacher, default --model: soft cross-entropy on \
        the cache's logits + hidden-state MSE per layer; a --teacher with other layers \
        than --model needs --recover-teacher-layers): OUT.stepK.pruned.h5, \
        OUT.stepK.student.json and OUT.stepK.h5; the same command again skips finished \
        steps and resumes an interrupted one from OUT.stepK.ckpt.h5.
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
    @Option(name: .customLong("vocab-min-count"), help: "Keep a data token only when train and dev use it at least N times.") var vocabMinCount = 1
    @Option(help: "Prune in steps, each followed by distillation: fractions of the amounts, e.g. 0.5,1.") var schedule: String?
    @Option(name: .customLong("recover-epochs"), help: "Distillation epochs after each --schedule step.") var recoverEpochs = 1
    @Option(name: .customLong("recover-limit"), help: "Distil on the first N cached examples per step (a budget; default: all).") var recoverLimit: Int?
    @Option(name: .customLong("recover-lr"), help: "Peak learning rate of the recovery (default 5e-5).") var recoverLR: Double?
    @Option(name: .customLong("recover-teacher-layers"),
            help: "Teacher layer (1-based) each --model layer is distilled against, e.g. 2,4,6 (default: the same layer).")
    var recoverTeacherLayers: String?
    @Flag(help: "Print the report (importance tables included) as JSON.") var json = false
    @OptionGroup var threads: ThreadOptions

    func run() throws {
        if perLayer && uniform { throw UsageError("--per-layer and --uniform exclude each other — pick one") }
        if importance, let out { throw UsageError("--importance writes no model — drop --out \(out)") }
        if schedule == nil, recoverTeacherLayers != nil {
            throw UsageError("--recover-teacher-layers applies to the distillation after each --schedule step — add --schedule (e.g. 1) or drop it")
        }
        var config = PruneConfig(model: model, out: out)
        config.amounts = PruneAmounts(heads: heads, ffn: ffn, layers: layers, uniform: uniform)
        config.importanceOnly = importance
        config.data = data
        config.labels = labels
        config.teacher = teacher
        config.samples = samples
        config.batchSize = batchSize
        config.vocab = vocab
        (config.vocabKeep, config.vocabMinCount) = (vocabKeep, vocabMinCount)
        config.threads = try threads.count()
        if let schedule {
            let fractions = try schedule.split(separator: ",").map { part -> Double in
                guard let v = Double(part) else { throw UsageError("--schedule '\(schedule)': '\(part)' is not a number — give fractions such as 0.5,1") }
                return v
            }
            var recovery = RecoveryConfig(schedule: fractions)
            (recovery.epochs, recovery.trainLimit, recovery.learningRate) = (recoverEpochs, recoverLimit, recoverLR)
            recovery.teacherLayers = try recoverTeacherLayers.map { list in
                try list.split(separator: ",", omittingEmptySubsequences: false).map { part in
                    guard let v = Int(part) else {
                        throw UsageError("--recover-teacher-layers '\(list)': '\(part)' is not a layer number — give 1-based teacher layers such as 2,4,6")
                    }
                    return v
                }
            }
            let report = try pruneAndRecover(config, recovery, progress: stderrProgress())
            if json { try printJSON(report, pretty: true) } else { print(report.text) }
            return
        }
        let report = try prune(config, progress: stderrProgress())
        if json { try printJSON(report, pretty: true) } else { print(report.text) }
    }
}
