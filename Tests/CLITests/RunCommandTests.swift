// kd tokenize / embed / predict / bench end to end on the tiny-bert model.
//
// Expected token ids come from HF BertTokenizer with the tiny-bert vocab (do_lower_case)
// and are committed in Tests/Fixtures/cli/sentences.ids; the few hard-coded truncated
// lines below were checked the same way.
import Foundation
import TestSupport
import XCTest

/// Unit L2 norm within float32 summation error over 32 elements.
let unitNormTolerance = 1e-5
/// Softmax probabilities printed as shortest float32 decimals still sum to 1 within this.
let probabilitySumTolerance = 1e-5

final class TokenizeTests: CLITestCase {
    func expectedIds() throws -> [String] {
        try String(contentsOf: CLIFixtures.sentencesIds, encoding: .utf8).split(separator: "\n").map(String.init)
    }

    func testTokenizeInputFileMatchesHF() throws {
        let r = runOK(["tokenize", "--model", try SharedModel.tinyPath(), "--input", CLIFixtures.sentences.path])
        XCTAssertEqual(outputLines(r.stdout).map(String.init), try expectedIds())
    }

    func testTokenizeStdinMatchesHF() throws {
        let text = try Data(contentsOf: CLIFixtures.sentences)
        let r = runOK(["tokenize", "--model", try SharedModel.tinyPath()], stdin: text)
        XCTAssertEqual(outputLines(r.stdout).map(String.init), try expectedIds())
    }

    func testTokenizeStdinWithCRLFAndNoTrailingNewline() throws {
        let r = runOK(["tokenize", "--model", try SharedModel.tinyPath()], stdin: Data("The movie was great!\r\nbad".utf8))
        XCTAssertEqual(outputLines(r.stdout), ["2 52 58 54 60 43 3", "2 57 3"])
    }

    func testNoSpecialAndMaxLength() throws {
        let model = try SharedModel.tinyPath()
        let input = CLIFixtures.sentences.path
        // HF: tokenizer(line, add_special_tokens=False, max_length=4, truncation=True)
        let noSpecial = runOK(["tokenize", "--model", model, "--input", input, "--no-special", "--max-length", "4"])
        XCTAssertEqual(outputLines(noSpecial.stdout), ["52 58 54 60", "13 68 66 59", "78 82 79 80", "1 1 1 44",
                                                       "1 1 51 72", "65 54 1 72"])
        // HF: tokenizer(line, max_length=4, truncation=True) keeps [CLS] ... [SEP].
        let special = runOK(["tokenize", "--model", model, "--input", input, "--max-length", "4"])
        XCTAssertEqual(outputLines(special.stdout), ["2 52 58 3", "2 13 68 3", "2 78 82 3", "2 1 1 3", "2 1 1 3", "2 65 54 3"])
        // Without --max-length nothing is cut, with or without special tokens.
        let full = runOK(["tokenize", "--model", model, "--input", input, "--no-special"])
        XCTAssertEqual(outputLines(full.stdout).map(String.init),
                       try expectedIds().map { $0.split(separator: " ").dropFirst().dropLast().joined(separator: " ") })
    }
}

final class EmbedPredictTests: CLITestCase {
    func embed(_ extra: [String], input: String = CLIFixtures.sentences.path) throws -> [[String: Any]] {
        let r = runOK(["embed", "--model", try SharedModel.tinyPath(), "--input", input] + extra)
        return outputLines(r.stdout).map { parseJSONLine($0) }
    }

