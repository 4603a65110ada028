// Files are input: sizes and indices a file declares are checked once, when it is read,
// and a file that lies is a thrown `.corrupt` error — never an allocation trap, an overflow
// trap or an out-of-range index in a release build. The lying files are made with the
// library's own writers (a row dataset grown without data, records with indices the
// writer does not police), so each case is a few lines and needs no committed fixture.
import Foundation
import WeightIO
import XCTest

final class HostileFileTests: XCTestCase {
    /// A file whose row dataset `name` declares `rows` rows of `rowShape` but stores none.
    func emptyGrownDataset(rows: Int, rowShape: [Int], in dir: URL) throws -> URL {
        let url = dir.appendingPathComponent("grown.h5")
        let file = try HDF5File.create(url)
        try file.createRowDataset("big", type: .float32, rowShape: rowShape, chunk: HDF5ChunkOptions(rowsPerChunk: 1))
        try file.writeRows([Float](), to: "big", at: rows)   // grows the extent, writes nothing
        try file.close()
        return url
    }

    func testADatasetLargerThanItsFileIsRefusedBeforeAllocating() throws {
        let dir = try temporaryDirectory(self)
        let url = try emptyGrownDataset(rows: 1 << 40, rowShape: [], in: dir)
        let file = try HDF5File.open(url)
        XCTAssertEqual(try file.shape(of: "big"), [1 << 40], "the shape itself is addressable")
        assertWeightIOError(["grown.h5", "dataset 'big' declares 1099511627776 elements", "before decompression", "can hold"], kind: .corrupt) {
            _ = try file.readTensor("big")
        }
        assertWeightIOError(["dataset 'big' declares 1099511627776 elements"], kind: .corrupt) {
            _ = try file.readRows("big", rows: 0..<(1 << 40), as: Float.self)
        }
        // A range the file can hold still reads (unwritten chunks are HDF5's fill value 0).
        XCTAssertEqual(try file.readRows("big", rows: 5..<8, as: Float.self), [0, 0, 0])
    }

    /// A teacher file whose tensor declares more elements than the file holds is refused when
    /// it is read in place too: the caller would allocate for the declared shape first.
    func testATeacherTensorLargerThanItsFileIsRefusedWhenReadInPlace() throws {
        let url = try emptyGrownDataset(rows: 1 << 40, rowShape: [], in: try temporaryDirectory(self))
        let file = try HDF5File.open(url)
        assertWeightIOError(["grown.h5", "dataset 'big' declares 1099511627776 elements"], kind: .corrupt) {
            _ = try file.tensorShape(of: "big")
        }
        let teacher = url.deletingLastPathComponent().appendingPathComponent("teacher.h5")
        let writer = try HDF5File.create(teacher)
        for (name, value) in [("format", "distillery-teacher"), ("config_json", "{}"), ("pooling", "mean"), ("tokenizer_json", "{}")] {
            try writer.setAttribute(name, string: value)
        }
        try writer.setAttribute("format_version", int: 1)
        try writer.setAttribute("normalize", int: 0)
        try writer.writeBytes(Array("[PAD]\n".utf8), at: "__vocab__")
        try writer.createRowDataset("big", type: .float32, rowShape: [], chunk: HDF5ChunkOptions(rowsPerChunk: 1))
        try writer.writeRows([Float](), to: "big", at: 1 << 40)
        try writer.close()
        XCTAssertNotNil(try TeacherFile.read(teacher, weights: .settingsOnly), "the file is otherwise well-formed")
        assertWeightIOError(["teacher.h5", "dataset 'big' declares 1099511627776 elements"], kind: .corrupt) {
            _ = try TeacherFile.read(teacher, weights: .inPlace)
        }
    }

