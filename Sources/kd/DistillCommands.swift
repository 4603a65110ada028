// kd distill: train a student (students/*.json) from a fine-tuned teacher and its
// soft-label cache (DistilleryStages.prepareDistillation, then DistillationRun.train).
import ArgumentParser
import DistilleryStages
import Foundation

extension TeacherStatesMode: ExpressibleByArgument {}

struct Distill: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Distil a fine-tuned teacher into a student described by students/*.json.",
        discussion: """
        Validates and prints the plan (which student layer learns from which teacher layer, through
        which projection, with which losses), checks that --labels was made from --teacher and --data,
        then trains with AdamW (each stage: warm-up, then linear decay), evaluates on dev and writes the
        best student (dev macro-F1) to --out. Checkpoints go to --checkpoint (default: OUT with
        .ckpt.h5); --resume CKPT continues a run exactly. Flags override the spec's "training" values.
        """)

    @Option(help: "Fine-tuned teacher model (.h5) the label cache was made with.") var teacher: String
    @Option(help: "Student spec (students/*.json).") var student: String
    @Option(help: "Soft-label cache made by 'kd label' from --teacher and --data.") var labels: String
    @Option(help: "Prepared dataset folder (dev split for model selection).") var data: String
    @Option(help: "Output student model file (.h5).") var out: String
    @Option(help: "Peak learning rate (default: the spec's, else 5e-5).") var lr: Double?
    @Option(help: "Examples per optimizer step (default: the spec's, else 32).") var batch: Int?
    @Option(help: "Warm-up fraction of each stage's steps (default: the spec's, else 0.1).") var warmup: Double?
    @Option(name: .customLong("weight-decay"), help: "AdamW decoupled weight decay.") var weightDecay = 0.01
    @Option(help: "Clip the global gradient norm to this (0 = off).") var clip = 1.0
    @Option(name: .customLong("eval-every"), help: "Evaluate on dev every N steps (default: once per epoch).") var evalEvery: Int?
    @Option(name: .customLong("checkpoint-every"), help: "Write a checkpoint every N steps (default: at each evaluation).") var checkpointEvery: Int?
    @Option(help: "Checkpoint file (default: OUT with .ckpt.h5).") var checkpoint: String?
    @Option(help: "Epochs replacing the spec's schedule: N (one-stage) or intermediate,prediction (two-stage).") var epochs: String?
    @Option(name: .customLong("max-steps"), help: "Stop after this many optimizer steps (the learning-rate schedule stays the full run's).") var maxSteps: Int?
    @Option(name: .customLong("teacher-states"), help: "Teacher hidden states: auto (cache if it has them), cache, or online.")
    var teacherStates: TeacherStatesMode = .auto
    @Option(help: "Loss weights replacing the spec's, e.g. hard_ce=1 or soft_ce=5,hard_ce=2 (ablations).") var losses: String?
    @Option(help: "Seed of data order, dropout and random initialisation (default: the spec's, else 13).") var seed: UInt64?
    @Option(help: "Continue from this checkpoint (same teacher, student, labels and flags).") var resume: String?
    @Flag(name: .customLong("plan-only"), help: "Print the plan and the checks, then stop.") var planOnly = false
    @Option(name: .customLong("debug-pause-after-step"), help: .hidden) var pauseAfterStep: Int?
    @OptionGroup var threads: ThreadOptions

    func run() throws {
        var config = DistillConfig(teacher: teacher, student: student, labels: labels, data: data, out: out)
        (config.learningRate, config.batchSize, config.warmup, config.seed) = (lr, batch, warmup, seed)
        (config.weightDecay, config.clip, config.evalEvery, config.checkpointEvery) = (weightDecay, clip, evalEvery, checkpointEvery)
        (config.checkpoint, config.epochs, config.maxSteps, config.teacherStates) = (checkpoint, epochs, maxSteps, teacherStates)
        config.losses = try losses.map(parseLossWeights)
        (config.resume, config.planOnly, config.pauseAfterStep, config.threads) = (resume, planOnly, pauseAfterStep, threads.threads)
        let run = try prepareDistillation(config)
        print(run.report.text)
        fflush(nil)   // the plan (stdout) before the progress lines on stderr
        if planOnly { return }
        print(try run.train(progress: stderrProgress()).text)
    }
}
