// kd export: argument declarations over `exportModel` (DistilleryStages/ExportStage.swift).
import ArgumentParser
import DistilleryStages
import Foundation

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a model for other runtimes: an HF directory (safetensors), GGUF (llama.cpp) or ONNX.",
        discussion: """
        --format safetensors writes a directory that transformers (AutoModel, or \
        AutoModelForSequenceClassification for a classifier over the [CLS] pooler) and \
        sentence-transformers load. --format gguf writes one file for llama.cpp's BERT; \
        --type f32|f16|q8_0|q4_0 sets how its matrices are stored (q8_0 of an fp32 model keeps \
        Q/K/V and FFN-up at F16 for llama.cpp's accuracy; --keep-f16 none for plain Q8_0); a classifier becomes \
        llama.cpp's rank head (cls / cls.output). kd import reads both back. \
        --format onnx writes an ONNX model (opset 17) with inputs input_ids, \
        attention_mask, token_type_ids and outputs last_hidden_state, sentence_embedding \
        (when the model pools) and logits (with a classifier); --type f32, int8 \
        (DynamicQuantizeLinear + MatMulInteger, ONNX Runtime's fastest int8 form on x86 as \
        measured) or int4 (com.microsoft MatMulNBits, groups of 32). A kd quantize output \
        keeps its own quantized weights where the layout matches (int8 → Q8_0 / int8 ONNX, \
        int4-g32 → Q4_0, any int4 → MatMulNBits); a mismatch (int4 → q8_0) is refused.

        Examples:
          kd export --model teacher.h5 --format safetensors --out minilm-hf
          kd export --model teacher.h5 --format gguf --type q8_0 --out minilm-q8_0.gguf
          kd export --model mine.h5 --format onnx --out mine.onnx
          kd export --model mine-int8.h5 --format onnx --type int8 --out mine-int8.onnx
        """)

    @Option(help: "Distillery model file (.h5).") var model: String
    @Option(help: "Output format: \(ExportFormat.allCases.map(\.rawValue).joined(separator: ", ")).") var format: String
    @Option(help: "Output directory (safetensors) or file (gguf, onnx).") var out: String
    @Option(help: "Weight type: gguf f32, f16, q8_0, q4_0; onnx f32, int8, int4; safetensors f32.") var type = "f32"
    @Option(name: .customLong("keep-f16"), help: ArgumentHelp("GGUF q8_0/q4_0: matrix kinds stored as F16 instead (comma list of \(ExportConfig.matrixKinds.joined(separator: ", ")), or none).",
            discussion: "Default for q8_0 of an fp32 model: \(ExportConfig.q8DefaultF16Kinds.joined(separator: ",")) (measured: see benchmarks/results/2026-12-02-export-intel.md); none for q4_0 and for kd-quantized files.",
            valueName: "kinds")) var keepF16: String?
    @Flag(help: "Replace an existing output.") var force = false
    @Flag(help: "Print the report as JSON.") var json = false

    func run() throws {
        let format = try parseChoice(format, flag: "--format", as: ExportFormat.self)
        let type = try parseChoice(type, flag: "--type", as: ExportType.self)
        let keep = keepF16.map { $0 == "none" ? [] : $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        let report = try exportModel(ExportConfig(model: model, format: format, out: out, type: type, force: force, keepF16: keep))
        if json { try printJSON(report) } else { print(report.text) }
    }
}
