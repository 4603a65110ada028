// Fuzzes HF config.json parsing: the bytes are the file's text; a config that parses must
// pass validate() and yield a parameter layout of sane size.
import DistilleryModel
import FuzzSupport
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard let text = String(validating: fuzzData(start, count), as: UTF8.self),
          let config = try? BertConfig(json: text, source: "config.json") else { return 0 }
    do { try config.validate() } catch { fatalError("a parsed config fails validate(): \(error)") }
    let layout = ParameterLayout(config: config, heads: config.classifierHeads(classes: max(config.labels.count, 2)))
    precondition(layout.totalCount >= 0)
    return 0
}
