// The cases of the bad-input catalogue (BadInputCatalogueTests.swift), one table per group
// of commands; each builder makes its hostile files in the test's temp directory.
import Foundation
import TestSupport
import WeightIO
import XCTest

extension BadInputCatalogueTests {
    /// `kd import`: config.json sizes, kinds and values; vocab.txt; safetensors headers; paths.
    func importCases() throws -> [BadInputCase] {
        let out = outPath("x.h5")
        var cases: [BadInputCase] = []
        func config(_ key: String, _ value: String, _ needles: [String]) throws {
            let v = try configWith(key, value)
            cases.append(BadInputCase(name: "config \(key)=\(value)", args: ["import", v.dir, "--out", out], contains: [v.config] + needles))
        }
        try config("num_hidden_layers", "-1", ["num_hidden_layers", "-1"])
        try config("num_hidden_layers", "1099511627776", ["num_hidden_layers", "1099511627776"])
        try config("num_hidden_layers", "0", ["num_hidden_layers"])
        try config("num_attention_heads", "0", ["num_attention_heads"])
        try config("num_attention_heads", "-4", ["num_attention_heads"])
        try config("hidden_size", "0", ["hidden_size"])
        try config("hidden_size", "30", ["hidden_size", "num_attention_heads"])
        try config("hidden_size", "9223372036854775807", ["hidden_size"])
        try config("vocab_size", "-1", ["vocab_size"])
        try config("vocab_size", "1099511627776", ["vocab_size"])
        try config("max_position_embeddings", "4611686018427387904", ["max_position_embeddings"])
        try config("max_position_embeddings", "0", ["max_position_embeddings"])
        try config("intermediate_size", "1099511627776", ["intermediate_size"])
        try config("intermediate_size", "-64", ["intermediate_size"])
        try config("type_vocab_size", "0", ["type_vocab_size"])
        try config("layer_norm_eps", "-1e-12", ["layer_norm_eps"])
        try config("layer_norm_eps", "0", ["layer_norm_eps"])
        try config("layer_norm_eps", "1e999", ["layer_norm_eps"])
        try config("layer_norm_eps", "\"1e-12\"", ["layer_norm_eps", "expected a number"])
        try config("hidden_size", "32.5", ["hidden_size"])
        try config("hidden_size", "\"32\"", ["hidden_size"])
        try config("num_hidden_layers", "true", ["num_hidden_layers"])
        try config("hidden_size", "null", ["hidden_size"])
        try config("hidden_act", "\"swishy\"", ["hidden_act", "swishy"])
        try config("hidden_dropout_prob", "1.5", ["hidden_dropout_prob"])
        try config("attention_probs_dropout_prob", "-0.1", ["attention_probs_dropout_prob"])
        try config("pad_token_id", "95", ["pad_token_id"])
        try config("pad_token_id", "-1", ["pad_token_id"])
        let badLabels = try configVariant("cfg-id2label") { $0.replacingOccurrences(of: "\"0\": \"negative\"", with: "\"zero\": \"negative\"") }
        cases.append(BadInputCase(name: "id2label key not an index", args: ["import", badLabels.dir, "--out", out],
                                  contains: [badLabels.config, "id2label"]))
        let gapLabels = try configVariant("cfg-id2label-gap") { $0.replacingOccurrences(of: "\"2\": \"positive\"", with: "\"7\": \"positive\"") }
        cases.append(BadInputCase(name: "id2label ids with a gap", args: ["import", gapLabels.dir, "--out", out],
                                  contains: [gapLabels.config, "id2label"]))
        let duplicate = try configVariant("cfg-duplicate") { $0.replacingOccurrences(of: "\"hidden_size\": 32,", with: "\"hidden_size\": 32,\n  \"hidden_size\": 16,") }
        cases.append(BadInputCase(name: "config duplicate key", args: ["import", duplicate.dir, "--out", out],
                                  contains: [duplicate.config, "hidden_size", "twice"]))
        for (name, text) in [("array", "[]"), ("empty", ""), ("deep", String(repeating: "[", count: 100_000)), ("number", "42")] {
            let path = try write("config-\(name).json", text)
            cases.append(BadInputCase(name: "config is \(name)", args: ["import", CLIFixtures.tinyBert.path, "--config", path, "--out", out],
                                      contains: [path]))
        }
        let latin = try write("config-latin1.json", Data("{\"model_type\": \"b".utf8) + Data([0xE9]) + Data("rt\"}".utf8))
        cases.append(BadInputCase(name: "config invalid UTF-8", args: ["import", CLIFixtures.tinyBert.path, "--config", latin, "--out", out],
                                  contains: [latin, "UTF-8"]))
        cases.append(BadInputCase(name: "--config is a directory", args: ["import", CLIFixtures.tinyBert.path, "--config", temp.path, "--out", out],
                                  contains: [temp.path, "directory"]))

        // vocab.txt
        let vocabText = try String(contentsOf: CLIFixtures.tinyBert.appendingPathComponent("vocab.txt"), encoding: .utf8)
        let badUTF8 = try write("vocab-latin1.txt", Data(vocabText.utf8) .dropLast() + Data([0x0A, 0xE9, 0x74, 0xE9, 0x0A]))
        cases.append(BadInputCase(name: "vocab invalid UTF-8", args: ["import", CLIFixtures.tinyBert.path, "--vocab", badUTF8, "--out", out],
                                  contains: [badUTF8, "UTF-8"]))
        let longer = try write("vocab-long.txt", vocabText + "extra1\nextra2\n")
        cases.append(BadInputCase(name: "vocab longer than vocab_size", args: ["import", CLIFixtures.tinyBert.path, "--vocab", longer, "--out", out],
                                  contains: [longer, "97 tokens", "vocab_size is 95"]))
        let empty = try write("vocab-empty.txt", "")
        cases.append(BadInputCase(name: "vocab empty", args: ["import", CLIFixtures.tinyBert.path, "--vocab", empty, "--out", out],
                                  contains: [empty]))
        cases.append(BadInputCase(name: "--vocab is a directory", args: ["import", CLIFixtures.tinyBert.path, "--vocab", temp.path, "--out", out],
                                  contains: [temp.path, "directory"]))

        // safetensors headers
        let config = CLIFixtures.weightioConfig.path, vocab = CLIFixtures.weightioVocab.path
        func st(_ name: String, _ header: String, length: UInt64? = nil, _ needles: [String]) throws {
            let path = try safetensors("\(name).safetensors", header: header, length: length)
            cases.append(BadInputCase(name: "safetensors \(name)", args: ["import", path, "--config", config, "--vocab", vocab, "--out", out],
                                      contains: [path] + needles))
        }
        try st("duplicate-key", #"{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}"#,
               ["'w'", "twice"])
        try st("huge-length", "{}", length: 1 << 63, ["header length"])
        try st("negative-dim", #"{"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}"#, ["'w'", "shape"])
        try st("overflowing-shape", #"{"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 16]}}"#, ["'w'"])
        try st("header-array", "[1, 2]", ["expected an object"])
        try st("offsets-strings", #"{"w": {"dtype": "F32", "shape": [2], "data_offsets": ["0", "8"]}}"#, ["'w'", "data_offsets"])
        try st("metadata-number", #"{"__metadata__": {"format": 1}, "w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}"#, ["__metadata__"])
        try st("zero-length", "", length: 0, ["header"])
        let five = try write("five.safetensors", Data([1, 2, 3, 4, 5]))
        cases.append(BadInputCase(name: "safetensors 5 bytes", args: ["import", five, "--config", config, "--vocab", vocab, "--out", out],
                                  contains: [five]))

        // HDF5 and paths
        let emptyH5 = try write("empty.h5", Data())
        cases.append(BadInputCase(name: "empty .h5", args: ["import", emptyH5, "--out", out], contains: [emptyH5]))
        let noWeights = temp.appendingPathComponent("no-weights")
        try FileManager.default.createDirectory(at: noWeights, withIntermediateDirectories: true)
        cases.append(BadInputCase(name: "directory without weights", args: ["import", noWeights.path, "--out", out], contains: [noWeights.path]))
        let model = try teacherVariant("model.h5") { _ in }
        cases.append(BadInputCase(name: "import --out is the source", args: ["import", model, "--out", model],
                                  contains: ["--out", model, "is an input", "--force"]))
        let hf = try copyTinyBert("hf-link")
        let vocabLink = outDir.deletingLastPathComponent().appendingPathComponent("vocab-link.h5").path
        try FileManager.default.linkItem(atPath: hf.appendingPathComponent("vocab.txt").path, toPath: vocabLink)
        cases.append(BadInputCase(name: "import --out is a hard link to vocab.txt", args: ["import", hf.path, "--out", vocabLink],
                                  contains: ["--out", vocabLink, "vocab.txt"]))
        cases.append(BadInputCase(name: "import --out empty", args: ["import", CLIFixtures.tinyBert.path, "--out", ""], contains: ["--out"]))
        return cases
    }

    /// `kd info`, `tokenize`, `embed`, `predict`: hostile model files, inputs and flags.
    func modelCases() throws -> [BadInputCase] {
        let tiny = try SharedModel.tinyPath(), input = CLIFixtures.sentences.path
        let e = outPath("e.jsonl")
        var cases: [BadInputCase] = []
        func embed(_ name: String, _ extra: [String], _ needles: [String], model: String? = nil) {
            cases.append(BadInputCase(name: name, args: ["embed", "--model", model ?? tiny, "--input", input, "--out", e] + extra, contains: needles))
        }
        // Hostile model files: every command that loads a model refuses them.
        let negativeEps = try teacherWithConfig("neg-eps.h5", "layer_norm_eps", "-1e-12")
        let hugeLayers = try teacherWithConfig("huge-layers.h5", "num_hidden_layers", "1099511627776")
        let minusLayers = try teacherWithConfig("minus-layers.h5", "num_hidden_layers", "-1")
        let stringSize = try teacherWithConfig("string-size.h5", "hidden_size", "\"32\"")
        let longVocab = try teacherVariant("long-vocab.h5") { $0.vocabulary += ["extra"] }
        let badVocab = try teacherVariant("bad-vocab.h5") { $0.vocabulary[50] = "MARKERMARKER" }
        let badVocabURL = URL(fileURLWithPath: badVocab)
        var bytes = try Data(contentsOf: badVocabURL)
        let marker = bytes.range(of: Data("MARKERMARKER".utf8))!
        bytes.replaceSubrange(marker, with: Data([0x4D, 0xFF, 0xFE] + Array("ARKERMARK".utf8)))
        try bytes.write(to: badVocabURL)
        let truncated = try write("truncated.h5", try Data(contentsOf: URL(fileURLWithPath: tiny)).prefix(4000))
        let hugeDims = temp.appendingPathComponent("huge-dims.h5")
        do {
            let file = try HDF5File.create(hugeDims)
            try file.setAttribute("format", string: "distillery-teacher")
            try file.setAttribute("format_version", int: 1)
            try file.setAttribute("config_json", string: try TeacherFile.read(URL(fileURLWithPath: tiny)).configJSON)
            try file.createRowDataset("embeddings.word_embeddings.weight", type: .float32, rowShape: [32], chunk: HDF5ChunkOptions(rowsPerChunk: 1))
            try file.writeRows([Float](), to: "embeddings.word_embeddings.weight", at: 1 << 40)
            try file.close()
        }
        for (file, needles) in [(negativeEps, ["layer_norm_eps"]), (hugeLayers, ["num_hidden_layers"]), (minusLayers, ["num_hidden_layers"]),
                                (stringSize, ["hidden_size"]), (longVocab, ["96", "vocab_size"]), (badVocab, ["UTF-8"]),
                                (truncated, []), (hugeDims.path, [])] {
            let name = URL(fileURLWithPath: file).lastPathComponent
            cases.append(BadInputCase(name: "info \(name)", args: ["info", file], contains: [file] + needles))
            embed("embed --model \(name)", [], [file] + needles, model: file)
        }
        cases.append(BadInputCase(name: "tokenize --model bad vocab", args: ["tokenize", "--model", badVocab, "--input", input], contains: [badVocab, "UTF-8"]))
        cases.append(BadInputCase(name: "predict --model negative eps",
                                  args: ["predict", "--model", negativeEps, "--input", input, "--out", outPath("p.jsonl")], contains: [negativeEps, "layer_norm_eps"]))
        cases.append(BadInputCase(name: "info on a directory", args: ["info", temp.path], contains: [temp.path, "directory"]))
        cases.append(BadInputCase(name: "info on an empty file", args: ["info", try write("empty.h5", Data())], contains: ["empty.h5"]))

        // Flags
        for (flag, value, needles) in [("--threads", "65", ["--threads 65"]), ("--threads", "-3", ["--threads"]), ("--threads", "1e300", ["--threads", "1e300"]),
                                       ("--batch-size", "-1", ["--batch-size"]), ("--batch-size", "0", ["--batch-size 0"]),
                                       ("--batch-size", "9223372036854775807", ["--batch-size"]),
                                       ("--max-length", "-1", ["--max-length"]), ("--max-length", "9223372036854775807", ["--max-length"]),
                                       ("--max-length", "99999999999999999999", ["--max-length"]), ("--pooling", "max", ["--pooling", "'max'"])] {
            embed("embed \(flag) \(value)", flagArgs(flag, value), needles)
        }
        cases.append(BadInputCase(name: "tokenize --max-length 0", args: ["tokenize", "--model", tiny, "--input", input, "--max-length", "0"], contains: ["--max-length"]))
        cases.append(BadInputCase(name: "predict --labels wrong count",
                                  args: ["predict", "--model", tiny, "--input", input, "--labels", "a,b", "--out", outPath("p.jsonl")], contains: ["--labels"]))
        cases.append(BadInputCase(name: "predict --labels empty name",
                                  args: ["predict", "--model", tiny, "--input", input, "--labels", "a,,b", "--out", outPath("p.jsonl")], contains: ["--labels"]))
        // Inputs
        let ids = try write("big-id.txt", "2 99999999999999999999 3\n")
        cases.append(BadInputCase(name: "pretokenized id overflowing Int",
                                  args: ["embed", "--model", tiny, "--input", ids, "--pretokenized", "--out", e], contains: ["\(ids):1"]))
        let latin = try write("latin1.txt", Data([0x63, 0x61, 0x66, 0xE9, 0x0A]))
        cases.append(BadInputCase(name: "embed input invalid UTF-8", args: ["embed", "--model", tiny, "--input", latin, "--out", e], contains: ["\(latin):1", "UTF-8"]))
        cases.append(BadInputCase(name: "embed --input directory", args: ["embed", "--model", tiny, "--input", temp.path, "--out", e], contains: [temp.path, "directory"]))
        cases.append(BadInputCase(name: "embed --model directory", args: ["embed", "--model", temp.path, "--input", input, "--out", e], contains: [temp.path, "directory"]))
        // Outputs that are inputs
        let text = try write("texts.txt", "one\ntwo\n")
        cases.append(BadInputCase(name: "embed --out is --input", args: ["embed", "--model", tiny, "--input", text, "--out", text],
                                  contains: ["--out", text, "is an input"]))
        let link = temp.appendingPathComponent("texts-link.jsonl").path
        try FileManager.default.linkItem(atPath: text, toPath: link)
        cases.append(BadInputCase(name: "predict --out hard link to --input", args: ["predict", "--model", tiny, "--input", text, "--out", link],
                                  contains: ["--out", link, text]))
        let modelCopy = try teacherVariant("copy.h5") { _ in }
        cases.append(BadInputCase(name: "embed --out is --model", args: ["embed", "--model", modelCopy, "--input", text, "--out", modelCopy],
                                  contains: ["--out", modelCopy, "is an input"]))
        return cases
    }

    /// `kd data prepare`: CSVs with nothing usable, bad columns and encodings, flags, paths.
    func prepareCases() throws -> [BadInputCase] {
        var cases: [BadInputCase] = []
        func prepare(_ name: String, _ csv: String, _ extra: [String] = [], _ needles: [String]) {
            cases.append(BadInputCase(name: name, args: ["data", "prepare", "--csv", csv, "--text-column", "text", "--label-column", "label",
                                                         "--name", "bad", "--out", outPath("d")] + extra, contains: needles))
        }
        let noRows = try write("no-rows.csv", "text,label\n,pos\n,neg\n  ,pos\n")
        prepare("zero usable rows (empty texts)", noRows, [], [noRows, "none of the 3 rows is usable"])
        let noLabels = try write("no-labels.csv", "text,label\ngood,\nbad,\n")
        prepare("zero usable rows (empty labels)", noLabels, [], [noLabels, "none of the 2 rows is usable"])
        let header = try write("header.csv", "text,label\n")
        prepare("header only", header, [], [header])
        let oneClass = try write("one-class.csv", (0..<30).map { "text \($0),pos" }.joined(separator: "\n").prepending("text,label\n"))
        prepare("one class", oneClass, [], [oneClass, "at least two labels"])
        let wrongColumn = try write("columns.csv", "body,label\nhi,pos\n")
        prepare("missing text column", wrongColumn, [], [wrongColumn, "text"])
        let quote = try write("quote.csv", "text,label\n\"never closed,pos\nx,neg\n")
        prepare("unterminated quote", quote, [], [quote])
        let latin = try write("latin.csv", Data("text,label\ncaf".utf8) + Data([0xE9]) + Data(",pos\n".utf8))
        prepare("invalid UTF-8 declared utf-8", latin, [], [latin, "UTF-8"])
        prepare("csv is a directory", temp.path, [], [temp.path, "directory"])
        prepare("--delimiter two chars", noRows, ["--delimiter", "ab"], ["--delimiter"])
        prepare("--encoding unknown", noRows, ["--encoding", "ebcdic"], ["--encoding", "ebcdic"])
        prepare("--seed negative", noRows, ["--seed=-1"], ["--seed"])
        prepare("--seed not a number", noRows, ["--seed", "1e3"], ["--seed", "1e3"])
        prepare("--labels unknown only", try write("labels.csv", "text,label\na,x\nb,y\n"), ["--labels", "pos,neg"], ["label list", "rows is usable"])
        cases.append(BadInputCase(name: "--name with a slash", args: ["data", "prepare", "--csv", noRows, "--text-column", "text", "--label-column", "label",
                                                                     "--name", "../x", "--out", outPath("d")], contains: ["--name"]))
        let file = try write("plain-file", "x")
        cases.append(BadInputCase(name: "--out is a file", args: ["data", "prepare", "--csv", CLIFixtures.sentences.path.replacingOccurrences(of: "cli/sentences.txt", with: "train/toy-sentiment.csv"),
                                                                  "--text-column", "text", "--label-column", "label", "--name", "toy", "--out", file],
                                  contains: [file, "is a file"]))
        // The output folder holds the input CSV under an output name.
        let inside = temp.appendingPathComponent("inplace")
        try FileManager.default.createDirectory(at: inside, withIntermediateDirectories: true)
        let csvInside = inside.appendingPathComponent("train.jsonl").path
        try FileManager.default.copyItem(atPath: Fixtures.url("train/toy-sentiment.csv").path, toPath: csvInside)
        cases.append(BadInputCase(name: "prepare --out folder holds the input", args: ["data", "prepare", "--csv", csvInside, "--text-column", "text",
                                                                                       "--label-column", "label", "--name", "toy", "--out", inside.path],
                                  contains: ["--out", csvInside, "is an input"]))
        cases.append(BadInputCase(name: "unknown built-in dataset", args: ["data", "prepare", "no-such-set", "--out", outPath("d")], contains: ["no-such-set"]))
        return cases
    }
}

extension String {
    func prepending(_ prefix: String) -> String { prefix + self }
}
