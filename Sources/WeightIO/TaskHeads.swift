// TaskHeads: the multi-task heads of a Distillery model file (teacher format version 3) —
// one shared encoder, one classifier per task — and the checks every reader and writer runs.
//
// Layout (beside the single-head layout of TeacherFile.swift):
//   /tasks.<name>.classifier.weight   float32 [labels, hidden] (PyTorch Linear layout)
//   /tasks.<name>.classifier.bias     float32 [labels]
//   root attribute tasks_json         [{"name": "sms-spam", "labels": ["ham", "spam"],
//                                       "max_length": 64}, …] in head order
// A file with task heads has no /classifier.* (the heads replace it); every task in
// tasks_json has both tensors with its label count, every /tasks.* tensor belongs to a listed
// task, and all heads read the same hidden size. Task names are 1–64 characters of
// [A-Za-z0-9_-], unique ignoring case (they become tensor names and file-system-safe
// words). The pooler, when the classifier reads [CLS], is shared by all heads (it is part of
// the encoder here). Left out on purpose: per-task poolers, regression heads, task-specific
// adapters — a head is a Linear over the shared pooled sequence, as MT-DNN's.
import DistilleryJSON
import DistilleryTensor
import Foundation

/// Root attribute holding the task list of a multi-task model.
let taskHeadsAttribute = "tasks_json"
/// The longest task name accepted.
public let maximumTaskNameLength = 64

/// One task's classifier in a multi-task model.
public struct TaskHead: Codable, Sendable, Equatable {
    /// The task's name (also its tensors' prefix, `tasks.<name>.`).
    public var name: String
    /// Class names in class order.
    public var labels: [String]
    /// The maximum length the head was trained at (its label cache's), when known.
    public var maxLength: Int?

    enum CodingKeys: String, CodingKey { case name, labels, maxLength = "max_length" }

    public init(name: String, labels: [String], maxLength: Int? = nil) {
        self.name = name
        self.labels = labels
        self.maxLength = maxLength
    }

    /// `tasks.<name>.classifier.weight`.
    public var weightName: String { "tasks.\(name).classifier.weight" }
    /// `tasks.<name>.classifier.bias`.
    public var biasName: String { "tasks.\(name).classifier.bias" }
}

/// Why `name` cannot name a task, or nil when it can.
public func taskNameProblem(_ name: String) -> String? {
    if name.isEmpty { return "is empty" }
    if name.count > maximumTaskNameLength { return "is longer than \(maximumTaskNameLength) characters" }
    let allowed = name.unicodeScalars.allSatisfy { ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || $0 == "_" || $0 == "-" }
    return allowed ? nil : "has characters other than A–Z, a–z, 0–9, '_' and '-'"
}

/// The first two positions whose names clash (equal ignoring case), or nil.
public func duplicateTaskNames(_ names: [String]) -> (first: Int, second: Int)? {
    var seen: [String: Int] = [:]
    for (i, n) in names.enumerated() {
        if let j = seen[n.lowercased()] { return (j, i) }
        seen[n.lowercased()] = i
    }
    return nil
}

/// The task list as stored in `tasks_json` (sorted keys, so the same heads give the same bytes).
func taskHeadsJSON(_ tasks: [TaskHead]) throws -> String { try JSONCoding.string(tasks) }

/// Parses and checks a stored `tasks_json` (names, labels, lengths); `url` names the file.
func parseTaskHeads(_ text: String, url: URL) throws -> [TaskHead] {
    let hint = "the file is damaged or was edited; distil the multi-task student again"
    func bad(_ message: String) -> WeightIOError { WeightIOError(.corrupt, file: url, object: taskHeadsAttribute, message, hint: hint) }
    let tasks: [TaskHead]
    do { tasks = try JSONCoding.decode([TaskHead].self, from: text) } catch {
        throw bad("\(taskHeadsAttribute) is not a list of {name, labels, max_length}: \(decodingProblem(error))")
    }
    guard !tasks.isEmpty else { throw bad("\(taskHeadsAttribute) lists no task") }
    for (i, t) in tasks.enumerated() {
        if let problem = taskNameProblem(t.name) { throw bad("\(taskHeadsAttribute)[\(i)].name '\(t.name)' \(problem)") }
        guard t.labels.count >= 2, !t.labels.contains("") else {
            throw bad("\(taskHeadsAttribute)[\(i)] ('\(t.name)') has \(t.labels.count) labels\(t.labels.contains("") ? ", one empty" : ""); a head needs ≥ 2 named classes")
        }
        if let n = t.maxLength, n < 2 { throw bad("\(taskHeadsAttribute)[\(i)] ('\(t.name)') has max_length \(n), below 2") }
    }
    if let (a, b) = duplicateTaskNames(tasks.map(\.name)) {
        throw bad("\(taskHeadsAttribute) names task '\(tasks[b].name)' twice (entries \(a) and \(b), names ignore case)")
    }
    return tasks
}

