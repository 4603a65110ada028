// DropoutRNG: a counter-based random stream for dropout masks.
//
// Each mask element is a pure function of (seed, stream, index) — a SplitMix64-style
// hash, not a sequential generator — so masks are identical for any thread count and a
// run resumes exactly from (seed, step) alone: the checkpoint stores two integers, not a
// generator state. The model derives one stream per (training step, dropout site).
// Not PyTorch's generator: masks differ from torch's, which is why the parity tests run
// with dropout off. Masks are filled row-parallel (`Compute.parallelRanges`; same values
// for any thread count). Left out on purpose: cryptographic quality (not needed here).
import DistilleryTensor

/// Seeded, counter-based random numbers for dropout.
public struct DropoutRNG: Sendable, Equatable {
    /// The run's seed.
    public var seed: UInt64

    public init(seed: UInt64) { self.seed = seed }

    /// The SplitMix64 finalizer: a bijective 64-bit mix with full avalanche.
    @inline(__always)
    public static func mix(_ z0: UInt64) -> UInt64 {
        var z = z0
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform float in [0, 1) for element `index` of stream `stream` (24 random bits).
    @inline(__always)
    public func uniform(stream: UInt64, index: UInt64) -> Float {
        let key = Self.mix(seed &+ Self.mix(stream &+ 0x9E37_79B9_7F4A_7C15))
        let bits = Self.mix(key ^ (index &* 0x9E37_79B9_7F4A_7C15))
        return Float(bits >> 40) * (1 / 16_777_216)
    }

    /// The stream of dropout site `site` at training step `step`.
    public static func stream(step: Int, site: Int) -> UInt64 {
        UInt64(truncatingIfNeeded: step) &* 0x1_0000 &+ UInt64(truncatingIfNeeded: site)
    }

    /// A dropout mask of `count` elements: 0 with probability `p`, else 1/(1−p)
    /// (inverted dropout, as `torch.nn.Dropout` in training mode).
    public func mask(count: Int, probability p: Float, stream: UInt64) -> [Float] {
        precondition(p >= 0 && p < 1, "dropout probability \(p) outside [0, 1)")
        let keep = 1 / (1 - p)
        var out = [Float](repeating: 0, count: count)
        out.withUnsafeMutableBufferPointer { buffer in
            let o = buffer.baseAddress!
            Compute.parallelRanges(count) { r in
                for i in r { o[i] = uniform(stream: stream, index: UInt64(i)) < p ? 0 : keep }
            }
        }
        return out
    }
}
