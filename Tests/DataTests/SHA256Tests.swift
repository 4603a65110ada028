// SHA-256 against the FIPS 180-4 / NIST test vectors.
import DistilleryData
import Foundation
import XCTest

final class SHA256Tests: XCTestCase {
    func testNISTVectors() {
        XCTAssertEqual(SHA256.hex(Data()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(Data("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex(Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // 1,000,000 × 'a' spans many blocks.
        XCTAssertEqual(SHA256.hex(Data(repeating: UInt8(ascii: "a"), count: 1_000_000)),
                       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// Message lengths around the 55/56/64-byte padding boundaries (digests from Python hashlib).
    func testPaddingBoundaries() {
        let expected: [Int: String] = [
            55: "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072",
            56: "04c26261370ee7541549d16dee320c723e3fd14671e66a099afe0a377c16888e",
            63: "75220b47218278e656f2013bb8f0c455a25eaf01e86c64924e9d48d89776d6f2",
            64: "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c",
            65: "9537c5fdf120482f7d58d25e9ed583f52c02b4e304ea814db1633ad565aed7e9",
        ]
        for (n, digest) in expected {
            XCTAssertEqual(SHA256.hex(Data(repeating: UInt8(ascii: "x"), count: n)), digest, "length \(n)")
        }
    }

    /// The message in pieces of every awkward size, and a file read in small chunks, give the
    /// one-shot digest.
    func testPiecesAndFileChunksGiveTheOneShotDigest() throws {
        let message = Data((0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        let whole = SHA256.hex(message)
        XCTAssertEqual(whole, "5097e7d587352f5097062ae679f37bda5802d9f875aba14c8cb4d1a188ada179")   // Python hashlib
        for piece in [1, 3, 55, 63, 64, 65, 127, 999] {
            var hasher = SHA256()
            for start in stride(from: 0, to: message.count, by: piece) { hasher.update(message[start..<min(start + piece, message.count)]) }
            XCTAssertEqual(SHA256.hex(hasher.finalize()), whole, "pieces of \(piece)")
        }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("sha256-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: url) }
        try message.write(to: url)
        for chunk in [7, 64, 1 << 20] { XCTAssertEqual(try SHA256.hex(fileAt: url, chunkBytes: chunk), whole, "chunks of \(chunk)") }
        XCTAssertEqual(SHA256.hex(SHA256.digest(Array(message))), whole)
    }
}
