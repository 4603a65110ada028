// BERT's basic tokenizer: text cleanup, CJK spacing, casing/accents, punctuation split.
//
// Follows `BasicTokenizer.tokenize` of HF transformers' slow tokenizer
// (`models/bert/tokenization_bert_legacy.py` in transformers 5), step for step:
//   1. `_clean_text`: drop U+0000, U+FFFD and control characters; whitespace → ' '.
//   2. `_tokenize_chinese_chars`: put spaces around CJK ideographs.
//   3. NFC-normalize the whole text (added to HF in 2024; only visible when cased).
//   4. split on whitespace; for each piece: Python `lower()` (uncased), then NFD and drop
//      Mn marks (when stripping accents), then split off every punctuation code point.
// A whitespace-separated piece equal to a special token (e.g. "[SEP]" re-formed after
// control characters were removed) is kept whole, as HF's `never_split` does.
// Left out on purpose: `do_split_on_punc=False` and custom `never_split` lists (not used
// by any BERT checkpoint we ship). ASCII pieces take a fast path with identical results.
import Foundation

/// The pre-WordPiece stage: turns text into basic words, handed out as scalar slices.
struct BasicTokenizer: Sendable {
    let lowercase: Bool
    /// Resolved `strip_accents`: nil follows `lowercase`, as in the original BERT.
    let stripAccents: Bool
    let tokenizeChineseChars: Bool
    /// Special tokens that a whitespace piece is compared against (HF's `never_split`).
    let neverSplit: [[Unicode.Scalar]]

    init(lowercase: Bool, stripAccents: Bool?, tokenizeChineseChars: Bool, neverSplit: [String]) {
        self.lowercase = lowercase
        self.stripAccents = stripAccents ?? lowercase
        self.tokenizeChineseChars = tokenizeChineseChars
        self.neverSplit = neverSplit.map { Array($0.unicodeScalars) }
    }

    /// Calls `body` with every basic word of `text`, in order.
    func forEachWord(in text: Substring, _ body: (ArraySlice<Unicode.Scalar>) -> Void) {
        var cleaned: [Unicode.Scalar] = []
        cleaned.reserveCapacity(text.utf8.count + 8)
        var allASCII = true
        for scalar in text.unicodeScalars {
            let v = scalar.value
            if v < 0x80 {
                if v == 0x20 || v == 0x09 || v == 0x0A || v == 0x0D {
                    cleaned.append(" ")
                } else if v >= 0x20 && v != 0x7F {  // drops NUL and the other C0 controls and DEL
                    cleaned.append(scalar)
                }
                continue
            }
            allASCII = false
            if v == 0xFFFD || UnicodeRules.isControl(scalar) { continue }
            if UnicodeRules.isWhitespace(scalar) {
                cleaned.append(" ")
            } else if tokenizeChineseChars && UnicodeRules.isChineseCharacter(scalar) {
                cleaned.append(" ")
                cleaned.append(scalar)
                cleaned.append(" ")
            } else {
                cleaned.append(scalar)
            }
        }
        if !allASCII {
            var view = String.UnicodeScalarView()
            view.append(contentsOf: cleaned)
            cleaned = Array(String(view).precomposedStringWithCanonicalMapping.unicodeScalars)
        }

        var transformed: [Unicode.Scalar] = []
        let count = cleaned.count
        var i = 0
        while i < count {
            while i < count && UnicodeRules.isSplitWhitespace(cleaned[i]) { i += 1 }
            if i == count { break }
            let start = i
            var pieceASCII = true
            while i < count && !UnicodeRules.isSplitWhitespace(cleaned[i]) {
                if cleaned[i].value >= 0x80 { pieceASCII = false }
                i += 1
            }
            if isNeverSplit(cleaned[start..<i]) {
                body(cleaned[start..<i])
            } else if pieceASCII {
                if lowercase {
                    for k in start..<i where cleaned[k].value >= 65 && cleaned[k].value <= 90 {
                        cleaned[k] = Unicode.Scalar(UInt8(cleaned[k].value + 32))
                    }
                }
                Self.splitOnPunctuation(cleaned[start..<i], body)
            } else {
                transformed.removeAll(keepingCapacity: true)
                if lowercase {
                    UnicodeRules.appendPythonLowercase(of: cleaned[start..<i], to: &transformed)
                } else {
                    transformed.append(contentsOf: cleaned[start..<i])
                }
                if stripAccents { Self.stripMarks(&transformed) }
                Self.splitOnPunctuation(transformed[...], body)
            }
        }
    }

    private func isNeverSplit(_ piece: ArraySlice<Unicode.Scalar>) -> Bool {
        guard piece.first == "[" else { return false }
        for token in neverSplit where token.count == piece.count && token.elementsEqual(piece) { return true }
        return false
    }

    /// `_run_strip_accents`: NFD, then drop every nonspacing mark (category Mn).
    private static func stripMarks(_ scalars: inout [Unicode.Scalar]) {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        let decomposed = String(view).decomposedStringWithCanonicalMapping
        scalars.removeAll(keepingCapacity: true)
        for scalar in decomposed.unicodeScalars where UnicodeRules.category(scalar) != .nonspacingMark {
            scalars.append(scalar)
        }
    }

    /// `_run_split_on_punc`: every punctuation scalar becomes a word of its own.
    @inline(__always)
    private static func splitOnPunctuation(_ piece: ArraySlice<Unicode.Scalar>, _ body: (ArraySlice<Unicode.Scalar>) -> Void) {
        var runStart = piece.startIndex
        for k in piece.indices where UnicodeRules.isPunctuation(piece[k]) {
            if runStart < k { body(piece[runStart..<k]) }
            body(piece[k...k])
            runStart = k + 1
        }
        if runStart < piece.endIndex { body(piece[runStart..<piece.endIndex]) }
    }
}
