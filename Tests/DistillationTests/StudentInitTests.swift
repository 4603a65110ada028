// Student initialisation on a tiny random teacher (4 layers, hidden 8, 4 heads of 2, FFN 12,
// 3-class classifier): copied layers are bit-identical to the teacher layers they came
// from; a slice keeps exactly the hidden dimensions, heads and FFN neurons the weight-norm
// rule picks; random init follows HF's `_init_weights`; every result has exactly the
// plan's shapes and loads strictly into the plan's parameter layout.
import Distillation
import DistilleryModel
import DistilleryTensor
import DistilleryTraining
import Foundation
import TestSupport
import XCTest

/// Sample standard deviation of ~5,000 N(0, σ²) draws vs σ: the estimate's own standard
/// error is σ/√(2n) ≈ 1%; 10% is ten of those, and a wrong std (0.02 for 0.05) is 60% off.
let initStdTolerance = 0.10

final class StudentInitTests: XCTestCase {
    let teacherHeads = BertHeads(pooler: true, classifierLabels: 3)

    /// Random teacher tensors; entries along `boost`ed indices are multiplied by 10.
    private func teacher(boostHidden: Set<Int> = [], boostHeads: Set<Int> = [], boostNeurons: Set<Int> = [],
                         layers boostLayers: Set<Int> = []) -> [String: Tensor] {
        var rng = TestRNG(seed: 77)
        var out: [String: Tensor] = [:]
        let D = tinyTeacher.headSize
        for (name, shape) in bertParameterShapes(tinyTeacher, heads: teacherHeads) {
            var t = Tensor(shape: shape, data: rng.floats(shape.reduce(1, *)))
            let axes = testAxes(name)
            let layer = name.hasPrefix("encoder.layer.") ? Int(name.split(separator: ".")[2]) : nil
            func boosted(_ kind: Character, _ i: Int) -> Bool {
                switch kind {
                case "h": return boostHidden.contains(i)
                case "a": return layer.map(boostLayers.contains) == true && boostHeads.contains(i / D)
                case "f": return layer.map(boostLayers.contains) == true && boostNeurons.contains(i)
                default: return false
                }
            }
            for idx in 0..<t.count {
                let position = shape.count == 1 ? [idx] : [idx / shape[1], idx % shape[1]]
                for (a, kind) in axes.enumerated() where boosted(kind, position[a]) { t.data[idx] *= 10 }
            }
            out[name] = t
        }
        return out
    }

    /// What each axis of a BERT tensor indexes, written out independently of the
    /// implementation: h = hidden, a = attention heads·D, f = FFN neurons, "-" = not sliced.
    private func testAxes(_ name: String) -> [Character] {
        let table: [(String, [Character])] = [
            ("attention.self.query.weight", ["a", "h"]), ("attention.self.key.weight", ["a", "h"]), ("attention.self.value.weight", ["a", "h"]),
            ("attention.self.query.bias", ["a"]), ("attention.self.key.bias", ["a"]), ("attention.self.value.bias", ["a"]),
            ("attention.output.dense.weight", ["h", "a"]), ("intermediate.dense.weight", ["f", "h"]), ("intermediate.dense.bias", ["f"]),
            ("output.dense.weight", ["h", "f"]), ("_embeddings.weight", ["-", "h"]), ("pooler.dense.weight", ["h", "h"]),
            ("classifier.weight", ["-", "h"]), ("classifier.bias", ["-"]), (".bias", ["h"]), ("LayerNorm.weight", ["h"]),
        ]
        return table.first { name.hasSuffix($0.0) }!.1
    }

    /// `t` restricted to the index lists (nil = whole axis).
    private func slice(_ t: Tensor, _ rows: [Int]?, _ cols: [Int]? = nil) -> Tensor {
        if t.shape.count == 1 { return Tensor(shape: [rows!.count], data: rows!.map { t.data[$0] }) }
        let r = rows ?? Array(0..<t.shape[0]), c = cols ?? Array(0..<t.shape[1])
        return Tensor(shape: [r.count, c.count], data: r.flatMap { i in c.map { t.data[i * t.shape[1] + $0] } })
    }

