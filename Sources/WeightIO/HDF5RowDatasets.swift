// HDF5RowDatasets: chunked, compressed datasets addressed by row ranges (hyperslabs).
//
// A "row dataset" is an HDF5 dataset of shape [rows, d1, d2, …] whose first dimension is
// unlimited, stored in chunks of whole rows and compressed with the shuffle filter followed
// by deflate (the pair h5py calls `shuffle=True, compression="gzip"`). Rows are appended or
// written at any offset (the dataset grows as needed) and read back by row range, so a
// trainer can fetch one batch of cached activations without loading the file. Object
// timestamps are off, so the same writes in the same order always give the same file bytes.
// Follows the HDF5 user guide's chunking chapter (H5Pset_chunk, H5Pset_shuffle,
// H5Pset_deflate, H5Dset_extent, H5Sselect_hyperslab). Left out on purpose: chunking along
// other dimensions than the first, other filters (szip, lz4, …), and a tuned chunk cache —
// callers that write whole chunks in order (LabelCacheWriter does) never need one.

import CHDF5
import DistilleryTensor
import Foundation

/// Element types of row datasets: float32, int32 and int64, little-endian on disk.
public enum HDF5NumberType: String, Sendable, Equatable {
    case float32, int32, int64

    /// Bytes per element.
    public var byteCount: Int { self == .int64 ? 8 : 4 }

    var fileType: hid_t {
        switch self {
        case .float32: return chdf5_ieee_f32le()
        // The shim has no H5T_STD_I32LE accessor; the file records the concrete type, which
        // for the native int32 on the little-endian targets Distillery builds for is I32LE.
        case .int32: return chdf5_native_int32()
        case .int64: return chdf5_std_i64le()
        }
    }

    var memoryType: hid_t {
        switch self {
        case .float32: return chdf5_native_float()
        case .int32: return chdf5_native_int32()
        case .int64: return chdf5_native_int64()
        }
    }

    var typeClass: H5T_class_t { self == .float32 ? H5T_FLOAT : H5T_INTEGER }
}

/// A Swift number type that row datasets read and write (`Float`, `Int32`, `Int64`).
public protocol HDF5Number: BitwiseCopyable, Sendable {
    /// The HDF5 element type a value of this type is stored as.
    static var hdf5NumberType: HDF5NumberType { get }
}

extension Float: HDF5Number { public static var hdf5NumberType: HDF5NumberType { .float32 } }
extension Int32: HDF5Number { public static var hdf5NumberType: HDF5NumberType { .int32 } }
extension Int64: HDF5Number { public static var hdf5NumberType: HDF5NumberType { .int64 } }

/// How a row dataset is chunked and compressed.
public struct HDF5ChunkOptions: Sendable, Equatable {
    /// Rows per chunk (≥ 1); a chunk is the unit of compression and of reading.
    public var rowsPerChunk: Int
    /// Deflate level 0–9, or nil for no compression.
    public var deflateLevel: Int?
    /// Byte-shuffle before deflate (groups the bytes of each float; helps float data compress).
    public var shuffle: Bool

    /// Creates chunk options.
    public init(rowsPerChunk: Int, deflateLevel: Int? = 4, shuffle: Bool = true) {
        self.rowsPerChunk = rowsPerChunk
        self.deflateLevel = deflateLevel
        self.shuffle = shuffle
    }

    /// Shuffle + deflate with about `targetBytes` per chunk for rows of `rowBytes` bytes.
    public static func compressed(rowBytes: Int, targetBytes: Int = 128 * 1024, deflateLevel: Int = 4) -> HDF5ChunkOptions {
        HDF5ChunkOptions(rowsPerChunk: max(1, targetBytes / max(rowBytes, 1)), deflateLevel: deflateLevel, shuffle: true)
    }
}

/// Chunking and filters of a stored dataset, as HDF5 reports them.
public struct HDF5StorageLayout: Sendable, Equatable {
    /// Chunk shape, or nil for a contiguous (unchunked) dataset.
    public var chunkShape: [Int]?
    /// Filter names in pipeline order: "shuffle", "deflate", or "filter N".
    public var filters: [String]
    /// Bytes the dataset's data occupies in the file (after compression).
    public var storedBytes: Int
}

extension HDF5File {
    // MARK: Creating

