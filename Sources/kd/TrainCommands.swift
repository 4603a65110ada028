// kd finetune / kd eval: fine-tune a model with a classification head on a prepared
// dataset, and score a classifier on one split (DistilleryStages.finetune / evaluate).
import ArgumentParser
import DistilleryData
import DistilleryModel
import DistilleryStages
import DistilleryTraining
import Foundation

struct Finetune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fine-tune a model end to end with a new classification head on a prepared dataset.",
        discussion: """
        Adds a BertForSequenceClassification head (labels from the dataset manifest), trains with
        AdamW, warm-up and linear/cosine decay, evaluates on dev every --eval-every steps and writes
        the best model (dev macro-F1) to --out. Checkpoints go to --checkpoint (default: OUT with
        .ckpt.h5); --resume CKPT continues a run exactly where the checkpoint left it.
        """)

    @Option(help: "Distillery model file (.h5) to start from.") var model: String
    @Option(help: "Prepared dataset folder (kd data prepare), e.g. data/sms-spam.") var data: String
    @Option(help: "Output model file (.h5).") var out: String
    @Option(help: "Passes over the training split.") var epochs = 3
    @Option(help: "Peak learning rate.") var lr = 5e-5
    @Option(help: "Examples per optimizer step.") var batch = 32
    @Option(name: .customLong("max-length"), help: "Truncate texts to this many tokens.") var maxLength = 128
    @Option(help: "Warm-up: a fraction of all steps (< 1) or a step count (≥ 1).") var warmup = "0.1"
    @Option(help: "Decay after warm-up: linear or cosine.") var schedule = "linear"
    @Option(name: .customLong("weight-decay"), help: "AdamW decoupled weight decay (not on biases and LayerNorm).") var weightDecay = 0.01
    @Option(help: "Clip the global gradient norm to this (0 = off).") var clip = 1.0
    @Option(name: .customLong("eval-every"), help: "Evaluate on dev every N steps (default: once per epoch).") var evalEvery: Int?
    @Option(name: .customLong("checkpoint-every"), help: "Write a checkpoint every N steps (default: at each evaluation; 0 = only at the end).") var checkpointEvery: Int?
    @Option(help: "Checkpoint file (default: OUT with .ckpt.h5).") var checkpoint: String?
    @Option(name: .customLong("max-steps"), help: "Stop after this many optimizer steps (the schedule ends there).") var maxSteps: Int?
    @Option(help: "Seed of data order, dropout and head initialization.") var seed: UInt64 = 13
    @Option(help: "What the classifier reads: cls (HF BertForSequenceClassification: tanh pooler over [CLS]) or mean (the masked mean of the last hidden states, no pooler; for encoders trained for mean pooling). Default: the model's own, cls for a plain BERT.") var pooling: String?
    @Option(name: .customLong("head-init"), help: "How the new classifier starts: random (HF: N(0, 0.02) weights, zero bias) or probe (LP-FT: first fitted alone on the frozen encoder's features of the train split as a logistic regression, L2 as scikit-learn's C = 1, then everything is fine-tuned from there).") var headInit = "random"
    @Option(help: "Continue from this checkpoint (same model, data and flags).") var resume: String?
    @Option(name: .customLong("debug-pause-after-step"), help: .hidden) var pauseAfterStep: Int?
    @OptionGroup var threads: ThreadOptions

    func run() throws {
        var config = FinetuneConfig(model: model, data: data, out: out)
        guard let w = Double(warmup) else { throw StageError("--warmup '\(warmup)' must be a fraction in [0, 1) or a whole number of steps") }
        (config.epochs, config.learningRate, config.batchSize, config.maxLength, config.warmup) = (epochs, lr, batch, maxLength, w)
        config.schedule = try parseChoice(schedule, flag: "--schedule", as: LearningRateSchedule.Decay.self)
        if let pooling {
            guard let mode = PoolingMode(rawValue: pooling) else { throw StageError("--pooling '\(pooling)' is not one of: cls, mean") }
            config.pooling = mode
        }
        config.headInit = try parseChoice(headInit, flag: "--head-init", as: HeadInit.self)
        (config.weightDecay, config.clip, config.evalEvery, config.checkpointEvery) = (weightDecay, clip, evalEvery, checkpointEvery)
        (config.checkpoint, config.maxSteps, config.seed, config.resume) = (checkpoint, maxSteps, seed, resume)
        (config.pauseAfterStep, config.threads) = (pauseAfterStep, threads.threads)
        print(try finetune(config, progress: stderrProgress()).text)
    }
}

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Accuracy, macro-F1, per-class precision/recall/F1 and confusion matrix of a classifier on a dataset split.",
        discussion: """
        With --teacher, also how closely the model follows that teacher on the same split: top-1
        agreement and mean KL(teacher ‖ student) at temperature 1 (the teacher must have the same labels).
        """)

    @Option(help: "Distillery model file (.h5) with a classification head.") var model: String
    @Option(help: "Prepared dataset folder (kd data prepare).") var data: String
    @Option(help: "Split to evaluate: train, dev or test.") var split = "test"
    @Option(name: .customLong("max-length"), help: "Truncate to this many tokens (default: 128, or the model's positions if fewer).") var maxLength: Int?
    @Option(name: .customLong("batch-size"), help: "Sequences per forward pass.") var batchSize = 32
    @Option(help: "A teacher model (.h5) with the same labels: adds agreement and KL(teacher ‖ model).") var teacher: String?
    @Flag(help: "Print JSON instead of a table.") var json = false
    @OptionGroup var threads: ThreadOptions

    func run() throws {
        let report = try evaluate(EvalConfig(model: model, data: data, split: try parseChoice(split, flag: "--split", as: Split.self),
                                             maxLength: maxLength, batchSize: batchSize, teacher: teacher, threads: threads.threads))
        if json { try printJSON(report) } else { print(report.text) }
    }
}
