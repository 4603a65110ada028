// ModelLoading: from a Distillery teacher file to a ready encoder and tokenizer.
import DistilleryModel
import DistilleryTensor
import Foundation
import Tokenization
import WeightIO

/// Tokenizer settings stored with a model (HF `tokenizer_config.json` keys).
struct TokenizerOptions: Codable {
    var lowercase: Bool = true
    var stripAccents: Bool? = nil
    var tokenizeChineseChars: Bool = true

    enum CodingKeys: String, CodingKey {
        case lowercase = "do_lower_case", stripAccents = "strip_accents", tokenizeChineseChars = "tokenize_chinese_chars"
    }

    init() {}
    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        lowercase = try c.decodeIfPresent(Bool.self, forKey: .lowercase) ?? true
        stripAccents = try c.decodeIfPresent(Bool.self, forKey: .stripAccents)
        tokenizeChineseChars = try c.decodeIfPresent(Bool.self, forKey: .tokenizeChineseChars) ?? true
    }

    /// JSON with sorted keys, so the same options always give the same file bytes.
    var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: (try? encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }

    static func parse(_ text: String, source: String) throws -> TokenizerOptions {
        do { return try JSONDecoder().decode(TokenizerOptions.self, from: Data(text.utf8)) } catch {
            throw CLIError("\(source): tokenizer options are not valid JSON (\(error)) — re-import the model")
        }
    }

    func makeTokenizer(vocabulary: [String], source: String) throws -> WordPieceTokenizer {
        do {
            return try WordPieceTokenizer(vocabulary: vocabulary, source: source, lowercase: lowercase, stripAccents: stripAccents,
                                          tokenizeChineseChars: tokenizeChineseChars)
        } catch { throw CLIError(file: source, error) }
    }
}

/// A teacher file with its parsed config and tokenizer (what fine-tuning starts from).
struct TeacherSource {
    let path: String
    let file: TeacherFile
    let config: BertConfig
    let tokenizer: WordPieceTokenizer

    init(path: String) throws {
        self.path = path
        guard FileManager.default.fileExists(atPath: path) else {
            throw CLIError("\(path): no such file — import a model first with 'kd import SRC --out \(path)'")
        }
        do { file = try TeacherFile.read(URL(fileURLWithPath: path)) } catch {
            let message = CLIError(file: path, error).description
            throw CLIError(message.contains("kd import") ? message
                           : "\(message) (--model takes a Distillery model file; convert weights with 'kd import SRC --out model.h5')")
        }
        do { config = try BertConfig(json: file.configJSON, source: "\(path) (config_json)") } catch {
            throw CLIError(file: path, error)
        }
        tokenizer = try TokenizerOptions.parse(file.tokenizerOptionsJSON, source: path)
            .makeTokenizer(vocabulary: file.vocabulary, source: path)
    }
}

/// A model loaded from a Distillery HDF5 file, with its tokenizer and pooling settings.
struct LoadedModel {
    let path: String
    let encoder: BertEncoder
    let tokenizer: WordPieceTokenizer
    let pooling: PoolingMode
    let normalize: Bool

    init(path: String) throws {
        let source = try TeacherSource(path: path)
        self.path = path
        var tensors: [String: Tensor] = [:]
        for (name, tensor) in source.file.tensors { tensors[name] = tensor }
        do { encoder = try BertEncoder(config: source.config, tensors: tensors) } catch { throw CLIError(file: path, error) }
        tokenizer = source.tokenizer
        pooling = PoolingMode(rawValue: source.file.pooling) ?? .mean
        normalize = source.file.normalize
    }

    /// Tokenizes lines (or parses pretokenized id lines) into padded batches.
    func encodeLines(_ lines: [String], maxLength: Int, pretokenized: Bool, source: String) throws -> [[Int32]] {
        let limit = min(maxLength, encoder.config.maxPositions)
        if pretokenized {
            return try lines.enumerated().map { i, line in
                let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                let ids = try parts.map { p -> Int32 in
                    guard let v = Int32(p), v >= 0, Int(v) < encoder.config.vocabSize else {
                        throw CLIError("\(source):\(i + 1): '\(p)' is not a token id in 0..<\(encoder.config.vocabSize) — with --pretokenized each line is space-separated ids")
                    }
                    return v
                }
                guard ids.count <= limit else {
                    throw CLIError("\(source):\(i + 1): \(ids.count) ids exceed the maximum length \(limit) — shorten the line or raise --max-length (model limit \(encoder.config.maxPositions))")
                }
                return ids
            }
        }
        return lines.map { tokenizer.encode($0, maxLength: limit).ids }
    }
}

/// Validates `--max-length` against a model.
func checkMaxLength(_ maxLength: Int, model: LoadedModel) throws {
    guard maxLength >= 2 else { throw CLIError("--max-length \(maxLength) is too small — it must leave room for [CLS] and [SEP]") }
    guard maxLength <= model.encoder.config.maxPositions else {
        throw CLIError("--max-length \(maxLength) exceeds the model's \(model.encoder.config.maxPositions) positions — use at most \(model.encoder.config.maxPositions)")
    }
}

/// Runs the encoder over sequences in length-sorted batches and hands each result back in
/// input order: `body(index, output, rowInBatch, batch)`.
func runBatched(_ model: LoadedModel, sequences: [[Int32]], batchSize: Int,
                _ body: (Int, EncoderOutput, Int, EncoderBatch) throws -> Void) throws {
    let order = sequences.indices.sorted { sequences[$0].count < sequences[$1].count }
    var start = 0
    while start < order.count {
        let chunk = Array(order[start..<min(start + batchSize, order.count)])
        let T = chunk.map { sequences[$0].count }.max()!
        var ids = [Int32](repeating: Int32(model.tokenizer.paddingId), count: chunk.count * T)
        var mask = [Int32](repeating: 0, count: chunk.count * T)
        for (row, i) in chunk.enumerated() {
            for (t, id) in sequences[i].enumerated() { ids[row * T + t] = id; mask[row * T + t] = 1 }
        }
        let batch = EncoderBatch(ids: ids, mask: mask, batchSize: chunk.count, sequenceLength: T)
        let out: EncoderOutput
        do { out = try model.encoder.forward(batch) } catch { throw CLIError(file: model.path, error) }
        for (row, i) in chunk.enumerated() { try body(i, out, row, batch) }
        start += batchSize
    }
}
