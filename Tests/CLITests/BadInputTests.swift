// Bad inputs: every one must give a `kd: error:` line naming the file/line/flag and the
// key fact, a non-zero exit (never a signal), and leave no output or temporary file.
//
// Malformed weight files come from Tests/Fixtures/weightio (made by
// scripts/make_layout_fixtures.py); the rest are made here from the tiny-bert fixture.
import Foundation
import TestSupport
import XCTest

final class BadWeightFileTests: CLITestCase {
    /// `kd import <weightio bad file> --config --vocab --out out/x.h5`, expected to fail.
    func importFails(_ name: String, contains: [String], file: StaticString = #filePath, line: UInt = #line) {
        let path = CLIFixtures.weightio.appendingPathComponent(name).path
        runFails(["import", path, "--config", CLIFixtures.weightioConfig.path, "--vocab", CLIFixtures.weightioVocab.path,
                  "--out", outPath("x.h5")], contains: [path] + contains, file: file, line: line)
    }

    func testTruncatedSafetensors() {
        importFails("bad_truncated.safetensors", contains: ["3 bytes", "truncated"])
    }

    func testHeaderLengthPastEnd() {
        importFails("bad_header_past_end.safetensors", contains: ["header length 1000", "past the end"])
    }

    func testOverlappingOffsets() {
        importFails("bad_overlap.safetensors", contains: ["'w1'", "'w2'", "overlap"])
    }

    func testOutOfBoundsOffsets() {
        importFails("bad_out_of_bounds.safetensors", contains: ["'w'", "[100, 124]", "out of bounds"])
    }

    func testUnknownDtype() {
        importFails("bad_unknown_dtype.safetensors", contains: ["unknown dtype 'Q3'", "'w'"])
    }

    func testNotJSONHeader() {
        importFails("bad_not_json.safetensors", contains: ["JSON"])
    }

    func testNonHDF5FileAsH5() {
        importFails("not_hdf5.h5", contains: ["not an HDF5 file"])
        let path = CLIFixtures.weightio.appendingPathComponent("not_hdf5.h5").path
        runFails(["info", path], contains: [path, "not an HDF5 file"])
        runFails(["embed", "--model", path, "--input", CLIFixtures.sentences.path, "--out", outPath("e.jsonl")],
                 contains: [path, "not an HDF5 file"])
    }

    func testInfoOnCorruptFileAndDirectory() {
        let overlap = CLIFixtures.weightio.appendingPathComponent("bad_overlap.safetensors").path
        runFails(["info", overlap], contains: [overlap, "overlap"])
        runFails(["info", CLIFixtures.tinyBert.path], contains: [CLIFixtures.tinyBert.path, "directory"])
    }

    func testKerasFileMissingListedWeight() {
        importFails("bad_tf_missing_weight.h5", contains: ["pooler/dense/bias", "missing"])
    }

    /// A weight file that is not a Distillery model, given as --model.
    func testSafetensorsAsModel() {
        let path = CLIFixtures.tinyBert.appendingPathComponent("model.safetensors").path
        runFails(["embed", "--model", path, "--input", CLIFixtures.sentences.path, "--out", outPath("e.jsonl")],
                 contains: [path, "kd import"])
    }

    func testMissingMandatoryTensor() throws {
        let dir = try copyTinyBert()
        let weights = dir.appendingPathComponent("model.safetensors")
        var editor = try SafetensorsEditor(weights)
        editor.remove("bert.encoder.layer.1.attention.self.query.bias")
        try editor.write(to: weights)
        runFails(["import", dir.path, "--out", outPath("x.h5")],
                 contains: [weights.path, "missing tensor 'encoder.layer.1.attention.self.query.bias'", "[32]"])
    }

    func testShapeContradictsConfig() throws {
        let dir = try copyTinyBert()
        let configURL = dir.appendingPathComponent("config.json")
        let config = try String(contentsOf: configURL, encoding: .utf8)
        XCTAssertTrue(config.contains("\"hidden_size\": 32"))
        try config.replacingOccurrences(of: "\"hidden_size\": 32", with: "\"hidden_size\": 16")
            .write(to: configURL, atomically: true, encoding: .utf8)
        runFails(["import", dir.path, "--out", outPath("x.h5")],
                 contains: [dir.appendingPathComponent("model.safetensors").path,
                            "'embeddings.word_embeddings.weight'", "[95, 32]", "[95, 16]", "config"])
    }

