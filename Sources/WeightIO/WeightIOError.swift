// WeightIOError: the one error type of the WeightIO module.
//
// Every failure while reading or writing weights names the file, the object inside it
// (tensor, dataset, attribute), what was expected against what was found, and what to
// do about it — in the style of `STYLE.md`. The CLI prints `description` as is.
// Errors are values, never traps: a corrupt file must not take the process down.

import Foundation

/// An error reading or writing a weight file, with the file, object, problem and a hint.
public struct WeightIOError: Error, CustomStringConvertible, Sendable {
    /// Broad class of the failure, for callers that branch on it.
    public enum Kind: String, Sendable {
        /// The path does not exist.
        case fileNotFound
        /// The file is not of the format it was opened as (wrong signature, not JSON, …).
        case notThisFormat
        /// The file claims the format but its structure is inconsistent.
        case corrupt
        /// A dtype, shape or layout this module does not handle.
        case unsupported
        /// A name could not be mapped to the canonical HF PyTorch naming.
        case mapping
        /// An object the caller asked for is not in the file.
        case missingObject
        /// The HDF5 library or the file system reported a failure.
        case ioFailure
        /// A valid file made from other inputs than this run's (another teacher, data or settings).
        case mismatch
    }

    /// Broad class of the failure.
    public var kind: Kind
    /// Path of the file involved.
    public var path: String
    /// Tensor, dataset or attribute inside the file, if the problem is about one.
    public var object: String?
    /// What was wrong: expected against found.
    public var message: String
    /// What the user can do about it.
    public var hint: String

    /// Creates an error; `message` should already mention `object` in context.
    public init(_ kind: Kind, file: URL, object: String? = nil, _ message: String, hint: String) {
        self.kind = kind
        self.path = file.path
        self.object = object
        self.message = message
        self.hint = hint
    }

    /// `file.ext: message — hint`.
    public var description: String {
        "\(URL(fileURLWithPath: path).lastPathComponent): \(message) — \(hint)"
    }
}
