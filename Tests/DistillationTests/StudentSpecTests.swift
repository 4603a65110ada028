// Student JSON strictness and plan validation: every bad input is refused before training
// with a message that names the file, the key path (and the layer where there is one);
// the shipped students parse and plan against MiniLM's config as documented.
import Distillation
import DistilleryModel
import Foundation
import TestSupport
import XCTest

/// A valid student for a tiny teacher (4 layers, hidden 8, 4 heads of 2, FFN 12).
var baseStudentJSON: [String: Any] { [
    "format": "distillery-student", "version": 1, "name": "test-student",
    "architecture": ["layers": 2, "hidden_size": 4, "heads": 2, "intermediate_size": 6],
    "init": ["from": "teacher-slice"],
    "layer_map": ["kind": "uniform"],
    "losses": ["soft_ce": 1.0, "hidden_mse": 1, "embedding_mse": 1],
    "temperature": 2,
    "schedule": ["kind": "one-stage", "epochs": 1],
] }

/// The tiny teacher the spec tests plan against.
let tinyTeacher: BertConfig = {
    var c = BertConfig(vocabSize: 20, hiddenSize: 8, layerCount: 4, headCount: 4, intermediateSize: 12, maxPositions: 10)
    c.labels = ["a", "b", "c"]
    return c
}()

/// The MiniLM teacher's HF config.json (Tests/Fixtures/minilm-l6/config.json, a copy of
/// the package's; the 90 MB weights are not needed for planning).
func miniLMConfig() throws -> BertConfig {
    let url = Fixtures.url("minilm-l6/config.json")
    return try BertConfig(json: String(contentsOf: url, encoding: .utf8), source: url.lastPathComponent)
}

/// The shipped student `name` from students/.
func shippedStudent(_ name: String) throws -> StudentSpec {
    try StudentSpec(contentsOf: Fixtures.root.appendingPathComponent("students/\(name).json"))
}

/// `base` with top-level keys replaced (NSNull removes a key), as JSON data.
func studentJSON(_ changes: [String: Any], base: [String: Any] = baseStudentJSON) -> Data {
    var dict = base
    for (k, v) in changes { dict[k] = v is NSNull ? nil : v }
    return try! JSONSerialization.data(withJSONObject: dict, options: [.sortedKeys])
}

/// `base[key]` (an object) with members replaced.
func merged(_ key: String, _ changes: [String: Any], base: [String: Any] = baseStudentJSON) -> [String: Any] {
    var inner = base[key] as! [String: Any]
    for (k, v) in changes { inner[k] = v is NSNull ? nil : v }
    return inner
}

final class StudentSpecTests: XCTestCase {
    let file = "students/bad.json"

    /// Parses (and plans, when `teacher` is given) and returns the error it must throw.
    private func failure(_ data: Data, teacher: BertConfig? = tinyTeacher, classes: Int = 3,
                         file f: StaticString = #filePath, line: UInt = #line) -> DistillationError? {
        do {
            let spec = try StudentSpec(json: data, source: file)
            if let teacher { _ = try DistillationPlan(spec: spec, teacher: teacher, classes: classes) }
            XCTFail("accepted: \(String(decoding: data, as: UTF8.self))", file: f, line: line)
            return nil
        } catch {
            print("refused as expected: \(error)")
            return error
        }
    }

    /// Asserts the error names `keyPath`, the file, and contains each of `fragments`.
    private func expect(_ data: Data, keyPath: String?, _ fragments: [String], teacher: BertConfig? = tinyTeacher, classes: Int = 3,
                        file f: StaticString = #filePath, line: UInt = #line) {
        guard let e = failure(data, teacher: teacher, classes: classes, file: f, line: line) else { return }
        XCTAssertEqual(e.keyPath, keyPath, "key path of: \(e)", file: f, line: line)
        XCTAssertEqual(e.source, file, file: f, line: line)
        XCTAssertTrue(e.description.hasPrefix("\(file): "), "message starts with the file: \(e)", file: f, line: line)
        if let keyPath { XCTAssertTrue(e.description.contains("'\(keyPath)'"), "message names the key: \(e)", file: f, line: line) }
        for fragment in fragments {
            XCTAssertTrue(e.description.contains(fragment), "'\(fragment)' missing from: \(e)", file: f, line: line)
        }
        XCTAssertFalse(e.hint.isEmpty, "every error has a hint", file: f, line: line)
    }

