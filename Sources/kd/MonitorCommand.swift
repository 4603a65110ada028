// kd monitor: new texts against a model's training data, exit code 0 / 1 / 2 for an
// alerting job (no drift / warn / drift). Errors exit 3 (bad input, failed run) or 4
// (usage) so that they never read as a verdict (KD.main maps them for this command).
import ArgumentParser
import DistilleryData
import DistilleryStages
import Foundation
import Monitoring

struct MonitorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "monitor",
        abstract: "Check new inputs for drift against the data a model was trained on.",
        usage: "kd monitor --model <model> --reference <data> --input <file> [<options>]",
        discussion: """
        Input drift (token lengths, [UNK] and unseen word pieces, word-piece \
        frequencies), representation drift (MMD of the model's pooled embeddings with \
        a permutation p-value) and prediction drift (predicted labels, confidences); \
        with --teacher, how far the student's agreement with its teacher drops. \
        --input is .txt (one text per line), .jsonl ({"text": …}) or .csv (a 'text' \
        column); blank texts are skipped.

        Thresholds: --threshold NAME=WARN:DRIFT (repeatable) or --thresholds FILE \
        ({"NAME": {"warn": W, "drift": D}}); names and defaults: \
        \(DriftStatistic.allCases.map { "\($0.rawValue) \($0.defaultLevels.warn):\($0.defaultLevels.drift)" }.joined(separator: ", ")) \
        (embedding_mmd_p alarms below its levels, the others at or above).

        Exit codes: 0 no drift, 1 warn, 2 drift; 3 bad input or a failed run, 4 usage.

        Examples:
          kd monitor --model sms-l3.h5 --reference data/sms-spam --input today.txt
          kd monitor --model s.h5 --reference data/sms-spam --input log.jsonl \\
             --teacher t.h5 --report drift.html --json
        """)

    @Option(help: "The deployed model (.h5).") var model: String
    @Option(help: "Prepared dataset folder the model was trained on (kd data prepare).") var reference: String
    @Option(help: "Reference split: train, dev or test.") var split = "train"
    @Option(help: "New texts: .txt, .jsonl or .csv (- for stdin, as text).") var input: String
    @Option(help: "Input format when the extension does not say: txt, jsonl or csv.") var format: String?
    @Option(name: .customLong("text-field"), help: "JSON key (.jsonl) or CSV column (.csv) holding the text.") var textField = "text"
    @Option(help: "The teacher the student was distilled from (.h5): adds agreement and KL on the new texts.") var teacher: String?
    @Option(help: "Write a self-contained HTML report here.") var report: String?
    @Option(help: "A JSON file of thresholds: {\"NAME\": {\"warn\": W, \"drift\": D}}.") var thresholds: String?
    @Option(name: .customLong("threshold"), help: "One threshold as NAME=WARN:DRIFT (repeatable; applied after --thresholds).") var threshold: [String] = []
    @Option(name: .customLong("model-sample"), help: "Texts per side run through the model (seeded subsample).") var modelSample = 2000
    @Option(name: .customLong("mmd-sample"), help: "Embeddings per side in the MMD test.") var mmdSample = 500
    @Option(help: "Permutations of the MMD test.") var permutations = 500
    @Option(name: .customLong("top-pieces"), help: "Word pieces with their own bin in the frequency divergences.") var topPieces = 100
    @Option(help: "Seed of the subsamples and permutations.") var seed: UInt64 = 13
    @Option(name: .customLong("max-length"), help: "Truncate to this many tokens (default: the model's stored length, else 128).") var maxLength: Int?
    @Option(name: .customLong("batch-size"), help: "Sequences per forward pass.") var batchSize = 32
    @Flag(help: "Print the report as JSON instead of a summary.") var json = false
    @OptionGroup var threads: ThreadOptions

    func run() throws {
        var config = MonitorConfig(model: model, reference: reference, input: input)
        config.split = try parseChoice(split, flag: "--split", as: Split.self)
        config.format = try format.map { try parseChoice($0, flag: "--format", as: MonitorInputFormat.self) }
        config.textField = textField
        config.teacher = teacher
        config.report = report
        config.thresholds = try thresholdSettings()
        (config.modelSample, config.mmdSample, config.permutations, config.topPieces) = (modelSample, mmdSample, permutations, topPieces)
        (config.seed, config.maxLength, config.batchSize, config.threads) = (seed, maxLength, batchSize, try threads.count())
        let result = try monitor(config, progress: stderrProgress())
        if json { try printJSON(result, pretty: true) } else { print(result.text) }
        if result.exitCode != 0 { throw ExitCode(result.exitCode) }
    }

    /// The defaults, then --thresholds, then each --threshold.
    func thresholdSettings() throws -> DriftThresholds {
        var settings = DriftThresholds()
        do {
            if let path = thresholds {
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
                    throw StageError("\(path): no such file — --thresholds takes a JSON file of {\"NAME\": {\"warn\": W, \"drift\": D}}")
                }
                guard let data = FileManager.default.contents(atPath: path) else { throw StageError("\(path): cannot read") }
                try settings.apply(file: data, source: path)
            }
        } catch let error as ThresholdError { throw StageError(error.description) }
        do { for text in threshold { try settings.apply(flag: text) } } catch let error as ThresholdError {
            throw StageError.usage(error.description)
        }
        return settings
    }
}