/// Checks that `tensors` hold exactly the heads of `tasks` (shapes from their label counts,
/// one hidden size) and no single `classifier.*` beside them. No tasks: no `tasks.*` tensors.
func checkTaskHeadTensors(_ tasks: [TaskHead], tensors: [(name: String, tensor: Tensor)], url: URL) throws {
    let byName = Dictionary(tensors.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
    let hint = "the file is damaged or was edited; distil the multi-task student again"
    let owned = Set(tasks.flatMap { [$0.weightName, $0.biasName] })
    let stray = tensors.map(\.name).filter { $0.hasPrefix("tasks.") && !owned.contains($0) }
    if let name = stray.first {
        throw WeightIOError(.corrupt, file: url, object: name,
                            tasks.isEmpty ? "tensor '\(name)' is a task head but the file lists no tasks (\(taskHeadsAttribute))"
                                          : "tensor '\(name)' belongs to no task in \(taskHeadsAttribute) (\(tasks.map(\.name).joined(separator: ", ")))",
                            hint: hint)
    }
    guard !tasks.isEmpty else { return }
    if let name = tensors.map(\.name).first(where: { $0.hasPrefix("classifier.") }) {
        throw WeightIOError(.corrupt, file: url, object: name, "a multi-task file has task heads and a single classifier '\(name)' — it must have one or the other", hint: hint)
    }
    var hidden: Int?
    for t in tasks {
        guard let w = byName[t.weightName], let b = byName[t.biasName] else {
            throw WeightIOError(.missingObject, file: url, object: byName[t.weightName] == nil ? t.weightName : t.biasName,
                                "task '\(t.name)' has no \(byName[t.weightName] == nil ? "'\(t.weightName)'" : "'\(t.biasName)'")", hint: hint)
        }
        guard w.shape.count == 2, w.shape[0] == t.labels.count, b.shape == [t.labels.count] else {
            throw WeightIOError(.corrupt, file: url, object: t.weightName,
                                "task '\(t.name)' has \(t.labels.count) labels but its head is \(describeShape(w.shape)) + \(describeShape(b.shape)), expected [\(t.labels.count), hidden] + [\(t.labels.count)]",
                                hint: hint)
        }
        if let h = hidden, h != w.shape[1] {
            throw WeightIOError(.corrupt, file: url, object: t.weightName, "task '\(t.name)' reads hidden size \(w.shape[1]), the first head \(h) — all heads share one encoder", hint: hint)
        }
        hidden = w.shape[1]
    }
}

extension TeacherFile {
    /// The head named `name` (exact, else ignoring case), or nil.
    public func task(named name: String) -> TaskHead? {
        tasks.first { $0.name == name } ?? tasks.first { $0.name.lowercased() == name.lowercased() }
    }

    /// The single-head model of task `name`: its head as `classifier.*`, its labels, the other
    /// heads dropped. Errors list the tasks (and say when the file has none).
    public func selectingTask(_ name: String, url: URL) throws -> TeacherFile {
        guard !tasks.isEmpty else {
            throw WeightIOError(.mismatch, file: url, object: taskHeadsAttribute, "--task '\(name)': the model has one classifier, not task heads",
                                hint: "leave out --task for a single-task model")
        }
        guard let task = task(named: name) else {
            throw WeightIOError(.mismatch, file: url, object: taskHeadsAttribute, "--task '\(name)' is not one of the model's tasks",
                                hint: "pick one of: \(tasks.map(\.name).joined(separator: ", ")) (kd info lists them)")
        }
        var out = self
        out.tensors = tensors.compactMap { item in
            if item.name == task.weightName { return ("classifier.weight", item.tensor) }
            if item.name == task.biasName { return ("classifier.bias", item.tensor) }
            return item.name.hasPrefix("tasks.") ? nil : item
        }
        out.labelsJSON = try JSONCoding.string(task.labels)
        out.tasks = []
        return out
    }
}
