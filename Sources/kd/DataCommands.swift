// kd data prepare: a packaged dataset or a user's CSV into cleaned, deduplicated,
// stratified train/dev/test JSON lines plus a manifest (DistilleryStages.prepareDataset).
import ArgumentParser
import DistilleryData
import DistilleryStages
import Foundation

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Prepare datasets: clean, deduplicate and split into JSON lines.",
        subcommands: [Prepare.self])
}

extension DataCommand {
    struct Prepare: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Clean, deduplicate and split a dataset into train/dev/test JSONL and a manifest.",
            discussion: """
            Built-in datasets (fetched by scripts/fetch-datasets.sh): \(BuiltinDataset.all.map(\.name).joined(separator: ", ")).
            Your own data: --csv FILE --text-column C --label-column L --name NAME.
            """)

        @Argument(help: "Built-in dataset name.") var dataset: String?
        @Option(help: "Output folder (default: data/NAME).") var out: String?
        @Option(help: "Seed of the stratified split.") var seed: UInt64 = 13
        @Option(help: "Where scripts/fetch-datasets.sh put the built-in datasets.") var cache = ".cache/datasets"
        @Option(help: "Your own CSV file (with a header line).") var csv: String?
        @Option(name: .customLong("text-column"), help: "Header name of the text column (with --csv).") var textColumn: String?
        @Option(name: .customLong("label-column"), help: "Header name of the label column (with --csv).") var labelColumn: String?
        @Option(help: "Dataset name for ids and the default output folder (with --csv).") var name: String?
        @Option(help: "Field delimiter of --csv: ',' or 'tab'.") var delimiter = ","
        @Option(help: "Encoding of --csv: \(SourceEncoding.allCases.map(\.rawValue).joined(separator: ", ")).") var encoding = "utf-8"
        @Option(help: "Comma-separated label names in order (with --csv); rows with other labels are dropped as unknown.") var labels: String?

        func run() throws {
            print(try prepareDataset(PrepareConfig(input: try input(), out: out, seed: seed)).text)
        }

        /// The built-in dataset or the --csv file, with every flag checked.
        func input() throws -> DatasetInput {
            let csvFlags = [("--text-column", textColumn), ("--label-column", labelColumn), ("--name", name)]
            guard let csv else {
                if let flag = csvFlags.first(where: { $0.1 != nil }) { throw StageError("\(flag.0) only goes with --csv FILE") }
                if labels != nil { throw StageError("--labels only goes with --csv FILE") }
                if delimiter != "," { throw StageError("--delimiter only goes with --csv FILE") }
                if encoding != "utf-8" { throw StageError("--encoding only goes with --csv FILE (built-in datasets know their encoding)") }
                guard let dataset else {
                    throw StageError("name a dataset (\(BuiltinDataset.all.map(\.name).joined(separator: ", "))) or give --csv FILE --text-column C --label-column L --name NAME")
                }
                return .builtin(name: dataset, cache: cache)
            }
            if let dataset { throw StageError("give either a dataset name ('\(dataset)') or --csv \(csv), not both") }
            let missing = csvFlags.filter { $0.1 == nil }.map(\.0)
            guard missing.isEmpty, let name, let textColumn, let labelColumn else {
                throw StageError("--csv needs \(missing.joined(separator: ", ")) as well")
            }
            guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }),
                  name != ".", name != ".." else {
                throw StageError("--name '\(name)' must be letters, digits, '-', '_' or '.' (it names the output folder)")
            }
            let separator = try parseDelimiter()
            let sourceEncoding = try parseChoice(encoding, flag: "--encoding", as: SourceEncoding.self)
            return .csv(CSVInput(path: csv, textColumn: textColumn, labelColumn: labelColumn, name: name,
                                 delimiter: separator, encoding: sourceEncoding, labels: try labelList()))
        }

        func parseDelimiter() throws -> Character {
            switch delimiter {
            case "tab", "\\t", "\t": return "\t"
            case _ where delimiter.count == 1 && delimiter != "\"" && delimiter.first!.isASCII: return delimiter.first!
            default: throw StageError("--delimiter '\(delimiter)' must be one ASCII character (e.g. ',', ';', '|') or 'tab'")
            }
        }

        func labelList() throws -> [String]? {
            guard let labels else { return nil }
            let list = labels.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard !list.isEmpty, Set(list).count == list.count else {
                throw StageError("--labels '\(labels)' must be distinct, comma-separated label names")
            }
            return list
        }
    }
}
