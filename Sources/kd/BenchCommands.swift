// kd bench: latency of a model and throughput of its tokenizer.
//
// Latency: fixed random token ids (seeded), every position real, warm-up runs first, then
// timed forward passes; reports median, p90, p99 and sequences/s per (batch, seq,
// threads). Peers (PyTorch, ONNX Runtime) are run by benchmarks/peer_latency.py in the
// same run; this command measures only Distillery.
import ArgumentParser
import DistilleryData
import DistilleryModel
import DistilleryTensor
import Foundation
import Tokenization

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks (not tests): latency of a model, throughput of a tokenizer.",
        subcommands: [Latency.self, TokenizerThroughput.self, TrainStepBench.self, DistillStepBench.self])
}

/// Parses a comma-separated list of positive integers for `flag`.
func parseIntList(_ text: String, flag: String) throws -> [Int] {
    let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    let values = parts.compactMap { Int($0) }
    guard !parts.isEmpty, values.count == parts.count, values.allSatisfy({ $0 >= 1 }) else {
        throw CLIError("\(flag) '\(text)' must be a comma-separated list of positive integers, e.g. 1,32")
    }
    return values
}

/// Monotonic clock in seconds.
func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

struct Latency: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Forward-pass latency per batch size, length and thread count.",
        discussion: """
        Several --model flags compare models in one run: for each configuration the models take
        turns (--rounds rounds, each a slice of the time budget), so a machine whose speed drifts
        over minutes (a shared host, turbo) affects every model alike. The table and JSON then
        also give each model's speed-up over the first (median against median).
        """)

    @Option(help: "Distillery model file (.h5); repeat to compare models.") var model: [String]
    @Option(help: "Batch sizes, comma-separated.") var batch = "1,32"
    @Option(help: "Sequence lengths, comma-separated.") var seq = "128"
    @Option(help: "Thread counts, comma-separated.") var threads = "1"
    @Option(help: "Warm-up passes per configuration.") var warmup = 3
    @Option(help: "Timed passes per configuration and model (0: as many as fit in --seconds, at least 10).") var iters = 0
    @Option(help: "Time budget per configuration and model when --iters is 0.") var seconds = 5.0
    @Option(help: "Turns the models take per configuration (default: 1 for one model, 5 for several).") var rounds: Int?
    @Flag(help: "Print JSON instead of a table.") var json = false

    func run() throws {
        let batches = try parseIntList(batch, flag: "--batch")
        let lengths = try parseIntList(seq, flag: "--seq")
        let threadCounts = try parseIntList(threads, flag: "--threads")
        guard warmup >= 0, iters >= 0, seconds > 0 else { throw CLIError("--warmup, --iters and --seconds must not be negative") }
        guard !model.isEmpty else { throw CLIError("--model: give at least one model file") }
        let turns = rounds ?? (model.count > 1 ? 5 : 1)
        guard turns >= 1 else { throw CLIError("--rounds \(turns) must be at least 1") }
        let loaded = try model.map { try LoadedModel(path: $0) }
        for (path, m) in zip(model, loaded) {
            for T in lengths where T > m.encoder.config.maxPositions {
                throw CLIError("--seq \(T) exceeds the model's \(m.encoder.config.maxPositions) positions (\(path))")
            }
        }
        var results: [[String: Any]] = []
        if !json {
            for (path, m) in zip(model, loaded) {
                print("model \(path): \(m.encoder.config.layerCount) layers, hidden \(m.encoder.config.hiddenSize); kernels: \(kernelISA())")
            }
            if turns > 1 { print("\(model.count) model(s) taking turns, \(turns) rounds per configuration") }
            print("batch  seq  threads   median ms     p90 ms     p99 ms     seq/s" + (model.count > 1 ? "  speed-up  model" : ""))
        }
        for th in threadCounts {
            try ThreadOptions.apply(th)
            for B in batches { for T in lengths {
                let inputs = loaded.map { m -> EncoderBatch in
                    var rng = SplitMix64(seed: 42)
                    let ids = (0..<(B * T)).map { i -> Int32 in
                        i % T == 0 ? Int32(m.tokenizer.classId) : Int32(rng.next() % UInt64(m.encoder.config.vocabSize))
                    }
                    return EncoderBatch(ids: ids, batchSize: B, sequenceLength: T)
                }
                var times = [[Double]](repeating: [], count: loaded.count)
                for round in 0..<turns {
                    for (i, m) in loaded.enumerated() {
                        if round == 0 { for _ in 0..<warmup { _ = try m.encoder.forward(inputs[i]) } }
                        // This round's share of the passes (or of the time), at least 10 over all rounds.
                        let target = iters > 0 ? iters * (round + 1) / turns : 10 * (round + 1) / turns
                        let budget = seconds / Double(turns)
                        let start = now()
                        while times[i].count < target || (iters == 0 && now() - start < budget) {
                            let t0 = now()
                            _ = try m.encoder.forward(inputs[i])
                            times[i].append((now() - t0) * 1000)
                        }
                    }
                }
                var firstMedian = 0.0
                for (i, path) in model.enumerated() {
                    let sorted = times[i].sorted()
                    func pct(_ p: Double) -> Double { sorted[min(sorted.count - 1, Int((p * Double(sorted.count - 1)).rounded()))] }
                    let median = pct(0.5), p90 = pct(0.9), p99 = pct(0.99)
                    if i == 0 { firstMedian = median }
                    let rate = Double(B) / (median / 1000)
                    var record: [String: Any] = ["batch": B, "seq": T, "threads": th, "median_ms": median, "p90_ms": p90,
                                                 "p99_ms": p99, "seq_per_s": rate, "iters": sorted.count, "model": path]
                    if model.count > 1 { record["speedup_vs_first"] = firstMedian / median }
                    results.append(record)
                    if !json {
                        let line = String(format: "%5d %4d %8d %11.2f %10.2f %10.2f %9.1f", B, T, th, median, p90, p99, rate)
                        print(model.count > 1 ? line + String(format: "  %7.2f×  ", firstMedian / median) + path : line)
                    }
                }
            } }
        }
        if json {
            let data = try JSONSerialization.data(withJSONObject: results, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
    }
}

/// Which kernel build runs here.
func kernelISA() -> String { kernelsUseAVX2() ? "AVX2+FMA" : "portable" }

struct TokenizerThroughput: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tokenizer", abstract: "Tokenizer throughput (tokens/s, one thread).")

    @Option(help: "Distillery model file (.h5) whose tokenizer to use.") var model: String
    @Option(help: "Input file, one text per line.") var input: String
    @Option(help: "Passes over the input.") var repeats = 5
    @Flag(help: "Print JSON instead of text.") var json = false

    func run() throws {
        guard repeats >= 1 else { throw CLIError("--repeats must be at least 1") }
        let loaded = try LoadedModel(path: model)
        let lines = try readInputLines(input, allowEmpty: true)
        _ = measureTokenizerThroughput(loaded.tokenizer, lines: lines, repeats: 1)  // warm-up
        let (tokens, seconds) = measureTokenizerThroughput(loaded.tokenizer, lines: lines, repeats: repeats)
        let rate = Double(tokens) / seconds
        if json {
            print("{\"lines\":\(lines.count),\"tokens\":\(tokens),\"seconds\":\(seconds),\"tokens_per_s\":\(rate)}")
        } else {
            print(String(format: "%d lines x %d passes: %d tokens in %.3f s = %.0f tokens/s", lines.count, repeats, tokens, seconds, rate))
        }
    }
}