    func testEmbedJSONLinesEchoTextAndDimension() throws {
        let lines = try String(contentsOf: CLIFixtures.sentences, encoding: .utf8).split(separator: "\n").map(String.init)
        let r = runOK(["embed", "--model", try SharedModel.tinyPath(), "--input", CLIFixtures.sentences.path])
        let rows = outputLines(r.stdout)
        XCTAssertEqual(rows.count, lines.count)
        for (row, text) in zip(rows, lines) {
            let object = parseJSONLine(row)
            XCTAssertEqual(object["text"] as? String, text)
            XCTAssertEqual(Set(object.keys), ["text", "embedding"])
            let e = floats(object["embedding"])
            XCTAssertEqual(e.count, 32)
            XCTAssertTrue(e.allSatisfy(\.isFinite))
        }
        // The escaping itself: quotes, backslash and tab escaped; non-ASCII kept as UTF-8.
        XCTAssertTrue(rows[4].hasPrefix(#"{"text":"zzz qqq \"ok\" (fine)","embedding":["#), String(rows[4]))
        XCTAssertTrue(rows[5].hasPrefix(#"{"text":"it\twas \\ ok 😀 “fine” 中 end","embedding":["#), String(rows[5]))
        XCTAssertTrue(rows[3].hasPrefix(#"{"text":"Naïve CAFÉ 2024?","#), String(rows[3]))
    }

    func testEmbedEscapesControlCharacters() throws {
        let input = try write("ctl.txt", Data("a\u{01}b\u{7F}c\r\n".utf8))
        let r = runOK(["embed", "--model", try SharedModel.tinyPath(), "--input", input])
        XCTAssertTrue(r.stdout.hasPrefix(#"{"text":"a\u0001b\u007fc","#), r.stdout)
        XCTAssertEqual(parseJSONLine(outputLines(r.stdout)[0])["text"] as? String, "a\u{01}b\u{7F}c")
    }

    func testNormalizeGivesUnitNorm() throws {
        let plain = try embed([])
        for row in try embed(["--normalize"]) + (try embed(["--normalize", "--pooling", "mean"])) {
            let e = floats(row["embedding"])
            let norm = e.reduce(0) { $0 + $1 * $1 }.squareRoot()
            XCTAssertEqual(norm, 1, accuracy: unitNormTolerance)
        }
        let norm0 = floats(plain[0]["embedding"]).reduce(0) { $0 + $1 * $1 }.squareRoot()
        XCTAssertGreaterThan(abs(norm0 - 1), 0.01, "without --normalize the tiny model's embeddings are not unit length")
    }

    func testPoolingModesDiffer() throws {
        let cls = try embed(["--pooling", "cls"]), mean = try embed(["--pooling", "mean"]), own = try embed([])
        XCTAssertEqual(floats(cls[0]["embedding"]), floats(own[0]["embedding"]), "tiny-bert has no sentence-transformers files: CLS pooling")
        XCTAssertNotEqual(floats(cls[0]["embedding"]), floats(mean[0]["embedding"]))
    }

    func testPretokenizedMatchesText() throws {
        let model = try SharedModel.tinyPath()
        let ids = runOK(["tokenize", "--model", model, "--input", CLIFixtures.sentences.path]).stdout
        let idsFile = try write("ids.txt", ids)
        let fromIds = runOK(["embed", "--model", model, "--input", idsFile, "--pretokenized"]).stdout
        let fromText = runOK(["embed", "--model", model, "--input", CLIFixtures.sentences.path]).stdout
        func embeddings(_ s: String) -> [String] {
            outputLines(s).map { line in String(line[line.range(of: "\"embedding\":")!.lowerBound...]) }
        }
        XCTAssertEqual(embeddings(fromIds), embeddings(fromText))
        XCTAssertEqual(outputLines(fromIds).count, 6)
        XCTAssertEqual(parseJSONLine(outputLines(fromIds)[0])["text"] as? String, "2 52 58 54 60 43 3")
    }

    func testBatchSizeDoesNotChangeResults() throws {
        let one = try embed(["--batch-size", "1"]), many = try embed(["--batch-size", "4"])
        for (a, b) in zip(one, many) {
            XCTAssertEqual(maxAbsDiff(floats(a["embedding"]).map(Float.init), floats(b["embedding"]).map(Float.init)), 0,
                           accuracy: 1e-5, "padding in a batch must not change an embedding beyond float rounding")
        }
    }

    func testOutputFileIsWrittenAtomically() throws {
        let model = try SharedModel.tinyPath()
        let out = outPath("emb.jsonl")
        let r = runOK(["embed", "--model", model, "--input", CLIFixtures.sentences.path, "--out", out, "--threads", "2"])
        XCTAssertEqual(r.stdout, "")
        let written = try String(contentsOfFile: out, encoding: .utf8)
        let toStdout = runOK(["embed", "--model", model, "--input", CLIFixtures.sentences.path]).stdout
        XCTAssertEqual(written, toStdout)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: outDir.path), ["emb.jsonl"])
    }

    /// HF pipeline's record plus every class: {"text","label","score","probs":{name: p}},
    /// classes in class order, probabilities a softmax (positive, summing to 1).
    func testPredictLabelScoreAndNamedProbs() throws {
        let out = outPath("pred.jsonl")
        runOK(["predict", "--model", try SharedModel.tinyPath(), "--input", CLIFixtures.sentences.path, "--out", out])
        let text = try String(contentsOfFile: out, encoding: .utf8)
        let rows = outputLines(text).map { parseJSONLine($0) }
        XCTAssertEqual(rows.count, 6)
        let labels = ["negative", "neutral", "positive"]
        for (line, row) in zip(outputLines(text), rows) {
            XCTAssertEqual(Set(row.keys), ["text", "label", "score", "probs"])
            XCTAssertTrue(line.contains(#","probs":{"negative":"#) && line.contains(#","neutral":"#), String(line))
            let label = try XCTUnwrap(row["label"] as? String)
            XCTAssertTrue(labels.contains(label), label)
            let byName = try XCTUnwrap(row["probs"] as? [String: NSNumber], String(line))
            XCTAssertEqual(Set(byName.keys), Set(labels))
            let probs = labels.map { byName[$0]!.doubleValue }
            XCTAssertEqual(probs.reduce(0, +), 1, accuracy: probabilitySumTolerance)
            XCTAssertTrue(probs.allSatisfy { $0 > 0 && $0 < 1 })
            XCTAssertEqual(labels[probs.indices.max { probs[$0] < probs[$1] }!], label)
            XCTAssertEqual(try XCTUnwrap((row["score"] as? NSNumber)?.doubleValue), probs.max()!, accuracy: 1e-7)
        }
        XCTAssertEqual(rows.compactMap { $0["text"] as? String }.first, "The movie was great!")
    }
}

final class BenchTests: CLITestCase {
    func testLatencyJSON() throws {
        let r = runOK(["bench", "latency", "--model", try SharedModel.tinyPath(), "--batch-size", "1,2", "--seq", "8",
                       "--threads", "1", "--iters", "2", "--warmup", "1", "--json"])
        let parsed = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
        let rows = try XCTUnwrap(parsed as? [[String: Any]], r.stdout)
        XCTAssertEqual(rows.count, 2)
        XCTAssertEqual(rows.compactMap { $0["batch"] as? Int }, [1, 2])
        for row in rows {
            XCTAssertEqual(row["seq"] as? Int, 8)
            XCTAssertEqual(row["threads"] as? Int, 1)
            XCTAssertEqual(row["iters"] as? Int, 2)
            for key in ["median_ms", "p90_ms", "p99_ms", "seq_per_s"] {
                let v = try XCTUnwrap((row[key] as? NSNumber)?.doubleValue, "missing \(key)")
                XCTAssertTrue(v.isFinite && v > 0, "\(key) = \(v)")
            }
        }
    }

    /// Several models take turns: one row per model and configuration, each with its own
    /// passes, the model's path, and the speed-up over the first model.
    func testLatencyComparesModelsInTurns() throws {
        let tiny = try SharedModel.tinyPath()
        let r = runOK(["bench", "latency", "--model", tiny, "--model", tiny, "--batch-size", "1", "--seq", "8",
                       "--iters", "4", "--rounds", "3", "--warmup", "1", "--json"])
        let rows = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]], r.stdout)
        XCTAssertEqual(rows.count, 2)
        XCTAssertEqual(rows.compactMap { $0["model"] as? String }, [tiny, tiny])
        XCTAssertEqual(rows.compactMap { $0["iters"] as? Int }, [4, 4])
        XCTAssertEqual((rows[0]["speedup_vs_first"] as? NSNumber)?.doubleValue, 1.0)
        let other = try XCTUnwrap((rows[1]["speedup_vs_first"] as? NSNumber)?.doubleValue)
        XCTAssertTrue(other.isFinite && other > 0, "\(other)")
        let table = runOK(["bench", "latency", "--model", tiny, "--model", tiny, "--batch-size", "1", "--seq", "8", "--iters", "2"])
        XCTAssertTrue(table.stdout.contains("2 model(s) taking turns, 5 rounds") && table.stdout.contains("speed-up"), table.stdout)
        runFails(["bench", "latency", "--model", tiny, "--rounds", "0", "--iters", "1"], contains: ["--rounds 0"])
    }

    func testLatencySeqBeyondPositionsFails() throws {
        runFails(["bench", "latency", "--model", try SharedModel.tinyPath(), "--seq", "65", "--iters", "1", "--json"],
                 contains: ["--seq 65", "64 positions"])
    }

    func testTrainStepJSON() throws {
        let r = runOK(["bench", "train-step", "--model", try SharedModel.tinyPath(), "--batch-size", "2", "--seq", "8",
                       "--threads", "1", "--labels", "3", "--warmup", "1", "--iters", "2", "--json"])
        let rows = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]], r.stdout)
        XCTAssertEqual(rows.count, 1)
        let row = rows[0]
        XCTAssertEqual(row["batch"] as? Int, 2)
        XCTAssertEqual(row["seq"] as? Int, 8)
        XCTAssertEqual(row["threads"] as? Int, 1)
        XCTAssertEqual(row["iters"] as? Int, 2)
        XCTAssertEqual(row["labels"] as? Int, 3)
        for key in ["median_ms", "p90_ms", "seq_per_s", "loss_first", "loss_last"] {
            let v = try XCTUnwrap((row[key] as? NSNumber)?.doubleValue, "missing \(key)")
            XCTAssertTrue(v.isFinite && v > 0, "\(key) = \(v)")
        }
    }

    func testTrainStepSeqBeyondPositionsFails() throws {
        runFails(["bench", "train-step", "--model", try SharedModel.tinyPath(), "--seq", "65", "--iters", "1"],
                 contains: ["--seq 65", "64 positions"])
    }

    func testTokenizerThroughputJSON() throws {
        let r = runOK(["bench", "tokenizer", "--model", try SharedModel.tinyPath(), "--input", CLIFixtures.sentences.path,
                       "--repeats", "2", "--json"])
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
        XCTAssertEqual(object["lines"] as? Int, 6)
        // 6 lines tokenized twice; ids per line from sentences.ids (special tokens included or not: > 0).
        XCTAssertGreaterThan((object["tokens"] as? Int) ?? 0, 0)
        XCTAssertNotNil(object["tokens_per_s"])
        // Small inputs get more passes until the timed work lasts long enough to mean something.
        XCTAssertGreaterThanOrEqual((object["repeats"] as? Int) ?? 0, 2)
        XCTAssertGreaterThanOrEqual((object["seconds"] as? Double) ?? 0, 0.5, r.stdout)
    }
}
