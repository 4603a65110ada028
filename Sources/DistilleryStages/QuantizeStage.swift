// QuantizeStage: `kd quantize` as a library call — an fp32 model file in, a quantized
// model file out (int8-dynamic, int8-static, int4-gNN, bf16; Schemes.swift says which
// tensors), with, on request, the sensitivity table (each unit quantized alone) and an
// accuracy-aware mixed-precision search (`maxDrop`, QuantizeSearch.swift).
//
// Every flag, the model, the data and the output path are checked before anything runs;
// the output is written through a temporary file renamed into place (TeacherFile.write),
// so a failed run leaves nothing behind. int8-static calibrates on the training split of
// a prepared dataset (tokenized by the model's own tokenizer; text that turns mostly into
// [UNK] is refused as made for another vocabulary); `--rounding gptq` runs the same
// calibration pass to collect each Linear input's XᵀX and re-rounds the int8/int4 weights
// with GPTQ (Quantization/GPTQ.swift) — embeddings and units the mixed-precision search
// moves up stay round-to-nearest. Left out on purpose: quantizing an
// already quantized file (quantize the fp32 model), quantization-aware training.
import DistilleryJSON
import DistilleryModel
import DistilleryTensor
import Foundation
import Quantization
import WeightIO

/// What `quantize` reads and writes.
public struct QuantizeConfig: Sendable {
    /// An fp32 Distillery model file.
    public var model: String
    /// A `--scheme` name (QuantizationScheme.names).
    public var scheme: String
    public var out: String
    /// A prepared dataset for int8-static's calibration (its training split).
    public var calibration: String?
    public var calibrationSize = 128
    /// "minmax" or "percentile".
    public var calibrationMethod = "minmax"
    public var percentile = 99.99
    /// How Linear weights are rounded: "nearest", or "gptq" (error-compensating rounding
    /// from the calibration Hessian; needs `calibration`).
    public var rounding = "nearest"
    /// A prepared dataset whose dev split scores the sensitivity table and the search.
    public var data: String?
    public var sensitivity = false
    /// Largest dev macro-F1 drop (points) the mixed-precision search accepts.
    public var maxDrop: Double?
    /// Dev examples scored (evenly spaced over the split; 0: all).
    public var evalSize = 1000
    public var batchSize = 32
    public var threads = 1

    /// A configuration; see the properties.
    public init(model: String, scheme: String, out: String) {
        self.model = model
        self.scheme = scheme
        self.out = out
    }
}

/// One quantized tensor as the report lists it.
public struct QuantizedTensorRow: Codable, Sendable {
    public var name: String
    public var format: String
    public var bitsPerWeight: Double
    /// int8-static's activation scale.
    public var inputScale: Float?
}

/// What `quantize` did.
public struct QuantizeReport: Codable, Sendable {
    public var model: String
    public var out: String
    public var scheme: String
    /// "nearest" or "gptq" (with its calibration texts).
    public var rounding: String?
    public var kernelPath: String
    public var bytesBefore: Int
    public var bytesAfter: Int
    public var tensors: [QuantizedTensorRow]
    /// Each unit quantized alone (with `sensitivity` or `maxDrop`).
    public var sensitivity: [SensitivityRow]?
    /// The mixed-precision trials, in order (with `maxDrop`).
    public var trials: [SearchTrial]?
    /// Whether the written model meets `maxDrop` (nil without a search).
    public var targetMet: Bool?
    /// The written model's score on dev (with `data`).
    public var written: PlanScore?
    public var notes: [String]

    /// The summary, the sensitivity table and the search, as text.
    public var text: String {
        let counts = Dictionary(grouping: tensors, by: \.format).map { "\($0.value.count) × \($0.key)" }.sorted()
        var lines = ["quantized \(model) with \(scheme), rounding \(rounding ?? "nearest") (kernels: \(kernelPath)) → \(out)",
                     "\(tensors.count) tensors quantized (\(counts.joined(separator: ", "))); file \(formatBytes(bytesBefore)) → \(formatBytes(bytesAfter))"]
        if let sensitivity { lines += ["", sensitivityTable(sensitivity)] }
        if let trials { lines += ["", searchTable(trials)] }
        if let written { lines.append(String(format: "written model on dev: macro-F1 %.4f (drop %.2f pt), mean KL %.5f, mean cosine %.5f", written.macroF1 ?? .nan, written.drop ?? .nan, written.meanKL ?? .nan, written.meanCosine)) }
        lines += notes
        return lines.joined(separator: "\n")
    }
}

