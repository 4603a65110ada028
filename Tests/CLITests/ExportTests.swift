// kd export end to end: safetensors and GGUF exports of the tiny model, their import back,
// the F16 fallback for rows that are not whole blocks, and bad input.
import Foundation
import TestSupport
import WeightIO
import XCTest

final class ExportCLITests: CLITestCase {
    /// Cosine of the tiny model's embeddings after a Q8_0 round trip: weights move by at
    /// most 0.45% of each block's max, far inside this bound on 32-wide states.
    static let q8MinCosine = 0.999
    /// Q4_0 moves weights by up to 13% of a block's max: only a loose sanity bound.
    static let q4MinCosine = 0.9

    func embed(_ model: String, _ input: String) -> [[Double]] {
        outputLines(runOK(["embed", "--model", model, "--input", input]).stdout).map { floats(parseJSONLine($0)["embedding"]) }
    }

    func cosine(_ a: [Double], _ b: [Double]) -> Double {
        let dot = zip(a, b).map(*).reduce(0, +)
        return dot / (a.map { $0 * $0 }.reduce(0, +).squareRoot() * b.map { $0 * $0 }.reduce(0, +).squareRoot())
    }

    func testSafetensorsExportImportsBackIdentically() throws {
        let tiny = try SharedModel.tinyPath()
        let dir = outPath("tiny-hf")
        let r = runOK(["export", "--model", tiny, "--format", "safetensors", "--out", dir])
        XCTAssertTrue(r.stdout.contains("exported"), r.stdout)
        let files = Set(try FileManager.default.subpathsOfDirectory(atPath: dir))
        for f in ["model.safetensors", "config.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json",
                  "modules.json", "1_Pooling/config.json", "sentence_bert_config.json"] {
            XCTAssertTrue(files.contains(f), "missing \(f) in \(files.sorted())")
        }
        let config = try String(contentsOfFile: dir + "/config.json", encoding: .utf8)
        XCTAssertTrue(config.contains("BertForSequenceClassification"), config)
        let back = outPath("back.h5")
        runOK(["import", dir, "--out", back])
        let input = CLIFixtures.sentences.path
        XCTAssertEqual(runOK(["embed", "--model", back, "--input", input]).stdout, runOK(["embed", "--model", tiny, "--input", input]).stdout)
        XCTAssertEqual(runOK(["predict", "--model", back, "--input", input]).stdout, runOK(["predict", "--model", tiny, "--input", input]).stdout)
    }

    func testGGUFExportsImportBack() throws {
        let tiny = try SharedModel.tinyPath()
        let input = CLIFixtures.sentences.path
        let reference = embed(tiny, input)
        var sizes: [String: Int] = [:]
        for type in ["f32", "f16", "q8_0", "q4_0"] {
            let gguf = outPath("tiny-\(type).gguf")
            let r = runOK(["export", "--model", tiny, "--format", "gguf", "--type", type, "--out", gguf])
            XCTAssertTrue(r.stdout.contains("left out pooler.dense.weight"), r.stdout)
            sizes[type] = (try FileManager.default.attributesOfItem(atPath: gguf)[.size] as? NSNumber)?.intValue
            let back = outPath("tiny-\(type).h5")
            runOK(["import", gguf, "--out", back])
            let got = embed(back, input)
            XCTAssertEqual(got.count, reference.count)
            if type == "f32" { XCTAssertEqual(got, reference, "F32 GGUF round trip must be exact") }
            let minimum = type == "q4_0" ? Self.q4MinCosine : Self.q8MinCosine
            for (a, b) in zip(got, reference) { XCTAssertGreaterThanOrEqual(cosine(a, b), minimum, type) }
        }
        XCTAssertLessThan(sizes["q8_0"]!, sizes["f16"]!)
        XCTAssertLessThan(sizes["f16"]!, sizes["f32"]!)
        XCTAssertLessThan(sizes["q4_0"]!, sizes["q8_0"]!)
    }

