// StudentSpec: a student architecture and its distillation recipe, read from
// `students/*.json` (format "distillery-student", version 1).
//
// Students are data, not code (STYLE.md): the JSON names the student's sizes, how it is
// initialised from the teacher, which teacher layer each student layer learns from, the
// loss weights, the temperature and the schedule. The recipes follow DistilBERT
// (huggingface/transformers `examples/research_projects/distillation`: every-other-layer
// copy, soft CE + hard CE + cosine on hidden states) and TinyBERT (huawei-noah
// `TinyBERT/task_distill.py`: uniform layer map, embedding/hidden/attention MSE with a
// learned projection, two stages). The schema is documented in `students/README.md`.
// Reading is strict: an unknown key, a wrong type or an out-of-range value is an error that
// names the file, the key path and what was expected; sizes are bounded by
// `BertConfigLimits` before any per-layer list is built from them. Checks that need the teacher
// (indices in range, head counts, widths) live in `DistillationPlan`.
// Left out on purpose: comments in JSON, defaults for required keys, teacher-specific keys
// (vocabulary, positions, LayerNorm eps and activation always come from the teacher).
import DistilleryJSON
import DistilleryModel
import Foundation

// MARK: - Errors

/// A student definition or distillation plan that cannot be used: what, where, what to do.
public struct DistillationError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file (or "plan") the problem was found in.
    public var source: String
    /// Dotted key path inside the JSON, e.g. `architecture.layers`; nil when not about one key.
    public var keyPath: String?
    /// What is wrong.
    public var message: String
    /// What to do about it.
    public var hint: String

    /// Creates an error; `keyPath` names the JSON key when there is one.
    public init(_ source: String, keyPath: String? = nil, _ message: String, hint: String) {
        self.source = source
        self.keyPath = keyPath
        self.message = message
        self.hint = hint
    }

    public var description: String {
        "\(source): \(keyPath.map { "'\($0)' " } ?? "")\(message) — \(hint)"
    }
}

// MARK: - The spec

/// A student architecture plus its distillation recipe (`students/*.json`).
public struct StudentSpec: Sendable, Equatable {
    /// Value of the `format` key.
    public static let formatName = "distillery-student"
    /// The newest (and only) format version this build reads.
    public static let formatVersion = 1

    /// Short identifier, e.g. `tiny-l4-h256`.
    public var name: String
    /// Free text shown in the plan.
    public var description: String
    /// Layer count and widths of the student.
    public var architecture: StudentArchitecture
    /// Where the student's initial weights come from.
    public var initialization: StudentInitialization
    /// Which teacher layer each student layer learns from.
    public var layerMap: LayerMapSpec
    /// Weight of each distillation loss (0 = off).
    public var losses: LossWeights
    /// Softmax temperature of the soft cross-entropy (> 0).
    public var temperature: Double
    /// One stage (all losses together) or TinyBERT's two stages.
    public var schedule: DistillationSchedule
    /// Optional training defaults the CLI may override.
    public var training: TrainingDefaults
    /// The file the spec came from (used in error messages).
    public var source: String

