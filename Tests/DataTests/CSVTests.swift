// CSV reader: RFC 4180 quoting, line endings, record line numbers, and the errors for
// malformed files; source decoding (strict UTF-8, Windows-1252, Mac OS Roman).
import DistilleryData
import Foundation
import XCTest

final class CSVTests: XCTestCase {
    func parse(_ text: String, _ format: CSVFormat = .csv) throws -> CSVTable {
        try CSVReader.parse(text, format: format, source: "t.csv")
    }

    func testQuotedFieldsNewlinesAndDoubledQuotes() throws {
        let table = try parse("a,b,c\n1,\"x, y\",\"say \"\"hi\"\"\"\n2,\"two\nlines\",\"\"\n")
        XCTAssertEqual(table.header, ["a", "b", "c"])
        XCTAssertEqual(table.records.map(\.fields), [["1", "x, y", "say \"hi\""], ["2", "two\nlines", ""]])
        XCTAssertEqual(table.records.map(\.line), [2, 3])
    }

    func testCRLFAndLoneCRRecordEnds() throws {
        let crlf = try parse("a,b\r\n1,\"in\r\nside\"\r\n2,z\r\n")
        XCTAssertEqual(crlf.records.map(\.fields), [["1", "in\r\nside"], ["2", "z"]])
        XCTAssertEqual(crlf.records.map(\.line), [2, 4])
        let cr = try parse("a,b\r1,x\r2,\"y\rz\"\r3,w")
        XCTAssertEqual(cr.records.map(\.fields), [["1", "x"], ["2", "y\rz"], ["3", "w"]])
        XCTAssertEqual(cr.records.map(\.line), [2, 3, 5])
    }

    func testEmptyFieldsBlankLinesAndNoFinalNewline() throws {
        let table = try parse("a,b,c\n\n,,\n1,2,\n\n3,4,5")
        XCTAssertEqual(table.records.map(\.fields), [["", "", ""], ["1", "2", ""], ["3", "4", "5"]])
        XCTAssertEqual(table.records.map(\.line), [3, 4, 6])
    }

    func testStrayQuoteInUnquotedFieldIsKept() throws {
        let table = try parse("a,b\n1,say \"hi\" twice\n")
        XCTAssertEqual(table.records[0].fields, ["1", "say \"hi\" twice"])
    }

    func testTabSeparatedWithoutHeader() throws {
        let table = try parse("ham\tHello, world\nspam\t\"WIN\tnow\"\n", .tsvWithoutHeader)
        XCTAssertEqual(table.header, [])
        XCTAssertEqual(table.records.map(\.fields), [["ham", "Hello, world"], ["spam", "WIN\tnow"]])
    }

    func testNonASCIIFieldsSurvive() throws {
        let table = try parse("t,l\n\"naïve — 😀\",x\n")
        XCTAssertEqual(table.records[0].fields[0], "naïve — 😀")
    }

    func testUnterminatedQuoteNamesFileAndOpeningLine() {
        XCTAssertThrowsError(try parse("a,b\n1,ok\n2,\"never\ncloses\n3,x\n")) { error in
            let message = String(describing: error)
            XCTAssertTrue(message.hasPrefix("t.csv:3: "), message)
            XCTAssertTrue(message.contains("never closes"), message)
        }
    }

    func testTextAfterClosingQuoteIsAnError() {
        XCTAssertThrowsError(try parse("a,b\n1,\"x\"y\n")) { error in
            let message = String(describing: error)
            XCTAssertTrue(message.hasPrefix("t.csv:2: "), message)
            XCTAssertTrue(message.contains("after a closing quote"), message)
        }
    }

    func testWrongFieldCountNamesLine() {
        XCTAssertThrowsError(try parse("a,b\n1,2\n3,4,5\n")) { error in
            let message = String(describing: error)
            XCTAssertTrue(message.hasPrefix("t.csv:3: 3 fields, but the header has 2"), message)
        }
    }

    func testMissingColumnNamesColumnAndListsHeader() throws {
        let table = try parse("id,review,sentiment\n1,x,y\n")
        XCTAssertEqual(try table.column("review", source: "t.csv"), 1)
        XCTAssertThrowsError(try table.column("text", source: "t.csv", flag: "text column")) { error in
            let message = String(describing: error)
            XCTAssertTrue(message.contains("t.csv"), message)
            XCTAssertTrue(message.contains("no text column 'text'"), message)
            XCTAssertTrue(message.contains("'id', 'review', 'sentiment'"), message)
        }
    }

    // MARK: - Decoding

    func testStrictUTF8NamesLineOfBadByte() {
        let data = Data("ok\nfine\nbad ".utf8) + Data([0xE9]) + Data(" here\n".utf8)
        XCTAssertThrowsError(try TextDecoder.decode(data, as: .utf8, source: "x.csv")) { error in
            let message = String(describing: error)
            XCTAssertTrue(message.hasPrefix("x.csv:3: invalid UTF-8 at byte 5"), message)
            XCTAssertTrue(message.contains("--encoding"), message)
        }
    }

    func testUTF8BOMIsSkipped() throws {
        let (text, fallback) = try TextDecoder.decode(Data([0xEF, 0xBB, 0xBF]) + Data("a,b".utf8), as: .utf8, source: "x")
        XCTAssertEqual(text, "a,b")
        XCTAssertFalse(fallback)
    }

    func testSingleByteEncodings() throws {
        let bytes = Data([0x80, 0xE9, 0xA3, 0x9D, 0x41])
        XCTAssertEqual(try TextDecoder.decode(bytes, as: .windows1252, source: "x").text, "€é£\u{9D}A")
        XCTAssertEqual(try TextDecoder.decode(Data([0x8E, 0xE4, 0xF3, 0xBB, 0xD5]), as: .macRoman, source: "x").text, "é‰Ûª’")
        let (text, fallback) = try TextDecoder.decode(Data([0x41, 0xA3, 0x35]), as: .utf8OrWindows1252, source: "x")
        XCTAssertEqual(text, "A£5")
        XCTAssertTrue(fallback)
    }
}
