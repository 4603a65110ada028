// RunSettings: what travels with a model and what every stage resolves the same way —
// the inference settings a trained model file carries (maximum length, head start, the
// classifier's pooling, label names), the thread count (`auto` = every core), the
// training log written beside each trained model (`metrics.jsonl`, one JSON object per
// step and per dev evaluation, like HF's `trainer_state.json` log history), the removal
// of a finished run's checkpoint, and the build's version line (`kd --version`).
//
// Stored settings live in the model's HF config.json as Distillery keys
// (`distillery_max_length`, `distillery_head_init`, beside `distillery_classifier_pooling`
// which BertConfig reads), so a model copied with its config keeps them; a flag that
// differs from a stored value wins and says so through `StageProgress.warning`.
// Left out on purpose: tokenizer settings (`tokenizer_json` already carries them).
import CKernels
import DistilleryJSON
import DistilleryModel
import DistilleryTensor
import DistilleryTraining
import Foundation
import WeightIO

// MARK: - settings stored in a model file

/// Config keys for the settings a trained model carries for inference.
public enum StoredSettingKey {
    /// The maximum length the model was trained at (an integer).
    public static let maxLength = "distillery_max_length"
    /// How the classifier started: "probe" (LP-FT) or "random".
    public static let headInit = "distillery_head_init"
}

extension ModelBundle {
    /// The config as a JSON object (empty when it is not one; `BertConfig` already refused that).
    var configObject: [String: JSONValue] { (try? JSONValue.parse(file.configJSON))?.objectValue ?? [:] }

    /// The maximum length stored by `kd finetune` / `kd distill`, when there is one.
    public var storedMaxLength: Int? { configObject[StoredSettingKey.maxLength]?.intValue }

    /// How the classifier started ("probe" or "random"), when recorded.
    public var storedHeadInit: String? { configObject[StoredSettingKey.headInit]?.stringValue }

    /// What a new classifier reads by default: an existing head's choice; otherwise the
    /// sentence pooling the encoder was trained for (sentence-transformers `mean` → mean),
    /// else HF's pooler over [CLS].
    public var defaultClassifierPooling: PoolingMode {
        if hasClassifier { return config.classifierPooling }
        return PoolingMode(rawValue: file.pooling) == .mean ? .mean : .cls
    }

    /// `maxLength` when given (a note when it differs from the stored one), else the stored
    /// length, else 128 or the model's positions if fewer; checked against the positions.
    public func resolveMaxLength(_ maxLength: Int?, progress: StageProgress) throws -> Int {
        try resolvedMaxLength(maxLength, stored: storedMaxLength, positions: config.maxPositions, path: path, progress: progress)
    }
}

/// `maxLength` when given (a note when it differs from `stored`), else `stored`, else 128
/// or `positions` if fewer; checked against the positions.
func resolvedMaxLength(_ maxLength: Int?, stored: Int?, positions: Int, path: String, progress: StageProgress) throws -> Int {
    if let maxLength, let stored, maxLength != stored {
        progress.warning("--max-length \(maxLength) overrides the \(stored) stored in \(path)")
    }
    let value = maxLength ?? stored.map { min($0, positions) } ?? min(128, positions)
    guard value >= 2 else { throw StageError.usage("--max-length \(value) is too small — it must leave room for [CLS] and [SEP]") }
    guard value <= positions else {
        throw StageError.usage("--max-length \(value) exceeds the model's \(positions) positions (\(path)) — use at most \(positions)")
    }
    return value
}

extension InferenceModel {
    /// The classifier's label names: stored ones, or `given` (which must match the class
    /// count); a model without stored names needs `--labels`.
    public func predictionLabels(given: [String]?, progress: StageProgress) throws -> [String] {
        let classes = encoder.classifierLabels
        guard classes > 0 else {
            throw StageError("\(path): the model has no classifier head — fine-tune it first (kd finetune) or use 'kd embed'")
        }
        if let given {
            guard given.count == classes else {
                throw StageError.usage("--labels names \(given.count) classes, the classifier of \(path) has \(classes) — give \(classes) names")
            }
            if labels.count == classes, labels != given {
                progress.warning("--labels \(given.joined(separator: ",")) overrides the names stored in \(path) (\(labels.joined(separator: ",")))")
            }
            return given
        }
        guard labels.count == classes else {
            throw StageError("\(path): the classifier has \(classes) classes but no stored label names — pass --labels NAME,NAME,… (in class order) or fine-tune with kd finetune, which stores them")
        }
        return labels
    }
}

// MARK: - threads

