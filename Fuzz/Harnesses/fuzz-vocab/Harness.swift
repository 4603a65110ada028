// Fuzzes vocab.txt reading and the WordPiece tokenizer built from it: the bytes are the
// file; a vocabulary that loads must tokenize text (including its own tokens) to ids inside it.
import FuzzSupport
import Foundation
import Tokenization

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let url = Scratch.file("vocab.txt", fuzzData(start, count))
    guard let tokenizer = try? WordPieceTokenizer(vocabFile: url) else { return 0 }
    let sample = tokenizer.vocabulary.prefix(8).joined(separator: " ") + " Hello, world! ##ing naïve 東京 \u{1F600}"
    let encoding = tokenizer.encode(sample, maxLength: 64)
    for id in encoding.ids where id < 0 || Int(id) >= tokenizer.vocabulary.count {
        fatalError("id \(id) outside the \(tokenizer.vocabulary.count)-token vocabulary")
    }
    return 0
}
