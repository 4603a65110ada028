// kd bench train-step: the time of one full fine-tuning step of a model.
//
// The step is what `kd finetune` does per batch: the teacher's encoder (+ pooler) with a
// fresh seeded classifier head (`TeacherSource.classifierStart`), training forward with
// dropout at the config's rates (a new mask per step), backward, global-norm clipping at
// 1.0 and an AdamW update (lr 5e-5, weight decay 0.01, HF's no-decay groups). Inputs are
// fixed and seeded: [CLS] + random ids + [SEP], every position real, exactly --seq long;
// random labels. Warm-up steps first, then timed steps; reports median and p90 ms per step.
// The PyTorch peer is benchmarks/peer_train_step.py. Not measured on purpose: batching and
// padding (the trainer's makeBatch), the learning-rate schedule, evaluation, checkpoints.
import ArgumentParser
import DistilleryModel
import DistilleryTensor
import DistilleryTraining
import Foundation

struct TrainStepBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-step",
        abstract: "Time of one fine-tuning step (forward + backward + clip + AdamW) with a fresh classifier head.")

    @Option(help: "Distillery model file (.h5).") var model: String
    @Option(help: "Sequences per step.") var batch = 32
    @Option(help: "Sequence length (every position real).") var seq = 128
    @Option(help: "Worker threads for BLAS and kernels.") var threads = 2
    @Option(help: "Classes of the fresh classifier head.") var labels = 3
    @Option(help: "Untimed steps first.") var warmup = 2
    @Option(help: "Timed steps.") var iters = 5
    @Option(help: "Seed of inputs, labels, head initialization and dropout.") var seed: UInt64 = 13
    @Flag(help: "Print JSON instead of a table.") var json = false

    /// What `kd finetune` uses by default (its --lr, --weight-decay, --clip).
    static let learningRate = 5e-5, weightDecay = 0.01, clipNorm: Float = 1.0

    func run() throws {
        guard batch >= 1, seq >= 2 else { throw CLIError("--batch must be at least 1 and --seq at least 2 ([CLS] and [SEP])") }
        guard labels >= 2 else { throw CLIError("--labels \(labels) must be at least 2") }
        guard warmup >= 0, iters >= 1 else { throw CLIError("--warmup must be ≥ 0 and --iters ≥ 1") }
        try ThreadOptions.apply(threads)
        let teacher = try TeacherSource(path: model)
        let config = teacher.config
        guard seq <= config.maxPositions else { throw CLIError("--seq \(seq) exceeds the model's \(config.maxPositions) positions") }
        let start = try teacher.classifierStart(labels: (0..<labels).map { "LABEL_\($0)" }, seed: seed)
        let trainingModel = start.model
        var parameters = start.parameters

        var rng = SplitMix64(seed: seed)
        let ids = (0..<(batch * seq)).map { i -> Int32 in
            switch i % seq {
            case 0: teacher.tokenizer.classId
            case seq - 1: teacher.tokenizer.separatorId
            default: Int32(rng.next(below: config.vocabSize))
            }
        }
        let targets = (0..<batch).map { _ in Int32(rng.next(below: labels)) }
        let input = EncoderBatch(ids: ids, batchSize: batch, sequenceLength: seq)
        let dropout = DropoutRates(hidden: config.hiddenDropout, attention: config.attentionDropout, classifier: config.classifierDropout)
        let dropoutRNG = DropoutRNG(seed: seed)
        var optimizer = AdamW(layout: trainingModel.layout, settings: AdamWSettings(weightDecay: Self.weightDecay))
        var gradients = Gradients(zeros: trainingModel.layout)

        // One step exactly as Trainer.run does it (fixed batch, constant learning rate).
        var losses: [Double] = []
        func step(_ s: Int) throws {
            let acts: BertActivations
            do {
                acts = try trainingModel.forward(input, labels: targets, parameters: parameters, dropout: dropout, rng: dropoutRNG, step: s)
            } catch { throw CLIError(file: model, error) }
            gradients.zero()
            trainingModel.backward(acts, parameters: parameters, gradients: &gradients)
            clipGradientNorm(&gradients, maxNorm: Self.clipNorm)
            optimizer.update(&parameters, gradients: gradients, learningRate: Self.learningRate)
            losses.append(acts.loss ?? .nan)
        }

        if !json {
            print("model \(model): \(config.layerCount) layers, hidden \(config.hiddenSize), \(trainingModel.layout.totalCount) parameters; "
                  + "dropout \(dropout.hidden)/\(dropout.attention)/\(dropout.classifier); kernels: \(kernelISA())")
        }
        let times = try timeSteps(warmup: warmup, iters: iters, step)
        try printStepTimes(times, batch: batch, seq: seq, threads: threads, losses: losses, json: json,
                           extra: ["labels": labels, "parameters": trainingModel.layout.totalCount])
    }
}

/// Runs `step(0..<warmup)` untimed, then `iters` timed steps; the times in ms, sorted.
func timeSteps(warmup: Int, iters: Int, _ step: (Int) throws -> Void) throws -> [Double] {
    for s in 0..<warmup { try step(s) }
    var times: [Double] = []
    for s in warmup..<(warmup + iters) {
        let t0 = now()
        try step(s)
        times.append((now() - t0) * 1000)
    }
    return times.sorted()
}

/// Prints step times (sorted ms) as one JSON row (plus `extra` fields) or as a table, with
/// the first and last step's loss; a non-finite loss is an error (the step is broken).
func printStepTimes(_ times: [Double], batch: Int, seq: Int, threads: Int, losses: [Double], json: Bool,
                    extra: [String: Any]) throws {
    guard losses.allSatisfy(\.isFinite) else { throw CLIError("the loss became \(losses) — the step is broken") }
    func pct(_ p: Double) -> Double { times[min(times.count - 1, Int((p * Double(times.count - 1)).rounded()))] }
    let median = pct(0.5), p90 = pct(0.9), rate = Double(batch) / (median / 1000)
    if json {
        var row: [String: Any] = ["batch": batch, "seq": seq, "threads": threads, "median_ms": median, "p90_ms": p90,
                                  "seq_per_s": rate, "iters": times.count, "loss_first": losses.first!, "loss_last": losses.last!]
        row["warmup"] = losses.count - times.count
        for (k, v) in extra { row[k] = v }
        let data = try JSONSerialization.data(withJSONObject: [row], options: [.prettyPrinted, .sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    } else {
        print("batch  seq  threads   median ms     p90 ms     seq/s  iters")
        print(String(format: "%5d %4d %8d %11.1f %10.1f %9.1f %6d", batch, seq, threads, median, p90, rate, times.count))
        print(String(format: "loss %.4f (first step) -> %.4f (last step)", losses.first!, losses.last!))
    }
}