    private func plan(_ changes: [String: Any], classes: Int = 3) throws -> DistillationPlan {
        try DistillationPlan(spec: StudentSpec(json: studentJSON(changes), source: "test.json"), teacher: tinyTeacher, classes: classes)
    }

    /// Shapes equal the plan's, and the tensors load strictly into the plan's layout.
    private func assertMatchesPlan(_ s: InitializedStudent, _ plan: DistillationPlan, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(Set(s.student.keys), Set(plan.studentShapes.map(\.name)), file: file, line: line)
        for (name, shape) in plan.studentShapes { XCTAssertEqual(s.student[name]?.shape, shape, name, file: file, line: line) }
        XCTAssertEqual(Set(s.projections.keys), Set(plan.projections.flatMap { [$0.weightName, $0.biasName] }), file: file, line: line)
        XCTAssertNoThrow(try ParameterBlock(layout: plan.layout, tensors: s.allTensors), file: file, line: line)
        // The plan's layout begins with exactly the training model's own layout.
        if let model = try? BertModel(config: plan.student, classes: plan.classes) {
            XCTAssertEqual(model.layout.entries, Array(plan.layout.entries.prefix(model.layout.entries.count)), file: file, line: line)
            XCTAssertEqual(plan.layout.entries.count - model.layout.entries.count, 2 * plan.projections.count, file: file, line: line)
        } else {
            XCTFail("the training model refuses the student config \(plan.student)", file: file, line: line)
        }
        XCTAssertTrue(s.allTensors.values.allSatisfy(\.allFinite), file: file, line: line)
    }

    private func bits(_ t: Tensor?) -> [UInt32] { t?.data.map(\.bitPattern) ?? [] }

    func testCopiedLayersAreBitIdentical() throws {
        let teacherTensors = teacher()
        for (pick, expected): ([String: Any], [Int]) in [(["pick": "every-other"], [1, 3]), (["layers": [0, 2]], [0, 2]), (["pick": "first"], [0, 1])] {
            var initJSON: [String: Any] = ["from": "teacher-layers"]
            initJSON.merge(pick) { $1 }
            let p = try plan(["architecture": ["layers": 2, "hidden_size": 8, "heads": 4, "intermediate_size": 12], "init": initJSON,
                              "losses": ["soft_ce": 1, "hidden_mse": 1]])
            XCTAssertEqual(p.initLayers, expected)
            let s = try initializeStudent(plan: p, teacherTensors: teacherTensors, seed: 1)
            assertMatchesPlan(s, p)
            XCTAssertTrue(s.projections.isEmpty)
            for (name, _) in p.studentShapes {
                var source = name
                if name.hasPrefix("encoder.layer.") {
                    let parts = name.split(separator: ".", maxSplits: 3)
                    source = "encoder.layer.\(expected[Int(parts[2])!]).\(parts[3])"
                }
                XCTAssertEqual(bits(s.student[name]), bits(teacherTensors[source]), "\(name) is teacher's \(source), bit for bit")
            }
        }
    }

    func testFreshClassifierWhenTheTeacherHasAnotherOne() throws {
        // Hard CE only, 2 classes: the teacher's 3-class classifier cannot be copied.
        let p = try plan(["architecture": ["layers": 2, "hidden_size": 8, "heads": 4, "intermediate_size": 12],
                          "init": ["from": "teacher-layers", "pick": "last"], "losses": ["hard_ce": 1]], classes: 2)
        let s = try initializeStudent(plan: p, teacherTensors: teacher(), seed: 1)
        assertMatchesPlan(s, p)
        XCTAssertEqual(s.student["classifier.weight"]?.shape, [2, 8])
        XCTAssertEqual(s.student["classifier.bias"]?.data, [0, 0])
        XCTAssertTrue(s.notes.contains { $0.hasPrefix("classifier: new") }, "\(s.notes)")
    }

