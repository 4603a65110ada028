// kd label / kd label merge / kd label check: the teacher's soft-label cache
// (DistilleryStages.label, mergeLabelShards, checkLabelCache).
import ArgumentParser
import DistilleryData
import DistilleryStages
import Foundation

struct Label: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Cache a classifier teacher's soft labels (and hidden states / attention) for distillation.",
        subcommands: [LabelRun.self, LabelMerge.self, LabelCheck.self],
        defaultSubcommand: LabelRun.self)
}

struct LabelRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the teacher over the training split and write the label cache (the default of 'kd label').",
        discussion: """
        LAYERS is a comma list or 'all': hidden states 0 (embeddings) … L, attention maps 1 … L.
        The cache records the teacher's and the data's sha256; students refuse a cache made
        from another teacher or data. Temperature is applied at training time.
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
    @Option(name: .customLong("max-length"), help: "Truncate texts to this many tokens (default: 128, or the teacher's positions if fewer).") var maxLength: Int?
    @Option(help: "Sequences per forward pass.") var batch = 32
    @Option(help: "Label only shard i of n (0-based), e.g. 0/4; join the parts with 'kd label merge'.") var shard: String?
    @Option(name: .customLong("max-disk"), help: "Refuse when the cache would take more than this on disk (e.g. 500M, 8G).") var maxDisk = "8G"
    @Flag(name: .customLong("dry-run"), help: "Print what the cache would cost, write nothing.") var dryRun = false
    @OptionGroup var threads: ThreadOptions

    func run() throws {
        var config = LabelConfig(teacher: teacher, data: data, out: out)
        (config.topK, config.augment, config.augmentProbability, config.neighbours) = (topK, augment, augmentProb, neighbours)
        (config.seed, config.maxLength, config.batchSize, config.dryRun, config.threads) = (seed, maxLength, batch, dryRun, threads.threads)
        config.hidden = try hidden.map { try LayerSelection(parsing: $0, flag: "--hidden") }
        config.attention = try attention.map { try LayerSelection(parsing: $0, flag: "--attention") }
        config.shard = try shard.map(ShardSelection.init(parsing:)) ?? .whole
        config.maxDisk = try ByteSize(parsing: maxDisk, flag: "--max-disk")
        print(try label(config, progress: stderrProgress()).text)
    }
}

struct LabelMerge: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Join the shards of one 'kd label --shard i/n' run into one cache, identical to an unsharded run.")

    @Option(help: "Output label cache (.h5).") var out: String
    @Argument(help: "Shard files, every shard 0..<n exactly once (any order).") var parts: [String] = []

    func run() throws { print(try mergeLabelShards(parts, out: out).text) }
}

struct LabelCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check that a label cache was made from this teacher and data (what a student run does first).")

    @Argument(help: "Label cache (.h5).") var labels: String
    @Option(help: "Teacher file (.h5).") var teacher: String
    @Option(help: "Prepared dataset folder.") var data: String

    func run() throws { print(try checkLabelCache(labels, teacher: teacher, data: data).text) }
}
