// ParameterBlock: every trainable tensor of a BERT classifier in one contiguous float block.
//
// Follows llm.c's layout: one allocation holds all parameters in a fixed, named order —
// the canonical order of `bertParameterShapes(config, heads:)` — and each tensor is a view
// at an offset. Gradients, AdamW's two moments and (later) checkpoints, pruning masks and
// quantization use the same `ParameterLayout`, so everything that walks "all parameters"
// walks one list. Value type (copy-on-write array); the training code takes one pointer
// to the block per pass and indexes it through precomputed offsets.
// A block may extend a model's layout with trailing tensors (`starts(with:)`): the model
// reads and writes its own prefix only, so another module can append its parameters.
// An inference load may leave out the weights that run from quantized storage
// (`storedElsewhere`): their entries read as zeros and their pages stay untouched.
// Left out on purpose: non-float buffers (position ids) — they are not parameters.
import DistilleryTensor
#if canImport(Glibc)
import Glibc
#endif

/// Names, shapes and offsets of the tensors of a parameter block, in canonical order.
public struct ParameterLayout: Sendable, Equatable {
    /// One tensor of the block.
    public struct Entry: Sendable, Equatable {
        public let name: String
        public let shape: [Int]
        /// First element of the tensor within the block.
        public let offset: Int
        /// Number of elements.
        public var count: Int { shape.reduce(1, *) }
        /// Element range within the block.
        public var range: Range<Int> { offset..<(offset + count) }
    }

    /// Tensors in canonical order.
    public let entries: [Entry]
    /// Total number of floats.
    public let totalCount: Int
    private let indexByName: [String: Int]

    /// A layout from an ordered (name, shape) list, tensors packed back to back.
    public init(_ shapes: [(name: String, shape: [Int])]) {
        var entries: [Entry] = []
        var offset = 0
        for (name, shape) in shapes {
            entries.append(Entry(name: name, shape: shape, offset: offset))
            offset += shape.reduce(1, *)
        }
        self.entries = entries
        totalCount = offset
        indexByName = Dictionary(uniqueKeysWithValues: entries.enumerated().map { ($1.name, $0) })
    }

    /// The layout of a BERT encoder with the given heads (canonical order).
    public init(config: BertConfig, heads: BertHeads) {
        self.init(bertParameterShapes(config, heads: heads))
    }

    /// The entry named `name`, or nil.
    public func entry(_ name: String) -> Entry? { indexByName[name].map { entries[$0] } }

    /// Offset of tensor `name`; the name must be in the layout.
    public func offset(_ name: String) -> Int {
        guard let i = indexByName[name] else {
            fatalError("ParameterLayout: no tensor named '\(name)' (layout has \(entries.count) tensors)")
        }
        return entries[i].offset
    }

    /// True when this layout's first tensors are exactly `prefix`'s (same names, shapes and
    /// offsets), e.g. a model's layout with distillation projections appended after it.
    public func starts(with prefix: ParameterLayout) -> Bool { entries.starts(with: prefix.entries) }

    public static func == (a: ParameterLayout, b: ParameterLayout) -> Bool { a.entries == b.entries }
}

/// All parameters (or all gradients, or one optimizer moment) in one contiguous block.
public struct ParameterBlock: Sendable, Equatable {
    /// Where each named tensor lives.
    public let layout: ParameterLayout
    /// The floats, `layout.totalCount` of them.
    public var storage: [Float]

    /// A zero-filled block (fresh gradients, fresh optimizer moments).
    public init(zeros layout: ParameterLayout) {
        self.layout = layout
        storage = [Float](repeating: 0, count: layout.totalCount)
    }

    /// A block from named tensors: every tensor of `layout` must be present with its shape;
    /// names not in the layout are an error (strict, as the model loader).
    public init(layout: ParameterLayout, tensors: [String: Tensor]) throws(ModelError) {
        try self.init(layout: layout, consuming: tensors)
    }

    /// `init(layout:tensors:)` that lets go of each tensor once it is copied (when the caller
    /// holds no other reference, the loaded arrays are freed one by one, so the tensors and
    /// the block are not resident in full at once). Entries named in `storedElsewhere`
    /// (weights that run from another storage: an inference load's quantized weights) may be
    /// missing: they read as zeros, and the whole pages they span are never touched.
    public init(layout: ParameterLayout, consuming tensors: consuming [String: Tensor],
                storedElsewhere: Set<String> = []) throws(ModelError) {
        try Self.check(layout, shapes: tensors.mapValues(\.shape), storedElsewhere: storedElsewhere)
        self.init(checked: layout) { e, destination in
            guard let t = tensors.removeValue(forKey: e.name) else { return false }
            t.data.withUnsafeBufferPointer { destination.initialize(from: $0.baseAddress!, count: e.count) }
            return true
        }
    }