/// Quantizes `config.model` and writes `config.out` (see the file header).
public func quantize(_ config: QuantizeConfig, progress: StageProgress = SilentProgress()) throws -> QuantizeReport {
    // Flags first.
    try setComputeThreads(config.threads)
    let scheme: QuantizationScheme
    do { scheme = try QuantizationScheme(parsing: config.scheme) } catch { throw StageError.usage(error.description) }
    try checkOutputPath(config.out, flag: "--out")
    guard URL(fileURLWithPath: config.out).standardizedFileURL != URL(fileURLWithPath: config.model).standardizedFileURL else {
        throw StageError.usage("--out is the input model (\(config.out)) — write the quantized model to a new file")
    }
    guard config.batchSize >= 1 else { throw StageError.usage("--batch-size \(config.batchSize) must be at least 1") }
    guard config.evalSize >= 0 else { throw StageError.usage("--eval-size \(config.evalSize) must be 0 (all) or more") }
    if let maxDrop = config.maxDrop {
        guard maxDrop.isFinite, maxDrop >= 0 else {
            throw StageError.usage("--max-drop \(maxDrop) must be a non-negative number of macro-F1 points, e.g. --max-drop 0.5")
        }
    }
    let method: CalibrationMethod
    switch config.calibrationMethod {
    case "minmax", "min-max": method = .minMax
    case "percentile":
        guard config.percentile > 50, config.percentile <= 100 else {
            throw StageError.usage("--percentile \(config.percentile) must be in (50, 100], e.g. 99.99")
        }
        method = .percentile(config.percentile)
    default: throw StageError.usage("--calibration-method '\(config.calibrationMethod)' is not one of: minmax, percentile")
    }
    switch config.rounding {
    case "nearest": break
    case "gptq":
        guard scheme != .bf16 else {
            throw StageError.usage("--rounding gptq rounds int8 and int4 weights; bf16 has no grid to round to — use --rounding nearest")
        }
        guard config.calibration != nil else {
            throw StageError.usage("--rounding gptq needs calibration data — add --calibration data/NAME (a prepared dataset; its training split is used)")
        }
        guard config.calibrationSize >= 1 else { throw StageError.usage("--calibration-size \(config.calibrationSize) must be at least 1") }
    default: throw StageError.usage("--rounding '\(config.rounding)' is not one of: nearest, gptq")
    }
    if scheme == .int8Static {
        guard config.calibration != nil else {
            throw StageError.usage("--scheme int8-static needs calibration data — add --calibration data/NAME (a prepared dataset; its training split is used)")
        }
        guard config.calibrationSize >= 1 else { throw StageError.usage("--calibration-size \(config.calibrationSize) must be at least 1") }
    } else if config.calibration != nil && config.rounding != "gptq" {
        progress.warning("--calibration is only used by --scheme int8-static and --rounding gptq; \(scheme) quantizes activations at run time")
    }
    if (config.sensitivity || config.maxDrop != nil) && config.data == nil {
        throw StageError.usage("\(config.maxDrop != nil ? "--max-drop" : "--sensitivity") scores on a dev split — add --data data/NAME")
    }

    // The model.
    let bundle = try ModelBundle(path: config.model)
    guard bundle.file.quantized.isEmpty else {
        throw StageError("\(config.model): is already quantized (\(bundle.file.quantized.count) tensors) — quantize the fp32 model it came from")
    }
    let tensors = bundle.tensors
    // The fp32 encoder runs only to score plans on --data or to calibrate; without it the
    // weights are checked (and the heads read) as building it would.
    let encoder = config.data != nil || scheme == .int8Static || config.rounding == "gptq" ? try bundle.makeEncoder() : nil
    let heads: BertHeads
    do { heads = try encoder?.heads ?? validateBertParameters(bundle.config, tensors: tensors).heads } catch {
        throw StageError(file: config.model, error)
    }
    let units = quantizationUnits(config: bundle.config, heads: heads)
    let evaluator = try config.data.map { try PlanEvaluator(bundle: bundle, encoder: encoder!, data: $0, size: config.evalSize,
                                                            batchSize: config.batchSize, needsClassifier: config.maxDrop != nil) }

    // Quantize every unit with the scheme (int8-static: with calibrated activation scales).
    var quantized: [String: QuantizedTensor]
    do { quantized = try quantizeWeights(tensors, plan: quantizationPlan(units, scheme: scheme), source: config.model) } catch {
        throw error.isUsage ? StageError.usage(error.description) : StageError(error.description)
    }
    if scheme == .int8Static {
        let scales = try calibrate(encoder: encoder!, bundle: bundle, data: config.calibration!, size: config.calibrationSize,
                                   method: method, batchSize: config.batchSize, units: units)
        for unit in units { if let s = scales[unit.name] { for name in unit.tensors { quantized[name] = quantized[name]!.withInputScale(s) } } }
    }
    if config.rounding == "gptq" {   // re-round the Linear weights against their inputs' Hessians
        let hessians = try calibrationHessians(encoder: encoder!, bundle: bundle, data: config.calibration!, size: config.calibrationSize,
                                               batchSize: config.batchSize, units: units)
        for unit in units where !unit.isEmbedding {
            guard let h = hessians[unit.name] else { continue }
            for name in unit.tensors {
                let old = quantized[name]!
                do { quantized[name] = try gptqQuantize(tensors[name]!, hessian: h, format: old.format).withInputScale(old.inputScale) } catch {
                    throw StageError("\(config.calibration!): GPTQ for \(name): \(error) — use more --calibration-size texts or --rounding nearest")
                }
                do { try quantized[name]!.validate() } catch {
                    throw StageError("\(config.model): tensor '\(name)' does not quantize to \(old.format) with GPTQ: \(error.description) — use --rounding nearest")
                }
            }
            progress.line("gptq: \(unit.name) rounded against \(h.rowCount) calibration rows")
        }
    }

    var report = QuantizeReport(model: config.model, out: config.out, scheme: scheme.description,
                                rounding: config.rounding == "gptq" ? "gptq (\(config.calibrationSize) texts of \(config.calibration!))" : "nearest",
                                kernelPath: quantizedKernelPath,
                                bytesBefore: fileSize(config.model), bytesAfter: 0, tensors: [], notes: [])
    if let evaluator {
        let search = try MixedPrecisionRun(evaluator: evaluator, tensors: tensors, units: units, scheme: scheme, quantized: quantized,
                                           source: config.model, progress: progress)
        if config.sensitivity || config.maxDrop != nil { report.sensitivity = try search.sensitivity() }
        if let maxDrop = config.maxDrop {
            let result = try search.search(maxDrop: maxDrop, sensitivity: report.sensitivity!)
            (report.trials, report.targetMet, quantized) = (result.trials, result.met, result.quantized)
            report.notes.append(result.met
                ? String(format: "target met: dev macro-F1 drop %.2f ≤ %.2f pt with %@", result.best.score.drop ?? 0, maxDrop, result.best.description)
                : String(format: "target NOT met: no plan tried kept the dev drop within %.2f pt; written the best found (drop %.2f pt, %@)", maxDrop, result.best.score.drop ?? 0, result.best.description))
        }
        report.written = try evaluator.score(quantized)
    }

    // Write: the tensor list gives the file's order; a name in `quantized` is stored in its
    // quantized form (TeacherFile.write), so its fp32 values are not needed here.
    var file = bundle.file
    file.quantized = quantized
    do { try file.write(to: URL(fileURLWithPath: config.out)) } catch { throw StageError(file: config.out, error) }
    report.bytesAfter = fileSize(config.out)
    report.tensors = quantized.keys.sorted().map { name in
        let q = quantized[name]!
        return QuantizedTensorRow(name: name, format: q.format.description, bitsPerWeight: q.format.bitsPerWeight(columns: q.columns),
                                  inputScale: q.inputScale)
    }
    return report
}