    /// Reads and checks a student file.
    public init(contentsOf url: URL) throws(DistillationError) {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw DistillationError(url.path, "cannot be read (\(error.localizedDescription))",
                                    hint: "check the path; the shipped students are in students/*.json")
        }
        try self.init(json: data, source: url.path)
    }

    /// Parses and checks student JSON; `source` names the file in error messages.
    public init(json data: Data, source: String) throws(DistillationError) {
        let root: JSONValue
        do { root = try JSONValue.parse(data) } catch {
            throw DistillationError(source, "is not valid JSON (\(error))", hint: "fix the syntax; see students/README.md for the schema")
        }
        let top = try ObjectReader(root, path: "", source: source, allowed: [
            "format", "version", "name", "description", "architecture", "init", "layer_map",
            "losses", "temperature", "schedule", "training",
        ])
        let format = try top.string("format")
        guard format == Self.formatName else {
            throw top.error("format", "is \"\(format)\", not \"\(Self.formatName)\"", hint: "is this a student file? see students/README.md")
        }
        let version = try top.int("version")
        guard version == Self.formatVersion else {
            throw top.error("version", "is \(version); this build reads version \(Self.formatVersion)", hint: "use a student file written for this Distillery version")
        }
        name = try top.string("name")
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw top.error("name", "\"\(name)\" is empty or has characters other than letters, digits, '-', '_', '.'",
                            hint: "use a short identifier such as \"tiny-l4-h256\"")
        }
        description = try top.optionalString("description") ?? ""
        architecture = try StudentArchitecture(try top.object("architecture", allowed: [
            "layers", "hidden_size", "heads", "intermediate_size", "layer_heads", "layer_intermediate_sizes",
        ]))
        initialization = try StudentInitialization(try top.object("init", allowed: ["from", "layers", "pick", "std"]),
                                                   layers: architecture.layers)
        layerMap = try LayerMapSpec(try top.object("layer_map", allowed: ["kind", "teacher_layers"]), layers: architecture.layers)
        losses = try LossWeights(try top.object("losses", allowed: LossKind.allCases.map(\.rawValue)))
        temperature = try top.double("temperature")
        guard temperature > 0, temperature.isFinite else {
            throw top.error("temperature", "is \(temperature)", hint: "the softmax temperature must be a finite number > 0 (1 = plain softmax; DistilBERT used 2)")
        }
        schedule = try DistillationSchedule(try top.object("schedule", allowed: ["kind", "epochs", "intermediate_epochs", "prediction_epochs"]),
                                            losses: losses)
        training = try top.has("training")
            ? TrainingDefaults(try top.object("training", allowed: ["learning_rate", "batch_size", "max_length", "warmup_ratio", "seed"]))
            : TrainingDefaults()
        self.source = source
    }
}

/// Layer count and widths of a student (vocabulary, positions, eps come from the teacher).
public struct StudentArchitecture: Sendable, Equatable {
    /// Number of encoder layers M (≥ 1).
    public var layers: Int
    /// Hidden size H_s, a multiple of `heads`.
    public var hiddenSize: Int
    /// Attention heads of a full layer; head size = hiddenSize / heads.
    public var heads: Int
    /// FFN width of a full layer.
    public var intermediateSize: Int
    /// Heads of each layer (all `heads` when absent).
    public var layerHeads: [Int]
    /// FFN width of each layer (all `intermediateSize` when absent).
    public var layerIntermediateSizes: [Int]

    /// The head size hiddenSize / heads.
    public var headSize: Int { hiddenSize / heads }

    init(_ o: ObjectReader) throws(DistillationError) {
        layers = try o.int("layers")
        guard layers >= 1 else {
            throw o.error("layers", "is \(layers)", hint: "a student needs at least one encoder layer")
        }
        guard layers <= BertConfigLimits.layers else {
            throw o.error("layers", "is \(layers)", hint: "a student has 1...\(BertConfigLimits.layers) encoder layers (and at most as many as its teacher)")
        }
        hiddenSize = try o.int("hidden_size")
        heads = try o.int("heads")
        intermediateSize = try o.int("intermediate_size")
        let limits = [("hidden_size", hiddenSize, BertConfigLimits.hiddenSize), ("heads", heads, BertConfigLimits.heads),
                      ("intermediate_size", intermediateSize, BertConfigLimits.intermediateSize)]
        for (key, value, _) in limits where value < 1 {
            throw o.error(key, "is \(value)", hint: "sizes must be positive")
        }
        for (key, value, limit) in limits where value > limit {
            throw o.error(key, "is \(value), above the limit \(limit)", hint: "a student is smaller than its teacher; no BERT-family encoder is that large")
        }
        guard hiddenSize % heads == 0 else {
            throw o.error("heads", "\(heads) does not divide hidden_size \(hiddenSize)",
                          hint: "each head has hidden_size / heads dimensions; e.g. hidden 256 with 8 heads of 32")
        }
        layerHeads = try o.optionalIntArray("layer_heads") ?? Array(repeating: heads, count: layers)
        layerIntermediateSizes = try o.optionalIntArray("layer_intermediate_sizes") ?? Array(repeating: intermediateSize, count: layers)
        for (key, list) in [("layer_heads", layerHeads), ("layer_intermediate_sizes", layerIntermediateSizes)] where list.count != layers {
            throw o.error(key, "has \(list.count) entries for \(layers) layers", hint: "give one entry per student layer, or leave the key out")
        }
        if let bad = layerHeads.firstIndex(where: { $0 < 1 || $0 > heads }) {
            throw o.error("layer_heads", "entry \(bad) is \(layerHeads[bad])", hint: "each layer has 1...\(heads) heads (at most 'heads')")
        }
        if let bad = layerIntermediateSizes.firstIndex(where: { $0 < 1 || $0 > BertConfigLimits.intermediateSize }) {
            throw o.error("layer_intermediate_sizes", "entry \(bad) is \(layerIntermediateSizes[bad])", hint: "FFN widths lie in 1...\(BertConfigLimits.intermediateSize)")
        }
    }
}