    func testSliceKeepsTheStrongestDimensionsHeadsAndNeurons() throws {
        let K = [1, 4, 6, 7], heads = [0, 2], J = [0, 2, 3, 5, 9, 11]
        // The base student: 2 layers, hidden 4, 2 heads of 2, FFN 6, teacher-slice of the
        // mapped layers g(m) − 1 = 1, 3.
        let p = try plan([:])
        XCTAssertEqual(p.initLayers, [1, 3])
        let teacherTensors = teacher(boostHidden: Set(K), boostHeads: Set(heads), boostNeurons: Set(J), layers: [1, 3])
        let s = try initializeStudent(plan: p, teacherTensors: teacherTensors, seed: 1)
        assertMatchesPlan(s, p)
        XCTAssertEqual(s.keptHiddenDimensions, K)
        XCTAssertEqual(s.keptHeads, [heads, heads])
        XCTAssertEqual(s.keptNeurons, [J, J])
        let rows = heads.flatMap { [2 * $0, 2 * $0 + 1] }   // head size 2
        for (i, l) in [1, 3].enumerated() {
            let t = "encoder.layer.\(l).", st = "encoder.layer.\(i)."
            func expect(_ local: String, _ r: [Int]?, _ c: [Int]? = nil) {
                XCTAssertEqual(s.student[st + local], slice(teacherTensors[t + local]!, r, c), "\(st + local)")
            }
            for qkv in ["query", "key", "value"] {
                expect("attention.self.\(qkv).weight", rows, K)
                expect("attention.self.\(qkv).bias", rows)
            }
            expect("attention.output.dense.weight", K, rows)
            expect("attention.output.dense.bias", K)
            expect("attention.output.LayerNorm.weight", K)
            expect("intermediate.dense.weight", J, K)
            expect("intermediate.dense.bias", J)
            expect("output.dense.weight", K, J)
            expect("output.LayerNorm.bias", K)
        }
        XCTAssertEqual(s.student["embeddings.word_embeddings.weight"], slice(teacherTensors["embeddings.word_embeddings.weight"]!, nil, K))
        XCTAssertEqual(s.student["embeddings.LayerNorm.weight"], slice(teacherTensors["embeddings.LayerNorm.weight"]!, K))
        XCTAssertEqual(s.student["pooler.dense.weight"], slice(teacherTensors["pooler.dense.weight"]!, K, K))
        XCTAssertEqual(s.student["classifier.weight"], slice(teacherTensors["classifier.weight"]!, nil, K))
        XCTAssertEqual(s.student["classifier.bias"], teacherTensors["classifier.bias"])
        // Projections (embedding MSE and hidden MSE, 4 → 8): selection matrices.
        XCTAssertEqual(p.projections.map(\.studentLayer), [0, 1, 2])
        for proj in p.projections {
            let w = s.projections[proj.weightName]!
            XCTAssertEqual(w.shape, [8, 4])
            for r in 0..<8 { for c in 0..<4 { XCTAssertEqual(w.data[r * 4 + c], K[c] == r ? 1 : 0, "\(proj.weightName)[\(r), \(c)]") } }
            XCTAssertEqual(s.projections[proj.biasName], Tensor(zeros: [8]))
        }
    }

    func testSliceOfTheFullWidthIsACopy() throws {
        // Same widths as the teacher: the slice keeps everything, in order.
        let p = try plan(["architecture": ["layers": 2, "hidden_size": 8, "heads": 4, "intermediate_size": 12],
                          "init": ["from": "teacher-slice", "pick": "last"]])
        let teacherTensors = teacher(boostHidden: [3])
        let s = try initializeStudent(plan: p, teacherTensors: teacherTensors, seed: 1)
        XCTAssertEqual(s.keptHiddenDimensions, Array(0..<8))
        XCTAssertEqual(bits(s.student["encoder.layer.1.output.dense.weight"]), bits(teacherTensors["encoder.layer.3.output.dense.weight"]))
        XCTAssertTrue(p.projections.isEmpty)
    }

