// VariantBench: the measuring stage of a trade-off report — every model variant (teacher,
// students, pruned, quantized) measured in one run on one machine: parameters, file size,
// load time, peak memory, batch-1 and throughput-batch latency, and accuracy, macro-F1,
// agreement and KL against the teacher on a split (`benchVariants` → `TradeoffReport`).
//
// Timing reuses `benchLatency`: the variants take turns per batch size (`rounds` rounds of
// `secondsPerTurn` each), so a machine whose speed drifts affects all of them alike; inputs
// are seeded random ids of `sequenceLength` tokens, every position real. Load time: each
// variant loaded `rounds` times, taking turns, the median kept (the file is in the page
// cache after the first load, so this is parse-and-build time, not disk time). Scores reuse
// `evaluate` with the teacher beside each variant. Peak memory is measured in a fresh
// process (`kd bench peak-memory`, `measurePeakMemory`): it loads the model, runs one
// throughput batch and reports VmHWM from /proc/self/status — the whole process's peak
// resident set, the runtime included, so it is comparable between variants, not the model's
// bytes alone. Without a kd executable to start (a library caller other than kd) it is
// left out and said so. Left out on purpose: GPU anything, energy, cold-cache load times.
import Distillation
import DistilleryData
import DistilleryJSON
import DistilleryModel
import DistilleryTensor
import Foundation
import Reporting

/// What `benchVariants` measures.
public struct VariantBenchConfig: Sendable {
    /// The variants, in the order given (names unique).
    public var variants: [VariantSpec]
    /// The variant agreement and KL are measured against (default: the one of kind "teacher").
    public var teacher: String?
    /// A prepared dataset folder.
    public var data: String
    public var split: Split = .test
    /// Compute threads for every measurement.
    public var threads = 1
    /// The batch of the throughput figures (sequences/s) and of the peak-memory run.
    public var throughputBatch = 32
    /// Tokens per sequence in the timed runs and the truncation length of the scoring
    /// (nil: the teacher's stored length, else the first variant's, else 128).
    public var maxLength: Int?
    /// Seconds each variant runs per turn and batch size.
    public var secondsPerTurn = 2.0
    /// Turns the variants take (timing and load time).
    public var rounds = 3
    /// Score only the split's first this many examples (nil: all).
    public var evalLimit: Int?
    /// The recipe hash and run id recorded in the report (nil outside a recipe).
    public var recipeHash: String?
    public var runID: String?
    /// The kd executable started for the peak-memory runs (default: `kdExecutable`; nil:
    /// peak memory is not measured).
    public var memoryProbe: String? = kdExecutable

    /// A configuration with the defaults of `kd bench variants`.
    public init(variants: [VariantSpec], data: String) {
        self.variants = variants
        self.data = data
    }
}

/// The kd executable of this process, set by kd at launch whatever its file is called; nil
/// in any other caller (a test runner), whose peak-memory runs are then left out.
nonisolated(unsafe) public var kdExecutable: String?

