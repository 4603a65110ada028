// ActivationArena: float buffers for activations and backward temporaries, reused from
// one training step to the next.
//
// A training step of MiniLM at batch 32 × 128 needs about 1 GB of activations; allocating
// it fresh every step costs page faults and zero-fills that a profile shows at ~6% of the
// step. Instead each forward leases an arena from the model's pool: the arena hands out
// buffers in request order (slot n of this step reuses slot n of the last one when it is
// big enough), the activations keep the lease, and when they are released the arena goes
// back to the pool for the next forward. Two activations alive at once hold two arenas,
// so nothing is overwritten while still in use; and a buffer a caller kept beyond its
// activations (a hidden state, say) is noticed at reuse time — its slot is not uniquely
// referenced — and gets fresh storage instead. Reused buffers are not zero-filled unless
// asked; the passes write every element they later read. Left out on purpose: sharing
// memory between buffers with disjoint lifetimes (a planner), returning memory to the OS
// between steps.
import CKernels
import DistilleryTensor
import Foundation

/// A heap float array whose address is stable for the life of the object (activations).
public final class FloatBuffer: @unchecked Sendable {
    /// First element.
    public let pointer: UnsafeMutablePointer<Float>
    /// Number of elements.
    public let count: Int
    /// The arena storage this buffer is a view of, or nil when the buffer owns `pointer`.
    private let storage: FloatStorage?

    /// A zero-filled buffer.
    public init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
        storage = nil
    }

    /// A buffer holding a copy of `values`.
    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    /// A view of the first `count` floats of arena storage (kept alive by the view).
    init(view storage: FloatStorage, count: Int) {
        precondition(count <= storage.capacity, "FloatBuffer: view of \(count) floats over \(storage.capacity)")
        self.storage = storage
        self.count = count
        pointer = storage.pointer
    }

    /// A buffer holding a copy of another's elements.
    public convenience init(copying other: FloatBuffer) {
        self.init(count: other.count)
        pointer.update(from: other.pointer, count: other.count)
    }

    /// The elements as an array (a copy).
    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

    deinit { if storage == nil { pointer.deallocate() } }
}

/// One arena slot's memory, zero-filled when allocated.
final class FloatStorage {
    let pointer: UnsafeMutablePointer<Float>
    let capacity: Int

    init(capacity: Int) {
        self.capacity = max(capacity, 1)
        pointer = .allocate(capacity: self.capacity)
        pointer.initialize(repeating: 0, count: self.capacity)
    }

    deinit { pointer.deallocate() }
}

/// Buffers handed out in request order and reused, slot by slot, by the next pass.
final class BufferArena {
    private var slots: [FloatStorage] = []
    private var next = 0

    /// The slot the next `take` uses.
    var position: Int { next }

    /// Makes the next `take` use slot `position` again (earlier slots keep their contents).
    func rewind(to position: Int = 0) { next = min(position, slots.count) }

    /// A buffer of `count` floats; its contents are undefined unless `zeroed`.
    func take(_ count: Int, zeroed: Bool = false) -> FloatBuffer {
        if next < slots.count {
            if slots[next].capacity < count || !isKnownUniquelyReferenced(&slots[next]) {
                // Too small, or a caller still holds a view from an earlier pass.
                slots[next] = FloatStorage(capacity: count)
            } else if zeroed {
                slots[next].pointer.update(repeating: 0, count: count)
            }
        } else {
            slots.append(FloatStorage(capacity: count))
        }
        next += 1
        return FloatBuffer(view: slots[next - 1], count: count)
    }
}

/// The arenas of one model: at most one kept idle between passes.
final class ArenaPool: @unchecked Sendable {
    private let lock = NSLock()
    private var idle: BufferArena?

    /// An arena for one forward (+ backward), returned here when the lease is released.
    func lease() -> ArenaLease {
        let arena = lock.withLock { () -> BufferArena in
            defer { idle = nil }
            return idle ?? BufferArena()
        }
        arena.rewind()
        return ArenaLease(arena: arena, pool: self)
    }

    fileprivate func recycle(_ arena: BufferArena) {
        lock.withLock { if idle == nil { idle = arena } }
    }
}

/// Exclusive use of an arena for as long as this object lives (held by `BertActivations`).
final class ArenaLease: @unchecked Sendable {
    let arena: BufferArena
    private let pool: ArenaPool

    fileprivate init(arena: BufferArena, pool: ArenaPool) {
        self.arena = arena
        self.pool = pool
    }

    deinit { pool.recycle(arena) }
}

extension DropoutRNG {
    /// Writes the mask `mask(count:probability:stream:)` returns into `out` (same values,
    /// no allocation; the hash runs in the vectorised C kernel `dk_dropout_mask`), row-parallel.
    func fillMask(_ out: UnsafeMutablePointer<Float>, count: Int, probability p: Float, stream: UInt64) {
        precondition(p >= 0 && p < 1, "dropout probability \(p) outside [0, 1)")
        let keep = 1 / (1 - p)
        let key = Self.mix(seed &+ Self.mix(stream &+ 0x9E37_79B9_7F4A_7C15))
        Compute.parallelRanges(count, granularity: 64) { r in
            dk_dropout_mask(key, UInt64(r.lowerBound), r.count, p, keep, out + r.lowerBound)
        }
    }
}
