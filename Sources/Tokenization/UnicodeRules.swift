// Code-point predicates of HuggingFace's BERT tokenizer, and Python's `str.lower()`.
//
// Follows `transformers/tokenization_python.py` (`_is_whitespace`, `_is_control`,
// `_is_punctuation`) and `BasicTokenizer._is_chinese_char`, all of which work on Unicode
// code points, so everything here takes a `Unicode.Scalar`, never a `Character`.
//
// Unicode version: the golden reference runs on Python 3.11, whose `unicodedata` is
// Unicode 14.0. Characters assigned later (e.g. U+1FAE8 SHAKING FACE, Unicode 15) are
// *unassigned* (category Cn) there, so Python drops them as "control" characters. Swift's
// tables are newer; we reproduce Python by treating any scalar whose `age` is newer than
// ``UnicodeRules/referenceVersion`` as unassigned. Left out on purpose: the handful of
// general-category *changes* of already-assigned characters between Unicode versions.
//
// `pythonLowercase` reproduces `str.lower()`: the full (one-to-many) lowercase mapping per
// code point — 'İ' becomes 'i' + U+0307 — plus the one context rule Python applies, Greek
// final sigma. Swift's `String.lowercased()` maps Σ to σ everywhere, so it is not used.

/// Character classes and case mapping exactly as the reference Python tokenizer sees them.
enum UnicodeRules {
    /// Unicode version of the reference's `unicodedata` (Python 3.11): newer scalars count as unassigned.
    static let referenceVersion: (major: Int, minor: Int) = (14, 0)

    /// Whether `scalar` was assigned in ``referenceVersion``.
    @inline(__always)
    static func isAssignedInReference(_ scalar: Unicode.Scalar) -> Bool {
        guard let age = scalar.properties.age else { return false }
        return age.major < referenceVersion.major
            || (age.major == referenceVersion.major && age.minor <= referenceVersion.minor)
    }

    /// General category as Python 3.11's `unicodedata.category` reports it.
    ///
    /// The Basic Multilingual Plane is answered from a table built once (64 KiB): the
    /// stdlib's per-scalar age and category look-ups dominated tokenizing non-ASCII text.
    @inline(__always)
    static func category(_ scalar: Unicode.Scalar) -> Unicode.GeneralCategory {
        let v = scalar.value
        if v < 0x10000 { return allCategories[Int(bmpCategoryCodes[Int(v)])] }
        return uncachedCategory(scalar)
    }

    private static func uncachedCategory(_ scalar: Unicode.Scalar) -> Unicode.GeneralCategory {
        isAssignedInReference(scalar) ? scalar.properties.generalCategory : .unassigned
    }

    /// Every general category; a table entry is an index into this list.
    private static let allCategories: [Unicode.GeneralCategory] = [
        .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
        .nonspacingMark, .spacingMark, .enclosingMark,
        .decimalNumber, .letterNumber, .otherNumber,
        .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
        .initialPunctuation, .finalPunctuation, .otherPunctuation,
        .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol,
        .spaceSeparator, .lineSeparator, .paragraphSeparator,
        .control, .format, .surrogate, .privateUse, .unassigned,
    ]

    /// Category index of every BMP code point (surrogates have no scalar: category Cs).
    private static let bmpCategoryCodes: [UInt8] = {
        var index: [Unicode.GeneralCategory: UInt8] = [:]
        for (i, c) in allCategories.enumerated() { index[c] = UInt8(i) }
        return (0..<0x10000).map { v -> UInt8 in
            guard let scalar = Unicode.Scalar(UInt32(v)) else { return index[.surrogate]! }
            return index[uncachedCategory(scalar)]!
        }
    }()

    /// `_is_control`: any C* category except tab, newline and carriage return.
    @inline(__always)
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        if v == 0x09 || v == 0x0A || v == 0x0D { return false }
        if v < 0x80 { return v < 0x20 || v == 0x7F }
        switch category(scalar) {
        case .control, .format, .surrogate, .privateUse, .unassigned: return true
        default: return false
        }
    }

    /// `_is_whitespace`: space, tab, newline, carriage return, or category Zs.
    @inline(__always)
    static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        if v == 0x20 || v == 0x09 || v == 0x0A || v == 0x0D { return true }
        if v < 0x80 { return false }
        return category(scalar) == .spaceSeparator
    }

    /// `_is_punctuation`: all non-alphanumeric printable ASCII, plus every P* category.
    @inline(__always)
    static func isPunctuation(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        if v < 0x80 {
            return (v >= 33 && v <= 47) || (v >= 58 && v <= 64) || (v >= 91 && v <= 96) || (v >= 123 && v <= 126)
        }
        switch category(scalar) {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }

    /// `_is_chinese_char`: the CJK ideograph blocks BERT surrounds with spaces (not kana, not hangul).
    @inline(__always)
    static func isChineseCharacter(_ scalar: Unicode.Scalar) -> Bool {
        let cp = scalar.value
        if cp < 0x3400 { return false }
        return (cp >= 0x4E00 && cp <= 0x9FFF)
            || (cp >= 0x3400 && cp <= 0x4DBF)
            || (cp >= 0x20000 && cp <= 0x2A6DF)
            || (cp >= 0x2A700 && cp <= 0x2B73F)
            || (cp >= 0x2B740 && cp <= 0x2B81F)
            || (cp >= 0x2B820 && cp <= 0x2CEAF)
            || (cp >= 0xF900 && cp <= 0xFAFF)
            || (cp >= 0x2F800 && cp <= 0x2FA1F)
    }

    /// Whether Python would treat `scalar` as a separator in `str.split()` once `_clean_text`
    /// has run (by then every Zs, tab and newline is a plain space; U+2028/U+2029 remain).
    @inline(__always)
    static func isSplitWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        return v == 0x20 || v == 0x2028 || v == 0x2029
    }

    /// Appends Python's `word.lower()` to `output`, one code point at a time.
    ///
    /// Uses the full lowercase mapping (may yield several scalars) and Python's Final_Sigma
    /// rule: U+03A3 becomes U+03C2 when preceded by a cased letter and not followed by one
    /// (skipping case-ignorable scalars in both directions), within `word`.
    static func appendPythonLowercase<C: RandomAccessCollection>(of word: C, to output: inout [Unicode.Scalar])
    where C.Element == Unicode.Scalar, C.Index == Int {
        for i in word.indices {
            let scalar = word[i]
            let v = scalar.value
            if v < 0x80 {
                output.append((v >= 65 && v <= 90) ? Unicode.Scalar(UInt8(v + 32)) : scalar)
            } else if v == 0x03A3 {
                output.append(isFinalSigma(in: word, at: i) ? "\u{03C2}" : "\u{03C3}")
            } else if category(scalar) == .unassigned || !scalar.properties.changesWhenLowercased {
                output.append(scalar)
            } else {
                output.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
            }
        }
    }

    /// Python's `handle_capital_sigma`: `\p{cased}\p{case-ignorable}* Σ !(\p{case-ignorable}* \p{cased})`.
    private static func isFinalSigma<C: RandomAccessCollection>(in word: C, at index: Int) -> Bool
    where C.Element == Unicode.Scalar, C.Index == Int {
        var j = index - 1
        while j >= word.startIndex && word[j].properties.isCaseIgnorable { j -= 1 }
        guard j >= word.startIndex && word[j].properties.isCased else { return false }
        j = index + 1
        while j < word.endIndex && word[j].properties.isCaseIgnorable { j += 1 }
        return j == word.endIndex || !word[j].properties.isCased
    }
}