/// Measures every variant of `config` and returns the report (nothing is written).
public func benchVariants(_ config: VariantBenchConfig, progress: StageProgress) throws -> TradeoffReport {
    // Check everything before measuring anything.
    try setComputeThreads(config.threads)
    try checkFlag(config.throughputBatch, in: 1...maximumBatchSize, flag: "--throughput-batch")
    try checkFlag(config.secondsPerTurn, in: 0.001...benchMaximumSeconds, flag: "--seconds")
    try checkFlag(config.rounds, in: 1...1000, flag: "--rounds")
    if let limit = config.evalLimit { try checkFlag(limit, in: 1...Int.max, flag: "--eval-limit") }
    guard !config.variants.isEmpty else { throw StageError.usage("--model: give at least one variant as NAME=PATH") }
    var names = Set<String>()
    for v in config.variants {
        guard !v.name.isEmpty else { throw StageError.usage("--model =\(v.path): the variant has no name — write NAME=PATH") }
        guard names.insert(v.name).inserted else { throw StageError.usage("--model \(v.name)=…: the name '\(v.name)' is given twice — names must be unique") }
    }
    let teacherName = config.teacher ?? config.variants.first { $0.kind == "teacher" }?.name
    if let teacherName, !names.contains(teacherName) {
        throw StageError.usage("--teacher \(teacherName) is not one of the variants (\(config.variants.map(\.name).joined(separator: ", ")))")
    }
    let teacherSpec = config.variants.first { $0.name == teacherName }
    let models = try config.variants.map { try InferenceModel(path: $0.path) }
    for (v, m) in zip(config.variants, models) {
        _ = try m.labelNames(hint: "every variant needs a classifier (\(v.name))")
    }
    let reference = teacherSpec.flatMap { t in models.first { $0.path == t.path } } ?? models[0]
    let length = config.maxLength ?? reference.storedMaxLength ?? min(128, reference.maxPositions)
    for m in models { try m.checkMaxLength(length) }
    _ = try PreparedFolder(path: config.data)

    // Load time: each variant loaded `rounds` times, taking turns.
    progress.line("load time: \(config.variants.count) variant(s), \(config.rounds) round(s)")
    var loads = [[Double]](repeating: [], count: models.count)
    for _ in 0..<config.rounds {
        for (i, v) in config.variants.enumerated() {
            let t0 = now()
            _ = try InferenceModel(path: v.path)
            loads[i].append((now() - t0) * 1000)
        }
    }

    // Latency at batch 1 and the throughput batch, variants taking turns.
    progress.line("latency: batch 1 and \(config.throughputBatch), \(length) tokens, \(config.threads) thread(s), \(config.rounds) round(s) of \(config.secondsPerTurn) s per variant")
    var latencyConfig = LatencyConfig(models: config.variants.map(\.path))
    latencyConfig.batchSizes = config.throughputBatch == 1 ? [1] : [1, config.throughputBatch]
    latencyConfig.lengths = [length]
    latencyConfig.threadCounts = [config.threads]
    latencyConfig.seconds = config.secondsPerTurn * Double(config.rounds)
    latencyConfig.rounds = config.rounds
    let latency = try benchLatency(latencyConfig)
    func stats(_ variant: Int, batch: Int) -> LatencyStats {
        let r = latency.rows.filter { $0.batch == batch }[variant]
        return LatencyStats(batch: batch, medianMs: r.medianMs, p90Ms: r.p90Ms, p99Ms: r.p99Ms, sequencesPerSecond: r.seqPerS)
    }

    // Peak memory, each in a fresh process.
    var peaks = [Int?](repeating: nil, count: models.count)
    if let probe = config.memoryProbe {
        for (i, v) in config.variants.enumerated() {
            peaks[i] = try runPeakMemoryProbe(probe, model: v.path, batch: config.throughputBatch, length: length, threads: config.threads).peakBytes
        }
    } else {
        progress.warning("peak memory is not measured: no kd executable to start (this process is not kd)")
    }

    // Scores, each variant beside the teacher.
    var measurements: [VariantMeasurement] = []
    for (i, v) in config.variants.enumerated() {
        var eval = EvalConfig(model: v.path, data: config.data, split: config.split, maxLength: config.maxLength ?? length,
                              teacher: v.name == teacherName ? nil : teacherSpec?.path, threads: config.threads)
        eval.limit = config.evalLimit
        let scores = try evaluate(eval, progress: progress)
        progress.line(String(format: "%@: macro-F1 %.4f, batch-1 median %.2f ms", v.name, scores.macroF1, stats(i, batch: 1).medianMs))
        let parameters = models[i].parameterCount
        measurements.append(VariantMeasurement(
            spec: v, parameters: parameters, fileBytes: fileSize(v.path), loadMs: loads[i].sorted()[loads[i].count / 2],
            peakMemoryBytes: peaks[i], latency: stats(i, batch: 1), throughput: stats(i, batch: config.throughputBatch),
            accuracy: scores.accuracy, macroF1: scores.macroF1, agreement: scores.agreement, meanKL: scores.meanKL, examples: scores.examples))
    }
    let created = ISO8601DateFormatter().string(from: Date())
    return TradeoffReport(created: created, recipeHash: config.recipeHash, runID: config.runID,
                          dataset: URL(fileURLWithPath: config.data).standardizedFileURL.lastPathComponent, split: config.split.rawValue,
                          sequenceLength: length, machine: currentMachine(threads: config.threads), teacher: teacherName, variants: measurements)
}

// MARK: - machine

