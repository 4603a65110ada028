// ggml block formats: sizes, exact values on hand-made blocks, round-trip error budgets.
import Export
import WeightIO
import XCTest

final class GGMLBlockTests: XCTestCase {
    /// Q8_0 rounds to 1/127 of the block's max |x| (half a step), plus the fp16 scale's
    /// relative error (2^-11) times 127 steps: 0.5/127 + 127·2^-11/127 ≈ 0.0045 of max|x|.
    static let q8MaxError: Float = 0.0045
    /// Q4_0 steps are max|x|/8 over [-8, 7] steps: the signed max maps to -8, so a value of
    /// the other sign near max|x| clamps at +7, one whole step (0.125) off; plus the fp16
    /// scale term 8·2^-11 ≈ 0.004.
    static let q4MaxError: Float = 0.13

    func testBlockSizes() {
        XCTAssertEqual(GGMLType.q8_0.byteCount(elements: 64), 68)
        XCTAssertEqual(GGMLType.q4_0.byteCount(elements: 64), 36)
        XCTAssertEqual(GGMLType.f16.byteCount(elements: 3), 6)
        XCTAssertEqual(ggmlEncode([Float](repeating: 1, count: 32), as: .q8_0).count, 34)
        XCTAssertEqual(ggmlEncode([Float](repeating: 1, count: 32), as: .q4_0).count, 18)
    }

    func testQ8HandBlock() {
        // max |x| = 127 → d = 1 exactly; q = round(x) (half away from zero).
        var x = (0..<32).map { Float($0) - 16 }
        x[0] = -127
        x[1] = 2.5
        let bytes = [UInt8](ggmlEncode(x, as: .q8_0))
        XCTAssertEqual(bytes[0], 0x00); XCTAssertEqual(bytes[1], 0x3C)   // fp16 1.0
        XCTAssertEqual(Int8(bitPattern: bytes[2]), -127)
        XCTAssertEqual(Int8(bitPattern: bytes[3]), 3)
        let back = Data(bytes).withUnsafeBytes { ggmlDecode($0, as: .q8_0, count: 32) }
        XCTAssertEqual(back[1], 3)
        XCTAssertEqual(Array(back[2...]), Array(x[2...]))
    }

    func testQ4HandBlock() {
        // The signed max is -8 → d = 1; q = min(15, trunc(x + 8.5)): -8 → 0, 7 → 15, 0 → 8.
        var x = [Float](repeating: 0, count: 32)
        x[0] = -8; x[16] = 7; x[1] = 1.4; x[17] = 1.6
        let bytes = [UInt8](ggmlEncode(x, as: .q4_0))
        XCTAssertEqual(bytes[0], 0x00); XCTAssertEqual(bytes[1], 0x3C)
        XCTAssertEqual(bytes[2], 0x00 | 0xF0)
        XCTAssertEqual(bytes[3], 0x09 | 0xA0)   // 1.4 → 9, 1.6 → 10
        let back = Data(bytes).withUnsafeBytes { ggmlDecode($0, as: .q4_0, count: 32) }
        XCTAssertEqual(back[0], -8); XCTAssertEqual(back[16], 7); XCTAssertEqual(back[1], 1); XCTAssertEqual(back[17], 2)
    }

    func testRoundTripErrorBudgets() {
        var rng = SystemRandomNumberGenerator()
        let x = (0..<(32 * 17)).map { _ in Float.random(in: -3...3, using: &rng) }
        for (type, budget) in [(GGMLType.q8_0, Self.q8MaxError), (.q4_0, Self.q4MaxError)] {
            let back = ggmlEncode(x, as: type).withUnsafeBytes { ggmlDecode($0, as: type, count: x.count) }
            for b in 0..<17 {
                let block = x[(b * 32)..<(b * 32 + 32)]
                let amax = block.map(abs).max()!
                for j in block.indices { XCTAssertLessThanOrEqual(abs(back[j] - x[j]), budget * amax, "\(type.name) element \(j)") }
            }
        }
        let f32 = ggmlEncode(x, as: .f32).withUnsafeBytes { ggmlDecode($0, as: .f32, count: x.count) }
        XCTAssertEqual(f32, x)
        let f16 = ggmlEncode(x, as: .f16).withUnsafeBytes { ggmlDecode($0, as: .f16, count: x.count) }
        XCTAssertEqual(f16, x.map { Float(Float16($0)) })
    }

    func testZeroBlockHasZeroScale() {
        for type in [GGMLType.q8_0, .q4_0] {
            let back = ggmlEncode([Float](repeating: 0, count: 32), as: type).withUnsafeBytes { ggmlDecode($0, as: type, count: 32) }
            XCTAssertEqual(back, [Float](repeating: 0, count: 32), type.name)
        }
    }
}