    func testBaseStudentIsValid() throws {
        let spec = try StudentSpec(json: studentJSON([:]), source: file)
        let plan = try DistillationPlan(spec: spec, teacher: tinyTeacher, classes: 3)
        XCTAssertEqual(plan.layerMap, [2, 4])
        XCTAssertEqual(plan.student.layerCount, 2)
    }

    func testUnknownKeys() {
        expect(studentJSON(["temprature": 2]), keyPath: "temprature", ["not a known key", "temperature"], teacher: nil)
        expect(studentJSON(["architecture": merged("architecture", ["hiden_size": 4])]), keyPath: "architecture.hiden_size",
               ["not a known key", "hidden_size"], teacher: nil)
        expect(studentJSON(["losses": ["soft_ce": 1, "kl": 1]]), keyPath: "losses.kl", ["not a known key", "soft_ce"], teacher: nil)
        expect(studentJSON(["init": ["from": "random", "seed": 3]]), keyPath: "init.seed", ["not a known key"], teacher: nil)
    }

    func testWrongTypes() {
        expect(studentJSON(["architecture": merged("architecture", ["layers": "2"])]), keyPath: "architecture.layers",
               ["is a string, expected an integer"], teacher: nil)
        expect(studentJSON(["architecture": merged("architecture", ["layers": true])]), keyPath: "architecture.layers",
               ["is a bool, expected an integer"], teacher: nil)
        expect(studentJSON(["architecture": merged("architecture", ["hidden_size": 4.5])]), keyPath: "architecture.hidden_size",
               ["is a non-integer number, expected an integer"], teacher: nil)
        expect(studentJSON(["temperature": "2"]), keyPath: "temperature", ["is a string, expected a number"], teacher: nil)
        expect(studentJSON(["losses": ["soft_ce": [1]]]), keyPath: "losses.soft_ce", ["is an array, expected a number"], teacher: nil)
        expect(studentJSON(["architecture": 3]), keyPath: "architecture", ["is an integer, expected an object"], teacher: nil)
        expect(studentJSON(["layer_map": ["kind": "explicit", "teacher_layers": [2, "4"]]]), keyPath: "layer_map.teacher_layers[1]",
               ["expected an integer"], teacher: nil)
        expect(studentJSON(["temperature": NSNull()]), keyPath: "temperature", ["is missing (expected a number)"], teacher: nil)
    }

    func testNotAStudentFile() {
        guard let e = failure(Data("{\"format\": ".utf8), teacher: nil) else { return }
        XCTAssertTrue(e.description.contains("is not valid JSON"), "\(e)")
        expect(studentJSON(["format": "distillery-teacher"]), keyPath: "format", ["not \"distillery-student\""], teacher: nil)
        expect(studentJSON(["version": 2]), keyPath: "version", ["is 2", "version 1"], teacher: nil)
        expect(studentJSON(["name": "tiny student!"]), keyPath: "name", ["letters, digits"], teacher: nil)
    }

    func testZeroLayersAndBadSizes() {
        expect(studentJSON(["architecture": merged("architecture", ["layers": 0])]), keyPath: "architecture.layers",
               ["is 0", "at least one encoder layer"], teacher: nil)
        expect(studentJSON(["architecture": merged("architecture", ["heads": 3])]), keyPath: "architecture.heads",
               ["3 does not divide hidden_size 4"], teacher: nil)
        expect(studentJSON(["architecture": merged("architecture", ["layer_heads": [2]])]), keyPath: "architecture.layer_heads",
               ["1 entries for 2 layers"], teacher: nil)
        expect(studentJSON(["architecture": merged("architecture", ["layer_heads": [2, 3]])]), keyPath: "architecture.layer_heads",
               ["entry 1 is 3"], teacher: nil)
    }

