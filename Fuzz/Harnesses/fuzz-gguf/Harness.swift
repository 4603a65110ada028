// Fuzzes the GGUF reader (kd import / kd info of llama.cpp files): the bytes are a .gguf
// file; a file that reads must hand out tensors whose data holds exactly their ggml blocks,
// decodable to as many floats as their dimensions say.
import FuzzSupport
import Foundation
import WeightIO

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let url = Scratch.file("in.gguf", fuzzData(start, count))
    guard let file = try? GGUFFile.read(url) else { return 0 }
    for tensor in file.tensors {
        let values = tensor.floats()
        if values.count != tensor.count {
            fatalError("tensor \(tensor.name) decodes to \(values.count) values, its dimensions say \(tensor.count)")
        }
    }
    return 0
}
