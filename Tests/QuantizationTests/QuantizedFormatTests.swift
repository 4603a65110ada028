// The stored quantization formats: round-trip error budgets per format, the quantized GEMMs
// against the fp32 product of the dequantized weights, thread independence, validation,
// and the model file's quantized datasets read back bit for bit.
import CKernels
import DistilleryTensor
import Foundation
import TestSupport
import WeightIO
import XCTest

/// int8 and int4 codes round to nearest: a weight is within half a step of its value. fp16
/// scales add at most 2⁻¹¹ relative per step, times the 8 steps to the group's extreme.
private let halfStepSlack: Float = 8 * 0x1p-11
/// bf16 keeps 8 significant bits (7 stored): round-to-nearest-even is within half an ulp, 2⁻⁸ relative.
private let bf16RelativeError: Float = 0x1p-8
/// The int8 and int4 GEMMs quantize activations per row to int8 (half a step of max|x|/127
/// per element); on random data their product stays within 1% of the fp32 product of the
/// dequantized weights (measured ≈ 0.3%).
private let int8ActivationRelativeError = 0.01
/// fp32 products of the dequantized weights summed in fp32 (measured ≈ 1e-7 on random data).
private let fp32RelativeError = 1e-5
/// bf16 rounds activations to 8 significant bits (measured ≈ 0.2% on random data).
private let bf16ActivationRelativeError = 0.005

final class QuantizedFormatTests: XCTestCase {
    private func randomWeight(_ rows: Int, _ columns: Int, seed: UInt64) -> Tensor {
        var rng = TestRNG(seed: seed)
        var data = rng.floats(rows * columns, -0.5, 0.5)
        data[0] = 2.5   // an outlier in the first row (and group)
        if rows > 1 { data[columns] = -3 }
        return Tensor(shape: [rows, columns], data: data)
    }

    private let formats: [QuantizedTensor.Format] = [.int8, .int4(group: 32, symmetric: true), .int4(group: 32, symmetric: false),
                                                     .int4(group: 64, symmetric: true), .int4(group: 128, symmetric: false), .bf16]

    func testInt8AndBF16RoundTripErrorWithinHalfAStep() throws {
        let w = randomWeight(7, 128, seed: 1)
        for format in formats {
            let q = QuantizedTensor(quantizing: w, as: format)
            XCTAssertNoThrow(try q.validate(), "\(format)")
            let d = q.dequantized()
            for r in 0..<q.rows {
                for c in 0..<q.columns {
                    let i = r * q.columns + c, error = abs(d.data[i] - w.data[i])
                    switch format {
                    case .int8:
                        XCTAssertLessThanOrEqual(error, q.scales[r] * 0.5 * (1 + halfStepSlack), "\(format) [\(r), \(c)]")
                    case .int4:
                        break   // per group, below: the clipping search may clip a weight to lower the group's error
                    case .bf16:
                        XCTAssertLessThanOrEqual(error, abs(w.data[i]) * bf16RelativeError, "\(format) [\(r), \(c)]")
                    }
                }
            }
        }
    }

    /// int4's clipping search never does worse than plain min-max, whose error is at most
    /// half a step per weight: a group's squared error is within g · (step / 2)².
    func testInt4GroupErrorWithinPlainMinMax() throws {
        let w = randomWeight(7, 128, seed: 4)
        for symmetric in [true, false] {
            for g in [32, 64, 128] {
                let q = QuantizedTensor(quantizing: w, as: .int4(group: g, symmetric: symmetric))
                let d = q.dequantized()
                for r in 0..<q.rows {
                    for k in 0..<q.groupsPerRow {
                        let span = (r * q.columns + k * g)..<(r * q.columns + (k + 1) * g)
                        let lo = min(0, w.data[span].min()!), hi = max(0, w.data[span].max()!)
                        let plainStep = symmetric ? max(-lo, hi) / 7 : (hi - lo) / 15
                        let error = span.reduce(Float(0)) { $0 + (d.data[$1] - w.data[$1]) * (d.data[$1] - w.data[$1]) }
                        XCTAssertLessThanOrEqual(error, Float(g) * pow(plainStep * (0.5 + halfStepSlack), 2), "g\(g) sym \(symmetric) [\(r), \(k)]")
                    }
                }
            }
        }
    }

    func testStoredFormatNamesRoundTrip() {
        for format in formats { XCTAssertEqual(QuantizedTensor.Format(stored: format.description), format) }
        XCTAssertNil(QuantizedTensor.Format(stored: "int4-g48-sym"))
        XCTAssertNil(QuantizedTensor.Format(stored: "int3"))
    }

    func testZeroRowsAndGroupsGetAPositiveScale() throws {
        let w = Tensor(zeros: [2, 128])
        for format in formats {
            let q = QuantizedTensor(quantizing: w, as: format)
            XCTAssertNoThrow(try q.validate(), "\(format)")
            XCTAssertEqual(q.dequantized().data, w.data, "\(format)")
        }
    }

