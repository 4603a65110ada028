// Fuzzes the safetensors reader: the bytes are a .safetensors file; a file that reads must
// hand out tensors whose element counts match their shapes.
import FuzzSupport
import Foundation
import WeightIO

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let url = Scratch.file("in.safetensors", fuzzData(start, count))
    guard let file = try? SafetensorsFile.read(url) else { return 0 }
    for (_, _, tensor) in file.tensors where tensor.shape.reduce(1, *) != tensor.count {
        fatalError("tensor shape \(tensor.shape) does not match its \(tensor.count) values")
    }
    return 0
}