/// The machine this process runs on: CPU model, logical CPUs, the kernel build, kd's
/// version and commit, the OS.
public func currentMachine(threads: Int) -> MachineInfo {
    let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
    let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
        .flatMap { $0.split(separator: ":", maxSplits: 1).last }.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
    let release = (try? String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8))?
        .trimmingCharacters(in: .whitespacesAndNewlines)
    let osRelease = (try? String(contentsOfFile: "/etc/os-release", encoding: .utf8)) ?? ""
    let pretty = osRelease.split(separator: "\n").first { $0.hasPrefix("PRETTY_NAME=") }
        .map { String($0.dropFirst("PRETTY_NAME=".count)).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
    let os = [pretty, release.map { "Linux \($0)" }].compactMap { $0 }.joined(separator: ", ")
    return MachineInfo(cpuModel: model, cores: ProcessInfo.processInfo.activeProcessorCount, threads: threads, kernelPath: kernelISA(),
                       kdVersion: "kd \(BuildInfo.version) (commit \(BuildInfo.commit ?? "unknown"))", os: os.isEmpty ? "unknown" : os)
}

// MARK: - peak memory

/// What one peak-memory run saw (`kd bench peak-memory --json`).
public struct PeakMemoryReport: Codable, Sendable {
    /// VmRSS before the model was loaded (the runtime alone).
    public var baselineBytes: Int
    /// VmHWM after loading and one pass: the process's peak resident set.
    public var peakBytes: Int
    public var batch: Int
    public var length: Int

    enum CodingKeys: String, CodingKey { case baselineBytes = "baseline_bytes", peakBytes = "peak_bytes", batch, length }
}

/// A `/proc/self/status` field in bytes ("VmHWM:   123456 kB").
func procStatusBytes(_ field: String) -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
    guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }) else { return nil }
    let parts = line.split(separator: " ", omittingEmptySubsequences: true)
    guard parts.count >= 2, let kb = Int(parts[1].trimmingCharacters(in: .whitespaces)) else { return nil }
    return kb * 1024
}

/// Loads `model`, runs one forward pass of `batch` sequences of `length` tokens and reports
/// this process's peak resident memory (meant for a fresh process: `kd bench peak-memory`).
public func measurePeakMemory(model: String, batch: Int, length: Int, threads: Int) throws -> PeakMemoryReport {
    try setComputeThreads(threads)
    try checkFlag(batch, in: 1...maximumBatchSize, flag: "--batch-size")
    guard let baseline = procStatusBytes("VmRSS") else { throw StageError("/proc/self/status: no VmRSS — peak memory needs Linux's /proc") }
    let m = try InferenceModel(path: model)
    try m.checkMaxLength(length)
    // Fixed ids spread over the vocabulary; [CLS] first (the values do not change the memory).
    let ids = (0..<(batch * length)).map { i -> Int32 in
        i % length == 0 ? Int32(m.tokenizer.classId) : Int32((i &* 7919 &+ 13) % m.vocabSize)
    }
    do { _ = try m.encoder.encode(EncoderBatch(ids: ids, batchSize: batch, sequenceLength: length)) } catch { throw StageError(file: model, error) }
    guard let peak = procStatusBytes("VmHWM") else { throw StageError("/proc/self/status: no VmHWM — peak memory needs Linux's /proc") }
    return PeakMemoryReport(baselineBytes: baseline, peakBytes: peak, batch: batch, length: length)
}

/// Runs `probe bench peak-memory …` for one model and reads its JSON.
func runPeakMemoryProbe(_ probe: String, model: String, batch: Int, length: Int, threads: Int) throws -> PeakMemoryReport {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: probe)
    process.arguments = ["bench", "peak-memory", "--model", model, "--batch-size", "\(batch)", "--seq", "\(length)", "--threads", "\(threads)", "--json"]
    let out = Pipe(), err = Pipe()
    (process.standardOutput, process.standardError) = (out, err)
    do { try process.run() } catch { throw StageError("\(probe): cannot start the peak-memory run (\(error.localizedDescription))") }
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    guard process.terminationStatus == 0, let report = try? JSONCoding.decode(PeakMemoryReport.self, from: stdout) else {
        let why = stderr.split(separator: "\n").last.map(String.init) ?? "exit status \(process.terminationStatus)"
        throw StageError("\(model): the peak-memory run failed (\(why))")
    }
    return report
}
