// Code-point classes and case mapping exactly as HuggingFace's Rust `tokenizers` sees them.
//
// Reference: `tokenizers/src/normalizers/bert.rs` (BertNormalizer) and
// `pre_tokenizers/bert.rs` (BertPreTokenizer) — what transformers 5's `BertTokenizer` and
// sentence-transformers run. They mix three Unicode sources, and we reproduce each:
//   * control (Cc, Cf, Co), nonspacing mark (Mn) and punctuation (P*) come from the
//     `unicode_categories` 0.1 crate, whose tables are **Unicode 8.0** and have no Cn entries
//     (an unassigned code point is no category at all: kept, never dropped as "control").
//     We answer from Swift's (Unicode 16) category for scalars whose `age` is ≤ 8.0, with
//     ``legacyCategoryChanges`` for the few whose category changed since.
//   * whitespace is Rust's `char::is_whitespace` (the White_Space property, stable) plus
//     tab/newline/CR; lowercase is Rust's `char::to_lowercase` (full mapping, no final-sigma
//     context) — Unicode 16 in the Rust we compare with, as in Swift 6.3's tables.
//   * NFD (before accent stripping) is `unicode-normalization-alignments`; no scalar we
//     know of decomposes differently from Swift's NFD (the class-table test checks all).
// `Tests/Fixtures/tokenizer/unicode-classes.txt` records, for every code point, what the
// Rust code does with it; `UnicodeClassTableTests` compares these predicates with it.
// Left out on purpose: the slow Python tokenizer's rules (Python 3.11 `unicodedata` 14.0,
// `str.lower()` with final sigma, NFC first); README "Tokenizer" lists where they differ.

/// Character classes and case mapping as the Rust BERT normalizer and pre-tokenizer see them.
enum UnicodeRules {
    /// Unicode version of the `unicode_categories` crate tables (control, Mn and P* classes).
    static let legacyCategoryVersion: (major: Int, minor: Int) = (8, 0)

    /// Scalars assigned by Unicode 8.0 whose general category changed since, with the 8.0 one.
    ///
    /// Found by comparing every code point with the Rust tokenizer (unicode-classes.txt).
    static let legacyCategoryChanges: [UInt32: Unicode.GeneralCategory] = [
        0x166D: .otherPunctuation,   // CANADIAN SYLLABICS CHI SIGN: So since Unicode 12
        0x111C9: .otherPunctuation,  // SHARADA SANDHI MARK: Mn since Unicode 11
        0x1734: .nonspacingMark,     // HANUNOO SIGN PAMUDPOD: Mc since Unicode 14
        0x1171E: .nonspacingMark,    // AHOM CONSONANT SIGN MEDIAL RA: Mc since Unicode 14
        0x1885: .otherLetter, 0x1886: .otherLetter,  // MONGOLIAN LETTER ALI GALI BALUDA: Mn since Unicode 9
        0xA9BD: .spacingMark,        // JAVANESE CONSONANT SIGN KERET: Mn since Unicode 12
    ]

    /// General category in the Unicode 8.0 tables; nil when the scalar was not assigned then.
    @inline(__always)
    static func legacyCategory(_ scalar: Unicode.Scalar) -> Unicode.GeneralCategory? {
        let v = scalar.value
        if v < 0x10000 {
            let code = bmpLegacyCodes[Int(v)]
            return code == noCategory ? nil : allCategories[Int(code)]
        }
        return uncachedLegacyCategory(scalar)
    }

