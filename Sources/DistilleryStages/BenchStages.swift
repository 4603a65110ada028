// BenchStages: measurements, not tests — forward-pass latency of one or more models
// (`benchLatency`), tokenizer throughput (`benchTokenizer`), and the time of one
// fine-tuning step (`benchTrainStep`) or one distillation step (`benchDistillStep`).
//
// Latency: fixed random token ids (seeded), every position real, warm-up runs first, then
// timed forward passes; median, p90, p99 and sequences/s per (batch, seq, threads). With
// several models they take turns per configuration, so a machine whose speed drifts over
// minutes affects every model alike. A step: what `finetune` (or `distill`) does per batch
// — training forward with dropout, (the plan's losses against teacher signals computed
// once,) backward, clipping at 1.0 and an AdamW update (lr 5e-5, weight decay 0.01) — on a
// fixed seeded batch of [CLS] + random ids + [SEP]. Peers (PyTorch, ONNX Runtime) are run
// by benchmarks/*.py; these functions measure only Distillery. Not measured on purpose:
// batching and padding, the schedule, evaluation, checkpoints.
import Distillation
import DistilleryModel
import DistilleryTensor
import DistilleryTraining
import Foundation
import Tokenization

/// Which kernel build runs here.
public func kernelISA() -> String { kernelsUseAVX2() ? "AVX2+FMA" : "portable" }

/// The `p`-quantile of sorted values (nearest rank).
func percentile(_ sorted: [Double], _ p: Double) -> Double {
    sorted[min(sorted.count - 1, Int((p * Double(sorted.count - 1)).rounded()))]
}

// MARK: - latency

/// What `benchLatency` measures.
public struct LatencyConfig: Sendable {
    /// Model files; several take turns.
    public var models: [String]
    public var batchSizes = [1, 32]
    public var lengths = [128]
    public var threadCounts = [1]
    /// Warm-up passes per configuration.
    public var warmup = 3
    /// Timed passes per configuration and model (0: as many as fit in `seconds`, at least 10).
    public var iterations = 0
    /// Time budget per configuration and model when `iterations` is 0.
    public var seconds = 5.0
    /// Turns the models take per configuration (nil: 1 for one model, 5 for several).
    public var rounds: Int?

    /// A configuration with the defaults of `kd bench latency`.
    public init(models: [String]) { self.models = models }
}

/// One model's latency in one configuration.
public struct LatencyRow: Codable, Sendable {
    public var model: String
    public var batch: Int
    public var seq: Int
    public var threads: Int
    public var medianMs: Double
    public var p90Ms: Double
    public var p99Ms: Double
    public var seqPerS: Double
    public var iters: Int
    /// The first model's median over this one's (several models only).
    public var speedupVsFirst: Double?

    enum CodingKeys: String, CodingKey {
        case model, batch, seq, threads, medianMs = "median_ms", p90Ms = "p90_ms", p99Ms = "p99_ms", seqPerS = "seq_per_s", iters
        case speedupVsFirst = "speedup_vs_first"
    }
}

/// The latency table: a description of each model and one row per model and configuration.
public struct LatencyReport: Codable, Sendable {
    /// "model PATH: N layers, hidden H; kernels: …" per model.
    public var models: [String]
    public var rounds: Int
    public var rows: [LatencyRow]

    /// The table as `kd bench latency` prints it.
    public var text: String {
        var lines = models
        if rounds > 1 { lines.append("\(models.count) model(s) taking turns, \(rounds) rounds per configuration") }
        lines.append("batch  seq  threads   median ms     p90 ms     p99 ms     seq/s" + (models.count > 1 ? "  speed-up  model" : ""))
        for r in rows {
            let line = String(format: "%5d %4d %8d %11.2f %10.2f %10.2f %9.1f", r.batch, r.seq, r.threads, r.medianMs, r.p90Ms, r.p99Ms, r.seqPerS)
            lines.append(r.speedupVsFirst.map { line + String(format: "  %7.2f×  ", $0) + r.model } ?? line)
        }
        return lines.joined(separator: "\n")
    }
}

