// ModelError: everything that can be wrong with a config, a weight set or an input batch.
//
// Messages say what was wrong, where, and what to try; the CLI prefixes the file name.
import DistilleryTensor

/// An error in a model's config, weights or inputs, with a hint for the user.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case badConfig(String, String, hint: String)
    case missingTensor(name: String, expected: [Int], hint: String)
    case unexpectedTensors([String], hint: String)
    case wrongShape(name: String, expected: [Int], found: [Int], hint: String)
    case nonFinite(name: String, index: Int, value: String)
    case badInput(String, hint: String)

    public var description: String {
        switch self {
        case let .badConfig(source, what, hint):
            return "\(source): \(what) — \(hint)"
        case let .missingTensor(name, expected, hint):
            return "missing tensor '\(name)' (expected \(describeShape(expected))) — \(hint)"
        case let .unexpectedTensors(names, hint):
            let shown = names.prefix(5).map { "'\($0)'" }.joined(separator: ", ")
            return "unexpected tensor\(names.count > 1 ? "s" : "") \(shown)\(names.count > 5 ? " and \(names.count - 5) more" : "") — \(hint)"
        case let .wrongShape(name, expected, found, hint):
            return "tensor '\(name)' has shape \(describeShape(found)) but the config needs \(describeShape(expected)) — \(hint)"
        case let .nonFinite(name, index, value):
            return "tensor '\(name)' holds \(value) at flat index \(index) — the weights are corrupt or diverged; re-export them"
        case let .badInput(what, hint):
            return "\(what) — \(hint)"
        }
    }
}

