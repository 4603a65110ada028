// LabelCacheWriter: streams label records into a "distillery-labels" file (LabelCache.swift).
//
// Records are appended in example order. Each dataset has a row buffer that is written out
// in whole chunks only, so every chunk is compressed and written exactly once, memory stays
// at about one chunk per dataset, and the file bytes depend only on the sequence of records
// and the settings — never on how the caller batched them. That is what makes
// `kd label merge` of shards byte-identical to a single run: it appends the same records.
// The file is written to a hidden temporary sibling and renamed into place by `finish`;
// `abandon` (or deinit without `finish`) removes it, so a failed run leaves nothing.
// Left out on purpose: appending to an existing cache (a cache is made in one go).

import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Target uncompressed bytes per chunk: big enough for deflate to work well, small enough
/// that reading one example's rows decompresses little it does not need.
let labelCacheChunkBytes = 64 * 1024

/// Writes a label cache record by record; call `finish` to put the file in place.
public final class LabelCacheWriter {
    /// Final destination.
    public let url: URL
    /// What the cache is made from.
    public let settings: LabelCacheSettings
    /// The source rows this file covers.
    public let shard: LabelCacheShard
    private let output: OutputFile
    private var file: HDF5File?
    private var streams: [String: RowStream] = [:]
    private var examples = 0
    private var tokens: Int64 = 0
    private var squares: Int64 = 0
    private var finished = false

    /// Creates the temporary file and its (empty) datasets.
    public init(url: URL, settings: LabelCacheSettings, shard: LabelCacheShard) throws {
        self.url = url
        self.settings = settings
        self.shard = shard
        output = OutputFile(url)
        guard settings.attentionHeads.count == settings.attentionLayers.count, settings.topK >= 0,
              settings.topK < max(settings.classes, 1) || settings.topK == 0 else {
            throw WeightIOError(.unsupported, file: url, "inconsistent label-cache settings (top_k \(settings.topK) for \(settings.classes) classes, \(settings.attentionHeads.count) head counts for \(settings.attentionLayers.count) attention layers)",
                                hint: "this is a caller bug: top_k must be below the class count, one head count per attention layer")
        }
        do {
            let file = try HDF5File.create(output.temporaryURL)
            self.file = file
            func stream(_ path: String, _ type: HDF5NumberType, _ rowShape: [Int] = []) throws {
                let rowSize = rowShape.reduce(1, *)
                let chunk = HDF5ChunkOptions.compressed(rowBytes: rowSize * type.byteCount, targetBytes: labelCacheChunkBytes)
                try file.createRowDataset(path, type: type, rowShape: rowShape, chunk: chunk)
                streams[path] = RowStream(file: file, path: path, type: type, rowSize: rowSize, rowsPerChunk: chunk.rowsPerChunk)
            }
            try stream(LabelCachePaths.tokenIDs, .int32)
            try stream(LabelCachePaths.tokenOffsets, .int64)
            try stream(LabelCachePaths.sourceRow, .int32)
            try stream(LabelCachePaths.copy, .int32)
            try stream(LabelCachePaths.label, .int32)
            if settings.topK == 0 {
                try stream(LabelCachePaths.logits, .float32, [settings.classes])
            } else {
                try stream(LabelCachePaths.topKIndices, .int32, [settings.topK])
                try stream(LabelCachePaths.topKLogits, .float32, [settings.topK])
                try stream(LabelCachePaths.topKRestMass, .float32)
            }
            for layer in settings.hiddenLayers { try stream(LabelCachePaths.hidden(layer), .float32, [settings.hiddenSize]) }
            if !settings.attentionLayers.isEmpty {
                try stream(LabelCachePaths.attentionOffsets, .int64)
                for layer in settings.attentionLayers { try stream(LabelCachePaths.attention(layer), .float32) }
                try streams[LabelCachePaths.attentionOffsets]!.append([Int64(0)])
            }
            try streams[LabelCachePaths.tokenOffsets]!.append([Int64(0)])
        } catch {
            abandon()
            throw relocated(error)
        }
    }

    deinit { if !finished { abandon() } }

    /// Number of records appended so far.
    public var exampleCount: Int { examples }