    /// Creates an empty row dataset `[0, rowShape…]` with an unlimited first dimension,
    /// chunked by `chunk.rowsPerChunk` rows and compressed as `chunk` says.
    public func createRowDataset(_ path: String, type: HDF5NumberType, rowShape: [Int] = [],
                                 chunk: HDF5ChunkOptions) throws {
        guard chunk.rowsPerChunk >= 1, rowShape.allSatisfy({ $0 >= 1 }) else {
            throw error(.unsupported, path, "row dataset '\(path)' needs rowsPerChunk ≥ 1 and positive row dimensions, got \(chunk.rowsPerChunk) and \(describeShape(rowShape))",
                        hint: "this is a caller bug: pass positive sizes")
        }
        let file = try openFileID()
        let dims = ([0] + rowShape).map { hsize_t($0) }
        let maxDims = [hsize_t.max] + rowShape.map { hsize_t($0) }   // hsize_t.max is H5S_UNLIMITED
        let space = try check(H5Screate_simple(Int32(dims.count), dims, maxDims), path,
                              "cannot create a dataspace for '\(path)'")
        defer { H5Sclose(space) }
        let dcpl = try check(H5Pcreate(chdf5_p_dataset_create()), path, "cannot create dataset properties")
        defer { H5Pclose(dcpl) }
        _ = try check(H5Pset_obj_track_times(dcpl, false), path, "cannot turn off timestamps for '\(path)'")
        let chunkDims = ([chunk.rowsPerChunk] + rowShape).map { hsize_t($0) }
        _ = try check(H5Pset_chunk(dcpl, Int32(chunkDims.count), chunkDims), path, "cannot set chunking for '\(path)'")
        if chunk.shuffle {
            _ = try check(H5Pset_shuffle(dcpl), path, "cannot enable the shuffle filter for '\(path)'",
                          hint: "the HDF5 library lacks the shuffle filter; check `pkg-config --modversion hdf5`")
        }
        if let level = chunk.deflateLevel {
            _ = try check(H5Pset_deflate(dcpl, UInt32(max(0, min(9, level)))), path, "cannot enable deflate for '\(path)'",
                          hint: "the HDF5 library was built without zlib; install libhdf5-dev from the distribution")
        }
        let lcpl = try check(H5Pcreate(chdf5_p_link_create()), path, "cannot create link properties")
        defer { H5Pclose(lcpl) }
        _ = try check(H5Pset_create_intermediate_group(lcpl, 1), path, "cannot enable intermediate groups")
        let d = try check(H5Dcreate2(file, path, type.fileType, space, lcpl, dcpl, chdf5_p_default()), path,
                          "cannot create dataset '\(path)'",
                          hint: "a dataset or group of that name may already exist, or the name is empty")
        H5Dclose(d)
    }

    // MARK: Writing rows

    /// Writes `values` (whole rows, row-major) at row `start`, growing the dataset when the
    /// rows end past its current length. Returns the dataset's row count afterwards.
    @discardableResult
    public func writeRows<T: HDF5Number>(_ values: [T], to path: String, at start: Int) throws -> Int {
        try withDataset(path) { d in
            let shape = try shapeOf(dataset: d, path: path)
            try requireRowDataset(d, path: path, shape: shape, type: T.hdf5NumberType)
            let rowSize = shape.dropFirst().reduce(1, *)
            guard start >= 0, values.count % rowSize == 0 else {
                throw error(.unsupported, path, "cannot write \(values.count) values at row \(start) of '\(path)' (rows of \(rowSize) values)",
                            hint: "this is a caller bug: write whole rows at a non-negative row")
            }
            let rows = values.count / rowSize
            let end = start + rows
            if end > shape[0] {
                var grown = shape.map { hsize_t($0) }
                grown[0] = hsize_t(end)
                _ = try check(H5Dset_extent(d, grown), path, "cannot grow '\(path)' to \(end) rows")
            }
            guard rows > 0 else { return max(end, shape[0]) }
            try withRowSelection(d, path: path, shape: shape, rows: start..<end) { memorySpace, fileSpace in
                let status = values.withUnsafeBytes { raw in
                    H5Dwrite(d, T.hdf5NumberType.memoryType, memorySpace, fileSpace, chdf5_p_default(), raw.baseAddress)
                }
                _ = try check(status, path, "cannot write rows \(start)..<\(end) of '\(path)'", hint: "the disk may be full")
            }
            return max(end, shape[0])
        }
    }

    /// Appends whole rows at the end of a row dataset; returns the new row count.
    @discardableResult
    public func appendRows<T: HDF5Number>(_ values: [T], to path: String) throws -> Int {
        try writeRows(values, to: path, at: try rowCount(path))
    }

    // MARK: Reading rows

    /// Number of rows (the first dimension) of the dataset at `path`.
    public func rowCount(_ path: String) throws -> Int {
        let shape = try shape(of: path)
        guard let rows = shape.first else {
            throw error(.unsupported, path, "'\(path)' is a scalar, not a row dataset", hint: "check which dataset you meant")
        }
        return rows
    }

