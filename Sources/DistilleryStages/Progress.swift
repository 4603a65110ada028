// Progress: how a stage tells its caller what it is doing — a small protocol with three
// implementations (a redrawn bar with ETA for a terminal, plain periodic lines for logs and
// pipes, silence for library callers) — and the training loop every training stage shares
// (`runTraining`: evaluations, checkpoints and steps reported; a hidden debug pause so a
// test can SIGKILL a run at a known step), with resuming from a checkpoint.
//
// Progress is never the result: a stage returns its report value; what goes through here
// is for a human watching (on stderr in `kd`). Left out on purpose: machine-readable
// progress events (a pipeline runner can implement `StageProgress` itself).
import DistilleryModel
import DistilleryTraining
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Receives a stage's progress: message lines, warnings and training steps.
public protocol StageProgress: AnyObject {
    /// A training run of `totalSteps` steps over `epochs` epochs starts.
    func begin(totalSteps: Int, epochs: Int)
    /// A message line.
    func line(_ text: String)
    /// A remark that is not progress (resuming, a cost estimate); may span lines.
    func warning(_ text: String)
    /// A training step finished.
    func step(_ report: StepReport)
    /// The run ended (a bar, if drawn, is closed).
    func finish()
}

/// Progress that is dropped.
public final class SilentProgress: StageProgress {
    /// A reporter that ignores everything.
    public init() {}
    public func begin(totalSteps: Int, epochs: Int) {}
    public func line(_ text: String) {}
    public func warning(_ text: String) {}
    public func step(_ report: StepReport) {}
    public func finish() {}
}

/// Progress as text on stderr: a redrawn bar on a terminal, periodic plain lines otherwise.
public final class TextProgress: StageProgress {
    /// Draw a bar (true) or write plain lines (false).
    public let isTerminal: Bool
    /// Put before every line of a warning (e.g. "kd: ").
    public let warningPrefix: String
    private var totalSteps = 0, epochs = 1
    /// Plain mode: one line every this many steps (about 20 per run).
    private var logEvery = 1
    private var lossSum = 0.0, lossCount = 0
    private var barShown = false

    /// A bar when stderr is a terminal (or `terminal` says so), plain lines otherwise.
    public init(warningPrefix: String = "", terminal: Bool? = nil) {
        self.warningPrefix = warningPrefix
        isTerminal = terminal ?? (isatty(2) != 0)
    }

    private func write(_ s: String) { FileHandle.standardError.write(Data(s.utf8)) }

    public func begin(totalSteps: Int, epochs: Int) {
        self.totalSteps = totalSteps
        self.epochs = epochs
        logEvery = max(1, totalSteps / 20)
    }

    public func line(_ s: String) {
        if barShown { write("\r\u{1B}[2K"); barShown = false }
        write(s + "\n")
    }

    public func warning(_ text: String) {
        line(text.split(separator: "\n", omittingEmptySubsequences: false).map { warningPrefix + $0 }.joined(separator: "\n"))
    }

    public func step(_ r: StepReport) {
        lossSum += r.loss
        lossCount += 1
        let rate = Double(r.examplesThisRun) / max(r.secondsThisRun, 1e-9)
        let eta = r.secondsThisRun / Double(r.stepsThisRun) * Double(r.totalSteps - r.step)
        let epoch = "epoch \(r.epoch + 1)/\(epochs)"
        if isTerminal {
            let width = 24, filled = width * r.step / max(r.totalSteps, 1)
            let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            write(String(format: "\r\u{1B}[2K%@ %d/%d %@ loss %.4f %.1f ex/s ETA %@", bar, r.step, r.totalSteps, epoch,
                         lossSum / Double(lossCount), rate, formatDuration(eta)))
            barShown = true
            if r.step % logEvery == 0 { lossSum = 0; lossCount = 0 }
        } else if r.step % logEvery == 0 || r.step == r.totalSteps || r.stepsThisRun == 1 {
            line(String(format: "step %d/%d (%@): loss %.4f, lr %.3g, grad norm %.3g, %.1f examples/s, ETA %@", r.step, r.totalSteps,
                        epoch, lossSum / Double(lossCount), r.learningRate, Double(r.gradientNorm), rate, formatDuration(eta)))
            lossSum = 0
            lossCount = 0
        }
    }

    public func finish() { if barShown { write("\n"); barShown = false } }
}

/// "42s", "3m07s", "2h05m".
func formatDuration(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    return s >= 3600 ? "\(s / 3600)h\(String(format: "%02d", s / 60 % 60))m" : s >= 60 ? "\(s / 60)m\(String(format: "%02d", s % 60))s" : "\(s)s"
}

