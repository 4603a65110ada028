// HDF5File: a small, safe wrapper over the HDF5 C API (via the CHDF5 shim).
//
// It covers what weight files need and nothing more: list datasets recursively, read a
// dataset as Float / Int64 / bytes / strings, read and write scalar and string-array
// attributes, and write float32 / int64 / uint8 datasets with intermediate groups.
// Every negative HDF5 return becomes a thrown `WeightIOError` naming the file and the
// object path (with HDF5's own innermost message appended); ids are closed with `defer`
// and the file id in `deinit`, so nothing traps and nothing leaks.
// Sizes a file declares are checked where they are read (HDF5Limits.swift).
// Chunked, compressed row datasets with hyperslab (row-range) reads and writes live in
// HDF5RowDatasets.swift. Left out on purpose: compound types, soft/external links (only
// hard links are followed), and thread safety — the serial HDF5 library is not
// thread-safe, so use one `HDF5File` from one thread at a time.

import CHDF5
import DistilleryTensor
import Foundation

/// Turns off HDF5's automatic stderr error printing, once per process.
private let silenceHDF5Errors: Void = { chdf5_silence_errors() }()

/// Deepest group nesting followed by `datasetPaths()`; guards against hard-link cycles.
private let maximumGroupDepth = 64

/// An open HDF5 file: datasets, groups and attributes addressed by slash paths.
public final class HDF5File {
    /// Location of the file on disk.
    public let url: URL
    private var fileID: hid_t
    /// Size of the file on disk when opened read-only (nil for a file being written).
    let readOnlyByteCount: Int?

    private init(url: URL, fileID: hid_t, readOnlyByteCount: Int?) {
        self.url = url
        self.fileID = fileID
        self.readOnlyByteCount = readOnlyByteCount
    }

    deinit {
        if fileID >= 0 { H5Fclose(fileID) }
    }

    // MARK: Opening and closing

    /// Opens an existing HDF5 file read-only.
    public static func open(_ url: URL) throws -> HDF5File {
        _ = silenceHDF5Errors
        try requireRegularFile(url, expected: "an HDF5 file", hint: "pass the .h5 file inside it")
        let signature = H5Fis_hdf5(url.path)
        if signature == 0 {
            throw WeightIOError(.notThisFormat, file: url, "not an HDF5 file (signature missing)",
                                hint: "expected an .h5 weight file (Keras tf_model.h5 or a Distillery teacher); "
                                    + "for model.safetensors pass that file instead")
        }
        if signature < 0 {
            throw WeightIOError(.ioFailure, file: url, "cannot read the file\(hdf5Detail())",
                                hint: "check that it is readable (permissions) and not truncated")
        }
        let id = H5Fopen(url.path, chdf5_acc_rdonly(), chdf5_p_default())
        if id < 0 {
            throw WeightIOError(.corrupt, file: url, "HDF5 could not open the file\(hdf5Detail())",
                                hint: "the file may be truncated or written by an incompatible tool; re-export it")
        }
        return HDF5File(url: url, fileID: id, readOnlyByteCount: fileByteCount(atPath: url.path) ?? 0)
    }