    /// Reads rows `rows` of the dataset at `path` (row-major, every row's values in order),
    /// decompressing only the chunks those rows touch.
    public func readRows<T: HDF5Number>(_ path: String, rows: Range<Int>, as type: T.Type = T.self) throws -> [T] {
        try withDataset(path) { d in
            let shape = try shapeOf(dataset: d, path: path)
            try requireRowDataset(d, path: path, shape: shape, type: T.hdf5NumberType)
            guard rows.lowerBound >= 0, rows.upperBound <= shape[0] else {
                throw error(.unsupported, path, "rows \(rows.lowerBound)..<\(rows.upperBound) are outside '\(path)' (\(shape[0]) rows)",
                            hint: "the file holds fewer rows than asked for; was it written completely?")
            }
            let count = rows.count * shape.dropFirst().reduce(1, *)   // ≤ the checked element count
            guard count > 0 else { return [] }
            try requireStorable(d, path: path, elements: count)
            var status: herr_t = 0
            let values = try [T](unsafeUninitializedCapacity: count) { buffer, initialized in
                try withRowSelection(d, path: path, shape: shape, rows: rows) { memorySpace, fileSpace in
                    status = H5Dread(d, T.hdf5NumberType.memoryType, memorySpace, fileSpace, chdf5_p_default(), buffer.baseAddress)
                }
                initialized = count   // trivial element type; discarded below if the read failed
            }
            _ = try check(status, path, "cannot read rows \(rows.lowerBound)..<\(rows.upperBound) of '\(path)'",
                          hint: "the file may be truncated or use a filter this HDF5 lacks; re-create it")
            return values
        }
    }

    /// Chunk shape, filter pipeline and stored size of the dataset at `path`.
    public func storageLayout(of path: String) throws -> HDF5StorageLayout {
        try withDataset(path) { d in
            let dcpl = try check(H5Dget_create_plist(d), path, "cannot read the creation properties of '\(path)'")
            defer { H5Pclose(dcpl) }
            var chunkShape: [Int]? = nil
            if H5Pget_layout(dcpl) == H5D_CHUNKED {
                var dims = [hsize_t](repeating: 0, count: 32)
                let rank = try check(H5Pget_chunk(dcpl, 32, &dims), path, "cannot read the chunk shape of '\(path)'")
                chunkShape = dims.prefix(Int(rank)).map { Int(clamping: $0) }
            }
            let filterCount = try check(H5Pget_nfilters(dcpl), path, "cannot count the filters of '\(path)'")
            var filters: [String] = []
            for i in 0..<UInt32(filterCount) {
                var flags: UInt32 = 0, elements = 8, config: UInt32 = 0
                var values = [UInt32](repeating: 0, count: 8)
                var name = [CChar](repeating: 0, count: 64)
                let id = H5Pget_filter2(dcpl, i, &flags, &elements, &values, 64, &name, &config)
                switch id {
                case H5Z_filter_t(H5Z_FILTER_DEFLATE): filters.append("deflate")
                case H5Z_filter_t(H5Z_FILTER_SHUFFLE): filters.append("shuffle")
                default: filters.append("filter \(id)")
                }
            }
            return HDF5StorageLayout(chunkShape: chunkShape, filters: filters, storedBytes: Int(clamping: H5Dget_storage_size(d)))
        }
    }

    // MARK: Plumbing

    private func requireRowDataset(_ d: hid_t, path: String, shape: [Int], type: HDF5NumberType) throws {
        guard !shape.isEmpty else {
            throw error(.unsupported, path, "'\(path)' is a scalar, not a row dataset", hint: "check which dataset you meant")
        }
        let fileType = try check(H5Dget_type(d), path, "cannot read the type of '\(path)'")
        defer { H5Tclose(fileType) }
        guard H5Tget_class(fileType) == type.typeClass else {
            throw error(.unsupported, path, "dataset '\(path)' is \(HDF5File.describe(type: fileType)), expected \(type.rawValue)",
                        hint: "the file was written by another tool or version; re-create it")
        }
    }

    /// Selects rows `rows` of the dataset in a file dataspace and a matching memory dataspace.
    private func withRowSelection(_ d: hid_t, path: String, shape: [Int], rows: Range<Int>,
                                  _ body: (hid_t, hid_t) throws -> Void) throws {
        let fileSpace = try check(H5Dget_space(d), path, "cannot read the dataspace of '\(path)'")
        defer { H5Sclose(fileSpace) }
        var start = [hsize_t](repeating: 0, count: shape.count)
        var count = shape.map { hsize_t($0) }
        start[0] = hsize_t(rows.lowerBound)
        count[0] = hsize_t(rows.count)
        _ = try check(H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, start, nil, count, nil), path,
                      "cannot select rows \(rows.lowerBound)..<\(rows.upperBound) of '\(path)'")
        let memorySpace = try check(H5Screate_simple(Int32(count.count), count, nil), path,
                                    "cannot create a memory dataspace for '\(path)'")
        defer { H5Sclose(memorySpace) }
        try body(memorySpace, fileSpace)
    }
}
