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
            XCTAssertTrue(r.stdout.contains("classifier head as llama.cpp's rank head"), r.stdout)
            sizes[type] = (try FileManager.default.attributesOfItem(atPath: gguf)[.size] as? NSNumber)?.intValue
            let back = outPath("tiny-\(type).h5")
            runOK(["import", gguf, "--out", back])
            let got = embed(back, input)
            XCTAssertEqual(got.count, reference.count)
            if type == "f32" {
                XCTAssertEqual(got, reference, "F32 GGUF round trip must be exact")
                XCTAssertEqual(runOK(["predict", "--model", back, "--input", input]).stdout,
                               runOK(["predict", "--model", tiny, "--input", input]).stdout, "the classifier head (cls, cls.output) comes back")
            }
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
        runFails(["export", "--model", tiny, "--format", "onnx", "--type", "f16", "--out", outPath("x.onnx")],
                 contains: ["--type f16 does not apply to --format onnx", "f32, int8, int4"])
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
        runFails(["export", "--model", tiny, "--format", "safetensors", "--type", "q8_0", "--out", outPath("x")], contains: ["--type q8_0", "safetensors", "use f32"])
        for (format, type) in [("gguf", "int8"), ("gguf", "int4"), ("onnx", "q4_0"), ("onnx", "q8_0"), ("safetensors", "int4")] {
            r = runFails(["export", "--model", tiny, "--format", format, "--type", type, "--out", outPath("x")],
                         contains: ["--type \(type) does not apply to --format \(format)"])
            XCTAssertEqual(r.status, 2)
        }
        r = runFails(["export", "--model", tiny, "--format", "onnx", "--type", "int2", "--out", outPath("x")], contains: ["--type 'int2'", "int8", "int4"])
        XCTAssertEqual(r.status, 2)
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

    /// A path in the test's scratch directory (outside `outDir`, which failing runs must leave empty).
    func scratch(_ name: String) -> String { temp.appendingPathComponent(name).path }

    func testForceReplacesAnExistingDirectoryAndLeavesNoTemporaries() throws {
        let tiny = try SharedModel.tinyPath()
        let dir = outPath("hf")
        runOK(["export", "--model", tiny, "--format", "safetensors", "--out", dir])
        try Data("stale".utf8).write(to: URL(fileURLWithPath: dir + "/stale.txt"))
        let refused = runKD(["export", "--model", tiny, "--format", "safetensors", "--out", dir])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("already exists — pass --force"), refused.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/stale.txt"), "a refused export leaves the old directory alone")
        runOK(["export", "--model", tiny, "--format", "safetensors", "--out", dir, "--force"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/stale.txt"), "--force replaces the whole directory")
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/model.safetensors"))
        runOK(["export", "--model", tiny, "--format", "onnx", "--out", dir, "--force"])   // a file over a directory
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: outDir.path), ["hf"], "no .tmp / .old / .partial left")
    }

    func testKdQuantizedFilesExportTheirOwnWeights() throws {
        let tiny = try SharedModel.tinyPath()
        let int8 = scratch("tiny-int8.h5"), int4 = scratch("tiny-int4.h5"), int4asym = scratch("tiny-int4a.h5")
        runOK(["quantize", "--model", tiny, "--scheme", "int8-dynamic", "--out", int8])
        runOK(["quantize", "--model", tiny, "--scheme", "int4-g32", "--out", int4])
        runOK(["quantize", "--model", tiny, "--scheme", "int4-g32-asym", "--out", int4asym])
        var r = runOK(["export", "--model", int8, "--format", "gguf", "--type", "q8_0", "--out", scratch("q8.gguf")])
        XCTAssertTrue(r.stdout.contains("kd-quantized weights taken into Q8_0 blocks as stored"), r.stdout)
        XCTAssertTrue(r.stdout.contains("rounded to fp16"), r.stdout)
        r = runOK(["export", "--model", int4, "--format", "gguf", "--type", "q4_0", "--out", scratch("q4.gguf")])
        XCTAssertTrue(r.stdout.contains("bit-exact"), r.stdout)
        // Q4_0 carries int4-g32 exactly: the import (dequantized Q4_0) equals the int4 file's
        // dequantized weights, so fp32 runs of both agree to the bit.
        runOK(["import", scratch("q4.gguf"), "--out", scratch("q4.h5")])
        let input = CLIFixtures.sentences.path
        runOK(["export", "--model", int4, "--format", "gguf", "--type", "f32", "--out", scratch("int4-deq.gguf")])
        runOK(["import", scratch("int4-deq.gguf"), "--out", scratch("int4-deq.h5")])
        XCTAssertEqual(runOK(["embed", "--model", scratch("q4.h5"), "--input", input]).stdout,
                       runOK(["embed", "--model", scratch("int4-deq.h5"), "--input", input]).stdout)
        r = runOK(["export", "--model", int8, "--format", "onnx", "--type", "int8", "--out", scratch("i8.onnx")])
        XCTAssertTrue(r.stdout.contains("taken from the file as stored, 0 quantized here"), r.stdout)
        r = runOK(["export", "--model", int4asym, "--format", "onnx", "--type", "int4", "--out", scratch("i4.onnx")])
        XCTAssertTrue(r.stdout.contains("taken from the file as stored, 0 quantized here"), r.stdout)
        let text = String(decoding: try Data(contentsOf: URL(fileURLWithPath: scratch("i4.onnx"))), as: UTF8.self)
        XCTAssertTrue(text.contains("MatMulNBits") && text.contains("com.microsoft") && text.contains("weight_zero_points"))
        // A layout that does not match is refused, naming the tensor; nothing is written.
        runFails(["export", "--model", int4, "--format", "gguf", "--type", "q8_0", "--out", outPath("bad.gguf")],
                 contains: ["cannot go into Q8_0 blocks", "int4-g32-sym", "--type q4_0"])
        runFails(["export", "--model", int4asym, "--format", "gguf", "--type", "q4_0", "--out", outPath("bad.gguf")],
                 contains: ["cannot go into Q4_0 blocks", "int4-g32-asym"])
        runFails(["export", "--model", int8, "--format", "gguf", "--type", "q4_0", "--out", outPath("bad.gguf")],
                 contains: ["cannot go into Q4_0 blocks", "it is int8"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: outPath("bad.gguf")))
    }
}
