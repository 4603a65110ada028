// Fuzzes trade-off report files (`kd report`, `kd pick`): the format/version checks, the
// decoding and the validation of the numbers a renderer draws; a file that reads is also
// rendered to Markdown and the Pareto front computed.
import FuzzSupport
import Foundation
import Reporting

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let url = Scratch.file("report.json", fuzzData(start, count))
    guard let report = try? readTradeoffReport(url.path) else { return 0 }
    _ = markdownTable(report)
    _ = paretoFront(report)
    return 0
}