/// Forward-pass latency per batch size, length and thread count.
public func benchLatency(_ config: LatencyConfig) throws -> LatencyReport {
    guard config.warmup >= 0, config.iterations >= 0, config.seconds > 0 else {
        throw StageError("--warmup, --iters and --seconds must not be negative")
    }
    guard !config.models.isEmpty else { throw StageError("--model: give at least one model file") }
    let turns = config.rounds ?? (config.models.count > 1 ? 5 : 1)
    guard turns >= 1 else { throw StageError("--rounds \(turns) must be at least 1") }
    let loaded = try config.models.map { try InferenceModel(path: $0) }
    for m in loaded {
        for T in config.lengths where T > m.config.maxPositions {
            throw StageError("--seq \(T) exceeds the model's \(m.config.maxPositions) positions (\(m.path))")
        }
    }
    var rows: [LatencyRow] = []
    for th in config.threadCounts {
        try setComputeThreads(th)
        for B in config.batchSizes { for T in config.lengths {
            let times = try timeForwardPasses(loaded, batch: B, length: T, turns: turns, config: config)
            var firstMedian = 0.0
            for (i, m) in loaded.enumerated() {
                let sorted = times[i].sorted()
                let median = percentile(sorted, 0.5)
                if i == 0 { firstMedian = median }
                rows.append(LatencyRow(model: m.path, batch: B, seq: T, threads: th, medianMs: median, p90Ms: percentile(sorted, 0.9),
                                       p99Ms: percentile(sorted, 0.99), seqPerS: Double(B) / (median / 1000), iters: sorted.count,
                                       speedupVsFirst: loaded.count > 1 ? firstMedian / median : nil))
            }
        } }
    }
    return LatencyReport(models: loaded.map { "model \($0.path): \($0.config.layerCount) layers, hidden \($0.config.hiddenSize); kernels: \(kernelISA())" },
                         rounds: turns, rows: rows)
}

/// Each model's pass times (ms) in one configuration, the models taking `turns` turns.
private func timeForwardPasses(_ models: [InferenceModel], batch B: Int, length T: Int, turns: Int,
                               config: LatencyConfig) throws -> [[Double]] {
    let inputs = models.map { m -> EncoderBatch in
        var rng = SplitMix64(seed: 42)
        let ids = (0..<(B * T)).map { i -> Int32 in
            i % T == 0 ? Int32(m.tokenizer.classId) : Int32(rng.next() % UInt64(m.config.vocabSize))
        }
        return EncoderBatch(ids: ids, batchSize: B, sequenceLength: T)
    }
    var times = [[Double]](repeating: [], count: models.count)
    for round in 0..<turns {
        for (i, m) in models.enumerated() {
            if round == 0 { for _ in 0..<config.warmup { _ = try m.encoder.forward(inputs[i]) } }
            // This round's share of the passes (or of the time), at least 10 over all rounds.
            let target = config.iterations > 0 ? config.iterations * (round + 1) / turns : 10 * (round + 1) / turns
            let budget = config.seconds / Double(turns)
            let start = now()
            while times[i].count < target || (config.iterations == 0 && now() - start < budget) {
                let t0 = now()
                _ = try m.encoder.forward(inputs[i])
                times[i].append((now() - t0) * 1000)
            }
        }
    }
    return times
}

// MARK: - tokenizer

/// Tokenizer throughput over the lines of a file.
public struct TokenizerThroughputReport: Codable, Sendable {
    public var lines: Int
    public var tokens: Int
    public var seconds: Double
    public var tokensPerS: Double
    /// Passes over the input.
    public var repeats: Int

    enum CodingKeys: String, CodingKey { case lines, tokens, seconds, tokensPerS = "tokens_per_s", repeats }

    /// "N lines x R passes: T tokens in S s = … tokens/s".
    public var text: String {
        String(format: "%d lines x %d passes: %d tokens in %.3f s = %.0f tokens/s", lines, repeats, tokens, seconds, tokensPerS)
    }
}

/// Tokens per second of `model`'s tokenizer over `input` (one thread, `repeats` passes after one warm-up).
public func benchTokenizer(model: String, input: String, repeats: Int = 5) throws -> TokenizerThroughputReport {
    guard repeats >= 1 else { throw StageError("--repeats must be at least 1") }
    let bundle = try ModelBundle(path: model)
    let lines = try readInputLines(input, allowEmpty: true)
    _ = measureTokenizerThroughput(bundle.tokenizer, lines: lines, repeats: 1)  // warm-up
    let (tokens, seconds) = measureTokenizerThroughput(bundle.tokenizer, lines: lines, repeats: repeats)
    return TokenizerThroughputReport(lines: lines.count, tokens: tokens, seconds: seconds, tokensPerS: Double(tokens) / seconds,
                                     repeats: repeats)
}