    func testONNXExportHasTheGraphsInterface() throws {
        let tiny = try SharedModel.tinyPath()
        let path = temp.appendingPathComponent("tiny.onnx").path
        let r = runOK(["export", "--model", tiny, "--format", "onnx", "--out", path])
        XCTAssertTrue(r.stdout.contains("outputs: last_hidden_state, sentence_embedding, logits; opset 17"), r.stdout)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        XCTAssertEqual(Array(bytes.prefix(2)), [0x08, 0x08], "ModelProto.ir_version = 8 first")
        let text = String(decoding: bytes, as: UTF8.self)
        for name in ["input_ids", "attention_mask", "token_type_ids", "LayerNormalization", "Erf", "pooler.dense.weight_t", "classifier.bias"] {
            XCTAssertTrue(text.contains(name), "\(name) not in the ONNX file")
        }
        runFails(["export", "--model", tiny, "--format", "onnx", "--type", "f16", "--out", outPath("x.onnx")], contains: ["--type f16", "onnx exports are f32"])
    }

    func testRowsNotWholeBlocksFallBackToF16() throws {
        let model = outPath("w.h5")
        runOK(["import", CLIFixtures.weightio.appendingPathComponent("model.safetensors").path,
               "--config", CLIFixtures.weightioConfig.path, "--vocab", CLIFixtures.weightioVocab.path, "--out", model])
        let r = runOK(["export", "--model", model, "--format", "gguf", "--type", "q4_0", "--out", outPath("w.gguf")])
        XCTAssertTrue(r.stdout.contains("stored as F16 instead of Q4_0"), r.stdout)
        runOK(["import", outPath("w.gguf"), "--out", outPath("w2.h5")])
    }

    func testBadFlagsAndExistingOutput() throws {
        let tiny = try SharedModel.tinyPath()
        var r = runFails(["export", "--model", tiny, "--format", "tflite", "--out", outPath("x")], contains: ["--format 'tflite'", "safetensors, gguf, onnx"])
        XCTAssertEqual(r.status, 2)
        r = runFails(["export", "--model", tiny, "--format", "gguf", "--type", "q5_k", "--out", outPath("x")], contains: ["--type 'q5_k'", "q8_0"])
        XCTAssertEqual(r.status, 2)
        runFails(["export", "--model", tiny, "--format", "safetensors", "--type", "q8_0", "--out", outPath("x")], contains: ["--type q8_0", "gguf"])
        let existing = outPath("taken.gguf")
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: existing))
        let failed = runKD(["export", "--model", tiny, "--format", "gguf", "--out", existing])
        XCTAssertEqual(failed.status, 1)
        XCTAssertTrue(failed.stderr.contains("already exists — pass --force"), failed.stderr)
        XCTAssertEqual(try String(contentsOfFile: existing, encoding: .utf8), "keep me")
        runOK(["export", "--model", tiny, "--format", "gguf", "--out", existing, "--force"])
        XCTAssertTrue(GGUFFile.hasMagic(URL(fileURLWithPath: existing)))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: outDir.path), ["taken.gguf"])
    }

    func testBadGGUFImports() throws {
        let tiny = try SharedModel.tinyPath()
        let good = temp.appendingPathComponent("good.gguf")
        runOK(["export", "--model", tiny, "--format", "gguf", "--out", good.path])
        let bytes = try Data(contentsOf: good)
        func importFails(_ data: Data, _ needles: [String]) throws {
            let path = try write("bad.gguf", data)
            runFails(["import", path, "--out", outPath("x.h5")], contains: ["bad.gguf"] + needles)
        }
        var magic = bytes; magic[0] = 0x48
        try importFails(magic, ["magic", "not a GGUF file"])
        var version = bytes; version[4] = 9
        try importFails(version, ["GGUF version 9"])
        try importFails(bytes.dropLast(1000), ["runs past", "truncated"])
        var file = try GGUFFile.read(good)
        let index = file.metadata.firstIndex { $0.key == "tokenizer.ggml.tokens" }!
        file.metadata[index].value = .strings(Array(file["tokenizer.ggml.tokens"]!.arrayValue!.dropLast().map { $0.stringValue! }))
        let types = file.metadata.firstIndex { $0.key == "tokenizer.ggml.token_type" }!
        file.metadata[types].value = .int32s(Array(file["tokenizer.ggml.token_type"]!.arrayValue!.dropLast().map { Int32($0.intValue!) }))
        try importFails(file.serialized(), ["tokenizer.ggml.tokens", "94 tokens", "token_embd.weight has 95 rows"])
    }
}
