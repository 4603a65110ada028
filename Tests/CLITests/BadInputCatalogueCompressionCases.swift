// The bad-input catalogue's rows for the compression commands (kd quantize, kd prune,
// kd export) and the GGUF reader behind kd import/info: hostile flags and hostile files,
// checked like every other row (BadInputCatalogueTests.check).
import Foundation
import TestSupport
import WeightIO
import XCTest

extension BadInputCatalogueTests {
    func compressionCases() throws -> [BadInputCase] {
        let tiny = try SharedModel.tinyPath()
        let negativeEps = try teacherWithConfig("c-neg-eps.h5", "layer_norm_eps", "-1e-12")
        let hugeLayers = try teacherWithConfig("c-huge-layers.h5", "num_hidden_layers", "1099511627776")
        let data = try ToyData.path()
        let q = outPath("q.h5"), p = outPath("p.h5"), g = outPath("e.gguf")
        var cases: [BadInputCase] = []
        func quantize(_ name: String, _ extra: [String], _ needles: [String], model: String? = nil) {
            cases.append(BadInputCase(name: "quantize: \(name)", args: ["quantize", "--model", model ?? tiny, "--out", q] + extra, contains: needles))
        }
        quantize("unknown scheme", ["--scheme", "int3"], ["--scheme", "int3"])
        quantize("group size not offered", ["--scheme", "int4-g48"], ["--scheme", "48"])
        quantize("static without calibration", ["--scheme", "int8-static"], ["--calibration"])
        quantize("negative --max-drop", ["--scheme", "int8-dynamic"] + flagArgs("--max-drop", "-1"), ["--max-drop"])
        quantize("calibration folder missing", ["--scheme", "int8-static", "--calibration", outPath("none")], ["none"])
        quantize("unknown rounding", ["--scheme", "int4-g32", "--rounding", "stochastic"], ["--rounding", "stochastic"])
        quantize("gptq without calibration", ["--scheme", "int4-g32", "--rounding", "gptq"], ["--rounding gptq", "--calibration"])
        quantize("gptq for bf16", ["--scheme", "bf16", "--rounding", "gptq", "--calibration", data], ["--rounding gptq", "bf16"])
        quantize("gptq calibration folder missing", ["--scheme", "int4-g32", "--rounding", "gptq", "--calibration", outPath("none")], ["none"])
        quantize("negative layer_norm_eps", ["--scheme", "int8-dynamic"], [negativeEps, "layer_norm_eps"], model: negativeEps)
        quantize("absurd layer count", ["--scheme", "int8-dynamic"], [hugeLayers, "num_hidden_layers"], model: hugeLayers)
        cases.append(BadInputCase(name: "quantize: output is the input", args: ["quantize", "--model", tiny, "--scheme", "int8-dynamic", "--out", tiny],
                                  contains: ["--out"]))

        func prune(_ name: String, _ extra: [String], _ needles: [String], model: String? = nil) {
            cases.append(BadInputCase(name: "prune: \(name)", args: ["prune", "--model", model ?? tiny] + extra, contains: needles))
        }
        prune("heads ratio ≥ 1", ["--out", p, "--heads", "1.5"], ["--heads"])
        prune("negative ffn ratio", ["--out", p] + flagArgs("--ffn", "-0.2"), ["--ffn"])
        prune("no data for importance", ["--out", p, "--heads", "0.5"], ["--data"])
        prune("importance with an output", ["--out", p, "--importance"], ["--importance"])
        prune("schedule not numbers", ["--out", p, "--schedule", "0.5,x", "--heads", "0.5", "--data", data], ["--schedule"])
        prune("absurd layer count", ["--out", p, "--vocab", data], [hugeLayers, "num_hidden_layers"], model: hugeLayers)

        func export(_ name: String, _ extra: [String], _ needles: [String], model: String? = nil) {
            cases.append(BadInputCase(name: "export: \(name)", args: ["export", "--model", model ?? tiny] + extra, contains: needles))
        }
        export("unknown format", ["--format", "tflite", "--out", outPath("e")], ["--format", "tflite"])
        export("unknown gguf type", ["--format", "gguf", "--type", "q2_k", "--out", g], ["--type", "q2_k"])
        export("negative layer_norm_eps", ["--format", "gguf", "--out", g], [negativeEps, "layer_norm_eps"], model: negativeEps)
        export("onnx type for gguf", ["--format", "gguf", "--type", "int8", "--out", g], ["--type int8 does not apply to --format gguf"])
        export("gguf type for onnx", ["--format", "onnx", "--type", "q4_0", "--out", outPath("e.onnx")], ["--type q4_0 does not apply to --format onnx"])
        export("unknown onnx type", ["--format", "onnx", "--type", "int3", "--out", outPath("e.onnx")], ["--type", "int3"])
        export("unknown --keep-f16 kind", ["--format", "gguf", "--type", "q8_0", "--keep-f16", "attn_q,ffn_gate", "--out", g], ["--keep-f16", "ffn_gate", "attn_output"])
        export("--keep-f16 at f16", ["--format", "gguf", "--type", "f16", "--keep-f16", "attn_q", "--out", g], ["--keep-f16 applies to --format gguf --type q8_0 or q4_0"])
        export("quantized type for safetensors", ["--format", "safetensors", "--type", "int4", "--out", outPath("e")], ["--type int4", "safetensors"])

        // Hostile GGUF files for kd import and kd info: wrong magic, wrong version, cut short.
        var good = Data("GGUF".utf8)
        withUnsafeBytes(of: UInt32(3).littleEndian) { good.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt64(1).littleEndian) { good.append(contentsOf: $0) }   // one tensor …
        withUnsafeBytes(of: UInt64(0).littleEndian) { good.append(contentsOf: $0) }   // … no metadata, then nothing
        var badMagic = good; badMagic.replaceSubrange(0..<4, with: Data("GGUX".utf8))
        var badVersion = good; badVersion.replaceSubrange(4..<8, with: Data([99, 0, 0, 0]))
        var hugeCount = good; hugeCount.replaceSubrange(8..<16, with: Data(repeating: 0xFF, count: 8))
        for (name, bytes) in [("magic.gguf", badMagic), ("version.gguf", badVersion), ("count.gguf", hugeCount), ("short.gguf", good)] {
            let path = try write(name, bytes)
            cases.append(BadInputCase(name: "import \(name)", args: ["import", path, "--out", outPath("m.h5")], contains: [path]))
            cases.append(BadInputCase(name: "info \(name)", args: ["info", path], contains: [path]))
        }
        return cases
    }

    func testCompression() throws { check(try compressionCases()) }
}
