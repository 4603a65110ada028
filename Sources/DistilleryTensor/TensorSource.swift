// TensorSource: named float tensors that a consumer copies into its own storage one at a
// time, so they need not all be in memory beside it.
//
// A parameter block is one allocation; filling it from a dictionary of loaded tensors holds
// every weight twice for a moment (the largest, MiniLM's 47 MB word table, twice at once).
// A source instead hands over each tensor when asked: a dictionary drained as it is read,
// or a file's datasets read straight into place (WeightIO's `TeacherFile.floatSource`).
// The consumer checks `shapes` first, then asks for each tensor once.

/// Named float tensors, handed over one at a time into storage the consumer owns.
public struct TensorSource {
    /// Shape of every tensor in the source, by name.
    public let shapes: [String: [Int]]
    private let reader: (String, UnsafeMutableBufferPointer<Float>) throws -> Void

    /// A source whose `read(name, into)` fills `into` (exactly the tensor's element count)
    /// with tensor `name`, one of `shapes`' names.
    public init(shapes: [String: [Int]], read: @escaping (String, UnsafeMutableBufferPointer<Float>) throws -> Void) {
        self.shapes = shapes
        reader = read
    }

    /// Copies tensor `name` into `destination`, which holds exactly its elements. A source
    /// may hand each tensor over only once (a drained dictionary lets go of it).
    public func read(_ name: String, into destination: UnsafeMutableBufferPointer<Float>) throws {
        guard let shape = shapes[name] else {
            preconditionFailure("TensorSource: no tensor named '\(name)'")
        }
        precondition(shape.reduce(1, *) == destination.count,
                     "TensorSource: '\(name)' has \(shape.reduce(1, *)) elements, the destination \(destination.count)")
        try reader(name, destination)
    }

    /// The tensors of this source whose names pass `isIncluded`.
    public func filter(_ isIncluded: (String) -> Bool) -> TensorSource {
        TensorSource(shapes: shapes.filter { isIncluded($0.key) }, read: reader)
    }

    /// `tensors` as a source that lets go of each tensor once it is copied: when the caller
    /// keeps no other reference, each array is freed as soon as it is read.
    public static func draining(_ tensors: consuming [String: Tensor]) -> TensorSource {
        let box = DrainedTensors(tensors)
        return TensorSource(shapes: box.tensors.mapValues(\.shape)) { name, destination in
            guard let t = box.tensors.removeValue(forKey: name) else {
                preconditionFailure("TensorSource: '\(name)' was already read")
            }
            _ = destination.initialize(fromContentsOf: t.data)
        }
    }
}

/// The dictionary a draining source empties.
private final class DrainedTensors {
    var tensors: [String: Tensor]
    init(_ tensors: consuming [String: Tensor]) { self.tensors = tensors }
}