    func testRandomInitialisation() throws {
        // Random init may be as wide as the teacher and wider in the FFN: 4 layers, FFN 64.
        let p = try plan(["init": ["from": "random", "std": 0.05],
                          "architecture": ["layers": 4, "hidden_size": 8, "heads": 4, "intermediate_size": 64]])
        let s = try initializeStudent(plan: p, teacherTensors: teacher(), seed: 5)
        assertMatchesPlan(s, p)
        var weights: [Float] = []
        for (name, t) in s.student {
            if name.hasSuffix("LayerNorm.weight") { XCTAssertTrue(t.data.allSatisfy { $0 == 1 }, name) }
            else if name.hasSuffix(".bias") { XCTAssertTrue(t.data.allSatisfy { $0 == 0 }, name) }
            else if name == "embeddings.word_embeddings.weight" {
                XCTAssertTrue(t.data[0..<8].allSatisfy { $0 == 0 }, "padding row (id 0) is zero")
                weights += t.data[8...]
            } else { weights += t.data }
        }
        XCTAssertGreaterThan(weights.count, 5000)
        let n = Double(weights.count)
        let mean = weights.reduce(0) { $0 + Double($1) } / n
        let std = (weights.reduce(0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / n).squareRoot()
        XCTAssertEqual(std, 0.05, accuracy: 0.05 * initStdTolerance, "weights are N(0, 0.05²)")
        XCTAssertEqual(mean, 0, accuracy: 6 * 0.05 / n.squareRoot(), "six standard errors")
        // Seeded: same seed, same tensors; another seed, other tensors.
        let again = try initializeStudent(plan: p, teacherTensors: teacher(), seed: 5)
        XCTAssertEqual(again.allTensors, s.allTensors)
        let other = try initializeStudent(plan: p, teacherTensors: teacher(), seed: 6)
        XCTAssertNotEqual(other.student["encoder.layer.0.attention.self.query.weight"], s.student["encoder.layer.0.attention.self.query.weight"])
        XCTAssertTrue(p.projections.isEmpty, "equal hidden sizes")
        XCTAssertNil(s.keptHiddenDimensions)
        // Random projections (no slice to align with): N(0, 0.02²), bias 0, seeded.
        let narrow = try plan(["init": ["from": "random"]])
        let n1 = try initializeStudent(plan: narrow, teacherTensors: teacher(), seed: 5)
        assertMatchesPlan(n1, narrow)
        let w = n1.projections["distill.projection.1.weight"]!
        XCTAssertEqual(w.shape, [8, 4])
        XCTAssertTrue(w.data.contains { $0 != 0 } && w.data.allSatisfy { abs($0) < 0.02 * 6 }, "N(0, 0.02²): within six σ")
        XCTAssertEqual(n1.projections["distill.projection.1.bias"], Tensor(zeros: [8]))
        XCTAssertNotEqual(n1.projections["distill.projection.1.weight"], n1.projections["distill.projection.2.weight"], "one stream per tensor")
    }

    func testBadTeacherTensors() throws {
        let p = try plan([:])
        var t = teacher()
        t["classifier.weight"] = nil
        t["classifier.bias"] = nil
        XCTAssertThrowsError(try initializeStudent(plan: p, teacherTensors: t, seed: 1)) { e in
            let e = e as! DistillationError
            XCTAssertEqual(e.keyPath, "losses.soft_ce")
            XCTAssertTrue(e.description.contains("the teacher has no classifier") && e.description.contains("kd finetune"), "\(e)")
        }
        var missing = teacher()
        missing["encoder.layer.2.output.dense.weight"] = nil
        XCTAssertThrowsError(try initializeStudent(plan: p, teacherTensors: missing, seed: 1)) { e in
            XCTAssertTrue("\(e)".contains("encoder.layer.2.output.dense.weight"), "\(e)")
        }
    }
}
