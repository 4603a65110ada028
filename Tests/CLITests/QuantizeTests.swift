// `kd quantize` end to end on the tiny fixture: a quantized file runs as is with info,
// embed, predict, eval, label and bench latency; the sensitivity table and the --max-drop
// search report what they tried and write the best model; and every bad input of the
// issue is one `kd: error:` line, a non-zero exit and nothing written.
import DistilleryTensor
import Foundation
import TestSupport
import WeightIO
import XCTest

final class QuantizeTests: CLITestCase {
    /// The tiny classifier fine-tuned on the toy set (LabelTests' teacher).
    private func classifier() throws -> String { try LabelTeachers.path(LabelTeachers.first) }

    func testQuantizedFileRunsWithEveryInferenceCommand() throws {
        let model = try classifier(), data = try ToyData.path()
        for scheme in ["int8-dynamic", "int4-g32", "bf16"] {
            let q = outPath("q-\(scheme).h5")
            let r = runOK(["quantize", "--model", model, "--scheme", scheme, "--out", q, "--threads", "1"])
            XCTAssertTrue(r.stdout.contains("with \(scheme)"), r.stdout)
            let info = runOK(["info", q, "--tensors"]).stdout
            XCTAssertTrue(info.contains("quantized: "), info)
            XCTAssertTrue(info.contains("bits per quantized weight"), info)
            // Without --tensors the quantized weights are not dequantized: the same lines.
            XCTAssertEqual(runOK(["info", q]).stdout, info.components(separatedBy: "\n").filter { !$0.hasPrefix("  ") }
                .joined(separator: "\n").replacingOccurrences(of: " tensors\n", with: " tensors (list them with --tensors)\n"), scheme)
            let eval = runOK(["eval", "--model", q, "--data", data, "--threads", "1", "--teacher", model]).stdout
            XCTAssertTrue(eval.contains("macro-F1"), eval)
            let lines = outputLines(runOK(["predict", "--model", q, "--threads", "1"], stdin: Data("good movie\nterrible plot\n".utf8)).stdout)
            XCTAssertEqual(lines.count, 2)
            XCTAssertNotNil(parseJSONLine(lines[0])["label"] as? String)
            XCTAssertEqual(outputLines(runOK(["embed", "--model", q, "--threads", "1"], stdin: Data("a b c\n".utf8)).stdout).count, 1)
        }
        let q = outPath("q-int8-dynamic.h5")
        runOK(["bench", "latency", "--model", model, "--model", q, "--batch-size", "1", "--seq", "8", "--threads", "1",
               "--warmup", "0", "--iters", "2", "--rounds", "1"])
        runOK(["label", "--teacher", q, "--data", data, "--out", outPath("labels.h5"), "--threads", "1", "--max-length", "16"])
    }

    func testQuantizedLogitsStayCloseToFp32() throws {
        let model = try classifier(), data = try ToyData.path()
        let q = outPath("q.h5")
        runOK(["quantize", "--model", model, "--scheme", "int8-dynamic", "--out", q, "--threads", "1"])
        let report = runOK(["eval", "--model", q, "--data", data, "--threads", "1", "--teacher", model]).stdout
        // int8 moves class probabilities by little: KL(fp32 ‖ int8) well below 0.01 nats.
        let kl = report.split(separator: "\n").first { $0.hasPrefix("mean KL") }.flatMap { Double($0.split(separator: " ")[2]) }
        XCTAssertNotNil(kl, report)
        XCTAssertLessThan(kl ?? 1, 0.01, report)
    }

    func testSensitivityAndMaxDropReportWhatWasTried() throws {
        let model = try classifier(), data = try ToyData.path()
        let q = outPath("mixed.h5")
        let r = runOK(["quantize", "--model", model, "--scheme", "int4-g32", "--out", q, "--data", data, "--max-drop", "0",
                       "--threads", "1", "--json"])
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        let sensitivity = json["sensitivity"] as! [[String: Any]]
        XCTAssertEqual(sensitivity.map { $0["unit"] as! String }.first, "embeddings")
        XCTAssertEqual(sensitivity.count, 1 + 2 * 4 + 1)   // embeddings, 2 layers × 4 units, pooler
        let trials = json["trials"] as! [[String: Any]]
        XCTAssertGreaterThanOrEqual(trials.count, 1)
        let met = json["targetMet"] as! Bool
        XCTAssertTrue(FileManager.default.fileExists(atPath: q), "the best model found is written either way")
        if met {
            XCTAssertLessThanOrEqual((json["written"] as! [String: Any])["drop"] as! Double, 0)
        } else {
            XCTAssertTrue(r.stderr.contains("target was not met"), r.stderr)
        }
        let text = runOK(["quantize", "--model", model, "--scheme", "int8-dynamic", "--out", outPath("s.h5"), "--data", data,
                          "--sensitivity", "--threads", "1"]).stdout
        XCTAssertTrue(text.contains("sensitivity (each unit quantized alone"), text)
        XCTAssertTrue(text.contains("layer.1.ffn.out"), text)
    }

    func testStaticSchemeCalibrates() throws {
        let model = try classifier(), data = try ToyData.path()
        let q = outPath("static.h5")
        runOK(["quantize", "--model", model, "--scheme", "int8-static", "--out", q, "--calibration", data,
               "--calibration-size", "16", "--calibration-method", "percentile", "--threads", "1"])
        XCTAssertTrue(runOK(["info", q]).stdout.contains("static scales"))
        runOK(["eval", "--model", q, "--data", data, "--threads", "1"])
    }

