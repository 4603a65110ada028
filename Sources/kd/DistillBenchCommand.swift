// kd bench distill-step: time one distillation step — student forward + the plan's losses
// against cached teacher signals + backward + clip + AdamW — on a fixed random batch.
//
// The peer is benchmarks/peer_distill_step.py (PyTorch eager, same shapes, threads and
// losses). The teacher's logits and hidden states are computed once before timing, as a
// label cache would hold them; `--losses` replaces the spec's loss weights so both sides
// run the same objective (default: KL at --temperature + hidden-state MSE on every pair).
import ArgumentParser
import Distillation
import DistilleryModel
import DistilleryTensor
import DistilleryTraining
import Foundation

/// Teacher states computed once and served for every step (the benchmark's "cache").
final class FixedTeacherStates: TeacherStates {
    let hidden: [Int: [Float]], scores: [Int: [Float]]
    init(hidden: [Int: [Float]], scores: [Int: [Float]]) {
        self.hidden = hidden
        self.scores = scores
    }
    func states(rows: ArraySlice<Int>, batch: EncoderBatch, hidden wanted: [Int], scores wantedScores: [Int]) throws
        -> (hidden: [Int: [Float]], scores: [Int: [Float]]) {
        (hidden.filter { wanted.contains($0.key) }, scores.filter { wantedScores.contains($0.key) })
    }
}

struct DistillStepBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distill-step",
        abstract: "Time of one distillation step (student forward + losses + backward + clip + AdamW) on cached teacher signals.")

    @Option(help: "Teacher model file (.h5); a fresh seeded head is added when it has none.") var teacher: String
    @Option(help: "Student spec (students/*.json).") var student: String
    @Option(help: "Sequences per step.") var batch = 32
    @Option(help: "Sequence length (every position real).") var seq = 128
    @Option(help: "Worker threads.") var threads = 2
    @Option(help: "Classes (when the teacher has no classifier).") var labels = 3
    @Option(help: "Loss weights replacing the spec's, as kind=weight pairs.") var losses = "soft_ce=1,hidden_mse=1"
    @Option(help: "Temperature of the soft loss.") var temperature = 2.0
    @Option(help: "Untimed steps first.") var warmup = 2
    @Option(help: "Timed steps.") var iters = 5
    @Option(help: "Seed of inputs, initialisation and dropout.") var seed: UInt64 = 13
    @Flag(help: "Print JSON instead of a table.") var json = false

    func run() throws {
        guard batch >= 1, seq >= 2 else { throw CLIError("--batch must be at least 1 and --seq at least 2 ([CLS] and [SEP])") }
        guard warmup >= 0, iters >= 1 else { throw CLIError("--warmup must be ≥ 0 and --iters ≥ 1") }
        guard temperature > 0, temperature.isFinite else { throw CLIError("--temperature \(temperature) must be > 0") }
        try ThreadOptions.apply(threads)
        let weights = try parseLossWeights(losses)
        // The teacher with a classifier: its own, or a fresh seeded one.
        let source = try TeacherSource(path: teacher)
        let classes = source.config.labels.count >= 2 ? source.config.labels.count : labels
        let start = try source.classifierStart(labels: source.config.labels.count >= 2 ? source.config.labels : (0..<classes).map { "LABEL_\($0)" }, seed: seed)
        let teacherTensors = start.parameters.tensorDictionary
        guard seq <= source.config.maxPositions else { throw CLIError("--seq \(seq) exceeds the teacher's \(source.config.maxPositions) positions") }
        var plan = try loadPlan(studentPath: student, teacher: source, classes: classes)
        var spec = plan.spec
        spec.losses = weights
        spec.temperature = temperature
        spec.schedule = .oneStage(epochs: 1)
        do { plan = try DistillationPlan(spec: spec, teacher: start.config, classes: classes) } catch { throw CLIError(error.description) }

        var rng = SplitMix64(seed: seed)
        let examples = (0..<batch).map { _ in
            TrainingExample(ids: (0..<seq).map { t -> Int32 in
                t == 0 ? source.tokenizer.classId : t == seq - 1 ? source.tokenizer.separatorId : Int32(rng.next(below: source.config.vocabSize))
            }, label: Int32(rng.next(below: classes)))
        }
        let online = try OnlineTeacher(config: start.config, classes: classes, tensors: teacherTensors)
        let (input, _) = paddedBatch(ArraySlice(0..<batch), from: examples, paddingId: source.tokenizer.paddingId)
        let schedule = StagedSchedule(stages: plan.stages, stepsPerEpoch: 1, peakRate: TrainStepBench.learningRate, warmupRatio: 0)
        let needs = plan.teacherNeeds(Set(spec.losses.active))
        let teacherActs = try online.model.forward(input, labels: nil, parameters: online.parameters, keepScores: !needs.scores.isEmpty)
        let L = classes
        let teacherLogits = (0..<batch).map { Array(teacherActs.logits.data[($0 * L)..<(($0 + 1) * L)]) }
        let fixed = try online.states(rows: ArraySlice(0..<batch), batch: input, hidden: needs.hidden, scores: needs.scores)
        let objective = try DistillationObjective(plan: plan, examples: examples, teacherLogits: teacherLogits,
                                                  teacherStates: FixedTeacherStates(hidden: fixed.hidden, scores: fixed.scores),
                                                  schedule: schedule, paddingId: source.tokenizer.paddingId, seed: seed)
        var parameters: ParameterBlock
        do {
            parameters = try ParameterBlock(layout: plan.layout, tensors: initializeStudent(plan: plan, teacherTensors: teacherTensors, seed: seed).allTensors)
        } catch { throw CLIError("\(student): \(error)") }
        var optimizer = AdamW(layout: plan.layout, settings: AdamWSettings(weightDecay: TrainStepBench.weightDecay))
        var gradients = Gradients(zeros: plan.layout)
        var lossValues: [Double] = []
        func step(_ s: Int) throws {
            gradients.zero()
            lossValues.append(try objective.lossAndGradients(rows: ArraySlice(0..<batch), step: s, parameters: parameters, gradients: &gradients))
            clipGradientNorm(&gradients, maxNorm: TrainStepBench.clipNorm)
            optimizer.update(&parameters, gradients: gradients, learningRate: TrainStepBench.learningRate)
        }
        if !json {
            print("student \(spec.name): \(plan.student.layerCount) layers, hidden \(plan.student.hiddenSize), \(plan.studentParameterCount) parameters (+\(plan.projectionParameterCount) projection); losses \(spec.losses.active.map { "\($0.rawValue)×\(spec.losses[$0])" }.joined(separator: " + ")), T = \(temperature)")
        }
        let times = try timeSteps(warmup: warmup, iters: iters, step)
        try printStepTimes(times, batch: batch, seq: seq, threads: threads, losses: lossValues, json: json,
                           extra: ["student": spec.name, "parameters": plan.layout.totalCount])
    }
}
