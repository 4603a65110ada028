// MonitorInput: the new texts a drift check reads — plain text (one per line), JSON Lines
// (one object per line with a text field) or CSV (a header with a text column), chosen
// by the file's extension or `--format`.
//
// A blank text (empty after trimming whitespace) is skipped and counted, as production
// logs carry them; a file with no usable text at all is an error, as is a line that is
// not what its format says (invalid UTF-8, not a JSON object, no text field). Left out on
// purpose: compressed files and Parquet.
import DistilleryData
import DistilleryJSON
import Foundation

/// The formats `kd monitor --input` reads.
public enum MonitorInputFormat: String, CaseIterable, Sendable {
    case txt, jsonl, csv

    /// The format a file name's extension names (nil: unknown).
    public static func forExtension(_ path: String) -> MonitorInputFormat? {
        switch URL(fileURLWithPath: path).pathExtension.lowercased() {
        case "txt", "text": return .txt
        case "jsonl", "ndjson": return .jsonl
        case "csv": return .csv
        default: return nil
        }
    }
}

/// The usable texts of an input file and how many were skipped as blank.
public struct MonitorTexts: Sendable {
    public var texts: [String]
    public var skipped: Int
}

/// Reads the texts of `path` (`-`: stdin, as plain text unless `format` says otherwise);
/// `field` names the JSON key or CSV column holding the text.
public func readMonitorInput(_ path: String, format: MonitorInputFormat?, field: String) throws -> MonitorTexts {
    let fromStdin = path == "-"
    let name = fromStdin ? "<stdin>" : path
    let data: Data
    if fromStdin {
        data = FileHandle.standardInput.readDataToEndOfFile()
    } else {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw StageError("\(path): no such file — check the --input path")
        }
        guard !isDirectory.boolValue else { throw StageError("\(path): is a directory — --input takes a .txt, .jsonl or .csv file") }
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw StageError("\(path): cannot read (\(error.localizedDescription))")
        }
    }
    guard let format = format ?? (fromStdin ? .txt : MonitorInputFormat.forExtension(path)) else {
        let ext = URL(fileURLWithPath: path).pathExtension
        throw StageError("\(path): unknown input format '\(ext.isEmpty ? "no extension" : "." + ext)' — use a .txt (one text per line), .jsonl ({\"text\": …} per line) or .csv (a header with a '\(field)' column) file, or name the format with --format txt|jsonl|csv")
    }
    var texts: [String] = [], skipped = 0
    func take(_ text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty { skipped += 1 } else { texts.append(trimmed) }
    }
    switch format {
    case .txt, .jsonl:
        var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        if data.last == UInt8(ascii: "\n") { lines.removeLast() }   // the newline ending the last line
        for (i, raw) in lines.enumerated() {
            var slice = raw
            if slice.last == UInt8(ascii: "\r") { slice = slice.dropLast() }
            guard let line = String(validating: slice, as: UTF8.self) else {
                throw StageError("\(name):\(i + 1): invalid UTF-8 — re-encode the input as UTF-8 (e.g. iconv -f latin1 -t utf-8)")
            }
            if format == .txt || line.trimmingCharacters(in: .whitespaces).isEmpty {
                take(line)
                continue
            }
            guard let object = (try? JSONValue.parse(line))?.objectValue else {
                throw StageError("\(name):\(i + 1): not a JSON object — each line of a .jsonl input is {\"\(field)\": \"…\"} (or use --format txt)")
            }
            guard let value = object[field] else {
                throw StageError("\(name):\(i + 1): no '\(field)' field (keys: \(object.keys.sorted().joined(separator: ", "))) — name the text field with --text-field")
            }
            guard let text = value.stringValue else {
                throw StageError("\(name):\(i + 1): '\(field)' is \(value.kindName), not a string")
            }
            take(text)
        }
    case .csv:
        guard let text = String(data: data, encoding: .utf8) else {
            throw StageError("\(name): not valid UTF-8 — re-encode the input as UTF-8 (e.g. iconv -f latin1 -t utf-8)")
        }
        let table: CSVTable
        do { table = try CSVReader.parse(text, source: name) } catch { throw StageError(file: name, error) }
        let column: Int
        do { column = try table.column(field, source: name, flag: "text column") } catch {
            throw StageError("\(error) — name the text column with --text-field")
        }
        for record in table.records {
            guard column < record.fields.count else {
                throw StageError("\(name):\(record.line): \(record.fields.count) fields, no '\(field)' column (column \(column + 1) of the header)")
            }
            take(record.fields[column])
        }
    }
    guard !texts.isEmpty else {
        throw StageError("\(name): no usable lines (\(skipped) blank) — a drift check needs new texts, one per line (.txt), per {\"\(field)\": …} line (.jsonl) or per row (.csv)")
    }
    return MonitorTexts(texts: texts, skipped: skipped)
}
