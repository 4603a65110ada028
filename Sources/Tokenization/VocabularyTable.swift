// An exact-bytes token → id table for WordPiece lookups.
//
// Why not `[String: Int32]`: Swift `String` equality (and hashing) is *canonical
// equivalence*, so "é" (U+00E9) and "e" + U+0301, or U+F900 and U+8C48, are the same
// dictionary key. Python compares code points, so HF's `token in vocab` distinguishes them.
// This table hashes and compares UTF-8 bytes, which is code-point equality, and it lets the
// WordPiece loop look up sub-ranges of a word (optionally behind the "##" continuation
// prefix) without building a `String` per candidate.
//
// Layout: all token bytes concatenated in `arena`, token i at `offsets[i]..<offsets[i+1]`;
// open addressing with linear probing over `slots` (token id, or -1). For duplicate tokens
// the *last* index wins, as in HF's `load_vocab` (an `OrderedDict` overwritten in order).
// Ids are Int32 (the tokenizer refuses Int32.max tokens or more before building the table);
// byte offsets are Int, so a vocabulary file of more than 2 GiB cannot overflow them.

/// Token bytes → id, with the "##" prefix available without concatenation.
struct VocabularyTable: Sendable {
    private let arena: [UInt8]
    private let offsets: [Int]
    private let slots: [Int32]
    private let mask: Int
    /// Longest token in scalars, for word-initial tokens and for "##" pieces (prefix excluded).
    let longestInitial: Int
    let longestContinuation: Int

    private static let hashOffset: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a 64
    private static let hashPrime: UInt64 = 0x0000_0100_0000_01b3
    /// FNV-1a state after hashing "##", so continuation lookups hash as if the prefix were there.
    private static let continuationSeed: UInt64 = {
        var h = hashOffset
        for _ in 0..<2 { h = (h ^ 0x23) &* hashPrime }
        return h
    }()

    init(tokens: [String]) {
        var arena: [UInt8] = []
        var offsets: [Int] = [0]
        offsets.reserveCapacity(tokens.count + 1)
        var longestInitial = 0, longestContinuation = 0
        for token in tokens {
            arena.append(contentsOf: token.utf8)
            offsets.append(arena.count)
            let scalars = token.unicodeScalars.count
            if token.utf8.starts(with: [0x23, 0x23]) {
                longestContinuation = max(longestContinuation, scalars - 2)
            }
            longestInitial = max(longestInitial, scalars)
        }
        var capacity = 16
        while capacity < tokens.count * 2 { capacity <<= 1 }
        var slots = [Int32](repeating: -1, count: capacity)
        let mask = capacity - 1
        arena.withUnsafeBufferPointer { bytes in
            for id in 0..<tokens.count {
                let key = UnsafeBufferPointer(rebasing: bytes[offsets[id]..<offsets[id + 1]])
                var slot = Int(truncatingIfNeeded: Self.hash(key, seed: Self.hashOffset)) & mask
                while slots[slot] >= 0 {
                    let other = Int(slots[slot])
                    let otherKey = UnsafeBufferPointer(rebasing: bytes[offsets[other]..<offsets[other + 1]])
                    if otherKey.elementsEqual(key) { break }  // duplicate: the later index replaces it
                    slot = (slot + 1) & mask
                }
                slots[slot] = Int32(id)
            }
        }
        self.arena = arena
        self.offsets = offsets
        self.slots = slots
        self.mask = mask
        self.longestInitial = longestInitial
        self.longestContinuation = longestContinuation
    }

    @inline(__always)
    private static func hash(_ bytes: UnsafeBufferPointer<UInt8>, seed: UInt64) -> UInt64 {
        var h = seed
        for b in bytes { h = (h ^ UInt64(b)) &* hashPrime }
        return h ^ (h >> 29)
    }

    /// The id of the token spelled by `bytes` (UTF-8), or of "##" + `bytes` when `continuation`.
    @inline(__always)
    func id(of bytes: UnsafeBufferPointer<UInt8>, continuation: Bool) -> Int32? {
        let prefix = continuation ? 2 : 0
        var slot = Int(truncatingIfNeeded: Self.hash(bytes, seed: continuation ? Self.continuationSeed : Self.hashOffset)) & mask
        return arena.withUnsafeBufferPointer { arena -> Int32? in
            while true {
                let id = slots[slot]
                if id < 0 { return nil }
                let start = offsets[Int(id)], end = offsets[Int(id) + 1]
                if end - start == bytes.count + prefix
                    && (!continuation || (arena[start] == 0x23 && arena[start + 1] == 0x23))
                    && (bytes.isEmpty || memcmpEqual(arena.baseAddress! + start + prefix, bytes.baseAddress!, bytes.count)) {
                    return id
                }
                slot = (slot + 1) & mask
            }
        }
    }

    /// The id of `token`, compared code point by code point.
    func id(of token: String) -> Int32? {
        var token = token
        return token.withUTF8 { id(of: $0, continuation: false) }
    }
}

@inline(__always)
private func memcmpEqual(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ count: Int) -> Bool {
    for i in 0..<count where a[i] != b[i] { return false }
    return true
}
