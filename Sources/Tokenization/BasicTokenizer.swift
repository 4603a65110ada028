// BERT's normalizer and pre-tokenizer, with where each scalar came from (for offsets).
//
// Follows HF `tokenizers`' BertNormalizer then BertPreTokenizer (what transformers 5's
// `BertTokenizer` runs), step for step:
//   1. clean text: drop U+0000, U+FFFD and control characters; whitespace → ' '.
//   2. put spaces around CJK ideographs (`tokenize_chinese_chars`).
//   3. strip accents (when asked; by default exactly when lowercasing): NFD, then drop
//      nonspacing marks. Note the order — the Rust code strips *before* lowercasing.
//   4. lowercase, one scalar at a time (no final-sigma rule).
//   5. split on whitespace (removed), then isolate every punctuation scalar.
// There is no NFC step and no `never_split`: a special token re-formed by cleanup
// ("[SE\u{1}P]") is split like any text. The code-point classes are in ``UnicodeRules``.
// Every scalar handed out carries the index (in Unicode scalars of the input) of the input
// scalar it came from, so a token's offsets are those of its first and last scalar — the
// alignment rule of `NormalizedString`, where inserted scalars share their source's place.
// Left out on purpose: `clean_text=False` and `do_split_on_punc=False` (no BERT checkpoint
// we ship uses them). ASCII segments skip the Unicode stages, with identical results.
import Foundation

/// The pre-WordPiece stage: turns text into words, handed out as scalar slices with origins.
struct BasicTokenizer: Sendable {
    let lowercase: Bool
    /// Resolved `strip_accents`: nil follows `lowercase`, as in the original BERT.
    let stripAccents: Bool
    let tokenizeChineseChars: Bool

    /// NFD tables of the Rust `unicode-normalization-alignments` crate predate Unicode 13:
    /// a scalar assigned later (U+11938 DIVES AKURU VOWEL SIGN O, 13.0) is not decomposed.
    static let decompositionVersion: (major: Int, minor: Int) = (12, 1)

    init(lowercase: Bool, stripAccents: Bool?, tokenizeChineseChars: Bool) {
        self.lowercase = lowercase
        self.stripAccents = stripAccents ?? lowercase
        self.tokenizeChineseChars = tokenizeChineseChars
    }

    /// Calls `body` with every word of `text` and, per scalar, the index of the input scalar
    /// it came from (counted from `firstOrigin`, the index of `text`'s first scalar).
    func forEachWord(in text: Substring, firstOrigin: Int,
                     _ body: (ArraySlice<Unicode.Scalar>, ArraySlice<Int>) -> Void) {
        var scalars: [Unicode.Scalar] = []
        var origins: [Int] = []
        scalars.reserveCapacity(text.utf8.count + 8)
        origins.reserveCapacity(text.utf8.count + 8)
        var allASCII = true
        var origin = firstOrigin - 1
        for scalar in text.unicodeScalars {
            origin += 1
            let v = scalar.value
            if v < 0x80 {
                if v == 0x20 || v == 0x09 || v == 0x0A || v == 0x0D {
                    scalars.append(" "); origins.append(origin)
                } else if v >= 0x20 && v != 0x7F {  // drops NUL, the other C0 controls (VT, FF too) and DEL
                    scalars.append(lowercase && v >= 65 && v <= 90 ? Unicode.Scalar(UInt8(v + 32)) : scalar)
                    origins.append(origin)
                }
                continue
            }
            allASCII = false
            if v == 0xFFFD || UnicodeRules.isControl(scalar) { continue }
            if UnicodeRules.isWhitespace(scalar) {
                scalars.append(" "); origins.append(origin)
            } else if tokenizeChineseChars && UnicodeRules.isChineseCharacter(scalar) {
                scalars.append(contentsOf: [" ", scalar, " "]); origins.append(contentsOf: [origin, origin, origin])
            } else {
                scalars.append(scalar); origins.append(origin)
            }
        }
        if !allASCII {
            if stripAccents { Self.stripMarks(&scalars, &origins) }
            if lowercase { Self.lowercase(&scalars, &origins) }
        }

        let count = scalars.count
        var i = 0
        while i < count {
            while i < count && UnicodeRules.isWhitespace(scalars[i]) { i += 1 }
            var runStart = i
            while i < count && !UnicodeRules.isWhitespace(scalars[i]) {
                if UnicodeRules.isPunctuation(scalars[i]) {
                    if runStart < i { body(scalars[runStart..<i], origins[runStart..<i]) }
                    body(scalars[i...i], origins[i...i])
                    runStart = i + 1
                }
                i += 1
            }
            if runStart < i { body(scalars[runStart..<i], origins[runStart..<i]) }
        }
    }

