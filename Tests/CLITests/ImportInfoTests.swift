// kd import / info end to end: the tiny HF model, every weight layout, and a Distillery
// file fed back to `kd import`.
import Foundation
import TestSupport
import XCTest

final class ImportInfoTests: CLITestCase {
    /// Parameters of the tiny-bert fixture, counted by hand from config.json:
    /// embeddings 95·32 + 64·32 + 2·32 + 2·32 = 5216; per layer 4·(32·32+32) + 2·32
    /// + (32·64+64) + (64·32+32) + 2·32 = 8544, two layers; pooler 32·32+32; classifier 3·32+3.
    static let tinyParameterCount = 5216 + 2 * 8544 + 1056 + 99

    func testImportHFDirectoryAndInfo() throws {
        let out = outPath("t.h5")
        let r = runOK(["import", CLIFixtures.tinyBert.path, "--out", out])
        XCTAssertTrue(r.stdout.contains("imported"), r.stdout)
        XCTAssertTrue(r.stdout.contains("2 layers, hidden 32, 4 heads, FFN 64, vocab 95"), r.stdout)
        XCTAssertTrue(r.stdout.contains("\(Self.tinyParameterCount) parameters"), r.stdout)
        XCTAssertTrue(r.stdout.contains("classifier(3: negative,neutral,positive)"), r.stdout)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out))
        // Only the output in the directory: the temporary file was renamed, not left beside it.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: outDir.path), ["t.h5"])

        let info = runOK(["info", out, "--tensors"])
        XCTAssertTrue(info.stdout.contains("distillery-teacher"), info.stdout)
        XCTAssertTrue(info.stdout.contains("architecture: BERT encoder, 2 layers, hidden 32, heads 4/4, FFN 64/64, positions 64, vocab 95"), info.stdout)
        XCTAssertTrue(info.stdout.contains("labels: negative, neutral, positive"), info.stdout)
        XCTAssertTrue(info.stdout.contains("parameters: \(Self.tinyParameterCount) in 41 tensors"), info.stdout)
        for (name, shape) in [("embeddings.word_embeddings.weight", "[95, 32]"),
                              ("encoder.layer.1.attention.self.query.bias", "[32]"),
                              ("encoder.layer.0.intermediate.dense.weight", "[64, 32]"),
                              ("pooler.dense.weight", "[32, 32]"),
                              ("classifier.weight", "[3, 32]")] {
            let row = info.stdout.split(separator: "\n").first { $0.split(separator: " ").first.map(String.init) == name }
            XCTAssertNotNil(row, "info does not list \(name):\n\(info.stdout)")
            XCTAssertTrue(row?.hasSuffix(shape) ?? false, "\(name) should have shape \(shape): \(row ?? "")")
        }
    }

    /// A model file reached through a symbolic link (as setups link a shared teacher.h5) is
    /// read whole: the size check measures the file, not the link.
    func testSymlinkedModelFileIsRead() throws {
        let link = temp.appendingPathComponent("linked.h5").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: try SharedModel.tinyPath())
        let r = runOK(["info", link])
        XCTAssertFalse(r.stderr.contains("truncated"), r.stderr)
        runOK(["embed", "--model", link], stdin: Data("a sentence\n".utf8))
    }

    func testInfoOnSafetensorsSource() throws {
        let r = runOK(["info", CLIFixtures.tinyBert.appendingPathComponent("model.safetensors").path, "--tensors"])
        XCTAssertTrue(r.stdout.contains("safetensors"), r.stdout)
        XCTAssertTrue(r.stdout.contains("parameters: \(Self.tinyParameterCount) in 41 tensors"), r.stdout)
        XCTAssertTrue(r.stdout.contains("encoder.layer.1.output.LayerNorm.bias"), r.stdout)
    }

    /// The same weights in every layout WeightIO reads give byte-identical embeddings.
    func testEveryLayoutGivesIdenticalEmbeddings() throws {
        let input = try write("in.txt", "the good\nis bad.\na b c d e f g h i j k l\n")
        var outputs: [String: String] = [:]
        for source in ["model.safetensors", "flat.h5", "nested.h5", "tf_model.h5"] {
            let model = outPath("\(source).kd.h5")
            runOK(["import", CLIFixtures.weightio.appendingPathComponent(source).path,
                   "--config", CLIFixtures.weightioConfig.path, "--vocab", CLIFixtures.weightioVocab.path, "--out", model])
            let embed = runOK(["embed", "--model", model, "--input", input])
            XCTAssertEqual(outputLines(embed.stdout).count, 3, "\(source): \(embed.stdout)")
            for line in outputLines(embed.stdout) {
                XCTAssertEqual(floats(parseJSONLine(line)["embedding"]).count, 8, "\(source): hidden size 8")
            }
            outputs[source] = embed.stdout
        }
        let reference = outputs["model.safetensors"]!
        XCTAssertFalse(reference.isEmpty)
        for (source, text) in outputs {
            XCTAssertEqual(text, reference, "\(source) embeddings differ from model.safetensors")
        }
    }

    /// `kd import` of a Distillery file keeps config, vocabulary, settings and weights.
    func testImportOfDistilleryFileRoundTrips() throws {
        let first = outPath("first.h5"), second = outPath("second.h5")
        runOK(["import", CLIFixtures.tinyBert.path, "--out", first])
        let r = runOK(["import", first, "--out", second])
        XCTAssertTrue(r.stdout.contains("[distillery]"), r.stdout)
        func stripName(_ s: String) -> String { s.split(separator: "\n").dropFirst().joined(separator: "\n") }
        let infoA = runOK(["info", first]).stdout, infoB = runOK(["info", second]).stdout
        XCTAssertEqual(stripName(infoA), stripName(infoB))
        let a = runOK(["embed", "--model", first, "--input", CLIFixtures.sentences.path]).stdout
        let b = runOK(["embed", "--model", second, "--input", CLIFixtures.sentences.path]).stdout
        XCTAssertEqual(a, b)
        let pa = runOK(["predict", "--model", first, "--input", CLIFixtures.sentences.path]).stdout
        let pb = runOK(["predict", "--model", second, "--input", CLIFixtures.sentences.path]).stdout
        XCTAssertEqual(pa, pb)
    }

    /// A directory import over an existing output replaces it.
    func testImportOverwritesExistingOutput() throws {
        let out = outPath("t.h5")
        try Data("old".utf8).write(to: URL(fileURLWithPath: out))
        runOK(["import", CLIFixtures.tinyBert.path, "--out", out])
        runOK(["info", out])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: outDir.path), ["t.h5"])
    }
}
