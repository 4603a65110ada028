// Chunked/compressed row datasets (HDF5RowDatasets) and the label-cache format
// (LabelCache, LabelCacheWriter): round trips of every tensor kind, row-range reads across
// chunk boundaries, top-k logits and their rebuild, byte-identical output for identical
// records, and the errors for another teacher/data, a non-cache file and bad records.
import DistilleryTensor
import Foundation
import WeightIO
import XCTest

/// Rebuilt top-k probabilities at T = 1 must equal the true ones up to float32 rounding of
/// logits around |z| ≤ 10 (a few ulps of exp), so 1e-5 absolute.
let rebuiltProbabilityTolerance: Float = 1e-5

final class RowDatasetTests: XCTestCase {
    func testAppendAndReadRowRangesAcrossChunks() throws {
        let dir = try temporaryDirectory(self)
        let file = try HDF5File.create(dir.appendingPathComponent("rows.h5"))
        try file.createRowDataset("f", type: .float32, rowShape: [3], chunk: HDF5ChunkOptions(rowsPerChunk: 4))
        try file.createRowDataset("group/i", type: .int32, chunk: HDF5ChunkOptions(rowsPerChunk: 5, deflateLevel: 9, shuffle: false))
        try file.createRowDataset("l", type: .int64, rowShape: [2], chunk: HDF5ChunkOptions(rowsPerChunk: 3, deflateLevel: nil, shuffle: false))
        let floats = (0..<(11 * 3)).map { Float($0) * 0.5 - 3 }
        // Appends of 1, 2, 5 and 3 rows: chunk boundaries fall inside appends.
        var at = 0
        for rows in [1, 2, 5, 3] {
            XCTAssertEqual(try file.appendRows(Array(floats[(at * 3)..<((at + rows) * 3)]), to: "f"), at + rows)
            at += rows
        }
        let ints = (0..<13).map { Int32($0 * 7 - 40) }
        try file.writeRows(ints, to: "group/i", at: 0)
        try file.writeRows([Int64.max, Int64.min, 0, 1], to: "l", at: 0)
        XCTAssertEqual(try file.rowCount("f"), 11)
        XCTAssertEqual(try file.shape(of: "f"), [11, 3])
        for range in [0..<11, 3..<9, 4..<5, 10..<11, 0..<0] {
            XCTAssertEqual(try file.readRows("f", rows: range, as: Float.self), Array(floats[(range.lowerBound * 3)..<(range.upperBound * 3)]), "\(range)")
        }
        XCTAssertEqual(try file.readRows("group/i", rows: 4..<13, as: Int32.self), Array(ints[4..<13]))
        XCTAssertEqual(try file.readRows("l", rows: 0..<2, as: Int64.self), [Int64.max, Int64.min, 0, 1])
        let layout = try file.storageLayout(of: "f")
        XCTAssertEqual(layout.chunkShape, [4, 3])
        XCTAssertEqual(layout.filters, ["shuffle", "deflate"])
        XCTAssertEqual(try file.storageLayout(of: "group/i").filters, ["deflate"])
        XCTAssertEqual(try file.storageLayout(of: "l").filters, [])
        assertWeightIOError(["rows.h5", "rows 9..<12 are outside 'f' (11 rows)"], kind: .unsupported) {
            _ = try file.readRows("f", rows: 9..<12, as: Float.self)
        }
        assertWeightIOError(["rows.h5", "dataset 'f' is float32, expected int32"], kind: .unsupported) {
            _ = try file.readRows("f", rows: 0..<1, as: Int32.self)
        }
        assertWeightIOError(["cannot write 4 values at row 0 of 'f' (rows of 3 values)"]) {
            try file.writeRows([Float](repeating: 0, count: 4), to: "f", at: 0)
        }
        try file.close()
        // Reopened read-only, ranges still read the same.
        let reopened = try HDF5File.open(dir.appendingPathComponent("rows.h5"))
        XCTAssertEqual(try reopened.readRows("f", rows: 2..<7, as: Float.self), Array(floats[6..<21]))
    }