    /// The GEMMs against fp32 products of the dequantized weights, on awkward sizes.
    func testGemmsMatchTheDequantizedProduct() throws {
        for (m, n, k) in [(1, 16, 32), (3, 17, 64), (7, 33, 128), (13, 48, 96)] {
            var rng = TestRNG(seed: UInt64(m * 1000 + n))
            let x = rng.floats(m * k, -1, 1), bias = rng.floats(n, -0.1, 0.1)
            let w = randomWeight(n, k, seed: UInt64(n + k))
            for format in formats where format.fits(k) {
                let q = QuantizedTensor(quantizing: w, as: format)
                let d = q.dequantized()
                var expected = [Double](repeating: 0, count: m * n)
                for i in 0..<m { for j in 0..<n {
                    var s = Double(bias[j])
                    for c in 0..<k { s += Double(x[i * k + c]) * Double(d.data[j * k + c]) }
                    expected[i * n + j] = s
                } }
                for route in [QuantizedMatrix.Route.integer, .dequantized] {
                    var y = [Float](repeating: .nan, count: m * n)
                    QuantizedMatrix(q, route: route).multiply(rows: m, x: x, lda: k, y: &y, ldc: n, bias: bias)
                    // The dequantized route keeps x in fp32: only fp32 rounding is left.
                    let budget = format == .bf16 ? bf16ActivationRelativeError
                        : route == .dequantized ? fp32RelativeError : int8ActivationRelativeError
                    XCTAssertLessThanOrEqual(relativeError(y, expected), budget, "\(format) \(route) \(m)×\(n)×\(k)")
                }
            }
        }
    }

    func testThreadCountDoesNotChangeResults() throws {
        let (m, n, k) = (61, 80, 64)
        var rng = TestRNG(seed: 9)
        let x = rng.floats(m * k, -1, 1)
        let w = randomWeight(n, k, seed: 3)
        let saved = Compute.threads
        defer { Compute.setThreads(saved) }
        for format in formats where format.fits(k) {
          for route in [QuantizedMatrix.Route.integer, .dequantized] {
            let matrix = QuantizedMatrix(QuantizedTensor(quantizing: w, as: format), route: route)
            var results: [[Float]] = []
            for threads in [1, 2, 3] {
                Compute.setThreads(threads)
                var y = [Float](repeating: 0, count: m * n)
                matrix.multiply(rows: m, x: x, lda: k, y: &y, ldc: n, bias: nil)
                results.append(y)
            }
            XCTAssertEqual(results[0], results[1], "\(format) \(route)")
            XCTAssertEqual(results[0], results[2], "\(format) \(route)")
          }
        }
    }

    func testStackedRowsEqualSeparateMatrices() {
        let parts = (0..<3).map { QuantizedTensor(quantizing: randomWeight(16, 64, seed: UInt64($0)), as: .int4(group: 32, symmetric: false)) }
        let stacked = QuantizedTensor(stacking: parts)
        XCTAssertNoThrow(try stacked.validate())
        XCTAssertEqual(stacked.dequantized().data, parts.flatMap { $0.dequantized().data })
    }

    func testValidationNamesWhatIsWrong() {
        let good = QuantizedTensor(quantizing: randomWeight(4, 64, seed: 5), as: .int4(group: 32, symmetric: false))
        func problem(_ q: QuantizedTensor) -> String {
            do { try q.validate(); return "" } catch { return error.description }
        }
        var scales = good.scales
        scales[2] = -1
        XCTAssertTrue(problem(QuantizedTensor(format: good.format, rows: 4, columns: 64, values: good.values, scales: scales, zeros: good.zeros))
                        .contains("scale -1.0 at index 2"))
        scales[2] = .nan
        XCTAssertTrue(problem(QuantizedTensor(format: good.format, rows: 4, columns: 64, values: good.values, scales: scales, zeros: good.zeros))
                        .contains("not a finite positive"))
        XCTAssertTrue(problem(QuantizedTensor(format: good.format, rows: 4, columns: 64, values: Array(good.values.dropLast()),
                                              scales: good.scales, zeros: good.zeros)).contains("value bytes"))
        XCTAssertTrue(problem(QuantizedTensor(format: good.format, rows: 4, columns: 64, values: good.values,
                                              scales: Array(good.scales.dropLast()), zeros: good.zeros)).contains("scales for"))
        XCTAssertTrue(problem(QuantizedTensor(format: .int4(group: 64, symmetric: false), rows: 4, columns: 96, values: [UInt8](repeating: 0, count: 192),
                                              scales: [], zeros: [])).contains("group size 64 does not divide"))
        var zeros = good.zeros
        zeros[0] = 16
        XCTAssertTrue(problem(QuantizedTensor(format: good.format, rows: 4, columns: 64, values: good.values, scales: good.scales, zeros: zeros))
                        .contains("zero point 16"))
        let nanBF16 = QuantizedTensor(format: .bf16, rows: 1, columns: 2, values: [0, 0x80, 0xC0, 0x7F], scales: [], zeros: [])
        XCTAssertTrue(problem(nanBF16).contains("column 1 is not finite"))
    }

