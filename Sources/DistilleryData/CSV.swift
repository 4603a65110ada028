// CSV: an RFC 4180 reader over decoded text, with errors that name the file and line.
//
// Follows RFC 4180: fields separated by a one-character delimiter (',' or tab), records by
// LF, CRLF or a lone CR; a field that starts with '"' is quoted and may hold delimiters,
// newlines and doubled quotes ("" → "). Two liberties, both what Python's csv module and
// pandas do with real files: a '"' inside an unquoted field is kept literally, and a final
// record without a newline is accepted. Strict where silence would corrupt data: a quoted
// field that never closes, text after a closing quote, and a record whose field count
// differs from the header are errors naming the line. Blank lines are skipped.
// Left out: other quote characters, escape characters, comment lines.
import Foundation

/// The dialect of a delimited text file.
public struct CSVFormat: Sendable, Equatable {
    /// Field separator: ',' for CSV, '\t' for TSV.
    public var delimiter: Character
    /// Whether the first record names the columns.
    public var hasHeader: Bool

    public init(delimiter: Character = ",", hasHeader: Bool = true) {
        self.delimiter = delimiter
        self.hasHeader = hasHeader
    }

    public static let csv = CSVFormat()
    public static let tsvWithoutHeader = CSVFormat(delimiter: "\t", hasHeader: false)
}

/// One parsed record and the 1-based line on which it starts.
public struct CSVRecord: Sendable, Equatable {
    public var fields: [String]
    public var line: Int
}

/// A parsed file: the header (empty without one) and the records after it.
public struct CSVTable: Sendable {
    public var header: [String]
    public var records: [CSVRecord]

    /// Index of the column named `name`; the error names the column and lists the header.
    public func column(_ name: String, source: String, flag: String = "column") throws -> Int {
        if let index = header.firstIndex(of: name) { return index }
        let trimmed = header.map { $0.trimmingCharacters(in: .whitespaces) }
        if let index = trimmed.firstIndex(of: name) { return index }
        let list = header.map { "'\($0)'" }.joined(separator: ", ")
        throw CSVError(description: "\(source): no \(flag) '\(name)' — the header has \(header.count) column\(header.count == 1 ? "" : "s"): \(list)")
    }
}

/// A malformed CSV file.
public struct CSVError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// Parses delimited text.
public enum CSVReader {
    /// Parses `text` in `format`; `source` names the file in errors.
    public static func parse(_ text: String, format: CSVFormat = .csv, source: String) throws -> CSVTable {
        guard let delimiterScalar = format.delimiter.unicodeScalars.first, format.delimiter.unicodeScalars.count == 1,
              delimiterScalar.isASCII, delimiterScalar != "\"", delimiterScalar != "\n", delimiterScalar != "\r" else {
            throw CSVError(description: "delimiter '\(format.delimiter)' is not a single ASCII character other than a quote or newline")
        }
        let delimiter = UInt8(delimiterScalar.value)
        let quote = UInt8(ascii: "\""), lf = UInt8(ascii: "\n"), cr = UInt8(ascii: "\r")
        let bytes = Array(text.utf8)
        let n = bytes.count
        var records: [CSVRecord] = []
        var fields: [String] = []
        var i = 0
        var line = 1
        var recordLine = 1

        func field(_ from: Int, _ to: Int) -> String { String(decoding: bytes[from..<to], as: UTF8.self) }
        /// Consumes a record terminator at `i` (LF, CRLF or CR), advancing the line count.
        func endOfLine() -> Bool {
            if i < n && bytes[i] == lf { i += 1; line += 1; return true }
            if i < n && bytes[i] == cr {
                i += 1
                if i < n && bytes[i] == lf { i += 1 }
                line += 1
                return true
            }
            return false
        }

        while i < n {
            // Start of a record: skip blank lines.
            if fields.isEmpty {
                recordLine = line
                if endOfLine() { continue }
            }
            // One field.
            if bytes[i] == quote {
                let openLine = line
                i += 1
                var value: [UInt8] = []
                var closed = false
                while i < n {
                    let b = bytes[i]
                    if b == quote {
                        if i + 1 < n && bytes[i + 1] == quote { value.append(quote); i += 2; continue }
                        i += 1
                        closed = true
                        break
                    }
                    if b == lf || (b == cr && !(i + 1 < n && bytes[i + 1] == lf)) { line += 1 }
                    value.append(b)
                    i += 1
                }
                guard closed else {
                    throw CSVError(description: "\(source):\(openLine): quoted field never closes (no matching '\"' before the end of the file) — check for a stray quote on that line")
                }
                guard i == n || bytes[i] == delimiter || bytes[i] == lf || bytes[i] == cr else {
                    let after = String(decoding: bytes[i..<min(n, i + 12)], as: UTF8.self)
                    throw CSVError(description: "\(source):\(line): unexpected text '\(after)' after a closing quote — a quote inside a quoted field must be doubled (\"\")")
                }
                fields.append(String(decoding: value, as: UTF8.self))
            } else {
                let start = i
                while i < n && bytes[i] != delimiter && bytes[i] != lf && bytes[i] != cr { i += 1 }
                fields.append(field(start, i))
            }
            // After a field: a delimiter, a record end, or the end of the file.
            if i < n && bytes[i] == delimiter {
                i += 1
                if i == n { fields.append("") }
                continue
            }
            _ = endOfLine()
            records.append(CSVRecord(fields: fields, line: recordLine))
            fields = []
        }
        if !fields.isEmpty { records.append(CSVRecord(fields: fields, line: recordLine)) }

        var header: [String] = []
        if format.hasHeader {
            guard !records.isEmpty else { throw CSVError(description: "\(source): empty file — expected a header line naming the columns") }
            header = records.removeFirst().fields
        }
        let width = format.hasHeader ? header.count : (records.first?.fields.count ?? 0)
        for record in records where record.fields.count != width {
            let what = format.hasHeader ? "the header has \(width)" : "the first record has \(width)"
            throw CSVError(description: "\(source):\(record.line): \(record.fields.count) field\(record.fields.count == 1 ? "" : "s"), but \(what) — quote fields that contain the delimiter")
        }
        return CSVTable(header: header, records: records)
    }
}