    /// Appends one example; checks it against the settings first.
    public func append(_ record: LabelRecord) throws {
        let t = record.tokenIDs.count, h = settings.hiddenSize
        func bad(_ what: String) -> WeightIOError {
            WeightIOError(.unsupported, file: url, object: "example \(examples)", "example \(examples) (source row \(record.sourceRow), copy \(record.copy)): \(what)",
                          hint: "this is a caller bug: records must match the cache settings")
        }
        guard t >= 1, t <= settings.maxLength else { throw bad("\(t) tokens, expected 1…\(settings.maxLength)") }
        guard record.hidden.count == settings.hiddenLayers.count, record.hidden.allSatisfy({ $0.count == t * h }) else {
            throw bad("hidden states \(record.hidden.map(\.count)) values, expected \(settings.hiddenLayers.count) × \(t * h)")
        }
        guard record.attention.count == settings.attentionLayers.count,
              zip(record.attention, settings.attentionHeads).allSatisfy({ $0.count == $1 * t * t }) else {
            throw bad("attention maps of \(record.attention.map(\.count)) values, expected heads × \(t)² for layers \(settings.attentionLayers)")
        }
        guard record.copy >= 0, (record.copy == 0) || record.label == -1 else {
            throw bad("augmented copy \(record.copy) has gold label \(record.label); augmented copies carry −1 (soft labels only)")
        }
        guard let sourceRow = Int32(exactly: record.sourceRow), let copy = Int32(exactly: record.copy), sourceRow >= 0 else {
            throw bad("source row \(record.sourceRow) or copy \(record.copy) does not fit the file's int32 columns")
        }
        do {
            try streams[LabelCachePaths.tokenIDs]!.append(record.tokenIDs)
            tokens += Int64(t)
            try streams[LabelCachePaths.tokenOffsets]!.append([tokens])
            try streams[LabelCachePaths.sourceRow]!.append([sourceRow])
            try streams[LabelCachePaths.copy]!.append([copy])
            try streams[LabelCachePaths.label]!.append([record.label])
            switch (record.logits, settings.topK) {
            case (.full(let logits), 0) where logits.count == settings.classes:
                try streams[LabelCachePaths.logits]!.append(logits)
            case (.topK(let indices, let logits, let rest), let k) where k > 0 && indices.count == k && logits.count == k:
                try streams[LabelCachePaths.topKIndices]!.append(indices)
                try streams[LabelCachePaths.topKLogits]!.append(logits)
                try streams[LabelCachePaths.topKRestMass]!.append([rest])
            default:
                throw bad("logits \(record.logits) do not match top_k \(settings.topK) with \(settings.classes) classes")
            }
            for (layer, values) in zip(settings.hiddenLayers, record.hidden) {
                try streams[LabelCachePaths.hidden(layer)]!.append(values)
            }
            if !settings.attentionLayers.isEmpty {
                for (layer, values) in zip(settings.attentionLayers, record.attention) {
                    try streams[LabelCachePaths.attention(layer)]!.append(values)
                }
                squares += Int64(t * t)
                try streams[LabelCachePaths.attentionOffsets]!.append([squares])
            }
            examples += 1
        } catch {
            abandon()
            throw relocated(error)
        }
    }

    /// Writes the remaining rows and the attributes, closes the file and renames it into place.
    public func finish(droppedCopies: Int) throws {
        guard let file, !finished else {
            throw WeightIOError(.ioFailure, file: url, "the cache was already finished or abandoned",
                                hint: "this is a caller bug: finish a writer once")
        }
        do {
            for path in streams.keys.sorted() { try streams[path]!.flush(final: true) }
            try file.setAttribute(labelCacheFormatAttribute, string: labelCacheFormatName)
            try file.setAttribute(labelCacheVersionAttribute, int: labelCacheFormatVersion)
            for (name, value) in settings.fields {
                switch name {
                case "max_length", "hidden_size", "teacher_layers", "top_k", "augment_copies", "augment_neighbours", "source_rows":
                    try file.setAttribute(name, int: Int(value)!)
                case "augment_probability":
                    try file.setAttribute(name, double: settings.augmentation.probability)
                default:
                    try file.setAttribute(name, string: value)
                }
            }
            try file.setAttribute("classes", int: settings.classes)
            try file.setAttribute("shard_index", int: shard.index)
            try file.setAttribute("shard_count", int: shard.count)
            try file.setAttribute("shard_row_start", int: shard.rows.lowerBound)
            try file.setAttribute("shard_row_end", int: shard.rows.upperBound)
            try file.setAttribute("examples", int: examples)
            try file.setAttribute("tokens", int: Int(tokens))
            try file.setAttribute("augment_dropped_copies", int: droppedCopies)
            streams = [:]
            try file.close()
            self.file = nil
            try output.commit()
            finished = true
        } catch {
            abandon()
            throw relocated(error)
        }
    }

    /// Closes and deletes the temporary file; the destination is never touched.
    public func abandon() {
        streams = [:]
        try? file?.close()
        file = nil
        finished = true
        output.abandon()
    }

    /// Reports errors against the destination, not the temporary name.
    private func relocated(_ error: any Error) -> any Error {
        guard var error = error as? WeightIOError else { return error }
        error.path = url.path
        return error
    }
}

/// A row dataset written in whole chunks: values accumulate until at least one chunk is full.
private final class RowStream {
    let file: HDF5File, path: String, type: HDF5NumberType, rowSize: Int, rowsPerChunk: Int
    private var floats: [Float] = [], int32s: [Int32] = [], int64s: [Int64] = []
    private var rowsWritten = 0

    init(file: HDF5File, path: String, type: HDF5NumberType, rowSize: Int, rowsPerChunk: Int) {
        (self.file, self.path, self.type, self.rowSize, self.rowsPerChunk) = (file, path, type, rowSize, rowsPerChunk)
    }

    func append(_ values: [Float]) throws { floats += values; try flush(final: false) }
    func append(_ values: [Int32]) throws { int32s += values; try flush(final: false) }
    func append(_ values: [Int64]) throws { int64s += values; try flush(final: false) }

    /// Writes every complete chunk (and, when `final`, the partial last one).
    func flush(final: Bool) throws {
        switch type {
        case .float32: try drain(&floats, final: final)
        case .int32: try drain(&int32s, final: final)
        case .int64: try drain(&int64s, final: final)
        }
    }

    private func drain<T: HDF5Number>(_ buffer: inout [T], final: Bool) throws {
        let rows = buffer.count / rowSize
        let take = final ? rows : rows / rowsPerChunk * rowsPerChunk
        guard take > 0 else { return }
        let count = take * rowSize
        try file.writeRows(Array(buffer[..<count]), to: path, at: rowsWritten)
        rowsWritten += take
        buffer.removeFirst(count)
    }
}