    /// NFD, then drop every nonspacing mark; each decomposed scalar keeps its source's origin.
    static func stripMarks(_ scalars: inout [Unicode.Scalar], _ origins: inout [Int]) {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        let whole = String(view).decomposedStringWithCanonicalMapping.unicodeScalars
        var outScalars: [Unicode.Scalar] = []
        var outOrigins: [Int] = []
        outScalars.reserveCapacity(scalars.count)
        outOrigins.reserveCapacity(scalars.count)
        if whole.elementsEqual(scalars) {  // nothing decomposes (the common case): only drop marks
            for (s, o) in zip(scalars, origins) where !UnicodeRules.isNonspacingMark(s) {
                outScalars.append(s); outOrigins.append(o)
            }
        } else {
            var decomposed: [(scalar: Unicode.Scalar, origin: Int)] = []
            decomposed.reserveCapacity(scalars.count + 8)
            for (s, o) in zip(scalars, origins) {
                if s.value < 0xC0 || !isDecomposedInReference(s) {
                    decomposed.append((s, o))
                } else {
                    for d in String(s).decomposedStringWithCanonicalMapping.unicodeScalars { decomposed.append((d, o)) }
                }
            }
            canonicalOrder(&decomposed)
            for (s, o) in decomposed where !UnicodeRules.isNonspacingMark(s) {
                outScalars.append(s); outOrigins.append(o)
            }
        }
        scalars = outScalars
        origins = outOrigins
    }

    /// Whether the reference NFD tables know `scalar` (assigned by ``decompositionVersion``).
    private static func isDecomposedInReference(_ scalar: Unicode.Scalar) -> Bool {
        guard let age = scalar.properties.age else { return false }
        return age.major < decompositionVersion.major
            || (age.major == decompositionVersion.major && age.minor <= decompositionVersion.minor)
    }

    /// Canonical ordering: each run of scalars with a nonzero combining class, stably sorted by it.
    private static func canonicalOrder(_ items: inout [(scalar: Unicode.Scalar, origin: Int)]) {
        var i = 0
        while i < items.count {
            guard items[i].scalar.properties.canonicalCombiningClass.rawValue != 0 else { i += 1; continue }
            var j = i
            while j < items.count && items[j].scalar.properties.canonicalCombiningClass.rawValue != 0 { j += 1 }
            if j - i > 1 {
                let run = items[i..<j].enumerated().sorted {
                    let a = $0.element.scalar.properties.canonicalCombiningClass.rawValue
                    let b = $1.element.scalar.properties.canonicalCombiningClass.rawValue
                    return a != b ? a < b : $0.offset < $1.offset
                }.map(\.element)
                items.replaceSubrange(i..<j, with: run)
            }
            i = j
        }
    }

    /// Rust `char::to_lowercase` of every scalar; the extra scalars of a one-to-many mapping
    /// ('İ' → "i\u{307}") share the source's origin.
    static func lowercase(_ scalars: inout [Unicode.Scalar], _ origins: inout [Int]) {
        // ASCII was lowercased while cleaning, but accent stripping can expose capitals ('Ä' → 'A').
        guard scalars.contains(where: { $0.value >= 0x80 ? $0.properties.changesWhenLowercased : ($0.value >= 65 && $0.value <= 90) })
        else { return }
        var outScalars: [Unicode.Scalar] = []
        var outOrigins: [Int] = []
        outScalars.reserveCapacity(scalars.count + 4)
        outOrigins.reserveCapacity(scalars.count + 4)
        for (s, o) in zip(scalars, origins) {
            let n = UnicodeRules.appendLowercase(of: s, to: &outScalars)
            for _ in 0..<n { outOrigins.append(o) }
        }
        scalars = outScalars
        origins = outOrigins
    }
}