/// How the student's weights are initialised.
public enum StudentInitialization: Sendable, Equatable {
    /// Copy whole teacher layers (student and teacher widths must be equal), DistilBERT style.
    case teacherLayers(LayerPick)
    /// Slice the teacher's strongest heads, FFN neurons and hidden dimensions (see StudentInit.swift).
    case teacherSlice(LayerPick)
    /// Normal(0, std²) weights, zero biases, LayerNorm 1/0 — HF `_init_weights`.
    case random(std: Double)

    /// The JSON `from` value.
    public var kind: String {
        switch self {
        case .teacherLayers: return "teacher-layers"
        case .teacherSlice: return "teacher-slice"
        case .random: return "random"
        }
    }

    init(_ o: ObjectReader, layers: Int) throws(DistillationError) {
        let from = try o.string("from")
        func pick() throws(DistillationError) -> LayerPick {
            if o.has("layers") && o.has("pick") {
                throw o.error("layers", "and 'pick' are both given", hint: "give either an explicit list of teacher layers or a pick rule, not both")
            }
            if o.has("layers") {
                let list = try o.intArray("layers")
                guard list.count == layers else {
                    throw o.error("layers", "lists \(list.count) teacher layers for \(layers) student layers", hint: "give one 0-based teacher layer index per student layer")
                }
                guard zip(list, list.dropFirst()).allSatisfy({ $0 < $1 }), list.allSatisfy({ $0 >= 0 }) else {
                    throw o.error("layers", "\(list) is not strictly increasing from 0", hint: "teacher layers are 0-based weight indices in increasing order, e.g. [1, 3, 5]")
                }
                return .explicit(list)
            }
            guard o.has("pick") else { return .mapped }
            let rule = try o.string("pick")
            guard let p = LayerPick(rule: rule) else {
                throw o.error("pick", "is \"\(rule)\"", hint: "expected one of \"every-other\", \"first\", \"last\", \"mapped\"")
            }
            return p
        }
        switch from {
        case "teacher-layers", "teacher-slice":
            if o.has("std") { throw o.error("std", "only applies to \"from\": \"random\"", hint: "remove it") }
            let p = try pick()
            self = from == "teacher-layers" ? .teacherLayers(p) : .teacherSlice(p)
        case "random":
            for key in ["layers", "pick"] where o.has(key) {
                throw o.error(key, "does not apply to \"from\": \"random\"", hint: "remove it, or copy teacher layers with \"from\": \"teacher-layers\"")
            }
            let std = try o.optionalDouble("std") ?? 0.02
            guard std > 0, std.isFinite else {
                throw o.error("std", "is \(std)", hint: "the initial weight standard deviation must be > 0 (HF BERT uses 0.02)")
            }
            self = .random(std: std)
        default:
            throw o.error("from", "is \"\(from)\"", hint: "expected \"teacher-layers\", \"teacher-slice\" or \"random\"")
        }
    }
}

/// Which teacher layers (0-based weight indices) the student's layers are initialised from.
public enum LayerPick: Sendable, Equatable {
    /// An explicit list, one per student layer.
    case explicit([Int])
    /// Every other layer ending with the teacher's last: N−2M+1, …, N−3, N−1 (DistilBERT).
    case everyOther
    /// The first M layers (a truncated teacher).
    case first
    /// The last M layers.
    case last
    /// The layer each student layer learns from under the layer map: g(m) − 1.
    case mapped