    // MARK: - The model file

    private func teacher(quantized: [String: QuantizedTensor]) -> TeacherFile {
        var tensors: [(name: String, tensor: Tensor)] = [("a.bias", Tensor(shape: [3], data: [1, 2, 3]))]
        for name in quantized.keys.sorted() { tensors.append((name, quantized[name]!.dequantized())) }
        var file = TeacherFile(tensors: tensors, configJSON: "{\"hidden_size\": 8}", vocabulary: ["[PAD]", "a"], pooling: "mean",
                               normalize: false, tokenizerOptionsJSON: "{}")
        file.quantized = quantized
        return file
    }

    func testFileRoundTripIsBitExact() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var quantized: [String: QuantizedTensor] = [:]
        for (i, format) in formats.enumerated() {
            quantized["w\(i).weight"] = QuantizedTensor(quantizing: randomWeight(5, 128, seed: UInt64(i)), as: format)
        }
        quantized["w0.weight"] = quantized["w0.weight"]!.withInputScale(0.0123)
        let url = dir.appendingPathComponent("q.h5")
        try teacher(quantized: quantized).write(to: url)
        let back = try TeacherFile.read(url)
        XCTAssertEqual(back.quantized, quantized)
        for (name, t) in back.tensors where name != "a.bias" { XCTAssertEqual(t, quantized[name]!.dequantized(), name) }
        XCTAssertEqual(back.tensors.map(\.name), ["a.bias"] + quantized.keys.sorted())
        XCTAssertEqual(try HDF5File.open(url).intAttribute("format_version"), 2)
        // Without quantized tensors the file stays version 1 (older builds read it).
        try teacher(quantized: [:]).write(to: url)
        XCTAssertEqual(try HDF5File.open(url).intAttribute("format_version"), 1)
    }

    func testReadingRefusesBadScalesNamingTheTensor() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = QuantizedTensor(quantizing: randomWeight(4, 32, seed: 2), as: .int8)
        var scales = good.scales
        scales[1] = .infinity
        let bad = QuantizedTensor(format: .int8, rows: 4, columns: 32, values: good.values, scales: scales, zeros: [])
        let url = dir.appendingPathComponent("bad.h5")
        try teacher(quantized: ["layer.weight": bad]).write(to: url)
        XCTAssertThrowsError(try TeacherFile.read(url)) { error in
            let text = String(describing: error)
            XCTAssertTrue(text.contains("bad.h5: quantized tensor 'layer.weight': scale inf at index 1"), text)
            XCTAssertTrue(text.contains("quantize the fp32 model again"), text)
        }
    }
}

extension QuantizedTensor.Format {
    /// Whether rows of `columns` fit this format's groups.
    func fits(_ columns: Int) -> Bool {
        if case .int4(let g, _) = self { return columns % g == 0 }
        return true
    }
}

/// int8-dynamic runs the block-of-32 activation kernel (dk_q8b) when the input width allows
/// it, per-row scales otherwise and for int8-static.
final class Int8BlockActivationTests: XCTestCase {
    func testInt8DynamicUsesBlockScalesWhenTheWidthAllows() {
        var rng = TestRNG(seed: 21)
        for (n, k, expectBlocks) in [(40, 96, true), (17, 384, true), (20, 45, false), (24, 80, false)] {
            let w = Tensor(shape: [n, k], data: rng.floats(n * k, -1, 1))
            let q = QuantizedTensor(quantizing: w, as: .int8)
            XCTAssertEqual(QuantizedMatrix(q).blockActivations, expectBlocks, "\(n)×\(k)")
            XCTAssertFalse(QuantizedMatrix(q.withInputScale(0.05)).blockActivations, "int8-static \(n)×\(k)")
            guard expectBlocks else { continue }
            // Same result as the block kernel's `_ref` on the stored values and scales.
            let m = 7
            let x = rng.floats(m * k, -1, 1), bias = rng.floats(n, -0.1, 0.1)
            var y = [Float](repeating: .nan, count: m * n), ref = y
            QuantizedMatrix(q, route: .integer).multiply(rows: m, x: x, lda: k, y: &y, ldc: n, bias: bias)
            let packed = UnsafeMutableRawPointer.allocate(byteCount: dk_q8b_packed_bytes(n, k), alignment: 64)
            let ws = UnsafeMutableRawPointer.allocate(byteCount: dk_q8b_workspace_bytes(m, k), alignment: 64)
            defer { packed.deallocate(); ws.deallocate() }
            let values = q.values.map { Int8(bitPattern: $0) }
            XCTAssertEqual(dk_q8b_pack(values, n, k, packed), 0)
            dk_q8b_gemm_ref(m, n, k, x, k, packed, q.scales, bias, &ref, n, Int32(DK_EPILOGUE_NONE), ws)
            XCTAssertEqual(y, ref, "\(n)×\(k)")
        }
    }
}
