// kd: Distillery's command line. The only place that wires files to algorithms.
//
// Every subcommand validates its inputs before writing anything, reports errors as one
// `kd: error: ...` line naming the file/line/flag and a hint, exits non-zero, and writes
// output files through a temporary file renamed on success.
import ArgumentParser
import DistilleryTensor
import Foundation

@main
struct KD: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kd",
        abstract: "Distillery: shrink a pretrained BERT and know exactly what you traded.",
        subcommands: [Import.self, Info.self, Tokenize.self, Embed.self, Predict.self, Bench.self, DataCommand.self, Finetune.self, Evaluate.self, Label.self, Distill.self])

    /// Runs the command, turning any error into one clear line and exit code 1.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as CLIError {
            FileHandle.standardError.write(Data("kd: error: \(error.description)\n".utf8))
            Foundation.exit(1)
        } catch {
            exit(withError: error)
        }
    }
}

/// An error the CLI reports as `kd: error: <description>` with exit code 1.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
    /// Wraps any error raised while handling `file`, prefixing the file name when the
    /// message does not already carry it.
    init(file: String, _ error: any Error) {
        let text = String(describing: error)
        let name = URL(fileURLWithPath: file).lastPathComponent
        if text.contains(file) {
            description = text
        } else if text.hasPrefix(name + ": ") {
            description = file + text.dropFirst(name.count)   // WeightIO names only the last component
        } else {
            description = "\(file): \(text)"
        }
    }
}

/// Options shared by commands that run the model.
struct ThreadOptions: ParsableArguments {
    @Option(name: .long, help: "Worker threads for BLAS and kernels.")
    var threads: Int = 1

    /// OpenBLAS here is built with MAX_THREADS=64.
    static let maximumThreads = 64

    func apply() throws { try Self.apply(threads) }

    /// Checks a `--threads` value and sets it for BLAS and the kernels.
    static func apply(_ threads: Int) throws {
        guard threads >= 1 && threads <= maximumThreads else {
            throw CLIError("--threads \(threads) is out of range — use 1...\(maximumThreads) (this machine has \(ProcessInfo.processInfo.activeProcessorCount) cores)")
        }
        Compute.setThreads(threads)
    }
}