    func testCompressionShrinksRedundantDataAndBytesAreReproducible() throws {
        let dir = try temporaryDirectory(self)
        var sizes: [Data] = []
        for name in ["a.h5", "b.h5"] {
            let url = dir.appendingPathComponent(name)
            let file = try HDF5File.create(url)
            try file.createRowDataset("x", type: .float32, rowShape: [64], chunk: .compressed(rowBytes: 256))
            // Smooth, low-entropy rows: shuffle + deflate must shrink them well below raw size.
            let values = (0..<(1000 * 64)).map { Float(($0 / 64) % 10) }
            try file.appendRows(values, to: "x")
            XCTAssertLessThan(try file.storageLayout(of: "x").storedBytes, values.count * 4 / 5)
            try file.close()
            sizes.append(try Data(contentsOf: url))
        }
        XCTAssertEqual(sizes[0], sizes[1], "the same writes gave different file bytes (timestamps?)")
    }
}

final class LabelCacheTests: XCTestCase {
    /// Settings of a small cache: 3 classes, H = 4, hidden 0 and 2, attention of layer 2 (2 heads).
    func settings(topK: Int = 0, teacher: String = "aa11", data: String = "bb22") -> LabelCacheSettings {
        LabelCacheSettings(teacherSHA256: teacher, teacherFile: "teacher.h5", dataSHA256: data, dataName: "toy",
                           labels: ["neg", "neu", "pos"], maxLength: 8, hiddenSize: 4, teacherLayers: 2,
                           hiddenLayers: [0, 2], attentionLayers: [2], attentionHeads: [2], topK: topK,
                           augmentation: LabelAugmentationSettings(copies: 2, probability: 0.4, neighbours: 15, seed: UInt64.max),
                           sourceRows: 3)
    }

    /// Records of varied lengths with distinct values; copies > 0 carry label −1.
    func records(topK: Int) -> [LabelRecord] {
        let layout: [(row: Int, copy: Int, length: Int)] = [(0, 0, 3), (0, 1, 3), (1, 0, 5), (2, 0, 1), (2, 2, 8), (2, 0, 2)]
        return layout.enumerated().map { i, e in
            let t = e.length
            let logits: [Float] = [Float(i) - 1.5, 0.25 * Float(i), 2 - Float(i)]
            let f = Float(i)
            return LabelRecord(tokenIDs: (0..<t).map { Int32(100 * i + $0) }, sourceRow: e.row, copy: e.copy,
                               label: e.copy == 0 ? Int32(i % 3) : -1,
                               logits: topK == 0 ? .full(logits) : LabelCache.topK(logits, k: topK),
                               hidden: [(0..<(t * 4)).map { f + Float($0) * 0.01 }, (0..<(t * 4)).map { -f - Float($0) * 0.02 }],
                               attention: [(0..<(2 * t * t)).map { f * 0.1 + Float($0) / Float(2 * t * t) }])
        }
    }

    func write(_ records: [LabelRecord], settings: LabelCacheSettings, to url: URL, dropped: Int = 1) throws {
        let writer = try LabelCacheWriter(url: url, settings: settings, shard: LabelCacheShard(index: 0, count: 1, rows: 0..<3))
        for r in records { try writer.append(r) }
        try writer.finish(droppedCopies: dropped)
    }

