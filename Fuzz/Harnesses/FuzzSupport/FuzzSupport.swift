// FuzzSupport: what every harness shares — a per-process scratch directory (in /dev/shm
// when there is one) for readers that take a path, and a little reader that turns fuzz
// bytes into the integers, strings and arrays a structured harness needs.
import Foundation

/// A per-process scratch directory for readers that open files by path.
public enum Scratch {
    /// `/dev/shm/distillery-fuzz-PID` (or the temporary directory), created once.
    public static let directory: URL = {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? URL(fileURLWithPath: "/dev/shm")
                                                                       : FileManager.default.temporaryDirectory
        let dir = base.appendingPathComponent("distillery-fuzz-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(at: Scratch.directory) }
        return dir
    }()

    /// Writes `bytes` to `name` in the scratch directory and returns its URL.
    public static func file(_ name: String, _ bytes: Data) -> URL {
        let url = directory.appendingPathComponent(name)
        try? bytes.write(to: url)
        return url
    }
}

/// The fuzz input as Data.
public func fuzzData(_ start: UnsafeRawPointer, _ count: Int) -> Data { Data(bytes: start, count: count) }

/// Reads integers, strings and arrays off the front of fuzz bytes; past the end it yields zeros.
public struct FuzzReader {
    var bytes: [UInt8]
    var position = 0

    public init(_ data: Data) { bytes = Array(data) }

    /// True when every byte has been used.
    public var atEnd: Bool { position >= bytes.count }

    /// The next byte (0 past the end).
    public mutating func byte() -> UInt8 {
        defer { position += 1 }
        return position < bytes.count ? bytes[position] : 0
    }

    /// A small count in 0...limit.
    public mutating func count(_ limit: Int) -> Int { Int(byte()) % (limit + 1) }

    /// An Int that is usually small but sometimes extreme (negative, huge, Int.max/min).
    public mutating func int() -> Int {
        switch byte() % 8 {
        case 0: return -Int(byte())
        case 1: return [Int.max, Int.min, Int(Int32.max), 1 << 40, -1, 0][Int(byte()) % 6]
        case 2: return Int(truncatingIfNeeded: (0..<8).reduce(UInt64(0)) { acc, _ in (acc << 8) | UInt64(byte()) })
        default: return Int(byte())
        }
    }

    /// An Int32 made like `int()`.
    public mutating func int32() -> Int32 { Int32(truncatingIfNeeded: int()) }

    /// A Float that is sometimes NaN, infinite or huge.
    public mutating func float() -> Float {
        switch byte() % 6 {
        case 0: return [Float.nan, .infinity, -.infinity, .greatestFiniteMagnitude, 0, -0.0][Int(byte()) % 6]
        default: return Float(Int8(bitPattern: byte())) / 8
        }
    }

    /// A string of up to `limit` bytes (may be invalid UTF-8, decoded lossily).
    public mutating func string(_ limit: Int = 16) -> String {
        let n = count(limit)
        return String(decoding: (0..<n).map { _ in byte() }, as: UTF8.self)
    }

    /// The bytes not read yet.
    public mutating func rest() -> Data {
        defer { position = bytes.count }
        return position < bytes.count ? Data(bytes[position...]) : Data()
    }
}