/// Parses a `--threads` value: a whole number in 1...`maximumThreads`, or `auto` (every
/// core this process may use, capped at `maximumThreads`).
public func parseThreads(_ text: String, flag: String = "--threads") throws -> Int {
    let cores = ProcessInfo.processInfo.activeProcessorCount
    if text == "auto" { return max(1, min(cores, maximumThreads)) }
    guard let n = Int(text) else {
        throw StageError.usage("\(flag) '\(text)' is not a number or 'auto' — e.g. \(flag) 2, or \(flag) auto for all \(cores) cores")
    }
    guard n >= 1 && n <= maximumThreads else {
        throw StageError.usage("\(flag) \(n) is out of range — use 1...\(maximumThreads) or auto (this machine has \(cores) cores)")
    }
    return n
}

/// Parses a comma-separated list of `--threads` values (each a number or `auto`).
public func parseThreadList(_ text: String, flag: String = "--threads") throws -> [Int] {
    let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    guard !parts.isEmpty, !parts.contains("") else {
        throw StageError.usage("\(flag) '\(text)' must be a comma-separated list of positive integers or auto, e.g. 1,2")
    }
    return try parts.map { part in
        guard part == "auto" || Int(part).map({ $0 >= 1 }) == true else {
            throw StageError.usage("\(flag) '\(text)' must be a comma-separated list of positive integers or auto, e.g. 1,2")
        }
        return try parseThreads(part, flag: flag)
    }
}

// MARK: - limits of counts from flags

/// Most optimizer steps (and step intervals) a flag may name: far beyond any real run, small
/// enough that every sum and product of steps, epochs and batch sizes stays an Int.
public let maximumSteps = Int(Int32.max)

/// Checks that `value`, given for `flag`, lies in `range`; a usage error naming both otherwise.
func checkFlag(_ value: Int, in range: ClosedRange<Int>, flag: String) throws {
    guard range.contains(value) else { throw StageError.usage("\(flag) \(value) is out of range — use \(range.lowerBound)...\(range.upperBound)") }
}

/// Checks that `value`, given for `flag`, is finite and lies in `range`.
func checkFlag(_ value: Double, in range: ClosedRange<Double>, flag: String) throws {
    guard value.isFinite, range.contains(value) else {
        throw StageError.usage("\(flag) \(value) is out of range — use a number in \(range.lowerBound)...\(range.upperBound)")
    }
}

// MARK: - the training log

/// `OUT.metrics.jsonl` beside the model `OUT.h5`.
public func metricsLogPath(out: String) -> String {
    (out.hasSuffix(".h5") ? String(out.dropLast(3)) : out) + ".metrics.jsonl"
}

/// The training log of a run: one JSON object per optimizer step
/// (`{"step","epoch","loss","lr","grad_norm","examples","time"}`) and per dev evaluation
/// (`{"step","dev_accuracy","dev_macro_f1","best","time"}`), appended and flushed as the
/// run goes, so a killed run keeps its history. A resumed run first drops the lines of steps
/// after its checkpoint (the killed process logged them, the resumed one runs them again),
/// then appends.
final class MetricsLog {
    let path: String
    private let handle: FileHandle
    private let started = Date()
    /// Seconds of earlier processes of this run (a resumed run continues the clock).
    private var offset = 0.0

    /// Opens the log: truncated for a fresh run; for a run resuming at step `resumingAt`,
    /// cut back to the lines of steps up to it, then appended to.
    init(path: String, resumingAt step: Int?) throws {
        self.path = path
        let resuming = step != nil
        let manager = FileManager.default
        if let step, let text = try? String(contentsOfFile: path, encoding: .utf8) {
            let kept = text.split(separator: "\n").filter { line in
                guard let logged = (try? JSONValue.parse(String(line)))?.objectValue?["step"]?.numberValue else { return false }
                return logged <= Double(step)
            }
            do { try OutputFile.write(Data(kept.map { $0 + "\n" }.joined().utf8), to: URL(fileURLWithPath: path)) } catch {
                throw StageError(file: path, error)
            }
        }
        if !resuming || !manager.fileExists(atPath: path) {
            guard manager.createFile(atPath: path, contents: nil) else {
                throw StageError("\(path): cannot create the training log — check that the directory is writable")
            }
        }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw StageError("\(path): cannot open the training log for writing")
        }
        self.handle = handle
        _ = try? handle.seekToEnd()
        if resuming { offset = Self.lastTime(path) }
    }

    deinit { try? handle.close() }

    private var time: Double { offset + Date().timeIntervalSince(started) }

    private func append(_ line: String) { handle.write(Data((line + "\n").utf8)) }

    /// Logs one optimizer step.
    func step(_ r: StepReport) {
        append(String(format: "{\"step\":%d,\"epoch\":%.4f,\"loss\":%.6g,\"lr\":%.6g,\"grad_norm\":%.6g,\"examples\":%d,\"time\":%.3f}",
                      r.step, Double(r.step) / Double(max(r.stepsPerEpoch, 1)), r.loss, r.learningRate, Double(r.gradientNorm),
                      r.examples, time))
    }

    /// Logs one dev evaluation.
    func evaluation(step: Int, metrics: ClassificationMetrics, best: Bool) {
        append(String(format: "{\"step\":%d,\"dev_accuracy\":%.6f,\"dev_macro_f1\":%.6f,\"best\":%@,\"time\":%.3f}",
                      step, metrics.accuracy, metrics.macroF1, best ? "true" : "false", time))
    }

    /// The largest "time" in an existing log (0 when there is none).
    private static func lastTime(_ path: String) -> Double {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return 0 }
        return text.split(separator: "\n").compactMap { line -> Double? in
            (try? JSONValue.parse(String(line)))?.objectValue?["time"]?.numberValue
        }.max() ?? 0
    }
}