    init?(rule: String) {
        switch rule {
        case "every-other": self = .everyOther
        case "first": self = .first
        case "last": self = .last
        case "mapped": self = .mapped
        default: return nil
        }
    }

    /// The JSON spelling.
    public var rule: String {
        switch self {
        case .explicit(let list): return "layers \(list)"
        case .everyOther: return "every-other"
        case .first: return "first"
        case .last: return "last"
        case .mapped: return "mapped"
        }
    }
}

/// How student layers m = 1…M map to teacher layers g(m) ∈ 1…N (0 = embeddings, 0 → 0).
public enum LayerMapSpec: Sendable, Equatable {
    /// g(m) = ⌈m·N/M⌉ (TinyBERT's uniform map; rounded up when not an integer).
    case uniform
    /// g(m) = N − M + m (the teacher's last M layers).
    case last
    /// g(m) = teacher_layers[m−1].
    case explicit([Int])

    /// The JSON `kind` value.
    public var kind: String {
        switch self {
        case .uniform: return "uniform"
        case .last: return "last"
        case .explicit: return "explicit"
        }
    }

    init(_ o: ObjectReader, layers: Int) throws(DistillationError) {
        let kind = try o.string("kind")
        switch kind {
        case "uniform", "last":
            if o.has("teacher_layers") {
                throw o.error("teacher_layers", "only applies to \"kind\": \"explicit\"", hint: "remove it, or set \"kind\": \"explicit\"")
            }
            self = kind == "uniform" ? .uniform : .last
        case "explicit":
            let list = try o.intArray("teacher_layers")
            guard list.count == layers else {
                throw o.error("teacher_layers", "lists \(list.count) teacher layers for \(layers) student layers",
                              hint: "give g(m) for m = 1…\(layers): 1-based teacher layer outputs (0 is the embeddings, mapped to the student's embeddings implicitly)")
            }
            if let i = list.indices.dropLast().first(where: { list[$0] >= list[$0 + 1] }) {
                throw o.error("teacher_layers", "\(list) is not strictly increasing (student layers \(i + 1) and \(i + 2) map to \(list[i]) and \(list[i + 1]))",
                              hint: "the layer map must be monotone: a deeper student layer learns from a deeper teacher layer")
            }
            self = .explicit(list)
        default:
            throw o.error("kind", "is \"\(kind)\"", hint: "expected \"uniform\", \"last\" or \"explicit\"")
        }
    }
}

/// The distillation losses, by their JSON key.
public enum LossKind: String, CaseIterable, Sendable, Comparable {
    case softCE = "soft_ce"
    case hardCE = "hard_ce"
    case embeddingMSE = "embedding_mse"
    case hiddenMSE = "hidden_mse"
    case hiddenCosine = "hidden_cosine"
    case attentionMSE = "attention_mse"

    /// Human-readable name for the plan.
    public var title: String {
        switch self {
        case .softCE: return "soft CE"
        case .hardCE: return "hard CE"
        case .embeddingMSE: return "embedding MSE"
        case .hiddenMSE: return "hidden MSE"
        case .hiddenCosine: return "hidden cosine"
        case .attentionMSE: return "attention MSE"
        }
    }

    /// True for the prediction-layer losses (TinyBERT's stage 2).
    public var isPrediction: Bool { self == .softCE || self == .hardCE }

    public static func < (a: LossKind, b: LossKind) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// Weight of each loss; a missing key means 0 (off).
public struct LossWeights: Sendable, Equatable {
    /// Weights by loss; every `LossKind` has an entry.
    public var weights: [LossKind: Double]

    /// The weight of `kind` (0 when off).
    public subscript(kind: LossKind) -> Double { weights[kind] ?? 0 }

    /// The losses with a weight > 0, in `LossKind` order.
    public var active: [LossKind] { LossKind.allCases.filter { self[$0] > 0 } }

    /// Weights from a dictionary (missing = 0); used by tests and code-built recipes.
    public init(_ weights: [LossKind: Double]) {
        self.weights = Dictionary(uniqueKeysWithValues: LossKind.allCases.map { ($0, weights[$0] ?? 0) })
    }

