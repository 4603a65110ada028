// Shared test helpers: fixture paths, tolerance comparisons, running `kd`.
import Foundation


/// Paths of the repository and its committed fixtures, found from this source file.
public enum Fixtures {
    /// Repository root (two levels above Tests/TestSupport).
    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    /// `Tests/Fixtures/<name>`.
    public static func url(_ name: String) -> URL { root.appendingPathComponent("Tests/Fixtures/\(name)") }
}

/// Maximum absolute difference between two equal-length float sequences.
public func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "maxAbsDiff: lengths \(a.count) vs \(b.count)")
    var m: Float = 0
    for i in 0..<a.count { m = max(m, abs(a[i] - b[i])) }
    return m
}

/// A fresh temporary directory, removed by the caller when done.
public func makeTemporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("distillery-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