    /// Creates (or truncates) an HDF5 file for writing; links keep creation order.
    public static func create(_ url: URL) throws -> HDF5File {
        _ = silenceHDF5Errors
        let directory = url.deletingLastPathComponent()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory),
              isDirectory.boolValue else {
            throw WeightIOError(.fileNotFound, file: url, "directory \(directory.path) does not exist",
                                hint: "create the output directory first")
        }
        let fcpl = H5Pcreate(chdf5_p_file_create())
        defer { if fcpl >= 0 { H5Pclose(fcpl) } }
        let order = UInt32(H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED)
        if fcpl < 0 || H5Pset_link_creation_order(fcpl, order) < 0 {
            throw WeightIOError(.ioFailure, file: url, "cannot prepare file creation properties\(hdf5Detail())",
                                hint: "the HDF5 library may be misinstalled; check `pkg-config --modversion hdf5`")
        }
        let id = H5Fcreate(url.path, chdf5_acc_trunc(), fcpl, chdf5_p_default())
        if id < 0 {
            throw WeightIOError(.ioFailure, file: url, "cannot create the file\(hdf5Detail())",
                                hint: "check that the directory is writable and the disk is not full")
        }
        return HDF5File(url: url, fileID: id, readOnlyByteCount: nil)
    }

    /// Flushes and closes the file; further calls on this object throw. Safe to call twice.
    public func close() throws {
        guard fileID >= 0 else { return }
        let status = H5Fclose(fileID)
        fileID = -1
        if status < 0 {
            throw WeightIOError(.ioFailure, file: url, "closing the file failed\(HDF5File.hdf5Detail())",
                                hint: "the disk may be full; the file is incomplete, delete it and retry")
        }
    }

    // MARK: Listing

    /// Paths of all datasets, recursively, without a leading slash (creation order when tracked, else name order).
    public func datasetPaths() throws -> [String] {
        var result: [String] = []
        try collectDatasets(in: "", depth: 0, into: &result)
        return result
    }

    /// True when a dataset exists at `path`.
    public func hasDataset(_ path: String) -> Bool {
        guard fileID >= 0 else { return false }
        return chdf5_object_kind(fileID, path) == 1
    }

    private func collectDatasets(in group: String, depth: Int, into result: inout [String]) throws {
        guard depth < maximumGroupDepth else {
            throw error(.unsupported, group, "groups nest deeper than \(maximumGroupDepth) levels at '\(group)'",
                        hint: "the file probably contains a hard-link cycle; it is not a weight file")
        }
        let gid = try check(H5Gopen2(try openFileID(), group.isEmpty ? "/" : group, chdf5_p_default()),
                            group, "cannot open group '\(group.isEmpty ? "/" : group)'")
        defer { H5Gclose(gid) }
        for (name, isHard) in try links(of: gid, group: group) where isHard {
            let path = group.isEmpty ? name : group + "/" + name
            switch chdf5_object_kind(gid, name) {
            case 0: try collectDatasets(in: path, depth: depth + 1, into: &result)
            case 1: result.append(path)
            case 2: continue
            default: throw error(.corrupt, path, "cannot open object '\(path)'",
                                 hint: "the file may be truncated; re-export it")
            }
        }
    }

    private final class LinkList { var entries: [(String, Bool)] = [] }

    private func links(of gid: hid_t, group: String) throws -> [(String, Bool)] {
        let list = LinkList()
        let context = Unmanaged.passUnretained(list).toOpaque()
        let visit: chdf5_link_fn = { name, isHard, context in
            guard let name, let context else { return }
            Unmanaged<LinkList>.fromOpaque(context).takeUnretainedValue()
                .entries.append((String(cString: name), isHard != 0))
        }
        if chdf5_iterate_links(gid, 1, visit, context) >= 0 { return list.entries }
        list.entries.removeAll()   // creation order not tracked: fall back to name order
        _ = try check(chdf5_iterate_links(gid, 0, visit, context), group,
                      "cannot list group '\(group.isEmpty ? "/" : group)'")
        return list.entries
    }

    // MARK: Dataset metadata

    /// Shape of the dataset at `path` (`[]` for a scalar).
    public func shape(of path: String) throws -> [Int] {
        try withDataset(path) { d in try shapeOf(dataset: d, path: path) }
    }

    /// The dataset's element type as a short name: "float32", "float16", "int64", "uint8", "string", ….
    public func dtypeDescription(of path: String) throws -> String {
        try withDataset(path) { d in
            let type = try check(H5Dget_type(d), path, "cannot read the type of '\(path)'")
            defer { H5Tclose(type) }
            return HDF5File.describe(type: type)
        }
    }

    static func describe(type: hid_t) -> String {
        let bits = H5Tget_size(type) * 8
        switch H5Tget_class(type) {
        case H5T_FLOAT: return "float\(bits)"
        case H5T_INTEGER: return H5Tget_sign(type) == H5T_SGN_NONE ? "uint\(bits)" : "int\(bits)"
        case H5T_STRING: return "string"
        case H5T_ENUM: return "enum\(bits)"
        case H5T_COMPOUND: return "compound"
        case H5T_OPAQUE: return "opaque"
        case H5T_ARRAY: return "array"
        case H5T_VLEN: return "vlen"
        case H5T_REFERENCE: return "reference"
        case H5T_BITFIELD: return "bitfield\(bits)"
        default: return "unknown"
        }
    }

    func shapeOf(dataset d: hid_t, path: String) throws -> [Int] {
        let space = try check(H5Dget_space(d), path, "cannot read the dataspace of '\(path)'")
        defer { H5Sclose(space) }
        return try shapeOf(space: space, object: path)
    }

    private func shapeOf(space: hid_t, object: String) throws -> [Int] {
        let rank = Int(try check(H5Sget_simple_extent_ndims(space), object, "cannot read the rank of '\(object)'"))
        guard rank > 0 else { return [] }
        var dims = [hsize_t](repeating: 0, count: rank)
        _ = try check(H5Sget_simple_extent_dims(space, &dims, nil), object, "cannot read the shape of '\(object)'")
        return try checkedShape(dims, object: object)
    }

    // MARK: Reading datasets

    /// Reads a float or integer dataset as a float32 `Tensor`; HDF5 converts float16/float64/integers.
    public func readTensor(_ path: String) throws -> Tensor {
        let shape = try tensorShape(of: path)   // checked before anything is allocated for it
        let count = shape.reduce(1, *)
        let data = try [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            initialized = 0
            try readTensor(path, into: UnsafeMutableBufferPointer(rebasing: buffer[0..<count]))
            initialized = count
        }
        return Tensor(shape: shape, data: data)
    }

    /// The shape of a float or integer dataset that `readTensor` would read, checked as it
    /// checks it — the class, and that the file can hold the elements it declares — so a
    /// caller may allocate for it before reading (`readTensor(_:into:)`).
    public func tensorShape(of path: String) throws -> [Int] {
        try withDataset(path) { d in
            let shape = try shapeOf(dataset: d, path: path)
            try requireClass(of: d, path: path, [H5T_FLOAT, H5T_INTEGER], expected: "a float or integer tensor")
            try requireStorable(d, path: path, elements: shape.reduce(1, *))
            return shape
        }
    }

    /// Reads a float or integer dataset as `readTensor` does, into `destination`, which must
    /// hold exactly its element count (a tensor read straight into a parameter block).
    public func readTensor(_ path: String, into destination: UnsafeMutableBufferPointer<Float>) throws {
        try withDataset(path) { d in
            let shape = try shapeOf(dataset: d, path: path)
            try requireClass(of: d, path: path, [H5T_FLOAT, H5T_INTEGER], expected: "a float or integer tensor")
            guard shape.reduce(1, *) == destination.count else {
                throw error(.corrupt, path, "dataset '\(path)' has shape \(describeShape(shape)), expected \(destination.count) elements",
                            hint: "the file changed while it was read; read it again")
            }
            guard destination.count > 0 else { return }
            try requireStorable(d, path: path, elements: destination.count)
            _ = try check(H5Dread(d, chdf5_native_float(), chdf5_s_all(), chdf5_s_all(), chdf5_p_default(), destination.baseAddress),
                          path, "cannot read the data of '\(path)'",
                          hint: "the file may be truncated or use an unsupported filter; re-export it")
        }
    }

    /// Reads an integer dataset as Int64 values with its shape.
    public func readInt64s(_ path: String) throws -> (shape: [Int], values: [Int64]) {
        try withDataset(path) { d in
            let shape = try shapeOf(dataset: d, path: path)
            try requireClass(of: d, path: path, [H5T_INTEGER], expected: "an integer dataset")
            let values = try readNumbers(d, path: path, count: shape.reduce(1, *),
                                         memoryType: chdf5_native_int64(), as: Int64.self)
            return (shape, values)
        }
    }

    /// Reads a 1-byte integer dataset (e.g. a stored text file) as raw bytes.
    public func readBytes(_ path: String) throws -> [UInt8] {
        try withDataset(path) { d in
            let shape = try shapeOf(dataset: d, path: path)
            let type = try check(H5Dget_type(d), path, "cannot read the type of '\(path)'")
            defer { H5Tclose(type) }
            guard H5Tget_class(type) == H5T_INTEGER, H5Tget_size(type) == 1 else {
                throw error(.unsupported, path, "dataset '\(path)' is \(HDF5File.describe(type: type)), expected uint8 bytes",
                            hint: "byte payloads are stored as uint8 datasets; was this written by another tool?")
            }
            return try readNumbers(d, path: path, count: shape.reduce(1, *),
                                   memoryType: chdf5_native_uint8(), as: UInt8.self)
        }
    }

    /// Reads a fixed- or variable-length string dataset (any shape, flattened).
    public func readStrings(_ path: String) throws -> [String] {
        try withDataset(path) { d in
            let type = try check(H5Dget_type(d), path, "cannot read the type of '\(path)'")
            defer { H5Tclose(type) }
            let space = try check(H5Dget_space(d), path, "cannot read the dataspace of '\(path)'")
            defer { H5Sclose(space) }
            try requireStorable(d, path: path, elements: try shapeOf(space: space, object: path).reduce(1, *))
            return try readStringElements(type: type, space: space, object: "dataset '\(path)'") { memoryType, buffer in
                H5Dread(d, memoryType, chdf5_s_all(), chdf5_s_all(), chdf5_p_default(), buffer)
            }
        }
    }

    private func readNumbers<T>(_ d: hid_t, path: String, count: Int, memoryType: hid_t, as: T.Type) throws -> [T] {
        guard count > 0 else { return [] }
        try requireStorable(d, path: path, elements: count)
        var status: herr_t = 0
        let values = [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            status = H5Dread(d, memoryType, chdf5_s_all(), chdf5_s_all(), chdf5_p_default(), buffer.baseAddress)
            initialized = count   // trivial element type; discarded below if the read failed
        }
        _ = try check(status, path, "cannot read the data of '\(path)'",
                      hint: "the file may be truncated or use an unsupported filter; re-export it")
        return values
    }

    private func requireClass(of d: hid_t, path: String, _ classes: [H5T_class_t], expected: String) throws {
        let type = try check(H5Dget_type(d), path, "cannot read the type of '\(path)'")
        defer { H5Tclose(type) }
        if !classes.contains(H5Tget_class(type)) {
            throw error(.unsupported, path, "dataset '\(path)' is \(HDF5File.describe(type: type)), expected \(expected)",
                        hint: "only numeric datasets hold weights; check which dataset you meant")
        }
    }

    /// Decodes every element of a string dataset or attribute; `read` fills a buffer in a given memory type.
    private func readStringElements(type: hid_t, space: hid_t, object: String,
                                    read: (hid_t, UnsafeMutableRawPointer) -> herr_t) throws -> [String] {
        guard H5Tget_class(type) == H5T_STRING else {
            throw error(.unsupported, object, "\(object) is \(HDF5File.describe(type: type)), expected strings",
                        hint: "check the name; string data is stored as HDF5 string types")
        }
        let count = Int(try check(H5Sget_simple_extent_npoints(space), object, "cannot size \(object)"))
        guard count > 0 else { return [] }
        // The buffer below holds count slots of (fixed width + 1) bytes or one pointer each.
        let slot = H5Tis_variable_str(type) > 0 ? MemoryLayout<UnsafeMutablePointer<CChar>?>.size
            : Int(exactly: H5Tget_size(type)).flatMap { $0 < Int.max ? $0 + 1 : nil } ?? Int.max
        let (needed, overflow) = count.multipliedReportingOverflow(by: slot)
        guard !overflow, needed <= readableBytes(expansion: maximumFilterExpansion) else {
            throw error(.corrupt, object, "\(object) declares \(count) strings of \(slot) bytes, more than the file can hold",
                        hint: "the file is truncated, corrupt or hostile; re-export it")
        }
        let memoryType = try check(H5Tcopy(chdf5_c_s1()), object, "cannot build a string type for \(object)")
        defer { H5Tclose(memoryType) }
        H5Tset_cset(memoryType, H5Tget_cset(type))
        if H5Tis_variable_str(type) > 0 {
            H5Tset_size(memoryType, chdf5_variable_size())
            var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
            let status = pointers.withUnsafeMutableBytes { read(memoryType, $0.baseAddress!) }
            _ = try check(status, object, "cannot read \(object)")
            defer { _ = pointers.withUnsafeMutableBytes { chdf5_vlen_reclaim(memoryType, space, $0.baseAddress!) } }
            return pointers.map { $0.map { String(cString: $0) } ?? "" }
        }
        // Fixed length: read into size+1 NUL-terminated slots so full-width values keep every byte.
        let width = H5Tget_size(type) + 1
        H5Tset_size(memoryType, width)
        H5Tset_strpad(memoryType, H5T_STR_NULLTERM)
        var bytes = [UInt8](repeating: 0, count: width * count)
        let status = bytes.withUnsafeMutableBytes { read(memoryType, $0.baseAddress!) }
        _ = try check(status, object, "cannot read \(object)")
        return (0..<count).map { i in
            let slot = bytes[(i * width)..<((i + 1) * width)]
            return String(decoding: slot.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    // MARK: Attributes

    /// Names of the attributes on the object at `objectPath` ("" is the root group), in name order.
    public func attributeNames(at objectPath: String = "") throws -> [String] {
        try withObject(objectPath) { object in
            let list = LinkList()
            let context = Unmanaged.passUnretained(list).toOpaque()
            var index: hsize_t = 0
            let status = H5Aiterate2(object, H5_INDEX_NAME, H5_ITER_INC, &index, { _, name, _, context in
                guard let name, let context else { return 0 }
                Unmanaged<LinkList>.fromOpaque(context).takeUnretainedValue().entries.append((String(cString: name), true))
                return 0
            }, context)
            _ = try check(status, objectPath, "cannot list the attributes of '\(displayPath(objectPath))'")
            return list.entries.map(\.0)
        }
    }

    /// True when the object at `objectPath` has an attribute `name`.
    public func hasAttribute(_ name: String, at objectPath: String = "") -> Bool {
        (try? withObject(objectPath) { H5Aexists($0, name) > 0 }) ?? false
    }

    /// Number of elements in attribute `name` (1 for a scalar), whatever its type.
    public func attributeElementCount(_ name: String, at objectPath: String = "") throws -> Int {
        try withAttribute(name, at: objectPath) { _, _, space in
            Int(try check(H5Sget_simple_extent_npoints(space), objectPath, "cannot size attribute '\(name)'"))
        }
    }

    /// Reads a string attribute (scalar, or a one-element array).
    public func stringAttribute(_ name: String, at objectPath: String = "") throws -> String {
        let values = try stringArrayAttribute(name, at: objectPath)
        guard values.count == 1 else {
            throw error(.unsupported, objectPath, "attribute '\(name)' on '\(displayPath(objectPath))' holds \(values.count) strings, expected one",
                        hint: "read it with stringArrayAttribute")
        }
        return values[0]
    }

    /// Reads a string or string-array attribute (fixed- or variable-length), e.g. Keras `layer_names`.
    public func stringArrayAttribute(_ name: String, at objectPath: String = "") throws -> [String] {
        try withAttribute(name, at: objectPath) { attribute, type, space in
            try readStringElements(type: type, space: space,
                                   object: "attribute '\(name)' on '\(displayPath(objectPath))'") { memoryType, buffer in
                H5Aread(attribute, memoryType, buffer)
            }
        }
    }

    /// Reads an integer attribute (scalar or one element); bool-like integers too.
    public func intAttribute(_ name: String, at objectPath: String = "") throws -> Int {
        let value: Int64 = try numericAttribute(name, at: objectPath, classes: [H5T_INTEGER],
                                                memoryType: chdf5_native_int64(), expected: "an integer")
        return Int(value)
    }

    /// Reads a float or integer attribute as Double (scalar or one element).
    public func doubleAttribute(_ name: String, at objectPath: String = "") throws -> Double {
        try numericAttribute(name, at: objectPath, classes: [H5T_FLOAT, H5T_INTEGER],
                             memoryType: chdf5_native_double(), expected: "a number")
    }

    private func numericAttribute<T: Numeric & BitwiseCopyable>(_ name: String, at objectPath: String, classes: [H5T_class_t],
                                              memoryType: hid_t, expected: String) throws -> T {
        try withAttribute(name, at: objectPath) { attribute, type, space in
            let where_ = "attribute '\(name)' on '\(displayPath(objectPath))'"
            let count = H5Sget_simple_extent_npoints(space)
            guard classes.contains(H5Tget_class(type)), count == 1 else {
                throw error(.unsupported, objectPath,
                            "\(where_) is \(HDF5File.describe(type: type)) with \(count) elements, expected \(expected)",
                            hint: "the file was written by a different tool or version")
            }
            var value: T = 0
            let status = withUnsafeMutableBytes(of: &value) { H5Aread(attribute, memoryType, $0.baseAddress) }
            _ = try check(status, objectPath, "cannot read \(where_)")
            return value
        }
    }

    /// Writes (or replaces) a variable-length UTF-8 string attribute.
    public func setAttribute(_ name: String, string value: String, at objectPath: String = "") throws {
        let type = try check(H5Tcopy(chdf5_c_s1()), objectPath, "cannot build a string type")
        defer { H5Tclose(type) }
        H5Tset_size(type, chdf5_variable_size())
        H5Tset_cset(type, H5T_CSET_UTF8)
        try value.withCString { cString in
            var pointer: UnsafePointer<CChar>? = cString
            try writeScalarAttribute(name, at: objectPath, fileType: type, memoryType: type, value: &pointer)
        }
    }

    /// Writes (or replaces) a 64-bit integer attribute.
    public func setAttribute(_ name: String, int value: Int, at objectPath: String = "") throws {
        var v = Int64(value)
        try writeScalarAttribute(name, at: objectPath, fileType: chdf5_std_i64le(), memoryType: chdf5_native_int64(), value: &v)
    }

    /// Writes (or replaces) a float64 attribute.
    public func setAttribute(_ name: String, double value: Double, at objectPath: String = "") throws {
        var v = value
        try writeScalarAttribute(name, at: objectPath, fileType: chdf5_native_double(), memoryType: chdf5_native_double(), value: &v)
    }

    private func writeScalarAttribute<T: BitwiseCopyable>(_ name: String, at objectPath: String, fileType: hid_t,
                                         memoryType: hid_t, value: inout T) throws {
        try withObject(objectPath) { object in
            let where_ = "attribute '\(name)' on '\(displayPath(objectPath))'"
            if H5Aexists(object, name) > 0 {
                _ = try check(H5Adelete(object, name), objectPath, "cannot replace \(where_)")
            }
            let space = try check(H5Screate(H5S_SCALAR), objectPath, "cannot create a dataspace for \(where_)")
            defer { H5Sclose(space) }
            let attribute = try check(H5Acreate2(object, name, fileType, space, chdf5_p_default(), chdf5_p_default()),
                                      objectPath, "cannot create \(where_)")
            defer { H5Aclose(attribute) }
            let status = withUnsafeBytes(of: &value) { H5Awrite(attribute, memoryType, $0.baseAddress) }
            _ = try check(status, objectPath, "cannot write \(where_)")
        }
    }

    // MARK: Writing datasets

    /// Writes a float32 dataset at `path`, creating intermediate groups; optional chunking and deflate level 0–9.
    public func writeTensor(_ tensor: Tensor, at path: String, chunked: Bool = false, compression: Int? = nil) throws {
        try tensor.data.withUnsafeBytes { raw in
            try writeDataset(path, shape: tensor.shape, fileType: chdf5_ieee_f32le(), memoryType: chdf5_native_float(),
                             bytes: raw.baseAddress, chunked: chunked, compression: compression)
        }
    }

    /// Writes a 1-D uint8 dataset at `path` (e.g. a text file's bytes).
    public func writeBytes(_ bytes: [UInt8], at path: String, compression: Int? = nil) throws {
        try bytes.withUnsafeBytes { raw in
            try writeDataset(path, shape: [bytes.count], fileType: chdf5_std_u8le(), memoryType: chdf5_native_uint8(),
                             bytes: raw.baseAddress, chunked: false, compression: compression)
        }
    }

    /// Writes a uint8 dataset of the given shape at `path` (packed quantized weights).
    public func writeUInt8s(_ values: [UInt8], shape: [Int], at path: String) throws {
        try checkCount(values.count, shape: shape, path: path)
        try values.withUnsafeBytes { raw in
            try writeDataset(path, shape: shape, fileType: chdf5_std_u8le(), memoryType: chdf5_native_uint8(),
                             bytes: raw.baseAddress, chunked: false, compression: nil)
        }
    }

    /// Writes a uint16 dataset of the given shape at `path` (bf16 or fp16 bit patterns).
    public func writeUInt16s(_ values: [UInt16], shape: [Int], at path: String) throws {
        try checkCount(values.count, shape: shape, path: path)
        try values.withUnsafeBytes { raw in
            try writeDataset(path, shape: shape, fileType: chdf5_native_uint16(), memoryType: chdf5_native_uint16(),
                             bytes: raw.baseAddress, chunked: false, compression: nil)
        }
    }

    /// Reads an integer dataset of at most 2 bytes per element as UInt16 values with its shape.
    public func readUInt16s(_ path: String) throws -> (shape: [Int], values: [UInt16]) {
        try withDataset(path) { d in
            let shape = try shapeOf(dataset: d, path: path)
            let type = try check(H5Dget_type(d), path, "cannot read the type of '\(path)'")
            defer { H5Tclose(type) }
            guard H5Tget_class(type) == H5T_INTEGER, H5Tget_size(type) <= 2, H5Tget_sign(type) == H5T_SGN_NONE else {
                throw error(.unsupported, path, "dataset '\(path)' is \(HDF5File.describe(type: type)), expected uint16",
                            hint: "16-bit payloads (bf16, fp16) are stored as uint16 datasets; was this written by another tool?")
            }
            return (shape, try readNumbers(d, path: path, count: shape.reduce(1, *), memoryType: chdf5_native_uint16(), as: UInt16.self))
        }
    }

    private func checkCount(_ count: Int, shape: [Int], path: String) throws {
        guard shape.reduce(1, *) == count else {
            throw error(.unsupported, path, "shape \(describeShape(shape)) needs \(shape.reduce(1, *)) values for '\(path)', got \(count)",
                        hint: "this is a caller bug: pass matching shape and values")
        }
    }

    /// Writes an int64 dataset of the given shape at `path`.
    public func writeInt64s(_ values: [Int64], shape: [Int], at path: String) throws {
        guard shape.reduce(1, *) == values.count else {
            throw error(.unsupported, path, "shape \(describeShape(shape)) needs \(shape.reduce(1, *)) values for '\(path)', got \(values.count)",
                        hint: "this is a caller bug: pass matching shape and values")
        }
        try values.withUnsafeBytes { raw in
            try writeDataset(path, shape: shape, fileType: chdf5_std_i64le(), memoryType: chdf5_native_int64(),
                             bytes: raw.baseAddress, chunked: false, compression: nil)
        }
    }

    private func writeDataset(_ path: String, shape: [Int], fileType: hid_t, memoryType: hid_t,
                              bytes: UnsafeRawPointer?, chunked: Bool, compression: Int?) throws {
        let file = try openFileID()
        let dims = shape.map { hsize_t($0) }
        let space = try check(shape.isEmpty ? H5Screate(H5S_SCALAR) : H5Screate_simple(Int32(dims.count), dims, nil),
                              path, "cannot create a dataspace \(describeShape(shape)) for '\(path)'")
        defer { H5Sclose(space) }
        let dcpl = try check(H5Pcreate(chdf5_p_dataset_create()), path, "cannot create dataset properties")
        defer { H5Pclose(dcpl) }
        // No object timestamps: the same tensors always give the same file bytes.
        _ = try check(H5Pset_obj_track_times(dcpl, false), path, "cannot turn off timestamps for '\(path)'")
        let count = shape.reduce(1, *)
        if (chunked || compression != nil) && !shape.isEmpty && count > 0 {
            _ = try check(H5Pset_chunk(dcpl, Int32(dims.count), dims), path, "cannot set chunking for '\(path)'")
            if let level = compression {
                _ = try check(H5Pset_deflate(dcpl, UInt32(max(0, min(9, level)))), path, "cannot enable deflate for '\(path)'")
            }
        }
        let lcpl = try check(H5Pcreate(chdf5_p_link_create()), path, "cannot create link properties")
        defer { H5Pclose(lcpl) }
        _ = try check(H5Pset_create_intermediate_group(lcpl, 1), path, "cannot enable intermediate groups")
        let d = try check(H5Dcreate2(file, path, fileType, space, lcpl, dcpl, chdf5_p_default()), path,
                          "cannot create dataset '\(path)'",
                          hint: "a dataset or group of that name may already exist, or the name is empty")
        defer { H5Dclose(d) }
        if count > 0 {
            _ = try check(H5Dwrite(d, memoryType, chdf5_s_all(), chdf5_s_all(), chdf5_p_default(), bytes), path,
                          "cannot write dataset '\(path)'", hint: "the disk may be full")
        }
    }

    // MARK: Plumbing

    func openFileID() throws -> hid_t {
        guard fileID >= 0 else {
            throw WeightIOError(.ioFailure, file: url, "the file was already closed",
                                hint: "this is a caller bug: open the file again")
        }
        return fileID
    }

    func displayPath(_ path: String) -> String { path.isEmpty ? "/" : path }

    func withDataset<R>(_ path: String, _ body: (hid_t) throws -> R) throws -> R {
        let file = try openFileID()
        let d = H5Dopen2(file, path, chdf5_p_default())
        if d < 0 {
            let kind = chdf5_object_kind(file, path)
            if kind < 0 {
                throw error(.missingObject, path, "no dataset '\(path)'",
                            hint: "list the file's datasets (h5ls -r) to see which names it has")
            }
            throw error(.unsupported, path, "'\(path)' is not a dataset\(HDF5File.hdf5Detail())",
                        hint: "it is a group or another object; pass the full path to a dataset")
        }
        defer { H5Dclose(d) }
        return try body(d)
    }

    private func withObject<R>(_ path: String, _ body: (hid_t) throws -> R) throws -> R {
        let file = try openFileID()
        let object = H5Oopen(file, path.isEmpty ? "/" : path, chdf5_p_default())
        if object < 0 {
            throw error(.missingObject, path, "no object '\(displayPath(path))'",
                        hint: "list the file's contents (h5ls -r) to see which names it has")
        }
        defer { H5Oclose(object) }
        return try body(object)
    }

    private func withAttribute<R>(_ name: String, at objectPath: String,
                                  _ body: (hid_t, hid_t, hid_t) throws -> R) throws -> R {
        try withObject(objectPath) { object in
            guard H5Aexists(object, name) > 0 else {
                throw error(.missingObject, objectPath, "no attribute '\(name)' on '\(displayPath(objectPath))'",
                            hint: "the file was written by a different tool or an older version")
            }
            let attribute = try check(H5Aopen(object, name, chdf5_p_default()), objectPath, "cannot open attribute '\(name)'")
            defer { H5Aclose(attribute) }
            let type = try check(H5Aget_type(attribute), objectPath, "cannot read the type of attribute '\(name)'")
            defer { H5Tclose(type) }
            let space = try check(H5Aget_space(attribute), objectPath, "cannot read the dataspace of attribute '\(name)'")
            defer { H5Sclose(space) }
            return try body(attribute, type, space)
        }
    }

    /// `" (HDF5: innermost message)"`, or "" when the error stack is empty.
    static func hdf5Detail() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        chdf5_last_error(&buffer)
        let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text.isEmpty ? "" : " (HDF5: \(text))"
    }

    func error(_ kind: WeightIOError.Kind, _ object: String, _ message: String, hint: String) -> WeightIOError {
        WeightIOError(kind, file: url, object: object.isEmpty ? "/" : object, message, hint: hint)
    }

    /// Returns `value` when non-negative, else throws an `.ioFailure` naming `object`, with HDF5's message.
    func check<T: BinaryInteger>(_ value: T, _ object: String, _ what: String,
                                         hint: String = "the file may be corrupt or the disk full; re-create it") throws -> T {
        if value >= 0 { return value }
        throw error(.ioFailure, object, what + HDF5File.hdf5Detail(), hint: hint)
    }
}

/// Size in bytes of the file at `path`, following symbolic links (nil when it cannot be
/// stat'ed). FileManager's `attributesOfItem` does not follow them: for a symlinked model
/// it reports the link's own few bytes, and every size check against it would fail.
public func fileByteCount(atPath path: String) -> Int? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    return Int(info.st_size)
}
