// TextNormalizer: the cleanup every example's text goes through, and the dedup key.
//
// In order: (1) mojibake repair — UTF-8 that was read as Windows-1252 or Latin-1 ("Ã©" for
// "é", "â€™" for "’", "Â " for a no-break space) is turned back when the round trip is
// clean: each run of characters Windows-1252 can encode that holds a UTF-8 lead+continuation
// pattern is encoded back to bytes, and replaced only if those bytes are valid UTF-8 made
// of plausible characters (no controls, private use, unassigned or combining characters;
// common blocks only). A run that fails is left alone and the text counted as
// unrepairable. This follows ftfy's core idea (encode, decode, check) without its
// heuristics for double encoding or its tables of lossy vendor garbage. (2) Control
// characters (category Cc, plus U+FEFF) are removed; tab, newline and the other Unicode
// whitespace become spaces. (3) Runs of whitespace collapse to one space, ends trimmed.
// (4) Unicode NFC. Format characters such as ZWJ stay: emoji sequences need them.
import Foundation

/// What mojibake repair did to one text.
public enum MojibakeOutcome: Sendable, Equatable {
    /// Nothing that looks like mojibake.
    case clean
    /// Every suspicious sequence was repaired.
    case repaired
    /// At least one suspicious sequence did not round-trip and was left as is.
    case unrepairable
}

/// The result of cleaning one text.
public struct CleanedText: Sendable, Equatable {
    public var text: String
    public var mojibake: MojibakeOutcome
    /// Whether control characters were removed.
    public var removedControlCharacters: Bool
}

/// Cleans texts and computes the key duplicates are found by.
public enum TextNormalizer {
    /// Repairs mojibake, removes control characters, collapses whitespace and applies NFC.
    public static func clean(_ text: String) -> CleanedText {
        let (repaired, outcome) = repairMojibake(text)
        var scalars = String.UnicodeScalarView()
        var removed = false
        var pendingSpace = false
        for u in repaired.unicodeScalars {
            if u.properties.isWhitespace {
                pendingSpace = true
            } else if u.properties.generalCategory == .control || u.value == 0xFEFF {
                removed = true
            } else {
                if pendingSpace && !scalars.isEmpty { scalars.append(" ") }
                pendingSpace = false
                scalars.append(u)
            }
        }
        let nfc = String(scalars).precomposedStringWithCanonicalMapping
        return CleanedText(text: nfc, mojibake: outcome, removedControlCharacters: removed)
    }

    /// The key two texts are duplicates under: case-folded, whitespace collapsed, NFC.
    public static func duplicateKey(_ text: String) -> String {
        let folded = text.folding(options: [.caseInsensitive], locale: nil)
        return folded.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ").precomposedStringWithCanonicalMapping
    }

    /// Repairs UTF-8 that was read as Windows-1252/Latin-1, where the round trip is clean.
    ///
    /// The text is cut into runs of characters Windows-1252 (or Latin-1, for C1 controls)
    /// can encode; a run holding a suspicious pair (lead byte 0xC2–0xF4, then continuation
    /// byte 0x80–0xBF) is encoded back to bytes and decoded as UTF-8. The run is replaced
    /// only when that decoding is valid and every non-ASCII character it yields is
    /// plausible (`isPlausible`); otherwise it is kept and the text counts as unrepairable.
    /// Whole runs, not single pairs, because pair-by-pair repair turns lossy garbage such as
    /// "_ÙÓ´" into random Cyrillic or Syriac letters.
    public static func repairMojibake(_ text: String) -> (String, MojibakeOutcome) {
        // Fast path: mojibake needs a lead character U+00C2 or above.
        guard text.unicodeScalars.contains(where: { $0.value >= 0xC2 }) else { return (text, .clean) }
        var out = String.UnicodeScalarView()
        var repaired = false, unrepairable = false
        var run: [Unicode.Scalar] = []
        var runBytes: [UInt8] = []

        func flush() {
            defer { run.removeAll(keepingCapacity: true); runBytes.removeAll(keepingCapacity: true) }
            guard hasSuspiciousPair(runBytes) else { out.append(contentsOf: run); return }
            if let decoded = String(validating: runBytes, as: UTF8.self),
               decoded.unicodeScalars.allSatisfy({ $0.isASCII || isPlausible($0) }) {
                out.append(contentsOf: decoded.unicodeScalars)
                repaired = true
            } else {
                out.append(contentsOf: run)
                unrepairable = true
            }
        }
        for u in text.unicodeScalars {
            if let b = u.isASCII ? UInt8(u.value) : TextDecoder.windows1252Byte[u.value] {
                run.append(u)
                runBytes.append(b)
            } else {
                flush()
                out.append(u)
            }
        }
        flush()
        if !repaired && !unrepairable { return (text, .clean) }
        return (String(out), unrepairable ? .unrepairable : .repaired)
    }

    /// Whether `bytes` holds a UTF-8 lead byte (0xC2–0xF4) directly followed by a
    /// continuation byte (0x80–0xBF): the signature of UTF-8 read in a single-byte encoding.
    static func hasSuspiciousPair(_ bytes: [UInt8]) -> Bool {
        guard bytes.count > 1 else { return false }
        for i in 0..<(bytes.count - 1) where bytes[i] >= 0xC2 && bytes[i] <= 0xF4 && bytes[i + 1] >= 0x80 && bytes[i + 1] <= 0xBF {
            return true
        }
        return false
    }

    /// Whether a repaired character is something a person plausibly typed: a letter,
    /// digit, punctuation or symbol from the Latin, Greek or Cyrillic blocks, general
    /// punctuation and symbols (U+2000–U+2BFF), CJK, Hangul, or emoji, or a variation
    /// selector. Controls, private use, unassigned code points and combining marks are not:
    /// lossy garbage such as "Ì©" round-trips to U+0329 (a combining mark) or "Ùª" to an
    /// Arabic percent sign, and neither is a repair.
    static func isPlausible(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        if (0xFE00...0xFE0F).contains(v) { return true }   // variation selectors (emoji presentation)
        switch scalar.properties.generalCategory {
        case .control, .privateUse, .unassigned, .surrogate, .nonspacingMark, .spacingMark, .enclosingMark:
            return false
        default:
            return plausibleRanges.contains { $0.contains(v) }
        }
    }

    /// Blocks a repaired character may come from (see `isPlausible`).
    static let plausibleRanges: [ClosedRange<UInt32>] = [
        0x00A0...0x024F,   // Latin-1 Supplement, Latin Extended-A/B
        0x0370...0x04FF,   // Greek, Cyrillic
        0x1E00...0x1EFF,   // Latin Extended Additional
        0x2000...0x2BFF,   // punctuation, currency, letterlike, arrows, math, symbols, dingbats
        0x3000...0x30FF,   // CJK punctuation, kana
        0x4E00...0x9FFF,   // CJK ideographs
        0xAC00...0xD7AF,   // Hangul syllables
        0x1F000...0x1FAFF, // emoji and pictographs
    ]
}
