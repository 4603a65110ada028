// Fuzzes `kd data prepare --csv` short of writing: decoding (UTF-8 or a fallback chosen by
// the first byte), CSV/TSV parsing, column lookup, cleanup, dedup and the stratified split.
import DistilleryData
import FuzzSupport
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    var reader = FuzzReader(fuzzData(start, count))
    let mode = reader.byte()
    let format = CSVFormat(delimiter: mode & 1 == 0 ? "," : "\t", hasHeader: true)
    let encoding = SourceEncoding.allCases[Int(mode >> 1) % SourceEncoding.allCases.count]
    let url = Scratch.file("in.csv", reader.rest())
    guard let loaded = try? SourceLoader.loadDelimited(path: url.path, format: format, encoding: encoding,
                                                       textColumn: .name("text"), labelColumn: .name("label"), name: "fuzz") else { return 0 }
    _ = try? DatasetPreparer.prepare(loaded.examples, name: "fuzz", source: loaded.source, options: PreparationOptions(seed: 1))
    return 0
}
