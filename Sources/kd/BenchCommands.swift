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
    static let configuration = CommandConfiguration(abstract: "Forward-pass latency per batch size, length and thread count.")

    @Option(help: "Distillery model file (.h5).") var model: String
    @Option(help: "Batch sizes, comma-separated.") var batch = "1,32"
    @Option(help: "Sequence lengths, comma-separated.") var seq = "128"
    @Option(help: "Thread counts, comma-separated.") var threads = "1"
    @Option(help: "Warm-up passes per configuration.") var warmup = 3
    @Option(help: "Timed passes per configuration (0: as many as fit in --seconds, at least 10).") var iters = 0
    @Option(help: "Time budget per configuration when --iters is 0.") var seconds = 5.0
    @Flag(help: "Print JSON instead of a table.") var json = false

    func run() throws {
        let batches = try parseIntList(batch, flag: "--batch")
        let lengths = try parseIntList(seq, flag: "--seq")
        let threadCounts = try parseIntList(threads, flag: "--threads")
        guard warmup >= 0, iters >= 0, seconds > 0 else { throw CLIError("--warmup, --iters and --seconds must not be negative") }
        let loaded = try LoadedModel(path: model)
        let config = loaded.encoder.config
        for T in lengths where T > config.maxPositions {
            throw CLIError("--seq \(T) exceeds the model's \(config.maxPositions) positions")
        }
        var results: [[String: Any]] = []
        if !json {
            print("model \(model): \(config.layerCount) layers, hidden \(config.hiddenSize); kernels: \(kernelISA())")
            print("batch  seq  threads   median ms     p90 ms     p99 ms     seq/s")
        }
        for th in threadCounts {
            try ThreadOptions.apply(th)
            for B in batches { for T in lengths {
                var rng = SplitMix64(seed: 42)
                let ids = (0..<(B * T)).map { i -> Int32 in
                    i % T == 0 ? Int32(loaded.tokenizer.classId) : Int32(rng.next() % UInt64(config.vocabSize))
                }
                let input = EncoderBatch(ids: ids, batchSize: B, sequenceLength: T)
                for _ in 0..<warmup { _ = try loaded.encoder.forward(input) }
                var times: [Double] = []
                let start = now()
                while true {
                    let t0 = now()
                    _ = try loaded.encoder.forward(input)
                    times.append((now() - t0) * 1000)
                    if iters > 0 ? times.count >= iters : (times.count >= 10 && now() - start >= seconds) { break }
                }
                times.sort()
                func pct(_ p: Double) -> Double { times[min(times.count - 1, Int((p * Double(times.count - 1)).rounded()))] }
                let median = pct(0.5), p90 = pct(0.9), p99 = pct(0.99)
                let rate = Double(B) / (median / 1000)
                results.append(["batch": B, "seq": T, "threads": th, "median_ms": median, "p90_ms": p90,
                                "p99_ms": p99, "seq_per_s": rate, "iters": times.count])
                if !json {
                    print(String(format: "%5d %4d %8d %11.2f %10.2f %10.2f %9.1f", B, T, th, median, p90, p99, rate))
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
