// kd: Distillery's command line — argument declarations over DistilleryStages.
//
// Each subcommand parses its flags, builds the stage's configuration, calls one library
// function and prints the report it returns (as text, or as JSON with --json). Errors
// come back as `StageError` and are printed as one `kd: error: ...` line with exit code 1;
// progress goes to stderr (a bar on a terminal, plain lines otherwise).
import ArgumentParser
import DistilleryJSON
import DistilleryStages
import Foundation

@main
struct KD: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kd",
        abstract: "Distillery: shrink a pretrained BERT and know exactly what you traded.",
        subcommands: [Import.self, Info.self, Tokenize.self, Embed.self, Predict.self, Bench.self, DataCommand.self, Finetune.self,
                      Evaluate.self, Label.self, Distill.self])

    /// Runs the command, turning any error into one clear line and exit code 1.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as StageError {
            FileHandle.standardError.write(Data("kd: error: \(error.description)\n".utf8))
            Foundation.exit(1)
        } catch {
            exit(withError: error)
        }
    }
}

/// Options shared by commands that run the model.
struct ThreadOptions: ParsableArguments {
    @Option(name: .long, help: "Worker threads for BLAS and kernels.")
    var threads: Int = 1
}

/// Progress on stderr, warnings prefixed with "kd: ".
func stderrProgress() -> StageProgress { TextProgress(warningPrefix: "kd: ") }

/// Prints a report as JSON (the shared encoder: sorted keys).
func printJSON(_ value: some Encodable, pretty: Bool = false) throws {
    print(try JSONCoding.string(value, pretty: pretty))
}

/// Parses a comma-separated list of positive integers for `flag`.
func parseIntList(_ text: String, flag: String) throws -> [Int] {
    let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    let values = parts.compactMap { Int($0) }
    guard !parts.isEmpty, values.count == parts.count, values.allSatisfy({ $0 >= 1 }) else {
        throw StageError("\(flag) '\(text)' must be a comma-separated list of positive integers, e.g. 1,32")
    }
    return values
}

/// Parses a flag's value into an enum case, or an error listing the choices.
func parseChoice<T: RawRepresentable & CaseIterable>(_ text: String, flag: String, as type: T.Type) throws -> T where T.RawValue == String {
    guard let value = T(rawValue: text) else {
        throw StageError("\(flag) '\(text)' is not one of: \(T.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    return value
}