    func testTemperatureAndWeights() {
        for t in [0, -1] {
            expect(studentJSON(["temperature": t]), keyPath: "temperature", ["is \(Double(t))", "> 0"], teacher: nil)
        }
        expect(studentJSON(["losses": ["soft_ce": -1]]), keyPath: "losses.soft_ce", ["is -1.0", "≥ 0"], teacher: nil)
        expect(studentJSON(["losses": ["soft_ce": 0, "hidden_mse": 0]]), keyPath: "losses", ["every loss weight 0"], teacher: nil)
        expect(studentJSON(["schedule": ["kind": "two-stage", "intermediate_epochs": 1, "prediction_epochs": 1],
                            "losses": ["hidden_mse": 1]]),
               keyPath: "schedule.kind", ["no prediction loss"], teacher: nil)
        expect(studentJSON(["schedule": ["kind": "one-stage", "epochs": 0]]), keyPath: "schedule.epochs", ["is 0"], teacher: nil)
    }

    func testLayerMapOutOfRangeAndNonMonotone() {
        // Teacher has 4 layers: 5 is out of range.
        expect(studentJSON(["layer_map": ["kind": "explicit", "teacher_layers": [2, 5]]]), keyPath: "layer_map.teacher_layers",
               ["student layer 2", "teacher layer 5", "outside 1…4"])
        expect(studentJSON(["layer_map": ["kind": "explicit", "teacher_layers": [0, 2]]]), keyPath: "layer_map.teacher_layers",
               ["student layer 1", "teacher layer 0"])
        // Non-monotone is caught while reading (no teacher needed).
        expect(studentJSON(["layer_map": ["kind": "explicit", "teacher_layers": [3, 3]]]), keyPath: "layer_map.teacher_layers",
               ["not strictly increasing", "student layers 1 and 2"], teacher: nil)
        expect(studentJSON(["layer_map": ["kind": "explicit", "teacher_layers": [4, 2]]]), keyPath: "layer_map.teacher_layers",
               ["not strictly increasing"], teacher: nil)
        expect(studentJSON(["layer_map": ["kind": "explicit", "teacher_layers": [2]]]), keyPath: "layer_map.teacher_layers",
               ["1 teacher layers for 2 student layers"], teacher: nil)
        // More student layers than teacher layers: no monotone map exists.
        expect(studentJSON(["architecture": merged("architecture", ["layers": 5]), "init": ["from": "random"]]),
               keyPath: "architecture.layers", ["is 5", "only 4 layers"])
    }

    func testAttentionLossNeedsEqualHeads() throws {
        // Student 2 heads vs teacher 4 per layer.
        expect(studentJSON(["losses": ["attention_mse": 1, "hidden_mse": 1]]), keyPath: "losses.attention_mse",
               ["student layer 1 has 2 heads", "teacher layer 2 has 4", "set \"attention_mse\": 0"])
        // Equal heads (4 of 2 dims, hidden 8 student via random init): allowed, on every pair.
        let ok = try StudentSpec(json: studentJSON(["architecture": ["layers": 2, "hidden_size": 8, "heads": 4, "intermediate_size": 6],
                                                    "losses": ["attention_mse": 1], "init": ["from": "random"]]), source: file)
        let plan = try DistillationPlan(spec: ok, teacher: tinyTeacher, classes: 3)
        XCTAssertEqual(plan.pairs.map(\.losses), [[.attentionMSE], [.attentionMSE]])
        XCTAssertTrue(plan.projections.isEmpty)
        // Per-layer heads: layer 2 drops to 3 heads → refused naming layer 2.
        let perLayer = studentJSON(["architecture": ["layers": 2, "hidden_size": 8, "heads": 4, "intermediate_size": 6, "layer_heads": [4, 3]],
                                    "losses": ["attention_mse": 1], "init": ["from": "random"]])
        expect(perLayer, keyPath: "losses.attention_mse", ["student layer 2 has 3 heads", "teacher layer 4 has 4"])
    }

