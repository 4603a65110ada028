// Fuzzes recipe JSON (`kd run`): the key-path reader with its own line/column scan, the
// per-stage settings and the cross-stage name checks. The bytes are the recipe file.
import FuzzSupport
import Foundation
import Pipeline

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    _ = try? Recipe.parse(fuzzData(start, count), file: "recipe.json")
    return 0
}