/// int8-static's activation scale per Linear unit: the fp32 model runs over `size` texts
/// of the training split of `data` and each unit's input magnitudes are collected.
func calibrate(encoder: BertEncoder, bundle: ModelBundle, data: String, size: Int, method: CalibrationMethod,
               batchSize: Int, units: [QuantizationUnit]) throws -> [String: Float] {
    var ranges: [String: ActivationRange] = [:]
    try forEachUnitInput(encoder: encoder, bundle: bundle, data: data, size: size, batchSize: batchSize, units: units) { unit, x, rows, width, text in
        var range = ranges[unit] ?? ActivationRange()
        guard range.add(x, count: rows * width) else {
            throw StageError("\(data): the calibration activations of \(unit) hold NaN or Inf (text \(text + 1) of the training split) — the fp32 model overflows on it; check the model with kd eval")
        }
        ranges[unit] = range
    }
    var scales: [String: Float] = [:]
    for unit in units where !unit.isEmbedding { scales[unit.name] = ranges[unit.name]?.scale(method) }
    return scales
}

/// GPTQ's Hessian (XᵀX of the layer input) per Linear unit, from the same calibration pass
/// as `calibrate`.
func calibrationHessians(encoder: BertEncoder, bundle: ModelBundle, data: String, size: Int, batchSize: Int,
                         units: [QuantizationUnit]) throws -> [String: HessianAccumulator] {
    var hessians: [String: HessianAccumulator] = [:]
    try forEachUnitInput(encoder: encoder, bundle: bundle, data: data, size: size, batchSize: batchSize, units: units) { unit, x, rows, width, text in
        for i in 0..<(rows * width) where !x[i].isFinite {
            throw StageError("\(data): the calibration activations of \(unit) hold NaN or Inf (text \(text + 1) of the training split) — the fp32 model overflows on it; check the model with kd eval")
        }
        var h = hessians[unit] ?? HessianAccumulator(width: width)
        h.add(x, rows: rows, stride: width)
        hessians[unit] = h
    }
    return hessians
}

