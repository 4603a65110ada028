// Text cleanup: NFC, whitespace, control characters, mojibake repair, and the dedup key.
import DistilleryData
import Foundation
import XCTest

final class NormalizerTests: XCTestCase {
    func clean(_ s: String) -> CleanedText { TextNormalizer.clean(s) }

    func testNFC() {
        XCTAssertEqual(clean("Cafe\u{301}").text, "Café")
        XCTAssertEqual(clean("Cafe\u{301}").text.unicodeScalars.count, 4)
        XCTAssertEqual(clean("\u{212B}").text, "\u{C5}")   // ANGSTROM SIGN → Å
    }

    func testWhitespaceCollapsedAndTrimmed() {
        XCTAssertEqual(clean("  a\t\tb\n\r\nc\u{00A0}d\u{2003}e \u{2028} ").text, "a b c d e")
        XCTAssertEqual(clean(" \t\n ").text, "")
    }

    func testControlCharactersRemoved() {
        let c = clean("be\u{0007}ll\u{FEFF} \u{0000}x\u{009F}")
        XCTAssertEqual(c.text, "bell x")
        XCTAssertTrue(c.removedControlCharacters)
        XCTAssertFalse(clean("plain text").removedControlCharacters)
        // ZWJ sequences (format characters) stay intact.
        XCTAssertEqual(clean("👩\u{200D}💻").text, "👩\u{200D}💻")
    }

    func testMojibakeRepaired() {
        let cases: [(String, String)] = [
            ("cafÃ©", "café"),
            ("Itâ€™s", "It’s"),
            ("Â£5 each", "£5 each"),
            ("â€œquotedâ€\u{9D}", "“quoted”"),           // 0x9D is undefined in cp1252: read as U+009D
            ("ðŸ˜€ smile", "😀 smile"),                  // 4-byte emoji
            ("naÃ¯ve rÃ©sumÃ©", "naïve résumé"),
            ("Ã‰cole", "École"),
        ]
        for (input, expected) in cases {
            let c = clean(input)
            XCTAssertEqual(c.text, expected, input)
            XCTAssertEqual(c.mojibake, .repaired, input)
        }
        // Non-breaking space mojibake, then whitespace collapse.
        XCTAssertEqual(clean("a\u{00C2}\u{00A0}b").text, "a b")
    }

    func testUnrepairableMojibakeCountedAndLeftAlone() {
        let cases = [
            "â€ broken",          // a byte of the sequence is missing
            "CafÌ©",               // round-trips to a combining mark: lossy vendor garbage
            "tbh _Ùª_",            // round-trips to an Arabic percent sign in English text
            "cafÃ© costs 5€ at é", // one run holds mojibake and stray Latin-1: not a clean round trip
        ]
        for input in cases {
            let c = clean(input)
            XCTAssertEqual(c.mojibake, .unrepairable, input)
            XCTAssertEqual(c.text, input, input)
        }
    }

    func testCleanTextUntouched() {
        for input in ["naïve café", "Ärger über Öl", "Żółć", "日本語 😀", "£5 — “fine”", "plain"] {
            let c = clean(input)
            XCTAssertEqual(c.mojibake, .clean, input)
            XCTAssertEqual(c.text, input, input)
        }
    }

    func testDuplicateKey() {
        XCTAssertEqual(TextNormalizer.duplicateKey("Hello   World"), TextNormalizer.duplicateKey("hello world"))
        XCTAssertEqual(TextNormalizer.duplicateKey("ÉCOLE"), TextNormalizer.duplicateKey("école"))
        XCTAssertNotEqual(TextNormalizer.duplicateKey("hello world"), TextNormalizer.duplicateKey("hello, world"))
    }
}
