// Valid inputs that must work (issue 15): blank and whitespace-only lines are texts like any
// other in tokenize/embed/predict (HF tokenizes them to [CLS] [SEP]) with output lines
// aligned to input lines; an HDF5 weight file carrying its config as root attributes
// imports without --config; `kd embed --no-normalize` overrides a model that normalizes.
import Foundation
import TestSupport
import WeightIO
import XCTest

final class ValidInputTests: CLITestCase {
    /// Lines: a text, an empty line, a whitespace-only line (CRLF), a last line without newline.
    let input = "first words\n\n \t \r\nlast one"
    let texts = ["first words", "", " \t ", "last one"]

    func testBlankAndWhitespaceLinesAreTextsInEveryLineCommand() throws {
        let model = try SharedModel.tinyPath(), file = try write("in.txt", input)
        let ids = runOK(["tokenize", "--model", model, "--input", file]).stdout.split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertEqual(ids.count, 5, "four lines and the final newline: \(ids)")
        XCTAssertEqual(ids[1], "2 3", "an empty line is [CLS] [SEP]")
        XCTAssertEqual(ids[2], "2 3", "a whitespace-only line is [CLS] [SEP]")
        XCTAssertNotEqual(ids[0], "2 3")
        for command in ["embed", "predict"] {
            let fromFile = runOK([command, "--model", model, "--input", file]).stdout
            let fromStdin = runOK([command, "--model", model], stdin: Data(input.utf8)).stdout
            XCTAssertEqual(fromFile, fromStdin, "\(command): file and stdin differ")
            let rows = outputLines(fromFile).map { parseJSONLine($0) }
            XCTAssertEqual(rows.map { $0["text"] as? String }, texts, "\(command): output lines not aligned with input lines")
        }
        let blank = outputLines(runOK(["embed", "--model", model], stdin: Data("\n".utf8)).stdout)
        XCTAssertEqual(blank.count, 1, "one empty line is one text")
    }

    /// tiny-bert's weights in a plain HDF5 file (HF names) whose root attributes hold its
    /// config.json values, with vocab.txt beside it and no config.json anywhere.
    func testHDF5WithConfigAsRootAttributesImportsWithoutConfig() throws {
        let dir = temp.appendingPathComponent("h5")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLIFixtures.tinyBert.appendingPathComponent("vocab.txt"), to: dir.appendingPathComponent("vocab.txt"))
        let weights = try SafetensorsFile.read(CLIFixtures.tinyBert.appendingPathComponent("model.safetensors"))
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: CLIFixtures.tinyBert.appendingPathComponent("config.json"))) as! [String: Any]
        let h5 = dir.appendingPathComponent("model.h5")
        let file = try HDF5File.create(h5)
        for (name, _, tensor) in weights.tensors { try file.writeTensor(tensor, at: name) }
        for (key, value) in config {
            switch value {
            case let n as NSNumber where String(cString: n.objCType) == "c": try file.setAttribute(key, int: n.boolValue ? 1 : 0)
            case let n as NSNumber where n.stringValue.contains(".") || n.stringValue.contains("e"): try file.setAttribute(key, double: n.doubleValue)
            case let n as NSNumber: try file.setAttribute(key, int: n.intValue)
            case let s as String: try file.setAttribute(key, string: s)
            default: continue   // nested values (id2label) and nulls have no attribute form
            }
        }
        try file.close()
        let fromAttributes = outPath("attributes.h5"), fromHF = outPath("hf.h5")
        runOK(["import", h5.path, "--out", fromAttributes])
        runOK(["import", CLIFixtures.tinyBert.path, "--out", fromHF])
        let embedAttributes = runOK(["embed", "--model", fromAttributes, "--input", CLIFixtures.sentences.path]).stdout
        let embedHF = runOK(["embed", "--model", fromHF, "--input", CLIFixtures.sentences.path]).stdout
        XCTAssertEqual(embedAttributes, embedHF, "the attribute config must give the same model as config.json")
    }

    func testEmbedNoNormalizeOverridesAModelThatNormalizes() throws {
        var file = try TeacherFile.read(URL(fileURLWithPath: try SharedModel.tinyPath()))
        XCTAssertFalse(file.normalize)
        let plain = try SharedModel.tinyPath()
        file.normalize = true
        let normalizing = temp.appendingPathComponent("normalizing.h5")
        try file.write(to: normalizing)
        func norms(_ args: [String]) -> [Double] {
            outputLines(runOK(["embed", "--input", CLIFixtures.sentences.path] + args).stdout).map { line in
                floats(parseJSONLine(line)["embedding"]).reduce(0) { $0 + $1 * $1 }.squareRoot()
            }
        }
        let unit = norms(["--model", normalizing.path])
        XCTAssertFalse(unit.isEmpty)
        for n in unit { XCTAssertEqual(n, 1, accuracy: 1e-5, "the model's own setting normalizes") }
        let raw = norms(["--model", normalizing.path, "--no-normalize"])
        XCTAssertTrue(raw.contains { abs($0 - 1) > 1e-3 }, "--no-normalize left the embeddings normalized: \(raw)")
        XCTAssertEqual(runOK(["embed", "--model", normalizing.path, "--no-normalize", "--input", CLIFixtures.sentences.path]).stdout,
                       runOK(["embed", "--model", plain, "--input", CLIFixtures.sentences.path]).stdout)
        for n in norms(["--model", plain, "--normalize"]) { XCTAssertEqual(n, 1, accuracy: 1e-5, "--normalize on a plain model") }
    }
}