/// Runs the fp32 model over `size` texts of the training split of `data` and calls `visit`
/// with each Linear unit's input rows of every text (unit name, rows, row count, width,
/// index of the text in the split); padding rows are left out.
func forEachUnitInput(encoder: BertEncoder, bundle: ModelBundle, data: String, size: Int, batchSize: Int, units: [QuantizationUnit],
                      _ visit: (String, UnsafePointer<Float>, Int, Int, Int) throws -> Void) throws {
    let folder = try PreparedFolder(path: data)
    let rows = try folder.read(.train)
    guard !rows.isEmpty else {
        throw StageError("\(folder.filePath(.train)): no examples — --calibration needs a prepared dataset with training texts")
    }
    let chosen = evenlySpaced(rows.count, size)
    let maxLength = bundle.storedMaxLength ?? min(128, bundle.config.maxPositions)
    let sequences = chosen.map { bundle.tokenizer.encode(rows[$0].text, maxLength: maxLength).ids }
    let tokens = sequences.reduce(0) { $0 + $1.count - 2 }
    let unknown = sequences.reduce(0) { $0 + $1.filter { $0 == bundle.tokenizer.unknownId }.count }
    if tokens > 0, Double(unknown) > 0.5 * Double(tokens) {
        throw StageError("\(folder.filePath(.train)): \(unknown * 100 / tokens)% of the calibration tokens are [UNK] with \(bundle.path)'s vocabulary — the data was made for another tokenizer or language; calibrate on text the model reads")
    }
    let model = encoder.model, L = bundle.config.layerCount
    for start in stride(from: 0, to: sequences.count, by: batchSize) {
        let chunk = Array(sequences[start..<min(start + batchSize, sequences.count)])
        let T = chunk.map(\.count).max()!
        var ids = [Int32](repeating: bundle.tokenizer.paddingId, count: chunk.count * T), mask = [Int32](repeating: 0, count: chunk.count * T)
        for (r, s) in chunk.enumerated() { for (t, id) in s.enumerated() { ids[r * T + t] = id; mask[r * T + t] = 1 } }
        let batch = EncoderBatch(ids: ids, mask: mask, batchSize: chunk.count, sequenceLength: T)
        let acts: BertActivations
        do { acts = try model.forward(batch, parameters: encoder.block, options: ForwardOptions(cacheForBackward: true)) } catch {
            throw StageError(file: bundle.path, error)
        }
        /// Visits the real (unpadded) rows of an activation [B·T, width] per text.
        func collect(_ unit: String, _ buffer: FloatBuffer, width: Int, rowsPerSequence: Int) throws {
            for b in 0..<chunk.count {
                let n = rowsPerSequence == 1 ? 1 : chunk[b].count
                try visit(unit, buffer.pointer + b * rowsPerSequence * width, n, width, chosen[start + b])
            }
        }
        let H = bundle.config.hiddenSize
        for l in 0..<L {
            let a = acts.layers[l], A = bundle.config.layerHeads[l] * bundle.config.headSize, F = bundle.config.layerIntermediateSizes[l]
            try collect("layer.\(l).qkv", a.input, width: H, rowsPerSequence: T)
            try collect("layer.\(l).attention.output", a.context, width: A, rowsPerSequence: T)
            try collect("layer.\(l).ffn.in", a.norm1Output, width: H, rowsPerSequence: T)
            try collect("layer.\(l).ffn.out", a.ffnActivation, width: F, rowsPerSequence: T)
        }
        if units.contains(where: { $0.name == "pooler" }) {   // the pooler reads each sequence's [CLS] state
            let cls = FloatBuffer(count: chunk.count * H)
            for b in 0..<chunk.count { (cls.pointer + b * H).update(from: acts.lastHidden.pointer + b * T * H, count: H) }
            try collect("pooler", cls, width: H, rowsPerSequence: 1)
        }
    }
}

/// `count` indices spread evenly over 0..<total (all of them when count is 0 or ≥ total).
func evenlySpaced(_ total: Int, _ count: Int) -> [Int] {
    guard count > 0, count < total else { return Array(0..<total) }
    return (0..<count).map { $0 * total / count }
}