    func testRoundTripFullLogitsHiddenAndAttention() throws {
        let dir = try temporaryDirectory(self)
        let url = dir.appendingPathComponent("labels.h5")
        let input = records(topK: 0)
        try write(input, settings: settings(), to: url)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["labels.h5"], "temporary file left behind")
        let cache = try LabelCache.open(url)
        XCTAssertEqual(cache.settings, settings())
        XCTAssertEqual(cache.shard, LabelCacheShard(index: 0, count: 1, rows: 0..<3))
        XCTAssertEqual(cache.exampleCount, 6)
        XCTAssertEqual(cache.tokenCount, 22)
        XCTAssertEqual(cache.droppedCopies, 1)
        XCTAssertEqual(cache.labels, [0, -1, 2, 0, -1, 2])
        XCTAssertEqual(try cache.records(0..<6), input)
        // Arbitrary order and repeats: a shuffled training batch.
        let batch = [4, 0, 5, 2, 3, 4]
        XCTAssertEqual(try cache.tokenIDs(examples: batch), batch.map { input[$0].tokenIDs })
        XCTAssertEqual(try cache.hidden(layer: 2, examples: batch), batch.map { input[$0].hidden[1] })
        XCTAssertEqual(try cache.attention(layer: 2, examples: batch), batch.map { input[$0].attention[0] })
        XCTAssertEqual(try cache.fullLogits(examples: [1]), [[-0.5, 0.25, 1]])
        let layout = try HDF5File.open(url).storageLayout(of: "hidden/layer_0")
        XCTAssertEqual(layout.filters, ["shuffle", "deflate"])
        XCTAssertNotNil(layout.chunkShape)
        assertWeightIOError(["labels.h5", "hidden state 1 is not stored (stored: 0, 2)", "online"], kind: .missingObject) {
            _ = try cache.hidden(layer: 1, examples: [0])
        }
        assertWeightIOError(["example 6 is outside the cache (6 examples)"], kind: .missingObject) {
            _ = try cache.tokenIDs(examples: [6])
        }
    }

    func testTopKRoundTripAndRebuild() throws {
        let dir = try temporaryDirectory(self)
        let url = dir.appendingPathComponent("topk.h5")
        let input = records(topK: 2)
        try write(input, settings: settings(topK: 2), to: url)
        let cache = try LabelCache.open(url)
        XCTAssertEqual(try cache.records(0..<6), input)
        XCTAssertEqual(try cache.logits(examples: [0]), [input[0].logits])

        // Ties go to the lower class; the rest mass is the softmax of the dropped classes.
        let logits: [Float] = [1, 3, 3, -2, 0.5]
        guard case .topK(let indices, let values, let rest) = LabelCache.topK(logits, k: 2) else { return XCTFail("not top-k") }
        XCTAssertEqual(indices, [1, 2])
        XCTAssertEqual(values, [3, 3])
        let p = softmax(logits)
        XCTAssertEqual(rest, p[0] + p[3] + p[4], accuracy: rebuiltProbabilityTolerance)
        // Rebuilt logits: exact probabilities on the kept classes at T = 1, the rest spread evenly.
        let rebuilt = LabelCache.fullLogits(.topK(indices: indices, logits: values, restMass: rest), classes: 5)
        let q = softmax(rebuilt)
        XCTAssertEqual(q[1], p[1], accuracy: rebuiltProbabilityTolerance)
        XCTAssertEqual(q[2], p[2], accuracy: rebuiltProbabilityTolerance)
        for j in [0, 3, 4] { XCTAssertEqual(q[j], rest / 3, accuracy: rebuiltProbabilityTolerance) }
        // No mass left: the others get a finite, negligible logit.
        let sharp = LabelCache.fullLogits(.topK(indices: [0], logits: [5], restMass: 0), classes: 3)
        XCTAssertTrue(sharp.allSatisfy(\.isFinite))
        XCTAssertEqual(softmax(sharp)[0], 1, accuracy: rebuiltProbabilityTolerance)
    }

    func testSameRecordsGiveSameBytesWhateverTheBatching() throws {
        let dir = try temporaryDirectory(self)
        let input = records(topK: 0)
        try write(input, settings: settings(), to: dir.appendingPathComponent("a.h5"))
        // Written again through a reader round trip (what kd label merge does).
        let reread = try LabelCache.open(dir.appendingPathComponent("a.h5")).records(0..<6)
        try write(reread, settings: settings(), to: dir.appendingPathComponent("b.h5"))
        XCTAssertEqual(try Data(contentsOf: dir.appendingPathComponent("a.h5")), try Data(contentsOf: dir.appendingPathComponent("b.h5")))
    }

    func testVerifyRejectsAnotherTeacherOrData() throws {
        let dir = try temporaryDirectory(self)
        let url = dir.appendingPathComponent("labels.h5")
        try write(records(topK: 0), settings: settings(teacher: String(repeating: "a", count: 64), data: String(repeating: "b", count: 64)), to: url)
        let cache = try LabelCache.open(url)
        XCTAssertNoThrow(try cache.verify(teacherSHA256: String(repeating: "a", count: 64), teacherFile: "out/t.h5",
                                          dataSHA256: String(repeating: "b", count: 64), dataFile: "data/toy"))
        assertWeightIOError(["labels.h5", "teacher 'teacher.h5'", "aaaaaaaaaaaa…", "out/other.h5", "cccccccccccc…"], kind: .mismatch) {
            try cache.verify(teacherSHA256: String(repeating: "c", count: 64), teacherFile: "out/other.h5",
                             dataSHA256: String(repeating: "b", count: 64), dataFile: "data/toy")
        }
        assertWeightIOError(["labels.h5", "data 'toy'", "bbbbbbbbbbbb…", "data/other", "dddddddddddd…"], kind: .mismatch) {
            try cache.verify(teacherSHA256: String(repeating: "a", count: 64), teacherFile: "out/t.h5",
                             dataSHA256: String(repeating: "d", count: 64), dataFile: "data/other")
        }
        XCTAssertEqual(settings().differences(from: settings(teacher: "zz")), ["teacher_sha256: aa11 vs zz"])
    }

    func testNotACacheAndBadRecordsAreClearErrors() throws {
        let dir = try temporaryDirectory(self)
        let other = dir.appendingPathComponent("weights.h5")
        let file = try HDF5File.create(other)
        try file.writeTensor(sampleTensor([2]), at: "x")
        try file.close()
        assertWeightIOError(["weights.h5", "not a Distillery label cache", "kd label"], kind: .notThisFormat) {
            _ = try LabelCache.open(other)
        }
        let url = dir.appendingPathComponent("bad.h5")
        var gold = records(topK: 0)[1]
        gold.label = 2
        let writer = try LabelCacheWriter(url: url, settings: settings(), shard: LabelCacheShard(index: 0, count: 1, rows: 0..<3))
        assertWeightIOError(["bad.h5", "augmented copy 1 has gold label 2"]) { try writer.append(gold) }
        var short = records(topK: 0)[0]
        short.hidden.removeLast()
        assertWeightIOError(["hidden states"]) { try writer.append(short) }
        writer.abandon()
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["weights.h5"], "abandoned writer left files")
        // A writer dropped without finish leaves nothing either.
        do { _ = try LabelCacheWriter(url: url, settings: settings(), shard: LabelCacheShard(index: 0, count: 1, rows: 0..<3)) }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["weights.h5"])
    }

    func testCostCountsEveryPart() {
        let cost = LabelCacheCost(settings: settings(), examples: 10, tokens: 100, squaredTokens: 1200)
        XCTAssertEqual(cost.logitBytes, 10 * 3 * 4)
        XCTAssertEqual(cost.hiddenBytes, 100 * 4 * 4 * 2)
        XCTAssertEqual(cost.attentionBytes, 1200 * 2 * 4 + 11 * 8)
        XCTAssertEqual(cost.metadataBytes, 100 * 4 + 11 * 8 + 10 * 12)
        XCTAssertEqual(LabelCacheCost(settings: settings(topK: 1), examples: 10, tokens: 100, squaredTokens: 0).logitBytes, 10 * 12)
        XCTAssertGreaterThan(cost.estimatedDiskBytes, 0)
    }

    func softmax(_ z: [Float]) -> [Float] {
        let m = z.max()!
        let e = z.map { Foundation.exp(Double($0 - m)) }
        let s = e.reduce(0, +)
        return e.map { Float($0 / s) }
    }
}
