// kd import / info: turn HF checkpoints into Distillery teacher files, and describe files.
import ArgumentParser
import DistilleryModel
import DistilleryTensor
import Foundation
import Tokenization
import WeightIO

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import a BERT model (HF directory, .safetensors, or HDF5 in flat, nested or tf_model.h5 layout) into one Distillery .h5 file.")

    @Argument(help: "HF model directory (config.json + model.safetensors|tf_model.h5 + vocab.txt), a .safetensors file, or an .h5 file.")
    var source: String
    @Option(help: "Output Distillery model file (.h5).") var out: String
    @Option(help: "vocab.txt (default: beside the weights).") var vocab: String?
    @Option(help: "HF config.json (default: beside the weights).") var config: String?

    func run() throws {
        try checkOutputPath(out, flag: "--out")
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: source, isDirectory: &isDir) else {
            throw CLIError("\(source): no such file or directory — give an HF model directory, a .safetensors or an .h5 file")
        }
        let dir = isDir.boolValue ? URL(fileURLWithPath: source) : URL(fileURLWithPath: source).deletingLastPathComponent()
        func sibling(_ name: String) -> String? {
            let p = dir.appendingPathComponent(name).path
            return fm.fileExists(atPath: p) ? p : nil
        }
        // Weights.
        let weightsPath: String
        if isDir.boolValue {
            guard let w = ["model.safetensors", "tf_model.h5", "model.h5"].lazy.compactMap(sibling).first else {
                throw CLIError("\(source): no model.safetensors, tf_model.h5 or model.h5 in the directory — PyTorch .bin checkpoints are not read; convert them to safetensors")
            }
            weightsPath = w
        } else {
            weightsPath = source
        }
        // A Distillery file carries its config, vocabulary and settings; other sources
        // take them from files beside the weights or from flags.
        var stored: TeacherFile? = nil
        var tensorList: [(name: String, tensor: Tensor)]
        var layoutName: String
        var skipped: [String] = []
        if !isDir.boolValue && TeacherFile.isTeacherFile(URL(fileURLWithPath: weightsPath)) {
            do { stored = try TeacherFile.read(URL(fileURLWithPath: weightsPath)) } catch { throw CLIError(file: weightsPath, error) }
            (tensorList, layoutName) = (stored!.tensors, "distillery")
        } else {
            let weights: CanonicalWeights
            do { weights = try loadCanonicalWeights(from: URL(fileURLWithPath: weightsPath)) } catch {
                throw CLIError(file: weightsPath, error)
            }
            (tensorList, layoutName, skipped) = (weights.tensors, weights.layout.rawValue, weights.skipped)
        }
        // Config: --config, config.json beside the weights, or the one stored in a Distillery file.
        let configText: String
        let configSource: String
        if let path = config ?? (stored == nil ? sibling("config.json") : nil) {
            guard FileManager.default.fileExists(atPath: path) else {
                throw CLIError("\(path): no such config file — check --config")
            }
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw CLIError("\(path): cannot read config.json as UTF-8 text")
            }
            (configText, configSource) = (text, path)
        } else if let stored {
            (configText, configSource) = (stored.configJSON, "\(weightsPath) (config_json)")
        } else {
            throw CLIError("\(source): no config.json found beside the weights — pass --config path/to/config.json")
        }
        let bertConfig: BertConfig
        do { bertConfig = try BertConfig(json: configText, source: configSource) } catch { throw CLIError(file: configSource, error) }
        // Vocabulary: --vocab, vocab.txt beside the weights, or the stored one.
        let vocabulary: [String]
        let vocabSource: String
        if let path = vocab ?? (stored == nil ? sibling("vocab.txt") : nil) {
            guard FileManager.default.fileExists(atPath: path) else {
                throw CLIError("\(path): no such vocabulary file — check --vocab")
            }
            let lines: [String]
            do { lines = try WordPieceTokenizer.readVocabulary(URL(fileURLWithPath: path)) } catch { throw CLIError(file: path, error) }
            (vocabulary, vocabSource) = (lines, path)
        } else if let stored {
            (vocabulary, vocabSource) = (stored.vocabulary, weightsPath)
        } else {
            throw CLIError("\(source): no vocab.txt found beside the weights — pass --vocab path/to/vocab.txt")
        }
        guard vocabulary.count == bertConfig.vocabSize else {
            throw CLIError("\(vocabSource): \(vocabulary.count) tokens but config vocab_size is \(bertConfig.vocabSize) — the vocabulary does not belong to this model")
        }
        var tokenizer = TokenizerOptions()
        if let stored {
            tokenizer = try TokenizerOptions.parse(stored.tokenizerOptionsJSON, source: weightsPath)
        } else if let path = sibling("tokenizer_config.json"), let text = try? String(contentsOfFile: path, encoding: .utf8) {
            tokenizer = try TokenizerOptions.parse(text, source: path)
        }
        _ = try tokenizer.makeTokenizer(vocabulary: vocabulary, source: vocabSource)
        var (pooling, normalize) = sentenceTransformersPooling(dir: dir)
        if let stored { (pooling, normalize) = (PoolingMode(rawValue: stored.pooling) ?? .cls, stored.normalize) }
        // Strict validation through the model itself.
        var tensors: [String: Tensor] = [:]
        for (name, t) in tensorList {
            guard tensors[name] == nil else { throw CLIError("\(weightsPath): tensor '\(name)' appears twice — the file is corrupt") }
            tensors[name] = t
        }
        let encoder: BertEncoder
        do { encoder = try BertEncoder(config: bertConfig, tensors: tensors) } catch { throw CLIError(file: weightsPath, error) }
        let file = TeacherFile(tensors: encoder.parameters, configJSON: configText, vocabulary: vocabulary,
                               pooling: pooling.rawValue, normalize: normalize, tokenizerOptionsJSON: tokenizer.json)
        do { try file.write(to: URL(fileURLWithPath: out)) } catch { throw CLIError(file: out, error) }
        var heads: [String] = []
        if encoder.heads.pooler { heads.append("pooler") }
        if encoder.heads.classifierLabels > 0 { heads.append("classifier(\(encoder.heads.classifierLabels): \(bertConfig.labels.joined(separator: ",")))") }
        print("imported \(weightsPath) [\(layoutName)] -> \(out)")
        print("  \(bertConfig.layerCount) layers, hidden \(bertConfig.hiddenSize), \(bertConfig.headCount) heads, FFN \(bertConfig.intermediateSize), vocab \(vocabulary.count)")
        print("  \(encoder.parameters.count) tensors, \(encoder.parameterCount) parameters; heads: \(heads.isEmpty ? "none" : heads.joined(separator: ", ")); pooling \(pooling.rawValue)\(normalize ? " + normalize" : "")")
        if !skipped.isEmpty { print("  skipped buffers: \(skipped.joined(separator: ", "))") }
    }

    /// Pooling from sentence-transformers' modules.json (+ 1_Pooling/config.json), if present.
    /// Without sentence-transformers files a plain BERT embeds by its [CLS] state.
    func sentenceTransformersPooling(dir: URL) -> (PoolingMode, Bool) {
        let modulesURL = dir.appendingPathComponent("modules.json")
        guard let data = try? Data(contentsOf: modulesURL),
              let modules = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]] else {
            return (.cls, false)
        }
        var mode = PoolingMode.mean, normalize = false
        for m in modules {
            let type = m["type"] as? String ?? ""
            if type.hasSuffix("Normalize") { normalize = true }
            if type.hasSuffix("Pooling"), let path = m["path"] as? String,
               let d = try? Data(contentsOf: dir.appendingPathComponent(path).appendingPathComponent("config.json")),
               let cfg = try? JSONSerialization.jsonObject(with: d) as? [String: Any] {
                mode = (cfg["pooling_mode_cls_token"] as? Bool ?? false) ? .cls : .mean
            }
        }
        return (mode, normalize)
    }
}

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe a model file: architecture, parameter count, tensors, size.")

    @Argument(help: "A Distillery .h5 model, or any source kd import reads.") var file: String

    func run() throws {
        guard FileManager.default.fileExists(atPath: file) else {
            throw CLIError("\(file): no such file — check the path")
        }
        let url = URL(fileURLWithPath: file)
        let size = ((try? FileManager.default.attributesOfItem(atPath: file))?[.size] as? NSNumber)?.intValue ?? 0
        if TeacherFile.isTeacherFile(url) {
            let t: TeacherFile
            do { t = try TeacherFile.read(url) } catch { throw CLIError(file: file, error) }
            let config: BertConfig
            do { config = try BertConfig(json: t.configJSON, source: file) } catch { throw CLIError(file: file, error) }
            print("file: \(file) (distillery-teacher, \(formatBytes(size)))")
            print("architecture: BERT encoder, \(config.layerCount) layers, hidden \(config.hiddenSize), heads \(config.layerHeads.map(String.init).joined(separator: "/")), FFN \(config.layerIntermediateSizes.map(String.init).joined(separator: "/")), positions \(config.maxPositions), vocab \(config.vocabSize)")
            if !config.labels.isEmpty { print("labels: \(config.labels.joined(separator: ", "))") }
            if t.tensors.contains(where: { $0.name == "classifier.weight" }) {
                print("classifier: on \(config.classifierPooling == .mean ? "the mean of the last hidden states (no pooler)" : "the tanh pooler over [CLS]")")
            }
            print("pooling: \(t.pooling)\(t.normalize ? " + L2 normalize" : ""); tokenizer: \(t.tokenizerOptionsJSON)")
            printTensors(t.tensors.map { ($0.name, "float32", $0.tensor.shape) })
        } else {
            let w: CanonicalWeights
            do { w = try loadCanonicalWeights(from: url) } catch { throw CLIError(file: file, error) }
            print("file: \(file) (\(w.layout.rawValue) layout, \(formatBytes(size)))")
            printTensors(w.tensors.map { ($0.name, "float32", $0.tensor.shape) })
            if !w.skipped.isEmpty { print("skipped buffers: \(w.skipped.joined(separator: ", "))") }
        }
    }

    func printTensors(_ list: [(String, String, [Int])]) {
        let total = list.reduce(0) { $0 + $1.2.reduce(1, *) }
        print("parameters: \(total) in \(list.count) tensors")
        let width = list.map(\.0.count).max() ?? 10
        for (name, dtype, shape) in list {
            print("  \(name.padding(toLength: width, withPad: " ", startingAt: 0))  \(dtype)  \(describeShape(shape))")
        }
    }
}

/// Human-readable byte count.
func formatBytes(_ n: Int) -> String {
    n >= 1 << 20 ? String(format: "%.1f MiB", Double(n) / 1048576) : n >= 1024 ? String(format: "%.1f KiB", Double(n) / 1024) : "\(n) B"
}