    func testDimensionsWhoseProductOverflowsAreRefused() throws {
        let dir = try temporaryDirectory(self)
        // 2^42 rows of 2^20 values: 2^62 elements, beyond what 8-byte sizes can address.
        let url = try emptyGrownDataset(rows: 1 << 42, rowShape: [1 << 20], in: dir)
        let file = try HDF5File.open(url)
        for read in [{ _ = try file.shape(of: "big") }, { _ = try file.readTensor("big") },
                     { _ = try file.readRows("big", rows: 0..<1, as: Float.self) }] {
            assertWeightIOError(["grown.h5", "'big' declares shape 4398046511104 × 1048576", "more elements than can be addressed"],
                                kind: .corrupt, read)
        }
    }

    /// A 3-class cache of one example per source row, with the given per-record changes.
    func cache(topK: Int, records: [LabelRecord], in dir: URL) throws -> URL {
        let url = dir.appendingPathComponent("labels.h5")
        let settings = LabelCacheSettings(teacherSHA256: "aa", teacherFile: "t.h5", dataSHA256: "bb", dataName: "toy",
                                          labels: ["a", "b", "c"], maxLength: 8, hiddenSize: 4, teacherLayers: 2,
                                          hiddenLayers: [], attentionLayers: [], attentionHeads: [], topK: topK,
                                          augmentation: LabelAugmentationSettings(copies: 0, probability: 0, neighbours: 1, seed: 1),
                                          sourceRows: records.count)
        let writer = try LabelCacheWriter(url: url, settings: settings, shard: LabelCacheShard(index: 0, count: 1, rows: 0..<records.count))
        for r in records { try writer.append(r) }
        try writer.finish(droppedCopies: 0)
        return url
    }

    func record(_ row: Int, label: Int32 = 0, logits: CachedLogits) -> LabelRecord {
        LabelRecord(tokenIDs: [101, 7, 102], sourceRow: row, copy: 0, label: label, logits: logits)
    }

    func testALabelCacheWithAnOutOfRangeTopKClassIsRefusedAtOpen() throws {
        let dir = try temporaryDirectory(self)
        let good = record(0, logits: .topK(indices: [2, 0], logits: [3, 1], restMass: 0.1))
        let bad = record(1, logits: .topK(indices: [1, 7], logits: [3, 1], restMass: 0.1))   // class 7 of 3
        let url = try cache(topK: 2, records: [good, bad], in: dir)
        assertWeightIOError(["labels.h5", "example 1 keeps class 7 among its top 2, outside 0..<3", "kd label"], kind: .corrupt) {
            _ = try LabelCache.open(url)
        }
        // The same cache without the bad record opens and rebuilds its logits.
        let fine = try cache(topK: 2, records: [good], in: try temporaryDirectory(self))
        XCTAssertEqual(try LabelCache.open(fine).fullLogits(examples: [0]).first?.count, 3)
    }

    func testALabelCacheWithAnOutOfRangeGoldLabelIsRefusedAtOpen() throws {
        let dir = try temporaryDirectory(self)
        let url = try cache(topK: 0, records: [record(0, label: 2, logits: .full([1, 2, 3])), record(1, label: 3, logits: .full([1, 2, 3]))], in: dir)
        assertWeightIOError(["labels.h5", "example 1 (copy 0) has gold label 3, expected 0..<3"], kind: .corrupt) {
            _ = try LabelCache.open(url)
        }
    }

    func testShardSplitNeverOverflows() {
        XCTAssertEqual(LabelCacheShard.split(sourceRows: 10, index: 1, count: 3).rows, 3..<6)
        XCTAssertEqual(LabelCacheShard.split(sourceRows: 10, index: 2, count: 3).rows, 6..<10)
        // Counts from a hostile cache file: products far beyond Int.
        let huge = LabelCacheShard.split(sourceRows: Int.max, index: Int.max - 1, count: Int.max)
        XCTAssertEqual(huge.rows, (Int.max - 1)..<Int.max)
        XCTAssertEqual(LabelCacheShard.split(sourceRows: 10, index: Int.max, count: 3).rows, 10..<10)
    }
}