/// Removes a finished run's checkpoint unless it is to be kept, and any partial checkpoint a
/// killed earlier process of the run left beside it; says which on `progress`.
func finishCheckpoint(_ path: String, keep: Bool, progress: StageProgress) {
    OutputFile.removeStalePartials(of: URL(fileURLWithPath: path))
    guard FileManager.default.fileExists(atPath: path) else { return }
    if keep {
        progress.line("checkpoint kept: \(path) (\(formatSize(fileSize(path))))")
    } else {
        try? FileManager.default.removeItem(atPath: path)
    }
}

// MARK: - version

/// What `kd --version` prints: version, commit, and the kernels this CPU gets.
public enum BuildInfo {
    /// The release of this source tree.
    public static let version = "0.6.0"

    /// The commit of the source checkout this binary was built from, read from its .git
    /// (nil when the binary has moved away from its sources or they are not a git checkout).
    public static var commit: String? {
        // #filePath: <root>/Sources/DistilleryStages/RunSettings.swift
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        func resolve(_ path: String, in base: URL) -> URL {
            let path = path.trimmingCharacters(in: .whitespacesAndNewlines)
            return path.hasPrefix("/") ? URL(fileURLWithPath: path) : base.appendingPathComponent(path).standardizedFileURL
        }
        var git = root.appendingPathComponent(".git")
        if let text = try? String(contentsOf: git, encoding: .utf8), text.hasPrefix("gitdir:") {   // a worktree
            git = resolve(String(text.dropFirst(7)), in: root)
        }
        guard let head = (try? String(contentsOf: git.appendingPathComponent("HEAD"), encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) else { return nil }
        guard head.hasPrefix("ref: ") else { return String(head.prefix(12)) }
        let ref = String(head.dropFirst(5))
        let common = (try? String(contentsOf: git.appendingPathComponent("commondir"), encoding: .utf8)).map { resolve($0, in: git) } ?? git
        for base in [git, common] {
            if let sha = try? String(contentsOf: base.appendingPathComponent(ref), encoding: .utf8) {
                return String(sha.trimmingCharacters(in: .whitespacesAndNewlines).prefix(12))
            }
            if let packed = try? String(contentsOf: base.appendingPathComponent("packed-refs"), encoding: .utf8),
               let line = packed.split(separator: "\n").first(where: { $0.hasSuffix(" " + ref) }) {
                return String(line.prefix(12))
            }
        }
        return nil
    }

    /// Which kernel builds run (AVX-512, AVX2+FMA or the portable `_ref` code, and whether
    /// DISTILLERY_KERNELS forced it), which quantized formats take the fp32 route
    /// (`quantizedRouteNote`, DISTILLERY_QUANT_ROUTE), and which vector features the CPU has.
    public static var kernels: String {
        let f = Int(dk_cpu_features())
        let cpu = [(DK_CPU_AVX2_FMA, "AVX2+FMA"), (DK_CPU_AVX512F, "AVX-512F"), (DK_CPU_AVX512_VNNI, "AVX-512 VNNI"),
                   (DK_CPU_AVX512_BF16, "AVX-512 BF16")].filter { f & Int($0.0) != 0 }.map(\.1)
        let path = dk_kernel_path() == Int32(DK_PATH_AVX512) ? "AVX-512 kernels (GEMMs; AVX2+FMA elsewhere)"
            : dk_kernel_path() == Int32(DK_PATH_AVX2) ? "AVX2+FMA kernels" : "portable kernels"
        let forced = dk_kernel_path_forced() != 0 ? " (forced by DISTILLERY_KERNELS)" : ""
        let emulated = f & Int(DK_CPU_AVX512_EMULATED) != 0 ? " (AVX-512 emulated on AVX2 by SIMDe: a test build, slow)" : ""
        return "\(path)\(forced)\(quantizedRouteNote); this CPU has \(cpu.isEmpty ? "no AVX2" : cpu.joined(separator: ", "))\(emulated)"
    }

    /// "kd 0.6.0 (commit abc123def456) — AVX2+FMA kernels …, N cores".
    public static var line: String {
        "kd \(version) (commit \(commit ?? "unknown")) — \(kernels), \(ProcessInfo.processInfo.activeProcessorCount) cores"
    }
}