    func testNaNInWeight() throws {
        let dir = try copyTinyBert()
        let weights = dir.appendingPathComponent("model.safetensors")
        var editor = try SafetensorsEditor(weights)
        editor.setFloat("bert.encoder.layer.0.intermediate.dense.weight", index: 7, to: .nan)
        try editor.write(to: weights)
        runFails(["import", dir.path, "--out", outPath("x.h5")],
                 contains: [weights.path, "'encoder.layer.0.intermediate.dense.weight'", "nan", "index 7"])
    }

    func testInfinityInWeight() throws {
        let dir = try copyTinyBert()
        let weights = dir.appendingPathComponent("model.safetensors")
        var editor = try SafetensorsEditor(weights)
        editor.setFloat("classifier.bias", index: 2, to: -.infinity)
        try editor.write(to: weights)
        runFails(["import", dir.path, "--out", outPath("x.h5")], contains: [weights.path, "'classifier.bias'", "inf"])
    }

    func testUnexpectedTensor() throws {
        let dir = try copyTinyBert()
        let weights = dir.appendingPathComponent("model.safetensors")
        var editor = try SafetensorsEditor(weights)
        editor.entries.append(("bert.encoder.layer.2.attention.self.query.bias",
                               .init(dtype: "F32", shape: [32], bytes: Data(count: 128))))
        try editor.write(to: weights)
        runFails(["import", dir.path, "--out", outPath("x.h5")],
                 contains: [weights.path, "unexpected tensor", "encoder.layer.2.attention.self.query.bias"])
    }
}

final class BadVocabularyAndConfigTests: CLITestCase {
    func testVocabularyWithoutUNK() throws {
        let dir = try copyTinyBert()
        let vocab = dir.appendingPathComponent("vocab.txt")
        let text = try String(contentsOf: vocab, encoding: .utf8)
        try text.replacingOccurrences(of: "[UNK]\n", with: "[UNKNOWN]\n").write(to: vocab, atomically: true, encoding: .utf8)
        runFails(["import", dir.path, "--out", outPath("x.h5")], contains: [vocab.path, "'[UNK]'"])
    }

    func testVocabularySizeDiffersFromConfig() throws {
        let dir = try copyTinyBert()
        let vocab = dir.appendingPathComponent("vocab.txt")
        let lines = try String(contentsOf: vocab, encoding: .utf8).split(separator: "\n")
        try (lines.dropLast().joined(separator: "\n") + "\n").write(to: vocab, atomically: true, encoding: .utf8)
        runFails(["import", dir.path, "--out", outPath("x.h5")], contains: [vocab.path, "94 tokens", "vocab_size is 95"])
    }

    func testVocabFlagWithWrongVocabulary() {
        // The weightio vocabulary (50 tokens) given for the tiny-bert weights (95).
        runFails(["import", CLIFixtures.tinyBert.path, "--vocab", CLIFixtures.weightioVocab.path, "--out", outPath("x.h5")],
                 contains: [CLIFixtures.weightioVocab.path, "50 tokens", "vocab_size is 95"])
    }

    func testSafetensorsWithoutConfig() {
        let path = CLIFixtures.weightio.appendingPathComponent("model.safetensors").path
        runFails(["import", path, "--vocab", CLIFixtures.weightioVocab.path, "--out", outPath("x.h5")],
                 contains: ["config.json", "--config"])
    }

    func testConfigNotJSON() throws {
        let config = try write("config.json", "{ not json")
        runFails(["import", CLIFixtures.tinyBert.path, "--config", config, "--out", outPath("x.h5")],
                 contains: [config, "JSON"])
    }

    func testPredictWithoutClassifier() throws {
        let dir = try copyTinyBertEncoder()
        let model = temp.appendingPathComponent("encoder-only.h5").path
        let imported = runOK(["import", dir.path, "--out", model])
        XCTAssertTrue(imported.stdout.contains("heads: pooler;"), imported.stdout)
        runOK(["embed", "--model", model, "--input", CLIFixtures.sentences.path])  // still embeds
        runFails(["predict", "--model", model, "--input", CLIFixtures.sentences.path, "--out", outPath("p.jsonl")],
                 contains: [model, "no classifier"])
    }
}

