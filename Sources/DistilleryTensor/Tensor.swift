// Tensor: a dense, row-major float32 array with a shape.
//
// This is the storage every layer, loader and optimizer shares. It is a value type
// backed by a Swift array (copy-on-write), so passing weights around is cheap and
// mutation is explicit. Quantized matrices will live beside it (see `Matrix` in the
// model), not inside it: a Tensor is always plain fp32.

/// A dense, row-major float32 array with a shape.
public struct Tensor: Sendable, Equatable {
    /// Dimensions, outermost first; `[]` is a scalar.
    public var shape: [Int]
    /// Elements in row-major order; `data.count == shape.reduce(1, *)`.
    public var data: [Float]

    /// Creates a tensor from a shape and matching data.
    public init(shape: [Int], data: [Float]) {
        precondition(shape.reduce(1, *) == data.count,
                     "Tensor: shape \(shape) needs \(shape.reduce(1, *)) elements, got \(data.count)")
        self.shape = shape
        self.data = data
    }

    /// Creates a zero-filled tensor.
    public init(zeros shape: [Int]) {
        self.shape = shape
        self.data = [Float](repeating: 0, count: shape.reduce(1, *))
    }

    /// Number of elements.
    public var count: Int { data.count }

    /// Human-readable shape, e.g. `[384, 1536]`.
    public var shapeDescription: String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }

    /// True when every element is finite (no NaN, no ±Inf).
    public var allFinite: Bool {
        data.withUnsafeBufferPointer { p in
            for v in p where !v.isFinite { return false }
            return true
        }
    }

    /// Index of the first non-finite element, if any.
    public var firstNonFiniteIndex: Int? { data.firstIndex { !$0.isFinite } }

    /// Returns the transpose of a 2-D tensor.
    public func transposed2D() -> Tensor {
        precondition(shape.count == 2, "transposed2D needs a 2-D tensor, got \(shapeDescription)")
        let (r, c) = (shape[0], shape[1])
        var out = [Float](repeating: 0, count: r * c)
        data.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<r { for j in 0..<c { dst[j * r + i] = src[i * c + j] } }
            }
        }
        return Tensor(shape: [c, r], data: out)
    }
}

/// Formats a shape as `[a, b]`.
public func describeShape(_ shape: [Int]) -> String {
    "[" + shape.map(String.init).joined(separator: ", ") + "]"
}
