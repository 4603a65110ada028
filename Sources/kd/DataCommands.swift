// kd data prepare: turn a packaged dataset or a user's CSV into cleaned, deduplicated,
// stratified train/dev/test JSON lines plus a manifest (see DistilleryData).
//
// Everything is read, cleaned and split in memory before the output folder is touched;
// each file is then written through a temporary sibling and renamed, and a folder this
// command created is removed again if writing fails.
import ArgumentParser
import DistilleryData
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
            let (datasetName, loaded, options) = try load()
            let outDir = out ?? "data/\(datasetName)"
            try checkOutputFolder(outDir)
            let prepared: PreparedDataset
            do { prepared = try DatasetPreparer.prepare(loaded.examples, name: datasetName, source: loaded.source, options: options) } catch {
                throw CLIError(String(describing: error))
            }
            try write(prepared, to: outDir)
            print(summary(prepared.manifest, outDir: outDir))
        }

        /// Reads the raw rows of the built-in dataset or the --csv file.
        func load() throws -> (String, LoadedSource, PreparationOptions) {
            let csvFlags = [("--text-column", textColumn), ("--label-column", labelColumn), ("--name", name)]
            do {
                if let csv {
                    if let dataset { throw CLIError("give either a dataset name ('\(dataset)') or --csv \(csv), not both") }
                    let missing = csvFlags.filter { $0.1 == nil }.map(\.0)
                    guard missing.isEmpty else { throw CLIError("--csv needs \(missing.joined(separator: ", ")) as well") }
                    let name = self.name!
                    guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }),
                          name != ".", name != ".." else {
                        throw CLIError("--name '\(name)' must be letters, digits, '-', '_' or '.' (it names the output folder)")
                    }
                    let format = CSVFormat(delimiter: try parseDelimiter(), hasHeader: true)
                    guard let sourceEncoding = SourceEncoding(rawValue: encoding) else {
                        throw CLIError("--encoding '\(encoding)' is not one of: \(SourceEncoding.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    var labelList: [String]? = nil
                    if let labels {
                        let list = labels.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                        guard !list.isEmpty, Set(list).count == list.count else {
                            throw CLIError("--labels '\(labels)' must be distinct, comma-separated label names")
                        }
                        labelList = list
                    }
                    let loaded = try SourceLoader.loadDelimited(path: csv, format: format, encoding: sourceEncoding,
                                                                textColumn: .name(textColumn!), labelColumn: .name(labelColumn!), name: name)
                    return (name, loaded, PreparationOptions(seed: seed, labels: labelList))
                }
                if let flag = csvFlags.first(where: { $0.1 != nil }) { throw CLIError("\(flag.0) only goes with --csv FILE") }
                if labels != nil { throw CLIError("--labels only goes with --csv FILE") }
                if delimiter != "," { throw CLIError("--delimiter only goes with --csv FILE") }
                if encoding != "utf-8" { throw CLIError("--encoding only goes with --csv FILE (built-in datasets know their encoding)") }
                guard let dataset else {
                    throw CLIError("name a dataset (\(BuiltinDataset.all.map(\.name).joined(separator: ", "))) or give --csv FILE --text-column C --label-column L --name NAME")
                }
                let builtin = try BuiltinDataset.named(dataset)
                let loaded = try builtin.load(from: cache + "/" + builtin.name)
                return (builtin.name, loaded, builtin.options(seed: seed))
            } catch let error as CLIError {
                throw error
            } catch {
                throw CLIError(String(describing: error))
            }
        }

        func parseDelimiter() throws -> Character {
            switch delimiter {
            case "tab", "\\t", "\t": return "\t"
            case _ where delimiter.count == 1 && delimiter != "\"" && delimiter.first!.isASCII: return delimiter.first!
            default: throw CLIError("--delimiter '\(delimiter)' must be one ASCII character (e.g. ',', ';', '|') or 'tab'")
            }
        }

        /// The output folder may exist (as a folder) or be created; a file there is an error.
        func checkOutputFolder(_ path: String) throws {
            guard !path.isEmpty else { throw CLIError("--out is empty — give an output folder") }
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
                throw CLIError("\(path): is a file — --out takes a folder (it will hold train.jsonl, dev.jsonl, test.jsonl, manifest.json)")
            }
        }

        /// Writes the three splits and the manifest, each atomically.
        func write(_ prepared: PreparedDataset, to outDir: String) throws {
            let fm = FileManager.default
            let created = !fm.fileExists(atPath: outDir)
            do { try fm.createDirectory(atPath: outDir, withIntermediateDirectories: true) } catch {
                throw CLIError("\(outDir): cannot create the output folder (\(error.localizedDescription))")
            }
            do {
                let manifest: Data
                do { manifest = try prepared.manifest.jsonData() } catch { throw CLIError("cannot encode the manifest (\(error))") }
                for split in Split.allCases {
                    try writeAtomically(prepared.jsonLines(split), to: outDir + "/" + prepared.manifest.files[split.rawValue]!)
                }
                try writeAtomically(manifest, to: outDir + "/manifest.json")
            } catch {
                if created { try? fm.removeItem(atPath: outDir) }
                throw error
            }
        }

        /// One line per fact: rows, drops by reason, repairs, and per-split class counts.
        func summary(_ m: DatasetManifest, outDir: String) -> String {
            let d = m.dropped
            var lines = ["\(m.name): \(m.rowsRead) rows read, \(m.rowsKept) kept, \(d.total) dropped → \(outDir)"]
            lines.append("  dropped: empty text \(d.emptyText), empty label \(d.emptyLabel), unknown label \(d.unknownLabel), exact duplicates \(d.exactDuplicates), normalized duplicates \(d.normalizedDuplicates), conflicting labels \(d.conflictingLabels) (\(d.conflictingLabelGroups) texts)")
            lines.append("  text: mojibake repaired \(m.text.mojibakeRepaired), unrepairable (kept) \(m.text.mojibakeUnrepairable), control characters removed \(m.text.controlCharactersRemoved)")
            for split in Split.allCases {
                let counts = m.labels.map { "\($0) \(m.counts[split.rawValue]?[$0] ?? 0)" }.joined(separator: ", ")
                lines.append("  \(split.rawValue): \(m.totals[split.rawValue] ?? 0) (\(counts))")
            }
            return lines.joined(separator: "\n")
        }
    }
}