final class MissingPathTests: CLITestCase {
    var missing: String { temp.appendingPathComponent("does-not-exist").path }

    func testImportSourceMissing() {
        runFails(["import", missing, "--out", outPath("x.h5")], contains: [missing, "no such file"])
    }

    func testModelMissing() {
        let model = missing + ".h5"
        runFails(["embed", "--model", model, "--input", CLIFixtures.sentences.path, "--out", outPath("e.jsonl")],
                 contains: [model, "no such file", "kd import"])
        runFails(["tokenize", "--model", model, "--input", CLIFixtures.sentences.path], contains: [model, "no such file"])
        runFails(["predict", "--model", model, "--input", CLIFixtures.sentences.path, "--out", outPath("p.jsonl")],
                 contains: [model, "no such file"])
        runFails(["info", model], contains: [model, "no such file"])
    }

    func testInputMissing() throws {
        let input = missing + ".txt"
        runFails(["embed", "--model", try SharedModel.tinyPath(), "--input", input, "--out", outPath("e.jsonl")],
                 contains: [input, "no such file", "--input"])
        runFails(["tokenize", "--model", try SharedModel.tinyPath(), "--input", input], contains: [input, "no such file"])
    }

    func testVocabMissing() {
        let vocab = missing + "/vocab.txt"
        runFails(["import", CLIFixtures.tinyBert.path, "--vocab", vocab, "--out", outPath("x.h5")],
                 contains: [vocab, "no such", "--vocab"])
    }

    func testConfigMissing() {
        let config = missing + "/config.json"
        runFails(["import", CLIFixtures.tinyBert.path, "--config", config, "--out", outPath("x.h5")],
                 contains: [config, "no such", "--config"])
    }

    func testEmbedOutputIntoMissingDirectory() throws {
        let output = temp.appendingPathComponent("nope/emb.jsonl").path
        runFails(["embed", "--model", try SharedModel.tinyPath(), "--input", CLIFixtures.sentences.path, "--out", output],
                 contains: [output, "does not exist"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: temp.appendingPathComponent("nope").path),
                       "kd must not create the missing directory")
    }

    func testImportOutIntoMissingDirectory() {
        let out = temp.appendingPathComponent("nope/x.h5").path
        runFails(["import", CLIFixtures.tinyBert.path, "--out", out], contains: [out, "does not exist"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: temp.appendingPathComponent("nope").path))
    }
}

final class BadInputTextTests: CLITestCase {
    /// Blank lines are texts for embed, predict and tokenize (output stays aligned with the
    /// input); with --pretokenized a line must hold ids, so an empty one names its line.
    func testBlankLinesAreTextsButNotIds() throws {
        let input = try write("in.txt", "first\n\nthird\n")
        let r = runOK(["embed", "--model", try SharedModel.tinyPath(), "--input", input])
        XCTAssertEqual(r.stdout.split(separator: "\n", omittingEmptySubsequences: false).count, 4, r.stdout)   // 3 lines + final newline
        XCTAssertEqual(outputLines(r.stdout).map { parseJSONLine($0)["text"] as? String }, ["first", "", "third"])
        let ids = try write("ids.txt", "2 5 3\n\n2 6 3\n")
        runFails(["embed", "--model", try SharedModel.tinyPath(), "--input", ids, "--pretokenized", "--out", outPath("e.jsonl")],
                 contains: ["\(ids):2", "empty line"])
    }

