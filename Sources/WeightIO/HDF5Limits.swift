// HDF5Limits: the checks on sizes an HDF5 file declares, made once where they are read.
//
// Shapes, string widths and element counts come from the file, so they are input. Every
// dimension must fit an Int and every element count of any sub-shape times 8 bytes too
// (so byte sizes computed from a checked shape never overflow), and a dataset read from a
// file opened read-only must fit in the file's bytes — times deflate's largest expansion
// when it is compressed — before its buffer is allocated: a 100-byte file claiming 2^40
// floats is an error, not an allocation trap. Files being written are our own and are only
// overflow-checked. Left out on purpose: a memory budget (a file that really holds 40 GB
// may be read; the caller decides whether to open it).
import CHDF5
import Foundation

/// Largest element count a shape may declare: counts times the widest element read (8
/// bytes) must stay an Int, so byte sizes computed from a checked shape never overflow.
let maximumElementCount = Int.max / 8

/// Most bytes one stored byte can become after the filters HDF5 reads for us: deflate's
/// largest ratio is 1032:1 (a 258-byte match in about two bits, RFC 1951); shuffle only
/// permutes. A dataset declaring more than this many times the file's size cannot be real.
let maximumFilterExpansion = 1032

extension HDF5File {
    /// `dims` as Ints, refused unless every product of them (zeros counted as ones, so any
    /// sub-shape, e.g. a row) stays within `maximumElementCount`.
    func checkedShape(_ dims: [hsize_t], object: String) throws -> [Int] {
        var bound = 1
        for d in dims {
            let (product, overflow) = bound.multipliedReportingOverflow(by: Int(exactly: max(d, 1)) ?? Int.max)
            guard !overflow, product <= maximumElementCount else {
                throw error(.corrupt, object, "'\(object)' declares shape \(dims.map(String.init).joined(separator: " × ")), more elements than can be addressed",
                            hint: "the file is corrupt or hostile; re-export it")
            }
            bound = product
        }
        return dims.map { Int($0) }   // each ≤ bound, checked above
    }

    /// The most bytes a read may produce: the file's size times `expansion` (saturating);
    /// unbounded for a file being written.
    func readableBytes(expansion: Int) -> Int {
        guard let fileBytes = readOnlyByteCount else { return Int.max }
        let (product, overflow) = fileBytes.multipliedReportingOverflow(by: expansion)
        return overflow ? Int.max : product
    }

    /// Refuses a read of `elements` elements of dataset `d` that the file cannot hold:
    /// stored at the dataset's element size, they must fit in the file's bytes (times
    /// `maximumFilterExpansion` when a filter such as deflate decompresses them). Files being
    /// written are our own and are not bounded.
    func requireStorable(_ d: hid_t, path: String, elements: Int) throws {
        guard let fileBytes = readOnlyByteCount, elements > 0 else { return }
        let type = try check(H5Dget_type(d), path, "cannot read the type of '\(path)'")
        defer { H5Tclose(type) }
        let dcpl = try check(H5Dget_create_plist(d), path, "cannot read the creation properties of '\(path)'")
        defer { H5Pclose(dcpl) }
        let filtered = try check(H5Pget_nfilters(dcpl), path, "cannot count the filters of '\(path)'") > 0
        let (bytes, overflow) = elements.multipliedReportingOverflow(by: max(1, Int(clamping: H5Tget_size(type))))
        guard !overflow, bytes <= readableBytes(expansion: filtered ? maximumFilterExpansion : 1) else {
            throw error(.corrupt, path, "dataset '\(path)' declares \(elements) elements (\(overflow ? "more than Int.max" : String(bytes)) bytes\(filtered ? " before decompression" : "")), more than the \(fileBytes)-byte file can hold",
                        hint: "the file is truncated, corrupt or hostile; re-export it")
        }
    }
}
