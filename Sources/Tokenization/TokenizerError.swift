// Errors raised while building a tokenizer: unreadable or malformed vocabularies.
//
// Every message says what was wrong, where (the file, when there is one) and what to try,
// following STYLE.md. Tokenizing itself never fails: unknown words become [UNK] exactly as
// in HuggingFace's BertTokenizer, so only construction throws.
import Foundation

/// Why a ``WordPieceTokenizer`` could not be built.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    /// The vocabulary file could not be read (missing, unreadable, or not UTF-8).
    case unreadableVocabulary(path: String, reason: String)
    /// The vocabulary has no tokens at all.
    case emptyVocabulary(source: String)
    /// A special token the encoder needs (`[UNK]`, `[CLS]`, `[SEP]` or `[PAD]`) is not in the vocabulary.
    case missingSpecialToken(token: String, source: String)
    /// The vocabulary has more tokens than an `Int32` id can address.
    case vocabularyTooLarge(count: Int, source: String)

    public var description: String {
        switch self {
        case let .unreadableVocabulary(path, reason):
            return "cannot read vocabulary file '\(path)': \(reason) — expected a BERT vocab.txt "
                + "(one UTF-8 token per line); was the teacher fetched? try scripts/fetch-teacher.sh"
        case let .emptyVocabulary(source):
            return "vocabulary \(source) is empty — a BERT vocab.txt has one token per line, "
                + "starting with [PAD]; check that the right file was passed"
        case let .missingSpecialToken(token, source):
            return "vocabulary \(source) has no '\(token)' token — BERT encoding needs [UNK], [CLS], [SEP] "
                + "and [PAD]; is this a WordPiece vocab.txt (and not a BPE/SentencePiece vocabulary)?"
        case let .vocabularyTooLarge(count, source):
            return "vocabulary \(source) has \(count) tokens, more than Int32 ids can address — "
                + "is this really a vocab.txt?"
        }
    }
}