    func testWhitespaceOnlyLineOnStdin() throws {
        let r = runOK(["tokenize", "--model", try SharedModel.tinyPath()], stdin: Data("a\nb\n \t \n".utf8))
        XCTAssertEqual(r.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).dropLast().last, "2 3")
        XCTAssertEqual(outputLines(r.stdout).count, 3, r.stdout)
    }

    func testEmptyInput() throws {
        let input = try write("in.txt", "")
        runFails(["predict", "--model", try SharedModel.tinyPath(), "--input", input, "--out", outPath("p.jsonl")],
                 contains: [input, "no input lines"])
    }

    func testInvalidUTF8NamesLine() throws {
        let input = try write("in.txt", Data("good\nfine\n".utf8) + Data([0x62, 0xFF, 0xFE, 0x0A]))
        runFails(["embed", "--model", try SharedModel.tinyPath(), "--input", input, "--out", outPath("e.jsonl")],
                 contains: ["\(input):3", "invalid UTF-8"])
        runFails(["tokenize", "--model", try SharedModel.tinyPath()], stdin: Data([0x61, 0x0A, 0xC3, 0x28]),
                 contains: ["<stdin>:2", "invalid UTF-8"])
    }

    func testPretokenizedNonNumber() throws {
        let input = try write("ids.txt", "2 5 x 3\n")
        runFails(["embed", "--model", try SharedModel.tinyPath(), "--input", input, "--pretokenized", "--out", outPath("e.jsonl")],
                 contains: ["\(input):1", "'x'", "token id"])
    }

    func testPretokenizedOutOfVocabulary() throws {
        let input = try write("ids.txt", "2 5 3\n2 95 3\n")
        runFails(["predict", "--model", try SharedModel.tinyPath(), "--input", input, "--pretokenized", "--out", outPath("p.jsonl")],
                 contains: ["\(input):2", "'95'", "0..<95"])
        let negative = try write("neg.txt", "2 -1 3\n")
        runFails(["embed", "--model", try SharedModel.tinyPath(), "--input", negative, "--pretokenized", "--out", outPath("e.jsonl")],
                 contains: ["\(negative):1", "'-1'"])
    }

    func testPretokenizedTooLong() throws {
        let input = try write("ids.txt", Array(repeating: "5", count: 65).joined(separator: " ") + "\n")
        runFails(["embed", "--model", try SharedModel.tinyPath(), "--input", input, "--pretokenized", "--out", outPath("e.jsonl")],
                 contains: ["\(input):1", "65 ids", "64"])
    }
}

final class BadFlagTests: CLITestCase {
    func testMaxLengthAbovePositions() throws {
        let model = try SharedModel.tinyPath()
        runFails(["embed", "--model", model, "--input", CLIFixtures.sentences.path, "--max-length", "65", "--out", outPath("e.jsonl")],
                 contains: ["--max-length 65", "64 positions"])
        runFails(["predict", "--model", model, "--input", CLIFixtures.sentences.path, "--max-length", "65", "--out", outPath("p.jsonl")],
                 contains: ["--max-length 65", "64 positions"])
        runFails(["tokenize", "--model", model, "--input", CLIFixtures.sentences.path, "--max-length", "65"],
                 contains: ["--max-length 65", "64 positions"])
    }

    func testMaxLengthTooSmall() throws {
        runFails(["embed", "--model", try SharedModel.tinyPath(), "--input", CLIFixtures.sentences.path, "--max-length", "1",
                  "--out", outPath("e.jsonl")], contains: ["--max-length 1", "[CLS]"])
    }

    /// Without --max-length, embed uses min(128, the model's positions) rather than failing.
    func testDefaultMaxLengthFitsSmallModel() throws {
        let model = outPath("w.h5")
        runOK(["import", CLIFixtures.weightio.appendingPathComponent("model.safetensors").path,
               "--config", CLIFixtures.weightioConfig.path, "--vocab", CLIFixtures.weightioVocab.path, "--out", model])
        let input = try write("in.txt", "a b c d e f g h i j k l m n o p\n")
        runOK(["embed", "--model", model, "--input", input])
        runOK(["predict", "--model", model, "--input", input])
    }

    func testThreadsZero() throws {
        runFails(["embed", "--model", try SharedModel.tinyPath(), "--input", CLIFixtures.sentences.path, "--threads", "0",
                  "--out", outPath("e.jsonl")], contains: ["--threads 0", "out of range"])
        runFails(["predict", "--model", try SharedModel.tinyPath(), "--input", CLIFixtures.sentences.path, "--threads", "0",
                  "--out", outPath("p.jsonl")], contains: ["--threads 0"])
        runFails(["bench", "latency", "--model", try SharedModel.tinyPath(), "--threads", "0", "--iters", "1"],
                 contains: ["--threads", "'0'", "positive"])
    }

