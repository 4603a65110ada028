// TextEncoding: decoding source bytes into Strings, strictly, with the legacy 8-bit code
// pages real datasets turn up in.
//
// UTF-8 is the default and is strict: an invalid byte is an error naming the line. The
// two 8-bit tables (Windows-1252, Mac OS Roman) are spelled out here rather than taken
// from Foundation, whose Linux build does not promise either; the five bytes Windows-1252
// leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D) map to the C1 controls of the same value,
// as Latin-1 and WHATWG decoders do, so decoding never fails and mojibake repair
// (TextNormalizer) can still see them. Left out: UTF-16/32 and BOM sniffing beyond a
// leading UTF-8 BOM, which is skipped.
import Foundation

/// The character encoding of a source file.
public enum SourceEncoding: String, Sendable, CaseIterable, Codable {
    /// UTF-8, strict: invalid bytes are an error.
    case utf8 = "utf-8"
    /// UTF-8, falling back to Windows-1252 for a whole file that is not valid UTF-8.
    case utf8OrWindows1252 = "utf-8-or-windows-1252"
    /// Windows code page 1252 (a superset of Latin-1's printable range).
    case windows1252 = "windows-1252"
    /// Mac OS Roman, the encoding of CSV files saved by classic Mac Excel.
    case macRoman = "mac-roman"
}

/// A file's bytes could not be decoded in the requested encoding.
public struct DecodingError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// Decodes bytes into text.
public enum TextDecoder {
    /// Decodes `data` as `encoding`; `source` names the file in errors. Returns the text and
    /// whether the Windows-1252 fallback of `.utf8OrWindows1252` was used.
    public static func decode(_ data: Data, as encoding: SourceEncoding, source: String) throws -> (text: String, usedFallback: Bool) {
        var bytes = [UInt8](data)
        switch encoding {
        case .utf8, .utf8OrWindows1252:
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
            if let text = String(validating: bytes, as: UTF8.self) { return (text, false) }
            if encoding == .utf8OrWindows1252 { return (decodeSingleByte(bytes, table: windows1252High), true) }
            let (line, column) = firstInvalidUTF8(bytes)
            throw DecodingError(description: "\(source):\(line): invalid UTF-8 at byte \(column) of the line — the file is in another encoding; pass --encoding windows-1252 or mac-roman, or re-encode it (iconv -f ... -t utf-8)")
        case .windows1252:
            return (decodeSingleByte(bytes, table: windows1252High), false)
        case .macRoman:
            return (decodeSingleByte(bytes, table: macRomanHigh), false)
        }
    }

    static func decodeSingleByte(_ bytes: [UInt8], table: [UInt32]) -> String {
        var scalars = String.UnicodeScalarView()
        scalars.reserveCapacity(bytes.count)
        for b in bytes {
            let value = b < 0x80 ? UInt32(b) : table[Int(b) - 0x80]
            scalars.append(Unicode.Scalar(value)!)
        }
        return String(scalars)
    }

    /// 1-based line and byte column of the first invalid UTF-8 sequence.
    static func firstInvalidUTF8(_ bytes: [UInt8]) -> (Int, Int) {
        var line = 1, lineStart = 0, i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == 0x0A { line += 1; lineStart = i + 1; i += 1; continue }
            if b < 0x80 { i += 1; continue }
            let length = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC2 ? 2 : 0
            if length == 0 || i + length > bytes.count
                || String(validating: bytes[i..<(i + length)], as: UTF8.self) == nil {
                return (line, i - lineStart + 1)
            }
            i += length
        }
        return (line, i - lineStart + 1)
    }

    /// Windows-1252 bytes 0x80–0xFF (undefined bytes → the C1 control of the same value).
    public static let windows1252High: [UInt32] = [
        0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
        0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
        0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
        0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
    ] + (0xA0...0xFF).map { UInt32($0) }

    /// Mac OS Roman bytes 0x80–0xFF (Python's `mac_roman` codec).
    public static let macRomanHigh: [UInt32] = [
        0x00C4, 0x00C5, 0x00C7, 0x00C9, 0x00D1, 0x00D6, 0x00DC, 0x00E1,
        0x00E0, 0x00E2, 0x00E4, 0x00E3, 0x00E5, 0x00E7, 0x00E9, 0x00E8,
        0x00EA, 0x00EB, 0x00ED, 0x00EC, 0x00EE, 0x00EF, 0x00F1, 0x00F3,
        0x00F2, 0x00F4, 0x00F6, 0x00F5, 0x00FA, 0x00F9, 0x00FB, 0x00FC,
        0x2020, 0x00B0, 0x00A2, 0x00A3, 0x00A7, 0x2022, 0x00B6, 0x00DF,
        0x00AE, 0x00A9, 0x2122, 0x00B4, 0x00A8, 0x2260, 0x00C6, 0x00D8,
        0x221E, 0x00B1, 0x2264, 0x2265, 0x00A5, 0x00B5, 0x2202, 0x2211,
        0x220F, 0x03C0, 0x222B, 0x00AA, 0x00BA, 0x03A9, 0x00E6, 0x00F8,
        0x00BF, 0x00A1, 0x00AC, 0x221A, 0x0192, 0x2248, 0x2206, 0x00AB,
        0x00BB, 0x2026, 0x00A0, 0x00C0, 0x00C3, 0x00D5, 0x0152, 0x0153,
        0x2013, 0x2014, 0x201C, 0x201D, 0x2018, 0x2019, 0x00F7, 0x25CA,
        0x00FF, 0x0178, 0x2044, 0x20AC, 0x2039, 0x203A, 0xFB01, 0xFB02,
        0x2021, 0x00B7, 0x201A, 0x201E, 0x2030, 0x00C2, 0x00CA, 0x00C1,
        0x00CB, 0x00C8, 0x00CD, 0x00CE, 0x00CF, 0x00CC, 0x00D3, 0x00D4,
        0xF8FF, 0x00D2, 0x00DA, 0x00DB, 0x00D9, 0x0131, 0x02C6, 0x02DC,
        0x00AF, 0x02D8, 0x02D9, 0x02DA, 0x00B8, 0x02DD, 0x02DB, 0x02C7,
    ]

    /// Inverse of the Windows-1252 table for U+0080 and up: the byte a character came from
    /// when UTF-8 was misread as Windows-1252 (or Latin-1, for the C1 controls).
    static let windows1252Byte: [UInt32: UInt8] = {
        var map: [UInt32: UInt8] = [:]
        for (i, scalar) in windows1252High.enumerated() { map[scalar] = UInt8(0x80 + i) }
        for c1 in 0x80...0x9F where map[UInt32(c1)] == nil { map[UInt32(c1)] = UInt8(c1) }  // Latin-1 reading
        return map
    }()
}