    private static func uncachedLegacyCategory(_ scalar: Unicode.Scalar) -> Unicode.GeneralCategory? {
        if let changed = legacyCategoryChanges[scalar.value] { return changed }
        guard let age = scalar.properties.age,
              age.major < legacyCategoryVersion.major
                || (age.major == legacyCategoryVersion.major && age.minor <= legacyCategoryVersion.minor)
        else { return nil }
        return scalar.properties.generalCategory
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
    private static let noCategory: UInt8 = 0xFF

    /// Legacy category index of every BMP code point (64 KiB, built once): the stdlib's
    /// per-scalar age and category look-ups dominated tokenizing non-ASCII text.
    private static let bmpLegacyCodes: [UInt8] = {
        var index: [Unicode.GeneralCategory: UInt8] = [:]
        for (i, c) in allCategories.enumerated() { index[c] = UInt8(i) }
        return (0..<0x10000).map { v -> UInt8 in
            guard let scalar = Unicode.Scalar(UInt32(v)), let c = uncachedLegacyCategory(scalar) else { return noCategory }
            return index[c]!
        }
    }()

    /// `is_control`: Cc, Cf or Co in the 8.0 tables, except tab, newline and carriage return.
    @inline(__always)
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        if v == 0x09 || v == 0x0A || v == 0x0D { return false }
        if v < 0x80 { return v < 0x20 || v == 0x7F }
        switch legacyCategory(scalar) {
        case .control?, .format?, .privateUse?: return true
        default: return false
        }
    }

    /// `is_whitespace`: tab, newline, carriage return, or Rust's `char::is_whitespace` (White_Space).
    @inline(__always)
    static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        if v == 0x20 || v == 0x09 || v == 0x0A || v == 0x0D { return true }
        if v < 0x80 { return v == 0x0B || v == 0x0C }
        return scalar.properties.isWhitespace
    }

    /// `is_bert_punc`: ASCII punctuation, or a P* category in the 8.0 tables.
    @inline(__always)
    static func isPunctuation(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        if v < 0x80 {
            return (v >= 33 && v <= 47) || (v >= 58 && v <= 64) || (v >= 91 && v <= 96) || (v >= 123 && v <= 126)
        }
        switch legacyCategory(scalar) {
        case .connectorPunctuation?, .dashPunctuation?, .openPunctuation?, .closePunctuation?,
             .initialPunctuation?, .finalPunctuation?, .otherPunctuation?:
            return true
        default:
            return false
        }
    }

    /// `is_mark_nonspacing` of the 8.0 tables: what accent stripping removes after NFD.
    @inline(__always)
    static func isNonspacingMark(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value >= 0x300 && legacyCategory(scalar) == .nonspacingMark
    }

    /// `is_chinese_char` of the Rust normalizer: the CJK ideograph blocks BERT surrounds with
    /// spaces. Not kana, not hangul — and, unlike the Python tokenizer, not U+2B820…U+2B91F
    /// (the Rust table starts Extension E at U+2B920).
    @inline(__always)
    static func isChineseCharacter(_ scalar: Unicode.Scalar) -> Bool {
        let cp = scalar.value
        if cp < 0x3400 { return false }
        return (cp >= 0x4E00 && cp <= 0x9FFF)
            || (cp >= 0x3400 && cp <= 0x4DBF)
            || (cp >= 0x20000 && cp <= 0x2A6DF)
            || (cp >= 0x2A700 && cp <= 0x2B73F)
            || (cp >= 0x2B740 && cp <= 0x2B81F)
            || (cp >= 0x2B920 && cp <= 0x2CEAF)
            || (cp >= 0xF900 && cp <= 0xFAFF)
            || (cp >= 0x2F800 && cp <= 0x2FA1F)
    }

    /// Appends Rust's `char::to_lowercase` of `scalar`: the full (possibly one-to-many)
    /// mapping, with no context rule ('Σ' is always 'σ'; 'İ' becomes 'i' + U+0307).
    @inline(__always)
    static func appendLowercase(of scalar: Unicode.Scalar, to output: inout [Unicode.Scalar]) -> Int {
        let v = scalar.value
        if v < 0x80 {
            output.append((v >= 65 && v <= 90) ? Unicode.Scalar(UInt8(v + 32)) : scalar)
            return 1
        }
        guard scalar.properties.changesWhenLowercased else { output.append(scalar); return 1 }
        var n = 0
        for s in scalar.properties.lowercaseMapping.unicodeScalars { output.append(s); n += 1 }
        return n
    }
}
