// Tokenizer throughput measurement, the Swift side of benchmarks/tokenizer_peer.py.
//
// Counts word pieces the way the peer script does (ids without [CLS]/[SEP]) and times
// single-threaded `tokenIds` calls over the same lines with a monotonic clock.
// Left out: warm-up policy and statistics; callers (e.g. `kd bench tokenizer`) decide.
import Foundation

/// Tokenizes `lines` `repeats` times on the calling thread and returns the word pieces produced and the wall time.
///
/// - Returns: `tokens`, the total number of ids without special tokens over all repeats, and
///   `seconds`, the elapsed monotonic time; tokens/s is `tokens / seconds`.
public func measureTokenizerThroughput(_ tok: WordPieceTokenizer, lines: [String], repeats: Int) -> (tokens: Int, seconds: Double) {
    var tokens = 0
    var ids: [Int32] = []
    ids.reserveCapacity(512)
    let clock = ContinuousClock()
    let start = clock.now
    for _ in 0..<max(repeats, 0) {
        for line in lines {
            ids.removeAll(keepingCapacity: true)
            tok.appendTokenIds(of: line, to: &ids)
            tokens += ids.count
        }
    }
    let elapsed = clock.now - start
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    return (tokens, seconds)
}