    func testWiderThanTeacherOrItsSlice() {
        // Hidden wider than the teacher's: refused for any init.
        expect(studentJSON(["architecture": ["layers": 2, "hidden_size": 16, "heads": 8, "intermediate_size": 6], "init": ["from": "random"]]),
               keyPath: "architecture.hidden_size", ["is 16, wider than the teacher's 8"])
        // teacher-slice keeps a subset: an FFN of 16 against the teacher's 12 is refused, naming the layer.
        expect(studentJSON(["architecture": merged("architecture", ["intermediate_size": 16])]), keyPath: "architecture.intermediate_size",
               ["student layer 0 has FFN 16", "teacher layer 1's 12"])
        // Whole heads only: a student head of 4 dims against teacher heads of 2.
        expect(studentJSON(["architecture": merged("architecture", ["heads": 1])]), keyPath: "architecture.heads",
               ["heads of 4 dimensions", "teacher's heads have 2"])
        // teacher-layers copies whole layers: widths must match.
        expect(studentJSON(["init": ["from": "teacher-layers", "pick": "first"]]), keyPath: "init.from",
               ["hidden_size 4 differs from the teacher's 8"])
        expect(studentJSON(["architecture": ["layers": 2, "hidden_size": 8, "heads": 4, "intermediate_size": 6],
                            "init": ["from": "teacher-layers", "pick": "first"]]), keyPath: "init.from",
               ["teacher layer 0", "student layer 0", "FFN 12", "FFN 6"])
        expect(studentJSON(["architecture": ["layers": 3, "hidden_size": 8, "heads": 4, "intermediate_size": 12],
                            "init": ["from": "teacher-layers", "pick": "every-other"]]), keyPath: "init.pick",
               ["needs 2·3−1 = 5 teacher layers"])
        expect(studentJSON(["init": ["from": "teacher-slice", "layers": [0, 4]]]), keyPath: "init.layers", ["teacher layer 4", "outside 0…3"])
    }

    func testPredictionLossesNeedClasses() {
        expect(studentJSON([:]), keyPath: "losses.soft_ce", ["no classes"], classes: 0)
        expect(studentJSON([:]), keyPath: "losses.soft_ce", ["2 classes", "3 labels"], classes: 2)
    }

    // MARK: Shipped students against MiniLM

    func testShippedStudentsParse() throws {
        for name in ["distil-l3-h384", "tiny-l4-h256", "mini-l2-h128"] {
            let spec = try shippedStudent(name)
            XCTAssertEqual(spec.name, name, "name matches the file name")
        }
    }

    func testDistilL3AgainstMiniLM() throws {
        let plan = try DistillationPlan(spec: try shippedStudent("distil-l3-h384"), teacher: try miniLMConfig(), classes: 2)
        print(plan)
        XCTAssertEqual(plan.initLayers, [1, 3, 5], "every other layer, the teacher's top layer kept")
        XCTAssertEqual(plan.layerMap, [2, 4, 6])
        XCTAssertEqual(plan.pairs.map { [$0.studentLayer, $0.teacherLayer] }, [[1, 2], [2, 4], [3, 6]])
        XCTAssertTrue(plan.projections.isEmpty, "equal widths: no projection")
        XCTAssertEqual(plan.pairs.map(\.losses), [[.hiddenMSE], [.hiddenMSE], [.hiddenMSE, .hiddenCosine]])
        XCTAssertEqual(plan.stages.map(\.losses), [[.softCE, .hardCE, .hiddenMSE, .hiddenCosine]])
        XCTAssertEqual(plan.student.hiddenSize, 384)
        XCTAssertEqual(plan.student.layerHeads, [12, 12, 12])
        XCTAssertEqual(plan.teacherParameterCount, 22_713_216 + 2 * 384 + 2, "kd info's count plus a 2-class classifier")
        let text = plan.description
        XCTAssertTrue(text.contains("copy teacher layers 1, 3, 5"), text)
        XCTAssertTrue(text.contains("hidden MSE ×1, hidden cosine ×1"), text)
        XCTAssertTrue(text.contains("temperature 2.0"), text)
    }