/// How long the steps of this process took (what `kd` prints as "trained N steps in …").
public struct TrainingTime: Codable, Sendable {
    /// Steps this process ran (a resumed run counts only its own).
    public var steps: Int
    /// Wall time of this process's training, evaluation and checkpoints included.
    public var seconds: Double
    /// Time spent in the steps alone.
    public var stepSeconds: Double
    /// Examples these steps trained on.
    public var examples: Int

    enum CodingKeys: String, CodingKey {
        case steps, seconds, stepSeconds = "step_seconds", examples
    }

    /// The time of the steps in `last`, nil when this process ran none.
    init?(_ last: StepReport?) {
        guard let last, last.stepsThisRun > 0 else { return nil }
        steps = last.stepsThisRun
        seconds = last.secondsThisRun
        stepSeconds = last.stepSecondsThisRun
        examples = last.examplesThisRun
    }

    /// "trained N steps in … (… ms/step, … examples/s; evaluation and checkpoints … s)".
    public var text: String {
        String(format: "trained %d steps in %.1f s (%.1f ms/step, %.1f examples/s; evaluation and checkpoints %.1f s)",
               steps, seconds, stepSeconds / Double(steps) * 1000, Double(examples) / max(stepSeconds, 1e-9), seconds - stepSeconds)
    }
}

/// The best model of a run by dev macro-F1, as a report states it.
public struct BestScore: Codable, Sendable {
    public var step: Int
    public var macroF1: Double
    public var accuracy: Double

    enum CodingKeys: String, CodingKey { case step, macroF1 = "macro_f1", accuracy }
}

/// A fresh state from `initial`, or the state of checkpoint `resume` after checking that it
/// belongs to this run (same model, data and flags; another thread count only warns).
func startingState(resume: String?, layout: ParameterLayout, config: TrainingConfig, initial: ParameterBlock,
                   threads: Int, progress: StageProgress, eachOnce: Bool = true) throws -> TrainingState {
    guard let resume else { return TrainingState(parameters: initial, adam: config.adamSettings) }
    let checkpoint: TrainingCheckpoint
    do { checkpoint = try TrainingCheckpoint.read(URL(fileURLWithPath: resume), layout: layout) } catch {
        throw StageError(file: resume, error)
    }
    do { try checkpoint.config.checkResumable(with: config, checkpoint: resume) } catch { throw StageError(error.description) }
    // The saved data order indexes the training set: checked here, before anything is logged or written.
    do {
        try checkpoint.state.order?.validate(examples: config.trainExamples,
                                             batches: Trainer.stepsPerEpoch(examples: config.trainExamples, batchSize: config.batchSize),
                                             eachOnce: eachOnce)
    } catch { throw StageError("\(resume): \(error.description)") }
    if checkpoint.config.threads != threads {
        progress.warning("\(resume) was written with --threads \(checkpoint.config.threads), this run uses \(threads): results will not be bit-identical to an uninterrupted run")
    }
    progress.warning("resuming from \(resume) at step \(checkpoint.state.step)/\(config.totalSteps)")
    return checkpoint.state
}

/// Runs `trainer` to the end, reporting evaluations, checkpoints and steps on `progress`
/// and `log` (`onStep` sees each step first); returns the last step's report.
/// `pauseAfterStep` (a hidden test flag) stops the process there so a test can SIGKILL it
/// at a known step.
func runTraining(_ trainer: Trainer, state: inout TrainingState, progress: StageProgress, pauseAfterStep: Int?,
                 log: MetricsLog? = nil, onStep: (StepReport) -> Void = { _ in }) throws -> StepReport? {
    var last: StepReport?
    do {
        try trainer.run(&state) { event in
            switch event {
            case .evaluation(let step, let m, let best):
                log?.evaluation(step: step, metrics: m, best: best)
                progress.line(String(format: "step %d: dev accuracy %.4f, macro-F1 %.4f%@", step, m.accuracy, m.macroF1, best ? " (best)" : ""))
            case .checkpoint(let step, let url):
                progress.line("step \(step): checkpoint → \(url.path)")
            case .step(let report):
                log?.step(report)
                onStep(report)
                last = report
                progress.step(report)
                if report.step == pauseAfterStep {
                    progress.line("paused after step \(report.step) (--debug-pause-after-step)")
                    while true { sleep(3600) }
                }
            }
        }
    } catch let error as TrainingError { throw StageError(error.description) }
    progress.finish()
    return last
}