    func testPoolingBogus() throws {
        runFails(["embed", "--model", try SharedModel.tinyPath(), "--input", CLIFixtures.sentences.path, "--pooling", "bogus",
                  "--out", outPath("e.jsonl")], contains: ["--pooling", "'bogus'", "mean, cls"])
    }

    func testBatchSizeZero() throws {
        runFails(["embed", "--model", try SharedModel.tinyPath(), "--input", CLIFixtures.sentences.path, "--batch-size", "0",
                  "--out", outPath("e.jsonl")], contains: ["--batch-size 0"])
    }

    func testBenchListNotNumbers() throws {
        runFails(["bench", "latency", "--model", try SharedModel.tinyPath(), "--batch-size", "1,x", "--iters", "1"],
                 contains: ["--batch-size", "'1,x'"])
    }

    func testUnknownFlagIsAUsageError() {
        let r = runKD(["embed", "--model", "m.h5", "--input", "in.txt", "--frobnicate"])
        XCTAssertFalse(r.signaled)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("--frobnicate"), r.stderr)
    }
}

/// Output paths that are not files: kd must refuse them without touching what is there.
final class BadOutputPathTests: CLITestCase {
    /// A directory holding one file, which must survive the failed run.
    func makeVictim(_ name: String) throws -> URL {
        let dir = temp.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Data("keep".utf8).write(to: dir.appendingPathComponent("keep.txt"))
        return dir
    }

    func assertIntact(_ dir: URL, file: StaticString = #filePath, line: UInt = #line) {
        var isDirectory: ObjCBool = false
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDirectory) && isDirectory.boolValue,
                      "\(dir.path) is no longer a directory", file: file, line: line)
        XCTAssertEqual(try? FileManager.default.contentsOfDirectory(atPath: dir.path), ["keep.txt"],
                       "\(dir.path) changed", file: file, line: line)
    }

    func testEmbedOutputIsExistingDirectory() throws {
        let victim = try makeVictim("victim")
        runFails(["embed", "--model", try SharedModel.tinyPath(), "--input", CLIFixtures.sentences.path, "--out", victim.path],
                 contains: [victim.path, "is a directory", "--out"])
        assertIntact(victim)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: temp.path).sorted(), ["out", "victim"],
                       "no temporary file beside the directory")
    }

    /// `--output ""` once resolved to the working directory and replaced it with a file.
    func testEmptyOutputPathLeavesWorkingDirectoryAlone() throws {
        let cwd = try makeVictim("cwd")
        let r = runKD(["predict", "--model", try SharedModel.tinyPath(), "--input", CLIFixtures.sentences.path, "--out", ""],
                      currentDirectory: cwd)
        XCTAssertFalse(r.signaled)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("--out is empty"), r.stderr)
        assertIntact(cwd)
    }

    func testImportOutIsExistingDirectory() throws {
        let victim = try makeVictim("victim")
        runFails(["import", CLIFixtures.tinyBert.path, "--out", victim.path], contains: [victim.path, "is a directory", "--out"])
        assertIntact(victim)
    }

    func testInputIsDirectory() throws {
        let victim = try makeVictim("victim")
        runFails(["embed", "--model", try SharedModel.tinyPath(), "--input", victim.path, "--out", outPath("e.jsonl")],
                 contains: [victim.path, "is a directory", "--input"])
    }

    /// A failed run over an existing output leaves the old file as it was.
    func testFailedRunKeepsPreviousOutput() throws {
        let out = outPath("e.jsonl")
        try Data("previous\n".utf8).write(to: URL(fileURLWithPath: out))
        let input = try write("in.txt", Data("ok\n".utf8) + Data([0xFF, 0x0A]))
        let r = runKD(["embed", "--model", try SharedModel.tinyPath(), "--input", input, "--out", out])
        XCTAssertFalse(r.signaled)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertEqual(try String(contentsOfFile: out, encoding: .utf8), "previous\n")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: outDir.path), ["e.jsonl"])
    }
}