    /// A block filled from `source`, each tensor read straight into its entry (a file's
    /// datasets need not be loaded beside the block); `storedElsewhere` as in
    /// `init(layout:consuming:storedElsewhere:)`. Errors are the source's or a `ModelError`.
    public init(layout: ParameterLayout, source: TensorSource, storedElsewhere: Set<String> = []) throws {
        try Self.check(layout, shapes: source.shapes, storedElsewhere: storedElsewhere)
        try self.init(checked: layout) { e, destination in
            guard source.shapes[e.name] != nil else { return false }
            try source.read(e.name, into: UnsafeMutableBufferPointer(start: destination, count: e.count))
            return true
        }
    }

    /// Every entry of `layout` is in `shapes` with its shape, or named in `storedElsewhere`;
    /// `shapes` names nothing else.
    private static func check(_ layout: ParameterLayout, shapes: [String: [Int]],
                              storedElsewhere: Set<String>) throws(ModelError) {
        for e in layout.entries {
            guard let shape = shapes[e.name] else {
                if storedElsewhere.contains(e.name) { continue }
                throw ModelError.missingTensor(name: e.name, expected: e.shape,
                                               hint: "the weights do not hold every parameter the training model needs")
            }
            guard shape == e.shape else {
                throw ModelError.wrongShape(name: e.name, expected: e.shape, found: shape,
                                            hint: "config.json may not belong to these weights")
            }
        }
        let extra = shapes.keys.filter { layout.entry($0) == nil }.sorted()
        if !extra.isEmpty {
            throw ModelError.unexpectedTensors(extra, hint: "they are not parameters of this model")
        }
    }

    /// A block whose entries `fill` writes in place (returning false for an entry it does not
    /// have, which then reads as zeros). Not zero-filled first: every element is written (or
    /// zeroed) exactly once, so pages of a large allocation that stay zero are never touched.
    private init(checked layout: ParameterLayout,
                 fill: (ParameterLayout.Entry, UnsafeMutablePointer<Float>) throws -> Bool) rethrows {
        self.layout = layout
        storage = try [Float](unsafeUninitializedCapacity: layout.totalCount) { buffer, initialized in
            initialized = 0   // on a throw nothing needs deinitializing (Float is trivial)
            for e in layout.entries where e.count > 0 {
                let destination = buffer.baseAddress! + e.offset
                if try !fill(e, destination) { zeroWithoutTouching(destination, count: e.count) }
            }
            initialized = layout.totalCount
        }
    }

    /// The tensor named `name` (a copy).
    public func tensor(_ name: String) -> Tensor {
        guard let e = layout.entry(name) else {
            fatalError("ParameterBlock: no tensor named '\(name)'")
        }
        return Tensor(shape: e.shape, data: Array(storage[e.range]))
    }

    /// Every tensor as (name, tensor), in canonical order (for IO and the inference encoder).
    public var tensors: [(name: String, tensor: Tensor)] {
        layout.entries.map { ($0.name, Tensor(shape: $0.shape, data: Array(storage[$0.range]))) }
    }

    /// Every tensor by name (what `BertEncoder(config:tensors:)` takes).
    public var tensorDictionary: [String: Tensor] {
        Dictionary(uniqueKeysWithValues: tensors.map { ($0.name, $0.tensor) })
    }

    /// Sets every element to zero, keeping the allocation.
    public mutating func zero() {
        storage.withUnsafeMutableBufferPointer { p in p.update(repeating: 0) }
    }
}

/// Gradients share the parameters' layout: element i of the gradient block is dLoss/dθ_i.
public typealias Gradients = ParameterBlock

/// Sets `count` floats at `p` to zero without writing the whole pages inside the range: on
/// Linux they are handed back to the kernel (`MADV_DONTNEED`; heap memory is private and
/// anonymous, and such pages read as zeros afterwards), so a range that is never read stays
/// out of resident memory. The partial pages at either end are written. Elsewhere, or if
/// the kernel refuses, every element is written.
func zeroWithoutTouching(_ p: UnsafeMutablePointer<Float>, count: Int) {
    #if os(Linux)
    let page = UInt(sysconf(Int32(_SC_PAGESIZE)))
    let start = UInt(bitPattern: p), end = start + UInt(count * MemoryLayout<Float>.stride)
    let first = (start + page - 1) / page * page, last = end / page * page
    // No transparent huge pages over the range: where the kernel backs every mapping with
    // them ('always'), a write to a neighbouring entry would fault a 2 MB page back in over it.
    if last > first { _ = madvise(UnsafeMutableRawPointer(bitPattern: first), Int(last - first), MADV_NOHUGEPAGE) }
    if last > first, madvise(UnsafeMutableRawPointer(bitPattern: first), Int(last - first), MADV_DONTNEED) == 0 {
        memset(UnsafeMutableRawPointer(p), 0, Int(first - start))
        memset(UnsafeMutableRawPointer(bitPattern: last)!, 0, Int(end - last))
        return
    }
    #endif
    p.initialize(repeating: 0, count: count)
}
