// Fuzzes a prepared dataset folder as `kd finetune/eval/label --data` opens it: the bytes
// are manifest.json and train.jsonl, separated by the first NUL byte (no NUL: the bytes
// are train.jsonl beside a valid manifest).
import DistilleryData
import DistilleryStages
import FuzzSupport
import Foundation

/// The manifest `kd data prepare` writes for Tests/Fixtures/train/toy-sentiment.csv.
let validManifest = Data(#"""
{"conflicts":[],"counts":{"dev":{"negative":6,"positive":6},"test":{"negative":6,"positive":6},"train":{"negative":48,"positive":48}},"dropped":{"conflictingLabelGroups":0,"conflictingLabels":0,"emptyLabel":0,"emptyText":0,"exactDuplicates":0,"normalizedDuplicates":0,"unknownLabel":0,"unknownLabelValues":{}},"files":{"dev":"dev.jsonl","test":"test.jsonl","train":"train.jsonl"},"format":"distillery-dataset","formatVersion":1,"fractions":{"dev":0.1,"test":0.1,"train":0.8},"labels":["negative","positive"],"name":"toy","rowsKept":120,"rowsRead":120,"seed":13,"source":{"encoding":"utf-8","files":[{"bytes":3624,"path":"toy-sentiment.csv","sha256":"3aca5e81d6f5fdb185aafc5042c82cc0bcbc89743947a21fd8d69ac9ab3f2ebf"}],"filesDecodedAsWindows1252":0},"text":{"controlCharactersRemoved":0,"mojibakeRepaired":0,"mojibakeUnrepairable":0},"totals":{"dev":12,"test":12,"train":96}}
"""#.utf8)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let data = fuzzData(start, count)
    let folder = Scratch.directory.appendingPathComponent("data")
    try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    if let nul = data.firstIndex(of: 0) {
        try? data[..<nul].write(to: folder.appendingPathComponent("manifest.json"))
        try? data[(nul + 1)...].write(to: folder.appendingPathComponent("train.jsonl"))
    } else {
        try? validManifest.write(to: folder.appendingPathComponent("manifest.json"))
        try? data.write(to: folder.appendingPathComponent("train.jsonl"))
    }
    guard let prepared = try? PreparedFolder(path: folder.path) else { return 0 }
    _ = try? prepared.read(.train)
    _ = try? prepared.labelDataSHA256()
    return 0
}