    func testTinyL4AgainstMiniLM() throws {
        let teacher = try miniLMConfig()
        let plan = try DistillationPlan(spec: try shippedStudent("tiny-l4-h256"), teacher: teacher, classes: 2)
        print(plan)
        XCTAssertEqual(plan.layerMap, [2, 3, 5, 6], "⌈m·6/4⌉")
        XCTAssertEqual(plan.initLayers, [1, 2, 4, 5], "mapped: g(m) − 1")
        XCTAssertEqual(plan.pairs.map { [$0.studentLayer, $0.teacherLayer] }, [[0, 0], [1, 2], [2, 3], [3, 5], [4, 6]])
        XCTAssertEqual(plan.projections.map(\.studentLayer), [0, 1, 2, 3, 4])
        XCTAssertTrue(plan.projections.allSatisfy { $0.inFeatures == 256 && $0.outFeatures == 384 })
        XCTAssertEqual(plan.pairs.map(\.losses), [[.embeddingMSE], [.hiddenMSE], [.hiddenMSE], [.hiddenMSE], [.hiddenMSE]])
        XCTAssertEqual(plan.stages.map(\.name), ["intermediate", "prediction"])
        XCTAssertEqual(plan.stages.map(\.losses), [[.embeddingMSE, .hiddenMSE], [.softCE]])
        XCTAssertEqual(plan.stages.map(\.epochs), [4, 3])
        XCTAssertEqual(plan.student.headSize, 32)
        XCTAssertEqual(plan.projectionParameterCount, 5 * (384 * 256 + 384))
        // The projections come after the student's own tensors, in pair order.
        let names = plan.parameterShapes.map(\.name)
        XCTAssertEqual(Array(names.prefix(plan.studentShapes.count)), plan.studentShapes.map(\.name))
        XCTAssertEqual(Array(names.suffix(2)), ["distill.projection.4.weight", "distill.projection.4.bias"])
        let text = plan.description
        XCTAssertTrue(text.contains("256→384, learned"), text)
        XCTAssertTrue(text.contains("student layer 1 has 8 heads, teacher layer 2 has 12"), "the plan says why attention MSE is off: \(text)")
        // Asking for attention MSE with 8 vs 12 heads is refused.
        var dict = try JSONSerialization.jsonObject(with: Data(contentsOf: Fixtures.root.appendingPathComponent("students/tiny-l4-h256.json"))) as! [String: Any]
        dict["losses"] = merged("losses", ["attention_mse": 1], base: dict)
        let data = try JSONSerialization.data(withJSONObject: dict)
        XCTAssertThrowsError(try DistillationPlan(spec: StudentSpec(json: data, source: "tiny-l4-h256.json"), teacher: teacher, classes: 2)) { e in
            let e = e as! DistillationError
            XCTAssertEqual(e.keyPath, "losses.attention_mse")
            XCTAssertTrue(e.description.contains("student layer 1 has 8 heads and teacher layer 2 has 12"), "\(e)")
        }
    }

    func testMiniL2AgainstMiniLM() throws {
        let plan = try DistillationPlan(spec: try shippedStudent("mini-l2-h128"), teacher: try miniLMConfig(), classes: 2)
        print(plan)
        XCTAssertEqual(plan.layerMap, [3, 6])
        XCTAssertEqual(plan.initLayers, [2, 5])
        XCTAssertEqual(plan.pairs.map { [$0.studentLayer, $0.teacherLayer] }, [[0, 0], [1, 3], [2, 6]])
        XCTAssertEqual(plan.projections.map { [$0.inFeatures, $0.outFeatures] }, [[128, 384], [128, 384], [128, 384]])
        XCTAssertEqual(plan.student.layerHeads, [4, 4])
        XCTAssertEqual(plan.stages.count, 1)
        XCTAssertLessThan(plan.studentParameterCount, plan.teacherParameterCount / 5)
    }

    /// Uniform rounding: ⌈m·N/M⌉ ends at N and is strictly increasing for every M ≤ N.
    func testUniformMapRounding() throws {
        for N in 1...12 {
            for M in 1...N {
                var c = BertConfig(vocabSize: 10, hiddenSize: 4, layerCount: N, headCount: 2, intermediateSize: 4, maxPositions: 8)
                c.labels = []
                let spec = try StudentSpec(json: studentJSON(["architecture": ["layers": M, "hidden_size": 4, "heads": 2, "intermediate_size": 4],
                                                              "init": ["from": "random"], "losses": ["hidden_mse": 1]]), source: file)
                let plan = try DistillationPlan(spec: spec, teacher: c, classes: 0)
                XCTAssertEqual(plan.layerMap.last, N, "M=\(M) N=\(N)")
                XCTAssertTrue(zip(plan.layerMap, plan.layerMap.dropFirst()).allSatisfy { $0 < $1 }, "monotone M=\(M) N=\(N)")
                for (i, g) in plan.layerMap.enumerated() {
                    let exact = Double((i + 1) * N) / Double(M)
                    XCTAssertTrue(Double(g) >= exact && Double(g) < exact + 1, "g(\(i + 1)) = \(g) is ⌈\(exact)⌉")
                }
            }
        }
    }
}
