// kd quantize: the argument declarations of the quantize stage (QuantizeStage.swift).
import ArgumentParser
import DistilleryStages
import Foundation

struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Quantize a model file: int8, int4 (group-wise) or bf16 weights that run directly.",
        usage: "kd quantize --model <model> --scheme <scheme> --out <out> [<options>]",
        discussion: """
        Schemes: int8-dynamic (per-channel int8 weights, activations per row at run \
        time), int8-static (activation scales from --calibration data), int4-g32, \
        int4-g64, int4-g128 (weight-only, groups of 32/64/128 columns; add -asym for \
        asymmetric groups), bf16. Linear layers and the word and position embeddings \
        are quantized; attention, LayerNorms, biases and the classifier stay fp32. \
        The file runs as is with kd embed, predict, eval, label and bench latency.

        --sensitivity scores each unit (Q/K/V of a layer, attention output, FFN in, \
        FFN out, pooler, embeddings) quantized alone on the dev split of --data. \
        --max-drop X moves the most sensitive units up in precision (int4 → int8 → \
        bf16 → fp32) until the dev macro-F1 drop is at most X points; the best model \
        found is written either way, with the table of what was tried.

        --rounding gptq rounds int8/int4 Linear weights with GPTQ's error \
        compensation: the fp32 model runs over --calibration-size texts of \
        --calibration, and each weight's rounding errors are pushed onto its later \
        columns along the inputs' Hessian, lowering the layer output error.

        Examples:
          kd quantize --model tuned.h5 --scheme int8-dynamic --out tuned-int8.h5
          kd quantize --model tuned.h5 --scheme int4-g32 --out tuned-int4.h5 \\
             --data data/tweet-sentiment --max-drop 0.5
          kd quantize --model tuned.h5 --scheme int8-static --out s.h5 \\
             --calibration data/tweet-sentiment --calibration-size 256
          kd quantize --model tuned.h5 --scheme int4-g32-asym --out q4.h5 \\
             --rounding gptq --calibration data/tweet-sentiment
        """)

    @Option(help: "fp32 Distillery model file (.h5).") var model: String
    @Option(help: "int8-dynamic, int8-static, int4-g32|g64|g128[-asym] or bf16.") var scheme: String
    @Option(help: "Output model file (.h5).") var out: String
    @Option(help: "Prepared dataset for int8-static and --rounding gptq calibration (its training split).") var calibration: String?
    @Option(name: .customLong("calibration-size"), help: "Calibration texts.") var calibrationSize = 128
    @Option(name: .customLong("calibration-method"), help: "minmax or percentile.") var calibrationMethod = "minmax"
    @Option(help: "Percentile of |activation| for --calibration-method percentile.") var percentile = 99.99
    @Option(help: "Weight rounding: nearest, or gptq (error-compensating, from --calibration).") var rounding = "nearest"
    @Option(help: "Prepared dataset whose dev split scores --sensitivity and --max-drop.") var data: String?
    @Flag(help: "Score each unit quantized alone (a table).") var sensitivity = false
    @Option(name: .customLong("max-drop"), help: "Largest dev macro-F1 drop in points (mixed precision).") var maxDrop: Double?
    @Option(name: .customLong("eval-size"), help: "Dev examples scored, evenly spaced (0: all).") var evalSize = 1000
    @Option(name: .customLong("batch-size"), help: "Sequences per forward pass.") var batchSize = 32
    @OptionGroup var threads: ThreadOptions
    @Flag(help: "Print JSON instead of text.") var json = false

    func run() throws {
        var config = QuantizeConfig(model: model, scheme: scheme, out: out)
        (config.calibration, config.calibrationSize, config.calibrationMethod, config.percentile) = (calibration, calibrationSize, calibrationMethod, percentile)
        config.rounding = rounding
        (config.data, config.sensitivity, config.maxDrop, config.evalSize) = (data, sensitivity, maxDrop, evalSize)
        (config.batchSize, config.threads) = (batchSize, try threads.count())
        let report = try quantize(config, progress: stderrProgress())
        if json { try printJSON(report, pretty: true) } else { print(report.text) }
        if report.targetMet == false { note("the --max-drop target was not met; the best model found was written") }
    }
}