    func testGPTQRoundingWritesAModelThatRunsAndSaysSo() throws {
        let model = try classifier(), data = try ToyData.path()
        let q = outPath("gptq.h5")
        let r = runOK(["quantize", "--model", model, "--scheme", "int4-g32-asym", "--out", q, "--rounding", "gptq",
                       "--calibration", data, "--calibration-size", "16", "--threads", "1"])
        XCTAssertTrue(r.stdout.contains("rounding gptq (16 texts"), r.stdout)
        XCTAssertTrue(r.stderr.contains("gptq: layer.0.qkv rounded against"), r.stderr)
        runOK(["eval", "--model", q, "--data", data, "--threads", "1"])
    }

    func testBadInputs() throws {
        let model = try classifier(), data = try ToyData.path()
        let out = outPath("q.h5")
        func quantize(_ extra: [String]) -> [String] { ["quantize", "--model", model, "--out", out, "--threads", "1"] + extra }
        var r = runFails(quantize(["--scheme", "int5"]), contains: ["--scheme 'int5' is not a known scheme", "int8-dynamic"])
        XCTAssertEqual(r.status, 2)
        runFails(quantize(["--scheme", "int4-g48"]), contains: ["group size 48 is not supported"])
        // tiny-bert's hidden size is 32: groups of 64 do not divide its Q/K/V rows.
        r = runFails(quantize(["--scheme", "int4-g64"]), contains: ["group size 64 does not divide the 32-column rows of", "int4-g32"])
        r = runFails(quantize(["--scheme", "int8-dynamic", "--data", data, "--max-drop=-1"]), contains: ["--max-drop -1.0 must be a non-negative"])
        XCTAssertEqual(r.status, 2)
        runFails(quantize(["--scheme", "int8-dynamic", "--max-drop", "0.5"]), contains: ["--max-drop scores on a dev split", "--data"])
        runFails(quantize(["--scheme", "int8-static"]), contains: ["int8-static needs calibration data", "--calibration"])
        runFails(quantize(["--scheme", "int8-static", "--calibration", temp.appendingPathComponent("nope").path]),
                 contains: ["nope"])
        runFails(["quantize", "--model", model, "--out", model, "--scheme", "bf16"], contains: ["--out is the input model"])

        // Calibration data with no training texts.
        let empty = temp.appendingPathComponent("empty")
        try FileManager.default.copyItem(atPath: data, toPath: empty.path)
        try Data().write(to: empty.appendingPathComponent("train.jsonl"))
        runFails(quantize(["--scheme", "int8-static", "--calibration", empty.path]), contains: ["train.jsonl"])

        // Calibration text the vocabulary cannot read: every token [UNK].
        let foreign = temp.appendingPathComponent("foreign")
        try FileManager.default.copyItem(atPath: data, toPath: foreign.path)
        let rows = (0..<20).map { #"{"id":"x:\#($0)","text":"ЖЖЖ ЩЩЩ ЮЮЮ","label":"positive"}"# }.joined(separator: "\n") + "\n"
        try Data(rows.utf8).write(to: foreign.appendingPathComponent("train.jsonl"))
        runFails(quantize(["--scheme", "int8-static", "--calibration", foreign.path]), contains: ["[UNK]", "another tokenizer"])

        // NaN in a weight of the fp32 model.
        var teacher = try TeacherFile.read(URL(fileURLWithPath: model))
        let i = teacher.tensors.firstIndex { $0.name == "encoder.layer.1.intermediate.dense.weight" }!
        teacher.tensors[i].tensor.data[3] = .nan
        let nanModel = temp.appendingPathComponent("nan.h5")
        try teacher.write(to: nanModel)
        runFails(["quantize", "--model", nanModel.path, "--out", out, "--scheme", "int8-dynamic"],
                 contains: ["nan.h5", "encoder.layer.1.intermediate.dense.weight", "nan"])

        // A quantized file with a negative scale, and one whose values do not match its shape.
        runOK(quantize(["--scheme", "int8-dynamic"]))
        let good = try TeacherFile.read(URL(fileURLWithPath: out))
        try FileManager.default.removeItem(atPath: out)
        let name = "encoder.layer.0.output.dense.weight"
        let q = good.quantized[name]!
        var scales = q.scales
        scales[3] = -0.5
        var broken = good
        broken.quantized[name] = QuantizedTensor(format: q.format, rows: q.rows, columns: q.columns, values: q.values, scales: scales, zeros: q.zeros)
        let brokenPath = temp.appendingPathComponent("broken.h5")
        try broken.write(to: brokenPath)
        runFails(["predict", "--model", brokenPath.path], stdin: Data("hello\n".utf8),
                 contains: ["broken.h5: quantized tensor '\(name)': scale -0.5 at index 3", "quantize the fp32 model again"])
        broken.quantized[name] = QuantizedTensor(format: q.format, rows: q.rows, columns: q.columns, values: q.values, scales: Array(q.scales.dropLast()), zeros: q.zeros)
        try broken.write(to: brokenPath)
        runFails(["eval", "--model", brokenPath.path, "--data", data], contains: ["quantized tensor '\(name)'", "scales for int8"])
        // Quantizing a quantized file is refused.
        broken.quantized[name] = q
        try broken.write(to: brokenPath)
        runFails(["quantize", "--model", brokenPath.path, "--out", out, "--scheme", "int8-dynamic"], contains: ["already quantized"])
    }
}
