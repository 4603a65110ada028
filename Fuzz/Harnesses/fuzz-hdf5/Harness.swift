// Fuzzes Distillery's validation of HDF5 metadata — label caches (shard rows, example
// counts, token offsets, top-k indices, gold labels) and checkpoints (step, moments, saved
// data order) — on top of libhdf5. The bytes are decoded into settings, records and
// attributes that this harness writes as a well-formed HDF5 file with the library's own
// writers (which check nothing a reader relies on); then the reader opens it and uses
// everything it accepted. libhdf5's own parser is not the target: mutated raw HDF5 bytes
// crash it in ways that are not ours to fix, so the file structure stays valid and the
// values in it are hostile.
import DistilleryModel
import DistilleryTensor
import DistilleryTraining
import FuzzSupport
import Foundation
import WeightIO

/// A label cache built from fuzz values, opened and read back in full.
func labelCache(_ r: inout FuzzReader) {
    let classes = 1 + r.count(4)
    let hiddenSize = 1 + r.count(3)
    let hiddenLayers = (0..<r.count(2)).map { _ in r.int() }
    let settings = LabelCacheSettings(
        teacherSHA256: "t", teacherFile: "t.h5", dataSHA256: "d", dataName: r.string(4),
        labels: (0..<classes).map { "c\($0)" }, maxLength: 1 + r.count(6), hiddenSize: hiddenSize, teacherLayers: r.int(),
        hiddenLayers: hiddenLayers, attentionLayers: [], attentionHeads: [], topK: r.count(classes),
        augmentation: LabelAugmentationSettings(copies: r.int(), probability: Double(r.float()), neighbours: r.int(), seed: 1),
        sourceRows: r.int())
    let url = Scratch.directory.appendingPathComponent("labels.h5")
    let shard = LabelCacheShard(index: r.int(), count: r.int(), rows: 0..<max(0, r.count(8)))
    guard let writer = try? LabelCacheWriter(url: url, settings: settings, shard: shard) else { return }
    for _ in 0..<r.count(6) {
        let length = 1 + r.count(settings.maxLength)
        let logits: CachedLogits = settings.topK == 0
            ? .full((0..<classes).map { _ in r.float() })
            : .topK(indices: (0..<settings.topK).map { _ in r.int32() }, logits: (0..<settings.topK).map { _ in r.float() }, restMass: r.float())
        let record = LabelRecord(tokenIDs: (0..<length).map { _ in r.int32() }, sourceRow: r.int(), copy: r.int(), label: r.int32(),
                                 logits: logits, hidden: hiddenLayers.map { _ in (0..<length * hiddenSize).map { _ in r.float() } })
        guard (try? writer.append(record)) != nil else { writer.abandon(); return }
    }
    guard (try? writer.finish(droppedCopies: r.int())) != nil, let cache = try? LabelCache.open(url) else { return }
    let all = Array(0..<cache.exampleCount)
    _ = try? cache.tokenIDs(examples: all)
    _ = try? cache.fullLogits(examples: all)
    for layer in cache.settings.hiddenLayers { _ = try? cache.hidden(layer: layer, examples: all) }
    _ = try? cache.records(0..<cache.exampleCount)
}

/// The parameter layout checkpoints are read against: two small tensors.
let layout = ParameterLayout([("a.weight", [2, 3]), ("a.bias", [3])])

/// A checkpoint written with fuzz values, read back and its saved data order validated.
func checkpoint(_ r: inout FuzzReader) {
    let url = Scratch.directory.appendingPathComponent("run.ckpt.h5")
    let examples = r.count(12), batches = r.count(6)
    let config = TrainingConfig(
        modelFingerprint: "m", dataSHA256: "d", labels: ["a", "b"], trainExamples: examples, devExamples: 1, epochs: r.int(),
        totalSteps: r.int(), batchSize: r.int(), maxLength: 8, learningRate: 1e-3, warmupSteps: r.int(), schedule: .linear,
        weightDecay: 0, clipNorm: 1, evalEvery: r.int(), seed: 1, dropout: DropoutRates(hidden: 0, attention: 0, classifier: 0),
        modelPath: "m", dataPath: "d", threads: 1).json
    let shapes = r.byte() % 4 == 0 ? [[2, 3], [r.count(4)]] : [[2, 3], [3]]
    let parameters = zip(["a.weight", "a.bias"], shapes).map { name, shape in
        (name: name, tensor: Tensor(shape: shape, data: (0..<shape.reduce(1, *)).map { _ in r.float() }))
    }
    let moments = r.byte() % 4 == 0 ? r.count(12) : 9
    let order = r.byte() % 2 == 0 ? nil
        : CheckpointFile.Order(epoch: r.int(), indices: (0..<r.count(12)).map { _ in r.int() }, offsets: (0..<r.count(7)).map { _ in r.int() })
    let file = CheckpointFile(trainingConfigJSON: r.byte() % 8 == 0 ? r.string(32) : config, scheduleJSON: "", step: r.int(),
                              adamStep: r.int(), rngSeed: 1, parameters: parameters,
                              firstMoment: (0..<moments).map { _ in r.float() }, secondMoment: (0..<moments).map { _ in r.float() },
                              order: order, best: nil)
    guard (try? file.write(to: url)) != nil, let read = try? TrainingCheckpoint.read(url, layout: layout) else { return }
    if let order = read.state.order, (try? order.validate(examples: examples, batches: batches)) != nil {
        for b in 0..<order.batchCount {   // what the trainer does with a validated order
            for i in order.indices[order.offsets[b]..<order.offsets[b + 1]] { precondition(i >= 0 && i < examples) }
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    var reader = FuzzReader(fuzzData(start, count))
    if reader.byte() % 2 == 0 { labelCache(&reader) } else { checkpoint(&reader) }
    return 0
}
