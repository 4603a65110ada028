// kd-quantized weights carried into other runtimes' layouts: Q4_0 from int4-g32 is
// bit-exact, Q8_0 from int8 moves weights only by the fp16 rounding of the row scale,
// MatMulNBits zero points pack two per byte, and padding a quantized weight appends zeros.
import DistilleryTensor
@testable import Export
import Foundation
import WeightIO
import XCTest

final class QuantizedBlocksTests: XCTestCase {
    /// Half an fp16 ulp relative to a normal value: the most rounding the row scale to fp16
    /// can move a weight by, relative to itself.
    static let fp16HalfUlp = 1.0 / 2048.0

    func weight(rows: Int, columns: Int, seed: UInt64) -> Tensor {
        var state = seed
        let data = (0..<(rows * columns)).map { _ -> Float in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2000 - 1000) / 4000
        }
        return Tensor(shape: [rows, columns], data: data)
    }

    func decode(_ data: Data, _ type: GGMLType, count: Int) -> [Float] {
        data.withUnsafeBytes { ggmlDecode($0, as: type, count: count) }
    }

    func testQ4_0FromInt4G32IsBitExact() {
        for (rows, columns) in [(1, 32), (3, 64), (5, 96)] {
            let q = QuantizedTensor(quantizing: weight(rows: rows, columns: columns, seed: UInt64(rows)), as: .int4(group: 32, symmetric: true))
            let blocks = q4_0Blocks(q)
            XCTAssertEqual(blocks.count, rows * columns / 32 * 18)
            XCTAssertEqual(decode(blocks, .q4_0, count: rows * columns), q.dequantized().data)
        }
    }

    func testQ8_0FromInt8MovesWeightsOnlyByTheScaleRounding() throws {
        let q = QuantizedTensor(quantizing: weight(rows: 7, columns: 64, seed: 9), as: .int8)
        var rounding = ScaleRounding()
        let blocks = try q8_0Blocks(q, rounding: &rounding).get()
        let got = decode(blocks, .q8_0, count: 7 * 64), want = q.dequantized().data
        for (a, b) in zip(got, want) where b != 0 {
            XCTAssertLessThanOrEqual(abs(Double(a) - Double(b)) / abs(Double(b)), Self.fp16HalfUlp)
        }
        XCTAssertEqual(rounding.rows, 7)
        XCTAssertLessThanOrEqual(rounding.maxRelativeChange, Self.fp16HalfUlp)
        // The codes are the int8 file's own: bytes 2…33 of each block.
        XCTAssertEqual(Array(blocks[2..<34]), Array(q.values[0..<32]))
    }

    func testQ8_0RefusesAScaleFP16CannotHold() {
        let q = QuantizedTensor(format: .int8, rows: 1, columns: 32, values: [UInt8](repeating: 1, count: 32), scales: [1e6], zeros: [])
        var rounding = ScaleRounding()
        guard case .failure(let e) = q8_0Blocks(q, rounding: &rounding) else { return XCTFail("a scale of 1e6 must be refused") }
        XCTAssertTrue(e.description.contains("fp16"), e.description)
    }

    func testLayoutMismatchesAreNamed() {
        let int4 = QuantizedTensor(quantizing: weight(rows: 2, columns: 64, seed: 1), as: .int4(group: 64, symmetric: true))
        XCTAssertNotNil(ggmlLayoutMismatch(int4, type: .q4_0))
        XCTAssertNotNil(ggmlLayoutMismatch(int4, type: .q8_0))
        let int8 = QuantizedTensor(quantizing: weight(rows: 2, columns: 48, seed: 1), as: .int8)
        XCTAssertEqual(ggmlLayoutMismatch(int8, type: .q8_0), "its 48-column rows are not whole 32-weight blocks")
    }

    func testMatMulNBitsZeroPointsPackTwoPerByte() {
        let q = QuantizedTensor(quantizing: weight(rows: 3, columns: 96, seed: 4), as: .int4(group: 32, symmetric: false))
        let parts = matMulNBitsParts(q)
        XCTAssertEqual(parts.b, q.values)
        let zeros = parts.zeros!
        XCTAssertEqual(zeros.count, 3 * 2)
        for r in 0..<3 {
            for k in 0..<3 {
                let byte = zeros[r * 2 + k / 2]
                XCTAssertEqual(k % 2 == 0 ? byte & 15 : byte >> 4, q.zeros[r * 3 + k])
            }
        }
        XCTAssertNil(matMulNBitsParts(QuantizedTensor(quantizing: weight(rows: 1, columns: 32, seed: 2), as: .int4(group: 32, symmetric: true))).zeros)
    }

    func testPaddingAQuantizedWeightAppendsZeros() {
        for format in [QuantizedTensor.Format.int8, .int4(group: 32, symmetric: true), .int4(group: 32, symmetric: false)] {
            let q = QuantizedTensor(quantizing: weight(rows: 3, columns: 32, seed: 5), as: format)
            let padded = padQuantized(q, rows: 4, columns: 64)!
            XCTAssertNoThrow(try padded.validate())
            let a = q.dequantized().data, b = padded.dequantized().data
            for r in 0..<4 {
                for c in 0..<64 { XCTAssertEqual(b[r * 64 + c], r < 3 && c < 32 ? a[r * 32 + c] : 0, "\(format) [\(r), \(c)]") }
            }
        }
        XCTAssertNil(padQuantized(QuantizedTensor(quantizing: weight(rows: 1, columns: 32, seed: 5), as: .int4(group: 32, symmetric: true)), rows: 1, columns: 40))
    }
}