    init(_ o: ObjectReader) throws(DistillationError) {
        var w: [LossKind: Double] = [:]
        for kind in LossKind.allCases {
            let v = try o.optionalDouble(kind.rawValue) ?? 0
            guard v >= 0, v.isFinite else {
                throw o.error(kind.rawValue, "is \(v)", hint: "loss weights are finite and ≥ 0 (0 turns the loss off)")
            }
            w[kind] = v
        }
        self.init(w)
        guard !active.isEmpty else {
            throw o.error(nil, "gives every loss weight 0", hint: "turn on at least one of \(LossKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }
}

/// One stage with all losses, or TinyBERT's intermediate-then-prediction stages.
public enum DistillationSchedule: Sendable, Equatable {
    /// All active losses together for `epochs` epochs.
    case oneStage(epochs: Int)
    /// Stage 1: intermediate losses only; stage 2: prediction losses only.
    case twoStage(intermediateEpochs: Int, predictionEpochs: Int)

    init(_ o: ObjectReader, losses: LossWeights) throws(DistillationError) {
        let kind = try o.string("kind")
        func epochs(_ key: String) throws(DistillationError) -> Int {
            let n = try o.int(key)
            guard n >= 1, n <= maximumEpochs else { throw o.error(key, "is \(n)", hint: "a stage runs 1...\(maximumEpochs) epochs") }
            return n
        }
        switch kind {
        case "one-stage":
            for key in ["intermediate_epochs", "prediction_epochs"] where o.has(key) {
                throw o.error(key, "only applies to \"kind\": \"two-stage\"", hint: "use 'epochs' for a one-stage schedule")
            }
            self = .oneStage(epochs: try epochs("epochs"))
        case "two-stage":
            if o.has("epochs") {
                throw o.error("epochs", "does not apply to \"kind\": \"two-stage\"", hint: "give 'intermediate_epochs' and 'prediction_epochs'")
            }
            self = .twoStage(intermediateEpochs: try epochs("intermediate_epochs"), predictionEpochs: try epochs("prediction_epochs"))
            let active = losses.active
            guard active.contains(where: { !$0.isPrediction }) else {
                throw o.error("kind", "is \"two-stage\" but no intermediate loss (embedding_mse, hidden_mse, hidden_cosine, attention_mse) is on",
                              hint: "stage 1 would have nothing to learn; use \"one-stage\"")
            }
            guard active.contains(where: \.isPrediction) else {
                throw o.error("kind", "is \"two-stage\" but no prediction loss (soft_ce, hard_ce) is on",
                              hint: "stage 2 would have nothing to learn; use \"one-stage\"")
            }
        default:
            throw o.error("kind", "is \"\(kind)\"", hint: "expected \"one-stage\" or \"two-stage\"")
        }
    }
}

/// Largest batch a recipe may suggest: activations are sized batch × length × hidden, and
/// 65,536 sequences is already far past what fits in memory at any useful length.
public let maximumBatchSize = 1 << 16
/// Most epochs a stage may run: far beyond any real run, small enough that epochs times
/// steps per epoch stays an Int.
public let maximumEpochs = 100_000

/// Training settings a recipe suggests; the CLI's flags override them.
public struct TrainingDefaults: Sendable, Equatable {
    public var learningRate: Double?
    public var batchSize: Int?
    public var maxLength: Int?
    public var warmupRatio: Double?
    public var seed: UInt64?

    /// No defaults.
    public init() {}

    init(_ o: ObjectReader) throws(DistillationError) {
        learningRate = try o.optionalDouble("learning_rate")
        if let lr = learningRate, !(lr > 0 && lr.isFinite) {
            throw o.error("learning_rate", "is \(lr)", hint: "the learning rate must be a finite number > 0, e.g. 5e-5")
        }
        batchSize = try o.optionalInt("batch_size")
        if let b = batchSize, b < 1 || b > maximumBatchSize {
            throw o.error("batch_size", "is \(b)", hint: "a batch holds 1...\(maximumBatchSize) examples")
        }
        maxLength = try o.optionalInt("max_length")
        if let m = maxLength, m < 2 || m > BertConfigLimits.positions {
            throw o.error("max_length", "is \(m)", hint: "sequences hold [CLS] and [SEP], so 2...\(BertConfigLimits.positions) tokens (and at most the teacher's positions)")
        }
        warmupRatio = try o.optionalDouble("warmup_ratio")
        if let w = warmupRatio, !(w >= 0 && w < 1) { throw o.error("warmup_ratio", "is \(w)", hint: "the warm-up ratio lies in [0, 1)") }
        if let s = try o.optionalInt("seed") {
            guard s >= 0 else { throw o.error("seed", "is \(s)", hint: "seeds are non-negative integers") }
            seed = UInt64(s)
        }
    }
}

// MARK: - Strict JSON reading

extension JSONValue {
    /// The kind's name with its article, for error messages ("an integer", "a string").
    var kindPhrase: String {
        switch self {
        case .null: return "null"
        case .bool: return "a bool"
        case .int: return "an integer"
        case .double: return "a non-integer number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

/// One JSON object being read: knows its key path and file, rejects unknown keys up front.
struct ObjectReader {
    let members: [String: JSONValue]
    let path: String
    let source: String

    init(_ node: JSONValue, path: String, source: String, allowed: [String]) throws(DistillationError) {
        self.path = path
        self.source = source
        guard case .object(let m) = node else {
            throw DistillationError(source, keyPath: path.isEmpty ? nil : path, "is \(node.kindPhrase), expected an object",
                                    hint: "see students/README.md for the schema")
        }
        members = m
        if let unknown = m.keys.filter({ !allowed.contains($0) }).sorted().first {
            throw DistillationError(source, keyPath: full(unknown), "is not a known key",
                                    hint: "allowed keys\(path.isEmpty ? "" : " in '\(path)'"): \(allowed.sorted().joined(separator: ", "))")
        }
    }

    func full(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func error(_ key: String?, _ message: String, hint: String) -> DistillationError {
        DistillationError(source, keyPath: key.map(full) ?? (path.isEmpty ? nil : path), message, hint: hint)
    }

    func has(_ key: String) -> Bool { members[key] != nil }

    private func required(_ key: String, _ expected: String) throws(DistillationError) -> JSONValue {
        guard let v = members[key] else {
            throw error(key, "is missing (expected \(expected))", hint: "every student file states it; see students/README.md")
        }
        return v
    }

    private func wrongType(_ key: String, _ node: JSONValue, _ expected: String) -> DistillationError {
        error(key, "is \(node.kindPhrase), expected \(expected)", hint: "see students/README.md for the schema")
    }

    func string(_ key: String) throws(DistillationError) -> String {
        let v = try required(key, "a string")
        guard case .string(let s) = v else { throw wrongType(key, v, "a string") }
        return s
    }

    func optionalString(_ key: String) throws(DistillationError) -> String? {
        has(key) ? try string(key) : nil
    }

    func int(_ key: String) throws(DistillationError) -> Int {
        let v = try required(key, "an integer")
        guard case .int(let n) = v else { throw wrongType(key, v, "an integer") }
        return n
    }

    func optionalInt(_ key: String) throws(DistillationError) -> Int? {
        has(key) ? try int(key) : nil
    }

    func double(_ key: String) throws(DistillationError) -> Double {
        let v = try required(key, "a number")
        switch v {
        case .int(let n): return Double(n)
        case .double(let d): return d
        default: throw wrongType(key, v, "a number")
        }
    }

    func optionalDouble(_ key: String) throws(DistillationError) -> Double? {
        has(key) ? try double(key) : nil
    }

    func intArray(_ key: String) throws(DistillationError) -> [Int] {
        let v = try required(key, "an array of integers")
        guard case .array(let items) = v else { throw wrongType(key, v, "an array of integers") }
        var out: [Int] = []
        for (i, item) in items.enumerated() {
            guard case .int(let n) = item else {
                throw error("\(key)[\(i)]", "is \(item.kindPhrase), expected an integer", hint: "see students/README.md for the schema")
            }
            out.append(n)
        }
        return out
    }

    func optionalIntArray(_ key: String) throws(DistillationError) -> [Int]? {
        has(key) ? try intArray(key) : nil
    }

    func object(_ key: String, allowed: [String]) throws(DistillationError) -> ObjectReader {
        let v = try required(key, "an object")
        return try ObjectReader(v, path: full(key), source: source, allowed: allowed)
    }
}
