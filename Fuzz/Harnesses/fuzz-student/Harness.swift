// Fuzzes student spec JSON and the plan checked against a small teacher (4 layers, hidden
// 32, 4 heads, FFN 64, 3 classes): the bytes are the spec file.
import Distillation
import DistilleryModel
import FuzzSupport
import Foundation

let teacher = BertConfig(vocabSize: 50, hiddenSize: 32, layerCount: 4, headCount: 4, intermediateSize: 64,
                         maxPositions: 16, typeVocabSize: 2, labels: ["a", "b", "c"])

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard let spec = try? StudentSpec(json: fuzzData(start, count), source: "student.json") else { return 0 }
    _ = try? DistillationPlan(spec: spec, teacher: teacher, classes: 3)
    return 0
}
