// Calibration: int8-static's activation scales from the magnitudes a layer's input takes on
// calibration data — the largest one (min-max) or a high percentile of them, which ignores
// a few outliers at the price of clipping them (TensorRT's and ONNX Runtime's two basic
// calibrators).
//
// `ActivationRange` streams |x| values into a histogram of `binCount` equal bins over
// [0, range); a value beyond the range doubles the bin width (adjacent bins merge), so one
// pass over any amount of data needs fixed memory. The percentile is the upper edge of the
// bin where the cumulative count reaches it: at most one bin width (range / 2048) above the
// exact value. Non-finite activations are an error naming the unit. Left out on purpose:
// entropy (KL) calibration.

/// How int8-static picks an activation scale from calibration data.
public enum CalibrationMethod: Sendable, Equatable, CustomStringConvertible {
    /// scale = max |x| / 127.
    case minMax
    /// scale = the given percentile (e.g. 99.99) of |x| / 127.
    case percentile(Double)

    public var description: String {
        switch self {
        case .minMax: return "min-max"
        case .percentile(let p): return "percentile \(p)"
        }
    }
}

/// The distribution of |x| over everything a layer input saw during calibration.
public struct ActivationRange: Sendable {
    /// Bins of the histogram.
    static let binCount = 2048
    private(set) var bins = [Int](repeating: 0, count: ActivationRange.binCount)
    /// Width of one bin (0 until the first nonzero value).
    private(set) var width: Float = 0
    /// The largest |x| seen.
    public private(set) var maximum: Float = 0
    /// Values seen.
    public private(set) var count = 0

    public init() {}

    /// Adds `n` values; returns false (adding nothing more) at the first non-finite one.
    public mutating func add(_ x: UnsafePointer<Float>, count n: Int) -> Bool {
        var batchMax: Float = 0
        for i in 0..<n {
            let a = abs(x[i])
            guard a.isFinite else { return false }
            batchMax = max(batchMax, a)
        }
        if batchMax > 0 {
            if width == 0 { width = batchMax / Float(Self.binCount) * 1.0001 }
            while batchMax >= width * Float(Self.binCount) { widen() }
        }
        maximum = max(maximum, batchMax)
        count += n
        guard width > 0 else { bins[0] += n; return true }
        let inverse = 1 / width
        for i in 0..<n { bins[min(Self.binCount - 1, Int(abs(x[i]) * inverse))] += 1 }
        return true
    }

    /// Doubles the bin width, merging pairs of bins.
    private mutating func widen() {
        for b in 0..<(Self.binCount / 2) { bins[b] = bins[2 * b] + bins[2 * b + 1] }
        for b in (Self.binCount / 2)..<Self.binCount { bins[b] = 0 }
        width *= 2
    }

    /// The activation scale `method` gives (a positive number; 1 when every value was 0).
    public func scale(_ method: CalibrationMethod) -> Float {
        guard maximum > 0 else { return 1 }
        switch method {
        case .minMax: return maximum / 127
        case .percentile(let p):
            let target = Double(count) * p / 100
            var seen = 0
            for (b, n) in bins.enumerated() {
                seen += n
                if Double(seen) >= target { return min(maximum, Float(b + 1) * width) / 127 }
            }
            return maximum / 127
        }
    }
}
